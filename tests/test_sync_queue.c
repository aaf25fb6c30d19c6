/* Queues (uvasync.h "Synchronisation"): bounded and unbounded, nowait
 * variants, FIFO order of items, of waiting getters and of waiting putters,
 * producer and consumer.
 *
 * Waiting follows the "call again" protocol: a call that cannot complete
 * registers the task and returns UVA_EAGAIN, the step returns
 * UVA_TASK_PENDING, and the repeated call after the wake-up completes. Most
 * tests drive the loop one pass at a time (UVA_RUN_NOWAIT) so that every
 * hand-off, wake-up and cancellation happens at a known point. Helpers:
 * support.h. */
#include "support.h"

Test(sync, queue_maxsize_0_is_unbounded, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_queue_t *q = NULL;
  static int many[5000];
  size_t size = 1;
  int full = -1, empty = -1;
  void *out = NULL;
  struct waiter w;
  UVT_OK(uva_queue_new(&q, loop, 0, NULL));
  cr_assert_not_null(q);
  for (int i = 0; i < 5000; i++)
    UVT_OK(uva_queue_put_nowait(q, &many[i]));
  UVT_OK(uva_queue_size(&size, q));
  cr_assert_eq(size, 5000);
  UVT_OK(uva_queue_full(&full, q));
  cr_assert_eq(full, 0, "an unbounded queue is never full");
  /* A task's put completes at once too. */
  waiter_init(&w, 'p', OP_PUT, q, NULL);
  w.item = ITEM(0);
  spawn_waiter(loop, &w);
  RUN_IDLE(loop);
  cr_assert_eq(w.runs, 1);
  cr_assert_eq(w.first_rc, 0);
  for (int i = 0; i < 5000; i++) {
    UVT_OK(uva_queue_get_nowait(&out, q));
    cr_assert_eq(out, &many[i], "item %d out of order", i);
  }
  UVT_OK(uva_queue_get_nowait(&out, q));
  cr_assert_eq(out, ITEM(0));
  UVT_OK(uva_queue_empty(&empty, q));
  cr_assert_eq(empty, 1);
  UVT_EQ(uva_queue_get_nowait(&out, q), UVA_EQUEUEEMPTY);
  release_waiters(&w, 1);
  UVT_OK(uva_queue_close(q));
  UVT_CLOSE_LOOP(loop);
}

Test(sync, queue_getter_parks_without_polling_and_runs_twice, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_queue_t *q;
  struct waiter g, p;
  size_t size = 9;
  UVT_OK(uva_queue_new(&q, loop, 0, NULL));
  waiter_init(&g, 'g', OP_GET, q, NULL);
  spawn_waiter(loop, &g);
  for (int i = 0; i < 10; i++)
    pass(loop);
  cr_assert_eq(g.runs, 1, "a parked getter must not be polled");
  cr_assert_eq(g.first_rc, UVA_EAGAIN);
  waiter_init(&p, 'p', OP_PUT, q, NULL);
  p.item = ITEM(7);
  spawn_waiter(loop, &p);
  pass(loop);
  cr_assert_eq(p.runs, 1);
  cr_assert_eq(p.first_rc, 0);
  UVT_OK(uva_queue_size(&size, q));
  cr_assert_eq(size, 0, "the item went straight to the waiting getter");
  RUN_IDLE(loop);
  cr_assert_eq(g.runs, 2,
               "getter: the run that registers, the one after "
               "the put (got %d)",
               g.runs);
  cr_assert_eq(g.rc, 0);
  cr_assert_eq(g.item, ITEM(7));
  release_waiters(&g, 1);
  release_waiters(&p, 1);
  UVT_OK(uva_queue_close(q));
  UVT_CLOSE_LOOP(loop);
}

