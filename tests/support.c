/* uvasync C test suite — the shared helpers declared in support.h (what
 * each does is documented there). */
#include "support.h"

/* ---- protothread-style steps ------------------------------------------ */

void count_stream_close(uva_stream_t *s, void *data) {
  (void) s;
  ++*(int *) data;
}

/* ---- raw sockets ------------------------------------------------------- */

int sock_port(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  cr_assert_eq(getsockname(fd, (struct sockaddr *) &ss, &len), 0);
  if (ss.ss_family == AF_INET6)
    return ntohs(((struct sockaddr_in6 *) &ss)->sin6_port);
  return ntohs(((struct sockaddr_in *) &ss)->sin_port);
}

void loopback4(struct sockaddr_in *sin, int port) {
  memset(sin, 0, sizeof *sin);
  sin->sin_family = AF_INET;
  sin->sin_port = htons((uint16_t) port);
  sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

int raw_bound(int backlog, int *port) {
  struct sockaddr_in sin;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  cr_assert(fd >= 0);
  loopback4(&sin, 0);
  cr_assert_eq(bind(fd, (struct sockaddr *) &sin, sizeof sin), 0);
  if (backlog > 0) cr_assert_eq(listen(fd, backlog), 0);
  *port = sock_port(fd);
  return fd;
}

int raw_connect_fd(int fd, int port) {
  struct sockaddr_in sin;
  loopback4(&sin, port);
  return connect(fd, (struct sockaddr *) &sin, sizeof sin) == 0 ? 0 : -errno;
}

int raw_connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  cr_assert(fd >= 0);
  int rc = raw_connect_fd(fd, port);
  cr_assert_eq(rc, 0, "connect: %s", strerror(-rc));
  return fd;
}

void tcp_fd_pair(int fds[2]) {
  int port;
  int l = raw_bound(1, &port);
  fds[0] = raw_connect(port);
  fds[1] = accept(l, NULL, NULL);
  cr_assert(fds[1] >= 0);
  close(l);
}

void roomy_tcp_fd_pair(int fds[2]) {
  int big = 1024 * 1024;
  tcp_fd_pair(fds);
  cr_assert_eq(setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big), 0);
  cr_assert_eq(setsockopt(fds[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof big), 0);
}

void close_reset(int fd) {
  struct linger lg;
  lg.l_onoff = 1;
  lg.l_linger = 0;
  cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  close(fd);
}

uva_stream_t *adopt(uva_loop_t *loop, int fd) {
  uva_stream_t *s = NULL;
  UVT_OK(uva_stream_open_fd(&s, loop, fd));
  cr_assert_not_null(s);
  return s;
}

void send_all(int fd, const void *buf, size_t len) {
  const char *p = (const char *) buf;
  while (len > 0) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    cr_assert(n > 0, "send: %s", strerror(errno));
    p += n;
    len -= (size_t) n;
  }
}

/* ---- data pattern ------------------------------------------------------ */

unsigned char *pattern(void) {
  static unsigned char *pat;
  if (pat == NULL) {
    pat = malloc(PAT_CHUNK + 251);
    cr_assert_not_null(pat);
    for (size_t i = 0; i < PAT_CHUNK + 251; i++)
      pat[i] = (unsigned char) (i % 251);
  }
  return pat;
}

int pattern_ok(const void *buf, size_t off, size_t n) {
  const unsigned char *p = (const unsigned char *) buf;
  while (n > 0) {
    size_t k = n < PAT_CHUNK ? n : PAT_CHUNK;
    if (memcmp(p, pattern() + off % 251, k) != 0) return 0;
    p += k;
    off += k;
    n -= k;
  }
  return 1;
}

unsigned char *pattern_buf(size_t n) {
  unsigned char *b = malloc(n > 0 ? n : 1);
  cr_assert_not_null(b);
  for (size_t i = 0; i < n; i++)
    b[i] = (unsigned char) (i % 251);
  return b;
}

/* ---- peer threads (plain blocking sockets) ------------------------------ */

void *peer_writer(void *arg) {
  struct peer *p = (struct peer *) arg;
  if (p->delay_ms > 0) uvt_sleep_ms(p->delay_ms);
  __atomic_store_n(&p->started, 1, __ATOMIC_SEQ_CST);
  while (p->done < p->total) {
    size_t k = p->total - p->done;
    if (k > PAT_CHUNK) k = PAT_CHUNK;
    const unsigned char *src =
        p->data != NULL ? p->data + p->done : pattern() + p->done % 251;
    ssize_t n = send(p->fd, src, k, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      p->err = -errno;
      break;
    }
    p->done += (size_t) n;
  }
  if (p->close_after == 1)
    close(p->fd);
  else if (p->close_after == 2)
    close_reset(p->fd);
  return NULL;
}

