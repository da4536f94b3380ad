/*
 * Shards: the OpenSSL side of ticketcache. One shard serves one listener
 * on one worker thread, so the handshake path takes no lock: the shard's
 * keyset, counters and fetched algorithms belong to that thread alone.
 *
 * Keys change in two ways, both noticed at the start of a ticket
 * operation:
 *
 *	publisher thread                     shard thread
 *	tkc_shard_publish(src)
 *	  mailbox <- src (exchange) ---->    refresh_keys()
 *	  unref what it displaced              take mailbox (exchange NULL)
 *	                                       build keyset, drop the old one
 *	                                     epoch of now != keys_epoch?
 *	                                       rebuild, reusing known keys
 *
 * The callbacks, in the order OpenSSL calls them:
 *
 *	ClientHello with a ticket:  on_ticket_key(enc=0) -> on_ticket_decrypted
 *	ticket about to be sent:    on_ticket_generate   -> on_ticket_key(enc=1)
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "tkc.h"
#include "tkc_internal.h"

/* OpenSSL 3.0 lets a TLS 1.3 ticket live at most a week (RFC 8446 4.6.1). */
#define TICKET_LIFETIME_MAX (7 * 24 * 3600)

#define SID_CTX_PREFIX     "usher/tkc"
#define SID_CTX_PREFIX_LEN (sizeof(SID_CTX_PREFIX) - 1)

struct tkc_shard {
	uint64_t listener_tag;
	unsigned char sid_ctx[SID_CTX_PREFIX_LEN + 8];
	uint64_t lifetime_s;
	bool affinity;
	struct tkc_hooks hooks;
	OSSL_LIB_CTX *libctx; /* where keys are derived; NULL is the default */

	struct tkc_source *source; /* our reference */
	struct tkc_keyset *keys;
	uint64_t keys_epoch;
	_Atomic(struct tkc_source *) mailbox; /* a published source, referenced */

	/*
	 * Fetched once: an implicit fetch per ticket costs locks in 3.0.
	 * OpenSSL 3.0 makes the EVP_MAC_CTX of each ticket itself, so hmac
	 * is not handed to it; holding it makes a missing HMAC fail
	 * tkc_shard_create() instead of the first handshake. The digest of
	 * that context can only be set by name, which the provider looks up
	 * on every ticket: TODO(#4) measure what that lookup costs.
	 */
	EVP_CIPHER *aes_cbc;
	EVP_MAC *hmac;

	/* Written by the shard's thread only, read by anyone: see count(). */
	struct tkc_counters counters;
};

/* ---- ex_data indexes ---------------------------------------------------- */

static CRYPTO_ONCE index_once = CRYPTO_ONCE_STATIC_INIT;
static int ctx_index = -1;
static int ssl_index = -1;

