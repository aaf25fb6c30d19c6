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
