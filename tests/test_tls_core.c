/* TLS, the core on both ends (one loop): 100 MB each way with every byte
 * checked, 1,000 concurrent connections, close_notify against a
 * connection cut without it, an abort, half-close, cancellation during a
 * handshake and during a read, session resumption, and the calls that are
 * refused before the handshake. */
#include "tls_support.h"

/* A TCP pair of core streams on loopback, TLS started on both: a is the
 * client (server_name "localhost"), b the server. */
static void tls_pair(uva_loop_t *loop, uva_tls_ctx_t *cctx, uva_tls_ctx_t *sctx,
                     uva_stream_t **a, uva_stream_t **b) {
  int fds[2];
  tcp_fd_pair(fds);
  *a = adopt(loop, fds[0]);
  *b = adopt(loop, fds[1]);
  UVT_OK(uva_tls_start(*b, sctx, NULL));
  UVT_OK(uva_tls_start(*a, cctx, "localhost"));
}

/* ---- 100 MB each way ----------------------------------------------------- */

#define BIG_TLS ((size_t) 100 * 1000 * 1000)

struct pump {
  int pc, rc;
  uva_stream_t *s;
  size_t off, n;
  int bad, eof;
  int *left; /* the last of the four tasks closes both streams */
  uva_stream_t **both;
  unsigned char *buf;
};

static void pump_finish(struct pump *p) {
  if (--*p->left == 0) {
    UVT_OK(uva_stream_close(p->both[0], NULL, NULL));
    UVT_OK(uva_stream_close(p->both[1], NULL, NULL));
  }
}

static int step_writer(uva_task_t *t, int status, void *d) {
  struct pump *p = (struct pump *) d;
  (void) status;
  CO_BEGIN(p);
  CO_CALL(p, uva_tls_handshake(p->s, t));
  UVT_OK(p->rc);
  while (p->off < BIG_TLS) {
    p->n = BIG_TLS - p->off < 300000 ? BIG_TLS - p->off : 300000;
    CO_CALL(p, uva_stream_write_drain(p->s, t, pattern() + p->off % 251, p->n));
    UVT_OK(p->rc);
    p->off += p->n;
  }
  CO_CALL(p, uva_stream_shutdown(p->s, t)); /* close_notify, then FIN */
  UVT_OK(p->rc);
  pump_finish(p);
  CO_END(p);
}

static int step_reader(uva_task_t *t, int status, void *d) {
  struct pump *p = (struct pump *) d;
  (void) status;
  CO_BEGIN(p);
  CO_CALL(p, uva_tls_handshake(p->s, t));
  UVT_OK(p->rc);
  for (;;) {
    CO_CALL(p, uva_stream_read(&p->n, p->s, t, p->buf, 100000));
    UVT_OK(p->rc);
    if (p->n == 0) break;
    if (!pattern_ok(p->buf, p->off, p->n)) p->bad = 1;
    p->off += p->n;
  }
  p->eof = 1;
  pump_finish(p);
  CO_END(p);
}

Test(tls_core, hundred_mb_each_way_every_byte_checked, .timeout = 120) {
  struct pki p;
  pki_make(&p);
  uva_loop_t *loop = uvt_loop_new();
  uva_tls_ctx_t *cctx = client_ctx(&p), *sctx = server_ctx(&p, NULL, NULL);
  uva_stream_t *s[2];
  tls_pair(loop, cctx, sctx, &s[0], &s[1]);
  int left = 4;
  struct pump w[2], r[2];
  for (int i = 0; i < 2; i++) {
    memset(&w[i], 0, sizeof w[i]);
    memset(&r[i], 0, sizeof r[i]);
    w[i].s = r[i].s = s[i];
    w[i].left = r[i].left = &left;
    w[i].both = r[i].both = s;
    r[i].buf = malloc(100000);
    spawn(loop, step_writer, &w[i]);
    spawn(loop, step_reader, &r[i]);
  }
  double t0 = uvt_ms();
  run(loop);
  double ms = uvt_ms() - t0;
  for (int i = 0; i < 2; i++) {
    cr_assert_eq(w[i].off, BIG_TLS);
    cr_assert_eq(r[i].off, BIG_TLS, "side %d read %zu", i, r[i].off);
    cr_assert(r[i].eof && !r[i].bad);
    free(r[i].buf);
  }
  cr_log_info("100 MB each way over TLS: %.0f ms", ms);
  UVT_CLOSE_LOOP(loop);
  uva_tls_ctx_free(cctx);
  uva_tls_ctx_free(sctx);
  pki_free(&p);
}

/* ---- 1,000 concurrent connections --------------------------------------- */

#define NCONN 1000

struct many {
  uva_loop_t *loop;
  uva_server_t *sv;
  uva_tls_ctx_t *cctx, *sctx;
  int port;
  int served, clients_ok, clients_done;
};

struct one {
  int pc, rc;
  struct many *m;
  uva_stream_t *s;
  size_t n;
  int id;
  char msg[32], buf[64];
};

