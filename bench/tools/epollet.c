/* An experiment, not part of the library: LD_PRELOAD this into an echo
 * server and its connected TCP sockets are registered edge-triggered.
 *
 * libuv registers every descriptor level-triggered, so each one an
 * epoll_wait reports goes back on the ready list and the next epoll_wait
 * polls it again (tcp_poll) only to find it drained; mio, under tokio,
 * registers edge-triggered and skips that poll. This library lets a
 * benchmark measure what the core would gain with edge-triggered polling
 * (bench/README.md, "The last 1% at 1 and 10 KiB") without changing libuv
 * or the core: it wraps epoll_ctl, and for ADD and MOD of a connected
 * stream socket (not a listening one) adds EPOLLET.
 *
 * Only for the echo benchmarks: edge-triggered polling is correct only for
 * a program that reads until a short read every time it is told a socket
 * is readable. The core does not promise that (a stream whose buffer is
 * full stops reading and waits to be told again), so a server run with
 * this library may stall where that happens. It did not in the Rust echo
 * server under the echo loads, whose reads go to the reader's buffer.
 *
 * Built by run_rust.py --edge-triggered:
 *   cc -O2 -shared -fPIC -o epollet.so bench/tools/epollet.c -ldl */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/socket.h>

typedef int (*epoll_ctl_fn)(int, int, int, struct epoll_event *);

static int is_connected_stream(int fd) {
  int type = 0, listening = 0;
  socklen_t len = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) return 0;
  if (type != SOCK_STREAM) return 0;
  len = sizeof listening;
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0)
    return 0;
  return !listening;
}

int epoll_ctl(int epfd, int op, int fd, struct epoll_event *event) {
  static epoll_ctl_fn real;
  if (real == NULL) real = (epoll_ctl_fn)dlsym(RTLD_NEXT, "epoll_ctl");
  if ((op == EPOLL_CTL_ADD || op == EPOLL_CTL_MOD) && event != NULL &&
      is_connected_stream(fd)) {
    struct epoll_event edge = *event;
    edge.events |= EPOLLET;
    return real(epfd, op, fd, &edge);
  }
  return real(epfd, op, fd, event);
}
