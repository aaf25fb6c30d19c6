/* Fault injection: a representative scenario — a TCP echo server with
 * clients, sleeps, cancellations and waits on a lock, a queue and an event —
 * run once with no fault to count the core's allocations and libuv socket
 * calls, then once for every N up to that count with the Nth call failing
 * (first allocations, then socket calls).
 *
 * Each run checks: the scenario ends (no lost wake-up: an alarm fails the
 * program otherwise), a run with a fault saw at least one error code from
 * the API and a run without one saw none, no echoed byte is wrong, every
 * task's data is destroyed, the loop still runs a fresh task afterwards and
 * uva_loop_close returns 0. Leaks are LeakSanitizer's job (the test suite
 * builds this with -DUVA_SANITIZE=address).
 *
 * Needs a build with -DUVA_FAULT_INJECTION=ON (cmake/uvasync_tests.cmake).
 *
 *   test_fault            all N
 *   test_fault alloc 17   one run, the 17th allocation fails (verbose)
 */
#define _GNU_SOURCE
#include <uvasync.h>

#include "co.h" /* CO_BEGIN, CO_CALL, CO_WAIT, CO_END */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Internal, test-build only (src/fault.cpp). */
void uva__fault_arm(int kinds, long n);
long uva__fault_calls(void);
#define FAULT_ALLOC 1
#define FAULT_IO 2

#define CLIENTS 3
#define HANDLERS (CLIENTS + 1) /* + the idle reader's connection */
#define MSGS 4

/* ---- one run's state ------------------------------------------------------ */

static struct {
  uva_loop_t *loop;
  uva_server_t *server;
  uva_lock_t *lock;
  uva_queue_t *conns; /* accepted streams, for the handler tasks */
  uva_event_t *go;    /* set by the master at the end */
  int port;
  int errors;         /* API calls that returned an unexpected error */
  int spawned, freed; /* tasks created, task data destroyed */
  int exchanges;      /* lines echoed and verified */
  uva_task_t *clients[CLIENTS];
  uva_task_t *victims[3]; /* sleeper, idle reader, event waiter */
  int verbose;
} R;

static void fail(const char *what, int rc) {
  R.errors++;
  if (R.verbose) fprintf(stderr, "  %s: %s\n", what, uva_err_name(rc));
}

struct ctx {
  int pc, rc, i;
  void *obj; /* the object a repeated call waits on (it may be closed and
                its global pointer cleared meanwhile; the wait keeps it) */
  uva_stream_t *s;
  size_t len;
  char line[64], buf[64];
};

static void free_ctx(void *p) {
  R.freed++;
  free(p);
}

static int spawn(uva_task_t **out, uva_task_step_cb step, int i) {
  struct ctx *c = calloc(1, sizeof *c);
  if (c == NULL) abort();
  c->i = i;
  int rc = uva_task_spawn(out, R.loop, step, c, free_ctx);
  if (rc != 0) {
    free(c);
    fail("spawn", rc);
    return rc;
  }
  R.spawned++;
  return 0;
}

/* End a task: close its stream (if any) and report an unexpected error. */
static int finish(struct ctx *c, int rc, const char *what) {
  uva_stream_close(c->s, NULL, NULL);
  c->s = NULL;
  c->pc = -1;
  if (rc < 0 && rc != UVA_ECANCELED && rc != UVA_ECLOSED) fail(what, rc);
  return rc < 0 ? rc : 0;
}

/* ---- server side ----------------------------------------------------------- */

/* Accept until the server is closed; hand each stream to a handler. */
static int acceptor(uva_task_t *t, int status, void *d) {
  struct ctx *c = d;
  if (status == UVA_ECANCELED) return finish(c, status, "acceptor");
  CO_BEGIN(c);
  for (;;) {
    if (R.server == NULL) return finish(c, 0, "accept");
    c->obj = R.server;
    CO_CALL(c, uva_server_accept(&c->s, c->obj, t));
    if (c->rc == UVA_ECLOSED) return finish(c, 0, "accept");
    if (c->rc != 0) { /* this connection is lost; its client sees EOF */
      fail("accept", c->rc);
      c->s = NULL;
      continue;
    }
    if (R.conns == NULL) {
      uva_stream_close(c->s, NULL, NULL);
      return finish(c, 0, "queue_put");
    }
    c->obj = R.conns;
    CO_CALL(c, uva_queue_put(c->obj, t, c->s));
    if (c->rc != 0) { /* not queued: drop this connection, serve the next */
      if (c->rc != UVA_ECLOSED) fail("queue_put", c->rc);
      uva_stream_close(c->s, NULL, NULL);
    }
    c->s = NULL; /* the queue owns it now */
  }
  CO_END(c);
}

