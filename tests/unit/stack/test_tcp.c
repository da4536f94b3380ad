/*
 * The TCP state machine driven by crafted segments from a scripted peer:
 * opens, options, data in and out of order, every close, RST and SYN
 * handling, TIME_WAIT, SYN cookies, retransmission with Karn's rule, fast
 * retransmit and NewReno, zero windows, and malformed segments.
 */
#include <errno.h>
#include <stdlib.h>

#include "check.h"
#include "ustest.h"

static struct rig r;

/* The scripted peer at IP_PEER:port, talking to our port us. */
struct peer {
	uint16_t port, us;
	uint32_t seq, ack;
	uint32_t tsval, tsecr;
	bool ts;
	uint16_t wnd;
};

static uint64_t
drops(enum ust_drop why)
{
	return ust_counters(r.st)->drops[why];
}

static const struct ust_counters *
ctr(void)
{
	return ust_counters(r.st);
}

static void
psend_at(struct peer *p, uint32_t seq, uint8_t flags, const void *data, size_t len)
{
	uint8_t opts[40];
	size_t ol = p->ts ? opts_ts(opts, p->tsval, p->tsecr) : 0;

	rig_tcp(&r, &(struct tcpb){.src = IP_PEER,
				   .dst = IP_US,
				   .sport = p->port,
				   .dport = p->us,
				   .seq = seq,
				   .ack = p->ack,
				   .flags = flags,
				   .wnd = p->wnd,
				   .opts = opts,
				   .optlen = ol,
				   .data = data,
				   .len = len});
	p->tsval++;
}

/* Send at the peer's next sequence number and advance it. */
static void
psend(struct peer *p, uint8_t flags, const void *data, size_t len)
{
	psend_at(p, p->seq, flags, data, len);
	p->seq += (uint32_t)len + !!(flags & (F_SYN | F_FIN));
}

/* The stack's last segment; the peer takes its timestamp to echo. */
static bool
precv(struct peer *p, struct tcpv *v)
{
	if (!last_tcp(&r.cap, v))
		return false;
	if (v->ts_ok)
		p->tsecr = v->tsval;
	return true;
}

static void
setup(const struct ust_config *cfg)
{
	struct ust_listener *l;

	if (rig_init(&r, cfg) != 0)
		abort();
	rig_learn_peer(&r);
	if (ust_listen(r.st, 80, NULL, &l) != 0)
		abort();
	cap_clear(&r.cap);
}

static void
peer_init(struct peer *p, uint16_t port)
{
	memset(p, 0, sizeof(*p));
	p->port = port;
	p->us = 80;
	p->seq = 1000000;
	p->tsval = 5000;
	p->ts = true;
	p->wnd = 65535;
}

static void
send_syn(uint16_t port, uint32_t seq, uint32_t tsval, int ws)
{
	uint8_t o[40];
	size_t ol = opts_syn(o, 1460, ws, true, tsval, 0);

	rig_tcp(&r, &(struct tcpb){.src = IP_PEER,
				   .dst = IP_US,
				   .sport = port,
				   .dport = 80,
				   .seq = seq,
				   .flags = F_SYN,
				   .wnd = 65535,
				   .opts = o,
				   .optlen = ol});
}

/* SYN (window scale ws, or none if ws < 0), SYN-ACK, ACK: the accepted conn. */
static struct ust_conn *
open_passive(struct peer *p, int ws, struct tcpv *synack)
{
	uint8_t o[40];
	size_t ol = opts_syn(o, 1460, ws, p->ts, p->tsval, 0);
	struct tcpv v;

	cap_clear(&r.cap);
	rig_tcp(&r, &(struct tcpb){.src = IP_PEER,
				   .dst = IP_US,
				   .sport = p->port,
				   .dport = 80,
				   .seq = p->seq,
				   .flags = F_SYN,
				   .wnd = p->wnd,
				   .opts = o,
				   .optlen = ol});
	p->seq++;
	p->tsval++;
	if (!precv(p, &v) || v.flags != (F_SYN | F_ACK))
		return NULL;
	if (synack)
		*synack = v;
	p->ack = v.seq + 1;
	psend(p, F_ACK, NULL, 0);
	return r.app.conn;
}

static void
test_rst_for_segments_of_unknown_connections(void)
{
	struct tcpv v;

	setup(NULL);
	rig_tcp(&r, &(struct tcpb){.src = IP_PEER,
				   .dst = IP_US,
				   .sport = 1234,
				   .dport = 81,
				   .seq = 77,
				   .flags = F_SYN,
				   .wnd = 100});
	REQUIRE(precv(&(struct peer){0}, &v));
	CHECK_EQ_INT(v.flags, F_RST | F_ACK);
	CHECK_EQ_INT(v.seq, 0);
	CHECK_EQ_INT(v.ack, 78);
	CHECK_EQ_INT(v.sport, 81);
	CHECK_EQ_INT(v.dport, 1234);
	CHECK(v.tcp_csum_ok && v.ip_csum_ok);

	rig_tcp(&r, &(struct tcpb){.src = IP_PEER,
				   .dst = IP_US,
				   .sport = 1234,
				   .dport = 81,
				   .seq = 77,
				   .ack = 555,
				   .flags = F_ACK,
				   .wnd = 100,
				   .data = "xyz",
				   .len = 3});
	REQUIRE(precv(&(struct peer){0}, &v));
	CHECK_EQ_INT(v.flags, F_RST);
	CHECK_EQ_INT(v.seq, 555);

	/* Never an RST for an RST. */
	rig_tcp(&r, &(struct tcpb){.src = IP_PEER,
				   .dst = IP_US,
				   .sport = 1234,
				   .dport = 81,
				   .seq = 77,
				   .flags = F_RST,
				   .wnd = 100});
	CHECK_EQ_INT(r.cap.n, 2);
	CHECK_EQ_INT(drops(UST_DROP_TCP_NO_CONN), 3);
	CHECK_EQ_INT(ctr()->tcp_resets_tx, 2);
	rig_fini(&r);
}

