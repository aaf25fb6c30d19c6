/* Linked into the Criterion programs of an AddressSanitizer build
 * (UVA_SANITIZE=address) by cmake/uvasync_tests.cmake; compiled without
 * sanitizer instrumentation.
 *
 * Criterion's runner process leaks a 48-byte timeout record (calloc called
 * from inside libcriterion); LeakSanitizer would report it at exit and turn
 * it into a failing exit status. The tests themselves run in boxfort worker
 * processes, which Criterion starts with BXFI_MAP in the environment, and a
 * libcriterion suppression there would hide our leaks too (every test's
 * stack ends in libcriterion). So the suppression applies to the runner
 * only. LeakSanitizer reads it lazily, at the leak check at exit.
 *
 * A worker's leak report does not change Criterion's verdict, so ctest also
 * fails a test whose output contains "SUMMARY: ...Sanitizer". */
#include <stdlib.h>

__attribute__((visibility("default"), used)) const char *
__lsan_default_suppressions(void);

__attribute__((visibility("default"), used)) const char *
__lsan_default_suppressions(void) {
  return getenv("BXFI_MAP") == NULL ? "leak:libcriterion.so\n" : "";
}
