/* Signal watchers (uvasync.h "Signals"): arrivals wake a waiting task and
 * are counted until a wait takes the count; the callback runs once per
 * pass that saw arrivals; every watcher of a signal, on any loop in any
 * thread, sees every arrival, and only of its own signal; closing ends the
 * waits with UVA_ECLOSED and, for the last watcher, restores SIG_DFL. */
#include "process_support.h"

#include <pthread.h>

/* A task waiting for the next arrival(s) on a watcher. */
struct sig_waiter {
  int pc, rc;
  uva_signal_t *sig;
  uint64_t count;
  int first_rc, calls, done;
};

static int sig_waiter_call(struct sig_waiter *w, uva_task_t *t) {
  int rc = uva_signal_wait(&w->count, w->sig, t);
  if (w->calls++ == 0) w->first_rc = rc;
  return rc;
}

static int step_sig_wait(uva_task_t *t, int status, void *d) {
  struct sig_waiter *w = (struct sig_waiter *) d;
  if (status == UVA_ECANCELED) return status;
  CO_BEGIN(w);
  CO_CALL(w, sig_waiter_call(w, t));
  w->done = 1;
  CO_END(w);
}

/* Raises signum after ms, from a task. */
struct raiser {
  int pc, rc;
  int signum, times, ms;
};

static int step_raise(uva_task_t *t, int status, void *d) {
  struct raiser *r = (struct raiser *) d;
  (void) status;
  CO_BEGIN(r);
  CO_SLEEP(r, t, r->ms);
  for (int i = 0; i < r->times; i++)
    cr_assert_eq(raise(r->signum), 0);
  CO_END(r);
}

/* Run the loop while a task sleeps ms: a loop with nothing to do does not
 * poll (as in libuv), and a watcher alone is not something to do. */
static int step_sleep(uva_task_t *t, int status, void *d) {
  int *slept = (int *) d;
  (void) status;
  if ((*slept)++) return 0;
  UVT_OK(uva_task_sleep(t, 10));
  return UVA_TASK_PENDING;
}

/* Pass by pass: other tasks may stay parked. */
static void run_a_while(uva_loop_t *loop) {
  int slept = 0;
  spawn(loop, step_sleep, &slept);
  while (slept < 2)
    UVT_OK(uva_loop_run(loop, UVA_RUN_ONCE));
}

Test(signal, raise_wakes_a_waiting_task, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct sig_waiter w;
  struct raiser r = {0, 0, SIGUSR1, 1, 20};
  memset(&w, 0, sizeof w);
  UVT_OK(uva_signal_new(&w.sig, loop, SIGUSR1));
  int signum = 0;
  UVT_OK(uva_signal_signum(&signum, w.sig));
  cr_assert_eq(signum, SIGUSR1);
  spawn(loop, step_sig_wait, &w);
  spawn(loop, step_raise, &r);
  run(loop);
  cr_assert(w.done);
  UVT_EQ(w.first_rc, UVA_EAGAIN);
  UVT_OK(w.rc);
  cr_assert_eq(w.count, 1);
  UVT_OK(uva_signal_close(w.sig, NULL, NULL));
  UVT_CLOSE_LOOP(loop);
}

/* Arrivals before the wait are counted; one wait takes them all. */
Test(signal, arrivals_coalesce_into_one_count, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct sig_waiter w;
  memset(&w, 0, sizeof w);
  UVT_OK(uva_signal_new(&w.sig, loop, SIGUSR2));
  for (int i = 0; i < 3; i++)
    cr_assert_eq(kill(getpid(), SIGUSR2), 0);
  run_a_while(loop); /* libuv reads them */
  spawn(loop, step_sig_wait, &w);
  run(loop);
  UVT_OK(w.first_rc); /* at once */
  cr_assert_eq(w.count, 3);
  /* The count was taken: the next wait waits. */
  struct sig_waiter w2;
  struct raiser r = {0, 0, SIGUSR2, 2, 10};
  memset(&w2, 0, sizeof w2);
  w2.sig = w.sig;
  spawn(loop, step_sig_wait, &w2);
  spawn(loop, step_raise, &r);
  run(loop);
  UVT_EQ(w2.first_rc, UVA_EAGAIN);
  UVT_OK(w2.rc);
  cr_assert_eq(w2.count, 2);
  UVT_OK(uva_signal_close(w.sig, NULL, NULL));
  UVT_CLOSE_LOOP(loop);
}

