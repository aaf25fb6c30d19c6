/* bench_raw_echo_server — the raw libuv baseline of the echo benchmark.
 *
 *   bench_raw_echo_server [host] [port]     (default 127.0.0.1 0)
 *
 * The classic libuv echo server (as in libuv's own benchmarks): uv_listen,
 * uv_accept, uv_read_start with a 64 KiB buffer per read (taken from a
 * free list), and one uv_write per read that owns that buffer (returned to
 * the list in the write callback). uv_write writes at once when nothing is queued, so it is the
 * same write path as uvasync's uv_try_write + queue. No flow control (an
 * echo client that reads its echoes does not need it).
 *
 * Prints the bound port on stdout line 1, runs until SIGTERM/SIGINT, then
 * prints "user_s=.. sys_s=.." (getrusage of the whole process) on line 2.
 * Links only libuv (bench/bench_raw_*.c, see CMakeLists.txt).
 */
#include <uv.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>

#define READ_BUF (64 * 1024)

typedef struct {
  uv_write_t req;
  uv_buf_t buf;
} write_req_t;

static uv_loop_t *loop;
static uv_tcp_t server;
static uv_signal_t sig_term, sig_int;

static void on_close(uv_handle_t *h) { free(h); }

/* Read buffers are recycled through a free list: a plain malloc/free of
 * 64 KiB per read makes glibc trim and regrow the heap (a brk syscall and
 * fresh zeroed pages every few round trips), which would measure the
 * allocator, not libuv. */
#define FREE_MAX 256
static char *free_bufs[FREE_MAX];
static int nfree;

static char *buf_get(void) {
  return nfree > 0 ? free_bufs[--nfree] : malloc(READ_BUF);
}

static void buf_put(char *p) {
  if (p == NULL) return;
  if (nfree < FREE_MAX)
    free_bufs[nfree++] = p;
  else
    free(p);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void) h;
  (void) suggested;
  buf->base = buf_get();
  buf->len = buf->base != NULL ? READ_BUF : 0;
}

static void after_write(uv_write_t *req, int status) {
  write_req_t *wr = (write_req_t *) req;
  uv_handle_t *h = (uv_handle_t *) req->handle;
  buf_put(wr->buf.base);
  free(wr);
  if (status < 0 && !uv_is_closing(h)) uv_close(h, on_close);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  if (nread > 0) {
    write_req_t *wr = malloc(sizeof *wr);
    if (wr == NULL) abort();
    wr->buf = uv_buf_init(buf->base, (unsigned) nread);
    if (uv_write(&wr->req, s, &wr->buf, 1, after_write) != 0) {
      buf_put(wr->buf.base);
      free(wr);
      uv_close((uv_handle_t *) s, on_close);
    }
    return;
  }
  buf_put(buf->base);
  if (nread < 0 && !uv_is_closing((uv_handle_t *) s))
    uv_close((uv_handle_t *) s, on_close); /* EOF or error */
}

static void on_connection(uv_stream_t *srv, int status) {
  if (status < 0) return;
  uv_tcp_t *c = malloc(sizeof *c);
  if (c == NULL) abort();
  uv_tcp_init(loop, c);
  if (uv_accept(srv, (uv_stream_t *) c) != 0 ||
      uv_tcp_nodelay(c, 1) != 0 || /* as bench_echo_server */
      uv_read_start((uv_stream_t *) c, on_alloc, on_read) != 0)
    uv_close((uv_handle_t *) c, on_close);
}

static void on_signal(uv_signal_t *h, int signum) {
  (void) h;
  (void) signum;
  uv_stop(loop);
}

int main(int argc, char **argv) {
  const char *host = argc > 1 ? argv[1] : "127.0.0.1";
  int port = argc > 2 ? atoi(argv[2]) : 0;
  struct sockaddr_in addr;
  signal(SIGPIPE, SIG_IGN);
  loop = uv_default_loop();
  if (uv_ip4_addr(host, port, &addr) != 0) {
    fprintf(stderr, "bench_raw_echo_server: bad address %s\n", host);
    return 2;
  }
  uv_tcp_init(loop, &server);
  int rc = uv_tcp_bind(&server, (const struct sockaddr *) &addr, 0);
  if (rc == 0) rc = uv_listen((uv_stream_t *) &server, 511, on_connection);
  if (rc != 0) {
    fprintf(stderr, "bench_raw_echo_server: listen: %s\n", uv_strerror(rc));
    return 1;
  }
  struct sockaddr_storage ss;
  int len = sizeof ss;
  uv_tcp_getsockname(&server, (struct sockaddr *) &ss, &len);
  printf("%d\n", ntohs(((struct sockaddr_in *) &ss)->sin_port));
  fflush(stdout);

  uv_signal_init(loop, &sig_term);
  uv_signal_start(&sig_term, on_signal, SIGTERM);
  uv_signal_init(loop, &sig_int);
  uv_signal_start(&sig_int, on_signal, SIGINT);
  uv_run(loop, UV_RUN_DEFAULT);

  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("user_s=%.6f sys_s=%.6f\n",
         (double) ru.ru_utime.tv_sec + (double) ru.ru_utime.tv_usec * 1e-6,
         (double) ru.ru_stime.tv_sec + (double) ru.ru_stime.tv_usec * 1e-6);
  return 0;
}
