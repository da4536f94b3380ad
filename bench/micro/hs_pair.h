/*
 * hs_pair: in-memory TLS handshakes for the microbenchmarks.
 *
 * A real OpenSSL client and a real server talk over a BIO pair, with no
 * socket and no kernel in between, so what is left is the CPU that the
 * TLS library, the certificate and the ticket callbacks cost. Only the
 * server is measured: each of its SSL_do_handshake() calls is bracketed
 * by CLOCK_THREAD_CPUTIME_ID reads, so the client's work, the pump and
 * the benchmark framework stay out of the figure (see hs_connect()).
 *
 * Servers are set up the way usher sets up a listener on a worker
 * (proxy/conn/tls.c): TLS_server_method, TLS 1.2 and 1.3, usher's cipher
 * list, groups X25519:P-256, SSL_MODE_RELEASE_BUFFERS, an ECDSA P-256
 * certificate. Each server SSL_CTX holds its own copy of the certificate
 * and key, as each usher worker loads its own.
 *
 * The _ex constructors put a server or client in an OpenSSL library
 * context (NULL is the default one): the SSL_CTX, its certificate and key
 * objects and the shard's algorithms all come from that context, so two
 * threads with their own contexts share no libcrypto store at all.
 *
 * Everything here is single-threaded per object: a benchmark thread owns
 * its clients and servers. hs_identity_init() runs once, before any
 * thread starts.
 */
#ifndef USHER_HS_PAIR_H
#define USHER_HS_PAIR_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "tkc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Make the key and certificate every server copies. 0 or -1. */
int hs_identity_init(void);
void hs_identity_free(void);

/*
 * What a server is:
 *   shard != NULL  usher's setup: this SSL_CTX belongs to one thread and
 *                  has a tkc_shard attached (stateless tickets from the
 *                  shard's keys, appdata with a server id, no cache);
 *   shard == NULL  OpenSSL's built-in ticket keys and no session cache,
 *                  the setup of a terminator that shares one SSL_CTX
 *                  between threads.
 */
struct hs_server {
	SSL_CTX *ctx;
	struct tkc_shard *shard;
};

/* usher's setup with a shard over src (which it references). 0 or -1. */
int hs_server_usher(struct hs_server *s, struct tkc_source *src);

/* The same in libctx, which must outlive the server. 0 or -1. */
int hs_server_usher_ex(struct hs_server *s, struct tkc_source *src, OSSL_LIB_CTX *libctx);

/* One SSL_CTX with OpenSSL's own ticket keys, no cache. 0 or -1. */
int hs_server_builtin(struct hs_server *s);

/* Send no tickets at all (TLS 1.2 and 1.3), to price ticket issue. */
void hs_server_no_tickets(struct hs_server *s);

/*
 * Replace OpenSSL's default TLS 1.3 suite order (which puts
 * TLS_AES_256_GCM_SHA384 first, so the key schedule runs on SHA-384) with
 * suites, for what-if measurements. 0 or -1.
 */
int hs_server_tls13_suites(struct hs_server *s, const char *suites);

void hs_server_free(struct hs_server *s);

/*
 * A client of exactly one version (TLS1_2_VERSION or TLS1_3_VERSION).
 * hs_fetch_session() gives it a session, which it may then offer any
 * number of times: its session cache is on only while it fetches, because
 * an OpenSSL client with a cache marks a TLS 1.3 session not resumable
 * once it has resumed (single use). The server's work does not depend on
 * whether a ticket was seen before: OpenSSL keeps no replay state for
 * tickets without early data.
 */
struct hs_client {
	SSL_CTX *ctx;
	SSL_SESSION *newest; /* owned */
};

int hs_client_init(struct hs_client *c, int version);

/* A client in libctx, which must outlive it. 0 or -1. */
int hs_client_init_ex(struct hs_client *c, int version, OSSL_LIB_CTX *libctx);
void hs_client_free(struct hs_client *c);

struct hs_result {
	uint64_t server_hs_ns;    /* thread CPU inside server SSL_do_handshake() */
	uint64_t server_conn_ns;  /* thread CPU of server SSL_new/shutdown/free */
	bool reused;              /* both sides say the session was resumed */
	enum tkc_outcome outcome; /* what the shard decided; NONE without one */
};

/*
 * One connection: handshake, close_notify both ways (without the
 * client's, OpenSSL would mark offer as not resumable), free. offer may
 * be NULL. The caller checks res->reused when it expects a resumption.
 * 0, or -1 when the handshake failed.
 */
int hs_connect(struct hs_client *c, struct hs_server *s, SSL_SESSION *offer, struct hs_result *res);

/*
 * A full handshake that also reads one byte of application data, which
 * makes a TLS 1.3 client take in the tickets that follow the handshake.
 * Returns the newest session for later offers (the caller frees it), or
 * NULL.
 */
SSL_SESSION *hs_fetch_session(struct hs_client *c, struct hs_server *s);

/*
 * An established connection, for work after the handshake. tkc is
 * attached to server, so the struct must not move while open.
 */
struct hs_conn {
	SSL *client;
	SSL *server;
	struct tkc_conn tkc;
};

/* A full handshake between c and s, left open. 0 or -1. */
int hs_conn_open(struct hs_conn *conn, struct hs_client *c, struct hs_server *s);

/*
 * TLS 1.3 only: the server writes one more ticket (SSL_new_session_ticket),
 * which runs the ticket callbacks and OpenSSL's ticket encryption; the
 * bytes are dropped on the client side unread. Adds the server's CPU to
 * *ns. 0 or -1.
 */
int hs_conn_issue_ticket(struct hs_conn *conn, uint64_t *ns);

/* close_notify both ways and free. */
void hs_conn_close(struct hs_conn *conn);

/*
 * What one CLOCK_THREAD_CPUTIME_ID interval costs with nothing inside
 * it; hs_connect() subtracts it from each interval it measures.
 */
uint64_t hs_clock_overhead_ns(void);

/* A fixed server id, as pick_server would choose in usher. */
#define HS_SERVER_ID "backend-a:8443"

#ifdef __cplusplus
}
#endif

#endif
