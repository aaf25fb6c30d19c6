/* bench_tls_load — load client of the TLS benchmark (run_tls.py).
 *
 *   bench_tls_load HOST PORT CONNS SIZE SECONDS
 *
 * TLS 1.3 with TLS_AES_128_GCM_SHA256 only (so every server negotiates
 * AES-GCM), no certificate verification (the servers use a throwaway one),
 * no session resumption (every handshake is a full one).
 *
 * SIZE > 0, echo: CONNS connections, each in a closed loop as
 * bench_echo_load: send one message of SIZE bytes (request k on connection
 * c is the window at offset (c * 7 + k) % 251 of a pseudo-random pattern),
 * read the whole echo while sending, check every byte, send the next. The
 * SECONDS measured start once every connection's handshake is done.
 *
 * SIZE = 0, handshakes: CONNS connections at a time, each: connect, full
 * handshake, a 1-byte echo (so the server has finished its side and served
 * a byte), close_notify, close, and a new one in its place, for SECONDS.
 *
 * Prints one line:
 *
 *   conns=.. size=.. seconds=.. requests=.. rps=.. mib_s=.. errors=.. ok=1|0
 *
 * requests counts verified round trips (echo) or completed connections
 * (handshakes). Exit status 1 if errors > 0. Plain sockets, epoll and
 * OpenSSL in one thread: it uses neither uvasync nor libuv.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PATTERN_SPREAD 251

enum { CONNECTING, HANDSHAKE, XFER, DONE };

typedef struct {
  int fd;
  int id;
  int phase;
  SSL *ssl;
  uint64_t k;
  const unsigned char *msg;
  unsigned char *buf;
  size_t sent, got;
  uint32_t events; /* registered with epoll */
} conn_t;

static SSL_CTX *ctx;
static struct addrinfo *addr;
static int ep;
static unsigned char *pattern;
static size_t size, msg_size;
static int handshake_mode;
static uint64_t requests, errors, handshaken;
static int counting;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

static void die(const char *what) {
  fprintf(stderr, "bench_tls_load: %s: %s\n", what, strerror(errno));
  exit(2);
}

static void set_events(conn_t *c, uint32_t ev) {
  if (ev == c->events) return;
  struct epoll_event e = {.events = ev, .data.ptr = c};
  if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e) < 0) die("epoll_ctl");
  c->events = ev;
}

static void next_message(conn_t *c) {
  c->msg = pattern + (c->id * 7 + c->k) % PATTERN_SPREAD;
  c->sent = 0;
  c->got = 0;
}

static void conn_open(conn_t *c) {
  c->fd = socket(addr->ai_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (c->fd < 0) die("socket");
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(c->fd, addr->ai_addr, addr->ai_addrlen) < 0 &&
      errno != EINPROGRESS)
    die("connect");
  c->ssl = SSL_new(ctx);
  if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) die("SSL_new");
  SSL_set_connect_state(c->ssl);
  c->phase = CONNECTING;
  c->k = 0;
  next_message(c);
  c->events = EPOLLOUT;
  struct epoll_event e = {.events = EPOLLOUT, .data.ptr = c};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e) < 0) die("epoll_ctl");
}

static void conn_close(conn_t *c, int clean) {
  if (clean) SSL_shutdown(c->ssl); /* our close_notify; no wait */
  SSL_free(c->ssl);
  close(c->fd); /* leaves the epoll set */
  c->ssl = NULL;
  c->phase = DONE;
}

static void fail(conn_t *c, const char *what) {
  unsigned long e = ERR_get_error();
  fprintf(stderr, "bench_tls_load: conn %d: %s: %s\n", c->id, what,
          e ? ERR_reason_error_string(e) : strerror(errno));
  ERR_clear_error();
  errors++;
  conn_close(c, 0);
}

