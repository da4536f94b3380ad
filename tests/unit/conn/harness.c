#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/rand.h>

#include "fixtures.h"

#define PUMP_GUARD   1000000
#define SETTLE_GUARD 1000000
#define CHUNK        16384

/* ---- the world ------------------------------------------------------------ */

static const char *const cert_names[HW_CERTS] = {"default.test", "*.example.test", "api.test"};

static uint64_t
hw_now(void *arg)
{
	const struct hw *w = arg;

	return w->now;
}

static void
set_loopback(struct cfg_addr *a, uint16_t port)
{
	struct sockaddr_in *in = (struct sockaddr_in *)&a->ss;

	memset(&a->ss, 0, sizeof(a->ss));
	in->sin_family = AF_INET;
	in->sin_port = htons(port);
	in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a->len = sizeof(*in);
}

static int
write_certs(struct hw *w, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		snprintf(w->cert_paths[i], sizeof(w->cert_paths[i]), "%s/cert%zu.pem", w->dir, i);
		snprintf(w->key_paths[i], sizeof(w->key_paths[i]), "%s/key%zu.pem", w->dir, i);
		if (fixture_write_cert(cert_names[i], w->cert_paths[i], w->key_paths[i]) != 0)
			return -1;
		w->certs[i].cert_path = w->cert_paths[i];
		w->certs[i].key_path = w->key_paths[i];
	}

	return 0;
}

static void
fill_listener(struct hw *w, const struct hw_opts *o)
{
	struct cfg_listener *l = &w->listener;

	snprintf(w->listener_name, sizeof(w->listener_name), "web");
	snprintf(w->pool_name, sizeof(w->pool_name), "pool");
	l->name = w->listener_name;
	set_loopback(&l->bind, 8443);
	l->certs = w->certs;
	l->n_certs = o->n_certs;
	l->protocols = o->protocols != 0 ? o->protocols : (CFG_PROTO_TLS12 | CFG_PROTO_TLS13);
	if (o->alpn) {
		snprintf(w->alpn_names[0], sizeof(w->alpn_names[0]), "h2");
		snprintf(w->alpn_names[1], sizeof(w->alpn_names[1]), "http/1.1");
		w->alpn[0] = w->alpn_names[0];
		w->alpn[1] = w->alpn_names[1];
		l->alpn = w->alpn;
		l->n_alpn = 2;
	}
	l->pool_name = w->pool_name;
	l->pool = 0;
	l->proxy_protocol = o->proxy_protocol;
}

static void
fill_pool(struct hw *w)
{
	for (size_t i = 0; i < HW_SERVERS; i++) {
		snprintf(w->server_names[i], sizeof(w->server_names[i]), "s%zu", i);
		w->servers[i].name = w->server_names[i];
		w->servers[i].weight = 1;
		set_loopback(&w->servers[i].address, (uint16_t)(20000 + i));
	}

	w->pool.name = w->pool_name;
	w->pool.balance = CFG_BALANCE_ROUND_ROBIN;
	w->pool.servers = w->servers;
	w->pool.n_servers = HW_SERVERS;
	/* No active checks: passive failures then never mark a server down. */
	w->pool.health_check = (struct cfg_health_check){.fall = 3, .rise = 2};

	w->cfg.listeners = &w->listener;
	w->cfg.n_listeners = 1;
	w->cfg.pools = &w->pool;
	w->cfg.n_pools = 1;
}

static int
make_source(struct hw *w)
{
	unsigned char secret[32];
	int rc;

	w->tickets.rotation_interval_s = 3600;
	w->tickets.lifetime_s = 86400;
	w->tickets.affinity = true;

	if (RAND_bytes(secret, sizeof(secret)) != 1)
		return -1;

	rc = tkc_source_derived(secret, sizeof(secret), 3600, 86400, &w->src);
	OPENSSL_cleanse(secret, sizeof(secret));
	return rc;
}

