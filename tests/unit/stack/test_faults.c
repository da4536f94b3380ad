/*
 * The fault injector: the same seed replays the same faults, rates come
 * out near what was asked, delays reorder, and the queue stays bounded.
 */
#include <errno.h>
#include <stdlib.h>

#include "check.h"
#include "ust.h"

struct sink {
	int n;
	uint32_t ids[20000];
};

static void
collect(void *arg, const void *frame, size_t len)
{
	struct sink *s = arg;
	uint32_t id;

	memcpy(&id, frame, sizeof(id));
	if (s->n < 20000)
		s->ids[s->n++] = id;
}

static struct sink sink_a, sink_b;

static void
config(struct ust_faults_config *c, uint64_t seed)
{
	memset(c, 0, sizeof(*c));
	c->seed = seed;
	c->drop_ppm = 100000;
	c->dup_ppm = 50000;
	c->delay_ppm = 100000;
	c->delay_max_us = 500;
	c->latency_us = 10;
	c->capacity = 64;
	c->frame_max = 64;
}

/* Offer n frames, one every 10 µs, popping as time passes. */
static void
drive(struct ust_faults *f, struct sink *s, uint32_t n)
{
	uint64_t t = 0;

	for (uint32_t id = 0; id < n; id++, t += 10) {
		ust_faults_push(f, &id, sizeof(id), t);
		ust_faults_pop(f, t, collect, s);
	}
	ust_faults_pop(f, t + 1000, collect, s);
}

static void
test_same_seed_same_faults(void)
{
	struct ust_faults_config c;
	struct ust_faults *a, *b;

	config(&c, 99);
	REQUIRE(ust_faults_create(&c, &a) == 0);
	REQUIRE(ust_faults_create(&c, &b) == 0);
	sink_a.n = sink_b.n = 0;
	drive(a, &sink_a, 5000);
	drive(b, &sink_b, 5000);
	CHECK_EQ_INT(sink_a.n, sink_b.n);
	CHECK(memcmp(sink_a.ids, sink_b.ids, sizeof(uint32_t) * (size_t)sink_a.n) == 0);
	ust_faults_destroy(a);
	ust_faults_destroy(b);

	/* Another seed, other faults. */
	config(&c, 100);
	REQUIRE(ust_faults_create(&c, &b) == 0);
	sink_b.n = 0;
	drive(b, &sink_b, 5000);
	CHECK(sink_a.n != sink_b.n ||
	      memcmp(sink_a.ids, sink_b.ids, sizeof(uint32_t) * (size_t)sink_a.n) != 0);
	ust_faults_destroy(b);
}

static void
test_rates_and_reordering(void)
{
	struct ust_faults_config c;
	struct ust_faults *f;
	const struct ust_faults_stats *st;
	int out_of_order = 0, dups = 0;

	config(&c, 5);
	REQUIRE(ust_faults_create(&c, &f) == 0);
	sink_a.n = 0;
	drive(f, &sink_a, 10000);
	st = ust_faults_stats(f);

	CHECK_EQ_INT(st->offered, 10000);
	CHECK(st->dropped > 800 && st->dropped < 1200);      /* 10 % */
	CHECK(st->duplicated > 300 && st->duplicated < 600); /* 5 % of the rest */
	CHECK(st->delayed > 700);
	CHECK_EQ_INT(st->overflowed, 0);
	CHECK_EQ_INT(st->delivered, (uint64_t)sink_a.n);
	CHECK_EQ_INT(st->delivered, st->offered - st->dropped + st->duplicated);

	for (int i = 1; i < sink_a.n; i++) {
		out_of_order += sink_a.ids[i] < sink_a.ids[i - 1];
		dups += sink_a.ids[i] == sink_a.ids[i - 1];
	}
	CHECK(out_of_order > 100);
	ust_faults_destroy(f);
	(void)dups;
}

static void
test_latency_and_ties_keep_order(void)
{
	struct ust_faults_config c;
	struct ust_faults *f;

	memset(&c, 0, sizeof(c));
	c.seed = 1;
	c.latency_us = 100;
	c.capacity = 8;
	c.frame_max = 16;
	REQUIRE(ust_faults_create(&c, &f) == 0);
	sink_a.n = 0;
	for (uint32_t id = 0; id < 5; id++)
		ust_faults_push(f, &id, sizeof(id), 1000);
	CHECK_EQ_INT(ust_faults_next(f), 1100);
	CHECK_EQ_INT(ust_faults_pop(f, 1099, collect, &sink_a), 0);
	CHECK_EQ_INT(ust_faults_pop(f, 1100, collect, &sink_a), 5);
	for (int i = 0; i < 5; i++)
		CHECK_EQ_INT(sink_a.ids[i], i);
	CHECK(ust_faults_next(f) == UINT64_MAX);
	ust_faults_destroy(f);
}

static void
test_bounded(void)
{
	struct ust_faults_config c;
	struct ust_faults *f;
	uint8_t big[100] = {0};

	memset(&c, 0, sizeof(c));
	c.capacity = 4;
	c.frame_max = 32;
	c.latency_us = 1000;
	REQUIRE(ust_faults_create(&c, &f) == 0);
	for (uint32_t id = 0; id < 10; id++)
		ust_faults_push(f, &id, sizeof(id), 0);
	ust_faults_push(f, big, sizeof(big), 0);
	CHECK_EQ_INT(ust_faults_stats(f)->overflowed, 7);
	sink_a.n = 0;
	CHECK_EQ_INT(ust_faults_pop(f, 1000, collect, &sink_a), 4);
	ust_faults_destroy(f);

	c.drop_ppm = 1000001;
	CHECK_EQ_INT(ust_faults_create(&c, &f), -EINVAL);
}

int
main(void)
{
	RUN(test_same_seed_same_faults);
	RUN(test_rates_and_reordering);
	RUN(test_latency_and_ties_keep_order);
	RUN(test_bounded);
	return check_done();
}
