/*
 * TCP input: parsing and checking segments, finding their connection, and
 * what happens when there is none: listeners (SYN queue, SYN cookies), the
 * TIME_WAIT table and RSTs for everything else.
 *
 * This file parses and finds the connection; tcp_state.c runs it.
 */
#include "ust_impl.h"

#define OPT_EOL       0
#define OPT_NOP       1
#define OPT_MSS       2
#define OPT_WSCALE    3
#define OPT_TIMESTAMP 8

/* Options are parsed strictly: a length that overruns is a bad segment. */
static bool
parse_options(const uint8_t *p, size_t len, struct ust_tcp_opts *o)
{
	size_t i = 0;

	while (i < len) {
		uint8_t kind = p[i], olen;

		if (kind == OPT_EOL)
			break;
		if (kind == OPT_NOP) {
			i++;
			continue;
		}
		if (i + 1 >= len || (olen = p[i + 1]) < 2 || i + olen > len)
			return false;

		if (kind == OPT_MSS && olen == 4) {
			o->mss_ok = true;
			o->mss = rd16(p + i + 2);
		} else if (kind == OPT_WSCALE && olen == 3) {
			o->ws_ok = true;
			o->ws = p[i + 2];
		} else if (kind == OPT_TIMESTAMP && olen == 10) {
			o->ts_ok = true;
			o->tsval = rd32(p + i + 2);
			o->tsecr = rd32(p + i + 6);
		}
		i += olen;
	}
	return true;
}

static bool
csum_ok(const struct ust_pkt *pkt)
{
	uint32_t sum;

	if (pkt->rx_flags & UST_RX_L4_CSUM_BAD)
		return false;
	if (pkt->rx_flags & UST_RX_L4_CSUM_GOOD)
		return true;

	sum = ust_csum_pseudo(pkt->src, pkt->dst, IP_PROTO_TCP, (uint16_t)pkt->l4_len);
	return ust_csum_fold(ust_csum_add(sum, pkt->l4, pkt->l4_len)) == 0;
}

static bool
flags_ok(uint8_t f)
{
	if ((f & TH_SYN) && (f & (TH_FIN | TH_RST)))
		return false;
	return (f & (TH_SYN | TH_ACK | TH_RST | TH_FIN)) != 0;
}

static enum ust_drop
parse_segment(const struct ust_pkt *pkt, struct ust_seg *seg)
{
	const uint8_t *t = pkt->l4;
	size_t hlen;

	if (pkt->l4_len < TCP_HLEN)
		return UST_DROP_TCP_SHORT;
	hlen = (size_t)(t[12] >> 4) * 4;
	if (hlen < TCP_HLEN)
		return UST_DROP_TCP_HDRLEN;
	if (hlen > pkt->l4_len)
		return UST_DROP_TCP_SHORT;
	if (!csum_ok(pkt))
		return UST_DROP_TCP_CSUM;

	memset(seg, 0, sizeof(*seg));
	if (!parse_options(t + TCP_HLEN, hlen - TCP_HLEN, &seg->opts))
		return UST_DROP_TCP_OPTIONS;

	seg->src = pkt->src;
	seg->sport = rd16(t);
	seg->dport = rd16(t + 2);
	seg->seq = rd32(t + 4);
	seg->ack = rd32(t + 8);
	seg->flags = t[13] & 0x3f;
	seg->wnd = rd16(t + 14);
	seg->data = t + hlen;
	seg->len = (uint32_t)(pkt->l4_len - hlen);

	if (!flags_ok(seg->flags))
		return UST_DROP_TCP_FLAGS;
	if (seg->sport == 0 || seg->dport == 0)
		return UST_DROP_TCP_PORT;
	return UST_DROP_NONE;
}

/* Take the peer's half of the option negotiation from its SYN. */
void
tcp_negotiate(struct ust_conn *c, const struct ust_seg *syn)
{
	struct ust_stack *s = c->stack;

	c->ws_ok = s->cfg.window_scaling && syn->opts.ws_ok;
	c->snd_wscale = c->ws_ok ? (syn->opts.ws > 14 ? 14 : syn->opts.ws) : 0;
	c->rcv_wscale = c->ws_ok ? s->our_wscale : 0;
	c->ts_ok = s->cfg.timestamps && syn->opts.ts_ok;
	c->ts_recent = c->ts_ok ? syn->opts.tsval : 0;
	c->mss = conn_mss_for(s, syn->opts.mss_ok ? syn->opts.mss : 536, c->ts_ok);
	c->cwnd = 10u * c->mss; /* RFC 6928 */
	c->irs = syn->seq;
	c->rcv_nxt = syn->seq + 1;
}

/* --- The TIME_WAIT table and listeners: segments with no connection --- */

static void listen_input(struct ust_stack *s, struct ust_listener *l, const struct ust_seg *seg);

static bool
tw_reusable(const struct ust_tw *tw, const struct ust_seg *seg)
{
	if (tw->ts_ok && seg->opts.ts_ok)
		return SEQ_GT(seg->opts.tsval, tw->ts_recent);
	return SEQ_GT(seg->seq, tw->rcv_nxt);
}

static void
tw_input(struct ust_stack *s, struct ust_tw *tw, const struct ust_seg *seg)
{
	struct ust_listener *l = listener_find(s, seg->dport);

	/* A new SYN past the old connection may take the tuple (RFC 6191). */
	if (seg->flags == TH_SYN && l && tw_reusable(tw, seg)) {
		tw_remove(s, tw);
		s->ctr.tcp_time_wait_recycled++;
		listen_input(s, l, seg);
		return;
	}

	stack_drop(s, UST_DROP_TCP_TIME_WAIT);

	/* RFC 1337: an RST must not cut TIME_WAIT short. Pure ACKs need no answer. */
	if ((seg->flags & TH_RST) || (seg->len == 0 && !(seg->flags & (TH_SYN | TH_FIN))))
		return;

	tcp_send_bare(s, tw->raddr, tw->lport, tw->rport, tw->snd_nxt, tw->rcv_nxt, TH_ACK,
		      tcp_now_ts(s), tw->ts_recent, tw->ts_ok);
}

