/*
 * Test helpers for the ust stack; see ustest.h.
 */
#include "ustest.h"

#include <string.h>

const uint8_t MAC_US[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
const uint8_t MAC_PEER[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
const uint8_t MAC_GW[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0xfe};

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void
put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

int
cap_tx(void *arg, const void *frame, size_t len, unsigned tx_flags)
{
	struct cap *c = arg;

	if (c->n == CAP_FRAMES || len > CAP_BYTES)
		return -1;
	memcpy(c->frame[c->n], frame, len);
	c->len[c->n] = len;
	c->flags[c->n] = tx_flags;
	c->n++;
	return 0;
}

void
cap_clear(struct cap *c)
{
	c->n = 0;
}

static void
parse_opts(const uint8_t *p, size_t n, struct tcpv *v)
{
	size_t i = 0;

	while (i < n && p[i] != 0) {
		if (p[i] == 1) {
			i++;
			continue;
		}
		if (i + 1 >= n || p[i + 1] < 2)
			return;
		if (p[i] == 2) {
			v->mss_ok = true;
			v->mss = get16(p + i + 2);
		} else if (p[i] == 3) {
			v->ws_ok = true;
			v->ws = p[i + 2];
		} else if (p[i] == 8) {
			v->ts_ok = true;
			v->tsval = get32(p + i + 2);
			v->tsecr = get32(p + i + 6);
		}
		i += p[i + 1];
	}
}

bool
parse_tcp(const uint8_t *f, size_t len, struct tcpv *v)
{
	const uint8_t *ip = f + 14, *t;
	size_t ihl, total, thl;

	memset(v, 0, sizeof(*v));
	if (len < 54 || get16(f + 12) != 0x0800 || ip[9] != 6)
		return false;

	ihl = (size_t)(ip[0] & 15) * 4;
	total = get16(ip + 2);
	t = ip + ihl;
	thl = (size_t)(t[12] >> 4) * 4;
	v->src = get32(ip + 12);
	v->dst = get32(ip + 16);
	v->ip_csum_ok = ust_csum_fold(ust_csum_add(0, ip, ihl)) == 0;
	v->tcp_csum_ok = ust_csum_fold(ust_csum_add(
				 ust_csum_pseudo(v->src, v->dst, 6, (uint16_t)(total - ihl)), t,
				 total - ihl)) == 0;
	v->sport = get16(t);
	v->dport = get16(t + 2);
	v->seq = get32(t + 4);
	v->ack = get32(t + 8);
	v->flags = t[13];
	v->wnd = get16(t + 14);
	v->data = t + thl;
	v->len = total - ihl - thl;
	parse_opts(t + 20, thl - 20, v);
	return true;
}

bool
last_tcp(const struct cap *c, struct tcpv *v)
{
	for (int i = c->n - 1; i >= 0; i--)
		if (parse_tcp(c->frame[i], c->len[i], v))
			return true;
	return false;
}

int
count_tcp_flags(const struct cap *c, uint8_t flags)
{
	struct tcpv v;
	int n = 0;

	for (int i = 0; i < c->n; i++)
		if (parse_tcp(c->frame[i], c->len[i], &v) && v.flags == flags)
			n++;
	return n;
}

size_t
build_ip(uint8_t *f, uint32_t src, uint32_t dst, uint8_t proto, const void *payload, size_t len)
{
	uint8_t *ip = f + 14;

	memcpy(f, MAC_US, 6);
	memcpy(f + 6, MAC_PEER, 6);
	put16(f + 12, 0x0800);

	memset(ip, 0, 20);
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)(20 + len));
	put16(ip + 4, 0x1234);
	ip[8] = 64;
	ip[9] = proto;
	put32(ip + 12, src);
	put32(ip + 16, dst);
	put16(ip + 10, ust_csum_fold(ust_csum_add(0, ip, 20)));
	memmove(ip + 20, payload, len);
	return 14 + 20 + len;
}

size_t
build_tcp(uint8_t *f, const struct tcpb *b)
{
	uint8_t seg[2048];
	size_t hlen = 20 + b->optlen;

	memset(seg, 0, 20);
	put16(seg, b->sport);
	put16(seg + 2, b->dport);
	put32(seg + 4, b->seq);
	put32(seg + 8, b->ack);
	seg[12] = (uint8_t)((hlen / 4) << 4);
	seg[13] = b->flags;
	put16(seg + 14, b->wnd);
	if (b->optlen)
		memcpy(seg + 20, b->opts, b->optlen);
	if (b->len)
		memcpy(seg + hlen, b->data, b->len);
	put16(seg + 16, ust_csum_fold(ust_csum_add(
				ust_csum_pseudo(b->src, b->dst, 6, (uint16_t)(hlen + b->len)), seg,
				hlen + b->len)));
	return build_ip(f, b->src, b->dst, 6, seg, hlen + b->len);
}

void
fix_tcp_csum(uint8_t *f)
{
	uint8_t *ip = f + 14, *t = ip + 20;
	uint16_t len = (uint16_t)(get16(ip + 2) - 20);

	put16(t + 16, 0);
	put16(t + 16, ust_csum_fold(ust_csum_add(
			      ust_csum_pseudo(get32(ip + 12), get32(ip + 16), 6, len), t, len)));
}

