/* Fault injection inside the TLS paths: a TLS round trip between two core
 * streams (a socket pair; the server's certificate made here with
 * OpenSSL's API), run once with no fault to count the core's allocations
 * and socket calls, then once for every N up to that count with the Nth
 * failing (allocations: the contexts, the stream's TLS state, the read
 * buffer that plaintext is decrypted into, queued records; socket calls:
 * the writes of records).
 *
 * Each run checks: the scenario ends (an alarm fails it otherwise), a run
 * without a fault sees every call succeed and every byte come back, a run
 * with one sees only codes a failure explains and never a wrong byte,
 * and uva_loop_close returns 0. Leaks are LeakSanitizer's job (built with
 * -DUVA_SANITIZE=address).
 *
 * Needs -DUVA_FAULT_INJECTION=ON and OpenSSL (cmake/uvasync_tests.cmake).
 *
 *   test_fault_tls             all N, for both kinds
 *   test_fault_tls alloc 17    one run, the 17th allocation fails */
#define _GNU_SOURCE
#include <uvasync.h>

#include "co.h"
#include "tls_cert.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Internal, test-build only (src/fault.cpp). */
void uva__fault_arm(int kinds, long n);
long uva__fault_calls(void);
#define FAULT_ALLOC 1
#define FAULT_IO 2

#define MSG_BYTES (200 * 1024) /* more than a record, a read, high_water */

static struct {
  uva_loop_t *loop;
  int kind;
  long n;
  int problems;
  int errors; /* calls that failed (explained) */
  long calls; /* counted by the last run */
  int verbose;
  char *cert, *key; /* PEM */
  size_t cert_len, key_len;
  unsigned char *msg;
} R;

static void problem(const char *what, int rc) {
  fprintf(stderr, "FAIL (%s fault at call %ld): %s: %s\n",
          R.kind == FAULT_ALLOC ? "allocation" : "socket", R.n, what,
          uva_err_name(rc));
  R.problems++;
}

/* A failed call: which codes an injected failure (or its consequence on
 * the other end) explains. */
static void failed(const char *what, int rc) {
  if (R.verbose) fprintf(stderr, "  %s: %s\n", what, uva_err_name(rc));
  int explained = rc == UVA_ENOMEM || rc == UVA_EIO || rc == UVA_ENOBUFS ||
                  rc == UVA_ECLOSED || rc == UVA_ECONNRESET ||
                  rc == UVA_EPIPE || rc == UVA_ETLSEOF || rc == UVA_ETLS ||
                  rc == UVA_ETLSALERT || rc == UVA_EINCOMPLETE ||
                  rc == UVA_ENOTCONN;
  if (R.n == 0 || !explained) problem(what, rc);
  R.errors++;
}

/* Says which run hangs (async-signal-safe: no stdio). */
static void on_alarm(int sig) {
  (void) sig;
  char msg[96] = "FAIL: the TLS scenario hangs, fault ";
  size_t n = strlen(msg);
  msg[n++] = R.kind == FAULT_ALLOC ? 'a' : 'i';
  msg[n++] = ' ';
  char digits[24];
  int k = 0;
  long v = R.n;
  do {
    digits[k++] = (char) ('0' + v % 10);
    v /= 10;
  } while (v > 0 && k < 20);
  while (k > 0)
    msg[n++] = digits[--k];
  msg[n++] = '\n';
  if (write(2, msg, n) < 0) _exit(3);
  _exit(2);
}

/* ---- the scenario ---------------------------------------------------------- */

struct side {
  int pc, rc;
  uva_stream_t *s;
  int server;
  size_t n, got;
  unsigned char *buf;
};

static int step_side(uva_task_t *t, int status, void *d) {
  struct side *c = (struct side *) d;
  (void) status;
  CO_BEGIN(c);
  CO_CALL(c, uva_tls_handshake(c->s, t));
  if (c->rc != 0) {
    failed("handshake", c->rc);
    goto out;
  }
  if (!c->server) {
    c->rc = uva_stream_write(NULL, c->s, R.msg, MSG_BYTES);
    if (c->rc != 0) {
      failed("client write", c->rc);
      goto out;
    }
  }
  /* Each side reads the whole message (the server then echoes it). */
  while (c->got < MSG_BYTES) {
    CO_CALL(c, uva_stream_read(&c->n, c->s, t, c->buf + c->got,
                               MSG_BYTES - c->got));
    if (c->rc != 0 || c->n == 0) {
      if (c->rc == 0) c->rc = UVA_EINCOMPLETE;
      failed(c->server ? "server read" : "client read", c->rc);
      goto out;
    }
    if (memcmp(c->buf + c->got, R.msg + c->got, c->n) != 0)
      problem("a wrong byte", 0);
    c->got += c->n;
  }
  if (c->server) {
    CO_CALL(c, uva_stream_write_drain(c->s, t, c->buf, MSG_BYTES));
    if (c->rc != 0) failed("server write", c->rc);
  }
  CO_CALL(c, uva_stream_shutdown(c->s, t));
  if (c->rc != 0) failed("shutdown", c->rc);
out:
  c->rc = uva_stream_close(c->s, NULL, NULL);
  if (c->rc != 0) problem("close", c->rc);
  CO_END(c);
}