struct cb_log {
  int calls;
  int signum;
  uva_signal_t *sig;
  int waiter_done_first; /* the waiting task was woken before the cb */
  struct sig_waiter *w;
};

static void on_sig(uva_signal_t *sig, int signum, void *data) {
  struct cb_log *log = (struct cb_log *) data;
  log->calls++;
  log->signum = signum;
  log->sig = sig;
}

Test(signal, callback_once_per_pass, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_signal_t *sig;
  struct cb_log log;
  memset(&log, 0, sizeof log);
  UVT_OK(uva_signal_new(&sig, loop, SIGHUP));
  UVT_OK(uva_signal_on_signal(sig, on_sig, &log));
  for (int i = 0; i < 3; i++)
    cr_assert_eq(raise(SIGHUP), 0);
  run_a_while(loop);
  cr_assert_eq(log.calls, 1, "three arrivals seen in one pass: %d calls",
               log.calls);
  cr_assert_eq(log.signum, SIGHUP);
  cr_assert_eq(log.sig, sig);
  cr_assert_eq(raise(SIGHUP), 0);
  run_a_while(loop);
  cr_assert_eq(log.calls, 2);
  /* The callback does not take the count: a wait still sees all four. */
  struct sig_waiter w;
  memset(&w, 0, sizeof w);
  w.sig = sig;
  spawn(loop, step_sig_wait, &w);
  run(loop);
  UVT_OK(w.rc);
  cr_assert_eq(w.count, 4);
  /* NULL removes the callback. */
  UVT_OK(uva_signal_on_signal(sig, NULL, NULL));
  cr_assert_eq(raise(SIGHUP), 0);
  run_a_while(loop);
  cr_assert_eq(log.calls, 2);
  UVT_OK(uva_signal_close(sig, NULL, NULL));
  UVT_CLOSE_LOOP(loop);
}

/* Two watchers of one signal both see it; a watcher of another sees
 * nothing. */
Test(signal, each_watcher_gets_only_its_signal, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_signal_t *a1, *a2, *b;
  struct cb_log la1, la2, lb;
  memset(&la1, 0, sizeof la1);
  memset(&la2, 0, sizeof la2);
  memset(&lb, 0, sizeof lb);
  UVT_OK(uva_signal_new(&a1, loop, SIGUSR1));
  UVT_OK(uva_signal_new(&a2, loop, SIGUSR1));
  UVT_OK(uva_signal_new(&b, loop, SIGUSR2));
  UVT_OK(uva_signal_on_signal(a1, on_sig, &la1));
  UVT_OK(uva_signal_on_signal(a2, on_sig, &la2));
  UVT_OK(uva_signal_on_signal(b, on_sig, &lb));
  cr_assert_eq(raise(SIGUSR1), 0);
  run_a_while(loop);
  cr_assert_eq(la1.calls, 1);
  cr_assert_eq(la2.calls, 1);
  cr_assert_eq(lb.calls, 0);
  cr_assert_eq(raise(SIGUSR2), 0);
  run_a_while(loop);
  cr_assert_eq(la1.calls, 1);
  cr_assert_eq(lb.calls, 1);
  cr_assert_eq(lb.signum, SIGUSR2);
  UVT_OK(uva_signal_close(a1, NULL, NULL));
  UVT_OK(uva_signal_close(a2, NULL, NULL));
  UVT_OK(uva_signal_close(b, NULL, NULL));
  UVT_CLOSE_LOOP(loop);
}

/* ---- two loops in two threads ------------------------------------------- */

struct thread_loop {
  pthread_t th;
  int signum;
  int ready; /* atomic: the watcher exists and a task waits */
  int rc, first_rc;
  uint64_t count;
  int cb_calls;
  int close_rc;
};

static void on_sig_count(uva_signal_t *sig, int signum, void *data) {
  (void) sig;
  (void) signum;
  ++*(int *) data;
}

/* Marks the thread ready once its waiter has registered. */
struct ready_ctx {
  struct thread_loop *tl;
  struct sig_waiter *w;
};

static int step_mark_ready(uva_task_t *t, int status, void *d) {
  struct ready_ctx *c = (struct ready_ctx *) d;
  (void) status;
  if (c->w->calls == 0) { /* the waiter has not run yet */
    UVT_OK(uva_task_yield(t));
    return UVA_TASK_PENDING;
  }
  __atomic_store_n(&c->tl->ready, 1, __ATOMIC_SEQ_CST);
  return 0;
}

