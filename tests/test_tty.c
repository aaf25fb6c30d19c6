/* TTYs (uvasync.h "Streams": uva_stream_open_fd): a pseudo-terminal's
 * slave end adopted as a stream, as a program adopts its stdin/stdout. The
 * test drives the master end with plain blocking I/O. */
#include "helpers.h"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/* A pty in raw mode (no echo, no line editing, no output translation). */
static void open_pty(int *master, int *slave) {
  *master = posix_openpt(O_RDWR | O_NOCTTY);
  cr_assert(*master >= 0, "posix_openpt: %s", strerror(errno));
  cr_assert_eq(grantpt(*master), 0);
  cr_assert_eq(unlockpt(*master), 0);
  const char *name = ptsname(*master);
  cr_assert_not_null(name);
  *slave = open(name, O_RDWR | O_NOCTTY);
  cr_assert(*slave >= 0, "open %s: %s", name, strerror(errno));
  struct termios tio;
  cr_assert_eq(tcgetattr(*slave, &tio), 0);
  cfmakeraw(&tio);
  cr_assert_eq(tcsetattr(*slave, TCSANOW, &tio), 0);
}

/* Read exactly len bytes from fd within 5 s. */
static void read_fully(int fd, char *buf, size_t len) {
  size_t got = 0;
  while (got < len) {
    struct pollfd p = {fd, POLLIN, 0};
    cr_assert_eq(poll(&p, 1, 5000), 1, "timed out after %zu bytes", got);
    ssize_t n = read(fd, buf + got, len - got);
    cr_assert(n > 0, "read: %s", strerror(errno));
    got += (size_t) n;
  }
}

struct tty_ctx {
  uva_stream_t *s;
  int master;
  int phase;
  char line[64];
  size_t len;
  int rc;
};

static int step_tty(uva_task_t *t, int status, void *d) {
  struct tty_ctx *c = (struct tty_ctx *) d;
  if (status != 0) return status;
  if (c->phase == 0) {
    /* Out through the stream, in at the master. */
    c->rc = uva_stream_write(NULL, c->s, "ping\n", 5);
    if (c->rc != 0) return c->rc;
    char buf[5];
    read_fully(c->master, buf, sizeof buf);
    cr_assert_eq(memcmp(buf, "ping\n", 5), 0);
    /* Typed at the terminal: a line for the stream to read. */
    cr_assert_eq(write(c->master, "pong\n", 5), 5);
    c->phase = 1;
  }
  c->rc = uva_stream_read_line(&c->len, c->s, t, c->line, sizeof c->line);
  if (c->rc == UVA_EAGAIN) return UVA_TASK_PENDING;
  uva_stream_close(c->s, NULL, NULL);
  return c->rc;
}

Test(tty, pty_slave_adopted_as_stream_reads_and_writes, .timeout = 20) {
  uva_loop_t *loop = uvt_loop_new();
  struct tty_ctx c;
  int slave;
  memset(&c, 0, sizeof c);
  open_pty(&c.master, &slave);
  cr_assert(isatty(slave));
  UVT_OK(uva_stream_open_fd(&c.s, loop, slave));
  UVT_OK(uva_task_spawn(NULL, loop, step_tty, &c, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(c.rc, 0, "read_line: %s", uva_err_name(c.rc));
  cr_assert_eq(c.len, 5);
  cr_assert_eq(memcmp(c.line, "pong\n", 5), 0);
  close(c.master);
  UVT_CLOSE_LOOP(loop);
}

/* Two streams on one terminal, one only written to (asyncio's write pipe
 * beside a read pipe on a pty): what is typed goes to the one that reads,
 * never into the other's read-ahead. */
struct pair_ctx {
  uva_stream_t *reader, *writer;
  int master;
  int phase;
  char line[64];
  size_t len;
  int rc;
};

static int step_pair(uva_task_t *t, int status, void *d) {
  struct pair_ctx *c = (struct pair_ctx *) d;
  if (status != 0) return status;
  if (c->phase == 0) {
    c->rc = uva_stream_write(NULL, c->writer, "ping\n", 5);
    if (c->rc != 0) return c->rc;
    c->phase = 1;
    uva_task_yield(t); /* a loop pass: the write goes out */
    return UVA_TASK_PENDING;
  }
  if (c->phase == 1) {
    char buf[5];
    read_fully(c->master, buf, sizeof buf);
    cr_assert_eq(memcmp(buf, "ping\n", 5), 0);
    cr_assert_eq(write(c->master, "pong\n", 5), 5);
    c->phase = 2;
  }
  c->rc = uva_stream_read_line(&c->len, c->reader, t, c->line, sizeof c->line);
  if (c->rc == UVA_EAGAIN) return UVA_TASK_PENDING;
  uva_stream_close(c->reader, NULL, NULL);
  uva_stream_close(c->writer, NULL, NULL);
  return c->rc;
}

Test(tty, a_stream_only_written_to_leaves_the_input_to_the_reader,
     .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct pair_ctx c;
  int slave;
  memset(&c, 0, sizeof c);
  open_pty(&c.master, &slave);
  int wslave = dup(slave);
  cr_assert(wslave >= 0);
  UVT_OK(uva_stream_open_fd(&c.reader, loop, slave));
  UVT_OK(uva_stream_open_fd(&c.writer, loop, wslave));
  UVT_OK(uva_task_spawn(NULL, loop, step_pair, &c, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(c.rc, 0, "read_line: %s", uva_err_name(c.rc));
  cr_assert_eq(c.len, 5);
  cr_assert_eq(memcmp(c.line, "pong\n", 5), 0);
  close(c.master);
  UVT_CLOSE_LOOP(loop);
}
