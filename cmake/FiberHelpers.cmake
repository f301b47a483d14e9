# fiber_add_layer(<name> DIR <dir> SOURCES ... [DEPS <layers below>] [LIBS ...])
# Adds one layer of the runtime as an object library. Its folder holds:
#   <dir>/include/fiber/  public headers, installed           "fiber/chan.h"
#   <dir>/internal/       headers for the runtime layers above,
#                         never installed                      "sched/internal/scheduler.h"
#   <dir>/testing/        test-only code, compiled only by the
#                         test options, never in a release     "driver/testing/fault_poller.h"
#   <dir>/*.h             private to the layer                 "wake_list.h"
# A layer sees its own headers and the public and internal ones of the layers it
# DEPS on, nothing else: the repository root is not on its include path, so an
# include that runs the wrong way does not compile. fiber_add_layer_check() does
# the same for symbols.
function(fiber_add_layer name)
  cmake_parse_arguments(L "" "DIR" "SOURCES;DEPS;LIBS" ${ARGN})
  add_library(${name} OBJECT ${L_SOURCES})
  set(src ${PROJECT_SOURCE_DIR}/${L_DIR})
  if(EXISTS ${src}/include)
    target_include_directories(${name} PUBLIC $<BUILD_INTERFACE:${src}/include>)
  endif()
  # <build>/layers/<dir>/<dir>/{internal,testing} are links to the sources, so
  # that "<dir>/internal/x.h" resolves here and in the layers above, and no
  # other part of the tree does.
  set(root ${PROJECT_BINARY_DIR}/layers/${L_DIR})
  file(MAKE_DIRECTORY ${root}/${L_DIR})
  foreach(sub internal testing)
    if(EXISTS ${src}/${sub} AND NOT EXISTS ${root}/${L_DIR}/${sub})
      file(CREATE_LINK ${src}/${sub} ${root}/${L_DIR}/${sub} SYMBOLIC)
    endif()
  endforeach()
  target_include_directories(${name} PUBLIC $<BUILD_INTERFACE:${root}> PRIVATE ${src})
  target_link_libraries(${name} PUBLIC ${L_DEPS} ${L_LIBS})
endfunction()

# fiber_add_layer_check(<layer> LAYERS <layer and those below> LIBS ...)
# Links <layer> with only the layers below it into a shared library with
# -z defs, so that a symbol it takes from a layer above (or from nowhere) is an
# undefined reference and the build fails. Not under sanitizers, whose runtime
# symbols only the final executable resolves.
function(fiber_add_layer_check layer)
  cmake_parse_arguments(C "" "" "LAYERS;LIBS" ${ARGN})
  if(FIBER_SANITIZE)
    return()
  endif()
  set(objects)
  foreach(l ${C_LAYERS})
    list(APPEND objects $<TARGET_OBJECTS:${l}>)
  endforeach()
  add_library(${layer}_layer_check SHARED ${objects})
  target_link_libraries(${layer}_layer_check PRIVATE ${C_LIBS})
  target_link_options(${layer}_layer_check PRIVATE -Wl,-z,defs)
endfunction()

# fiber_add_test(<name> SOURCES ... [LABELS ...] [TIMEOUT s])
# Adds a GoogleTest binary linked with the runtime; each test case becomes one
# ctest test so that ctest -j runs them in parallel.
function(fiber_add_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LABELS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_executable(${name} ${T_SOURCES})
  if(FIBER_FAULT_INJECTION)
    # Under FIBER_FAULTS, checks that every configured fault kind fired.
    target_sources(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests/support/fault_environment.cc)
  endif()
  target_link_libraries(${name} PRIVATE fiber::fiber fiber_test_support GTest::gtest GTest::gtest_main)
  if(TARGET fiber_leak_check)
    target_link_libraries(${name} PRIVATE fiber_leak_check)
  endif()
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR})
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60
    PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS "${T_LABELS}")
endfunction()
