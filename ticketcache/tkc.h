/*
 * tkc: stateless TLS session resumption with backend affinity.
 *
 * A session ticket is encrypted with a key from a key schedule that every
 * usher instance sharing the same secret (or key files) computes on its own,
 * and it carries a small appdata record naming the listener it was issued
 * for, the upstream server the client was routed to, and the time of the
 * original full handshake. Any worker of any instance can therefore resume
 * the client and send it back to the same server, with no shared state.
 *
 * Objects:
 *   tkc_source  where keys come from: a secret plus an epoch schedule, or
 *               explicit 80-byte keys. Immutable, reference counted, may be
 *               shared between threads.
 *   tkc_keyset  the keys valid at one point in time, with an O(1) lookup by
 *               key name. Immutable.
 *   tkc_shard   everything one worker needs for one listener: its keyset,
 *               fetched algorithms, counters, the OpenSSL callbacks. Owned
 *               and used by one thread; only tkc_shard_publish() and
 *               tkc_shard_read_counters() may be called from others.
 *   tkc_conn    per-connection ticket state, stored by the caller (usually
 *               inside its connection struct) and attached to the SSL.
 *
 * This library does no I/O and never logs: it returns 0 or -errno and
 * counts what happens.
 */
#ifndef USHER_TKC_H
#define USHER_TKC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TKC_KEY_NAME_LEN  16
#define TKC_HMAC_KEY_LEN  32
#define TKC_AES_KEY_LEN   32
#define TKC_KEY_FILE_LEN  80 /* nginx layout: name | hmac | aes */
#define TKC_SERVER_ID_MAX 64
#define TKC_APPDATA_MAX   128
#define TKC_MAX_WINDOW    1024 /* most epochs a derived keyset spans */

struct tkc_key {
	unsigned char name[TKC_KEY_NAME_LEN];
	unsigned char hmac[TKC_HMAC_KEY_LEN];
	unsigned char aes[TKC_AES_KEY_LEN];
};

/* ---- key sources ------------------------------------------------------ */

struct tkc_source;

/*
 * Keys derived per epoch e = floor(unix_time / rotation_s) with HKDF-SHA256
 * from secret. The current epoch encrypts; epochs back to lifetime_s and
 * the next one (clock skew in a fleet) decrypt. secret is copied.
 * Returns 0, -EINVAL (secret shorter than 32 bytes, rotation_s 0, window
 * wider than TKC_MAX_WINDOW epochs) or -ENOMEM.
 */
int tkc_source_derived(const unsigned char *secret, size_t secret_len, uint64_t rotation_s,
		       uint64_t lifetime_s, struct tkc_source **out);

/*
 * Explicit keys in nginx's 80-byte layout, n of them back to back; the
 * first encrypts, all decrypt. keys is copied. 0, -EINVAL (n is 0 or
 * above TKC_MAX_WINDOW, or two keys share a name) or -ENOMEM.
 */
int tkc_source_explicit(const unsigned char *keys, size_t n, uint64_t lifetime_s,
			struct tkc_source **out);

/*
 * Reference counting; the last unref wipes the key material. Any thread.
 * Unref of NULL is a no-op.
 */
void tkc_source_ref(struct tkc_source *src);
void tkc_source_unref(struct tkc_source *src);

/* ---- key sets --------------------------------------------------------- */

struct tkc_keyset;

/*
 * The keys of src that are valid at unix time now. For explicit sources
 * now is ignored. 0, -ENOMEM or -EIO (an OpenSSL failure).
 */
int tkc_keyset_build(const struct tkc_source *src, uint64_t now, struct tkc_keyset **out);

/* Wipe and free. NULL is a no-op. */
void tkc_keyset_free(struct tkc_keyset *ks);

size_t tkc_keyset_count(const struct tkc_keyset *ks);

/* The key that encrypts new tickets. */
const struct tkc_key *tkc_keyset_encrypt_key(const struct tkc_keyset *ks);

