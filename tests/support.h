/* uvasync C test suite — the helpers that the suites of one behaviour per
 * file share (tests/test_stream_*.c, tests/test_sync_*.c, test_poll.c,
 * test_udp.c): socket pairs and raw peers, a data pattern, an echo server
 * and client, loops run pass by pass, tasks that repeat a waiting call.
 * Defined in support.c, which cmake/uvasync_tests.cmake compiles into every
 * suite.
 *
 * Steps are written as small state machines (CO_* in co.h, protothread
 * style). Peers that must not be uvasync (a socket that never reads,
 * resets, or floods) are plain POSIX sockets driven from a thread or a
 * forked child. */
#ifndef UVASYNC_TESTS_SUPPORT_H
#define UVASYNC_TESTS_SUPPORT_H

#include "helpers.h"
#include "co.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- running steps ------------------------------------------------------ */

/* Sleep ms in a step: the next run goes on after it. */
#define CO_SLEEP(c, t, ms)             \
  do {                                 \
    UVT_OK(uva_task_sleep((t), (ms))); \
    CO_WAIT(c);                        \
  } while (0)

static UVT_UNUSED void run(uva_loop_t *loop) {
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
}

static UVT_UNUSED void spawn(uva_loop_t *loop, uva_task_step_cb step,
                             void *data) {
  UVT_OK(uva_task_spawn(NULL, loop, step, data, NULL));
}

/* ---- protothread-style steps ------------------------------------------ */

/* A second task working on another task's context: its own pc. */
struct side {
  int pc, rc;
  void *c;
};

/* A stream close callback that counts calls in the int it is given. */
void count_stream_close(uva_stream_t *s, void *data);

/* ---- raw sockets ------------------------------------------------------- */

int sock_port(int fd);

void loopback4(struct sockaddr_in *sin, int port);

/* A plain socket on 127.0.0.1:0; listening when backlog > 0. */
int raw_bound(int backlog, int *port);

/* Blocking connect to 127.0.0.1:port; -errno on failure. */
int raw_connect_fd(int fd, int port);

int raw_connect(int port);

/* A connected TCP pair on loopback: fds[0] the client, fds[1] the accepted
 * end. Both blocking. */
void tcp_fd_pair(int fds[2]);

/* As tcp_fd_pair, with 1 MiB socket buffers from fds[0] to fds[1], so that
 * a test can send a few hundred KiB before the other end reads. */
void roomy_tcp_fd_pair(int fds[2]);

/* Close with SO_LINGER {1, 0}: the peer sees a reset. */
void close_reset(int fd);

uva_stream_t *adopt(uva_loop_t *loop, int fd);

void send_all(int fd, const void *buf, size_t len);

/* ---- data pattern ------------------------------------------------------ */

/* Byte o of every stream of test data is o % 251: a shift or a lost or
 * repeated byte shows at once. pattern() + (off % 251) is the data from
 * offset off on, for up to PAT_CHUNK bytes. */
#define PAT_CHUNK (1024 * 1024)

unsigned char *pattern(void);

int pattern_ok(const void *buf, size_t off, size_t n);

unsigned char *pattern_buf(size_t n);

/* ---- peer threads (plain blocking sockets) ------------------------------ */

struct peer {
  pthread_t th;
  int fd;
  size_t total;              /* writer: bytes to send */
  int delay_ms;              /* before starting */
  int close_after;           /* writer: close when done (1) or reset (2) */
  size_t done;               /* bytes sent / received */
  int err;                   /* 0 = clean end (EOF for a reader), else -errno */
  int bad;                   /* reader: data differed from the pattern */
  int started;               /* atomic: the thread began its I/O */
  const unsigned char *data; /* writer: send this instead of the pattern */
};

void *peer_writer(void *arg);

void *peer_reader(void *arg);

void peer_start(struct peer *p, void *(*fn)(void *) );

void peer_join(struct peer *p);

/* A pattern writer on fd: `total` bytes after `delay_ms`, then a close
 * (close_after 1) or a reset (2). */
void peer_write_pattern(struct peer *p, int fd, size_t total, int delay_ms,
                        int close_after);

/* ---- echo server: one handler task per connection ----------------------- */

struct echo_srv {
  uva_loop_t *loop;
  uva_server_t *sv;
  int conns;      /* connections handed over */
  int handled_ok; /* handlers that echoed until a clean EOF */
  int finished;   /* handlers that finished */
  int expect;     /* close the server after this many handlers (0: never) */
  char peer[128], local[128];
  int peer_port, local_port, addr_rc;
};

struct handler {
  int pc, rc;
  uva_stream_t *s;
  struct echo_srv *srv;
  size_t n;
  char buf[256];
};

void handler_done(struct handler *h);

/* Echo lines until end of stream. */
int step_echo(uva_task_t *t, int status, void *d);

void spawn_echo(struct echo_srv *srv, uva_stream_t *s);

