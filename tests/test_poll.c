/* Readiness of a descriptor the program owns (uvasync.h "readiness of an
 * arbitrary descriptor"): uva_poll_wait follows the "call again" protocol;
 * one waiting task per handle; close wakes the waiter with UVA_ECLOSED. */
#include "support.h"

#include <sys/socket.h>
#include <unistd.h>

static void count_poll_close(uva_poll_t *p, void *data) {
  (void) p;
  ++*(int *) data;
}

/* A task waiting on the poll handle; records what it saw. */
struct poll_waiter {
  int pc, rc;
  uva_poll_t *poll;
  int events;
  int revents;
  int first_rc;  /* result of the first call */
  int calls;     /* calls of uva_poll_wait */
  double t_done; /* when the wait completed */
  int finished;
};

static int step_wait(uva_task_t *t, int status, void *d) {
  struct poll_waiter *w = (struct poll_waiter *) d;
  if (status == UVA_ECANCELED) return status;
  CO_BEGIN(w);
  w->first_rc = uva_poll_wait(&w->revents, w->poll, t, w->events);
  w->calls++;
  w->rc = w->first_rc;
  if (w->rc == UVA_EAGAIN) /* registered: the repeated calls wait on */
    CO_CALL(w, (w->calls++, uva_poll_wait(&w->revents, w->poll, t, w->events)));
  w->t_done = uvt_ms();
  w->finished = 1;
  CO_END(w);
}

/* Writes to fd after a delay, then closes the poll handle (after
 * close_delay ms) if asked. */
struct actor {
  int pc, rc;
  int fd;
  int write_after_ms;
  uva_poll_t *poll_to_close;
  int close_after_ms;
  int closes;
  double t_write;
};

static int step_actor(uva_task_t *t, int status, void *d) {
  struct actor *a = (struct actor *) d;
  (void) status;
  CO_BEGIN(a);
  if (a->write_after_ms >= 0) {
    CO_SLEEP(a, t, a->write_after_ms);
    a->t_write = uvt_ms();
    cr_assert_eq(write(a->fd, "x", 1), 1);
  }
  if (a->poll_to_close != NULL) {
    CO_SLEEP(a, t, a->close_after_ms);
    UVT_OK(uva_poll_close(a->poll_to_close, count_poll_close, &a->closes));
  }
  CO_END(a);
}

Test(poll, readable_after_peer_writes, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int sp[2];
  struct poll_waiter w;
  struct actor a;
  memset(&w, 0, sizeof w);
  memset(&a, 0, sizeof a);
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
  UVT_OK(uva_poll_new(&w.poll, loop, sp[0]));
  w.events = UVA_READABLE;
  a.fd = sp[1];
  a.write_after_ms = 50;
  a.poll_to_close = w.poll;
  a.close_after_ms = 50;
  spawn(loop, step_wait, &w);
  spawn(loop, step_actor, &a);
  run(loop);
  UVT_EQ(w.first_rc, UVA_EAGAIN); /* nothing to read yet */
  UVT_OK(w.rc);
  cr_assert(w.finished);
  cr_assert_eq(w.revents, UVA_READABLE);
  cr_assert(w.t_done >= a.t_write, "readable before the peer wrote");
  cr_assert_eq(a.closes, 1);
  /* The descriptor still belongs to us, unread. */
  char b;
  cr_assert_eq(read(sp[0], &b, 1), 1);
  cr_assert_eq(b, 'x');
  close(sp[0]);
  close(sp[1]);
  UVT_CLOSE_LOOP(loop);
}

Test(poll, writable_at_once, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int sp[2];
  struct poll_waiter w;
  memset(&w, 0, sizeof w);
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
  UVT_OK(uva_poll_new(&w.poll, loop, sp[0]));
  w.events = UVA_WRITABLE;
  spawn(loop, step_wait, &w);
  double t0 = uvt_ms();
  run(loop);
  UVT_OK(w.rc);
  cr_assert(w.finished);
  cr_assert_eq(w.revents, UVA_WRITABLE);
  cr_assert(w.calls <= 3, "took %d calls (one wake-up expected)", w.calls);
  cr_assert(w.t_done - t0 < 500 * uvt_mult(), "writable after %.0f ms",
            w.t_done - t0);
  UVT_OK(uva_poll_close(w.poll, NULL, NULL));
  run(loop);
  close(sp[0]);
  close(sp[1]);
  UVT_CLOSE_LOOP(loop);
}

