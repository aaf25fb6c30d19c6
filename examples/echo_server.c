/* echo_server — a TCP echo server on uvasync.
 *
 *   echo_server [host] [port]        (default 127.0.0.1 7000)
 *
 * Port 0 lets the system pick a free port; the chosen one is printed.
 *
 * Tasks in this program:
 *
 *   handler (one per connection)  reads whatever arrived (uva_stream_read
 *       into its own 64 KiB buffer) and writes it back (uva_stream_write:
 *       what the kernel takes goes out at once, the rest is queued). When
 *       more than ECHO_QUEUE_MAX bytes are queued because the peer reads
 *       slowly, it waits with uva_stream_drain before reading again, so a
 *       client that sends without reading cannot grow the server's memory:
 *       the core stops reading at the stream's high-water mark and TCP
 *       pushes back on the sender. At end of stream it closes the stream
 *       (uva_stream_close flushes what is still queued).
 *   watcher  waits on a uva_flag_t that the SIGINT/SIGTERM handler sets
 *       (uva_flag_set is async-signal-safe). Then it closes the server,
 *       cancels the handlers (each closes its stream), closes the flag and
 *       stops the loop; main runs the loop once more until the closes have
 *       completed and checks that uva_loop_close returns 0.
 *
 * Every step follows the "call again" protocol: a call that returns
 * UVA_EAGAIN has registered the task, the step returns UVA_TASK_PENDING and
 * makes the same call again when the task is woken.
 *
 * Try it:  echo_server 127.0.0.1 0   and   echo_client 127.0.0.1 PORT hi there
 *
 * C99, only <uvasync.h> and libc (plus POSIX sigaction).
 */
#define _POSIX_C_SOURCE 200809L
#include <uvasync.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ECHO_BUF (64 * 1024)       /* one read's worth */
#define ECHO_QUEUE_MAX (64 * 1024) /* drain once this much is queued */

#define CHECK(expr)                                                          \
  do {                                                                       \
    int rc_ = (expr);                                                        \
    if (rc_ < 0) {                                                           \
      fprintf(stderr, "echo_server: %s failed: %s (%s) at line %d\n", #expr, \
              uva_err_name(rc_), uva_strerror(rc_), __LINE__);               \
      exit(1);                                                               \
    }                                                                        \
  } while (0)

static uva_loop_t *loop;
static uva_server_t *server;
static uva_flag_t *volatile stop_flag; /* read by the signal handler */

/* ------------------------------------------------------------- handler */

typedef struct conn {
  struct conn *prev, *next; /* live connections, for the shutdown */
  uva_task_t *task;         /* valid while in the list (see conn_free) */
  uva_stream_t *stream;
  unsigned long id;
  char peer[80];
  unsigned long long bytes;
  int draining;
  char buf[ECHO_BUF];
} conn;

static conn conns = {&conns, &conns, NULL, NULL, 0, "", 0, 0, {0}};
static unsigned long next_id = 1;

/* The task's data destructor: runs when the task's memory is freed, so
 * c->task is valid exactly as long as c is in the list. */
static void conn_free(void *data) {
  conn *c = data;
  c->prev->next = c->next;
  c->next->prev = c->prev;
  free(c);
}

/* Finish the handler: close the stream (queued echoes are flushed first). */
static int conn_end(conn *c, int rc) {
  if (rc == 0 || rc == UVA_ECANCELED)
    printf("[conn %lu] %s closed, %llu bytes echoed%s\n", c->id, c->peer,
           c->bytes, rc == UVA_ECANCELED ? " (server stopping)" : "");
  else
    printf("[conn %lu] %s failed: %s (%s) after %llu bytes\n", c->id, c->peer,
           uva_err_name(rc), uva_strerror(rc), c->bytes);
  fflush(stdout);
  uva_stream_close(c->stream, NULL, NULL);
  c->stream = NULL;
  return 0; /* the task finishes; its memory and c are freed */
}

