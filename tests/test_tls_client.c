/* TLS, the core as a client, against `openssl s_server` (a peer nobody
 * here wrote; tls_support.h starts it on 127.0.0.1 and kills it): a round
 * trip through the ordinary stream calls, TLS 1.2 and 1.3, each way the
 * server's certificate can fail verification with its own error, SNI,
 * ALPN, mutual TLS, no version in common, and a peer that stalls in the
 * middle of the handshake (the task's own timeout cancels the wait), and
 * the extra chain checks (strict X.509, partial chains). */
#include "tls_support.h"

/* A client: connect, TLS, handshake; on success write a line and read the
 * s_server -rev answer (the line reversed), then close. */
struct cli {
  int pc, rc;
  uva_loop_t *loop;
  uva_tls_ctx_t *ctx;
  const char *name; /* server_name for uva_tls_start */
  int port;
  uva_stream_t *s;
  int hs_rc;   /* the handshake's result */
  int read_rc; /* the read of the answer's */
  int line_ok; /* the reversed line came back */
  int version;
  char alpn[64], cipher[64], text[256], vtext[128];
  int vcode;
  size_t n;
  char buf[256];
};

static int step_cli(uva_task_t *t, int status, void *d) {
  struct cli *c = (struct cli *) d;
  (void) status;
  CO_BEGIN(c);
  UVT_OK(uva_tcp_connect(&c->s, c->loop, "127.0.0.1", c->port));
  CO_CALL(c, uva_stream_wait_connected(c->s, t));
  UVT_OK(c->rc);
  UVT_OK(uva_tls_start(c->s, c->ctx, c->name));
  CO_CALL(c, uva_tls_handshake(c->s, t));
  c->hs_rc = c->rc;
  uva_tls_error_text(c->s, c->text, sizeof c->text);
  uva_tls_verify_result(&c->vcode, c->s, c->vtext, sizeof c->vtext);
  if (c->hs_rc == 0) {
    UVT_OK(uva_tls_version(&c->version, c->s));
    UVT_OK(uva_tls_alpn(c->s, c->alpn, sizeof c->alpn));
    UVT_OK(uva_tls_cipher(c->s, c->cipher, sizeof c->cipher));
    UVT_OK(uva_stream_write(NULL, c->s, "uvasync\n", 8));
    CO_CALL(c, uva_stream_read_line(&c->n, c->s, t, c->buf, sizeof c->buf));
    c->read_rc = c->rc;
    uva_tls_error_text(c->s, c->text, sizeof c->text);
    c->line_ok = c->rc == 0 && c->n == 8 && memcmp(c->buf, "cnysavu\n", 8) == 0;
  } else {
    /* Reads and writes give the handshake's error. */
    UVT_EQ(uva_stream_write(NULL, c->s, "x", 1), c->hs_rc);
    CO_CALL(c, uva_stream_read(&c->n, c->s, t, c->buf, sizeof c->buf));
    UVT_EQ(c->rc, c->hs_rc);
  }
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  CO_END(c);
}

/* One client run against an s_server started with `extra`. */
static void run_client(struct cli *c, const struct pki *p,
                       const char *const *server_extra) {
  struct ossl srv;
  c->port = free_port();
  s_server_start(&srv, p, c->port, server_extra);
  uva_loop_t *loop = uvt_loop_new();
  c->loop = loop;
  spawn(loop, step_cli, c);
  run(loop);
  UVT_CLOSE_LOOP(loop);
  ossl_stop(&srv);
}

Test(tls_client, round_trip_over_tls13_with_the_stream_calls, .timeout = 30) {
  struct pki p;
  pki_make(&p);
  struct cli c = {0};
  c.ctx = client_ctx(&p);
  c.name = "localhost";
  run_client(&c, &p, NULL);
  UVT_OK(c.hs_rc);
  cr_assert(c.line_ok);
  cr_assert_eq(c.version, UVA_TLS_VERSION_1_3);
  cr_assert_str_eq(c.alpn, "");
  cr_assert(strstr(c.cipher, "TLS_") == c.cipher, "cipher %s", c.cipher);
  cr_assert_eq(c.vcode, 0, "%s", c.vtext);
  uva_tls_ctx_free(c.ctx);
  pki_free(&p);
}

