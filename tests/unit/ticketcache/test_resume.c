/*
 * Ticket behaviour through real OpenSSL handshakes: clients and servers
 * over BIO pairs, each server its own SSL_CTX and tkc_shard, the clock a
 * fake that the tests move. Every case runs under TLS 1.2 and TLS 1.3.
 *
 * Run with --issue VERSION FILE, the program is the other process of the
 * cross-process case: it issues a ticket and writes the session to FILE.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "check.h"
#include "fixtures.h"
#include "tkc.h"
#include "tls_pair.h"

#define ROTATION 600ULL
#define LIFETIME 3600ULL
#define NOW      (ROTATION * 2833334ULL) /* the start of an epoch */

static const unsigned char secret_a[32] = "usher test secret A, 32 bytes..";
static const unsigned char secret_b[32] = "usher test secret B, 32 bytes..";
static const unsigned char secret_c[32] = "usher test secret C, 32 bytes..";

/* What the hooks see: the clock, the server to pick, a server that is down. */
static struct {
	uint64_t now;
	const char *pick;
	const char *down;
	int picks;
} env;

static void
reset_env(void)
{
	env.now = NOW;
	env.pick = "backend-a";
	env.down = NULL;
	env.picks = 0;
}

static void
on_pick_server(SSL *ssl, struct tkc_conn *c, void *arg)
{
	env.picks++;
	tkc_conn_set_server(c, env.pick, strlen(env.pick));
}

static bool
on_server_usable(const char *id, size_t len, void *arg)
{
	return env.down == NULL || strlen(env.down) != len || memcmp(env.down, id, len) != 0;
}

static uint64_t
on_now(void *arg)
{
	return env.now;
}

static struct tkc_source *
derived(const unsigned char *secret)
{
	struct tkc_source *src = NULL;

	if (tkc_source_derived(secret, 32, ROTATION, LIFETIME, &src) != 0)
		return NULL;
	return src;
}

/* A server for listener whose shard takes its own reference to src. */
static int
server_init(struct tp_server *s, const char *listener, struct tkc_source *src)
{
	struct tkc_shard_params params = {
		.listener = listener,
		.source = src,
		.lifetime_s = LIFETIME,
		.affinity = true,
		.hooks = {on_pick_server, on_server_usable, on_now, NULL},
	};

	return src != NULL ? tp_server_init(s, &params) : -1;
}

/* A server of a derived source from secret. */
static int
server_with_secret(struct tp_server *s, const char *listener, const unsigned char *secret)
{
	struct tkc_source *src = derived(secret);
	int rc = server_init(s, listener, src);

	tkc_source_unref(src);
	return rc;
}

static struct tkc_counters
counters_of(const struct tp_server *s)
{
	struct tkc_counters c;

	tkc_shard_read_counters(s->shard, &c);
	return c;
}

/* The key name at the head of the session's ticket. */
static bool
ticket_named(SSL_SESSION *sess, const unsigned char *name)
{
	const unsigned char *tick = NULL;
	size_t len = 0;

	SSL_SESSION_get0_ticket(sess, &tick, &len);
	return len >= TKC_KEY_NAME_LEN && memcmp(tick, name, TKC_KEY_NAME_LEN) == 0;
}

static bool
ticket_of_epoch(SSL_SESSION *sess, const unsigned char *secret, uint64_t epoch)
{
	struct tkc_key key;

	return tkc_derive_key(secret, 32, epoch, &key) == 0 && ticket_named(sess, key.name);
}

/* Tickets the server writes after a full handshake. */
static int
tickets_per_full(int version)
{
	return version == TLS1_3_VERSION ? 2 : 1;
}

#define BOTH_VERSIONS(fn)            \
	static void fn##_tls12(void) \
	{                            \
		fn(TLS1_2_VERSION);  \
	}                            \
	static void fn##_tls13(void) \
	{                            \
		fn(TLS1_3_VERSION);  \
	}

/* ---- 1. affinity survives a move to another shard ------------------------ */

static void
affinity_across_shards(int version)
{
	struct tp_server a, b;
	struct tp_client cl;
	struct tp_result full, res;
	struct tkc_counters ca, cb;

	reset_env();
	REQUIRE(tp_client_init(&cl, version) == 0);
	REQUIRE(server_with_secret(&a, "web", secret_a) == 0);
	REQUIRE(server_with_secret(&b, "web", secret_a) == 0);

	REQUIRE(tp_connect(&cl, &a, NULL, &full) == 0);
	CHECK(!full.server_reused);
	CHECK_EQ_INT(full.conn.outcome, TKC_OUTCOME_NONE);
	CHECK(tp_conn_server_is(&full.conn, "backend-a"));
	CHECK_EQ_INT(env.picks, 1);
	CHECK_EQ_INT(full.tickets, tickets_per_full(version));

	/* B would pick another server if it had to choose. */
	env.pick = "backend-z";
	REQUIRE(tp_connect(&cl, &b, full.session, &res) == 0);
	CHECK(res.server_reused && res.client_reused);
	CHECK_EQ_INT(res.conn.outcome, TKC_OUTCOME_CURRENT);
	CHECK(res.conn.resumed_affinity);
	CHECK(!res.conn.repinned);
	CHECK(tp_conn_server_is(&res.conn, "backend-a"));
	CHECK_EQ_INT(env.picks, 1);

	ca = counters_of(&a);
	cb = counters_of(&b);
	CHECK_EQ_INT(ca.tickets_issued, tickets_per_full(version));
	CHECK_EQ_INT(cb.decrypt_current, 1);
	CHECK_EQ_INT(cb.affinity_routed, 1);
	CHECK_EQ_INT(cb.decrypt_old + cb.decrypt_unknown_key + cb.appdata_rejected, 0);

	tp_result_clear(&full);
	tp_result_clear(&res);
	tp_server_free(&a);
	tp_server_free(&b);
	tp_client_free(&cl);
}

