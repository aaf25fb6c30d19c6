/* TLS contexts across threads, as a plain program (Criterion cannot start
 * under ThreadSanitizer): loops in four threads run TLS round trips with
 * the same two contexts at once (the client's session cache, which every
 * handshake reads and every ticket writes, among them), while a fifth
 * thread starts its own streams and the contexts' owner drops its
 * references before the last streams end (uvasync.h: the memory goes with
 * the last stream). CTest runs it in every build with TLS; under
 * -DUVA_SANITIZE=thread (scripts/tsan.sh) it is the ThreadSanitizer check
 * of tls.cpp's shared state. Prints "ok" or what failed. */
#define _GNU_SOURCE
#include <uvasync.h>

#include "tls_cert.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define THREADS 4
#define ROUNDS 25

static uva_tls_ctx_t *cctx, *sctx;
static atomic_int failures, rounds_ok;
static atomic_int started; /* threads that made their first streams */

struct side {
  int pc;
  uva_stream_t *s;
  int server;
  size_t n;
  char buf[64];
};

static void fail(const char *what, int rc) {
  fprintf(stderr, "FAIL: %s: %s\n", what, uva_err_name(rc));
  atomic_fetch_add(&failures, 1);
}

/* Handshake; the client sends a line, the server echoes it; then close. */
static int step_side(uva_task_t *t, int status, void *d) {
  struct side *c = (struct side *) d;
  int rc;
  (void) status;
  switch (c->pc) {
    case 0:
      rc = uva_tls_handshake(c->s, t);
      if (rc == UVA_EAGAIN) return UVA_TASK_PENDING;
      if (rc != 0) {
        fail("handshake", rc);
        break;
      }
      if (!c->server) uva_stream_write(NULL, c->s, "ping\n", 5);
      c->pc = 1;
      /* fall through */
    case 1:
      rc = uva_stream_read_line(&c->n, c->s, t, c->buf, sizeof c->buf);
      if (rc == UVA_EAGAIN) return UVA_TASK_PENDING;
      if (rc != 0 || c->n != 5) {
        fail("read_line", rc);
        break;
      }
      if (c->server)
        uva_stream_write(NULL, c->s, c->buf, c->n);
      else
        atomic_fetch_add(&rounds_ok, 1);
      break;
  }
  uva_stream_close(c->s, NULL, NULL);
  return 0;
}

static void *thread_main(void *arg) {
  (void) arg;
  uva_loop_t *loop;
  if (uva_loop_new(&loop) != 0) {
    fail("uva_loop_new", 0);
    return NULL;
  }
  for (int i = 0; i < ROUNDS; i++) {
    struct side cl = {0}, sv = {0};
    int fds[2], rc;
    sv.server = 1;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) break;
    if ((rc = uva_stream_open_fd(&cl.s, loop, fds[0])) != 0 ||
        (rc = uva_stream_open_fd(&sv.s, loop, fds[1])) != 0) {
      fail("open", rc);
      break;
    }
    if ((rc = uva_tls_start(sv.s, sctx, NULL)) != 0 ||
        (rc = uva_tls_start(cl.s, cctx, "localhost")) != 0)
      fail("start", rc);
    if (i == 0) atomic_fetch_add(&started, 1);
    uva_task_spawn(NULL, loop, step_side, &sv, NULL);
    uva_task_spawn(NULL, loop, step_side, &cl, NULL);
    uva_loop_run(loop, UVA_RUN_DEFAULT);
  }
  int rc = uva_loop_close(loop);
  if (rc != 0) fail("uva_loop_close", rc);
  return NULL;
}

/* The last thread holds its streams open across the owner's free: TLS
 * started, then it waits for the free before running them. */
static atomic_int freed;

static void *late_thread(void *arg) {
  (void) arg;
  uva_loop_t *loop;
  if (uva_loop_new(&loop) != 0) return NULL;
  struct side cl = {0}, sv = {0};
  int fds[2];
  sv.server = 1;
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0 &&
      uva_stream_open_fd(&cl.s, loop, fds[0]) == 0 &&
      uva_stream_open_fd(&sv.s, loop, fds[1]) == 0 &&
      uva_tls_start(sv.s, sctx, NULL) == 0 &&
      uva_tls_start(cl.s, cctx, "localhost") == 0) {
    atomic_fetch_add(&started, 1);
    while (!atomic_load(&freed))
      usleep(1000);
    uva_task_spawn(NULL, loop, step_side, &sv, NULL);
    uva_task_spawn(NULL, loop, step_side, &cl, NULL);
    uva_loop_run(loop, UVA_RUN_DEFAULT);
  } else {
    fail("late thread setup", 0);
    atomic_fetch_add(&started, 1);
  }
  uva_loop_close(loop);
  return NULL;
}

int main(void) {
  char *cert, *key;
  size_t cl, kl;
  if (!uva_tls_available()) {
    printf("no TLS in this build: nothing to check\n");
    return 0;
  }
  if (tls_cert_make(&cert, &cl, &key, &kl) != 0) return 1;
  if (uva_tls_ctx_new(&sctx, UVA_TLS_SERVER) != 0 ||
      uva_tls_ctx_use_cert_pem(sctx, cert, cl, key, kl, NULL) != 0 ||
      uva_tls_ctx_new(&cctx, UVA_TLS_CLIENT) != 0 ||
      uva_tls_ctx_load_ca_pem(cctx, cert, cl) != 0) {
    fprintf(stderr, "FAIL: contexts\n");
    return 1;
  }
  pthread_t th[THREADS + 1];
  for (int i = 0; i < THREADS; i++)
    pthread_create(&th[i], NULL, thread_main, NULL);
  pthread_create(&th[THREADS], NULL, late_thread, NULL);
  /* Every thread has streams holding the contexts: the owner lets go. */
  while (atomic_load(&started) < THREADS + 1)
    usleep(1000);
  for (int i = 0; i < THREADS; i++) /* the loops reuse them: wait first */
    pthread_join(th[i], NULL);
  uva_tls_ctx_free(cctx);
  uva_tls_ctx_free(sctx);
  atomic_store(&freed, 1);
  pthread_join(th[THREADS], NULL);
  free(cert);
  free(key);
  int ok = atomic_load(&rounds_ok);
  if (ok != THREADS * ROUNDS + 1) {
    fprintf(stderr, "FAIL: %d round trips of %d\n", ok, THREADS * ROUNDS + 1);
    atomic_fetch_add(&failures, 1);
  }
  printf("%s\n", atomic_load(&failures) == 0 ? "ok" : "FAILED");
  return atomic_load(&failures) == 0 ? 0 : 1;
}