Test(sync, queue_nowait_variants_size_empty_full, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_queue_t *q;
  size_t size = 9;
  int full = -1, empty = -1;
  void *out = NULL;
  UVT_OK(uva_queue_new(&q, loop, 2, NULL));
  UVT_OK(uva_queue_size(&size, q));
  UVT_OK(uva_queue_empty(&empty, q));
  UVT_OK(uva_queue_full(&full, q));
  cr_assert(size == 0 && empty == 1 && full == 0);
  UVT_EQ(uva_queue_get_nowait(&out, q), UVA_EQUEUEEMPTY);
  UVT_OK(uva_queue_put_nowait(q, ITEM(1)));
  UVT_OK(uva_queue_size(&size, q));
  UVT_OK(uva_queue_empty(&empty, q));
  UVT_OK(uva_queue_full(&full, q));
  cr_assert(size == 1 && empty == 0 && full == 0);
  UVT_OK(uva_queue_put_nowait(q, ITEM(2)));
  UVT_OK(uva_queue_full(&full, q));
  cr_assert_eq(full, 1);
  UVT_EQ(uva_queue_put_nowait(q, ITEM(3)), UVA_EQUEUEFULL);
  UVT_OK(uva_queue_size(&size, q));
  cr_assert_eq(size, 2, "a refused put must not add the item");
  UVT_OK(uva_queue_get_nowait(&out, q));
  cr_assert_eq(out, ITEM(1));
  UVT_OK(uva_queue_full(&full, q));
  cr_assert_eq(full, 0);
  UVT_OK(uva_queue_get_nowait(&out, q));
  cr_assert_eq(out, ITEM(2));
  out = ITEM(60);
  UVT_EQ(uva_queue_get_nowait(&out, q), UVA_EQUEUEEMPTY);
  UVT_OK(uva_queue_size(&size, q));
  UVT_OK(uva_queue_empty(&empty, q));
  cr_assert(size == 0 && empty == 1);
  UVT_OK(uva_queue_close(q));
  UVT_CLOSE_LOOP(loop);
}

Test(sync, queue_fifo_of_items_and_waiting_getters, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_queue_t *q;
  struct waiter g[3];
  struct trace tr = {{0}, 0};
  const char *ids = "zxy";
  UVT_OK(uva_queue_new(&q, loop, 0, NULL));
  for (int i = 0; i < 3; i++) {
    waiter_init(&g[i], ids[i], OP_GET, q, &tr);
    spawn_waiter(loop, &g[i]);
  }
  pass(loop);
  for (int i = 0; i < 3; i++)
    cr_assert_eq(g[i].first_rc, UVA_EAGAIN);
  UVT_OK(uva_queue_put_nowait(q, ITEM(1)));
  UVT_OK(uva_queue_put_nowait(q, ITEM(2)));
  UVT_OK(uva_queue_put_nowait(q, ITEM(3)));
  UVT_OK(uva_queue_put_nowait(q, ITEM(4))); /* nobody waits: queued */
  RUN_IDLE(loop);
  TR_EQ(&tr, "zxy");
  for (int i = 0; i < 3; i++) {
    cr_assert_eq(g[i].rc, 0);
    cr_assert_eq(g[i].item, ITEM(i + 1), "getter %c got item %d", ids[i],
                 (int) ((int *) g[i].item - items));
  }
  void *out = NULL;
  UVT_OK(uva_queue_get_nowait(&out, q));
  cr_assert_eq(out, ITEM(4));
  release_waiters(g, 3);
  UVT_OK(uva_queue_close(q));
  UVT_CLOSE_LOOP(loop);
}

/* A consumer task that gets `want` items in a loop, recording them. */
struct consumer {
  uva_queue_t *q;
  void *got[64];
  int n, want, runs;
  int rc;
};

static int step_consumer(uva_task_t *t, int status, void *d) {
  struct consumer *c = (struct consumer *) d;
  c->runs++;
  if (status != 0) return status;
  while (c->n < c->want) {
    void *item = NULL;
    int rc = uva_queue_get(&item, c->q, t);
    c->rc = rc;
    if (rc == UVA_EAGAIN) return UVA_TASK_PENDING;
    if (rc != 0) return rc;
    c->got[c->n++] = item;
  }
  return 0;
}

Test(sync, queue_fifo_of_waiting_putters, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_queue_t *q;
  struct waiter p[3];
  struct consumer c;
  uva_task_t *ct;
  int full = 0;
  const char *ids = "qrp";
  UVT_OK(uva_queue_new(&q, loop, 1, NULL));
  UVT_OK(uva_queue_put_nowait(q, ITEM(0)));
  for (int i = 0; i < 3; i++) {
    waiter_init(&p[i], ids[i], OP_PUT, q, NULL);
    p[i].item = ITEM(i + 1);
    spawn_waiter(loop, &p[i]);
  }
  pass(loop);
  for (int i = 0; i < 3; i++)
    cr_assert_eq(p[i].first_rc, UVA_EAGAIN);
  UVT_OK(uva_queue_full(&full, q));
  cr_assert_eq(full, 1);
  /* Putters wait: a put_nowait may not jump the line. */
  UVT_EQ(uva_queue_put_nowait(q, ITEM(9)), UVA_EQUEUEFULL);
  memset(&c, 0, sizeof c);
  c.q = q;
  c.want = 4;
  UVT_OK(uva_task_spawn(&ct, loop, step_consumer, &c, NULL));
  int idle = run_idle(loop, 200);
  cr_assert_eq(c.n, 4,
               "consumer got %d of 4 items (last rc %d %s) and "
               "%d of 3 putters completed: parked with an item in the queue "
               "(lost wake-up)",
               c.n, c.rc, uva_err_name(c.rc), p[0].got + p[1].got + p[2].got);
  for (int i = 0; i < 4; i++)
    cr_assert_eq(c.got[i], ITEM(i), "item %d: got item %d", i,
                 (int) ((int *) c.got[i] - items));
  for (int i = 0; i < 3; i++) {
    cr_assert_eq(p[i].rc, 0);
    cr_assert_eq(p[i].runs, 2, "putter %c ran %d times", ids[i], p[i].runs);
  }
  cr_assert(idle);
  UVT_OK(uva_task_release(ct));
  release_waiters(p, 3);
  UVT_OK(uva_queue_close(q));
  UVT_CLOSE_LOOP(loop);
}

