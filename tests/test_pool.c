/* The loop's thread pool (uva_work_*): jobs run on pool threads and their
 * end completes a "call again" wait in the tasks that wait for it; done
 * callbacks, cancellation before a job starts, closing under waiters and
 * under a running job, uva_task_withdraw, the pool's size, and
 * uva_loop_close while a job runs.
 *
 * Jobs that must stay running while the test looks wait on a gate (an
 * atomic the test opens); the test thread sees a job start through an
 * atomic the job sets, without running the loop. Helpers: support.h. */
#include "support.h"

#include <dirent.h>
#include <stdatomic.h>

/* ---- jobs ----------------------------------------------------------------- */

struct job {
  atomic_int started;
  atomic_int ended;
  atomic_int *gate;           /* wait until it is non-zero (NULL: no wait) */
  atomic_int *running, *most; /* concurrency seen (may be NULL) */
  int value;                  /* written by the job */
  int dtors;                  /* dtor calls, and ... */
  int ended_at_dtor;          /* ... whether fn had ended by then */
  int done_calls, done_status;
  struct trace *tr;
};

static void job_fn(void *d) {
  struct job *j = d;
  atomic_store(&j->started, 1);
  if (j->running != NULL) {
    int now = atomic_fetch_add(j->running, 1) + 1;
    int seen = atomic_load(j->most);
    while (now > seen && !atomic_compare_exchange_weak(j->most, &seen, now)) {
    }
  }
  while (j->gate != NULL && atomic_load(j->gate) == 0)
    uvt_sleep_ms(1);
  j->value = 42;
  if (j->running != NULL) atomic_fetch_sub(j->running, 1);
  atomic_store(&j->ended, 1);
}

static void job_dtor(void *d) {
  struct job *j = d;
  j->dtors++;
  j->ended_at_dtor = atomic_load(&j->ended);
}

static void job_done(uva_work_t *w, int status, void *d) {
  struct job *j = d;
  (void) w;
  j->done_calls++;
  j->done_status = status;
  if (j->tr != NULL) tr_add(j->tr, 'D');
}

static uva_work_t *submit(uva_loop_t *loop, struct job *j) {
  uva_work_t *w = NULL;
  UVT_OK(uva_work_submit(&w, loop, job_fn, j, job_dtor, job_done));
  cr_assert_not_null(w);
  return w;
}

static void wait_started(struct job *j) {
  double t0 = uvt_ms();
  while (!atomic_load(&j->started)) {
    cr_assert(uvt_ms() - t0 < 5000 * uvt_mult(), "the job never started");
    uvt_sleep_ms(1);
  }
}

/* ---- a task waiting for a job ------------------------------------------ */

struct wtask {
  int pc, rc;
  uva_work_t *w;
  int calls, runs, first_rc;
  char id;
  struct trace *tr;
  uva_task_t *task;
};

static int wait_call(struct wtask *c, uva_task_t *t) {
  int rc = uva_work_wait(c->w, t);
  if (c->calls++ == 0) c->first_rc = rc;
  return rc;
}

static int step_wait(uva_task_t *t, int status, void *d) {
  struct wtask *c = d;
  c->runs++;
  if (status != 0) return status;
  CO_BEGIN(c);
  CO_CALL(c, wait_call(c, t));
  if (c->tr != NULL) tr_add(c->tr, c->id);
  return c->rc;
  CO_END(c);
}

static uva_task_t *spawn_wait(uva_loop_t *loop, struct wtask *c,
                              uva_work_t *w) {
  c->w = w;
  UVT_OK(uva_task_spawn(&c->task, loop, step_wait, c, NULL));
  return c->task;
}

/* The task's result, and its reference dropped. */
static int finish_task(struct wtask *c) {
  int rc = task_rc(c->task);
  uva_task_release(c->task);
  return rc;
}

/* ---- tests ---------------------------------------------------------------- */

