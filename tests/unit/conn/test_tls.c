/*
 * ush_tls_create(): certificate and key problems come back as -errno with
 * the file named, never with key material; good contexts get the policy
 * usher promises (versions, buffer release, renegotiation refused), and
 * belong to the library context they were made in.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/provider.h>
#include <openssl/rand.h>

#include "check.h"
#include "fixtures.h"
#include "tls.h"

struct world {
	char dir[256];
	char cert[300], key[300], other_cert[300], other_key[300];
	struct cfg_certificate certs[1];
	char name[8];
	struct cfg_listener listener;
	struct cfg_tickets tickets;
	struct tkc_source *src;
};

static int
world_init(struct world *w)
{
	unsigned char secret[32];

	memset(w, 0, sizeof(*w));
	if (fixture_tmpdir(w->dir, sizeof(w->dir)) != 0)
		return -1;

	snprintf(w->cert, sizeof(w->cert), "%s/cert.pem", w->dir);
	snprintf(w->key, sizeof(w->key), "%s/key.pem", w->dir);
	snprintf(w->other_cert, sizeof(w->other_cert), "%s/other.pem", w->dir);
	snprintf(w->other_key, sizeof(w->other_key), "%s/other-key.pem", w->dir);
	if (fixture_write_cert("a.test", w->cert, w->key) != 0 ||
	    fixture_write_cert("b.test", w->other_cert, w->other_key) != 0)
		return -1;

	w->certs[0].cert_path = w->cert;
	w->certs[0].key_path = w->key;
	snprintf(w->name, sizeof(w->name), "web");
	w->listener.name = w->name;
	w->listener.certs = w->certs;
	w->listener.n_certs = 1;
	w->listener.protocols = CFG_PROTO_TLS12 | CFG_PROTO_TLS13;
	w->tickets.lifetime_s = 3600;
	w->tickets.affinity = true;

	if (RAND_bytes(secret, sizeof(secret)) != 1)
		return -1;
	return tkc_source_derived(secret, sizeof(secret), 600, 3600, &w->src);
}

static void
world_free(struct world *w)
{
	tkc_source_unref(w->src);
	fixture_rmdir(w->dir);
}

static int
create(struct world *w, struct ush_tls_error *err)
{
	struct ush_tls *tls = NULL;
	int rc = ush_tls_create(&w->listener, w->src, &w->tickets, NULL, &tls, err);

	CHECK((rc == 0) == (tls != NULL));
	ush_tls_free(tls);
	return rc;
}

static void
test_good_listener(void)
{
	struct world w;
	struct ush_tls_error err;
	struct ush_tls *tls = NULL;
	SSL_CTX *ctx;

	REQUIRE(world_init(&w) == 0);
	REQUIRE(ush_tls_create(&w.listener, w.src, &w.tickets, NULL, &tls, &err) == 0);
	CHECK_EQ_INT(ush_tls_ctx_count(tls), 1);
	CHECK(ush_tls_shard(tls) != NULL);

	ctx = ush_tls_ctx(tls, 0);
	REQUIRE(ctx != NULL);
	CHECK_EQ_INT(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
	CHECK_EQ_INT(SSL_CTX_get_max_proto_version(ctx), TLS1_3_VERSION);
	CHECK(SSL_CTX_get_mode(ctx) & SSL_MODE_RELEASE_BUFFERS);
	CHECK(SSL_CTX_get_options(ctx) & SSL_OP_NO_RENEGOTIATION);
	CHECK(SSL_CTX_get_options(ctx) & SSL_OP_CIPHER_SERVER_PREFERENCE);
	CHECK(ush_tls_ctx(tls, 1) == NULL);

	ush_tls_free(tls);
	world_free(&w);
}

static void
test_single_version_listeners(void)
{
	struct world w;
	struct ush_tls_error err;
	struct ush_tls *tls = NULL;

	REQUIRE(world_init(&w) == 0);

	w.listener.protocols = CFG_PROTO_TLS13;
	REQUIRE(ush_tls_create(&w.listener, w.src, &w.tickets, NULL, &tls, &err) == 0);
	CHECK_EQ_INT(SSL_CTX_get_min_proto_version(ush_tls_ctx(tls, 0)), TLS1_3_VERSION);
	ush_tls_free(tls);

	w.listener.protocols = CFG_PROTO_TLS12;
	REQUIRE(ush_tls_create(&w.listener, w.src, &w.tickets, NULL, &tls, &err) == 0);
	CHECK_EQ_INT(SSL_CTX_get_max_proto_version(ush_tls_ctx(tls, 0)), TLS1_2_VERSION);
	ush_tls_free(tls);

	world_free(&w);
}

static void
test_missing_certificate(void)
{
	struct world w;
	struct ush_tls_error err;
	char missing[320];

	REQUIRE(world_init(&w) == 0);
	snprintf(missing, sizeof(missing), "%s/absent.pem", w.dir);
	w.certs[0].cert_path = missing;

	CHECK_EQ_INT(create(&w, &err), -ENOENT);
	CHECK_EQ_STR(err.path, missing);
	CHECK(err.reason[0] != '\0');

	world_free(&w);
}

static void
test_missing_key(void)
{
	struct world w;
	struct ush_tls_error err;
	char missing[320];

	REQUIRE(world_init(&w) == 0);
	snprintf(missing, sizeof(missing), "%s/absent-key.pem", w.dir);
	w.certs[0].key_path = missing;

	CHECK_EQ_INT(create(&w, &err), -ENOENT);
	CHECK_EQ_STR(err.path, missing);

	world_free(&w);
}

static void
test_world_readable_key_refused(void)
{
	struct world w;
	struct ush_tls_error err;

	REQUIRE(world_init(&w) == 0);
	REQUIRE(chmod(w.key, 0644) == 0);

	CHECK_EQ_INT(create(&w, &err), -EPERM);
	CHECK_EQ_STR(err.path, w.key);

	/* A key group (ssl-cert) may read it. */
	REQUIRE(chmod(w.key, 0640) == 0);
	CHECK_EQ_INT(create(&w, &err), 0);

	world_free(&w);
}