static int handler_step(uva_task_t *task, int status, void *data) {
  conn *c = data;
  if (status == UVA_ECANCELED) return conn_end(c, UVA_ECANCELED);
  for (;;) {
    int rc;
    if (c->draining) { /* the peer reads slowly: let the queue go out */
      rc = uva_stream_drain(c->stream, task);
      if (rc == UVA_EAGAIN) return UVA_TASK_PENDING;
      if (rc < 0) return conn_end(c, rc);
      c->draining = 0;
    }
    size_t n = 0;
    rc = uva_stream_read(&n, c->stream, task, c->buf, sizeof c->buf);
    if (rc == UVA_EAGAIN) return UVA_TASK_PENDING; /* woken when data comes */
    if (rc < 0) return conn_end(c, rc);
    if (n == 0) return conn_end(c, 0); /* end of stream */
    size_t queued = 0;
    rc = uva_stream_write(&queued, c->stream, c->buf, n);
    if (rc < 0) return conn_end(c, rc);
    c->bytes += n;
    if (queued > ECHO_QUEUE_MAX) c->draining = 1;
  }
}

static void on_connection(uva_server_t *srv, uva_stream_t *stream, void *data) {
  (void) srv;
  (void) data;
  conn *c = malloc(sizeof *c);
  if (c == NULL) {
    fprintf(stderr, "echo_server: out of memory, dropping a connection\n");
    uva_stream_abort(stream, NULL, NULL);
    return;
  }
  memset(c, 0, offsetof(conn, buf));
  c->stream = stream;
  c->id = next_id++;
  char host[64];
  int port = 0;
  if (uva_stream_peer_address(stream, host, sizeof host, &port) == 0)
    snprintf(c->peer, sizeof c->peer, "%s:%d", host, port);
  else
    snprintf(c->peer, sizeof c->peer, "?");
  uva_task_t *task = NULL;
  int rc = uva_task_spawn(&task, loop, handler_step, c, conn_free);
  if (rc < 0) {
    fprintf(stderr, "echo_server: spawn failed: %s\n", uva_strerror(rc));
    uva_stream_abort(stream, NULL, NULL);
    free(c);
    return;
  }
  c->task = task;
  c->next = &conns;
  c->prev = conns.prev;
  conns.prev->next = c;
  conns.prev = c;
  uva_task_release(task); /* detached; c->task stays valid while listed */
  printf("[conn %lu] %s connected\n", c->id, c->peer);
  fflush(stdout);
}

/* ------------------------------------------------------------- watcher */

static void on_signal(int sig) {
  (void) sig;
  uva_flag_t *flag = stop_flag;
  if (flag != NULL) uva_flag_set(flag); /* async-signal-safe */
}

static int watcher_step(uva_task_t *task, int status, void *data) {
  (void) data;
  if (status == 0) {
    int rc = uva_flag_wait(stop_flag, task);
    if (rc == UVA_EAGAIN) return UVA_TASK_PENDING;
    if (rc < 0) return rc;
  } /* a cancellation also stops the server */
  printf("stopping\n");
  fflush(stdout);
  uva_server_close(server, NULL, NULL);
  server = NULL;
  for (conn *c = conns.next; c != &conns; c = c->next)
    uva_task_cancel(c->task);
  uva_flag_t *flag = stop_flag;
  stop_flag = NULL; /* before the close: a late signal must not touch it */
  uva_flag_close(flag);
  uva_loop_stop(loop);
  return 0;
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv) {
  const char *host = argc > 1 ? argv[1] : "127.0.0.1";
  int port = argc > 2 ? atoi(argv[2]) : 7000;
  if (argc > 3 || port < 0 || port > 65535) {
    fprintf(stderr, "usage: echo_server [host] [port]\n");
    return 2;
  }

  CHECK(uva_loop_new(&loop));
  uva_flag_t *flag = NULL;
  CHECK(uva_flag_new(&flag, loop));
  stop_flag = flag;
  int rc = uva_tcp_listen(&server, loop, host, port, 0);
  if (rc < 0) {
    fprintf(stderr, "echo_server: cannot listen on %s:%d: %s (%s)\n", host,
            port, uva_err_name(rc), uva_strerror(rc));
    return 1;
  }
  CHECK(uva_server_on_connection(server, on_connection, NULL));
  char bound[64];
  int bound_port = 0;
  CHECK(uva_server_address(server, bound, sizeof bound, &bound_port));
  printf("echo_server listening on %s:%d (Ctrl-C to stop)\n", bound,
         bound_port);
  fflush(stdout);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  CHECK(uva_task_spawn(NULL, loop, watcher_step, NULL, NULL));
  CHECK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  /* Stopped: let the handlers see their cancellation and the closes finish. */
  CHECK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  rc = uva_loop_close(loop);
  if (rc < 0) {
    fprintf(stderr, "echo_server: uva_loop_close: %s\n", uva_err_name(rc));
    return 1;
  }
  printf("bye\n");
  return 0;
}
