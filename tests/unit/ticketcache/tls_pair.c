#include "tls_pair.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "fixtures.h"

#define PUMP_ROUNDS 64

static EVP_PKEY *server_key;
static X509 *server_cert;

int
tp_init(void)
{
	return fixture_make_cert("usher-tkc-test", &server_key, &server_cert);
}

void
tp_cleanup(void)
{
	EVP_PKEY_free(server_key);
	X509_free(server_cert);
}

static int
use_identity(SSL_CTX *ctx, X509 *cert, EVP_PKEY *key)
{
	if (cert == NULL || key == NULL)
		return -1;

	if (SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1)
		return -1;
	return 0;
}

/* A copy of the test certificate that belongs to libctx, or NULL. */
static X509 *
cert_in(OSSL_LIB_CTX *libctx)
{
	unsigned char *der = NULL;
	int len = i2d_X509(server_cert, &der);
	const unsigned char *p = der;
	X509 *cert = X509_new_ex(libctx, NULL);

	if (cert != NULL && (len <= 0 || d2i_X509(&cert, &p, len) == NULL)) {
		X509_free(cert);
		cert = NULL;
	}
	OPENSSL_free(der);
	return cert;
}

/* A copy of the test key that belongs to libctx, or NULL. */
static EVP_PKEY *
key_in(OSSL_LIB_CTX *libctx)
{
	unsigned char *der = NULL;
	int len = i2d_PrivateKey(server_key, &der);
	const unsigned char *p = der;
	EVP_PKEY *key = NULL;

	if (len > 0)
		key = d2i_AutoPrivateKey_ex(NULL, &p, len, libctx, NULL);
	OPENSSL_clear_free(der, len > 0 ? (size_t)len : 0);
	return key;
}

static int
use_identity_in(SSL_CTX *ctx, OSSL_LIB_CTX *libctx)
{
	X509 *cert = cert_in(libctx);
	EVP_PKEY *key = key_in(libctx);
	int rc = use_identity(ctx, cert, key);

	X509_free(cert);
	EVP_PKEY_free(key);
	return rc;
}

SSL_CTX *
tp_server_ctx_in(OSSL_LIB_CTX *libctx)
{
	SSL_CTX *ctx = SSL_CTX_new_ex(libctx, NULL, TLS_server_method());
	int rc;

	if (ctx == NULL)
		return NULL;

	if (libctx == NULL)
		rc = use_identity(ctx, server_cert, server_key);
	else
		rc = use_identity_in(ctx, libctx);

	if (rc != 0 || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

SSL_CTX *
tp_server_ctx(void)
{
	return tp_server_ctx_in(NULL);
}

int
tp_server_init(struct tp_server *s, const struct tkc_shard_params *params)
{
	memset(s, 0, sizeof(*s));
	s->ctx = tp_server_ctx_in(params->libctx);
	if (s->ctx == NULL)
		return -1;

	if (tkc_shard_create(params, &s->shard) != 0 || tkc_shard_attach(s->shard, s->ctx) != 0) {
		tp_server_free(s);
		return -1;
	}
	return 0;
}

void
tp_server_free(struct tp_server *s)
{
	SSL_CTX_free(s->ctx);
	tkc_shard_free(s->shard);
	memset(s, 0, sizeof(*s));
}

/* Keep the newest session; returning 1 takes the reference. */
static int
on_new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct tp_client *c = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));

	SSL_SESSION_free(c->newest);
	c->newest = sess;
	return 1;
}

/*
 * Count NewSessionTicket messages as they arrive: a TLS 1.2 client that
 * resumes gets its renewed ticket without a new-session callback.
 */
static void
on_message(int write_p, int version, int content_type, const void *buf, size_t len, SSL *ssl,
	   void *arg)
{
	struct tp_client *c = arg;
	const unsigned char *msg = buf;

	if (!write_p && content_type == SSL3_RT_HANDSHAKE && len > 0 &&
	    msg[0] == SSL3_MT_NEWSESSION_TICKET)
		c->tickets++;
}

