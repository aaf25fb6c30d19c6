/* bench_raw_core — the raw-libuv side of the core benchmarks.
 *
 * Linked ONLY against libuv. Does the same work as bench_core.c (the uvasync
 * side) the way one would write it directly on libuv, and prints one line:
 *   impl=libuv name=yield n=1000000 ns_per_op=... cpu_ns_per_op=...
 *   rss_growth_bytes=... [bytes_per_task=...] ok=1
 *
 *   spawn  N [batch]  one-shot work = malloc + uv_timer_init + uv_timer_start
 *                     (timeout 0) + uv_close in the callback + free in the
 *                     close callback; started `batch` at a time by a uv_idle_t
 *                     driver (one batch per loop iteration), as bench_core's
 *                     driver task spawns one batch per pass.
 *   yield  N [tasks]  an intrusive run queue of `tasks` C "tasks" drained by
 *                     one uv_idle_t callback; each pass runs only the items
 *                     present when it began and requeues each (via an
 *                     indirect step call) until its counter runs out.
 *   timers N          N malloc'd uv_timer_t, delays 0..100 ms (fixed seed),
 *                     uv_close in the callback.
 *   sleep  N          same as timers (a "sleeping task" in raw libuv is a
 *                     uv_timer_t); RSS measured after all are started.
 *   idle   N          N malloc'd continuation structs (next, step, state) in
 *                     the run queue; on their first run they park (nothing
 *                     set up, pointer kept by the waker), then a probe wakes
 *                     them all and they finish. This is the closest raw
 *                     analogue of a parked task; it has no cancellation, no
 *                     join, no result, no refcount.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime; before any header */
#include <uv.h>

#include "bench_common.h"

#define CHECK_UV(expr)                                                     \
  do {                                                                     \
    int rc_ = (expr);                                                      \
    if (rc_ != 0) {                                                        \
      fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #expr, \
              uv_strerror(rc_));                                           \
      exit(2);                                                             \
    }                                                                      \
  } while (0)

static uv_loop_t loop;
static long g_n, g_started, g_done, g_batch;

/* ---------------------------------------------------------------- timers */

static void free_close_cb(uv_handle_t *h) { free(h); }

static void oneshot_cb(uv_timer_t *t) {
  g_done++;
  uv_close((uv_handle_t *) t, free_close_cb);
}

static void start_oneshot(uint64_t delay) {
  uv_timer_t *t = (uv_timer_t *) malloc(sizeof *t);
  if (t == NULL) {
    fprintf(stderr, "out of memory\n");
    exit(2);
  }
  CHECK_UV(uv_timer_init(&loop, t));
  CHECK_UV(uv_timer_start(t, oneshot_cb, delay, 0));
}

/* ----------------------------------------------------------------- spawn */

static void spawn_driver_cb(uv_idle_t *idle) {
  long i, k = g_n - g_started;
  if (k > g_batch) k = g_batch;
  for (i = 0; i < k; i++)
    start_oneshot(0);
  g_started += k;
  if (g_started == g_n) uv_idle_stop(idle);
}