static int step_serve_one(uva_task_t *t, int status, void *d) {
  struct one *o = (struct one *) d;
  (void) status;
  CO_BEGIN(o);
  CO_CALL(o, uva_tls_handshake(o->s, t));
  UVT_OK(o->rc);
  CO_CALL(o, uva_stream_read_line(&o->n, o->s, t, o->buf, sizeof o->buf));
  UVT_OK(o->rc);
  UVT_OK(uva_stream_write(NULL, o->s, o->buf, o->n));
  CO_CALL(o, uva_stream_read(&o->n, o->s, t, o->buf, sizeof o->buf));
  UVT_OK(o->rc);
  cr_assert_eq(o->n, 0); /* the client's close_notify */
  UVT_OK(uva_stream_close(o->s, NULL, NULL));
  o->m->served++;
  CO_END(o);
}

static void on_tls_conn(uva_server_t *sv, uva_stream_t *s, void *data) {
  struct many *m = (struct many *) data;
  (void) sv;
  struct one *o = calloc(1, sizeof *o);
  o->m = m;
  o->s = s;
  UVT_OK(uva_tls_start(s, m->sctx, NULL));
  UVT_OK(uva_task_spawn(NULL, m->loop, step_serve_one, o, free));
}

static int step_client_one(uva_task_t *t, int status, void *d) {
  struct one *o = (struct one *) d;
  (void) status;
  CO_BEGIN(o);
  UVT_OK(uva_tcp_connect(&o->s, o->m->loop, "127.0.0.1", o->m->port));
  CO_CALL(o, uva_stream_wait_connected(o->s, t));
  UVT_OK(o->rc);
  UVT_OK(uva_tls_start(o->s, o->m->cctx, "localhost"));
  CO_CALL(o, uva_tls_handshake(o->s, t));
  UVT_OK(o->rc);
  snprintf(o->msg, sizeof o->msg, "client %d\n", o->id);
  UVT_OK(uva_stream_write(NULL, o->s, o->msg, strlen(o->msg)));
  CO_CALL(o, uva_stream_read_line(&o->n, o->s, t, o->buf, sizeof o->buf));
  UVT_OK(o->rc);
  if (o->n == strlen(o->msg) && memcmp(o->buf, o->msg, o->n) == 0)
    o->m->clients_ok++;
  UVT_OK(uva_stream_close(o->s, NULL, NULL));
  if (++o->m->clients_done == NCONN)
    UVT_OK(uva_server_close(o->m->sv, NULL, NULL));
  CO_END(o);
}

Test(tls_core, thousand_concurrent_connections, .timeout = 120) {
  struct pki p;
  pki_make(&p);
  struct many m = {0};
  m.loop = uvt_loop_new();
  m.cctx = client_ctx(&p);
  m.sctx = server_ctx(&p, NULL, NULL);
  UVT_OK(uva_tcp_listen(&m.sv, m.loop, "127.0.0.1", 0, 2048));
  UVT_OK(uva_server_address(m.sv, NULL, 0, &m.port));
  UVT_OK(uva_server_on_connection(m.sv, on_tls_conn, &m));
  for (int i = 0; i < NCONN; i++) {
    struct one *o = calloc(1, sizeof *o);
    o->m = &m;
    o->id = i;
    UVT_OK(uva_task_spawn(NULL, m.loop, step_client_one, o, free));
  }
  double t0 = uvt_ms();
  run(m.loop);
  cr_log_info("%d TLS connections: %.0f ms", NCONN, uvt_ms() - t0);
  cr_assert_eq(m.clients_ok, NCONN);
  cr_assert_eq(m.served, NCONN);
  UVT_CLOSE_LOOP(m.loop);
  uva_tls_ctx_free(m.cctx);
  uva_tls_ctx_free(m.sctx);
  pki_free(&p);
}

/* ---- the end of a TLS stream -------------------------------------------- */

/* The server writes "bye\n" then ends: 0 a graceful close (close_notify),
 * 1 a FIN without close_notify (the socket shut down under TLS), 2 an
 * abort (a reset). The client reads the line, then what the end gives. */
struct ending {
  int pc, rc;
  int how;
  uva_stream_t *s;
  size_t n;
  int line_rc, end_rc;
  char buf[64];
};

static int step_end_server(uva_task_t *t, int status, void *d) {
  struct ending *e = (struct ending *) d;
  (void) status;
  CO_BEGIN(e);
  CO_CALL(e, uva_tls_handshake(e->s, t));
  UVT_OK(e->rc);
  UVT_OK(uva_stream_write(NULL, e->s, "bye\n", 4));
  if (e->how == 0) {
    UVT_OK(uva_stream_close(e->s, NULL, NULL));
  } else if (e->how == 1) {
    CO_CALL(e, uva_stream_drain(e->s, t));
    int fd;
    UVT_OK(uva_stream_fileno(&fd, e->s));
    cr_assert_eq(shutdown(fd, SHUT_WR), 0);
    CO_SLEEP(e, t, 100); /* the client meets the end first */
    UVT_OK(uva_stream_close(e->s, NULL, NULL));
  } else {
    CO_SLEEP(e, t, 50); /* the line reaches the client first */
    UVT_OK(uva_stream_abort(e->s, NULL, NULL));
  }
  CO_END(e);
}