static void
create_indexes(void)
{
	ctx_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	ssl_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

static bool
indexes_ready(void)
{
	return CRYPTO_THREAD_run_once(&index_once, create_indexes) && ctx_index >= 0 &&
	       ssl_index >= 0;
}

/* ---- per-connection state ----------------------------------------------- */

const char *
tkc_outcome_name(enum tkc_outcome outcome)
{
	switch (outcome) {
	case TKC_OUTCOME_NONE:
		return "none";
	case TKC_OUTCOME_CURRENT:
		return "current";
	case TKC_OUTCOME_OLD:
		return "old";
	case TKC_OUTCOME_UNKNOWN_KEY:
		return "unknown_key";
	case TKC_OUTCOME_UNDECRYPTABLE:
		return "undecryptable";
	case TKC_OUTCOME_REJECTED:
		return "rejected";
	}
	return "invalid";
}

int
tkc_conn_attach(SSL *ssl, struct tkc_conn *c)
{
	if (ssl == NULL || c == NULL)
		return -EINVAL;

	memset(c, 0, sizeof(*c));
	if (!indexes_ready() || SSL_set_ex_data(ssl, ssl_index, c) != 1)
		return -EIO;
	return 0;
}

struct tkc_conn *
tkc_conn_get(const SSL *ssl)
{
	if (ssl == NULL || !indexes_ready())
		return NULL;
	return SSL_get_ex_data(ssl, ssl_index);
}

int
tkc_conn_set_server(struct tkc_conn *c, const char *id, size_t len)
{
	if (c == NULL || len > TKC_SERVER_ID_MAX || (len > 0 && id == NULL))
		return -EINVAL;

	memset(c->server_id, 0, sizeof(c->server_id));
	if (len > 0)
		memcpy(c->server_id, id, len);
	c->server_id_len = len;
	return 0;
}

/* ---- counters and time -------------------------------------------------- */

/*
 * Only the shard's thread writes a counter, so a plain increment is right;
 * the relaxed atomic load and store keep a concurrent reader from seeing a
 * torn value (and keep ThreadSanitizer quiet) at no cost on x86 or arm64.
 */
static void
count(uint64_t *field)
{
	__atomic_store_n(field, __atomic_load_n(field, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}

void
tkc_shard_read_counters(const struct tkc_shard *shard, struct tkc_counters *out)
{
	const struct tkc_counters *c = &shard->counters;

	out->tickets_issued = __atomic_load_n(&c->tickets_issued, __ATOMIC_RELAXED);
	out->decrypt_current = __atomic_load_n(&c->decrypt_current, __ATOMIC_RELAXED);
	out->decrypt_old = __atomic_load_n(&c->decrypt_old, __ATOMIC_RELAXED);
	out->decrypt_unknown_key = __atomic_load_n(&c->decrypt_unknown_key, __ATOMIC_RELAXED);
	out->decrypt_undecryptable = __atomic_load_n(&c->decrypt_undecryptable, __ATOMIC_RELAXED);
	out->appdata_rejected = __atomic_load_n(&c->appdata_rejected, __ATOMIC_RELAXED);
	out->affinity_routed = __atomic_load_n(&c->affinity_routed, __ATOMIC_RELAXED);
	out->affinity_repinned = __atomic_load_n(&c->affinity_repinned, __ATOMIC_RELAXED);
	out->key_rotations = __atomic_load_n(&c->key_rotations, __ATOMIC_RELAXED);
}

static uint64_t
shard_now(const struct tkc_shard *shard)
{
	if (shard->hooks.now != NULL)
		return shard->hooks.now(shard->hooks.arg);
	return (uint64_t)time(NULL);
}

/* ---- key switching ------------------------------------------------------ */

static void
install_keys(struct tkc_shard *shard, struct tkc_keyset *keys, uint64_t epoch)
{
	tkc_keyset_free(shard->keys);
	shard->keys = keys;
	shard->keys_epoch = epoch;
	count(&shard->counters.key_rotations);
}

/*
 * Take a source that tkc_shard_publish() left in the mailbox. When its
 * keys cannot be built, the old keys stay in service and the source goes
 * back to the mailbox for the next ticket, unless a newer one came in.
 */
static void
take_published(struct tkc_shard *shard, uint64_t now)
{
	struct tkc_source *src, *expected = NULL;
	struct tkc_keyset *keys;

	/* A plain load first: the exchange is a locked instruction. */
	if (atomic_load_explicit(&shard->mailbox, memory_order_relaxed) == NULL)
		return;

	src = atomic_exchange_explicit(&shard->mailbox, NULL, memory_order_acquire);
	if (src == NULL)
		return;

	if (tkc_keyset_rebuild_in(shard->libctx, src, now, NULL, &keys) != 0) {
		if (!atomic_compare_exchange_strong_explicit(&shard->mailbox, &expected, src,
							     memory_order_release,
							     memory_order_relaxed))
			tkc_source_unref(src);
		return;
	}

	tkc_source_unref(shard->source);
	shard->source = src;
	install_keys(shard, keys, tkc_source_epoch(src, now));
}

/* Derived keys move with the clock; a failed rebuild is retried next time. */
static void
follow_epoch(struct tkc_shard *shard, uint64_t now)
{
	uint64_t epoch = tkc_source_epoch(shard->source, now);
	struct tkc_keyset *keys;

	if (epoch == shard->keys_epoch)
		return;

	if (tkc_keyset_rebuild_in(shard->libctx, shard->source, now, shard->keys, &keys) == 0)
		install_keys(shard, keys, epoch);
}

static void
refresh_keys(struct tkc_shard *shard)
{
	uint64_t now = shard_now(shard);

	take_published(shard, now);
	follow_epoch(shard, now);
}

/* ---- the ticket key callback -------------------------------------------- */

static int
set_hmac_key(EVP_MAC_CTX *hctx, const struct tkc_key *key)
{
	OSSL_PARAM params[3];

	params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, tkc_param_ptr(key->hmac),
						      TKC_HMAC_KEY_LEN);
	params[1] =
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, tkc_param_ptr("SHA256"), 0);
	params[2] = OSSL_PARAM_construct_end();
	return EVP_MAC_CTX_set_params(hctx, params);
}

/* 1 when the ticket may be written, -1 on an OpenSSL failure. */
static int
encrypt_ticket(struct tkc_shard *shard, unsigned char *name, unsigned char *iv,
	       EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx)
{
	const struct tkc_key *key = tkc_keyset_encrypt_key(shard->keys);
	int iv_len = EVP_CIPHER_get_iv_length(shard->aes_cbc);

	memcpy(name, key->name, TKC_KEY_NAME_LEN);
	if (RAND_bytes_ex(shard->libctx, iv, (size_t)iv_len, 0) != 1)
		return -1;

	if (EVP_EncryptInit_ex2(cctx, shard->aes_cbc, key->aes, iv, NULL) != 1 ||
	    set_hmac_key(hctx, key) != 1)
		return -1;

	count(&shard->counters.tickets_issued);
	return 1;
}

/*
 * OpenSSL's contract for the key callback when decrypting: 0 means no key
 * has that name (full handshake), 1 use it, 2 use it and issue a ticket
 * under the current key, below 0 an error.
 */
static int
decrypt_ticket(struct tkc_shard *shard, SSL *ssl, const unsigned char *name,
	       const unsigned char *iv, EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx)
{
	struct tkc_conn *c = tkc_conn_get(ssl);
	bool is_current = false;
	const struct tkc_key *key = tkc_keyset_lookup(shard->keys, name, &is_current);

	if (c != NULL) {
		c->key_found = key != NULL;
		c->key_was_current = is_current;
	}

	if (key == NULL)
		return 0;

	if (EVP_DecryptInit_ex2(cctx, shard->aes_cbc, key->aes, iv, NULL) != 1 ||
	    set_hmac_key(hctx, key) != 1)
		return -1;
	return is_current ? 1 : 2;
}

/*
 * The key callback has no argument of its own; the shard hangs off the
 * SSL_CTX, which tkc_shard_attach() marked (every SSL_CTX a listener may
 * switch to for SNI is attached to the same shard).
 */
static int
on_ticket_key(SSL *ssl, unsigned char name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
	      EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	struct tkc_shard *shard = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_index);

	if (shard == NULL)
		return -1;

	refresh_keys(shard);
	if (enc)
		return encrypt_ticket(shard, name, iv, cctx, hctx);
	return decrypt_ticket(shard, ssl, name, iv, cctx, hctx);
}

