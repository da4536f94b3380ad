/*
 * tls: the TLS side of one listener on one worker.
 *
 * A struct ush_tls holds one SSL_CTX per configured certificate (the first
 * is the default, SNI picks among them), the listener's ALPN list and one
 * ticket shard shared by all those contexts. Each worker builds its own for
 * each listener, so nothing in it is shared between threads except the
 * ticket key source, which is reference counted.
 *
 * Library context: every SSL_CTX, certificate, key and ticket algorithm
 * of a struct ush_tls comes from the OSSL_LIB_CTX it was created with.
 * A worker passes its own, so that its handshakes stay out of OpenSSL's
 * default context, whose algorithm store, property cache and primary
 * random generator every other worker locks too: with that context
 * shared, two threads do about 1.5x the resumed handshakes of one; with
 * a context each, about 1.9x (bench/micro, scaling/).
 *
 * Policy fixed here, not in the configuration:
 *   - TLS 1.2 is the floor; `protocols` can only narrow it to one version.
 *   - Renegotiation is refused, the server's cipher order wins, key
 *     exchange is X25519 or P-256.
 *   - Record buffers are released whenever they are empty, so an idle
 *     connection costs no buffer memory inside OpenSSL.
 *   - A client that closes its TCP side without close_notify is treated as
 *     having closed cleanly (SSL_OP_IGNORE_UNEXPECTED_EOF): usher relays
 *     that end of stream to the upstream as a half-close, which is what
 *     the upstream's own protocol framing then judges.
 *
 * ALPN policy (server preference):
 *   - listener without an ALPN list: the extension is ignored;
 *   - a protocol both sides know: the first such one in the listener's
 *     list is selected;
 *   - no protocol in common: the handshake goes on without ALPN. usher
 *     relays bytes without understanding them and cannot know better than
 *     the client which protocol it may fall back to; a client that needs
 *     its protocol (h2-only, acme-tls/1) sees no selection and stops by
 *     itself, as RFC 7301 clients must.
 *
 * SNI: the first certificate, in configuration order, whose names match
 * the requested host (X509_check_host(), wildcards allowed) serves the
 * connection; an unknown or missing name gets the default.
 */
#ifndef USHER_TLS_H
#define USHER_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "cfg.h"
#include "tkc.h"
#include "upstream.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ush_tls;

/* Why ush_tls_create() failed, for the caller's log line. */
struct ush_tls_error {
	char path[256];   /* the certificate or key file at fault, or "" */
	char reason[256]; /* OpenSSL's or the system's reason */
};

/*
 * Build the TLS contexts of listener l in libctx (NULL: OpenSSL's default
 * context; otherwise it must outlive the result): load every certificate
 * and key, and create a ticket shard over src (which it references) with
 * the lifetime and affinity of t. err may be NULL.
 *
 * Returns 0, -ENOENT/-EACCES/... when a file cannot be read, -EPERM when a
 * private key file is open to every user (mode & 007; a key group is
 * fine, as in config validation), -EINVAL when a file
 * does not hold a usable certificate or key (or they do not match),
 * -ENOMEM, or -EIO for another OpenSSL failure. Key material is never put
 * in err. Any thread; the result belongs to the calling worker.
 */
int ush_tls_create(const struct cfg_listener *l, struct tkc_source *src,
		   const struct cfg_tickets *t, OSSL_LIB_CTX *libctx, struct ush_tls **out,
		   struct ush_tls_error *err);

/*
 * Free the contexts and the shard. Every SSL made from tls must be freed
 * first: their callbacks point into it. NULL is a no-op.
 */
void ush_tls_free(struct ush_tls *tls);

/*
 * The pool whose servers tickets may name, for the affinity check of
 * resumed tickets. ush_conn_init() sets it from its env's balancer, so an
 * engine need not call it.
 */
void ush_tls_bind_pool(struct ush_tls *tls, const struct ush_pool *pool);

/*
 * A new server-side SSL on the default context, or NULL (out of memory).
 * The caller sets its BIOs and attaches its tkc_conn.
 */
SSL *ush_tls_new_ssl(struct ush_tls *tls);

/* The library context tls was created in (NULL: the default). */
OSSL_LIB_CTX *ush_tls_libctx(const struct ush_tls *tls);

/* The ticket shard, for counters and key publication (reload). */
struct tkc_shard *ush_tls_shard(struct ush_tls *tls);

/* The contexts, in configuration order: [0] is the default. */
size_t ush_tls_ctx_count(const struct ush_tls *tls);
SSL_CTX *ush_tls_ctx(struct ush_tls *tls, size_t i);

#ifdef __cplusplus
}
#endif

#endif
