/* Bad input, function by function: NULL, wrong handle kind, closed handles,
 * out-of-range delays, calls out of place, foreign threads, re-entry. None
 * may crash; each returns its documented code. */
#include "helpers.h"

#define TWO40 ((int64_t) 1 << 40)

static void noop_call(void *d) { (void) d; }
static void noop_timer(uva_timer_t *t, void *d) {
  (void) t;
  (void) d;
}
static void noop_done(uva_task_t *t, int r, void *d) {
  (void) t;
  (void) r;
  (void) d;
}

/* ---- NULL handles ------------------------------------------------------ */

Test(badinput, null_loop, .timeout = 10) {
  int i = 0;
  uint64_t u = 0;
  void *p = NULL;
  uva_task_t *t = NULL;
  uva_timer_t *tm = NULL;
  int dtor = 0;
  UVT_EXPECT(uva_loop_new(NULL), UVA_EINVAL);
  UVT_EXPECT(uva_loop_run(NULL, UVA_RUN_DEFAULT), UVA_EINVAL);
  UVT_EXPECT(uva_loop_run(NULL, UVA_RUN_NOWAIT), UVA_EINVAL);
  UVT_EXPECT(uva_loop_stop(NULL), UVA_EINVAL);
  UVT_EXPECT(uva_loop_alive(&i, NULL), UVA_EINVAL);
  UVT_EXPECT(uva_loop_now(&u, NULL), UVA_EINVAL);
  UVT_EXPECT(uva_loop_call_soon(NULL, noop_call, NULL), UVA_EINVAL);
  UVT_EXPECT(uva_loop_call_soon_threadsafe(NULL, noop_call, NULL), UVA_EINVAL);
  UVT_EXPECT(uva_loop_set_data(NULL, &i, NULL), UVA_EINVAL);
  UVT_EXPECT(uva_loop_get_data(&p, NULL), UVA_EINVAL);
  UVT_EXPECT(uva_loop_close(NULL), 0);
  UVT_EXPECT(uva_loop_retain(NULL), UVA_EINVAL);
  UVT_EXPECT(uva_loop_release(NULL), 0);
  UVT_EXPECT(uva_task_spawn(&t, NULL, uvt_step_finish, &dtor, uvt_count_dtor),
             UVA_EINVAL);
  UVT_EXPECT(uva_task_spawn(NULL, NULL, uvt_step_finish, &dtor, uvt_count_dtor),
             UVA_EINVAL);
  UVT_EXPECT(uva_task_current(&t, NULL), UVA_EINVAL);
  UVT_EXPECT(uva_timer_new(&tm, NULL, noop_timer, &dtor, uvt_count_dtor),
             UVA_EINVAL);
  cr_assert_eq(dtor, 0, "a failed call ran the destructor");
}

Test(badinput, null_task, .timeout = 10) {
  int i = 0;
  void *p = NULL;
  uva_loop_t *l = NULL;
  UVT_EXPECT(uva_task_yield(NULL), UVA_EINVAL);
  UVT_EXPECT(uva_task_sleep(NULL, 1), UVA_EINVAL);
  UVT_EXPECT(uva_task_join(NULL, NULL), UVA_EINVAL);
  UVT_EXPECT(uva_task_wake(NULL), UVA_EINVAL);
  UVT_EXPECT(uva_task_cancel(NULL), UVA_EINVAL);
  UVT_EXPECT(uva_task_add_done_cb(NULL, noop_done, NULL), UVA_EINVAL);
  UVT_EXPECT(uva_task_remove_done_cb(NULL, noop_done, NULL), UVA_EINVAL);
  UVT_EXPECT(uva_task_done(&i, NULL), UVA_EINVAL);
  UVT_EXPECT(uva_task_result(&i, NULL), UVA_EINVAL);
  UVT_EXPECT(uva_task_get_data(&p, NULL), UVA_EINVAL);
  UVT_EXPECT(uva_task_get_loop(&l, NULL), UVA_EINVAL);
  UVT_EXPECT(uva_task_ref(NULL), UVA_EINVAL);
  UVT_EXPECT(uva_task_unref(NULL), UVA_EINVAL);
  UVT_EXPECT(uva_task_retain(NULL), UVA_EINVAL);
  UVT_EXPECT(uva_task_release(NULL), 0);
}

