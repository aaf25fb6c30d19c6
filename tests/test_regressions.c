/* Regressions found by fuzzing and fault injection (fuzz/, tests/fault/).
 * Each test names the input or run that found the bug. */
#include "helpers.h"

#include <sys/socket.h>
#include <unistd.h>

struct zero_read {
  uva_stream_t *s;
  int rc_exactly, rc_read;
  size_t nread;
};

static int zero_reads(uva_task_t *t, int status, void *d) {
  struct zero_read *z = d;
  char buf[4];
  (void) status;
  z->rc_exactly = uva_stream_read_exactly(z->s, t, buf, 0);
  z->rc_read = uva_stream_read(&z->nread, z->s, t, buf, 0);
  return 0;
}

/* fuzz_stream_read / fuzz_api: a zero-length read on a stream that has not
 * buffered anything yet passed a NULL source to memcpy (undefined; UBSan's
 * nonnull-attribute check reports it in the ASan+UBSan build). */
Test(regressions, zero_length_reads_before_any_data, .timeout = 10) {
  uva_loop_t *loop;
  int fds[2];
  struct zero_read z = {0};
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  UVT_OK(uva_loop_new(&loop));
  UVT_OK(uva_stream_open_fd(&z.s, loop, fds[0]));
  UVT_OK(uva_task_spawn(NULL, loop, zero_reads, &z, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(z.rc_exactly, 0);
  cr_assert_eq(z.rc_read, 0);
  cr_assert_eq(z.nread, 0);
  UVT_OK(uva_stream_close(z.s, NULL, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_OK(uva_loop_close(loop));
  close(fds[1]);
}

/* fuzz_api (corpus file regress-enum-out-of-range): an option number
 * outside the enum was loaded as the C++ enum type, which is undefined for
 * values outside its range (clang's -fsanitize=enum reports it); it must
 * simply be UVA_EINVAL. */
Test(regressions, unknown_stream_option_is_einval, .timeout = 10) {
  uva_loop_t *loop;
  uva_stream_t *s;
  uva_udp_t *u;
  int fds[2];
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  UVT_OK(uva_loop_new(&loop));
  UVT_OK(uva_stream_open_fd(&s, loop, fds[0]));
  UVT_OK(uva_udp_new(&u, loop));
  UVT_EXPECT(uva_stream_set(s, (uva_stream_option) 99, 1), UVA_EINVAL);
  UVT_EXPECT(uva_stream_set(s, (uva_stream_option) 0, 1), UVA_EINVAL);
  UVT_EXPECT(uva_stream_set(s, (uva_stream_option) -1, 1), UVA_EINVAL);
  UVT_EXPECT(uva_udp_set(u, (uva_stream_option) 99, 1), UVA_EINVAL);
  UVT_EXPECT(uva_loop_run(loop, (uva_run_mode) 1000), UVA_EINVAL);
  UVT_OK(uva_stream_close(s, NULL, NULL));
  UVT_OK(uva_udp_close(u, NULL, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_OK(uva_loop_close(loop));
  close(fds[1]);
}

struct put_in_get {
  uva_queue_t *q;
  int pc, rc_get, rc_put, rc_put2, rc_get2;
  void *item;
};

static int put_while_getting(uva_task_t *t, int status, void *d) {
  struct put_in_get *c = d;
  (void) status;
  if (c->pc++ == 0) {
    c->rc_get = uva_queue_get(&c->item, c->q, t); /* empty: waits */
    /* an item arrives and is granted to this waiting get ... */
    UVT_OK(uva_queue_put_nowait(c->q, (void *) (uintptr_t) 1));
    /* ... and the same task, still in its get, now tries a put */
    c->rc_put = uva_queue_put(c->q, t, (void *) (uintptr_t) 2);
    return UVA_TASK_PENDING;
  }
  c->rc_get2 = uva_queue_get(&c->item, c->q, t); /* the granted item */
  c->rc_put2 = uva_queue_put(c->q, t, (void *) (uintptr_t) 3);
  return 0;
}

/* fuzz_api: a put by a task that was waiting in a get on the same queue
 * took the get's grant for a reserved put slot (counters wrapped around)
 * and the next put wrote past the queue's ring. The other operation now
 * gets UVA_EBUSY and the queue stays consistent. */
Test(regressions, queue_put_while_waiting_in_get, .timeout = 10) {
  uva_loop_t *loop;
  struct put_in_get c = {0};
  size_t size = 99;
  UVT_OK(uva_loop_new(&loop));
  UVT_OK(uva_queue_new(&c.q, loop, 4, NULL));
  UVT_OK(uva_task_spawn(NULL, loop, put_while_getting, &c, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(c.rc_get, UVA_EAGAIN);
  cr_assert_eq(c.rc_put, UVA_EBUSY, "put during a get: %s",
               uva_err_name(c.rc_put));
  cr_assert_eq(c.rc_get2, 0);
  cr_assert_eq((uintptr_t) c.item, 1);
  cr_assert_eq(c.rc_put2, 0);
  UVT_OK(uva_queue_size(&size, c.q));
  cr_assert_eq(size, 1);
  UVT_OK(uva_queue_close(c.q));
  UVT_OK(uva_loop_close(loop));
}
