/* Diagnostic: what a loop pass costs with its sockets polled level-triggered
 * (libuv's way), edge-triggered (mio's, under tokio) or edge-triggered in a
 * second epoll set nested in the first (a way to have edge-triggered
 * sockets while libuv keeps its own, level-triggered, set). It measures the
 * choice bench/README.md describes in "The last 1% at 1 and 10 KiB". Built
 * only with -DUVA_BUILD_BENCH_TOOLS=ON, not part of run_all:
 *
 *     taskset -c 0 build/bench/tools/epoll_modes [SOCKETS] [PASSES]
 *
 * SOCKETS (7: what one pass of the 10 x 1 KiB echo serves) loopback TCP
 * connections. One pass: 1 KiB is written into each, the server side waits
 * (epoll_wait; nested: the outer set, then the inner one), reads every
 * reported socket until it is drained, then waits once more and finds
 * nothing: that second wait is where a level-triggered set polls each
 * socket again. Writes and reads are the same in every mode, so the
 * differences between the modes are the polling's. Modes take turns, 7
 * rounds; prints each mode's median nanoseconds per pass. Linux only. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>

#ifdef __linux__
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { MODE_LEVEL, MODE_EDGE, MODE_NESTED, MODES };
static const char *mode_names[MODES] = {"level-triggered", "edge-triggered",
                                        "nested edge-triggered"};

#define MAX_SOCKETS 64
#define MSG 1024
#define ROUNDS 7

static int client_fd[MAX_SOCKETS], server_fd[MAX_SOCKETS];

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double) t.tv_sec + (double) t.tv_nsec * 1e-9;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

/* n connected pairs over 127.0.0.1, nonblocking, TCP_NODELAY. */
static void connect_pairs(int n) {
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  socklen_t alen = sizeof a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (lfd < 0 || bind(lfd, (struct sockaddr *) &a, sizeof a) != 0 ||
      listen(lfd, MAX_SOCKETS) != 0 ||
      getsockname(lfd, (struct sockaddr *) &a, &alen) != 0)
    die("listen");
  for (int i = 0; i < n; i++) {
    int one = 1;
    client_fd[i] = socket(AF_INET, SOCK_STREAM, 0);
    if (client_fd[i] < 0 ||
        connect(client_fd[i], (struct sockaddr *) &a, sizeof a) != 0)
      die("connect");
    server_fd[i] = accept(lfd, NULL, NULL);
    if (server_fd[i] < 0) die("accept");
    int fds[2] = {client_fd[i], server_fd[i]};
    for (int k = 0; k < 2; k++) {
      setsockopt(fds[k], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      fcntl(fds[k], F_SETFL, fcntl(fds[k], F_GETFL) | O_NONBLOCK);
    }
  }
  close(lfd);
}

static void add(int ep, int fd, unsigned events) {
  struct epoll_event e;
  memset(&e, 0, sizeof e);
  e.events = events;
  e.data.fd = fd;
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) != 0) die("epoll_ctl");
}

/* Reads a socket until it is drained (EAGAIN). */
static void drain(int fd) {
  char buf[4 * MSG];
  while (read(fd, buf, sizeof buf) > 0) {
  }
}

static double run_mode(int mode, int n, int passes) {
  static const char msg[MSG];
  struct epoll_event ev[MAX_SOCKETS];
  int outer = epoll_create1(0), inner = -1;
  if (outer < 0) die("epoll_create1");
  if (mode == MODE_NESTED) {
    inner = epoll_create1(0);
    if (inner < 0) die("epoll_create1");
    for (int i = 0; i < n; i++)
      add(inner, server_fd[i], EPOLLIN | EPOLLET);
    add(outer, inner, EPOLLIN);
  } else {
    unsigned events = EPOLLIN | (mode == MODE_EDGE ? EPOLLET : 0);
    for (int i = 0; i < n; i++)
      add(outer, server_fd[i], events);
  }
  double t0 = now_s();
  for (int p = 0; p < passes; p++) {
    for (int i = 0; i < n; i++)
      if (write(client_fd[i], msg, MSG) != MSG) die("write");
    int got = epoll_wait(outer, ev, MAX_SOCKETS, 0);
    if (inner >= 0 && got > 0) got = epoll_wait(inner, ev, MAX_SOCKETS, 0);
    for (int k = 0; k < got; k++)
      drain(ev[k].data.fd);
    epoll_wait(outer, ev, MAX_SOCKETS, 0); /* finds nothing */
  }
  double t = (now_s() - t0) / passes;
  close(outer);
  if (inner >= 0) close(inner);
  for (int i = 0; i < n; i++)
    drain(server_fd[i]); /* a short first wait */
  return t;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 7;
  int passes = argc > 2 ? atoi(argv[2]) : 20000;
  if (n < 1 || n > MAX_SOCKETS || passes < 1) {
    fprintf(stderr, "usage: epoll_modes [SOCKETS 1-%d] [PASSES]\n",
            MAX_SOCKETS);
    return 2;
  }
  connect_pairs(n);
  double t[MODES][ROUNDS];
  for (int r = 0; r < ROUNDS; r++)
    for (int m = 0; m < MODES; m++)
      t[m][r] = run_mode(m, n, passes);
  double level = 0;
  for (int m = 0; m < MODES; m++) {
    qsort(t[m], ROUNDS, sizeof t[m][0], cmp_double);
    double med = t[m][ROUNDS / 2] * 1e9;
    if (m == MODE_LEVEL) level = med;
    printf(
        "%-22s %7.0f ns per pass of %d sockets (%+.0f ns per socket "
        "against level-triggered)\n",
        mode_names[m], med, n, (med - level) / n);
  }
  return 0;
}
#else
int main(void) {
  fprintf(stderr, "epoll_modes: Linux only\n");
  return 0;
}
#endif
