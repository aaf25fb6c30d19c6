/* The abi_header_c99 and abi_header_cxx tests compile this file, which
 * includes nothing but the public header, as C99 and as C++11 with
 * -Wall -Wextra -pedantic -Werror: <uvasync.h> must be self-contained and
 * warning-free in both languages (libgit2's tests/headertest). */
#include <uvasync.h>

int uva_headertest(void);

int uva_headertest(void) {
  unsigned int version = UVA_VERSION_HEX;
  uva_errno_t err = UVA_EINVAL;
  uva_run_mode mode = UVA_RUN_DEFAULT;
  uva_loop_t *loop = NULL;
  uva_task_step_cb step = NULL;
  const char *(*name)(int) = uva_err_name;
  (void) loop;
  (void) step;
  (void) name;
  return (int) (version != 0) + (int) err + (int) mode + UVA_TASK_PENDING;
}
