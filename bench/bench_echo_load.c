/* bench_echo_load — load client for the echo benchmark (run_echo.py).
 *
 *   bench_echo_load HOST PORT CONNS SIZE SECONDS [WARMUP]
 *
 * Opens CONNS TCP connections to HOST:PORT. Each connection, in a closed
 * loop: sends one message of SIZE bytes, waits for the whole echo, checks
 * every byte, sends the next. Request k on connection c is the window at
 * offset (c * 7 + k) % 251 of a fixed pseudo-random pattern, so an echo
 * that is stale, reordered, truncated or crossed with another connection
 * fails the check. Runs for SECONDS (measured from when every connection is
 * up), then prints one line:
 *
 *   conns=.. size=.. seconds=.. requests=.. rps=.. mib_s=.. errors=..
 *
 * requests counts complete verified round trips; mib_s counts payload
 * bytes echoed back (one direction). Exit status 1 if errors > 0.
 *
 * With WARMUP > 0 the connections run WARMUP seconds first, uncounted, and
 * the SECONDS measured start after it (warmup=.. joins the line): the
 * pattern of a client that opens its connections just before a short run,
 * where the connections are young for much of the measured second (their
 * receive buffers still growing; bench/README.md, "Echo").
 * all_requests=.. then counts every verified round trip, warm-up included,
 * for a server CPU time taken over the whole run.
 * Without it, the count starts when the connections are up.
 *
 * Plain POSIX sockets + epoll, one thread; it does not use uvasync or
 * libuv, so it measures both servers with the same client.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PATTERN_SPREAD 251 /* distinct message windows (prime) */

typedef struct {
  int fd;
  int id;
  uint64_t k;               /* request number */
  const unsigned char *msg; /* the current request's bytes */
  size_t sent, got;
  int want_out; /* EPOLLOUT registered */
  int dead;
} conn_t;

static unsigned char *pattern;
static size_t size;
static uint64_t errors;
static int alive; /* connections not closed yet */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

static void die(const char *what) {
  fprintf(stderr, "bench_echo_load: %s: %s\n", what, strerror(errno));
  exit(2);
}

static void conn_close(conn_t *c) {
  if (c->dead) return;
  c->dead = 1;
  close(c->fd);
  alive--;
}

static void conn_fail(conn_t *c, const char *why) {
  if (c->dead) return;
  fprintf(stderr, "bench_echo_load: conn %d request %llu: %s\n", c->id,
          (unsigned long long) c->k, why);
  errors++;
  conn_close(c);
}

static void set_out(int ep, conn_t *c, int on) {
  if (c->want_out == on) return;
  struct epoll_event ev;
  ev.events = EPOLLIN | (on ? EPOLLOUT : 0);
  ev.data.ptr = c;
  if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) != 0) die("epoll_ctl");
  c->want_out = on;
}

static void start_request(conn_t *c) {
  c->msg = pattern + (size_t) (((uint64_t) c->id * 7 + c->k) % PATTERN_SPREAD);
  c->sent = 0;
  c->got = 0;
}

/* Send what the kernel takes now. */
static void pump_send(int ep, conn_t *c) {
  while (c->sent < size) {
    ssize_t n = send(c->fd, c->msg + c->sent, size - c->sent, MSG_NOSIGNAL);
    if (n > 0) {
      c->sent += (size_t) n;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      set_out(ep, c, 1);
      return;
    } else {
      conn_fail(c, n == 0 ? "send returned 0" : strerror(errno));
      return;
    }
  }
  set_out(ep, c, 0);
}

