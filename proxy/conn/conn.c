/*
 * conn: the engine-independent connection state machine (see conn.h).
 *
 * TLS runs over the connection's own buffers through one custom BIO: its
 * read side takes ciphertext from from_client, its write side appends to
 * to_client. Client bytes are first lent to TLS straight from the
 * engine's memory; only what TLS leaves unread is copied. Plaintext is
 * decrypted straight into to_upstream, and upstream bytes are encrypted
 * straight into to_client, so every byte is copied once each way besides
 * OpenSSL's own record buffer.
 *
 * The write side always accepts (up to USH_BUF_LIMIT): OpenSSL then never
 * sees WANT_WRITE, and backpressure is applied one level up, by no longer
 * asking for bytes that would fill a full buffer.
 */
#include "conn.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <openssl/err.h>

#include "buf.h"
#include "conn_internal.h"
#include "stats.h"
#include "tls.h"

_Static_assert(USH_CLOSE_REASON_COUNT == USH_CLOSE_REASONS,
	       "stats.h must have a counter per close reason");

#define READ_CHUNK       16384u /* the plaintext of one TLS record */
#define PROXY_HEADER_MAX 1024u  /* v2 with SNI, ALPN and version TLVs fits */
#define DRAIN_QUIET_MS   1000u

static const char *const close_reason_names[USH_CLOSE_REASON_COUNT] = {
	[USH_CLOSE_NONE] = "none",
	[USH_CLOSE_DONE] = "done",
	[USH_CLOSE_CLIENT_RESET] = "client_reset",
	[USH_CLOSE_HANDSHAKE_FAILED] = "handshake_failed",
	[USH_CLOSE_HANDSHAKE_TIMEOUT] = "handshake_timeout",
	[USH_CLOSE_IDLE_TIMEOUT] = "idle_timeout",
	[USH_CLOSE_NO_SERVER] = "no_server",
	[USH_CLOSE_UPSTREAM_FAILED] = "upstream_failed",
	[USH_CLOSE_UPSTREAM_RESET] = "upstream_reset",
	[USH_CLOSE_SHUTDOWN] = "shutdown",
	[USH_CLOSE_LIMIT] = "limit",
	[USH_CLOSE_INTERNAL] = "internal",
};

const char *
ush_close_reason_name(enum ush_close_reason reason)
{
	if ((unsigned)reason >= USH_CLOSE_REASON_COUNT)
		return "unknown";

	return close_reason_names[reason];
}

/* ---- the BIO between OpenSSL and the buffers ------------------------------ */

static pthread_once_t setup_once = PTHREAD_ONCE_INIT;
static BIO_METHOD *bio_method;
static int conn_index = -1; /* SSL ex_data: the ush_conn owning the SSL */

static int
bio_read(BIO *bio, char *out, size_t len, size_t *got)
{
	struct ush_conn *c = BIO_get_data(bio);
	size_t n = ush_buf_len(&c->from_client);

	BIO_clear_retry_flags(bio);
	*got = 0;

	if (n == 0) {
		/* No retry flag after EOF: OpenSSL then sees the end of stream. */
		if (!c->client_eof)
			BIO_set_retry_read(bio);
		return 0;
	}

	if (n > len)
		n = len;

	memcpy(out, c->from_client.data + c->from_client.head, n);
	ush_buf_consume(&c->from_client, n);
	*got = n;
	return 1;
}

static int
bio_write(BIO *bio, const char *in, size_t len, size_t *put)
{
	struct ush_conn *c = BIO_get_data(bio);

	BIO_clear_retry_flags(bio);
	*put = 0;

	if (ush_buf_append(&c->to_client, in, len, true) != 0)
		return 0;

	*put = len;
	return 1;
}

static long
bio_ctrl(BIO *bio, int cmd, long num, void *ptr)
{
	const struct ush_conn *c = BIO_get_data(bio);

	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;
	case BIO_CTRL_EOF:
		return c->client_eof && ush_buf_empty(&c->from_client);
	case BIO_CTRL_PENDING:
		return (long)ush_buf_len(&c->from_client);
	default:
		return 0;
	}
}

