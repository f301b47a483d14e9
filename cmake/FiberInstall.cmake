# Installs the library, its headers, a CMake package (find_package(fiber)) and a
# pkg-config file (pkg-config --cflags --libs fiber).
include(CMakePackageConfigHelpers)

install(TARGETS fiber EXPORT fiberTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
foreach(layer fiber sched io)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${layer}/include/fiber
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
endforeach()
install(EXPORT fiberTargets NAMESPACE fiber::
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/fiber)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/fiberConfig.cmake.in
  ${PROJECT_BINARY_DIR}/fiberConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/fiber)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/fiberConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/fiberConfig.cmake ${PROJECT_BINARY_DIR}/fiberConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/fiber)
configure_file(${PROJECT_SOURCE_DIR}/cmake/fiber.pc.in ${PROJECT_BINARY_DIR}/fiber.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/fiber.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