static void
test_passive_open_negotiates_mss_wscale_timestamps(void)
{
	struct ust_config cfg;
	struct peer p;
	struct tcpv sa;
	struct ust_conn *c;
	struct ust_conn_info i;

	rig_config(&cfg);
	cfg.rcvbuf = 256 * 1024;
	setup(&cfg);
	peer_init(&p, 2000);
	c = open_passive(&p, 7, &sa);
	REQUIRE(c != NULL);

	CHECK(sa.mss_ok && sa.mss == 1460);
	CHECK(sa.ws_ok && sa.ws == 3);
	CHECK(sa.ts_ok && sa.tsecr == 5000); /* the SYN's TSval, echoed */
	CHECK_EQ_INT(sa.ack, 1000001);
	CHECK_EQ_INT(sa.wnd, 65535); /* unscaled in a SYN */

	ust_conn_info(c, &i);
	CHECK_EQ_INT(i.state, UST_TCP_ESTABLISHED);
	CHECK_EQ_INT(r.app.accepted, 1);
	CHECK(i.wscale_ok && i.ts_ok);
	CHECK_EQ_INT(i.snd_wscale, 7);
	CHECK_EQ_INT(i.rcv_wscale, 3);
	CHECK_EQ_INT(i.snd_wnd, 65535u << 7);
	CHECK_EQ_INT(i.mss, 1448);
	CHECK_EQ_INT(i.ts_recent, 5001);
	CHECK_EQ_INT(ctr()->tcp_passive_opens, 1);
	CHECK_EQ_INT(ctr()->tcp_established, 1);
	CHECK_EQ_INT(ctr()->tcp_conns, 1);
	rig_fini(&r);
}

static void
test_passive_open_without_options(void)
{
	struct peer p;
	struct tcpv sa;
	struct ust_conn_info i;
	struct ust_conn *c;

	setup(NULL);
	peer_init(&p, 2001);
	p.ts = false;
	cap_clear(&r.cap);
	rig_tcp(&r, &(struct tcpb){.src = IP_PEER,
				   .dst = IP_US,
				   .sport = 2001,
				   .dport = 80,
				   .seq = p.seq++,
				   .flags = F_SYN,
				   .wnd = 8000});
	REQUIRE(precv(&p, &sa));
	CHECK(sa.mss_ok && !sa.ws_ok && !sa.ts_ok);
	p.ack = sa.seq + 1;
	psend(&p, F_ACK, NULL, 0);
	c = r.app.conn;
	REQUIRE(c != NULL);
	ust_conn_info(c, &i);
	CHECK(!i.wscale_ok && !i.ts_ok);
	CHECK_EQ_INT(i.mss, 536);
	CHECK_EQ_INT(i.snd_wnd, 65535); /* no scaling: the raw field */
	rig_fini(&r);
}

static void
test_in_order_data_and_delayed_ack(void)
{
	struct peer p;
	struct tcpv v;
	struct ust_conn *c;
	char buf[64];

	setup(NULL);
	peer_init(&p, 2002);
	REQUIRE((c = open_passive(&p, 0, NULL)) != NULL);
	cap_clear(&r.cap);

	psend(&p, F_ACK | F_PSH, "hello", 5);
	CHECK_EQ_INT(r.cap.n, 0); /* the ACK waits */
	CHECK_EQ_INT(r.app.readable, 1);
	CHECK_EQ_INT(ust_recv(c, buf, sizeof(buf)), 5);
	CHECK(memcmp(buf, "hello", 5) == 0);
	CHECK_EQ_INT(ust_recv(c, buf, sizeof(buf)), -EAGAIN);

	rig_advance(&r, r.now + 40000);
	REQUIRE(precv(&p, &v));
	CHECK_EQ_INT(v.flags, F_ACK);
	CHECK_EQ_INT(v.ack, p.seq);
	CHECK_EQ_INT(ctr()->tcp_delayed_acks, 1);

	/* Every second segment is acknowledged at once. */
	cap_clear(&r.cap);
	psend(&p, F_ACK, "abc", 3);
	psend(&p, F_ACK, "def", 3);
	REQUIRE(precv(&p, &v));
	CHECK_EQ_INT(r.cap.n, 1);
	CHECK_EQ_INT(v.ack, p.seq);
	CHECK_EQ_INT(ctr()->tcp_delayed_acks, 1);
	rig_fini(&r);
}

static void
test_reordering_duplicates_and_overlap(void)
{
	struct peer p;
	struct tcpv v;
	struct ust_conn *c;
	char buf[64];
	uint32_t base;

	setup(NULL);
	peer_init(&p, 2003);
	REQUIRE((c = open_passive(&p, 0, NULL)) != NULL);
	base = p.seq;
	cap_clear(&r.cap);

	/* Bytes 4..7 first: a duplicate ACK right away, nothing readable. */
	psend_at(&p, base + 4, F_ACK, "EFGH", 4);
	REQUIRE(precv(&p, &v));
	CHECK_EQ_INT(v.ack, base);
	CHECK_EQ_INT(ust_recv(c, buf, sizeof(buf)), -EAGAIN);

	/* 8..11, then the hole 0..3 fills: one ACK for all twelve. */
	psend_at(&p, base + 8, F_ACK, "IJKL", 4);
	psend_at(&p, base, F_ACK, "ABCD", 4);
	REQUIRE(precv(&p, &v));
	CHECK_EQ_INT(v.ack, base + 12);
	CHECK_EQ_INT(ust_recv(c, buf, sizeof(buf)), 12);
	CHECK(memcmp(buf, "ABCDEFGHIJKL", 12) == 0);

	/* A duplicate is acknowledged and not delivered twice. */
	cap_clear(&r.cap);
	psend_at(&p, base + 8, F_ACK, "IJKL", 4);
	REQUIRE(precv(&p, &v));
	CHECK_EQ_INT(v.ack, base + 12);
	CHECK_EQ_INT(ust_recv(c, buf, sizeof(buf)), -EAGAIN);

	/* Overlap: only the new part counts. */
	psend_at(&p, base + 10, F_ACK, "KLMN", 4);
	CHECK_EQ_INT(ust_recv(c, buf, sizeof(buf)), 2);
	CHECK(memcmp(buf, "MN", 2) == 0);
	rig_fini(&r);
}

