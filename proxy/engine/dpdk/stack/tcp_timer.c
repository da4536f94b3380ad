/*
 * TCP timers. Each connection has four: retransmission (RFC 6298),
 * delayed ACK, persist (zero-window probes) and linger (an orphaned
 * FIN_WAIT_2). A min-heap orders connections by their earliest one, so
 * ust_timers touches only connections that are due.
 *
 * TODO(#5): keepalive. An idle connection whose peer vanished lives until
 * the application's own idle timeout closes it.
 *
 * TIME_WAIT connections live in their own bounded table: a ring in
 * arrival order, which is also expiry order because every entry waits the
 * same time, plus a hash to find them. When the ring is full the oldest
 * entry is evicted early; a hole left by a removed entry simply waits at
 * the head for its turn.
 */
#include <errno.h>
#include <stdlib.h>

#include "ust_impl.h"

static uint64_t
earliest(const struct ust_conn *c)
{
	uint64_t t = UINT64_MAX;
	const uint64_t all[] = {c->rtx_at, c->dack_at, c->persist_at, c->linger_at};

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (all[i])
			t = min_u64(t, all[i]);
	return t == UINT64_MAX ? 0 : t;
}

static void
heap_set(struct ust_stack *s, uint32_t i, struct ust_conn *c)
{
	s->heap[i] = c;
	c->heap_idx = i;
}

static void
sift_up(struct ust_stack *s, uint32_t i)
{
	struct ust_conn *c = s->heap[i];

	while (i > 0) {
		uint32_t parent = (i - 1) / 2;

		if (s->heap[parent]->deadline <= c->deadline)
			break;
		heap_set(s, i, s->heap[parent]);
		i = parent;
	}
	heap_set(s, i, c);
}

static void
sift_down(struct ust_stack *s, uint32_t i)
{
	struct ust_conn *c = s->heap[i];

	for (;;) {
		uint32_t child = 2 * i + 1;

		if (child >= s->heap_len)
			break;
		if (child + 1 < s->heap_len &&
		    s->heap[child + 1]->deadline < s->heap[child]->deadline)
			child++;
		if (c->deadline <= s->heap[child]->deadline)
			break;
		heap_set(s, i, s->heap[child]);
		i = child;
	}
	heap_set(s, i, c);
}

void
timer_remove(struct ust_conn *c)
{
	struct ust_stack *s = c->stack;
	uint32_t i = c->heap_idx;
	struct ust_conn *moved;

	if (i == UINT32_MAX)
		return;

	c->heap_idx = UINT32_MAX;
	if (--s->heap_len == i)
		return;

	moved = s->heap[s->heap_len];
	heap_set(s, i, moved);
	sift_up(s, i);
	sift_down(s, moved->heap_idx);
}

/* Re-file c after any of its timers changed. */
void
timer_update(struct ust_conn *c)
{
	struct ust_stack *s = c->stack;
	uint64_t t = c->state == UST_TCP_CLOSED ? 0 : earliest(c);

	if (t == 0) {
		timer_remove(c);
		return;
	}

	c->deadline = t;
	if (c->heap_idx == UINT32_MAX) {
		c->heap_idx = s->heap_len++;
		s->heap[c->heap_idx] = c;
	}
	sift_up(s, c->heap_idx);
	sift_down(s, c->heap_idx);
}

void
tcp_arm_rtx(struct ust_conn *c)
{
	c->rtx_at = c->stack->now + c->rto_us;
}

static uint64_t
clamp_rto(const struct ust_stack *s, uint64_t rto)
{
	if (rto < s->cfg.rto_min_us)
		return s->cfg.rto_min_us;
	return min_u64(rto, s->cfg.rto_max_us);
}

