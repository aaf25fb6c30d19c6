/* bench_echo_server — the uvasync side of the echo benchmark.
 *
 *   bench_echo_server [host] [port]     (default 127.0.0.1 0)
 *
 * examples/echo_server.c without the printing: uva_tcp_listen +
 * uva_server_on_connection, TCP_NODELAY, one handler task per connection
 * doing uva_stream_peek (zero copy) -> uva_stream_write, uva_stream_consume,
 * uva_stream_drain when more than 64 KiB is queued, close at end of stream.
 *
 * Prints the bound port on stdout line 1, runs until SIGTERM/SIGINT (the
 * handler sets a uva_flag_t; a task waiting on it stops the loop), then
 * prints "user_s=.. sys_s=.." (getrusage of the whole process) on line 2.
 *
 * Built with ECHO_COPY defined (bench_echo_read_server.c), the handler
 * echoes with a plain uva_stream_read into its own 64 KiB buffer instead:
 * the copying echo that the zero-copy one must never be slower than.
 */
#define _POSIX_C_SOURCE 200809L
#include <uvasync.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define ECHO_QUEUE_MAX (64 * 1024)

static uva_loop_t *loop;
static uva_flag_t *volatile stop_flag;

#ifdef ECHO_COPY
#define ECHO_BUF (64 * 1024)
#endif

typedef struct {
#ifdef ECHO_COPY
  char buf[ECHO_BUF]; /* first: page-aligned, as the core's read buffer */
#endif
  uva_stream_t *stream;
  int draining;
} conn;

static int conn_end(conn *c) {
  uva_stream_close(c->stream, NULL, NULL);
  return 0;
}

static int handler_step(uva_task_t *task, int status, void *data) {
  conn *c = data;
  if (status == UVA_ECANCELED) return conn_end(c);
  for (;;) {
    int rc;
    if (c->draining) {
      rc = uva_stream_drain(c->stream, task);
      if (rc == UVA_EAGAIN) return UVA_TASK_PENDING;
      if (rc < 0) return conn_end(c);
      c->draining = 0;
    }
    size_t n = 0;
#ifdef ECHO_COPY
    /* Copy: the bytes into our buffer, then out of it. */
    const void *p = c->buf;
    rc = uva_stream_read(&n, c->stream, task, c->buf, sizeof c->buf);
#else
    /* Zero copy: write straight from the core's read buffer. */
    const void *p = NULL;
    rc = uva_stream_peek(&p, &n, c->stream, task);
#endif
    if (rc == UVA_EAGAIN) return UVA_TASK_PENDING;
    if (rc < 0 || n == 0) return conn_end(c);
    size_t queued = 0;
    rc = uva_stream_write(&queued, c->stream, p, n);
    if (rc < 0) return conn_end(c);
#ifndef ECHO_COPY
    uva_stream_consume(c->stream, n);
#endif
    if (queued > ECHO_QUEUE_MAX) c->draining = 1;
  }
}

static void on_connection(uva_server_t *srv, uva_stream_t *stream, void *data) {
  (void) srv;
  (void) data;
  /* Page-aligned, as the core's buffer: the kernel's copies cost more at
   * some distances between source and destination (bench/README.md). */
  conn *c = NULL;
  if (posix_memalign((void **) &c, 4096, sizeof *c) != 0) c = NULL;
  if (c == NULL) {
    uva_stream_abort(stream, NULL, NULL);
    return;
  }
  c->stream = stream;
  c->draining = 0;
  /* Nagle off, as in every other server of the benchmark: a 100 KiB
   * message goes out as two writes, and Nagle held the second one back
   * until the client's delayed ACK (40 ms) in some runs. */
  (void) uva_stream_set(stream, UVA_STREAM_NODELAY, 1);
  if (uva_task_spawn(NULL, loop, handler_step, c, free) < 0) {
    uva_stream_abort(stream, NULL, NULL);
    free(c);
  }
}

static void on_signal(int sig) {
  (void) sig;
  uva_flag_t *flag = stop_flag;
  if (flag != NULL) uva_flag_set(flag);
}

static int watcher_step(uva_task_t *task, int status, void *data) {
  (void) data;
  if (status == 0 && uva_flag_wait(stop_flag, task) == UVA_EAGAIN)
    return UVA_TASK_PENDING;
  uva_loop_stop(loop);
  return 0;
}

int main(int argc, char **argv) {
  const char *host = argc > 1 ? argv[1] : "127.0.0.1";
  int port = argc > 2 ? atoi(argv[2]) : 0;
  uva_server_t *server = NULL;
  uva_flag_t *flag = NULL;
  int rc = uva_loop_new(&loop);
  if (rc == 0) rc = uva_flag_new(&flag, loop);
  if (rc == 0) rc = uva_tcp_listen(&server, loop, host, port, 0);
  if (rc == 0) rc = uva_server_on_connection(server, on_connection, NULL);
  int bound = 0;
  char bound_host[64];
  if (rc == 0)
    rc = uva_server_address(server, bound_host, sizeof bound_host, &bound);
  if (rc < 0) {
    fprintf(stderr, "bench_echo_server: %s:%d: %s\n", host, port,
            uva_strerror(rc));
    return 1;
  }
  printf("%d\n", bound);
  fflush(stdout);

  stop_flag = flag;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  if (uva_task_spawn(NULL, loop, watcher_step, NULL, NULL) < 0) return 1;
  uva_loop_run(loop, UVA_RUN_DEFAULT);

  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("user_s=%.6f sys_s=%.6f\n",
         (double) ru.ru_utime.tv_sec + (double) ru.ru_utime.tv_usec * 1e-6,
         (double) ru.ru_stime.tv_sec + (double) ru.ru_stime.tv_usec * 1e-6);
  return 0;
}
