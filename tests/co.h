/* Steps as small state machines (protothread style), for the Criterion
 * suites (through support.h), tests/fault/fault.c and tests/soak/soak.c.
 * Only <uvasync.h>: the plain programs include it without Criterion.
 *
 * The context struct of a step has `int pc` and `int rc` members; pc is 0
 * before the first run and -1 once the step has ended. CO_CALL makes a
 * "call again" call and returns UVA_TASK_PENDING on UVA_EAGAIN, so the next
 * run of the step repeats the same call; CO_WAIT returns UVA_TASK_PENDING
 * and the next run goes on after it. */
#ifndef UVASYNC_TESTS_CO_H
#define UVASYNC_TESTS_CO_H

#include <uvasync.h>

/* A case label reached from the code above it on purpose. */
#if defined(__GNUC__) && __GNUC__ >= 7
#define CO_FALLTHROUGH __attribute__((fallthrough))
#else
#define CO_FALLTHROUGH (void) 0
#endif

#define CO_BEGIN(c)  \
  switch ((c)->pc) { \
    case 0:
#define CO_END(c) \
  }               \
  (c)->pc = -1;   \
  return 0

/* Call expr until it returns something other than UVA_EAGAIN; (c)->rc. */
#define CO_CALL(c, expr)                                  \
  do {                                                    \
    (c)->pc = __LINE__;                                   \
    CO_FALLTHROUGH;                                       \
    case __LINE__:                                        \
      (c)->rc = (expr);                                   \
      if ((c)->rc == UVA_EAGAIN) return UVA_TASK_PENDING; \
  } while (0)

/* Give up the loop until the task is run again (woken, a sleep it armed
 * ended, or cancelled: the step reads its status argument). */
#define CO_WAIT(c)           \
  do {                       \
    (c)->pc = __LINE__;      \
    return UVA_TASK_PENDING; \
    case __LINE__:;          \
  } while (0)

#endif /* UVASYNC_TESTS_CO_H */
