/* bench_core — the uvasync side of the core benchmarks (C API only).
 *
 * Does the same work as bench_raw_core.c (raw libuv) through <uvasync.h> and
 * prints one line:
 *   impl=uvasync name=yield n=1000000 ns_per_op=... cpu_ns_per_op=...
 *   rss_growth_bytes=... [bytes_per_task=...] ok=1
 *
 *   spawn  N [batch]  spawn and complete N tasks (out = NULL, the step returns
 *                     0 at once). A driver task spawns `batch` tasks per
 *                     step and yields, so each pass runs one batch (spawned
 *                     in the previous pass) and spawns the next; at most
 *                     about 2 x batch tasks are alive at a time.
 *   yield  N [tasks]  `tasks` tasks (default 1000) each return
 *                     UVA_TASK_YIELD N/tasks times, then 0: N task switches.
 *   timers N          N uva_timer_new + uva_timer_start, delays 0..100 ms
 *                     (fixed seed, same as raw), uva_timer_close in the
 *                     callback. Started before the loop runs.
 *   sleep  N          N tasks, each calls uva_task_sleep(0..100 ms) once and
 *                     finishes when it wakes. A probe task spawned last runs
 *                     right after all of them started sleeping and samples
 *                     RSS: bytes_per_task = (RSS then - baseline) / N.
 *   idle   N          N tasks whose first step returns UVA_TASK_PENDING with
 *                     nothing set up (parked); the probe samples RSS, then
 *                     uva_task_wake()s each and they finish.
 * Per-task user state (delays, first-run flags, parked pointers) lives in
 * arrays that are allocated and touched before the baseline RSS is taken.
 * Time: CLOCK_MONOTONIC around spawn/start + uva_loop_run; the loop's own
 * creation and closing are outside the measured region on both sides.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime; before any header */
#include <uvasync.h>

#include "bench_common.h"