/*
 * The key with that 16-byte name, or NULL. *is_current (may be NULL) tells
 * whether it is the encrypting key. O(1).
 */
const struct tkc_key *tkc_keyset_lookup(const struct tkc_keyset *ks, const unsigned char *name,
					bool *is_current);

/*
 * The key of one epoch, derived from secret. Its name is the epoch as 8
 * bytes big-endian followed by 8 derived bytes, which is what makes the
 * lookup of a derived keyset O(1). Exposed for tests. 0 or -EIO.
 */
int tkc_derive_key(const unsigned char *secret, size_t secret_len, uint64_t epoch,
		   struct tkc_key *out);

/* ---- appdata ---------------------------------------------------------- */

#define TKC_APPDATA_VERSION 1

struct tkc_appdata {
	uint64_t listener_tag;      /* tkc_listener_tag() of the issuing listener */
	uint64_t first_handshake_s; /* unix time of the original full handshake */
	size_t server_id_len;       /* 0 when no server was chosen */
	char server_id[TKC_SERVER_ID_MAX];
};

/* A stable 64-bit tag for a listener name, the same on every instance. */
uint64_t tkc_listener_tag(const char *listener_name);

/*
 * Encode into buf (at least TKC_APPDATA_MAX bytes). Returns the encoded
 * length, or -EINVAL.
 */
int tkc_appdata_encode(const struct tkc_appdata *ad, unsigned char *buf, size_t cap);

/*
 * Decode any byte string safely. 0, -EINVAL (malformed) or -EPROTO (a
 * version this build does not know).
 */
int tkc_appdata_decode(const unsigned char *buf, size_t len, struct tkc_appdata *ad);

/* ---- per-connection state --------------------------------------------- */

enum tkc_outcome {
	TKC_OUTCOME_NONE = 0,          /* no ticket offered */
	TKC_OUTCOME_CURRENT = 1,       /* decrypted with the current key */
	TKC_OUTCOME_OLD = 2,           /* decrypted with an older key, renewed */
	TKC_OUTCOME_UNKNOWN_KEY = 3,   /* key name not in the schedule */
	TKC_OUTCOME_UNDECRYPTABLE = 4, /* bad MAC, truncated, garbage */
	TKC_OUTCOME_REJECTED = 5,      /* decrypted, but appdata refused */
};

/*
 * Stable lower-case token for logs and metrics ("none", "current", "old",
 * "unknown_key", "undecryptable", "rejected"); "invalid" for other values.
 */
const char *tkc_outcome_name(enum tkc_outcome outcome);

/*
 * outcome is what the shard decided about the ticket; whether the
 * handshake resumed is SSL_session_reused(), because OpenSSL may still
 * refuse a ticket the shard accepted (a cipher no longer offered, say).
 * first_handshake_s is 0 until known: set from an accepted ticket, or to
 * now when the first ticket of a full handshake is written.
 */
struct tkc_conn {
	enum tkc_outcome outcome;
	bool resumed_affinity; /* routed by the server named in the ticket */
	bool repinned;         /* ticket named a server we could not use */
	uint64_t first_handshake_s;
	size_t server_id_len; /* 0 = not chosen yet */
	char server_id[TKC_SERVER_ID_MAX];
	bool key_found;       /* internal: the key callback found the name */
	bool key_was_current; /* internal */
	bool ticket_counted;  /* internal: the shard counted this ticket */
};

/* Reset c and attach it to ssl. c must outlive ssl's handshake. 0 or -EIO. */
int tkc_conn_attach(SSL *ssl, struct tkc_conn *c);

/* The state attached to ssl, or NULL. */
struct tkc_conn *tkc_conn_get(const SSL *ssl);

/* Choose the server for this connection before the ticket is written. */
int tkc_conn_set_server(struct tkc_conn *c, const char *id, size_t len);