static void
test_malformed_segments_are_dropped_and_counted(void)
{
	struct peer p;
	struct ust_conn *c;
	uint8_t f[256], opts[8] = {2, 4, 5, 0xb4, 8, 10, 0, 0};
	size_t n;
	char buf[16];

	setup(NULL);
	peer_init(&p, 2004);
	REQUIRE((c = open_passive(&p, 0, NULL)) != NULL);
	cap_clear(&r.cap);

	n = build_tcp(f, &(struct tcpb){.src = IP_PEER,
					.dst = IP_US,
					.sport = 2004,
					.dport = 80,
					.seq = p.seq,
					.ack = p.ack,
					.flags = F_ACK,
					.wnd = 1000,
					.data = "data",
					.len = 4});
	f[n - 1] ^= 0x55; /* payload corrupted in flight */
	rig_input(&r, f, n);
	CHECK_EQ_INT(drops(UST_DROP_TCP_CSUM), 1);

	/* A NIC that says the checksum was bad is believed. */
	f[n - 1] ^= 0x55;
	ust_input(r.st, f, n, UST_RX_L4_CSUM_BAD, r.now);
	CHECK_EQ_INT(drops(UST_DROP_TCP_CSUM), 2);

	/* An IP total length that cuts the TCP header short. */
	n = build_ip(f, IP_PEER, IP_US, 6, "\x07\xd4\x00\x50\x00\x00", 6);
	rig_input(&r, f, n);
	CHECK_EQ_INT(drops(UST_DROP_TCP_SHORT), 1);

	/* A data offset below 5 words, and one past the segment. */
	n = build_tcp(f, &(struct tcpb){.src = IP_PEER,
					.dst = IP_US,
					.sport = 2004,
					.dport = 80,
					.seq = p.seq,
					.flags = F_ACK});
	f[14 + 20 + 12] = 0x40;
	fix_tcp_csum(f);
	rig_input(&r, f, n);
	CHECK_EQ_INT(drops(UST_DROP_TCP_HDRLEN), 1);
	f[14 + 20 + 12] = 0xf0;
	fix_tcp_csum(f);
	rig_input(&r, f, n);
	CHECK_EQ_INT(drops(UST_DROP_TCP_SHORT), 2);
	CHECK_EQ_INT(drops(UST_DROP_TCP_CSUM), 2);

	/* An option whose length runs past the header. */
	n = build_tcp(f, &(struct tcpb){.src = IP_PEER,
					.dst = IP_US,
					.sport = 2004,
					.dport = 80,
					.seq = p.seq,
					.ack = p.ack,
					.flags = F_ACK,
					.opts = opts,
					.optlen = 8});
	rig_input(&r, f, n);
	CHECK_EQ_INT(drops(UST_DROP_TCP_OPTIONS), 1);

	/* SYN with FIN, and no flags at all. */
	rig_tcp(&r, &(struct tcpb){.src = IP_PEER,
				   .dst = IP_US,
				   .sport = 2004,
				   .dport = 80,
				   .seq = p.seq,
				   .flags = F_SYN | F_FIN});
	rig_tcp(&r, &(struct tcpb){.src = IP_PEER,
				   .dst = IP_US,
				   .sport = 2004,
				   .dport = 80,
				   .seq = p.seq,
				   .flags = 0});
	CHECK_EQ_INT(drops(UST_DROP_TCP_FLAGS), 2);

	/* None of it touched the connection. */
	CHECK_EQ_INT(ust_recv(c, buf, sizeof(buf)), -EAGAIN);
	CHECK_EQ_INT(r.cap.n, 0);
	psend(&p, F_ACK, "ok", 2);
	CHECK_EQ_INT(ust_recv(c, buf, sizeof(buf)), 2);
	rig_fini(&r);
}

static void
test_paws_drops_old_timestamps(void)
{
	struct peer p;
	struct tcpv v;
	struct ust_conn *c;
	char buf[16];

	setup(NULL);
	peer_init(&p, 2005);
	REQUIRE((c = open_passive(&p, 0, NULL)) != NULL);
	cap_clear(&r.cap);

	p.tsval = 10; /* older than what we hold (5001) */
	psend_at(&p, p.seq, F_ACK, "old", 3);
	CHECK_EQ_INT(drops(UST_DROP_TCP_PAWS), 1);
	CHECK_EQ_INT(ust_recv(c, buf, sizeof(buf)), -EAGAIN);
	REQUIRE(precv(&p, &v)); /* an ACK tells the peer where we are */
	CHECK_EQ_INT(v.ack, p.seq);
	rig_fini(&r);
}

static void
test_rst_in_window_gets_challenge_ack(void)
{
	struct peer p;
	struct tcpv v;
	struct ust_conn *c;

	setup(NULL);
	peer_init(&p, 2006);
	REQUIRE((c = open_passive(&p, 0, NULL)) != NULL);
	cap_clear(&r.cap);

	/* RFC 5961: in the window but not at rcv_nxt: a challenge, no reset. */
	psend_at(&p, p.seq + 100, F_RST, NULL, 0);
	REQUIRE(precv(&p, &v));
	CHECK_EQ_INT(v.flags, F_ACK);
	CHECK_EQ_INT(v.ack, p.seq);
	CHECK_EQ_INT(ctr()->tcp_challenge_acks, 1);
	CHECK_EQ_INT(r.app.closed, 0);

	/* Out of the window altogether: dropped. */
	psend_at(&p, p.seq + 1000000, F_RST, NULL, 0);
	CHECK_EQ_INT(drops(UST_DROP_TCP_OUT_OF_WINDOW), 1);
	CHECK_EQ_INT(r.app.closed, 0);

	/* A SYN on the open connection: challenged too. */
	cap_clear(&r.cap);
	psend_at(&p, p.seq + 5, F_SYN, NULL, 0);
	REQUIRE(precv(&p, &v));
	CHECK_EQ_INT(v.flags, F_ACK);
	CHECK_EQ_INT(ctr()->tcp_challenge_acks, 2);
	CHECK_EQ_INT(r.app.closed, 0);

	/* Exactly at rcv_nxt: the connection is reset. */
	psend_at(&p, p.seq, F_RST, NULL, 0);
	CHECK_EQ_INT(r.app.closed, 1);
	CHECK_EQ_INT(r.app.reason, UST_CLOSE_RESET);
	CHECK_EQ_INT(ctr()->tcp_resets_rx, 1);
	CHECK_EQ_INT(ctr()->tcp_conns, 0);
	rig_fini(&r);
}

static void
test_passive_close(void)
{
	struct peer p;
	struct tcpv v;
	struct ust_conn *c;
	struct ust_conn_info i;
	char buf[16];

	setup(NULL);
	peer_init(&p, 2007);
	REQUIRE((c = open_passive(&p, 0, NULL)) != NULL);
	cap_clear(&r.cap);

	psend(&p, F_ACK | F_FIN, "bye", 3);
	REQUIRE(precv(&p, &v)); /* a FIN is acknowledged at once */
	CHECK_EQ_INT(v.ack, p.seq);
	ust_conn_info(c, &i);
	CHECK_EQ_INT(i.state, UST_TCP_CLOSE_WAIT);
	CHECK_EQ_INT(ust_recv(c, buf, sizeof(buf)), 3);
	CHECK_EQ_INT(ust_recv(c, buf, sizeof(buf)), 0);

	/* We may still send, then close: FIN, LAST_ACK, and gone. */
	cap_clear(&r.cap);
	CHECK_EQ_INT(ust_send(c, "ok", 2), 2);
	ust_close(c);
	CHECK_EQ_INT(r.cap.n, 2); /* the data, then the FIN */
	REQUIRE(precv(&p, &v));
	CHECK_EQ_INT(v.flags, F_ACK | F_FIN);
	p.ack = v.seq + 1;
	CHECK_EQ_INT(ctr()->tcp_conns, 1);
	psend(&p, F_ACK, NULL, 0);
	CHECK_EQ_INT(ctr()->tcp_conns, 0);
	CHECK_EQ_INT(ctr()->tcp_time_wait, 0);
	CHECK_EQ_INT(r.app.closed, 0); /* released: no callback */
	rig_fini(&r);
}