Test(pool, job_completes_and_wakes_its_task, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct trace tr = {{0}, 0};
  struct job j = {0};
  j.tr = &tr;
  uva_work_t *w = submit(loop, &j);
  struct wtask c = {0};
  c.id = 'a';
  c.tr = &tr;
  spawn_wait(loop, &c, w);
  run(loop);
  UVT_EQ(c.first_rc, UVA_EAGAIN);
  UVT_OK(finish_task(&c));
  UVT_OK(c.rc);
  cr_assert_eq(j.value, 42);
  cr_assert_eq(j.done_calls, 1);
  UVT_OK(j.done_status);
  TR_EQ(&tr, "Da"); /* done runs before the waiting task is woken */
  int done = 0;
  UVT_OK(uva_work_done(&done, w));
  cr_assert_eq(done, 1);
  /* After the end every call returns at once, with or without a task. */
  UVT_OK(uva_work_wait(w, NULL));
  cr_assert_eq(j.dtors, 0, "dtor runs when the job is closed, not before");
  UVT_OK(uva_work_close(w));
  cr_assert_eq(j.dtors, 1);
  cr_assert_eq(j.ended_at_dtor, 1);
  UVT_CLOSE_LOOP(loop);
}

Test(pool, many_tasks_wait_for_one_job, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct trace tr = {{0}, 0};
  atomic_int gate = 0;
  struct job j = {0};
  j.gate = &gate;
  j.tr = &tr;
  uva_work_t *w = submit(loop, &j);
  struct wtask c[5] = {{0}};
  for (int i = 0; i < 5; i++) {
    c[i].id = (char) ('a' + i);
    c[i].tr = &tr;
    spawn_wait(loop, &c[i], w);
  }
  pass(loop);
  for (int i = 0; i < 5; i++)
    UVT_EQ(c[i].first_rc, UVA_EAGAIN);
  atomic_store(&gate, 1);
  run(loop);
  for (int i = 0; i < 5; i++) {
    UVT_OK(finish_task(&c[i]));
    cr_assert_eq(c[i].runs, 2, "task %d ran %d times", i, c[i].runs);
  }
  TR_EQ(&tr, "Dabcde"); /* waiters in the order they came */
  UVT_OK(uva_work_close(w));
  cr_assert_eq(j.dtors, 1);
  UVT_CLOSE_LOOP(loop);
}

Test(pool, done_callback_without_waiters, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct job j = {0};
  uva_work_t *w = submit(loop, &j);
  int alive = 0;
  UVT_OK(uva_loop_alive(&alive, loop));
  cr_assert_eq(alive, 1, "a job keeps the loop running");
  run(loop); /* returns once the job's completion ran */
  cr_assert_eq(j.done_calls, 1);
  UVT_OK(j.done_status);
  UVT_OK(uva_work_close(w));
  cr_assert_eq(j.dtors, 1);
  UVT_CLOSE_LOOP(loop);
}

static void done_closes(uva_work_t *w, int status, void *d) {
  struct job *j = d;
  j->done_calls++;
  j->done_status = status;
  UVT_OK(uva_work_close(w)); /* the owner's last use, inside done */
}

Test(pool, done_callback_may_close_the_job, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct job j = {0};
  uva_work_t *w = NULL;
  UVT_OK(uva_work_submit(&w, loop, job_fn, &j, job_dtor, done_closes));
  struct wtask c = {0};
  spawn_wait(loop, &c, w);
  run(loop);
  cr_assert_eq(j.done_calls, 1);
  UVT_OK(j.done_status);
  UVT_EQ(finish_task(&c), UVA_ECLOSED); /* closed before it took the end */
  cr_assert_eq(j.dtors, 1);
  UVT_CLOSE_LOOP(loop);
}

