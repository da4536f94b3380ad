/*
 * upstream_internal: what the files of the upstream library share and
 * nobody else needs.
 */
#ifndef USHER_UPSTREAM_INTERNAL_H
#define USHER_UPSTREAM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "upstream.h"

/*
 * Health fields are shared between threads. Relaxed order is enough: each
 * field is a fact of its own and nothing else is published through them.
 */
static inline bool
ush_load_bool(const USH_ATOMIC(bool) * p)
{
	return atomic_load_explicit(p, memory_order_relaxed);
}

static inline void
ush_store_bool(USH_ATOMIC(bool) * p, bool v)
{
	atomic_store_explicit(p, v, memory_order_relaxed);
}

/* Store v; the value it replaced. */
static inline bool
ush_exchange_bool(USH_ATOMIC(bool) * p, bool v)
{
	return atomic_exchange_explicit(p, v, memory_order_relaxed);
}

static inline uint32_t
ush_load_u32(const USH_ATOMIC(uint32_t) * p)
{
	return atomic_load_explicit(p, memory_order_relaxed);
}

static inline void
ush_store_u32(USH_ATOMIC(uint32_t) * p, uint32_t v)
{
	atomic_store_explicit(p, v, memory_order_relaxed);
}

/* Add n; the new value. */
static inline uint32_t
ush_add_u32(USH_ATOMIC(uint32_t) * p, uint32_t n)
{
	return atomic_fetch_add_explicit(p, n, memory_order_relaxed) + n;
}

static inline uint64_t
ush_load_u64(const USH_ATOMIC(uint64_t) * p)
{
	return atomic_load_explicit(p, memory_order_relaxed);
}

static inline void
ush_store_u64(USH_ATOMIC(uint64_t) * p, uint64_t v)
{
	atomic_store_explicit(p, v, memory_order_relaxed);
}

/* Add n; the new value. */
static inline uint64_t
ush_add_u64(USH_ATOMIC(uint64_t) * p, uint64_t n)
{
	return atomic_fetch_add_explicit(p, n, memory_order_relaxed) + n;
}

/* Spread the bits of x over all 64 (the splitmix64 finalizer). */
static inline uint64_t
ush_mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9u;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebu;
	x ^= x >> 31;
	return x;
}

/* A well mixed 64-bit hash of len bytes. */
uint64_t ush_hash_bytes(const void *data, size_t len);

/*
 * One connect result for s, from a worker or a health check. A failure
 * counts toward fall; a success clears that count and, from an active
 * check (active), counts toward rise. err is the failure's errno or 0.
 */
void ush_health_record_failure(struct ush_server *s, int err);
void ush_health_record_success(struct ush_server *s, bool active);

/* Tell the pools' observer that s went up or down. */
void ush_health_changed(const struct ush_server *s, bool up, int err);

#endif