static void scenario(void) {
  uva_tls_ctx_t *sctx = NULL, *cctx = NULL;
  struct side sv, cl;
  memset(&sv, 0, sizeof sv);
  memset(&cl, 0, sizeof cl);
  int rc = uva_loop_new(&R.loop);
  if (rc != 0) {
    failed("loop", rc);
    return;
  }
  int fds[2] = {-1, -1};
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) problem("socketpair", 0);
  sv.buf = malloc(MSG_BYTES);
  cl.buf = malloc(MSG_BYTES);
  sv.server = 1;
  if ((rc = uva_tls_ctx_new(&sctx, UVA_TLS_SERVER)) != 0) {
    failed("server ctx", rc);
    goto out;
  }
  if ((rc = uva_tls_ctx_use_cert_pem(sctx, R.cert, R.cert_len, R.key, R.key_len,
                                     NULL)) != 0)
    problem("cert", rc);
  if ((rc = uva_tls_ctx_new(&cctx, UVA_TLS_CLIENT)) != 0) {
    failed("client ctx", rc);
    goto out;
  }
  if ((rc = uva_tls_ctx_load_ca_pem(cctx, R.cert, R.cert_len)) != 0)
    problem("ca", rc);
  if ((rc = uva_stream_open_fd(&sv.s, R.loop, fds[1])) != 0) {
    failed("open server", rc);
    goto out;
  }
  fds[1] = -1;
  if ((rc = uva_stream_open_fd(&cl.s, R.loop, fds[0])) != 0) {
    failed("open client", rc);
    uva_stream_close(sv.s, NULL, NULL);
    goto out;
  }
  fds[0] = -1;
  int ok = 1;
  if ((rc = uva_tls_start(sv.s, sctx, NULL)) != 0) {
    failed("start server", rc);
    ok = 0;
  }
  if (ok && (rc = uva_tls_start(cl.s, cctx, "localhost")) != 0) {
    failed("start client", rc);
    ok = 0;
  }
  int spawned = 0; /* a spawned side closes its own stream */
  if (ok && (rc = uva_task_spawn(NULL, R.loop, step_side, &sv, NULL)) != 0)
    failed("spawn", rc);
  else if (ok)
    spawned = 1;
  if (spawned && (rc = uva_task_spawn(NULL, R.loop, step_side, &cl, NULL)) != 0)
    failed("spawn", rc);
  else if (spawned)
    spawned = 2;
  if (spawned < 1) uva_stream_close(sv.s, NULL, NULL);
  if (spawned < 2) uva_stream_close(cl.s, NULL, NULL);
  if (uva_loop_run(R.loop, UVA_RUN_DEFAULT) != 0) problem("run", -1);
  if (R.n == 0 && (sv.got != MSG_BYTES || cl.got != MSG_BYTES))
    problem("the message did not come back whole", 0);
out:
  uva_tls_ctx_free(sctx);
  uva_tls_ctx_free(cctx);
  if (fds[0] >= 0) close(fds[0]);
  if (fds[1] >= 0) close(fds[1]);
  /* The loop closes even after a failed run (handles left are a bug). */
  R.calls = uva__fault_calls();
  uva__fault_arm(0, 0);
  if (uva_loop_run(R.loop, UVA_RUN_DEFAULT) != 0) problem("final run", -1);
  rc = uva_loop_close(R.loop);
  if (rc != 0) problem("uva_loop_close", rc);
  free(sv.buf);
  free(cl.buf);
}

/* ---- driver -------------------------------------------------------------- */

static int run_once(int kind, long n) {
  R.kind = kind;
  R.n = n;
  R.problems = 0;
  R.errors = 0;
  alarm(60);
  uva__fault_arm(kind, n);
  scenario();
  alarm(0);
  if (n == 0 && R.errors != 0) problem("errors without a fault", 0);
  return R.problems;
}

int main(int argc, char **argv) {
  signal(SIGALRM, on_alarm);
  if (tls_cert_make(&R.cert, &R.cert_len, &R.key, &R.key_len) != 0) {
    fprintf(stderr, "FAIL: no certificate\n");
    return 1;
  }
  R.msg = malloc(MSG_BYTES);
  for (size_t i = 0; i < MSG_BYTES; i++)
    R.msg[i] = (unsigned char) (i % 251);
  int bad = 0;
  if (argc == 3) { /* one run, verbose */
    R.verbose = 1;
    bad = run_once(strcmp(argv[1], "io") == 0 ? FAULT_IO : FAULT_ALLOC,
                   atol(argv[2]));
  } else {
    int kinds[2] = {FAULT_ALLOC, FAULT_IO};
    for (int k = 0; k < 2; k++) {
      uva__fault_arm(kinds[k], 0);
      if (run_once(kinds[k], 0) != 0) return 1;
      long calls = R.calls;
      printf("%s: %ld calls\n", k == 0 ? "alloc" : "io", calls);
      for (long n = 1; n <= calls; n++)
        bad += run_once(kinds[k], n) != 0;
    }
  }
  free(R.msg);
  free(R.cert);
  free(R.key);
  printf("%s\n", bad == 0 ? "ok" : "FAILED");
  return bad == 0 ? 0 : 1;
}
