/*
 * The TCP state machine of one connection (RFC 9293 3.10.7.4), with
 * RFC 7323 (PAWS, timestamps, window scale), RFC 5961 (blind RST and SYN
 * resistance), RFC 5681/6582 (duplicate ACKs, fast retransmit, NewReno)
 * and RFC 6298 (RTT samples under Karn's rule).
 *
 * TODO(#5): SACK (RFC 2018/6675); today a loss burst beyond what NewReno
 * repairs one hole per RTT falls back to the RTO.
 *
 *                      +---------+ ust_connect: SYN
 *        ust_listen    |  CLOSED |-----------------------+
 *       +------------- +---------+                       v
 *       |  rcv SYN: SYN-ACK                        +----------+
 *       v                  rcv SYN: SYN-ACK        | SYN_SENT |
 *  +----------+ <--------------------------------- +----------+
 *  | SYN_RCVD |                                         | rcv SYN-ACK: ACK
 *  +----------+ rcv ACK of SYN  +-------------+ <-------+
 *       +---------------------> | ESTABLISHED |
 *                               +-------------+
 *       shutdown: FIN           |             |  rcv FIN: ACK
 *       +-----------------------+             +------------------+
 *       v                                                        v
 *  +------------+  rcv FIN: ACK   +---------+               +------------+
 *  | FIN_WAIT_1 |---------------> | CLOSING |               | CLOSE_WAIT |
 *  +------------+                 +---------+               +------------+
 *       | rcv ACK of FIN               | rcv ACK of FIN          | shutdown: FIN
 *       v                              v                         v
 *  +------------+  rcv FIN: ACK   +-----------+            +----------+
 *  | FIN_WAIT_2 |---------------> | TIME_WAIT |            | LAST_ACK |
 *  +------------+                 +-----------+            +----------+
 *                                  (table, 2 MSL)    rcv ACK of FIN: CLOSED
 *
 * An RST in any synchronized state, at exactly rcv_nxt, closes at once.
 */
#include "ust_impl.h"

/* --- SYN_SENT --- */

static void
syn_sent_input(struct ust_conn *c, const struct ust_seg *seg)
{
	struct ust_stack *s = c->stack;
	bool ack_ok = (seg->flags & TH_ACK) && seg->ack == c->iss + 1;

	if ((seg->flags & TH_ACK) && !ack_ok) {
		stack_drop(s, UST_DROP_TCP_BAD_ACK);
		tcp_send_reply_rst(s, seg);
		return;
	}
	if (seg->flags & TH_RST) {
		if (!ack_ok) {
			stack_drop(s, UST_DROP_TCP_RST_IGNORED);
			return;
		}
		s->ctr.tcp_resets_rx++;
		conn_closed(c, UST_CLOSE_REFUSED);
		return;
	}
	if (!(seg->flags & TH_SYN)) {
		stack_drop(s, UST_DROP_TCP_FLAGS);
		return;
	}

	tcp_negotiate(c, seg);
	if (!ack_ok) {
		/* Simultaneous open: both SYNs crossed. */
		conn_set_state(c, UST_TCP_SYN_RCVD);
		tcp_send_syn(c);
		return;
	}

	if (c->rtt_timing)
		tcp_rtt_sample(c, s->now - c->rtt_start);
	c->rtt_timing = false;
	c->snd_una = seg->ack;
	c->snd_wnd = seg->wnd; /* never scaled in a SYN */
	c->max_snd_wnd = c->snd_wnd;
	c->snd_wl1 = seg->seq;
	c->snd_wl2 = seg->ack;
	c->rtx_at = 0;
	c->ack_now = true;
	conn_established(c);
}

/* --- Acceptability (RFC 9293 3.10.7.4, first check) --- */

/*
 * Cut seg down to what falls inside the receive window. False when none of
 * it does: the caller answers with an ACK and drops the segment. A
 * duplicate still has its ACK field processed.
 */