/* SYN_RCVD: an RST ends it quietly; an ACK with a FIN opens and half-closes. */
static void
test_rst_and_fin_during_handshake(void)
{
	struct peer p;
	struct tcpv sa;
	struct ust_conn_info i;

	setup(NULL);
	peer_init(&p, 2019);
	send_syn(2019, p.seq++, p.tsval++, -1);
	REQUIRE(precv(&p, &sa));
	CHECK_EQ_INT(ctr()->tcp_conns, 1);
	psend_at(&p, p.seq, F_RST, NULL, 0);
	CHECK_EQ_INT(ctr()->tcp_conns, 0);
	CHECK_EQ_INT(r.app.accepted + r.app.closed, 0);

	peer_init(&p, 2020);
	send_syn(2020, p.seq++, p.tsval++, -1);
	REQUIRE(precv(&p, &sa));
	p.ack = sa.seq + 1;
	psend(&p, F_ACK | F_FIN, "req", 3);
	REQUIRE(r.app.conn != NULL);
	ust_conn_info(r.app.conn, &i);
	CHECK_EQ_INT(i.state, UST_TCP_CLOSE_WAIT);
	CHECK_EQ_INT(i.rcv_queued, 3);
	CHECK_EQ_INT(r.app.accepted, 1);
	rig_fini(&r);
}

/* Resets in the closing states reach the application as resets. */
static void
test_rst_while_closing(void)
{
	struct peer p;
	struct tcpv v;
	struct ust_conn *c;

	setup(NULL);
	peer_init(&p, 2021);
	REQUIRE((c = open_passive(&p, 0, NULL)) != NULL);
	ust_shutdown(c);
	REQUIRE(precv(&p, &v));
	p.ack = v.seq + 1;
	psend(&p, F_ACK, NULL, 0); /* FIN_WAIT_2 */
	psend_at(&p, p.seq, F_RST, NULL, 0);
	CHECK_EQ_INT(r.app.closed, 1);
	CHECK_EQ_INT(r.app.reason, UST_CLOSE_RESET);
	CHECK_EQ_INT(ctr()->tcp_conns, 0);
	CHECK_EQ_INT(ctr()->tcp_time_wait, 0);

	/* CLOSE_WAIT, and a reader told so by ust_recv. */
	peer_init(&p, 2022);
	REQUIRE((c = open_passive(&p, 0, NULL)) != NULL);
	psend(&p, F_ACK | F_FIN, NULL, 0);
	psend_at(&p, p.seq, F_RST, NULL, 0);
	CHECK_EQ_INT(r.app.closed, 2);
	CHECK_EQ_INT(r.app.reason, UST_CLOSE_RESET);
	rig_fini(&r);
}

/* ESTABLISHED -> FIN_WAIT_1 -> FIN_WAIT_2 -> TIME_WAIT -> gone. */
static void
test_active_close_and_time_wait(void)
{
	struct ust_config cfg;
	struct peer p;
	struct tcpv v;
	struct ust_conn *c;
	struct ust_conn_info i;

	rig_config(&cfg);
	cfg.time_wait_us = 5000000;
	setup(&cfg);
	peer_init(&p, 2008);
	REQUIRE((c = open_passive(&p, 0, NULL)) != NULL);
	cap_clear(&r.cap);

	CHECK_EQ_INT(ust_shutdown(c), 0);
	REQUIRE(precv(&p, &v));
	CHECK_EQ_INT(v.flags, F_ACK | F_FIN);
	ust_conn_info(c, &i);
	CHECK_EQ_INT(i.state, UST_TCP_FIN_WAIT_1);
	CHECK_EQ_INT(ust_send(c, "x", 1), -EPIPE);

	p.ack = v.seq + 1;
	psend(&p, F_ACK, NULL, 0);
	ust_conn_info(c, &i);
	CHECK_EQ_INT(i.state, UST_TCP_FIN_WAIT_2);

	/* Half-closed: the peer still sends; then its FIN. */
	psend(&p, F_ACK, "late", 4);
	CHECK_EQ_INT(r.app.readable, 1);
	cap_clear(&r.cap);
	psend(&p, F_ACK | F_FIN, NULL, 0);
	REQUIRE(precv(&p, &v));
	CHECK_EQ_INT(v.flags, F_ACK);
	CHECK_EQ_INT(v.ack, p.seq);
	CHECK_EQ_INT(r.app.closed, 1);
	CHECK_EQ_INT(r.app.reason, UST_CLOSE_NORMAL);
	CHECK_EQ_INT(ctr()->tcp_time_wait, 1);
	CHECK_EQ_INT(ctr()->tcp_conns, 0);

	/* The peer's FIN again (our ACK was lost): acknowledged again. */
	cap_clear(&r.cap);
	psend_at(&p, p.seq - 1, F_ACK | F_FIN, NULL, 0);
	REQUIRE(precv(&p, &v));
	CHECK_EQ_INT(v.flags, F_ACK);
	CHECK_EQ_INT(v.ack, p.seq);

	/* RFC 1337: an RST does not end TIME_WAIT. */
	psend_at(&p, p.seq, F_RST, NULL, 0);
	CHECK_EQ_INT(ctr()->tcp_time_wait, 1);

	rig_advance(&r, r.now + 5000001);
	CHECK_EQ_INT(ctr()->tcp_time_wait, 0);
	rig_fini(&r);
}

static void
test_simultaneous_close(void)
{
	struct peer p;
	struct tcpv v;
	struct ust_conn *c;
	struct ust_conn_info i;
	uint32_t our_fin;

	setup(NULL);
	peer_init(&p, 2009);
	REQUIRE((c = open_passive(&p, 0, NULL)) != NULL);
	cap_clear(&r.cap);

	ust_shutdown(c);
	REQUIRE(precv(&p, &v));
	our_fin = v.seq;

	/* The peer's FIN crosses ours: it has not seen our FIN yet. */
	psend(&p, F_ACK | F_FIN, NULL, 0);
	ust_conn_info(c, &i);
	CHECK_EQ_INT(i.state, UST_TCP_CLOSING);

	p.ack = our_fin + 1;
	psend(&p, F_ACK, NULL, 0);
	CHECK_EQ_INT(ctr()->tcp_time_wait, 1);
	CHECK_EQ_INT(r.app.closed, 1);
	CHECK_EQ_INT(r.app.reason, UST_CLOSE_NORMAL);
	rig_fini(&r);
}

