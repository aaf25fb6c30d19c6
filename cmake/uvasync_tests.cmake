# CTest wiring, included from the top-level CMakeLists.txt when
# UVA_BUILD_TESTS is on (enable_testing() has been called there).
#
#   <name>, <name>_a      every tests/test_<x>.c as a Criterion program,
#                         linked against the shared / the static library
#                         (UVA_SINGLE_RUN_SUITES: the shared one only)
#   abi_exports           only uva_* symbols leave libuvasync.so, all under
#                         the UVASYNC_1 version node
#   abi_header_c99/_cxx   <uvasync.h> alone compiles as C99 and as C++11
#                         with -Wall -Wextra -pedantic -Werror
#   install_consumer      install to a temporary prefix, then build and run a
#                         consumer via find_package and via pkg-config
#                         (shared and static)

pkg_check_modules(CRITERION IMPORTED_TARGET criterion)
if(NOT CRITERION_FOUND)
  message(FATAL_ERROR
    "Criterion (pkg-config 'criterion') is needed for the tests: install "
    "libcriterion-dev (bash scripts/setup.sh) or configure with -DUVA_BUILD_TESTS=OFF")
endif()

set(UVA_TESTS_DIR "${PROJECT_SOURCE_DIR}/tests")

# Environment of every test. Sanitizer builds are slower: tests read
# UVA_TEST_TIMEOUT_MULTIPLIER to scale their own timeouts.
set(UVA_TEST_ENV "")
set(UVA_TEST_TIMEOUT 300 CACHE STRING "CTest timeout of one test program, in seconds")
if(UVA_SANITIZE)
  if(DEFINED ENV{UVA_TEST_TIMEOUT_MULTIPLIER})
    list(APPEND UVA_TEST_ENV "UVA_TEST_TIMEOUT_MULTIPLIER=$ENV{UVA_TEST_TIMEOUT_MULTIPLIER}")
  else()
    list(APPEND UVA_TEST_ENV "UVA_TEST_TIMEOUT_MULTIPLIER=3")
  endif()
