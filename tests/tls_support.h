/* uvasync C test suite — what the TLS suites (tests/test_tls_*.c) share:
 * certificates made at test time with OpenSSL's API (a throwaway CA, a
 * server certificate for localhost and 127.0.0.1, an expired one, one for
 * another host, a second server certificate for SNI, a client certificate
 * for mutual TLS, and a self-signed one no CA vouches for), and peers
 * nobody here wrote: `openssl s_server` and `openssl s_client`, started on
 * 127.0.0.1 by the test, killed when it ends (and by the kernel if the
 * test process dies first: PR_SET_PDEATHSIG).
 *
 * Header-only (static functions); cmake/uvasync_tests.cmake links the TLS
 * suites with OpenSSL. The library under test is still used only through
 * <uvasync.h>. */
#ifndef UVASYNC_TESTS_TLS_SUPPORT_H
#define UVASYNC_TESTS_TLS_SUPPORT_H

#include "support.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/prctl.h>

/* ---- certificates -------------------------------------------------------- */

/* Files in a fresh directory under /tmp (removed by pki_free). */
struct pki {
  char dir[128];
  char ca[192];     /* the CA's certificate (trust this) */
  char server[192]; /* localhost, 127.0.0.1; signed by the CA */
  char server_key[192];
  char sni[192]; /* a second one for localhost (CN "sni-localhost") */
  char sni_key[192];
  char expired[192]; /* localhost, expired an hour ago */
  char expired_key[192];
  char other[192]; /* for other.example only */
  char other_key[192];
  char client[192]; /* CN "tls-test-client", for mutual TLS */
  char client_key[192];
  char selfsigned[192]; /* localhost, signed by itself */
  char selfsigned_key[192];
};

static UVT_UNUSED void tls_write_pem(const char *path, X509 *x, EVP_PKEY *k) {
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f, "%s", path);
  if (x != NULL) cr_assert(PEM_write_X509(f, x));
  if (k != NULL)
    cr_assert(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL));
  fclose(f);
}

static UVT_UNUSED void tls_add_ext(X509 *x, X509 *issuer, int nid,
                                   const char *value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
  X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
  cr_assert_not_null(e, "extension %d = %s", nid, value);
  cr_assert(X509_add_ext(x, e, -1));
  X509_EXTENSION_free(e);
}

/* A certificate for key, valid from now + not_before to now + not_after
 * (seconds), signed by issuer (NULL: by itself). san NULL: a CA. */
static UVT_UNUSED X509 *tls_make_cert(EVP_PKEY *key, const char *cn,
                                      const char *san, X509 *issuer,
                                      EVP_PKEY *issuer_key, long not_before,
                                      long not_after, long serial) {
  X509 *x = X509_new();
  cr_assert_not_null(x);
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
  X509_gmtime_adj(X509_getm_notBefore(x), not_before);
  X509_gmtime_adj(X509_getm_notAfter(x), not_after);
  X509_set_pubkey(x, key);
  X509_NAME *name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             (const unsigned char *) cn, -1, -1, 0);
  X509_set_issuer_name(x,
                       issuer != NULL ? X509_get_subject_name(issuer) : name);
  tls_add_ext(x, issuer, NID_subject_key_identifier, "hash");
  if (san == NULL) {
    tls_add_ext(x, issuer, NID_basic_constraints, "critical,CA:TRUE");
    tls_add_ext(x, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    tls_add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE");
    tls_add_ext(x, issuer, NID_subject_alt_name, san);
    tls_add_ext(x, issuer, NID_ext_key_usage, "serverAuth,clientAuth");
    if (issuer != NULL)
      tls_add_ext(x, issuer, NID_authority_key_identifier, "keyid");
  }
  cr_assert(X509_sign(x, issuer_key != NULL ? issuer_key : key, EVP_sha256()));
  return x;
}

static UVT_UNUSED void tls_leaf(struct pki *p, char *cert, char *keyf,
                                const char *file, const char *cn,
                                const char *san, X509 *ca, EVP_PKEY *ca_key,
                                long not_before, long not_after, long serial) {
  EVP_PKEY *k = EVP_EC_gen("P-256");
  cr_assert_not_null(k);
  X509 *x =
      tls_make_cert(k, cn, san, ca, ca_key, not_before, not_after, serial);
  snprintf(cert, 192, "%s/%s.pem", p->dir, file);
  snprintf(keyf, 192, "%s/%s.key", p->dir, file);
  tls_write_pem(cert, x, NULL);
  tls_write_pem(keyf, NULL, k);
  X509_free(x);
  EVP_PKEY_free(k);
}

