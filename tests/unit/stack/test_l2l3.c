/*
 * Ethernet, ARP, IPv4 and ICMP driven by crafted frames: what is answered,
 * what is dropped and under which counter, and what goes out.
 */
#include <errno.h>
#include <stdlib.h>

#include "check.h"
#include "ustest.h"

static struct rig r;

static uint64_t
drops(enum ust_drop why)
{
	return ust_counters(r.st)->drops[why];
}

static bool
is_arp(const uint8_t *f, uint16_t op)
{
	return f[12] == 0x08 && f[13] == 0x06 && f[20] == 0 && f[21] == op;
}

static uint32_t
arp_tpa(const uint8_t *f)
{
	return (uint32_t)f[38] << 24 | (uint32_t)f[39] << 16 | (uint32_t)f[40] << 8 | f[41];
}

static void
test_announce_at_start(void)
{
	const uint8_t *f;

	REQUIRE(rig_init(&r, NULL) == 0);
	REQUIRE(r.cap.n == 1);
	f = r.cap.frame[0];

	/* A broadcast request for our own address, from our own address. */
	CHECK(memcmp(f, "\xff\xff\xff\xff\xff\xff", 6) == 0);
	CHECK(memcmp(f + 6, MAC_US, 6) == 0);
	CHECK(is_arp(f, 1));
	CHECK_EQ_INT(arp_tpa(f), IP_US);
	CHECK(memcmp(f + 28, "\x0a\x00\x00\x01", 4) == 0);
	CHECK(r.cap.len[0] >= 60);
	CHECK_EQ_INT(ust_counters(r.st)->arp_announce_tx, 1);
	rig_fini(&r);
}

static void
test_arp_request_for_us_is_answered(void)
{
	uint8_t f[64];
	const uint8_t *out;

	REQUIRE(rig_init(&r, NULL) == 0);
	cap_clear(&r.cap);
	rig_input(&r, f,
		  build_arp(f, 1, MAC_PEER, IP_PEER, (const uint8_t[6]){0}, IP_US,
			    (const uint8_t *)"\xff\xff\xff\xff\xff\xff"));
	REQUIRE(r.cap.n == 1);
	out = r.cap.frame[0];
	CHECK(memcmp(out, MAC_PEER, 6) == 0);
	CHECK(is_arp(out, 2));
	CHECK(memcmp(out + 22, MAC_US, 6) == 0);   /* sha */
	CHECK(memcmp(out + 32, MAC_PEER, 6) == 0); /* tha */
	CHECK_EQ_INT(arp_tpa(out), IP_PEER);
	CHECK_EQ_INT(ust_counters(r.st)->arp_replies_tx, 1);

	/* The asker was learned: a ping back needs no ARP of our own. */
	cap_clear(&r.cap);
	{
		uint8_t icmp[16] = {8, 0, 0, 0, 0, 1, 0, 1, 'p', 'i', 'n', 'g'};
		uint16_t c = ust_csum_fold(ust_csum_add(0, icmp, 12));

		icmp[2] = (uint8_t)(c >> 8);
		icmp[3] = (uint8_t)c;
		rig_input(&r, f, build_ip(f, IP_PEER, IP_US, 1, icmp, 12));
	}
	REQUIRE(r.cap.n == 1);
	CHECK(memcmp(r.cap.frame[0], MAC_PEER, 6) == 0);
	CHECK(r.cap.frame[0][13] == 0x00); /* IPv4, not ARP */
	rig_fini(&r);
}

static void
test_arp_malformed_and_not_us(void)
{
	uint8_t f[64];
	size_t n;

	REQUIRE(rig_init(&r, NULL) == 0);
	cap_clear(&r.cap);

	n = build_arp(f, 1, MAC_PEER, IP_PEER, (const uint8_t[6]){0}, IP4(10, 0, 0, 9), MAC_US);
	rig_input(&r, f, n);
	CHECK_EQ_INT(drops(UST_DROP_ARP_NOT_US), 1);

	n = build_arp(f, 1, MAC_PEER, IP_PEER, (const uint8_t[6]){0}, IP_US, MAC_US);
	f[18] = 7; /* hardware length */
	rig_input(&r, f, n);
	rig_input(&r, f, 30); /* truncated */
	n = build_arp(f, 3, MAC_PEER, IP_PEER, (const uint8_t[6]){0}, IP_US, MAC_US);
	rig_input(&r, f, n); /* opcode */
	n = build_arp(f, 1, (const uint8_t *)"\x01\x00\x5e\x00\x00\x01", IP_PEER,
		      (const uint8_t[6]){0}, IP_US, MAC_US);
	rig_input(&r, f, n); /* multicast sender */
	CHECK_EQ_INT(drops(UST_DROP_ARP_MALFORMED), 4);
	CHECK_EQ_INT(r.cap.n, 0);
	rig_fini(&r);
}

