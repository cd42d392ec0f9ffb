# saelab_add_plugin(<name> SOURCES ... [LIBRARIES ...] [OUTPUT_DIR dir] [NO_INSTALL])
#
# The one way every plugin is created, in this tree and out of it (find_package(saelab) provides it).
# Produces a MODULE library named libsaelab_plugin_<name>.so, which is the file name the host scans
# for, linked against the shared framework so host and plugin share one registry.
function(saelab_add_plugin name)
  cmake_parse_arguments(ARG "NO_INSTALL" "OUTPUT_DIR" "SOURCES;LIBRARIES;DEFINITIONS" ${ARGN})
  set(target saelab_plugin_${name})
  add_library(${target} MODULE ${ARG_SOURCES})
  add_library(saelab::plugin_${name} ALIAS ${target})
  target_link_libraries(${target} PRIVATE saelab::framework ${ARG_LIBRARIES})
  target_compile_definitions(${target} PRIVATE ${ARG_DEFINITIONS})
  if(NOT ARG_OUTPUT_DIR)
    if(DEFINED SAELAB_PLUGIN_BUILD_DIR)
      set(ARG_OUTPUT_DIR "${SAELAB_PLUGIN_BUILD_DIR}")
    else()
      set(ARG_OUTPUT_DIR "${CMAKE_BINARY_DIR}/plugins")
    endif()
  endif()
  set_target_properties(${target} PROPERTIES
    PREFIX "lib"
    OUTPUT_NAME "saelab_plugin_${name}"
    LIBRARY_OUTPUT_DIRECTORY "${ARG_OUTPUT_DIR}"
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(COMMAND saelab_target_defaults)
    saelab_target_defaults(${target})
  endif()
  if(NOT ARG_NO_INSTALL AND DEFINED SAELAB_PLUGIN_INSTALL_DIR)
    # Installed, a plugin finds libsaelab.so.0 relative to itself, from any prefix.
    file(RELATIVE_PATH _plugin_to_lib "/${SAELAB_PLUGIN_INSTALL_DIR}" "/${CMAKE_INSTALL_LIBDIR}")
    set_target_properties(${target} PROPERTIES INSTALL_RPATH "$ORIGIN/${_plugin_to_lib}")
    install(TARGETS ${target} LIBRARY DESTINATION "${SAELAB_PLUGIN_INSTALL_DIR}")
  endif()
endfunction()
