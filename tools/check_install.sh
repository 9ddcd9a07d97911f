#!/usr/bin/env bash
# Installs libmio into a temporary prefix the way `make install` does, and
# checks what a user gets there:
# - make install builds the library and what is installed, not the tests or
#   the examples, and says where the dynamic loader will not look;
# - the shared library's soname, and that it exports public mio_ names only;
# - tests/consumer built against the installed copy and run: through
#   pkg-config with the rpath docs/building.md shows, and with
#   LD_LIBRARY_PATH instead; through find_package(libmio) and through
#   find_package(mio), each shared and static;
# - a man page for every function and type mio.h declares (and no other
#   page but libmio(3)), each of which renders without a warning.
# Where mingw-w64 and wine are installed, does the same for the Windows
# build: libmio.dll exports the API only, a program linking it imports
# through dllimport, one linking libmio.a exports nothing, and both run
# under wine.  A missing optional tool skips its part with a line naming
# the package.
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

step "make install into $prefix"
make -C "$src" --no-print-directory install BUILD="$tmp/build" PREFIX="$prefix" JOBS=2 \
     CMAKE_ARGS="-DCMAKE_BUILD_TYPE=Release" >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log"; fail "make install failed"; }
built=$(find "$tmp/build" -maxdepth 1 -type f -perm -u+x \( -name 'test_*' -o -name echo_server \) | head -n3)
[[ -z $built ]] || fail "make install built what it does not install: $built"

so=$(find "$prefix" -name 'libmio.so' | head -n1)
[[ -n $so ]] || fail "no libmio.so installed"
libdir=$(dirname "$so")
for f in "$prefix/include/mio.h" "$libdir/libmio.a" "$libdir/pkgconfig/mio.pc" \
         "$libdir/cmake/libmio/libmioConfig.cmake" "$libdir/cmake/libmio/libmioConfigVersion.cmake" \
         "$libdir/cmake/mio/mioConfig.cmake" "$libdir/cmake/mio/mioConfigVersion.cmake" \
         "$prefix/share/man/man3/libmio.3"; do
    [[ -f $f ]] || fail "$f not installed"
done
grep -q "where the dynamic loader does not look" "$tmp/install.log" ||
    fail "make install did not say that the loader will not find $libdir"

soname=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[[ $soname == libmio.so.0 ]] || fail "soname is '$soname', not libmio.so.0"
[[ -e $libdir/$soname ]] || fail "$soname not installed"
step "soname $soname -> $(readlink "$libdir/$soname")"

leaks=$(nm -D --defined-only "$so" | awk '{ print $NF }' | grep -Ev '^mio_[a-z]' || true)
[[ -z $leaks ]] || fail "exported beyond the public API: $leaks"
internal=$(nm -D --defined-only "$so" | awk '{ print $NF }' | grep -E '^mio__' || true)
[[ -z $internal ]] || fail "internal names exported: $internal"
step "$(nm -D --defined-only "$so" | grep -c ' T ') public functions exported, nothing else"

