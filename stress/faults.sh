#!/bin/sh
# The echo servers under injected system-call failures for longer than the
# tests run them: each serves examples/echo_client for SECONDS while RATE of
# its calls fail (tests/fault/fault.c, every call and error it knows), then,
# injection off, must hold as many descriptors as before the load, serve a
# clean load with no error, stop on SIGTERM with "stopped", and leave no
# descriptor open at exit (the library's reserve, /dev/null, aside).
#   stress/faults.sh BUILD BACKEND [SECONDS] [RATE]
set -eu
build=$1
backend=$2
seconds=${3:-10}
rate=${4:-0.02}
shim=$build/libmio_fault.so
if [ ! -f "$shim" ]; then
    echo "faults: no $shim (Linux with glibc only): skipped"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0

fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }

for server in echo_server loop_echo_server; do
    printf 0 > "$tmp/control"
    rm -f "$tmp/out" "$tmp/report"
    : > "$tmp/out"
    MIO_FAULT_CONTROL=$tmp/control MIO_FAULT_REPORT=$tmp/report MIO_FAULT_RATE=$rate \
    MIO_FAULT_SEED=$$ LD_PRELOAD=$shim \
        "$build/$server" -b "$backend" -n $((seconds * 3 + 30)) > "$tmp/out" 2> "$tmp/err" &
    pid=$!
    while [ ! -s "$tmp/out" ]; do sleep 0.05; done
    addr=$(awk '{ print $3; exit }' "$tmp/out")
    before=$(fds $pid)
    printf 1 > "$tmp/control"
    # Connections the server sheds or closes count as errors here: let them go.
    "$build/echo_client" -b "$backend" -c 50 -d "$seconds" -s 2000 "$addr" > "$tmp/load" 2>/dev/null || true
    printf 0 > "$tmp/control"
    waited=0
    while [ "$(fds $pid)" -ne "$before" ] && [ $waited -lt 100 ]; do
        sleep 0.1
        waited=$((waited + 1))
    done
    result="$server $backend, faulty load: $(cat "$tmp/load")"
    if [ ! -d "/proc/$pid" ]; then
        wait $pid || true
        echo "$result; FAILED: the server died: $(cat "$tmp/err")"
        status=1
        continue
    elif [ "$(fds $pid)" -ne "$before" ]; then
        echo "$result; FAILED: $(fds $pid) descriptors, $before before"
        status=1
    elif ! "$build/echo_client" -b "$backend" -c 10 -d 1 -s 2000 "$addr" > "$tmp/clean"; then
        echo "$result; FAILED: clean load: $(cat "$tmp/clean")"
        status=1
    else
        echo "$result; clean: $(cat "$tmp/clean")"
    fi
    kill -TERM $pid
    wait $pid || { echo "$server $backend: FAILED: exit status $?"; status=1; }
    if [ "$(tail -n 1 "$tmp/out")" != stopped ]; then
        echo "$server $backend: FAILED: did not stop cleanly"
        status=1
    fi
    if grep '^fd ' "$tmp/report" | grep -v ' /dev/null$'; then
        echo "$server $backend: FAILED: descriptors left open at exit (above)"
        status=1
    fi
    echo "$server $backend: $(awk '$1 == "call" { f += $5 } END { print f + 0 }' "$tmp/report") faults injected"
done
exit $status
