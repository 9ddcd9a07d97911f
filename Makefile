# Thin wrapper over CMake: `make demo` runs the echo demo, `make test` runs
# every test (plain, ASan+UBSan, TSan, valgrind, kqueue through libkqueue);
# `make install PREFIX=...` builds and installs the library alone (header,
# libraries, mio.pc, CMake packages, man pages), `make docs` renders the
# reference and guide with Doxygen.
#
#   JOBS=N           parallel compile and test jobs (default 2)
#   BUILD=dir        the main build tree (default build)
#   PREFIX=dir       where `make install` installs (default /usr/local)
#   CMAKE_ARGS=...   more options for every CMake configure here, e.g.
#                    CMAKE_ARGS="-DMIO_URING=OFF -DCMAKE_C_COMPILER=clang"
#                    (not the Windows cross-build, whose toolchain file picks
#                    the compiler)
JOBS     ?= 2
BUILD    ?= build
PREFIX   ?= /usr/local
CMAKE_ARGS ?=
CTEST    := ctest --output-on-failure -j$(JOBS)
VALGRIND := valgrind;--error-exitcode=9;--leak-check=full;--errors-for-leak-kinds=definite;--track-fds=no;--quiet

# Optional tools: a target that needs one that is missing says so in one
# line, naming the Debian package, and succeeds.
HAVE_SANITIZERS = printf 'int main(void) { return 0; }\n' | \
    clang -x c -fsanitize=$(1) -o /dev/null - >/dev/null 2>&1
# libFuzzer brings its own main: its probe defines the entry point instead.
HAVE_FUZZER = printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' | \
    clang -x c -fsanitize=fuzzer,address -o /dev/null - >/dev/null 2>&1
SANITIZERS_MISSING = echo "$(1): skipped (needs clang and its sanitizer runtimes: apt-get install clang libclang-rt-14-dev)"

comma := ,
FUZZ_SECONDS ?= 60
FUZZ_LONG_SECONDS ?= 3600
SOAK_SECONDS ?= 300

.PHONY: all demo test test-windows-if-available test-plain test-asan test-tsan test-valgrind test-kqueue test-windows bench bench-multicore bench-datagrams stress soak fuzz fuzz-long clean install docs check-install check-msvc

all:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS)
	cmake --build $(BUILD) -j$(JOBS)

demo: all
	tools/demo.sh $(BUILD)

test: test-plain test-asan test-tsan test-valgrind test-kqueue test-windows-if-available

# The Windows backend runs under wine when mingw-w64 and wine are installed
# (CI installs them); elsewhere it is skipped with a line saying so.
test-windows-if-available:
	@if command -v x86_64-w64-mingw32-gcc >/dev/null && command -v wine >/dev/null; then \
	    $(MAKE) test-windows; \
	else \
	    echo "test-windows: skipped (needs gcc-mingw-w64-x86-64 and wine)"; \
	fi

test-plain: all
	cd $(BUILD) && $(CTEST)

test-asan:
	@if ! $(call HAVE_SANITIZERS,address$(comma)undefined); then $(call SANITIZERS_MISSING,test-asan); exit 0; fi; \
	set -ex; \
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang -DMIO_SANITIZE=address $(CMAKE_ARGS); \
	cmake --build build-asan -j$(JOBS); \
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 $(CTEST)

test-tsan:
	@if ! $(call HAVE_SANITIZERS,thread); then $(call SANITIZERS_MISSING,test-tsan); exit 0; fi; \
	set -ex; \
	cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang -DMIO_SANITIZE=thread $(CMAKE_ARGS); \
	cmake --build build-tsan -j$(JOBS); \
	cd build-tsan && TSAN_OPTIONS=halt_on_error=1 MIO_TEST_SCALE=10 $(CTEST)

# valgrind runs every test on the default backend only: the others' memory is
# checked by the ASan+UBSan build, and valgrind's slowness would double.  (The
# uring backend could not run there anyway: valgrind holds its thread lock
# across io_uring_enter, so the tests skip it under valgrind, saying why.)
test-valgrind:
	@if ! command -v valgrind >/dev/null; then echo "test-valgrind: skipped (needs valgrind: apt-get install valgrind)"; exit 0; fi; \
	set -ex; \
	cmake -S . -B build-valgrind -DCMAKE_BUILD_TYPE=Debug '-DMIO_TEST_WRAPPER=$(VALGRIND)' -DMIO_TEST_BACKENDS=default $(CMAKE_ARGS); \
	cmake --build build-valgrind -j$(JOBS); \
	cd build-valgrind && MIO_TEST_SCALE=10 $(CTEST)

# The whole suite on the kqueue backend, through libkqueue built from
# ../shared/third_party (the `shared` directory next to this repository);
# skipped with a line saying so where that is missing.  The plain build by
# default; KQUEUE_BUILDS="plain asan" adds ASan+UBSan, two or three minutes
# that CI, which must finish within 30, cannot spare.
KQUEUE_BUILDS ?= plain
test-kqueue:
	JOBS=$(JOBS) CMAKE_ARGS='$(CMAKE_ARGS)' tools/kqueue_tests.sh $(KQUEUE_BUILDS)

# Builds what is installed and nothing else (not the tests, not the
# examples), in the main build tree.  With a PREFIX whose lib directory the
# dynamic loader does not search, it says what programs need to start.
install:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS)
	cmake --build $(BUILD) -j$(JOBS) --target mio_installed
	cmake --install $(BUILD) --prefix $(PREFIX)