/* ---- the appdata callbacks ---------------------------------------------- */

static int
on_ticket_generate(SSL *ssl, void *arg)
{
	struct tkc_shard *shard = arg;
	struct tkc_conn *c = tkc_conn_get(ssl);
	struct tkc_conn unattached = {0};
	struct tkc_appdata ad = {0};
	unsigned char buf[TKC_APPDATA_MAX];
	int len;

	if (c == NULL)
		c = &unattached;
	else if (c->server_id_len == 0 && shard->hooks.pick_server != NULL)
		shard->hooks.pick_server(ssl, c, shard->hooks.arg);

	/* A renewed ticket keeps the start of the chain it continues. */
	if (c->first_handshake_s == 0)
		c->first_handshake_s = shard_now(shard);

	ad.listener_tag = shard->listener_tag;
	ad.first_handshake_s = c->first_handshake_s;
	if (shard->affinity && c->server_id_len <= TKC_SERVER_ID_MAX) {
		ad.server_id_len = c->server_id_len;
		memcpy(ad.server_id, c->server_id, c->server_id_len);
	}

	len = tkc_appdata_encode(&ad, buf, sizeof(buf));
	if (len < 0)
		return 0;

	/* The manual names SSL_get_session() as the session to write into. */
	return SSL_SESSION_set1_ticket_appdata(SSL_get_session(ssl), buf, (size_t)len);
}