static int
make_worker(struct hw *w, struct hw_worker *wk)
{
	struct ush_tls_error err;
	int rc;

	wk->libctx = OSSL_LIB_CTX_new();
	if (wk->libctx == NULL)
		return -1;

	rc = ush_tls_create(&w->listener, w->src, &w->tickets, wk->libctx, &wk->tls, &err);
	if (rc != 0) {
		printf("# ush_tls_create: %d '%s' %s\n", rc, err.path, err.reason);
		return -1;
	}

	if (ush_balancer_init(&wk->balancer, &w->pools->pools[0]) != 0)
		return -1;

	wk->env = (struct ush_conn_env){
		.listener = &w->listener,
		.timeouts = &w->timeouts,
		.tls = wk->tls,
		.balancer = &wk->balancer,
		.stats = &wk->stats,
		.now_ms = hw_now,
		.now_arg = w,
	};
	return 0;
}

int
hw_setup(struct hw *w, const struct hw_opts *o)
{
	memset(w, 0, sizeof(*w));
	w->now = 1000000;
	w->timeouts = (struct cfg_timeouts){
		.handshake_ms = 10000,
		.idle_ms = 60000,
		.connect_ms = 3000,
		.shutdown_ms = 5000,
	};

	if (fixture_tmpdir(w->dir, sizeof(w->dir)) != 0 || write_certs(w, o->n_certs) != 0)
		return -1;

	fill_listener(w, o);
	fill_pool(w);

	if (ush_pools_create(&w->cfg, &w->pools) != 0 || make_source(w) != 0)
		return -1;

	for (size_t i = 0; i < HW_WORKERS; i++)
		if (make_worker(w, &w->workers[i]) != 0)
			return -1;

	return 0;
}

void
hw_teardown(struct hw *w)
{
	for (size_t i = 0; i < HW_WORKERS; i++) {
		ush_tls_free(w->workers[i].tls);
		OSSL_LIB_CTX_free(w->workers[i].libctx);
		if (w->workers[i].balancer.pool != NULL)
			ush_balancer_fini(&w->workers[i].balancer);
	}

	tkc_source_unref(w->src);
	ush_pools_free(w->pools);
	if (w->dir[0] != '\0')
		fixture_rmdir(w->dir);
	ERR_clear_error();
}

struct ush_server *
hw_server(struct hw *w, size_t i)
{
	return &w->pools->pools[0].servers[i];
}

void
hw_set_up(struct hw *w, size_t i, bool up)
{
	atomic_store(&hw_server(w, i)->up, up);
}

/* ---- clients -------------------------------------------------------------- */

static int
on_new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct hc_client *cl = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));

	SSL_SESSION_free(cl->newest);
	cl->newest = sess;
	return 1; /* we keep the reference */
}

