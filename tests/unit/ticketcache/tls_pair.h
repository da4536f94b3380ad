/*
 * tls_pair: real OpenSSL clients and servers talking over an in-memory BIO
 * pair, for tests of the ticket callbacks. A server is one SSL_CTX with
 * one tkc_shard attached; a client is one SSL_CTX pinned to one protocol
 * version that keeps the newest ticket it was sent.
 *
 * A server lives in the library context its shard params name (NULL: the
 * default): its SSL_CTX, certificate and key come from that context too,
 * as a usher worker's do. Clients always use the default context.
 */
#ifndef USHER_TLS_PAIR_H
#define USHER_TLS_PAIR_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "tkc.h"

struct tp_server {
	SSL_CTX *ctx;
	struct tkc_shard *shard;
};

struct tp_client {
	SSL_CTX *ctx;
	SSL_SESSION *newest; /* from the new-session callback, owned */
	int tickets;         /* tickets received in the current connection */
	const char *sni;     /* server name to send, or NULL */
};

struct tp_result {
	bool client_reused;
	bool server_reused;
	int tickets;          /* tickets the client received */
	struct tkc_conn conn; /* the server's ticket state */
	SSL_SESSION *session; /* the session to offer next time, owned */

	/*
	 * The provider of the client's key share as the server decoded it,
	 * which tells the library context the server's SSL ran in.
	 */
	const OSSL_PROVIDER *server_kex_provider;
};

/* Make the certificate every server uses. 0 or -1. */
int tp_init(void);
void tp_cleanup(void);

/* A server SSL_CTX with the test certificate and no shard, or NULL. */
SSL_CTX *tp_server_ctx(void);

/* The same in libctx, with a certificate and key decoded in it. */
SSL_CTX *tp_server_ctx_in(OSSL_LIB_CTX *libctx);

/* A server with a shard from params, attached, in params->libctx. 0 or -1. */
int tp_server_init(struct tp_server *s, const struct tkc_shard_params *params);
void tp_server_free(struct tp_server *s);

/* A client of exactly TLS1_2_VERSION or TLS1_3_VERSION. 0 or -1. */
int tp_client_init(struct tp_client *c, int version);
void tp_client_free(struct tp_client *c);

/*
 * One connection: handshake, one byte from server to client (which makes
 * a TLS 1.3 client read the tickets), close_notify both ways. offer may
 * be NULL. On success res->session holds the newest ticket received, or
 * the session used when no ticket came. 0, or -1 when the handshake
 * failed.
 */
int tp_connect(struct tp_client *c, struct tp_server *s, SSL_SESSION *offer, struct tp_result *res);

/* Free res->session. */
void tp_result_clear(struct tp_result *res);

/*
 * A copy of sess whose ticket is replaced by ticket[0..len), made by
 * rewriting the DER encoding of the session. NULL on failure.
 */
SSL_SESSION *tp_session_with_ticket(SSL_SESSION *sess, const unsigned char *ticket, size_t len);

/* Whether the server chosen for a connection is id. */
bool tp_conn_server_is(const struct tkc_conn *c, const char *id);

#endif