/*
 * A ticket that did not decrypt: was its key name one of ours (the MAC or
 * the length was wrong) or not (an old, foreign or forged key)?
 */
static void
record_failure(struct tkc_shard *shard, struct tkc_conn *c, const unsigned char *name,
	       size_t name_len)
{
	bool known = c->key_found;

	/* OpenSSL skips the key callback for a ticket too short to hold an IV. */
	if (!known && name_len == TKC_KEY_NAME_LEN)
		known = tkc_keyset_lookup(shard->keys, name, NULL) != NULL;

	if (known || name_len < TKC_KEY_NAME_LEN)
		c->outcome = TKC_OUTCOME_UNDECRYPTABLE;
	else
		c->outcome = TKC_OUTCOME_UNKNOWN_KEY;
}

/* Whether the ticket's appdata allows this listener to resume it now. */
static bool
appdata_acceptable(const struct tkc_shard *shard, SSL_SESSION *sess, struct tkc_appdata *ad)
{
	void *data = NULL;
	size_t len = 0;
	uint64_t now = shard_now(shard);

	if (SSL_SESSION_get0_ticket_appdata(sess, &data, &len) != 1)
		return false;

	if (tkc_appdata_decode(data, len, ad) != 0)
		return false;

	if (ad->listener_tag != shard->listener_tag)
		return false;

	/* A start in the future comes from a peer whose clock runs ahead. */
	return now <= ad->first_handshake_s || now - ad->first_handshake_s <= shard->lifetime_s;
}

/*
 * Route by the server the ticket names. When it may not be used, leave
 * the server unset so that pick_server chooses another in
 * on_ticket_generate, and ask for a renewed ticket naming that one.
 * Returns whether the ticket must be renewed.
 */
static bool
route_by_ticket(struct tkc_shard *shard, struct tkc_conn *c, const struct tkc_appdata *ad)
{
	const struct tkc_hooks *h = &shard->hooks;

	if (h->server_usable == NULL ||
	    h->server_usable(ad->server_id, ad->server_id_len, h->arg)) {
		tkc_conn_set_server(c, ad->server_id, ad->server_id_len);
		c->resumed_affinity = true;
		return false;
	}

	c->repinned = true;
	return true;
}

static SSL_TICKET_RETURN
accept_ticket(struct tkc_shard *shard, SSL *ssl, struct tkc_conn *c, SSL_SESSION *sess,
	      const unsigned char *name, bool renew)
{
	struct tkc_appdata ad;
	bool is_current = c->key_was_current;

	if (!appdata_acceptable(shard, sess, &ad)) {
		c->outcome = TKC_OUTCOME_REJECTED;
		return SSL_TICKET_RETURN_IGNORE_RENEW;
	}

	/* Unattached connections have no record of the key callback. */
	if (!c->key_found)
		tkc_keyset_lookup(shard->keys, name, &is_current);

	c->outcome = is_current ? TKC_OUTCOME_CURRENT : TKC_OUTCOME_OLD;
	c->first_handshake_s = ad.first_handshake_s;

	/* TLS 1.3 clients use a ticket once: without a new one they stop resuming. */
	if (!is_current || SSL_version(ssl) == TLS1_3_VERSION)
		renew = true;

	if (shard->affinity && ad.server_id_len > 0 && route_by_ticket(shard, c, &ad))
		renew = true;

	return renew ? SSL_TICKET_RETURN_USE_RENEW : SSL_TICKET_RETURN_USE;
}

