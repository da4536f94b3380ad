/*
 * Key sources and key sets: derivation is deterministic and separates
 * secrets and epochs, windows have the documented width, lookups find
 * exactly the keys of the set, and references survive other threads.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <openssl/rand.h>

#include "check.h"
#include "tkc.h"
#include "tkc_internal.h"

#define NOW      1700000000ULL
#define ROTATION 600ULL
#define LIFETIME 3600ULL

static const unsigned char secret_a[32] = "0123456789abcdef0123456789abcdef";
static const unsigned char secret_b[32] = "fedcba9876543210fedcba9876543210";

static bool
same_key(const struct tkc_key *x, const struct tkc_key *y)
{
	return memcmp(x, y, sizeof(*x)) == 0;
}

static void
test_derivation_is_deterministic(void)
{
	struct tkc_key k1, k2;

	REQUIRE(tkc_derive_key(secret_a, sizeof(secret_a), 42, &k1) == 0);
	REQUIRE(tkc_derive_key(secret_a, sizeof(secret_a), 42, &k2) == 0);
	CHECK(same_key(&k1, &k2));
}

static void
test_derivation_separates_epochs_and_secrets(void)
{
	struct tkc_key base, next, other;

	REQUIRE(tkc_derive_key(secret_a, sizeof(secret_a), 42, &base) == 0);
	REQUIRE(tkc_derive_key(secret_a, sizeof(secret_a), 43, &next) == 0);
	REQUIRE(tkc_derive_key(secret_b, sizeof(secret_b), 42, &other) == 0);

	CHECK(memcmp(base.aes, next.aes, TKC_AES_KEY_LEN) != 0);
	CHECK(memcmp(base.hmac, next.hmac, TKC_HMAC_KEY_LEN) != 0);
	CHECK(memcmp(base.name, next.name, TKC_KEY_NAME_LEN) != 0);

	/* Same epoch, other secret: the name tail and both keys differ. */
	CHECK(memcmp(base.name, other.name, 8) == 0);
	CHECK(memcmp(base.name + 8, other.name + 8, 8) != 0);
	CHECK(memcmp(base.aes, other.aes, TKC_AES_KEY_LEN) != 0);
	CHECK(memcmp(base.hmac, other.hmac, TKC_HMAC_KEY_LEN) != 0);

	/* The AES and HMAC keys are not the same bytes. */
	CHECK(memcmp(base.aes, base.hmac, TKC_AES_KEY_LEN) != 0);
	CHECK(tkc_get_be64(base.name) == 42);
}

static void
test_derived_source_validation(void)
{
	struct tkc_source *src = NULL;

	CHECK_EQ_INT(tkc_source_derived(secret_a, 31, ROTATION, LIFETIME, &src), -EINVAL);
	CHECK_EQ_INT(tkc_source_derived(NULL, 32, ROTATION, LIFETIME, &src), -EINVAL);
	CHECK_EQ_INT(tkc_source_derived(secret_a, 32, 0, LIFETIME, &src), -EINVAL);

	/* 1023 epochs back, the current and the next: 1025 > TKC_MAX_WINDOW. */
	CHECK_EQ_INT(tkc_source_derived(secret_a, 32, 1, TKC_MAX_WINDOW - 1, &src), -EINVAL);
	CHECK_EQ_INT(tkc_source_derived(secret_a, 32, 10, 10 * (TKC_MAX_WINDOW - 2) + 1, &src),
		     -EINVAL);
	CHECK(src == NULL);

	REQUIRE(tkc_source_derived(secret_a, 32, 1, TKC_MAX_WINDOW - 2, &src) == 0);
	tkc_source_unref(src);
}

static void
check_window(uint64_t lifetime, size_t expect_count)
{
	struct tkc_source *src;
	struct tkc_keyset *ks;
	uint64_t epoch = NOW / ROTATION;
	uint64_t back = expect_count - 2;

	REQUIRE(tkc_source_derived(secret_a, 32, ROTATION, lifetime, &src) == 0);
	REQUIRE(tkc_keyset_build(src, NOW, &ks) == 0);
	CHECK_EQ_INT(tkc_keyset_count(ks), expect_count);

	for (uint64_t e = epoch - back - 1; e <= epoch + 2; e++) {
		struct tkc_key want;
		bool is_current = true;
		const struct tkc_key *got;
		bool inside = e >= epoch - back && e <= epoch + 1;

		REQUIRE(tkc_derive_key(secret_a, 32, e, &want) == 0);
		got = tkc_keyset_lookup(ks, want.name, &is_current);
		CHECK(inside ? got != NULL && same_key(got, &want) : got == NULL);
		CHECK(is_current == (e == epoch));
	}

	tkc_keyset_free(ks);
	tkc_source_unref(src);
}

