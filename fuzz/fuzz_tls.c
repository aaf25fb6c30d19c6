/* libFuzzer target: TLS records from a hostile peer, to the handshake and
 * to the reader.
 *
 * Two core streams on a socketpair run TLS (the server's certificate is
 * made once at start-up with OpenSSL's API). The input's first byte picks
 * the mode:
 *
 *  - handshake (even): the input's bytes are all the server hears, in
 *    chunks whose sizes the input picks, as if from a client: the
 *    handshake must end with an error code (or, never in practice, 0),
 *    never crash or hang, and no plaintext may appear.
 *  - reader (odd): a real handshake between the two streams, then the
 *    client sends "hello" through TLS, then the input's bytes go straight
 *    onto the client's socket, each piece wrapped in a record header
 *    (application data, TLS 1.2 version, the piece's length) when the
 *    second byte's low bit is set. The server's reads must return "hello"
 *    first and then either more of nothing or an error code: no byte that
 *    was not sent through TLS.
 *
 * In both, the loop must close (uva_loop_close returns 0) and
 * LeakSanitizer sees no leak. Input layout: [mode][flags] pieces... where
 * each piece is [len][len bytes]. */
#include <uvasync.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHECK(cond)                                                        \
  do {                                                                     \
    if (!(cond)) {                                                         \
      fprintf(stderr, "fuzz_tls: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                             \
    }                                                                      \
  } while (0)

static uva_tls_ctx_t *server_ctx, *client_ctx;

static char *pem_of(X509 *x, EVP_PKEY *k, size_t *len) {
  BIO *b = BIO_new(BIO_s_mem());
  if (x != NULL) PEM_write_bio_X509(b, x);
  if (k != NULL) PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
  char *p;
  long n = BIO_get_mem_data(b, &p);
  char *out = malloc((size_t) n);
  memcpy(out, p, (size_t) n);
  *len = (size_t) n;
  BIO_free(b);
  return out;
}

static void setup(void) {
  EVP_PKEY *k = EVP_EC_gen("P-256");
  X509 *x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 24 * 3600);
  X509_set_pubkey(x, k);
  X509_NAME *name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             (const unsigned char *) "localhost", -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509_sign(x, k, EVP_sha256());
  size_t cl, kl;
  char *cert = pem_of(x, NULL, &cl), *key = pem_of(NULL, k, &kl);
  CHECK(uva_tls_ctx_new(&server_ctx, UVA_TLS_SERVER) == 0);
  CHECK(uva_tls_ctx_use_cert_pem(server_ctx, cert, cl, key, kl, NULL) == 0);
  CHECK(uva_tls_ctx_new(&client_ctx, UVA_TLS_CLIENT) == 0);
  CHECK(uva_tls_ctx_set_verify(client_ctx, UVA_TLS_VERIFY_NONE) == 0);
  /* No resumption: every input starts from the same state. */
  CHECK(uva_tls_ctx_set_session_cache(client_ctx, 0) == 0);
  CHECK(uva_tls_ctx_set_session_cache(server_ctx, 0) == 0);
  free(cert);
  free(key);
  X509_free(x);
  EVP_PKEY_free(k);
}

static struct {
  const uint8_t *data;
  size_t len, pos;
  int mode, wrap;
  uva_stream_t *srv, *cli;
  int raw; /* the client's descriptor (reader mode) */
  int srv_hs, cli_hs, done;
  size_t got;
  char buf[4096];
} F;

/* The next piece of the input: its bytes and length (0 at the end). */
static size_t next_piece(const uint8_t **p) {
  if (F.pos >= F.len) return 0;
  size_t n = F.data[F.pos++];
  if (n == 0) n = 1;
  if (n > F.len - F.pos) n = F.len - F.pos;
  *p = F.data + F.pos;
  F.pos += n;
  return n;
}

static void send_all(int fd, const void *p, size_t n) {
  const char *c = (const char *) p;
  while (n > 0) {
    ssize_t w = write(fd, c, n);
    if (w <= 0) return; /* the server went away: fine */
    c += w;
    n -= (size_t) w;
  }
}

/* The server: handshake, then read until the end or an error. */
struct srv_ctx {
  int pc;
};

static int step_server(uva_task_t *t, int status, void *d) {
  struct srv_ctx *c = (struct srv_ctx *) d;
  (void) status;
  size_t n;
  int rc;
  switch (c->pc) {
    case 0:
      rc = uva_tls_handshake(F.srv, t);
      if (rc == UVA_EAGAIN) return UVA_TASK_PENDING;
      F.srv_hs = rc;
      CHECK(rc <= 0);
      if (rc != 0) break;
      c->pc = 1;
      /* fall through */
    case 1:
      for (;;) {
        rc = uva_stream_read(&n, F.srv, t, F.buf + F.got, sizeof F.buf - F.got);
        if (rc == UVA_EAGAIN) return UVA_TASK_PENDING;
        if (rc != 0 || n == 0) break;
        F.got += n;
        CHECK(memcmp(F.buf, "hello", F.got < 5 ? F.got : 5) == 0);
        CHECK(F.got <= 5); /* nothing but what the client sent */
      }
      break;
  }
  uva_stream_close(F.srv, NULL, NULL);
  F.done = 1;
  return 0;
}

/* The client (reader mode): handshake, "hello", then the input raw. */
static int step_client(uva_task_t *t, int status, void *d) {
  int *pc = (int *) d;
  (void) status;
  if (*pc == 0) {
    int rc = uva_tls_handshake(F.cli, t);
    if (rc == UVA_EAGAIN) return UVA_TASK_PENDING;
    F.cli_hs = rc;
    CHECK(rc == 0); /* two honest ends */
    CHECK(uva_stream_write(NULL, F.cli, "hello", 5) == 0);
    *pc = 1;
    return UVA_TASK_YIELD;
  }
  if (*pc == 1) { /* "hello" is on its way before the garbage */
    int rc = uva_stream_drain(F.cli, t);
    if (rc == UVA_EAGAIN) return UVA_TASK_PENDING;
    CHECK(uva_stream_fileno(&F.raw, F.cli) == 0);
    const uint8_t *p;
    size_t n;
    while ((n = next_piece(&p)) > 0) {
      if (F.wrap) {
        uint8_t hdr[5] = {0x17, 0x03, 0x03, (uint8_t) (n >> 8), (uint8_t) n};
        send_all(F.raw, hdr, sizeof hdr);
      }
      send_all(F.raw, p, n);
    }
    shutdown(F.raw, SHUT_WR);
    *pc = 2;
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int ready;
  if (!ready) {
    setup();
    ready = 1;
  }
  if (size < 2) return 0;
  memset(&F, 0, sizeof F);
  F.mode = data[0] & 1;
  F.wrap = data[1] & 1;
  F.data = data + 2;
  F.len = size - 2;
  uva_loop_t *loop;
  CHECK(uva_loop_new(&loop) == 0);
  int fds[2];
  CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
  CHECK(uva_stream_open_fd(&F.srv, loop, fds[1]) == 0);
  CHECK(uva_tls_start(F.srv, server_ctx, NULL) == 0);
  struct srv_ctx sc = {0};
  int cpc = 0;
  CHECK(uva_task_spawn(NULL, loop, step_server, &sc, NULL) == 0);
  if (F.mode == 0) { /* the input is the client */
    const uint8_t *p;
    size_t n;
    while ((n = next_piece(&p)) > 0) {
      send_all(fds[0], p, n);
      CHECK(uva_loop_run(loop, UVA_RUN_NOWAIT) == 0);
    }
    shutdown(fds[0], SHUT_WR);
  } else {
    CHECK(uva_stream_open_fd(&F.cli, loop, fds[0]) == 0);
    fds[0] = -1;
    CHECK(uva_tls_start(F.cli, client_ctx, "localhost") == 0);
    CHECK(uva_task_spawn(NULL, loop, step_client, &cpc, NULL) == 0);
  }
  CHECK(uva_loop_run(loop, UVA_RUN_DEFAULT) == 0);
  CHECK(F.done);
  if (F.mode == 0) CHECK(F.got == 0); /* no plaintext from garbage */
  if (F.mode == 1) {
    CHECK(F.got == 5 || F.srv_hs != 0);
    uva_stream_close(F.cli, NULL, NULL);
  }
  if (fds[0] >= 0) close(fds[0]);
  CHECK(uva_loop_run(loop, UVA_RUN_DEFAULT) == 0);
  CHECK(uva_loop_close(loop) == 0);
  return 0;
}
