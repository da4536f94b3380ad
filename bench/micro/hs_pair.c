/*
 * hs_pair: in-memory handshakes with the server's CPU measured.
 *
 * The pump alternates client and server, stepping only a side that is not
 * done, so every handshake shape here costs the server exactly two
 * SSL_do_handshake() calls:
 *
 *	TLS 1.3 full/resumed  CH -> [SH..Fin]        Fin -> [tickets]
 *	TLS 1.2 full          CH -> [SH,Cert,SKE]    CKE,Fin -> [NST,Fin]
 *	TLS 1.2 resumed       CH -> [SH,NST?,Fin]    Fin -> done
 */
#include "hs_pair.h"

#include <string.h>
#include <time.h>

#include <openssl/err.h>

#include "fixtures.h"

#define PUMP_ROUNDS   16
#define CLOCK_SAMPLES 4096

/* usher's policy, as in proxy/conn/tls.c */
#define TLS12_CIPHERS                                                \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define LISTENER          "bench"
#define TICKET_LIFETIME_S (12 * 3600)

/* usher's TLS 1.3 order (proxy/conn/tls.c): the SHA-256 suite first. */
#define TLS13_CIPHERS "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384"

/* Not const: SSL_CTX_set1_groups_list() is a macro that casts it so. */
static char key_exchange_groups[] = "X25519:P-256";

/*
 * The identity as DER, decoded afresh for each server: a decoded copy
 * belongs to the library context it was decoded in, where EVP_PKEY_dup()
 * would keep the original's.
 */
static unsigned char *identity_key_der;
static unsigned char *identity_cert_der;
static int identity_key_len;
static int identity_cert_len;
static uint64_t clock_overhead_ns;

/* ---- clocks ------------------------------------------------------------- */

static uint64_t
thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * A CPU-clock read is a system call here (the vDSO serves only wall
 * clocks), a few hundred ns, and part of it lands inside each interval.
 */
static uint64_t
measure_clock_overhead(void)
{
	uint64_t total = 0;

	for (int i = 0; i < CLOCK_SAMPLES; i++) {
		uint64_t t0 = thread_cpu_ns();

		total += thread_cpu_ns() - t0;
	}
	return total / CLOCK_SAMPLES;
}

uint64_t
hs_clock_overhead_ns(void)
{
	return clock_overhead_ns;
}

static uint64_t
interval_ns(uint64_t t0, uint64_t t1)
{
	uint64_t d = t1 - t0;

	return d > clock_overhead_ns ? d - clock_overhead_ns : 0;
}

/* ---- identity ----------------------------------------------------------- */

int
hs_identity_init(void)
{
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;

	clock_overhead_ns = measure_clock_overhead();
	if (fixture_make_cert("usher-bench", &key, &cert) != 0)
		return -1;

	identity_key_len = i2d_PrivateKey(key, &identity_key_der);
	identity_cert_len = i2d_X509(cert, &identity_cert_der);
	EVP_PKEY_free(key);
	X509_free(cert);
	return identity_key_len > 0 && identity_cert_len > 0 ? 0 : -1;
}

void
hs_identity_free(void)
{
	OPENSSL_clear_free(identity_key_der, identity_key_len > 0 ? (size_t)identity_key_len : 0);
	OPENSSL_free(identity_cert_der);
	identity_key_der = NULL;
	identity_cert_der = NULL;
	identity_key_len = 0;
	identity_cert_len = 0;
}

static X509 *
decode_cert(OSSL_LIB_CTX *libctx)
{
	const unsigned char *p = identity_cert_der;
	X509 *cert = X509_new_ex(libctx, NULL);

	if (cert != NULL && d2i_X509(&cert, &p, identity_cert_len) == NULL) {
		X509_free(cert);
		return NULL;
	}
	return cert;
}

/* Copies, so that no two SSL_CTX share a key object, as in usher. */
static int
use_identity(SSL_CTX *ctx, OSSL_LIB_CTX *libctx)
{
	const unsigned char *p = identity_key_der;
	EVP_PKEY *key = d2i_AutoPrivateKey_ex(NULL, &p, identity_key_len, libctx, NULL);
	X509 *cert = decode_cert(libctx);
	int ok = key != NULL && cert != NULL && SSL_CTX_use_certificate(ctx, cert) == 1 &&
		 SSL_CTX_use_PrivateKey(ctx, key) == 1;

	EVP_PKEY_free(key);
	X509_free(cert);
	return ok ? 0 : -1;
}

/* ---- servers ------------------------------------------------------------ */

static SSL_CTX *
new_server_ctx(OSSL_LIB_CTX *libctx)
{
	SSL_CTX *ctx = SSL_CTX_new_ex(libctx, NULL, TLS_server_method());

	if (ctx == NULL)
		return NULL;

	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
					 SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);

	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1 ||
	    SSL_CTX_set_ciphersuites(ctx, TLS13_CIPHERS) != 1 ||
	    SSL_CTX_set1_groups_list(ctx, key_exchange_groups) != 1 ||
	    use_identity(ctx, libctx) != 0) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

