/*
 * harness: drive a real struct ush_conn the way an engine would, with a
 * real OpenSSL client on the other side of an in-memory BIO pair and a
 * byte buffer standing in for the upstream socket.
 *
 *   client SSL <-> BIO pair <-> hc_pump() <-> ush_conn <-> hc_pump() <-> up_rx / up_tx
 *
 * The world has one listener, a pool of two servers ("s0", "s1", round
 * robin) and two workers, each with its own OpenSSL library context,
 * struct ush_tls, balancer and counters, sharing one ticket key source: a
 * ticket issued by one worker resumes on the other, as across the workers
 * of a real process.
 */
#ifndef USHER_TEST_CONN_HARNESS_H
#define USHER_TEST_CONN_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "cfg.h"
#include "conn.h"
#include "stats.h"
#include "tls.h"
#include "upstream.h"

#define HW_WORKERS 2
#define HW_SERVERS 2
#define HW_CERTS   3

struct hw_opts {
	size_t n_certs; /* 1..3: "default.test", "*.example.test", "api.test" */
	bool alpn;      /* listener offers h2, http/1.1 */
	enum cfg_proxy_protocol proxy_protocol;
	unsigned protocols; /* CFG_PROTO_* bits, 0 = both */
};

struct hw_worker {
	OSSL_LIB_CTX *libctx; /* as each usher worker has its own */
	struct ush_tls *tls;
	struct ush_balancer balancer;
	struct ush_conn_stats stats;
	struct ush_conn_env env;
};

struct hw {
	char dir[256];
	char cert_paths[HW_CERTS][512];
	char key_paths[HW_CERTS][512];
	struct cfg_certificate certs[HW_CERTS];
	char alpn_names[2][16];
	char *alpn[2];
	char listener_name[16];
	struct cfg_listener listener;
	char server_names[HW_SERVERS][8];
	struct cfg_server servers[HW_SERVERS];
	char pool_name[16];
	struct cfg_pool pool;
	struct cfg cfg;
	struct cfg_tickets tickets;
	struct cfg_timeouts timeouts;
	struct ush_pools *pools;
	struct tkc_source *src;
	struct hw_worker workers[HW_WORKERS];
	uint64_t now; /* the workers' clock, moved by tests */
};

/* Build the world: certificates in a temporary directory, pools, workers. */
int hw_setup(struct hw *w, const struct hw_opts *o);
void hw_teardown(struct hw *w);

struct ush_server *hw_server(struct hw *w, size_t i);
void hw_set_up(struct hw *w, size_t i, bool up);

/* A client of exactly one TLS version that keeps the newest session. */
struct hc_client {
	SSL_CTX *ctx;
	SSL_SESSION *newest;
};

/* version: TLS1_2_VERSION or TLS1_3_VERSION. alpn may be NULL. */
int hc_client_init(struct hc_client *cl, int version, const unsigned char *alpn, size_t alpn_len);
void hc_client_free(struct hc_client *cl);

/* Take the newest session (the caller frees it), NULL if none came. */
SSL_SESSION *hc_client_take_session(struct hc_client *cl);

struct hc_bytes {
	unsigned char *data;
	size_t len;
	size_t cap;
};

/* One connection under test. */
struct hc {
	struct hw *w;
	struct hw_worker *wk;
	struct hc_client *cl;
	struct ush_conn c;
	SSL *ssl;
	BIO *net; /* our end of the client's BIO pair */
	char sni[256];

	/* the client application */
	const unsigned char *tx; /* to write through the client SSL */
	size_t tx_len, tx_off;
	struct hc_bytes rx; /* read from the client SSL */
	bool rx_closed;     /* the client saw close_notify */
	bool tcp_eof;       /* the client's TCP side closed */
	bool tcp_eof_told;
	bool hold_client; /* the client reads nothing */

	/* the upstream */
	struct hc_bytes up_rx; /* what the upstream received */
	const unsigned char *up_tx;
	size_t up_tx_len, up_tx_off;
	bool up_eof; /* the upstream closes once up_tx is delivered */
	bool up_eof_told;
	bool up_shut;        /* we saw SHUT_UPSTREAM */
	bool hold_upstream;  /* the upstream reads nothing */
	unsigned fail_mask;  /* servers (bit i = s<i>) whose connect fails */
	bool connect_silent; /* connects never complete */
	unsigned started_try;
	int connects[8]; /* server index of each connect, in order */
	size_t n_connects;

	/* what we saw */
	size_t max_to_client, max_to_upstream, max_from_client;
	size_t sent_to_client; /* ciphertext bytes the conn got sent */
	bool closed;           /* the conn wanted CLOSE */
};

/*
 * Start a connection on worker wk of w from client cl, offering sni and
 * session (both may be NULL). The client address is 192.0.2.1:5555, the
 * local one 127.0.0.1:8443. 0 or -1.
 */
int hc_open(struct hc *h, struct hw *w, int wk, struct hc_client *cl, const char *sni,
	    SSL_SESSION *session);
void hc_free(struct hc *h);

/* Move bytes as the conn wants, until nothing moves. Whether any moved. */
bool hc_pump(struct hc *h);

/* The client and the conn step in turn until nothing moves on either. */
void hc_settle(struct hc *h);

/* Run the client's handshake. 0 when the client completed it, else -1. */
int hc_handshake(struct hc *h);

/* Handshake, then settle until the relay runs. 0 or -1. */
int hc_establish(struct hc *h);

/* Whether the conn holds no buffer memory at all. */
bool hc_holds_no_buffers(const struct hc *h);

/* The client sends close_notify; then (tcp_eof) closes its TCP side. */
void hc_client_close(struct hc *h, bool tcp_eof);

/* A deterministic byte pattern. */
void hc_fill(unsigned char *buf, size_t len, unsigned seed);

#endif