/* A new SYN with a newer timestamp takes over a tuple in TIME_WAIT. */
static void
test_time_wait_recycled_by_new_syn(void)
{
	struct peer p;
	struct tcpv v;
	struct ust_conn *c;

	setup(NULL);
	peer_init(&p, 2010);
	REQUIRE((c = open_passive(&p, 0, NULL)) != NULL);
	ust_shutdown(c);
	REQUIRE(precv(&p, &v));
	p.ack = v.seq + 1;
	psend(&p, F_ACK | F_FIN, NULL, 0);
	REQUIRE(ctr()->tcp_time_wait == 1);

	p.seq += 100000;
	p.tsval += 1000;
	REQUIRE(open_passive(&p, 0, NULL) != NULL);
	CHECK_EQ_INT(ctr()->tcp_time_wait_recycled, 1);
	CHECK_EQ_INT(ctr()->tcp_time_wait, 0);
	CHECK_EQ_INT(r.app.accepted, 2);
	rig_fini(&r);
}

static void
test_syn_cookies_when_backlog_full(void)
{
	struct peer p;
	struct tcpv sa;
	struct ust_conn_info i;

	setup(NULL); /* syn_backlog 8 */
	for (int k = 0; k < 8; k++)
		send_syn((uint16_t)(3000 + k), 1000, 1, 5);
	CHECK_EQ_INT(ctr()->tcp_conns, 8);
	CHECK_EQ_INT(ctr()->tcp_syn_cookies_tx, 0);

	/* The ninth gets a cookie and no memory. */
	peer_init(&p, 3100);
	p.seq = 424242;
	cap_clear(&r.cap);
	send_syn(3100, p.seq, 77, 5);
	CHECK_EQ_INT(ctr()->tcp_syn_cookies_tx, 1);
	CHECK_EQ_INT(ctr()->tcp_conns, 8);
	REQUIRE(precv(&p, &sa));
	CHECK_EQ_INT(sa.flags, F_SYN | F_ACK);
	CHECK(sa.ws_ok && sa.ts_ok && sa.tsecr == 77);
	CHECK_EQ_INT(sa.tsval & 0x1f, 0x10 | 5); /* the peer's scale rides along */

	/* A wrong cookie is refused with an RST. */
	p.seq++;
	p.ack = sa.seq + 2;
	psend_at(&p, p.seq, F_ACK, NULL, 0);
	CHECK_EQ_INT(drops(UST_DROP_TCP_BAD_COOKIE), 1);
	CHECK_EQ_INT(count_tcp_flags(&r.cap, F_RST), 1);

	/* The right one makes an established connection, data and all. */
	p.ack = sa.seq + 1;
	psend(&p, F_ACK | F_PSH, "GET /", 5);
	CHECK_EQ_INT(ctr()->tcp_syn_cookies_ok, 1);
	REQUIRE(r.app.accepted == 1);
	ust_conn_info(r.app.conn, &i);
	CHECK_EQ_INT(i.state, UST_TCP_ESTABLISHED);
	CHECK_EQ_INT(i.remote_port, 3100);
	CHECK(i.wscale_ok && i.ts_ok);
	CHECK_EQ_INT(i.snd_wscale, 5);
	CHECK_EQ_INT(i.mss, 1460 - 12);
	CHECK_EQ_INT(i.rcv_queued, 5);

	/* Cookies expire: one from three periods ago is refused. */
	cap_clear(&r.cap);
	send_syn(3101, 9999, 80, 5);
	REQUIRE(precv(&p, &sa));
	rig_advance(&r, r.now + 3 * 64 * 1000000ULL);
	rig_tcp(&r, &(struct tcpb){.src = IP_PEER,
				   .dst = IP_US,
				   .sport = 3101,
				   .dport = 80,
				   .seq = 10000,
				   .ack = sa.seq + 1,
				   .flags = F_ACK,
				   .wnd = 100});
	CHECK_EQ_INT(drops(UST_DROP_TCP_BAD_COOKIE), 2);
	rig_fini(&r);
}

static void
test_backlog_full_without_cookies_drops(void)
{
	struct ust_config cfg;

	rig_config(&cfg);
	cfg.syn_cookies = false;
	cfg.syn_backlog = 2;
	setup(&cfg);
	for (int k = 0; k < 3; k++)
		send_syn((uint16_t)(3000 + k), 1000, 1, 5);
	CHECK_EQ_INT(ctr()->tcp_conns, 2);
	CHECK_EQ_INT(drops(UST_DROP_TCP_BACKLOG), 1);
	CHECK_EQ_INT(r.cap.n, 2);
	rig_fini(&r);
}

/* Active open against the scripted peer; returns the connection. */
static struct ust_conn *
open_active(struct peer *p, struct tcpv *syn)
{
	struct ust_conn *c = NULL;
	struct tcpv v;
	uint8_t o[40];
	size_t ol;

	cap_clear(&r.cap);
	if (ust_connect(r.st, IP_PEER, 443, 40000, r.now, NULL, &c) != 0 || !precv(p, &v))
		return NULL;
	if (syn)
		*syn = v;
	p->port = 443;
	p->us = 40000;
	p->ack = v.seq + 1;
	ol = opts_syn(o, 1400, 2, true, p->tsval, v.tsval);
	rig_tcp(&r, &(struct tcpb){.src = IP_PEER,
				   .dst = IP_US,
				   .sport = 443,
				   .dport = 40000,
				   .seq = p->seq,
				   .ack = p->ack,
				   .flags = F_SYN | F_ACK,
				   .wnd = 65535,
				   .opts = o,
				   .optlen = ol});
	p->seq++;
	p->tsval++;
	return r.app.connected == 1 && r.app.connect_err == 0 ? c : NULL;
}

static void
test_active_open(void)
{
	struct peer p;
	struct tcpv syn, v;
	struct ust_conn *c;
	struct ust_conn_info i;

	setup(NULL);
	peer_init(&p, 443);
	REQUIRE((c = open_active(&p, &syn)) != NULL);
	CHECK_EQ_INT(syn.flags, F_SYN);
	CHECK(syn.mss_ok && syn.ws_ok && syn.ts_ok);
	CHECK_EQ_INT(syn.sport, 40000);
	REQUIRE(precv(&p, &v));
	CHECK_EQ_INT(v.flags, F_ACK);
	CHECK_EQ_INT(v.ack, p.seq);
	CHECK_EQ_INT(v.tsecr, p.tsval - 1);
	ust_conn_info(c, &i);
	CHECK_EQ_INT(i.state, UST_TCP_ESTABLISHED);
	CHECK_EQ_INT(i.mss, 1400 - 12);
	CHECK_EQ_INT(i.snd_wscale, 2);
	CHECK_EQ_INT(ctr()->tcp_active_opens, 1);

	/* The same tuple cannot be opened twice. */
	CHECK_EQ_INT(ust_connect(r.st, IP_PEER, 443, 40000, r.now, NULL, &c), -EADDRINUSE);
	rig_fini(&r);
}

