#!/usr/bin/env bash
# Installs libmio into a temporary prefix and builds tests/consumer against
# the installed copy, through pkg-config and through find_package(mio)
# (shared and static), then runs each program.  Also checks the shared
# library's soname and that it exports public mio_ names only.  Where
# mingw-w64 and wine are installed, does the same for the Windows build:
# libmio.dll exports the API only, a program linking it imports through
# dllimport, one linking libmio.a exports nothing, and both run under wine.
#
#   tools/check_install.sh            (CC and CMAKE_GENERATOR are honoured)
set -euo pipefail

src=$(cd "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mio-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
cc=${CC:-cc}

fail() { echo "check_install: $*" >&2; exit 1; }
step() { echo "check_install: $*"; }

step "build and install into $prefix"
cmake -S "$src" -B "$tmp/build" -DCMAKE_BUILD_TYPE=Release \
      -DMIO_BUILD_TESTS=OFF -DMIO_BUILD_EXAMPLES=OFF >"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "configure failed"; }
cmake --build "$tmp/build" -j2 >"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "build failed"; }
cmake --install "$tmp/build" --prefix "$prefix" >"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "install failed"; }

so=$(find "$prefix" -name 'libmio.so' | head -n1)
[[ -n $so ]] || fail "no libmio.so installed"
libdir=$(dirname "$so")
for f in "$prefix/include/mio.h" "$libdir/libmio.a" "$libdir/pkgconfig/mio.pc" \
         "$libdir/cmake/mio/mioConfig.cmake" "$libdir/cmake/mio/mioConfigVersion.cmake"; do
    [[ -f $f ]] || fail "$f not installed"
done

soname=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[[ $soname == libmio.so.0 ]] || fail "soname is '$soname', not libmio.so.0"
[[ -e $libdir/$soname ]] || fail "$soname not installed"
step "soname $soname -> $(readlink "$libdir/$soname")"

leaks=$(nm -D --defined-only "$so" | awk '{ print $NF }' | grep -Ev '^mio_[a-z]' || true)
[[ -z $leaks ]] || fail "exported beyond the public API: $leaks"
internal=$(nm -D --defined-only "$so" | awk '{ print $NF }' | grep -E '^mio__' || true)
[[ -z $internal ]] || fail "internal names exported: $internal"
step "$(nm -D --defined-only "$so" | grep -c ' T ') public functions exported, nothing else"

step "pkg-config"
export PKG_CONFIG_PATH=$libdir/pkgconfig
[[ $(pkg-config --modversion mio) == "$(sed -n 's/^project(mio VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")" ]] ||
    fail "pkg-config --modversion mio says $(pkg-config --modversion mio)"
# shellcheck disable=SC2046
"$cc" -std=c11 -Wall -Wextra -Werror -o "$tmp/consumer-pc" "$src/tests/consumer/main.c" \
      $(pkg-config --cflags --libs mio) -Wl,-rpath,"$libdir"
"$tmp/consumer-pc" || fail "the pkg-config build did not run"

for kind in shared static; do
    step "find_package(mio), $kind"
    static=OFF
    [[ $kind == static ]] && static=ON
    cmake -S "$src/tests/consumer" -B "$tmp/consumer-$kind" -DCMAKE_PREFIX_PATH="$prefix" \
          -DMIO_STATIC=$static >"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "find_package(mio) failed"; }
    cmake --build "$tmp/consumer-$kind" >"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "consumer build failed"; }
    "$tmp/consumer-$kind/consumer" || fail "the find_package build ($kind) did not run"
done
ldd "$tmp/consumer-static/consumer" >"$tmp/log"
if grep -q libmio "$tmp/log"; then
    fail "the static consumer links libmio.so"
fi

if ! command -v x86_64-w64-mingw32-gcc >/dev/null || ! command -v wine >/dev/null; then
    step "Windows: skipped (needs gcc-mingw-w64-x86-64 and wine)"
    step "ok"
    exit 0
fi
step "Windows: build and install into $tmp/win-prefix"
toolchain=$src/cmake/mingw-w64.cmake
objdump=x86_64-w64-mingw32-objdump
cmake -S "$src" -B "$tmp/win-build" -DCMAKE_TOOLCHAIN_FILE="$toolchain" -DCMAKE_BUILD_TYPE=Release \
      -DMIO_BUILD_TESTS=OFF -DMIO_BUILD_EXAMPLES=OFF >"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "Windows configure failed"; }
cmake --build "$tmp/win-build" -j2 >"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "Windows build failed"; }
cmake --install "$tmp/win-build" --prefix "$tmp/win-prefix" >"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "Windows install failed"; }
dll=$tmp/win-prefix/bin/libmio.dll
[[ -f $dll ]] || fail "no bin/libmio.dll installed"

# The names in a PE file's export table (none when it has no table).
exports() { "$objdump" -p "$1" | sed -n '/\[Ordinal\/Name Pointer\] Table/,/^$/p' | awk '/^[[:space:]]+\[ *[0-9]+\]/ { print $NF }'; }
exports "$dll" >"$tmp/exports"
[[ -s $tmp/exports ]] || fail "libmio.dll exports nothing"
leaks=$(grep -Ev '^mio_[a-z]' "$tmp/exports" || true)
[[ -z $leaks ]] || fail "libmio.dll exports beyond the public API: $leaks"
step "libmio.dll exports $(wc -l <"$tmp/exports") public functions, nothing else"

export WINEPREFIX=$tmp/wineprefix WINEDEBUG=-all
unset DISPLAY
trap 'wineserver -k >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
"$src/tools/wine_start.sh" || fail "no usable wine prefix"
for kind in shared static; do
    step "Windows: find_package(mio), $kind"
    static=OFF
    [[ $kind == static ]] && static=ON
    cmake -S "$src/tests/consumer" -B "$tmp/win-consumer-$kind" -DCMAKE_TOOLCHAIN_FILE="$toolchain" \
          -DCMAKE_PREFIX_PATH="$tmp/win-prefix" -DMIO_STATIC=$static >"$tmp/log" 2>&1 ||
        { cat "$tmp/log"; fail "Windows find_package(mio) failed"; }
    cmake --build "$tmp/win-consumer-$kind" >"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "Windows consumer build failed"; }
    exe=$tmp/win-consumer-$kind/consumer.exe
    obj=$(find "$tmp/win-consumer-$kind" -name 'main.c.obj' | head -n1)
    headers=$("$objdump" -p "$exe")
    if [[ $kind == shared ]]; then
        [[ $(x86_64-w64-mingw32-nm "$obj") == *" U __imp_mio_poll_new"* ]] ||
            fail "the DLL consumer does not call through dllimport"
        [[ $headers == *"DLL Name: libmio.dll"* ]] || fail "the DLL consumer does not import libmio.dll"
        cp "$dll" "$tmp/win-consumer-$kind/"
    else
        [[ -z $(exports "$exe") ]] || fail "the static consumer exports: $(exports "$exe" | head -n3)"
        [[ $headers != *"DLL Name: libmio.dll"* ]] || fail "the static consumer imports libmio.dll"
    fi
    out=$(wine "$exe" </dev/null 2>&1) || fail "the Windows $kind consumer did not run: $out"
    [[ $out == *" iocp ok"* ]] || fail "the Windows $kind consumer said: $out"
    echo "$out"
done
step "ok"
