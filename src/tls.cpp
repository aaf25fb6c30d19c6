/* uvasync — TLS on OpenSSL, as a layer inside a stream.
 *
 * A TLS stream is an ordinary Stream with a Tls attached (Stream::tls).
 * OpenSSL never touches the socket: it works on two memory BIOs.
 *
 *   kernel --recv--> cbuf --BIO_write--> rbio --SSL_read--> the stream's
 *     read buffer (rbuf), where every read call finds plaintext as usual
 *   write calls --SSL_write--> wbio --stream_write_raw--> the kernel, or
 *     the stream's write queue (same queue, drain and high-water rules)
 *
 * Reading: the engines' one read from the kernel (read_into, used by the
 * edge engine and by a waiting reader's own reads) becomes pump(), which
 * drives the handshake and decrypts into the room it was given, receiving
 * ciphertext only when OpenSSL needs it; the libuv engine reads ciphertext
 * into cbuf (tls_cipher_room) and hands it to tls_feed. `more` stays set
 * while OpenSSL holds ciphertext or plaintext not yet read, so a reader
 * that empties the buffer comes back for it (read_now), as for bytes left
 * in the kernel. Reading still pauses at high_water (of plaintext); what
 * OpenSSL holds past it is bounded by one read of ciphertext.
 *
 * Errors: each failure of the handshake or of a record maps to one code
 * (map_error) and keeps OpenSSL's reason as text for uva_tls_error_text.
 */
#include "stream_engine.h"
#include "fault.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#ifdef UVA_HAVE_OPENSSL
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#ifndef _WIN32
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>
#endif
#endif