/* Take connections from the queue and echo each line back. */
static int handler(uva_task_t *t, int status, void *d) {
  struct ctx *c = d;
  if (status == UVA_ECANCELED) return finish(c, status, "handler");
  CO_BEGIN(c);
  for (;;) {
    if (R.conns == NULL) return finish(c, 0, "queue_get");
    c->obj = R.conns;
    CO_CALL(c, uva_queue_get((void **) &c->s, c->obj, t));
    if (c->rc == UVA_ECLOSED) return finish(c, 0, "queue_get");
    if (c->rc != 0) { /* could not wait; try again */
      fail("queue_get", c->rc);
      c->s = NULL;
      continue;
    }
    for (;;) {
      CO_CALL(c, uva_stream_read_line(&c->len, c->s, t, c->buf, sizeof c->buf));
      if (c->rc != 0) {
        fail("server read_line", c->rc);
        break;
      }
      if (c->len == 0) break; /* EOF: the client is done */
      c->rc = uva_stream_write(NULL, c->s, c->buf, c->len);
      if (c->rc != 0) {
        fail("server write", c->rc);
        break;
      }
    }
    uva_stream_close(c->s, NULL, NULL);
    c->s = NULL;
  }
  CO_END(c);
}

/* ---- clients ------------------------------------------------------------ */

static int client(uva_task_t *t, int status, void *d) {
  struct ctx *c = d;
  if (status == UVA_ECANCELED) return finish(c, status, "client");
  CO_BEGIN(c);
  c->rc = uva_tcp_connect(&c->s, R.loop, "127.0.0.1", R.port);
  if (c->rc != 0) {
    c->s = NULL;
    return finish(c, c->rc, "connect");
  }
  CO_CALL(c, uva_stream_wait_connected(c->s, t));
  if (c->rc != 0) return finish(c, c->rc, "wait_connected");
  for (;;) { /* c->i = client * 1000 + line */
    /* the lock serialises the writes of all clients (a sync wait) */
    CO_CALL(c, uva_lock_acquire(R.lock, t));
    if (c->rc != 0) return finish(c, c->rc, "lock_acquire");
    {
      int n = snprintf(c->line, sizeof c->line, "client %d line %d\n",
                       c->i / 1000, c->i % 1000);
      c->rc = uva_stream_write(NULL, c->s, c->line, (size_t) n);
      uva_lock_release(R.lock);
      if (c->rc != 0) return finish(c, c->rc, "client write");
    }
    CO_CALL(c, uva_stream_read_line(&c->len, c->s, t, c->buf, sizeof c->buf));
    if (c->rc != 0) return finish(c, c->rc, "client read_line");
    if (c->len == 0) return finish(c, UVA_EOF, "client read_line (early EOF)");
    if (c->len != strlen(c->line) || memcmp(c->buf, c->line, c->len) != 0) {
      fprintf(stderr, "FAIL: wrong echo: '%.*s' for '%s'\n", (int) c->len,
              c->buf, c->line);
      abort();
    }
    R.exchanges++;
    c->rc = uva_task_sleep(t, 1);
    if (c->rc != 0) return finish(c, c->rc, "sleep");
    CO_WAIT(c);
    if (++c->i % 1000 == MSGS) break;
  }
  CO_CALL(c, uva_stream_shutdown(c->s, t));
  if (c->rc != 0) return finish(c, c->rc, "shutdown");
  CO_CALL(c, uva_stream_read_line(&c->len, c->s, t, c->buf, sizeof c->buf));
  if (c->rc != 0) return finish(c, c->rc, "read EOF");
  if (c->len != 0) return finish(c, UVA_EINVAL, "data after the last echo");
  return finish(c, 0, "client");
  CO_END(c);
}

/* ---- tasks that are cancelled ----------------------------------------------- */

static int sleeper(uva_task_t *t, int status, void *d) {
  struct ctx *c = d;
  if (status == UVA_ECANCELED) return finish(c, status, "sleeper");
  CO_BEGIN(c);
  c->rc = uva_task_sleep(t, 60 * 1000);
  if (c->rc != 0) return finish(c, c->rc, "sleeper sleep");
  CO_WAIT(c);
  return finish(c, UVA_ETIMEDOUT, "sleeper not cancelled");
  CO_END(c);
}

