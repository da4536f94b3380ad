/*
 * TCP output: building segments, deciding what may be sent (the peer's
 * window, the congestion window, sender silly-window avoidance) and
 * sending it, first time or again. There is no Nagle: usher writes whole
 * TLS records, and holding their tails back would only add latency.
 *
 * TODO(#5): build frames in the engine's mbufs (a get-buffer/send pair in
 * ust_ops) instead of copying out of one TX buffer.
 */
#include "ust_impl.h"

#define OPT_EOL       0
#define OPT_NOP       1
#define OPT_MSS       2
#define OPT_WSCALE    3
#define OPT_TIMESTAMP 8

/* Everything one segment's header needs. */
struct tcp_hdr {
	uint32_t raddr;
	uint16_t lport, rport;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t wnd;
	bool syn_opts; /* MSS and, if ws, window scale */
	bool ws;
	uint8_t wscale;
	bool ts;
	uint32_t tsval, tsecr;
};

uint32_t
tcp_now_ts(const struct ust_stack *s)
{
	/* A millisecond clock: RFC 7323 asks for 1 ms to 1 s per tick. */
	return (uint32_t)(s->now / 1000);
}

static size_t
write_options(const struct ust_stack *s, const struct tcp_hdr *h, uint8_t *p)
{
	size_t n = 0;

	if (h->syn_opts) {
		p[n++] = OPT_MSS;
		p[n++] = 4;
		wr16(p + n, (uint16_t)(s->cfg.mtu - 40));
		n += 2;
	}
	if (h->syn_opts && h->ws) {
		p[n++] = OPT_NOP;
		p[n++] = OPT_WSCALE;
		p[n++] = 3;
		p[n++] = h->wscale;
	}
	if (h->ts) {
		p[n++] = OPT_NOP;
		p[n++] = OPT_NOP;
		p[n++] = OPT_TIMESTAMP;
		p[n++] = 10;
		wr32(p + n, h->tsval);
		wr32(p + n + 4, h->tsecr);
		n += 8;
	}
	return n;
}

/* Write the header and options into the TX buffer; returns its length. */
static size_t
tcp_begin(struct ust_stack *s, const struct tcp_hdr *h)
{
	uint8_t *t = s->txbuf + ETH_HLEN + IP_HLEN;
	size_t hlen = TCP_HLEN + write_options(s, h, t + TCP_HLEN);

	wr16(t, h->lport);
	wr16(t + 2, h->rport);
	wr32(t + 4, h->seq);
	wr32(t + 8, h->ack);
	t[12] = (uint8_t)((hlen / 4) << 4);
	t[13] = h->flags;
	wr16(t + 14, h->wnd);
	wr16(t + 16, 0);
	wr16(t + 18, 0);
	return hlen;
}

/* Checksum (or leave it to the NIC) and hand the segment to IP. */
static void
tcp_finish(struct ust_stack *s, const struct tcp_hdr *h, size_t seg_len)
{
	uint8_t *t = s->txbuf + ETH_HLEN + IP_HLEN;
	uint32_t sum = ust_csum_pseudo(s->cfg.ipv4, h->raddr, IP_PROTO_TCP, (uint16_t)seg_len);
	unsigned tx_flags = 0;

	if (s->cfg.offloads & UST_OFFLOAD_TX_TCP_CSUM) {
		/* The NIC adds the segment to the pseudo-header sum we leave. */
		wr16(t + 16, (uint16_t)~ust_csum_fold(sum));
		tx_flags = UST_TX_TCP_CSUM;
	} else {
		wr16(t + 16, ust_csum_fold(ust_csum_add(sum, t, seg_len)));
	}

	if (h->flags & TH_RST)
		s->ctr.tcp_resets_tx++;
	ipv4_output(s, h->raddr, IP_PROTO_TCP, seg_len, tx_flags);
}

uint32_t
tcp_rcv_window(const struct ust_conn *c)
{
	uint32_t free_space = c->rcv.cap - c->rcv.len;

	return min_u32(free_space, 65535u << c->rcv_wscale);
}

static void
conn_hdr(const struct ust_conn *c, struct tcp_hdr *h, uint32_t seq, uint8_t flags)
{
	memset(h, 0, sizeof(*h));
	h->raddr = c->raddr;
	h->lport = c->lport;
	h->rport = c->rport;
	h->seq = seq;
	h->ack = (flags & TH_ACK) ? c->rcv_nxt : 0;
	h->flags = flags;
	h->wnd = (uint16_t)(tcp_rcv_window(c) >> c->rcv_wscale);
	h->ts = c->ts_ok;
	h->tsval = tcp_now_ts(c->stack);
	h->tsecr = c->ts_recent;
}

