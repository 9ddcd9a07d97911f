# Cross-compiling for 64-bit Windows with mingw-w64:
#   cmake -S . -B build-windows -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64.cmake
# The executables and libmio.dll link libgcc and winpthreads statically, so
# they run (under wine too) without the toolchain's DLLs on the path.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(MIO_MINGW_PREFIX x86_64-w64-mingw32 CACHE STRING "mingw-w64 tool prefix")
set(CMAKE_C_COMPILER ${MIO_MINGW_PREFIX}-gcc)
set(CMAKE_RC_COMPILER ${MIO_MINGW_PREFIX}-windres)

set(CMAKE_FIND_ROOT_PATH /usr/${MIO_MINGW_PREFIX})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)

set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-static")

# Tests run under wine unless told otherwise (the tests' command line is
# $<TARGET_FILE:...>, which CMAKE_CROSSCOMPILING_EMULATOR does not reach, so
# wine becomes their wrapper).
find_program(MIO_WINE NAMES wine64 wine)
if(MIO_WINE)
  if(NOT DEFINED CMAKE_CROSSCOMPILING_EMULATOR)
    set(CMAKE_CROSSCOMPILING_EMULATOR ${MIO_WINE})
  endif()
  set(MIO_TEST_WRAPPER ${MIO_WINE} CACHE STRING "Command every test runs under")
endif()