static void
syn_received(struct ust_stack *s, struct ust_listener *l, const struct ust_seg *seg)
{
	struct ust_conn *c = conn_new(s, seg->src, seg->dport, seg->sport);

	if (!c) {
		stack_drop(s, UST_DROP_TCP_NO_MEMORY);
		return;
	}

	c->passive = true;
	c->listener = l;
	c->half_open = true;
	l->half_open++;
	tcp_negotiate(c, seg);
	c->snd_wnd = seg->wnd;
	c->snd_wl1 = seg->seq;
	c->iss = conn_isn(s, seg->src, seg->dport, seg->sport);
	c->snd_una = c->snd_nxt = c->snd_max = c->iss;
	c->recover = c->iss;
	conn_set_state(c, UST_TCP_SYN_RCVD);
	s->ctr.tcp_passive_opens++;
	tcp_send_syn(c);
	timer_update(c);
}

static void
send_cookie(struct ust_stack *s, const struct ust_seg *seg)
{
	uint16_t mss;
	uint32_t isn = cookie_make(s, seg, &mss);
	bool ts = seg->opts.ts_ok && s->cfg.timestamps;
	uint32_t tsval = ts ? cookie_tsval(s, seg) : 0;

	/* Without timestamps the scale cannot come back, so do not offer it. */
	bool ws = ts && seg->opts.ws_ok && s->cfg.window_scaling;

	s->ctr.tcp_syn_cookies_tx++;
	s->ctr.tcp_passive_opens++;
	tcp_send_synack_cookie(s, seg, isn, tsval, ws);
}

/* The final ACK of a handshake answered with a cookie. */
static void
cookie_accept(struct ust_stack *s, struct ust_listener *l, const struct ust_seg *seg)
{
	struct ust_conn *c;
	uint16_t mss;
	uint8_t ws = 0;
	bool ws_ok = false;

	if (!s->cfg.syn_cookies || !cookie_check(s, seg, &mss)) {
		stack_drop(s, s->cfg.syn_cookies ? UST_DROP_TCP_BAD_COOKIE : UST_DROP_TCP_NO_CONN);
		tcp_send_reply_rst(s, seg);
		return;
	}

	c = conn_new(s, seg->src, seg->dport, seg->sport);
	if (!c) {
		stack_drop(s, UST_DROP_TCP_NO_MEMORY);
		return;
	}

	c->passive = true;
	c->listener = l;
	c->ts_ok = s->cfg.timestamps && seg->opts.ts_ok;
	if (c->ts_ok)
		cookie_options(seg->opts.tsecr, &ws_ok, &ws);
	c->ws_ok = ws_ok;
	c->snd_wscale = ws;
	c->rcv_wscale = ws_ok ? s->our_wscale : 0;
	c->ts_recent = seg->opts.tsval;
	c->mss = conn_mss_for(s, mss, c->ts_ok);
	c->cwnd = 10u * c->mss;
	c->irs = seg->seq - 1;
	c->rcv_nxt = seg->seq;
	c->rcv_adv = c->rcv_nxt + min_u32(s->cfg.rcvbuf, 65535);
	c->last_ack_sent = c->rcv_nxt;
	c->iss = seg->ack - 1;
	c->snd_una = c->snd_nxt = c->snd_max = c->recover = seg->ack;
	c->snd_wnd = seg->wnd << c->snd_wscale;
	c->snd_wl1 = seg->seq;
	c->snd_wl2 = seg->ack;
	s->ctr.tcp_syn_cookies_ok++;
	conn_established(c);
	tcp_process(c, seg);
}

static void
listen_input(struct ust_stack *s, struct ust_listener *l, const struct ust_seg *seg)
{
	if (seg->flags & TH_RST) {
		stack_drop(s, UST_DROP_TCP_NO_CONN);
		return;
	}
	if (seg->flags & TH_ACK) {
		cookie_accept(s, l, seg);
		return;
	}
	if (!(seg->flags & TH_SYN)) {
		stack_drop(s, UST_DROP_TCP_NO_CONN);
		tcp_send_reply_rst(s, seg);
		return;
	}

	if (l->half_open < s->cfg.syn_backlog && s->nconns < s->cfg.max_conns) {
		syn_received(s, l, seg);
		return;
	}
	if (s->cfg.syn_cookies) {
		send_cookie(s, seg);
		return;
	}
	stack_drop(s, UST_DROP_TCP_BACKLOG);
}

void
tcp_input(struct ust_stack *s, const struct ust_pkt *pkt)
{
	struct ust_seg seg;
	enum ust_drop why = parse_segment(pkt, &seg);
	struct ust_conn *c;
	struct ust_tw *tw;
	struct ust_listener *l;

	if (why != UST_DROP_NONE) {
		stack_drop(s, why);
		return;
	}

	c = conn_lookup(s, seg.src, seg.dport, seg.sport);
	if (c) {
		tcp_process(c, &seg);
		return;
	}

	tw = tw_lookup(s, seg.src, seg.dport, seg.sport);
	if (tw) {
		tw_input(s, tw, &seg);
		return;
	}

	l = listener_find(s, seg.dport);
	if (l) {
		listen_input(s, l, &seg);
		return;
	}

	stack_drop(s, UST_DROP_TCP_NO_CONN);
	tcp_send_reply_rst(s, &seg);
}