/* Connects and waits for a line that never comes, until cancelled. */
static int idle_reader(uva_task_t *t, int status, void *d) {
  struct ctx *c = d;
  if (status == UVA_ECANCELED) return finish(c, status, "idle reader");
  CO_BEGIN(c);
  c->rc = uva_tcp_connect(&c->s, R.loop, "127.0.0.1", R.port);
  if (c->rc != 0) {
    c->s = NULL;
    return finish(c, c->rc, "idle connect");
  }
  CO_CALL(c, uva_stream_read_line(&c->len, c->s, t, c->buf, sizeof c->buf));
  /* the server closed the connection (a fault on its side): fine if the
   * fault was counted there; anything else is an error */
  return finish(c, c->rc != 0 ? c->rc : UVA_EOF, "idle read_line");
  CO_END(c);
}

static int event_waiter(uva_task_t *t, int status, void *d) {
  struct ctx *c = d;
  if (status == UVA_ECANCELED) return finish(c, status, "event waiter");
  CO_BEGIN(c);
  CO_CALL(c, uva_event_wait(R.go, t));
  return finish(c, c->rc, "event_wait");
  CO_END(c);
}

/* Closing frees the memory once no wait refers to it: forget the pointer. */
static void close_conns(void) {
  uva_queue_close(R.conns);
  R.conns = NULL;
}

static void close_server(void) {
  uva_server_close(R.server, NULL, NULL);
  R.server = NULL;
}

/* Join the clients, then cancel the victims and shut everything down. */
static int master(uva_task_t *t, int status, void *d) {
  struct ctx *c = d;
  (void) status; /* nobody cancels the master */
  CO_BEGIN(c);
  for (c->i = 0; c->i < CLIENTS; c->i++) {
    if (R.clients[c->i] == NULL) continue;
    c->rc = uva_task_join(t, R.clients[c->i]);
    if (c->rc != 0) { /* could not wait: poll instead */
      fail("join", c->rc);
      for (;;) {
        int done = 0;
        uva_task_done(&done, R.clients[c->i]);
        if (done) break;
        uva_task_yield(t);
        CO_WAIT(c);
      }
      continue;
    }
    CO_WAIT(c);
  }
  for (c->i = 0; c->i < 3; c->i++)
    if (R.victims[c->i] != NULL) uva_task_cancel(R.victims[c->i]);
  uva_event_set(R.go);
  close_conns();
  close_server();
  return 0;
  CO_END(c);
}

static void close_stream_item(void *item) {
  uva_stream_abort(item, NULL, NULL);
}

/* ---- one run ------------------------------------------------------------- */

static int final_step(uva_task_t *t, int status, void *d) {
  (void) t;
  (void) status;
  *(int *) d = 1;
  return 0;
}

static volatile long current_n;
static volatile int current_kind;

static void on_alarm(int sig) {
  (void) sig;
  char msg[128];
  int n = snprintf(
      msg, sizeof msg, "FAIL: scenario hangs (%s fault at call %ld)\n",
      current_kind == FAULT_ALLOC ? "allocation" : "socket", current_n);
  if (write(2, msg, (size_t) n) < 0) _exit(3);
  _exit(2);
}