Test(poll, both_events_report_only_what_is_ready, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int sp[2];
  struct poll_waiter w;
  memset(&w, 0, sizeof w);
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
  UVT_OK(uva_poll_new(&w.poll, loop, sp[0]));
  w.events = UVA_READABLE | UVA_WRITABLE;
  spawn(loop, step_wait, &w);
  run(loop);
  UVT_OK(w.rc);
  /* nothing to read: writable only */
  cr_assert_eq(w.revents, UVA_WRITABLE);
  UVT_OK(uva_poll_close(w.poll, NULL, NULL));
  run(loop);
  close(sp[0]);
  close(sp[1]);
  UVT_CLOSE_LOOP(loop);
}

struct second {
  int pc, rc;
  uva_poll_t *poll;
  int revents;
  int busy_rc;
};

static int step_second_waiter(uva_task_t *t, int status, void *d) {
  struct second *s = (struct second *) d;
  (void) status;
  CO_BEGIN(s);
  CO_SLEEP(s, t, 20); /* the first waiter is registered by now */
  s->busy_rc = uva_poll_wait(&s->revents, s->poll, t, UVA_READABLE);
  UVT_OK(uva_poll_close(s->poll, NULL, NULL));
  CO_END(s);
}

Test(poll, second_waiter_ebusy, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int sp[2];
  struct poll_waiter w;
  struct second s;
  memset(&w, 0, sizeof w);
  memset(&s, 0, sizeof s);
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
  UVT_OK(uva_poll_new(&w.poll, loop, sp[0]));
  w.events = UVA_READABLE;
  s.poll = w.poll;
  spawn(loop, step_wait, &w);
  spawn(loop, step_second_waiter, &s);
  run(loop);
  UVT_EQ(s.busy_rc, UVA_EBUSY);
  UVT_EQ(w.rc, UVA_ECLOSED); /* the first one was woken by the close */
  close(sp[0]);
  close(sp[1]);
  UVT_CLOSE_LOOP(loop);
}

Test(poll, close_wakes_waiter_with_eclosed, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int sp[2];
  struct poll_waiter w;
  struct actor a;
  memset(&w, 0, sizeof w);
  memset(&a, 0, sizeof a);
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
  UVT_OK(uva_poll_new(&w.poll, loop, sp[0]));
  w.events = UVA_READABLE;
  a.write_after_ms = -1;
  a.poll_to_close = w.poll;
  a.close_after_ms = 30;
  spawn(loop, step_wait, &w);
  spawn(loop, step_actor, &a);
  run(loop);
  UVT_EQ(w.first_rc, UVA_EAGAIN);
  UVT_EQ(w.rc, UVA_ECLOSED);
  cr_assert_eq(a.closes, 1);
  /* The descriptor is still ours: poll never closes it. */
  cr_assert_eq(write(sp[1], "y", 1), 1);
  char b;
  cr_assert_eq(read(sp[0], &b, 1), 1);
  close(sp[0]);
  close(sp[1]);
  UVT_CLOSE_LOOP(loop);
}

/* A cancelled waiter leaves no trace: another task can wait next. */
Test(poll, cancelled_waiter_frees_the_slot, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int sp[2];
  struct poll_waiter w1, w2;
  uva_task_t *t1 = NULL;
  memset(&w1, 0, sizeof w1);
  memset(&w2, 0, sizeof w2);
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
  uva_poll_t *p = NULL;
  UVT_OK(uva_poll_new(&p, loop, sp[0]));
  w1.poll = w2.poll = p;
  w1.events = w2.events = UVA_READABLE;
  UVT_OK(uva_task_spawn(&t1, loop, step_wait, &w1, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  UVT_EQ(w1.first_rc, UVA_EAGAIN);
  UVT_OK(uva_task_cancel(t1));
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  int done = 0;
  UVT_OK(uva_task_done(&done, t1));
  cr_assert(done);
  UVT_OK(uva_task_release(t1));
  cr_assert_eq(write(sp[1], "z", 1), 1);
  spawn(loop, step_wait, &w2);
  run(loop);
  UVT_OK(w2.rc);
  cr_assert_eq(w2.revents, UVA_READABLE);
  UVT_OK(uva_poll_close(p, NULL, NULL));
  run(loop);
  close(sp[0]);
  close(sp[1]);
  UVT_CLOSE_LOOP(loop);
}

Test(poll, bad_descriptor_refused, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_poll_t *p = NULL;
  UVT_EQ(uva_poll_new(&p, loop, -1), UVA_EBADF);
  cr_assert_null(p);
  UVT_CLOSE_LOOP(loop);
}