static void
setup(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "ush_conn");

	if (m == NULL || BIO_meth_set_read_ex(m, bio_read) != 1 ||
	    BIO_meth_set_write_ex(m, bio_write) != 1 || BIO_meth_set_ctrl(m, bio_ctrl) != 1) {
		BIO_meth_free(m);
		return;
	}

	conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	if (conn_index < 0) {
		BIO_meth_free(m);
		return;
	}

	bio_method = m;
}

static int
attach_bio(struct ush_conn *c)
{
	/* In the worker's context: BIO_new() locks the default one's ex_data. */
	BIO *bio = BIO_new_ex(ush_tls_libctx(c->env->tls), bio_method);

	if (bio == NULL)
		return -ENOMEM;

	BIO_set_data(bio, c);
	BIO_set_init(bio, 1);
	SSL_set_bio(c->ssl, bio, bio);
	return 0;
}

/* ---- small helpers -------------------------------------------------------- */

static uint64_t
now_ms(const struct ush_conn *c)
{
	return c->env->now_ms(c->env->now_arg);
}

static uint64_t
deadline_in(const struct ush_conn *c, uint64_t ms)
{
	return ms == 0 ? 0 : now_ms(c) + ms;
}

static struct ush_conn_stats *
stats(const struct ush_conn *c)
{
	return c->env->stats;
}

static bool
client_read_done(const struct ush_conn *c)
{
	return (SSL_get_shutdown(c->ssl) & SSL_RECEIVED_SHUTDOWN) != 0;
}

static bool
close_notify_sent(const struct ush_conn *c)
{
	return (SSL_get_shutdown(c->ssl) & SSL_SENT_SHUTDOWN) != 0;
}

static void
copy_addr(struct sockaddr_storage *dst, const struct sockaddr *src, socklen_t len)
{
	if (src == NULL)
		return;

	if (len > sizeof(*dst))
		len = sizeof(*dst);
	memcpy(dst, src, len);
}

/* Keep OpenSSL's reason for the log, and leave the queue empty. */
static void
note_tls_error(struct ush_conn *c)
{
	unsigned long e = ERR_peek_error();

	if (e != 0)
		c->tls_error = e;
	ERR_clear_error();
}

static struct ush_server *
pick_server(struct ush_conn *c, const struct ush_server *exclude)
{
	return ush_balancer_pick(c->env->balancer, (const struct sockaddr *)&c->client_addr,
				 exclude);
}

/* ---- closing -------------------------------------------------------------- */

static void
record_reason(struct ush_conn *c, enum ush_close_reason reason)
{
	if (c->reason != USH_CLOSE_NONE)
		return;

	c->reason = reason;
	USH_STAT_ADD(stats(c)->closes[reason], 1);
}

/*
 * Nothing more is sent or received. Unread client bytes go now; the
 * outgoing buffers stay until ush_conn_fini() because a send may still
 * be reading them.
 */
static void
close_now(struct ush_conn *c, enum ush_close_reason reason)
{
	record_reason(c, reason);
	ush_buf_release(&c->from_client);
	c->state = USH_CONN_CLOSED;
	c->deadline_ms = 0;
}

/* Send what to_client holds (an alert, close_notify, last data), then close. */
static void
close_after_flush(struct ush_conn *c, enum ush_close_reason reason)
{
	const struct cfg_timeouts *t = c->env->timeouts;

	if (ush_buf_empty(&c->to_client)) {
		close_now(c, reason);
		return;
	}

	record_reason(c, reason);
	ush_buf_release(&c->from_client);
	c->state = USH_CONN_CLOSING;
	c->deadline_ms = deadline_in(c, t->handshake_ms != 0 ? t->handshake_ms : t->idle_ms);
}