void *peer_reader(void *arg) {
  struct peer *p = (struct peer *) arg;
  static __thread char buf[256 * 1024];
  if (p->delay_ms > 0) uvt_sleep_ms(p->delay_ms);
  __atomic_store_n(&p->started, 1, __ATOMIC_SEQ_CST);
  for (;;) {
    ssize_t n = recv(p->fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      p->err = -errno;
      break;
    }
    if (n == 0) break;
    if (!p->bad && !pattern_ok(buf, p->done, (size_t) n)) p->bad = 1;
    p->done += (size_t) n;
  }
  close(p->fd);
  return NULL;
}

void peer_start(struct peer *p, void *(*fn)(void *) ) {
  (void) pattern();
  cr_assert_eq(pthread_create(&p->th, NULL, fn, p), 0);
}

void peer_join(struct peer *p) { cr_assert_eq(pthread_join(p->th, NULL), 0); }

void peer_write_pattern(struct peer *p, int fd, size_t total, int delay_ms,
                        int close_after) {
  memset(p, 0, sizeof *p);
  p->fd = fd;
  p->total = total;
  p->delay_ms = delay_ms;
  p->close_after = close_after;
  peer_start(p, peer_writer);
}

/* ---- echo server: one handler task per connection ----------------------- */

void handler_done(struct handler *h) {
  struct echo_srv *srv = h->srv;
  uva_stream_close(h->s, NULL, NULL);
  if (++srv->finished == srv->expect && srv->sv != NULL) {
    uva_server_close(srv->sv, NULL, NULL);
    srv->sv = NULL;
  }
}

int step_echo(uva_task_t *t, int status, void *d) {
  struct handler *h = (struct handler *) d;
  if (status == UVA_ECANCELED) {
    handler_done(h);
    return status;
  }
  CO_BEGIN(h);
  for (;;) {
    CO_CALL(h, uva_stream_read_line(&h->n, h->s, t, h->buf, sizeof h->buf));
    if (h->rc != 0 || h->n == 0) break;
    CO_CALL(h, uva_stream_write_drain(h->s, t, h->buf, h->n));
    if (h->rc != 0) break;
  }
  if (h->rc == 0) h->srv->handled_ok++;
  handler_done(h);
  CO_END(h);
}

void spawn_echo(struct echo_srv *srv, uva_stream_t *s) {
  struct handler *h = calloc(1, sizeof *h);
  srv->conns++;
  if (h == NULL || uva_task_spawn(NULL, srv->loop, step_echo, h, free) != 0) {
    free(h);
    uva_stream_close(s, NULL, NULL);
    return;
  }
  h->s = s;
  h->srv = srv;
}

void on_conn_echo(uva_server_t *sv, uva_stream_t *s, void *data) {
  struct echo_srv *srv = (struct echo_srv *) data;
  (void) sv;
  if (srv->conns == 0) {
    srv->addr_rc = uva_stream_peer_address(s, srv->peer, sizeof srv->peer,
                                           &srv->peer_port);
    if (srv->addr_rc == 0)
      srv->addr_rc = uva_stream_local_address(s, srv->local, sizeof srv->local,
                                              &srv->local_port);
  }
  spawn_echo(srv, s);
}

uva_server_t *listen_tcp(uva_loop_t *loop, const char *host, int *port) {
  uva_server_t *sv = NULL;
  char addr[128];
  UVT_OK(uva_tcp_listen(&sv, loop, host, 0, 0));
  cr_assert_not_null(sv);
  UVT_OK(uva_server_address(sv, addr, sizeof addr, port));
  cr_assert(*port > 0 && *port <= 65535, "port %d", *port);
  return sv;
}

/* ---- client task: connect, send a line, expect it back, close ----------- */

int step_client(uva_task_t *t, int status, void *d) {
  struct client *c = (struct client *) d;
  if (status == UVA_ECANCELED) return status;
  CO_BEGIN(c);
again:
  c->conn_rc = c->path != NULL
                   ? uva_pipe_connect(&c->s, c->loop, c->path)
                   : uva_tcp_connect(&c->s, c->loop, c->host, c->port);
  if (c->conn_rc != 0) goto done;
  CO_CALL(c, uva_stream_wait_connected(c->s, t));
  c->conn_rc = c->rc;
  if (c->rc != 0) goto close;
  c->local_rc =
      uva_stream_local_address(c->s, c->local, sizeof c->local, &c->local_port);
  c->peer_rc =
      uva_stream_peer_address(c->s, c->peer, sizeof c->peer, &c->peer_port);
  c->msglen = (size_t) snprintf(c->msg, sizeof c->msg, "hello %d\n", c->id);
  CO_CALL(c, uva_stream_write_drain(c->s, t, c->msg, c->msglen));
  if (c->rc != 0) goto close;
  CO_CALL(c, uva_stream_read_line(&c->n, c->s, t, c->buf, sizeof c->buf));
  if (c->rc == 0 && c->n == c->msglen && memcmp(c->buf, c->msg, c->n) == 0)
    c->ok = 1;
close:
  uva_stream_close(c->s, NULL, NULL);
  /* Under a flood of connects the kernel may reset a connection it never
   * queued for accept (the listen backlog overflowed): a client retries. */
  if (!c->ok && c->retries < 5 &&
      (c->rc == UVA_ECONNRESET || c->rc == UVA_EPIPE ||
       c->rc == UVA_ECONNREFUSED)) {
    c->retries++;
    c->s = NULL;
    goto again;
  }
done:
  if (c->remaining != NULL && --*c->remaining == 0 && c->server != NULL &&
      *c->server != NULL) {
    uva_server_close(*c->server, NULL, NULL);
    *c->server = NULL;
  }
  CO_END(c);
}

