/* UDP (uvasync.h "UDP"): datagram sockets whose received datagrams are kept
 * whole in the core; uva_udp_recv follows the "call again" protocol. */
#include "support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static void count_udp_close(uva_udp_t *u, void *data) {
  (void) u;
  ++*(int *) data;
}

/* A UDP socket bound to 127.0.0.1:0; *port receives the port. */
static uva_udp_t *udp_bound(uva_loop_t *loop, int *port) {
  uva_udp_t *u = NULL;
  char host[64];
  UVT_OK(uva_udp_new(&u, loop));
  cr_assert_not_null(u);
  UVT_OK(uva_udp_bind(u, "127.0.0.1", 0));
  UVT_OK(uva_udp_local_address(u, host, sizeof host, port));
  cr_assert_str_eq(host, "127.0.0.1");
  cr_assert(*port > 0 && *port <= 65535, "port %d", *port);
  return u;
}

/* Receives `count` datagrams, recording sizes, sources and contents. */
#define MAXD 8
struct receiver {
  int pc, rc;
  uva_udp_t *u;
  int count, got;
  size_t len[MAXD];
  char host[MAXD][64];
  int port[MAXD];
  char *data[MAXD];
  size_t buflen;
  char *buf;
  int close_after;          /* close the socket when done */
  uva_udp_t *also_close[2]; /* and these */
  int closes;
};

static int step_receive(uva_task_t *t, int status, void *d) {
  struct receiver *r = (struct receiver *) d;
  (void) status;
  CO_BEGIN(r);
  for (r->got = 0; r->got < r->count;) {
    CO_CALL(r, uva_udp_recv(&r->len[r->got], r->u, t, r->buf, r->buflen,
                            r->host[r->got], sizeof r->host[r->got],
                            &r->port[r->got]));
    if (r->rc != 0) break;
    r->data[r->got] = malloc(r->len[r->got] + 1);
    memcpy(r->data[r->got], r->buf, r->len[r->got]);
    r->got++;
  }
  if (r->close_after) UVT_OK(uva_udp_close(r->u, count_udp_close, &r->closes));
  for (int i = 0; i < 2; i++)
    if (r->also_close[i] != NULL)
      UVT_OK(uva_udp_close(r->also_close[i], count_udp_close, &r->closes));
  CO_END(r);
}

static void receiver_init(struct receiver *r, uva_udp_t *u, int count) {
  memset(r, 0, sizeof *r);
  r->u = u;
  r->count = count;
  r->buflen = 65536;
  r->buf = malloc(r->buflen);
  r->close_after = 1;
}

static void receiver_free(struct receiver *r) {
  for (int i = 0; i < r->got; i++)
    free(r->data[i]);
  free(r->buf);
}

Test(udp, bind_port_zero_reports_chosen_port, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int port = 0, closes = 0;
  uva_udp_t *u = udp_bound(loop, &port);
  /* The port is really ours: a plain socket cannot bind it. */
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_port = htons((uint16_t) port);
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  cr_assert_eq(bind(fd, (struct sockaddr *) &sin, sizeof sin), -1);
  cr_assert_eq(errno, EADDRINUSE);
  close(fd);
  UVT_OK(uva_udp_close(u, count_udp_close, &closes));
  run(loop);
  cr_assert_eq(closes, 1);
  UVT_CLOSE_LOOP(loop);
}

/* uva_udp_fileno lends the bound socket's descriptor: its options and
 * address are the UDP socket's own. */