static void *thread_main(void *arg) {
  struct thread_loop *tl = (struct thread_loop *) arg;
  uva_loop_t *loop;
  struct sig_waiter w;
  memset(&w, 0, sizeof w);
  tl->rc = -1;
  if (uva_loop_new(&loop) != 0) return NULL;
  if (uva_signal_new(&w.sig, loop, tl->signum) != 0) return NULL;
  uva_signal_on_signal(w.sig, on_sig_count, &tl->cb_calls);
  struct ready_ctx rc = {tl, &w};
  uva_task_spawn(NULL, loop, step_sig_wait, &w, NULL);
  uva_task_spawn(NULL, loop, step_mark_ready, &rc, NULL);
  uva_loop_run(loop, UVA_RUN_DEFAULT);
  tl->rc = w.rc;
  tl->first_rc = w.first_rc;
  tl->count = w.count;
  uva_signal_close(w.sig, NULL, NULL);
  tl->close_rc = uva_loop_close(loop);
  return NULL;
}

static void wait_ready(struct thread_loop *tl) {
  double end = uvt_ms() + 5000;
  while (!__atomic_load_n(&tl->ready, __ATOMIC_SEQ_CST)) {
    cr_assert_lt(uvt_ms(), end, "thread loop not ready");
    uvt_sleep_ms(1);
  }
}

Test(signal, two_loops_in_two_threads_each_get_it, .timeout = 10) {
  struct thread_loop tl[2];
  memset(tl, 0, sizeof tl);
  for (int i = 0; i < 2; i++) {
    tl[i].signum = SIGUSR1;
    cr_assert_eq(pthread_create(&tl[i].th, NULL, thread_main, &tl[i]), 0);
  }
  for (int i = 0; i < 2; i++)
    wait_ready(&tl[i]);
  /* Sent to the process: whichever thread takes it, both loops see it. */
  cr_assert_eq(kill(getpid(), SIGUSR1), 0);
  for (int i = 0; i < 2; i++) {
    cr_assert_eq(pthread_join(tl[i].th, NULL), 0);
    UVT_EQ(tl[i].first_rc, UVA_EAGAIN);
    UVT_OK(tl[i].rc);
    cr_assert_eq(tl[i].count, 1, "loop %d: count %llu", i,
                 (unsigned long long) tl[i].count);
    cr_assert_eq(tl[i].cb_calls, 1);
    UVT_OK(tl[i].close_rc);
  }
}

/* A signal raised in this thread (raise: this thread only) reaches the
 * loops of other threads too, and only the watchers of that signal. */
Test(signal, raise_reaches_other_threads_loops, .timeout = 10) {
  struct thread_loop tl[2];
  memset(tl, 0, sizeof tl);
  tl[0].signum = SIGUSR2;
  tl[1].signum = SIGHUP;
  for (int i = 0; i < 2; i++)
    cr_assert_eq(pthread_create(&tl[i].th, NULL, thread_main, &tl[i]), 0);
  for (int i = 0; i < 2; i++)
    wait_ready(&tl[i]);
  cr_assert_eq(raise(SIGUSR2), 0);
  cr_assert_eq(pthread_join(tl[0].th, NULL), 0);
  UVT_OK(tl[0].rc);
  cr_assert_eq(tl[0].count, 1);
  uvt_sleep_ms(20);
  cr_assert_eq(tl[1].cb_calls, 0, "SIGHUP's loop saw nothing");
  cr_assert_eq(raise(SIGHUP), 0);
  cr_assert_eq(pthread_join(tl[1].th, NULL), 0);
  UVT_OK(tl[1].rc);
  cr_assert_eq(tl[1].count, 1);
}

/* ---- closing, errors, withdrawal ------------------------------------------ */

static void count_signal_close(uva_signal_t *sig, void *data) {
  (void) sig;
  ++*(int *) data;
}

struct closer {
  int pc, rc;
  uva_signal_t *sig;
  int *closed;
};

static int step_close_later(uva_task_t *t, int status, void *d) {
  struct closer *c = (struct closer *) d;
  (void) status;
  CO_BEGIN(c);
  CO_SLEEP(c, t, 10);
  UVT_OK(uva_signal_close(c->sig, count_signal_close, c->closed));
  UVT_OK(uva_signal_close(c->sig, count_signal_close, c->closed));
  CO_END(c);
}