Test(pool, cancel_drops_a_job_not_started, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  UVT_OK(uva_loop_configure(loop, UVA_LOOP_POOL_SIZE, 1));
  atomic_int gate = 0;
  struct job a = {0}, b = {0};
  a.gate = &gate;
  uva_work_t *wa = submit(loop, &a);
  uva_work_t *wb = submit(loop, &b);
  wait_started(&a); /* the one thread runs a; b waits in the queue */
  struct wtask c = {0};
  spawn_wait(loop, &c, wb);
  pass(loop);
  UVT_EQ(c.first_rc, UVA_EAGAIN);
  UVT_EQ(uva_work_cancel(wa), UVA_EBUSY); /* running: goes on */
  UVT_OK(uva_work_cancel(wb));
  int done = 0;
  UVT_OK(uva_work_done(&done, wb));
  cr_assert_eq(done, 1, "a dropped job has ended");
  UVT_EQ(uva_work_cancel(wb), UVA_EBUSY); /* ended: nothing changes */
  cr_assert_eq(b.done_calls, 0, "done runs in the loop's pass, not inside");
  pass(loop);
  cr_assert_eq(b.done_calls, 1);
  UVT_EQ(b.done_status, UVA_ECANCELED);
  pass(loop); /* the woken waiter runs after the done callback */
  UVT_EQ(finish_task(&c), UVA_ECANCELED);
  UVT_EQ(uva_work_wait(wb, NULL), UVA_ECANCELED);
  atomic_store(&gate, 1);
  run(loop);
  cr_assert_eq(a.done_calls, 1);
  UVT_OK(a.done_status);
  cr_assert_eq(b.started, 0, "a dropped job never runs");
  UVT_OK(uva_work_close(wa));
  UVT_OK(uva_work_close(wb));
  cr_assert_eq(a.dtors, 1);
  cr_assert_eq(b.dtors, 1);
  UVT_CLOSE_LOOP(loop);
}

Test(pool, close_under_a_waiting_task_gives_eclosed, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  atomic_int gate = 0;
  struct job j = {0};
  j.gate = &gate;
  uva_work_t *w = submit(loop, &j);
  struct wtask c[2] = {{0}};
  spawn_wait(loop, &c[0], w);
  spawn_wait(loop, &c[1], w);
  pass(loop);
  wait_started(&j);
  UVT_OK(uva_work_close(w)); /* the owner's last use of w */
  pass(loop);
  UVT_EQ(finish_task(&c[0]), UVA_ECLOSED);
  UVT_EQ(finish_task(&c[1]), UVA_ECLOSED);
  cr_assert_eq(j.dtors, 0, "never while fn runs");
  UVT_EQ(uva_loop_close(loop), UVA_EBUSY);
  atomic_store(&gate, 1);
  run(loop);
  cr_assert_eq(j.done_calls, 0, "a closed job's result is discarded");
  cr_assert_eq(j.dtors, 1);
  cr_assert_eq(j.ended_at_dtor, 1, "dtor ran before fn ended");
  UVT_CLOSE_LOOP(loop);
}

Test(pool, close_of_a_queued_job_drops_it, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  UVT_OK(uva_loop_configure(loop, UVA_LOOP_POOL_SIZE, 1));
  atomic_int gate = 0;
  struct job a = {0}, b = {0};
  a.gate = &gate;
  uva_work_t *wa = submit(loop, &a);
  uva_work_t *wb = submit(loop, &b);
  wait_started(&a);
  UVT_OK(uva_work_close(wb));
  pass(loop);
  cr_assert_eq(b.dtors, 1, "a dropped, closed job is freed at once");
  cr_assert_eq(b.done_calls, 0);
  atomic_store(&gate, 1);
  run(loop);
  cr_assert_eq(b.started, 0);
  UVT_OK(uva_work_close(wa));
  UVT_CLOSE_LOOP(loop);
}

Test(pool, a_cancelled_task_stops_waiting_and_the_job_goes_on, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  atomic_int gate = 0;
  struct job j = {0};
  j.gate = &gate;
  uva_work_t *w = submit(loop, &j);
  struct wtask c = {0};
  spawn_wait(loop, &c, w);
  pass(loop);
  UVT_OK(uva_task_cancel(c.task));
  pass(loop);
  UVT_EQ(finish_task(&c), UVA_ECANCELED);
  atomic_store(&gate, 1);
  run(loop);
  cr_assert_eq(j.done_calls, 1);
  UVT_OK(j.done_status);
  UVT_OK(uva_work_close(w));
  cr_assert_eq(j.dtors, 1);
  UVT_CLOSE_LOOP(loop);
}

/* A task that waits, withdraws its wait, then finishes on a wake. */
struct withdrawer {
  int pc, rc;
  uva_work_t *w;
  int runs, withdraw_rc, again_rc;
};