Test(udp, fileno_is_the_bound_socket, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int port = 0, closes = 0, fd = -1;
  uva_udp_t *fresh = NULL;
  UVT_OK(uva_udp_new(&fresh, loop));
  UVT_EXPECT(uva_udp_fileno(&fd, fresh), UVA_ENOTCONN); /* no socket yet */
  UVT_OK(uva_udp_close(fresh, NULL, NULL));
  uva_udp_t *u = udp_bound(loop, &port);
  UVT_EXPECT(uva_udp_fileno(NULL, u), UVA_EINVAL);
  UVT_OK(uva_udp_fileno(&fd, u));
  cr_assert(fd >= 0);
  struct sockaddr_in sin;
  socklen_t n = sizeof sin;
  cr_assert_eq(getsockname(fd, (struct sockaddr *) &sin, &n), 0);
  cr_assert_eq(ntohs(sin.sin_port), port);
  int type = 0, on = 0;
  n = sizeof type;
  cr_assert_eq(getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &n), 0);
  cr_assert_eq(type, SOCK_DGRAM);
  n = sizeof on;
  cr_assert_eq(getsockopt(fd, SOL_SOCKET, SO_BROADCAST, &on, &n), 0);
  cr_assert_eq(on, 0);
  UVT_OK(uva_udp_close(u, count_udp_close, &closes));
  UVT_EXPECT(uva_udp_fileno(&fd, u), UVA_ECLOSED);
  run(loop);
  cr_assert_eq(closes, 1);
  UVT_CLOSE_LOOP(loop);
}

Test(udp, sendto_recvfrom_reports_source_address, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int pa, pb;
  uva_udp_t *a = udp_bound(loop, &pa);
  uva_udp_t *b = udp_bound(loop, &pb);
  struct receiver r;
  receiver_init(&r, b, 1);
  r.also_close[0] = a;
  spawn(loop, step_receive, &r);
  UVT_OK(uva_udp_send(a, "hello", 5, "127.0.0.1", pb));
  run(loop);
  UVT_OK(r.rc);
  cr_assert_eq(r.closes, 2);
  cr_assert_eq(r.got, 1);
  cr_assert_eq(r.len[0], 5);
  cr_assert_eq(memcmp(r.data[0], "hello", 5), 0);
  cr_assert_str_eq(r.host[0], "127.0.0.1");
  cr_assert_eq(r.port[0], pa, "source port %d, sender bound %d", r.port[0], pa);
  receiver_free(&r);
  UVT_CLOSE_LOOP(loop);
}

/* A reply goes back to the source address the receiver saw. */
struct echoer {
  int pc, rc;
  uva_udp_t *u;
  size_t n;
  int port;
  char host[64];
  char buf[256];
};

static int step_udp_echo_once(uva_task_t *t, int status, void *d) {
  struct echoer *e = (struct echoer *) d;
  (void) status;
  CO_BEGIN(e);
  CO_CALL(e, uva_udp_recv(&e->n, e->u, t, e->buf, sizeof e->buf, e->host,
                          sizeof e->host, &e->port));
  UVT_OK(e->rc);
  UVT_OK(uva_udp_send(e->u, e->buf, e->n, e->host, e->port));
  UVT_OK(uva_udp_close(e->u, NULL, NULL));
  CO_END(e);
}

Test(udp, connected_socket_sends_without_address, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int pb;
  uva_udp_t *b = udp_bound(loop, &pb);
  uva_udp_t *a = NULL;
  struct echoer e;
  struct receiver r;
  memset(&e, 0, sizeof e);
  UVT_OK(uva_udp_new(&a, loop));
  UVT_OK(uva_udp_connect(a, "127.0.0.1", pb));
  e.u = b;
  receiver_init(&r, a, 1);
  spawn(loop, step_udp_echo_once, &e);
  spawn(loop, step_receive, &r);
  UVT_OK(uva_udp_send(a, "ping", 4, NULL, 0));
  run(loop);
  cr_assert_eq(e.n, 4);
  cr_assert_str_eq(e.host, "127.0.0.1");
  cr_assert_eq(r.got, 1);
  cr_assert_eq(r.len[0], 4);
  cr_assert_eq(memcmp(r.data[0], "ping", 4), 0);
  cr_assert_str_eq(r.host[0], "127.0.0.1");
  cr_assert_eq(r.port[0], pb);
  receiver_free(&r);
  UVT_CLOSE_LOOP(loop);
}

