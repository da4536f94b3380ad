/*
 * Key sources: where ticket keys come from. A source never changes after
 * it is built; a reload builds a new one and hands it over, so readers
 * need no lock, only a reference.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "tkc.h"
#include "tkc_internal.h"

#define TKC_SECRET_MIN 32

static struct tkc_source *
alloc_source(enum tkc_source_kind kind, uint64_t lifetime_s)
{
	struct tkc_source *src = calloc(1, sizeof(*src));

	if (src == NULL)
		return NULL;

	atomic_init(&src->refs, 1);
	src->kind = kind;
	src->lifetime_s = lifetime_s;
	return src;
}

/*
 * How many epochs before the current one still decrypt: enough to cover
 * lifetime_s, rounded up. UINT64_MAX when the window would be too wide.
 */
static uint64_t
epochs_back(uint64_t rotation_s, uint64_t lifetime_s)
{
	uint64_t back = lifetime_s / rotation_s + (lifetime_s % rotation_s != 0);

	/* The window also holds the current epoch and the next one. */
	if (back > TKC_MAX_WINDOW - 2)
		return UINT64_MAX;
	return back;
}

int
tkc_source_derived(const unsigned char *secret, size_t secret_len, uint64_t rotation_s,
		   uint64_t lifetime_s, struct tkc_source **out)
{
	struct tkc_source *src;
	uint64_t back;

	if (secret == NULL || secret_len < TKC_SECRET_MIN || rotation_s == 0 || out == NULL)
		return -EINVAL;

	back = epochs_back(rotation_s, lifetime_s);
	if (back == UINT64_MAX)
		return -EINVAL;

	src = alloc_source(TKC_SOURCE_DERIVED, lifetime_s);
	if (src == NULL)
		return -ENOMEM;

	src->secret = malloc(secret_len);
	if (src->secret == NULL) {
		free(src);
		return -ENOMEM;
	}

	memcpy(src->secret, secret, secret_len);
	src->secret_len = secret_len;
	src->rotation_s = rotation_s;
	src->back_epochs = back;
	*out = src;
	return 0;
}

/* Two keys with one name would make a lookup ambiguous. */
static bool
has_duplicate_names(const unsigned char *keys, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t j = i + 1; j < n; j++) {
			if (memcmp(keys + i * TKC_KEY_FILE_LEN, keys + j * TKC_KEY_FILE_LEN,
				   TKC_KEY_NAME_LEN) == 0)
				return true;
		}
	}
	return false;
}

/* nginx's layout: name(16) | HMAC(32) | AES(32). */
static void
load_key_file(struct tkc_key *key, const unsigned char *raw)
{
	memcpy(key->name, raw, TKC_KEY_NAME_LEN);
	memcpy(key->hmac, raw + TKC_KEY_NAME_LEN, TKC_HMAC_KEY_LEN);
	memcpy(key->aes, raw + TKC_KEY_NAME_LEN + TKC_HMAC_KEY_LEN, TKC_AES_KEY_LEN);
}

int
tkc_source_explicit(const unsigned char *keys, size_t n, uint64_t lifetime_s,
		    struct tkc_source **out)
{
	struct tkc_source *src;

	if (keys == NULL || n == 0 || n > TKC_MAX_WINDOW || out == NULL)
		return -EINVAL;

	if (has_duplicate_names(keys, n))
		return -EINVAL;

	src = alloc_source(TKC_SOURCE_EXPLICIT, lifetime_s);
	if (src == NULL)
		return -ENOMEM;

	src->keys = calloc(n, sizeof(*src->keys));
	if (src->keys == NULL) {
		free(src);
		return -ENOMEM;
	}

	for (size_t i = 0; i < n; i++)
		load_key_file(&src->keys[i], keys + i * TKC_KEY_FILE_LEN);
	src->nkeys = n;
	*out = src;
	return 0;
}

void
tkc_source_ref(struct tkc_source *src)
{
	/* Taking a reference needs no ordering: the caller already holds one. */
	atomic_fetch_add_explicit(&src->refs, 1, memory_order_relaxed);
}

static void
free_source(struct tkc_source *src)
{
	if (src->secret != NULL) {
		OPENSSL_cleanse(src->secret, src->secret_len);
		free(src->secret);
	}

	if (src->keys != NULL) {
		OPENSSL_cleanse(src->keys, src->nkeys * sizeof(*src->keys));
		free(src->keys);
	}

	OPENSSL_cleanse(src, sizeof(*src));
	free(src);
}

void
tkc_source_unref(struct tkc_source *src)
{
	if (src == NULL)
		return;

	/*
	 * Every holder releases its uses of the keys, and the last one
	 * acquires all of them before the wipe. acq_rel rather than a
	 * separate fence, because ThreadSanitizer does not model fences.
	 */
	if (atomic_fetch_sub_explicit(&src->refs, 1, memory_order_acq_rel) != 1)
		return;

	free_source(src);
}