static UVT_UNUSED void pki_make(struct pki *p) {
  memset(p, 0, sizeof *p);
  strcpy(p->dir, "/tmp/uva-tls-XXXXXX");
  cr_assert_not_null(mkdtemp(p->dir));
  const long day = 24 * 3600;
  EVP_PKEY *ca_key = EVP_EC_gen("P-256");
  cr_assert_not_null(ca_key);
  X509 *ca = tls_make_cert(ca_key, "uvasync test CA", NULL, NULL, NULL, -day,
                           30 * day, 1);
  snprintf(p->ca, sizeof p->ca, "%s/ca.pem", p->dir);
  tls_write_pem(p->ca, ca, NULL);
  const char *local = "DNS:localhost,IP:127.0.0.1";
  tls_leaf(p, p->server, p->server_key, "server", "localhost", local, ca,
           ca_key, -day, 30 * day, 2);
  tls_leaf(p, p->sni, p->sni_key, "sni", "sni-localhost", local, ca, ca_key,
           -day, 30 * day, 3);
  tls_leaf(p, p->expired, p->expired_key, "expired", "localhost", local, ca,
           ca_key, -2 * day, -3600, 4);
  tls_leaf(p, p->other, p->other_key, "other", "other.example",
           "DNS:other.example", ca, ca_key, -day, 30 * day, 5);
  tls_leaf(p, p->client, p->client_key, "client", "tls-test-client",
           "DNS:tls-test-client", ca, ca_key, -day, 30 * day, 6);
  tls_leaf(p, p->selfsigned, p->selfsigned_key, "selfsigned", "localhost",
           local, NULL, NULL, -day, 30 * day, 7);
  X509_free(ca);
  EVP_PKEY_free(ca_key);
}

static UVT_UNUSED void pki_free(struct pki *p) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", p->dir);
  cr_assert_eq(system(cmd), 0);
}

/* A file's bytes (NUL-terminated; *len without the NUL). Caller frees. */
static UVT_UNUSED char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f, "%s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = malloc((size_t) n + 1);
  cr_assert_not_null(b);
  cr_assert_eq(fread(b, 1, (size_t) n, f), (size_t) n);
  b[n] = 0;
  fclose(f);
  if (len != NULL) *len = (size_t) n;
  return b;
}

/* The DER form of a PEM certificate file. Caller frees. */
static UVT_UNUSED unsigned char *cert_der(const char *path, size_t *len) {
  FILE *f = fopen(path, "r");
  cr_assert_not_null(f);
  X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
  fclose(f);
  cr_assert_not_null(x);
  int n = i2d_X509(x, NULL);
  unsigned char *b = malloc((size_t) n), *q = b;
  i2d_X509(x, &q);
  X509_free(x);
  *len = (size_t) n;
  return b;
}

/* ---- contexts ------------------------------------------------------------ */

static UVT_UNUSED uva_tls_ctx_t *server_ctx(const struct pki *p,
                                            const char *cert, const char *key) {
  uva_tls_ctx_t *c;
  UVT_OK(uva_tls_ctx_new(&c, UVA_TLS_SERVER));
  UVT_OK(uva_tls_ctx_use_cert_file(c, cert != NULL ? cert : p->server,
                                   key != NULL ? key : p->server_key, NULL));
  return c;
}

/* A client that trusts the test CA only. */
static UVT_UNUSED uva_tls_ctx_t *client_ctx(const struct pki *p) {
  uva_tls_ctx_t *c;
  UVT_OK(uva_tls_ctx_new(&c, UVA_TLS_CLIENT));
  UVT_OK(uva_tls_ctx_load_ca(c, p->ca, NULL));
  return c;
}

/* ---- openssl s_server / s_client ---------------------------------------- */

struct ossl {
  pid_t pid;
  int in;        /* its stdin (a pipe), or -1 */
  char out[192]; /* its stdout and stderr */
};

/* Start `openssl args...` (NULL-terminated) with stdout and stderr to a
 * file of dir; stdin a pipe kept open by the test (so that s_client does
 * not end at its stdin's end). */