/* Whatever we send carries our latest ACK and window. */
static void
acked_now(struct ust_conn *c, const struct tcp_hdr *h)
{
	uint32_t edge = c->rcv_nxt + ((uint32_t)h->wnd << c->rcv_wscale);

	if (!(h->flags & TH_ACK))
		return;

	c->last_ack_sent = c->rcv_nxt;
	if (SEQ_GT(edge, c->rcv_adv))
		c->rcv_adv = edge;
	c->ack_now = false;
	c->unacked_segs = 0;
	c->dack_at = 0;
}

/* A segment of len bytes from the send ring, starting at seq. */
static void
send_data(struct ust_conn *c, uint32_t seq, uint32_t len, uint8_t flags)
{
	struct ust_stack *s = c->stack;
	struct tcp_hdr h;
	size_t hlen;

	conn_hdr(c, &h, seq, flags);
	hlen = tcp_begin(s, &h);
	if (len)
		ring_peek(&c->snd, seq - c->snd_una, s->txbuf + ETH_HLEN + IP_HLEN + hlen, len);
	acked_now(c, &h);
	tcp_finish(s, &h, hlen + len);
}

void
tcp_send_ack(struct ust_conn *c)
{
	send_data(c, c->snd_nxt, 0, TH_ACK);
}

/*
 * A zero-window probe: an ACK one below snd_una, which the peer must
 * answer with an ACK carrying its window, without consuming anything.
 */
void
tcp_send_probe(struct ust_conn *c)
{
	send_data(c, c->snd_una - 1, 0, TH_ACK);
}

void
tcp_send_rst(struct ust_conn *c)
{
	send_data(c, c->snd_max, 0, TH_RST | TH_ACK);
}

void
tcp_send_syn(struct ust_conn *c)
{
	struct ust_stack *s = c->stack;
	bool active = c->state == UST_TCP_SYN_SENT;
	struct tcp_hdr h;

	conn_hdr(c, &h, c->iss, active ? TH_SYN : TH_SYN | TH_ACK);
	h.syn_opts = true;
	h.ws = active ? s->cfg.window_scaling : c->ws_ok;
	h.wscale = s->our_wscale;
	h.ts = active ? s->cfg.timestamps : c->ts_ok;
	h.tsecr = active ? 0 : c->ts_recent;
	/* RFC 7323: the window in a SYN is never scaled. */
	h.wnd = (uint16_t)min_u32(c->rcv.cap - c->rcv.len, 65535);

	if (c->retries == 0 && !c->rtt_timing) {
		c->rtt_timing = true;
		c->rtt_seq = c->iss;
		c->rtt_start = s->now;
	}

	acked_now(c, &h);
	c->rcv_adv = c->rcv_nxt + h.wnd;
	tcp_finish(s, &h, tcp_begin(s, &h));
	c->snd_nxt = c->snd_max = c->iss + 1;
	if (!c->rtx_at)
		tcp_arm_rtx(c);
}

void
tcp_send_bare(struct ust_stack *s, uint32_t raddr, uint16_t lport, uint16_t rport, uint32_t seq,
	      uint32_t ack, uint8_t flags, uint32_t tsval, uint32_t tsecr, bool ts)
{
	struct tcp_hdr h = {
		.raddr = raddr,
		.lport = lport,
		.rport = rport,
		.seq = seq,
		.ack = ack,
		.flags = flags,
		.ts = ts,
		.tsval = tsval,
		.tsecr = tsecr,
	};

	tcp_finish(s, &h, tcp_begin(s, &h));
}

/*
 * RFC 9293 3.10.7.1: the RST for a segment that belongs to nothing.
 * TODO(#5): rate-limit these and challenge ACKs (RFC 5961 section 7).
 */
void
tcp_send_reply_rst(struct ust_stack *s, const struct ust_seg *seg)
{
	uint32_t len = seg->len + !!(seg->flags & TH_SYN) + !!(seg->flags & TH_FIN);

	if (seg->flags & TH_RST)
		return;

	if (seg->flags & TH_ACK)
		tcp_send_bare(s, seg->src, seg->dport, seg->sport, seg->ack, 0, TH_RST, 0, 0,
			      false);
	else
		tcp_send_bare(s, seg->src, seg->dport, seg->sport, 0, seg->seq + len,
			      TH_RST | TH_ACK, 0, 0, false);
}