namespace uva {
namespace detail {

#ifdef UVA_HAVE_OPENSSL

static constexpr uint32_t MAGIC_TLS_CTX = MAGIC_BASE | 30;
static constexpr uint32_t MAGIC_TLS_CTX_FREED = MAGIC_BASE | 31;
/* One recv of ciphertext: two full records. */
static constexpr size_t CIPHER_CHUNK = 2 * (16384 + 256);
/* Writes are encrypted this much at a time, so the write BIO (cleared
 * after each flush) stays small. */
static constexpr size_t WRITE_CHUNK = 64 * 1024;
/* Small pieces of a writev are gathered into records of this size. */
static constexpr size_t STAGE = 16384;
static constexpr size_t DEFAULT_SESSIONS = 256;

struct TlsCtx {
  uint32_t magic; /* first: the handle check reads it */
  std::atomic<uint32_t> refs;
  SSL_CTX *ctx;
  uva_tls_role role;
  int verify;
  bool ca_loaded;       /* uva_tls_ctx_load_ca*: not the system's store */
  bool defaults_loaded; /* the system's store, loaded at the first start */
  std::vector<unsigned char> alpn; /* wire format: length-prefixed */
  size_t sessions_max;
  std::mutex mu; /* the client's sessions and the lazy default store */
  struct Saved {
    std::string key;
    SSL_SESSION *sess;
  };
  std::vector<Saved> sessions; /* oldest first */
};

struct Tls {
  SSL *ssl;
  BIO *rbio; /* ciphertext in (OpenSSL reads it) */
  BIO *wbio; /* ciphertext out (we take it) */
  TlsCtx *ctx;
  bool done;        /* handshake complete */
  bool failed;      /* a fatal error: err says which */
  bool keof;        /* the kernel reported the end (or kerr) */
  bool kmore;       /* the kernel may hold ciphertext we did not read */
  bool notify_sent; /* close_notify went out */
  int err;
  int kerr;
  std::string key; /* client: the session cache's key */
  char text[200];  /* OpenSSL's reason for err */
  char cbuf[CIPHER_CHUNK];
  char stage[STAGE];
};

static int ex_index() {
  static int idx = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return idx;
}

/* ---- contexts ------------------------------------------------------------ */

static void ctx_unref(TlsCtx *c) {
  if (c->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  for (auto &s : c->sessions)
    SSL_SESSION_free(s.sess);
  SSL_CTX_free(c->ctx);
  c->magic = MAGIC_TLS_CTX_FREED;
  delete c;
}

/* A passphrase from the caller's string, never from a terminal (OpenSSL's
 * default callback would prompt). */
static int password_cb(char *buf, int size, int, void *u) {
  if (u == nullptr) return 0;
  size_t n = std::strlen(static_cast<const char *>(u));
  if (n > size_t(size)) return 0;
  std::memcpy(buf, u, n);
  return int(n);
}

/* The client's session for a server, or NULL. */
static SSL_SESSION *session_get(TlsCtx *c, const std::string &key) {
  std::lock_guard<std::mutex> g(c->mu);
  for (auto &s : c->sessions)
    if (s.key == key) {
      SSL_SESSION_up_ref(s.sess);
      return s.sess;
    }
  return nullptr;
}

/* OpenSSL's new session (a client's, after a full handshake or a TLS 1.3
 * ticket): keep it as the server's latest, taking OpenSSL's reference. */
static int on_new_session(SSL *ssl, SSL_SESSION *sess) {
  Tls *t = static_cast<Tls *>(SSL_get_ex_data(ssl, ex_index()));
  if (t == nullptr || t->key.empty()) return 0;
  TlsCtx *c = t->ctx;
  std::lock_guard<std::mutex> g(c->mu);
  if (c->sessions_max == 0) return 0;
  for (auto &s : c->sessions)
    if (s.key == t->key) {
      SSL_SESSION_free(s.sess);
      s.sess = sess;
      return 1;
    }
  if (c->sessions.size() >= c->sessions_max) {
    SSL_SESSION_free(c->sessions.front().sess);
    c->sessions.erase(c->sessions.begin());
  }
  c->sessions.push_back({t->key, sess});
  return 1;
}

/* A server's ALPN choice: its first protocol the client offered; no ALPN
 * if none (as Python's ssl), rather than a fatal alert. */
static int on_alpn_select(SSL *, const unsigned char **out,
                          unsigned char *outlen, const unsigned char *in,
                          unsigned int inlen, void *arg) {
  TlsCtx *c = static_cast<TlsCtx *>(arg);
  if (c->alpn.empty()) return SSL_TLSEXT_ERR_NOACK;
  unsigned char *sel = nullptr;
  if (SSL_select_next_proto(&sel, outlen, c->alpn.data(),
                            unsigned(c->alpn.size()), in,
                            inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = sel;
  return SSL_TLSEXT_ERR_OK;
}

static void apply_cache(TlsCtx *c) {
  if (c->role == UVA_TLS_CLIENT) {
    SSL_CTX_set_session_cache_mode(
        c->ctx, c->sessions_max == 0
                    ? SSL_SESS_CACHE_OFF
                    : SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  } else if (c->sessions_max == 0) {
    SSL_CTX_set_session_cache_mode(c->ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(c->ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(c->ctx, 0);
  } else {
    SSL_CTX_set_session_cache_mode(c->ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(c->ctx, long(c->sessions_max));
    SSL_CTX_clear_options(c->ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(c->ctx, 2);
  }
}

static void apply_verify(TlsCtx *c) {
  int m = c->verify & 0x0f;
  int flags = SSL_VERIFY_NONE;
  if (m != UVA_TLS_VERIFY_NONE) flags = SSL_VERIFY_PEER;
  if (m == UVA_TLS_VERIFY_REQUIRE && c->role == UVA_TLS_SERVER)
    flags |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  SSL_CTX_set_verify(c->ctx, flags, nullptr);
}

int tls_ctx_new(TlsCtx **out, uva_tls_role role) {
  TlsCtx *c = new TlsCtx();
  c->magic = MAGIC_TLS_CTX;
  c->refs.store(1, std::memory_order_relaxed);
  c->role = role;
  c->verify =
      role == UVA_TLS_CLIENT ? UVA_TLS_VERIFY_PEER : UVA_TLS_VERIFY_NONE;
  c->sessions_max = DEFAULT_SESSIONS;
  c->ctx = fault_hit(FAULT_ALLOC)
               ? nullptr
               : SSL_CTX_new(role == UVA_TLS_CLIENT ? TLS_client_method()
                                                    : TLS_server_method());
  if (c->ctx == nullptr) {
    delete c;
    ERR_clear_error();
    return UVA_ENOMEM;
  }
  SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(c->ctx, SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(c->ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_default_passwd_cb(c->ctx, password_cb);
  if (role == UVA_TLS_SERVER) {
    static const unsigned char sid[] = "uvasync";
    SSL_CTX_set_session_id_context(c->ctx, sid, sizeof sid - 1);
    SSL_CTX_set_alpn_select_cb(c->ctx, on_alpn_select, c);
  } else {
    SSL_CTX_sess_set_new_cb(c->ctx, on_new_session);
  }
  apply_verify(c);
  apply_cache(c);
  *out = c;
  return 0;
}

TlsCtx *tls_ctx_check(void *p, int *rc) {
  TlsCtx *c = static_cast<TlsCtx *>(p);
  if (c == nullptr) {
    *rc = UVA_EINVAL;
    return nullptr;
  }
  if (c->magic != MAGIC_TLS_CTX) {
    *rc = UVA_EHANDLEKIND;
    return nullptr;
  }
  *rc = 0;
  return c;
}

void tls_ctx_free(TlsCtx *c) { ctx_unref(c); }

int tls_ctx_set_verify(TlsCtx *c, int mode) {
  int m = mode & ~UVA_TLS_VERIFY_NO_HOSTNAME;
  if (m != UVA_TLS_VERIFY_NONE && m != UVA_TLS_VERIFY_PEER &&
      m != UVA_TLS_VERIFY_REQUIRE)
    return UVA_EINVAL;
  c->verify = mode;
  apply_verify(c);
  return 0;
}

int tls_ctx_set_verify_flags(TlsCtx *c, int flags) {
  if ((flags & ~(UVA_TLS_X509_STRICT | UVA_TLS_X509_PARTIAL_CHAIN)) != 0)
    return UVA_EINVAL;
  /* streams take the context's parameters when they start (SSL_new) */
  X509_VERIFY_PARAM *vp = SSL_CTX_get0_param(c->ctx);
  const unsigned long all = X509_V_FLAG_X509_STRICT | X509_V_FLAG_PARTIAL_CHAIN;
  unsigned long on = 0;
  if ((flags & UVA_TLS_X509_STRICT) != 0) on |= X509_V_FLAG_X509_STRICT;
  if ((flags & UVA_TLS_X509_PARTIAL_CHAIN) != 0)
    on |= X509_V_FLAG_PARTIAL_CHAIN;
  X509_VERIFY_PARAM_clear_flags(vp, all & ~on);
  if (on != 0) X509_VERIFY_PARAM_set_flags(vp, on);
  return 0;
}

static bool exists(const char *path) {
  FILE *f = std::fopen(path, "rb");
  if (f == nullptr) return false;
  std::fclose(f);
  return true;
}

int tls_ctx_load_ca(TlsCtx *c, const char *file, const char *dir) {
  if (file != nullptr && !exists(file)) return UVA_ENOENT;
  if (dir != nullptr && !exists(dir)) return UVA_ENOENT;
  ERR_clear_error();
  if (SSL_CTX_load_verify_locations(c->ctx, file, dir) != 1) {
    ERR_clear_error();
    return UVA_ETLS;
  }
  c->ca_loaded = true;
  return 0;
}

int tls_ctx_load_ca_pem(TlsCtx *c, const void *pem, size_t len) {
  if (len > INT32_MAX) return UVA_EINVAL;
  BIO *b = BIO_new_mem_buf(pem, int(len));
  if (b == nullptr) return UVA_ENOMEM;
  X509_STORE *store = SSL_CTX_get_cert_store(c->ctx);
  int n = 0;
  X509 *x;
  while ((x = PEM_read_bio_X509(b, nullptr, nullptr, nullptr)) != nullptr) {
    X509_STORE_add_cert(store, x); /* takes its own reference */
    X509_free(x);
    n++;
  }
  BIO_free(b);
  ERR_clear_error();
  if (n == 0) return UVA_ETLS;
  c->ca_loaded = true;
  return 0;
}

int tls_ctx_use_cert_file(TlsCtx *c, const char *chain, const char *key,
                          const char *password) {
  if (key == nullptr) key = chain;
  if (!exists(chain) || !exists(key)) return UVA_ENOENT;
  ERR_clear_error();
  SSL_CTX_set_default_passwd_cb_userdata(c->ctx, const_cast<char *>(password));
  bool ok = SSL_CTX_use_certificate_chain_file(c->ctx, chain) == 1 &&
            SSL_CTX_use_PrivateKey_file(c->ctx, key, SSL_FILETYPE_PEM) == 1 &&
            SSL_CTX_check_private_key(c->ctx) == 1;
  SSL_CTX_set_default_passwd_cb_userdata(c->ctx, nullptr);
  ERR_clear_error();
  return ok ? 0 : UVA_ETLS;
}

int tls_ctx_use_cert_pem(TlsCtx *c, const void *chain, size_t chain_len,
                         const void *key, size_t key_len,
                         const char *password) {
  if (chain_len > INT32_MAX || key_len > INT32_MAX) return UVA_EINVAL;
  ERR_clear_error();
  BIO *b = BIO_new_mem_buf(chain, int(chain_len));
  BIO *kb = BIO_new_mem_buf(key, int(key_len));
  int rc = UVA_ETLS;
  X509 *leaf = nullptr;
  EVP_PKEY *pkey = nullptr;
  if (b == nullptr || kb == nullptr) {
    rc = UVA_ENOMEM;
    goto out;
  }
  leaf = PEM_read_bio_X509_AUX(b, nullptr, nullptr, nullptr);
  if (leaf == nullptr || SSL_CTX_use_certificate(c->ctx, leaf) != 1) goto out;
  SSL_CTX_clear_chain_certs(c->ctx);
  for (X509 *x; (x = PEM_read_bio_X509(b, nullptr, nullptr, nullptr));) {
    if (SSL_CTX_add0_chain_cert(c->ctx, x) != 1) { /* takes x on success */
      X509_free(x);
      goto out;
    }
  }
  pkey = PEM_read_bio_PrivateKey(kb, nullptr, password_cb,
                                 const_cast<char *>(password));
  if (pkey == nullptr || SSL_CTX_use_PrivateKey(c->ctx, pkey) != 1 ||
      SSL_CTX_check_private_key(c->ctx) != 1)
    goto out;
  rc = 0;
out:
  X509_free(leaf);
  EVP_PKEY_free(pkey);
  BIO_free(b);
  BIO_free(kb);
  ERR_clear_error();
  return rc;
}

static bool valid_version(int v) {
  return v == 0 || v == UVA_TLS_VERSION_1_2 || v == UVA_TLS_VERSION_1_3;
}

int tls_ctx_set_versions(TlsCtx *c, int min, int max) {
  if (!valid_version(min) || !valid_version(max)) return UVA_EINVAL;
  if (min != 0 && max != 0 && min > max) return UVA_EINVAL;
  SSL_CTX_set_min_proto_version(c->ctx, min != 0 ? min : TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(c->ctx, max);
  return 0;
}

int tls_ctx_set_ciphers(TlsCtx *c, const char *tls12, const char *tls13) {
  ERR_clear_error();
  int rc = 0;
  if (tls12 != nullptr && SSL_CTX_set_cipher_list(c->ctx, tls12) != 1)
    rc = UVA_EINVAL;
  if (rc == 0 && tls13 != nullptr &&
      SSL_CTX_set_ciphersuites(c->ctx, tls13) != 1)
    rc = UVA_EINVAL;
  ERR_clear_error();
  return rc;
}

int tls_ctx_set_alpn(TlsCtx *c, const char *const *protos, size_t count) {
  std::vector<unsigned char> wire;
  for (size_t i = 0; i < count; i++) {
    if (protos[i] == nullptr) return UVA_EINVAL;
    size_t n = std::strlen(protos[i]);
    if (n == 0 || n > 255) return UVA_EINVAL;
    wire.push_back(static_cast<unsigned char>(n));
    wire.insert(wire.end(), protos[i], protos[i] + n);
  }
  if (wire.size() > 65535) return UVA_EINVAL;
  if (c->role == UVA_TLS_CLIENT &&
      SSL_CTX_set_alpn_protos(c->ctx, wire.empty() ? nullptr : wire.data(),
                              unsigned(wire.size())) != 0)
    return UVA_ENOMEM; /* 0 is success here */
  c->alpn.swap(wire);
  return 0;
}

int tls_ctx_set_session_cache(TlsCtx *c, size_t size) {
  std::lock_guard<std::mutex> g(c->mu);
  c->sessions_max = size;
  while (c->sessions.size() > size) {
    SSL_SESSION_free(c->sessions.front().sess);
    c->sessions.erase(c->sessions.begin());
  }
  apply_cache(c);
  return 0;
}

/* ---- errors -------------------------------------------------------------- */

static int verify_code(long vr) {
  switch (vr) {
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
    case X509_V_ERR_EMAIL_MISMATCH:
      return UVA_ETLSHOSTNAME;
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return UVA_ETLSEXPIRED;
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_UNTRUSTED:
      return UVA_ETLSUNTRUSTED;
    default:
      return UVA_ETLSCERT;
  }
}

/* The code and text of a failed SSL call (ssl_err from SSL_get_error),
 * from OpenSSL's error queue, which it then clears. */
static int map_error(Tls *t, int ssl_err) {
  unsigned long e = ERR_peek_error();
  int reason = e != 0 ? ERR_GET_REASON(e) : 0;
  int code = UVA_ETLS;
  const char *why = e != 0 ? ERR_reason_error_string(e) : nullptr;
  std::snprintf(t->text, sizeof t->text, "%s",
                why != nullptr ? why : "TLS protocol error");
  if (ssl_err == SSL_ERROR_SSL && reason == SSL_R_CERTIFICATE_VERIFY_FAILED) {
    long vr = SSL_get_verify_result(t->ssl);
    code = verify_code(vr);
    std::snprintf(t->text, sizeof t->text, "certificate verify failed: %s",
                  X509_verify_cert_error_string(vr));
  } else if (reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
    code = UVA_ETLSNOCERT;
  } else if (reason == SSL_R_UNSUPPORTED_PROTOCOL ||
             reason == SSL_R_NO_PROTOCOLS_AVAILABLE ||
             reason == SSL_R_TLSV1_ALERT_PROTOCOL_VERSION ||
             reason == SSL_R_WRONG_SSL_VERSION ||
             reason == SSL_R_VERSION_TOO_LOW ||
             reason == SSL_R_VERSION_TOO_HIGH) {
    code = UVA_ETLSVERSION;
  } else if (reason >= SSL_AD_REASON_OFFSET) { /* an alert from the peer */
    code = UVA_ETLSALERT;
  } else if (reason == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
    code = UVA_ETLSEOF;
  }
  ERR_clear_error();
  return code;
}

/* ---- the record layer ---------------------------------------------------- */

/* Hand what OpenSSL wrote (handshake messages, records, alerts) to the
 * stream's write path: sent now, or queued behind earlier writes. */
static void flush_out(Stream *s) {
  Tls *t = s->tls;
  char *p = nullptr;
  long n = BIO_get_mem_data(t->wbio, &p);
  if (n <= 0) return;
  int rc = stream_write_raw(nullptr, s, p, size_t(n));
  (void) BIO_reset(t->wbio);
  /* A closed or shut stream drops what would have gone. Any other
   * failure (no memory for the queue, the kernel's error) lost a record:
   * the session cannot go on, on either side, and the peer would wait for
   * it for ever, so the stream fails now (the tasks then close it). */
  if (rc == 0 || rc == UVA_ECLOSED || s->shut_requested) return;
  if (s->write_err == 0) s->write_err = rc;
  if (!t->failed) {
    t->failed = true;
    t->err = rc;
  }
  if (s->read_err == 0) s->read_err = rc;
  s->more = false;
  libuv_read_stop(s);
  io_wake_all(s);
}

/* A fatal TLS error: sticky for the handshake and both directions. */
static void fail(Stream *s, int code) {
  Tls *t = s->tls;
  t->failed = true;
  t->err = code;
  flush_out(s); /* the alert OpenSSL made for the peer */
  if (t->done && s->read_err == 0) s->read_err = code;
  s->more = false;
  libuv_read_stop(s);
  io_wake_all(s);
}

/* The kernel's end came and OpenSSL needs more: the peer closed without
 * close_notify (or the connection failed). */
static void kernel_ended(Stream *s) {
  Tls *t = s->tls;
  int code = t->kerr != 0 ? t->kerr : UVA_ETLSEOF;
  if (t->kerr == 0)
    std::snprintf(t->text, sizeof t->text, "%s",
                  t->done ? "connection closed without close_notify"
                          : "connection closed during the handshake");
  if (!t->done) {
    fail(s, code);
    return;
  }
  if (s->read_err == 0) s->read_err = code;
  s->more = false;
  libuv_read_stop(s);
  io_wake_all(s);
}

#ifndef _WIN32
/* One recv of ciphertext into OpenSSL's input. False when the kernel had
 * nothing (EAGAIN); true when bytes came, or the end or an error (keof). */
static bool recv_cipher(Stream *s) {
  Tls *t = s->tls;
  int fd = fd_of(s);
  if (fd < 0 || t->keof) return false;
  ssize_t n;
  do {
    n = s->type == UV_TCP ? ::recv(fd, t->cbuf, sizeof t->cbuf, 0)
                          : ::read(fd, t->cbuf, sizeof t->cbuf);
  } while (n < 0 && errno == EINTR);
  if (n > 0) {
    t->kmore = size_t(n) == sizeof t->cbuf || s->hup;
    BIO_write(t->rbio, t->cbuf, int(n));
    return true;
  }
  t->kmore = false;
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
  t->keof = true;
  if (n < 0) t->kerr = -errno;
  return true;
}
#else
static bool recv_cipher(Stream *) { return false; }
#endif

static bool fatal(int ssl_err) {
  return ssl_err != SSL_ERROR_WANT_READ && ssl_err != SSL_ERROR_WANT_WRITE;
}

/* Drive the handshake, then decrypt up to len bytes into buf (len 0: the
 * handshake only); when OpenSSL needs ciphertext, receive it from the
 * kernel if `kernel`. Returns the plaintext bytes; records the end,
 * errors and the handshake's completion on the stream, and sets `more`. */
static size_t pump(Stream *s, char *buf, size_t len, bool kernel) {
  Tls *t = s->tls;
  size_t got = 0;
  while (!t->failed && !s->eof && s->read_err == 0) {
    if (!t->done) {
      ERR_clear_error();
      int r = SSL_do_handshake(t->ssl);
      int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, r);
      flush_out(s);
      if (r == 1) {
        t->done = true;
        io_wake_all(s);
        continue;
      }
      if (fatal(e)) {
        fail(s, map_error(t, e));
        break;
      }
    } else if (len > 0) {
      ERR_clear_error();
      size_t n = 0;
      int r = SSL_read_ex(t->ssl, buf, len, &n);
      int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, r);
      flush_out(s); /* post-handshake messages may want an answer */
      if (r == 1) {
        got = n;
        s->last_read = n;
        break;
      }
      if (e == SSL_ERROR_ZERO_RETURN) { /* the peer's close_notify */
        ERR_clear_error();
        s->eof = true;
        libuv_read_stop(s);
        break;
      }
      if (fatal(e)) {
        fail(s, map_error(t, e));
        break;
      }
    } else {
      break;
    }
    /* OpenSSL needs more ciphertext. */
    if (t->keof && BIO_ctrl_pending(t->rbio) == 0) {
      kernel_ended(s);
      break;
    }
    if (!kernel || !recv_cipher(s)) break;
  }
  s->more = !t->failed && !s->eof && s->read_err == 0 &&
            (SSL_pending(t->ssl) > 0 || BIO_ctrl_pending(t->rbio) > 0 ||
             t->kmore || t->keof);
  return got;
}

size_t tls_read_into(Stream *s, char *buf, size_t len) {
  return pump(s, buf, len, true);
}

void tls_kernel_more(Stream *s) { s->tls->kmore = true; }

uv_buf_t tls_cipher_room(Stream *s) {
  Tls *t = s->tls;
  /* OpenSSL's input is bounded too: one read of ciphertext past what the
   * plaintext limit lets it decrypt. */
  if (BIO_ctrl_pending(t->rbio) >= CIPHER_CHUNK) return uv_buf_init(nullptr, 0);
  return uv_buf_init(t->cbuf, unsigned(sizeof t->cbuf));
}

/* Decrypt what OpenSSL holds into the buffer, up to the flow-control
 * limit (no reads from the kernel). */
static void decrypt_buffered(Stream *s) {
  if (!s->tls->done) pump(s, nullptr, 0, false);
  while (s->tls->done && s->rlen < read_limit(s)) {
    uv_buf_t b = room(s);
    if (b.base == nullptr) {
      s->read_err = UV_ENOBUFS;
      libuv_read_stop(s);
      break;
    }
    size_t n = pump(s, b.base, b.len, false);
    if (n == 0) break;
    s->rlen += n;
  }
}

void tls_feed(Stream *s, const char *data, size_t n) {
  Tls *t = s->tls;
  if (data != t->cbuf) return; /* not ours: cannot happen */
  BIO_write(t->rbio, data, int(n));
  decrypt_buffered(s);
}

void tls_kernel_end(Stream *s, int err) {
  Tls *t = s->tls;
  t->keof = true;
  t->kerr = err;
  t->kmore = false;
  /* What came before the end is decrypted first; the end itself is met
   * by the read that finds OpenSSL needing more (pump). */
  decrypt_buffered(s);
}

/* ---- the API's half ------------------------------------------------------ */

int tls_start(Stream *s, TlsCtx *c, const char *server_name) {
  if (s->st >= StreamState::CLOSING) return UVA_ECLOSED;
  if (s->st == StreamState::CONNECTING)
    return s->conn_err != 0 ? s->conn_err : UVA_ENOTCONN;
  if (s->tls != nullptr) return UVA_EALREADY;
  if (s->sf != nullptr) return UVA_EBUSY;
  if (c->role == UVA_TLS_SERVER && SSL_CTX_get0_certificate(c->ctx) == nullptr)
    return UVA_ETLS;
  if ((c->verify & 0x0f) != UVA_TLS_VERIFY_NONE) {
    std::lock_guard<std::mutex> g(c->mu);
    if (!c->ca_loaded && !c->defaults_loaded) {
      SSL_CTX_set_default_verify_paths(c->ctx);
      ERR_clear_error();
      c->defaults_loaded = true;
    }
  }
  Tls *t = static_cast<Tls *>(fault_calloc(1, sizeof(Tls)));
  if (t == nullptr) return UVA_ENOMEM;
  new (&t->key) std::string();
  t->ssl = fault_hit(FAULT_ALLOC) ? nullptr : SSL_new(c->ctx);
  t->rbio = BIO_new(BIO_s_mem());
  t->wbio = BIO_new(BIO_s_mem());
  if (t->ssl == nullptr || t->rbio == nullptr || t->wbio == nullptr) {
    SSL_free(t->ssl);
    BIO_free(t->rbio);
    BIO_free(t->wbio);
    t->key.~basic_string();
    std::free(t);
    ERR_clear_error();
    return UVA_ENOMEM;
  }
  BIO_set_mem_eof_return(t->rbio, -1); /* empty: "retry", not the end */
  SSL_set_bio(t->ssl, t->rbio, t->wbio);
  SSL_set_ex_data(t->ssl, ex_index(), t);
  c->refs.fetch_add(1, std::memory_order_relaxed);
  t->ctx = c;
  bool ok = true;
  if (c->role == UVA_TLS_CLIENT) {
    SSL_set_connect_state(t->ssl);
    char host[64];
    int port = 0;
    if (stream_address(s, true, host, sizeof host, &port) != 0) host[0] = 0;
    const char *name = server_name != nullptr ? server_name : host;
    t->key = std::string(name) + "#" + std::to_string(port);
    bool ip = false;
    if (server_name != nullptr) {
      unsigned char bin[16];
      ip = inet_pton(AF_INET, server_name, bin) == 1 ||
           inet_pton(AF_INET6, server_name, bin) == 1;
      if (!ip) ok = SSL_set_tlsext_host_name(t->ssl, server_name) == 1;
      if (ok && (c->verify & 0x0f) != UVA_TLS_VERIFY_NONE &&
          !(c->verify & UVA_TLS_VERIFY_NO_HOSTNAME)) {
        X509_VERIFY_PARAM *vp = SSL_get0_param(t->ssl);
        X509_VERIFY_PARAM_set_hostflags(vp,
                                        X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, server_name) == 1
                : X509_VERIFY_PARAM_set1_host(vp, server_name, 0) == 1;
      }
    }
    if (ok && c->sessions_max > 0) {
      SSL_SESSION *sess = session_get(c, t->key);
      if (sess != nullptr) {
        SSL_set_session(t->ssl, sess);
        SSL_SESSION_free(sess);
      }
    }
  } else {
    SSL_set_accept_state(t->ssl);
  }
  if (!ok) {
    ERR_clear_error();
    SSL_free(t->ssl);
    ctx_unref(c);
    t->key.~basic_string();
    std::free(t);
    return UVA_EINVAL;
  }
  s->tls = t;
  /* Bytes read ahead as plaintext are the peer's first records. */
  if (s->rlen > 0) {
    BIO_write(t->rbio, s->rbuf + s->rstart, int(s->rlen));
    s->rstart = s->rlen = 0;
    s->scanned = 0;
  }
  if (s->eof) { /* the peer's end was read already */
    s->eof = false;
    t->keof = true;
  }
  t->kmore = true; /* the kernel may hold some: the first pump looks */
  pump(s, nullptr, 0, true);
  stream_maybe_read(s);
  return 0;
}

static int not_ready(Stream *s) {
  Tls *t = s->tls;
  if (t == nullptr) return UVA_EINVAL;
  if (t->failed && !t->done) return t->err;
  /* The read side failed under the handshake (no memory for the buffer,
   * the connection's error): it cannot finish. */
  if (!t->done && s->read_err != 0) return s->read_err;
  return t->done ? 0 : UVA_ENOTCONN;
}

int tls_io_blocked(Stream *s) { return not_ready(s); }

int tls_handshake(Stream *s, Task *task) {
  Wait *w = sync_find(task, s);
  int rc = 0;
  if (s->tls == nullptr)
    rc = UVA_EINVAL;
  else if (s->st >= StreamState::CLOSING)
    rc = UVA_ECLOSED;
  else if (!s->tls->done && !s->tls->failed && s->more)
    pump(s, nullptr, 0, true);
  if (rc == 0) rc = not_ready(s);
  if (rc == 0 && s->tls->failed && s->tls->done) rc = s->tls->err;
  if (rc != UVA_ENOTCONN) {
    if (w != nullptr) sync_drop(w);
    return rc;
  }
  stream_maybe_read(s);
  if (w != nullptr) return UVA_EAGAIN;
  return sync_enlist(s, task, WaitKind::IO);
}

int tls_write(size_t *queued, Stream *s, const uva_buf_t *bufs, size_t nbufs) {
  Tls *t = s->tls;
  if (s->st >= StreamState::CLOSING) return UVA_ECLOSED;
  if (s->write_err != 0) return s->write_err;
  if (s->shut_requested || t->notify_sent) return UVA_EPIPE;
  if (t->failed) return t->err;
  if (!t->done) return UVA_ENOTCONN;
  size_t staged = 0;
  auto put = [&](const char *p, size_t n) -> int {
    ERR_clear_error();
    size_t w = 0;
    if (SSL_write_ex(t->ssl, p, n, &w) != 1) {
      int e = SSL_get_error(t->ssl, 0);
      fail(s, map_error(t, e));
      return t->err;
    }
    flush_out(s);
    return s->write_err;
  };
  for (size_t i = 0; i < nbufs; i++) {
    const char *p = static_cast<const char *>(bufs[i].base);
    size_t n = bufs[i].len;
    if (n < STAGE / 4 && staged + n <= STAGE) { /* small: gather */
      std::memcpy(t->stage + staged, p, n);
      staged += n;
      continue;
    }
    if (staged > 0) {
      int rc = put(t->stage, staged);
      staged = 0;
      if (rc != 0) return rc;
      if (n < STAGE / 4) {
        std::memcpy(t->stage, p, n);
        staged = n;
        continue;
      }
    }
    while (n > 0) {
      size_t k = n < WRITE_CHUNK ? n : WRITE_CHUNK;
      int rc = put(p, k);
      if (rc != 0) return rc;
      p += k;
      n -= k;
    }
  }
  if (staged > 0) {
    int rc = put(t->stage, staged);
    if (rc != 0) return rc;
  }
  if (queued != nullptr) *queued = s->wqueued;
  return 0;
}

void tls_close_notify(Stream *s) {
  Tls *t = s->tls;
  if (t == nullptr || t->notify_sent || t->failed || !t->done) return;
  t->notify_sent = true;
  ERR_clear_error();
  SSL_shutdown(t->ssl); /* one way: we do not wait for the peer's */
  ERR_clear_error();
  flush_out(s);
}

void tls_free(Stream *s) {
  Tls *t = s->tls;
  if (t == nullptr) return;
  s->tls = nullptr;
  SSL_free(t->ssl); /* frees both BIOs */
  ctx_unref(t->ctx);
  t->key.~basic_string();
  std::free(t);
}

/* ---- queries ------------------------------------------------------------- */

static int copy_str(char *buf, size_t buflen, const char *v, size_t n) {
  if (n + 1 > buflen) return UVA_ENOBUFS;
  if (n > 0) std::memcpy(buf, v, n); /* v may be NULL for "" (no ALPN) */
  buf[n] = '\0';
  return 0;
}

static int done_check(Stream *s) {
  if (s->tls == nullptr) return UVA_EINVAL;
  return s->tls->done ? 0 : UVA_ENOTCONN;
}

int tls_version(int *out, Stream *s) {
  int rc = done_check(s);
  if (rc == 0) *out = SSL_version(s->tls->ssl);
  return rc;
}

int tls_alpn(Stream *s, char *buf, size_t buflen) {
  int rc = done_check(s);
  if (rc != 0) return rc;
  const unsigned char *p = nullptr;
  unsigned int n = 0;
  SSL_get0_alpn_selected(s->tls->ssl, &p, &n);
  return copy_str(buf, buflen, reinterpret_cast<const char *>(p), n);
}

int tls_cipher(Stream *s, char *buf, size_t buflen) {
  int rc = done_check(s);
  if (rc != 0) return rc;
  const char *name = SSL_get_cipher_name(s->tls->ssl);
  if (name == nullptr) name = "";
  return copy_str(buf, buflen, name, std::strlen(name));
}

int tls_server_name(Stream *s, char *buf, size_t buflen) {
  int rc = done_check(s);
  if (rc != 0) return rc;
  const char *name = SSL_get_servername(s->tls->ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr) name = "";
  return copy_str(buf, buflen, name, std::strlen(name));
}

int tls_peer_cert(size_t *len, Stream *s, void *buf, size_t buflen) {
  int rc = done_check(s);
  if (rc != 0) return rc;
  X509 *x = SSL_get1_peer_certificate(s->tls->ssl);
  *len = 0;
  if (x == nullptr) return 0;
  int n = i2d_X509(x, nullptr);
  if (n < 0) {
    X509_free(x);
    ERR_clear_error();
    return UVA_ETLS;
  }
  *len = size_t(n);
  if (size_t(n) > buflen) {
    X509_free(x);
    return UVA_ENOBUFS;
  }
  unsigned char *p = static_cast<unsigned char *>(buf);
  i2d_X509(x, &p);
  X509_free(x);
  return 0;
}

int tls_verify_result(int *code, Stream *s, char *buf, size_t buflen) {
  if (s->tls == nullptr) return UVA_EINVAL;
  if (!s->tls->done && !s->tls->failed) return UVA_ENOTCONN;
  long vr = SSL_get_verify_result(s->tls->ssl);
  *code = int(vr);
  if (buf != nullptr && buflen > 0)
    std::snprintf(buf, buflen, "%s", X509_verify_cert_error_string(vr));
  return 0;
}

int tls_error_text(Stream *s, char *buf, size_t buflen) {
  if (s->tls == nullptr) return UVA_EINVAL;
  if (buf != nullptr && buflen > 0)
    std::snprintf(buf, buflen, "%s", s->tls->text);
  return 0;
}

int tls_session_reused(int *out, Stream *s) {
  int rc = done_check(s);
  if (rc == 0) *out = SSL_session_reused(s->tls->ssl) ? 1 : 0;
  return rc;
}

bool tls_available() { return true; }

#else /* no OpenSSL: every call says so, the hooks have nothing to do */

struct TlsCtx {};
bool tls_available() { return false; }
int tls_ctx_new(TlsCtx **, uva_tls_role) { return UVA_ENOTSUP; }
TlsCtx *tls_ctx_check(void *, int *rc) {
  *rc = UVA_ENOTSUP;
  return nullptr;
}
void tls_ctx_free(TlsCtx *) {}
int tls_ctx_set_verify(TlsCtx *, int) { return UVA_ENOTSUP; }
int tls_ctx_set_verify_flags(TlsCtx *, int) { return UVA_ENOTSUP; }
int tls_ctx_load_ca(TlsCtx *, const char *, const char *) {
  return UVA_ENOTSUP;
}
int tls_ctx_load_ca_pem(TlsCtx *, const void *, size_t) { return UVA_ENOTSUP; }
int tls_ctx_use_cert_file(TlsCtx *, const char *, const char *, const char *) {
  return UVA_ENOTSUP;
}
int tls_ctx_use_cert_pem(TlsCtx *, const void *, size_t, const void *, size_t,
                         const char *) {
  return UVA_ENOTSUP;
}
int tls_ctx_set_versions(TlsCtx *, int, int) { return UVA_ENOTSUP; }
int tls_ctx_set_ciphers(TlsCtx *, const char *, const char *) {
  return UVA_ENOTSUP;
}
int tls_ctx_set_alpn(TlsCtx *, const char *const *, size_t) {
  return UVA_ENOTSUP;
}
int tls_ctx_set_session_cache(TlsCtx *, size_t) { return UVA_ENOTSUP; }
int tls_start(Stream *, TlsCtx *, const char *) { return UVA_ENOTSUP; }
int tls_handshake(Stream *, Task *) { return UVA_ENOTSUP; }
int tls_io_blocked(Stream *) { return 0; }
size_t tls_read_into(Stream *, char *, size_t) { return 0; }
void tls_kernel_more(Stream *) {}
uv_buf_t tls_cipher_room(Stream *) { return uv_buf_init(nullptr, 0); }
void tls_feed(Stream *, const char *, size_t) {}
void tls_kernel_end(Stream *, int) {}
int tls_write(size_t *, Stream *, const uva_buf_t *, size_t) {
  return UVA_ENOTSUP;
}
void tls_close_notify(Stream *) {}
void tls_free(Stream *) {}
int tls_version(int *, Stream *) { return UVA_ENOTSUP; }
int tls_alpn(Stream *, char *, size_t) { return UVA_ENOTSUP; }
int tls_cipher(Stream *, char *, size_t) { return UVA_ENOTSUP; }
int tls_server_name(Stream *, char *, size_t) { return UVA_ENOTSUP; }
int tls_peer_cert(size_t *, Stream *, void *, size_t) { return UVA_ENOTSUP; }
int tls_verify_result(int *, Stream *, char *, size_t) { return UVA_ENOTSUP; }
int tls_error_text(Stream *, char *, size_t) { return UVA_ENOTSUP; }
int tls_session_reused(int *, Stream *) { return UVA_ENOTSUP; }

#endif

}  // namespace detail
}  // namespace uva
