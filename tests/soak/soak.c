/* Load and soak test over loopback TCP (a plain program, public API only).
 *
 * The echo server (handler task per connection) runs in this process, the
 * clients in a forked child with their own loop, so each side has its own
 * descriptor budget (RLIMIT_NOFILE is raised to the hard limit).
 *
 *  1. Load: CONNS connections are opened and held open together; once all
 *     are connected, each echoes 3 lines; then all close.
 *  2. Soak: EXCHANGES request/response exchanges over connections opened
 *     and closed continuously, WORKERS at a time (each connection does 1-40
 *     exchanges). Every request is unique and the client checks each answer
 *     byte for byte, so a lost request hangs or fails and a duplicated or
 *     reordered answer fails; some reads are cancelled while they wait and
 *     issued again (a cancelled read loses nothing). Around them, on both
 *     sides, chaos tasks sleep, cancel each other and time out
 *     (a wait on an event that is never set, ended by a timer).
 *
 * Both processes sample their RSS as exchanges go and print the curve; after
 * warm-up (the first 20% of the exchanges) it must stay within 5%
 * (--no-rss-check to report only, as under valgrind). At the end the server
 * must have answered exactly the requests the client sent, every
 * connection and task must be gone and uva_loop_close must return 0.
 *
 *   soak                      10,000 connections, then 1,000,000 exchanges,
 *                             1,000 at a time
 *   soak --short              500 connections, 20,000 exchanges, 100 at a
 *                             time (CTest; valgrind)
 *   soak --conns N --exchanges M --workers W
 */
#define _GNU_SOURCE
#include <uvasync.h>

#include "co.h" /* CO_BEGIN, CO_CALL, CO_WAIT, CO_END */

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define DIE(...)                                 \
  do {                                           \
    fprintf(stderr, "soak: FAIL: " __VA_ARGS__); \
    fputc('\n', stderr);                         \
    exit(1);                                     \
  } while (0)
#define OK(expr)                                                             \
  do {                                                                       \
    int ok_rc_ = (expr);                                                     \
    if (ok_rc_ != 0)                                                         \
      DIE("%s:%d: %s: %s", __FILE__, __LINE__, #expr, uva_err_name(ok_rc_)); \
  } while (0)

static struct {
  long conns, exchanges, workers;
  int rss_check;
} opt = {10000, 1000000, 1000, 1};

static uint64_t rng_state = 88172645463325252ull;
static uint32_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (uint32_t) (rng_state >> 11);
}