Test(tls_client, round_trip_over_tls12, .timeout = 30) {
  struct pki p;
  pki_make(&p);
  struct cli c = {0};
  c.ctx = client_ctx(&p);
  c.name = "localhost";
  const char *extra[] = {"-tls1_2", NULL};
  run_client(&c, &p, extra);
  UVT_OK(c.hs_rc);
  cr_assert(c.line_ok);
  cr_assert_eq(c.version, UVA_TLS_VERSION_1_2);
  cr_assert(strstr(c.cipher, "ECDHE") != NULL, "cipher %s", c.cipher);
  uva_tls_ctx_free(c.ctx);
  pki_free(&p);
}

Test(tls_client, verifies_an_ip_address_literal, .timeout = 30) {
  struct pki p;
  pki_make(&p);
  struct cli c = {0};
  c.ctx = client_ctx(&p);
  c.name = "127.0.0.1"; /* in the certificate's IP addresses; no SNI */
  run_client(&c, &p, NULL);
  UVT_OK(c.hs_rc);
  cr_assert(c.line_ok);
  uva_tls_ctx_free(c.ctx);
  pki_free(&p);
}

/* The server's certificate chain fails, each way with its own code and
 * OpenSSL's reason. */
static void expect_verify_failure(const char *cert_attr, int want,
                                  const char *why) {
  struct pki p;
  pki_make(&p);
  struct cli c = {0};
  c.ctx = client_ctx(&p);
  c.name = "localhost";
  const char *cert = p.server, *key = p.server_key;
  if (strcmp(cert_attr, "expired") == 0) {
    cert = p.expired;
    key = p.expired_key;
  } else if (strcmp(cert_attr, "other") == 0) {
    cert = p.other;
    key = p.other_key;
  } else if (strcmp(cert_attr, "selfsigned") == 0) {
    cert = p.selfsigned;
    key = p.selfsigned_key;
  }
  /* The later -cert and -key win over s_server_start's. */
  const char *extra[] = {"-cert", cert, "-key", key, NULL};
  run_client(&c, &p, extra);
  UVT_EQ(c.hs_rc, want);
  cr_assert(strstr(c.text, why) != NULL, "error text: %s", c.text);
  cr_assert(strstr(c.text, "certificate verify failed") != NULL, "%s", c.text);
  cr_assert_neq(c.vcode, 0);
  cr_assert(strstr(c.text, c.vtext) != NULL, "%s / %s", c.text, c.vtext);
  uva_tls_ctx_free(c.ctx);
  pki_free(&p);
}

Test(tls_client, expired_certificate_fails_with_etlsexpired, .timeout = 30) {
  expect_verify_failure("expired", UVA_ETLSEXPIRED, "expired");
}

Test(tls_client, wrong_host_fails_with_etlshostname, .timeout = 30) {
  expect_verify_failure("other", UVA_ETLSHOSTNAME, "mismatch");
}

Test(tls_client, self_signed_fails_with_etlsuntrusted, .timeout = 30) {
  expect_verify_failure("selfsigned", UVA_ETLSUNTRUSTED, "self-signed");
}

/* The system's store does not hold the test CA. */
Test(tls_client, unknown_ca_fails_with_etlsuntrusted, .timeout = 30) {
  struct pki p;
  pki_make(&p);
  struct cli c = {0};
  UVT_OK(uva_tls_ctx_new(&c.ctx, UVA_TLS_CLIENT)); /* the system's store */
  c.name = "localhost";
  run_client(&c, &p, NULL);
  UVT_EQ(c.hs_rc, UVA_ETLSUNTRUSTED);
  cr_assert(strstr(c.text, "local issuer") != NULL, "%s", c.text);
  uva_tls_ctx_free(c.ctx);
  pki_free(&p);
}

/* Without verification the same server is accepted; NO_HOSTNAME verifies
 * the chain but not the name. */