/* ---- shards ----------------------------------------------------------- */

struct tkc_hooks {
	/*
	 * Called when a ticket is about to be written and no server is set
	 * for the connection: choose one and store it with
	 * tkc_conn_set_server(). May be NULL.
	 */
	void (*pick_server)(SSL *ssl, struct tkc_conn *c, void *arg);

	/*
	 * Whether the server named in a resumed ticket may still be used.
	 * NULL means always. When it says no, the session still resumes but
	 * the client gets a renewed ticket naming the server picked instead.
	 */
	bool (*server_usable)(const char *id, size_t len, void *arg);

	/* Unix time in seconds. NULL means time(NULL). Tests move it. */
	uint64_t (*now)(void *arg);

	void *arg;
};

struct tkc_shard_params {
	const char *listener;      /* name of the listener; binds tickets */
	struct tkc_source *source; /* the shard takes its own reference */
	uint64_t lifetime_s;       /* a resumption chain ends after this; > 0 */
	bool affinity;             /* carry and honour the server id */
	struct tkc_hooks hooks;

	/*
	 * The library context that the shard fetches its cipher, MAC and
	 * KDF from; NULL is OpenSSL's default. Give it the one that the
	 * attached SSL_CTX were made in (SSL_CTX_new_ex), so that a worker
	 * with its own context never touches the shared default one. The
	 * context must outlive the shard.
	 */
	OSSL_LIB_CTX *libctx;
};

/*
 * Every connection that offers a ticket adds one to exactly one of
 * decrypt_current, decrypt_old, decrypt_unknown_key,
 * decrypt_undecryptable and appdata_rejected (the first ticket decided,
 * if a client offers several). affinity_routed and affinity_repinned
 * count accepted tickets that named a server we could or could not use.
 */
struct tkc_counters {
	uint64_t tickets_issued;
	uint64_t decrypt_current;
	uint64_t decrypt_old;
	uint64_t decrypt_unknown_key;
	uint64_t decrypt_undecryptable;
	uint64_t appdata_rejected;
	uint64_t affinity_routed;
	uint64_t affinity_repinned;
	uint64_t key_rotations; /* keysets built after the first */
};

struct tkc_shard;

/* 0, -EINVAL, -ENOMEM or -EIO (an algorithm could not be fetched). */
int tkc_shard_create(const struct tkc_shard_params *params, struct tkc_shard **out);

/*
 * Install the ticket callbacks on ctx: the key callback, the appdata
 * callbacks, the session id context of the listener, and the server-side
 * session cache turned off (resumption is stateless). Also: tickets on
 * (SSL_OP_NO_TICKET cleared), the session timeout set to lifetime_s
 * (at most 7 days, the TLS 1.3 limit) so that OpenSSL does not expire
 * tickets before the shard would, and renegotiation off, which would run
 * the ticket callbacks again on an established connection. May be called
 * for several SSL_CTX of the same listener (one per certificate, for
 * SNI): the key callback finds the shard through the SSL_CTX in use, so
 * every SSL_CTX a handshake may switch to must be attached. The shard
 * must outlive these SSL_CTX. 0, -EINVAL or -EIO.
 */
int tkc_shard_attach(struct tkc_shard *shard, SSL_CTX *ctx);

/*
 * Hand a new key source to the shard (reload). Any thread, never blocks;
 * the shard switches at its next ticket operation and the old source's
 * keys are wiped once nobody holds them.
 */
void tkc_shard_publish(struct tkc_shard *shard, struct tkc_source *src);

/* Copy the counters. Any thread; each field is read atomically. */
void tkc_shard_read_counters(const struct tkc_shard *shard, struct tkc_counters *out);

/*
 * Free the shard and wipe its keys, once no SSL_CTX it is attached to
 * will run another handshake. NULL is a no-op.
 */
void tkc_shard_free(struct tkc_shard *shard);

#ifdef __cplusplus
}
#endif

#endif
