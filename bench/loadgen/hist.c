/*
 * Log-linear histogram. Bucket layout, with S = 2^LG_HIST_SUB_BITS:
 *
 *   value v < 2S           -> bucket v (exact)
 *   2^e <= v < 2^(e+1)     -> shift s = e - SUB_BITS, bucket s*S + (v >> s)
 *
 * v >> s always lies in [S, 2S), so each power of two owns S buckets and
 * the index grows with v without gaps.
 */
#include "hist.h"

#include <math.h>
#include <string.h>

#define SUB       (1u << LG_HIST_SUB_BITS)
#define VALUE_MAX ((UINT64_C(1) << LG_HIST_VALUE_BITS) - 1)

static unsigned
bucket_of(uint64_t v)
{
	unsigned shift;

	if (v > VALUE_MAX)
		v = VALUE_MAX;
	if (v < 2 * SUB)
		return (unsigned)v;

	shift = (unsigned)(63 - __builtin_clzll(v)) - LG_HIST_SUB_BITS;
	return (shift << LG_HIST_SUB_BITS) + (unsigned)(v >> shift);
}

/* The largest value that lands in bucket b. */
static uint64_t
bucket_top(unsigned b)
{
	unsigned shift;
	uint64_t mantissa;

	if (b < 2 * SUB)
		return b;

	shift = (b >> LG_HIST_SUB_BITS) - 1;
	mantissa = b - (shift << LG_HIST_SUB_BITS);
	return ((mantissa + 1) << shift) - 1;
}

void
lg_hist_init(struct lg_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

void
lg_hist_record(struct lg_hist *h, uint64_t value)
{
	h->buckets[bucket_of(value)]++;
	h->count++;
	h->sum += value;
	if (value < h->min)
		h->min = value;
	if (value > h->max)
		h->max = value;
}

void
lg_hist_merge(struct lg_hist *into, const struct lg_hist *from)
{
	for (unsigned b = 0; b < LG_HIST_BUCKETS; b++)
		into->buckets[b] += from->buckets[b];

	into->count += from->count;
	into->sum += from->sum;
	if (from->min < into->min)
		into->min = from->min;
	if (from->max > into->max)
		into->max = from->max;
}

uint64_t
lg_hist_percentile(const struct lg_hist *h, double pct)
{
	uint64_t rank, seen = 0;

	if (h->count == 0)
		return 0;
	if (pct <= 0)
		return h->min;
	if (pct >= 100)
		return h->max;

	/* The rank of the value we want, counted from 1. */
	rank = (uint64_t)ceil(pct / 100.0 * (double)h->count);
	if (rank == 0)
		rank = 1;

	for (unsigned b = 0; b < LG_HIST_BUCKETS; b++) {
		seen += h->buckets[b];
		if (seen >= rank)
			return bucket_top(b) < h->max ? bucket_top(b) : h->max;
	}
	return h->max;
}

double
lg_hist_mean(const struct lg_hist *h)
{
	return h->count != 0 ? (double)h->sum / (double)h->count : 0.0;
}
