/*
 * Two stacks back to back through the fault injector: real handshakes,
 * megabyte transfers under loss, duplication and reordering, closing,
 * TIME_WAIT, SYN cookies, zero windows, ARP before the first SYN.
 */
#include <errno.h>
#include <stdlib.h>

#include "check.h"
#include "ustest.h"
#include "wire.h"

#define MiB (1024 * 1024)

static struct wire w;
static uint8_t *data_a, *data_b, *rx_a, *rx_b;

static void
fill(uint8_t *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

static bool
both_established(struct wire *wr, void *arg)
{
	struct endpoint *ep = arg;

	return ep->established && wr->n[1].accepted == 1;
}

static const struct ust_counters *
ctr(int i)
{
	return ust_counters(w.n[i].st);
}

/* The first frame after the announcement is ARP; the SYN follows the reply. */
static void
test_arp_then_handshake_negotiates_options(void)
{
	static struct cap tap;
	struct ust_conn_info ia, ib;
	struct endpoint *ep;
	struct tcpv syn, synack;
	int i_syn = -1, i_synack = -1;

	REQUIRE(wire_init(&w, NULL, NULL) == 0);
	cap_clear(&tap);
	w.n[0].tap = &tap;
	REQUIRE(ust_listen(w.n[1].st, 443, NULL, &w.n[1].listener) == 0);
	ep = wire_endpoint(&w, 0);
	REQUIRE(wire_connect(&w, ep, 443) == 0);
	REQUIRE(wire_run(&w, both_established, ep, 5000000));

	REQUIRE(tap.n >= 2);
	CHECK(tap.frame[0][12] == 0x08 && tap.frame[0][13] == 0x06);
	for (int i = 0; i < tap.n && i_syn < 0; i++)
		if (parse_tcp(tap.frame[i], tap.len[i], &syn) && syn.flags == F_SYN)
			i_syn = i;
	CHECK_EQ_INT(i_syn, 1);
	CHECK_EQ_INT(ctr(0)->arp_requests_tx, 1);
	CHECK_EQ_INT(ctr(0)->arp_resolved, 1);

	/* SYN: MSS 1460, scale 3 for a 256 KiB buffer, a timestamp. */
	CHECK(syn.mss_ok && syn.mss == 1460);
	CHECK(syn.ws_ok && syn.ws == 3);
	CHECK(syn.ts_ok && syn.tsecr == 0);

	ust_conn_info(ep->conn, &ia);
	ust_conn_info(w.n[1].ep[0].conn, &ib);
	CHECK_EQ_INT(ia.state, UST_TCP_ESTABLISHED);
	CHECK_EQ_INT(ib.state, UST_TCP_ESTABLISHED);
	CHECK(ia.wscale_ok && ib.wscale_ok);
	CHECK_EQ_INT(ia.snd_wscale, 3);
	CHECK_EQ_INT(ia.rcv_wscale, 3);
	CHECK_EQ_INT(ib.snd_wscale, 3);
	CHECK(ia.ts_ok && ib.ts_ok);
	CHECK_EQ_INT(ia.mss, 1460 - 12);
	CHECK_EQ_INT(ia.rcv_wnd, 256 * 1024);
	CHECK_EQ_INT(ia.snd_wnd, 65535);      /* a SYN's window is never scaled */
	CHECK_EQ_INT(ib.snd_wnd, 256 * 1024); /* the ACK's is, and understood */
	CHECK_EQ_INT(ia.rtt_samples, 1);

	/* The SYN-ACK echoes the SYN's timestamp; the peer holds ours. */
	CHECK_EQ_INT(ib.ts_recent, syn.tsval);
	for (int i = 0; i < tap.n && i_synack < 0; i++)
		if (parse_tcp(tap.frame[i], tap.len[i], &synack) && synack.flags == F_ACK)
			i_synack = i;
	REQUIRE(i_synack > 0);
	CHECK_EQ_INT(synack.tsecr, ia.ts_recent); /* our ACK echoes their SYN-ACK */
	CHECK(synack.tcp_csum_ok && synack.ip_csum_ok);
	wire_fini(&w);
}

struct transfer {
	struct endpoint *a, *b;
	size_t len;
};

static bool
transfer_done(struct wire *wr, void *arg)
{
	struct transfer *t = arg;

	t->b = wr->n[1].accepted ? &wr->n[1].ep[0] : NULL;
	return t->b && t->a->rx_len == t->len && t->b->rx_len == t->len && t->a->eof && t->b->eof;
}

static bool
all_closed(struct wire *wr, void *arg)
{
	(void)arg;
	return ust_counters(wr->n[0].st)->tcp_conns == 0 &&
	       ust_counters(wr->n[1].st)->tcp_conns == 0;
}

/* 1 MiB each way at once, both sides shut down after sending. */
static void
run_bidirectional(const struct ust_faults_config *f0, const struct ust_faults_config *f1)
{
	const struct ust_faults_config *faults[2] = {f0, f1};
	struct transfer t = {0};

	REQUIRE(wire_init(&w, NULL, faults) == 0);
	REQUIRE(ust_listen(w.n[1].st, 443, NULL, &w.n[1].listener) == 0);
	fill(data_a, MiB, 1);
	fill(data_b, MiB, 2);

	w.n[1].tmpl = (struct endpoint){.tx = data_b,
					.tx_len = MiB,
					.shut_after_tx = true,
					.rx = rx_b,
					.rx_cap = MiB,
					.close_when_done = true};
	t.a = wire_endpoint(&w, 0);
	t.a->tx = data_a;
	t.a->tx_len = MiB;
	t.a->shut_after_tx = true;
	t.a->rx = rx_a;
	t.a->rx_cap = MiB;
	t.a->close_when_done = true;
	t.len = MiB;
	REQUIRE(wire_connect(&w, t.a, 443) == 0);

	CHECK(wire_run(&w, transfer_done, &t, 600000000));
	REQUIRE(t.b != NULL);
	CHECK_EQ_INT(t.a->rx_len, MiB);
	CHECK_EQ_INT(t.b->rx_len, MiB);
	CHECK(memcmp(rx_a, data_b, MiB) == 0);
	CHECK(memcmp(rx_b, data_a, MiB) == 0);

	/* Both closed: every connection object freed, one side in TIME_WAIT. */
	CHECK(wire_run(&w, all_closed, NULL, 600000000));
	/* Both may have sent FIN at once (CLOSING on both sides). */
	CHECK(ctr(0)->tcp_time_wait + ctr(1)->tcp_time_wait >= 1);
	CHECK_EQ_INT(ctr(0)->tcp_timeouts + ctr(1)->tcp_timeouts, 0);
	CHECK_EQ_INT(ctr(0)->tcp_resets_tx + ctr(1)->tcp_resets_tx, 0);
}

static void
test_megabyte_each_way_clean(void)
{
	run_bidirectional(NULL, NULL);
	CHECK_EQ_INT(ctr(0)->tcp_retransmits + ctr(1)->tcp_retransmits, 0);
	CHECK_EQ_INT(ctr(0)->tcp_established, 1);
	CHECK_EQ_INT(ctr(1)->tcp_established, 1);
	wire_fini(&w);
}

static void
test_megabyte_each_way_lossy(void)
{
	struct ust_faults_config f[2];
	const struct ust_faults_stats *s0, *s1;

	for (int i = 0; i < 2; i++) {
		wire_faults_config(&f[i], 1000 + (uint64_t)i);
		f[i].drop_ppm = 50000;  /* 5 % */
		f[i].dup_ppm = 20000;   /* 2 % */
		f[i].delay_ppm = 50000; /* 5 % held back: reordering */
		f[i].delay_max_us = 2000;
	}
	run_bidirectional(&f[0], &f[1]);

	s0 = ust_faults_stats(w.n[0].out);
	s1 = ust_faults_stats(w.n[1].out);
	CHECK(s0->dropped > 0 && s1->dropped > 0);
	CHECK(s0->duplicated > 0 && s1->duplicated > 0);
	CHECK(s0->delayed > 0 && s1->delayed > 0);
	printf("# dropped %llu+%llu, duplicated %llu+%llu, retransmits %llu+%llu, "
	       "fast %llu+%llu, rto %llu+%llu\n",
	       (unsigned long long)s0->dropped, (unsigned long long)s1->dropped,
	       (unsigned long long)s0->duplicated, (unsigned long long)s1->duplicated,
	       (unsigned long long)ctr(0)->tcp_retransmits,
	       (unsigned long long)ctr(1)->tcp_retransmits,
	       (unsigned long long)ctr(0)->tcp_fast_retransmits,
	       (unsigned long long)ctr(1)->tcp_fast_retransmits,
	       (unsigned long long)ctr(0)->tcp_rto, (unsigned long long)ctr(1)->tcp_rto);
	CHECK(ctr(0)->tcp_retransmits > 0 && ctr(1)->tcp_retransmits > 0);
	CHECK(ctr(0)->tcp_fast_retransmits > 0 && ctr(1)->tcp_fast_retransmits > 0);
	CHECK(ctr(0)->tcp_dupacks_rx > 0 && ctr(1)->tcp_dupacks_rx > 0);
	wire_fini(&w);
}

static bool
sender_stalled(struct wire *wr, void *arg)
{
	struct endpoint *a = arg;
	struct ust_conn_info i;

	ust_conn_info(a->conn, &i);
	return i.zero_window_probes >= 3;
}

/* The receiver stops reading: the sender probes, and resumes when it reads. */
static void
test_zero_window_probes_until_reader_resumes(void)
{
	struct transfer t = {0};
	struct ust_conn_info info;
	size_t len = 2 * MiB / 2;

	REQUIRE(wire_init(&w, NULL, NULL) == 0);
	REQUIRE(ust_listen(w.n[1].st, 443, NULL, &w.n[1].listener) == 0);
	fill(data_a, len, 3);
	w.n[1].tmpl = (struct endpoint){.rx = rx_b,
					.rx_cap = MiB,
					.paused = true,
					.shut_on_eof = true,
					.close_when_done = true};
	t.a = wire_endpoint(&w, 0);
	t.a->tx = data_a;
	t.a->tx_len = len;
	t.a->shut_after_tx = true;
	t.a->close_when_done = true;
	REQUIRE(wire_connect(&w, t.a, 443) == 0);

	REQUIRE(wire_run(&w, sender_stalled, t.a, 600000000));
	ust_conn_info(w.n[1].ep[0].conn, &info);
	CHECK_EQ_INT(info.rcv_wnd, 0);
	CHECK_EQ_INT(info.rcv_queued, 256 * 1024);
	ust_conn_info(t.a->conn, &info);
	CHECK_EQ_INT(info.state, UST_TCP_ESTABLISHED);
	CHECK_EQ_INT(info.snd_wnd, 0);
	CHECK(ctr(0)->tcp_zero_window_probes >= 3);
	CHECK_EQ_INT(ctr(0)->tcp_timeouts, 0);

	/* Reading again opens the window; everything arrives, in order. */
	w.n[1].ep[0].paused = false;
	CHECK(wire_run(&w, all_closed, NULL, 600000000));
	CHECK_EQ_INT(w.n[1].ep[0].rx_len, len);
	CHECK(memcmp(rx_b, data_a, len) == 0);
	wire_fini(&w);
}

struct many {
	int n;
};

static bool
all_accepted_and_done(struct wire *wr, void *arg)
{
	struct many *m = arg;
	int done = 0;

	for (int i = 0; i < WIRE_EPS; i++)
		done += wr->n[0].ep[i].used && wr->n[0].ep[i].closed;
	return done == m->n && ust_counters(wr->n[1].st)->tcp_conns == 0;
}

/* 20 connections closed by the client: its TIME_WAIT table holds 8. */
static void
test_time_wait_table_is_bounded(void)
{
	struct ust_config c0;
	const struct ust_config *cfg[2] = {&c0, NULL};
	struct many m = {.n = 20};

	wire_config(&c0, 0);
	c0.time_wait_max = 8;
	c0.time_wait_us = 30 * 1000000ULL;
	REQUIRE(wire_init(&w, cfg, NULL) == 0);
	REQUIRE(ust_listen(w.n[1].st, 443, NULL, &w.n[1].listener) == 0);
	w.n[1].tmpl = (struct endpoint){.shut_on_eof = true, .close_when_done = true};

	for (int i = 0; i < m.n; i++) {
		struct endpoint *ep = wire_endpoint(&w, 0);

		ep->tx = (const uint8_t *)"hello";
		ep->tx_len = 5;
		ep->shut_after_tx = true;
		REQUIRE(wire_connect(&w, ep, 443) == 0);
		wire_idle(&w, 10000);
	}
	CHECK(wire_run(&w, all_accepted_and_done, &m, 10000000));
	CHECK_EQ_INT(w.n[1].accepted, 20);
	CHECK_EQ_INT(ctr(0)->tcp_time_wait, 8);
	CHECK_EQ_INT(ctr(0)->tcp_time_wait_evicted, 12);
	CHECK_EQ_INT(ctr(1)->tcp_time_wait, 0);
	for (int i = 0; i < m.n; i++)
		CHECK_EQ_INT(w.n[0].ep[i].reason, UST_CLOSE_NORMAL);

	/* 2 MSL later the table is empty. */
	wire_idle(&w, 31 * 1000000ULL);
	CHECK_EQ_INT(ctr(0)->tcp_time_wait, 0);
	wire_fini(&w);
}

#define COOKIE_CONNS 11
#define COOKIE_BYTES 50000

static bool
cookie_conns_done(struct wire *wr, void *arg)
{
	int done = 0;

	for (int i = 0; i < COOKIE_CONNS; i++)
		done += wr->n[0].ep[i].eof && wr->n[0].ep[i].rx_len == COOKIE_BYTES;
	return done == COOKIE_CONNS;
}

static struct endpoint *
cookie_client(int i)
{
	struct endpoint *ep = wire_endpoint(&w, 0);

	ep->rx = rx_a + (size_t)i * COOKIE_BYTES;
	ep->rx_cap = COOKIE_BYTES;
	ep->shut_on_eof = true;
	return ep;
}

/*
 * A backlog of 2 and ten SYNs at once: eight are answered with cookies,
 * and all ten connections carry data. One connection first resolves ARP,
 * so that the ten SYNs leave together.
 */
static void
test_syn_cookies_when_backlog_full(void)
{
	struct ust_config c1;
	const struct ust_config *cfg[2] = {NULL, &c1};
	struct endpoint *first;
	int scaled = 0;

	wire_config(&c1, 1);
	c1.syn_backlog = 2;
	REQUIRE(wire_init(&w, cfg, NULL) == 0);
	REQUIRE(ust_listen(w.n[1].st, 443, NULL, &w.n[1].listener) == 0);
	fill(data_b, COOKIE_BYTES, 7);
	w.n[1].tmpl = (struct endpoint){.tx = data_b,
					.tx_len = COOKIE_BYTES,
					.shut_after_tx = true,
					.shut_on_eof = true,
					.close_when_done = true};

	first = cookie_client(0);
	REQUIRE(wire_connect(&w, first, 443) == 0);
	REQUIRE(wire_run(&w, both_established, first, 5000000));
	for (int i = 1; i < COOKIE_CONNS; i++)
		REQUIRE(wire_connect(&w, cookie_client(i), 443) == 0);
	REQUIRE(wire_run(&w, cookie_conns_done, NULL, 60000000));

	CHECK_EQ_INT(ctr(1)->tcp_syn_cookies_tx, 8);
	CHECK_EQ_INT(ctr(1)->tcp_syn_cookies_ok, 8);
	CHECK_EQ_INT(w.n[1].accepted, COOKIE_CONNS);
	for (int i = 0; i < COOKIE_CONNS; i++)
		CHECK(memcmp(rx_a + (size_t)i * COOKIE_BYTES, data_b, COOKIE_BYTES) == 0);

	/* Every accepted connection scales windows, cookie ones included. */
	for (int i = 0; i < COOKIE_CONNS; i++)
		scaled += w.n[1].ep[i].at_accept.wscale_ok &&
			  w.n[1].ep[i].at_accept.snd_wscale == 3 &&
			  w.n[1].ep[i].at_accept.mss == 1448;
	CHECK_EQ_INT(scaled, COOKIE_CONNS);
	wire_fini(&w);
}

static bool
connect_failed(struct wire *wr, void *arg)
{
	return ((struct endpoint *)arg)->connect_err != 0;
}

static void
test_connect_to_closed_port_is_refused(void)
{
	struct endpoint *ep;

	REQUIRE(wire_init(&w, NULL, NULL) == 0);
	ep = wire_endpoint(&w, 0);
	REQUIRE(wire_connect(&w, ep, 9999) == 0);
	REQUIRE(wire_run(&w, connect_failed, ep, 5000000));
	CHECK_EQ_INT(ep->connect_err, -ECONNREFUSED);
	CHECK_EQ_INT(ctr(1)->drops[UST_DROP_TCP_NO_CONN], 1);
	CHECK_EQ_INT(ctr(1)->tcp_resets_tx, 1);
	CHECK_EQ_INT(ctr(0)->tcp_resets_rx, 1);
	CHECK_EQ_INT(ctr(0)->tcp_conns, 0);
	wire_fini(&w);
}

static bool
peer_saw_close(struct wire *wr, void *arg)
{
	return wr->n[1].accepted && wr->n[1].ep[0].closed;
}

static void
test_abort_resets_the_peer(void)
{
	struct endpoint *ep;

	REQUIRE(wire_init(&w, NULL, NULL) == 0);
	REQUIRE(ust_listen(w.n[1].st, 443, NULL, &w.n[1].listener) == 0);
	ep = wire_endpoint(&w, 0);
	REQUIRE(wire_connect(&w, ep, 443) == 0);
	REQUIRE(wire_run(&w, both_established, ep, 5000000));

	ust_abort(ep->conn);
	ep->conn = NULL;
	REQUIRE(wire_run(&w, peer_saw_close, NULL, 5000000));
	CHECK_EQ_INT(w.n[1].ep[0].reason, UST_CLOSE_RESET);
	CHECK_EQ_INT(ctr(0)->tcp_conns, 0);
	CHECK_EQ_INT(ctr(1)->tcp_conns, 0);
	wire_fini(&w);
}

/* 40 % of frames lost: SYNs and SYN-ACKs are sent again until one lands. */
static void
test_handshake_survives_heavy_loss(void)
{
	struct ust_faults_config f[2];
	const struct ust_faults_config *faults[2] = {&f[0], &f[1]};
	struct endpoint *ep;

	struct ust_config c[2];
	const struct ust_config *cfg[2] = {&c[0], &c[1]};

	for (int i = 0; i < 2; i++) {
		wire_faults_config(&f[i], 7 + (uint64_t)i);
		f[i].drop_ppm = 400000;
		wire_config(&c[i], i);
		c[i].arp_retries = 30;
		c[i].syn_retries = 10;
	}
	REQUIRE(wire_init(&w, cfg, faults) == 0);
	REQUIRE(ust_listen(w.n[1].st, 443, NULL, &w.n[1].listener) == 0);
	ep = wire_endpoint(&w, 0);
	REQUIRE(wire_connect(&w, ep, 443) == 0);
	CHECK(wire_run(&w, both_established, ep, 600000000));
	CHECK(ctr(0)->tcp_retransmits + ctr(1)->tcp_retransmits + ctr(0)->arp_requests_tx > 1);
	wire_fini(&w);
}

int
main(void)
{
	data_a = malloc(MiB);
	data_b = malloc(MiB);
	rx_a = malloc(MiB);
	rx_b = malloc(MiB);
	if (!data_a || !data_b || !rx_a || !rx_b)
		return 1;

	RUN(test_arp_then_handshake_negotiates_options);
	RUN(test_megabyte_each_way_clean);
	RUN(test_megabyte_each_way_lossy);
	RUN(test_zero_window_probes_until_reader_resumes);
	RUN(test_time_wait_table_is_bounded);
	RUN(test_syn_cookies_when_backlog_full);
	RUN(test_connect_to_closed_port_is_refused);
	RUN(test_abort_resets_the_peer);
	RUN(test_handshake_survives_heavy_loss);

	free(data_a);
	free(data_b);
	free(rx_a);
	free(rx_b);
	return check_done();
}