void tcp_roundtrip(uva_loop_t *loop, const char *listen_host,
                   const char *connect_host, struct client *c,
                   struct echo_srv *srv) {
  int port, remaining = 1;
  uva_server_t *sv;
  memset(srv, 0, sizeof *srv);
  memset(c, 0, sizeof *c);
  srv->loop = loop;
  sv = listen_tcp(loop, listen_host, &port);
  UVT_OK(uva_server_on_connection(sv, on_conn_echo, srv));
  c->loop = loop;
  c->host = connect_host;
  c->port = port;
  c->remaining = &remaining;
  c->server = &sv;
  spawn(loop, step_client, c);
  run(loop);
  UVT_EQ(c->conn_rc, 0);
  cr_assert(c->ok, "the echo did not come back (rc %s)", uva_err_name(c->rc));
  cr_assert_eq(srv->conns, 1);
  cr_assert_eq(srv->handled_ok, 1);
  cr_assert_null(sv, "the server was not closed");
}

/* ---- synchronisation: traces, loop passes, waiting tasks --------------- */

int items[64];

void tr_add(struct trace *tr, char c) {
  if (tr != NULL && tr->n < (int) sizeof tr->s - 1) {
    tr->s[tr->n++] = c;
    tr->s[tr->n] = '\0';
  }
}

void pass(uva_loop_t *loop) { UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT)); }

int run_idle(uva_loop_t *loop, int max) {
  int alive = 1;
  for (int i = 0; i < max; i++) {
    UVT_OK(uva_loop_alive(&alive, loop));
    if (!alive) return 1;
    pass(loop);
  }
  UVT_OK(uva_loop_alive(&alive, loop));
  return !alive;
}

void waiter_init(struct waiter *w, char id, enum wop op, void *obj,
                 struct trace *tr) {
  memset(w, 0, sizeof *w);
  w->id = id;
  w->op = op;
  w->obj = obj;
  w->tr = tr;
  w->rc = 1;       /* "never called" */
  w->first_rc = 1; /* idem */
}

int waiter_call(struct waiter *w, uva_task_t *t) {
  switch (w->op) {
    case OP_EVENT:
      return uva_event_wait((uva_event_t *) w->obj, t);
    case OP_LOCK:
      return uva_lock_acquire((uva_lock_t *) w->obj, t);
    case OP_SEM:
      return uva_sem_acquire((uva_sem_t *) w->obj, t);
    case OP_GET:
      return uva_queue_get(&w->item, (uva_queue_t *) w->obj, t);
    case OP_PUT:
      return uva_queue_put((uva_queue_t *) w->obj, t, w->item);
    case OP_FLAG:
      return uva_flag_wait((uva_flag_t *) w->obj, t);
  }
  return UVA_EINTERNAL;
}

int step_waiter(uva_task_t *t, int status, void *d) {
  struct waiter *w = (struct waiter *) d;
  w->runs++;
  w->status = status;
  if (status == UVA_ECANCELED) {
    w->cancelled++;
    return UVA_ECANCELED;
  }
  if (w->skip_take && w->runs > 1)
    return 0; /* resumed with a grant it never takes */
  int rc = waiter_call(w, t);
  if (++w->calls == 1) w->first_rc = rc;
  w->rc = rc;
  if (rc == UVA_EAGAIN) return UVA_TASK_PENDING;
  if (rc == 0) {
    w->got = 1;
    tr_add(w->tr, w->id);
    if (w->release && w->op == OP_LOCK)
      cr_assert_eq(uva_lock_release((uva_lock_t *) w->obj), 0);
    if (w->release && w->op == OP_SEM)
      cr_assert_eq(uva_sem_release((uva_sem_t *) w->obj), 0);
  }
  return rc;
}

uva_task_t *spawn_waiter(uva_loop_t *loop, struct waiter *w) {
  UVT_OK(uva_task_spawn(&w->task, loop, step_waiter, w, NULL));
  return w->task;
}

void release_waiters(struct waiter *w, int n) {
  for (int i = 0; i < n; i++) {
    UVT_OK(uva_task_release(w[i].task));
    w[i].task = NULL;
  }
}

int task_rc(uva_task_t *t) {
  int r = 12345;
  UVT_OK(uva_task_result(&r, t));
  return r;
}

int step_yielder(uva_task_t *t, int status, void *d) {
  struct yielder *y = (struct yielder *) d;
  (void) t;
  (void) status;
  if (++y->runs == 1) {
    tr_add(y->tr, y->upper);
    return UVA_TASK_YIELD;
  }
  tr_add(y->tr, y->lower);
  return 0;
}
