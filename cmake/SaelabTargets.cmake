# What every first-party target gets: warnings, sanitizers, ccache and the shared precompiled
# header. Applied per target through saelab_target_defaults(), never through global flags.
add_library(saelab_warnings INTERFACE)
add_library(saelab::warnings ALIAS saelab_warnings)
target_compile_options(saelab_warnings INTERFACE
  -Wall -Wextra -Wpedantic $<$<CXX_COMPILER_ID:GNU>:-Wshadow=local> -Wnon-virtual-dtor -Wno-unused-parameter
  $<$<BOOL:${SAELAB_WERROR}>:-Werror>)

# RelWithDebInfo keeps line tables and function names (backtraces, profilers) but not full
# variable-level DWARF: -g1 compiles LibTorch-heavy sources in about 70% of the time -g takes.
# Placed after CMake's -g, so it wins; Debug builds keep -g.
add_library(saelab_debuginfo INTERFACE)
target_compile_options(saelab_debuginfo INTERFACE $<$<CONFIG:RelWithDebInfo>:-g1>)

add_library(saelab_sanitizers INTERFACE)
add_library(saelab::sanitizers ALIAS saelab_sanitizers)
if(SAELAB_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "SAELAB_FUZZ=ON needs clang (libFuzzer), not ${CMAKE_CXX_COMPILER_ID}: configure "
                        "with -DCMAKE_CXX_COMPILER=clang++-14, as scripts/fuzz.sh does")
  endif()
  # Coverage instrumentation for every first-party target; the fuzz executables add the driver.
  target_compile_options(saelab_sanitizers INTERFACE -fsanitize=fuzzer-no-link)
endif()
if(SAELAB_SANITIZE OR SAELAB_FUZZ)
  target_compile_options(saelab_sanitizers INTERFACE
    -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_link_options(saelab_sanitizers INTERFACE -fsanitize=address,undefined)
endif()

set(SAELAB_CCACHE_LAUNCHER "")
if(SAELAB_CCACHE)
  find_program(SAELAB_CCACHE_PROGRAM ccache)
  if(SAELAB_CCACHE_PROGRAM)
    # A precompiled header is only cacheable with this sloppiness; the mtime/ctime entries let
    # a clean build (whose .gch is seconds old) fill the cache too.
    set(SAELAB_CCACHE_LAUNCHER "${CMAKE_COMMAND}" -E env
      "CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime"
      "${SAELAB_CCACHE_PROGRAM}")
    message(STATUS "saelab: compiling through ${SAELAB_CCACHE_PROGRAM}")
  endif()
endif()

# Every first-party target calls this once. Targets other than the framework reuse the
# framework's precompiled header, which GCC accepts only when the flags that shape it agree:
# OpenMP comes with the framework (PUBLIC), -pthread too for clang, and -fPIC is given to executables and static
# libraries too (the framework is a shared library; GCC refuses a -fPIC header under -fPIE).
function(saelab_target_defaults target)
  target_link_libraries(${target} PRIVATE saelab_warnings saelab_sanitizers saelab_debuginfo)
  if(SAELAB_CCACHE_LAUNCHER)
    set_target_properties(${target} PROPERTIES CXX_COMPILER_LAUNCHER "${SAELAB_CCACHE_LAUNCHER}")
  endif()
  if(SAELAB_PCH AND NOT target STREQUAL "saelab_framework" AND TARGET saelab_framework)
    target_precompile_headers(${target} REUSE_FROM saelab_framework)
    # Clang refuses a header built with -pthread (the framework links Threads) in a TU without it.
    if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
      target_compile_options(${target} PRIVATE -pthread)
    endif()
    get_target_property(_type ${target} TYPE)
    if(_type STREQUAL "EXECUTABLE" OR _type STREQUAL "STATIC_LIBRARY" OR _type STREQUAL "OBJECT_LIBRARY")
      target_compile_options(${target} PRIVATE -fPIC)
    endif()
  endif()
endfunction()
