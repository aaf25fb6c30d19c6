/* Tasks: spawn, result, user data, yield, sleep, join, wake, cancel, done
 * callbacks, current, references (uvasync.h "Task"). */
#include "helpers.h"

/* ---- spawn and result -------------------------------------------------- */

struct first_run {
  uva_task_t *seen_task;
  void *seen_data;
  int status;
  int runs;
};

static int step_record(uva_task_t *t, int status, void *d) {
  struct first_run *fr = (struct first_run *) d;
  fr->seen_task = t;
  fr->seen_data = d;
  fr->status = status;
  fr->runs++;
  return 0;
}

Test(task, spawn_runs_step_at_next_pass_with_status_0, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct first_run fr = {NULL, NULL, 12345, 0};
  uva_task_t *t = NULL;
  int done = -1;
  UVT_OK(uva_task_spawn(&t, loop, step_record, &fr, NULL));
  cr_assert_not_null(t);
  cr_assert_eq(fr.runs, 0, "the step ran inside uva_task_spawn");
  UVT_OK(uva_task_done(&done, t));
  cr_assert_eq(done, 0);
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  cr_assert_eq(fr.runs, 1);
  cr_assert_eq(fr.status, 0);
  cr_assert_eq(fr.seen_task, t);
  cr_assert_eq(fr.seen_data, &fr);
  UVT_OK(uva_task_done(&done, t));
  cr_assert_eq(done, 1);
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(fr.runs, 1);
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

Test(task, get_data_and_get_loop, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new(), *l2 = NULL;
  int x;
  void *p = NULL;
  uva_task_t *t;
  UVT_OK(uva_task_spawn(&t, loop, uvt_step_finish, &x, NULL));
  UVT_OK(uva_task_get_data(&p, t));
  cr_assert_eq(p, &x);
  UVT_OK(uva_task_get_loop(&l2, t));
  cr_assert_eq(l2, loop);
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  /* Still readable after it finished, while referenced. */
  UVT_OK(uva_task_get_data(&p, t));
  cr_assert_eq(p, &x);
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

static int step_return_value(uva_task_t *t, int status, void *d) {
  (void) t;
  (void) status;
  return (int) (intptr_t) d;
}

Test(task, result_kept_after_finish, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_task_t *ok, *bad;
  int r = 1;
  UVT_OK(uva_task_spawn(&ok, loop, step_return_value, (void *) (intptr_t) 0,
                        NULL));
  UVT_OK(uva_task_spawn(&bad, loop, step_return_value,
                        (void *) (intptr_t) UVA_ENOENT, NULL));
  UVT_EQ(uva_task_result(&r, ok), UVA_EAGAIN);
  UVT_EQ(uva_task_result(&r, bad), UVA_EAGAIN);
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  r = 1;
  UVT_OK(uva_task_result(&r, ok));
  cr_assert_eq(r, 0);
  UVT_OK(uva_task_result(&r, bad));
  cr_assert_eq(r, UVA_ENOENT);
  /* Kept: more passes, same answer. */
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  UVT_OK(uva_task_result(&r, bad));
  cr_assert_eq(r, UVA_ENOENT);
  UVT_OK(uva_task_release(ok));
  UVT_OK(uva_task_release(bad));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

/* ---- user-data destructor --------------------------------------------- */

struct dtor_probe {
  int calls;
  pthread_t thread;
  int runs;
};

static void probe_dtor(void *d) {
  struct dtor_probe *p = (struct dtor_probe *) d;
  p->calls++;
  p->thread = pthread_self();
}

/* Sleeps 5 ms once, then finishes. */
static int step_probe(uva_task_t *t, int status, void *d) {
  struct dtor_probe *p = (struct dtor_probe *) d;
  if (p->calls != 0) return UVA_EINTERNAL; /* destroyed while alive */
  if (++p->runs == 1 && status == 0) {
    if (uva_task_sleep(t, 5) != 0) return UVA_EINTERNAL;
    return UVA_TASK_PENDING;
  }
  return status;
}

Test(task, dtor_once_for_released_task, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct dtor_probe p;
  uva_task_t *t;
  memset(&p, 0, sizeof p);
  UVT_OK(uva_task_spawn(&t, loop, step_probe, &p, probe_dtor));
  /* Released before it ran: it runs anyway (detached). */
  UVT_OK(uva_task_release(t));
  cr_assert_eq(p.calls, 0);
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(p.runs, 2);
  UVT_CLOSE_LOOP(loop);
  cr_assert_eq(p.calls, 1);
  cr_assert(pthread_equal(p.thread, pthread_self()));
}

Test(task, dtor_once_for_detached_task, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct dtor_probe p;
  memset(&p, 0, sizeof p);
  UVT_OK(uva_task_spawn(NULL, loop, step_probe, &p, probe_dtor));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(p.runs, 2);
  UVT_CLOSE_LOOP(loop);
  cr_assert_eq(p.calls, 1);
}

/* Finished, released, then the loop is closed without another run. */
Test(task, dtor_once_on_loop_close_path, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct dtor_probe p;
  uva_task_t *t;
  memset(&p, 0, sizeof p);
  UVT_OK(uva_task_spawn(&t, loop, step_probe, &p, probe_dtor));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(p.runs, 2);
  cr_assert_eq(p.calls, 0, "destroyed while referenced");
  UVT_OK(uva_task_release(t));
  UVT_CLOSE_LOOP(loop);
  cr_assert_eq(p.calls, 1);
  cr_assert(pthread_equal(p.thread, pthread_self()));
}

static void *release_in_thread(void *arg) {
  return (void *) (intptr_t) uva_task_release((uva_task_t *) arg);
}

/* The last release on a foreign thread: the destructor still runs on the
 * loop thread. */
Test(task, dtor_on_loop_thread_after_foreign_release, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct dtor_probe p;
  uva_task_t *t;
  pthread_t th;
  void *rc;
  memset(&p, 0, sizeof p);
  UVT_OK(uva_task_spawn(&t, loop, step_probe, &p, probe_dtor));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(p.calls, 0);
  cr_assert_eq(pthread_create(&th, NULL, release_in_thread, t), 0);
  cr_assert_eq(pthread_join(th, &rc), 0);
  cr_assert_eq((int) (intptr_t) rc, 0);
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  UVT_CLOSE_LOOP(loop);
  cr_assert_eq(p.calls, 1);
  cr_assert(pthread_equal(p.thread, pthread_self()),
            "destructor ran on the releasing thread");
}

Test(task, retain_keeps_task_until_last_release, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct dtor_probe p;
  uva_task_t *t;
  int done = 0, r = 1;
  memset(&p, 0, sizeof p);
  UVT_OK(uva_task_spawn(&t, loop, step_probe, &p, probe_dtor));
  UVT_OK(uva_task_retain(t));
  UVT_OK(uva_task_retain(t));
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  cr_assert_eq(p.calls, 0, "freed while a reference remains");
  /* The remaining reference still reads the task. */
  UVT_OK(uva_task_done(&done, t));
  cr_assert_eq(done, 1);
  UVT_OK(uva_task_result(&r, t));
  cr_assert_eq(r, 0);
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  UVT_CLOSE_LOOP(loop);
  cr_assert_eq(p.calls, 1);
}

/* After the owner's release, a reference taken with retain keeps the handle
 * fully usable (cancel, done, result). */
Test(task, retained_reference_usable_after_owner_release, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int runs = 0, r = 1, done = 1;
  uva_task_t *t;
  UVT_OK(uva_task_spawn(&t, loop, uvt_step_park, &runs, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT)); /* parks */
  UVT_OK(uva_task_retain(t));                 /* e.g. a waker object */
  UVT_OK(uva_task_release(t));                /* the spawn reference */
  UVT_OK(uva_task_done(&done, t));
  cr_assert_eq(done, 0);
  UVT_OK(uva_task_cancel(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(runs, 2);
  UVT_OK(uva_task_result(&r, t));
  cr_assert_eq(r, UVA_ECANCELED);
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

static void *retain_release_loop(void *arg) {
  int i, bad = 0;
  for (i = 0; i < 100000; i++) {
    if (uva_task_retain((uva_task_t *) arg) != 0) bad++;
    if (uva_task_release((uva_task_t *) arg) != 0) bad++;
  }
  return (void *) (intptr_t) bad;
}

Test(task, retain_release_thread_safe, .timeout = 30) {
  uva_loop_t *loop = uvt_loop_new();
  struct dtor_probe p;
  uva_task_t *t;
  pthread_t th[3];
  void *rc;
  int i;
  memset(&p, 0, sizeof p);
  UVT_OK(uva_task_spawn(&t, loop, step_probe, &p, probe_dtor));
  for (i = 0; i < 3; i++)
    cr_assert_eq(pthread_create(&th[i], NULL, retain_release_loop, t), 0);
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  for (i = 0; i < 3; i++) {
    cr_assert_eq(pthread_join(th[i], &rc), 0);
    cr_assert_eq((int) (intptr_t) rc, 0);
  }
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  cr_assert_eq(p.calls, 0);
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  UVT_CLOSE_LOOP(loop);
  cr_assert_eq(p.calls, 1);
}

/* ---- yield ------------------------------------------------------------- */

static char trace[512];
static int trace_len;

static void trace_reset(void) {
  trace_len = 0;
  trace[0] = '\0';
}

static void trace_put(char c) {
  if (trace_len < (int) sizeof trace - 1) trace[trace_len++] = c;
  trace[trace_len] = '\0';
}

struct ytask {
  char name;
  int runs;
  int use_return; /* 1: return UVA_TASK_YIELD, 0: uva_task_yield() */
  int yields;     /* how many times to yield */
  int rc;
};

static int step_yielder(uva_task_t *t, int status, void *d) {
  struct ytask *y = (struct ytask *) d;
  if (status != 0) return status;
  trace_put(y->runs == 0 ? y->name : (char) (y->name + ('a' - 'A')));
  if (y->runs++ < y->yields) {
    if (y->use_return) return UVA_TASK_YIELD;
    y->rc = uva_task_yield(t);
    return UVA_TASK_PENDING;
  }
  return 0;
}

static void yield_scenario(int use_return) {
  uva_loop_t *loop = uvt_loop_new();
  struct ytask a = {'A', 0, 0, 2, 0}, b = {'B', 0, 0, 0, 0},
               c = {'C', 0, 0, 1, 0};
  a.use_return = c.use_return = use_return;
  trace_reset();
  UVT_OK(uva_task_spawn(NULL, loop, step_yielder, &a, NULL));
  UVT_OK(uva_task_spawn(NULL, loop, step_yielder, &b, NULL));
  UVT_OK(uva_task_spawn(NULL, loop, step_yielder, &c, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  /* A yields twice, C once: each goes behind the others. */
  cr_assert_str_eq(trace, "ABCaca");
  cr_assert_eq(a.rc, 0);
  cr_assert_eq(c.rc, 0);
  UVT_CLOSE_LOOP(loop);
}

Test(task, yield_goes_to_the_back, .timeout = 10) { yield_scenario(0); }

Test(task, return_yield_goes_to_the_back, .timeout = 10) { yield_scenario(1); }

/* ---- sleep ------------------------------------------------------------- */

struct sleeper {
  int runs;
  int status2;
  double t0, t1;
  int64_t ms;
};

static int step_sleeper(uva_task_t *t, int status, void *d) {
  struct sleeper *s = (struct sleeper *) d;
  if (++s->runs == 1) {
    s->t0 = uvt_ms();
    if (uva_task_sleep(t, s->ms) != 0) return UVA_EINTERNAL;
    return UVA_TASK_PENDING;
  }
  s->t1 = uvt_ms();
  s->status2 = status;
  return 0;
}

Test(task, sleep_resumes_after_the_delay_with_status_0, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct sleeper s;
  memset(&s, 0, sizeof s);
  s.ms = 30;
  s.status2 = 1;
  UVT_OK(uva_task_spawn(NULL, loop, step_sleeper, &s, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(s.runs, 2);
  cr_assert_eq(s.status2, 0);
  cr_assert_geq(s.t1 - s.t0, 30.0, "slept %.3f ms", s.t1 - s.t0);
  cr_assert_lt(s.t1 - s.t0, 30 + 500 * uvt_mult(), "slept %.3f ms",
               s.t1 - s.t0);
  UVT_CLOSE_LOOP(loop);
}

Test(task, sleep_0_resumes_at_a_later_pass, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct sleeper s;
  memset(&s, 0, sizeof s);
  s.ms = 0;
  s.status2 = 1;
  UVT_OK(uva_task_spawn(NULL, loop, step_sleeper, &s, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  cr_assert_eq(s.runs, 1, "resumed within the pass that set the sleep");
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(s.runs, 2);
  cr_assert_eq(s.status2, 0);
  UVT_CLOSE_LOOP(loop);
}

/* ---- join -------------------------------------------------------------- */

struct joiner {
  uva_task_t *other;
  int runs;
  int join_rc;
  int status2;
  int other_done_at_resume;
  int other_result;
};

static int step_joiner(uva_task_t *t, int status, void *d) {
  struct joiner *j = (struct joiner *) d;
  if (++j->runs == 1 && status == 0) {
    j->join_rc = uva_task_join(t, j->other);
    if (j->join_rc != 0) return j->join_rc;
    return UVA_TASK_PENDING;
  }
  j->status2 = status;
  uva_task_done(&j->other_done_at_resume, j->other);
  if (uva_task_result(&j->other_result, j->other) != 0) j->other_result = 1;
  return status;
}

Test(task, join_waits_for_the_other_and_reads_its_result, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct sleeper s;
  struct joiner j;
  uva_task_t *b, *a;
  int r = 1;
  memset(&s, 0, sizeof s);
  memset(&j, 0, sizeof j);
  s.ms = 20;
  j.status2 = 1;
  UVT_OK(uva_task_spawn(&b, loop, step_sleeper, &s, NULL));
  j.other = b;
  UVT_OK(uva_task_spawn(&a, loop, step_joiner, &j, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(j.join_rc, 0);
  cr_assert_eq(j.runs, 2);
  cr_assert_eq(j.status2, 0);
  cr_assert_eq(j.other_done_at_resume, 1);
  cr_assert_eq(j.other_result, 0);
  UVT_OK(uva_task_result(&r, a));
  cr_assert_eq(r, 0);
  UVT_OK(uva_task_release(a));
  UVT_OK(uva_task_release(b));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

static int step_sleep_then_fail(uva_task_t *t, int status, void *d) {
  int *runs = (int *) d;
  if (++*runs == 1 && status == 0) {
    if (uva_task_sleep(t, 10) != 0) return UVA_EINTERNAL;
    return UVA_TASK_PENDING;
  }
  return UVA_E2BIG;
}

Test(task, several_joiners_get_the_error_result, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct joiner j[3];
  uva_task_t *b;
  int runs = 0, i;
  memset(j, 0, sizeof j);
  UVT_OK(uva_task_spawn(&b, loop, step_sleep_then_fail, &runs, NULL));
  for (i = 0; i < 3; i++) {
    j[i].other = b;
    UVT_OK(uva_task_spawn(NULL, loop, step_joiner, &j[i], NULL));
  }
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  for (i = 0; i < 3; i++) {
    cr_assert_eq(j[i].runs, 2);
    cr_assert_eq(j[i].status2, 0);
    cr_assert_eq(j[i].other_result, UVA_E2BIG);
  }
  UVT_OK(uva_task_release(b));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

Test(task, join_on_finished_task_resumes_next_pass, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct joiner j;
  uva_task_t *b;
  memset(&j, 0, sizeof j);
  j.status2 = 1;
  UVT_OK(uva_task_spawn(&b, loop, step_return_value,
                        (void *) (intptr_t) UVA_EPIPE, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT)); /* b finishes */
  j.other = b;
  UVT_OK(uva_task_spawn(NULL, loop, step_joiner, &j, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  cr_assert_eq(j.join_rc, 0);
  cr_assert_eq(j.runs, 1, "resumed inside the pass that joined");
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  cr_assert_eq(j.runs, 2);
  cr_assert_eq(j.status2, 0);
  cr_assert_eq(j.other_result, UVA_EPIPE);
  UVT_OK(uva_task_release(b));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

static int step_join_self(uva_task_t *t, int status, void *d) {
  (void) status;
  *(int *) d = uva_task_join(t, t);
  return 0;
}

Test(task, join_self_is_einval, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int rc = 1;
  UVT_OK(uva_task_spawn(NULL, loop, step_join_self, &rc, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(rc, UVA_EINVAL, "%d", rc);
  UVT_CLOSE_LOOP(loop);
}

/* ---- wake -------------------------------------------------------------- */

struct wake_by_timer {
  uva_task_t *task;
  int wake_rc;
};

static void timer_wakes_task(uva_timer_t *tm, void *d) {
  struct wake_by_timer *w = (struct wake_by_timer *) d;
  (void) tm;
  w->wake_rc = uva_task_wake(w->task);
}

Test(task, wake_parked_task_from_the_loop_thread, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct wake_by_timer w = {NULL, 1};
  uva_timer_t *tm;
  int runs = 0, r = 1;
  UVT_OK(uva_task_spawn(&w.task, loop, uvt_step_park, &runs, NULL));
  UVT_OK(uva_timer_new(&tm, loop, timer_wakes_task, &w, NULL));
  UVT_OK(uva_timer_start(tm, 10, 0));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(w.wake_rc, 0);
  cr_assert_eq(runs, 2);
  UVT_OK(uva_task_result(&r, w.task));
  cr_assert_eq(r, 0); /* resumed with status 0 */
  UVT_OK(uva_timer_close(tm, NULL));
  UVT_OK(uva_task_release(w.task));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

/* Parks on every run; counts runs; finishes when told. */
struct parker {
  int runs;
  int finish;
  int last_status;
};

static int step_parker(uva_task_t *t, int status, void *d) {
  struct parker *p = (struct parker *) d;
  (void) t;
  p->runs++;
  p->last_status = status;
  if (p->finish || status != 0) return status;
  return UVA_TASK_PENDING;
}

Test(task, wakes_coalesce_on_the_loop_thread, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct parker p = {0, 0, 0};
  uva_task_t *t;
  int i;
  UVT_OK(uva_task_spawn(&t, loop, step_parker, &p, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  cr_assert_eq(p.runs, 1);
  for (i = 0; i < 10; i++)
    UVT_OK(uva_task_wake(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  cr_assert_eq(p.runs, 2, "10 wakes ran the step %d times", p.runs - 1);
  p.finish = 1;
  UVT_OK(uva_task_wake(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(p.runs, 3);
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

/* Wakes before the first run do not add runs either. */
Test(task, wakes_of_a_queued_task_coalesce, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct parker p = {0, 0, 0};
  uva_task_t *t;
  int i;
  UVT_OK(uva_task_spawn(&t, loop, step_parker, &p, NULL));
  for (i = 0; i < 10; i++)
    UVT_OK(uva_task_wake(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  cr_assert_eq(p.runs, 1);
  UVT_OK(uva_task_cancel(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(p.runs, 2);
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

static void *wake_10_times(void *arg) {
  int i, bad = 0;
  for (i = 0; i < 10; i++)
    if (uva_task_wake((uva_task_t *) arg) != 0) bad++;
  uva_task_release((uva_task_t *) arg);
  return (void *) (intptr_t) bad;
}

Test(task, wakes_coalesce_from_another_thread, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct parker p = {0, 0, 0};
  uva_task_t *t;
  pthread_t th;
  void *rc;
  int i;
  UVT_OK(uva_task_spawn(&t, loop, step_parker, &p, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  cr_assert_eq(p.runs, 1);
  UVT_OK(uva_task_retain(t)); /* for the thread */
  cr_assert_eq(pthread_create(&th, NULL, wake_10_times, t), 0);
  cr_assert_eq(pthread_join(th, &rc), 0);
  cr_assert_eq((int) (intptr_t) rc, 0);
  /* The wake-ups arrive through the loop's wake-up channel. */
  for (i = 0; i < 5; i++) {
    UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
    uvt_sleep_ms(2);
  }
  cr_assert_eq(p.runs, 2, "10 wakes ran the step %d times", p.runs - 1);
  UVT_OK(uva_task_cancel(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(p.runs, 3);
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

/* Ping-pong: each wake from the thread is followed by a run of the step. */
struct pingpong {
  uva_task_t *task;
  int n;
  int seq;    /* written by the thread */
  int ack;    /* written by the step */
  int runs;   /* step runs */
  int failed; /* thread gave up waiting */
  double deadline;
};

static int step_pingpong(uva_task_t *t, int status, void *d) {
  struct pingpong *pp = (struct pingpong *) d;
  int seen = __atomic_load_n(&pp->seq, __ATOMIC_ACQUIRE);
  (void) t;
  pp->runs++;
  if (status != 0) return status;
  __atomic_store_n(&pp->ack, seen, __ATOMIC_RELEASE);
  return seen >= pp->n ? 0 : UVA_TASK_PENDING;
}

static void *pingpong_thread(void *arg) {
  struct pingpong *pp = (struct pingpong *) arg;
  int i;
  for (i = 1; i <= pp->n; i++) {
    __atomic_store_n(&pp->seq, i, __ATOMIC_RELEASE);
    if (uva_task_wake(pp->task) != 0) {
      pp->failed = 1;
      break;
    }
    while (__atomic_load_n(&pp->ack, __ATOMIC_ACQUIRE) < i) {
      if (uvt_ms() > pp->deadline) {
        pp->failed = i;
        goto out;
      }
      sched_yield();
    }
  }
out:
  uva_task_release(pp->task);
  return NULL;
}

Test(task, wake_from_another_thread_is_never_lost, .timeout = 60) {
  uva_loop_t *loop = uvt_loop_new();
  struct pingpong pp;
  uva_task_t *t;
  pthread_t th;
  int r = 1;
  memset(&pp, 0, sizeof pp);
  pp.n = 2000;
  pp.deadline = uvt_ms() + 20000 * uvt_mult();
  UVT_OK(uva_task_spawn(&t, loop, step_pingpong, &pp, NULL));
  pp.task = t;
  UVT_OK(uva_task_retain(t)); /* the thread's reference */
  cr_assert_eq(pthread_create(&th, NULL, pingpong_thread, &pp), 0);
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(pthread_join(th, NULL), 0);
  cr_assert_eq(pp.failed, 0, "wake %d was lost (no step ran after it)",
               pp.failed);
  cr_assert_eq(pp.ack, pp.n);
  cr_assert_geq(pp.runs, 2);
  UVT_OK(uva_task_result(&r, t));
  cr_assert_eq(r, 0);
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

/* A burst of wakes while the task keeps parking: the last one is not lost. */
static void *burst_thread(void *arg) {
  struct pingpong *pp = (struct pingpong *) arg;
  int i;
  for (i = 1; i <= pp->n; i++) {
    __atomic_store_n(&pp->seq, i, __ATOMIC_RELEASE);
    if (uva_task_wake(pp->task) != 0) pp->failed = i;
    if (i % 64 == 0) sched_yield();
  }
  uva_task_release(pp->task);
  return NULL;
}

Test(task, final_wake_of_a_burst_is_not_lost, .timeout = 60) {
  uva_loop_t *loop = uvt_loop_new();
  struct pingpong pp;
  uva_task_t *t;
  pthread_t th;
  int round;
  for (round = 0; round < 20; round++) {
    memset(&pp, 0, sizeof pp);
    pp.n = 5000;
    UVT_OK(uva_task_spawn(&t, loop, step_pingpong, &pp, NULL));
    pp.task = t;
    UVT_OK(uva_task_retain(t));
    cr_assert_eq(pthread_create(&th, NULL, burst_thread, &pp), 0);
    /* The parked task keeps run(DEFAULT) alive until it saw seq == n. */
    UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
    cr_assert_eq(pthread_join(th, NULL), 0);
    cr_assert_eq(pp.failed, 0);
    cr_assert_eq(pp.ack, pp.n, "round %d", round);
    UVT_OK(uva_task_release(t));
  }
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

static int step_wake_self(uva_task_t *t, int status, void *d) {
  int *runs = (int *) d;
  if (status != 0) return status;
  if (++*runs == 1) {
    if (uva_task_wake(t) != 0) return UVA_EINTERNAL;
    return UVA_TASK_PENDING; /* woken while running: runs again */
  }
  return 0;
}

Test(task, wake_while_running_runs_it_again, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int runs = 0;
  UVT_OK(uva_task_spawn(NULL, loop, step_wake_self, &runs, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(runs, 2);
  UVT_CLOSE_LOOP(loop);
}

/* Woken by another task while it runs? Cannot happen on one thread; but a
 * wake during its step from a callback it calls must stick. A sleep set up
 * in the same step is abandoned: the step sees status 0 soon. */
static int step_sleep_and_wake_self(uva_task_t *t, int status, void *d) {
  struct sleeper *s = (struct sleeper *) d;
  if (++s->runs == 1) {
    s->t0 = uvt_ms();
    if (uva_task_sleep(t, 10000) != 0 || uva_task_wake(t) != 0)
      return UVA_EINTERNAL;
    return UVA_TASK_PENDING;
  }
  s->t1 = uvt_ms();
  s->status2 = status;
  return 0;
}

Test(task, wake_during_step_abandons_its_sleep, .timeout = 20) {
  uva_loop_t *loop = uvt_loop_new();
  struct sleeper s;
  memset(&s, 0, sizeof s);
  s.status2 = 1;
  UVT_OK(uva_task_spawn(NULL, loop, step_sleep_and_wake_self, &s, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(s.runs, 2);
  cr_assert_eq(s.status2, 0);
  cr_assert_lt(s.t1 - s.t0, 1000 * uvt_mult());
  UVT_CLOSE_LOOP(loop);
}

Test(task, wake_abandons_a_sleep, .timeout = 20) {
  uva_loop_t *loop = uvt_loop_new();
  struct wake_by_timer w = {NULL, 1};
  struct sleeper s;
  uva_timer_t *tm;
  memset(&s, 0, sizeof s);
  s.ms = 10000;
  s.status2 = 1;
  UVT_OK(uva_task_spawn(&w.task, loop, step_sleeper, &s, NULL));
  UVT_OK(uva_timer_new(&tm, loop, timer_wakes_task, &w, NULL));
  UVT_OK(uva_timer_start(tm, 20, 0));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(w.wake_rc, 0);
  cr_assert_eq(s.runs, 2);
  cr_assert_eq(s.status2, 0);
  cr_assert_lt(s.t1 - s.t0, 1000 * uvt_mult());
  UVT_OK(uva_timer_close(tm, NULL));
  UVT_OK(uva_task_release(w.task));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

Test(task, wake_finished_task_does_nothing, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct first_run fr = {NULL, NULL, 1, 0};
  uva_task_t *t;
  UVT_OK(uva_task_spawn(&t, loop, step_record, &fr, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(fr.runs, 1);
  UVT_OK(uva_task_wake(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(fr.runs, 1);
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

/* ---- cancel ------------------------------------------------------------ */

Test(task, cancel_is_delivered_at_next_resume, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct parker p = {0, 0, 0};
  uva_task_t *t;
  int r = 1;
  UVT_OK(uva_task_spawn(&t, loop, step_parker, &p, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  cr_assert_eq(p.runs, 1);
  UVT_OK(uva_task_cancel(t));
  cr_assert_eq(p.runs, 1, "the step ran inside uva_task_cancel");
  UVT_OK(
      uva_loop_run(loop, UVA_RUN_NOWAIT)); /* a parked task is made runnable */
  cr_assert_eq(p.runs, 2);
  cr_assert_eq(p.last_status, UVA_ECANCELED);
  UVT_OK(uva_task_result(&r, t));
  cr_assert_eq(r, UVA_ECANCELED);
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

Test(task, cancel_before_first_run, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct parker p = {0, 0, 0};
  uva_task_t *t;
  UVT_OK(uva_task_spawn(&t, loop, step_parker, &p, NULL));
  UVT_OK(uva_task_cancel(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(p.runs, 1);
  cr_assert_eq(p.last_status, UVA_ECANCELED);
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

struct cancel_probe {
  uva_task_t *target;
  double cancelled_at;
  double resumed_at;
  int cancel_rc;
  int runs;
  int status2;
};

static void timer_cancels(uva_timer_t *tm, void *d) {
  struct cancel_probe *cp = (struct cancel_probe *) d;
  (void) tm;
  cp->cancelled_at = uvt_ms();
  cp->cancel_rc = uva_task_cancel(cp->target);
}

static int step_sleep10s_probe(uva_task_t *t, int status, void *d) {
  struct cancel_probe *cp = (struct cancel_probe *) d;
  if (++cp->runs == 1 && status == 0) {
    if (uva_task_sleep(t, 10000) != 0) return UVA_EINTERNAL;
    return UVA_TASK_PENDING;
  }
  cp->resumed_at = uvt_ms();
  cp->status2 = status;
  return status;
}

Test(task, cancel_during_sleep_resumes_promptly, .timeout = 20) {
  uva_loop_t *loop = uvt_loop_new();
  struct cancel_probe cp;
  uva_timer_t *tm;
  double t0 = uvt_ms(), lag;
  int r = 1;
  memset(&cp, 0, sizeof cp);
  cp.cancel_rc = 1;
  UVT_OK(uva_task_spawn(&cp.target, loop, step_sleep10s_probe, &cp, NULL));
  UVT_OK(uva_timer_new(&tm, loop, timer_cancels, &cp, NULL));
  UVT_OK(uva_timer_start(tm, 20, 0));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(cp.cancel_rc, 0);
  cr_assert_eq(cp.runs, 2);
  cr_assert_eq(cp.status2, UVA_ECANCELED);
  lag = cp.resumed_at - cp.cancelled_at;
  cr_assert_lt(lag, 50 * uvt_mult(), "resumed %.2f ms after the cancel", lag);
  cr_assert_lt(uvt_ms() - t0, 2000 * uvt_mult());
  UVT_OK(uva_task_result(&r, cp.target));
  cr_assert_eq(r, UVA_ECANCELED);
  UVT_OK(uva_timer_close(tm, NULL));
  UVT_OK(uva_task_release(cp.target));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

/* A task may ignore the cancellation: it sleeps again and then finishes
 * normally. */
struct stubborn {
  int runs;
  int statuses[4];
};

static int step_stubborn(uva_task_t *t, int status, void *d) {
  struct stubborn *s = (struct stubborn *) d;
  if (s->runs < 4) s->statuses[s->runs] = status;
  switch (++s->runs) {
    case 1: /* park */
      return UVA_TASK_PENDING;
    case 2: /* cancelled: ignore it, sleep */
      if (uva_task_sleep(t, 10) != 0) return UVA_EINTERNAL;
      return UVA_TASK_PENDING;
    default:
      return 0;
  }
}

Test(task, cancellation_may_be_ignored, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct stubborn s;
  uva_task_t *t;
  int r = 1;
  memset(&s, 0, sizeof s);
  UVT_OK(uva_task_spawn(&t, loop, step_stubborn, &s, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  UVT_OK(uva_task_cancel(t));
  UVT_OK(uva_task_cancel(t)); /* already cancelled, not yet resumed: no-op */
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(s.runs, 3);
  cr_assert_eq(s.statuses[0], 0);
  cr_assert_eq(s.statuses[1], UVA_ECANCELED);
  cr_assert_eq(s.statuses[2], 0, "a second cancellation was delivered");
  UVT_OK(uva_task_result(&r, t));
  cr_assert_eq(r, 0);
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

/* After a delivered cancellation the task can be cancelled again. */
Test(task, cancel_again_after_delivery, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct stubborn s;
  uva_task_t *t;
  int r = 1;
  memset(&s, 0, sizeof s);
  UVT_OK(uva_task_spawn(&t, loop, step_stubborn, &s, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT)); /* parks */
  UVT_OK(uva_task_cancel(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT)); /* delivered; sleeps 10 ms */
  cr_assert_eq(s.runs, 2);
  UVT_OK(uva_task_cancel(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(s.runs, 3);
  cr_assert_eq(s.statuses[2], UVA_ECANCELED);
  UVT_OK(uva_task_result(&r, t));
  cr_assert_eq(r, 0);
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

Test(task, cancel_finished_task_does_nothing, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct first_run fr = {NULL, NULL, 1, 0};
  uva_task_t *t;
  int r = 1;
  UVT_OK(uva_task_spawn(&t, loop, step_record, &fr, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_OK(uva_task_cancel(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(fr.runs, 1);
  UVT_OK(uva_task_result(&r, t));
  cr_assert_eq(r, 0);
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

Test(task, cancel_during_join_ends_the_join, .timeout = 20) {
  uva_loop_t *loop = uvt_loop_new();
  struct joiner j;
  struct cancel_probe cp;
  uva_timer_t *tm;
  uva_task_t *b, *a;
  int runs_b = 0, done = -1, r = 1;
  memset(&j, 0, sizeof j);
  memset(&cp, 0, sizeof cp);
  j.status2 = 1;
  UVT_OK(uva_task_spawn(&b, loop, uvt_step_sleep10s, &runs_b, NULL));
  j.other = b;
  UVT_OK(uva_task_spawn(&a, loop, step_joiner, &j, NULL));
  cp.target = a;
  UVT_OK(uva_timer_new(&tm, loop, timer_cancels, &cp, NULL));
  UVT_OK(uva_timer_start(tm, 20, 0));
  /* Run until the joiner is done; b still sleeps (stop from a done cb would
   * also do; here: ONCE until a finished). */
  while (done != 1) {
    UVT_OK(uva_loop_run(loop, UVA_RUN_ONCE));
    UVT_OK(uva_task_done(&done, a));
  }
  cr_assert_lt(uvt_ms() - cp.cancelled_at, 1000 * uvt_mult());
  cr_assert_eq(j.join_rc, 0);
  cr_assert_eq(j.runs, 2);
  cr_assert_eq(j.status2, UVA_ECANCELED);
  cr_assert_eq(j.other_done_at_resume, 0);
  UVT_OK(uva_task_result(&r, a));
  cr_assert_eq(r, UVA_ECANCELED);
  UVT_OK(uva_task_done(&done, b));
  cr_assert_eq(done, 0, "cancelling the joiner ended the joined task");
  /* Clean up b. */
  UVT_OK(uva_task_cancel(b));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(runs_b, 2);
  UVT_OK(uva_timer_close(tm, NULL));
  UVT_OK(uva_task_release(a));
  UVT_OK(uva_task_release(b));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

/* ---- done callbacks ---------------------------------------------------- */

struct done_log {
  uva_loop_t *loop;
  char order[16];
  int n;
  int results[8];
  int done_flag[8];
  int current_was_null[8];
  uva_task_t *tasks[8];
};

static struct done_log dl;

static void done_cb(uva_task_t *t, int result, void *data) {
  int i = dl.n;
  uva_task_t *cur = (uva_task_t *) 1;
  if (i < 8) {
    dl.order[i] = *(const char *) data;
    dl.results[i] = result;
    dl.tasks[i] = t;
    uva_task_done(&dl.done_flag[i], t);
    uva_task_current(&cur, dl.loop);
    dl.current_was_null[i] = cur == NULL;
  }
  dl.n++;
}

static void done_cb2(uva_task_t *t, int result, void *data) {
  done_cb(t, result, data);
}

static int step_sleep5_then_ebusy(uva_task_t *t, int status, void *d) {
  int *runs = (int *) d;
  if (++*runs == 1 && status == 0) {
    if (uva_task_sleep(t, 5) != 0) return UVA_EINTERNAL;
    return UVA_TASK_PENDING;
  }
  return UVA_EBUSY;
}

Test(task, done_callbacks_fire_once_in_order_with_result, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_task_t *t;
  int runs = 0, i;
  memset(&dl, 0, sizeof dl);
  dl.loop = loop;
  UVT_OK(uva_task_spawn(&t, loop, step_sleep5_then_ebusy, &runs, NULL));
  UVT_OK(uva_task_add_done_cb(t, done_cb, "1"));
  UVT_OK(uva_task_add_done_cb(t, done_cb2, "2"));
  UVT_OK(uva_task_add_done_cb(t, done_cb, "3"));
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  cr_assert_eq(dl.n, 0);
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  cr_assert_eq(dl.n, 3);
  cr_assert_eq(strncmp(dl.order, "123", 3), 0, "order %.3s", dl.order);
  for (i = 0; i < 3; i++) {
    cr_assert_eq(dl.results[i], UVA_EBUSY);
    cr_assert_eq(dl.tasks[i], t);
    cr_assert_eq(dl.done_flag[i], 1, "cb %d: task not done yet", i);
    cr_assert(dl.current_was_null[i], "cb %d ran inside the step", i);
  }
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
  cr_assert_eq(dl.n, 3);
}

Test(task, done_cb_on_finished_task_fires_next_pass, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_task_t *t;
  memset(&dl, 0, sizeof dl);
  dl.loop = loop;
  UVT_OK(uva_task_spawn(&t, loop, step_return_value,
                        (void *) (intptr_t) UVA_ETIMEDOUT, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_OK(uva_task_add_done_cb(t, done_cb, "a"));
  cr_assert_eq(dl.n, 0, "called from inside uva_task_add_done_cb");
  UVT_OK(uva_task_add_done_cb(t, done_cb, "b"));
  cr_assert_eq(dl.n, 0);
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  cr_assert_eq(dl.n, 2);
  cr_assert_eq(strncmp(dl.order, "ab", 2), 0);
  cr_assert_eq(dl.results[0], UVA_ETIMEDOUT);
  cr_assert_eq(dl.results[1], UVA_ETIMEDOUT);
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(dl.n, 2);
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

/* The owner may release the task right after adding the callback. */
Test(task, done_cb_on_finished_task_survives_release, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_task_t *t;
  struct dtor_probe p;
  memset(&dl, 0, sizeof dl);
  memset(&p, 0, sizeof p);
  dl.loop = loop;
  UVT_OK(uva_task_spawn(&t, loop, step_probe, &p, probe_dtor));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_OK(uva_task_add_done_cb(t, done_cb, "x"));
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(dl.n, 1);
  cr_assert_eq(dl.results[0], 0);
  UVT_CLOSE_LOOP(loop);
  cr_assert_eq(p.calls, 1);
}

Test(task, remove_done_cb, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_task_t *t;
  int runs = 0;
  static const char x[] = "x", y[] = "y";
  memset(&dl, 0, sizeof dl);
  dl.loop = loop;
  UVT_OK(uva_task_spawn(&t, loop, step_sleep5_then_ebusy, &runs, NULL));
  UVT_OK(uva_task_add_done_cb(t, done_cb, (void *) x));
  UVT_OK(uva_task_add_done_cb(t, done_cb2, (void *) y));
  UVT_OK(uva_task_add_done_cb(t, done_cb, (void *) x));
  /* Removes the first matching one only. */
  UVT_OK(uva_task_remove_done_cb(t, done_cb, (void *) x));
  UVT_EQ(uva_task_remove_done_cb(t, done_cb, (void *) y), UVA_ENOENT);
  UVT_EQ(uva_task_remove_done_cb(t, done_cb2, (void *) x), UVA_ENOENT);
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  cr_assert_eq(dl.n, 2);
  cr_assert_eq(strncmp(dl.order, "yx", 2), 0, "order %.2s", dl.order);
  /* Already called: nothing left to remove. */
  UVT_EQ(uva_task_remove_done_cb(t, done_cb2, (void *) y), UVA_ENOENT);
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

Test(task, remove_all_done_cbs, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_task_t *t;
  static const char x[] = "x";
  memset(&dl, 0, sizeof dl);
  dl.loop = loop;
  UVT_OK(uva_task_spawn(&t, loop, uvt_step_finish, NULL, NULL));
  UVT_OK(uva_task_add_done_cb(t, done_cb, (void *) x));
  UVT_OK(uva_task_remove_done_cb(t, done_cb, (void *) x));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(dl.n, 0);
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

/* ---- current ----------------------------------------------------------- */

struct cur_probe {
  uva_loop_t *loop;
  uva_task_t *in_step;
  uva_task_t *in_call;
  uva_task_t *in_timer;
  int rc;
};

static int step_current(uva_task_t *t, int status, void *d) {
  struct cur_probe *c = (struct cur_probe *) d;
  (void) status;
  c->rc = uva_task_current(&c->in_step, c->loop);
  (void) t;
  return 0;
}

static void call_current(void *d) {
  struct cur_probe *c = (struct cur_probe *) d;
  c->in_call = (uva_task_t *) 1;
  uva_task_current(&c->in_call, c->loop);
}

static void timer_current(uva_timer_t *tm, void *d) {
  struct cur_probe *c = (struct cur_probe *) d;
  (void) tm;
  c->in_timer = (uva_task_t *) 1;
  uva_task_current(&c->in_timer, c->loop);
}

Test(task, current_inside_step_and_null_outside, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct cur_probe c;
  uva_task_t *t, *cur = (uva_task_t *) 1;
  uva_timer_t *tm;
  memset(&c, 0, sizeof c);
  c.loop = loop;
  c.rc = 1;
  UVT_OK(uva_task_current(&cur, loop));
  cr_assert_null(cur);
  UVT_OK(uva_task_spawn(&t, loop, step_current, &c, NULL));
  UVT_OK(uva_loop_call_soon(loop, call_current, &c));
  UVT_OK(uva_timer_new(&tm, loop, timer_current, &c, NULL));
  UVT_OK(uva_timer_start(tm, 1, 0));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(c.rc, 0);
  cr_assert_eq(c.in_step, t);
  cr_assert_null(c.in_call);
  cr_assert_null(c.in_timer);
  cur = (uva_task_t *) 1;
  UVT_OK(uva_task_current(&cur, loop));
  cr_assert_null(cur);
  UVT_OK(uva_timer_close(tm, NULL));
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

/* A detached task gets at itself through uva_task_current and its step
 * argument alike, and can sleep. */
struct detached_self {
  uva_loop_t *loop;
  int runs;
  int same;
  int dtor;
};

static void detached_dtor(void *d) { ((struct detached_self *) d)->dtor++; }

static int step_detached_self(uva_task_t *t, int status, void *d) {
  struct detached_self *s = (struct detached_self *) d;
  uva_task_t *cur = NULL;
  uva_task_current(&cur, s->loop);
  s->same += cur == t;
  if (++s->runs == 1 && status == 0) {
    if (uva_task_sleep(cur, 5) != 0) return UVA_EINTERNAL;
    return UVA_TASK_PENDING;
  }
  return status;
}

Test(task, detached_task_uses_its_own_handle, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct detached_self s;
  memset(&s, 0, sizeof s);
  s.loop = loop;
  UVT_OK(uva_task_spawn(NULL, loop, step_detached_self, &s, detached_dtor));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(s.runs, 2);
  cr_assert_eq(s.same, 2);
  UVT_CLOSE_LOOP(loop);
  cr_assert_eq(s.dtor, 1);
}

/* Regression: a task that set up a sleep and then cancelled itself in the
 * same step was queued twice (once by the cancel, once after the step). It
 * must run exactly once more, with UVA_ECANCELED. */
struct self_cancel {
  int runs;
  int status2;
};

static int step_sleep_then_self_cancel(uva_task_t *t, int status, void *d) {
  struct self_cancel *s = (struct self_cancel *) d;
  if (++s->runs == 1) {
    if (uva_task_sleep(t, 10000) != 0 || uva_task_cancel(t) != 0)
      return UVA_EINVAL;
    return UVA_TASK_PENDING;
  }
  s->status2 = status;
  return 0;
}

Test(task, self_cancel_after_sleep_runs_once_more, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct self_cancel s = {0, 0};
  UVT_OK(uva_task_spawn(NULL, loop, step_sleep_then_self_cancel, &s, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(s.runs, 2);
  cr_assert_eq(s.status2, UVA_ECANCELED);
  UVT_CLOSE_LOOP(loop);
}

/* ---- NULL names the running task ---------------------------------------- */

struct null_task {
  int runs;
  int sleep_rc, yield_rc;
  double t0, woke;
};

static int step_null_task(uva_task_t *t, int status, void *d) {
  struct null_task *nt = (struct null_task *) d;
  (void) t;
  if (status != 0) return status;
  switch (nt->runs++) {
    case 0:
      nt->t0 = uvt_ms();
      nt->sleep_rc = uva_task_sleep(NULL, 20);
      return UVA_TASK_PENDING;
    case 1:
      nt->woke = uvt_ms();
      nt->yield_rc = uva_task_yield(NULL);
      return UVA_TASK_PENDING;
    default:
      return 0;
  }
}

Test(task, null_task_means_the_running_task, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct null_task nt = {0, -1, -1, 0, 0};
  UVT_OK(uva_task_spawn(NULL, loop, step_null_task, &nt, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(nt.sleep_rc, 0);
  cr_assert_eq(nt.yield_rc, 0);
  cr_assert_eq(nt.runs, 3);
  cr_assert_geq(nt.woke - nt.t0, 19.0, "the sleep ended early");
  /* Outside a step there is no running task. */
  cr_assert_eq(uva_task_sleep(NULL, 1), UVA_EINVAL);
  cr_assert_eq(uva_task_yield(NULL), UVA_EINVAL);
  UVT_CLOSE_LOOP(loop);
}
