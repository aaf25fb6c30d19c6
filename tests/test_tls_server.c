/* TLS, the core as a server, with `openssl s_client` as the peer (started
 * by the test on 127.0.0.1, killed at the end): s_client verifies our
 * certificate (given from memory) against the test CA and the host name;
 * we see its SNI and pick ALPN; TLS 1.2 and 1.3; mutual TLS with a client
 * certificate, and without one (UVA_ETLSNOCERT); a client that rejects our
 * certificate (its alert: UVA_ETLSALERT). */
#include "tls_support.h"

struct srv {
  int pc, rc;
  uva_loop_t *loop;
  uva_server_t *sv;
  uva_tls_ctx_t *ctx;
  uva_stream_t *s;
  int hs_rc, version;
  char sni[64], alpn[64], text[256];
  size_t cert_len, n;
  unsigned char cert[4096];
  char buf[256];
};

/* Accept one connection, handshake; on success read a line and answer
 * "pong <line>", then close (close_notify: s_client then ends). */
static int step_srv(uva_task_t *t, int status, void *d) {
  struct srv *c = (struct srv *) d;
  (void) status;
  CO_BEGIN(c);
  CO_CALL(c, uva_server_accept(&c->s, c->sv, t));
  UVT_OK(c->rc);
  UVT_OK(uva_server_close(c->sv, NULL, NULL));
  UVT_OK(uva_tls_start(c->s, c->ctx, NULL));
  CO_CALL(c, uva_tls_handshake(c->s, t));
  c->hs_rc = c->rc;
  uva_tls_error_text(c->s, c->text, sizeof c->text);
  if (c->hs_rc == 0) {
    UVT_OK(uva_tls_version(&c->version, c->s));
    UVT_OK(uva_tls_server_name(c->s, c->sni, sizeof c->sni));
    UVT_OK(uva_tls_alpn(c->s, c->alpn, sizeof c->alpn));
    UVT_OK(uva_tls_peer_cert(&c->cert_len, c->s, c->cert, sizeof c->cert));
    CO_CALL(c, uva_stream_read_line(&c->n, c->s, t, c->buf, sizeof c->buf));
    UVT_OK(c->rc);
    UVT_OK(uva_stream_write(NULL, c->s, "pong ", 5));
    UVT_OK(uva_stream_write(NULL, c->s, c->buf, c->n));
  }
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  CO_END(c);
}

/* Run the server against `openssl s_client extra...`, which sends "ping".
 * Returns s_client's output. */
static char *run_server(struct srv *c, const struct pki *p,
                        const char *const *extra) {
  uva_loop_t *loop = uvt_loop_new();
  c->loop = loop;
  int port;
  UVT_OK(uva_tcp_listen(&c->sv, loop, "127.0.0.1", 0, 8));
  UVT_OK(uva_server_address(c->sv, NULL, 0, &port));
  char connect[32];
  snprintf(connect, sizeof connect, "127.0.0.1:%d", port);
  const char *args[40] = {"openssl",
                          "s_client",
                          "-connect",
                          connect,
                          "-CAfile",
                          p->ca,
                          "-verify_return_error",
                          "-verify_hostname",
                          "localhost",
                          "-quiet"};
  int n = 10;
  for (int i = 0; extra != NULL && extra[i] != NULL; i++)
    args[n++] = extra[i];
  args[n] = NULL;
  struct ossl cl;
  ossl_start(&cl, p->dir, "s_client", args);
  cr_assert_eq(write(cl.in, "ping\n", 5), 5);
  spawn(loop, step_srv, c);
  run(loop);
  UVT_CLOSE_LOOP(loop);
  /* Our close_notify ends s_client; it must not take long. */
  cr_assert(ossl_wait_exit(&cl, 10000) != -1, "s_client did not end");
  return slurp(cl.out, NULL);
}

/* The server's certificate and key from memory. */
static uva_tls_ctx_t *server_ctx_pem(const struct pki *p) {
  uva_tls_ctx_t *c;
  size_t cl, kl;
  char *cert = slurp(p->server, &cl), *key = slurp(p->server_key, &kl);
  UVT_OK(uva_tls_ctx_new(&c, UVA_TLS_SERVER));
  UVT_OK(uva_tls_ctx_use_cert_pem(c, cert, cl, key, kl, NULL));
  free(cert);
  free(key);
  return c;
}