int main(int argc, char **argv) {
  if (argc != 6 && argc != 7) {
    fprintf(stderr,
            "usage: bench_echo_load HOST PORT CONNS SIZE SECONDS [WARMUP]\n");
    return 2;
  }
  const char *host = argv[1];
  const char *port = argv[2];
  int nconns = atoi(argv[3]);
  long lsize = atol(argv[4]);
  double seconds = atof(argv[5]);
  double warmup = argc == 7 ? atof(argv[6]) : 0;
  if (nconns <= 0 || lsize <= 0 || seconds <= 0 || warmup < 0) {
    fprintf(stderr,
            "bench_echo_load: CONNS, SIZE and SECONDS must be > 0, "
            "WARMUP >= 0\n");
    return 2;
  }
  size = (size_t) lsize;
  signal(SIGPIPE, SIG_IGN);

  /* The pattern: splitmix64 bytes, SIZE + spread long. */
  pattern = malloc(size + PATTERN_SPREAD);
  unsigned char *rbuf = malloc(size < 65536 ? 65536 : size);
  conn_t *conns = calloc((size_t) nconns, sizeof *conns);
  if (pattern == NULL || rbuf == NULL || conns == NULL) die("malloc");
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (size_t i = 0; i < size + PATTERN_SPREAD; i++) {
    uint64_t z = (x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    pattern[i] = (unsigned char) (z ^ (z >> 31));
  }

  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int gai = getaddrinfo(host, port, &hints, &res);
  if (gai != 0) {
    fprintf(stderr, "bench_echo_load: %s:%s: %s\n", host, port,
            gai_strerror(gai));
    return 2;
  }

  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  for (int i = 0; i < nconns; i++) {
    conn_t *c = &conns[i];
    c->id = i;
    c->fd =
        socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, res->ai_protocol);
    if (c->fd < 0) die("socket");
    if (connect(c->fd, res->ai_addr, res->ai_addrlen) != 0) die("connect");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int fl = fcntl(c->fd, F_GETFL);
    if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) != 0) die("fcntl");
    struct epoll_event ev;
    ev.events = EPOLLIN;
    ev.data.ptr = c;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) die("epoll_ctl");
  }
  freeaddrinfo(res);

  struct epoll_event *evs = calloc((size_t) nconns, sizeof *evs);
  if (evs == NULL) die("malloc");
  uint64_t requests = 0, all_requests = 0;
  alive = nconns;
  double t0 = now_s();
  double counted_from = t0 + warmup; /* round trips done after it count */
  double deadline = counted_from + seconds;
  int counting = warmup == 0;
  int stopping = 0;
  for (int i = 0; i < nconns; i++) {
    start_request(&conns[i]);
    pump_send(ep, &conns[i]);
  }
  while (alive > 0) {
    int n = epoll_wait(ep, evs, nconns, 100);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    if (!counting || !stopping) {
      double t = now_s();
      if (!counting && t >= counted_from) counting = 1;
      if (!stopping && t >= deadline) stopping = 1;
    }
    for (int e = 0; e < n; e++) {
      conn_t *c = evs[e].data.ptr;
      if (c->dead) continue;
      if (evs[e].events & EPOLLOUT) pump_send(ep, c);
      if (c->dead) continue;
      if (!(evs[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) continue;
      for (;;) { /* read what is there, checking it against the message */
        size_t room = size - c->got;
        if (room == 0) {
          /* The server sent more than it was sent: it cannot be an echo. */
          ssize_t extra = recv(c->fd, rbuf, 1, MSG_DONTWAIT);
          if (extra > 0)
            conn_fail(c, "more bytes than sent");
          else if (extra == 0)
            conn_fail(c, "server closed the connection");
          break;
        }
        ssize_t r = recv(c->fd, rbuf, room, 0);
        if (r > 0) {
          if (c->got + (size_t) r > c->sent) {
            conn_fail(c, "echo ahead of what was sent");
            break;
          }
          if (memcmp(rbuf, c->msg + c->got, (size_t) r) != 0) {
            conn_fail(c, "echoed bytes differ from the message");
            break;
          }
          c->got += (size_t) r;
          if (c->got == size) { /* one verified round trip */
            all_requests++;
            if (counting && !stopping) requests++;
            if (stopping) {
              conn_close(c);
              break;
            }
            c->k++;
            start_request(c);
            pump_send(ep, c);
            if (c->dead) break;
          }
          continue;
        }
        if (r == 0) {
          conn_fail(c, "server closed the connection");
        } else if (errno == EINTR) {
          continue;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
          conn_fail(c, strerror(errno));
        }
        break;
      }
    }
    if (stopping && now_s() > deadline + 10) {
      fprintf(stderr,
              "bench_echo_load: %d connections got no echo within "
              "10 s of the end\n",
              alive);
      errors += (uint64_t) alive;
      break;
    }
  }
  /* Requests completed before the deadline over the measured time. */
  double elapsed = seconds;
  double rps = (double) requests / elapsed;
  double mib_s =
      (double) requests * (double) size / elapsed / (1024.0 * 1024.0);
  printf(
      "conns=%d size=%zu seconds=%.3f requests=%llu rps=%.1f mib_s=%.2f "
      "errors=%llu",
      nconns, size, elapsed, (unsigned long long) requests, rps, mib_s,
      (unsigned long long) errors);
  if (warmup > 0) /* all: the warm-up's round trips and the last ones too */
    printf(" warmup=%.3f all_requests=%llu", warmup,
           (unsigned long long) all_requests);
  printf("\n");
  return errors == 0 ? 0 : 1;
}
