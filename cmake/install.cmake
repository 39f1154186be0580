# Install rules and the package config that makes find_package(dynrnn) work.
include(CMakePackageConfigHelpers)

install(TARGETS dynrnn EXPORT dynrnnTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/dynrnn DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT dynrnnTargets NAMESPACE dynrnn:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/dynrnn)

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/dynrnnConfig.cmake.in
  ${PROJECT_BINARY_DIR}/dynrnnConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/dynrnn)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/dynrnnConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/dynrnnConfig.cmake ${PROJECT_BINARY_DIR}/dynrnnConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/dynrnn)