static int step_end_client(uva_task_t *t, int status, void *d) {
  struct ending *e = (struct ending *) d;
  (void) status;
  CO_BEGIN(e);
  CO_CALL(e, uva_tls_handshake(e->s, t));
  UVT_OK(e->rc);
  CO_CALL(e, uva_stream_read_line(&e->n, e->s, t, e->buf, sizeof e->buf));
  e->line_rc = e->rc;
  if (e->how == 2) CO_SLEEP(e, t, 100); /* the reset arrives */
  CO_CALL(e, uva_stream_read(&e->n, e->s, t, e->buf, sizeof e->buf));
  e->end_rc = e->rc;
  UVT_OK(uva_stream_close(e->s, NULL, NULL));
  CO_END(e);
}

static void run_ending(int how, int *line_rc, int *end_rc, size_t *n) {
  struct pki p;
  pki_make(&p);
  uva_loop_t *loop = uvt_loop_new();
  uva_tls_ctx_t *cctx = client_ctx(&p), *sctx = server_ctx(&p, NULL, NULL);
  struct ending cl = {0}, sv = {0};
  cl.how = sv.how = how;
  tls_pair(loop, cctx, sctx, &cl.s, &sv.s);
  spawn(loop, step_end_server, &sv);
  spawn(loop, step_end_client, &cl);
  run(loop);
  *line_rc = cl.line_rc;
  *end_rc = cl.end_rc;
  *n = cl.n;
  UVT_CLOSE_LOOP(loop);
  uva_tls_ctx_free(cctx);
  uva_tls_ctx_free(sctx);
  pki_free(&p);
}

Test(tls_core, close_notify_reads_as_end_of_stream, .timeout = 30) {
  int line_rc, end_rc;
  size_t n;
  run_ending(0, &line_rc, &end_rc, &n);
  UVT_OK(line_rc);
  UVT_OK(end_rc);
  cr_assert_eq(n, 0);
}

Test(tls_core, end_without_close_notify_reads_as_etlseof, .timeout = 30) {
  int line_rc, end_rc;
  size_t n;
  run_ending(1, &line_rc, &end_rc, &n);
  UVT_OK(line_rc); /* the bytes that came are read first */
  UVT_EQ(end_rc, UVA_ETLSEOF);
}

Test(tls_core, abort_reads_as_a_reset, .timeout = 30) {
  int line_rc, end_rc;
  size_t n;
  run_ending(2, &line_rc, &end_rc, &n);
  UVT_OK(line_rc);
  UVT_EQ(end_rc, UVA_ECONNRESET);
}

/* ---- half-close, cancellation, resumption -------------------------------- */

struct duo {
  int pc, rc;
  uva_loop_t *loop;
  uva_stream_t *s;
  size_t n;
  int step_rc[4];
  struct canceller cancel;
  char buf[64];
};

/* Client: shutdown (close_notify + FIN), then still reads the answer. */
static int step_half_client(uva_task_t *t, int status, void *d) {
  struct duo *c = (struct duo *) d;
  (void) status;
  CO_BEGIN(c);
  CO_CALL(c, uva_tls_handshake(c->s, t));
  UVT_OK(c->rc);
  UVT_OK(uva_stream_write(NULL, c->s, "last\n", 5));
  CO_CALL(c, uva_stream_shutdown(c->s, t));
  c->step_rc[0] = c->rc;
  UVT_EQ(uva_stream_write(NULL, c->s, "x", 1), UVA_EPIPE);
  CO_CALL(c, uva_stream_read_line(&c->n, c->s, t, c->buf, sizeof c->buf));
  c->step_rc[1] = c->rc;
  cr_assert_eq(c->n, 6);
  cr_assert_eq(memcmp(c->buf, "after\n", 6), 0);
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  CO_END(c);
}

static int step_half_server(uva_task_t *t, int status, void *d) {
  struct duo *c = (struct duo *) d;
  (void) status;
  CO_BEGIN(c);
  CO_CALL(c, uva_tls_handshake(c->s, t));
  UVT_OK(c->rc);
  CO_CALL(c, uva_stream_read_to_eof(&c->n, c->s, t));
  c->step_rc[0] = c->rc;
  cr_assert_eq(c->n, 5);
  UVT_OK(uva_stream_write(NULL, c->s, "after\n", 6));
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  CO_END(c);
}

Test(tls_core, shutdown_sends_close_notify_and_reads_go_on, .timeout = 30) {
  struct pki p;
  pki_make(&p);
  uva_loop_t *loop = uvt_loop_new();
  uva_tls_ctx_t *cctx = client_ctx(&p), *sctx = server_ctx(&p, NULL, NULL);
  struct duo cl = {0}, sv = {0};
  tls_pair(loop, cctx, sctx, &cl.s, &sv.s);
  spawn(loop, step_half_server, &sv);
  spawn(loop, step_half_client, &cl);
  run(loop);
  UVT_OK(cl.step_rc[0]);
  UVT_OK(cl.step_rc[1]);
  UVT_OK(sv.step_rc[0]);
  UVT_CLOSE_LOOP(loop);
  uva_tls_ctx_free(cctx);
  uva_tls_ctx_free(sctx);
  pki_free(&p);
}

/* A handshake wait cancelled at once: the handshake goes on, and a later
 * wait (here a second task) completes it. */