BOTH_VERSIONS(affinity_across_shards)

/* ---- 2. a chain of resumptions keeps resuming ---------------------------- */

static void
chain_of_resumptions(int version)
{
	struct tp_server srv[2];
	struct tp_client cl;
	struct tp_result res;
	SSL_SESSION *sess;
	int resumed = 0;

	reset_env();
	REQUIRE(tp_client_init(&cl, version) == 0);
	REQUIRE(server_with_secret(&srv[0], "web", secret_a) == 0);
	REQUIRE(server_with_secret(&srv[1], "web", secret_a) == 0);
	REQUIRE(tp_connect(&cl, &srv[0], NULL, &res) == 0);
	sess = res.session;

	for (int i = 0; i < 20; i++) {
		REQUIRE(tp_connect(&cl, &srv[i % 2], sess, &res) == 0);
		resumed += res.server_reused && res.client_reused;
		CHECK_EQ_INT(res.conn.outcome, TKC_OUTCOME_CURRENT);
		CHECK(tp_conn_server_is(&res.conn, "backend-a"));

		/* TLS 1.3 renews every time; 1.2 has no reason to. */
		CHECK_EQ_INT(res.tickets, version == TLS1_3_VERSION ? 1 : 0);
		if (version == TLS1_3_VERSION)
			CHECK(res.session != sess);
		SSL_SESSION_free(sess);
		sess = res.session;
	}

	CHECK_EQ_INT(resumed, 20);
	CHECK_EQ_INT(env.picks, 1);
	SSL_SESSION_free(sess);
	tp_server_free(&srv[0]);
	tp_server_free(&srv[1]);
	tp_client_free(&cl);
}

BOTH_VERSIONS(chain_of_resumptions)

/* ---- 3. a ticket of the previous epoch resumes and is renewed ------------ */

static void
old_epoch_renewed(int version)
{
	struct tp_server s;
	struct tp_client cl;
	struct tp_result full, res, again;
	struct tkc_counters c;

	reset_env();
	REQUIRE(tp_client_init(&cl, version) == 0);
	REQUIRE(server_with_secret(&s, "web", secret_a) == 0);
	REQUIRE(tp_connect(&cl, &s, NULL, &full) == 0);
	CHECK(ticket_of_epoch(full.session, secret_a, NOW / ROTATION));

	env.now = NOW + ROTATION;
	REQUIRE(tp_connect(&cl, &s, full.session, &res) == 0);
	CHECK(res.server_reused && res.client_reused);
	CHECK_EQ_INT(res.conn.outcome, TKC_OUTCOME_OLD);
	CHECK_EQ_INT(res.tickets, 1);
	CHECK(ticket_of_epoch(res.session, secret_a, NOW / ROTATION + 1));
	CHECK(tp_conn_server_is(&res.conn, "backend-a"));

	c = counters_of(&s);
	CHECK_EQ_INT(c.decrypt_old, 1);
	CHECK_EQ_INT(c.decrypt_current, 0);
	CHECK_EQ_INT(c.key_rotations, 1);
	CHECK_EQ_INT(c.tickets_issued, tickets_per_full(version) + 1);

	/* The renewed ticket is under the current key now. */
	REQUIRE(tp_connect(&cl, &s, res.session, &again) == 0);
	CHECK(again.server_reused);
	CHECK_EQ_INT(again.conn.outcome, TKC_OUTCOME_CURRENT);

	tp_result_clear(&full);
	tp_result_clear(&res);
	tp_result_clear(&again);
	tp_server_free(&s);
	tp_client_free(&cl);
}

BOTH_VERSIONS(old_epoch_renewed)

/*
 * A host whose clock runs one epoch ahead issues a ticket: the others
 * accept it (the next epoch is in their window) and renew it under their
 * own current key. Two epochs ahead is too far.
 */