static void
test_ethernet_drops(void)
{
	uint8_t f[64] = {0};

	REQUIRE(rig_init(&r, NULL) == 0);
	rig_input(&r, f, 13);
	CHECK_EQ_INT(drops(UST_DROP_ETH_SHORT), 1);

	memcpy(f, MAC_PEER, 6); /* someone else's frame */
	f[12] = 0x08;
	rig_input(&r, f, 60);
	CHECK_EQ_INT(drops(UST_DROP_ETH_DST), 1);

	memcpy(f, MAC_US, 6);
	f[12] = 0x86;
	f[13] = 0xdd; /* IPv6 */
	rig_input(&r, f, 60);
	CHECK_EQ_INT(drops(UST_DROP_ETH_TYPE), 1);
	CHECK_EQ_INT(ust_counters(r.st)->rx_frames, 3);
	rig_fini(&r);
}

static size_t
echo_request(uint8_t *f, size_t payload)
{
	uint8_t icmp[1600];
	uint16_t c;

	icmp[0] = 8;
	icmp[1] = 0;
	icmp[2] = icmp[3] = 0;
	icmp[4] = 0xbe;
	icmp[5] = 0xef; /* identifier */
	icmp[6] = 0x00;
	icmp[7] = 0x2a; /* sequence */
	for (size_t i = 0; i < payload; i++)
		icmp[8 + i] = (uint8_t)(i * 7);
	c = ust_csum_fold(ust_csum_add(0, icmp, 8 + payload));
	icmp[2] = (uint8_t)(c >> 8);
	icmp[3] = (uint8_t)c;
	return build_ip(f, IP_PEER, IP_US, 1, icmp, 8 + payload);
}

static void
test_icmp_echo_reply(void)
{
	uint8_t f[2048];
	size_t n;
	const uint8_t *out, *ip, *icmp;

	REQUIRE(rig_init(&r, NULL) == 0);
	rig_learn_peer(&r);
	cap_clear(&r.cap);

	n = echo_request(f, 100);
	rig_input(&r, f, n);
	REQUIRE(r.cap.n == 1);
	out = r.cap.frame[0];
	ip = out + 14;
	icmp = ip + 20;
	CHECK_EQ_INT(r.cap.len[0], n);
	CHECK(memcmp(ip + 12, "\x0a\x00\x00\x01", 4) == 0);
	CHECK(memcmp(ip + 16, "\x0a\x00\x00\x02", 4) == 0);
	CHECK_EQ_INT(ust_csum_fold(ust_csum_add(0, ip, 20)), 0);
	CHECK_EQ_INT(icmp[0], 0);
	CHECK_EQ_INT(ust_csum_fold(ust_csum_add(0, icmp, 108)), 0);
	CHECK(memcmp(icmp + 4, f + 34 + 4, 104) == 0); /* id, seq and data */
	CHECK_EQ_INT(ust_counters(r.st)->icmp_echo_replies, 1);

	/* A bad checksum, a truncated header, a type we ignore. */
	f[34 + 20] ^= 1;
	rig_input(&r, f, n);
	CHECK_EQ_INT(drops(UST_DROP_ICMP_CSUM), 1);
	n = build_ip(f, IP_PEER, IP_US, 1, "\x08\x00\x00", 3);
	rig_input(&r, f, n);
	CHECK_EQ_INT(drops(UST_DROP_ICMP_SHORT), 1);
	{
		uint8_t unreach[8] = {3, 1, 0, 0, 0, 0, 0, 0};
		uint16_t c = ust_csum_fold(ust_csum_add(0, unreach, 8));

		unreach[2] = (uint8_t)(c >> 8);
		unreach[3] = (uint8_t)c;
		rig_input(&r, f, build_ip(f, IP_PEER, IP_US, 1, unreach, 8));
	}
	CHECK_EQ_INT(drops(UST_DROP_ICMP_TYPE), 1);
	CHECK_EQ_INT(r.cap.n, 1);
	rig_fini(&r);
}