void
tcp_send_synack_cookie(struct ust_stack *s, const struct ust_seg *seg, uint32_t isn, uint32_t tsval,
		       bool ws)
{
	struct tcp_hdr h = {
		.raddr = seg->src,
		.lport = seg->dport,
		.rport = seg->sport,
		.seq = isn,
		.ack = seg->seq + 1,
		.flags = TH_SYN | TH_ACK,
		.wnd = (uint16_t)min_u32(s->cfg.rcvbuf, 65535),
		.syn_opts = true,
		.ws = ws,
		.wscale = s->our_wscale,
		.ts = seg->opts.ts_ok && s->cfg.timestamps,
		.tsval = tsval,
		.tsecr = seg->opts.tsval,
	};

	tcp_finish(s, &h, tcp_begin(s, &h));
}

static void
count_retransmit(struct ust_conn *c)
{
	c->retransmits++;
	c->stack->ctr.tcp_retransmits++;

	/* Karn: an ACK for a segment sent twice says nothing about the RTT. */
	c->rtt_timing = false;
}

/* Send the oldest unacknowledged segment again (fast retransmit, NewReno). */
void
tcp_retransmit_first(struct ust_conn *c)
{
	uint32_t len = min_u32(c->snd.len, c->mss);
	uint8_t flags = TH_ACK;

	if (c->snd_una == c->snd_max)
		return;
	if (c->fin_sent && len == c->snd.len)
		flags |= TH_FIN;

	count_retransmit(c);
	send_data(c, c->snd_una, len, flags);
	tcp_arm_rtx(c);
}

/* How many bytes the windows let us put in flight now. */
static uint32_t
usable_window(const struct ust_conn *c)
{
	uint32_t wnd = min_u32(c->snd_wnd, c->cwnd);
	uint32_t in_flight = c->snd_nxt - c->snd_una;

	return wnd > in_flight ? wnd - in_flight : 0;
}

/* Send one segment if the windows allow; false when there is nothing to. */
static bool
send_one(struct ust_conn *c)
{
	struct ust_stack *s = c->stack;
	uint32_t off = c->snd_nxt - c->snd_una;
	uint32_t unsent, len;
	uint8_t flags = TH_ACK;
	bool fin;

	if (off > c->snd.len)
		return false; /* our FIN is out already */

	unsent = c->snd.len - off;
	len = min_u32(min_u32(unsent, usable_window(c)), c->mss);
	fin = c->fin_queued && len == unsent;
	if (len == 0 && !fin)
		return false;

	/* Sender SWS avoidance: no runt while ACKs can still open the window. */
	if (len < c->mss && len < unsent && off > 0)
		return false;

	if (fin)
		flags |= TH_FIN;
	if (len && len == unsent)
		flags |= TH_PSH;

	if (SEQ_LT(c->snd_nxt, c->snd_max))
		count_retransmit(c);
	else if (len && !c->rtt_timing) {
		c->rtt_timing = true;
		c->rtt_seq = c->snd_nxt;
		c->rtt_start = s->now;
	}

	send_data(c, c->snd_nxt, len, flags);
	c->snd_nxt += len + fin;
	if (fin)
		c->fin_sent = true;
	if (SEQ_GT(c->snd_nxt, c->snd_max))
		c->snd_max = c->snd_nxt;
	if (!c->rtx_at)
		tcp_arm_rtx(c);
	return !fin;
}

/* Data waits on a closed window with nothing in flight to bring an ACK. */
static void
arm_persist(struct ust_conn *c)
{
	uint64_t interval;
	bool stuck =
		c->snd_wnd == 0 && c->snd_una == c->snd_max && c->snd.len > c->snd_nxt - c->snd_una;

	if (!stuck) {
		c->persist_at = 0;
		c->persist_shift = 0;
		return;
	}
	if (c->persist_at || c->rtx_at)
		return;

	interval = c->rto_us << min_u32(c->persist_shift, 16);
	c->persist_at = c->stack->now + min_u64(interval, c->stack->cfg.rto_max_us);
}

void
tcp_output(struct ust_conn *c)
{
	switch (c->state) {
	case UST_TCP_ESTABLISHED:
	case UST_TCP_CLOSE_WAIT:
	case UST_TCP_FIN_WAIT_1:
	case UST_TCP_CLOSING:
	case UST_TCP_LAST_ACK:
		break;
	case UST_TCP_SYN_RCVD:
		if (c->ack_now)
			tcp_send_syn(c);
		return;
	case UST_TCP_FIN_WAIT_2:
		if (c->ack_now)
			tcp_send_ack(c);
		return;
	default:
		return;
	}

	while (send_one(c))
		;

	if (c->ack_now)
		tcp_send_ack(c);
	arm_persist(c);
}