/*
 * Count what was decided about the connection's ticket, once: after a
 * HelloRetryRequest, OpenSSL decrypts the same ticket a second time.
 */
static void
count_decision(struct tkc_shard *shard, struct tkc_conn *c)
{
	struct tkc_counters *n = &shard->counters;
	uint64_t *by_outcome[] = {
		[TKC_OUTCOME_NONE] = NULL,
		[TKC_OUTCOME_CURRENT] = &n->decrypt_current,
		[TKC_OUTCOME_OLD] = &n->decrypt_old,
		[TKC_OUTCOME_UNKNOWN_KEY] = &n->decrypt_unknown_key,
		[TKC_OUTCOME_UNDECRYPTABLE] = &n->decrypt_undecryptable,
		[TKC_OUTCOME_REJECTED] = &n->appdata_rejected,
	};

	if (c->ticket_counted || c->outcome == TKC_OUTCOME_NONE ||
	    (size_t)c->outcome >= sizeof(by_outcome) / sizeof(by_outcome[0]))
		return;

	c->ticket_counted = true;
	count(by_outcome[c->outcome]);
	if (c->resumed_affinity)
		count(&n->affinity_routed);
	if (c->repinned)
		count(&n->affinity_repinned);
}

/*
 * The return values follow SSL_CTX_set_session_ticket_cb(3):
 *   EMPTY, NO_DECRYPT       -> IGNORE_RENEW (the default: no resumption, a
 *                              fresh ticket); IGNORE would send none in 1.2
 *   SUCCESS, SUCCESS_RENEW  -> USE or USE_RENEW; IGNORE_RENEW when the
 *                              appdata refuses the ticket
 * USE and USE_RENEW are an error for any other status, so they are only
 * returned from accept_ticket(). ABORT is never used: in TLS 1.3 one bad
 * ticket among several must not end the handshake.
 */
static SSL_TICKET_RETURN
on_ticket_decrypted(SSL *ssl, SSL_SESSION *sess, const unsigned char *name, size_t name_len,
		    SSL_TICKET_STATUS status, void *arg)
{
	struct tkc_shard *shard = arg;
	struct tkc_conn *c = tkc_conn_get(ssl);
	struct tkc_conn unattached = {0};
	SSL_TICKET_RETURN ret = SSL_TICKET_RETURN_IGNORE_RENEW;

	if (c == NULL)
		c = &unattached;

	c->resumed_affinity = false;
	c->repinned = false;
	switch (status) {
	case SSL_TICKET_EMPTY:
		c->outcome = TKC_OUTCOME_NONE;
		break;
	case SSL_TICKET_NO_DECRYPT:
		record_failure(shard, c, name, name_len);
		break;
	case SSL_TICKET_SUCCESS:
	case SSL_TICKET_SUCCESS_RENEW:
		ret = accept_ticket(shard, ssl, c, sess, name, status == SSL_TICKET_SUCCESS_RENEW);
		break;
	default:
		/* OpenSSL passes no other status; use no ticket if it ever does. */
		break;
	}

	count_decision(shard, c);

	/* A TLS 1.3 client may offer several tickets; each starts afresh. */
	c->key_found = false;
	c->key_was_current = false;
	return ret;
}

/* ---- shard lifecycle ---------------------------------------------------- */