/* RFC 6298 section 2, with a 1 µs clock granularity. */
void
tcp_rtt_sample(struct ust_conn *c, uint64_t rtt)
{
	if (c->rtt_samples == 0) {
		c->srtt_us = rtt;
		c->rttvar_us = rtt / 2;
	} else {
		uint64_t delta = c->srtt_us > rtt ? c->srtt_us - rtt : rtt - c->srtt_us;

		c->rttvar_us = (3 * c->rttvar_us + delta) / 4;
		c->srtt_us = (7 * c->srtt_us + rtt) / 8;
	}

	c->rtt_samples++;
	c->backoff = 0;
	/* RTO = SRTT + max(G, 4 RTTVAR), G being our 1 µs clock tick. */
	c->rto_us = clamp_rto(c->stack, c->srtt_us + (c->rttvar_us ? 4 * c->rttvar_us : 1));
}

static bool
out_of_retries(struct ust_conn *c)
{
	const struct ust_config *cfg = &c->stack->cfg;
	bool opening = c->state == UST_TCP_SYN_SENT || c->state == UST_TCP_SYN_RCVD;

	return c->retries >= (opening ? cfg->syn_retries : cfg->data_retries);
}

/*
 * The retransmission timer fired: back off (RFC 6298 5.5), collapse the
 * congestion window to one segment (RFC 5681 3.1) and go back to snd_una.
 */
static void
on_rto(struct ust_conn *c)
{
	struct ust_stack *s = c->stack;
	uint32_t flight = c->snd_max - c->snd_una;

	if (out_of_retries(c)) {
		if (c->state != UST_TCP_SYN_SENT && c->state != UST_TCP_SYN_RCVD)
			tcp_send_rst(c);
		c->err = -ETIMEDOUT;
		conn_closed(c, UST_CLOSE_TIMEOUT);
		return;
	}

	s->ctr.tcp_rto++;
	c->retries++;
	c->backoff++;
	c->rto_us = min_u64(c->rto_us * 2, s->cfg.rto_max_us);
	c->rtt_timing = false;

	if (c->state == UST_TCP_SYN_SENT || c->state == UST_TCP_SYN_RCVD) {
		c->retransmits++;
		s->ctr.tcp_retransmits++;
		tcp_send_syn(c);
		tcp_arm_rtx(c);
		return;
	}

	c->ssthresh = max_u32(flight / 2, 2u * c->mss);
	c->cwnd = c->mss;
	c->in_recovery = false;
	c->dupacks = 0;
	c->recover = c->snd_max;
	c->snd_nxt = c->snd_una;
	tcp_output(c);

	/* The window shut on data in flight: nothing may go, so ask for it. */
	if (c->snd_nxt == c->snd_una && c->snd_wnd == 0)
		tcp_send_probe(c);
	if (!c->rtx_at && c->snd_una != c->snd_max)
		tcp_arm_rtx(c);
}

static void
on_persist(struct ust_conn *c)
{
	struct ust_stack *s = c->stack;

	/* No one will read what an orphan still has to send: bound the wait. */
	if (c->released && c->persist_shift >= s->cfg.data_retries) {
		tcp_send_rst(c);
		conn_closed(c, UST_CLOSE_TIMEOUT);
		return;
	}

	c->zwp++;
	s->ctr.tcp_zero_window_probes++;
	tcp_send_probe(c);
	c->persist_shift++;
	tcp_output(c); /* re-arms persist with the longer interval */
}

static void
conn_timer(struct ust_conn *c)
{
	struct ust_stack *s = c->stack;
	uint64_t now = s->now;

	if (c->dack_at && c->dack_at <= now) {
		c->dack_at = 0;
		s->ctr.tcp_delayed_acks++;
		tcp_send_ack(c);
	}
	if (c->rtx_at && c->rtx_at <= now) {
		c->rtx_at = 0;
		on_rto(c);
	}
	if (c->state != UST_TCP_CLOSED && c->persist_at && c->persist_at <= now) {
		c->persist_at = 0;
		on_persist(c);
	}
	if (c->state != UST_TCP_CLOSED && c->linger_at && c->linger_at <= now) {
		c->linger_at = 0;
		conn_closed(c, UST_CLOSE_TIMEOUT);
	}
}