Test(tls_client, verify_none_and_no_hostname, .timeout = 30) {
  struct pki p;
  pki_make(&p);
  struct cli c = {0};
  UVT_OK(uva_tls_ctx_new(&c.ctx, UVA_TLS_CLIENT));
  UVT_OK(uva_tls_ctx_set_verify(c.ctx, UVA_TLS_VERIFY_NONE));
  c.name = "localhost";
  const char *extra[] = {"-cert", p.selfsigned, "-key", p.selfsigned_key, NULL};
  run_client(&c, &p, extra);
  UVT_OK(c.hs_rc);
  cr_assert(c.line_ok);
  uva_tls_ctx_free(c.ctx);

  struct cli d = {0};
  d.ctx = client_ctx(&p);
  UVT_OK(uva_tls_ctx_set_verify(
      d.ctx, UVA_TLS_VERIFY_PEER | UVA_TLS_VERIFY_NO_HOSTNAME));
  d.name = "localhost";
  const char *other[] = {"-cert", p.other, "-key", p.other_key, NULL};
  run_client(&d, &p, other);
  UVT_OK(d.hs_rc);
  cr_assert(d.line_ok);
  uva_tls_ctx_free(d.ctx);
  pki_free(&p);
}

/* s_server answers with its second certificate only to the SNI name
 * "localhost": the handshake verifies, and the certificate seen is that
 * one. */
Test(tls_client, sends_sni, .timeout = 30) {
  struct pki p;
  pki_make(&p);
  struct cli c = {0};
  c.ctx = client_ctx(&p);
  c.name = "localhost";
  const char *extra[] = {"-cert",       p.other,     "-key",   p.other_key,
                         "-servername", "localhost", "-cert2", p.sni,
                         "-key2",       p.sni_key,   NULL};
  run_client(&c, &p, extra);
  UVT_OK(c.hs_rc);
  cr_assert(c.line_ok);
  uva_tls_ctx_free(c.ctx);
  pki_free(&p);
}

Test(tls_client, negotiates_alpn, .timeout = 30) {
  struct pki p;
  pki_make(&p);
  struct cli c = {0};
  c.ctx = client_ctx(&p);
  const char *protos[] = {"h2", "http/1.1"};
  UVT_OK(uva_tls_ctx_set_alpn(c.ctx, protos, 2));
  c.name = "localhost";
  const char *extra[] = {"-alpn", "http/1.1", NULL};
  run_client(&c, &p, extra);
  UVT_OK(c.hs_rc);
  cr_assert_str_eq(c.alpn, "http/1.1");
  uva_tls_ctx_free(c.ctx);
  pki_free(&p);
}

/* Mutual TLS: s_server -Verify requires a client certificate. With ours
 * (from memory, PEM) the round trip works; without one the server's alert
 * fails the handshake. */
Test(tls_client, mutual_tls, .timeout = 30) {
  struct pki p;
  pki_make(&p);
  struct cli c = {0};
  c.ctx = client_ctx(&p);
  size_t cl, kl;
  char *cert = slurp(p.client, &cl), *key = slurp(p.client_key, &kl);
  UVT_OK(uva_tls_ctx_use_cert_pem(c.ctx, cert, cl, key, kl, NULL));
  c.name = "localhost";
  const char *extra[] = {"-Verify", "1", "-CAfile", p.ca, NULL};
  run_client(&c, &p, extra);
  UVT_OK(c.hs_rc);
  cr_assert(c.line_ok);
  uva_tls_ctx_free(c.ctx);

  struct cli d = {0};
  d.ctx = client_ctx(&p);
  d.name = "localhost";
  run_client(&d, &p, extra);
  /* TLS 1.3: the client's handshake is done before the server checks; its
   * alert comes with the first read. Either way: an alert. */
  cr_assert(
      d.hs_rc == UVA_ETLSALERT || (d.hs_rc == 0 && d.read_rc == UVA_ETLSALERT),
      "hs %s, read %s", uva_err_name(d.hs_rc), uva_err_name(d.read_rc));
  cr_assert(strstr(d.text, "certificate required") != NULL, "%s", d.text);
  uva_tls_ctx_free(d.ctx);
  free(cert);
  free(key);
  pki_free(&p);
}