/* Say goodbye with close_notify, as at the end of a relay. */
static void
close_gracefully(struct ush_conn *c, enum ush_close_reason reason)
{
	ERR_clear_error();
	if (!close_notify_sent(c))
		SSL_shutdown(c->ssl);
	ERR_clear_error();
	close_after_flush(c, reason);
}

/* ---- relay ---------------------------------------------------------------- */

static void
note_activity(struct ush_conn *c)
{
	uint64_t ms = c->env->timeouts->idle_ms;

	if (c->state != USH_CONN_RELAY)
		return;

	if (c->draining && (ms == 0 || ms > DRAIN_QUIET_MS))
		ms = DRAIN_QUIET_MS;
	c->deadline_ms = deadline_in(c, ms);
}

/*
 * SSL_read stopped. WANT_READ means the next record is incomplete;
 * ZERO_RETURN is close_notify or (SSL_OP_IGNORE_UNEXPECTED_EOF) a plain
 * end of stream, both of which client_read_done() now reports. Anything
 * else is a broken record from the client: OpenSSL has queued an alert.
 */
static void
on_read_stopped(struct ush_conn *c, int err)
{
	switch (err) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
	case SSL_ERROR_ZERO_RETURN:
		return;
	default:
		note_tls_error(c);
		close_after_flush(c, USH_CLOSE_CLIENT_RESET);
	}
}

/*
 * A client's KeyUpdate that asks for ours waits, in OpenSSL, for our next
 * write, and the upstream may have nothing to say for a long time. An
 * empty SSL_write_ex() sends it now and no application data.
 */
static void
answer_key_update(struct ush_conn *c)
{
	size_t written;

	if (c->state == USH_CONN_CLOSED || c->state == USH_CONN_CLOSING ||
	    SSL_get_key_update_type(c->ssl) == SSL_KEY_UPDATE_NONE || close_notify_sent(c))
		return;

	ERR_clear_error();
	SSL_write_ex(c->ssl, "", 0, &written);
	ERR_clear_error();
}

/* Decrypt client records into to_upstream while it has room. */
static void
read_from_client(struct ush_conn *c)
{
	while (!client_read_done(c) && ush_buf_room(&c->to_upstream) > 0) {
		size_t want = ush_buf_room(&c->to_upstream);
		size_t room, got;
		unsigned char *p;

		if (want > READ_CHUNK)
			want = READ_CHUNK;

		p = ush_buf_reserve(&c->to_upstream, want, true, &room);
		if (p == NULL) {
			close_now(c, USH_CLOSE_INTERNAL);
			return;
		}

		ERR_clear_error();
		if (SSL_read_ex(c->ssl, p, want, &got) != 1) {
			on_read_stopped(c, SSL_get_error(c->ssl, 0));
			break;
		}

		ush_buf_commit(&c->to_upstream, got);
		c->bytes_from_client += got;
		USH_STAT_ADD(stats(c)->bytes_from_client, got);
	}

	/* The block reserved for a read that brought nothing is not kept. */
	if (ush_buf_empty(&c->to_upstream))
		ush_buf_release(&c->to_upstream);

	answer_key_update(c);
}

/* Both directions ended and everything was delivered. */
static bool
relay_finished(const struct ush_conn *c)
{
	return client_read_done(c) && ush_buf_empty(&c->to_upstream) && c->upstream_eof &&
	       close_notify_sent(c) && ush_buf_empty(&c->to_client);
}

static void
check_relay_end(struct ush_conn *c)
{
	/* Closing the upstream socket half-closes it too, if still needed. */
	if (c->state == USH_CONN_RELAY && relay_finished(c))
		close_now(c, USH_CLOSE_DONE);
}

/* ---- connecting ----------------------------------------------------------- */