static long rss_kib(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, rss = 0;
  if (f == NULL) return 0;
  if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
  fclose(f);
  return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* ---- RSS curve ------------------------------------------------------------ */

#define MAX_SAMPLES 64
static struct {
  long at[MAX_SAMPLES];  /* exchanges done */
  long kib[MAX_SAMPLES]; /* RSS */
  int n;
  long next;
} curve;

static void sample(long done) {
  if (done < curve.next || curve.n == MAX_SAMPLES) return;
  curve.at[curve.n] = done;
  curve.kib[curve.n] = rss_kib();
  curve.n++;
  curve.next += opt.exchanges / 20;
}

/* Print the curve; 0 if flat within 5% after warm-up. */
static int report_curve(const char *who) {
  long lo = -1, hi = -1;
  printf("soak: %s RSS curve (exchanges: KiB):", who);
  for (int i = 0; i < curve.n; i++) {
    printf("%s %ld: %ld", i % 5 == 0 ? "\n   " : ",", curve.at[i],
           curve.kib[i]);
    if (curve.at[i] >= opt.exchanges / 5) {
      if (lo < 0 || curve.kib[i] < lo) lo = curve.kib[i];
      if (hi < 0 || curve.kib[i] > hi) hi = curve.kib[i];
    }
  }
  double growth = lo > 0 ? 100.0 * (double) (hi - lo) / (double) lo : 0;
  printf("\nsoak: %s RSS after warm-up: %ld .. %ld KiB (%.1f%%)\n", who, lo, hi,
         growth);
  fflush(stdout);
  return growth <= 5.0 ? 0 : 1;
}

/* ---- chaos: tasks that sleep, cancel and time out ----------------------- */

static struct {
  uva_loop_t *loop;
  uva_event_t *never; /* never set: waits on it end by timeout */
  int stop;
  long sleeps, cancels, timeouts;
  int live;
} chaos;

struct victim {
  int pc, rc;
  uva_timer_t *timeout;
  uva_task_t *self;
};

static void on_timeout(uva_timer_t *tm, void *d) {
  struct victim *v = d;
  (void) tm;
  uva_task_cancel(v->self); /* wait_for: the time is up */
}

static void free_victim(void *d) {
  chaos.live--;
  free(d);
}

/* Waits on an event that is never set, until its timer cancels it. */
static int victim_step(uva_task_t *t, int status, void *d) {
  struct victim *v = d;
  if (status == UVA_ECANCELED) {
    chaos.timeouts++;
    uva_timer_close(v->timeout, NULL);
    return UVA_ETIMEDOUT;
  }
  CO_BEGIN(v);
  v->self = t;
  OK(uva_timer_new(&v->timeout, chaos.loop, on_timeout, v, NULL));
  OK(uva_timer_start(v->timeout, rnd() % 4, 0));
  CO_CALL(v, uva_event_wait(chaos.never, t));
  DIE("the never-set event was set");
  CO_END(v);
}

struct chaotic {
  int pc, rc;
  uva_task_t *sleeper;
};

static int chaos_sleeper(uva_task_t *t, int status, void *d) {
  (void) d;
  if (status == UVA_ECANCELED) {
    chaos.cancels++;
    return UVA_ECANCELED;
  }
  int rc = uva_task_sleep(t, 1000 * 1000); /* until cancelled */
  return rc < 0 ? rc : UVA_TASK_PENDING;
}

static void free_chaotic(void *d) {
  chaos.live--;
  free(d);
}

/* Loops until chaos.stop: sleep a little, start a sleeper and a wait with
 * a timeout, sleep, cancel the sleeper. Once stopped, everything it started
 * ends within a few milliseconds, so the loop drains. */
static int chaos_step(uva_task_t *t, int status, void *d) {
  struct chaotic *c = d;
  (void) status;
  CO_BEGIN(c);
  while (!chaos.stop) {
    OK(uva_task_sleep(t, rnd() % 5));
    CO_WAIT(c);
    chaos.sleeps++;
    OK(uva_task_spawn(&c->sleeper, chaos.loop, chaos_sleeper, NULL, NULL));
    {
      struct victim *v = calloc(1, sizeof *v);
      if (v == NULL) DIE("calloc");
      chaos.live++;
      OK(uva_task_spawn(NULL, chaos.loop, victim_step, v, free_victim));
    }
    OK(uva_task_sleep(t, rnd() % 3));
    CO_WAIT(c);
    OK(uva_task_cancel(c->sleeper));
    OK(uva_task_release(c->sleeper));
  }
  CO_END(c);
}

static void chaos_start(uva_loop_t *loop, int n) {
  chaos.loop = loop;
  chaos.stop = 0;
  OK(uva_event_new(&chaos.never, loop));
  for (int i = 0; i < n; i++) {
    struct chaotic *c = calloc(1, sizeof *c);
    uva_task_t *t;
    if (c == NULL) DIE("calloc");
    chaos.live++;
    OK(uva_task_spawn(&t, loop, chaos_step, c, free_chaotic));
    OK(uva_task_release(t));
  }
}

static void chaos_finish(void) {
  if (chaos.live != 0) DIE("%d chaos tasks left", chaos.live);
  uva_event_close(chaos.never);
  chaos.never = NULL;
}

/* ---- server (this process) --------------------------------------------- */

static struct {
  uva_loop_t *loop;
  uva_server_t *server;
  long answered; /* lines echoed */
  long conns;    /* connections accepted */
  long handlers; /* handler tasks alive */
} srv;

struct handler {
  int pc, rc;
  uva_stream_t *s;
  size_t len;
  char line[128];
};

static void free_handler(void *d) {
  srv.handlers--;
  free(d);
}

static int handler_step(uva_task_t *t, int status, void *d) {
  struct handler *h = d;
  if (status == UVA_ECANCELED) {
    uva_stream_close(h->s, NULL, NULL);
    return UVA_ECANCELED;
  }
  CO_BEGIN(h);
  for (;;) {
    CO_CALL(h, uva_stream_read_line(&h->len, h->s, t, h->line, sizeof h->line));
    if (h->rc != 0 || h->len == 0) break; /* EOF (or a reset): done */
    h->rc = uva_stream_write(NULL, h->s, h->line, h->len);
    if (h->rc != 0) break;
    srv.answered++;
    if (srv.answered >= 3 * opt.conns) sample(srv.answered - 3 * opt.conns);
  }
  uva_stream_close(h->s, NULL, NULL);
  CO_END(h);
}

static void on_conn(uva_server_t *sv, uva_stream_t *s, void *d) {
  struct handler *h = calloc(1, sizeof *h);
  (void) sv;
  (void) d;
  if (h == NULL) DIE("calloc");
  h->s = s;
  srv.conns++;
  srv.handlers++;
  OK(uva_task_spawn(NULL, srv.loop, handler_step, h, free_handler));
}

/* Waits for the client's report on a pipe, then closes the server. */
struct waiter {
  int pc, rc;
  uva_stream_t *pipe;
  size_t len;
  char msg[64];
};

static long client_sent = -1;

static int report_waiter(uva_task_t *t, int status, void *d) {
  struct waiter *w = d;
  (void) status;
  CO_BEGIN(w);
  CO_CALL(w,
          uva_stream_read_line(&w->len, w->pipe, t, w->msg, sizeof w->msg - 1));
  if (w->rc == 0 && w->len > 0) {
    w->msg[w->len] = '\0';
    client_sent = atol(w->msg);
  }
  uva_stream_close(w->pipe, NULL, NULL);
  uva_server_close(srv.server, NULL, NULL);
  chaos.stop = 1;
  CO_END(w);
}

/* ---- client (the child) ---------------------------------------------------- */

static struct {
  uva_loop_t *loop;
  int port;
  /* load phase */
  uva_sem_t *connecting; /* bounds the SYNs in flight */
  uva_event_t *all_open, *all_done;
  long open, echoed1, closed1;
  /* soak phase */
  long started, verified, cancelled_reads, connections;
  long workers_live;
} cli;

struct conn {
  int pc, rc, id;
  uva_stream_t *s;
  long left, seq;
  size_t len, want;
  char req[96], resp[128];
};

/* One echo: send c->req (set up by the caller), read the answer, check it.
 * Some reads cancel themselves while waiting and read again. */
#define CO_EXCHANGE(c, t, cancel_some)                                         \
  do {                                                                         \
    c->want = strlen(c->req);                                                  \
    c->rc = uva_stream_write(NULL, c->s, c->req, c->want);                     \
    if (c->rc != 0) DIE("write: %s", uva_err_name(c->rc));                     \
    c->pc = __LINE__;                                                          \
    CO_FALLTHROUGH;                                                            \
    case __LINE__:                                                             \
      c->rc = uva_stream_read_line(&c->len, c->s, t, c->resp, sizeof c->resp); \
      if (c->rc == UVA_EAGAIN) {                                               \
        if ((cancel_some) && (rnd() & 63) == 0) {                              \
          cli.cancelled_reads++;                                               \
          OK(uva_task_cancel(t)); /* resumed with ECANCELED: read again */     \
        }                                                                      \
        return UVA_TASK_PENDING;                                               \
      }                                                                        \
      if (c->rc != 0) DIE("read_line: %s", uva_err_name(c->rc));               \
      if (c->len != c->want || memcmp(c->resp, c->req, c->want) != 0)          \
        DIE("wrong answer '%.*s' to '%s'", (int) c->len, c->resp, c->req);     \
  } while (0)

static void free_conn(void *d) { free(d); }

/* Load phase: connect, wait for all, echo 3 lines, wait for all, close. */
static int holder_step(uva_task_t *t, int status, void *d) {
  struct conn *c = d;
  (void) status; /* never cancelled (the exchange re-reads after ECANCELED) */
  CO_BEGIN(c);
  CO_CALL(c, uva_sem_acquire(cli.connecting, t));
  OK(c->rc);
  OK(uva_tcp_connect(&c->s, cli.loop, "127.0.0.1", cli.port));
  CO_CALL(c, uva_stream_wait_connected(c->s, t));
  OK(c->rc);
  OK(uva_sem_release(cli.connecting));
  if (++cli.open == opt.conns) {
    printf("soak: %ld connections open at once\n", cli.open);
    fflush(stdout);
    OK(uva_event_set(cli.all_open));
  }
  CO_CALL(c, uva_event_wait(cli.all_open, t));
  OK(c->rc);
  for (c->seq = 0; c->seq < 3; c->seq++) {
    snprintf(c->req, sizeof c->req, "hold %d %ld %u\n", c->id, c->seq, rnd());
    CO_EXCHANGE(c, t, 0);
  }
  if (++cli.echoed1 == opt.conns) OK(uva_event_set(cli.all_done));
  CO_CALL(c, uva_event_wait(cli.all_done, t));
  OK(c->rc);
  uva_stream_close(c->s, NULL, NULL);
  if (++cli.closed1 == opt.conns) chaos.stop = 1; /* the phase is over */
  CO_END(c);
}

/* Soak phase: connect, 1-40 exchanges, close; again until the budget is
 * spent. */
static int worker_step(uva_task_t *t, int status, void *d) {
  struct conn *c = d;
  (void) status; /* ECANCELED only from our own cancelled reads */
  CO_BEGIN(c);
  while (cli.started < opt.exchanges) {
    OK(uva_tcp_connect(&c->s, cli.loop, "127.0.0.1", cli.port));
    cli.connections++;
    CO_CALL(c, uva_stream_wait_connected(c->s, t));
    OK(c->rc);
    c->left = 1 + rnd() % 40;
    while (c->left-- > 0 && cli.started < opt.exchanges) {
      cli.started++;
      snprintf(c->req, sizeof c->req, "w%d c%ld s%ld %u %u\n", c->id,
               cli.connections, c->seq++, rnd(), rnd());
      CO_EXCHANGE(c, t, 1);
      cli.verified++;
      sample(cli.verified);
    }
    OK(uva_stream_close(c->s, NULL, NULL));
    c->s = NULL;
  }
  if (--cli.workers_live == 0) chaos.stop = 1;
  CO_END(c);
}

static int run_client(int port, int report_fd) {
  memset(&chaos, 0, sizeof chaos);
  memset(&curve, 0, sizeof curve);
  cli.port = port;
  OK(uva_loop_new(&cli.loop));
  chaos_start(cli.loop, 20);

  /* 1. Load. */
  OK(uva_sem_new(&cli.connecting, cli.loop, 256, 0));
  OK(uva_event_new(&cli.all_open, cli.loop));
  OK(uva_event_new(&cli.all_done, cli.loop));
  for (long i = 0; i < opt.conns; i++) {
    struct conn *c = calloc(1, sizeof *c);
    if (c == NULL) DIE("calloc");
    c->id = (int) i;
    OK(uva_task_spawn(NULL, cli.loop, holder_step, c, free_conn));
  }
  OK(uva_loop_run(cli.loop, UVA_RUN_DEFAULT));
  if (cli.open != opt.conns || cli.echoed1 != opt.conns ||
      cli.closed1 != opt.conns)
    DIE("load: %ld open, %ld echoed, %ld closed of %ld", cli.open, cli.echoed1,
        cli.closed1, opt.conns);
  printf(
      "soak: load: %ld connections held open together, each echoed 3 lines\n",
      opt.conns);
  fflush(stdout);
  uva_sem_close(cli.connecting);
  uva_event_close(cli.all_open);
  uva_event_close(cli.all_done);
  chaos_finish();

  /* 2. Soak. */
  chaos_start(cli.loop, 20);
  for (long i = 0; i < opt.workers; i++) {
    struct conn *c = calloc(1, sizeof *c);
    if (c == NULL) DIE("calloc");
    c->id = (int) i;
    cli.workers_live++;
    OK(uva_task_spawn(NULL, cli.loop, worker_step, c, free_conn));
  }
  OK(uva_loop_run(cli.loop, UVA_RUN_DEFAULT));
  if (cli.verified != opt.exchanges || cli.workers_live != 0)
    DIE("soak: %ld of %ld exchanges verified", cli.verified, opt.exchanges);
  chaos_finish();
  printf(
      "soak: client: %ld exchanges verified over %ld connections, "
      "%ld reads cancelled and reissued; chaos: %ld sleeps, %ld cancels, "
      "%ld timeouts\n",
      cli.verified, cli.connections, cli.cancelled_reads, chaos.sleeps,
      chaos.cancels, chaos.timeouts);

  /* Tell the server how many requests were answered and verified. */
  char msg[32];
  int n = snprintf(msg, sizeof msg, "%ld\n", cli.verified);
  if (write(report_fd, msg, (size_t) n) != n) DIE("report");
  close(report_fd);
  OK(uva_loop_close(cli.loop));
  int flat = report_curve("client");
  return flat != 0 && opt.rss_check ? 1 : 0;
}

/* ---- main ---------------------------------------------------------------- */

static void raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) DIE("getrlimit");
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) DIE("setrlimit");
  if ((long) rl.rlim_cur < opt.conns + 200)
    DIE("RLIMIT_NOFILE hard limit %ld is below %ld connections",
        (long) rl.rlim_cur, opt.conns);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--short") == 0) {
      opt.conns = 500;
      opt.exchanges = 20000;
      opt.workers = 100;
    } else if (strcmp(argv[i], "--no-rss-check") == 0) {
      opt.rss_check = 0;
    } else if (i + 1 < argc && strcmp(argv[i], "--conns") == 0) {
      opt.conns = atol(argv[++i]);
    } else if (i + 1 < argc && strcmp(argv[i], "--exchanges") == 0) {
      opt.exchanges = atol(argv[++i]);
    } else if (i + 1 < argc && strcmp(argv[i], "--workers") == 0) {
      opt.workers = atol(argv[++i]);
    } else {
      fprintf(stderr,
              "usage: soak [--short] [--conns N] [--exchanges M] "
              "[--workers W] [--no-rss-check]\n");
      return 2;
    }
  }
  raise_nofile();
  signal(SIGPIPE, SIG_IGN);
  OK(uva_loop_new(&srv.loop));
  OK(uva_tcp_listen(&srv.server, srv.loop, "127.0.0.1", 0, 4096));
  int port = 0;
  OK(uva_server_address(srv.server, NULL, 0, &port));
  int report[2];
  if (pipe(report) != 0) DIE("pipe");
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) DIE("fork");
  if (pid == 0) { /* the client: a fresh loop of its own */
    close(report[0]);
    /* the server's loop belongs to the parent: leave it alone here */
    return run_client(port, report[1]);
  }
  close(report[1]);
  OK(uva_server_on_connection(srv.server, on_conn, NULL));
  chaos_start(srv.loop, 20);
  struct waiter *w = calloc(1, sizeof *w);
  if (w == NULL) DIE("calloc");
  OK(uva_stream_open_fd(&w->pipe, srv.loop, report[0]));
  OK(uva_task_spawn(NULL, srv.loop, report_waiter, w, free));
  OK(uva_loop_run(srv.loop, UVA_RUN_DEFAULT));
  int wstatus = 0;
  if (waitpid(pid, &wstatus, 0) != pid) DIE("waitpid");
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) DIE("client failed");
  chaos_finish();
  if (srv.handlers != 0) DIE("%ld handler tasks left", srv.handlers);
  OK(uva_loop_close(srv.loop));
  printf(
      "soak: server: %ld connections, %ld lines answered; chaos: %ld sleeps, "
      "%ld cancels, %ld timeouts\n",
      srv.conns, srv.answered, chaos.sleeps, chaos.cancels, chaos.timeouts);
  /* Each request answered exactly once: the client verified every answer
   * in order, and the server answered no more than it was asked. */
  if (client_sent != opt.exchanges ||
      srv.answered != 3 * opt.conns + opt.exchanges)
    DIE("client verified %ld, server answered %ld (expected %ld + %ld)",
        client_sent, srv.answered, 3 * opt.conns, opt.exchanges);
  int flat = report_curve("server");
  if (flat != 0 && opt.rss_check) DIE("server RSS grew by more than 5%%");
  printf("soak: PASS\n");
  return 0;
}