static int step_cancelled_handshake(uva_task_t *t, int status, void *d) {
  struct duo *c = (struct duo *) d;
  CO_BEGIN(c);
  UVT_OK(uva_task_cancel(t));
  CO_CALL(c,
          status == UVA_ECANCELED ? UVA_ECANCELED : uva_tls_handshake(c->s, t));
  c->step_rc[0] = c->rc;
  CO_END(c);
}

static int step_handshake_again(uva_task_t *t, int status, void *d) {
  struct duo *c = (struct duo *) d;
  (void) status;
  CO_BEGIN(c);
  CO_SLEEP(c, t, 20);
  CO_CALL(c, uva_tls_handshake(c->s, t));
  c->step_rc[1] = c->rc;
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  CO_END(c);
}

static int step_handshake_close(uva_task_t *t, int status, void *d) {
  struct duo *c = (struct duo *) d;
  (void) status;
  CO_BEGIN(c);
  CO_CALL(c, uva_tls_handshake(c->s, t));
  c->step_rc[0] = c->rc;
  CO_CALL(c, uva_stream_read(&c->n, c->s, t, c->buf, sizeof c->buf));
  c->step_rc[1] = c->rc;
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  CO_END(c);
}

Test(tls_core, cancel_during_handshake_leaves_it_running, .timeout = 30) {
  struct pki p;
  pki_make(&p);
  uva_loop_t *loop = uvt_loop_new();
  uva_tls_ctx_t *cctx = client_ctx(&p), *sctx = server_ctx(&p, NULL, NULL);
  struct duo cl = {0}, again = {0}, sv = {0};
  tls_pair(loop, cctx, sctx, &cl.s, &sv.s);
  again.s = cl.s;
  spawn(loop, step_cancelled_handshake, &cl);
  spawn(loop, step_handshake_again, &again);
  spawn(loop, step_handshake_close, &sv);
  run(loop);
  UVT_EQ(cl.step_rc[0], UVA_ECANCELED);
  UVT_OK(again.step_rc[1]);
  UVT_OK(sv.step_rc[0]);
  UVT_OK(sv.step_rc[1]); /* the client's close: close_notify, end of stream */
  cr_assert_eq(sv.n, 0);
  UVT_CLOSE_LOOP(loop);
  uva_tls_ctx_free(cctx);
  uva_tls_ctx_free(sctx);
  pki_free(&p);
}

/* A read cancelled by the task's timeout loses nothing: the line sent
 * after it comes whole to the next read. */
static int step_cancelled_read(uva_task_t *t, int status, void *d) {
  struct duo *c = (struct duo *) d;
  CO_BEGIN(c);
  CO_CALL(c, uva_tls_handshake(c->s, t));
  UVT_OK(c->rc);
  cancel_after(&c->cancel, c->loop, t, 100);
  CO_CALL(c, status == UVA_ECANCELED
                 ? UVA_ECANCELED
                 : uva_stream_read_line(&c->n, c->s, t, c->buf, sizeof c->buf));
  c->step_rc[0] = c->rc;
  cancel_done(&c->cancel);
  UVT_OK(uva_stream_write(NULL, c->s, "go\n", 3));
  CO_CALL(c, uva_stream_read_line(&c->n, c->s, t, c->buf, sizeof c->buf));
  c->step_rc[1] = c->rc;
  cr_assert_eq(c->n, 11);
  cr_assert_eq(memcmp(c->buf, "late line!\n", 11), 0);
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  CO_END(c);
}

static int step_late_writer(uva_task_t *t, int status, void *d) {
  struct duo *c = (struct duo *) d;
  (void) status;
  CO_BEGIN(c);
  CO_CALL(c, uva_tls_handshake(c->s, t));
  UVT_OK(c->rc);
  UVT_OK(uva_stream_write(NULL, c->s, "late ", 5)); /* half a line */
  CO_CALL(c, uva_stream_read_line(&c->n, c->s, t, c->buf, sizeof c->buf));
  UVT_OK(c->rc);
  UVT_OK(uva_stream_write(NULL, c->s, "line!\n", 6));
  CO_CALL(c, uva_stream_read(&c->n, c->s, t, c->buf, sizeof c->buf));
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  CO_END(c);
}

Test(tls_core, cancel_during_read_loses_no_byte, .timeout = 30) {
  struct pki p;
  pki_make(&p);
  uva_loop_t *loop = uvt_loop_new();
  uva_tls_ctx_t *cctx = client_ctx(&p), *sctx = server_ctx(&p, NULL, NULL);
  struct duo cl = {0}, sv = {0};
  cl.loop = sv.loop = loop;
  tls_pair(loop, cctx, sctx, &cl.s, &sv.s);
  spawn(loop, step_cancelled_read, &cl);
  spawn(loop, step_late_writer, &sv);
  run(loop);
  UVT_EQ(cl.step_rc[0], UVA_ECANCELED);
  UVT_OK(cl.step_rc[1]);
  UVT_CLOSE_LOOP(loop);
  uva_tls_ctx_free(cctx);
  uva_tls_ctx_free(sctx);
  pki_free(&p);
}

/* The second connection of a client context to the same server resumes
 * the first one's session (a TLS 1.3 ticket). */
