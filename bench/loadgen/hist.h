/*
 * A log-linear latency histogram in the manner of HDR histograms: exact
 * below 128, then 64 linear buckets per power of two, so a reported value
 * is within 1/64 (1.6%) of the truth at any scale. Recording is one
 * count-leading-zeros and an add; the whole table is about 18 KiB.
 *
 * Not thread-safe: each worker owns one, and they are merged after join.
 */
#ifndef USHER_LOADGEN_HIST_H
#define USHER_LOADGEN_HIST_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LG_HIST_SUB_BITS   6  /* 64 linear buckets per power of two */
#define LG_HIST_VALUE_BITS 40 /* larger values are clamped to 2^40 - 1 */
#define LG_HIST_BUCKETS    ((LG_HIST_VALUE_BITS - LG_HIST_SUB_BITS + 1) << LG_HIST_SUB_BITS)

struct lg_hist {
	uint64_t count;
	uint64_t sum;
	uint64_t min;
	uint64_t max;
	uint64_t buckets[LG_HIST_BUCKETS];
};

/* Empty h. */
void lg_hist_init(struct lg_hist *h);

/* Count one value (any unit; usher-loadgen records microseconds). */
void lg_hist_record(struct lg_hist *h, uint64_t value);

/* Add every count of from into into. */
void lg_hist_merge(struct lg_hist *into, const struct lg_hist *from);

/*
 * The smallest recorded value v such that pct percent of the values are
 * <= v, rounded up to the top of v's bucket and never above the maximum.
 * pct is 0..100; an empty histogram gives 0.
 */
uint64_t lg_hist_percentile(const struct lg_hist *h, double pct);

/* The mean, or 0 when empty. */
double lg_hist_mean(const struct lg_hist *h);

#ifdef __cplusplus
}
#endif

#endif