size_t
build_arp(uint8_t *f, uint16_t op, const uint8_t *sha, uint32_t spa, const uint8_t *tha,
	  uint32_t tpa, const uint8_t *eth_dst)
{
	uint8_t *a = f + 14;

	memcpy(f, eth_dst, 6);
	memcpy(f + 6, sha, 6);
	put16(f + 12, 0x0806);
	put16(a, 1);
	put16(a + 2, 0x0800);
	a[4] = 6;
	a[5] = 4;
	put16(a + 6, op);
	memcpy(a + 8, sha, 6);
	put32(a + 14, spa);
	memcpy(a + 18, tha, 6);
	put32(a + 24, tpa);
	return 42;
}

size_t
opts_ts(uint8_t *p, uint32_t tsval, uint32_t tsecr)
{
	p[0] = 1;
	p[1] = 1;
	p[2] = 8;
	p[3] = 10;
	put32(p + 4, tsval);
	put32(p + 8, tsecr);
	return 12;
}

size_t
opts_syn(uint8_t *p, uint16_t mss, int ws, bool ts, uint32_t tsval, uint32_t tsecr)
{
	size_t n = 0;

	p[n++] = 2;
	p[n++] = 4;
	put16(p + n, mss);
	n += 2;
	if (ws >= 0) {
		p[n++] = 1;
		p[n++] = 3;
		p[n++] = 3;
		p[n++] = (uint8_t)ws;
	}
	if (ts)
		n += opts_ts(p + n, tsval, tsecr);
	return n;
}

/* --- The recording application --- */

static void
on_accept(void *arg, struct ust_listener *l, struct ust_conn *conn)
{
	struct app *a = &((struct rig *)arg)->app;

	a->accepted++;
	a->conn = conn;
	a->listener = l;
}

static void
on_connected(void *arg, struct ust_conn *conn, int err)
{
	struct app *a = &((struct rig *)arg)->app;

	a->connected++;
	a->connect_err = err;
	if (err)
		a->conn = NULL;
}

static void
run_hook(struct app *a, struct ust_conn *conn)
{
	if (++a->depth > a->max_depth)
		a->max_depth = a->depth;
	if (a->hook)
		a->hook(conn);
	a->depth--;
}

static void
on_readable(void *arg, struct ust_conn *conn)
{
	struct app *a = &((struct rig *)arg)->app;

	a->readable++;
	run_hook(a, conn);
}

static void
on_writable(void *arg, struct ust_conn *conn)
{
	struct app *a = &((struct rig *)arg)->app;

	a->writable++;
	run_hook(a, conn);
}

static void
on_closed(void *arg, struct ust_conn *conn, enum ust_close_reason reason)
{
	struct app *a = &((struct rig *)arg)->app;

	a->closed++;
	a->reason = reason;
	if (a->conn == conn)
		a->conn = NULL;
}

static int
rig_tx(void *arg, const void *frame, size_t len, unsigned tx_flags)
{
	return cap_tx(&((struct rig *)arg)->cap, frame, len, tx_flags);
}

void
rig_ops(struct ust_ops *ops, struct rig *r)
{
	memset(ops, 0, sizeof(*ops));
	ops->arg = r;
	ops->tx = rig_tx;
	ops->on_accept = on_accept;
	ops->on_connected = on_connected;
	ops->on_readable = on_readable;
	ops->on_writable = on_writable;
	ops->on_closed = on_closed;
}

void
rig_config(struct ust_config *cfg)
{
	ust_config_defaults(cfg);
	memcpy(cfg->mac, MAC_US, 6);
	cfg->ipv4 = IP_US;
	cfg->prefix_len = 24;
	cfg->gateway = IP_GW;
	cfg->secret[0] = 0x0123456789abcdefULL;
	cfg->secret[1] = 0xfedcba9876543210ULL;
	cfg->max_conns = 64;
	cfg->syn_backlog = 8;
	cfg->time_wait_max = 16;
	cfg->sndbuf = 16384;
	cfg->rcvbuf = 16384;
}

int
rig_init(struct rig *r, const struct ust_config *cfg)
{
	struct ust_config def;
	struct ust_ops ops;

	memset(r, 0, sizeof(*r));
	if (!cfg) {
		rig_config(&def);
		cfg = &def;
	}
	r->now = 1000000;
	rig_ops(&ops, r);
	return ust_stack_create(cfg, &ops, &r->st);
}

void
rig_fini(struct rig *r)
{
	ust_stack_destroy(r->st);
	r->st = NULL;
}

void
rig_input(struct rig *r, const uint8_t *frame, size_t len)
{
	ust_input(r->st, frame, len, 0, r->now);
}

void
rig_tcp(struct rig *r, const struct tcpb *b)
{
	uint8_t f[2048];

	rig_input(r, f, build_tcp(f, b));
}

void
rig_learn_peer(struct rig *r)
{
	uint8_t f[64];
	size_t n = build_arp(f, 1, MAC_PEER, IP_PEER, (const uint8_t[6]){0}, IP_US, MAC_US);

	rig_input(r, f, n);
}

void
rig_advance(struct rig *r, uint64_t t)
{
	r->now = t;
	ust_timers(r->st, t);
}