struct resume {
  uva_loop_t *loop;
  uva_server_t *sv;
  uva_tls_ctx_t *cctx, *sctx;
  int port;
  int reused[2];
};

static int step_resume_client(uva_task_t *t, int status, void *d) {
  struct one *o = (struct one *) d;
  struct resume *r = (struct resume *) (void *) o->m;
  (void) status;
  CO_BEGIN(o);
  for (o->id = 0; o->id < 2; o->id++) {
    UVT_OK(uva_tcp_connect(&o->s, r->loop, "127.0.0.1", r->port));
    CO_CALL(o, uva_stream_wait_connected(o->s, t));
    UVT_OK(o->rc);
    UVT_OK(uva_tls_start(o->s, r->cctx, "localhost"));
    CO_CALL(o, uva_tls_handshake(o->s, t));
    UVT_OK(o->rc);
    UVT_OK(uva_tls_session_reused(&r->reused[o->id], o->s));
    UVT_OK(uva_stream_write(NULL, o->s, "hi\n", 3));
    CO_CALL(o, uva_stream_read_line(&o->n, o->s, t, o->buf, sizeof o->buf));
    UVT_OK(o->rc); /* the tickets came before the answer */
    UVT_OK(uva_stream_close(o->s, NULL, NULL));
  }
  UVT_OK(uva_server_close(r->sv, NULL, NULL));
  CO_END(o);
}

static int step_resume_serve(uva_task_t *t, int status, void *d) {
  struct one *o = (struct one *) d;
  (void) status;
  CO_BEGIN(o);
  CO_CALL(o, uva_tls_handshake(o->s, t));
  UVT_OK(o->rc);
  CO_CALL(o, uva_stream_read_line(&o->n, o->s, t, o->buf, sizeof o->buf));
  UVT_OK(o->rc);
  UVT_OK(uva_stream_write(NULL, o->s, o->buf, o->n));
  CO_CALL(o, uva_stream_read(&o->n, o->s, t, o->buf, sizeof o->buf));
  UVT_OK(uva_stream_close(o->s, NULL, NULL));
  CO_END(o);
}

static void on_resume_conn(uva_server_t *sv, uva_stream_t *s, void *data) {
  struct resume *r = (struct resume *) data;
  (void) sv;
  struct one *o = calloc(1, sizeof *o);
  o->s = s;
  UVT_OK(uva_tls_start(s, r->sctx, NULL));
  UVT_OK(uva_task_spawn(NULL, r->loop, step_resume_serve, o, free));
}

Test(tls_core, second_connection_resumes_the_session, .timeout = 30) {
  struct pki p;
  pki_make(&p);
  struct resume r = {0};
  r.loop = uvt_loop_new();
  r.cctx = client_ctx(&p);
  r.sctx = server_ctx(&p, NULL, NULL);
  UVT_OK(uva_tcp_listen(&r.sv, r.loop, "127.0.0.1", 0, 8));
  UVT_OK(uva_server_address(r.sv, NULL, 0, &r.port));
  UVT_OK(uva_server_on_connection(r.sv, on_resume_conn, &r));
  struct one *o = calloc(1, sizeof *o);
  o->m = (struct many *) (void *) &r;
  UVT_OK(uva_task_spawn(NULL, r.loop, step_resume_client, o, free));
  run(r.loop);
  cr_assert_eq(r.reused[0], 0);
  cr_assert_eq(r.reused[1], 1);
  UVT_CLOSE_LOOP(r.loop);
  uva_tls_ctx_free(r.cctx);
  uva_tls_ctx_free(r.sctx);
  pki_free(&p);
}

/* ---- what is refused ------------------------------------------------------ */