static void
clock_ahead(int version)
{
	struct tp_server ahead, here;
	struct tp_client cl;
	struct tp_result near, far, res;

	reset_env();
	REQUIRE(tp_client_init(&cl, version) == 0);
	REQUIRE(server_with_secret(&ahead, "web", secret_a) == 0);
	REQUIRE(server_with_secret(&here, "web", secret_a) == 0);

	env.now = NOW + ROTATION;
	REQUIRE(tp_connect(&cl, &ahead, NULL, &near) == 0);
	env.now = NOW + 2 * ROTATION;
	REQUIRE(tp_connect(&cl, &ahead, NULL, &far) == 0);

	env.now = NOW;
	REQUIRE(tp_connect(&cl, &here, near.session, &res) == 0);
	CHECK(res.server_reused && res.client_reused);
	CHECK_EQ_INT(res.conn.outcome, TKC_OUTCOME_OLD);
	CHECK_EQ_INT(res.tickets, 1);
	CHECK(ticket_of_epoch(res.session, secret_a, NOW / ROTATION));
	tp_result_clear(&res);

	REQUIRE(tp_connect(&cl, &here, far.session, &res) == 0);
	CHECK(!res.server_reused);
	CHECK_EQ_INT(res.conn.outcome, TKC_OUTCOME_UNKNOWN_KEY);

	tp_result_clear(&near);
	tp_result_clear(&far);
	tp_result_clear(&res);
	tp_server_free(&ahead);
	tp_server_free(&here);
	tp_client_free(&cl);
}

BOTH_VERSIONS(clock_ahead)

/* ---- 4. tickets older than the lifetime --------------------------------- */

/* The key of the ticket's epoch has left the window. */
static void
expired_key_window(int version)
{
	struct tp_server s;
	struct tp_client cl;
	struct tp_result full, res;

	reset_env();
	REQUIRE(tp_client_init(&cl, version) == 0);
	REQUIRE(server_with_secret(&s, "web", secret_a) == 0);
	REQUIRE(tp_connect(&cl, &s, NULL, &full) == 0);

	env.now = NOW + LIFETIME + 2 * ROTATION;
	env.pick = "backend-b";
	REQUIRE(tp_connect(&cl, &s, full.session, &res) == 0);
	CHECK(!res.server_reused && !res.client_reused);
	CHECK_EQ_INT(res.conn.outcome, TKC_OUTCOME_UNKNOWN_KEY);
	CHECK_EQ_INT(counters_of(&s).decrypt_unknown_key, 1);

	/* A full handshake picks afresh and hands out a fresh ticket. */
	CHECK(tp_conn_server_is(&res.conn, "backend-b"));
	CHECK_EQ_INT(res.tickets, tickets_per_full(version));

	tp_result_clear(&full);
	tp_result_clear(&res);
	tp_server_free(&s);
	tp_client_free(&cl);
}

BOTH_VERSIONS(expired_key_window)

/* The ticket's key is still valid, but its chain began too long ago. */
static void
chain_past_lifetime(int version)
{
	struct tp_server s;
	struct tp_client cl;
	struct tp_result full, mid, res;

	reset_env();
	REQUIRE(tp_client_init(&cl, version) == 0);
	REQUIRE(server_with_secret(&s, "web", secret_a) == 0);
	REQUIRE(tp_connect(&cl, &s, NULL, &full) == 0);

	env.now = NOW + 3000;
	REQUIRE(tp_connect(&cl, &s, full.session, &mid) == 0);
	REQUIRE(mid.server_reused);
	CHECK_EQ_INT(mid.conn.first_handshake_s, NOW);
	REQUIRE(ticket_of_epoch(mid.session, secret_a, (NOW + 3000) / ROTATION));

	env.now = NOW + LIFETIME + 100;
	REQUIRE(tp_connect(&cl, &s, mid.session, &res) == 0);
	CHECK(!res.server_reused && !res.client_reused);
	CHECK_EQ_INT(res.conn.outcome, TKC_OUTCOME_REJECTED);
	CHECK_EQ_INT(counters_of(&s).appdata_rejected, 1);
	CHECK_EQ_INT(counters_of(&s).decrypt_unknown_key, 0);
	CHECK_EQ_INT(res.conn.first_handshake_s, NOW + LIFETIME + 100);

	tp_result_clear(&full);
	tp_result_clear(&mid);
	tp_result_clear(&res);
	tp_server_free(&s);
	tp_client_free(&cl);
}

BOTH_VERSIONS(chain_past_lifetime)

/* ---- 5. damaged and foreign tickets -------------------------------------- */

struct damage {
	const char *what;
	bool cut; /* keep `at` bytes instead of flipping byte `at` */
	long at;  /* counted from the end when negative */
	enum tkc_outcome expect;
};