static int step_withdrawer(uva_task_t *t, int status, void *d) {
  struct withdrawer *c = d;
  (void) status;
  c->runs++;
  CO_BEGIN(c);
  c->rc = uva_work_wait(c->w, t);
  if (c->rc != UVA_EAGAIN) return UVA_EINVAL;
  c->withdraw_rc = uva_task_withdraw(t, c->w);
  c->again_rc = uva_task_withdraw(t, c->w);
  CO_WAIT(c); /* parked: only a wake or a cancel runs it again */
  CO_END(c);
}

Test(pool, withdraw_leaves_the_job_and_the_task_is_not_woken, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct job j = {0};
  uva_work_t *w = submit(loop, &j);
  struct withdrawer c = {0};
  c.w = w;
  uva_task_t *t;
  UVT_OK(uva_task_spawn(&t, loop, step_withdrawer, &c, NULL));
  pass(loop);
  UVT_OK(c.withdraw_rc);
  UVT_EQ(c.again_rc, UVA_ENOENT);
  while (j.done_calls == 0)
    UVT_OK(uva_loop_run(loop, UVA_RUN_ONCE));
  pass(loop);
  cr_assert_eq(c.runs, 1, "the end of the job woke a withdrawn task");
  UVT_OK(uva_task_cancel(t));
  run(loop);
  uva_task_release(t);
  UVT_OK(uva_work_close(w));
  UVT_CLOSE_LOOP(loop);
}

Test(pool, wait_outside_a_step_takes_no_task, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  atomic_int gate = 0;
  struct job j = {0};
  j.gate = &gate;
  uva_work_t *w = submit(loop, &j);
  UVT_EQ(uva_work_wait(w, NULL), UVA_EINVAL); /* would have to wait */
  atomic_store(&gate, 1);
  run(loop);
  UVT_OK(uva_work_wait(w, NULL));
  UVT_OK(uva_work_close(w));
  UVT_CLOSE_LOOP(loop);
}

Test(pool, loop_close_is_busy_while_a_job_runs_then_joins, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  atomic_int gate = 0;
  struct job j = {0};
  j.gate = &gate;
  uva_work_t *w = submit(loop, &j);
  wait_started(&j);
  UVT_EQ(uva_loop_close(loop), UVA_EBUSY);
  atomic_store(&gate, 1);
  run(loop);
  UVT_EQ(uva_loop_close(loop), UVA_EBUSY); /* ended, not closed */
  UVT_OK(uva_work_close(w));
  UVT_CLOSE_LOOP(loop); /* joins the pool's thread */
}

Test(pool, size_defaults_and_bounds, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uint64_t size = 0;
  UVT_OK(uva_loop_get_option(&size, loop, UVA_LOOP_POOL_SIZE));
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  uint64_t want = (uint64_t) (cpus + 4 < 32 ? cpus + 4 : 32);
  cr_assert(size >= 5 && size <= 32, "default size %lu", (unsigned long) size);
  cr_assert(size <= want, "default %lu, CPUs + 4 = %lu", (unsigned long) size,
            (unsigned long) want);
  UVT_EQ(uva_loop_configure(loop, UVA_LOOP_POOL_SIZE, 0), UVA_EINVAL);
  UVT_EQ(uva_loop_configure(loop, UVA_LOOP_POOL_SIZE, 1025), UVA_EINVAL);
  UVT_EQ(uva_loop_configure(loop, (uva_loop_option) 99, 4), UVA_EINVAL);
  UVT_EQ(uva_loop_get_option(&size, loop, (uva_loop_option) 99), UVA_EINVAL);
  UVT_OK(uva_loop_configure(loop, UVA_LOOP_POOL_SIZE, 1024));
  UVT_OK(uva_loop_get_option(&size, loop, UVA_LOOP_POOL_SIZE));
  cr_assert_eq(size, 1024);
  UVT_OK(uva_loop_configure(loop, UVA_LOOP_POOL_SIZE, 3));
  UVT_OK(uva_loop_get_option(&size, loop, UVA_LOOP_POOL_SIZE));
  cr_assert_eq(size, 3);
  UVT_CLOSE_LOOP(loop);
}

/* n jobs on the gate, `size` of which start at once; returns the most
 * that ran at once (before raising the size to raise_to, if not 0). */
