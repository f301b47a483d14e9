# fiber_add_layer(<name> DIR <dir> SOURCES ... [DEPS ...])
# Adds one layer of the runtime as an object library. A layer sees its own
# private headers, its public headers and those of the layers it DEPS on.
function(fiber_add_layer name)
  cmake_parse_arguments(L "" "DIR" "SOURCES;DEPS;LIBS" ${ARGN})
  add_library(${name} OBJECT ${L_SOURCES})
  if(EXISTS ${PROJECT_SOURCE_DIR}/${L_DIR}/include)
    target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/${L_DIR}/include)
  endif()
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${L_DEPS} ${L_LIBS})
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
