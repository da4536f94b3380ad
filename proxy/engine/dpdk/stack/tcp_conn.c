/*
 * TCP connections: the tables that find them, their birth and death, the
 * events owed to the application, and the socket calls.
 *
 * A connection object lives while either side needs it:
 *
 *	the application holds it   from on_accept / ust_connect until
 *	                           on_closed returns, on_connected reports
 *	                           an error, or it calls ust_close/ust_abort;
 *	the protocol needs it      until CLOSED, or until it moves into the
 *	                           TIME_WAIT table (which keeps only a tuple
 *	                           and two sequence numbers).
 *
 * When neither does it goes on the reap list, and is freed once the
 * outermost API call returns, so no caller is left holding a freed one.
 */
#include <errno.h>
#include <stdlib.h>

#include "ust_impl.h"

static uint32_t
pow2_at_least(uint32_t n)
{
	uint32_t p = 1;

	while (p < n)
		p <<= 1;
	return p;
}

int
conn_tables_create(struct ust_stack *s)
{
	uint32_t n = pow2_at_least(s->cfg.max_conns);

	s->buckets = calloc(n, sizeof(*s->buckets));
	s->heap = calloc(s->cfg.max_conns, sizeof(*s->heap));
	if (!s->buckets || !s->heap)
		return -ENOMEM;

	s->bucket_mask = n - 1;
	return 0;
}

static void
conn_free(struct ust_conn *c)
{
	struct ust_stack *s = c->stack;

	if (c->all_prev)
		c->all_prev->all_next = c->all_next;
	else
		s->all = c->all_next;
	if (c->all_next)
		c->all_next->all_prev = c->all_prev;

	ring_free(&c->snd);
	ring_free(&c->rcv);
	free(c);
	s->nconns--;
	s->ctr.tcp_conns = s->nconns;
}

void
conn_tables_destroy(struct ust_stack *s)
{
	while (s->all)
		conn_free(s->all);
	free(s->buckets);
	free(s->heap);
}

static uint32_t
bucket_of(const struct ust_stack *s, uint32_t raddr, uint16_t lport, uint16_t rport)
{
	uint8_t key[8];

	wr32(key, raddr);
	wr16(key + 4, lport);
	wr16(key + 6, rport);
	return (uint32_t)stack_hash(s, key, sizeof(key)) & s->bucket_mask;
}

struct ust_conn *
conn_lookup(struct ust_stack *s, uint32_t raddr, uint16_t lport, uint16_t rport)
{
	struct ust_conn *c = s->buckets[bucket_of(s, raddr, lport, rport)];

	for (; c; c = c->hash_next)
		if (c->raddr == raddr && c->lport == lport && c->rport == rport)
			return c;
	return NULL;
}

static void
conn_unhash(struct ust_conn *c)
{
	struct ust_stack *s = c->stack;
	struct ust_conn **pp = &s->buckets[bucket_of(s, c->raddr, c->lport, c->rport)];

	if (!c->hashed)
		return;

	while (*pp != c)
		pp = &(*pp)->hash_next;
	*pp = c->hash_next;
	c->hashed = false;
}

struct ust_listener *
listener_find(struct ust_stack *s, uint16_t port)
{
	for (int i = 0; i < UST_LISTENERS; i++)
		if (s->listeners[i].port == port)
			return &s->listeners[i];
	return NULL;
}

struct ust_conn *
conn_new(struct ust_stack *s, uint32_t raddr, uint16_t lport, uint16_t rport)
{
	uint32_t b = bucket_of(s, raddr, lport, rport);
	struct ust_conn *c;

	if (s->nconns >= s->cfg.max_conns)
		return NULL;

	/* TODO(#5): a per-core mempool, so the fast path never calls malloc. */
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	if (ring_init(&c->snd, s->cfg.sndbuf) != 0 || ring_init(&c->rcv, s->cfg.rcvbuf) != 0) {
		ring_free(&c->snd);
		free(c);
		return NULL;
	}

	c->stack = s;
	c->raddr = raddr;
	c->lport = lport;
	c->rport = rport;
	c->heap_idx = UINT32_MAX;
	c->rto_us = s->cfg.rto_initial_us;
	c->ssthresh = UINT32_MAX;

	c->hash_next = s->buckets[b];
	s->buckets[b] = c;
	c->hashed = true;
	c->all_next = s->all;
	if (s->all)
		s->all->all_prev = c;
	s->all = c;
	s->nconns++;
	s->ctr.tcp_conns = s->nconns;
	return c;
}

