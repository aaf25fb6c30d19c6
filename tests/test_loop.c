/* Loop: lifecycle, run modes, stop, liveness, clock, call_soon, threads
 * (uvasync.h "Loop"). */
#include "helpers.h"

#ifndef _WIN32
#include <sys/wait.h>
#include <unistd.h>
#endif

Test(loop, new_and_close, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_loop_t *loop2 = uvt_loop_new();
  cr_assert_neq(loop, loop2);
  UVT_CLOSE_LOOP(loop2);
  UVT_CLOSE_LOOP(loop);
}

Test(loop, run_default_without_work_returns_at_once, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int alive = -1;
  double t0;
  UVT_OK(uva_loop_alive(&alive, loop));
  cr_assert_eq(alive, 0);
  t0 = uvt_ms();
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_lt(uvt_ms() - t0, 100 * uvt_mult());
  /* Again: a loop can be run any number of times. */
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  t0 = uvt_ms();
  UVT_OK(uva_loop_run(loop, UVA_RUN_ONCE));
  cr_assert_lt(uvt_ms() - t0, 100 * uvt_mult(), "ONCE blocked with no work");
  UVT_CLOSE_LOOP(loop);
}

/* A step that yields `limit` times, counting its runs. */
struct yielder {
  int runs;
  int limit;
};

static int step_yield_n(uva_task_t *t, int status, void *d) {
  struct yielder *y = (struct yielder *) d;
  (void) t;
  if (status != 0) return status;
  if (++y->runs <= y->limit) return UVA_TASK_YIELD;
  return 0;
}

