/* A descriptor poll whose descriptor the program closes (uvasync.h
 * "readiness of an arbitrary descriptor"): closing it under a poll, or
 * between waits, and reusing the number for a new socket, pipe or file,
 * never aborts the process. A poll watches a number: a wait on a closed
 * number returns UVA_EBADF, one on a reused number watches the new file,
 * a new poll on a reused number takes it over (the old one's waits then
 * return UVA_EBADF), and a dup'd descriptor works under its own number. */
#include "support.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

/* A task that waits for nothing by itself: the test body makes the poll
 * calls for it (an explicit task works outside its step) and counts how
 * often it was woken. */
struct parked {
  int runs;
  int quit;
};

static int step_parked(uva_task_t *t, int status, void *d) {
  struct parked *p = (struct parked *) d;
  (void) t;
  p->runs++;
  if (p->quit || status == UVA_ECANCELED) return 0;
  return UVA_TASK_PENDING;
}

static uva_task_t *park(uva_loop_t *loop, struct parked *p) {
  uva_task_t *t = NULL;
  memset(p, 0, sizeof *p);
  UVT_OK(uva_task_spawn(&t, loop, step_parked, p, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT)); /* its first step */
  return t;
}

static void unpark(uva_loop_t *loop, uva_task_t *t, struct parked *p) {
  p->quit = 1;
  UVT_OK(uva_task_wake(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  UVT_OK(uva_task_release(t));
}

/* Passes without blocking until the task was woken `runs` times in all
 * (bounded: a few seconds). */
static void passes_until(uva_loop_t *loop, struct parked *p, int runs) {
  for (int i = 0; i < 3000 && p->runs < runs; i++) {
    UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
    if (p->runs < runs) usleep(1000);
  }
}

/* A few passes, for what must not happen (a wake-up, an abort). */
static void some_passes(uva_loop_t *loop) {
  for (int i = 0; i < 5; i++) {
    UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
    usleep(2000);
  }
}

/* A socket pair whose first descriptor is `fd` (the lowest free number
 * after it was closed). */
static void pair_at(int sp[2], int fd) {
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
  cr_assert_eq(sp[0], fd, "the number was not reused (%d, %d)", sp[0], fd);
}

static void wait_writable(uva_loop_t *loop, uva_poll_t *p, uva_task_t *t,
                          struct parked *k) {
  int rev = 0;
  int rc = uva_poll_wait(&rev, p, t, UVA_WRITABLE);
  if (rc == UVA_EAGAIN) {
    passes_until(loop, k, k->runs + 1);
    rc = uva_poll_wait(&rev, p, t, UVA_WRITABLE);
  }
  UVT_OK(rc);
  cr_assert_eq(rev, UVA_WRITABLE);
}

/* Idle between waits: the descriptor is closed, the next wait says so. */
Test(poll_closed, idle_poll_closed_then_wait_is_ebadf, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct parked k;
  uva_task_t *t = park(loop, &k);
  int sp[2];
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
  uva_poll_t *p = NULL;
  UVT_OK(uva_poll_new(&p, loop, sp[0]));
  wait_writable(loop, p, t, &k);
  close(sp[0]);
  int rev = 0;
  UVT_EQ(uva_poll_wait(&rev, p, t, UVA_READABLE), UVA_EBADF);
  some_passes(loop);
  UVT_EQ(uva_poll_wait(&rev, p, t, UVA_READABLE), UVA_EBADF); /* it stays */
  UVT_OK(uva_poll_close(p, NULL, NULL));
  unpark(loop, t, &k);
  run(loop);
  close(sp[1]);
  UVT_CLOSE_LOOP(loop);
}

/* Idle between waits, the number reused by another socket: the poll
 * watches a number, so its next wait watches the new socket (as asyncio's
 * readers do), and the number stays its own. */
Test(poll_closed, idle_poll_follows_a_reused_number, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct parked k;
  uva_task_t *t = park(loop, &k);
  int sp[2], sq[2];
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
  uva_poll_t *p = NULL;
  UVT_OK(uva_poll_new(&p, loop, sp[0]));
  wait_writable(loop, p, t, &k);
  int fd = sp[0];
  close(sp[0]);
  pair_at(sq, fd);
  int rev = 0;
  UVT_EQ(uva_poll_wait(&rev, p, t, UVA_READABLE), UVA_EAGAIN);
  some_passes(loop);
  uva_poll_t *q = NULL;
  UVT_EQ(uva_poll_new(&q, loop, fd), UVA_EEXIST); /* p holds the socket */
  cr_assert_eq(write(sq[1], "n", 1), 1);
  passes_until(loop, &k, k.runs + 1);
  UVT_OK(uva_poll_wait(&rev, p, t, UVA_READABLE));
  cr_assert_eq(rev, UVA_READABLE);
  UVT_OK(uva_poll_close(p, NULL, NULL));
  unpark(loop, t, &k);
  run(loop);
  close(sp[1]);
  close(sq[0]);
  close(sq[1]);
  UVT_CLOSE_LOOP(loop);
}

/* The number reused by a regular file (which epoll refuses): still no
 * abort, UVA_EPERM as for a poll made on a regular file. */
Test(poll_closed, idle_poll_number_reused_by_file, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct parked k;
  uva_task_t *t = park(loop, &k);
  int sp[2];
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
  uva_poll_t *p = NULL;
  UVT_OK(uva_poll_new(&p, loop, sp[0]));
  wait_writable(loop, p, t, &k);
  int fd = sp[0];
  close(sp[0]);
  char path[] = "/tmp/uva_poll_closed_XXXXXX";
  int f = mkstemp(path);
  cr_assert_eq(f, fd);
  unlink(path);
  int rev = 0;
  UVT_EQ(uva_poll_wait(&rev, p, t, UVA_READABLE), UVA_EPERM);
  some_passes(loop);
  uva_poll_t *q = NULL;
  UVT_EQ(uva_poll_new(&q, loop, fd), UVA_EPERM); /* not pollable */
  UVT_OK(uva_poll_close(p, NULL, NULL));
  unpark(loop, t, &k);
  run(loop);
  close(f);
  close(sp[1]);
  UVT_CLOSE_LOOP(loop);
}

/* Closed while a task waits: the wait does not end by itself (no event
 * comes from a closed descriptor), a call again or another wait says
 * UVA_EBADF, and closing the poll wakes the task with UVA_ECLOSED. */
Test(poll_closed, closed_under_a_wait, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct parked k;
  uva_task_t *t = park(loop, &k);
  int sp[2];
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
  uva_poll_t *p = NULL;
  UVT_OK(uva_poll_new(&p, loop, sp[0]));
  int rev = 0;
  UVT_EQ(uva_poll_wait(&rev, p, t, UVA_READABLE), UVA_EAGAIN);
  some_passes(loop);
  close(sp[0]);
  some_passes(loop);
  /* withdrawn, then another wait (another event mask) */
  UVT_OK(uva_task_withdraw(t, p));
  UVT_EQ(uva_poll_wait(&rev, p, t, UVA_READABLE | UVA_WRITABLE), UVA_EBADF);
  some_passes(loop);
  int runs = k.runs;
  UVT_OK(uva_poll_close(p, NULL, NULL));
  some_passes(loop);
  cr_assert_eq(k.runs, runs, "a task that no longer waits was woken");
  unpark(loop, t, &k);
  run(loop);
  close(sp[1]);
  UVT_CLOSE_LOOP(loop);
}

/* Closed under a wait, the wait started in the same pass (before the
 * loop polled): the loop's next poll must not abort. */
Test(poll_closed, closed_right_after_the_wait_started, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct parked k;
  uva_task_t *t = park(loop, &k);
  int sp[2];
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
  uva_poll_t *p = NULL;
  UVT_OK(uva_poll_new(&p, loop, sp[0]));
  int rev = 0;
  UVT_EQ(uva_poll_wait(&rev, p, t, UVA_WRITABLE), UVA_EAGAIN);
  close(sp[0]); /* before any pass */
  some_passes(loop);
  UVT_OK(uva_poll_close(p, NULL, NULL));
  some_passes(loop);
  unpark(loop, t, &k);
  run(loop);
  close(sp[1]);
  UVT_CLOSE_LOOP(loop);
}

/* Closed under a wait and the number reused: a new poll on the number
 * takes it over (no UVA_EEXIST); the old poll's waiter is woken and its
 * call again returns UVA_EBADF; the new poll watches the new socket. */
Test(poll_closed, new_poll_takes_over_a_closed_number, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct parked k, k2;
  uva_task_t *t = park(loop, &k);
  uva_task_t *t2 = park(loop, &k2);
  int sp[2], sq[2];
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
  int fd = sp[0];
  uva_poll_t *p = NULL;
  UVT_OK(uva_poll_new(&p, loop, fd));
  int rev = 0;
  UVT_EQ(uva_poll_wait(&rev, p, t, UVA_READABLE), UVA_EAGAIN);
  some_passes(loop);
  close(sp[0]);
  pair_at(sq, fd);
  uva_poll_t *q = NULL;
  UVT_OK(uva_poll_new(&q, loop, fd));
  int runs = k.runs;
  passes_until(loop, &k, runs + 1);
  cr_assert(k.runs > runs, "the old poll's waiter was not woken");
  UVT_EQ(uva_poll_wait(&rev, p, t, UVA_READABLE), UVA_EBADF);
  /* the new poll works, and the old one no longer touches the number */
  UVT_EQ(uva_poll_wait(&rev, q, t2, UVA_READABLE), UVA_EAGAIN);
  UVT_EQ(uva_poll_wait(&rev, p, t, UVA_READABLE), UVA_EBADF);
  UVT_OK(uva_poll_close(p, NULL, NULL));
  some_passes(loop);
  cr_assert_eq(write(sq[1], "m", 1), 1);
  passes_until(loop, &k2, k2.runs + 1);
  UVT_OK(uva_poll_wait(&rev, q, t2, UVA_READABLE));
  cr_assert_eq(rev, UVA_READABLE);
  UVT_OK(uva_poll_close(q, NULL, NULL));
  unpark(loop, t, &k);
  unpark(loop, t2, &k2);
  run(loop);
  close(sp[1]);
  close(sq[0]);
  close(sq[1]);
  UVT_CLOSE_LOOP(loop);
}

/* Two live polls on one open descriptor stay refused. */
Test(poll_closed, second_poll_on_an_open_descriptor_is_eexist, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int sp[2];
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
  uva_poll_t *p = NULL, *q = NULL;
  UVT_OK(uva_poll_new(&p, loop, sp[0]));
  UVT_EQ(uva_poll_new(&q, loop, sp[0]), UVA_EEXIST);
  cr_assert_null(q);
  UVT_OK(uva_poll_close(p, NULL, NULL));
  UVT_OK(uva_poll_new(&q, loop, sp[0])); /* free again once closed */
  UVT_OK(uva_poll_close(q, NULL, NULL));
  run(loop);
  close(sp[0]);
  close(sp[1]);
  UVT_CLOSE_LOOP(loop);
}

/* A dup'd descriptor: the poll's number closed under a wait while a dup
 * keeps the socket open, and reused by a pipe. The poll's next wait
 * watches the pipe (at most one spurious wake-up may come from the old
 * socket, which the kernel keeps in the set while the dup lives), and a
 * poll on the dup works. */
Test(poll_closed, dup_keeps_the_socket_open, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct parked k, k2;
  uva_task_t *t = park(loop, &k);
  uva_task_t *t2 = park(loop, &k2);
  int sp[2];
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
  int fd = sp[0];
  uva_poll_t *p = NULL;
  UVT_OK(uva_poll_new(&p, loop, fd));
  int rev = 0;
  UVT_EQ(uva_poll_wait(&rev, p, t, UVA_READABLE), UVA_EAGAIN);
  some_passes(loop);
  int d = dup(fd);
  cr_assert(d >= 0);
  close(fd); /* under the wait; the socket stays open through d */
  int pp[2];
  cr_assert_eq(pipe(pp), 0);
  cr_assert_eq(pp[0], fd);
  cr_assert_eq(write(sp[1], "d", 1), 1); /* the old socket is readable */
  some_passes(loop);
  UVT_OK(uva_task_withdraw(t, p));
  UVT_EQ(uva_poll_wait(&rev, p, t, UVA_READABLE), UVA_EAGAIN); /* the pipe */
  uva_poll_t *pd = NULL, *pq = NULL;
  UVT_EQ(uva_poll_new(&pq, loop, pp[0]), UVA_EEXIST);
  UVT_OK(uva_poll_new(&pd, loop, d));
  int rc = uva_poll_wait(&rev, pd, t2, UVA_READABLE);
  if (rc == UVA_EAGAIN) {
    passes_until(loop, &k2, k2.runs + 1);
    rc = uva_poll_wait(&rev, pd, t2, UVA_READABLE);
  }
  UVT_OK(rc);
  cr_assert_eq(rev, UVA_READABLE);
  char b;
  cr_assert_eq(read(d, &b, 1), 1);
  some_passes(loop);
  cr_assert_eq(write(pp[1], "p", 1), 1);
  rc = UVA_EAGAIN;
  for (int i = 0; i < 3 && rc == UVA_EAGAIN; i++) {
    passes_until(loop, &k, k.runs + 1);
    rc = uva_poll_wait(&rev, p, t, UVA_READABLE);
  }
  UVT_OK(rc);
  cr_assert_eq(rev, UVA_READABLE);
  cr_assert_eq(read(pp[0], &b, 1), 1);
  cr_assert_eq(b, 'p');
  UVT_OK(uva_poll_close(p, NULL, NULL));
  UVT_OK(uva_poll_close(pd, NULL, NULL));
  unpark(loop, t, &k);
  unpark(loop, t2, &k2);
  run(loop);
  close(d);
  close(sp[1]);
  close(pp[0]);
  close(pp[1]);
  UVT_CLOSE_LOOP(loop);
}

/* A stream can adopt a number whose poll lost its descriptor. */
Test(poll_closed, stream_adopts_a_number_a_stale_poll_held, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int sp[2], sq[2];
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
  int fd = sp[0];
  uva_poll_t *p = NULL;
  UVT_OK(uva_poll_new(&p, loop, fd));
  close(sp[0]);
  pair_at(sq, fd);
  uva_stream_t *s = NULL;
  UVT_OK(uva_stream_open_fd(&s, loop, fd));
  UVT_OK(uva_stream_close(s, NULL, NULL));
  UVT_OK(uva_poll_close(p, NULL, NULL));
  run(loop);
  close(sp[1]);
  close(sq[1]);
  UVT_CLOSE_LOOP(loop);
}

/* The first poll of a loop on a number that was just closed: the loop's
 * poll set may take that very number, which is no descriptor of the
 * caller's. */
Test(poll_closed, first_poll_on_a_closed_number_is_ebadf, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int sp[2];
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
  close(sp[0]);
  uva_poll_t *p = NULL;
  UVT_EQ(uva_poll_new(&p, loop, sp[0]), UVA_EBADF);
  cr_assert_null(p);
  UVT_EQ(uva_poll_new(&p, loop, sp[0]), UVA_EBADF);
  close(sp[1]);
  UVT_CLOSE_LOOP(loop);
}
