/*
 * Key sets: the keys of a source that are valid at one moment, and the
 * derivation of per-epoch keys.
 *
 * A derived key is HKDF-SHA256(salt "usher ticket key v1", IKM secret,
 * info "epoch" || epoch as 8 bytes big-endian), 80 bytes of output:
 *
 *	okm:  [0, 8) name tail | [8, 16) unused | [16, 48) HMAC | [48, 80) AES
 *	name: epoch (8 bytes big-endian) | name tail
 *
 * The epoch at the head of the name lets a lookup find its key by
 * subtraction; the derived tail makes names of different secrets differ.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "tkc.h"
#include "tkc_internal.h"

#define HKDF_SALT   "usher ticket key v1"
#define HKDF_INFO   "epoch"
#define HKDF_OUTPUT 80

static int
derive_with(EVP_KDF *kdf, const unsigned char *secret, size_t secret_len, uint64_t epoch,
	    struct tkc_key *out)
{
	unsigned char info[sizeof(HKDF_INFO) - 1 + 8];
	unsigned char okm[HKDF_OUTPUT];
	EVP_KDF_CTX *kctx = EVP_KDF_CTX_new(kdf);
	OSSL_PARAM params[5];
	int rc = -EIO;

	if (kctx == NULL)
		return -EIO;

	memcpy(info, HKDF_INFO, sizeof(HKDF_INFO) - 1);
	tkc_put_be64(info + sizeof(HKDF_INFO) - 1, epoch);
	params[0] =
		OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, tkc_param_ptr("SHA256"), 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, tkc_param_ptr(secret),
						      secret_len);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, tkc_param_ptr(HKDF_SALT),
						      sizeof(HKDF_SALT) - 1);
	params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, sizeof(info));
	params[4] = OSSL_PARAM_construct_end();

	if (EVP_KDF_derive(kctx, okm, sizeof(okm), params) <= 0)
		goto out;

	tkc_put_be64(out->name, epoch);
	memcpy(out->name + 8, okm, TKC_KEY_NAME_LEN - 8);
	memcpy(out->hmac, okm + 16, TKC_HMAC_KEY_LEN);
	memcpy(out->aes, okm + 16 + TKC_HMAC_KEY_LEN, TKC_AES_KEY_LEN);
	rc = 0;
out:
	OPENSSL_cleanse(okm, sizeof(okm));
	EVP_KDF_CTX_free(kctx);
	return rc;
}

int
tkc_derive_key(const unsigned char *secret, size_t secret_len, uint64_t epoch, struct tkc_key *out)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	int rc;

	if (kdf == NULL)
		return -EIO;

	rc = derive_with(kdf, secret, secret_len, epoch, out);
	EVP_KDF_free(kdf);
	return rc;
}

static struct tkc_keyset *
alloc_keyset(enum tkc_source_kind kind, size_t count)
{
	struct tkc_keyset *ks = calloc(1, sizeof(*ks) + count * sizeof(ks->keys[0]));

	if (ks == NULL)
		return NULL;

	ks->kind = kind;
	ks->count = count;
	return ks;
}

/* The key of epoch in a derived keyset, or NULL when outside its window. */
static const struct tkc_key *
derived_slot(const struct tkc_keyset *ks, uint64_t epoch)
{
	if (ks == NULL || ks->kind != TKC_SOURCE_DERIVED || epoch < ks->first_epoch)
		return NULL;
	if (epoch - ks->first_epoch >= ks->count)
		return NULL;
	return &ks->keys[epoch - ks->first_epoch];
}

/*
 * Fill ks with the keys of its epochs, copying those that prev already has
 * and deriving the others with one fetch of HKDF for the batch.
 */
static int
fill_derived(struct tkc_keyset *ks, const struct tkc_source *src, const struct tkc_keyset *prev,
	     OSSL_LIB_CTX *libctx)
{
	EVP_KDF *kdf = NULL;
	int rc = 0;

	for (size_t i = 0; i < ks->count && rc == 0; i++) {
		uint64_t epoch = ks->first_epoch + i;
		const struct tkc_key *known = derived_slot(prev, epoch);

		if (known != NULL) {
			ks->keys[i] = *known;
			continue;
		}

		if (kdf == NULL && (kdf = EVP_KDF_fetch(libctx, "HKDF", NULL)) == NULL)
			return -EIO;

		rc = derive_with(kdf, src->secret, src->secret_len, epoch, &ks->keys[i]);
	}

	EVP_KDF_free(kdf);
	return rc;
}

/*
 * Epochs [e - back, e + 1]: the current one encrypts, the older ones cover
 * tickets up to lifetime_s old, and the next one accepts tickets from a
 * host whose clock runs ahead.
 */