Test(udp, datagrams_never_split_or_merged, .timeout = 10) {
  static const size_t sizes[] = {1, 1400, 30000, 0, 7};
  enum { N = sizeof sizes / sizeof sizes[0] };
  uva_loop_t *loop = uvt_loop_new();
  int pa, pb;
  uva_udp_t *a = udp_bound(loop, &pa);
  uva_udp_t *b = udp_bound(loop, &pb);
  struct receiver r;
  char *payload = malloc(30000);
  receiver_init(&r, b, N);
  r.also_close[0] = a;
  for (size_t i = 0; i < N; i++) {
    memset(payload, 'a' + (int) i, sizes[i] > 0 ? sizes[i] : 1);
    UVT_OK(uva_udp_send(a, payload, sizes[i], "127.0.0.1", pb));
  }
  spawn(loop, step_receive, &r);
  run(loop);
  UVT_OK(r.rc);
  cr_assert_eq(r.got, N);
  for (int i = 0; i < N; i++) {
    cr_assert_eq(r.len[i], sizes[i], "datagram %d: %zu bytes, sent %zu", i,
                 r.len[i], sizes[i]);
    for (size_t k = 0; k < r.len[i]; k++)
      cr_assert_eq(r.data[i][k], 'a' + i, "datagram %d byte %zu", i, k);
  }
  cr_assert_eq(r.closes, 2);
  free(payload);
  receiver_free(&r);
  UVT_CLOSE_LOOP(loop);
}

struct small_buf {
  int pc, rc;
  uva_udp_t *u, *other;
  size_t n_small, n;
  int rc_small;
  char small[100];
  char big[1000];
};

static int step_recv_small_then_big(uva_task_t *t, int status, void *d) {
  struct small_buf *c = (struct small_buf *) d;
  (void) status;
  CO_BEGIN(c);
  CO_CALL(c, uva_udp_recv(&c->n_small, c->u, t, c->small, sizeof c->small, NULL,
                          0, NULL));
  c->rc_small = c->rc;
  CO_CALL(c,
          uva_udp_recv(&c->n, c->u, t, c->big, sizeof c->big, NULL, 0, NULL));
  UVT_OK(c->rc);
  UVT_OK(uva_udp_close(c->u, NULL, NULL));
  UVT_OK(uva_udp_close(c->other, NULL, NULL));
  CO_END(c);
}

Test(udp, small_buffer_enobufs_then_whole_datagram, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int pa, pb;
  uva_udp_t *a = udp_bound(loop, &pa);
  uva_udp_t *b = udp_bound(loop, &pb);
  struct small_buf c;
  char payload[500];
  memset(&c, 0, sizeof c);
  for (int i = 0; i < 500; i++)
    payload[i] = (char) (i % 251);
  c.u = b;
  c.other = a;
  UVT_OK(uva_udp_send(a, payload, sizeof payload, "127.0.0.1", pb));
  spawn(loop, step_recv_small_then_big, &c);
  run(loop);
  UVT_EQ(c.rc_small, UVA_ENOBUFS);
  cr_assert_eq(c.n_small, 500, "*len on ENOBUFS: %zu", c.n_small);
  cr_assert_eq(c.n, 500);
  cr_assert_eq(memcmp(c.big, payload, 500), 0);
  UVT_CLOSE_LOOP(loop);
}

struct closer {
  int pc, rc;
  uva_udp_t *u;
  int closes;
};

static int step_close_later(uva_task_t *t, int status, void *d) {
  struct closer *c = (struct closer *) d;
  (void) status;
  CO_BEGIN(c);
  CO_SLEEP(c, t, 30);
  UVT_OK(uva_udp_close(c->u, count_udp_close, &c->closes));
  CO_END(c);
}

Test(udp, close_wakes_waiting_receiver_eclosed, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int pb;
  uva_udp_t *b = udp_bound(loop, &pb);
  struct receiver r;
  struct closer cl;
  receiver_init(&r, b, 1);
  r.close_after = 0;
  memset(&cl, 0, sizeof cl);
  cl.u = b;
  spawn(loop, step_receive, &r);
  spawn(loop, step_close_later, &cl);
  run(loop);
  cr_assert_eq(r.got, 0);
  UVT_EQ(r.rc, UVA_ECLOSED);
  cr_assert_eq(cl.closes, 1);
  receiver_free(&r);
  UVT_CLOSE_LOOP(loop);
}