docs:
	cmake -S . -B $(BUILD) $(CMAKE_ARGS)
	cmake --build $(BUILD) --target docs

check-install:
	tools/check_install.sh

check-msvc:
	tools/check_msvc.sh

# Benchmarks against hand-written epoll, libev, libevent and libuv (each
# skipped when not installed); writes bench/RESULTS.md.  QUICK=1: < 2 min.
bench:
	@if ! command -v python3 >/dev/null; then echo "$@: skipped (needs python3: apt-get install python3)"; exit 0; fi; \
	set -ex; \
	cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMIO_BUILD_BENCH=ON -DMIO_BUILD_TESTS=OFF -DMIO_BUILD_EXAMPLES=OFF $(CMAKE_ARGS); \
	cmake --build build-bench -j$(JOBS); \
	python3 bench/run.py build-bench $(if $(QUICK),--quick)

# The multi-core section of bench/RESULTS.md alone (the group of loops).
bench-multicore:
	@if ! command -v python3 >/dev/null; then echo "$@: skipped (needs python3: apt-get install python3)"; exit 0; fi; \
	set -ex; \
	cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMIO_BUILD_BENCH=ON -DMIO_BUILD_TESTS=OFF -DMIO_BUILD_EXAMPLES=OFF $(CMAKE_ARGS); \
	cmake --build build-bench -j$(JOBS); \
	python3 bench/run.py build-bench --only multicore $(if $(QUICK),--quick)

# The datagram section of bench/RESULTS.md alone (batches, GSO, GRO).
bench-datagrams:
	@if ! command -v python3 >/dev/null; then echo "$@: skipped (needs python3: apt-get install python3)"; exit 0; fi; \
	set -ex; \
	cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMIO_BUILD_BENCH=ON -DMIO_BUILD_TESTS=OFF -DMIO_BUILD_EXAMPLES=OFF $(CMAKE_ARGS); \
	cmake --build build-bench -j$(JOBS); \
	python3 bench/run.py build-bench --only datagrams $(if $(QUICK),--quick)

# Long reliability runs: descriptor exhaustion, signals, every connection the
# descriptor limit allows (stress/run.sh).
stress: all
	stress/run.sh $(BUILD)

# A mixed workload in one process for SOAK_SECONDS (default 5 minutes):
# connections churning, timers, a channel fed from another thread, signals
# to itself (stress/soak.c).  Prints RSS and open descriptors at the start,
# every tenth of the time and at the end, and fails if after its warm-up
# RSS grew by more than 2 MiB or the descriptors changed at all.
soak: all
	stress/run.sh $(BUILD) soak $(SOAK_SECONDS)

# Each libFuzzer target for FUZZ_SECONDS (needs clang and its runtimes).
fuzz:
	@if ! $(HAVE_FUZZER); then $(call SANITIZERS_MISSING,fuzz); exit 0; fi; \
	$(MAKE) -C fuzz run FUZZ_SECONDS=$(FUZZ_SECONDS) OUT=$(CURDIR)/build-fuzz

# Each libFuzzer target for FUZZ_LONG_SECONDS (default an hour), one after the
# other, printing executions, rate and coverage (cov: edges, ft: features)
# per target; a finding fails it.  The corpus grows in build-fuzz/long-<name>
# from one run to the next.  FUZZ_TARGETS=fuzz_loop runs only that one;
# FUZZ_LONG_RUNS=10000000 stops each after that many executions;
# FUZZ_MAX_LEN=512 caps inputs (4096 by default).
fuzz-long:
	@if ! $(HAVE_FUZZER); then $(call SANITIZERS_MISSING,fuzz-long); exit 0; fi; \
	$(MAKE) -C fuzz long FUZZ_LONG_SECONDS=$(FUZZ_LONG_SECONDS) OUT=$(CURDIR)/build-fuzz \
	    $(if $(FUZZ_TARGETS),TARGETS="$(FUZZ_TARGETS)") $(if $(FUZZ_LONG_RUNS),FUZZ_LONG_RUNS=$(FUZZ_LONG_RUNS)) \
	    $(if $(FUZZ_MAX_LEN),FUZZ_MAX_LEN=$(FUZZ_MAX_LEN))

# Cross-builds for Windows with mingw-w64 and runs the tests under wine, in a
# prefix of its own.  wine's background server is started first with none of
# ctest's streams (ctest would otherwise wait for it to exit), stopped after.
# Socket and handle calls all go through that one server: stress loops are
# scaled down as under valgrind.  The examples are built too: test_examples
# runs them.
WINDOWS_BUILD := build-windows
# wine's server now and then drops a client mid-test ("wine client error ...
# recvmsg"): a test that fails that way gets one more run.
test-windows:
	cmake -S . -B $(WINDOWS_BUILD) -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64.cmake -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMIO_BUILD_EXAMPLES=ON
	cmake --build $(WINDOWS_BUILD) -j$(JOBS)
	export WINEPREFIX="$(abspath $(WINDOWS_BUILD))/wineprefix" WINEDEBUG=-all; unset DISPLAY; \
	tools/wine_start.sh && \
	cd $(WINDOWS_BUILD) && MIO_TEST_SCALE=10 $(CTEST) --repeat until-pass:2; rc=$$?; wineserver -k; exit $$rc

clean:
	rm -rf $(BUILD) build-asan build-tsan build-valgrind build-kqueue build-kqueue-asan build-fuzz $(WINDOWS_BUILD)
