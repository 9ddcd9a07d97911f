# Run by `cmake --install` (and `make install`) after the libraries are in
# place, on Linux: a program linked with -lmio starts only if the dynamic
# loader finds libmio.so.0.  In a directory the loader searches through its
# cache (/usr/local/lib on Debian), the cache is refreshed when we may
# (root), else we say how; in a directory it does not search (a prefix like
# $HOME/.local or /opt/mio), we say what a program needs instead.  Nothing
# for a staged install (DESTDIR): a package's own scripts run ldconfig.
if(NOT "$ENV{DESTDIR}" STREQUAL "")
  return()
endif()
if(IS_ABSOLUTE "${MIO_LIBDIR}")
  set(libdir "${MIO_LIBDIR}")
else()
  set(libdir "${CMAKE_INSTALL_PREFIX}/${MIO_LIBDIR}")
endif()
get_filename_component(libdir "${libdir}" REALPATH)

find_program(mio_ldconfig ldconfig PATHS /sbin /usr/sbin /usr/local/sbin)
if(NOT mio_ldconfig)
  return()
endif()
# The directories the loader's cache covers (-N -X: read only) and those it
# always searches.
execute_process(COMMAND ${mio_ldconfig} -v -N -X OUTPUT_VARIABLE out ERROR_QUIET RESULT_VARIABLE rc)
string(REGEX MATCHALL "(^|\n)/[^:\n]*:" dirs "${out}")
set(cached FALSE)
foreach(d ${dirs})
  string(REGEX REPLACE "^\n?(/[^:]*):$" "\\1" d "${d}")
  get_filename_component(d "${d}" REALPATH)
  if(d STREQUAL libdir)
    set(cached TRUE)
  endif()
endforeach()
set(builtin FALSE)
foreach(d /lib /usr/lib /lib64 /usr/lib64)
  get_filename_component(d "${d}" REALPATH)
  if(d STREQUAL libdir)
    set(builtin TRUE)
  endif()
endforeach()
if(builtin)
  return()
endif()
if(cached)
  execute_process(COMMAND ${mio_ldconfig} RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
  if(rc EQUAL 0)
    message(STATUS "Ran ldconfig: the dynamic loader finds libmio.so.0 in ${libdir}")
  else()
    message(NOTICE "libmio.so.0 is in ${libdir}, which the dynamic loader finds through its cache:\n"
                   "run ldconfig as root before starting programs linked with -lmio.")
  endif()
  return()
endif()
message(NOTICE
  "libmio.so.0 is in ${libdir}, where the dynamic loader does not look.  Programs\n"
  "linked with -lmio from there start with an rpath, given when linking them:\n"
  "  export PKG_CONFIG_PATH=${libdir}/pkgconfig\n"
  "  cc app.c $(pkg-config --cflags --libs mio) -Wl,-rpath,$(pkg-config --variable=libdir mio)\n"
  "or with LD_LIBRARY_PATH=${libdir} when they run, or once ${libdir} is in a\n"
  "file of /etc/ld.so.conf.d and ldconfig has run (as root).  CMake programs\n"
  "(find_package(libmio) with CMAKE_PREFIX_PATH=${CMAKE_INSTALL_PREFIX}) have the rpath in their\n"
  "build tree.  docs/building.md, \"Running programs against an installed libmio\", says more.")