/* A ticket is name(16) | IV(16) | ciphertext | HMAC(32). */
static const struct damage damages[] = {
	{"name tail", false, 15, TKC_OUTCOME_UNKNOWN_KEY},
	{"name epoch", false, 0, TKC_OUTCOME_UNKNOWN_KEY},
	{"iv", false, 16 + 3, TKC_OUTCOME_UNDECRYPTABLE},
	{"ciphertext", false, 32 + 5, TKC_OUTCOME_UNDECRYPTABLE},
	{"mac", false, -1, TKC_OUTCOME_UNDECRYPTABLE},
	{"cut to 8", true, 8, TKC_OUTCOME_UNDECRYPTABLE},
	{"cut to 20", true, 20, TKC_OUTCOME_UNDECRYPTABLE},
	{"cut to 40", true, 40, TKC_OUTCOME_UNDECRYPTABLE},
	{"cut by 1", true, -1, TKC_OUTCOME_UNDECRYPTABLE},
	{"cut by 32", true, -32, TKC_OUTCOME_UNDECRYPTABLE},
};

/* Damage tick in place; its new length. */
static size_t
apply_damage(const struct damage *d, unsigned char *tick, size_t len)
{
	size_t at = d->at >= 0 ? (size_t)d->at : len - (size_t)-d->at;

	if (d->cut)
		return at;
	tick[at] ^= 0x20;
	return len;
}

/* Offer sess with its ticket replaced; expect a full handshake. */
static void
offer_damaged(struct tp_client *cl, struct tp_server *s, SSL_SESSION *sess, const struct damage *d)
{
	const unsigned char *orig;
	unsigned char tick[1024];
	size_t len;
	SSL_SESSION *bad;
	struct tp_result res;

	SSL_SESSION_get0_ticket(sess, &orig, &len);
	REQUIRE(len <= sizeof(tick) && len > 64);
	memcpy(tick, orig, len);
	len = apply_damage(d, tick, len);

	bad = tp_session_with_ticket(sess, tick, len);
	REQUIRE(bad != NULL);
	if (tp_connect(cl, s, bad, &res) != 0) {
		printf("# %s: handshake failed\n", d->what);
		CHECK(false);
	}
	if (res.conn.outcome != d->expect || res.server_reused || res.tickets == 0)
		printf("# %s: outcome %s, reused %d, tickets %d\n", d->what,
		       tkc_outcome_name(res.conn.outcome), res.server_reused, res.tickets);
	CHECK_EQ_INT(res.conn.outcome, d->expect);
	CHECK(!res.server_reused && !res.client_reused);
	CHECK(res.tickets > 0);
	tp_result_clear(&res);
	SSL_SESSION_free(bad);
}

static void
damaged_tickets(int version)
{
	struct tp_server s;
	struct tp_client cl;
	struct tp_result full, same;
	const unsigned char *tick;
	size_t len;
	SSL_SESSION *copy;
	struct tkc_counters c;
	size_t n = sizeof(damages) / sizeof(damages[0]);

	reset_env();
	REQUIRE(tp_client_init(&cl, version) == 0);
	REQUIRE(server_with_secret(&s, "web", secret_a) == 0);
	REQUIRE(tp_connect(&cl, &s, NULL, &full) == 0);

	/* The rewriting itself keeps a good ticket good. */
	SSL_SESSION_get0_ticket(full.session, &tick, &len);
	copy = tp_session_with_ticket(full.session, tick, len);
	REQUIRE(copy != NULL);
	REQUIRE(tp_connect(&cl, &s, copy, &same) == 0);
	CHECK(same.server_reused);
	CHECK_EQ_INT(same.conn.outcome, TKC_OUTCOME_CURRENT);
	SSL_SESSION_free(copy);

	for (size_t i = 0; i < n; i++)
		offer_damaged(&cl, &s, full.session, &damages[i]);

	c = counters_of(&s);
	CHECK_EQ_INT(c.decrypt_current, 1);
	CHECK_EQ_INT(c.decrypt_unknown_key, 2);
	CHECK_EQ_INT(c.decrypt_undecryptable, 8);

	tp_result_clear(&full);
	tp_result_clear(&same);
	tp_server_free(&s);
	tp_client_free(&cl);
}

BOTH_VERSIONS(damaged_tickets)

/* A ticket of another secret: a valid name, but not one of ours. */
static void
foreign_secret(int version)
{
	struct tp_server s, other;
	struct tp_client cl;
	struct tp_result theirs, res;

	reset_env();
	REQUIRE(tp_client_init(&cl, version) == 0);
	REQUIRE(server_with_secret(&s, "web", secret_a) == 0);
	REQUIRE(server_with_secret(&other, "web", secret_b) == 0);
	REQUIRE(tp_connect(&cl, &other, NULL, &theirs) == 0);

	REQUIRE(tp_connect(&cl, &s, theirs.session, &res) == 0);
	CHECK(!res.server_reused && !res.client_reused);
	CHECK_EQ_INT(res.conn.outcome, TKC_OUTCOME_UNKNOWN_KEY);
	CHECK_EQ_INT(counters_of(&s).decrypt_unknown_key, 1);
	CHECK_EQ_INT(counters_of(&s).decrypt_undecryptable, 0);

	tp_result_clear(&theirs);
	tp_result_clear(&res);
	tp_server_free(&s);
	tp_server_free(&other);
	tp_client_free(&cl);
}

BOTH_VERSIONS(foreign_secret)