static int concurrency(uva_loop_t *loop, int n, int size, uint64_t raise_to) {
  atomic_int gate = 0, running = 0, most = 0;
  struct job j[8];
  uva_work_t *w[8];
  memset(j, 0, sizeof j);
  for (int i = 0; i < n; i++) {
    j[i].gate = &gate;
    j[i].running = &running;
    j[i].most = &most;
    w[i] = submit(loop, &j[i]);
  }
  for (int i = 0; i < size; i++)
    wait_started(&j[i]);
  uvt_sleep_ms(30); /* time for more jobs to start, if they may */
  int before = atomic_load(&most);
  if (raise_to != 0) {
    UVT_OK(uva_loop_configure(loop, UVA_LOOP_POOL_SIZE, raise_to));
    for (int i = 0; i < n; i++)
      wait_started(&j[i]); /* all run at once now, the gate still shut */
  }
  atomic_store(&gate, 1);
  run(loop);
  for (int i = 0; i < n; i++) {
    cr_assert_eq(j[i].done_calls, 1);
    UVT_OK(uva_work_close(w[i]));
  }
  return raise_to != 0 ? before : atomic_load(&most);
}

Test(pool, size_bounds_the_jobs_that_run_at_once, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  UVT_OK(uva_loop_configure(loop, UVA_LOOP_POOL_SIZE, 2));
  cr_assert_eq(concurrency(loop, 6, 2, 0), 2);
  /* Raised while jobs wait: they start at once. */
  cr_assert_eq(concurrency(loop, 6, 2, 6), 2);
  /* Lowered: the threads above the size leave once idle. */
  UVT_OK(uva_loop_configure(loop, UVA_LOOP_POOL_SIZE, 1));
  cr_assert_eq(concurrency(loop, 4, 1, 0), 1);
  UVT_CLOSE_LOOP(loop);
}

static int count_threads(void) {
  int n = 0;
  DIR *d = opendir("/proc/self/task");
  cr_assert_not_null(d);
  while (readdir(d) != NULL)
    n++;
  closedir(d);
  return n - 2; /* . and .. */
}

/* Jobs one after another keep one thread: the thread that ran a job is on
 * its way back to the queue when the loop, woken by the job's end,
 * submits the next one, and takes it (a thread was started for it when
 * the loop saw the end before the thread waited again). */
Test(pool, one_job_at_a_time_keeps_one_thread, .timeout = 20) {
  uva_loop_t *loop = uvt_loop_new();
  UVT_OK(uva_loop_configure(loop, UVA_LOOP_POOL_SIZE, 8));
  int before = count_threads();
  for (int i = 0; i < 300; i++) {
    struct job j = {0};
    uva_work_t *w = submit(loop, &j);
    run(loop); /* returns once the end ran */
    UVT_OK(uva_work_close(w));
  }
  cr_assert_eq(count_threads(), before + 1, "%d threads for one job at a time",
               count_threads() - before);
  UVT_CLOSE_LOOP(loop);
}

/* One thread per job that needs one, not one per job submitted while the
 * first thread starts (two threads were started for a single job). */
Test(pool, threads_start_as_jobs_need_them, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  UVT_OK(uva_loop_configure(loop, UVA_LOOP_POOL_SIZE, 8));
  int before = count_threads();
  struct job one = {0};
  uva_work_t *w = submit(loop, &one);
  run(loop);
  UVT_OK(uva_work_close(w));
  cr_assert_eq(count_threads(), before + 1);
  atomic_int gate = 0;
  struct job j[3];
  uva_work_t *ws[3];
  memset(j, 0, sizeof j);
  for (int i = 0; i < 3; i++) {
    j[i].gate = &gate;
    ws[i] = submit(loop, &j[i]);
  }
  for (int i = 0; i < 3; i++)
    wait_started(&j[i]);
  cr_assert_eq(count_threads(), before + 3, "3 jobs at once: 3 threads");
  atomic_store(&gate, 1);
  run(loop);
  for (int i = 0; i < 3; i++)
    UVT_OK(uva_work_close(ws[i]));
  UVT_CLOSE_LOOP(loop);
  /* A joined thread leaves /proc/self/task a moment after pthread_join
   * returned (the kernel wakes the joiner before it is done with the
   * thread's exit), so look again for a while. */
  int left = count_threads();
  for (int i = 0; i < 1000 && left != before; i++) {
    uvt_sleep_ms(1);
    left = count_threads();
  }
  cr_assert_eq(left, before, "the loop's close joins them");
}

