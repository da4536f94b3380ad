/*
 * fixtures: real key material for tests, made at run time so that nothing
 * secret is committed. Certificates are self-signed ECDSA P-256.
 */
#ifndef USHER_FIXTURES_H
#define USHER_FIXTURES_H

#include <stddef.h>

#include <openssl/ssl.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A new ECDSA P-256 key and a self-signed certificate for cn. 0 or -1. */
int fixture_make_cert(const char *cn, EVP_PKEY **key, X509 **cert);

/*
 * Write a new certificate and key as PEM to cert_path and key_path (the
 * key with mode 0600). 0 or -1.
 */
int fixture_write_cert(const char *cn, const char *cert_path, const char *key_path);

/* Create a fresh directory under $TMPDIR or /tmp; path gets its name. */
int fixture_tmpdir(char *path, size_t cap);

/* Remove a directory made by fixture_tmpdir() and what is in it. */
void fixture_rmdir(const char *path);

/* Write len bytes to path with the given mode. 0 or -1. */
int fixture_write_file(const char *path, const void *data, size_t len, int mode);

#ifdef __cplusplus
}
#endif

#endif
