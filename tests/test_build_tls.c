/* Whether this build has TLS, and what the TLS calls do without it: every
 * uva_tls_* call returns UVA_ENOTSUP (the build without OpenSSL, CMake
 * -DUVA_TLS=OFF, runs this suite; the TLS suites test_tls_*.c need
 * OpenSSL and are not built there). */
#include "support.h"

Test(build_tls, tls_calls_agree_with_uva_tls_available, .timeout = 10) {
  uva_tls_ctx_t *ctx = NULL;
  int rc = uva_tls_ctx_new(&ctx, UVA_TLS_CLIENT);
  if (uva_tls_available()) {
    UVT_OK(rc);
    cr_assert_not_null(ctx);
    uva_tls_ctx_free(ctx);
    return;
  }
  UVT_EQ(rc, UVA_ENOTSUP);
  cr_assert_null(ctx);
  uva_loop_t *loop = uvt_loop_new();
  int fds[2], v;
  char buf[16];
  size_t n;
  tcp_fd_pair(fds);
  uva_stream_t *s = adopt(loop, fds[0]);
  UVT_EQ(uva_tls_start(s, NULL, "localhost"), UVA_ENOTSUP);
  UVT_EQ(uva_tls_version(&v, s), UVA_ENOTSUP);
  UVT_EQ(uva_tls_alpn(s, buf, sizeof buf), UVA_ENOTSUP);
  UVT_EQ(uva_tls_peer_cert(&n, s, NULL, 0), UVA_ENOTSUP);
  UVT_EQ(uva_tls_ctx_set_verify(NULL, 0), UVA_ENOTSUP);
  uva_tls_ctx_free(NULL);
  UVT_OK(uva_stream_close(s, NULL, NULL));
  close(fds[1]);
  run(loop);
  UVT_CLOSE_LOOP(loop);
}