static int
build_derived(const struct tkc_source *src, uint64_t now, const struct tkc_keyset *prev,
	      OSSL_LIB_CTX *libctx, struct tkc_keyset **out)
{
	uint64_t epoch = tkc_source_epoch(src, now);
	uint64_t first = epoch > src->back_epochs ? epoch - src->back_epochs : 0;
	uint64_t last = epoch == UINT64_MAX ? epoch : epoch + 1;
	struct tkc_keyset *ks = alloc_keyset(TKC_SOURCE_DERIVED, (size_t)(last - first + 1));
	int rc;

	if (ks == NULL)
		return -ENOMEM;

	ks->first_epoch = first;
	ks->current = (size_t)(epoch - first);
	rc = fill_derived(ks, src, prev, libctx);
	if (rc != 0) {
		tkc_keyset_free(ks);
		return rc;
	}

	*out = ks;
	return 0;
}

/* Names are random or chosen by an operator; mix all 16 bytes. */
static uint64_t
hash_name(const unsigned char *name)
{
	uint64_t h = tkc_get_be64(name) * 0x9e3779b97f4a7c15ULL;

	h ^= tkc_get_be64(name + 8) + 0x632be59bd9b4e019ULL + (h << 6) + (h >> 2);
	h ^= h >> 31;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 29;
	return h;
}

/* A table at most half full, so every probe sequence ends on an empty slot. */
static int
index_explicit(struct tkc_keyset *ks)
{
	size_t nslots = 2;

	while (nslots < 2 * ks->count)
		nslots *= 2;

	ks->slots = calloc(nslots, sizeof(*ks->slots));
	if (ks->slots == NULL)
		return -ENOMEM;

	ks->slot_mask = nslots - 1;
	for (size_t i = 0; i < ks->count; i++) {
		size_t slot = hash_name(ks->keys[i].name) & ks->slot_mask;

		while (ks->slots[slot] != 0)
			slot = (slot + 1) & ks->slot_mask;
		ks->slots[slot] = (uint32_t)(i + 1);
	}
	return 0;
}

static int
build_explicit(const struct tkc_source *src, struct tkc_keyset **out)
{
	struct tkc_keyset *ks = alloc_keyset(TKC_SOURCE_EXPLICIT, src->nkeys);

	if (ks == NULL)
		return -ENOMEM;

	memcpy(ks->keys, src->keys, src->nkeys * sizeof(ks->keys[0]));
	ks->current = 0;
	if (index_explicit(ks) != 0) {
		tkc_keyset_free(ks);
		return -ENOMEM;
	}

	*out = ks;
	return 0;
}

int
tkc_keyset_rebuild_in(OSSL_LIB_CTX *libctx, const struct tkc_source *src, uint64_t now,
		      const struct tkc_keyset *prev, struct tkc_keyset **out)
{
	if (src == NULL || out == NULL)
		return -EINVAL;

	if (src->kind == TKC_SOURCE_EXPLICIT)
		return build_explicit(src, out);
	return build_derived(src, now, prev, libctx, out);
}

int
tkc_keyset_rebuild(const struct tkc_source *src, uint64_t now, const struct tkc_keyset *prev,
		   struct tkc_keyset **out)
{
	return tkc_keyset_rebuild_in(NULL, src, now, prev, out);
}

int
tkc_keyset_build(const struct tkc_source *src, uint64_t now, struct tkc_keyset **out)
{
	return tkc_keyset_rebuild(src, now, NULL, out);
}

void
tkc_keyset_free(struct tkc_keyset *ks)
{
	if (ks == NULL)
		return;

	free(ks->slots);
	OPENSSL_cleanse(ks, sizeof(*ks) + ks->count * sizeof(ks->keys[0]));
	free(ks);
}

size_t
tkc_keyset_count(const struct tkc_keyset *ks)
{
	return ks->count;
}

const struct tkc_key *
tkc_keyset_encrypt_key(const struct tkc_keyset *ks)
{
	return &ks->keys[ks->current];
}

static const struct tkc_key *
lookup_explicit(const struct tkc_keyset *ks, const unsigned char *name)
{
	size_t slot = hash_name(name) & ks->slot_mask;

	for (; ks->slots[slot] != 0; slot = (slot + 1) & ks->slot_mask) {
		const struct tkc_key *key = &ks->keys[ks->slots[slot] - 1];

		if (memcmp(key->name, name, TKC_KEY_NAME_LEN) == 0)
			return key;
	}
	return NULL;
}

static const struct tkc_key *
lookup_derived(const struct tkc_keyset *ks, const unsigned char *name)
{
	const struct tkc_key *key = derived_slot(ks, tkc_get_be64(name));

	/* The epoch only picks the slot; the whole name must match. */
	if (key == NULL || memcmp(key->name, name, TKC_KEY_NAME_LEN) != 0)
		return NULL;
	return key;
}

const struct tkc_key *
tkc_keyset_lookup(const struct tkc_keyset *ks, const unsigned char *name, bool *is_current)
{
	const struct tkc_key *key;

	if (ks->kind == TKC_SOURCE_EXPLICIT)
		key = lookup_explicit(ks, name);
	else
		key = lookup_derived(ks, name);

	if (is_current != NULL)
		*is_current = key == &ks->keys[ks->current];
	return key;
}