static bool
trim_to_window(struct ust_conn *c, struct ust_seg *seg)
{
	uint32_t wnd = c->rcv.cap - c->rcv.len;
	int32_t before = (int32_t)(c->rcv_nxt - seg->seq);
	int32_t beyond;

	if (before > 0) {
		/* A duplicate, a probe or an overlap: answer it either way. */
		seg->old = true;
		c->ack_now = true;
		if ((uint32_t)before > seg->len) {
			seg->flags &= (uint8_t)~TH_FIN;
			seg->len = 0;
		} else {
			seg->data += before;
			seg->len -= (uint32_t)before;
		}
		seg->seq = c->rcv_nxt;
	}

	beyond = (int32_t)(seg->seq + seg->len - (c->rcv_nxt + wnd));
	if (beyond <= 0)
		return true;

	if ((uint32_t)beyond < seg->len) {
		seg->len -= (uint32_t)beyond;
		seg->flags &= (uint8_t)~TH_FIN;
		return true;
	}

	/* Wholly beyond the window: a probe of a closed one is answered. */
	c->ack_now = true;
	if (wnd == 0 && seg->seq == c->rcv_nxt) {
		seg->len = 0;
		seg->flags &= (uint8_t)~TH_FIN;
		return true;
	}
	return false;
}

/* RFC 5961 3.2: only an RST at exactly rcv_nxt resets; others get an ACK. */
static void
rst_input(struct ust_conn *c, const struct ust_seg *seg)
{
	struct ust_stack *s = c->stack;

	if (seg->seq != c->rcv_nxt) {
		s->ctr.tcp_challenge_acks++;
		stack_drop(s, UST_DROP_TCP_RST_IGNORED);
		c->ack_now = true;
		return;
	}

	s->ctr.tcp_resets_rx++;
	conn_closed(c, UST_CLOSE_RESET);
}

/* --- ACK processing --- */

/* RFC 6582: three duplicates start a recovery; more inflate the window. */
static void
dupack(struct ust_conn *c)
{
	struct ust_stack *s = c->stack;
	uint32_t flight = c->snd_max - c->snd_una;

	s->ctr.tcp_dupacks_rx++;
	c->dupacks++;

	if (c->in_recovery) {
		c->cwnd += c->mss;
		return;
	}
	if (c->dupacks != 3 || !SEQ_GT(c->snd_una, c->recover))
		return;

	c->ssthresh = max_u32(flight / 2, 2u * c->mss);
	c->recover = c->snd_max;
	c->in_recovery = true;
	c->fast_retransmits++;
	s->ctr.tcp_fast_retransmits++;
	s->ctr.tcp_recoveries++;
	tcp_retransmit_first(c);
	c->cwnd = c->ssthresh + 3u * c->mss;
}

static void
grow_cwnd(struct ust_conn *c, uint32_t acked)
{
	uint32_t inc;

	if (c->cwnd < c->ssthresh)
		inc = min_u32(acked, c->mss); /* slow start, RFC 3465 L = 1 */
	else
		inc = max_u32(1, (uint32_t)((uint64_t)c->mss * c->mss / c->cwnd));

	if (c->cwnd < (1u << 30))
		c->cwnd += inc;
}

/* New data acknowledged: RFC 6582 3.2 steps 3 and 4 while recovering. */
static void
congestion_on_ack(struct ust_conn *c, uint32_t acked)
{
	if (!c->in_recovery) {
		c->dupacks = 0;
		grow_cwnd(c, acked);
		return;
	}

	if (SEQ_GEQ(c->snd_una, c->recover)) {
		uint32_t flight = c->snd_max - c->snd_una;

		c->in_recovery = false;
		c->dupacks = 0;
		c->cwnd = max_u32(min_u32(c->ssthresh, flight + c->mss), c->mss);
		return;
	}

	/* Partial ACK: the next hole is lost too; resend it at once. */
	tcp_retransmit_first(c);
	c->cwnd = c->cwnd > acked ? c->cwnd - acked : 0;
	if (acked >= c->mss)
		c->cwnd += c->mss;
	c->cwnd = max_u32(c->cwnd, c->mss);
}

