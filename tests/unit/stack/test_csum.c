/*
 * Checksums against known vectors, SipHash against the reference vector,
 * the byte ring, names and counter arithmetic.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "ust_impl.h"

/* RFC 1071 section 3: the sum of these bytes is 0xddf2. */
static void
test_rfc1071_example(void)
{
	static const uint8_t b[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};

	CHECK_EQ_INT(ust_csum_add(0, b, sizeof(b)) % 0xffff, 0xddf2);
	CHECK_EQ_INT(ust_csum_fold(ust_csum_add(0, b, sizeof(b))), 0x220d);
}

/* A real IPv4 header whose checksum field reads 0xb861. */
static void
test_ipv4_header_vector(void)
{
	uint8_t h[] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
		       0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};

	CHECK_EQ_INT(ust_csum_fold(ust_csum_add(0, h, sizeof(h))), 0xb861);
	h[10] = 0xb8;
	h[11] = 0x61;
	CHECK_EQ_INT(ust_csum_fold(ust_csum_add(0, h, sizeof(h))), 0);
}

static void
test_odd_length_and_split(void)
{
	static const uint8_t b[] = {0x12, 0x34, 0x56, 0x78, 0x9a};
	uint32_t whole = ust_csum_add(0, b, 5);

	/* The odd byte is the high half of a last word padded with zero. */
	/* 0x1234 + 0x5678 + 0x9a00 = 0x102ac: the carry wraps round. */
	CHECK_EQ_INT(ust_csum_fold(whole), (uint16_t) ~(0x02ac + 1));

	/* Summing in even-sized pieces gives the same result. */
	CHECK_EQ_INT(ust_csum_fold(ust_csum_add(ust_csum_add(0, b, 2), b + 2, 3)),
		     ust_csum_fold(whole));
}

static void
test_carry_folding(void)
{
	uint8_t ff[4096];

	memset(ff, 0xff, sizeof(ff));
	/* All ones sums to negative zero, whose complement is zero. */
	CHECK_EQ_INT(ust_csum_fold(ust_csum_add(0, ff, sizeof(ff))), 0);
}

/* A TCP segment: the pseudo-header makes the whole sum verify to zero. */
static void
test_pseudo_header(void)
{
	uint8_t seg[24] = {0x30, 0x39, 0x00, 0x50, 0, 0, 0, 1, 0,   0,   0,   0,
			   0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0, 'a', 'b', 'c', 'd'};
	uint32_t src = 0x0a000001, dst = 0x0a000002;
	uint32_t ph = ust_csum_pseudo(src, dst, 6, sizeof(seg));
	uint16_t c = ust_csum_fold(ust_csum_add(ph, seg, sizeof(seg)));

	CHECK_EQ_INT(ph, 0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 6 + 24);
	seg[16] = (uint8_t)(c >> 8);
	seg[17] = (uint8_t)c;
	CHECK_EQ_INT(ust_csum_fold(ust_csum_add(ph, seg, sizeof(seg))), 0);
}

/* The SipHash-2-4 paper's test vector: key 00..0f, message 00..0e. */
static void
test_siphash_vector(void)
{
	uint8_t msg[15];
	uint64_t key[2] = {0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};

	for (int i = 0; i < 15; i++)
		msg[i] = (uint8_t)i;
	CHECK(siphash24(key, msg, sizeof(msg)) == 0xa129ca6149be45e5ULL);
	CHECK(siphash24(key, msg, 0) == 0x726fdb47dd0e0e31ULL);
}

static void
test_ring_wraps(void)
{
	struct ust_ring r;
	uint8_t out[16];

	REQUIRE(ring_init(&r, 8) == 0);
	CHECK_EQ_INT(ring_push(&r, (const uint8_t *)"abcdef", 6), 6);
	CHECK_EQ_INT(ring_pop(&r, out, 4), 4);
	CHECK(memcmp(out, "abcd", 4) == 0);

	/* Bounded: only the free space is taken. */
	CHECK_EQ_INT(ring_push(&r, (const uint8_t *)"0123456789", 10), 6);
	CHECK_EQ_INT(r.len, 8);
	ring_peek(&r, 1, out, 7);
	CHECK(memcmp(out, "f012345", 7) == 0);
	ring_drop(&r, 3);
	CHECK_EQ_INT(ring_pop(&r, out, 16), 5);
	CHECK(memcmp(out, "12345", 5) == 0);

	/* Writing ahead of the data (out-of-order bytes) wraps too. */
	ring_write_at(&r, 3, (const uint8_t *)"xyz", 3);
	r.len = 6;
	ring_write_at(&r, 0, (const uint8_t *)"uvw", 3);
	CHECK_EQ_INT(ring_pop(&r, out, 6), 6);
	CHECK(memcmp(out, "uvwxyz", 6) == 0);
	ring_free(&r);
}