Test(tls_core, calls_before_the_handshake_and_bad_input, .timeout = 30) {
  struct pki p;
  pki_make(&p);
  uva_loop_t *loop = uvt_loop_new();
  uva_tls_ctx_t *cctx = client_ctx(&p), *sctx = server_ctx(&p, NULL, NULL);
  uva_stream_t *a, *b;
  int v;
  char buf[64];
  size_t n;
  tls_pair(loop, cctx, sctx, &a, &b);
  UVT_EQ(uva_tls_start(a, cctx, "localhost"), UVA_EALREADY);
  UVT_EQ(uva_stream_write(NULL, a, "x", 1), UVA_ENOTCONN);
  UVT_EQ(uva_tls_version(&v, a), UVA_ENOTCONN);
  UVT_EQ(uva_tls_alpn(a, buf, sizeof buf), UVA_ENOTCONN);
  UVT_EQ(uva_tls_peer_cert(&n, a, NULL, 0), UVA_ENOTCONN);
  UVT_EQ(uva_tls_handshake(a, NULL), UVA_EINVAL); /* outside a step */
  UVT_EQ(uva_tls_start(NULL, cctx, NULL), UVA_EINVAL);
  UVT_EQ(uva_tls_start(a, NULL, NULL), UVA_EINVAL);
  UVT_EQ(uva_tls_start(a, (uva_tls_ctx_t *) (void *) loop, NULL),
         UVA_EHANDLEKIND);
  UVT_EQ(uva_tls_ctx_set_verify(cctx, 7), UVA_EINVAL);
  UVT_EQ(uva_tls_ctx_set_versions(cctx, 0x0302, 0), UVA_EINVAL);
  UVT_EQ(
      uva_tls_ctx_set_versions(cctx, UVA_TLS_VERSION_1_3, UVA_TLS_VERSION_1_2),
      UVA_EINVAL);
  UVT_EQ(uva_tls_ctx_set_ciphers(cctx, "NO-SUCH-CIPHER", NULL), UVA_EINVAL);
  const char *bad[] = {""};
  UVT_EQ(uva_tls_ctx_set_alpn(cctx, bad, 1), UVA_EINVAL);
  UVT_EQ(uva_tls_ctx_load_ca(cctx, "/nonexistent/ca.pem", NULL), UVA_ENOENT);
  UVT_EQ(uva_tls_ctx_load_ca_pem(cctx, "not a pem", 9), UVA_ETLS);
  UVT_EQ(uva_tls_ctx_use_cert_file(sctx, p.server, p.client_key, NULL),
         UVA_ETLS); /* a key that is not the certificate's */
  uva_tls_ctx_t *empty;
  UVT_OK(uva_tls_ctx_new(&empty, UVA_TLS_SERVER));
  int fds[2];
  tcp_fd_pair(fds);
  uva_stream_t *c = adopt(loop, fds[0]);
  UVT_EQ(uva_tls_start(c, empty, NULL), UVA_ETLS); /* no certificate */
  UVT_OK(uva_stream_close(c, NULL, NULL));
  close(fds[1]);
  uva_tls_ctx_free(empty);
  uva_tls_ctx_free(NULL);
  UVT_EQ(uva_tls_ctx_new(NULL, UVA_TLS_CLIENT), UVA_EINVAL);
  UVT_EQ(uva_tls_ctx_new(&empty, (uva_tls_role) 5), UVA_EINVAL);
  cr_assert_eq(uva_tls_available(), 1);
  cr_assert_str_eq(uva_err_name(UVA_ETLSHOSTNAME), "ETLSHOSTNAME");
  /* A plain stream has no TLS to ask about. */
  uva_stream_t *plain;
  tcp_fd_pair(fds);
  plain = adopt(loop, fds[0]);
  UVT_EQ(uva_tls_version(&v, plain), UVA_EINVAL);
  UVT_OK(uva_stream_close(plain, NULL, NULL));
  close(fds[1]);
  UVT_OK(uva_stream_close(a, NULL, NULL));
  UVT_OK(uva_stream_close(b, NULL, NULL));
  run(loop);
  UVT_CLOSE_LOOP(loop);
  uva_tls_ctx_free(cctx);
  uva_tls_ctx_free(sctx);
  pki_free(&p);
}

/* ---- the other stream calls, and flow control ------------------------------ */

/* The client writes with writev: 3,000 small pieces (gathered into records)
 * around one of 100 KB; the server takes them with read_exactly,
 * read_until, peek/consume and read_line. */
#define PIECES 3000

struct calls {
  int pc, rc;
  uva_stream_t *s;
  size_t n, off;
  const void *peek;
  unsigned char *big;
  char small[PIECES][4];
  uva_buf_t bufs[PIECES + 2];
  unsigned char buf[128 * 1024];
  int ok;
};

static int step_calls_client(uva_task_t *t, int status, void *d) {
  struct calls *c = (struct calls *) d;
  (void) status;
  CO_BEGIN(c);
  CO_CALL(c, uva_tls_handshake(c->s, t));
  UVT_OK(c->rc);
  for (int i = 0; i < PIECES; i++) {
    snprintf(c->small[i], sizeof c->small[i], "%03d", i % 1000);
    c->bufs[i].base = c->small[i];
    c->bufs[i].len = 3;
  }
  c->bufs[PIECES].base = c->big;
  c->bufs[PIECES].len = 100000;
  c->bufs[PIECES + 1].base = "END\r\nline\n";
  c->bufs[PIECES + 1].len = 10;
  UVT_OK(uva_stream_writev(NULL, c->s, c->bufs, PIECES + 2));
  CO_CALL(c, uva_stream_read(&c->n, c->s, t, c->buf, sizeof c->buf));
  UVT_OK(c->rc);
  cr_assert_eq(c->n, 0);
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  CO_END(c);
}

static int step_calls_server(uva_task_t *t, int status, void *d) {
  struct calls *c = (struct calls *) d;
  (void) status;
  CO_BEGIN(c);
  CO_CALL(c, uva_tls_handshake(c->s, t));
  UVT_OK(c->rc);
  /* The small pieces: exactly. */
  CO_CALL(c, uva_stream_read_exactly(c->s, t, c->buf, 3 * PIECES));
  UVT_OK(c->rc);
  for (int i = 0; i < PIECES; i++) {
    char want[4];
    snprintf(want, sizeof want, "%03d", i % 1000);
    cr_assert_eq(memcmp(c->buf + 3 * i, want, 3), 0, "piece %d", i);
  }
  /* The big one, by peek and consume. */
  while (c->off < 100000) {
    CO_CALL(c, uva_stream_peek(&c->peek, &c->n, c->s, t));
    UVT_OK(c->rc);
    cr_assert(c->n > 0);
    if (c->n > 100000 - c->off) c->n = 100000 - c->off;
    cr_assert(pattern_ok(c->peek, c->off, c->n));
    UVT_OK(uva_stream_consume(c->s, c->n));
    c->off += c->n;
  }
  CO_CALL(c, uva_stream_read_until(&c->n, c->s, t, "\r\n", 2, c->buf,
                                   sizeof c->buf));
  UVT_OK(c->rc);
  cr_assert_eq(c->n, 5);
  cr_assert_eq(memcmp(c->buf, "END\r\n", 5), 0);
  CO_CALL(c, uva_stream_read_line(&c->n, c->s, t, c->buf, sizeof c->buf));
  UVT_OK(c->rc);
  cr_assert_eq(c->n, 5);
  c->ok = 1;
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  CO_END(c);
}