/* ---- 6. a ticket of one listener does not resume on another -------------- */

static void
cross_listener(int version)
{
	struct tp_server pub, admin;
	struct tp_client cl;
	struct tp_result full, res;

	reset_env();
	REQUIRE(tp_client_init(&cl, version) == 0);
	REQUIRE(server_with_secret(&pub, "public", secret_a) == 0);
	REQUIRE(server_with_secret(&admin, "admin", secret_a) == 0);
	REQUIRE(tp_connect(&cl, &pub, NULL, &full) == 0);

	/* Same secret, so the ticket decrypts; the appdata refuses it. */
	REQUIRE(tp_connect(&cl, &admin, full.session, &res) == 0);
	CHECK(!res.server_reused && !res.client_reused);
	CHECK_EQ_INT(res.conn.outcome, TKC_OUTCOME_REJECTED);
	CHECK(!res.conn.resumed_affinity);
	CHECK_EQ_INT(counters_of(&admin).appdata_rejected, 1);
	CHECK_EQ_INT(counters_of(&admin).affinity_routed, 0);
	CHECK_EQ_INT(res.tickets, tickets_per_full(version));

	tp_result_clear(&full);
	tp_result_clear(&res);
	tp_server_free(&pub);
	tp_server_free(&admin);
	tp_client_free(&cl);
}

BOTH_VERSIONS(cross_listener)

/* ---- 7. the ticket's server is down: resume, repin, renew ---------------- */

static void
repin_when_unusable(int version)
{
	struct tp_server s;
	struct tp_client cl;
	struct tp_result full, res, again;
	struct tkc_counters c;

	reset_env();
	REQUIRE(tp_client_init(&cl, version) == 0);
	REQUIRE(server_with_secret(&s, "web", secret_a) == 0);
	REQUIRE(tp_connect(&cl, &s, NULL, &full) == 0);
	REQUIRE(tp_conn_server_is(&full.conn, "backend-a"));

	env.down = "backend-a";
	env.pick = "backend-b";
	REQUIRE(tp_connect(&cl, &s, full.session, &res) == 0);
	CHECK(res.server_reused && res.client_reused);
	CHECK_EQ_INT(res.conn.outcome, TKC_OUTCOME_CURRENT);
	CHECK(res.conn.repinned);
	CHECK(!res.conn.resumed_affinity);
	CHECK(tp_conn_server_is(&res.conn, "backend-b"));
	CHECK_EQ_INT(res.tickets, 1);
	CHECK_EQ_INT(env.picks, 2);

	c = counters_of(&s);
	CHECK_EQ_INT(c.affinity_repinned, 1);
	CHECK_EQ_INT(c.affinity_routed, 0);

	/* The renewed ticket names the new server, and keeps its chain start. */
	env.down = NULL;
	env.pick = "backend-z";
	REQUIRE(tp_connect(&cl, &s, res.session, &again) == 0);
	CHECK(again.server_reused);
	CHECK(again.conn.resumed_affinity);
	CHECK(tp_conn_server_is(&again.conn, "backend-b"));
	CHECK_EQ_INT(again.conn.first_handshake_s, NOW);
	CHECK_EQ_INT(counters_of(&s).affinity_routed, 1);

	tp_result_clear(&full);
	tp_result_clear(&res);
	tp_result_clear(&again);
	tp_server_free(&s);
	tp_client_free(&cl);
}

BOTH_VERSIONS(repin_when_unusable)

/* ---- 8. explicit keys in nginx's layout ---------------------------------- */

static struct tkc_source *
explicit_of(const unsigned char *first, const unsigned char *second)
{
	unsigned char raw[2 * TKC_KEY_FILE_LEN];
	struct tkc_source *src = NULL;
	size_t n = second != NULL ? 2 : 1;

	memcpy(raw, first, TKC_KEY_FILE_LEN);
	if (second != NULL)
		memcpy(raw + TKC_KEY_FILE_LEN, second, TKC_KEY_FILE_LEN);
	if (tkc_source_explicit(raw, n, LIFETIME, &src) != 0)
		return NULL;
	return src;
}