static void
test_names(void)
{
	CHECK_EQ_STR(ust_drop_name(UST_DROP_IP_FRAG), "ip_frag");
	CHECK_EQ_STR(ust_drop_name(UST_DROP_TCP_CSUM), "tcp_csum");
	CHECK_EQ_STR(ust_drop_name(UST_DROP_MAX), "unknown");
	for (int i = 1; i < UST_DROP_MAX; i++)
		CHECK(strcmp(ust_drop_name((enum ust_drop)i), "unknown") != 0);
	CHECK_EQ_STR(ust_close_reason_name(UST_CLOSE_RESET), "reset");
	CHECK_EQ_STR(ust_tcp_state_name(UST_TCP_TIME_WAIT), "TIME_WAIT");
}

static void
test_counters_add(void)
{
	struct ust_counters a, b;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.rx_frames = 3;
	a.drops[UST_DROP_IP_CSUM] = 2;
	b.rx_frames = 4;
	b.drops[UST_DROP_IP_CSUM] = 5;
	b.tcp_time_wait_recycled = 7;
	ust_counters_add(&a, &b);
	CHECK_EQ_INT(a.rx_frames, 7);
	CHECK_EQ_INT(a.drops[UST_DROP_IP_CSUM], 7);
	CHECK_EQ_INT(a.tcp_time_wait_recycled, 7);
}

struct seen {
	int n;
	uint64_t sum;
	char names[128][64];
};

static void
on_counter(void *arg, const char *name, uint64_t value)
{
	struct seen *s = arg;

	if (s->n < 128)
		snprintf(s->names[s->n++], 64, "%s", name);
	s->sum += value;
}

/* Every field is named once, and each name only once. */
static void
test_counters_foreach(void)
{
	static struct seen seen;
	struct ust_counters c;
	uint64_t *all = (uint64_t *)&c;
	size_t fields = sizeof(c) / sizeof(uint64_t);

	for (size_t i = 0; i < fields; i++)
		all[i] = 1;
	all[offsetof(struct ust_counters, drops) / sizeof(uint64_t)] = 0; /* UST_DROP_NONE */
	ust_counters_foreach(&c, on_counter, &seen);
	CHECK_EQ_INT(seen.n, fields - 1);
	CHECK_EQ_INT(seen.sum, fields - 1);
	CHECK_EQ_STR(seen.names[0], "rx_frames");
	CHECK_EQ_STR(seen.names[seen.n - 1], "drop_tx_failed");
	for (int i = 0; i < seen.n; i++)
		for (int j = i + 1; j < seen.n; j++)
			CHECK(strcmp(seen.names[i], seen.names[j]) != 0);
}

static void
test_config_rejected(void)
{
	struct ust_config cfg;
	struct ust_ops ops = {0};
	struct ust_stack *s = NULL;

	ust_config_defaults(&cfg);
	cfg.ipv4 = 0x0a000001;
	CHECK_EQ_INT(ust_stack_create(&cfg, &ops, &s), -EINVAL); /* no tx */

	ops.tx = NULL;
	cfg.mtu = 100;
	CHECK_EQ_INT(ust_stack_create(&cfg, &ops, &s), -EINVAL);
	ust_config_defaults(&cfg);
	CHECK_EQ_INT(ust_stack_create(&cfg, &ops, &s), -EINVAL); /* no address */
	CHECK(s == NULL);
}

int
main(void)
{
	RUN(test_rfc1071_example);
	RUN(test_ipv4_header_vector);
	RUN(test_odd_length_and_split);
	RUN(test_carry_folding);
	RUN(test_pseudo_header);
	RUN(test_siphash_vector);
	RUN(test_ring_wraps);
	RUN(test_names);
	RUN(test_counters_add);
	RUN(test_counters_foreach);
	RUN(test_config_rejected);
	return check_done();
}
