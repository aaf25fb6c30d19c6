/* bench_tls_server — the uvasync C side of the TLS benchmark (run_tls.py).
 *
 *   bench_tls_server CERT KEY [HOST [PORT]]
 *
 * A TLS echo server on the core: each connection runs TLS (uva_tls_start
 * with a server context made from the PEM files CERT and KEY; TLS 1.2 and
 * 1.3, the suite is the client's choice), waits for the handshake, then
 * echoes with zero copy (uva_stream_peek -> write -> consume), as
 * bench_echo_server does over plain TCP. Prints the bound port, then on
 * SIGINT/SIGTERM the server's user_s= sys_s= and exits. */
#define _POSIX_C_SOURCE 200809L
#include <uvasync.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define ECHO_QUEUE_MAX (64 * 1024)

static uva_loop_t *loop;
static uva_tls_ctx_t *tls_ctx;
static uva_flag_t *volatile stop_flag;

typedef struct {
  uva_stream_t *stream;
  int draining;
  int handshaken;
} conn;

static int conn_end(conn *c) {
  uva_stream_close(c->stream, NULL, NULL);
  return 0;
}

static int handler_step(uva_task_t *task, int status, void *data) {
  conn *c = data;
  if (status == UVA_ECANCELED) return conn_end(c);
  if (!c->handshaken) {
    int rc = uva_tls_handshake(c->stream, task);
    if (rc == UVA_EAGAIN) return UVA_TASK_PENDING;
    if (rc < 0) {
      uva_stream_abort(c->stream, NULL, NULL);
      return 0;
    }
    c->handshaken = 1;
  }
  for (;;) {
    int rc;
    if (c->draining) {
      rc = uva_stream_drain(c->stream, task);
      if (rc == UVA_EAGAIN) return UVA_TASK_PENDING;
      if (rc < 0) return conn_end(c);
      c->draining = 0;
    }
    size_t n = 0;
    /* Zero copy: write straight from the core's (plaintext) read buffer. */
    const void *p = NULL;
    rc = uva_stream_peek(&p, &n, c->stream, task);
    if (rc == UVA_EAGAIN) return UVA_TASK_PENDING;
    if (rc < 0 || n == 0) return conn_end(c);
    size_t queued = 0;
    rc = uva_stream_write(&queued, c->stream, p, n);
    if (rc < 0) return conn_end(c);
    uva_stream_consume(c->stream, n);
    if (queued > ECHO_QUEUE_MAX) c->draining = 1;
  }
}

static void on_connection(uva_server_t *srv, uva_stream_t *stream, void *data) {
  (void) srv;
  (void) data;
  conn *c = malloc(sizeof *c);
  if (c == NULL) {
    uva_stream_abort(stream, NULL, NULL);
    return;
  }
  c->stream = stream;
  c->draining = 0;
  c->handshaken = 0;
  /* Nagle off, as in every other server of the benchmark: a 100 KiB
   * message goes out as two writes, and Nagle held the second one back
   * until the client's delayed ACK (40 ms) in some runs. */
  (void) uva_stream_set(stream, UVA_STREAM_NODELAY, 1);
  if (uva_tls_start(stream, tls_ctx, NULL) < 0) {
    uva_stream_abort(stream, NULL, NULL);
    free(c);
    return;
  }
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
  if (argc < 3) {
    fprintf(stderr, "usage: bench_tls_server CERT KEY [HOST [PORT]]\n");
    return 2;
  }
  const char *host = argc > 3 ? argv[3] : "127.0.0.1";
  int port = argc > 4 ? atoi(argv[4]) : 0;
  uva_server_t *server = NULL;
  uva_flag_t *flag = NULL;
  int rc = uva_tls_ctx_new(&tls_ctx, UVA_TLS_SERVER);
  if (rc == 0) rc = uva_tls_ctx_use_cert_file(tls_ctx, argv[1], argv[2], NULL);
  if (rc < 0) {
    fprintf(stderr, "bench_tls_server: %s: %s\n", argv[1], uva_strerror(rc));
    return 1;
  }
  rc = uva_loop_new(&loop);
  if (rc == 0) rc = uva_flag_new(&flag, loop);
  if (rc == 0) rc = uva_tcp_listen(&server, loop, host, port, 0);
  if (rc == 0) rc = uva_server_on_connection(server, on_connection, NULL);
  int bound = 0;
  char bound_host[64];
  if (rc == 0)
    rc = uva_server_address(server, bound_host, sizeof bound_host, &bound);
  if (rc < 0) {
    fprintf(stderr, "bench_tls_server: %s:%d: %s\n", host, port,
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
