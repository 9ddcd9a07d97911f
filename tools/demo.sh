#!/usr/bin/env bash
# The echo demo: starts BUILD_DIR/echo_server on the best backend, loads it
# with BUILD_DIR/echo_client, and reports throughput, latency and the bytes
# checked; then the same on the poll(2) backend when this build has it; then
# one event loop against two (echo_server -t 1 and -t 2, the connections
# handed out in turn), on the best backend.
#
#   tools/demo.sh [BUILD_DIR]        (default: build/ next to tools/)
#
# DEMO_CONNS, DEMO_SECONDS and DEMO_BYTES change the load (50, 3, 64);
# DEMO_MODE how the loops share the connections (handoff, least, exclusive,
# reuseport, cpu).  Exits non-zero if a server or client failed or an echo
# differed.
set -u

build=${1:-"$(dirname -- "${BASH_SOURCE[0]}")/../build"}
conns=${DEMO_CONNS:-50}
seconds=${DEMO_SECONDS:-3}
bytes=${DEMO_BYTES:-64}
mode=${DEMO_MODE:-handoff}

for exe in echo_server echo_client; do
    if [[ ! -x $build/$exe ]]; then
        echo "demo: $build/$exe not found; build first" >&2
        exit 1
    fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mio-demo.XXXXXX") || exit 1
server_pid=
cleanup() {
    if [[ -n $server_pid ]]; then
        kill "$server_pid" 2>/dev/null
        wait "$server_pid" 2>/dev/null
    fi
    rm -rf -- "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM        # exit runs cleanup

# Starts the server on backend $1 ("" for the best), with the loops $2 ("":
# the poll API, no loop) and sets addr and backend from its first line,
# "listening on ADDR backend NAME [loops N mode M]".  Returns 77 when the
# build lacks the backend.
start_server() {
    local line i rc
    : >"$tmp/server.out"        # empty before the server starts: no stale line
    "$build/echo_server" ${1:+-b "$1"} ${2:+-t "$2" -m "$mode"} 127.0.0.1:0 \
        >"$tmp/server.out" 2>"$tmp/server.err" &
    server_pid=$!
    for ((i = 0; i < 200; i++)); do
        if read -r line <"$tmp/server.out" && [[ $line == "listening on "* ]]; then
            addr=${line#listening on }
            addr=${addr%% *}
            backend=${line#* backend }
            backend=${backend%% *}
            return 0
        fi
        if ! kill -0 "$server_pid" 2>/dev/null; then
            wait "$server_pid"
            rc=$?
            server_pid=
            return "$rc"
        fi
        sleep 0.05
    done
    echo "demo: echo_server printed no address within 10 s" >&2
    return 1
}

stop_server() {
    local rc
    kill -TERM "$server_pid"
    wait "$server_pid"
    rc=$?
    server_pid=
    return "$rc"
}

# Runs one backend ($1) with the loops $2 (none: the poll API); prints its
# row of the report.
run() {
    local want=$1 loops=${2:-} out rc f label
    start_server "$want" "$loops"
    rc=$?
    if [[ $rc == 77 ]]; then
        printf '  %-8s skipped: not available in this build\n' "$want"
        return 0
    elif [[ $rc != 0 ]]; then
        echo "demo: echo_server ${want:+-b $want }failed (exit $rc):" >&2
        cat "$tmp/server.err" >&2
        return 1
    fi
    out=$("$build/echo_client" -b "$backend" -c "$conns" -d "$seconds" -s "$bytes" "$addr" \
          2>"$tmp/client.err")
    rc=$?
    read -r -a f <<<"$out"
    if [[ $rc != 0 || ${f[0]:-} != requests/s ]]; then
        echo "demo: echo_client on $backend failed (exit $rc): $out" >&2
        head -n 5 "$tmp/client.err" >&2
        stop_server
        return 1
    fi
    if ! stop_server; then
        echo "demo: echo_server on $backend did not exit cleanly" >&2
        cat "$tmp/server.err" >&2
        return 1
    fi
    label=$backend
    if [[ -n $loops ]]; then
        label="$backend, $loops loop"
        [[ $loops == 1 ]] || label+=s
    fi
    printf '  %-16s %10s %10s us %10s us %14s\n' "$label" "${f[1]}" "${f[3]}" "${f[6]}" "${f[12]}"
    [[ $backend != poll || -n $loops ]] || ran_poll=1
}

echo "libmio echo demo: $conns connections, $bytes-byte messages, $seconds s per server"
printf '  %-16s %10s %13s %13s %14s\n' server requests/s p50 p99 "bytes verified"
status=0
ran_poll=
run "" || status=1
if [[ -z $ran_poll ]]; then
    run poll || status=1
fi
echo "one event loop against two (echo_server -t 1 and -t 2, -m $mode; $(nproc 2>/dev/null || echo '?') CPUs here, the client on them too):"
run "" 1 || status=1
run "" 2 || status=1
if [[ $status != 0 ]]; then
    echo "demo: FAILED" >&2
fi
exit "$status"