Test(tls_client, no_version_in_common_fails_with_etlsversion, .timeout = 30) {
  struct pki p;
  pki_make(&p);
  struct cli c = {0};
  c.ctx = client_ctx(&p);
  UVT_OK(uva_tls_ctx_set_versions(c.ctx, UVA_TLS_VERSION_1_3, 0));
  c.name = "localhost";
  const char *extra[] = {"-tls1_2", NULL};
  run_client(&c, &p, extra);
  UVT_EQ(c.hs_rc, UVA_ETLSVERSION);
  cr_assert(strstr(c.text, "version") != NULL, "%s", c.text);
  uva_tls_ctx_free(c.ctx);
  pki_free(&p);
}

/* A peer that accepts and never answers the hello: the handshake waits
 * until the task's timeout cancels it, and the stream closes cleanly. */
struct stall {
  int pc, rc;
  uva_loop_t *loop;
  uva_tls_ctx_t *ctx;
  int port;
  uva_stream_t *s;
  struct canceller cancel;
  int hs_rc;
};

static int step_stall(uva_task_t *t, int status, void *d) {
  struct stall *c = (struct stall *) d;
  CO_BEGIN(c);
  UVT_OK(uva_tcp_connect(&c->s, c->loop, "127.0.0.1", c->port));
  CO_CALL(c, uva_stream_wait_connected(c->s, t));
  UVT_OK(c->rc);
  UVT_OK(uva_tls_start(c->s, c->ctx, "localhost"));
  cancel_after(&c->cancel, c->loop, t, 200);
  CO_CALL(c,
          status == UVA_ECANCELED ? UVA_ECANCELED : uva_tls_handshake(c->s, t));
  c->hs_rc = c->rc;
  cancel_done(&c->cancel);
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  CO_END(c);
}

Test(tls_client, stalled_handshake_is_cancelled_by_a_timeout, .timeout = 30) {
  struct pki p;
  pki_make(&p);
  int port;
  int lfd = raw_bound(4, &port); /* accepts (backlog), never answers */
  uva_loop_t *loop = uvt_loop_new();
  struct stall c = {0};
  c.loop = loop;
  c.ctx = client_ctx(&p);
  c.port = port;
  spawn(loop, step_stall, &c);
  double t0 = uvt_ms();
  run(loop);
  double took = uvt_ms() - t0;
  UVT_EQ(c.hs_rc, UVA_ECANCELED);
  cr_assert(c.cancel.fired);
  cr_assert(took >= 150 && took < 5000 * uvt_mult(), "took %.0f ms", took);
  UVT_CLOSE_LOOP(loop);
  close(lfd);
  uva_tls_ctx_free(c.ctx);
  pki_free(&p);
}

/* A leaf for localhost signed by ca but without an authorityKeyIdentifier:
 * fine for OpenSSL's default checks, not for the strict ones (RFC 5280). */
static void loose_leaf(const char *cert, const char *keyf, X509 *ca,
                       EVP_PKEY *ca_key) {
  const long day = 24 * 3600;
  EVP_PKEY *k = EVP_EC_gen("P-256");
  cr_assert_not_null(k);
  X509 *x = X509_new();
  cr_assert_not_null(x);
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 9);
  X509_gmtime_adj(X509_getm_notBefore(x), -day);
  X509_gmtime_adj(X509_getm_notAfter(x), 30 * day);
  X509_set_pubkey(x, k);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                             (const unsigned char *) "localhost", -1, -1, 0);
  X509_set_issuer_name(x, X509_get_subject_name(ca));
  tls_add_ext(x, ca, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
  tls_add_ext(x, ca, NID_ext_key_usage, "serverAuth");
  cr_assert(X509_sign(x, ca_key, EVP_sha256()));
  tls_write_pem(cert, x, NULL);
  tls_write_pem(keyf, NULL, k);
  X509_free(x);
  EVP_PKEY_free(k);
}

