/* bench_sync — uvasync's synchronisation primitives, task against task.
 *
 * The same three scenarios as bench_sync_asyncio.py (CPython asyncio); the
 * driver run_sync.py runs both interleaved and prints medians. Prints one
 * line:
 *   impl=uvasync name=lock n=200000 ns_per_op=... cpu_ns_per_op=...
 *   rss_growth_bytes=... ok=1
 *
 *   lock  N   two tasks each loop: acquire -> yield once while holding ->
 *             release. The release hands the lock to the other (waiting)
 *             task, so every release is a hand-off. N hand-offs in all.
 *   queue N   a producer puts N items into a queue of maxsize 1, a consumer
 *             gets them (checking their order). N items.
 *   event N   ping sets E1 and waits for E2; pong waits for E1, clears it
 *             and sets E2; ping clears E2. N round trips.
 *
 * ok=0 (exit 1) if an item arrives out of order, a count is wrong, or the
 * run stalls: a watchdog (an unreferenced 1 s repeating timer) cancels the
 * tasks when no progress was made for a whole period, so a lost wake-up
 * shows as ok=0 instead of a hang.
 * Time: CLOCK_MONOTONIC around spawn + uva_loop_run; creating and closing
 * the loop and the primitives are outside the measured region (as the
 * asyncio side measures inside its running loop).
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

#define USAGE                                                               \
  "usage: %s BENCH N\n"                                                     \
  "  lock  N   N lock hand-offs between two tasks\n"                        \
  "  queue N   N items producer -> consumer through a queue of maxsize 1\n" \
  "  event N   N ping-pong round trips on two events\n"                     \
  "N accepts 1000000, 1e6, 1M, 100k. Output: one key=value line.\n"

static uva_loop_t *loop;
static long g_n;
static long g_progress; /* bumped by every completed operation */
static int g_bad;       /* an order or count check failed */
static uva_task_t *g_tasks[2];

/* ------------------------------------------------------------ watchdog */

static long g_seen = -1;
static int g_stalled;

static void watchdog_cb(uva_timer_t *t, void *data) {
  (void) t;
  (void) data;
  if (g_progress == g_seen && !g_stalled) {
    g_stalled = 1;
    fprintf(stderr, "bench_sync: no progress for 1 s at %ld: cancelling\n",
            g_progress);
    for (int i = 0; i < 2; i++)
      if (g_tasks[i] != NULL) CHECK(uva_task_cancel(g_tasks[i]));
  }
  g_seen = g_progress;
}

/* ---------------------------------------------------------------- lock */

static uva_lock_t *g_lock;

static int lock_step(uva_task_t *t, int status, void *data) {
  int *holding = (int *) data;
  if (status != 0) return status;
  for (;;) {
    if (!*holding) {
      if (g_progress >= g_n) return 0; /* done (drops an untaken grant) */
      int rc = uva_lock_acquire(g_lock, t);
      if (rc == UVA_EAGAIN) return UVA_TASK_PENDING;
      CHECK(rc);
      *holding = 1;
      return UVA_TASK_YIELD; /* hold it for one pass */
    }
    *holding = 0;
    g_progress++;
    CHECK(uva_lock_release(g_lock)); /* hands it to the other task */
  }
}

/* --------------------------------------------------------------- queue */

static uva_queue_t *g_queue;
static long g_put, g_got;

static int producer_step(uva_task_t *t, int status, void *data) {
  (void) data;
  if (status != 0) return status;
  while (g_put < g_n) {
    int rc = uva_queue_put(g_queue, t, (void *) (uintptr_t) (g_put + 1));
    if (rc == UVA_EAGAIN) return UVA_TASK_PENDING;
    CHECK(rc);
    g_put++;
  }
  return 0;
}

static int consumer_step(uva_task_t *t, int status, void *data) {
  (void) data;
  if (status != 0) return status;
  while (g_got < g_n) {
    void *item = NULL;
    int rc = uva_queue_get(&item, g_queue, t);
    if (rc == UVA_EAGAIN) return UVA_TASK_PENDING;
    CHECK(rc);
    if ((uintptr_t) item != (uintptr_t) (g_got + 1)) {
      if (!g_bad)
        fprintf(stderr, "bench_sync: queue item %ld arrived as #%ld\n",
                (long) (uintptr_t) item, g_got + 1);
      g_bad = 1;
    }
    g_got++;
    g_progress++;
  }
  return 0;
}

/* --------------------------------------------------------------- event */

static uva_event_t *g_e1, *g_e2;
static long g_pongs;

