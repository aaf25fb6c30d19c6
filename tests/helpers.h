/* uvasync C test suite — shared helpers (header-only, included first by every
 * tests/test_*.c). Uses only the public header, libc and pthreads. */
#ifndef UVASYNC_TEST_HELPERS_H
#define UVASYNC_TEST_HELPERS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* clock_gettime, nanosleep, getrusage under -std=c99 */
#endif

#include <criterion/criterion.h>
#include <criterion/hooks.h>

#include <uvasync.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#if defined(__GNUC__)
#define UVT_UNUSED __attribute__((unused))
#else
#define UVT_UNUSED
#endif

/* ---- time scaling ------------------------------------------------------ */

/* UVA_TEST_TIMEOUT_MULTIPLIER (like libuv's UV_TEST_TIMEOUT_MULTIPLIER) scales
 * every Criterion .timeout (see the PRE_ALL hook below) and the latency and
 * CPU budgets the tests assert (uvt_mult()). Sanitizer/valgrind runs set it. */
static UVT_UNUSED double uvt_mult(void) {
  const char *s = getenv("UVA_TEST_TIMEOUT_MULTIPLIER");
  double m = s != NULL ? atof(s) : 1.0;
  return m >= 1.0 ? m : 1.0;
}

/* .timeout must be a constant expression, so it is scaled at start-up: this
 * hook runs in the Criterion runner before any test is forked and multiplies
 * each test's timeout. The weak flag makes it idempotent when several test
 * files are linked into one executable. */
__attribute__((weak)) int uvt__timeouts_scaled;

static void uvt__scale_timeouts(struct criterion_test_set *set) {
  struct criterion_ordered_set_node *s, *t;
  double m = uvt_mult();
  if (uvt__timeouts_scaled || !(m > 1.0) || set == NULL || set->suites == NULL)
    return;
  uvt__timeouts_scaled = 1;
  for (s = set->suites->first; s != NULL; s = s->next) {
    struct criterion_suite_set *ss = (struct criterion_suite_set *) (s + 1);
    if (ss->tests == NULL) continue;
    for (t = ss->tests->first; t != NULL; t = t->next) {
      struct criterion_test *ct = (struct criterion_test *) (t + 1);
      if (ct->data != NULL && ct->data->timeout > 0) ct->data->timeout *= m;
    }
  }
}

#if defined(__linux__) && defined(__GNUC__)
__attribute__((section("cr_pra"),
               used)) static f_report_hook uvt__scale_timeouts_hook =
    (f_report_hook) uvt__scale_timeouts;
#endif

/* Criterion's runner (not a test, not uvasync) leaks a small block per run
 * with --jobs > 1; LeakSanitizer reads this hook in ASan builds. Weak, so
 * several test files can share one executable. */
#define UVT__LSAN_HOOK \
  __attribute__((weak, used, visibility("default"))) const char *
UVT__LSAN_HOOK __lsan_default_suppressions(void);
UVT__LSAN_HOOK __lsan_default_suppressions(void) {
  return "leak:libcriterion.so\n";
}

/* ---- clocks ------------------------------------------------------------ */

/* CLOCK_MONOTONIC in milliseconds, with sub-millisecond precision. */
static UVT_UNUSED double uvt_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