static void
test_connect_refused_and_timed_out(void)
{
	struct ust_config cfg;
	struct ust_conn *c = NULL;
	struct tcpv v;
	uint64_t start, sent_at[8];
	int syns = 0;

	setup(NULL);
	REQUIRE(ust_connect(r.st, IP_PEER, 443, 40001, r.now, NULL, &c) == 0);
	REQUIRE(precv(&(struct peer){0}, &v));
	rig_tcp(&r, &(struct tcpb){.src = IP_PEER,
				   .dst = IP_US,
				   .sport = 443,
				   .dport = 40001,
				   .ack = v.seq + 1,
				   .flags = F_RST | F_ACK});
	CHECK_EQ_INT(r.app.connect_err, -ECONNREFUSED);
	CHECK_EQ_INT(ctr()->tcp_conns, 0);
	rig_fini(&r);

	/* Nobody answers: SYNs at 0, 1, 3, 7 s (doubling), then ETIMEDOUT. */
	rig_config(&cfg);
	cfg.syn_retries = 3;
	setup(&cfg);
	start = r.now;
	REQUIRE(ust_connect(r.st, IP_PEER, 443, 40002, r.now, NULL, &c) == 0);
	for (uint64_t t = start; t <= start + 30000000 && r.app.connected == 0; t += 1000) {
		int before = r.cap.n;

		rig_advance(&r, t);
		if (r.cap.n > before && syns < 8)
			sent_at[syns++] = t - start;
	}
	CHECK_EQ_INT(syns, 3);
	CHECK_EQ_INT(count_tcp_flags(&r.cap, F_SYN), 4);
	if (syns == 3) {
		CHECK_EQ_INT(sent_at[0], 1000000);
		CHECK_EQ_INT(sent_at[1], 3000000);
		CHECK_EQ_INT(sent_at[2], 7000000);
	}
	CHECK_EQ_INT(r.app.connect_err, -ETIMEDOUT);
	CHECK_EQ_INT(ctr()->tcp_timeouts, 1);
	rig_fini(&r);
}

/*
 * RFC 6298 5.5 and Karn: each timeout doubles the RTO; an ACK for a
 * retransmitted segment gives no RTT sample and keeps the backed-off RTO;
 * the next fresh segment's ACK gives a sample and resets it.
 */
static void
test_rto_backoff_and_karn(void)
{
	struct peer p;
	struct tcpv v;
	struct ust_conn *c;
	struct ust_conn_info i;
	uint32_t seq;

	setup(NULL);
	peer_init(&p, 2011);
	rig_advance(&r, r.now + 10000);
	REQUIRE((c = open_passive(&p, 0, NULL)) != NULL);
	ust_conn_info(c, &i);
	CHECK_EQ_INT(i.rtt_samples, 1);
	CHECK_EQ_INT(i.rto_us, 200000); /* an instant RTT: the floor */

	cap_clear(&r.cap);
	CHECK_EQ_INT(ust_send(c, "payload", 7), 7);
	REQUIRE(precv(&p, &v));
	seq = v.seq;

	rig_advance(&r, r.now + 199999);
	CHECK_EQ_INT(r.cap.n, 1);
	rig_advance(&r, r.now + 1);
	CHECK_EQ_INT(r.cap.n, 2);
	REQUIRE(precv(&p, &v));
	CHECK_EQ_INT(v.seq, seq);
	CHECK_EQ_INT(v.len, 7);
	ust_conn_info(c, &i);
	CHECK_EQ_INT(i.backoff, 1);
	CHECK_EQ_INT(i.rto_us, 400000);
	CHECK_EQ_INT(i.cwnd, i.mss);

	rig_advance(&r, r.now + 400000);
	CHECK_EQ_INT(r.cap.n, 3);
	ust_conn_info(c, &i);
	CHECK_EQ_INT(i.backoff, 2);
	CHECK_EQ_INT(i.rto_us, 800000);
	CHECK_EQ_INT(i.retransmits, 2);
	CHECK_EQ_INT(ctr()->tcp_rto, 2);

	/* The ACK of a retransmitted segment: no sample, RTO stays backed off. */
	rig_advance(&r, r.now + 5000);
	p.ack = seq + 7;
	psend(&p, F_ACK, NULL, 0);
	ust_conn_info(c, &i);
	CHECK_EQ_INT(i.rtt_samples, 1);
	CHECK_EQ_INT(i.rto_us, 800000);
	CHECK_EQ_INT(i.snd_queued, 0);

	/* A fresh segment, acknowledged after 30 ms: sampled, RTO recomputed. */
	ust_send(c, "more", 4);
	rig_advance(&r, r.now + 30000);
	p.ack += 4;
	psend(&p, F_ACK, NULL, 0);
	ust_conn_info(c, &i);
	CHECK_EQ_INT(i.rtt_samples, 2);
	CHECK_EQ_INT(i.backoff, 0);
	CHECK(i.rto_us < 800000);
	CHECK(i.srtt_us > 0 && i.srtt_us <= 30000);
	rig_fini(&r);
}

/* Ten segments out; the first is lost. RFC 5681 and 6582 step by step. */
static void
test_fast_retransmit_and_newreno(void)
{
	static uint8_t data[10 * 1448];
	struct peer p;
	struct tcpv v;
	struct ust_conn *c;
	struct ust_conn_info i;
	uint32_t first;
	int sent;

	setup(NULL);
	peer_init(&p, 2012);
	REQUIRE((c = open_passive(&p, 0, NULL)) != NULL);
	for (size_t k = 0; k < sizeof(data); k++)
		data[k] = (uint8_t)k;
	cap_clear(&r.cap);
	CHECK_EQ_INT(ust_send(c, data, sizeof(data)), sizeof(data));
	sent = r.cap.n;
	CHECK_EQ_INT(sent, 10);
	REQUIRE(parse_tcp(r.cap.frame[0], r.cap.len[0], &v));
	first = v.seq;

	/* Segment 2 arrived: ACK for 1 (a new ACK), then three duplicates. */
	p.ack = first;
	for (int k = 0; k < 3; k++)
		psend(&p, F_ACK, NULL, 0);
	CHECK_EQ_INT(ctr()->tcp_dupacks_rx, 3);
	CHECK_EQ_INT(ctr()->tcp_fast_retransmits, 1);
	REQUIRE(r.cap.n == sent + 1);
	REQUIRE(precv(&p, &v));
	CHECK_EQ_INT(v.seq, first);
	CHECK_EQ_INT(v.len, 1448);
	CHECK(memcmp(v.data, data, 1448) == 0);
	ust_conn_info(c, &i);
	CHECK(i.in_recovery);
	CHECK_EQ_INT(i.ssthresh, 5 * 1448);
	CHECK_EQ_INT(i.cwnd, 8 * 1448);

	/* A partial ACK (up to segment 3): segment 3 goes at once. */
	p.ack = first + 2 * 1448;
	psend(&p, F_ACK, NULL, 0);
	REQUIRE(precv(&p, &v));
	CHECK_EQ_INT(v.seq, first + 2 * 1448);
	ust_conn_info(c, &i);
	CHECK(i.in_recovery);
	CHECK_EQ_INT(i.fast_retransmits, 1);

	/* The full ACK ends recovery with cwnd = min(ssthresh, flight + mss). */
	p.ack = first + sizeof(data);
	psend(&p, F_ACK, NULL, 0);
	ust_conn_info(c, &i);
	CHECK(!i.in_recovery);
	CHECK_EQ_INT(i.cwnd, 1448);
	CHECK_EQ_INT(i.snd_queued, 0);
	CHECK_EQ_INT(ctr()->tcp_recoveries, 1);
	rig_fini(&r);
}