static int ping_step(uva_task_t *t, int status, void *data) {
  int *waiting = (int *) data;
  if (status != 0) return status;
  for (;;) {
    if (!*waiting) {
      if (g_progress >= g_n) return 0;
      CHECK(uva_event_set(g_e1));
      *waiting = 1;
    }
    int rc = uva_event_wait(g_e2, t);
    if (rc == UVA_EAGAIN) return UVA_TASK_PENDING;
    CHECK(rc);
    CHECK(uva_event_clear(g_e2));
    *waiting = 0;
    g_progress++;
  }
}

static int pong_step(uva_task_t *t, int status, void *data) {
  (void) data;
  if (status != 0) return status;
  while (g_pongs < g_n) {
    int rc = uva_event_wait(g_e1, t);
    if (rc == UVA_EAGAIN) return UVA_TASK_PENDING;
    CHECK(rc);
    CHECK(uva_event_clear(g_e1));
    CHECK(uva_event_set(g_e2));
    g_pongs++;
  }
  return 0;
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv) {
  bench_result r;
  const char *name;
  uva_timer_t *watchdog;
  int holding[2] = {0, 0}, waiting = 0, res[2] = {0, 0}, rc;
  uva_task_step_cb steps[2];
  void *data[2] = {NULL, NULL};
  long base;
  uint64_t t0, c0;

  if (argc != 3 || (g_n = bench_parse_n(argv[2])) < 0) {
    fprintf(stderr, USAGE, argv[0]);
    return 2;
  }
  name = argv[1];
  memset(&r, 0, sizeof r);
  r.impl = "uvasync";
  r.name = name;
  r.n = g_n;
  r.bytes_per_task = -1;
  CHECK(uva_loop_new(&loop));

  if (strcmp(name, "lock") == 0) {
    CHECK(uva_lock_new(&g_lock, loop));
    steps[0] = steps[1] = lock_step;
    data[0] = &holding[0];
    data[1] = &holding[1];
  } else if (strcmp(name, "queue") == 0) {
    CHECK(uva_queue_new(&g_queue, loop, 1, NULL));
    steps[0] = producer_step;
    steps[1] = consumer_step;
  } else if (strcmp(name, "event") == 0) {
    CHECK(uva_event_new(&g_e1, loop));
    CHECK(uva_event_new(&g_e2, loop));
    steps[0] = ping_step;
    steps[1] = pong_step;
    data[0] = &waiting;
  } else {
    fprintf(stderr, USAGE, argv[0]);
    return 2;
  }
  CHECK(uva_timer_new(&watchdog, loop, watchdog_cb, NULL, NULL));
  CHECK(uva_timer_start(watchdog, 1000, 1000));
  CHECK(uva_timer_unref(watchdog)); /* fires, but keeps nothing alive */

  base = bench_rss_bytes();
  t0 = bench_now_ns();
  c0 = bench_cpu_ns();
  CHECK(uva_task_spawn(&g_tasks[0], loop, steps[0], data[0], NULL));
  CHECK(uva_task_spawn(&g_tasks[1], loop, steps[1], data[1], NULL));
  CHECK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  r.wall_ns = bench_now_ns() - t0;
  r.cpu_ns = bench_cpu_ns() - c0;
  r.rss_growth = bench_peak_rss_bytes() - base;

  for (int i = 0; i < 2; i++) {
    CHECK(uva_task_result(&res[i], g_tasks[i]));
    CHECK(uva_task_release(g_tasks[i]));
  }
  r.ok =
      !g_bad && !g_stalled && res[0] == 0 && res[1] == 0 && g_progress == g_n;
  if (strcmp(name, "queue") == 0) r.ok = r.ok && g_put == g_n && g_got == g_n;
  if (strcmp(name, "event") == 0) r.ok = r.ok && g_pongs == g_n;
  if (!r.ok)
    fprintf(stderr, "bench_sync: %s: progress %ld of %ld, results %s %s%s\n",
            name, g_progress, g_n, uva_err_name(res[0]), uva_err_name(res[1]),
            g_bad ? ", out of order" : "");

  CHECK(uva_timer_close(watchdog, NULL));
  if (g_lock != NULL) CHECK(uva_lock_close(g_lock));
  if (g_queue != NULL) CHECK(uva_queue_close(g_queue));
  if (g_e1 != NULL) CHECK(uva_event_close(g_e1));
  if (g_e2 != NULL) CHECK(uva_event_close(g_e2));
  CHECK(uva_loop_run(loop, UVA_RUN_DEFAULT)); /* the timer's close */
  rc = uva_loop_close(loop);
  if (rc != 0) {
    fprintf(stderr, "uva_loop_close: %s\n", uva_err_name(rc));
    r.ok = 0;
  }
  bench_print(&r);
  return r.ok ? 0 : 1;
}