# The runtime path, as docs/building.md says: the rpath pkg-config's libdir
# gives, or LD_LIBRARY_PATH.  Without either the program cannot start
# (unless another libmio.so.0 is in the loader's path).
if command -v pkg-config >/dev/null; then
    step "pkg-config"
    export PKG_CONFIG_PATH=$libdir/pkgconfig
    [[ $(pkg-config --modversion mio) == "$(sed -n 's/^project(mio VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")" ]] ||
        fail "pkg-config --modversion mio says $(pkg-config --modversion mio)"
    # shellcheck disable=SC2046
    "$cc" -std=c11 -Wall -Wextra -Werror -o "$tmp/consumer-pc" "$src/tests/consumer/main.c" \
          $(pkg-config --cflags --libs mio) -Wl,-rpath,"$(pkg-config --variable=libdir mio)"
    loaded=$(ldd "$tmp/consumer-pc" | sed -n 's/.*libmio\.so\.0 => \(.*\) (0x.*/\1/p')
    [[ -n $loaded && $(realpath "$loaded") == $(realpath "$libdir/libmio.so.0") ]] ||
        fail "the rpath build does not load $libdir/libmio.so.0: $(ldd "$tmp/consumer-pc" | grep libmio)"
    "$tmp/consumer-pc" || fail "the pkg-config build with an rpath did not run"
    # shellcheck disable=SC2046
    "$cc" -std=c11 -o "$tmp/consumer-plain" "$src/tests/consumer/main.c" $(pkg-config --cflags --libs mio)
    if ldd "$tmp/consumer-plain" | grep -q "libmio.so.0 => not found"; then
        step "without an rpath: libmio.so.0 not found, as docs/building.md says"
    else
        step "without an rpath: another libmio.so.0 is in the loader's path ($(ldd "$tmp/consumer-plain" | grep libmio | xargs))"
    fi
    LD_LIBRARY_PATH=$(pkg-config --variable=libdir mio) "$tmp/consumer-plain" ||
        fail "the pkg-config build did not run with LD_LIBRARY_PATH"
else
    step "pkg-config: skipped (needs pkg-config: apt-get install pkg-config)"
fi

for package in libmio mio; do
    for kind in shared static; do
        step "find_package($package), $kind"
        static=OFF
        [[ $kind == static ]] && static=ON
        dir=$tmp/consumer-$package-$kind
        cmake -S "$src/tests/consumer" -B "$dir" -DCMAKE_PREFIX_PATH="$prefix" -DMIO_PACKAGE=$package \
              -DMIO_STATIC=$static >"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "find_package($package) failed"; }
        cmake --build "$dir" >"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "consumer build failed"; }
        "$dir/consumer" || fail "the find_package($package) build ($kind) did not run"
    done
    ldd "$tmp/consumer-$package-static/consumer" >"$tmp/log"
    if grep -q libmio "$tmp/log"; then
        fail "the static consumer of find_package($package) links libmio.so"
    fi
done

# Man pages.  The header's functions and types, found here by the compiler
# rather than by the generator: what MIO_API marks, and the typedefs.
step "man pages"
mandir=$prefix/share/man
"$cc" -E -P -x c "$prefix/include/mio.h" | tr '\n' ' ' >"$tmp/mio.i"
tr ';' '\n' <"$tmp/mio.i" | grep -F '__attribute__((visibility("default")))' |
    sed 's/__attribute__((visibility("default")))//; s/(.*//' | awk '{ n = $NF; sub(/^\*+/, "", n); print n }' |
    sort -u >"$tmp/functions"
awk '{
    depth = 0; st = ""
    for (i = 1; i <= length($0); i++) {
        c = substr($0, i, 1)
        if (c == "{") depth++
        if (c == "}") depth--
        if (c == ";" && depth == 0) {
            if (st ~ /^ *typedef /) {
                if (st ~ /}/) { name = st; sub(/.*}/, "", name) }
                else if (match(st, /\(\* *[A-Za-z_][A-Za-z0-9_]*/)) name = substr(st, RSTART + 2, RLENGTH - 2)
                else { sub(/(\[[^]]*\])+ *$/, "", st); name = st; sub(/.*[^A-Za-z0-9_]/, "", name) }
                gsub(/ /, "", name)
                if (name ~ /^mio_/) print name
            }
            st = ""
        } else st = st c
    }
}' "$tmp/mio.i" | sort -u >"$tmp/types"
nfunc=$(wc -l <"$tmp/functions")
[[ $nfunc -gt 50 ]] || fail "found only $nfunc functions in mio.h"
(cd "$mandir/man3" && ls) | sed 's/\.3$//' | sort >"$tmp/pages"
missing=$(comm -23 <(sort -u "$tmp/functions" "$tmp/types") "$tmp/pages" | xargs)
[[ -z $missing ]] || fail "no man page for: $missing"
extra=$(comm -13 <(printf '%s\n' libmio | sort -u - "$tmp/functions" "$tmp/types") "$tmp/pages" | xargs)
[[ -z $extra ]] || fail "man pages for what mio.h does not declare: $extra"
nfuncpages=$(comm -12 "$tmp/functions" "$tmp/pages" | wc -l)
[[ $nfuncpages -eq $nfunc ]] || fail "$nfuncpages function pages for $nfunc functions"
while read -r f; do
    page=$mandir/man3/$f.3
    grep -q "^$f \\\\- " "$page" || fail "$f.3 has no NAME line"
    grep -q "^\\\\fB.*[ *]$f(" "$page" || fail "$f.3 has no prototype"
done <"$tmp/functions"
step "$nfunc functions, $(wc -l <"$tmp/types") types, each with its page, and libmio(3)"
if command -v man >/dev/null; then
    out=$(MANWIDTH=80 man -M "$mandir" -P cat 3 mio_poll_wait 2>&1) || fail "man mio_poll_wait: $out"
    for want in "SYNOPSIS" "#include <mio.h>" "int mio_poll_wait(mio_poll *p" "RETURN VALUE" "SEE ALSO"; do
        [[ $out == *"$want"* ]] || fail "man mio_poll_wait does not say '$want'"
    done
    step "man -M $mandir mio_poll_wait renders"
else
    step "man: skipped (needs man-db: apt-get install man-db)"
fi
if command -v groff >/dev/null; then
    for page in "$mandir"/man3/*.3; do
        warnings=$(groff -man -Tutf8 -ww -z "$page" 2>&1)
        [[ -z $warnings ]] || fail "groff warns about $(basename "$page"): $warnings"
    done
    step "groff renders every page without a warning"
else
    step "groff: skipped (needs groff-base: apt-get install groff-base)"
fi
if command -v mandoc >/dev/null; then
    lint=$(mandoc -T lint -W warning "$mandir"/man3/*.3 2>&1 || true)
    [[ -z $lint ]] || fail "mandoc -T lint: $lint"
    step "mandoc -T lint: no warning"
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
    step "Windows: find_package(libmio), $kind"
    static=OFF
    [[ $kind == static ]] && static=ON
    cmake -S "$src/tests/consumer" -B "$tmp/win-consumer-$kind" -DCMAKE_TOOLCHAIN_FILE="$toolchain" \
          -DCMAKE_PREFIX_PATH="$tmp/win-prefix" -DMIO_STATIC=$static >"$tmp/log" 2>&1 ||
        { cat "$tmp/log"; fail "Windows find_package(libmio) failed"; }
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