/* ---- how many threads the work gets ------------------------------------- */

/* `inflight` jobs kept in flight until `total` ran: each end submits the
 * next. A job blocks `block_ms` (0: returns at once). */
struct flight {
  uva_loop_t *loop;
  int block_ms;
  int submitted, ended, total;
  atomic_int running, most;
};

static void flight_fn(void *d) {
  struct flight *f = d;
  int now = atomic_fetch_add(&f->running, 1) + 1;
  int seen = atomic_load(&f->most);
  while (now > seen && !atomic_compare_exchange_weak(&f->most, &seen, now)) {
  }
  if (f->block_ms > 0) uvt_sleep_ms(f->block_ms);
  atomic_fetch_sub(&f->running, 1);
}

static void flight_done(uva_work_t *w, int status, void *d);

static void flight_submit(struct flight *f) {
  uva_work_t *w = NULL;
  UVT_OK(uva_work_submit(&w, f->loop, flight_fn, f, NULL, flight_done));
  f->submitted++;
}

static void flight_done(uva_work_t *w, int status, void *d) {
  struct flight *f = d;
  UVT_OK(status);
  UVT_OK(uva_work_close(w));
  f->ended++;
  if (f->submitted < f->total) flight_submit(f);
}

static void fly(struct flight *f, uva_loop_t *loop, int inflight, int total,
                int block_ms) {
  memset(f, 0, sizeof *f);
  f->loop = loop;
  f->block_ms = block_ms;
  f->total = total;
  for (int i = 0; i < inflight; i++)
    flight_submit(f);
  run(loop);
  cr_assert_eq(f->ended, total);
}

/* Jobs that end at once need no more threads than keep up with them: 64
 * in flight run on at most as many threads as there are CPUs (a thread
 * more only when every busy one took no job for 150 us, which a busy
 * machine's scheduler may cause now and then), not on the pool's size. */
Test(pool, short_jobs_keep_few_threads, .timeout = 20) {
  uva_loop_t *loop = uvt_loop_new();
  UVT_OK(uva_loop_configure(loop, UVA_LOOP_POOL_SIZE, 16));
  int before = count_threads();
  struct flight f;
  fly(&f, loop, 64, 20000, 0);
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  int started = count_threads() - before;
  cr_assert(started <= cpus + 1, "%d threads for no-op jobs on %ld CPUs",
            started, cpus);
  cr_assert(atomic_load(&f.most) <= cpus, "%d ran at once on %ld CPUs",
            atomic_load(&f.most), cpus);
  UVT_CLOSE_LOOP(loop);
}

/* Jobs that block get threads up to the size, a few hundred microseconds
 * apart: 64 jobs of 2 ms in flight run 8 at once on a pool of 8. */
Test(pool, blocking_jobs_reach_the_size, .timeout = 20) {
  uva_loop_t *loop = uvt_loop_new();
  UVT_OK(uva_loop_configure(loop, UVA_LOOP_POOL_SIZE, 8));
  int before = count_threads();
  struct flight f;
  double t0 = uvt_ms();
  fly(&f, loop, 64, 400, 2);
  double took = uvt_ms() - t0;
  cr_assert_eq(atomic_load(&f.most), 8, "%d ran at once", atomic_load(&f.most));
  cr_assert_eq(count_threads() - before, 8);
  /* 400 jobs of 2 ms on 8 threads: 100 ms, and 800 ms on one. */
  cr_assert(took < 400 * uvt_mult(), "%.0f ms for 400 jobs of 2 ms", took);
  UVT_CLOSE_LOOP(loop);
}

/* ---- 10,000 jobs on a pool of 4, random cancellations -------------------- */

#define MANY 10000

struct many {
  uint64_t out[MANY];
  int status[MANY];
  int done[MANY];
  int cancelled[MANY];
  uva_work_t *w[MANY];
  int dtors;
};

static struct many *M;

static uint64_t expected(size_t i) {
  return (uint64_t) i * 0x9E3779B97F4A7C15ull ^ 0xC0FFEEull;
}

static void many_fn(void *d) {
  size_t i = (size_t) (uintptr_t) d;
  M->out[i] = expected(i);
}