/* RFC 6528: a keyed hash of the tuple plus a 4 µs clock. */
uint32_t
conn_isn(struct ust_stack *s, uint32_t raddr, uint16_t lport, uint16_t rport)
{
	uint8_t key[13];

	key[0] = 'i';
	wr32(key + 1, s->cfg.ipv4);
	wr32(key + 5, raddr);
	wr16(key + 9, lport);
	wr16(key + 11, rport);
	return (uint32_t)stack_hash(s, key, sizeof(key)) + (uint32_t)(s->now / 4);
}

/* What we may put in one segment: the peer's MSS, our MTU, our options. */
uint16_t
conn_mss_for(const struct ust_stack *s, uint16_t peer_mss, bool ts)
{
	uint32_t mss = min_u32(peer_mss ? peer_mss : 536, (uint32_t)s->cfg.mtu - 40);

	/* A peer announcing a tiny MSS would have us send a flood of headers. */
	mss = max_u32(mss, 88);
	return (uint16_t)(ts ? mss - 12 : mss);
}

static void
conn_reap(struct ust_conn *c)
{
	struct ust_stack *s = c->stack;

	if (c->reaping)
		return;

	c->reaping = true;
	c->reap_next = s->reap;
	s->reap = c;
}

void
conn_reap_all(struct ust_stack *s)
{
	while (s->reap) {
		struct ust_conn *c = s->reap;

		s->reap = c->reap_next;
		conn_free(c);
	}
}

static void
half_open_done(struct ust_conn *c)
{
	if (!c->half_open)
		return;

	c->half_open = false;
	if (c->listener)
		c->listener->half_open--;
}

void
conn_set_state(struct ust_conn *c, enum ust_tcp_state state)
{
	c->state = state;
}

static int
errno_for(enum ust_close_reason reason)
{
	switch (reason) {
	case UST_CLOSE_REFUSED:
		return -ECONNREFUSED;
	case UST_CLOSE_UNREACHABLE:
		return -EHOSTUNREACH;
	case UST_CLOSE_RESET:
		return -ECONNRESET;
	default:
		return -ETIMEDOUT;
	}
}

/*
 * The protocol is done with c. An application that still holds it hears
 * of it from conn_dispatch; otherwise it is freed once the call returns.
 */
void
conn_closed(struct ust_conn *c, enum ust_close_reason reason)
{
	bool opening = c->state == UST_TCP_SYN_SENT;

	if (c->state == UST_TCP_CLOSED)
		return;

	half_open_done(c);
	conn_set_state(c, UST_TCP_CLOSED);
	conn_unhash(c);
	c->rtx_at = c->dack_at = c->persist_at = c->linger_at = 0;
	timer_remove(c);
	c->close_reason = reason;
	if (reason == UST_CLOSE_TIMEOUT)
		c->stack->ctr.tcp_timeouts++;

	if (!c->app_owned || c->released) {
		conn_reap(c);
		return;
	}

	if (opening) {
		if (c->err == 0)
			c->err = errno_for(reason);
		c->events |= EV_CONNECT_ERR;
	} else {
		c->events |= EV_CLOSED;
	}
}

void
conn_established(struct ust_conn *c)
{
	struct ust_stack *s = c->stack;

	conn_set_state(c, UST_TCP_ESTABLISHED);
	s->ctr.tcp_established++;
	half_open_done(c);
	c->retries = 0;
	c->events |= EV_ESTABLISHED;

	if (!c->passive)
		return;

	/* The listener went away while the handshake was in flight. */
	if (!c->listener || c->listener->port != c->lport) {
		tcp_send_rst(c);
		conn_closed(c, UST_CLOSE_ABORTED);
		return;
	}
	c->app_owned = true;
}

/* Hand the application what happened, in the order it happened. */
void
conn_dispatch(struct ust_conn *c)
{
	const struct ust_ops *ops = &c->stack->ops;

	while (c->events && c->app_owned && !c->released) {
		unsigned ev = c->events;

		if (ev & EV_ESTABLISHED) {
			c->events &= ~EV_ESTABLISHED;
			if (c->passive && ops->on_accept)
				ops->on_accept(ops->arg, c->listener, c);
			else if (!c->passive && ops->on_connected)
				ops->on_connected(ops->arg, c, 0);
		} else if (ev & EV_CONNECT_ERR) {
			c->events = 0;
			c->app_owned = false;
			if (ops->on_connected)
				ops->on_connected(ops->arg, c, c->err);
			conn_reap(c);
		} else if (ev & EV_READABLE) {
			c->events &= ~EV_READABLE;
			if (ops->on_readable)
				ops->on_readable(ops->arg, c);
		} else if (ev & EV_WRITABLE) {
			c->events &= ~EV_WRITABLE;
			if (ops->on_writable)
				ops->on_writable(ops->arg, c);
		} else {
			c->events = 0;
			c->app_owned = false;
			if (ops->on_closed)
				ops->on_closed(ops->arg, c, c->close_reason);
			conn_reap(c);
		}
	}

	if (!c->app_owned || c->released)
		c->events = 0;
}