/* uva_tls_ctx_set_verify_flags: UVA_TLS_X509_STRICT refuses a chain that
 * the default checks accept (and accepts a strict-valid one);
 * UVA_TLS_X509_PARTIAL_CHAIN lets a trusted leaf end the chain; 0 turns
 * them off again. */
Test(tls_client, verify_flags_strict_and_partial_chain, .timeout = 60) {
  struct pki p;
  pki_make(&p);
  const long day = 24 * 3600;
  EVP_PKEY *ca_key = EVP_EC_gen("P-256");
  cr_assert_not_null(ca_key);
  X509 *ca =
      tls_make_cert(ca_key, "loose CA", NULL, NULL, NULL, -day, 30 * day, 1);
  char ca_file[192], cert[192], key[192];
  snprintf(ca_file, sizeof ca_file, "%s/loose-ca.pem", p.dir);
  snprintf(cert, sizeof cert, "%s/loose.pem", p.dir);
  snprintf(key, sizeof key, "%s/loose.key", p.dir);
  tls_write_pem(ca_file, ca, NULL);
  loose_leaf(cert, key, ca, ca_key);
  X509_free(ca);
  EVP_PKEY_free(ca_key);
  const char *loose[] = {"-cert", cert, "-key", key, NULL};

  uva_tls_ctx_t *ctx;
  UVT_OK(uva_tls_ctx_new(&ctx, UVA_TLS_CLIENT));
  UVT_EXPECT(uva_tls_ctx_set_verify_flags(ctx, 0x100), UVA_EINVAL);
  UVT_OK(uva_tls_ctx_load_ca(ctx, ca_file, NULL));
  struct cli c = {0};
  c.ctx = ctx;
  c.name = "localhost";
  run_client(&c, &p, loose); /* the default checks accept it */
  UVT_OK(c.hs_rc);
  cr_assert(c.line_ok);

  UVT_OK(uva_tls_ctx_set_verify_flags(ctx, UVA_TLS_X509_STRICT));
  memset(&c, 0, sizeof c);
  c.ctx = ctx;
  c.name = "localhost";
  run_client(&c, &p, loose);
  UVT_EQ(c.hs_rc, UVA_ETLSCERT);
  cr_assert(strstr(c.text, "Authority Key Identifier") != NULL, "%s", c.text);
  UVT_OK(uva_tls_ctx_set_verify_flags(ctx, 0));
  memset(&c, 0, sizeof c);
  c.ctx = ctx;
  c.name = "localhost";
  run_client(&c, &p, loose);
  UVT_OK(c.hs_rc);
  uva_tls_ctx_free(ctx);

  /* the test PKI's chain is strict-valid */
  memset(&c, 0, sizeof c);
  c.ctx = client_ctx(&p);
  UVT_OK(uva_tls_ctx_set_verify_flags(c.ctx, UVA_TLS_X509_STRICT));
  c.name = "localhost";
  run_client(&c, &p, NULL);
  UVT_OK(c.hs_rc);
  cr_assert(c.line_ok);
  uva_tls_ctx_free(c.ctx);

  /* trusting the server's own certificate: a partial chain */
  UVT_OK(uva_tls_ctx_new(&ctx, UVA_TLS_CLIENT));
  UVT_OK(uva_tls_ctx_load_ca(ctx, p.server, NULL));
  memset(&c, 0, sizeof c);
  c.ctx = ctx;
  c.name = "localhost";
  run_client(&c, &p, NULL);
  UVT_EQ(c.hs_rc, UVA_ETLSUNTRUSTED);
  UVT_OK(uva_tls_ctx_set_verify_flags(ctx, UVA_TLS_X509_PARTIAL_CHAIN));
  memset(&c, 0, sizeof c);
  c.ctx = ctx;
  c.name = "localhost";
  run_client(&c, &p, NULL);
  UVT_OK(c.hs_rc);
  cr_assert(c.line_ok);
  uva_tls_ctx_free(ctx);
  pki_free(&p);
}