/* The benchmark's pattern: one producer, one consumer, maxsize 1. */
struct producer {
  uva_queue_t *q;
  int i, n, runs;
};

static int step_producer(uva_task_t *t, int status, void *d) {
  struct producer *p = (struct producer *) d;
  p->runs++;
  if (status != 0) return status;
  while (p->i < p->n) {
    int rc = uva_queue_put(p->q, t, ITEM(p->i));
    if (rc == UVA_EAGAIN) return UVA_TASK_PENDING;
    if (rc != 0) return rc;
    p->i++;
  }
  return 0;
}

Test(sync, queue_producer_consumer_maxsize_1_keeps_order, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_queue_t *q;
  struct producer p;
  struct consumer c;
  uva_task_t *pt, *ct;
  int idle;
  UVT_OK(uva_queue_new(&q, loop, 1, NULL));
  memset(&p, 0, sizeof p);
  memset(&c, 0, sizeof c);
  p.q = c.q = q;
  p.n = c.want = 64;
  UVT_OK(uva_task_spawn(&pt, loop, step_producer, &p, NULL));
  UVT_OK(uva_task_spawn(&ct, loop, step_consumer, &c, NULL));
  idle = run_idle(loop, 1000);
  cr_assert_eq(p.i, 64, "producer put %d of 64", p.i);
  for (int i = 0; i < c.n; i++)
    cr_assert_eq(c.got[i], ITEM(i), "item %d: got item %d", i,
                 (int) ((int *) c.got[i] - items));
  cr_assert_eq(c.n, 64,
               "consumer got %d of 64 items: parked with an item "
               "in the queue (lost wake-up)",
               c.n);
  cr_assert(idle);
  UVT_OK(uva_task_release(pt));
  UVT_OK(uva_task_release(ct));
  UVT_OK(uva_queue_close(q));
  UVT_CLOSE_LOOP(loop);
}

Test(sync, queue_full_putter_resumes_when_get_makes_room, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_queue_t *q;
  struct waiter p;
  size_t size = 9;
  int full = 0;
  void *out = NULL;
  UVT_OK(uva_queue_new(&q, loop, 1, NULL));
  UVT_OK(uva_queue_put_nowait(q, ITEM(1)));
  waiter_init(&p, 'p', OP_PUT, q, NULL);
  p.item = ITEM(2);
  spawn_waiter(loop, &p);
  for (int i = 0; i < 5; i++)
    pass(loop);
  cr_assert_eq(p.runs, 1, "a parked putter must not be polled");
  cr_assert_eq(p.first_rc, UVA_EAGAIN);
  UVT_OK(uva_queue_size(&size, q));
  cr_assert_eq(size, 1, "a put that returned EAGAIN did not take the item");
  UVT_OK(uva_queue_get_nowait(&out, q));
  cr_assert_eq(out, ITEM(1));
  /* The freed slot is reserved for the woken putter. */
  UVT_OK(uva_queue_size(&size, q));
  cr_assert_eq(size, 0);
  UVT_OK(uva_queue_full(&full, q));
  cr_assert_eq(full, 1, "full counts the slot reserved for the putter");
  UVT_EQ(uva_queue_put_nowait(q, ITEM(3)), UVA_EQUEUEFULL);
  RUN_IDLE(loop);
  cr_assert_eq(p.runs, 2);
  cr_assert_eq(p.rc, 0);
  UVT_OK(uva_queue_size(&size, q));
  cr_assert_eq(size, 1);
  UVT_OK(uva_queue_get_nowait(&out, q));
  cr_assert_eq(out, ITEM(2));
  release_waiters(&p, 1);
  UVT_OK(uva_queue_close(q));
  UVT_CLOSE_LOOP(loop);
}
