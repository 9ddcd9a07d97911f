#!/usr/bin/env bash
# Installs libmio into a temporary prefix and builds tests/consumer against
# the installed copy, through pkg-config and through find_package(mio)
# (shared and static), then runs each program.  Also checks the shared
# library's soname and that it exports public mio_ names only.
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
step "ok"