static void
explicit_keys(int version)
{
	unsigned char k1[TKC_KEY_FILE_LEN], k2[TKC_KEY_FILE_LEN], k3[TKC_KEY_FILE_LEN];
	struct tkc_source *s12, *s2, *s31;
	struct tp_server s, old;
	struct tp_client cl;
	struct tp_result under_k2, res, rotated;

	reset_env();
	REQUIRE(RAND_bytes(k1, sizeof(k1)) == 1 && RAND_bytes(k2, sizeof(k2)) == 1 &&
		RAND_bytes(k3, sizeof(k3)) == 1);
	s12 = explicit_of(k1, k2);
	s2 = explicit_of(k2, NULL);
	s31 = explicit_of(k3, k1);
	REQUIRE(tp_client_init(&cl, version) == 0);
	REQUIRE(server_init(&s, "web", s12) == 0);
	REQUIRE(server_init(&old, "web", s2) == 0);

	/* A ticket under k2, which [k1, k2] only decrypts: used and renewed by k1. */
	REQUIRE(tp_connect(&cl, &old, NULL, &under_k2) == 0);
	CHECK(ticket_named(under_k2.session, k2));
	REQUIRE(tp_connect(&cl, &s, under_k2.session, &res) == 0);
	CHECK(res.server_reused);
	CHECK_EQ_INT(res.conn.outcome, TKC_OUTCOME_OLD);
	CHECK_EQ_INT(res.tickets, 1);
	CHECK(ticket_named(res.session, k1));

	/* Rotate to [k3, k1]: the k1 ticket resumes and comes back under k3. */
	tkc_shard_publish(s.shard, s31);
	REQUIRE(tp_connect(&cl, &s, res.session, &rotated) == 0);
	CHECK(rotated.server_reused);
	CHECK_EQ_INT(rotated.conn.outcome, TKC_OUTCOME_OLD);
	CHECK(ticket_named(rotated.session, k3));
	CHECK(tp_conn_server_is(&rotated.conn, "backend-a"));
	CHECK_EQ_INT(counters_of(&s).decrypt_old, 2);
	CHECK_EQ_INT(counters_of(&s).key_rotations, 1);

	tp_result_clear(&under_k2);
	tp_result_clear(&res);
	tp_result_clear(&rotated);
	tkc_source_unref(s12);
	tkc_source_unref(s2);
	tkc_source_unref(s31);
	tp_server_free(&s);
	tp_server_free(&old);
	tp_client_free(&cl);
}

BOTH_VERSIONS(explicit_keys)

/* ---- 9. a reload published by another thread ----------------------------- */

struct publisher {
	struct tkc_shard *shard;
	int rc;
};

/* Publish B, then C before the shard looked: C displaces B. */
static void *
publish_b_then_c(void *arg)
{
	struct publisher *p = arg;
	struct tkc_source *b = derived(secret_b), *c = derived(secret_c);

	p->rc = b != NULL && c != NULL ? 0 : -1;
	if (p->rc == 0) {
		tkc_shard_publish(p->shard, b);
		tkc_shard_publish(p->shard, c);
	}
	tkc_source_unref(b);
	tkc_source_unref(c);
	return NULL;
}

static void
publish_from_thread(int version)
{
	struct tp_server s, issuer_c;
	struct tp_client cl;
	struct tp_result before, under_c, res;
	struct publisher p;
	pthread_t thread;

	reset_env();
	REQUIRE(tp_client_init(&cl, version) == 0);
	REQUIRE(server_with_secret(&s, "web", secret_a) == 0);
	REQUIRE(server_with_secret(&issuer_c, "web", secret_c) == 0);
	REQUIRE(tp_connect(&cl, &s, NULL, &before) == 0);
	REQUIRE(tp_connect(&cl, &issuer_c, NULL, &under_c) == 0);

	p.shard = s.shard;
	REQUIRE(pthread_create(&thread, NULL, publish_b_then_c, &p) == 0);
	pthread_join(thread, NULL);
	REQUIRE(p.rc == 0);

	/* The key of the old ticket is gone: a full handshake. */
	REQUIRE(tp_connect(&cl, &s, before.session, &res) == 0);
	CHECK(!res.server_reused);
	CHECK_EQ_INT(res.conn.outcome, TKC_OUTCOME_UNKNOWN_KEY);
	CHECK_EQ_INT(counters_of(&s).key_rotations, 1);
	tp_result_clear(&res);

	/* The shard now holds C, the last one published. */
	REQUIRE(tp_connect(&cl, &s, under_c.session, &res) == 0);
	CHECK(res.server_reused);
	CHECK_EQ_INT(res.conn.outcome, TKC_OUTCOME_CURRENT);

	tp_result_clear(&before);
	tp_result_clear(&under_c);
	tp_result_clear(&res);
	tp_server_free(&s);
	tp_server_free(&issuer_c);
	tp_client_free(&cl);
}

BOTH_VERSIONS(publish_from_thread)

/* ---- several SSL_CTX of one listener (SNI) ------------------------------- */

static int sni_switches;

static int
on_servername(SSL *ssl, int *alert, void *arg)
{
	SSL_CTX *other = arg;

	if (SSL_set_SSL_CTX(ssl, other) != other)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	sni_switches++;
	return SSL_TLSEXT_ERR_OK;
}

/*
 * The handshake moves to a second SSL_CTX of the listener. The ticket key
 * callback finds the shard through the SSL_CTX in use, so that one must
 * be attached too.
 */