#define CHECK(expr)                                                      \
  do {                                                                   \
    int rc_ = (expr);                                                    \
    if (rc_ < 0) {                                                       \
      fprintf(stderr, "%s:%d: %s failed: %s (%s)\n", __FILE__, __LINE__, \
              #expr, uva_err_name(rc_), uva_strerror(rc_));              \
      exit(2);                                                           \
    }                                                                    \
  } while (0)

static uva_loop_t *loop;
static long g_n, g_started, g_done, g_batch;

/* ----------------------------------------------------------------- spawn */

static int noop_step(uva_task_t *task, int status, void *data) {
  (void) task;
  (void) status;
  (void) data;
  g_done++;
  return 0;
}

static int spawn_driver_step(uva_task_t *task, int status, void *data) {
  long i, k = g_n - g_started;
  (void) task;
  (void) status;
  (void) data;
  if (k > g_batch) k = g_batch;
  for (i = 0; i < k; i++)
    CHECK(uva_task_spawn(NULL, loop, noop_step, NULL, NULL));
  g_started += k;
  return g_started < g_n ? UVA_TASK_YIELD : 0;
}

static void bench_spawn(bench_result *r, long batch) {
  long base = bench_rss_bytes();
  uint64_t t0 = bench_now_ns(), c0 = bench_cpu_ns();
  g_batch = batch;
  CHECK(uva_task_spawn(NULL, loop, spawn_driver_step, NULL, NULL));
  CHECK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  r->wall_ns = bench_now_ns() - t0;
  r->cpu_ns = bench_cpu_ns() - c0;
  r->rss_growth = bench_peak_rss_bytes() - base;
  r->ok = g_done == g_n;
}

/* ----------------------------------------------------------------- yield */

static int yield_step(uva_task_t *task, int status, void *data) {
  long *left = (long *) data;
  (void) task;
  (void) status;
  if (--*left > 0) return UVA_TASK_YIELD;
  g_done++;
  return 0;
}

static void bench_yield(bench_result *r, long ntasks) {
  long i, per = g_n / ntasks, base;
  uint64_t t0, c0;
  long *left = (long *) malloc((size_t) ntasks * sizeof *left);
  if (left == NULL) {
    fprintf(stderr, "out of memory\n");
    exit(2);
  }
  for (i = 0; i < ntasks; i++)
    left[i] = per + 1; /* per yields + 1 final */
  base = bench_rss_bytes();
  t0 = bench_now_ns();
  c0 = bench_cpu_ns();
  for (i = 0; i < ntasks; i++)
    CHECK(uva_task_spawn(NULL, loop, yield_step, &left[i], NULL));
  CHECK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  r->wall_ns = bench_now_ns() - t0;
  r->cpu_ns = bench_cpu_ns() - c0;
  r->n = per * ntasks;
  r->rss_growth = bench_peak_rss_bytes() - base;
  r->ok = g_done == ntasks;
  free(left);
}

/* ---------------------------------------------------------------- timers */

static void oneshot_cb(uva_timer_t *t, void *data) {
  (void) data;
  g_done++;
  CHECK(uva_timer_close(t, NULL));
}

static void bench_timers(bench_result *r) {
  int32_t *delays = bench_make_delays(g_n);
  long i, base = bench_rss_bytes();
  uint64_t t0 = bench_now_ns(), c0 = bench_cpu_ns();
  for (i = 0; i < g_n; i++) {
    uva_timer_t *t;
    CHECK(uva_timer_new(&t, loop, oneshot_cb, NULL, NULL));
    CHECK(uva_timer_start(t, delays[i], 0));
  }
  CHECK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  r->wall_ns = bench_now_ns() - t0;
  r->cpu_ns = bench_cpu_ns() - c0;
  r->rss_growth = bench_peak_rss_bytes() - base;
  r->ok = g_done == g_n;
  free(delays);
}

/* ------------------------------------------------------- sleep and idle */

static int32_t *g_delays;
static unsigned char *g_state;
static uva_task_t **g_parked;
static long g_probe_rss;

static int sleep_step(uva_task_t *task, int status, void *data) {
  uintptr_t i = (uintptr_t) data;
  (void) status;
  if (g_state[i] == 0) {
    g_state[i] = 1;
    CHECK(uva_task_sleep(task, g_delays[i]));
    g_started++;
    return UVA_TASK_PENDING;
  }
  g_done++;
  return 0;
}

static int idle_step(uva_task_t *task, int status, void *data) {
  uintptr_t i = (uintptr_t) data;
  (void) status;
  if (g_state[i] == 0) { /* first run: park with nothing set up */
    g_state[i] = 1;
    g_parked[i] = task; /* borrowed: a parked detached task stays alive */
    g_started++;
    return UVA_TASK_PENDING;
  }
  g_done++; /* woken */
  return 0;
}

/* Runs after every other task's first step of the first pass. */
static int probe_step(uva_task_t *task, int status, void *data) {
  long i;
  (void) task;
  (void) status;
  g_probe_rss = bench_rss_bytes();
  if (data != NULL)
    for (i = 0; i < g_n; i++)
      CHECK(uva_task_wake(g_parked[i]));
  return 0;
}

static void bench_parked(bench_result *r, int idle) {
  long i, base;
  uint64_t t0, c0;
  g_delays = bench_make_delays(g_n);
  g_state = (unsigned char *) calloc((size_t) g_n, 1);
  g_parked = (uva_task_t **) calloc((size_t) g_n, sizeof *g_parked);
  if (g_state == NULL || g_parked == NULL) {
    fprintf(stderr, "out of memory\n");
    exit(2);
  }
  bench_touch(g_state, (size_t) g_n); /* make them resident */
  bench_touch(g_parked, (size_t) g_n * sizeof *g_parked);
  base = bench_rss_bytes();
  t0 = bench_now_ns();
  c0 = bench_cpu_ns();
  for (i = 0; i < g_n; i++)
    CHECK(uva_task_spawn(NULL, loop, idle ? idle_step : sleep_step,
                         (void *) (uintptr_t) i, NULL));
  CHECK(uva_task_spawn(NULL, loop, probe_step, idle ? (void *) 1 : NULL, NULL));
  CHECK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  r->wall_ns = bench_now_ns() - t0;
  r->cpu_ns = bench_cpu_ns() - c0;
  r->rss_growth = g_probe_rss - base;
  r->bytes_per_task = (double) (g_probe_rss - base) / (double) g_n;
  r->ok = g_done == g_n && g_started == g_n;
  free(g_delays);
  free(g_state);
  free(g_parked);
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv) {
  bench_result r;
  const char *name;
  long arg = 0;
  int rc;
  if (argc < 3 || (g_n = bench_parse_n(argv[2])) < 0 ||
      (argc > 3 && (arg = bench_parse_n(argv[3])) < 0)) {
    fprintf(stderr, BENCH_USAGE, argv[0]);
    return 2;
  }
  name = argv[1];
  memset(&r, 0, sizeof r);
  r.impl = "uvasync";
  r.name = name;
  r.n = g_n;
  r.bytes_per_task = -1;
  CHECK(uva_loop_new(&loop));

  if (strcmp(name, "spawn") == 0) {
    bench_spawn(&r, arg > 0 ? arg : 1000);
  } else if (strcmp(name, "yield") == 0) {
    long ntasks = arg > 0 ? arg : 1000;
    if (ntasks > g_n) ntasks = g_n;
    bench_yield(&r, ntasks);
  } else if (strcmp(name, "timers") == 0) {
    bench_timers(&r);
  } else if (strcmp(name, "sleep") == 0) {
    bench_parked(&r, 0);
  } else if (strcmp(name, "idle") == 0) {
    bench_parked(&r, 1);
  } else {
    fprintf(stderr, BENCH_USAGE, argv[0]);
    return 2;
  }
  rc = uva_loop_close(loop);
  if (rc != 0) {
    fprintf(stderr, "uva_loop_close: %s\n", uva_err_name(rc));
    r.ok = 0;
  }
  bench_print(&r);
  return r.ok ? 0 : 1;
}