static void
test_mismatched_key(void)
{
	struct world w;
	struct ush_tls_error err;

	REQUIRE(world_init(&w) == 0);
	w.certs[0].key_path = w.other_key;

	CHECK_EQ_INT(create(&w, &err), -EINVAL);
	CHECK_EQ_STR(err.path, w.other_key);

	world_free(&w);
}

static void
test_garbage_files(void)
{
	static const char junk[] = "-----BEGIN CERTIFICATE-----\nnot base64 at all\n";
	struct world w;
	struct ush_tls_error err;
	char path[320];

	REQUIRE(world_init(&w) == 0);
	snprintf(path, sizeof(path), "%s/junk.pem", w.dir);
	REQUIRE(fixture_write_file(path, junk, sizeof(junk) - 1, 0600) == 0);

	w.certs[0].cert_path = path;
	CHECK_EQ_INT(create(&w, &err), -EINVAL);
	CHECK_EQ_STR(err.path, path);

	w.certs[0].cert_path = w.cert;
	w.certs[0].key_path = path;
	CHECK_EQ_INT(create(&w, &err), -EINVAL);
	CHECK_EQ_STR(err.path, path);

	/* The certificate is not a key, and its text never reaches err. */
	w.certs[0].key_path = w.cert;
	REQUIRE(chmod(w.cert, 0600) == 0);
	CHECK_EQ_INT(create(&w, &err), -EINVAL);
	CHECK(strstr(err.reason, "BEGIN") == NULL);

	world_free(&w);
}

static void
test_no_certificate(void)
{
	struct world w;
	struct ush_tls_error err;

	REQUIRE(world_init(&w) == 0);
	w.listener.n_certs = 0;
	CHECK_EQ_INT(create(&w, &err), -EINVAL);
	world_free(&w);
}

/*
 * A worker's context: the certificate and key are read into it (their
 * keys come from its provider, not the default context's), and the ticket
 * shard fetches from it, so a context without algorithms fails the build.
 */
static void
test_own_library_context(void)
{
	OSSL_LIB_CTX *libctx = OSSL_LIB_CTX_new(), *empty = OSSL_LIB_CTX_new();
	OSSL_PROVIDER *prov = libctx != NULL ? OSSL_PROVIDER_load(libctx, "default") : NULL;
	OSSL_PROVIDER *none = empty != NULL ? OSSL_PROVIDER_load(empty, "null") : NULL;
	struct world w;
	struct ush_tls_error err;
	struct ush_tls *tls = NULL;
	SSL_CTX *ctx;

	REQUIRE(prov != NULL && none != NULL);
	REQUIRE(world_init(&w) == 0);
	REQUIRE(ush_tls_create(&w.listener, w.src, &w.tickets, libctx, &tls, &err) == 0);
	CHECK(ush_tls_libctx(tls) == libctx);

	ctx = ush_tls_ctx(tls, 0);
	REQUIRE(ctx != NULL);
	CHECK(EVP_PKEY_get0_provider(SSL_CTX_get0_privatekey(ctx)) == prov);
	CHECK(EVP_PKEY_get0_provider(X509_get0_pubkey(SSL_CTX_get0_certificate(ctx))) == prov);
	ush_tls_free(tls);

	tls = NULL;
	CHECK_EQ_INT(ush_tls_create(&w.listener, w.src, &w.tickets, empty, &tls, &err), -EIO);
	CHECK(tls == NULL);
	CHECK(err.reason[0] != '\0');

	world_free(&w);
	OSSL_PROVIDER_unload(none);
	OSSL_PROVIDER_unload(prov);
	OSSL_LIB_CTX_free(empty);
	OSSL_LIB_CTX_free(libctx);
}

int
main(void)
{
	RUN(test_good_listener);
	RUN(test_single_version_listeners);
	RUN(test_missing_certificate);
	RUN(test_missing_key);
	RUN(test_world_readable_key_refused);
	RUN(test_mismatched_key);
	RUN(test_garbage_files);
	RUN(test_no_certificate);
	RUN(test_own_library_context);
	return check_done();
}