static UVT_UNUSED void ossl_start(struct ossl *o, const char *dir,
                                  const char *name, const char *const *args) {
  int in[2];
  snprintf(o->out, sizeof o->out, "%s/%s.out", dir, name);
  unlink(o->out); /* a file of an earlier run must not answer for this one */
  cr_assert_eq(pipe(in), 0);
  pid_t parent = getpid();
  o->pid = fork();
  cr_assert(o->pid >= 0);
  if (o->pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    int fd = open(o->out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(in[0], 0);
    dup2(fd, 1);
    dup2(fd, 2);
    close(in[0]);
    close(in[1]);
    close(fd);
    execvp("openssl", (char *const *) args);
    _exit(127);
  }
  close(in[0]);
  o->in = in[1];
}

/* Wait (up to ms) until the output holds `what`; 1 if it does. */
static UVT_UNUSED int ossl_wait_for(struct ossl *o, const char *what, int ms) {
  for (int i = 0; i < ms / 10; i++) {
    FILE *f = fopen(o->out, "r");
    if (f != NULL) {
      char buf[16384];
      size_t n = fread(buf, 1, sizeof buf - 1, f);
      fclose(f);
      buf[n] = 0;
      if (strstr(buf, what) != NULL) return 1;
    }
    usleep(10 * 1000);
  }
  return 0;
}

/* Kill it (if still running) and reap it. */
static UVT_UNUSED void ossl_stop(struct ossl *o) {
  if (o->in >= 0) close(o->in);
  o->in = -1;
  if (o->pid > 0) {
    kill(o->pid, SIGKILL);
    waitpid(o->pid, NULL, 0);
  }
  o->pid = 0;
}

/* Wait up to ms for it to exit by itself; its status, or -1 (then killed). */
static UVT_UNUSED int ossl_wait_exit(struct ossl *o, int ms) {
  if (o->in >= 0) close(o->in);
  o->in = -1;
  for (int i = 0; i < ms / 10; i++) {
    int st;
    if (waitpid(o->pid, &st, WNOHANG) == o->pid) {
      o->pid = 0;
      return st;
    }
    usleep(10 * 1000);
  }
  ossl_stop(o);
  return -1;
}

/* A free port on 127.0.0.1 (bound, then released for s_server). */
static UVT_UNUSED int free_port(void) {
  int port;
  int fd = raw_bound(0, &port);
  close(fd);
  return port;
}

/* `openssl s_server` on 127.0.0.1:port with extra arguments; returns once
 * it listens. -rev: every line it reads comes back reversed. */
static UVT_UNUSED void s_server_start(struct ossl *o, const struct pki *p,
                                      int port, const char *const *extra) {
  char accept[32];
  snprintf(accept, sizeof accept, "127.0.0.1:%d", port);
  const char *args[40] = {"openssl", "s_server", "-accept",
                          accept,    "-rev",     "-cert",
                          p->server, "-key",     p->server_key};
  int n = 9;
  for (int i = 0; extra != NULL && extra[i] != NULL; i++)
    args[n++] = extra[i];
  args[n] = NULL;
  ossl_start(o, p->dir, "s_server", args);
  cr_assert(ossl_wait_for(o, "ACCEPT", 10000), "s_server did not start");
}

/* ---- tasks --------------------------------------------------------------- */

/* Cancel a task after ms (the task's own timeout, as a binding's wait_for
 * would): a timer that cancels it. */
struct canceller {
  uva_timer_t *timer;
  uva_task_t *task;
  int fired;
};

static UVT_UNUSED void cancel_cb(uva_timer_t *t, void *data) {
  struct canceller *c = (struct canceller *) data;
  (void) t;
  c->fired = 1;
  uva_task_cancel(c->task);
}

static UVT_UNUSED void cancel_after(struct canceller *c, uva_loop_t *loop,
                                    uva_task_t *task, int64_t ms) {
  c->task = task;
  c->fired = 0;
  UVT_OK(uva_timer_new(&c->timer, loop, cancel_cb, c, NULL));
  UVT_OK(uva_timer_start(c->timer, ms, 0));
}

static UVT_UNUSED void cancel_done(struct canceller *c) {
  UVT_OK(uva_timer_close(c->timer, NULL));
}

#endif /* UVASYNC_TESTS_TLS_SUPPORT_H */