static void
test_zero_window_probe(void)
{
	static uint8_t data[4000];
	struct peer p;
	struct tcpv v;
	struct ust_conn *c;
	struct ust_conn_info i;
	uint32_t una;

	setup(NULL);
	peer_init(&p, 2013);
	p.wnd = 1000;
	REQUIRE((c = open_passive(&p, 0, NULL)) != NULL);
	cap_clear(&r.cap);

	CHECK_EQ_INT(ust_send(c, data, sizeof(data)), sizeof(data));
	REQUIRE(precv(&p, &v));
	CHECK_EQ_INT(v.len, 1000); /* the window's worth */
	CHECK_EQ_INT(r.cap.n, 1);

	/* The peer takes it and closes its window. */
	una = v.seq + 1000;
	p.ack = una;
	p.wnd = 0;
	psend(&p, F_ACK, NULL, 0);
	ust_conn_info(c, &i);
	CHECK_EQ_INT(i.snd_wnd, 0);
	cap_clear(&r.cap);

	/* Probes: ACKs just below snd_una, with backoff between them. */
	rig_advance(&r, r.now + 200000);
	REQUIRE(r.cap.n == 1);
	REQUIRE(precv(&p, &v));
	CHECK_EQ_INT(v.seq, una - 1);
	CHECK_EQ_INT(v.len, 0);
	rig_advance(&r, r.now + 200000);
	CHECK_EQ_INT(r.cap.n, 1);
	rig_advance(&r, r.now + 200000);
	CHECK_EQ_INT(r.cap.n, 2);
	CHECK_EQ_INT(ctr()->tcp_zero_window_probes, 2);
	CHECK_EQ_INT(ctr()->tcp_timeouts, 0);

	/* The window opens: data flows again. */
	cap_clear(&r.cap);
	p.wnd = 8000;
	psend(&p, F_ACK, NULL, 0);
	REQUIRE(r.cap.n == 3);
	REQUIRE(parse_tcp(r.cap.frame[0], r.cap.len[0], &v));
	CHECK_EQ_INT(v.seq, una);
	ust_conn_info(c, &i);
	CHECK_EQ_INT(i.snd_wnd, 8000);
	rig_fini(&r);
}

/* Closed by the application, stuck behind a closed window: not forever. */
static void
test_orphan_behind_closed_window_is_bounded(void)
{
	static uint8_t data[4000];
	struct peer p;
	struct tcpv v;
	struct ust_conn *c;
	struct ust_config cfg;

	rig_config(&cfg);
	cfg.arp_ttl_us = 3600 * 1000000ULL; /* minutes pass below */
	setup(&cfg);
	peer_init(&p, 2018);
	p.wnd = 1000;
	REQUIRE((c = open_passive(&p, 0, NULL)) != NULL);
	ust_send(c, data, sizeof(data));
	REQUIRE(precv(&p, &v));
	p.ack = v.seq + 1000;
	p.wnd = 0;
	psend(&p, F_ACK, NULL, 0);
	ust_close(c);
	CHECK_EQ_INT(ctr()->tcp_conns, 1);

	/* The peer answers every probe, still with no room. */
	for (int k = 0; k < 2000 && ctr()->tcp_conns; k++) {
		cap_clear(&r.cap);
		rig_advance(&r, r.now + 1000000);
		if (r.cap.n && ctr()->tcp_conns)
			psend(&p, F_ACK, NULL, 0);
	}
	CHECK_EQ_INT(ctr()->tcp_conns, 0);
	CHECK_EQ_INT(ctr()->tcp_timeouts, 1);
	CHECK_EQ_INT(ctr()->tcp_zero_window_probes, 12);
	REQUIRE(precv(&p, &v));
	CHECK_EQ_INT(v.flags, F_RST | F_ACK);
	rig_fini(&r);
}

static void
test_receive_window_closes_and_reopens(void)
{
	static uint8_t chunk[1000];
	struct peer p;
	struct tcpv v;
	struct ust_conn *c;
	struct ust_conn_info i;
	uint8_t buf[20000];

	setup(NULL); /* rcvbuf 16384, no scaling */
	peer_init(&p, 2014);
	REQUIRE((c = open_passive(&p, 0, NULL)) != NULL);
	for (int k = 0; k < 17; k++)
		psend(&p, F_ACK, chunk, sizeof(chunk));
	ust_conn_info(c, &i);
	CHECK_EQ_INT(i.rcv_queued, 16384);
	CHECK_EQ_INT(i.rcv_wnd, 0);
	rig_advance(&r, r.now + 40000); /* the last segment's delayed ACK */
	REQUIRE(precv(&p, &v));
	CHECK_EQ_INT(v.wnd, 0);
	CHECK_EQ_INT(v.ack, p.seq - 616); /* the excess was cut off */

	/* Reading opens the window, and the peer is told. */
	cap_clear(&r.cap);
	CHECK_EQ_INT(ust_recv(c, buf, sizeof(buf)), 16384);
	REQUIRE(precv(&p, &v));
	CHECK_EQ_INT(v.wnd, 16384);
	rig_fini(&r);
}