static void
sni_second_context(int version)
{
	struct tp_server s;
	struct tp_client cl;
	struct tp_result full, res;
	SSL_CTX *second;

	reset_env();
	sni_switches = 0;
	REQUIRE(tp_client_init(&cl, version) == 0);
	REQUIRE(server_with_secret(&s, "web", secret_a) == 0);
	second = tp_server_ctx();
	REQUIRE(second != NULL);
	REQUIRE(tkc_shard_attach(s.shard, second) == 0);
	SSL_CTX_set_tlsext_servername_callback(s.ctx, on_servername);
	SSL_CTX_set_tlsext_servername_arg(s.ctx, second);
	cl.sni = "b.example";

	REQUIRE(tp_connect(&cl, &s, NULL, &full) == 0);
	REQUIRE(tp_connect(&cl, &s, full.session, &res) == 0);
	CHECK_EQ_INT(sni_switches, 2);
	CHECK(res.server_reused && res.client_reused);
	CHECK_EQ_INT(res.conn.outcome, TKC_OUTCOME_CURRENT);
	CHECK(tp_conn_server_is(&res.conn, "backend-a"));

	tp_result_clear(&full);
	tp_result_clear(&res);
	tp_server_free(&s);
	SSL_CTX_free(second);
	tp_client_free(&cl);
}

BOTH_VERSIONS(sni_second_context)

/*
 * A HelloRetryRequest (the client's key share is for a group the server
 * does not take) makes OpenSSL decrypt the ticket twice; it still counts
 * as one resumption.
 */
static void
test_retry_request_counts_once(void)
{
	struct tp_server s;
	struct tp_client cl;
	struct tp_result full, res;
	struct tkc_counters c;
	char server_groups[] = "P-256", client_groups[] = "X25519:P-256";

	reset_env();
	REQUIRE(tp_client_init(&cl, TLS1_3_VERSION) == 0);
	REQUIRE(server_with_secret(&s, "web", secret_a) == 0);
	/* Arrays, because OpenSSL's macro casts away const. */
	REQUIRE(SSL_CTX_set1_groups_list(s.ctx, server_groups) == 1);
	REQUIRE(SSL_CTX_set1_groups_list(cl.ctx, client_groups) == 1);

	REQUIRE(tp_connect(&cl, &s, NULL, &full) == 0);
	REQUIRE(tp_connect(&cl, &s, full.session, &res) == 0);
	CHECK(res.server_reused);
	CHECK_EQ_INT(res.conn.outcome, TKC_OUTCOME_CURRENT);
	CHECK(tp_conn_server_is(&res.conn, "backend-a"));

	c = counters_of(&s);
	CHECK_EQ_INT(c.decrypt_current, 1);
	CHECK_EQ_INT(c.affinity_routed, 1);

	tp_result_clear(&full);
	tp_result_clear(&res);
	tp_server_free(&s);
	tp_client_free(&cl);
}

/* What tkc_shard_attach() sets besides the callbacks. */
static void
test_attach_settings(void)
{
	struct tp_server s;
	struct tp_client cl;
	struct tp_result res;

	reset_env();
	REQUIRE(tp_client_init(&cl, TLS1_2_VERSION) == 0);
	REQUIRE(server_with_secret(&s, "web", secret_a) == 0);
	CHECK_EQ_INT(SSL_CTX_get_session_cache_mode(s.ctx), SSL_SESS_CACHE_OFF);
	CHECK_EQ_INT(SSL_CTX_get_timeout(s.ctx), LIFETIME);
	CHECK((SSL_CTX_get_options(s.ctx) & SSL_OP_NO_TICKET) == 0);
	CHECK((SSL_CTX_get_options(s.ctx) & SSL_OP_NO_RENEGOTIATION) != 0);

	/* Stateless: the server keeps no session after a handshake. */
	REQUIRE(tp_connect(&cl, &s, NULL, &res) == 0);
	CHECK_EQ_INT(SSL_CTX_sess_number(s.ctx), 0);

	tp_result_clear(&res);
	tp_server_free(&s);
	tp_client_free(&cl);
}

/* ---- 10. two processes with the same secret ------------------------------- */

#define REMOTE_SERVER "backend-remote"

/* The other process: issue a ticket naming REMOTE_SERVER, save the session. */
static int
issue_in_child(const char *version_arg, const char *path)
{
	int version = strcmp(version_arg, "1.3") == 0 ? TLS1_3_VERSION : TLS1_2_VERSION;
	struct tp_server s;
	struct tp_client cl;
	struct tp_result res;
	unsigned char *der = NULL;
	int len, rc = 1;

	reset_env();
	env.pick = REMOTE_SERVER;
	if (tp_init() != 0 || tp_client_init(&cl, version) != 0)
		return 1;
	if (server_with_secret(&s, "web", secret_a) != 0)
		return 1;

	if (tp_connect(&cl, &s, NULL, &res) == 0 && res.session != NULL) {
		len = i2d_SSL_SESSION(res.session, &der);
		if (len > 0 && fixture_write_file(path, der, (size_t)len, 0600) == 0)
			rc = 0;
	}

	OPENSSL_free(der);
	tp_result_clear(&res);
	tp_server_free(&s);
	tp_client_free(&cl);
	tp_cleanup();
	return rc;
}