/* Run the scenario with the fault armed; returns the calls counted. */
static long run_once(int kind, long n, int *problems) {
  memset(&R, 0, sizeof R);
  R.verbose = getenv("FAULT_VERBOSE") != NULL;
  current_kind = kind;
  current_n = n;
  alarm(20);
  uva__fault_arm(kind, n);

  int rc = uva_loop_new(&R.loop);
  if (rc != 0) { /* nothing else to do or check */
    uva__fault_arm(0, 0);
    alarm(0);
    if (n == 0) {
      fprintf(stderr, "FAIL: loop_new without a fault: %s\n", uva_err_name(rc));
      (*problems)++;
    }
    return 1;
  }
  uva_task_t *acc = NULL, *hs[HANDLERS] = {0}, *ms = NULL;
  int setup = 0;
  if ((rc = uva_lock_new(&R.lock, R.loop)) != 0)
    fail("lock_new", rc);
  else if ((rc = uva_event_new(&R.go, R.loop)) != 0)
    fail("event_new", rc);
  else if ((rc = uva_queue_new(&R.conns, R.loop, 1, close_stream_item)) != 0)
    fail("queue_new", rc);
  else if ((rc = uva_tcp_listen(&R.server, R.loop, "127.0.0.1", 0, 0)) != 0)
    fail("tcp_listen", rc);
  else if ((rc = uva_server_address(R.server, NULL, 0, &R.port)) != 0)
    fail("server_address", rc);
  else
    setup = 1;
  if (setup) {
    setup = spawn(&acc, acceptor, 0) == 0;
    for (int i = 0; setup && i < HANDLERS; i++)
      setup = spawn(&hs[i], handler, 0) == 0;
    for (int i = 0; setup && i < CLIENTS; i++)
      setup = spawn(&R.clients[i], client, i * 1000) == 0;
    if (setup) setup = spawn(&R.victims[0], sleeper, 0) == 0;
    if (setup) setup = spawn(&R.victims[1], idle_reader, 0) == 0;
    if (setup) setup = spawn(&R.victims[2], event_waiter, 0) == 0;
    if (setup) setup = spawn(&ms, master, 0) == 0;
  }
  if (!setup) { /* stop what did start; a listening server keeps the loop
                   alive, so close it now */
    uva_task_cancel(acc);
    for (int i = 0; i < HANDLERS; i++)
      uva_task_cancel(hs[i]);
    for (int i = 0; i < CLIENTS; i++)
      uva_task_cancel(R.clients[i]);
    for (int i = 0; i < 3; i++)
      uva_task_cancel(R.victims[i]);
    close_server();
    close_conns();
  }
  rc = uva_loop_run(R.loop, UVA_RUN_DEFAULT);
  if (rc != 0) fail("loop_run", rc);

  /* Cleanup: close what the scenario did not, drop our references, let the
   * closes complete. */
  close_server();
  close_conns();
  uva_event_close(R.go);
  uva_lock_close(R.lock);
  uva_task_release(acc);
  for (int i = 0; i < HANDLERS; i++)
    uva_task_release(hs[i]);
  for (int i = 0; i < CLIENTS; i++)
    uva_task_release(R.clients[i]);
  for (int i = 0; i < 3; i++)
    uva_task_release(R.victims[i]);
  uva_task_release(ms);
  rc = uva_loop_run(R.loop, UVA_RUN_DEFAULT);
  if (rc != 0) fail("loop_run (cleanup)", rc);

  long calls = uva__fault_calls();
  uva__fault_arm(0, 0);
  alarm(0);

  /* The loop is still usable... */
  int ran = 0;
  if (uva_task_spawn(NULL, R.loop, final_step, &ran, NULL) != 0 ||
      uva_loop_run(R.loop, UVA_RUN_DEFAULT) != 0 || !ran) {
    fprintf(stderr, "FAIL: loop not usable after the run (%s N=%ld)\n",
            kind == FAULT_ALLOC ? "alloc" : "io", n);
    (*problems)++;
  }
  /* ...and closes cleanly. */
  rc = uva_loop_close(R.loop);
  if (rc != 0) {
    fprintf(stderr, "FAIL: uva_loop_close: %s (%s N=%ld)\n", uva_err_name(rc),
            kind == FAULT_ALLOC ? "alloc" : "io", n);
    (*problems)++;
  }
  if (R.freed != R.spawned) {
    fprintf(stderr, "FAIL: %d tasks spawned, %d destroyed (%s N=%ld)\n",
            R.spawned, R.freed, kind == FAULT_ALLOC ? "alloc" : "io", n);
    (*problems)++;
  }
  int injected = n > 0 && n <= calls;
  if (injected && R.errors == 0) {
    fprintf(stderr, "FAIL: a fault at %s call %ld surfaced nowhere\n",
            kind == FAULT_ALLOC ? "allocation" : "socket", n);
    (*problems)++;
  }
  if (!injected && (R.errors != 0 || R.exchanges != CLIENTS * MSGS)) {
    fprintf(stderr, "FAIL: run without a fault: %d errors, %d/%d exchanges\n",
            R.errors, R.exchanges, CLIENTS * MSGS);
    (*problems)++;
  }
  if (R.verbose)
    fprintf(stderr, "%s N=%ld: %ld calls, %d errors, %d exchanges\n",
            kind == FAULT_ALLOC ? "alloc" : "io", n, calls, R.errors,
            R.exchanges);
  return calls;
}

/* ---- regression: an accept that fails for lack of memory ------------------
 * The connection stays pending and the next accept takes it. (It used to be
 * forgotten while libuv kept it and stopped watching the listening socket:
 * the server never accepted again.) */