static int
write_proxy_header(struct ush_conn *c)
{
	enum cfg_proxy_protocol version = c->env->listener->proxy_protocol;
	struct ush_proxy_info info = {
		.client = (const struct sockaddr *)&c->client_addr,
		.local = (const struct sockaddr *)&c->local_addr,
		.sni = SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name),
		.tls_version = SSL_get_version(c->ssl),
	};
	unsigned alpn_len = 0;
	unsigned char *p;
	size_t room;
	int n;

	if (version == CFG_PROXY_PROTOCOL_OFF)
		return 0;

	SSL_get0_alpn_selected(c->ssl, &info.alpn, &alpn_len);
	info.alpn_len = alpn_len;

	p = ush_buf_reserve(&c->to_upstream, PROXY_HEADER_MAX, true, &room);
	if (p == NULL)
		return -ENOMEM;

	if (version == CFG_PROXY_PROTOCOL_V1)
		n = ush_proxy_v1(&info, (char *)p, room);
	else
		n = ush_proxy_v2(&info, p, room);

	if (n < 0) {
		if (ush_buf_empty(&c->to_upstream))
			ush_buf_release(&c->to_upstream);
		return n;
	}

	ush_buf_commit(&c->to_upstream, (size_t)n);
	return 0;
}

/*
 * The server this connection goes to: the one chosen for its ticket
 * (pick_server during the handshake), else the one a resumed ticket names
 * if still usable, else the balancer's choice.
 */
static struct ush_server *
choose_server(struct ush_conn *c)
{
	const struct tkc_conn *t = &c->ticket;

	if (c->server == NULL && t->server_id_len > 0) {
		struct ush_server *s =
			ush_pool_find(c->env->balancer->pool, t->server_id, t->server_id_len);

		if (s != NULL && ush_server_usable(s))
			c->server = s;
	}

	if (c->server == NULL || !ush_server_usable(c->server))
		c->server = pick_server(c, NULL);

	return c->server;
}

static void
count_handshake(struct ush_conn *c)
{
	int v = SSL_version(c->ssl) == TLS1_3_VERSION ? 1 : 0;

	if (SSL_session_reused(c->ssl))
		USH_STAT_ADD(stats(c)->handshakes_resumed[v], 1);
	else
		USH_STAT_ADD(stats(c)->handshakes_full[v], 1);
}

static void
on_handshake_done(struct ush_conn *c)
{
	count_handshake(c);

	if (choose_server(c) == NULL) {
		close_after_flush(c, USH_CLOSE_NO_SERVER);
		return;
	}

	if (write_proxy_header(c) != 0) {
		close_after_flush(c, USH_CLOSE_INTERNAL);
		return;
	}

	c->state = USH_CONN_CONNECTING;
	c->connect_tries = 1;
	c->deadline_ms = deadline_in(c, c->env->timeouts->connect_ms);
}

/* A connect failed or timed out: try another server while that is safe. */
static void
connect_failed(struct ush_conn *c)
{
	const struct ush_pool *pool = c->env->balancer->pool;
	struct ush_server *next = NULL;

	ush_server_report_connect(c->server, false);
	USH_STAT_ADD(stats(c)->upstream_connect_failures, 1);
	c->failed = c->server;

	if (!c->forwarded && c->connect_tries < pool->n_servers)
		next = pick_server(c, c->failed);

	if (next == NULL) {
		close_after_flush(c, USH_CLOSE_UPSTREAM_FAILED);
		return;
	}

	c->server = next;
	c->connect_tries++;
	USH_STAT_ADD(stats(c)->upstream_retries, 1);
	c->deadline_ms = deadline_in(c, c->env->timeouts->connect_ms);
}

/* ---- handshake ------------------------------------------------------------ */

/* Whether a failed handshake is the client going away rather than garbage. */
static bool
client_went_away(const struct ush_conn *c, int err)
{
	unsigned long e = ERR_peek_error();

	if (!c->client_eof)
		return false;

	return (err == SSL_ERROR_SYSCALL && e == 0) ||
	       ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING;
}

static void
on_handshake_failed(struct ush_conn *c, int err)
{
	if (client_went_away(c, err)) {
		ERR_clear_error();
		close_now(c, USH_CLOSE_CLIENT_RESET);
		return;
	}

	note_tls_error(c);
	USH_STAT_ADD(stats(c)->handshake_failures, 1);
	close_after_flush(c, USH_CLOSE_HANDSHAKE_FAILED);
}

