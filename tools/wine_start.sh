#!/usr/bin/env bash
# Makes the wine prefix $WINEPREFIX ready and leaves a persistent wineserver
# running on it, for the Windows programs that follow (stop it with
# `wineserver -k`).
#
#   WINEPREFIX=DIR tools/wine_start.sh
#
# A prefix is created by the first wine program.  Its set-up can stop short
# (a prefix without kernel32.dll, on which every program then fails to
# start), so it is made here on its own, waited for, checked, and made once
# more from scratch if it came out broken.  Wine's background services are
# started with every stream on /dev/null: started by a test instead, they
# would inherit the test runner's pipes and keep it waiting.
set -euo pipefail

: "${WINEPREFIX:?set WINEPREFIX to the prefix directory}"
export WINEPREFIX WINEDEBUG=${WINEDEBUG:--all}
unset DISPLAY

ready() { [[ -f $WINEPREFIX/drive_c/windows/system32/kernel32.dll ]]; }

for attempt in 1 2; do
    if ! ready; then
        wineserver -k >/dev/null 2>&1 || true
        rm -rf "$WINEPREFIX"
        wineboot --init </dev/null >/dev/null 2>&1 || true
        wineserver -w >/dev/null 2>&1 || true     # until the set-up has finished
    fi
    if ready; then
        wineserver -p </dev/null >/dev/null 2>&1 || true
        if wine cmd /c exit </dev/null >/dev/null 2>&1; then
            exit 0
        fi
        wineserver -k >/dev/null 2>&1 || true
        rm -rf "$WINEPREFIX"
    fi
    echo "wine_start: prefix $WINEPREFIX not usable (attempt $attempt)" >&2
done
exit 1
