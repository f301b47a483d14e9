# Installs the runtime (fiber::fiber: the library, its public headers, a CMake
# package and fiber.pc) and, when built, the HTTP library as the component
# `http` (fiber::http, its headers and fiber-http.pc), the TLS library as the
# component `tls` (fiber::tls, fiber/tls*.h, fiber-tls.pc), and the libc hooks as
# the component `hook` (fiber::hook, fiber::hook_static, fiber/hook.h,
# fiber-hook.pc, fiber-hook-static.pc). Internal and testing
# headers (<layer>/internal, <layer>/testing) are never installed.
#
#   cmake --install build/install --prefix P                  # everything built
#   cmake --install build/install --prefix P --component runtime
include(CMakePackageConfigHelpers)

install(TARGETS fiber EXPORT fiberTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime)
foreach(layer fiber sched io)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${layer}/include/fiber
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT runtime)
endforeach()
install(EXPORT fiberTargets NAMESPACE fiber::
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/fiber COMPONENT runtime)

if(TARGET fiber_http)
  install(TARGETS fiber_http fiber_llhttp EXPORT fiberHttpTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT http)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/http/include/fiber
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT http)
  install(EXPORT fiberHttpTargets NAMESPACE fiber::
    DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/fiber COMPONENT http)
endif()

if(TARGET fiber_tls)
  install(TARGETS fiber_tls EXPORT fiberTlsTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT tls)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/tls/include/fiber
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT tls)
  install(EXPORT fiberTlsTargets NAMESPACE fiber::
    DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/fiber COMPONENT tls)
endif()

if(TARGET fiber_hook)
  install(TARGETS fiber_hook fiber_hook_archive fiber_hook_static EXPORT fiberHookTargets
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT hook
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT hook)
  install(FILES ${PROJECT_SOURCE_DIR}/hook/include/fiber/hook.h
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/fiber COMPONENT hook)
  install(EXPORT fiberHookTargets NAMESPACE fiber::
    DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/fiber COMPONENT hook)
endif()

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/fiberConfig.cmake.in
  ${PROJECT_BINARY_DIR}/fiberConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/fiber)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/fiberConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/fiberConfig.cmake ${PROJECT_BINARY_DIR}/fiberConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/fiber COMPONENT runtime)

# The .pc files find the prefix from their own place (${pcfiledir}), so that
# `cmake --install --prefix P` gives right paths whatever prefix was configured.
# FIBER_PC_UP is the way from <prefix>/<libdir>/pkgconfig up to <prefix>.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  message(FATAL_ERROR "fiber.pc: CMAKE_INSTALL_LIBDIR must be relative to the prefix")
endif()
file(RELATIVE_PATH FIBER_PC_UP /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
configure_file(${PROJECT_SOURCE_DIR}/cmake/fiber.pc.in ${PROJECT_BINARY_DIR}/fiber.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/fiber.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT runtime)
if(TARGET fiber_hook)
  list(JOIN FIBER_HOOK_WRAP_OPTIONS " " FIBER_HOOK_WRAP_PC)
  foreach(pc fiber-hook fiber-hook-static)
    configure_file(${PROJECT_SOURCE_DIR}/cmake/${pc}.pc.in ${PROJECT_BINARY_DIR}/${pc}.pc @ONLY)
    install(FILES ${PROJECT_BINARY_DIR}/${pc}.pc
      DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT hook)
  endforeach()
endif()
if(TARGET fiber_tls)
  configure_file(${PROJECT_SOURCE_DIR}/cmake/fiber-tls.pc.in ${PROJECT_BINARY_DIR}/fiber-tls.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/fiber-tls.pc
    DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT tls)
endif()
if(TARGET fiber_http)
  configure_file(${PROJECT_SOURCE_DIR}/cmake/fiber-http.pc.in ${PROJECT_BINARY_DIR}/fiber-http.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/fiber-http.pc
    DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT http)
endif()
