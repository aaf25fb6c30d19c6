/* echo_client — send lines to an echo server and print what comes back.
 *
 *   echo_client host port message...
 *
 * Connects to host:port (a name or a numeric address, resolved
 * asynchronously by uva_tcp_connect), then for each message: writes it
 * followed by '\n', reads the echo with uva_stream_read_line and prints it.
 * The task closes the stream when it finishes (uva_stream_close flushes
 * first); uva_loop_run returns once that close has completed. Exit
 * status 0 when every echo matched what was sent.
 *
 * One task does it all, as a small state machine; each state makes one
 * "call again" call: UVA_EAGAIN means the task waits, the step returns
 * UVA_TASK_PENDING and repeats the same call when it is woken.
 *
 * C99, only <uvasync.h> and libc.
 */
#include <uvasync.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { CONNECTING, SENDING, RECEIVING } state_t;

typedef struct {
  uva_stream_t *stream;
  char **msgs;
  int nmsgs;
  int i; /* the message being sent / echoed */
  state_t state;
  char *line; /* the message + '\n' */
  char *buf;  /* the echo */
  size_t buflen;
  int mismatches;
} client;

static int fail(const char *what, int rc) {
  fprintf(stderr, "echo_client: %s: %s (%s)\n", what, uva_err_name(rc),
          uva_strerror(rc));
  return rc;
}

static int client_run(uva_task_t *task, int status, client *c) {
  int rc;
  if (status == UVA_ECANCELED) return UVA_ECANCELED;
  for (;;) {
    switch (c->state) {
      case CONNECTING:
        rc = uva_stream_wait_connected(c->stream, task);
        if (rc == UVA_EAGAIN) return UVA_TASK_PENDING;
        if (rc < 0) return fail("connect", rc);
        c->state = SENDING;
        break;

      case SENDING: {
        if (c->i == c->nmsgs) return 0; /* all echoed */
        size_t n = strlen(c->msgs[c->i]);
        memcpy(c->line, c->msgs[c->i], n);
        c->line[n] = '\n';
        /* Queued bytes are flushed in the background; no need to drain
         * before reading: the echo cannot come before they are sent. */
        rc = uva_stream_write(NULL, c->stream, c->line, n + 1);
        if (rc < 0) return fail("write", rc);
        c->state = RECEIVING;
        break;
      }

      case RECEIVING: {
        size_t len = 0;
        rc = uva_stream_read_line(&len, c->stream, task, c->buf, c->buflen);
        if (rc == UVA_EAGAIN) return UVA_TASK_PENDING;
        if (rc < 0) return fail("read_line", rc);
        if (len == 0) {
          fprintf(stderr, "echo_client: server closed the connection\n");
          return UVA_EOF;
        }
        size_t n = strlen(c->msgs[c->i]);
        int same = len == n + 1 && memcmp(c->buf, c->line, n + 1) == 0;
        if (len > 0 && c->buf[len - 1] == '\n') len--;
        printf("%.*s\n", (int) len, c->buf);
        if (!same) {
          fprintf(stderr, "echo_client: echo %d differs from what was sent\n",
                  c->i + 1);
          c->mismatches++;
        }
        c->i++;
        c->state = SENDING;
        break;
      }
    }
  }
}

static int client_step(uva_task_t *task, int status, void *data) {
  client *c = data;
  int rc = client_run(task, status, c);
  if (rc <= 0) { /* finished: close the stream (queued bytes are flushed) */
    uva_stream_close(c->stream, NULL, NULL);
    c->stream = NULL;
  }
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: echo_client host port message...\n");
    return 2;
  }
  const char *host = argv[1];
  char *end = NULL;
  long port = strtol(argv[2], &end, 10);
  if (*argv[2] == '\0' || *end != '\0' || port <= 0 || port > 65535) {
    fprintf(stderr, "echo_client: bad port '%s'\n", argv[2]);
    return 2;
  }

  client c;
  memset(&c, 0, sizeof c);
  c.msgs = argv + 3;
  c.nmsgs = argc - 3;
  size_t longest = 0;
  for (int i = 0; i < c.nmsgs; i++) {
    size_t n = strlen(c.msgs[i]);
    if (n > longest) longest = n;
    if (memchr(c.msgs[i], '\n', n) != NULL) {
      fprintf(stderr, "echo_client: message %d contains a newline\n", i + 1);
      return 2;
    }
  }
  c.buflen = longest + 1;
  c.line = malloc(c.buflen);
  c.buf = malloc(c.buflen);
  if (c.line == NULL || c.buf == NULL) {
    fprintf(stderr, "echo_client: out of memory\n");
    return 1;
  }

  uva_loop_t *loop = NULL;
  int rc = uva_loop_new(&loop);
  if (rc < 0) return fail("uva_loop_new", rc), 1;
  rc = uva_tcp_connect(&c.stream, loop, host, (int) port);
  if (rc < 0) return fail("uva_tcp_connect", rc), 1;
  /* An echoed line is as long as the longest message (+ '\n'). */
  if (c.buflen > 65536)
    uva_stream_set(c.stream, UVA_STREAM_LINE_LIMIT, c.buflen);

  uva_task_t *task = NULL;
  rc = uva_task_spawn(&task, loop, client_step, &c, NULL);
  if (rc < 0) return fail("uva_task_spawn", rc), 1;
  rc = uva_loop_run(loop, UVA_RUN_DEFAULT);
  if (rc < 0) return fail("uva_loop_run", rc), 1;

  int result = UVA_EINTERNAL;
  uva_task_result(&result, task);
  uva_task_release(task);
  rc = uva_loop_close(loop);
  if (rc < 0) fail("uva_loop_close", rc);
  free(c.line);
  free(c.buf);
  return result == 0 && c.mismatches == 0 && rc == 0 ? 0 : 1;
}