Test(tls_core, writev_read_exactly_peek_read_until_over_tls, .timeout = 30) {
  struct pki p;
  pki_make(&p);
  uva_loop_t *loop = uvt_loop_new();
  uva_tls_ctx_t *cctx = client_ctx(&p), *sctx = server_ctx(&p, NULL, NULL);
  struct calls *cl = calloc(1, sizeof *cl), *sv = calloc(1, sizeof *sv);
  cl->big = pattern();
  tls_pair(loop, cctx, sctx, &cl->s, &sv->s);
  spawn(loop, step_calls_server, sv);
  spawn(loop, step_calls_client, cl);
  run(loop);
  cr_assert(sv->ok);
  free(cl);
  free(sv);
  UVT_CLOSE_LOOP(loop);
  uva_tls_ctx_free(cctx);
  uva_tls_ctx_free(sctx);
  pki_free(&p);
}

/* A reader that does not read: the plaintext buffered stays within
 * high_water plus one read (64 KiB), as on a plain stream, while the peer
 * has 8 MB to send; then everything arrives intact. */
struct hold {
  int pc, rc;
  uva_loop_t *loop;
  uva_stream_t *s;
  size_t n, off, most;
  int bad;
  unsigned char buf[65536];
};

static int step_hold_writer(uva_task_t *t, int status, void *d) {
  struct hold *c = (struct hold *) d;
  (void) status;
  CO_BEGIN(c);
  CO_CALL(c, uva_tls_handshake(c->s, t));
  UVT_OK(c->rc);
  while (c->off < 8 * PAT_CHUNK) {
    CO_CALL(c, uva_stream_write_drain(c->s, t, pattern(), PAT_CHUNK - 1));
    UVT_OK(c->rc);
    c->off += PAT_CHUNK - 1;
  }
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  CO_END(c);
}

static int step_hold_reader(uva_task_t *t, int status, void *d) {
  struct hold *c = (struct hold *) d;
  (void) status;
  CO_BEGIN(c);
  UVT_OK(uva_stream_set(c->s, UVA_STREAM_HIGH_WATER, 100000));
  CO_CALL(c, uva_tls_handshake(c->s, t));
  UVT_OK(c->rc);
  for (c->n = 0; c->n < 40; c->n++) { /* 40 sleeps of 5 ms, not reading */
    CO_SLEEP(c, t, 5);
    size_t b;
    UVT_OK(uva_stream_buffered(&b, c->s));
    if (b > c->most) c->most = b;
  }
  for (;;) {
    CO_CALL(c, uva_stream_read(&c->n, c->s, t, c->buf, sizeof c->buf));
    UVT_OK(c->rc);
    if (c->n == 0) break;
    /* The writer's chunks are PAT_CHUNK - 1 bytes of the pattern from 0. */
    for (size_t i = 0; i < c->n; i++) {
      size_t o = (c->off + i) % (PAT_CHUNK - 1);
      if (c->buf[i] != (unsigned char) (o % 251)) c->bad = 1;
    }
    c->off += c->n;
  }
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  CO_END(c);
}

Test(tls_core, reading_pauses_at_high_water, .timeout = 60) {
  struct pki p;
  pki_make(&p);
  uva_loop_t *loop = uvt_loop_new();
  uva_tls_ctx_t *cctx = client_ctx(&p), *sctx = server_ctx(&p, NULL, NULL);
  struct hold *w = calloc(1, sizeof *w), *r = calloc(1, sizeof *r);
  tls_pair(loop, cctx, sctx, &r->s, &w->s);
  spawn(loop, step_hold_writer, w);
  spawn(loop, step_hold_reader, r);
  run(loop);
  cr_assert(r->most >= 100000, "buffered at most %zu", r->most);
  cr_assert(r->most <= 100000 + 64 * 1024, "buffered %zu", r->most);
  cr_assert_eq(r->off, w->off);
  cr_assert(!r->bad);
  free(w);
  free(r);
  UVT_CLOSE_LOOP(loop);
  uva_tls_ctx_free(cctx);
  uva_tls_ctx_free(sctx);
  pki_free(&p);
}

/* ---- contexts shared by loops of several threads -------------------------- */

/* Four threads, each with its own loop, run 20 TLS round trips each with
 * the same two contexts (the header: once configured, streams of any loops
 * on any threads may use a context at once), the client's session cache
 * among them. */