static void bench_spawn(bench_result *r, long batch) {
  uv_idle_t driver;
  long base = bench_rss_bytes();
  uint64_t t0 = bench_now_ns(), c0 = bench_cpu_ns();
  g_batch = batch;
  CHECK_UV(uv_idle_init(&loop, &driver));
  CHECK_UV(uv_idle_start(&driver, spawn_driver_cb));
  CHECK_UV(uv_run(&loop, UV_RUN_DEFAULT));
  r->wall_ns = bench_now_ns() - t0;
  r->cpu_ns = bench_cpu_ns() - c0;
  uv_close((uv_handle_t *) &driver, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  r->rss_growth = bench_peak_rss_bytes() - base;
  r->ok = g_done == g_n;
}

/* ------------------------------------------------------- run queue (C) */

#define RAW_YIELD 2

typedef struct rtask rtask;
struct rtask {
  rtask *next;
  int (*step)(rtask *self); /* returns RAW_YIELD to be requeued, else 0 */
  long state;
};

static rtask *rq_head, *rq_tail;
static uv_idle_t rq_idle;
static int rq_idle_active;

static void rq_push(rtask *t);

/* One pass: run exactly the items queued when the pass began. */
static void rq_pass_cb(uv_idle_t *idle) {
  rtask *t = rq_head, *next;
  rq_head = rq_tail = NULL;
  for (; t != NULL; t = next) {
    next = t->next;
    if (t->step(t) == RAW_YIELD) rq_push(t);
  }
  if (rq_head == NULL) {
    uv_idle_stop(idle);
    rq_idle_active = 0;
  }
}

static void rq_push(rtask *t) {
  t->next = NULL;
  if (rq_tail)
    rq_tail->next = t;
  else
    rq_head = t;
  rq_tail = t;
  if (!rq_idle_active) {
    uv_idle_start(&rq_idle, rq_pass_cb);
    rq_idle_active = 1;
  }
}

/* ----------------------------------------------------------------- yield */

static int yield_step(rtask *t) {
  if (--t->state > 0) return RAW_YIELD;
  g_done++;
  free(t);
  return 0;
}

static void bench_yield(bench_result *r, long ntasks) {
  long i, per = g_n / ntasks;
  long base = bench_rss_bytes();
  uint64_t t0 = bench_now_ns(), c0 = bench_cpu_ns();
  CHECK_UV(uv_idle_init(&loop, &rq_idle));
  for (i = 0; i < ntasks; i++) {
    rtask *t = (rtask *) malloc(sizeof *t);
    if (t == NULL) {
      fprintf(stderr, "out of memory\n");
      exit(2);
    }
    t->step = yield_step;
    t->state = per + 1; /* `per` yields, then one final step */
    rq_push(t);
  }
  CHECK_UV(uv_run(&loop, UV_RUN_DEFAULT));
  r->wall_ns = bench_now_ns() - t0;
  r->cpu_ns = bench_cpu_ns() - c0;
  r->n = per * ntasks;
  uv_close((uv_handle_t *) &rq_idle, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  r->rss_growth = bench_peak_rss_bytes() - base;
  r->ok = g_done == ntasks;
}

/* --------------------------------------------------------- timers/sleep */

static void bench_timers(bench_result *r, int measure_per_task) {
  int32_t *delays = bench_make_delays(g_n);
  long i, base = bench_rss_bytes(), started_rss;
  uint64_t t0 = bench_now_ns(), c0 = bench_cpu_ns();
  for (i = 0; i < g_n; i++)
    start_oneshot((uint64_t) delays[i]);
  started_rss = bench_rss_bytes();
  CHECK_UV(uv_run(&loop, UV_RUN_DEFAULT));
  r->wall_ns = bench_now_ns() - t0;
  r->cpu_ns = bench_cpu_ns() - c0;
  if (measure_per_task) {
    r->rss_growth = started_rss - base;
    r->bytes_per_task = (double) (started_rss - base) / (double) g_n;
  } else {
    r->rss_growth = bench_peak_rss_bytes() - base;
  }
  r->ok = g_done == g_n;
  free(delays);
}

/* ------------------------------------------------------------------ idle */

static rtask **parked;
static long probe_rss;

static int idle_step(rtask *t) {
  if (t->state == 0) { /* first run: park, nothing set up */
    parked[g_started++] = t;
    t->state = 1;
    return 0; /* not requeued: parked */
  }
  g_done++; /* woken: finish */
  free(t);
  return 0;
}

static int probe_step(rtask *t) {
  long i;
  probe_rss = bench_rss_bytes();
  for (i = 0; i < g_started; i++)
    rq_push(parked[i]); /* wake */
  free(t);
  return 0;
}

static rtask *new_rtask(int (*step)(rtask *)) {
  rtask *t = (rtask *) malloc(sizeof *t);
  if (t == NULL) {
    fprintf(stderr, "out of memory\n");
    exit(2);
  }
  t->step = step;
  t->state = 0;
  return t;
}

static void bench_idle(bench_result *r) {
  long i, base;
  uint64_t t0, c0;
  parked = (rtask **) malloc((size_t) g_n * sizeof *parked);
  if (parked == NULL) {
    fprintf(stderr, "out of memory\n");
    exit(2);
  }
  bench_touch(parked, (size_t) g_n * sizeof *parked); /* make it resident */
  CHECK_UV(uv_idle_init(&loop, &rq_idle));
  base = bench_rss_bytes();
  t0 = bench_now_ns();
  c0 = bench_cpu_ns();
  for (i = 0; i < g_n; i++)
    rq_push(new_rtask(idle_step));
  rq_push(new_rtask(probe_step));
  CHECK_UV(uv_run(&loop, UV_RUN_DEFAULT));
  r->wall_ns = bench_now_ns() - t0;
  r->cpu_ns = bench_cpu_ns() - c0;
  r->rss_growth = probe_rss - base;
  r->bytes_per_task = (double) (probe_rss - base) / (double) g_n;
  r->ok = g_done == g_n && g_started == g_n;
  uv_close((uv_handle_t *) &rq_idle, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  free(parked);
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv) {
  bench_result r;
  const char *name;
  long arg = 0;
  if (argc < 3 || (g_n = bench_parse_n(argv[2])) < 0 ||
      (argc > 3 && (arg = bench_parse_n(argv[3])) < 0)) {
    fprintf(stderr, BENCH_USAGE, argv[0]);
    return 2;
  }
  name = argv[1];
  memset(&r, 0, sizeof r);
  r.impl = "libuv";
  r.name = name;
  r.n = g_n;
  r.bytes_per_task = -1;
  CHECK_UV(uv_loop_init(&loop));

  if (strcmp(name, "spawn") == 0) {
    bench_spawn(&r, arg > 0 ? arg : 1000);
  } else if (strcmp(name, "yield") == 0) {
    long ntasks = arg > 0 ? arg : 1000;
    if (ntasks > g_n) ntasks = g_n;
    bench_yield(&r, ntasks);
  } else if (strcmp(name, "timers") == 0) {
    bench_timers(&r, 0);
  } else if (strcmp(name, "sleep") == 0) {
    bench_timers(&r, 1);
  } else if (strcmp(name, "idle") == 0) {
    bench_idle(&r);
  } else {
    fprintf(stderr, BENCH_USAGE, argv[0]);
    return 2;
  }
  if (uv_loop_close(&loop) != 0) {
    fprintf(stderr, "uv_loop_close: handles left\n");
    r.ok = 0;
  }
  bench_print(&r);
  return r.ok ? 0 : 1;
}