static void
on_pick_server(SSL *ssl, struct tkc_conn *c, void *arg)
{
	tkc_conn_set_server(c, HS_SERVER_ID, sizeof(HS_SERVER_ID) - 1);
}

static bool
on_server_usable(const char *id, size_t len, void *arg)
{
	return true;
}

int
hs_server_usher_ex(struct hs_server *s, struct tkc_source *src, OSSL_LIB_CTX *libctx)
{
	struct tkc_shard_params params = {
		.listener = LISTENER,
		.source = src,
		.lifetime_s = TICKET_LIFETIME_S,
		.affinity = true,
		.hooks = {.pick_server = on_pick_server, .server_usable = on_server_usable},
		.libctx = libctx,
	};

	memset(s, 0, sizeof(*s));
	s->ctx = new_server_ctx(libctx);
	if (s->ctx == NULL)
		return -1;

	if (tkc_shard_create(&params, &s->shard) != 0 || tkc_shard_attach(s->shard, s->ctx) != 0) {
		hs_server_free(s);
		return -1;
	}
	return 0;
}

int
hs_server_usher(struct hs_server *s, struct tkc_source *src)
{
	return hs_server_usher_ex(s, src, NULL);
}

int
hs_server_builtin(struct hs_server *s)
{
	memset(s, 0, sizeof(*s));
	s->ctx = new_server_ctx(NULL);
	if (s->ctx == NULL)
		return -1;

	/* Stateless resumption like usher's, but under OpenSSL's own keys. */
	SSL_CTX_set_session_cache_mode(s->ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_timeout(s->ctx, TICKET_LIFETIME_S);
	return 0;
}

void
hs_server_no_tickets(struct hs_server *s)
{
	SSL_CTX_set_options(s->ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_num_tickets(s->ctx, 0);
}

int
hs_server_tls13_suites(struct hs_server *s, const char *suites)
{
	return SSL_CTX_set_ciphersuites(s->ctx, suites) == 1 ? 0 : -1;
}

void
hs_server_free(struct hs_server *s)
{
	SSL_CTX_free(s->ctx);
	tkc_shard_free(s->shard);
	memset(s, 0, sizeof(*s));
}

/* ---- clients ------------------------------------------------------------ */

/* Keep the newest session; returning 1 takes the reference. */
static int
on_new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct hs_client *c = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));

	SSL_SESSION_free(c->newest);
	c->newest = sess;
	return 1;
}

