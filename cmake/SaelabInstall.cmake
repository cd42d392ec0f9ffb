# Installs the framework, the executable, the plugins and an exported CMake package, so that
# out-of-tree plugins can write find_package(saelab) and saelab_add_plugin(...).
include(CMakePackageConfigHelpers)
install(TARGETS saelab_framework EXPORT saelabTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS saelab RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY framework/include/saelab DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT saelabTargets NAMESPACE saelab:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/saelab)
configure_package_config_file(cmake/saelabConfig.cmake.in
  "${CMAKE_BINARY_DIR}/saelabConfig.cmake"
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/saelab)
write_basic_package_version_file("${CMAKE_BINARY_DIR}/saelabConfigVersion.cmake"
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES "${CMAKE_BINARY_DIR}/saelabConfig.cmake" "${CMAKE_BINARY_DIR}/saelabConfigVersion.cmake"
  cmake/SaelabPlugin.cmake DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/saelab)