static void
test_ipv4_header_checks(void)
{
	uint8_t f[2048], g[2048];
	size_t n;

	REQUIRE(rig_init(&r, NULL) == 0);
	rig_learn_peer(&r);
	n = echo_request(f, 8);

#define MUTATE(field_stmt, len, why)                   \
	do {                                           \
		uint64_t before_ = drops(why);         \
		memcpy(g, f, n);                       \
		field_stmt;                            \
		rig_input(&r, g, len);                 \
		CHECK_EQ_INT(drops(why), before_ + 1); \
	} while (0)

	MUTATE((void)0, 14 + 19, UST_DROP_IP_SHORT);
	MUTATE(g[14] = 0x65, n, UST_DROP_IP_VERSION);
	MUTATE(g[14] = 0x44, n, UST_DROP_IP_HDRLEN);
	MUTATE(g[14] = 0x4f, 14 + 40, UST_DROP_IP_SHORT);
	MUTATE(g[17] = 0xff, n, UST_DROP_IP_LEN);
	MUTATE(g[24] ^= 0x10, n, UST_DROP_IP_CSUM);
#undef MUTATE
	CHECK_EQ_INT(drops(UST_DROP_IP_SHORT), 2);
	cap_clear(&r.cap);

	/* Ethernet padding past the IP total length is ignored. */
	memcpy(g, f, n);
	memset(g + n, 0xee, 30);
	rig_input(&r, g, n + 30);
	CHECK_EQ_INT(r.cap.n, 1);
	CHECK_EQ_INT(ust_counters(r.st)->icmp_echo_replies, 1);
	rig_fini(&r);
}

/* Rewrite a field of the IP header of f and fix its checksum. */
static void
ip_set(uint8_t *f, size_t off, uint8_t v)
{
	uint16_t c;

	f[14 + off] = v;
	f[24] = f[25] = 0;
	c = ust_csum_fold(ust_csum_add(0, f + 14, 20));
	f[24] = (uint8_t)(c >> 8);
	f[25] = (uint8_t)c;
}

static void
test_fragments_dropped_and_counted(void)
{
	uint8_t f[2048];
	size_t n;

	REQUIRE(rig_init(&r, NULL) == 0);
	rig_learn_peer(&r);
	cap_clear(&r.cap);

	n = echo_request(f, 8);
	ip_set(f, 6, 0x20); /* more fragments */
	rig_input(&r, f, n);
	n = echo_request(f, 8);
	ip_set(f, 7, 0x10); /* offset 16 bytes */
	rig_input(&r, f, n);
	n = echo_request(f, 8);
	ip_set(f, 6, 0x40); /* DF alone is no fragment */
	rig_input(&r, f, n);

	CHECK_EQ_INT(drops(UST_DROP_IP_FRAG), 2);
	CHECK_EQ_INT(ust_counters(r.st)->icmp_echo_replies, 1);
	rig_fini(&r);
}

static void
test_ipv4_addresses_and_protocols(void)
{
	uint8_t f[2048];

	REQUIRE(rig_init(&r, NULL) == 0);
	rig_input(&r, f, build_ip(f, IP_PEER, IP4(10, 0, 0, 7), 1, "abcdefgh", 8));
	CHECK_EQ_INT(drops(UST_DROP_IP_NOT_US), 1);
	rig_input(&r, f, build_ip(f, IP4(127, 0, 0, 1), IP_US, 1, "abcdefgh", 8));
	rig_input(&r, f, build_ip(f, IP4(10, 0, 0, 255), IP_US, 1, "abcdefgh", 8));
	rig_input(&r, f, build_ip(f, IP4(224, 0, 0, 1), IP_US, 1, "abcdefgh", 8));
	rig_input(&r, f, build_ip(f, IP_US, IP_US, 1, "abcdefgh", 8));
	CHECK_EQ_INT(drops(UST_DROP_IP_SRC), 4);
	rig_input(&r, f, build_ip(f, IP_PEER, IP_US, 17, "abcdefgh", 8));
	CHECK_EQ_INT(drops(UST_DROP_IP_PROTO), 1);
	rig_fini(&r);
}