void
tcp_timers(struct ust_stack *s)
{
	while (s->heap_len && s->heap[0]->deadline <= s->now) {
		struct ust_conn *c = s->heap[0];

		conn_timer(c);
		timer_update(c);
		conn_dispatch(c);
	}
}

uint64_t
tcp_next_timer(const struct ust_stack *s)
{
	return s->heap_len ? s->heap[0]->deadline : UINT64_MAX;
}

/* --- TIME_WAIT --- */

int
tw_create(struct ust_stack *s)
{
	uint32_t n = 1;

	while (n < s->cfg.time_wait_max)
		n <<= 1;
	s->tw = calloc(s->cfg.time_wait_max, sizeof(*s->tw));
	s->tw_buckets = calloc(n, sizeof(*s->tw_buckets));
	if (!s->tw || !s->tw_buckets)
		return -ENOMEM;

	s->tw_mask = n - 1;
	return 0;
}

void
tw_destroy(struct ust_stack *s)
{
	free(s->tw);
	free(s->tw_buckets);
}

static uint32_t *
tw_bucket(struct ust_stack *s, uint32_t raddr, uint16_t lport, uint16_t rport)
{
	uint8_t key[9];

	key[0] = 't';
	wr32(key + 1, raddr);
	wr16(key + 5, lport);
	wr16(key + 7, rport);
	return &s->tw_buckets[(uint32_t)stack_hash(s, key, sizeof(key)) & s->tw_mask];
}

struct ust_tw *
tw_lookup(struct ust_stack *s, uint32_t raddr, uint16_t lport, uint16_t rport)
{
	uint32_t i = *tw_bucket(s, raddr, lport, rport);

	for (; i; i = s->tw[i - 1].hash_next) {
		struct ust_tw *tw = &s->tw[i - 1];

		if (tw->raddr == raddr && tw->lport == lport && tw->rport == rport)
			return tw;
	}
	return NULL;
}

void
tw_remove(struct ust_stack *s, struct ust_tw *tw)
{
	uint32_t *link = tw_bucket(s, tw->raddr, tw->lport, tw->rport);
	uint32_t idx = (uint32_t)(tw - s->tw) + 1;

	if (!tw->used)
		return;

	while (*link != idx)
		link = &s->tw[*link - 1].hash_next;
	*link = tw->hash_next;
	tw->used = false;
	s->ctr.tcp_time_wait--;
}

static void
tw_pop_head(struct ust_stack *s)
{
	tw_remove(s, &s->tw[s->tw_head]);
	s->tw_head = (s->tw_head + 1) % s->cfg.time_wait_max;
	s->tw_count--;
}

/* c finished with our FIN acknowledged and theirs received: it waits here. */
void
tw_enter(struct ust_conn *c)
{
	struct ust_stack *s = c->stack;
	struct ust_tw *tw;
	uint32_t *link;

	if (s->tw_count == s->cfg.time_wait_max) {
		if (s->tw[s->tw_head].used)
			s->ctr.tcp_time_wait_evicted++;
		tw_pop_head(s);
	}

	tw = &s->tw[(s->tw_head + s->tw_count) % s->cfg.time_wait_max];
	s->tw_count++;
	tw->raddr = c->raddr;
	tw->lport = c->lport;
	tw->rport = c->rport;
	tw->snd_nxt = c->snd_max;
	tw->rcv_nxt = c->rcv_nxt;
	tw->ts_recent = c->ts_recent;
	tw->ts_ok = c->ts_ok;
	tw->expires = s->now + s->cfg.time_wait_us;
	tw->used = true;

	link = tw_bucket(s, tw->raddr, tw->lport, tw->rport);
	tw->hash_next = *link;
	*link = (uint32_t)(tw - s->tw) + 1;
	s->ctr.tcp_time_wait++;
}

void
tw_timers(struct ust_stack *s)
{
	while (s->tw_count) {
		struct ust_tw *head = &s->tw[s->tw_head];

		if (head->used && head->expires > s->now)
			break;
		tw_pop_head(s);
	}
}