/* Go on with c until it must wait; the events to wait for. */
static void drive(conn_t *c) {
  if (c->phase == CONNECTING) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      errno = err;
      fail(c, "connect");
      return;
    }
    c->phase = HANDSHAKE;
  }
  if (c->phase == HANDSHAKE) {
    int r = SSL_do_handshake(c->ssl);
    if (r != 1) {
      int e = SSL_get_error(c->ssl, r);
      if (e == SSL_ERROR_WANT_READ) return set_events(c, EPOLLIN);
      if (e == SSL_ERROR_WANT_WRITE) return set_events(c, EPOLLOUT);
      fail(c, "handshake");
      return;
    }
    handshaken++;
    c->phase = XFER;
  }
  for (;;) {
    int progress = 0;
    uint32_t ev = EPOLLIN;
    if (c->sent < msg_size) {
      int r = SSL_write(c->ssl, c->msg + c->sent, (int) (msg_size - c->sent));
      if (r > 0) {
        c->sent += (size_t) r;
        progress = 1;
      } else {
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_WRITE)
          ev |= EPOLLOUT;
        else if (e != SSL_ERROR_WANT_READ) {
          fail(c, "write");
          return;
        }
      }
    }
    int r = SSL_read(c->ssl, c->buf + c->got, (int) (msg_size - c->got));
    if (r > 0) {
      c->got += (size_t) r;
      progress = 1;
    } else {
      int e = SSL_get_error(c->ssl, r);
      if (e == SSL_ERROR_WANT_WRITE)
        ev |= EPOLLOUT;
      else if (e != SSL_ERROR_WANT_READ) {
        fail(c, "read");
        return;
      }
    }
    if (c->got == msg_size) {
      if (memcmp(c->buf, c->msg, msg_size) != 0) {
        fprintf(stderr, "bench_tls_load: conn %d: echo mismatch\n", c->id);
        errors++;
        conn_close(c, 0);
        return;
      }
      if (counting) requests++;
      if (handshake_mode) {
        conn_close(c, 1);
        if (counting) conn_open(c); /* a new connection in its place */
        return;
      }
      c->k++;
      next_message(c);
      continue;
    }
    if (!progress) {
      set_events(c, ev);
      return;
    }
  }
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: bench_tls_load HOST PORT CONNS SIZE SECONDS\n");
    return 2;
  }
  int nconns = atoi(argv[3]);
  size = (size_t) atol(argv[4]);
  double seconds = atof(argv[5]);
  handshake_mode = size == 0;
  msg_size = handshake_mode ? 1 : size;
  signal(SIGPIPE, SIG_IGN);
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
  if (getaddrinfo(argv[1], argv[2], &hints, &addr) != 0) die("getaddrinfo");

  ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == NULL || !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
      !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) ||
      !SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256")) {
    fprintf(stderr, "bench_tls_load: OpenSSL setup failed\n");
    return 2;
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  SSL_CTX_set_mode(
      ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);

  pattern = malloc(msg_size + PATTERN_SPREAD);
  if (pattern == NULL) die("malloc");
  uint32_t x = 2463534242u;
  for (size_t i = 0; i < msg_size + PATTERN_SPREAD; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    pattern[i] = (unsigned char) x;
  }
  ep = epoll_create1(0);
  if (ep < 0) die("epoll_create1");
  conn_t *conns = calloc((size_t) nconns, sizeof *conns);
  if (conns == NULL) die("calloc");
  for (int i = 0; i < nconns; i++) {
    conns[i].id = i;
    conns[i].buf = malloc(msg_size);
    if (conns[i].buf == NULL) die("malloc");
    conn_open(&conns[i]);
  }
  struct epoll_event evs[256];
  double t0 = now_s(), deadline = 0;
  if (handshake_mode) {
    counting = 1;
    deadline = t0 + seconds;
  }
  for (;;) {
    double t = now_s();
    if (!counting && handshaken == (uint64_t) nconns) {
      counting = 1; /* every connection is up: measure from here */
      t0 = t;
      deadline = t0 + seconds;
    }
    if (counting && t >= deadline) break;
    if (!counting && t - t0 > 30) {
      fprintf(stderr, "bench_tls_load: connections not up after 30 s\n");
      errors++;
      break;
    }
    int alive = 0;
    for (int i = 0; i < nconns; i++)
      alive += conns[i].phase != DONE;
    if (alive == 0) break;
    int n = epoll_wait(ep, evs, 256, 100);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int i = 0; i < n; i++)
      drive(evs[i].data.ptr);
  }
  double elapsed = now_s() - t0;
  double rps = elapsed > 0 ? (double) requests / elapsed : 0.0;
  printf(
      "conns=%d size=%zu seconds=%.3f requests=%llu rps=%.1f mib_s=%.2f "
      "errors=%llu ok=%d\n",
      nconns, size, elapsed, (unsigned long long) requests, rps,
      rps * (double) size / (1024.0 * 1024.0), (unsigned long long) errors,
      errors == 0 && requests > 0);
  return errors > 0;
}
