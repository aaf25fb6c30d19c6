/* Steps as small state machines (protothread style), for the I/O suites.
 *
 * The context struct of a step has `int pc` and `int rc` members. CO_CALL
 * makes a "call again" call and returns UVA_TASK_PENDING on UVA_EAGAIN, so
 * the next run of the step repeats the same call; CO_SLEEP sleeps. */
#ifndef UVASYNC_TESTS_CO_H
#define UVASYNC_TESTS_CO_H

#include "helpers.h"

#if defined(__GNUC__) && __GNUC__ >= 7
# define CO_FALLTHROUGH __attribute__((fallthrough))
#else
# define CO_FALLTHROUGH (void) 0
#endif

#define CO_BEGIN(c)                                                           \
  switch ((c)->pc) {                                                          \
    case 0:
#define CO_END(c)                                                             \
  }                                                                           \
  (c)->pc = -1;                                                               \
  return 0

/* Call expr until it returns something other than UVA_EAGAIN; (c)->rc. */
#define CO_CALL(c, expr)                                                      \
  do {                                                                        \
    (c)->pc = __LINE__;                                                       \
    CO_FALLTHROUGH;                                                           \
    case __LINE__:                                                            \
      (c)->rc = (expr);                                                       \
      if ((c)->rc == UVA_EAGAIN)                                              \
        return UVA_TASK_PENDING;                                              \
  } while (0)

#define CO_SLEEP(c, t, ms)                                                    \
  do {                                                                        \
    (c)->pc = __LINE__;                                                       \
    UVT_OK(uva_task_sleep((t), (ms)));                                        \
    return UVA_TASK_PENDING;                                                  \
    case __LINE__:;                                                           \
  } while (0)

static UVT_UNUSED void run(uva_loop_t *loop) {
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
}

static UVT_UNUSED void spawn(uva_loop_t *loop, uva_task_step_cb step,
                             void *data) {
  UVT_OK(uva_task_spawn(NULL, loop, step, data, NULL));
}

#endif /* UVASYNC_TESTS_CO_H */