static UVT_UNUSED void uvt_sleep_ms(double ms) {
  struct timespec ts;
  ts.tv_sec = (time_t) (ms / 1e3);
  ts.tv_nsec = (long) ((ms - (double) ts.tv_sec * 1e3) * 1e6);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* User + system CPU time of this process, in milliseconds. */
static UVT_UNUSED double uvt_cpu_ms(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double) (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
         (double) (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

/* ---- loops ------------------------------------------------------------- */

static UVT_UNUSED uva_loop_t *uvt_loop_new(void) {
  uva_loop_t *loop = NULL;
  cr_assert_eq(uva_loop_new(&loop), 0);
  cr_assert_not_null(loop);
  return loop;
}

/* Whether loops poll edge-triggered here (Linux, unless UVA_POLLER=libuv:
 * loop.cpp). Only a test of how reads are cut into chunks asks. */
static UVT_UNUSED int uvt_edge_poller(void) {
#ifdef __linux__
  const char *p = getenv("UVA_POLLER");
  return p == NULL || strcmp(p, "libuv") != 0;
#else
  return 0;
#endif
}

/* The MAKE_VALGRIND_HAPPY of this suite: every test that made a loop ends
 * with this, after releasing/closing what it made. */
#define UVT_CLOSE_LOOP(loop)                                     \
  do {                                                           \
    int uvt__rc = uva_loop_close(loop);                          \
    cr_assert_eq(uvt__rc, 0, "uva_loop_close: %d (%s)", uvt__rc, \
                 uva_err_name(uvt__rc));                         \
  } while (0)

/* Assert that an expression returns a given code, printing names. */
#define UVT_EQ(expr, want)                                                    \
  do {                                                                        \
    int uvt__got = (expr);                                                    \
    int uvt__want = (want);                                                   \
    cr_assert_eq(uvt__got, uvt__want, "%s: got %d (%s), want %d (%s)", #expr, \
                 uvt__got, uva_err_name(uvt__got), uvt__want,                 \
                 uva_err_name(uvt__want));                                    \
  } while (0)

#define UVT_OK(expr) UVT_EQ(expr, 0)

/* Non-fatal variant, for function-by-function tables of checks. */
#define UVT_EXPECT(expr, want)                                                \
  do {                                                                        \
    int uvt__got = (expr);                                                    \
    int uvt__want = (want);                                                   \
    cr_expect_eq(uvt__got, uvt__want, "%s: got %d (%s), want %d (%s)", #expr, \
                 uvt__got, uva_err_name(uvt__got), uvt__want,                 \
                 uva_err_name(uvt__want));                                    \
  } while (0)

/* ---- common callbacks -------------------------------------------------- */

/* A destructor that counts calls in the int it is given. */
static UVT_UNUSED void uvt_count_dtor(void *data) {
  __atomic_add_fetch((int *) data, 1, __ATOMIC_SEQ_CST);
}

/* A step that finishes at once with 0. */
static UVT_UNUSED int uvt_step_finish(uva_task_t *t, int status, void *d) {
  (void) t;
  (void) status;
  (void) d;
  return 0;
}

/* A step that parks (returns PENDING) on its first run, then finishes with
 * the status it is resumed with: 0 when woken, UVA_ECANCELED when cancelled.
 * Counts its runs in the int it is given (must not be NULL). */
static UVT_UNUSED int uvt_step_park(uva_task_t *t, int status, void *d) {
  (void) t;
  if (++*(int *) d == 1 && status == 0) return UVA_TASK_PENDING;
  return status;
}

/* A step that sleeps 10 s, then finishes with the status it resumes with
 * (UVA_ECANCELED when cancelled). Counts runs in the int it is given. */
static UVT_UNUSED int uvt_step_sleep10s(uva_task_t *t, int status, void *d) {
  int *runs = (int *) d;
  if (++*runs == 1 && status == 0) {
    int rc = uva_task_sleep(t, 10000);
    if (rc != 0) return rc;
    return UVA_TASK_PENDING;
  }
  return status;
}

static UVT_UNUSED void uvt_timer_count_cb(uva_timer_t *timer, void *data) {
  (void) timer;
  ++*(int *) data;
}

/* A close callback receives the timer's own data, so closes are counted in a
 * per-file counter instead. */
static int uvt_close_calls;

static UVT_UNUSED void uvt_count_close(uva_timer_t *timer, void *data) {
  (void) timer;
  (void) data;
  uvt_close_calls++;
}

static UVT_UNUSED void uvt_call_count_cb(void *data) {
  __atomic_add_fetch((int *) data, 1, __ATOMIC_SEQ_CST);
}

/* Run a pthread to completion. */
static UVT_UNUSED void uvt_thread_run(void *(*fn)(void *), void *arg) {
  pthread_t th;
  cr_assert_eq(pthread_create(&th, NULL, fn, arg), 0);
  cr_assert_eq(pthread_join(th, NULL), 0);
}

#endif /* UVASYNC_TEST_HELPERS_H */
