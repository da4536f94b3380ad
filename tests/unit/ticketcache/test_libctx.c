/*
 * A shard in a library context of its own, as each usher worker has: it
 * fetches its cipher, MAC and KDF from that context, not from OpenSSL's
 * default one, and its tickets still resume anywhere the keys are the
 * same, whatever context the other side runs in.
 */
#include <errno.h>
#include <string.h>

#include <openssl/provider.h>

#include "check.h"
#include "tkc.h"
#include "tkc_internal.h"
#include "tls_pair.h"

#define ROTATION 600ULL
#define LIFETIME 3600ULL
#define NOW      (ROTATION * 2833334ULL) /* the start of an epoch */

static const unsigned char secret[32] = "usher libctx secret, 32 bytes..";

static uint64_t now;

static uint64_t
on_now(void *arg)
{
	return now;
}

static void
on_pick_server(SSL *ssl, struct tkc_conn *c, void *arg)
{
	tkc_conn_set_server(c, "backend-a", strlen("backend-a"));
}

/* A library context and the one provider loaded into it by name. */
struct context {
	OSSL_LIB_CTX *libctx;
	OSSL_PROVIDER *provider;
};

static int
context_init(struct context *c, const char *provider)
{
	c->libctx = OSSL_LIB_CTX_new();
	c->provider = c->libctx != NULL ? OSSL_PROVIDER_load(c->libctx, provider) : NULL;
	return c->provider != NULL ? 0 : -1;
}

static void
context_free(struct context *c)
{
	OSSL_PROVIDER_unload(c->provider);
	OSSL_LIB_CTX_free(c->libctx);
}

static struct tkc_shard_params
params_in(OSSL_LIB_CTX *libctx, struct tkc_source *src)
{
	return (struct tkc_shard_params){
		.listener = "web",
		.source = src,
		.lifetime_s = LIFETIME,
		.affinity = true,
		.hooks = {.pick_server = on_pick_server, .now = on_now},
		.libctx = libctx,
	};
}

/* A shard over src in libctx: what tkc_shard_create() returned. */
static int
shard_in(OSSL_LIB_CTX *libctx, struct tkc_source *src)
{
	struct tkc_shard_params params = params_in(libctx, src);
	struct tkc_shard *shard = NULL;
	int rc = tkc_shard_create(&params, &shard);

	CHECK((rc == 0) == (shard != NULL));
	tkc_shard_free(shard);
	return rc;
}

static int
keyset_in(OSSL_LIB_CTX *libctx, struct tkc_source *src)
{
	struct tkc_keyset *keys = NULL;
	int rc = tkc_keyset_rebuild_in(libctx, src, now, NULL, &keys);

	tkc_keyset_free(keys);
	return rc;
}

/*
 * The null provider has no algorithms, and a context that has loaded a
 * provider does not fall back to the default one, so a shard there
 * cannot be made if it fetches from its own context. Explicit keys need
 * only the cipher and the MAC; derived ones need HKDF too.
 */
static void
test_fetches_from_its_context(void)
{
	unsigned char keys[TKC_KEY_FILE_LEN];
	struct tkc_source *derived = NULL, *explicit = NULL;
	struct context empty;

	now = NOW;
	memset(keys, 0x5a, sizeof(keys));
	REQUIRE(tkc_source_derived(secret, sizeof(secret), ROTATION, LIFETIME, &derived) == 0);
	REQUIRE(tkc_source_explicit(keys, 1, LIFETIME, &explicit) == 0);
	REQUIRE(context_init(&empty, "null") == 0);

	CHECK_EQ_INT(shard_in(empty.libctx, explicit), -EIO);
	CHECK_EQ_INT(shard_in(empty.libctx, derived), -EIO);
	CHECK_EQ_INT(shard_in(NULL, explicit), 0);
	CHECK_EQ_INT(shard_in(NULL, derived), 0);

	/* The keysets a shard rebuilds as epochs turn take HKDF from it too. */
	CHECK_EQ_INT(keyset_in(empty.libctx, derived), -EIO);
	CHECK_EQ_INT(keyset_in(NULL, derived), 0);

	context_free(&empty);
	tkc_source_unref(derived);
	tkc_source_unref(explicit);
}

/*
 * Offer *session to s: whether both sides resumed with that outcome. The
 * newest session replaces *session, since an OpenSSL client uses a TLS
 * 1.3 ticket only once.
 */
static bool
resumes(struct tp_client *cl, struct tp_server *s, SSL_SESSION **session, enum tkc_outcome outcome)
{
	struct tp_result res;
	bool ok;

	if (tp_connect(cl, s, *session, &res) != 0)
		return false;

	ok = res.server_reused && res.client_reused && res.conn.outcome == outcome &&
	     tp_conn_server_is(&res.conn, "backend-a");
	SSL_SESSION_free(*session);
	*session = res.session;
	return ok;
}

/*
 * Server own runs in a context of its own, server plain in the default
 * one, both over the same keys. Under TLS 1.3 the client's key share, as
 * each server decoded it, tells which context its handshake ran in (a
 * TLS 1.2 server keeps no such key after the handshake).
 */
static void
resume_in_own_context(int version)
{
	struct tkc_source *src = NULL;
	struct context ctx;
	struct tkc_shard_params params;
	struct tp_server own, plain;
	struct tp_client cl;
	struct tp_result full, other;

	now = NOW;
	REQUIRE(tkc_source_derived(secret, sizeof(secret), ROTATION, LIFETIME, &src) == 0);
	REQUIRE(context_init(&ctx, "default") == 0);
	params = params_in(ctx.libctx, src);
	REQUIRE(tp_server_init(&own, &params) == 0);
	params = params_in(NULL, src);
	REQUIRE(tp_server_init(&plain, &params) == 0);
	REQUIRE(tp_client_init(&cl, version) == 0);

	REQUIRE(tp_connect(&cl, &own, NULL, &full) == 0);
	CHECK(!full.server_reused);
	CHECK(full.tickets > 0);
	REQUIRE(tp_connect(&cl, &plain, NULL, &other) == 0);
	if (version == TLS1_3_VERSION) {
		CHECK(full.server_kex_provider == ctx.provider);
		CHECK(other.server_kex_provider != NULL &&
		      other.server_kex_provider != ctx.provider);
	}

	/* Between the contexts both ways, and at home. */
	CHECK(resumes(&cl, &plain, &full.session, TKC_OUTCOME_CURRENT));
	CHECK(resumes(&cl, &own, &other.session, TKC_OUTCOME_CURRENT));
	CHECK(resumes(&cl, &own, &full.session, TKC_OUTCOME_CURRENT));

	/* The next epoch's keys are derived in the shard's context. */
	now = NOW + ROTATION;
	CHECK(resumes(&cl, &own, &full.session, TKC_OUTCOME_OLD));

	tp_result_clear(&full);
	tp_result_clear(&other);
	tp_client_free(&cl);
	tp_server_free(&own);
	tp_server_free(&plain);
	context_free(&ctx);
	tkc_source_unref(src);
}

static void
resume_in_own_context_tls12(void)
{
	resume_in_own_context(TLS1_2_VERSION);
}

static void
resume_in_own_context_tls13(void)
{
	resume_in_own_context(TLS1_3_VERSION);
}

int
main(void)
{
	if (tp_init() != 0) {
		printf("Bail out! cannot make a test certificate\n");
		return 1;
	}

	RUN(test_fetches_from_its_context);
	RUN(resume_in_own_context_tls12);
	RUN(resume_in_own_context_tls13);

	tp_cleanup();
	return check_done();
}
