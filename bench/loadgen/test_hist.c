/*
 * Unit tests of usher-loadgen's latency histogram: exact small values,
 * bounded relative error above, percentile ranks, merging and clamping.
 */
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "hist.h"

static struct lg_hist h, other;

static void
test_empty_reports_zero(void)
{
	lg_hist_init(&h);
	CHECK_EQ_INT(lg_hist_percentile(&h, 50), 0);
	CHECK_EQ_INT(lg_hist_percentile(&h, 100), 0);
	CHECK(lg_hist_mean(&h) == 0.0);
}

static void
test_small_values_are_exact(void)
{
	lg_hist_init(&h);
	for (uint64_t v = 1; v <= 100; v++)
		lg_hist_record(&h, v);

	CHECK_EQ_INT(lg_hist_percentile(&h, 50), 50);
	CHECK_EQ_INT(lg_hist_percentile(&h, 90), 90);
	CHECK_EQ_INT(lg_hist_percentile(&h, 99), 99);
	CHECK_EQ_INT(lg_hist_percentile(&h, 99.9), 100);
	CHECK_EQ_INT(lg_hist_percentile(&h, 0), 1);
	CHECK_EQ_INT(lg_hist_percentile(&h, 100), 100);
	CHECK(lg_hist_mean(&h) == 50.5);
}

/* Every value comes back as the top of its bucket: >= it, within 1/64. */
static void
test_large_values_within_relative_error(void)
{
	static const uint64_t values[] = {128,   129,    1000,    4097,
					  65535, 123456, 9999999, UINT64_C(1) << 35};

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		uint64_t got;

		lg_hist_init(&h);
		lg_hist_record(&h, values[i]);
		lg_hist_record(&h, values[i] * 2); /* so the max does not cap p50 */
		got = lg_hist_percentile(&h, 50);
		CHECK(got >= values[i]);
		CHECK(got - values[i] <= values[i] / 64);
	}
}

static void
test_percentile_is_never_above_max(void)
{
	lg_hist_init(&h);
	lg_hist_record(&h, 1000);
	CHECK_EQ_INT(lg_hist_percentile(&h, 50), 1000);
	CHECK_EQ_INT(lg_hist_percentile(&h, 99.9), 1000);
}

static void
test_tail_percentile_sees_the_outlier(void)
{
	lg_hist_init(&h);
	for (int i = 0; i < 999; i++)
		lg_hist_record(&h, 100);
	lg_hist_record(&h, 50000);

	CHECK_EQ_INT(lg_hist_percentile(&h, 99), 100);
	CHECK(lg_hist_percentile(&h, 99.95) >= 50000);
	CHECK_EQ_INT(h.max, 50000);
	CHECK_EQ_INT(h.min, 100);
}

static void
test_merge_adds_counts(void)
{
	lg_hist_init(&h);
	lg_hist_init(&other);
	for (int i = 0; i < 10; i++)
		lg_hist_record(&h, 10);
	for (int i = 0; i < 30; i++)
		lg_hist_record(&other, 3000);

	lg_hist_merge(&h, &other);
	CHECK_EQ_INT(h.count, 40);
	CHECK_EQ_INT(h.min, 10);
	CHECK_EQ_INT(h.max, 3000);
	CHECK_EQ_INT(lg_hist_percentile(&h, 25), 10);
	CHECK(lg_hist_percentile(&h, 26) >= 3000);
}

static void
test_merge_of_empty_keeps_min(void)
{
	lg_hist_init(&h);
	lg_hist_init(&other);
	lg_hist_record(&h, 7);
	lg_hist_merge(&h, &other);
	CHECK_EQ_INT(h.min, 7);
	CHECK_EQ_INT(h.count, 1);
}

static void
test_huge_values_are_clamped_not_lost(void)
{
	lg_hist_init(&h);
	lg_hist_record(&h, UINT64_MAX / 4);
	CHECK_EQ_INT(h.count, 1);
	CHECK(lg_hist_percentile(&h, 50) >= (UINT64_C(1) << LG_HIST_VALUE_BITS) - 1);
}

int
main(void)
{
	RUN(test_empty_reports_zero);
	RUN(test_small_values_are_exact);
	RUN(test_large_values_within_relative_error);
	RUN(test_percentile_is_never_above_max);
	RUN(test_tail_percentile_sees_the_outlier);
	RUN(test_merge_adds_counts);
	RUN(test_merge_of_empty_keeps_min);
	RUN(test_huge_values_are_clamped_not_lost);
	return check_done();
}