Test(badinput, null_timer, .timeout = 10) {
  int i = 0;
  void *p = NULL;
  UVT_EXPECT(uva_timer_start(NULL, 1, 0), UVA_EINVAL);
  UVT_EXPECT(uva_timer_stop(NULL), UVA_EINVAL);
  UVT_EXPECT(uva_timer_active(&i, NULL), UVA_EINVAL);
  UVT_EXPECT(uva_timer_get_data(&p, NULL), UVA_EINVAL);
  UVT_EXPECT(uva_timer_ref(NULL), UVA_EINVAL);
  UVT_EXPECT(uva_timer_unref(NULL), UVA_EINVAL);
  UVT_EXPECT(uva_timer_close(NULL, NULL), 0);
  UVT_EXPECT(uva_timer_close(NULL, (uva_timer_close_cb) noop_timer), 0);
}

/* NULL outputs and NULL callbacks with valid handles. */
Test(badinput, null_outputs_and_callbacks, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_task_t *t;
  uva_timer_t *tm = NULL;
  int dtor = 0;
  UVT_OK(uva_task_spawn(&t, loop, uvt_step_finish, NULL, NULL));
  UVT_OK(uva_timer_new(&tm, loop, noop_timer, NULL, NULL));

  UVT_EXPECT(uva_loop_alive(NULL, loop), UVA_EINVAL);
  UVT_EXPECT(uva_loop_now(NULL, loop), UVA_EINVAL);
  UVT_EXPECT(uva_loop_get_data(NULL, loop), UVA_EINVAL);
  UVT_EXPECT(uva_loop_call_soon(loop, NULL, NULL), UVA_EINVAL);
  UVT_EXPECT(uva_loop_call_soon_threadsafe(loop, NULL, NULL), UVA_EINVAL);
  UVT_EXPECT(uva_task_spawn(NULL, loop, NULL, &dtor, uvt_count_dtor),
             UVA_EINVAL);
  UVT_EXPECT(uva_task_spawn(&t, loop, NULL, &dtor, uvt_count_dtor), UVA_EINVAL);
  UVT_EXPECT(uva_task_current(NULL, loop), UVA_EINVAL);
  UVT_EXPECT(uva_task_done(NULL, t), UVA_EINVAL);
  UVT_EXPECT(uva_task_result(NULL, t), UVA_EINVAL);
  UVT_EXPECT(uva_task_get_data(NULL, t), UVA_EINVAL);
  UVT_EXPECT(uva_task_get_loop(NULL, t), UVA_EINVAL);
  UVT_EXPECT(uva_task_add_done_cb(t, NULL, NULL), UVA_EINVAL);
  UVT_EXPECT(uva_timer_new(NULL, loop, noop_timer, &dtor, uvt_count_dtor),
             UVA_EINVAL);
  UVT_EXPECT(uva_timer_new(&tm, loop, NULL, &dtor, uvt_count_dtor), UVA_EINVAL);
  UVT_EXPECT(uva_timer_active(NULL, tm), UVA_EINVAL);
  UVT_EXPECT(uva_timer_get_data(NULL, tm), UVA_EINVAL);
  cr_assert_eq(dtor, 0, "a failed call ran the destructor");

  /* Nothing was created by the failed calls. */
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_timer_close(tm, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
  cr_assert_eq(dtor, 0);
}

/* ---- wrong handle kind ------------------------------------------------- */

struct kinds {
  uva_loop_t *loop;
  uva_task_t *task;
  uva_timer_t *timer;
};

static void kinds_make(struct kinds *k) {
  k->loop = uvt_loop_new();
  UVT_OK(uva_task_spawn(&k->task, k->loop, uvt_step_finish, NULL, NULL));
  UVT_OK(uva_timer_new(&k->timer, k->loop, noop_timer, NULL, NULL));
}

static void kinds_free(struct kinds *k) {
  UVT_OK(uva_loop_run(k->loop, UVA_RUN_DEFAULT));
  UVT_OK(uva_task_release(k->task));
  UVT_OK(uva_timer_close(k->timer, NULL));
  UVT_OK(uva_loop_run(k->loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(k->loop);
}

static void check_task_functions_refuse(uva_task_t *bad, uva_task_t *good) {
  int i = 0;
  void *p = NULL;
  uva_loop_t *l = NULL;
  UVT_EXPECT(uva_task_yield(bad), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_task_sleep(bad, 1), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_task_join(bad, good), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_task_wake(bad), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_task_cancel(bad), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_task_add_done_cb(bad, noop_done, NULL), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_task_remove_done_cb(bad, noop_done, NULL), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_task_done(&i, bad), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_task_result(&i, bad), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_task_get_data(&p, bad), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_task_get_loop(&l, bad), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_task_ref(bad), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_task_unref(bad), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_task_retain(bad), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_task_release(bad), UVA_EHANDLEKIND);
}

Test(badinput, timer_or_loop_as_task, .timeout = 10) {
  struct kinds k;
  kinds_make(&k);
  check_task_functions_refuse((uva_task_t *) (void *) k.timer, k.task);
  check_task_functions_refuse((uva_task_t *) (void *) k.loop, k.task);
  kinds_free(&k);
}

static void check_timer_functions_refuse(uva_timer_t *bad) {
  int i = 0;
  void *p = NULL;
  UVT_EXPECT(uva_timer_start(bad, 1, 0), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_timer_stop(bad), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_timer_active(&i, bad), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_timer_get_data(&p, bad), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_timer_ref(bad), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_timer_unref(bad), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_timer_close(bad, NULL), UVA_EHANDLEKIND);
}

Test(badinput, task_or_loop_as_timer, .timeout = 10) {
  struct kinds k;
  kinds_make(&k);
  check_timer_functions_refuse((uva_timer_t *) (void *) k.task);
  check_timer_functions_refuse((uva_timer_t *) (void *) k.loop);
  kinds_free(&k);
}

static void check_loop_functions_refuse(uva_loop_t *bad) {
  int i = 0, dtor = 0;
  uint64_t u = 0;
  void *p = NULL;
  uva_task_t *t = NULL;
  uva_timer_t *tm = NULL;
  UVT_EXPECT(uva_loop_run(bad, UVA_RUN_NOWAIT), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_loop_stop(bad), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_loop_alive(&i, bad), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_loop_now(&u, bad), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_loop_call_soon(bad, noop_call, NULL), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_loop_call_soon_threadsafe(bad, noop_call, NULL),
             UVA_EHANDLEKIND);
  UVT_EXPECT(uva_loop_set_data(bad, &i, NULL), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_loop_get_data(&p, bad), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_loop_close(bad), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_loop_retain(bad), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_loop_release(bad), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_task_spawn(&t, bad, uvt_step_finish, &dtor, uvt_count_dtor),
             UVA_EHANDLEKIND);
  UVT_EXPECT(uva_task_current(&t, bad), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_timer_new(&tm, bad, noop_timer, &dtor, uvt_count_dtor),
             UVA_EHANDLEKIND);
  cr_expect_eq(dtor, 0);
}

Test(badinput, task_or_timer_as_loop, .timeout = 10) {
  struct kinds k;
  kinds_make(&k);
  check_loop_functions_refuse((uva_loop_t *) (void *) k.task);
  check_loop_functions_refuse((uva_loop_t *) (void *) k.timer);
  kinds_free(&k);
}

/* Wrong kind as the second handle of join. */
struct join_kind {
  uva_timer_t *timer;
  uva_loop_t *loop;
  int rc_timer, rc_loop, rc_null;
};

static int step_join_bad(uva_task_t *t, int status, void *d) {
  struct join_kind *j = (struct join_kind *) d;
  (void) status;
  j->rc_timer = uva_task_join(t, (uva_task_t *) (void *) j->timer);
  j->rc_loop = uva_task_join(t, (uva_task_t *) (void *) j->loop);
  j->rc_null = uva_task_join(t, NULL);
  return 0;
}

Test(badinput, join_on_wrong_kind_or_null, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct join_kind j;
  memset(&j, 0, sizeof j);
  j.loop = loop;
  UVT_OK(uva_timer_new(&j.timer, loop, noop_timer, NULL, NULL));
  UVT_OK(uva_task_spawn(NULL, loop, step_join_bad, &j, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_expect_eq(j.rc_timer, UVA_EHANDLEKIND, "%d", j.rc_timer);
  cr_expect_eq(j.rc_loop, UVA_EHANDLEKIND, "%d", j.rc_loop);
  cr_expect_eq(j.rc_null, UVA_EINVAL, "%d", j.rc_null);
  UVT_OK(uva_timer_close(j.timer, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

/* ---- closed handles ---------------------------------------------------- */

/* A close callback gets the timer's data; count closes separately. */
static int close_calls;
static void count_close(uva_timer_t *t, void *d) {
  (void) t;
  (void) d;
  close_calls++;
}

Test(badinput, timer_whose_close_is_pending, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_timer_t *tm;
  int fired = 0, rc, i = 0;
  void *p = NULL;
  close_calls = 0;
  UVT_OK(uva_timer_new(&tm, loop, uvt_timer_count_cb, &fired, NULL));
  UVT_OK(uva_timer_start(tm, 1, 1));
  UVT_OK(uva_timer_close(tm, count_close));
  /* Before the loop ran the close. */
  UVT_EXPECT(uva_timer_start(tm, 1, 0), UVA_ECLOSED);
  UVT_EXPECT(uva_timer_stop(tm), UVA_ECLOSED);
  UVT_EXPECT(uva_timer_close(tm, count_close), 0);
  UVT_EXPECT(uva_timer_close(tm, NULL), 0);
  /* Getters and ref/unref: an error code or harmless success, no crash. */
  rc = uva_timer_active(&i, tm);
  cr_expect(rc == UVA_ECLOSED || (rc == 0 && i == 0), "active: %d, %d", rc, i);
  rc = uva_timer_get_data(&p, tm);
  cr_expect(rc == UVA_ECLOSED || rc == 0, "get_data: %d", rc);
  rc = uva_timer_ref(tm);
  cr_expect(rc == UVA_ECLOSED || rc == 0, "ref: %d", rc);
  rc = uva_timer_unref(tm);
  cr_expect(rc == UVA_ECLOSED || rc == 0, "unref: %d", rc);
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(close_calls, 1);
  cr_assert_eq(fired, 0);
  UVT_CLOSE_LOOP(loop);
}

Test(badinput, second_close_is_a_noop, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_timer_t *tm;
  int fired = 0;
  close_calls = 0;
  UVT_OK(uva_timer_new(&tm, loop, uvt_timer_count_cb, &fired, NULL));
  UVT_OK(uva_timer_close(tm, count_close));
  UVT_OK(uva_timer_close(tm, count_close));
  UVT_OK(uva_timer_close(tm, count_close));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(close_calls, 1);
  UVT_CLOSE_LOOP(loop);
  cr_assert_eq(close_calls, 1);
}

/* ---- delays ------------------------------------------------------------ */

struct delays {
  int rc[8];
  int ok_max;
  int runs;
};

static int step_bad_sleeps(uva_task_t *t, int status, void *d) {
  struct delays *s = (struct delays *) d;
  if (++s->runs == 1) {
    s->rc[0] = uva_task_sleep(t, -1);
    s->rc[1] = uva_task_sleep(t, INT64_MAX);
    s->rc[2] = uva_task_sleep(t, INT64_MIN);
    s->rc[3] = uva_task_sleep(t, TWO40 + 1);
    s->rc[4] = uva_task_sleep(t, -TWO40);
    /* The largest allowed delay is accepted; cancel ends it below. */
    s->ok_max = uva_task_sleep(t, TWO40);
    return UVA_TASK_PENDING;
  }
  return status;
}

Test(badinput, sleep_delay_out_of_range, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct delays s;
  uva_task_t *t;
  int r = 1, i;
  memset(&s, 0, sizeof s);
  UVT_OK(uva_task_spawn(&t, loop, step_bad_sleeps, &s, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  for (i = 0; i < 5; i++)
    cr_expect_eq(s.rc[i], UVA_EINVAL, "case %d: %d", i, s.rc[i]);
  cr_assert_eq(s.ok_max, 0, "sleep(2^40): %d", s.ok_max);
  UVT_OK(uva_task_cancel(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_OK(uva_task_result(&r, t));
  cr_assert_eq(r, UVA_ECANCELED);
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

Test(badinput, timer_delay_out_of_range, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_timer_t *tm;
  int fired = 0, active = -1;
  UVT_OK(uva_timer_new(&tm, loop, uvt_timer_count_cb, &fired, NULL));
  UVT_EXPECT(uva_timer_start(tm, -1, 0), UVA_EINVAL);
  UVT_EXPECT(uva_timer_start(tm, 0, -5), UVA_EINVAL);
  UVT_EXPECT(uva_timer_start(tm, INT64_MAX, 0), UVA_EINVAL);
  UVT_EXPECT(uva_timer_start(tm, 0, INT64_MAX), UVA_EINVAL);
  UVT_EXPECT(uva_timer_start(tm, INT64_MIN, 0), UVA_EINVAL);
  UVT_EXPECT(uva_timer_start(tm, TWO40 + 1, 0), UVA_EINVAL);
  UVT_EXPECT(uva_timer_start(tm, 0, TWO40 + 1), UVA_EINVAL);
  /* A failed start leaves the timer stopped. */
  UVT_OK(uva_timer_active(&active, tm));
  cr_assert_eq(active, 0);
  /* The limits themselves are accepted. */
  UVT_OK(uva_timer_start(tm, TWO40, TWO40));
  UVT_OK(uva_timer_active(&active, tm));
  cr_assert_eq(active, 1);
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  cr_assert_eq(fired, 0);
  UVT_OK(uva_timer_close(tm, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

/* A failed start on an active timer: the old schedule still holds? The
 * header only promises an error and no crash; the timer must still work. */
Test(badinput, failed_start_keeps_timer_usable, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_timer_t *tm;
  int fired = 0;
  UVT_OK(uva_timer_new(&tm, loop, uvt_timer_count_cb, &fired, NULL));
  UVT_EXPECT(uva_timer_start(tm, -1, -1), UVA_EINVAL);
  UVT_OK(uva_timer_start(tm, 1, 0));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(fired, 1);
  UVT_OK(uva_timer_close(tm, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

/* ---- waits outside the task's own step --------------------------------- */

struct outside {
  uva_task_t *victim; /* parked */
  uva_task_t *other;  /* finished */
  int rc_yield, rc_sleep, rc_join;
  int rc_cb_yield, rc_cb_sleep, rc_cb_join;
  int runs;
};

static int step_meddler(uva_task_t *t, int status, void *d) {
  struct outside *o = (struct outside *) d;
  (void) t;
  (void) status;
  o->rc_yield = uva_task_yield(o->victim);
  o->rc_sleep = uva_task_sleep(o->victim, 1);
  o->rc_join = uva_task_join(o->victim, o->other);
  return 0;
}

static void call_meddler(void *d) {
  struct outside *o = (struct outside *) d;
  o->rc_cb_yield = uva_task_yield(o->victim);
  o->rc_cb_sleep = uva_task_sleep(o->victim, 1);
  o->rc_cb_join = uva_task_join(o->victim, o->other);
}

Test(badinput, waits_outside_the_tasks_step, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct outside o;
  int vruns = 0, done = -1;
  memset(&o, 0, sizeof o);
  UVT_OK(uva_task_spawn(&o.victim, loop, uvt_step_park, &vruns, NULL));
  UVT_OK(uva_task_spawn(&o.other, loop, uvt_step_finish, NULL, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT)); /* victim parks */
  /* From outside any step. */
  UVT_EXPECT(uva_task_yield(o.victim), UVA_EINVAL);
  UVT_EXPECT(uva_task_sleep(o.victim, 1), UVA_EINVAL);
  UVT_EXPECT(uva_task_join(o.victim, o.other), UVA_EINVAL);
  /* From another task's step and from a callback. */
  UVT_OK(uva_task_spawn(NULL, loop, step_meddler, &o, NULL));
  UVT_OK(uva_loop_call_soon(loop, call_meddler, &o));
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  cr_expect_eq(o.rc_yield, UVA_EINVAL, "%d", o.rc_yield);
  cr_expect_eq(o.rc_sleep, UVA_EINVAL, "%d", o.rc_sleep);
  cr_expect_eq(o.rc_join, UVA_EINVAL, "%d", o.rc_join);
  cr_expect_eq(o.rc_cb_yield, UVA_EINVAL, "%d", o.rc_cb_yield);
  cr_expect_eq(o.rc_cb_sleep, UVA_EINVAL, "%d", o.rc_cb_sleep);
  cr_expect_eq(o.rc_cb_join, UVA_EINVAL, "%d", o.rc_cb_join);
  /* The victim was not disturbed: still parked. */
  cr_assert_eq(vruns, 1);
  UVT_OK(uva_task_done(&done, o.victim));
  cr_assert_eq(done, 0);
  UVT_OK(uva_task_wake(o.victim));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(vruns, 2);
  UVT_OK(uva_task_release(o.victim));
  UVT_OK(uva_task_release(o.other));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

/* A second wait in one step is UVA_EBUSY. */
struct twice {
  uva_task_t *other;
  int rc[6];
  int runs;
};

static int step_twice(uva_task_t *t, int status, void *d) {
  struct twice *w = (struct twice *) d;
  (void) status;
  switch (++w->runs) {
    case 1:
      w->rc[0] = uva_task_sleep(t, 1);
      w->rc[1] = uva_task_sleep(t, 1);
      w->rc[2] = uva_task_yield(t);
      w->rc[3] = uva_task_join(t, w->other);
      return UVA_TASK_PENDING;
    case 2:
      w->rc[4] = uva_task_yield(t);
      w->rc[5] = uva_task_sleep(t, 1);
      return UVA_TASK_PENDING;
    default:
      return 0;
  }
}

Test(badinput, second_wait_in_one_step_is_ebusy, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct twice w;
  memset(&w, 0, sizeof w);
  UVT_OK(uva_task_spawn(&w.other, loop, uvt_step_finish, NULL, NULL));
  UVT_OK(uva_task_spawn(NULL, loop, step_twice, &w, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(w.runs, 3);
  cr_expect_eq(w.rc[0], 0);
  cr_expect_eq(w.rc[1], UVA_EBUSY, "sleep after sleep: %d", w.rc[1]);
  cr_expect_eq(w.rc[2], UVA_EBUSY, "yield after sleep: %d", w.rc[2]);
  cr_expect_eq(w.rc[3], UVA_EBUSY, "join after sleep: %d", w.rc[3]);
  cr_expect_eq(w.rc[4], 0);
  cr_expect_eq(w.rc[5], UVA_EBUSY, "sleep after yield: %d", w.rc[5]);
  UVT_OK(uva_task_release(w.other));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

/* Join a task of another loop: UVA_EINVAL. */
struct cross {
  uva_task_t *foreign;
  int rc;
};

static int step_join_foreign(uva_task_t *t, int status, void *d) {
  struct cross *c = (struct cross *) d;
  (void) status;
  c->rc = uva_task_join(t, c->foreign);
  return 0;
}

Test(badinput, join_task_of_another_loop, .timeout = 10) {
  uva_loop_t *a = uvt_loop_new(), *b = uvt_loop_new();
  struct cross c = {NULL, 1};
  UVT_OK(uva_task_spawn(&c.foreign, b, uvt_step_finish, NULL, NULL));
  UVT_OK(uva_task_spawn(NULL, a, step_join_foreign, &c, NULL));
  UVT_OK(uva_loop_run(a, UVA_RUN_DEFAULT));
  cr_expect_eq(c.rc, UVA_EINVAL, "%d", c.rc);
  UVT_OK(uva_loop_run(b, UVA_RUN_DEFAULT));
  UVT_OK(uva_task_release(c.foreign));
  UVT_OK(uva_loop_run(b, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(a);
  UVT_CLOSE_LOOP(b);
}

/* ---- foreign threads --------------------------------------------------- */

struct foreign {
  struct kinds k;
  int rc[40];
  const char *name[40];
  int n;
  int safe_rc[8];
  const char *safe_name[8];
  int ns;
  int dtor;
};

#define FCALL(f, expr)          \
  do {                          \
    (f)->name[(f)->n] = #expr;  \
    (f)->rc[(f)->n++] = (expr); \
  } while (0)

#define FSAFE(f, expr)                \
  do {                                \
    (f)->safe_name[(f)->ns] = #expr;  \
    (f)->safe_rc[(f)->ns++] = (expr); \
  } while (0)

static void *foreign_main(void *arg) {
  struct foreign *f = (struct foreign *) arg;
  uva_loop_t *loop = f->k.loop;
  uva_task_t *t = f->k.task, *tout = NULL;
  uva_timer_t *tm = f->k.timer, *tmout = NULL;
  int i = 0;
  uint64_t u = 0;
  void *p = NULL;
  uva_loop_t *l = NULL;
  /* Owner thread only: every one refuses. */
  FCALL(f, uva_loop_run(loop, UVA_RUN_NOWAIT));
  FCALL(f, uva_loop_alive(&i, loop));
  FCALL(f, uva_loop_now(&u, loop));
  FCALL(f, uva_loop_call_soon(loop, noop_call, NULL));
  FCALL(f, uva_loop_set_data(loop, &i, NULL));
  FCALL(f, uva_loop_get_data(&p, loop));
  FCALL(f, uva_loop_close(loop));
  FCALL(f,
        uva_task_spawn(&tout, loop, uvt_step_finish, &f->dtor, uvt_count_dtor));
  FCALL(f, uva_task_yield(t));
  FCALL(f, uva_task_sleep(t, 1));
  FCALL(f, uva_task_join(t, t));
  FCALL(f, uva_task_cancel(t));
  FCALL(f, uva_task_add_done_cb(t, noop_done, NULL));
  FCALL(f, uva_task_remove_done_cb(t, noop_done, NULL));
  FCALL(f, uva_task_done(&i, t));
  FCALL(f, uva_task_result(&i, t));
  FCALL(f, uva_task_current(&tout, loop));
  FCALL(f, uva_task_get_data(&p, t));
  FCALL(f, uva_task_get_loop(&l, t));
  FCALL(f, uva_task_ref(t));
  FCALL(f, uva_task_unref(t));
  FCALL(f, uva_timer_new(&tmout, loop, noop_timer, &f->dtor, uvt_count_dtor));
  FCALL(f, uva_timer_start(tm, 1, 0));
  FCALL(f, uva_timer_stop(tm));
  FCALL(f, uva_timer_active(&i, tm));
  FCALL(f, uva_timer_get_data(&p, tm));
  FCALL(f, uva_timer_ref(tm));
  FCALL(f, uva_timer_unref(tm));
  FCALL(f, uva_timer_close(tm, NULL));
  /* Thread-safe: these work. */
  FSAFE(f, uva_task_retain(t));
  FSAFE(f, uva_task_wake(t));
  FSAFE(f, uva_task_release(t));
  FSAFE(f, uva_loop_call_soon_threadsafe(loop, noop_call, NULL));
  FSAFE(f, uva_loop_stop(loop));
  FSAFE(f, uva_loop_retain(loop));
  FSAFE(f, uva_loop_release(loop));
  return NULL;
}

Test(badinput, foreign_thread_gets_ewrongthread, .timeout = 10) {
  struct foreign f;
  int i, runs = 0, active = -1;
  memset(&f, 0, sizeof f);
  f.k.loop = uvt_loop_new();
  UVT_OK(uva_task_spawn(&f.k.task, f.k.loop, uvt_step_park, &runs, NULL));
  UVT_OK(uva_timer_new(&f.k.timer, f.k.loop, noop_timer, NULL, NULL));
  UVT_OK(uva_loop_run(f.k.loop, UVA_RUN_NOWAIT)); /* the task parks */
  uvt_thread_run(foreign_main, &f);
  for (i = 0; i < f.n; i++)
    cr_expect_eq(f.rc[i], UVA_EWRONGTHREAD, "%s: %d (%s)", f.name[i], f.rc[i],
                 uva_err_name(f.rc[i]));
  for (i = 0; i < f.ns; i++)
    cr_expect_eq(f.safe_rc[i], 0, "%s: %d (%s)", f.safe_name[i], f.safe_rc[i],
                 uva_err_name(f.safe_rc[i]));
  /* Nothing changed by the refused calls: the timer is still stopped and
   * open, the task parked until the thread's wake arrives. */
  UVT_OK(uva_timer_active(&active, f.k.timer));
  cr_assert_eq(active, 0);
  UVT_OK(uva_loop_run(f.k.loop, UVA_RUN_DEFAULT)); /* stopped after a pass */
  UVT_OK(uva_loop_run(f.k.loop, UVA_RUN_DEFAULT));
  cr_assert_eq(runs, 2, "the thread's wake was not delivered");
  UVT_OK(uva_task_release(f.k.task));
  UVT_OK(uva_timer_close(f.k.timer, NULL));
  UVT_OK(uva_loop_run(f.k.loop, UVA_RUN_DEFAULT));
  cr_assert_eq(f.dtor, 0);
  UVT_CLOSE_LOOP(f.k.loop);
  cr_assert_eq(f.dtor, 0);
}

/* ---- re-entry and run modes -------------------------------------------- */

struct reenter {
  uva_loop_t *loop;
  int rc_step, rc_timer, rc_done, rc_call, rc_close;
};

static int step_reenter(uva_task_t *t, int status, void *d) {
  struct reenter *r = (struct reenter *) d;
  (void) t;
  (void) status;
  r->rc_step = uva_loop_run(r->loop, UVA_RUN_ONCE);
  r->rc_close = uva_loop_close(r->loop);
  return 0;
}

static void timer_reenter(uva_timer_t *tm, void *d) {
  struct reenter *r = (struct reenter *) d;
  (void) tm;
  r->rc_timer = uva_loop_run(r->loop, UVA_RUN_DEFAULT);
}

static void done_reenter(uva_task_t *t, int result, void *d) {
  struct reenter *r = (struct reenter *) d;
  (void) t;
  (void) result;
  r->rc_done = uva_loop_run(r->loop, UVA_RUN_NOWAIT);
}

static void call_reenter(void *d) {
  struct reenter *r = (struct reenter *) d;
  r->rc_call = uva_loop_run(r->loop, UVA_RUN_NOWAIT);
}

Test(badinput, run_reentered_is_erunning, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct reenter r;
  uva_task_t *t;
  uva_timer_t *tm;
  memset(&r, 0, sizeof r);
  r.loop = loop;
  UVT_OK(uva_task_spawn(&t, loop, step_reenter, &r, NULL));
  UVT_OK(uva_task_add_done_cb(t, done_reenter, &r));
  UVT_OK(uva_timer_new(&tm, loop, timer_reenter, &r, NULL));
  UVT_OK(uva_timer_start(tm, 1, 0));
  UVT_OK(uva_loop_call_soon(loop, call_reenter, &r));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_expect_eq(r.rc_step, UVA_ERUNNING, "from a step: %d", r.rc_step);
  cr_expect_eq(r.rc_close, UVA_ERUNNING, "close from a step: %d", r.rc_close);
  cr_expect_eq(r.rc_timer, UVA_ERUNNING, "from a timer: %d", r.rc_timer);
  cr_expect_eq(r.rc_done, UVA_ERUNNING, "from a done cb: %d", r.rc_done);
  cr_expect_eq(r.rc_call, UVA_ERUNNING, "from call_soon: %d", r.rc_call);
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_timer_close(tm, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

Test(badinput, unknown_run_mode, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int rc = uva_loop_run(loop, (uva_run_mode) 42);
  cr_expect_eq(rc, UVA_EINVAL, "mode 42: %d", rc);
  rc = uva_loop_run(loop, (uva_run_mode) -1);
  cr_expect_eq(rc, UVA_EINVAL, "mode -1: %d", rc);
  UVT_CLOSE_LOOP(loop);
}

/* Operations on finished tasks are harmless. */
Test(badinput, finished_task_operations, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_task_t *t;
  int i = -1;
  UVT_OK(uva_task_spawn(&t, loop, uvt_step_finish, NULL, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_EXPECT(uva_task_wake(t), 0);
  UVT_EXPECT(uva_task_cancel(t), 0);
  UVT_EXPECT(uva_task_ref(t), 0);
  UVT_EXPECT(uva_task_unref(t), 0);
  UVT_EXPECT(uva_task_yield(t), UVA_EINVAL);
  UVT_EXPECT(uva_task_sleep(t, 1), UVA_EINVAL);
  UVT_EXPECT(uva_task_remove_done_cb(t, noop_done, NULL), UVA_ENOENT);
  UVT_OK(uva_task_done(&i, t));
  cr_assert_eq(i, 1);
  /* ref on a finished task does not keep the loop alive. */
  UVT_OK(uva_task_ref(t));
  UVT_OK(uva_loop_alive(&i, loop));
  cr_assert_eq(i, 0);
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}