static int
run_issuer(const char *version_arg, const char *path)
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		execl("/proc/self/exe", "test_resume", "--issue", version_arg, path, (char *)NULL);
		_exit(127);
	}

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static SSL_SESSION *
read_session(const char *path)
{
	unsigned char buf[8192];
	const unsigned char *p = buf;
	FILE *f = fopen(path, "rb");
	size_t len;

	if (f == NULL)
		return NULL;
	len = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	return d2i_SSL_SESSION(NULL, &p, (long)len);
}

static void
cross_process(int version)
{
	char dir[256], path[300];
	struct tp_server s;
	struct tp_client cl;
	struct tp_result res;
	SSL_SESSION *sess;

	REQUIRE(fixture_tmpdir(dir, sizeof(dir)) == 0);
	snprintf(path, sizeof(path), "%s/session.der", dir);
	REQUIRE(run_issuer(version == TLS1_3_VERSION ? "1.3" : "1.2", path) == 0);
	sess = read_session(path);
	fixture_rmdir(dir);
	REQUIRE(sess != NULL);

	reset_env();
	env.pick = "backend-local";
	REQUIRE(tp_client_init(&cl, version) == 0);
	REQUIRE(server_with_secret(&s, "web", secret_a) == 0);
	REQUIRE(tp_connect(&cl, &s, sess, &res) == 0);
	CHECK(res.server_reused && res.client_reused);
	CHECK_EQ_INT(res.conn.outcome, TKC_OUTCOME_CURRENT);
	CHECK(res.conn.resumed_affinity);
	CHECK(tp_conn_server_is(&res.conn, REMOTE_SERVER));
	CHECK_EQ_INT(env.picks, 0);

	SSL_SESSION_free(sess);
	tp_result_clear(&res);
	tp_server_free(&s);
	tp_client_free(&cl);
}

BOTH_VERSIONS(cross_process)

/* ---- odds and ends ------------------------------------------------------- */

static void
test_outcome_names(void)
{
	CHECK_EQ_STR(tkc_outcome_name(TKC_OUTCOME_NONE), "none");
	CHECK_EQ_STR(tkc_outcome_name(TKC_OUTCOME_CURRENT), "current");
	CHECK_EQ_STR(tkc_outcome_name(TKC_OUTCOME_OLD), "old");
	CHECK_EQ_STR(tkc_outcome_name(TKC_OUTCOME_UNKNOWN_KEY), "unknown_key");
	CHECK_EQ_STR(tkc_outcome_name(TKC_OUTCOME_UNDECRYPTABLE), "undecryptable");
	CHECK_EQ_STR(tkc_outcome_name(TKC_OUTCOME_REJECTED), "rejected");
}

static void
test_shard_params_checked(void)
{
	struct tkc_source *src = derived(secret_a);
	struct tkc_shard *shard = NULL;
	struct tkc_shard_params params = {.listener = "web", .source = src, .lifetime_s = 0};

	REQUIRE(src != NULL);
	CHECK_EQ_INT(tkc_shard_create(&params, &shard), -EINVAL);
	params.lifetime_s = LIFETIME;
	params.listener = NULL;
	CHECK_EQ_INT(tkc_shard_create(&params, &shard), -EINVAL);
	params.listener = "web";
	params.source = NULL;
	CHECK_EQ_INT(tkc_shard_create(&params, &shard), -EINVAL);
	CHECK(shard == NULL);
	tkc_source_unref(src);
}

int
main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "--issue") == 0)
		return issue_in_child(argv[2], argv[3]);

	if (tp_init() != 0) {
		printf("Bail out! cannot make a test certificate\n");
		return 1;
	}

	RUN(affinity_across_shards_tls12);
	RUN(affinity_across_shards_tls13);
	RUN(chain_of_resumptions_tls12);
	RUN(chain_of_resumptions_tls13);
	RUN(old_epoch_renewed_tls12);
	RUN(old_epoch_renewed_tls13);
	RUN(clock_ahead_tls12);
	RUN(clock_ahead_tls13);
	RUN(expired_key_window_tls12);
	RUN(expired_key_window_tls13);
	RUN(chain_past_lifetime_tls12);
	RUN(chain_past_lifetime_tls13);
	RUN(damaged_tickets_tls12);
	RUN(damaged_tickets_tls13);
	RUN(foreign_secret_tls12);
	RUN(foreign_secret_tls13);
	RUN(cross_listener_tls12);
	RUN(cross_listener_tls13);
	RUN(repin_when_unusable_tls12);
	RUN(repin_when_unusable_tls13);
	RUN(explicit_keys_tls12);
	RUN(explicit_keys_tls13);
	RUN(publish_from_thread_tls12);
	RUN(publish_from_thread_tls13);
	RUN(sni_second_context_tls12);
	RUN(sni_second_context_tls13);
	RUN(test_retry_request_counts_once);
	RUN(test_attach_settings);
	RUN(cross_process_tls12);
	RUN(cross_process_tls13);
	RUN(test_outcome_names);
	RUN(test_shard_params_checked);

	tp_cleanup();
	return check_done();
}