int
tp_client_init(struct tp_client *c, int version)
{
	memset(c, 0, sizeof(*c));
	c->ctx = SSL_CTX_new(TLS_client_method());
	if (c->ctx == NULL)
		return -1;

	SSL_CTX_set_app_data(c->ctx, c);
	SSL_CTX_set_session_cache_mode(c->ctx,
				       SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(c->ctx, on_new_session);
	SSL_CTX_set_msg_callback(c->ctx, on_message);
	SSL_CTX_set_msg_callback_arg(c->ctx, c);
	if (SSL_CTX_set_min_proto_version(c->ctx, version) != 1 ||
	    SSL_CTX_set_max_proto_version(c->ctx, version) != 1) {
		tp_client_free(c);
		return -1;
	}
	return 0;
}

void
tp_client_free(struct tp_client *c)
{
	SSL_SESSION_free(c->newest);
	SSL_CTX_free(c->ctx);
	memset(c, 0, sizeof(*c));
}

static bool
step(SSL *ssl, bool *done)
{
	int rc;

	if (*done)
		return true;

	rc = SSL_do_handshake(ssl);
	if (rc == 1) {
		*done = true;
		return true;
	}
	return SSL_get_error(ssl, rc) == SSL_ERROR_WANT_READ;
}

static int
handshake(SSL *client, SSL *server)
{
	bool client_done = false, server_done = false;

	for (int i = 0; i < PUMP_ROUNDS && !(client_done && server_done); i++) {
		if (!step(client, &client_done) || !step(server, &server_done))
			return -1;
	}
	return client_done && server_done ? 0 : -1;
}

/*
 * A TLS 1.3 server sends its tickets after the handshake; the client
 * takes them in while reading the byte that follows them.
 */
static int
exchange_byte(SSL *client, SSL *server)
{
	char byte = 'x';

	if (SSL_write(server, &byte, 1) != 1)
		return -1;
	byte = 0;
	return SSL_read(client, &byte, 1) == 1 && byte == 'x' ? 0 : -1;
}

/* The client's close_notify keeps its session resumable (NOTES.md). */
static void
close_both(SSL *client, SSL *server)
{
	SSL_shutdown(client);
	SSL_shutdown(server);
	SSL_shutdown(client);
}

static SSL *
new_ssl(SSL_CTX *ctx, BIO *bio, bool server)
{
	SSL *ssl = SSL_new(ctx);

	if (ssl == NULL)
		return NULL;

	BIO_up_ref(bio);
	SSL_set_bio(ssl, bio, bio);
	if (server)
		SSL_set_accept_state(ssl);
	else
		SSL_set_connect_state(ssl);
	return ssl;
}

static const OSSL_PROVIDER *
peer_key_provider(SSL *server)
{
	EVP_PKEY *peer = NULL;
	const OSSL_PROVIDER *prov;

	if (SSL_get_peer_tmp_key(server, &peer) != 1)
		return NULL;

	prov = EVP_PKEY_get0_provider(peer);
	EVP_PKEY_free(peer);
	return prov;
}

static int
run_connection(struct tp_client *c, SSL *client, SSL *server, struct tp_result *res)
{
	if (handshake(client, server) != 0 || exchange_byte(client, server) != 0)
		return -1;

	res->client_reused = SSL_session_reused(client) == 1;
	res->server_reused = SSL_session_reused(server) == 1;
	res->server_kex_provider = peer_key_provider(server);
	res->tickets = c->tickets;
	close_both(client, server);

	if (c->newest != NULL) {
		res->session = c->newest;
		c->newest = NULL;
	} else {
		res->session = SSL_get1_session(client);
	}
	return 0;
}

/* OpenSSL's macro casts the name to void *, which clang flags on a const. */
static int
set_server_name(SSL *ssl, const char *name)
{
	char copy[256];

	if (strlen(name) >= sizeof(copy))
		return -1;
	strcpy(copy, name);
	return SSL_set_tlsext_host_name(ssl, copy) == 1 ? 0 : -1;
}

int
tp_connect(struct tp_client *c, struct tp_server *s, SSL_SESSION *offer, struct tp_result *res)
{
	BIO *client_bio = NULL, *server_bio = NULL;
	SSL *client = NULL, *server = NULL;
	int rc = -1;

	memset(res, 0, sizeof(*res));
	SSL_SESSION_free(c->newest);
	c->newest = NULL;
	c->tickets = 0;

	if (BIO_new_bio_pair(&client_bio, 0, &server_bio, 0) != 1)
		return -1;

	client = new_ssl(c->ctx, client_bio, false);
	server = new_ssl(s->ctx, server_bio, true);
	if (client == NULL || server == NULL || tkc_conn_attach(server, &res->conn) != 0)
		goto out;

	if (offer != NULL && SSL_set_session(client, offer) != 1)
		goto out;

	if (c->sni != NULL && set_server_name(client, c->sni) != 0)
		goto out;

	rc = run_connection(c, client, server, res);
out:
	SSL_free(client);
	SSL_free(server);
	BIO_free(client_bio);
	BIO_free(server_bio);
	ERR_clear_error();
	return rc;
}

void
tp_result_clear(struct tp_result *res)
{
	SSL_SESSION_free(res->session);
	res->session = NULL;
}

bool
tp_conn_server_is(const struct tkc_conn *c, const char *id)
{
	size_t len = strlen(id);

	return c->server_id_len == len && memcmp(c->server_id, id, len) == 0;
}

/* ---- rewriting the DER of a session ------------------------------------- */

/* Read a DER length at *p; the number of bytes it took, or 0. */
static size_t
der_read_len(const unsigned char *p, size_t avail, size_t *len)
{
	size_t n;

	if (avail == 0)
		return 0;
	if (p[0] < 0x80) {
		*len = p[0];
		return 1;
	}

	n = p[0] & 0x7f;
	if (n == 0 || n > 3 || n + 1 > avail)
		return 0;

	*len = 0;
	for (size_t i = 1; i <= n; i++)
		*len = (*len << 8) | p[i];
	return n + 1;
}

static size_t
der_write_header(unsigned char *p, unsigned char tag, size_t len)
{
	p[0] = tag;
	if (len < 0x80) {
		p[1] = (unsigned char)len;
		return 2;
	}
	if (len < 0x100) {
		p[1] = 0x81;
		p[2] = (unsigned char)len;
		return 3;
	}
	p[1] = 0x82;
	p[2] = (unsigned char)(len >> 8);
	p[3] = (unsigned char)len;
	return 4;
}

/* The ticket is field [10] EXPLICIT OCTET STRING of SSL_SESSION_ASN1. */
#define TICKET_TAG 0xaa

/*
 * Copy the elements of the outer SEQUENCE content into out, replacing the
 * ticket element. Returns the bytes written, or 0.
 */
static size_t
rewrite_elements(const unsigned char *in, size_t in_len, const unsigned char *ticket,
		 size_t ticket_len, unsigned char *out)
{
	size_t pos = 0, w = 0;
	bool replaced = false;

	while (pos < in_len) {
		size_t len, hdr = der_read_len(in + pos + 1, in_len - pos - 1, &len);

		if (hdr == 0 || pos + 1 + hdr + len > in_len)
			return 0;

		if (in[pos] == TICKET_TAG) {
			unsigned char inner[4];
			size_t inner_hdr = der_write_header(inner, 0x04, ticket_len);

			w += der_write_header(out + w, TICKET_TAG, inner_hdr + ticket_len);
			memcpy(out + w, inner, inner_hdr);
			memcpy(out + w + inner_hdr, ticket, ticket_len);
			w += inner_hdr + ticket_len;
			replaced = true;
		} else {
			memcpy(out + w, in + pos, 1 + hdr + len);
			w += 1 + hdr + len;
		}
		pos += 1 + hdr + len;
	}
	return replaced ? w : 0;
}

SSL_SESSION *
tp_session_with_ticket(SSL_SESSION *sess, const unsigned char *ticket, size_t len)
{
	unsigned char *der = NULL, *body = NULL, *out = NULL;
	const unsigned char *p;
	int der_len = i2d_SSL_SESSION(sess, &der);
	size_t content_len, hdr, body_len;
	SSL_SESSION *copy = NULL;

	if (der_len <= 0 || der[0] != 0x30)
		goto out;

	hdr = der_read_len(der + 1, (size_t)der_len - 1, &content_len);
	body = malloc((size_t)der_len + len + 16);
	out = malloc((size_t)der_len + len + 32);
	if (hdr == 0 || 1 + hdr + content_len != (size_t)der_len || body == NULL || out == NULL)
		goto out;

	body_len = rewrite_elements(der + 1 + hdr, content_len, ticket, len, body);
	if (body_len == 0)
		goto out;

	hdr = der_write_header(out, 0x30, body_len);
	memcpy(out + hdr, body, body_len);
	p = out;
	copy = d2i_SSL_SESSION(NULL, &p, (long)(hdr + body_len));
out:
	OPENSSL_free(der);
	free(body);
	free(out);
	return copy;
}
