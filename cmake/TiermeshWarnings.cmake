# tiermesh_target_warnings(<target>): strict warnings for project code only
# (generated protobuf code and third-party headers are not held to them).
function(tiermesh_target_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wnon-virtual-dtor -Wno-unused-parameter)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    target_compile_options(${target} PRIVATE -Wshadow=local)
  endif()
  if(TIERMESH_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# tiermesh_library(<name> SOURCES ... DEPS ...): one library target per folder.
function(tiermesh_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PUBLIC_DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${ARG_PUBLIC_DEPS} ${ARG_DEPS})
  tiermesh_target_warnings(${name})
endfunction()

# tiermesh_test(<name> SOURCES ... DEPS ... [LABELS ...] [TIMEOUT s]):
# a GoogleTest binary registered with ctest (one ctest entry per binary keeps
# start-up cost low on small machines).
function(tiermesh_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gmock GTest::gtest_main)
  tiermesh_target_warnings(${name})
  add_test(NAME ${name} COMMAND ${name})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 120)
  endif()
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  set_tests_properties(${name} PROPERTIES TIMEOUT ${ARG_TIMEOUT} LABELS "${ARG_LABELS}"
    ENVIRONMENT "TIERMESH_SOURCE_DIR=${PROJECT_SOURCE_DIR};TIERMESH_BINARY_DIR=${PROJECT_BINARY_DIR}")
endfunction()