Test(loop, run_once_and_nowait_do_one_pass, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct yielder y = {0, 3};
  uva_task_t *t;
  int done = -1, alive = -1;
  UVT_OK(uva_task_spawn(&t, loop, step_yield_n, &y, NULL));
  UVT_OK(uva_loop_alive(&alive, loop));
  cr_assert_eq(alive, 1);
  UVT_OK(uva_loop_run(loop, UVA_RUN_ONCE));
  cr_assert_eq(y.runs, 1);
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  cr_assert_eq(y.runs, 2);
  UVT_OK(uva_loop_run(loop, UVA_RUN_ONCE));
  cr_assert_eq(y.runs, 3);
  UVT_OK(uva_task_done(&done, t));
  cr_assert_eq(done, 0);
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  cr_assert_eq(y.runs, 4);
  UVT_OK(uva_task_done(&done, t));
  cr_assert_eq(done, 1);
  UVT_OK(uva_loop_alive(&alive, loop));
  cr_assert_eq(alive, 0);
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

Test(loop, nowait_never_blocks, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int runs = 0;
  uva_task_t *t;
  double t0;
  UVT_OK(uva_task_spawn(&t, loop, uvt_step_sleep10s, &runs, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT)); /* the task starts its sleep */
  cr_assert_eq(runs, 1);
  t0 = uvt_ms();
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  cr_assert_lt(uvt_ms() - t0, 100 * uvt_mult());
  cr_assert_eq(runs, 1);
  UVT_OK(uva_task_cancel(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(runs, 2);
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

Test(loop, run_once_blocks_for_a_timer, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_timer_t *tm;
  int fired = 0, calls = 0;
  double t0 = uvt_ms();
  UVT_OK(uva_timer_new(&tm, loop, uvt_timer_count_cb, &fired, NULL));
  UVT_OK(uva_timer_start(tm, 30, 0));
  /* Nothing is ready: ONCE waits for the timer instead of spinning. */
  while (fired == 0 && calls < 5) {
    UVT_OK(uva_loop_run(loop, UVA_RUN_ONCE));
    calls++;
  }
  cr_assert_eq(fired, 1);
  cr_assert_leq(calls, 2, "ONCE returned %d times before the timer fired",
                calls);
  cr_assert_geq(uvt_ms() - t0, 30);
  UVT_OK(uva_timer_close(tm, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

/* ---- stop -------------------------------------------------------------- */

struct stopper {
  uva_loop_t *loop;
  int runs;
};

/* Stops its loop on the first run, then sleeps 10 s. */
static int step_stop_then_sleep(uva_task_t *t, int status, void *d) {
  struct stopper *s = (struct stopper *) d;
  if (++s->runs == 1) {
    if (uva_loop_stop(s->loop) != 0) return UVA_EINTERNAL;
    if (uva_task_sleep(t, 10000) != 0) return UVA_EINTERNAL;
    return UVA_TASK_PENDING;
  }
  return status;
}

Test(loop, stop_from_a_task, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct stopper s = {loop, 0};
  uva_task_t *t;
  int result = 1;
  double t0 = uvt_ms();
  UVT_OK(uva_task_spawn(&t, loop, step_stop_then_sleep, &s, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_lt(uvt_ms() - t0, 1000 * uvt_mult(), "run did not stop");
  cr_assert_eq(s.runs, 1);
  /* Clean up: cancel the sleeper and let it finish. */
  UVT_OK(uva_task_cancel(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(s.runs, 2);
  UVT_OK(uva_task_result(&result, t));
  cr_assert_eq(result, UVA_ECANCELED);
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

static void *thread_stop_after_50ms(void *arg) {
  uvt_sleep_ms(50);
  return (void *) (intptr_t) uva_loop_stop((uva_loop_t *) arg);
}

Test(loop, stop_from_another_thread, .timeout = 20) {
  uva_loop_t *loop = uvt_loop_new();
  int runs = 0, result = 1;
  uva_task_t *t;
  pthread_t th;
  void *rc;
  double t0, el;
  UVT_OK(uva_task_spawn(&t, loop, uvt_step_sleep10s, &runs, NULL));
  t0 = uvt_ms();
  cr_assert_eq(pthread_create(&th, NULL, thread_stop_after_50ms, loop), 0);
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  el = uvt_ms() - t0;
  cr_assert_eq(pthread_join(th, &rc), 0);
  cr_assert_eq((int) (intptr_t) rc, 0, "uva_loop_stop from thread: %d",
               (int) (intptr_t) rc);
  cr_assert_geq(el, 45, "run returned after %.1f ms, before the stop", el);
  cr_assert_lt(el, 1000 * uvt_mult(), "run returned after %.1f ms", el);
  cr_assert_eq(runs, 1);
  UVT_OK(uva_task_cancel(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_OK(uva_task_result(&result, t));
  cr_assert_eq(result, UVA_ECANCELED);
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

/* "Make the current (or next) uva_loop_run return after its current pass." */
Test(loop, stop_before_run_stops_next_run_after_one_pass, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct yielder y = {0, 1000000};
  uva_task_t *t;
  UVT_OK(uva_task_spawn(&t, loop, step_yield_n, &y, NULL));
  UVT_OK(uva_loop_stop(loop));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(y.runs, 1, "a stop before run: the run did %d passes, want 1",
               y.runs);
  /* The stop is consumed: the next run goes on. */
  y.limit = 5;
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(y.runs, 6);
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

/* ---- close ------------------------------------------------------------- */

Test(loop, close_busy_while_a_task_exists, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_task_t *t;
  UVT_OK(uva_task_spawn(&t, loop, uvt_step_finish, NULL, NULL));
  UVT_EQ(uva_loop_close(loop), UVA_EBUSY);
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  /* Finished but still referenced: it still exists. */
  UVT_EQ(uva_loop_close(loop), UVA_EBUSY);
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

static int step_sleep_20ms(uva_task_t *t, int status, void *d) {
  int *runs = (int *) d;
  if (++*runs == 1 && status == 0) {
    if (uva_task_sleep(t, 20) != 0) return UVA_EINTERNAL;
    return UVA_TASK_PENDING;
  }
  return status;
}

Test(loop, close_busy_while_a_detached_task_runs, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int runs = 0;
  UVT_OK(uva_task_spawn(NULL, loop, step_sleep_20ms, &runs, NULL));
  UVT_EQ(uva_loop_close(loop), UVA_EBUSY);
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  cr_assert_eq(runs, 1);
  UVT_EQ(uva_loop_close(loop), UVA_EBUSY);
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(runs, 2);
  UVT_CLOSE_LOOP(loop);
}

Test(loop, close_busy_while_a_timer_exists, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_timer_t *tm;
  int fired = 0;
  uvt_close_calls = 0;
  UVT_OK(uva_timer_new(&tm, loop, uvt_timer_count_cb, &fired, NULL));
  /* Even a stopped timer exists until closed. */
  UVT_EQ(uva_loop_close(loop), UVA_EBUSY);
  UVT_OK(uva_timer_start(tm, 1, 0));
  UVT_EQ(uva_loop_close(loop), UVA_EBUSY);
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(fired, 1);
  UVT_EQ(uva_loop_close(loop), UVA_EBUSY);
  UVT_OK(uva_timer_close(tm, uvt_count_close));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(uvt_close_calls, 1);
  cr_assert_eq(fired, 1);
  UVT_CLOSE_LOOP(loop);
}

/* ---- clock ------------------------------------------------------------- */

Test(loop, now_is_monotonic_and_advances, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uint64_t a = 0, b = 0, prev = 0;
  int i;
  UVT_OK(uva_loop_now(&a, loop));
  for (i = 0; i < 10000; i++) {
    uint64_t x;
    UVT_OK(uva_loop_now(&x, loop));
    cr_assert_geq(x, prev);
    prev = x;
  }
  UVT_OK(uva_loop_now(&a, loop));
  uvt_sleep_ms(30);
  UVT_OK(uva_loop_now(&b, loop));
  cr_assert_geq(b - a, 29, "now advanced by %llu ms across a 30 ms sleep",
                (unsigned long long) (b - a));
  cr_assert_lt(b - a, 10000);
  UVT_CLOSE_LOOP(loop);
}

struct now_sleep {
  uva_loop_t *loop;
  uint64_t t1, t2;
  int runs;
};

static int step_now_sleep(uva_task_t *t, int status, void *d) {
  struct now_sleep *ns = (struct now_sleep *) d;
  if (status != 0) return status;
  if (++ns->runs == 1) {
    uva_loop_now(&ns->t1, ns->loop);
    if (uva_task_sleep(t, 30) != 0) return UVA_EINTERNAL;
    return UVA_TASK_PENDING;
  }
  uva_loop_now(&ns->t2, ns->loop);
  return 0;
}

Test(loop, now_advances_across_a_task_sleep, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct now_sleep ns;
  memset(&ns, 0, sizeof ns);
  ns.loop = loop;
  UVT_OK(uva_task_spawn(NULL, loop, step_now_sleep, &ns, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(ns.runs, 2);
  cr_assert_geq(ns.t2 - ns.t1, 30, "%llu",
                (unsigned long long) (ns.t2 - ns.t1));
  UVT_CLOSE_LOOP(loop);
}

/* ---- call_soon --------------------------------------------------------- */

static char trace[256];
static int trace_len;

static void trace_put(char c) {
  if (trace_len < (int) sizeof trace - 1) trace[trace_len++] = c;
  trace[trace_len] = '\0';
}

static void call_trace_cb(void *data) { trace_put((char) (intptr_t) data); }

static int step_trace(uva_task_t *t, int status, void *d) {
  (void) t;
  (void) status;
  trace_put((char) (intptr_t) d);
  return 0;
}

Test(loop, call_soon_runs_in_fifo_order, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int i;
  trace_len = 0;
  trace[0] = '\0';
  for (i = 0; i < 26; i++)
    UVT_OK(
        uva_loop_call_soon(loop, call_trace_cb, (void *) (intptr_t) ('a' + i)));
  cr_assert_str_eq(trace, "", "call_soon ran a callback inside the call");
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_str_eq(trace, "abcdefghijklmnopqrstuvwxyz");
  UVT_CLOSE_LOOP(loop);
}

Test(loop, call_soon_fifo_with_tasks, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  trace_len = 0;
  trace[0] = '\0';
  UVT_OK(uva_task_spawn(NULL, loop, step_trace, (void *) (intptr_t) 'T', NULL));
  UVT_OK(uva_loop_call_soon(loop, call_trace_cb, (void *) (intptr_t) 'c'));
  UVT_OK(uva_task_spawn(NULL, loop, step_trace, (void *) (intptr_t) 'U', NULL));
  UVT_OK(uva_loop_call_soon(loop, call_trace_cb, (void *) (intptr_t) 'd'));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_str_eq(trace, "TcUd");
  UVT_CLOSE_LOOP(loop);
}

/* call_soon keeps run(DEFAULT) alive until the callback ran. */
Test(loop, call_soon_keeps_loop_alive, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int n = 0, alive = 0;
  UVT_OK(uva_loop_call_soon(loop, uvt_call_count_cb, &n));
  UVT_OK(uva_loop_alive(&alive, loop));
  cr_assert_eq(alive, 1);
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(n, 1);
  UVT_OK(uva_loop_alive(&alive, loop));
  cr_assert_eq(alive, 0);
  UVT_CLOSE_LOOP(loop);
}

/* ---- call_soon_threadsafe --------------------------------------------- */

#define TS_THREADS 4
#define TS_CALLS 1000

struct ts_state {
  uva_loop_t *loop;
  pthread_t loop_thread;
  int delivered[TS_THREADS * TS_CALLS];
  int total;
  int wrong_thread;
  int send_errors;
  double deadline;
};

static struct ts_state ts;

static void ts_cb(void *data) {
  intptr_t i = (intptr_t) data;
  if (!pthread_equal(pthread_self(), ts.loop_thread)) ts.wrong_thread++;
  if (i >= 0 && i < TS_THREADS * TS_CALLS) ts.delivered[i]++;
  ts.total++;
}

static void *ts_thread(void *arg) {
  intptr_t base = (intptr_t) arg * TS_CALLS, i;
  for (i = 0; i < TS_CALLS; i++) {
    if (uva_loop_call_soon_threadsafe(ts.loop, ts_cb, (void *) (base + i)) != 0)
      __atomic_add_fetch(&ts.send_errors, 1, __ATOMIC_SEQ_CST);
    if (i % 100 == 0) sched_yield();
  }
  return NULL;
}

/* Keeps the loop alive until every call arrived (or a deadline passed). */
static int step_wait_total(uva_task_t *t, int status, void *d) {
  (void) d;
  if (status != 0) return status;
  if (ts.total >= TS_THREADS * TS_CALLS || uvt_ms() > ts.deadline) return 0;
  if (uva_task_sleep(t, 1) != 0) return UVA_EINTERNAL;
  return UVA_TASK_PENDING;
}

Test(loop, call_soon_threadsafe_from_4_threads, .timeout = 30) {
  pthread_t th[TS_THREADS];
  int i, missing = 0, dup = 0;
  memset(&ts, 0, sizeof ts);
  ts.loop = uvt_loop_new();
  ts.loop_thread = pthread_self();
  ts.deadline = uvt_ms() + 10000 * uvt_mult();
  UVT_OK(uva_task_spawn(NULL, ts.loop, step_wait_total, NULL, NULL));
  for (i = 0; i < TS_THREADS; i++)
    cr_assert_eq(pthread_create(&th[i], NULL, ts_thread, (void *) (intptr_t) i),
                 0);
  UVT_OK(uva_loop_run(ts.loop, UVA_RUN_DEFAULT));
  for (i = 0; i < TS_THREADS; i++)
    cr_assert_eq(pthread_join(th[i], NULL), 0);
  cr_assert_eq(ts.send_errors, 0);
  for (i = 0; i < TS_THREADS * TS_CALLS; i++) {
    if (ts.delivered[i] == 0) missing++;
    if (ts.delivered[i] > 1) dup++;
  }
  cr_assert_eq(missing, 0, "%d callbacks never ran", missing);
  cr_assert_eq(dup, 0, "%d callbacks ran more than once", dup);
  cr_assert_eq(ts.total, TS_THREADS * TS_CALLS);
  cr_assert_eq(ts.wrong_thread, 0);
  UVT_CLOSE_LOOP(ts.loop);
  cr_assert_eq(ts.total, TS_THREADS * TS_CALLS);
}

/* A blocked loop (a lone 10 s sleeper) is woken by a foreign call_soon. */
struct ts_wake {
  uva_loop_t *loop;
  uva_task_t *sleeper;
  int called;
};

static void ts_wake_cb(void *data) {
  struct ts_wake *w = (struct ts_wake *) data;
  w->called++;
  uva_task_cancel(w->sleeper);
}

static void *ts_wake_thread(void *arg) {
  struct ts_wake *w = (struct ts_wake *) arg;
  uvt_sleep_ms(30);
  return (void *) (intptr_t) uva_loop_call_soon_threadsafe(w->loop, ts_wake_cb,
                                                           w);
}

Test(loop, call_soon_threadsafe_wakes_a_blocked_loop, .timeout = 20) {
  struct ts_wake w;
  int runs = 0;
  pthread_t th;
  void *rc;
  double t0;
  w.loop = uvt_loop_new();
  w.called = 0;
  UVT_OK(uva_task_spawn(&w.sleeper, w.loop, uvt_step_sleep10s, &runs, NULL));
  t0 = uvt_ms();
  cr_assert_eq(pthread_create(&th, NULL, ts_wake_thread, &w), 0);
  UVT_OK(uva_loop_run(w.loop, UVA_RUN_DEFAULT));
  cr_assert_lt(uvt_ms() - t0, 1000 * uvt_mult());
  cr_assert_eq(pthread_join(th, &rc), 0);
  cr_assert_eq((int) (intptr_t) rc, 0);
  cr_assert_eq(w.called, 1);
  cr_assert_eq(runs, 2);
  UVT_OK(uva_task_release(w.sleeper));
  UVT_OK(uva_loop_run(w.loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(w.loop);
}

static void *ts_post_one(void *arg) {
  return (void *) (intptr_t) uva_loop_call_soon_threadsafe(
      (uva_loop_t *) ((void **) arg)[0], uvt_call_count_cb, ((void **) arg)[1]);
}

/* "... or while uva_loop_close drains the loop": queued calls still run. */
Test(loop, close_runs_queued_threadsafe_calls, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int n = 0;
  void *args[2];
  pthread_t th;
  void *rc;
  args[0] = loop;
  args[1] = &n;
  cr_assert_eq(pthread_create(&th, NULL, ts_post_one, args), 0);
  cr_assert_eq(pthread_join(th, &rc), 0);
  cr_assert_eq((int) (intptr_t) rc, 0);
  cr_assert_eq(n, 0);
  UVT_CLOSE_LOOP(loop);
  cr_assert_eq(n, 1);
}

/* ---- re-entry ---------------------------------------------------------- */

struct reenter {
  uva_loop_t *loop;
  uva_loop_t *other;
  int rc_same_default, rc_same_nowait, rc_other, rc_close, rc_cb;
  int runs;
};

static int step_reenter(uva_task_t *t, int status, void *d) {
  struct reenter *r = (struct reenter *) d;
  (void) t;
  (void) status;
  r->runs++;
  r->rc_same_default = uva_loop_run(r->loop, UVA_RUN_DEFAULT);
  r->rc_same_nowait = uva_loop_run(r->loop, UVA_RUN_NOWAIT);
  r->rc_other = uva_loop_run(r->other, UVA_RUN_NOWAIT);
  r->rc_close = uva_loop_close(r->loop);
  return 0;
}

static void cb_reenter(void *d) {
  struct reenter *r = (struct reenter *) d;
  r->rc_cb = uva_loop_run(r->loop, UVA_RUN_ONCE);
}

Test(loop, run_reentered_returns_erunning, .timeout = 10) {
  struct reenter r;
  memset(&r, 0, sizeof r);
  r.loop = uvt_loop_new();
  r.other = uvt_loop_new();
  UVT_OK(uva_task_spawn(NULL, r.loop, step_reenter, &r, NULL));
  UVT_OK(uva_loop_call_soon(r.loop, cb_reenter, &r));
  UVT_OK(uva_loop_run(r.loop, UVA_RUN_DEFAULT));
  cr_assert_eq(r.runs, 1);
  cr_assert_eq(r.rc_same_default, UVA_ERUNNING, "%d", r.rc_same_default);
  cr_assert_eq(r.rc_same_nowait, UVA_ERUNNING, "%d", r.rc_same_nowait);
  cr_assert_eq(r.rc_other, UVA_ERUNNING, "another loop in the same thread: %d",
               r.rc_other);
  cr_assert_eq(r.rc_close, UVA_ERUNNING, "close while running: %d", r.rc_close);
  cr_assert_eq(r.rc_cb, UVA_ERUNNING, "from call_soon: %d", r.rc_cb);
  /* The loop still works afterwards. */
  UVT_OK(uva_loop_run(r.other, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(r.other);
  UVT_CLOSE_LOOP(r.loop);
}

#ifndef _WIN32
/* Forks from a callback of a running loop: the child runs a loop of its
 * own and exits 0 if it could. */
static void cb_fork_and_run(void *arg) {
  pid_t *pid = (pid_t *) arg;
  *pid = fork();
  if (*pid == 0) {
    uva_loop_t *child = NULL;
    int ok = uva_loop_new(&child) == 0 &&
             uva_loop_run(child, UVA_RUN_DEFAULT) == 0 &&
             uva_loop_close(child) == 0;
    _exit(ok ? 0 : 1);
  }
}

/* A child forked while a loop ran in the forking thread (as a process pool
 * forks its workers) is not running that loop: it can run its own. */
Test(loop, a_child_forked_while_running_runs_its_own_loop, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  pid_t pid = -1;
  int status = -1;
  UVT_OK(uva_loop_call_soon(loop, cb_fork_and_run, &pid));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_gt(pid, 0);
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "the child could not run a loop: status %d", status);
  UVT_CLOSE_LOOP(loop);
}
#endif

/* ---- foreign threads --------------------------------------------------- */

struct foreign {
  uva_loop_t *loop;
  int rc_now, rc_spawn, rc_timer, rc_run, rc_alive, rc_call_soon, rc_set,
      rc_get, rc_close, rc_stop, rc_ts;
  int dtor_calls;
  uva_task_t *t;
  uva_timer_t *tm;
};

static void *foreign_thread(void *arg) {
  struct foreign *f = (struct foreign *) arg;
  uint64_t now;
  int alive;
  void *p;
  f->rc_now = uva_loop_now(&now, f->loop);
  f->rc_spawn = uva_task_spawn(&f->t, f->loop, uvt_step_finish, &f->dtor_calls,
                               uvt_count_dtor);
  f->rc_timer = uva_timer_new(&f->tm, f->loop, uvt_timer_count_cb,
                              &f->dtor_calls, uvt_count_dtor);
  f->rc_run = uva_loop_run(f->loop, UVA_RUN_NOWAIT);
  f->rc_alive = uva_loop_alive(&alive, f->loop);
  f->rc_call_soon =
      uva_loop_call_soon(f->loop, uvt_call_count_cb, &f->dtor_calls);
  f->rc_set = uva_loop_set_data(f->loop, f, NULL);
  f->rc_get = uva_loop_get_data(&p, f->loop);
  f->rc_close = uva_loop_close(f->loop);
  return NULL;
}

Test(loop, foreign_thread_calls_return_ewrongthread, .timeout = 10) {
  struct foreign f;
  void *p = (void *) 1;
  memset(&f, 0, sizeof f);
  f.loop = uvt_loop_new();
  uvt_thread_run(foreign_thread, &f);
  cr_expect_eq(f.rc_now, UVA_EWRONGTHREAD, "uva_loop_now: %d", f.rc_now);
  cr_expect_eq(f.rc_spawn, UVA_EWRONGTHREAD, "uva_task_spawn: %d", f.rc_spawn);
  cr_expect_eq(f.rc_timer, UVA_EWRONGTHREAD, "uva_timer_new: %d", f.rc_timer);
  cr_expect_eq(f.rc_run, UVA_EWRONGTHREAD, "uva_loop_run: %d", f.rc_run);
  cr_expect_eq(f.rc_alive, UVA_EWRONGTHREAD, "uva_loop_alive: %d", f.rc_alive);
  cr_expect_eq(f.rc_call_soon, UVA_EWRONGTHREAD, "uva_loop_call_soon: %d",
               f.rc_call_soon);
  cr_expect_eq(f.rc_set, UVA_EWRONGTHREAD, "uva_loop_set_data: %d", f.rc_set);
  cr_expect_eq(f.rc_get, UVA_EWRONGTHREAD, "uva_loop_get_data: %d", f.rc_get);
  cr_expect_eq(f.rc_close, UVA_EWRONGTHREAD, "uva_loop_close: %d", f.rc_close);
  /* Nothing was created, no destructor ran, no data was attached. */
  UVT_OK(uva_loop_get_data(&p, f.loop));
  cr_assert_null(p);
  UVT_OK(uva_loop_run(f.loop, UVA_RUN_DEFAULT));
  cr_assert_eq(f.dtor_calls, 0);
  UVT_CLOSE_LOOP(f.loop);
  cr_assert_eq(f.dtor_calls, 0);
}

/* ---- several loops, several threads ------------------------------------ */

struct worker {
  int index;
  int rc;          /* first failing call, or 0 */
  int task_runs;   /* steps run */
  int tasks_done;  /* tasks finished */
  int timer_fires; /* timer callbacks */
  int close_rc;
  pthread_t self;
  int wrong_thread; /* callbacks seen on another thread */
};

#define W_TASKS 20
#define W_STEPS 5
#define W_FIRES 5

struct wtask {
  struct worker *w;
  int n;
};

static int worker_step(uva_task_t *t, int status, void *d) {
  struct wtask *wt = (struct wtask *) d;
  if (!pthread_equal(pthread_self(), wt->w->self)) wt->w->wrong_thread++;
  wt->w->task_runs++;
  if (status != 0) return status;
  if (++wt->n > W_STEPS) {
    wt->w->tasks_done++;
    return 0;
  }
  if (wt->n % 2 == 0) return UVA_TASK_YIELD;
  if (uva_task_sleep(t, 1 + wt->n) != 0) return UVA_EINTERNAL;
  return UVA_TASK_PENDING;
}

static void worker_timer_cb(uva_timer_t *tm, void *d) {
  struct worker *w = (struct worker *) d;
  if (!pthread_equal(pthread_self(), w->self)) w->wrong_thread++;
  if (++w->timer_fires == W_FIRES) uva_timer_stop(tm);
}

static void *worker_main(void *arg) {
  struct worker *w = (struct worker *) arg;
  struct wtask wts[W_TASKS];
  uva_loop_t *loop = NULL;
  uva_timer_t *tm = NULL;
  int i;
  w->self = pthread_self();
  if ((w->rc = uva_loop_new(&loop)) != 0) return NULL;
  for (i = 0; i < W_TASKS; i++) {
    wts[i].w = w;
    wts[i].n = 0;
    if ((w->rc = uva_task_spawn(NULL, loop, worker_step, &wts[i], NULL)) != 0)
      return NULL;
  }
  if ((w->rc = uva_timer_new(&tm, loop, worker_timer_cb, w, NULL)) != 0)
    return NULL;
  if ((w->rc = uva_timer_start(tm, 2, 3)) != 0) return NULL;
  if ((w->rc = uva_loop_run(loop, UVA_RUN_DEFAULT)) != 0) return NULL;
  if ((w->rc = uva_timer_close(tm, NULL)) != 0) return NULL;
  if ((w->rc = uva_loop_run(loop, UVA_RUN_DEFAULT)) != 0) return NULL;
  w->close_rc = uva_loop_close(loop);
  return NULL;
}

Test(loop, several_loops_in_several_threads, .timeout = 30) {
  struct worker w[4];
  pthread_t th[4];
  int i;
  memset(w, 0, sizeof w);
  for (i = 0; i < 4; i++) {
    w[i].index = i;
    cr_assert_eq(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
  }
  for (i = 0; i < 4; i++)
    cr_assert_eq(pthread_join(th[i], NULL), 0);
  for (i = 0; i < 4; i++) {
    cr_expect_eq(w[i].rc, 0, "worker %d: %d (%s)", i, w[i].rc,
                 uva_err_name(w[i].rc));
    cr_expect_eq(w[i].tasks_done, W_TASKS, "worker %d", i);
    cr_expect_eq(w[i].task_runs, W_TASKS * (W_STEPS + 1), "worker %d", i);
    cr_expect_eq(w[i].timer_fires, W_FIRES, "worker %d", i);
    cr_expect_eq(w[i].wrong_thread, 0, "worker %d", i);
    cr_expect_eq(w[i].close_rc, 0, "worker %d: uva_loop_close %d", i,
                 w[i].close_rc);
  }
}

/* ---- ref / unref ------------------------------------------------------- */

Test(loop, unrefd_task_does_not_keep_run_alive, .timeout = 20) {
  uva_loop_t *loop = uvt_loop_new();
  int runs = 0, alive = -1, result = 1;
  uva_task_t *t;
  double t0;
  UVT_OK(uva_task_spawn(&t, loop, uvt_step_sleep10s, &runs, NULL));
  /* One pass so that it starts sleeping, then unref it. */
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  cr_assert_eq(runs, 1);
  UVT_OK(uva_loop_alive(&alive, loop));
  cr_assert_eq(alive, 1);
  UVT_OK(uva_task_unref(t));
  UVT_OK(uva_loop_alive(&alive, loop));
  cr_assert_eq(alive, 0);
  t0 = uvt_ms();
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_lt(uvt_ms() - t0, 1000 * uvt_mult(),
               "an unref'd sleeper kept "
               "the loop running");
  cr_assert_eq(runs, 1);
  /* Clean up: cancel, ref again so DEFAULT runs it to its end. */
  UVT_OK(uva_task_cancel(t));
  UVT_OK(uva_task_ref(t));
  UVT_OK(uva_loop_alive(&alive, loop));
  cr_assert_eq(alive, 1);
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(runs, 2);
  UVT_OK(uva_task_result(&result, t));
  cr_assert_eq(result, UVA_ECANCELED);
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

Test(loop, unrefd_task_beside_refd_work, .timeout = 20) {
  uva_loop_t *loop = uvt_loop_new();
  int runs = 0, ref_runs = 0;
  uva_task_t *daemon, *worker;
  double t0 = uvt_ms();
  UVT_OK(uva_task_spawn(&daemon, loop, uvt_step_sleep10s, &runs, NULL));
  UVT_OK(uva_task_unref(daemon));
  UVT_OK(uva_task_spawn(&worker, loop, uvt_step_park, &ref_runs, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  cr_assert_eq(runs, 1);
  cr_assert_eq(ref_runs, 1);
  UVT_OK(uva_task_wake(worker));
  /* Returns once the referenced worker is done; the daemon still sleeps. */
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_lt(uvt_ms() - t0, 1000 * uvt_mult());
  cr_assert_eq(ref_runs, 2);
  cr_assert_eq(runs, 1);
  UVT_OK(uva_task_cancel(daemon));
  UVT_OK(uva_task_ref(daemon));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(runs, 2);
  UVT_OK(uva_task_release(daemon));
  UVT_OK(uva_task_release(worker));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

Test(loop, unrefd_timer_does_not_keep_run_alive, .timeout = 20) {
  uva_loop_t *loop = uvt_loop_new();
  uva_timer_t *tm;
  int fired = 0, alive = -1;
  double t0;
  UVT_OK(uva_timer_new(&tm, loop, uvt_timer_count_cb, &fired, NULL));
  UVT_OK(uva_timer_start(tm, 10000, 0));
  UVT_OK(uva_loop_alive(&alive, loop));
  cr_assert_eq(alive, 1);
  UVT_OK(uva_timer_unref(tm));
  UVT_OK(uva_loop_alive(&alive, loop));
  cr_assert_eq(alive, 0);
  t0 = uvt_ms();
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_lt(uvt_ms() - t0, 1000 * uvt_mult());
  cr_assert_eq(fired, 0);
  UVT_OK(uva_timer_active(&alive, tm));
  cr_assert_eq(alive, 1);
  /* ref again: now it keeps the loop alive. */
  UVT_OK(uva_timer_ref(tm));
  UVT_OK(uva_timer_start(tm, 5, 0));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(fired, 1);
  UVT_OK(uva_timer_close(tm, uvt_count_close));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(uvt_close_calls, 1);
  cr_assert_eq(fired, 1);
  UVT_CLOSE_LOOP(loop);
}

/* ---- user data --------------------------------------------------------- */

static int loop_dtor_a, loop_dtor_b;
static void *loop_dtor_b_arg;

static void loop_dtor_a_cb(void *d) {
  (void) d;
  loop_dtor_a++;
}

static void loop_dtor_b_cb(void *d) {
  loop_dtor_b++;
  loop_dtor_b_arg = d;
}

Test(loop, user_data_get_set, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int a, b;
  void *p = (void *) 1;
  UVT_OK(uva_loop_get_data(&p, loop));
  cr_assert_null(p);
  UVT_OK(uva_loop_set_data(loop, &a, loop_dtor_a_cb));
  UVT_OK(uva_loop_get_data(&p, loop));
  cr_assert_eq(p, &a);
  /* Replacing the data does not destroy the old one. */
  UVT_OK(uva_loop_set_data(loop, &b, loop_dtor_b_cb));
  cr_assert_eq(loop_dtor_a, 0);
  UVT_OK(uva_loop_get_data(&p, loop));
  cr_assert_eq(p, &b);
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(loop_dtor_b, 0);
  UVT_CLOSE_LOOP(loop);
  cr_assert_eq(loop_dtor_a, 0);
  cr_assert_eq(loop_dtor_b, 1);
  cr_assert_eq(loop_dtor_b_arg, &b);
}

Test(loop, user_data_null_dtor, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int a;
  void *p = NULL;
  UVT_OK(uva_loop_set_data(loop, &a, NULL));
  UVT_OK(uva_loop_get_data(&p, loop));
  cr_assert_eq(p, &a);
  UVT_CLOSE_LOOP(loop);
}

/* ---- wait hooks (a binding's global lock around the kernel wait) -------- */

struct hooks {
  int before, after;
  int depth;   /* 1 between before and after */
  int bad;     /* before twice, or after without before */
  int in_step; /* a step ran while "waiting" */
};

static void hook_before(void *d) {
  struct hooks *h = (struct hooks *) d;
  if (h->depth != 0) h->bad++;
  h->depth = 1;
  h->before++;
}

static void hook_after(void *d) {
  struct hooks *h = (struct hooks *) d;
  if (h->depth != 1) h->bad++;
  h->depth = 0;
  h->after++;
}

static struct hooks *hook_seen;

static int step_sleep_then_check(uva_task_t *t, int status, void *d) {
  int *n = (int *) d;
  if (status != 0) return status;
  if (hook_seen->depth != 0) hook_seen->in_step++;
  if ((*n)++ < 3) {
    UVT_OK(uva_task_sleep(t, 5));
    return UVA_TASK_PENDING;
  }
  return 0;
}

Test(loop, wait_hooks_pair_around_each_wait_and_never_wrap_steps,
     .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct hooks h = {0, 0, 0, 0, 0};
  int n = 0;
  hook_seen = &h;
  UVT_OK(uva_loop_set_wait_hooks(loop, hook_before, hook_after, &h));
  UVT_OK(uva_task_spawn(NULL, loop, step_sleep_then_check, &n, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(n, 4);
  cr_assert_geq(h.before, 3, "one wait per sleep at least");
  cr_assert_eq(h.before, h.after);
  cr_assert_eq(h.bad, 0);
  cr_assert_eq(h.in_step, 0, "a step ran between before and after");
  /* Removed: no more calls. */
  UVT_OK(uva_loop_set_wait_hooks(loop, NULL, NULL, NULL));
  int before = h.before;
  n = 0;
  UVT_OK(uva_task_spawn(NULL, loop, step_sleep_then_check, &n, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(h.before, before);
  /* Only one of the two is an error. */
  cr_assert_eq(uva_loop_set_wait_hooks(loop, hook_before, NULL, &h),
               UVA_EINVAL);
  cr_assert_eq(uva_loop_set_wait_hooks(NULL, NULL, NULL, NULL), UVA_EINVAL);
  UVT_CLOSE_LOOP(loop);
}

/* ---- adopt: another thread becomes the owner ----------------------------- */

struct adopter {
  uva_loop_t *loop;
  int adopt_rc, run_rc, runs;
};

static int step_count(uva_task_t *t, int status, void *data) {
  (void) t;
  (void) status;
  ((struct adopter *) data)->runs++;
  return 0;
}

static void *thread_adopt_and_run(void *arg) {
  struct adopter *a = (struct adopter *) arg;
  uva_task_t *t = NULL;
  a->adopt_rc = uva_loop_adopt(a->loop);
  if (a->adopt_rc == 0 &&
      uva_task_spawn(&t, a->loop, step_count, a, NULL) == 0) {
    a->run_rc = uva_loop_run(a->loop, UVA_RUN_DEFAULT);
    uva_task_release(t);
    uva_loop_run(a->loop, UVA_RUN_DEFAULT);
  }
  return NULL;
}

static int step_adopt_while_running(uva_task_t *t, int status, void *data) {
  struct adopter *a = (struct adopter *) data;
  (void) t;
  (void) status;
  a->adopt_rc = uva_loop_adopt(a->loop);
  return 0;
}

Test(loop, adopt_hands_the_loop_to_another_thread, .timeout = 20) {
  uva_loop_t *loop = uvt_loop_new();
  struct adopter a = {loop, 1, 1, 0};
  uva_task_t *t;
  pthread_t th;
  cr_assert_eq(uva_loop_adopt(NULL), UVA_EINVAL);
  UVT_OK(uva_loop_adopt(loop)); /* the owner already: nothing to do */
  cr_assert_eq(pthread_create(&th, NULL, thread_adopt_and_run, &a), 0);
  cr_assert_eq(pthread_join(th, NULL), 0);
  cr_assert_eq(a.adopt_rc, 0);
  cr_assert_eq(a.run_rc, 0);
  cr_assert_eq(a.runs, 1, "the task ran %d times in the new owner", a.runs);
  /* this thread is no longer the owner ... */
  cr_assert_eq(uva_loop_run(loop, UVA_RUN_NOWAIT), UVA_EWRONGTHREAD);
  cr_assert_eq(uva_task_spawn(&t, loop, step_count, &a, NULL),
               UVA_EWRONGTHREAD);
  /* ... until it takes the loop back; not while it runs */
  UVT_OK(uva_loop_adopt(loop));
  UVT_OK(uva_task_spawn(&t, loop, step_adopt_while_running, &a, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(a.adopt_rc, UVA_ERUNNING);
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}