/* The NIC's verdicts on checksums are believed, good or bad. */
static void
test_rx_checksum_offload_flags(void)
{
	uint8_t f[2048];
	size_t n;

	REQUIRE(rig_init(&r, NULL) == 0);
	rig_learn_peer(&r);
	n = echo_request(f, 8);
	ust_input(r.st, f, n, UST_RX_IPV4_CSUM_BAD, r.now);
	CHECK_EQ_INT(drops(UST_DROP_IP_CSUM), 1);

	f[24] ^= 0xff; /* wrong, but the NIC says good */
	ust_input(r.st, f, n, UST_RX_IPV4_CSUM_GOOD, r.now);
	CHECK_EQ_INT(drops(UST_DROP_IP_CSUM), 1);
	CHECK_EQ_INT(ust_counters(r.st)->icmp_echo_replies, 1);
	rig_fini(&r);
}

static void
test_tx_checksum_offload(void)
{
	struct ust_config cfg;
	struct tcpv v;
	uint8_t f[128];
	const uint8_t *ip, *t;
	uint32_t ph;

	rig_config(&cfg);
	cfg.offloads = UST_OFFLOAD_TX_IPV4_CSUM | UST_OFFLOAD_TX_TCP_CSUM;
	REQUIRE(rig_init(&r, &cfg) == 0);
	rig_learn_peer(&r);
	cap_clear(&r.cap);

	/* A SYN to a closed port draws an RST: look at its checksums. */
	rig_tcp(&r, &(struct tcpb){.src = IP_PEER,
				   .dst = IP_US,
				   .sport = 1000,
				   .dport = 80,
				   .seq = 5,
				   .flags = F_SYN,
				   .wnd = 1000});
	REQUIRE(r.cap.n == 1);
	REQUIRE(parse_tcp(r.cap.frame[0], r.cap.len[0], &v));
	CHECK_EQ_INT(r.cap.flags[0], UST_TX_IPV4_CSUM | UST_TX_TCP_CSUM);
	ip = r.cap.frame[0] + 14;
	t = ip + 20;
	CHECK(ip[10] == 0 && ip[11] == 0);
	ph = ust_csum_pseudo(IP_US, IP_PEER, 6, 20);
	CHECK_EQ_INT((t[16] << 8 | t[17]), (uint16_t)~ust_csum_fold(ph));
	rig_fini(&r);
	(void)f;
}

static void
test_output_waits_for_arp_then_retries_then_fails(void)
{
	struct ust_conn *c = NULL;
	struct ust_config cfg;
	uint64_t t;

	rig_config(&cfg);
	cfg.arp_retries = 3;
	cfg.arp_retry_us = 500000;
	REQUIRE(rig_init(&r, &cfg) == 0);
	cap_clear(&r.cap);

	/* Nothing answers for 10.0.0.99: requests every 0.5 s, then give up. */
	REQUIRE(ust_connect(r.st, IP4(10, 0, 0, 99), 443, 0, r.now, NULL, &c) == 0);
	REQUIRE(r.cap.n == 1);
	CHECK(is_arp(r.cap.frame[0], 1));
	CHECK_EQ_INT(arp_tpa(r.cap.frame[0]), IP4(10, 0, 0, 99));
	CHECK_EQ_INT(count_tcp_flags(&r.cap, F_SYN), 0);

	for (t = r.now; r.app.connected == 0 && t < r.now + 5000000; t += 100000)
		rig_advance(&r, t);
	CHECK_EQ_INT(ust_counters(r.st)->arp_requests_tx, 3);
	CHECK_EQ_INT(r.app.connected, 1);
	CHECK_EQ_INT(r.app.connect_err, -EHOSTUNREACH);
	CHECK(drops(UST_DROP_ARP_UNRESOLVED) >= 1);
	CHECK_EQ_INT(count_tcp_flags(&r.cap, F_SYN), 0);
	CHECK_EQ_INT(ust_counters(r.st)->tcp_conns, 0);
	rig_fini(&r);
}

