#!/usr/bin/env bash
# Compiles the Windows library sources, the public header and the examples
# the way MSVC sees them: clang in MSVC mode (_MSC_VER defined, __GNUC__
# not, Microsoft calling conventions and ABI) against wine's copy of the
# Windows SDK headers (Debian libwine-dev), warnings as errors.  Catches
# GCC-only constructs that the mingw-w64 build would accept.  Compile only:
# nothing links here.
#
#   tools/check_msvc.sh            (needs clang and libwine-dev)
set -euo pipefail

src=$(cd "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
sdk=/usr/include/wine/wine
resource_dir=$(clang -print-resource-dir)
[[ -d $sdk/windows && -d $sdk/msvcrt ]] || { echo "check_msvc: needs libwine-dev ($sdk)" >&2; exit 1; }

flags=(--target=x86_64-pc-windows-msvc -fms-compatibility -fms-extensions
       -nostdinc -isystem "$resource_dir/include" -isystem "$sdk/msvcrt" -isystem "$sdk/windows"
       -I"$src/include" -Wall -Wextra -Wpedantic -Werror -fsyntax-only)

probe=$(mktemp "${TMPDIR:-/tmp}/mio-msvc.XXXXXX.c")
trap 'rm -f "$probe"' EXIT
printf '#include <mio.h>\n#if !defined(_MSC_VER) || defined(__GNUC__)\n#error not MSVC mode\n#endif\nint main(void) { mio_poll *p; return mio_poll_new(&p); }\n' >"$probe"
for mode in "" "-DMIO_DLL"; do
    clang "${flags[@]}" -std=c11 $mode "$probe"
    # wine's winnt.h defines an inline that clang's C++ mode has as a builtin.
    clang "${flags[@]}" -x c++ -std=c++11 -D_InterlockedCompareExchange128=wine_cmpxchg128 $mode "$probe"
done
echo "check_msvc: include/mio.h (C11, C++11, static and MIO_DLL)"

n=0
for f in "$src"/src/*.c "$src"/src/sys/{net_win,dgram_win,win,iocp,afd}.c; do
    clang "${flags[@]}" -std=c11 -I"$src/src" -DMIO_HAVE_IOCP -DMIO_BUILDING_DLL \
          -D_WIN32_WINNT=0x0601 "$f"
    n=$((n + 1))
done
echo "check_msvc: $n Windows library sources compile in MSVC mode"

n=0
for f in "$src"/examples/*.c; do
    clang "${flags[@]}" -std=c11 -D_WIN32_WINNT=0x0601 "$f"
    n=$((n + 1))
done
echo "check_msvc: $n examples compile in MSVC mode"