static void
test_derived_window(void)
{
	check_window(LIFETIME, LIFETIME / ROTATION + 2);
	check_window(LIFETIME + 1, LIFETIME / ROTATION + 3);
	check_window(0, 2);
}

static void
test_encrypt_key_is_current_epoch(void)
{
	struct tkc_source *src;
	struct tkc_keyset *ks;
	struct tkc_key want;

	REQUIRE(tkc_source_derived(secret_a, 32, ROTATION, LIFETIME, &src) == 0);
	REQUIRE(tkc_keyset_build(src, NOW, &ks) == 0);
	REQUIRE(tkc_derive_key(secret_a, 32, NOW / ROTATION, &want) == 0);
	CHECK(same_key(tkc_keyset_encrypt_key(ks), &want));
	tkc_keyset_free(ks);
	tkc_source_unref(src);
}

static void
test_lookup_compares_whole_name(void)
{
	struct tkc_source *src;
	struct tkc_keyset *ks;
	unsigned char name[TKC_KEY_NAME_LEN];

	REQUIRE(tkc_source_derived(secret_a, 32, ROTATION, LIFETIME, &src) == 0);
	REQUIRE(tkc_keyset_build(src, NOW, &ks) == 0);
	memcpy(name, tkc_keyset_encrypt_key(ks)->name, sizeof(name));
	CHECK(tkc_keyset_lookup(ks, name, NULL) != NULL);

	for (size_t i = 0; i < sizeof(name); i++) {
		name[i] ^= 0x01;
		CHECK(tkc_keyset_lookup(ks, name, NULL) == NULL);
		name[i] ^= 0x01;
	}

	tkc_keyset_free(ks);
	tkc_source_unref(src);
}

/* Rebuilding for the next epoch from the previous set equals a fresh build. */
static void
test_rebuild_reuses_keys(void)
{
	struct tkc_source *src;
	struct tkc_keyset *old, *next, *fresh;

	REQUIRE(tkc_source_derived(secret_a, 32, ROTATION, LIFETIME, &src) == 0);
	REQUIRE(tkc_keyset_build(src, NOW, &old) == 0);
	REQUIRE(tkc_keyset_rebuild(src, NOW + ROTATION, old, &next) == 0);
	REQUIRE(tkc_keyset_build(src, NOW + ROTATION, &fresh) == 0);
	CHECK_EQ_INT(tkc_keyset_count(next), tkc_keyset_count(fresh));
	CHECK(memcmp(next->keys, fresh->keys, next->count * sizeof(next->keys[0])) == 0);
	CHECK(same_key(tkc_keyset_encrypt_key(next), tkc_keyset_encrypt_key(fresh)));
	tkc_keyset_free(old);
	tkc_keyset_free(next);
	tkc_keyset_free(fresh);
	tkc_source_unref(src);
}

static void
test_explicit_keys(void)
{
	unsigned char raw[3 * TKC_KEY_FILE_LEN];
	struct tkc_source *src;
	struct tkc_keyset *ks;
	unsigned char unknown[TKC_KEY_NAME_LEN] = {0};

	REQUIRE(RAND_bytes(raw, sizeof(raw)) == 1);
	REQUIRE(tkc_source_explicit(raw, 3, LIFETIME, &src) == 0);
	REQUIRE(tkc_keyset_build(src, NOW, &ks) == 0);
	CHECK_EQ_INT(tkc_keyset_count(ks), 3);
	CHECK(memcmp(tkc_keyset_encrypt_key(ks)->name, raw, TKC_KEY_NAME_LEN) == 0);

	for (size_t i = 0; i < 3; i++) {
		const unsigned char *file = raw + i * TKC_KEY_FILE_LEN;
		bool is_current = false;
		const struct tkc_key *key = tkc_keyset_lookup(ks, file, &is_current);

		REQUIRE(key != NULL);
		/* nginx's layout: name | HMAC | AES. */
		CHECK(memcmp(key->hmac, file + 16, TKC_HMAC_KEY_LEN) == 0);
		CHECK(memcmp(key->aes, file + 48, TKC_AES_KEY_LEN) == 0);
		CHECK(is_current == (i == 0));
	}

	CHECK(tkc_keyset_lookup(ks, unknown, NULL) == NULL);
	tkc_keyset_free(ks);
	tkc_source_unref(src);
}