static int
fetch_algorithms(struct tkc_shard *shard)
{
	shard->aes_cbc = EVP_CIPHER_fetch(shard->libctx, "AES-256-CBC", NULL);
	shard->hmac = EVP_MAC_fetch(shard->libctx, "HMAC", NULL);
	return shard->aes_cbc != NULL && shard->hmac != NULL ? 0 : -EIO;
}

int
tkc_shard_create(const struct tkc_shard_params *params, struct tkc_shard **out)
{
	struct tkc_shard *shard;
	int rc;

	if (params == NULL || params->listener == NULL || params->source == NULL ||
	    params->lifetime_s == 0 || out == NULL)
		return -EINVAL;

	if (!indexes_ready())
		return -EIO;

	shard = calloc(1, sizeof(*shard));
	if (shard == NULL)
		return -ENOMEM;

	shard->listener_tag = tkc_listener_tag(params->listener);
	memcpy(shard->sid_ctx, SID_CTX_PREFIX, SID_CTX_PREFIX_LEN);
	tkc_put_be64(shard->sid_ctx + SID_CTX_PREFIX_LEN, shard->listener_tag);
	shard->lifetime_s = params->lifetime_s;
	shard->affinity = params->affinity;
	shard->hooks = params->hooks;
	shard->libctx = params->libctx;
	atomic_init(&shard->mailbox, NULL);

	rc = fetch_algorithms(shard);
	if (rc == 0)
		rc = tkc_keyset_rebuild_in(shard->libctx, params->source, shard_now(shard), NULL,
					   &shard->keys);
	if (rc != 0) {
		tkc_shard_free(shard);
		return rc;
	}

	shard->keys_epoch = tkc_source_epoch(params->source, shard_now(shard));
	tkc_source_ref(params->source);
	shard->source = params->source;
	*out = shard;
	return 0;
}

static long
session_timeout(const struct tkc_shard *shard)
{
	return (long)(shard->lifetime_s < TICKET_LIFETIME_MAX ? shard->lifetime_s
							      : TICKET_LIFETIME_MAX);
}

/*
 * Besides the callbacks: the session id context binds TLS 1.2 sessions to
 * the listener too; no server-side cache, because the ticket carries the
 * session (TLS 1.3 tickets keep flowing: they depend on SSL_OP_NO_TICKET
 * only); the session timeout follows lifetime_s, or OpenSSL would expire
 * tickets after its default of two hours; and no renegotiation, which
 * would run the ticket callbacks again and could move an established
 * connection to another server.
 */
int
tkc_shard_attach(struct tkc_shard *shard, SSL_CTX *ctx)
{
	if (shard == NULL || ctx == NULL)
		return -EINVAL;

	if (SSL_CTX_set_ex_data(ctx, ctx_index, shard) != 1 ||
	    SSL_CTX_set_session_id_context(ctx, shard->sid_ctx, sizeof(shard->sid_ctx)) != 1)
		return -EIO;

	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_timeout(ctx, session_timeout(shard));

	if (SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, on_ticket_key) != 1 ||
	    SSL_CTX_set_session_ticket_cb(ctx, on_ticket_generate, on_ticket_decrypted, shard) != 1)
		return -EIO;
	return 0;
}

void
tkc_shard_publish(struct tkc_shard *shard, struct tkc_source *src)
{
	struct tkc_source *displaced;

	tkc_source_ref(src);
	displaced = atomic_exchange_explicit(&shard->mailbox, src, memory_order_acq_rel);
	tkc_source_unref(displaced);
}

void
tkc_shard_free(struct tkc_shard *shard)
{
	if (shard == NULL)
		return;

	tkc_source_unref(atomic_exchange_explicit(&shard->mailbox, NULL, memory_order_acquire));
	tkc_source_unref(shard->source);
	tkc_keyset_free(shard->keys);
	EVP_CIPHER_free(shard->aes_cbc);
	EVP_MAC_free(shard->hmac);
	OPENSSL_cleanse(shard, sizeof(*shard));
	free(shard);
}