static void
new_ack(struct ust_conn *c, uint32_t ack)
{
	struct ust_stack *s = c->stack;
	uint32_t acked = ack - c->snd_una;
	uint32_t data = min_u32(acked, c->snd.len);

	ring_drop(&c->snd, data);
	if (c->rtt_timing && SEQ_GT(ack, c->rtt_seq)) {
		c->rtt_timing = false;
		tcp_rtt_sample(c, s->now - c->rtt_start);
	}

	c->retries = 0;
	c->snd_una = ack;
	if (SEQ_LT(c->snd_nxt, c->snd_una))
		c->snd_nxt = c->snd_una;
	congestion_on_ack(c, acked);

	if (c->snd_una == c->snd_max)
		c->rtx_at = 0;
	else
		tcp_arm_rtx(c);

	if (data && c->want_write) {
		c->want_write = false;
		c->events |= EV_WRITABLE;
	}
}

static void
window_update(struct ust_conn *c, const struct ust_seg *seg)
{
	if (!(SEQ_LT(c->snd_wl1, seg->seq) ||
	      (c->snd_wl1 == seg->seq && SEQ_LEQ(c->snd_wl2, seg->ack))))
		return;

	c->snd_wnd = seg->wnd << c->snd_wscale;
	c->snd_wl1 = seg->seq;
	c->snd_wl2 = seg->ack;
	c->max_snd_wnd = max_u32(c->max_snd_wnd, c->snd_wnd);

	/* A peer that answers with a closed window is alive, only full. */
	if (c->snd_wnd == 0)
		c->retries = 0;
}

/* Our FIN is acknowledged: the closing states move on. */
static void
fin_acked(struct ust_conn *c)
{
	struct ust_stack *s = c->stack;

	switch (c->state) {
	case UST_TCP_FIN_WAIT_1:
		conn_set_state(c, UST_TCP_FIN_WAIT_2);
		if (c->released)
			c->linger_at = s->now + s->cfg.fin_wait2_us;
		break;
	case UST_TCP_CLOSING:
		tw_enter(c);
		conn_closed(c, UST_CLOSE_NORMAL);
		break;
	case UST_TCP_LAST_ACK:
		conn_closed(c, UST_CLOSE_NORMAL);
		break;
	default:
		break;
	}
}

static bool
syn_rcvd_ack(struct ust_conn *c, const struct ust_seg *seg)
{
	if (!SEQ_GT(seg->ack, c->snd_una) || SEQ_GT(seg->ack, c->snd_max)) {
		stack_drop(c->stack, UST_DROP_TCP_BAD_ACK);
		tcp_send_reply_rst(c->stack, seg);
		return false;
	}

	if (c->rtt_timing)
		tcp_rtt_sample(c, c->stack->now - c->rtt_start);
	c->rtt_timing = false;
	c->snd_una = seg->ack;
	c->rtx_at = 0;
	c->snd_wnd = seg->wnd << c->snd_wscale;
	c->max_snd_wnd = c->snd_wnd;
	c->snd_wl1 = seg->seq;
	c->snd_wl2 = seg->ack;
	conn_established(c);
	return c->state != UST_TCP_CLOSED;
}

/* False when the segment is done with (dropped or the connection ended). */
static bool
ack_input(struct ust_conn *c, const struct ust_seg *seg)
{
	struct ust_stack *s = c->stack;
	uint32_t max_back = max_u32(c->max_snd_wnd, 65535);
	bool dup;

	if (c->state == UST_TCP_SYN_RCVD && !syn_rcvd_ack(c, seg))
		return false;

	if (SEQ_GT(seg->ack, c->snd_max) || SEQ_LT(seg->ack, c->snd_una - max_back)) {
		stack_drop(s, UST_DROP_TCP_BAD_ACK);
		c->ack_now = true;
		return false;
	}

	dup = seg->ack == c->snd_una && seg->len == 0 && !(seg->flags & (TH_FIN | TH_SYN)) &&
	      !seg->old && (seg->wnd << c->snd_wscale) == c->snd_wnd && c->snd_max != c->snd_una;

	if (SEQ_GT(seg->ack, c->snd_una))
		new_ack(c, seg->ack);
	else if (dup)
		dupack(c);
	window_update(c, seg);

	if (c->fin_sent && c->snd_una == c->snd_max)
		fin_acked(c);
	return c->state != UST_TCP_CLOSED;
}

