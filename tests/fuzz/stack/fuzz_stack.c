/*
 * Fuzz the stack's packet input path. The input is a script of frames:
 *
 *	[ctl:1][len:2, big endian][frame:len] ...
 *
 * ctl asks the harness to fix up what a fuzzer cannot guess, so that deep
 * TCP states are reachable: bit 0 fixes the IPv4 length and checksum,
 * bit 1 the TCP checksum, bit 2 sets the TCP ACK field to acknowledge the
 * stack's last segment (completing handshakes), bit 3 then calls
 * ust_shutdown and bit 4 ust_close on the latest connection, and bits 5-7
 * advance the clock by that many 100 ms ticks and run the timers.
 *
 * The application echoes what it reads. The oracle: no crash, no
 * sanitizer report, and every frame the stack sends is well formed, with
 * checksums that verify, within the MTU, and the tables within bounds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ust.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define OUR_IP  0x0a000001
#define PEER_IP 0x0a000002

static const uint8_t our_mac[6] = {2, 0, 0, 0, 0, 1};
static const uint8_t peer_mac[6] = {2, 0, 0, 0, 0, 2};

struct harness {
	struct ust_stack *st;
	struct ust_conn *latest;
	uint64_t now;
	uint32_t last_seq_end; /* of the stack's last TCP segment */
};

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void
check_tcp(struct harness *h, const uint8_t *ip, size_t ihl, size_t total)
{
	const uint8_t *t = ip + ihl;
	size_t seg = total - ihl, thl;
	uint32_t sum;

	if (seg < 20 || (thl = (size_t)(t[12] >> 4) * 4) < 20 || thl > seg)
		abort();
	sum = ust_csum_pseudo(get32(ip + 12), get32(ip + 16), 6, (uint16_t)seg);
	if (ust_csum_fold(ust_csum_add(sum, t, seg)) != 0)
		abort();
	h->last_seq_end = get32(t + 4) + (uint32_t)(seg - thl) + !!(t[13] & 0x03);
}

/* Everything we send must be a frame a real NIC and peer would accept. */
static int
on_tx(void *arg, const void *frame, size_t len, unsigned tx_flags)
{
	struct harness *h = arg;
	const uint8_t *f = frame, *ip = f + 14;
	size_t ihl, total;

	if (len < 42 || len > 1514 || tx_flags != 0 || memcmp(f + 6, our_mac, 6) != 0)
		abort();
	if (get16(f + 12) == 0x0806)
		return 0;
	if (get16(f + 12) != 0x0800 || (ip[0] >> 4) != 4)
		abort();

	ihl = (size_t)(ip[0] & 15) * 4;
	total = get16(ip + 2);
	if (ihl != 20 || total < ihl || 14 + total != len)
		abort();
	if (ust_csum_fold(ust_csum_add(0, ip, ihl)) != 0 || get32(ip + 12) != OUR_IP)
		abort();
	if (ip[9] == 6)
		check_tcp(h, ip, ihl, total);
	else if (ip[9] == 1 && ust_csum_fold(ust_csum_add(0, ip + ihl, total - ihl)) != 0)
		abort();
	return 0;
}

static void
on_accept(void *arg, struct ust_listener *l, struct ust_conn *c)
{
	((struct harness *)arg)->latest = c;
}

static void
on_connected(void *arg, struct ust_conn *c, int err)
{
	struct harness *h = arg;

	if (err && h->latest == c)
		h->latest = NULL;
}

static void
on_readable(void *arg, struct ust_conn *c)
{
	uint8_t buf[2048];
	long n;

	while ((n = ust_recv(c, buf, sizeof(buf))) > 0)
		ust_send(c, buf, (size_t)n);
}

static void
on_closed(void *arg, struct ust_conn *c, enum ust_close_reason reason)
{
	struct harness *h = arg;

	if (h->latest == c)
		h->latest = NULL;
}