Test(udp, ipv6_loopback, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_udp_t *a = NULL, *b = NULL;
  char host[64];
  int pb, rc;
  UVT_OK(uva_udp_new(&b, loop));
  rc = uva_udp_bind(b, "::1", 0);
  if (rc != 0) {
    UVT_OK(uva_udp_close(b, NULL, NULL));
    run(loop); /* completes the close */
    UVT_CLOSE_LOOP(loop);
    cr_skip_test("no IPv6 loopback: %s", uva_err_name(rc));
  }
  UVT_OK(uva_udp_local_address(b, host, sizeof host, &pb));
  cr_assert_str_eq(host, "::1");
  UVT_OK(uva_udp_new(&a, loop));
  struct receiver r;
  receiver_init(&r, b, 1);
  r.also_close[0] = a;
  spawn(loop, step_receive, &r);
  UVT_OK(uva_udp_send(a, "six", 3, "::1", pb));
  run(loop);
  UVT_OK(r.rc);
  cr_assert_eq(r.got, 1);
  cr_assert_eq(r.len[0], 3);
  cr_assert_str_eq(r.host[0], "::1");
  receiver_free(&r);
  UVT_CLOSE_LOOP(loop);
}

/* uva_loop_run(DEFAULT) returns when no referenced task, timer or callback
 * is left: a bound socket nobody receives on does not keep it running. */
Test(udp, idle_bound_socket_does_not_keep_loop_running, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int port;
  uva_udp_t *u = udp_bound(loop, &port);
  double t0 = uvt_ms();
  run(loop);
  cr_assert(uvt_ms() - t0 < 1000,
            "uva_loop_run(DEFAULT) blocked on an "
            "idle UDP socket");
  UVT_OK(uva_udp_close(u, NULL, NULL));
  run(loop);
  UVT_CLOSE_LOOP(loop);
}

/* Receiving pauses while high_water bytes of datagrams are queued in the
 * core and resumes as they are taken: every datagram arrives, whole and in
 * order. */
struct hw_recv {
  int pc, rc;
  uva_udp_t *u, *other;
  int i, count, bad;
  size_t n;
  char buf[2048];
};

static int step_hw_recv(uva_task_t *t, int status, void *d) {
  struct hw_recv *r = (struct hw_recv *) d;
  (void) status;
  CO_BEGIN(r);
  CO_SLEEP(r, t, 100); /* let them pile up */
  for (r->i = 0; r->i < r->count; r->i++) {
    CO_CALL(r,
            uva_udp_recv(&r->n, r->u, t, r->buf, sizeof r->buf, NULL, 0, NULL));
    UVT_OK(r->rc);
    if (r->n != 1000 || (unsigned char) r->buf[0] != r->i ||
        (unsigned char) r->buf[999] != r->i)
      r->bad++;
  }
  UVT_OK(uva_udp_close(r->u, NULL, NULL));
  UVT_OK(uva_udp_close(r->other, NULL, NULL));
  CO_END(r);
}

Test(udp, high_water_pauses_and_resumes_receiving, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int pa, pb;
  uva_udp_t *a = udp_bound(loop, &pa);
  uva_udp_t *b = udp_bound(loop, &pb);
  struct hw_recv r;
  char payload[1000];
  memset(&r, 0, sizeof r);
  UVT_OK(uva_udp_set(b, UVA_STREAM_HIGH_WATER, 4096));
  r.u = b;
  r.other = a;
  r.count = 20;
  for (int i = 0; i < r.count; i++) {
    memset(payload, i, sizeof payload);
    UVT_OK(uva_udp_send(a, payload, sizeof payload, "127.0.0.1", pb));
  }
  spawn(loop, step_hw_recv, &r);
  run(loop);
  cr_assert_eq(r.i, r.count);
  cr_assert_eq(r.bad, 0, "%d datagrams wrong or out of order", r.bad);
  UVT_CLOSE_LOOP(loop);
}
