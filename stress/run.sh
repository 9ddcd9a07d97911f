#!/bin/sh
# The long reliability runs: builds stress/*.c against the library in BUILD
# (default: build) and runs each on every Linux backend, then the echo
# servers under injected system-call failures (stress/faults.sh).
#   stress/run.sh [BUILD]
# or only the soak (stress/soak.c), for SECONDS:
#   stress/run.sh BUILD soak [SECONDS]
set -eu
cd "$(dirname "$0")/.."
build=${1:-build}
out=$build/stress
mkdir -p "$out"
# libmio.a holds the io_uring backend when liburing was found.
libs="$(pkg-config --libs liburing 2>/dev/null || true) -lpthread"
for prog in conns signals emfile soak; do
    ${CC:-cc} -std=c11 -O2 -Wall -Wextra -Wpedantic -Iinclude \
        "stress/$prog.c" "$build/libmio.a" $libs -o "$out/$prog"
done
# The soak alone: stress/run.sh BUILD soak SECONDS (make soak).
if [ "${2:-}" = soak ]; then
    exec "$out/soak" -d "${3:-300}"
fi
status=0
for backend in epoll poll; do
    "$out/emfile" -b "$backend" -d 5 || status=1
    "$out/emfile" -b "$backend" -d 2 -n || true     # for comparison: no answer
    "$out/signals" -b "$backend" -d 10 -i 100 || status=1
    "$out/conns" -b "$backend" || status=1
    stress/faults.sh "$build" "$backend" 10 || status=1
done
exit $status