static void
drive_handshake(struct ush_conn *c)
{
	int rc, err;

	ERR_clear_error();
	rc = SSL_do_handshake(c->ssl);
	if (rc == 1) {
		on_handshake_done(c);
		return;
	}

	err = SSL_get_error(c->ssl, rc);
	if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
		on_handshake_failed(c, err);
		return;
	}

	/* More is needed, and none will come. */
	if (c->client_eof)
		close_now(c, USH_CLOSE_CLIENT_RESET);
}

/* Let TLS take what the client sent, as far as the state allows. */
static void
advance_client(struct ush_conn *c)
{
	if (c->state == USH_CONN_HANDSHAKE)
		drive_handshake(c);

	if (c->state == USH_CONN_CONNECTING || c->state == USH_CONN_RELAY)
		read_from_client(c);

	check_relay_end(c);
}

/* ---- the ticket hook ------------------------------------------------------ */

void
ush_conn_pick_for_ticket(SSL *ssl, struct tkc_conn *t, void *arg)
{
	struct ush_conn *c = conn_index >= 0 ? SSL_get_ex_data(ssl, conn_index) : NULL;
	const char *name;

	if (c == NULL || c->env->balancer == NULL)
		return;

	if (c->server == NULL)
		c->server = pick_server(c, NULL);
	if (c->server == NULL)
		return;

	name = c->server->cfg->name;
	tkc_conn_set_server(t, name, strlen(name));
}

/* ---- the API -------------------------------------------------------------- */

int
ush_conn_init(struct ush_conn *c, struct ush_conn_env *env, const struct sockaddr *client,
	      socklen_t client_len, const struct sockaddr *local, socklen_t local_len)
{
	void *engine = c->engine;
	int rc;

	memset(c, 0, sizeof(*c));
	c->engine = engine;
	c->env = env;
	c->state = USH_CONN_HANDSHAKE;
	copy_addr(&c->client_addr, client, client_len);
	copy_addr(&c->local_addr, local, local_len);

	pthread_once(&setup_once, setup);
	if (bio_method == NULL)
		return -ENOMEM;

	ush_tls_bind_pool(env->tls, env->balancer->pool);
	c->ssl = ush_tls_new_ssl(env->tls);
	if (c->ssl == NULL)
		return -ENOMEM;

	rc = attach_bio(c);
	if (rc != 0)
		return rc;

	if (SSL_set_ex_data(c->ssl, conn_index, c) != 1 ||
	    tkc_conn_attach(c->ssl, &c->ticket) != 0) {
		ERR_clear_error();
		return -EIO;
	}

	SSL_set_accept_state(c->ssl);
	c->accepted_ms = now_ms(c);
	c->deadline_ms = deadline_in(c, env->timeouts->handshake_ms);
	return 0;
}

void
ush_conn_fini(struct ush_conn *c)
{
	if (c->upstream_open && c->server != NULL)
		ush_balancer_conn_closed(c->env->balancer, c->server);
	c->upstream_open = false;

	SSL_free(c->ssl);
	c->ssl = NULL;

	ush_buf_release(&c->from_client);
	ush_buf_release(&c->to_client);
	ush_buf_release(&c->to_upstream);
}

static bool
takes_client_bytes(const struct ush_conn *c)
{
	return c->state == USH_CONN_HANDSHAKE || c->state == USH_CONN_CONNECTING ||
	       c->state == USH_CONN_RELAY;
}

void
ush_conn_on_client_data(struct ush_conn *c, const void *data, size_t len)
{
	if (len == 0 || !takes_client_bytes(c))
		return;

	/* Lend the engine's bytes to TLS; copy only what it leaves. */
	if (ush_buf_empty(&c->from_client))
		ush_buf_borrow(&c->from_client, data, len);
	else if (ush_buf_append(&c->from_client, data, len, false) != 0) {
		close_now(c, USH_CLOSE_INTERNAL);
		return;
	}

	note_activity(c);
	advance_client(c);

	if (ush_buf_settle(&c->from_client) != 0)
		close_now(c, USH_CLOSE_INTERNAL);
}