int
hs_client_init_ex(struct hs_client *c, int version, OSSL_LIB_CTX *libctx)
{
	memset(c, 0, sizeof(*c));
	c->ctx = SSL_CTX_new_ex(libctx, NULL, TLS_client_method());
	if (c->ctx == NULL)
		return -1;

	SSL_CTX_set_app_data(c->ctx, c);
	SSL_CTX_set_session_cache_mode(c->ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_sess_set_new_cb(c->ctx, on_new_session);
	if (SSL_CTX_set_min_proto_version(c->ctx, version) != 1 ||
	    SSL_CTX_set_max_proto_version(c->ctx, version) != 1) {
		hs_client_free(c);
		return -1;
	}
	return 0;
}

int
hs_client_init(struct hs_client *c, int version)
{
	return hs_client_init_ex(c, version, NULL);
}

void
hs_client_free(struct hs_client *c)
{
	SSL_SESSION_free(c->newest);
	SSL_CTX_free(c->ctx);
	memset(c, 0, sizeof(*c));
}

/* ---- one connection ----------------------------------------------------- */

static SSL *
new_ssl(SSL_CTX *ctx, BIO *bio, bool server)
{
	SSL *ssl = SSL_new(ctx);

	if (ssl == NULL) {
		BIO_free(bio);
		return NULL;
	}

	SSL_set_bio(ssl, bio, bio);
	if (server)
		SSL_set_accept_state(ssl);
	else
		SSL_set_connect_state(ssl);
	return ssl;
}

/* Everything the server does to set up a connection, timed. */
static int
open_server(struct hs_conn *conn, struct hs_server *s, BIO *bio, uint64_t *ns)
{
	uint64_t t0 = thread_cpu_ns();
	int rc = 0;

	conn->server = new_ssl(s->ctx, bio, true);
	if (conn->server == NULL ||
	    (s->shard != NULL && tkc_conn_attach(conn->server, &conn->tkc) != 0))
		rc = -1;

	*ns += interval_ns(t0, thread_cpu_ns());
	return rc;
}

static void
close_server(struct hs_conn *conn, uint64_t *ns)
{
	uint64_t t0 = thread_cpu_ns();

	if (conn->server != NULL)
		SSL_shutdown(conn->server);
	SSL_free(conn->server);
	conn->server = NULL;
	*ns += interval_ns(t0, thread_cpu_ns());
}

/* 1 done, 0 wants more input, -1 failed. */
static int
step(SSL *ssl)
{
	int rc = SSL_do_handshake(ssl);

	if (rc == 1)
		return 1;
	return SSL_get_error(ssl, rc) == SSL_ERROR_WANT_READ ? 0 : -1;
}

/* Kept out of line so that a profiler can collect the server alone. */
__attribute__((noinline)) int hs_server_step(SSL *server, uint64_t *ns);

int
hs_server_step(SSL *server, uint64_t *ns)
{
	uint64_t t0 = thread_cpu_ns();
	int rc = step(server);

	*ns += interval_ns(t0, thread_cpu_ns());
	return rc;
}

static int
handshake(struct hs_conn *conn, uint64_t *ns)
{
	int client = 0, server = 0;

	for (int i = 0; i < PUMP_ROUNDS && (client != 1 || server != 1); i++) {
		if (client != 1)
			client = step(conn->client);
		if (client >= 0 && server != 1)
			server = hs_server_step(conn->server, ns);
		if (client < 0 || server < 0)
			return -1;
	}
	return client == 1 && server == 1 ? 0 : -1;
}

/* Close the client first: its close_notify keeps its session resumable. */
static void
close_conn(struct hs_conn *conn, uint64_t *server_ns)
{
	if (conn->client != NULL)
		SSL_shutdown(conn->client);
	close_server(conn, server_ns);
	SSL_free(conn->client);
	conn->client = NULL;
	ERR_clear_error();
}

static int
open_conn(struct hs_conn *conn, struct hs_client *c, struct hs_server *s, SSL_SESSION *offer,
	  struct hs_result *res)
{
	BIO *client_bio, *server_bio;

	memset(conn, 0, sizeof(*conn));
	if (BIO_new_bio_pair(&client_bio, 0, &server_bio, 0) != 1)
		return -1;

	conn->client = new_ssl(c->ctx, client_bio, false);
	if (conn->client == NULL) {
		BIO_free(server_bio);
		return -1;
	}

	if (open_server(conn, s, server_bio, &res->server_conn_ns) != 0)
		return -1;

	if (offer != NULL && SSL_set_session(conn->client, offer) != 1)
		return -1;

	if (handshake(conn, &res->server_hs_ns) != 0)
		return -1;

	res->reused =
		SSL_session_reused(conn->client) == 1 && SSL_session_reused(conn->server) == 1;
	res->outcome = conn->tkc.outcome;
	return 0;
}

int
hs_connect(struct hs_client *c, struct hs_server *s, SSL_SESSION *offer, struct hs_result *res)
{
	struct hs_conn conn;
	int rc;

	memset(res, 0, sizeof(*res));
	rc = open_conn(&conn, c, s, offer, res);
	close_conn(&conn, &res->server_conn_ns);
	return rc;
}

/* A TLS 1.3 client reads the tickets that precede the byte. */
static int
exchange_byte(struct hs_conn *conn)
{
	char byte = 'x';

	if (SSL_write(conn->server, &byte, 1) != 1)
		return -1;
	byte = 0;
	return SSL_read(conn->client, &byte, 1) == 1 && byte == 'x' ? 0 : -1;
}

SSL_SESSION *
hs_fetch_session(struct hs_client *c, struct hs_server *s)
{
	struct hs_result res = {0};
	struct hs_conn conn;
	SSL_SESSION *sess = NULL;

	SSL_SESSION_free(c->newest);
	c->newest = NULL;
	SSL_CTX_set_session_cache_mode(c->ctx,
				       SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	if (open_conn(&conn, c, s, NULL, &res) == 0 && exchange_byte(&conn) == 0) {
		sess = c->newest;
		c->newest = NULL;
	}

	close_conn(&conn, &res.server_conn_ns);
	SSL_CTX_set_session_cache_mode(c->ctx, SSL_SESS_CACHE_OFF);
	return sess;
}

int
hs_conn_open(struct hs_conn *conn, struct hs_client *c, struct hs_server *s)
{
	struct hs_result res = {0};

	if (open_conn(conn, c, s, NULL, &res) != 0) {
		close_conn(conn, &res.server_conn_ns);
		return -1;
	}
	return 0;
}

/* Drop what the server wrote, as if the client had read it. */
static void
drain_client(struct hs_conn *conn)
{
	BIO *bio = SSL_get_rbio(conn->client);
	unsigned char buf[4096];

	while (BIO_ctrl_pending(bio) > 0 && BIO_read(bio, buf, sizeof(buf)) > 0)
		;
}

int
hs_conn_issue_ticket(struct hs_conn *conn, uint64_t *ns)
{
	uint64_t t0 = thread_cpu_ns();
	int ok = SSL_new_session_ticket(conn->server) == 1 && SSL_do_handshake(conn->server) == 1;

	*ns += interval_ns(t0, thread_cpu_ns());
	drain_client(conn);
	return ok ? 0 : -1;
}

void
hs_conn_close(struct hs_conn *conn)
{
	uint64_t ns = 0;

	close_conn(conn, &ns);
}