Test(tls_server, serves_s_client_sni_and_alpn_over_tls13, .timeout = 30) {
  struct pki p;
  pki_make(&p);
  struct srv c = {0};
  c.ctx = server_ctx_pem(&p);
  const char *protos[] = {"h2", "http/1.1"};
  UVT_OK(uva_tls_ctx_set_alpn(c.ctx, protos, 2));
  const char *extra[] = {"-servername", "localhost", "-alpn", "http/1.1,h2",
                         NULL};
  char *out = run_server(&c, &p, extra);
  UVT_OK(c.hs_rc);
  cr_assert_eq(c.version, UVA_TLS_VERSION_1_3);
  cr_assert_str_eq(c.sni, "localhost");
  cr_assert_str_eq(c.alpn, "h2"); /* the server's preference */
  cr_assert_eq(c.cert_len, 0);    /* no client certificate asked */
  cr_assert(strstr(out, "pong ping") != NULL, "s_client: %s", out);
  free(out);
  uva_tls_ctx_free(c.ctx);
  pki_free(&p);
}

Test(tls_server, serves_tls12_and_no_alpn_in_common, .timeout = 30) {
  struct pki p;
  pki_make(&p);
  struct srv c = {0};
  c.ctx = server_ctx(&p, NULL, NULL);
  const char *protos[] = {"h2"};
  UVT_OK(uva_tls_ctx_set_alpn(c.ctx, protos, 1));
  const char *extra[] = {"-tls1_2", "-alpn", "spdy/1", NULL};
  char *out = run_server(&c, &p, extra);
  UVT_OK(c.hs_rc);
  cr_assert_eq(c.version, UVA_TLS_VERSION_1_2);
  cr_assert_str_eq(c.alpn, "");
  cr_assert_str_eq(c.sni, ""); /* s_client sent none: an IP address */
  cr_assert(strstr(out, "pong ping") != NULL, "s_client: %s", out);
  free(out);
  uva_tls_ctx_free(c.ctx);
  pki_free(&p);
}

Test(tls_server, mutual_tls_sees_the_client_certificate, .timeout = 30) {
  struct pki p;
  pki_make(&p);
  struct srv c = {0};
  c.ctx = server_ctx(&p, NULL, NULL);
  UVT_OK(uva_tls_ctx_set_verify(c.ctx, UVA_TLS_VERIFY_REQUIRE));
  UVT_OK(uva_tls_ctx_load_ca(c.ctx, p.ca, NULL));
  const char *extra[] = {"-cert", p.client, "-key", p.client_key, NULL};
  char *out = run_server(&c, &p, extra);
  UVT_OK(c.hs_rc);
  size_t want_len;
  unsigned char *want = cert_der(p.client, &want_len);
  cr_assert_eq(c.cert_len, want_len);
  cr_assert_eq(memcmp(c.cert, want, want_len), 0);
  cr_assert(strstr(out, "pong ping") != NULL, "s_client: %s", out);
  free(want);
  free(out);
  uva_tls_ctx_free(c.ctx);
  pki_free(&p);
}

Test(tls_server, required_client_certificate_missing_fails_with_etlsnocert,
     .timeout = 30) {
  struct pki p;
  pki_make(&p);
  struct srv c = {0};
  c.ctx = server_ctx(&p, NULL, NULL);
  UVT_OK(uva_tls_ctx_set_verify(c.ctx, UVA_TLS_VERIFY_REQUIRE));
  UVT_OK(uva_tls_ctx_load_ca(c.ctx, p.ca, NULL));
  char *out = run_server(&c, &p, NULL);
  UVT_EQ(c.hs_rc, UVA_ETLSNOCERT);
  cr_assert(strstr(c.text, "certificate") != NULL, "%s", c.text);
  free(out);
  uva_tls_ctx_free(c.ctx);
  pki_free(&p);
}

/* Our certificate is self-signed: s_client's verification fails and its
 * alert ends our handshake. */
Test(tls_server, client_rejecting_our_certificate_fails_with_etlsalert,
     .timeout = 30) {
  struct pki p;
  pki_make(&p);
  struct srv c = {0};
  c.ctx = server_ctx(&p, p.selfsigned, p.selfsigned_key);
  char *out = run_server(&c, &p, NULL);
  UVT_EQ(c.hs_rc, UVA_ETLSALERT);
  cr_assert(strstr(c.text, "alert") != NULL, "%s", c.text);
  cr_assert(strstr(out, "pong") == NULL);
  free(out);
  uva_tls_ctx_free(c.ctx);
  pki_free(&p);
}