void
ush_conn_on_client_eof(struct ush_conn *c)
{
	if (c->client_eof || !takes_client_bytes(c))
		return;

	c->client_eof = true;

	/* A handshake has already taken every byte it was given. */
	if (c->state == USH_CONN_HANDSHAKE) {
		close_now(c, USH_CLOSE_CLIENT_RESET);
		return;
	}

	advance_client(c);
}

void
ush_conn_on_client_error(struct ush_conn *c, int err)
{
	if (c->state != USH_CONN_CLOSED)
		close_now(c, USH_CLOSE_CLIENT_RESET);
}

/*
 * The ticket was written before we knew the server it names would fail us.
 * Under TLS 1.3 hand the client a fresh ticket naming the server it really
 * reached, so its next resumption goes there; TLS 1.2 has no tickets after
 * the handshake, and its clients move on their next full handshake.
 */
static void
renew_ticket_after_retry(struct ush_conn *c)
{
	const char *name = c->server->cfg->name;
	size_t len = strlen(name);

	if (c->connect_tries <= 1 || SSL_version(c->ssl) != TLS1_3_VERSION)
		return;

	if (c->ticket.server_id_len == len && memcmp(c->ticket.server_id, name, len) == 0)
		return;

	ERR_clear_error();
	if (tkc_conn_set_server(&c->ticket, name, len) != 0 || SSL_new_session_ticket(c->ssl) != 1)
		return;

	/* Writes the ticket now rather than with the first upstream byte. */
	SSL_do_handshake(c->ssl);
	ERR_clear_error();
}

void
ush_conn_on_upstream_connected(struct ush_conn *c)
{
	if (c->state != USH_CONN_CONNECTING || c->upstream_open)
		return;

	renew_ticket_after_retry(c);
	ush_server_report_connect(c->server, true);
	ush_balancer_conn_opened(c->env->balancer, c->server);
	c->upstream_open = true;
	c->state = USH_CONN_RELAY;
	note_activity(c);
	check_relay_end(c);
}

void
ush_conn_on_upstream_failed(struct ush_conn *c, int err)
{
	if (c->state == USH_CONN_CONNECTING && !c->upstream_open)
		connect_failed(c);
}

void
ush_conn_on_upstream_data(struct ush_conn *c, const void *data, size_t len)
{
	size_t written = 0;

	if (c->state != USH_CONN_RELAY || c->upstream_eof || len == 0)
		return;

	ERR_clear_error();
	if (SSL_write_ex(c->ssl, data, len, &written) != 1 || written != len) {
		note_tls_error(c);
		close_now(c, USH_CLOSE_INTERNAL);
		return;
	}

	c->bytes_to_client += len;
	USH_STAT_ADD(stats(c)->bytes_to_client, len);
	note_activity(c);
}

void
ush_conn_on_upstream_eof(struct ush_conn *c)
{
	if (c->state != USH_CONN_RELAY || c->upstream_eof)
		return;

	/* close_notify goes after the data already in to_client. */
	c->upstream_eof = true;
	ERR_clear_error();
	SSL_shutdown(c->ssl);
	ERR_clear_error();
	check_relay_end(c);
}

void
ush_conn_on_upstream_error(struct ush_conn *c, int err)
{
	if (c->state == USH_CONN_CONNECTING && !c->upstream_open) {
		connect_failed(c);
		return;
	}

	/*
	 * What the upstream sent before it broke still goes to the client.
	 * TODO(#3): an upstream that breaks before any client byte reached it
	 * could be retried like a failed connect; the engine would then have
	 * to drop the broken socket when CONNECT is wanted again.
	 */
	if (c->state == USH_CONN_RELAY)
		close_after_flush(c, USH_CLOSE_UPSTREAM_RESET);
}