static void
test_arp_resolves_held_frame_and_expires(void)
{
	struct ust_config cfg;
	struct ust_conn *c = NULL;
	uint8_t f[64];
	struct tcpv v;

	rig_config(&cfg);
	cfg.arp_ttl_us = 10000000;
	REQUIRE(rig_init(&r, &cfg) == 0);
	cap_clear(&r.cap);

	REQUIRE(ust_connect(r.st, IP_PEER, 443, 40000, r.now, NULL, &c) == 0);
	REQUIRE(r.cap.n == 1);
	CHECK(is_arp(r.cap.frame[0], 1));

	/* The reply releases the held SYN, addressed to the MAC it gave. */
	rig_input(&r, f, build_arp(f, 2, MAC_PEER, IP_PEER, MAC_US, IP_US, MAC_US));
	REQUIRE(r.cap.n == 2);
	REQUIRE(parse_tcp(r.cap.frame[1], r.cap.len[1], &v));
	CHECK_EQ_INT(v.flags, F_SYN);
	CHECK(memcmp(r.cap.frame[1], MAC_PEER, 6) == 0);
	CHECK_EQ_INT(ust_counters(r.st)->arp_resolved, 1);
	ust_abort(c);

	/* After the TTL the entry is gone, and the next frame asks again. */
	rig_advance(&r, r.now + 10000001);
	CHECK_EQ_INT(ust_counters(r.st)->arp_expired, 1);
	cap_clear(&r.cap);
	REQUIRE(ust_connect(r.st, IP_PEER, 443, 40001, r.now, NULL, &c) == 0);
	REQUIRE(r.cap.n == 1);
	CHECK(is_arp(r.cap.frame[0], 1));
	rig_fini(&r);
}

/* A busy entry is asked about before it expires, and never goes away. */
static void
test_arp_entry_in_use_is_refreshed(void)
{
	struct ust_config cfg;
	uint8_t f[2048];
	size_t n;

	rig_config(&cfg);
	cfg.arp_ttl_us = 10000000;
	REQUIRE(rig_init(&r, &cfg) == 0);
	rig_learn_peer(&r);
	n = echo_request(f, 8);

	rig_advance(&r, r.now + 5000000);
	cap_clear(&r.cap);
	rig_input(&r, f, n);
	CHECK_EQ_INT(r.cap.n, 1); /* far from expiry: only the reply */

	rig_advance(&r, r.now + 4000000);
	cap_clear(&r.cap);
	rig_input(&r, f, n);
	REQUIRE(r.cap.n == 2);
	CHECK(r.cap.frame[0][13] == 0x00); /* the reply went out at once */
	CHECK(is_arp(r.cap.frame[1], 1));
	CHECK_EQ_INT(arp_tpa(r.cap.frame[1]), IP_PEER);

	rig_input(&r, f, build_arp(f, 2, MAC_PEER, IP_PEER, MAC_US, IP_US, MAC_US));
	rig_advance(&r, r.now + 5000000);
	CHECK_EQ_INT(ust_counters(r.st)->arp_expired, 0);
	rig_fini(&r);
}

static void
test_routing_through_gateway(void)
{
	struct ust_config cfg;
	struct ust_conn *c = NULL;

	REQUIRE(rig_init(&r, NULL) == 0);
	cap_clear(&r.cap);
	REQUIRE(ust_connect(r.st, IP4(192, 0, 2, 10), 443, 0, r.now, NULL, &c) == 0);
	REQUIRE(r.cap.n == 1);
	CHECK_EQ_INT(arp_tpa(r.cap.frame[0]), IP_GW);
	rig_fini(&r);

	rig_config(&cfg);
	cfg.gateway = 0;
	REQUIRE(rig_init(&r, &cfg) == 0);
	CHECK_EQ_INT(ust_connect(r.st, IP4(192, 0, 2, 10), 443, 0, r.now, NULL, &c), -ENETUNREACH);
	rig_fini(&r);
}

int
main(void)
{
	RUN(test_announce_at_start);
	RUN(test_arp_request_for_us_is_answered);
	RUN(test_arp_malformed_and_not_us);
	RUN(test_ethernet_drops);
	RUN(test_icmp_echo_reply);
	RUN(test_ipv4_header_checks);
	RUN(test_fragments_dropped_and_counted);
	RUN(test_ipv4_addresses_and_protocols);
	RUN(test_rx_checksum_offload_flags);
	RUN(test_tx_checksum_offload);
	RUN(test_output_waits_for_arp_then_retries_then_fails);
	RUN(test_arp_resolves_held_frame_and_expires);
	RUN(test_arp_entry_in_use_is_refreshed);
	RUN(test_routing_through_gateway);
	return check_done();
}