static void
test_send_buffer_is_bounded(void)
{
	static uint8_t data[100000];
	struct peer p;
	struct tcpv v;
	struct ust_conn *c;

	setup(NULL); /* sndbuf 16384 */
	peer_init(&p, 2015);
	REQUIRE((c = open_passive(&p, 0, NULL)) != NULL);
	CHECK_EQ_INT(ust_send(c, data, sizeof(data)), 16384);
	CHECK_EQ_INT(ust_send(c, data, sizeof(data)), -EAGAIN);
	REQUIRE(precv(&p, &v));
	p.ack = v.seq + v.len;
	psend(&p, F_ACK, NULL, 0);
	CHECK_EQ_INT(r.app.writable, 1);
	CHECK(ust_send(c, data, sizeof(data)) > 0);
	rig_fini(&r);
}

static void
echo_hook(struct ust_conn *c)
{
	static uint8_t big[40000];
	char buf[256];

	while (ust_recv(c, buf, sizeof(buf)) > 0)
		;
	ust_send(c, big, sizeof(big));
}

/*
 * A segment that both brings data and frees send space owes the
 * application two callbacks; the sends it makes from the first must not
 * run the second inside it.
 */
static void
test_callbacks_never_nest(void)
{
	struct peer p;
	struct tcpv v;
	struct ust_conn *c;

	setup(NULL);
	peer_init(&p, 2023);
	REQUIRE((c = open_passive(&p, 0, NULL)) != NULL);
	r.app.hook = echo_hook;
	psend(&p, F_ACK, "ping", 4);
	CHECK_EQ_INT(r.app.readable, 1);
	REQUIRE(precv(&p, &v));

	p.ack = v.seq + v.len;
	psend(&p, F_ACK, "ping", 4);
	CHECK_EQ_INT(r.app.readable, 2);
	CHECK_EQ_INT(r.app.writable, 1);
	CHECK_EQ_INT(r.app.max_depth, 1);
	rig_fini(&r);
}

static void
test_close_with_unread_data_resets(void)
{
	struct peer p;
	struct tcpv v;
	struct ust_conn *c;

	setup(NULL);
	peer_init(&p, 2016);
	REQUIRE((c = open_passive(&p, 0, NULL)) != NULL);
	psend(&p, F_ACK, "unread", 6);
	cap_clear(&r.cap);
	ust_close(c);
	REQUIRE(precv(&p, &v));
	CHECK_EQ_INT(v.flags, F_RST | F_ACK);
	CHECK_EQ_INT(ctr()->tcp_conns, 0);
	rig_fini(&r);
}

static void
test_abort_sends_rst(void)
{
	struct peer p;
	struct tcpv v;
	struct ust_conn *c;

	setup(NULL);
	peer_init(&p, 2017);
	REQUIRE((c = open_passive(&p, 0, NULL)) != NULL);
	cap_clear(&r.cap);
	ust_abort(c);
	REQUIRE(precv(&p, &v));
	CHECK_EQ_INT(v.flags, F_RST | F_ACK);
	CHECK_EQ_INT(v.seq, p.ack);
	CHECK_EQ_INT(ctr()->tcp_conns, 0);
	CHECK_EQ_INT(r.app.closed, 0);

	/* Its segments now reach the listener, which knows no such cookie. */
	cap_clear(&r.cap);
	psend(&p, F_ACK, "x", 1);
	CHECK_EQ_INT(drops(UST_DROP_TCP_BAD_COOKIE), 1);
	CHECK_EQ_INT(count_tcp_flags(&r.cap, F_RST), 1);
	rig_fini(&r);
}

static void
test_syn_rcvd_retransmits_and_gives_up(void)
{
	struct ust_config cfg;
	struct tcpv v;

	rig_config(&cfg);
	cfg.syn_retries = 2;
	setup(&cfg);
	send_syn(4000, 1, 1, -1);
	REQUIRE(precv(&(struct peer){0}, &v));
	CHECK_EQ_INT(v.flags, F_SYN | F_ACK);

	/* The SYN again: the same SYN-ACK again. */
	send_syn(4000, 1, 2, -1);
	CHECK_EQ_INT(count_tcp_flags(&r.cap, F_SYN | F_ACK), 2);
	CHECK_EQ_INT(ctr()->tcp_conns, 1);

	rig_advance(&r, r.now + 1000000);
	rig_advance(&r, r.now + 2000000);
	rig_advance(&r, r.now + 4000000);
	CHECK_EQ_INT(count_tcp_flags(&r.cap, F_SYN | F_ACK), 4);
	CHECK_EQ_INT(ctr()->tcp_conns, 0);
	CHECK_EQ_INT(r.app.accepted, 0);
	rig_fini(&r);
}

static void
test_listener_close_resets_half_open(void)
{
	struct ust_listener *l;
	struct peer p;
	struct tcpv v;

	REQUIRE(rig_init(&r, NULL) == 0);
	rig_learn_peer(&r);
	REQUIRE(ust_listen(r.st, 80, NULL, &l) == 0);
	CHECK_EQ_INT(ust_listen(r.st, 80, NULL, &l), -EADDRINUSE);
	send_syn(4001, 1, 1, -1);
	CHECK_EQ_INT(ctr()->tcp_conns, 1);
	cap_clear(&r.cap);
	ust_listener_close(l);
	peer_init(&p, 4001);
	REQUIRE(precv(&p, &v));
	CHECK_EQ_INT(v.flags & F_RST, F_RST);
	CHECK_EQ_INT(ctr()->tcp_conns, 0);
	rig_fini(&r);
}

int
main(void)
{
	RUN(test_rst_for_segments_of_unknown_connections);
	RUN(test_passive_open_negotiates_mss_wscale_timestamps);
	RUN(test_passive_open_without_options);
	RUN(test_in_order_data_and_delayed_ack);
	RUN(test_reordering_duplicates_and_overlap);
	RUN(test_malformed_segments_are_dropped_and_counted);
	RUN(test_paws_drops_old_timestamps);
	RUN(test_rst_in_window_gets_challenge_ack);
	RUN(test_passive_close);
	RUN(test_rst_and_fin_during_handshake);
	RUN(test_rst_while_closing);
	RUN(test_active_close_and_time_wait);
	RUN(test_simultaneous_close);
	RUN(test_time_wait_recycled_by_new_syn);
	RUN(test_syn_cookies_when_backlog_full);
	RUN(test_backlog_full_without_cookies_drops);
	RUN(test_active_open);
	RUN(test_connect_refused_and_timed_out);
	RUN(test_rto_backoff_and_karn);
	RUN(test_fast_retransmit_and_newreno);
	RUN(test_zero_window_probe);
	RUN(test_orphan_behind_closed_window_is_bounded);
	RUN(test_receive_window_closes_and_reopens);
	RUN(test_send_buffer_is_bounded);
	RUN(test_callbacks_never_nest);
	RUN(test_close_with_unread_data_resets);
	RUN(test_abort_sends_rst);
	RUN(test_syn_rcvd_retransmits_and_gives_up);
	RUN(test_listener_close_resets_half_open);
	return check_done();
}