static struct {
  uva_server_t *server;
  uva_stream_t *conn;
  int first_rc, second_rc, pc;
} AR;

/* Waits for a connection (nothing armed), then accepts it with the next
 * allocation failing, then accepts again. */
static int accept_after_enomem(uva_task_t *t, int status, void *d) {
  (void) status;
  (void) d;
  if (AR.pc == 0) { /* registers: no connection yet */
    AR.pc = 1;
    int rc = uva_server_accept(&AR.conn, AR.server, t);
    if (rc != UVA_EAGAIN) abort();
    return UVA_TASK_PENDING;
  }
  if (AR.pc == 1) { /* woken: a connection is pending */
    uva__fault_arm(FAULT_ALLOC, 1);
    AR.first_rc = uva_server_accept(&AR.conn, AR.server, t);
    uva__fault_arm(0, 0);
    AR.pc = 2;
  }
  AR.second_rc = uva_server_accept(&AR.conn, AR.server, t);
  if (AR.second_rc == UVA_EAGAIN) return UVA_TASK_PENDING; /* the bug */
  if (AR.second_rc == 0) uva_stream_close(AR.conn, NULL, NULL);
  uva_server_close(AR.server, NULL, NULL);
  return 0;
}

static int connect_one(uva_task_t *t, int status, void *d) {
  uva_stream_t **s = d;
  (void) status;
  int rc = uva_stream_wait_connected(*s, t);
  return rc == UVA_EAGAIN ? UVA_TASK_PENDING : rc;
}

static void test_accept_retry_after_enomem(int *problems) {
  uva_loop_t *loop;
  uva_stream_t *client = NULL;
  int port = 0;
  current_kind = FAULT_ALLOC;
  current_n = -1; /* a hang here means the regression is back */
  alarm(20);
  memset(&AR, 0, sizeof AR);
  if (uva_loop_new(&loop) != 0 ||
      uva_tcp_listen(&AR.server, loop, "127.0.0.1", 0, 0) != 0 ||
      uva_server_address(AR.server, NULL, 0, &port) != 0 ||
      uva_task_spawn(NULL, loop, accept_after_enomem, NULL, NULL) != 0 ||
      uva_tcp_connect(&client, loop, "127.0.0.1", port) != 0 ||
      uva_task_spawn(NULL, loop, connect_one, &client, NULL) != 0 ||
      uva_loop_run(loop, UVA_RUN_DEFAULT) != 0)
    abort();
  alarm(0);
  uva_stream_close(client, NULL, NULL);
  uva_loop_run(loop, UVA_RUN_DEFAULT);
  if (AR.first_rc != UVA_ENOMEM || AR.second_rc != 0) {
    fprintf(stderr, "FAIL: accept after ENOMEM: first %s, then %s\n",
            uva_err_name(AR.first_rc), uva_err_name(AR.second_rc));
    (*problems)++;
  }
  if (uva_loop_close(loop) != 0) {
    fprintf(stderr, "FAIL: accept after ENOMEM: loop_close\n");
    (*problems)++;
  }
}

/* ---- regression: the same with a connection callback ----------------------
 * A server with uva_server_on_connection dropped a connection it could not
 * allocate a stream for, and libuv (still holding it) stopped watching the
 * listening socket: the callback never ran again. The connection is now
 * retried at the next pass. */

static int cb_conns;

static void count_conn(uva_server_t *sv, uva_stream_t *s, void *d) {
  (void) sv;
  (void) d;
  cb_conns++;
  uva_stream_close(s, NULL, NULL);
}

static void test_callback_accept_after_enomem(int *problems) {
  uva_loop_t *loop;
  uva_server_t *server;
  int port = 0;
  cb_conns = 0;
  if (uva_loop_new(&loop) != 0 ||
      uva_tcp_listen(&server, loop, "127.0.0.1", 0, 0) != 0 ||
      uva_server_address(server, NULL, 0, &port) != 0 ||
      uva_server_on_connection(server, count_conn, NULL) != 0)
    abort();
  /* A plain blocking connect: the kernel completes it from the backlog. */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_port = htons((uint16_t) port);
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, (struct sockaddr *) &sin, sizeof sin) != 0) abort();
  /* The first allocation, the stream for this connection, fails. */
  uva__fault_arm(FAULT_ALLOC, 1);
  long hit = 0;
  for (int i = 0; i < 2000 && cb_conns == 0; i++) {
    if (uva_loop_run(loop, UVA_RUN_NOWAIT) != 0) abort();
    if (hit == 0) hit = uva__fault_calls();
    usleep(1000);
  }
  uva__fault_arm(0, 0);
  if (hit < 1 || cb_conns != 1) {
    fprintf(stderr,
            "FAIL: connection callback after ENOMEM: %d calls "
            "(fault %s)\n",
            cb_conns, hit >= 1 ? "hit" : "not hit");
    (*problems)++;
  }
  close(fd);
  uva_server_close(server, NULL, NULL);
  uva_loop_run(loop, UVA_RUN_DEFAULT);
  if (uva_loop_close(loop) != 0) (*problems)++;
}