static void many_done(uva_work_t *w, int status, void *d) {
  size_t i = (size_t) (uintptr_t) d;
  cr_assert_eq(w, M->w[i]);
  M->done[i]++;
  M->status[i] = status;
}

static void many_dtor(void *d) {
  (void) d;
  M->dtors++;
}

Test(pool, ten_thousand_jobs_with_random_cancellations, .timeout = 30) {
  uva_loop_t *loop = uvt_loop_new();
  UVT_OK(uva_loop_configure(loop, UVA_LOOP_POOL_SIZE, 4));
  M = calloc(1, sizeof *M);
  cr_assert_not_null(M);
  srand(24);
  size_t cancelled = 0;
  for (size_t i = 0; i < MANY; i++) {
    UVT_OK(uva_work_submit(&M->w[i], loop, many_fn, (void *) (uintptr_t) i,
                           many_dtor, many_done));
    if (i > 0 && rand() % 3 == 0) { /* cancel an earlier job, maybe started */
      size_t k = (size_t) rand() % i;
      int rc = uva_work_cancel(M->w[k]);
      cr_assert(rc == 0 || rc == UVA_EBUSY, "cancel: %s", uva_err_name(rc));
      if (rc == 0) {
        M->cancelled[k] = 1;
        cancelled++;
      }
    }
    if (i % 1000 == 999) pass(loop); /* completions come in meanwhile */
  }
  run(loop);
  size_t ran = 0;
  for (size_t i = 0; i < MANY; i++) {
    cr_assert_eq(M->done[i], 1, "job %zu: done ran %d times", i, M->done[i]);
    if (M->cancelled[i]) {
      UVT_EQ(M->status[i], UVA_ECANCELED);
      cr_assert_eq(M->out[i], 0, "cancelled job %zu ran", i);
    } else {
      UVT_OK(M->status[i]);
      cr_assert_eq(M->out[i], expected(i), "job %zu: wrong result", i);
      ran++;
    }
    UVT_EQ(uva_work_wait(M->w[i], NULL), M->status[i]);
    UVT_OK(uva_work_close(M->w[i]));
  }
  cr_assert_eq(M->dtors, MANY);
  cr_assert(cancelled > 0 && ran > 0, "cancelled %zu, ran %zu", cancelled, ran);
  UVT_CLOSE_LOOP(loop);
  free(M);
}

/* ---- bad input ------------------------------------------------------------ */

static void *submit_from_thread(void *arg) {
  uva_work_t *w = NULL;
  struct job j = {0};
  *(int *) ((void **) arg)[1] =
      uva_work_submit(&w, ((void **) arg)[0], job_fn, &j, NULL, NULL);
  return NULL;
}

Test(pool, bad_input, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_work_t *w = NULL;
  struct job j = {0};
  uva_event_t *ev;
  UVT_OK(uva_event_new(&ev, loop));
  UVT_EQ(uva_work_submit(NULL, loop, job_fn, &j, NULL, NULL), UVA_EINVAL);
  UVT_EQ(uva_work_submit(&w, loop, NULL, &j, NULL, NULL), UVA_EINVAL);
  UVT_EQ(uva_work_submit(&w, NULL, job_fn, &j, NULL, NULL), UVA_EINVAL);
  UVT_EQ(uva_work_wait(NULL, NULL), UVA_EINVAL);
  UVT_EQ(uva_work_wait((uva_work_t *) ev, NULL), UVA_EHANDLEKIND);
  UVT_EQ(uva_work_cancel((uva_work_t *) ev), UVA_EHANDLEKIND);
  UVT_EQ(uva_work_close((uva_work_t *) ev), UVA_EHANDLEKIND);
  int done;
  UVT_EQ(uva_work_done(NULL, w), UVA_EINVAL);
  UVT_EQ(uva_work_done(&done, NULL), UVA_EINVAL);
  UVT_OK(uva_work_close(NULL));
  int rc = 0;
  void *args[2] = {loop, &rc};
  uvt_thread_run(submit_from_thread, args);
  UVT_EQ(rc, UVA_EWRONGTHREAD);
  UVT_OK(uva_event_close(ev));
  UVT_CLOSE_LOOP(loop);
}