int
ust_listen(struct ust_stack *s, uint16_t port, void *user, struct ust_listener **out)
{
	struct ust_listener *l;

	if (port == 0)
		return -EINVAL;
	if (listener_find(s, port))
		return -EADDRINUSE;

	l = listener_find(s, 0);
	if (!l)
		return -ENOSPC;

	l->stack = s;
	l->port = port;
	l->half_open = 0;
	l->user = user;
	*out = l;
	return 0;
}

void *
ust_listener_user(const struct ust_listener *l)
{
	return l->user;
}

void
ust_listener_close(struct ust_listener *l)
{
	struct ust_stack *s = l->stack;

	stack_enter(s);
	for (struct ust_conn *c = s->all; c; c = c->all_next) {
		if (c->listener != l)
			continue;

		half_open_done(c);
		c->listener = NULL;
		if (c->state == UST_TCP_SYN_RCVD) {
			tcp_send_rst(c);
			conn_closed(c, UST_CLOSE_ABORTED);
		}
	}
	l->port = 0;
	stack_leave(s);
}

static bool
tuple_free(struct ust_stack *s, uint32_t ip, uint16_t lport, uint16_t port)
{
	return !conn_lookup(s, ip, lport, port) && !tw_lookup(s, ip, lport, port) &&
	       !listener_find(s, lport);
}

static int
pick_port(struct ust_stack *s, uint32_t ip, uint16_t port, uint16_t *lport)
{
	uint32_t span = (uint32_t)s->cfg.port_max - s->cfg.port_min + 1;

	for (uint32_t i = 0; i < span; i++) {
		uint16_t p = s->next_port;

		s->next_port = p == s->cfg.port_max ? s->cfg.port_min : (uint16_t)(p + 1);
		if (tuple_free(s, ip, p, port)) {
			*lport = p;
			return 0;
		}
	}
	return -EADDRNOTAVAIL;
}

int
ust_connect(struct ust_stack *s, uint32_t ip, uint16_t port, uint16_t local_port, uint64_t now_us,
	    void *user, struct ust_conn **out)
{
	struct ust_conn *c;
	int ret;

	if (ip == 0 || port == 0 || ip == s->cfg.ipv4)
		return -EINVAL;
	if (!arp_route_ok(s, ip))
		return -ENETUNREACH;

	if (local_port && !tuple_free(s, ip, local_port, port))
		return -EADDRINUSE;
	if (!local_port && (ret = pick_port(s, ip, port, &local_port)) != 0)
		return ret;

	stack_enter(s);
	if (now_us > s->now)
		s->now = now_us;

	c = conn_new(s, ip, local_port, port);
	if (!c) {
		stack_leave(s);
		return -ENOBUFS;
	}

	c->user = user;
	c->app_owned = true;
	c->iss = conn_isn(s, ip, local_port, port);
	c->snd_una = c->snd_nxt = c->snd_max = c->iss;
	c->recover = c->iss;
	conn_set_state(c, UST_TCP_SYN_SENT);
	s->ctr.tcp_active_opens++;
	tcp_send_syn(c);
	timer_update(c);
	*out = c;
	stack_leave(s);
	return 0;
}

static long
closed_error(const struct ust_conn *c)
{
	return c->close_reason == UST_CLOSE_RESET ? -ECONNRESET : -ENOTCONN;
}

long
ust_send(struct ust_conn *c, const void *data, size_t len)
{
	struct ust_stack *s = c->stack;
	uint32_t n;

	switch (c->state) {
	case UST_TCP_ESTABLISHED:
	case UST_TCP_CLOSE_WAIT:
		break;
	case UST_TCP_SYN_SENT:
	case UST_TCP_SYN_RCVD:
		return -ENOTCONN;
	case UST_TCP_CLOSED:
		return c->close_reason == UST_CLOSE_RESET ? -ECONNRESET : -EPIPE;
	default:
		return -EPIPE;
	}
	if (c->fin_queued || c->released)
		return -EPIPE;

	n = ring_push(&c->snd, data, (uint32_t)min_u64(len, UINT32_MAX));
	if (n < len)
		c->want_write = true;
	if (n == 0)
		return -EAGAIN;

	/* No callbacks from here: the caller may be inside one already. */
	stack_enter(s);
	tcp_output(c);
	timer_update(c);
	stack_leave(s);
	return n;
}