/* ---- regression: UDP receiving that cannot start -------------------------
 * uva_udp_recv waited forever when uv_udp_recv_start failed (the error was
 * dropped, so nothing would ever arrive); it now returns the error. */

struct udp_ctx {
  int rc;
  uva_udp_t *u;
};

static int udp_recv_once(uva_task_t *t, int status, void *d) {
  struct udp_ctx *c = d;
  char buf[16];
  size_t len = 0;
  (void) status;
  uva__fault_arm(FAULT_IO, 1); /* the recv's uv_udp_recv_start fails */
  c->rc = uva_udp_recv(&len, c->u, t, buf, sizeof buf, NULL, 0, NULL);
  uva__fault_arm(0, 0);
  return c->rc == UVA_EAGAIN ? UVA_TASK_PENDING : 0;
}

static void test_udp_recv_start_failure(int *problems) {
  struct udp_ctx c = {0, NULL};
  uva_loop_t *loop;
  current_kind = FAULT_IO;
  current_n = -2; /* a hang here means the regression is back */
  alarm(20);
  /* libuv's receiving: on Linux the loop's own epoll set reads the socket
   * instead, and uv_udp_recv_start is not called (loop.cpp). */
  setenv("UVA_POLLER", "libuv", 1);
  int made = uva_loop_new(&loop);
  unsetenv("UVA_POLLER");
  if (made != 0 || uva_udp_new(&c.u, loop) != 0) abort();
  uva__fault_arm(FAULT_IO, 2); /* bind works, its recv_start fails */
  int rc = uva_udp_bind(c.u, "127.0.0.1", 0);
  uva__fault_arm(0, 0);
  if (rc != 0) abort();
  if (uva_task_spawn(NULL, loop, udp_recv_once, &c, NULL) != 0 ||
      uva_loop_run(loop, UVA_RUN_DEFAULT) != 0)
    abort();
  alarm(0);
  if (c.rc != UVA_EIO) {
    fprintf(stderr, "FAIL: udp_recv when receiving cannot start: %s\n",
            uva_err_name(c.rc));
    (*problems)++;
  }
  uva_udp_close(c.u, NULL, NULL);
  uva_loop_run(loop, UVA_RUN_DEFAULT);
  if (uva_loop_close(loop) != 0) (*problems)++;
}

int main(int argc, char **argv) {
  signal(SIGALRM, on_alarm);
  int problems = 0;
  if (argc == 3) { /* one run, for debugging */
    int kind = strcmp(argv[1], "alloc") == 0 ? FAULT_ALLOC : FAULT_IO;
    setenv("FAULT_VERBOSE", "1", 1);
    run_once(kind, atol(argv[2]), &problems);
    return problems != 0;
  }
  test_accept_retry_after_enomem(&problems);
  test_udp_recv_start_failure(&problems);
  test_callback_accept_after_enomem(&problems);
  static const int kinds[] = {FAULT_ALLOC, FAULT_IO};
  long injected = 0;
  for (int k = 0; k < 2; k++) {
    long total = run_once(kinds[k], 0, &problems);
    /* Later runs may take other paths (fewer or more calls); cover N up to
     * the largest count seen. */
    long these = 0;
    for (long n = 1; n <= total; n++) {
      long calls = run_once(kinds[k], n, &problems);
      if (n <= calls) these++;
      if (calls > total) total = calls;
    }
    injected += these;
    printf("%s faults: %ld calls in the clean run, N = 1..%ld, %ld injected\n",
           kinds[k] == FAULT_ALLOC ? "allocation" : "socket",
           run_once(kinds[k], 0, &problems), total, these);
  }
  printf("fault injection: %ld faults injected, %d problems\n", injected,
         problems);
  return problems != 0;
}