/* --- Data and FIN --- */

/* Record [start, end) as held beyond a hole; false when out of slots. */
static bool
ooo_add(struct ust_conn *c, uint32_t start, uint32_t end)
{
	struct ust_range r[UST_OOO_RANGES + 1];
	uint32_t n = 0, i = 0;

	while (i < c->n_ooo && SEQ_LT(c->ooo[i].end, start))
		r[n++] = c->ooo[i++];

	/* Absorb every range that overlaps or touches the new one. */
	for (; i < c->n_ooo && SEQ_LEQ(c->ooo[i].start, end); i++) {
		if (SEQ_LT(c->ooo[i].start, start))
			start = c->ooo[i].start;
		if (SEQ_GT(c->ooo[i].end, end))
			end = c->ooo[i].end;
	}
	r[n++] = (struct ust_range){start, end};
	while (i < c->n_ooo && n <= UST_OOO_RANGES)
		r[n++] = c->ooo[i++];

	if (n > UST_OOO_RANGES || i < c->n_ooo)
		return false;

	memcpy(c->ooo, r, n * sizeof(r[0]));
	c->n_ooo = n;
	return true;
}

static void fin_input(struct ust_conn *c);

/* rcv_nxt moved: pull in the ranges it reached, and a FIN waiting there. */
static void
ooo_advance(struct ust_conn *c)
{
	while (c->n_ooo && SEQ_LEQ(c->ooo[0].start, c->rcv_nxt)) {
		if (SEQ_GT(c->ooo[0].end, c->rcv_nxt)) {
			c->rcv.len += c->ooo[0].end - c->rcv_nxt;
			c->rcv_nxt = c->ooo[0].end;
		}
		memmove(c->ooo, c->ooo + 1, --c->n_ooo * sizeof(c->ooo[0]));
		c->ack_now = true; /* a hole filled: tell the sender now */
	}

	if (c->ooo_fin && c->rcv_nxt == c->ooo_fin_seq) {
		c->ooo_fin = false;
		fin_input(c);
	}
}

static void
schedule_ack(struct ust_conn *c)
{
	/* RFC 5681 4.2: at least every second full segment, else delayed. */
	if (++c->unacked_segs >= 2)
		c->ack_now = true;
	else if (!c->dack_at)
		c->dack_at = c->stack->now + c->stack->cfg.delack_us;
}

static void
data_input(struct ust_conn *c, const struct ust_seg *seg)
{
	struct ust_stack *s = c->stack;
	uint32_t off = seg->seq - c->rcv_nxt;

	if (c->fin_rcvd)
		return; /* nothing follows a FIN */

	/* After ust_close no one will read it: say so (RFC 2525 2.17). */
	if (c->released) {
		tcp_send_rst(c);
		conn_closed(c, UST_CLOSE_ABORTED);
		return;
	}

	ring_write_at(&c->rcv, c->rcv.len + off, seg->data, seg->len);
	if (off == 0) {
		c->rcv.len += seg->len;
		c->rcv_nxt += seg->len;
		schedule_ack(c);
		ooo_advance(c);
		c->events |= EV_READABLE;
		return;
	}

	/* Beyond a hole: an immediate duplicate ACK drives fast retransmit. */
	c->ack_now = true;
	if (!ooo_add(c, seg->seq, seg->seq + seg->len))
		stack_drop(s, UST_DROP_TCP_OOO_FULL);
}