#define THREADS 4
#define ROUNDS 20

struct shared {
  uva_tls_ctx_t *cctx, *sctx;
  int ok;
};

struct round {
  int pc, rc;
  uva_stream_t *s;
  int server;
  size_t n;
  char buf[64];
  int *ok;
};

static int step_round(uva_task_t *t, int status, void *d) {
  struct round *c = (struct round *) d;
  (void) status;
  CO_BEGIN(c);
  CO_CALL(c, uva_tls_handshake(c->s, t));
  if (c->rc != 0) goto out;
  if (!c->server) UVT_OK(uva_stream_write(NULL, c->s, "ping\n", 5));
  CO_CALL(c, uva_stream_read_line(&c->n, c->s, t, c->buf, sizeof c->buf));
  if (c->rc != 0 || c->n != 5) goto out;
  if (c->server) {
    UVT_OK(uva_stream_write(NULL, c->s, c->buf, c->n));
    CO_CALL(c, uva_stream_read(&c->n, c->s, t, c->buf, sizeof c->buf));
    if (c->rc != 0 || c->n != 0) goto out;
  }
  (*c->ok)++;
out:
  uva_stream_close(c->s, NULL, NULL);
  CO_END(c);
}

static void *thread_rounds(void *arg) {
  struct shared *sh = (struct shared *) arg;
  uva_loop_t *loop;
  if (uva_loop_new(&loop) != 0) return NULL;
  for (int i = 0; i < ROUNDS; i++) {
    struct round cl, sv;
    memset(&cl, 0, sizeof cl);
    memset(&sv, 0, sizeof sv);
    cl.ok = sv.ok = &sh->ok;
    sv.server = 1;
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) break;
    uva_stream_open_fd(&cl.s, loop, fds[0]);
    uva_stream_open_fd(&sv.s, loop, fds[1]);
    uva_tls_start(sv.s, sh->sctx, NULL);
    uva_tls_start(cl.s, sh->cctx, "localhost");
    uva_task_spawn(NULL, loop, step_round, &sv, NULL);
    uva_task_spawn(NULL, loop, step_round, &cl, NULL);
    uva_loop_run(loop, UVA_RUN_DEFAULT);
  }
  uva_loop_close(loop);
  return NULL;
}

Test(tls_core, contexts_shared_by_loops_of_several_threads, .timeout = 60) {
  struct pki p;
  pki_make(&p);
  uva_tls_ctx_t *cctx = client_ctx(&p), *sctx = server_ctx(&p, NULL, NULL);
  struct shared sh[THREADS];
  pthread_t th[THREADS];
  for (int i = 0; i < THREADS; i++) {
    sh[i].cctx = cctx;
    sh[i].sctx = sctx;
    sh[i].ok = 0;
    cr_assert_eq(pthread_create(&th[i], NULL, thread_rounds, &sh[i]), 0);
  }
  for (int i = 0; i < THREADS; i++) {
    cr_assert_eq(pthread_join(th[i], NULL), 0);
    cr_assert_eq(sh[i].ok, 2 * ROUNDS, "thread %d: %d", i, sh[i].ok);
  }
  uva_tls_ctx_free(cctx);
  uva_tls_ctx_free(sctx);
  pki_free(&p);
}

/* An encrypted private key: the right password loads it (from a file and
 * from memory), a wrong one or none fails with UVA_ETLS, and nothing asks
 * a terminal for one. */
Test(tls_core, encrypted_key_needs_its_password, .timeout = 30) {
  struct pki p;
  pki_make(&p);
  FILE *f = fopen(p.server_key, "r");
  cr_assert_not_null(f);
  EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
  fclose(f);
  cr_assert_not_null(k);
  char enc[256];
  snprintf(enc, sizeof enc, "%s/encrypted.key", p.dir);
  f = fopen(enc, "w");
  cr_assert(PEM_write_PrivateKey(f, k, EVP_aes_256_cbc(), NULL, 0, NULL,
                                 (void *) "s3cret"));
  fclose(f);
  EVP_PKEY_free(k);
  int devnull = open("/dev/null", O_RDONLY); /* a prompt would read it */
  int saved = dup(0);
  dup2(devnull, 0);
  uva_tls_ctx_t *c;
  UVT_OK(uva_tls_ctx_new(&c, UVA_TLS_SERVER));
  UVT_EQ(uva_tls_ctx_use_cert_file(c, p.server, enc, NULL), UVA_ETLS);
  UVT_EQ(uva_tls_ctx_use_cert_file(c, p.server, enc, "wrong"), UVA_ETLS);
  UVT_OK(uva_tls_ctx_use_cert_file(c, p.server, enc, "s3cret"));
  size_t cl, kl;
  char *cert = slurp(p.server, &cl), *key = slurp(enc, &kl);
  UVT_EQ(uva_tls_ctx_use_cert_pem(c, cert, cl, key, kl, "wrong"), UVA_ETLS);
  UVT_OK(uva_tls_ctx_use_cert_pem(c, cert, cl, key, kl, "s3cret"));
  free(cert);
  free(key);
  uva_tls_ctx_free(c);
  dup2(saved, 0);
  close(saved);
  close(devnull);
  pki_free(&p);
}
