/*
 * Internals shared by the files of ticketcache; nothing here is part of the
 * contract in tkc.h.
 */
#ifndef USHER_TKC_INTERNAL_H
#define USHER_TKC_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tkc.h"

enum tkc_source_kind {
	TKC_SOURCE_DERIVED = 0,
	TKC_SOURCE_EXPLICIT = 1,
};

/* Immutable once built; only refs changes. */
struct tkc_source {
	atomic_uint refs;
	enum tkc_source_kind kind;
	uint64_t rotation_s;  /* derived only */
	uint64_t back_epochs; /* derived: epochs before the current that decrypt */
	uint64_t lifetime_s;
	unsigned char *secret; /* derived */
	size_t secret_len;
	struct tkc_key *keys; /* explicit */
	size_t nkeys;
};

/*
 * Derived keysets hold the epochs [first_epoch, first_epoch + count) in
 * order, so a name (which starts with its epoch) finds its slot by
 * subtraction. Explicit keysets find a name through slots, an open
 * addressing table of key index + 1 (0 is empty).
 */
struct tkc_keyset {
	enum tkc_source_kind kind;
	uint64_t first_epoch;
	size_t current;
	size_t count;
	size_t slot_mask;
	uint32_t *slots;
	struct tkc_key keys[];
};

/* The epoch that encrypts at unix time now. */
static inline uint64_t
tkc_source_epoch(const struct tkc_source *src, uint64_t now)
{
	return src->kind == TKC_SOURCE_DERIVED ? now / src->rotation_s : 0;
}

/*
 * Like tkc_keyset_build(), but keys of prev (may be NULL) that are still
 * in the window are copied instead of derived again.
 */
int tkc_keyset_rebuild(const struct tkc_source *src, uint64_t now, const struct tkc_keyset *prev,
		       struct tkc_keyset **out);

/* tkc_keyset_rebuild() deriving with HKDF from libctx (NULL: the default). */
int tkc_keyset_rebuild_in(OSSL_LIB_CTX *libctx, const struct tkc_source *src, uint64_t now,
			  const struct tkc_keyset *prev, struct tkc_keyset **out);

/* OSSL_PARAM wants a mutable pointer even for inputs it only reads. */
static inline void *
tkc_param_ptr(const void *p)
{
	return (void *)(uintptr_t)p;
}

/* Store and load the 8-byte big-endian integers of names and appdata. */
static inline void
tkc_put_be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

static inline uint64_t
tkc_get_be64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

#endif