static void
fin_input(struct ust_conn *c)
{
	if (c->fin_rcvd)
		return;

	c->fin_rcvd = true;
	c->rcv_nxt++;
	c->ack_now = true;
	c->events |= EV_READABLE;

	switch (c->state) {
	case UST_TCP_SYN_RCVD:
	case UST_TCP_ESTABLISHED:
		conn_set_state(c, UST_TCP_CLOSE_WAIT);
		break;
	case UST_TCP_FIN_WAIT_1:
		conn_set_state(c, UST_TCP_CLOSING);
		break;
	case UST_TCP_FIN_WAIT_2:
		tcp_send_ack(c);
		tw_enter(c);
		conn_closed(c, UST_CLOSE_NORMAL);
		break;
	default:
		break;
	}
}

static void
fin_seen(struct ust_conn *c, const struct ust_seg *seg)
{
	uint32_t fin_seq = seg->seq + seg->len;

	if (fin_seq == c->rcv_nxt) {
		fin_input(c);
	} else if (SEQ_GT(fin_seq, c->rcv_nxt) && !c->fin_rcvd) {
		c->ooo_fin = true;
		c->ooo_fin_seq = fin_seq;
	} else {
		c->ack_now = true; /* a retransmitted FIN: our ACK was lost */
	}
}

/* --- One segment for a connection past SYN_SENT --- */

static bool
paws_reject(struct ust_conn *c, const struct ust_seg *seg)
{
	if (!c->ts_ok || !seg->opts.ts_ok || (seg->flags & TH_RST))
		return false;
	if (!SEQ_LT(seg->opts.tsval, c->ts_recent))
		return false;

	stack_drop(c->stack, UST_DROP_TCP_PAWS);
	c->ack_now = true;
	return true;
}

/* A SYN where none belongs: retransmitted (resend SYN-ACK) or RFC 5961 4. */
static void
syn_in_sync(struct ust_conn *c, const struct ust_seg *seg)
{
	struct ust_stack *s = c->stack;

	stack_drop(s, UST_DROP_TCP_SYN_IN_SYNC);
	if (c->state == UST_TCP_SYN_RCVD && seg->seq == c->irs) {
		c->retransmits++;
		s->ctr.tcp_retransmits++;
		tcp_send_syn(c);
		return;
	}
	s->ctr.tcp_challenge_acks++;
	c->ack_now = true;
}

static void
sync_input(struct ust_conn *c, const struct ust_seg *in)
{
	struct ust_seg seg = *in;

	if (paws_reject(c, &seg))
		return;
	if (seg.flags & TH_SYN) {
		syn_in_sync(c, &seg);
		return;
	}
	if (!trim_to_window(c, &seg)) {
		stack_drop(c->stack, UST_DROP_TCP_OUT_OF_WINDOW);
		return;
	}
	if (seg.flags & TH_RST) {
		rst_input(c, &seg);
		return;
	}
	if (!(seg.flags & TH_ACK)) {
		stack_drop(c->stack, UST_DROP_TCP_FLAGS);
		return;
	}
	if (!ack_input(c, &seg))
		return;

	/* RFC 7323 4.3: remember the timestamp of the segment we ACK next. */
	if (c->ts_ok && seg.opts.ts_ok && SEQ_LEQ(in->seq, c->last_ack_sent))
		c->ts_recent = seg.opts.tsval;

	if (seg.len)
		data_input(c, &seg);
	if ((seg.flags & TH_FIN) && c->state != UST_TCP_CLOSED)
		fin_seen(c, &seg);
}

void
tcp_process(struct ust_conn *c, const struct ust_seg *seg)
{
	if (c->state == UST_TCP_SYN_SENT)
		syn_sent_input(c, seg);
	else
		sync_input(c, seg);

	if (c->state != UST_TCP_CLOSED)
		tcp_output(c);
	timer_update(c);
	conn_dispatch(c);
}