static void
test_explicit_validation(void)
{
	unsigned char raw[2 * TKC_KEY_FILE_LEN];
	struct tkc_source *src = NULL;

	REQUIRE(RAND_bytes(raw, sizeof(raw)) == 1);
	CHECK_EQ_INT(tkc_source_explicit(raw, 0, LIFETIME, &src), -EINVAL);
	CHECK_EQ_INT(tkc_source_explicit(NULL, 1, LIFETIME, &src), -EINVAL);

	memcpy(raw + TKC_KEY_FILE_LEN, raw, TKC_KEY_NAME_LEN);
	CHECK_EQ_INT(tkc_source_explicit(raw, 2, LIFETIME, &src), -EINVAL);
	CHECK(src == NULL);
}

/* Many keys, some with names that differ in one byte only. */
static void
test_explicit_lookup_many(void)
{
	enum { N = 1000 };

	static unsigned char raw[N * TKC_KEY_FILE_LEN];
	struct tkc_source *src;
	struct tkc_keyset *ks;
	size_t found = 0;

	REQUIRE(RAND_bytes(raw, sizeof(raw)) == 1);
	for (size_t i = 0; i < 256; i++) {
		memset(raw + i * TKC_KEY_FILE_LEN, 'k', TKC_KEY_NAME_LEN);
		raw[i * TKC_KEY_FILE_LEN + 15] = (unsigned char)i;
	}

	REQUIRE(tkc_source_explicit(raw, N, LIFETIME, &src) == 0);
	REQUIRE(tkc_keyset_build(src, NOW, &ks) == 0);
	for (size_t i = 0; i < N; i++) {
		const unsigned char *file = raw + i * TKC_KEY_FILE_LEN;
		const struct tkc_key *key = tkc_keyset_lookup(ks, file, NULL);

		found += key != NULL && memcmp(key->aes, file + 48, TKC_AES_KEY_LEN) == 0;
	}
	CHECK_EQ_INT(found, N);
	tkc_keyset_free(ks);
	tkc_source_unref(src);
}

struct ref_worker {
	struct tkc_source *src;
	int builds_ok;
};

static void *
hold_and_release(void *arg)
{
	struct ref_worker *w = arg;

	for (int i = 0; i < 20000; i++) {
		tkc_source_ref(w->src);
		if (i % 2000 == 0) {
			struct tkc_keyset *ks;

			if (tkc_keyset_build(w->src, NOW + (uint64_t)i, &ks) == 0)
				w->builds_ok++;
			tkc_keyset_free(ks);
		}
		tkc_source_unref(w->src);
	}

	/* Drop the reference main took for this thread. */
	tkc_source_unref(w->src);
	return NULL;
}

/*
 * Four threads take and drop references while main drops its own: the
 * last one out frees the source exactly once (ASan reports a double free
 * or a leak otherwise).
 */
static void
test_refs_across_threads(void)
{
	struct tkc_source *src;
	struct ref_worker workers[4];
	pthread_t threads[4];

	REQUIRE(tkc_source_derived(secret_a, 32, ROTATION, LIFETIME, &src) == 0);
	for (int i = 0; i < 4; i++) {
		workers[i].src = src;
		workers[i].builds_ok = 0;
		tkc_source_ref(src);
		REQUIRE(pthread_create(&threads[i], NULL, hold_and_release, &workers[i]) == 0);
	}

	tkc_source_unref(src);
	for (int i = 0; i < 4; i++) {
		pthread_join(threads[i], NULL);
		CHECK_EQ_INT(workers[i].builds_ok, 10);
	}
}

int
main(void)
{
	RUN(test_derivation_is_deterministic);
	RUN(test_derivation_separates_epochs_and_secrets);
	RUN(test_derived_source_validation);
	RUN(test_derived_window);
	RUN(test_encrypt_key_is_current_epoch);
	RUN(test_lookup_compares_whole_name);
	RUN(test_rebuild_reuses_keys);
	RUN(test_explicit_keys);
	RUN(test_explicit_validation);
	RUN(test_explicit_lookup_many);
	RUN(test_refs_across_threads);
	return check_done();
}