Test(signal, close_under_a_waiting_task, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct sig_waiter w;
  memset(&w, 0, sizeof w);
  int closed = 0;
  UVT_OK(uva_signal_new(&w.sig, loop, SIGUSR1));
  struct closer c = {0, 0, w.sig, &closed};
  spawn(loop, step_sig_wait, &w);
  spawn(loop, step_close_later, &c);
  run(loop);
  cr_assert(w.done);
  UVT_EQ(w.first_rc, UVA_EAGAIN);
  UVT_EQ(w.rc, UVA_ECLOSED);
  cr_assert_eq(closed, 1);
  UVT_CLOSE_LOOP(loop);
}

Test(signal, last_watcher_closed_restores_the_default_action, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct sigaction sa;
  uva_signal_t *a, *b;
  UVT_OK(uva_signal_new(&a, loop, SIGUSR2));
  UVT_OK(uva_signal_new(&b, loop, SIGUSR2));
  cr_assert_eq(sigaction(SIGUSR2, NULL, &sa), 0);
  cr_assert_neq(sa.sa_handler, SIG_DFL, "watched: libuv's handler");
  UVT_OK(uva_signal_close(a, NULL, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  cr_assert_eq(sigaction(SIGUSR2, NULL, &sa), 0);
  cr_assert_neq(sa.sa_handler, SIG_DFL, "one watcher is left");
  UVT_OK(uva_signal_close(b, NULL, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  cr_assert_eq(sigaction(SIGUSR2, NULL, &sa), 0);
  cr_assert_eq(sa.sa_handler, SIG_DFL);
  UVT_CLOSE_LOOP(loop);
}

Test(signal, bad_arguments, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_signal_t *sig = NULL;
  UVT_EQ(uva_signal_new(NULL, loop, SIGUSR1), UVA_EINVAL);
  UVT_EQ(uva_signal_new(&sig, NULL, SIGUSR1), UVA_EINVAL);
  UVT_EQ(uva_signal_new(&sig, loop, 0), UVA_EINVAL);
  UVT_EQ(uva_signal_new(&sig, loop, -1), UVA_EINVAL);
  UVT_EQ(uva_signal_new(&sig, loop, SIGKILL), UVA_EINVAL);
  UVT_EQ(uva_signal_new(&sig, loop, SIGSTOP), UVA_EINVAL);
  UVT_EQ(uva_signal_new(&sig, loop, 100000), UVA_EINVAL);
  cr_assert_null(sig);
  uva_signal_t *notsig = (uva_signal_t *) loop;
  int signum;
  UVT_EQ(uva_signal_signum(&signum, notsig), UVA_EHANDLEKIND);
  UVT_EQ(uva_signal_signum(NULL, notsig), UVA_EINVAL);
  UVT_EQ(uva_signal_on_signal(notsig, NULL, NULL), UVA_EHANDLEKIND);
  UVT_EQ(uva_signal_wait(NULL, notsig, NULL), UVA_EHANDLEKIND);
  UVT_OK(uva_signal_close(NULL, NULL, NULL));
  UVT_EQ(uva_signal_close(notsig, NULL, NULL), UVA_EHANDLEKIND);
  UVT_OK(uva_signal_new(&sig, loop, SIGUSR1));
  UVT_EQ(uva_signal_wait(NULL, sig, NULL), UVA_EINVAL); /* no task */
  UVT_OK(uva_signal_close(sig, NULL, NULL));
  UVT_EQ(uva_signal_signum(&signum, sig), UVA_ECLOSED);
  UVT_EQ(uva_signal_on_signal(sig, on_sig, NULL), UVA_ECLOSED);
  UVT_CLOSE_LOOP(loop); /* a closed watcher needs no run first */
}

/* One waiting task per watcher; a watcher alone keeps no loop running. */
Test(signal, one_waiter_and_no_liveness_of_its_own, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_signal_t *sig;
  UVT_OK(uva_signal_new(&sig, loop, SIGUSR1));
  double t0 = uvt_ms();
  run(loop);
  cr_assert_lt(uvt_ms() - t0, 100);
  struct sig_waiter w1, w2;
  struct raiser r = {0, 0, SIGUSR1, 1, 20};
  memset(&w1, 0, sizeof w1);
  memset(&w2, 0, sizeof w2);
  w1.sig = w2.sig = sig;
  spawn(loop, step_sig_wait, &w1);
  spawn(loop, step_sig_wait, &w2);
  spawn(loop, step_raise, &r);
  run(loop);
  UVT_EQ(w1.first_rc, UVA_EAGAIN);
  UVT_OK(w1.rc);
  UVT_EQ(w2.rc, UVA_EBUSY);
  UVT_OK(uva_signal_close(sig, NULL, NULL));
  UVT_CLOSE_LOOP(loop);
}

struct once {
  uva_signal_t *sig;
  int runs, first_rc;
};

static int step_wait_once(uva_task_t *t, int status, void *d) {
  struct once *o = (struct once *) d;
  (void) status;
  if (o->runs++ > 0) return 0;
  o->first_rc = uva_signal_wait(NULL, o->sig, t);
  return UVA_TASK_PENDING;
}

Test(signal, withdraw_and_cancel, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct once once = {NULL, 0, 0};
  UVT_OK(uva_signal_new(&once.sig, loop, SIGUSR1));
  uva_task_t *t;
  UVT_OK(uva_task_spawn(&t, loop, step_wait_once, &once, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  UVT_EQ(once.first_rc, UVA_EAGAIN);
  UVT_OK(uva_task_withdraw(t, once.sig));
  UVT_EQ(uva_task_withdraw(t, once.sig), UVA_ENOENT);
  cr_assert_eq(raise(SIGUSR1), 0);
  run_a_while(loop); /* `t` is parked: keeps it alive, as the sleep */
  cr_assert_eq(once.runs, 1, "a withdrawn wait is not woken");
  /* The arrival stays counted for the next wait, which another task can
   * make now that nobody waits. */
  struct sig_waiter w;
  memset(&w, 0, sizeof w);
  w.sig = once.sig;
  uva_task_t *tw;
  UVT_OK(uva_task_spawn(&tw, loop, step_sig_wait, &w, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  UVT_OK(w.first_rc);
  cr_assert_eq(w.count, 1);
  /* A cancelled waiter leaves the watcher free for another. */
  struct sig_waiter w2;
  memset(&w2, 0, sizeof w2);
  w2.sig = once.sig;
  uva_task_t *t2;
  UVT_OK(uva_task_spawn(&t2, loop, step_sig_wait, &w2, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  UVT_EQ(w2.first_rc, UVA_EAGAIN);
  UVT_OK(uva_task_cancel(t2));
  UVT_OK(uva_task_cancel(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  struct sig_waiter w3;
  struct raiser r = {0, 0, SIGUSR1, 1, 10};
  memset(&w3, 0, sizeof w3);
  w3.sig = once.sig;
  spawn(loop, step_sig_wait, &w3);
  spawn(loop, step_raise, &r);
  run(loop);
  UVT_EQ(w3.first_rc, UVA_EAGAIN);
  UVT_OK(w3.rc);
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_task_release(tw));
  UVT_OK(uva_task_release(t2));
  UVT_OK(uva_signal_close(once.sig, NULL, NULL));
  UVT_CLOSE_LOOP(loop);
}

/* SIGCHLD watched while children run: the watcher sees their exits and
 * the core still reaps them and reports their status. */
Test(signal, sigchld_watcher_beside_child_processes, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_signal_t *chld;
  struct cb_log log;
  memset(&log, 0, sizeof log);
  UVT_OK(uva_signal_new(&chld, loop, SIGCHLD));
  UVT_OK(uva_signal_on_signal(chld, on_sig, &log));
  const char *argv[8];
  uva_process_options_t o = sh_options(argv, "exit 5");
  struct exit_waiter w;
  memset(&w, 0, sizeof w);
  w.p = spawn_ok(loop, &o);
  spawn(loop, step_wait_exit, &w);
  run(loop);
  UVT_OK(w.rc);
  cr_assert_eq(w.status, 5);
  cr_assert_geq(log.calls, 1, "the watcher saw SIGCHLD");
  UVT_OK(uva_process_close(w.p, NULL, NULL));
  UVT_OK(uva_signal_close(chld, NULL, NULL));
  /* With no watcher left, a child is still reaped (libuv's own). */
  memset(&w, 0, sizeof w);
  w.p = spawn_ok(loop, &o);
  spawn(loop, step_wait_exit, &w);
  run(loop);
  UVT_OK(w.rc);
  cr_assert_eq(w.status, 5);
  UVT_OK(uva_process_close(w.p, NULL, NULL));
  UVT_CLOSE_LOOP(loop);
}