void
ush_conn_on_sent(struct ush_conn *c, int to_upstream, size_t n)
{
	ush_buf_consume(to_upstream ? &c->to_upstream : &c->to_client, n);

	if (c->state == USH_CONN_CLOSED || n == 0)
		return;

	if (to_upstream)
		c->forwarded = true;

	if (c->state == USH_CONN_CLOSING) {
		if (ush_buf_empty(&c->to_client))
			close_now(c, c->reason);
		return;
	}

	note_activity(c);

	/* Room in to_upstream: TLS may hold records it could not decrypt. */
	if (to_upstream)
		advance_client(c);
	else
		check_relay_end(c);
}

void
ush_conn_on_timeout(struct ush_conn *c)
{
	if (c->deadline_ms == 0 || now_ms(c) < c->deadline_ms)
		return;

	switch (c->state) {
	case USH_CONN_HANDSHAKE:
		close_now(c, USH_CLOSE_HANDSHAKE_TIMEOUT);
		break;
	case USH_CONN_CONNECTING:
		connect_failed(c);
		break;
	case USH_CONN_RELAY:
		if (c->draining)
			close_gracefully(c, USH_CLOSE_SHUTDOWN);
		else
			close_now(c, USH_CLOSE_IDLE_TIMEOUT);
		break;
	case USH_CONN_CLOSING:
		close_now(c, c->reason);
		break;
	case USH_CONN_CLOSED:
		break;
	}
}

void
ush_conn_shutdown(struct ush_conn *c)
{
	uint64_t quiet;

	if (c->state == USH_CONN_HANDSHAKE) {
		close_now(c, USH_CLOSE_SHUTDOWN);
		return;
	}

	if (c->state != USH_CONN_CONNECTING && c->state != USH_CONN_RELAY)
		return;

	c->draining = true;
	if (c->state != USH_CONN_RELAY)
		return;

	quiet = deadline_in(c, DRAIN_QUIET_MS);
	if (c->deadline_ms == 0 || c->deadline_ms > quiet)
		c->deadline_ms = quiet;
}

void
ush_conn_abort(struct ush_conn *c, enum ush_close_reason reason)
{
	if (c->state != USH_CONN_CLOSED)
		close_now(c, reason);
}

static unsigned
client_interest(const struct ush_conn *c)
{
	if (c->client_eof || client_read_done(c) || ush_buf_room(&c->to_upstream) == 0 ||
	    ush_buf_room(&c->from_client) == 0)
		return 0;

	return USH_WANT_RECV_CLIENT;
}

static unsigned
relay_interest(const struct ush_conn *c)
{
	unsigned w = client_interest(c);

	if (!c->upstream_eof && ush_buf_room(&c->to_client) > 0)
		w |= USH_WANT_RECV_UPSTREAM;

	if (!ush_buf_empty(&c->to_upstream))
		w |= USH_WANT_SEND_UPSTREAM;
	else if (client_read_done(c) && !c->upstream_shut)
		w |= USH_WANT_SHUT_UPSTREAM;

	return w;
}

unsigned
ush_conn_wants(const struct ush_conn *c)
{
	unsigned w = 0;

	switch (c->state) {
	case USH_CONN_HANDSHAKE:
		w = c->client_eof ? 0 : USH_WANT_RECV_CLIENT;
		break;
	case USH_CONN_CONNECTING:
		w = USH_WANT_CONNECT | client_interest(c);
		break;
	case USH_CONN_RELAY:
		w = relay_interest(c);
		break;
	case USH_CONN_CLOSING:
		if (ush_buf_empty(&c->to_client))
			return USH_WANT_CLOSE;
		break;
	case USH_CONN_CLOSED:
		return USH_WANT_CLOSE;
	}

	if (!ush_buf_empty(&c->to_client))
		w |= USH_WANT_SEND_CLIENT;

	return w;
}