endif()
if(UVA_SANITIZE STREQUAL "address")
  list(APPEND UVA_TEST_ENV
    "ASAN_OPTIONS=detect_stack_use_after_return=1:strict_init_order=1:check_initialization_order=1"
    "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
  if(EXISTS "${UVA_TESTS_DIR}/lsan.supp")
    list(APPEND UVA_TEST_ENV "LSAN_OPTIONS=print_suppressions=0:suppressions=${UVA_TESTS_DIR}/lsan.supp")
  else()
    list(APPEND UVA_TEST_ENV "LSAN_OPTIONS=print_suppressions=0")
  endif()
elseif(UVA_SANITIZE STREQUAL "thread")
  set(_tsan "halt_on_error=1:second_deadlock_stack=1")
  if(EXISTS "${UVA_TESTS_DIR}/tsan.supp")
    string(APPEND _tsan ":suppressions=${UVA_TESTS_DIR}/tsan.supp")
  endif()
  list(APPEND UVA_TEST_ENV "TSAN_OPTIONS=${_tsan}")
endif()

# uva_set_test_props(TEST LABEL...): timeout, labels and sanitizer environment.
function(uva_set_test_props test)
  set_tests_properties(${test} PROPERTIES TIMEOUT ${UVA_TEST_TIMEOUT})
  if(ARGN)
    set_property(TEST ${test} PROPERTY LABELS ${ARGN})
  endif()
  if(UVA_TEST_ENV)
    set_property(TEST ${test} APPEND PROPERTY ENVIRONMENT ${UVA_TEST_ENV})
  endif()
  if(UVA_SANITIZE)
    # Criterion ignores the exit status of a worker whose test passed, so a
    # leak reported when the worker exits would go unnoticed: fail on any
    # sanitizer report in the output (see tests/sanitizer/criterion_lsan.c).
    set_property(TEST ${test} PROPERTY FAIL_REGULAR_EXPRESSION "SUMMARY: [A-Za-z]+Sanitizer")
  endif()
endfunction()

# --- Criterion suites: tests/test_*.c, each against both libraries ----------
# One file per behaviour: a new tests/test_<x>.c is a new suite, registered
# by the glob below as test_<x>, test_<x>_libuv and test_<x>_a. The helpers
# the suites share (tests/support.c, declared in support.h) are compiled into
# every suite.
file(GLOB UVA_CRITERION_SOURCES CONFIGURE_DEPENDS "${UVA_TESTS_DIR}/test_*.c")
# The TLS suites (test_tls_*.c) make their certificates with OpenSSL's API
# (tests/tls_support.h) and run openssl s_server/s_client: only with TLS.
if(NOT UVA_HAVE_OPENSSL)
  list(FILTER UVA_CRITERION_SOURCES EXCLUDE REGEX "/test_tls_[^/]*\\.c$")
  message(STATUS "uvasync: the TLS test suites are not built (no TLS)")
endif()
set(UVA_TEST_SUPPORT_SOURCES "${UVA_TESTS_DIR}/support.c")
set_source_files_properties("${UVA_TESTS_DIR}/sanitizer/criterion_lsan.c"
  PROPERTIES COMPILE_OPTIONS "-fno-sanitize=all")
# Suites whose behaviour depends on neither the poller nor the library's
# kind, and that take seconds (a 1 GiB file): one run, shared library.
set(UVA_SINGLE_RUN_SUITES test_fs_big)
foreach(_src IN LISTS UVA_CRITERION_SOURCES)
  get_filename_component(_name "${_src}" NAME_WE)
  set(_variants shared static)
  if(_name IN_LIST UVA_SINGLE_RUN_SUITES)
    set(_variants shared)
  endif()
  foreach(_variant IN LISTS _variants)
    if(_variant STREQUAL "shared")
      set(_target "${_name}")
      set(_lib uvasync)
    else()
      set(_target "${_name}_a")
      set(_lib uvasync_a)
    endif()
    add_executable(${_target} "${_src}" ${UVA_TEST_SUPPORT_SOURCES})
    if(UVA_SANITIZE STREQUAL "address")
      target_sources(${_target} PRIVATE "${UVA_TESTS_DIR}/sanitizer/criterion_lsan.c")
    endif()
    target_include_directories(${_target} PRIVATE "${UVA_TESTS_DIR}")
    target_link_libraries(${_target} PRIVATE ${_lib} PkgConfig::CRITERION Threads::Threads)
    if(_name MATCHES "^test_tls_")
      target_link_libraries(${_target} PRIVATE ${UVA_OPENSSL_TARGET})
    endif()
    if(UNIX)
      target_link_libraries(${_target} PRIVATE m)
    endif()
    # A C program linking a C++ static library: link with the C++ driver.
    set_target_properties(${_target} PROPERTIES
      LINKER_LANGUAGE CXX
      RUNTIME_OUTPUT_DIRECTORY "${PROJECT_BINARY_DIR}/tests")
    uva_target_warnings(${_target})
    add_test(NAME ${_target} COMMAND ${_target} --jobs 2)
    uva_set_test_props(${_target} criterion ${_variant})
    set(_runs ${_target})
    if(CMAKE_SYSTEM_NAME STREQUAL "Linux" AND _variant STREQUAL "shared"
       AND NOT _name IN_LIST UVA_SINGLE_RUN_SUITES)
      # Linux loops poll edge-triggered (src/loop.cpp); the suite runs
      # again with libuv's poll phase, which other systems use.
      add_test(NAME ${_target}_libuv COMMAND ${_target} --jobs 2)
      uva_set_test_props(${_target}_libuv criterion libuv-poller)
      set_property(TEST ${_target}_libuv APPEND PROPERTY ENVIRONMENT "UVA_POLLER=libuv")
      list(APPEND _runs ${_target}_libuv)
    endif()
    if(UVA_SANITIZE STREQUAL "thread")
      # Criterion cannot start under TSan ("Could not initialize inheritable
      # arena", Snaipe/Criterion#274): built, but reported as not run.
      set_tests_properties(${_runs} PROPERTIES DISABLED TRUE)
    endif()
  endforeach()
endforeach()
if(UVA_SANITIZE STREQUAL "thread" AND UVA_CRITERION_SOURCES)
  message(STATUS "uvasync: Criterion does not run under ThreadSanitizer (Snaipe/Criterion#274); "
                 "the Criterion suites are built but disabled in this build")
endif()
if(NOT UVA_CRITERION_SOURCES)
  message(STATUS "uvasync: no tests/test_*.c yet; only the ABI and install tests are registered")
endif()

# --- Threads: a plain program (Criterion cannot start under TSan) -------------
# Everything that crosses threads; in a -DUVA_SANITIZE=thread build this is
# the ThreadSanitizer check of the core.
add_executable(test_threads "${UVA_TESTS_DIR}/threads/threads.c")
target_link_libraries(test_threads PRIVATE uvasync Threads::Threads ${CMAKE_DL_LIBS})
set_target_properties(test_threads PROPERTIES
  C_STANDARD 11
  RUNTIME_OUTPUT_DIRECTORY "${PROJECT_BINARY_DIR}/tests")
uva_target_warnings(test_threads)
add_test(NAME test_threads COMMAND test_threads)
uva_set_test_props(test_threads threads)
# The loop's thread pool, its file jobs and sendfile, across threads.
add_executable(test_threads_pool "${UVA_TESTS_DIR}/threads/pool.c")
target_link_libraries(test_threads_pool PRIVATE uvasync Threads::Threads)
set_target_properties(test_threads_pool PROPERTIES
  C_STANDARD 11
  RUNTIME_OUTPUT_DIRECTORY "${PROJECT_BINARY_DIR}/tests")
uva_target_warnings(test_threads_pool)
add_test(NAME test_threads_pool COMMAND test_threads_pool)
uva_set_test_props(test_threads_pool threads)
# TLS contexts shared by the loops of several threads (with TLS only).
if(UVA_HAVE_OPENSSL)
  add_executable(test_threads_tls "${UVA_TESTS_DIR}/threads/tls.c")
  target_include_directories(test_threads_tls PRIVATE "${UVA_TESTS_DIR}") # tls_cert.h
  target_link_libraries(test_threads_tls PRIVATE uvasync ${UVA_OPENSSL_TARGET} Threads::Threads)
  set_target_properties(test_threads_tls PROPERTIES
    C_STANDARD 11
    RUNTIME_OUTPUT_DIRECTORY "${PROJECT_BINARY_DIR}/tests")
  uva_target_warnings(test_threads_tls)
  add_test(NAME test_threads_tls COMMAND test_threads_tls)
  uva_set_test_props(test_threads_tls threads)
endif()

# --- Fault injection (UVA_FAULT_INJECTION=ON builds only) --------------------
# A plain program against the static library, which provides the internal
# uva__fault_* functions that arm the fault (the shared one does not export
# them). It runs a scenario once for every N up to the calls it makes.
if(UVA_FAULT_INJECTION)
  add_executable(test_fault "${UVA_TESTS_DIR}/fault/fault.c")
  target_include_directories(test_fault PRIVATE "${UVA_TESTS_DIR}") # co.h
  target_link_libraries(test_fault PRIVATE uvasync_a Threads::Threads)
  set_target_properties(test_fault PROPERTIES
    LINKER_LANGUAGE CXX
    RUNTIME_OUTPUT_DIRECTORY "${PROJECT_BINARY_DIR}/tests")
  uva_target_warnings(test_fault)
  add_test(NAME test_fault COMMAND test_fault)
  uva_set_test_props(test_fault fault)
  # Child processes and signal watchers (tests/fault/fault_process.c).
  add_executable(test_fault_process "${UVA_TESTS_DIR}/fault/fault_process.c")
  target_include_directories(test_fault_process PRIVATE "${UVA_TESTS_DIR}") # co.h
  target_link_libraries(test_fault_process PRIVATE uvasync_a Threads::Threads)
  set_target_properties(test_fault_process PROPERTIES
    LINKER_LANGUAGE CXX
    RUNTIME_OUTPUT_DIRECTORY "${PROJECT_BINARY_DIR}/tests")
  uva_target_warnings(test_fault_process)
  add_test(NAME test_fault_process COMMAND test_fault_process)
  uva_set_test_props(test_fault_process fault)
  # The thread pool and its file jobs (tests/fault/fault_pool.c).
  add_executable(test_fault_pool "${UVA_TESTS_DIR}/fault/fault_pool.c")
  target_link_libraries(test_fault_pool PRIVATE uvasync_a Threads::Threads)
  set_target_properties(test_fault_pool PROPERTIES
    LINKER_LANGUAGE CXX
    RUNTIME_OUTPUT_DIRECTORY "${PROJECT_BINARY_DIR}/tests")
  uva_target_warnings(test_fault_pool)
  add_test(NAME test_fault_pool COMMAND test_fault_pool)
  uva_set_test_props(test_fault_pool fault)
  # TLS inside a stream (tests/fault/fault_tls.c): with OpenSSL only.
  if(UVA_HAVE_OPENSSL)
    add_executable(test_fault_tls "${UVA_TESTS_DIR}/fault/fault_tls.c")
    target_include_directories(test_fault_tls PRIVATE "${UVA_TESTS_DIR}") # co.h
    target_link_libraries(test_fault_tls PRIVATE uvasync_a ${UVA_OPENSSL_TARGET} Threads::Threads)
    set_target_properties(test_fault_tls PROPERTIES
      LINKER_LANGUAGE CXX
      RUNTIME_OUTPUT_DIRECTORY "${PROJECT_BINARY_DIR}/tests")
    uva_target_warnings(test_fault_tls)
    add_test(NAME test_fault_tls COMMAND test_fault_tls)
    uva_set_test_props(test_fault_tls fault)
  endif()
endif()

# --- Load and soak (tests/soak/soak.c): a program with its own command --------
# (scripts/soak.sh runs the full version); CTest runs the short one.
add_executable(soak "${UVA_TESTS_DIR}/soak/soak.c")
target_include_directories(soak PRIVATE "${UVA_TESTS_DIR}") # co.h
target_link_libraries(soak PRIVATE uvasync Threads::Threads)
set_target_properties(soak PROPERTIES
  RUNTIME_OUTPUT_DIRECTORY "${PROJECT_BINARY_DIR}/soak")
uva_target_warnings(soak)
add_test(NAME soak_short COMMAND soak --short --no-rss-check)
uva_set_test_props(soak_short soak)

# --- ABI: exported symbols -----------------------------------------------------
add_test(NAME abi_exports
  COMMAND bash "${UVA_TESTS_DIR}/check_exports.sh" "$<TARGET_FILE:uvasync>"
          "${PROJECT_SOURCE_DIR}/include/uvasync.h")
set_tests_properties(abi_exports PROPERTIES ENVIRONMENT "NM=${CMAKE_NM}")
uva_set_test_props(abi_exports abi)

# --- ABI: the header alone compiles as strict C99 and C++11 --------------------
set(_hdr_dir "${PROJECT_BINARY_DIR}/headertest")
file(MAKE_DIRECTORY "${_hdr_dir}")
add_test(NAME abi_header_c99
  COMMAND "${CMAKE_C_COMPILER}" -std=c99 -Wall -Wextra -pedantic -Werror
          -I "${PROJECT_SOURCE_DIR}/include"
          -c "${UVA_TESTS_DIR}/headertest/headertest.c" -o "${_hdr_dir}/headertest_c99.o")
uva_set_test_props(abi_header_c99 abi)
add_test(NAME abi_header_cxx
  COMMAND "${CMAKE_CXX_COMPILER}" -std=c++11 -Wall -Wextra -pedantic -Werror
          -I "${PROJECT_SOURCE_DIR}/include"
          -x c++ -c "${UVA_TESTS_DIR}/headertest/headertest.c" -o "${_hdr_dir}/headertest_cxx.o")
uva_set_test_props(abi_header_cxx abi)

# --- Install and consume -------------------------------------------------------
string(REPLACE ";" " " _san_flags "${UVA_SANITIZE_FLAGS}")
add_test(NAME install_consumer
  COMMAND bash "${UVA_TESTS_DIR}/install/run.sh")
set_tests_properties(install_consumer PROPERTIES ENVIRONMENT
  "UVA_BUILD_DIR=${PROJECT_BINARY_DIR};UVA_WORK_DIR=${PROJECT_BINARY_DIR}/install_consumer;UVA_CMAKE=${CMAKE_COMMAND};UVA_CC=${CMAKE_C_COMPILER};UVA_EXTRA_FLAGS=${_san_flags};UVA_CONFIG=$<CONFIG>;UVA_GENERATOR=${CMAKE_GENERATOR}")
uva_set_test_props(install_consumer install)

# --- Smoke test of the demo (what `bash scripts/demo.sh` runs) -----------------
if(UVA_BUILD_EXAMPLES AND EXISTS "${PROJECT_SOURCE_DIR}/examples/demo.c")
  set(_demo_target demo)
  if(TARGET example_demo)
    set(_demo_target example_demo)
  endif()
  add_test(NAME example_demo COMMAND ${_demo_target})
  uva_set_test_props(example_demo example)
endif()