/* After a read: tell the peer if the window opened by a useful amount. */
static void
window_update(struct ust_conn *c)
{
	uint32_t edge = c->rcv_nxt + tcp_rcv_window(c);
	uint32_t step = min_u32(c->rcv.cap / 2, 2u * c->mss);

	if (SEQ_GEQ(c->rcv_adv, edge) || edge - c->rcv_adv < step)
		return;

	tcp_send_ack(c);
}

long
ust_recv(struct ust_conn *c, void *buf, size_t cap)
{
	struct ust_stack *s = c->stack;
	uint32_t n;

	if (c->rcv.len == 0) {
		if (c->fin_rcvd)
			return 0;
		if (c->state == UST_TCP_CLOSED)
			return closed_error(c);
		if (c->state == UST_TCP_SYN_SENT || c->state == UST_TCP_SYN_RCVD)
			return -ENOTCONN;
		return -EAGAIN;
	}

	n = ring_pop(&c->rcv, buf, (uint32_t)min_u64(cap, UINT32_MAX));
	if (c->state == UST_TCP_CLOSED || c->state == UST_TCP_SYN_RCVD)
		return n;

	stack_enter(s);
	window_update(c);
	timer_update(c);
	stack_leave(s);
	return n;
}

int
ust_shutdown(struct ust_conn *c)
{
	struct ust_stack *s = c->stack;

	if (c->fin_queued)
		return 0;
	if (c->state == UST_TCP_ESTABLISHED)
		conn_set_state(c, UST_TCP_FIN_WAIT_1);
	else if (c->state == UST_TCP_CLOSE_WAIT)
		conn_set_state(c, UST_TCP_LAST_ACK);
	else
		return -ENOTCONN;

	stack_enter(s);
	c->fin_queued = true;
	tcp_output(c);
	timer_update(c);
	stack_leave(s);
	return 0;
}

void
ust_close(struct ust_conn *c)
{
	struct ust_stack *s = c->stack;

	stack_enter(s);
	c->released = true;
	c->events = 0;

	if (c->state == UST_TCP_CLOSED || c->state == UST_TCP_SYN_SENT) {
		conn_closed(c, UST_CLOSE_NORMAL);
		conn_reap(c);
	} else if (c->rcv.len > 0) {
		/* Unread data: the peer must learn it was not delivered. */
		tcp_send_rst(c);
		conn_closed(c, UST_CLOSE_ABORTED);
	} else {
		ust_shutdown(c);
		if (c->state == UST_TCP_FIN_WAIT_2)
			c->linger_at = s->now + s->cfg.fin_wait2_us;
		timer_update(c);
	}
	stack_leave(s);
}

void
ust_abort(struct ust_conn *c)
{
	struct ust_stack *s = c->stack;

	stack_enter(s);
	c->released = true;
	c->events = 0;
	if (c->state != UST_TCP_CLOSED && c->state != UST_TCP_SYN_SENT)
		tcp_send_rst(c);
	conn_closed(c, UST_CLOSE_ABORTED);
	conn_reap(c);
	stack_leave(s);
}

void
ust_conn_set_user(struct ust_conn *c, void *user)
{
	c->user = user;
}

void *
ust_conn_user(const struct ust_conn *c)
{
	return c->user;
}

void
ust_conn_info(const struct ust_conn *c, struct ust_conn_info *info)
{
	memset(info, 0, sizeof(*info));
	info->state = c->state;
	info->local_ip = c->stack->cfg.ipv4;
	info->remote_ip = c->raddr;
	info->local_port = c->lport;
	info->remote_port = c->rport;
	info->mss = c->mss;
	info->wscale_ok = c->ws_ok;
	info->ts_ok = c->ts_ok;
	info->snd_wscale = c->snd_wscale;
	info->rcv_wscale = c->rcv_wscale;
	info->snd_wnd = c->snd_wnd;
	info->rcv_wnd = c->rcv.cap - c->rcv.len;
	info->cwnd = c->cwnd;
	info->ssthresh = c->ssthresh;
	info->srtt_us = c->srtt_us;
	info->rttvar_us = c->rttvar_us;
	info->rto_us = c->rto_us;
	info->backoff = c->backoff;
	info->ts_recent = c->ts_recent;
	info->snd_queued = c->snd.len;
	info->rcv_queued = c->rcv.len;
	info->rtt_samples = c->rtt_samples;
	info->retransmits = c->retransmits;
	info->fast_retransmits = c->fast_retransmits;
	info->zero_window_probes = c->zwp;
	info->in_recovery = c->in_recovery;
}
