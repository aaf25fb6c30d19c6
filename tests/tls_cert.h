/* A self-signed certificate for localhost (P-256) made with OpenSSL's API,
 * as PEM in memory, for the plain TLS test programs (tests/fault/fault_tls.c,
 * tests/threads/tls.c); the Criterion suites use tls_support.h. No
 * Criterion here: failures return -1. */
#ifndef UVASYNC_TESTS_TLS_CERT_H
#define UVASYNC_TESTS_TLS_CERT_H

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

/* Copy what a memory BIO holds into a malloc'ed buffer (*len bytes). */
static char *tls_cert_take(BIO *b, size_t *len) {
  char *p;
  long n = BIO_get_mem_data(b, &p);
  char *out = malloc(n > 0 ? (size_t) n : 1);
  if (out != NULL && n > 0) memcpy(out, p, (size_t) n);
  *len = n > 0 ? (size_t) n : 0;
  BIO_free(b);
  return out;
}

/* *cert and *key (PEM, malloc'ed; the caller frees them): 0, or -1. */
static int tls_cert_make(char **cert, size_t *cert_len, char **key,
                         size_t *key_len) {
  EVP_PKEY *k = EVP_EC_gen("P-256");
  X509 *x = X509_new();
  if (k == NULL || x == NULL) return -1;
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 24 * 3600);
  X509_set_pubkey(x, k);
  X509_NAME *name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             (const unsigned char *) "localhost", -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
  X509_EXTENSION *e =
      X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, "DNS:localhost");
  X509_add_ext(x, e, -1);
  X509_EXTENSION_free(e);
  int ok = X509_sign(x, k, EVP_sha256()) > 0;
  BIO *cb = BIO_new(BIO_s_mem()), *kb = BIO_new(BIO_s_mem());
  ok = ok && PEM_write_bio_X509(cb, x) &&
       PEM_write_bio_PrivateKey(kb, k, NULL, NULL, 0, NULL, NULL);
  *cert = tls_cert_take(cb, cert_len);
  *key = tls_cert_take(kb, key_len);
  X509_free(x);
  EVP_PKEY_free(k);
  return ok && *cert != NULL && *key != NULL ? 0 : -1;
}

#endif /* UVASYNC_TESTS_TLS_CERT_H */