/* Make the IPv4 and TCP headers of f consistent, as ctl asks. */
static void
fix_up(struct harness *h, uint8_t *f, size_t len, uint8_t ctl)
{
	uint8_t *ip = f + 14, *t;
	size_t ihl;

	if (len < 34 || get16(f + 12) != 0x0800)
		return;
	ihl = (size_t)(ip[0] & 15) * 4;
	if (ihl < 20 || 14 + ihl > len)
		return;

	if (ctl & 1) {
		put16(ip + 2, (uint16_t)(len - 14));
		put16(ip + 10, 0);
		put16(ip + 10, ust_csum_fold(ust_csum_add(0, ip, ihl)));
	}
	t = ip + ihl;
	if (ip[9] != 6 || 14 + ihl + 20 > len)
		return;
	if (ctl & 4) {
		t[8] = (uint8_t)(h->last_seq_end >> 24);
		t[9] = (uint8_t)(h->last_seq_end >> 16);
		t[10] = (uint8_t)(h->last_seq_end >> 8);
		t[11] = (uint8_t)h->last_seq_end;
	}
	if (ctl & 2) {
		size_t seg = len - 14 - ihl;
		uint32_t sum = ust_csum_pseudo(get32(ip + 12), get32(ip + 16), 6, (uint16_t)seg);

		put16(t + 16, 0);
		put16(t + 16, ust_csum_fold(ust_csum_add(sum, t, seg)));
	}
}

static void
check_bounds(const struct ust_stack *st)
{
	const struct ust_counters *c = ust_counters(st);

	if (c->tcp_conns > 16 || c->tcp_time_wait > 8)
		abort();
}

static int
setup(struct harness *h)
{
	struct ust_config cfg;
	struct ust_listener *l;
	struct ust_conn *c;
	struct ust_ops ops = {
		.arg = h,
		.tx = on_tx,
		.on_accept = on_accept,
		.on_connected = on_connected,
		.on_readable = on_readable,
		.on_closed = on_closed,
	};
	uint8_t arp[42] = {0};

	ust_config_defaults(&cfg);
	memcpy(cfg.mac, our_mac, 6);
	cfg.ipv4 = OUR_IP;
	cfg.gateway = 0x0a0000fe;
	cfg.secret[0] = 1;
	cfg.max_conns = 16;
	cfg.syn_backlog = 2;
	cfg.time_wait_max = 8;
	cfg.sndbuf = 4096;
	cfg.rcvbuf = 4096;
	memset(h, 0, sizeof(*h));
	h->now = 1000000;
	if (ust_stack_create(&cfg, &ops, &h->st) != 0)
		return -1;

	/* The peer announces itself, so replies need no ARP round. */
	memcpy(arp, our_mac, 6);
	memcpy(arp + 6, peer_mac, 6);
	memcpy(arp + 12, "\x08\x06\x00\x01\x08\x00\x06\x04\x00\x01", 10);
	memcpy(arp + 22, peer_mac, 6);
	memcpy(arp + 28, "\x0a\x00\x00\x02", 4);
	memcpy(arp + 38, "\x0a\x00\x00\x01", 4);
	ust_input(h->st, arp, sizeof(arp), 0, h->now);

	ust_listen(h->st, 80, NULL, &l);
	if (ust_connect(h->st, PEER_IP, 443, 40000, h->now, NULL, &c) == 0)
		h->latest = c;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t frame[65536 + 64];
	struct harness h;

	if (setup(&h) != 0)
		abort();

	while (size >= 3) {
		uint8_t ctl = data[0];
		size_t len = get16(data + 1);

		data += 3;
		size -= 3;
		if (len > size)
			len = size;

		/* A copy: the harness edits it, and the stack must not keep it. */
		memcpy(frame, data, len);
		fix_up(&h, frame, len, ctl);
		ust_input(h.st, frame, len, 0, h.now);
		data += len;
		size -= len;

		if ((ctl & 8) && h.latest)
			ust_shutdown(h.latest);
		if ((ctl & 16) && h.latest) {
			ust_close(h.latest);
			h.latest = NULL;
		}
		if (ctl >> 5) {
			h.now += (uint64_t)(ctl >> 5) * 100000;
			ust_timers(h.st, h.now);
		}
		check_bounds(h.st);
	}

	/* Let every timer run out: the stack must wind itself down cleanly. */
	for (int i = 0; i < 64 && ust_next_timer(h.st) != UINT64_MAX; i++) {
		h.now = ust_next_timer(h.st) > h.now ? ust_next_timer(h.st) : h.now + 1;
		ust_timers(h.st, h.now);
		check_bounds(h.st);
	}
	ust_stack_destroy(h.st);
	return 0;
}