void on_conn_echo(uva_server_t *sv, uva_stream_t *s, void *data);

uva_server_t *listen_tcp(uva_loop_t *loop, const char *host, int *port);

/* ---- client task: connect, send a line, expect it back, close ----------- */

struct client {
  int pc, rc;
  uva_loop_t *loop;
  const char *host; /* TCP when not NULL */
  int port;
  const char *path; /* Unix socket when not NULL */
  uva_stream_t *s;
  int id;
  int ok;      /* the echo came back intact */
  int conn_rc; /* uva_tcp_connect / wait_connected */
  size_t msglen, n;
  char msg[64], buf[128];
  char local[128], peer[128];
  int local_port, peer_port, local_rc, peer_rc;
  int *remaining;        /* the last client to finish ... */
  uva_server_t **server; /* ... closes this server */
  int retries;           /* reconnects after a reset before the echo */
};

int step_client(uva_task_t *t, int status, void *d);

/* One echo round trip over TCP: listen on listen_host, connect to
 * connect_host. Returns after everything is closed. */
void tcp_roundtrip(uva_loop_t *loop, const char *listen_host,
                   const char *connect_host, struct client *c,
                   struct echo_srv *srv);

/* ---- contexts of steps that tests of several files use ------------------ */

/* A reading step's context: the stream, counts, and the bytes read. */
struct rd {
  int pc, rc;
  uva_stream_t *s;
  size_t n, total, buffered;
  int reads, eofs;
  char buf[4096];
  char all[4096];
};

/* A reader or writer whose peer (raw, a plain socket) resets. */
struct reset_ctx {
  int pc, rc;
  uva_stream_t *s;
  int raw;
  size_t n, sent;
  int rc1, rc2, write_rc;
  char buf[64];
  unsigned char *chunk;
};

/* Reads of bytes the kernel reported once (edge-triggered polling). */
struct edge_case {
  int pc, rc;
  uva_stream_t *s;
  size_t n, len, got;
  int eof, bad;
  unsigned char *buf;
};

/* Far more than socket buffers hold: part of a write of this size stays
 * queued until the peer reads. */
#define BIG ((size_t) 32 * 1024 * 1024)

/* ---- synchronisation: traces, loop passes, waiting tasks --------------- */

/* A printable trace of who did what, in order. */
struct trace {
  char s[512];
  int n;
};

void tr_add(struct trace *tr, char c);

#define TR_EQ(tr, want)                                                        \
  cr_assert_str_eq((tr)->s, (want), "trace: got \"%s\", want \"%s\"", (tr)->s, \
                   (want))

/* One pass of the loop. */
void pass(uva_loop_t *loop);

/* Passes until no referenced work is left (every task finished), at most
 * max passes; returns 1 if the loop went idle. Tests that expect parked
 * tasks to remain use pass() instead. */
int run_idle(uva_loop_t *loop, int max);

#define RUN_IDLE(loop)             \
  cr_assert(run_idle((loop), 200), \
            "tasks still alive after 200 passes (a lost wake-up?)")

/* A generic waiting task: calls one wait function ("call again" protocol)
 * until it returns something other than UVA_EAGAIN, then finishes with that
 * result. Records everything a test may want to assert. */
enum wop { OP_EVENT, OP_LOCK, OP_SEM, OP_GET, OP_PUT, OP_FLAG };

struct waiter {
  char id; /* appended to the trace when the call returns 0 */
  enum wop op;
  void *obj;        /* the primitive */
  void *item;       /* OP_PUT: item to put; OP_GET: item received */
  struct trace *tr; /* may be NULL */
  int release;      /* OP_LOCK/OP_SEM: release right after acquiring */
  int skip_take;    /* when resumed, finish with 0 without calling again */
  int runs;         /* step runs */
  int calls;        /* calls of the wait function */
  int first_rc;     /* result of the first call */
  int rc;           /* result of the last call */
  int status;       /* status of the last run */
  int cancelled;    /* runs that saw UVA_ECANCELED */
  int got;          /* the call returned 0 */
  uva_task_t *task;
};

void waiter_init(struct waiter *w, char id, enum wop op, void *obj,
                 struct trace *tr);

int waiter_call(struct waiter *w, uva_task_t *t);

int step_waiter(uva_task_t *t, int status, void *d);

uva_task_t *spawn_waiter(uva_loop_t *loop, struct waiter *w);

void release_waiters(struct waiter *w, int n);

/* The result a finished task returned. */
int task_rc(uva_task_t *t);

/* A task that yields once, appending `upper` then `lower` to the trace. */
struct yielder {
  char upper, lower;
  struct trace *tr;
  int runs;
};

int step_yielder(uva_task_t *t, int status, void *d);

/* Items for queues: item i is &items[i] (the queue never reads them). */
extern int items[64];
#define ITEM(i) ((void *) &items[(i)])

#endif /* UVASYNC_TESTS_SUPPORT_H */