int
hc_client_init(struct hc_client *cl, int version, const unsigned char *alpn, size_t alpn_len)
{
	memset(cl, 0, sizeof(*cl));
	cl->ctx = SSL_CTX_new(TLS_client_method());
	if (cl->ctx == NULL)
		return -1;

	SSL_CTX_set_app_data(cl->ctx, cl);
	SSL_CTX_set_verify(cl->ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_session_cache_mode(cl->ctx,
				       SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(cl->ctx, on_new_session);
	SSL_CTX_set_mode(cl->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE);

	if (SSL_CTX_set_min_proto_version(cl->ctx, version) != 1 ||
	    SSL_CTX_set_max_proto_version(cl->ctx, version) != 1)
		return -1;

	/* SSL_CTX_set_alpn_protos() returns 0 on success. */
	if (alpn != NULL && SSL_CTX_set_alpn_protos(cl->ctx, alpn, (unsigned)alpn_len) != 0)
		return -1;

	return 0;
}

void
hc_client_free(struct hc_client *cl)
{
	SSL_SESSION_free(cl->newest);
	SSL_CTX_free(cl->ctx);
	memset(cl, 0, sizeof(*cl));
}

SSL_SESSION *
hc_client_take_session(struct hc_client *cl)
{
	SSL_SESSION *s = cl->newest;

	cl->newest = NULL;
	return s;
}

/* ---- one connection ------------------------------------------------------- */

static void
bytes_add(struct hc_bytes *b, const void *data, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;

		while (cap < b->len + n)
			cap *= 2;
		b->data = realloc(b->data, cap);
		if (b->data == NULL)
			abort();
		b->cap = cap;
	}

	memcpy(b->data + b->len, data, n);
	b->len += n;
}

int
hc_open(struct hc *h, struct hw *w, int wk, struct hc_client *cl, const char *sni,
	SSL_SESSION *session)
{
	struct sockaddr_in client = {.sin_family = AF_INET, .sin_port = htons(5555)};
	struct sockaddr_in local = {.sin_family = AF_INET, .sin_port = htons(8443)};
	BIO *inner = NULL;

	memset(h, 0, sizeof(*h));
	h->w = w;
	h->wk = &w->workers[wk];
	h->cl = cl;
	inet_pton(AF_INET, "192.0.2.1", &client.sin_addr);
	inet_pton(AF_INET, "127.0.0.1", &local.sin_addr);

	h->ssl = SSL_new(cl->ctx);
	if (h->ssl == NULL || BIO_new_bio_pair(&inner, 0, &h->net, 0) != 1)
		return -1;

	SSL_set_bio(h->ssl, inner, inner);
	SSL_set_connect_state(h->ssl);
	/* The macro casts its argument to void *: hand it a writable copy. */
	snprintf(h->sni, sizeof(h->sni), "%s", sni != NULL ? sni : "");
	if (sni != NULL && SSL_set_tlsext_host_name(h->ssl, h->sni) != 1)
		return -1;
	if (session != NULL && SSL_set_session(h->ssl, session) != 1)
		return -1;

	return ush_conn_init(&h->c, &h->wk->env, (struct sockaddr *)&client, sizeof(client),
			     (struct sockaddr *)&local, sizeof(local)) == 0
		       ? 0
		       : -1;
}

void
hc_free(struct hc *h)
{
	ush_conn_fini(&h->c);
	SSL_free(h->ssl);
	BIO_free(h->net);
	free(h->rx.data);
	free(h->up_rx.data);
	ERR_clear_error();
}

static void
note_highs(struct hc *h)
{
	size_t n;

	ush_buf_peek(&h->c.to_client, &n);
	if (n > h->max_to_client)
		h->max_to_client = n;
	ush_buf_peek(&h->c.to_upstream, &n);
	if (n > h->max_to_upstream)
		h->max_to_upstream = n;
	n = h->c.from_client.tail - h->c.from_client.head;
	if (n > h->max_from_client)
		h->max_from_client = n;
}

static bool
pump_to_client(struct hc *h, unsigned wants)
{
	const unsigned char *p;
	size_t len;
	int n;

	if (!(wants & USH_WANT_SEND_CLIENT))
		return false;

	p = ush_buf_peek(&h->c.to_client, &len);
	n = BIO_write(h->net, p, (int)len);
	if (n <= 0)
		return false;

	h->sent_to_client += (size_t)n;
	ush_conn_on_sent(&h->c, 0, (size_t)n);
	return true;
}

static bool
pump_from_client(struct hc *h, unsigned wants)
{
	unsigned char buf[CHUNK];
	int n;

	if (!(wants & USH_WANT_RECV_CLIENT))
		return false;

	n = BIO_read(h->net, buf, sizeof(buf));
	if (n > 0) {
		ush_conn_on_client_data(&h->c, buf, (size_t)n);
		/* The engine reuses its buffer: whatever the conn kept, it copied. */
		memset(buf, 0xa5, sizeof(buf));
		return true;
	}

	if (h->tcp_eof && !h->tcp_eof_told) {
		h->tcp_eof_told = true;
		ush_conn_on_client_eof(&h->c);
		return true;
	}

	return false;
}

static bool
pump_connect(struct hc *h, unsigned wants)
{
	size_t idx;

	if (!(wants & USH_WANT_CONNECT) || h->c.connect_tries == h->started_try)
		return false;

	idx = h->c.server->index;
	h->started_try = h->c.connect_tries;
	if (h->n_connects < sizeof(h->connects) / sizeof(h->connects[0]))
		h->connects[h->n_connects++] = (int)idx;

	if (h->connect_silent)
		return true;

	if (h->fail_mask & (1u << idx))
		ush_conn_on_upstream_failed(&h->c, ECONNREFUSED);
	else
		ush_conn_on_upstream_connected(&h->c);
	return true;
}

static bool
pump_to_upstream(struct hc *h, unsigned wants)
{
	const unsigned char *p;
	size_t len;

	if (!(wants & USH_WANT_SEND_UPSTREAM) || h->hold_upstream)
		return false;

	/* Partial sends, as a socket does when its buffer is short. */
	p = ush_buf_peek(&h->c.to_upstream, &len);
	if (len > 5000)
		len = 5000;

	bytes_add(&h->up_rx, p, len);
	ush_conn_on_sent(&h->c, 1, len);
	return true;
}

static bool
pump_from_upstream(struct hc *h, unsigned wants)
{
	unsigned char buf[CHUNK];
	size_t n = h->up_tx_len - h->up_tx_off;

	if (!(wants & USH_WANT_RECV_UPSTREAM))
		return false;

	if (n > 0) {
		if (n > sizeof(buf))
			n = sizeof(buf);
		memcpy(buf, h->up_tx + h->up_tx_off, n);
		h->up_tx_off += n;
		ush_conn_on_upstream_data(&h->c, buf, n);
		memset(buf, 0x5a, sizeof(buf));
		return true;
	}

	if (h->up_eof && !h->up_eof_told) {
		h->up_eof_told = true;
		ush_conn_on_upstream_eof(&h->c);
		return true;
	}

	return false;
}

bool
hc_pump(struct hc *h)
{
	bool any = false;

	for (int guard = 0; guard < PUMP_GUARD && !h->closed; guard++) {
		unsigned wants = ush_conn_wants(&h->c);
		bool moved = false;

		note_highs(h);
		if (wants & USH_WANT_CLOSE) {
			h->closed = true;
			break;
		}

		moved |= pump_to_client(h, wants);
		moved |= pump_from_client(h, wants);
		moved |= pump_connect(h, wants);
		moved |= pump_to_upstream(h, wants);
		moved |= pump_from_upstream(h, wants);

		if ((wants & USH_WANT_SHUT_UPSTREAM) && !h->c.upstream_shut) {
			h->c.upstream_shut = true;
			h->up_shut = true;
			moved = true;
		}

		note_highs(h);
		if (!moved)
			break;
		any = true;
	}

	return any;
}

/* The client application: write what is left of tx, read what came. */
static bool
client_step(struct hc *h)
{
	unsigned char buf[CHUNK];
	bool moved = false;
	size_t n;

	while (h->tx_off < h->tx_len) {
		size_t len = h->tx_len - h->tx_off;

		if (SSL_write_ex(h->ssl, h->tx + h->tx_off, len, &n) != 1)
			break;
		h->tx_off += n;
		moved = true;
	}

	while (!h->hold_client && !h->rx_closed) {
		if (SSL_read_ex(h->ssl, buf, sizeof(buf), &n) == 1) {
			bytes_add(&h->rx, buf, n);
			moved = true;
			continue;
		}

		if (SSL_get_error(h->ssl, 0) == SSL_ERROR_ZERO_RETURN) {
			h->rx_closed = true;
			moved = true;
		}
		break;
	}

	ERR_clear_error();
	return moved;
}

void
hc_settle(struct hc *h)
{
	for (int guard = 0; guard < SETTLE_GUARD; guard++) {
		bool moved = client_step(h);

		moved |= hc_pump(h);
		if (!moved)
			return;
	}
}

int
hc_handshake(struct hc *h)
{
	for (int guard = 0; guard < 1000; guard++) {
		int rc = SSL_do_handshake(h->ssl);
		int err;

		if (rc == 1) {
			/* The client's last flight still has to reach the conn. */
			hc_pump(h);
			return 0;
		}

		err = SSL_get_error(h->ssl, rc);
		if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
			ERR_clear_error();
			hc_pump(h);
			return -1;
		}

		/* A conn closing after its last flight still lets the client finish. */
		if (!hc_pump(h))
			return -1;
	}

	return -1;
}

void
hc_client_close(struct hc *h, bool tcp_eof)
{
	SSL_shutdown(h->ssl);
	ERR_clear_error();
	h->tcp_eof = tcp_eof;
}

void
hc_fill(unsigned char *buf, size_t len, unsigned seed)
{
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		buf[i] = (unsigned char)(x >> 16);
	}
}

int
hc_establish(struct hc *h)
{
	if (hc_handshake(h) != 0)
		return -1;

	hc_settle(h);
	return h->c.state == USH_CONN_RELAY ? 0 : -1;
}

bool
hc_holds_no_buffers(const struct hc *h)
{
	const struct ush_conn *c = &h->c;

	return c->from_client.data == NULL && c->to_client.data == NULL &&
	       c->to_upstream.data == NULL && c->from_client.retired == NULL &&
	       c->to_client.retired == NULL && c->to_upstream.retired == NULL;
}
