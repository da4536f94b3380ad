/*
 * The wire test harness; see wire.h.
 */
#include "wire.h"

#include <stdlib.h>
#include <string.h>

#include "ustest.h"

static int
node_tx(void *arg, const void *frame, size_t len, unsigned tx_flags)
{
	struct wire_node *n = arg;

	if (n->tap)
		cap_tx(n->tap, frame, len, tx_flags);
	ust_faults_push(n->out, frame, len, n->w->now);
	return 0;
}

static void
ep_step(struct endpoint *ep)
{
	long got;

	if (!ep->conn || !ep->established)
		return;

	while (ep->tx_off < ep->tx_len) {
		long sent = ust_send(ep->conn, ep->tx + ep->tx_off, ep->tx_len - ep->tx_off);

		if (sent <= 0)
			break;
		ep->tx_off += (size_t)sent;
	}
	if (ep->tx_off == ep->tx_len && ep->shut_after_tx && !ep->shut_done &&
	    ust_shutdown(ep->conn) == 0)
		ep->shut_done = true;

	while (!ep->paused && !ep->eof) {
		uint8_t sink[4096];
		size_t room = ep->rx_cap - ep->rx_len;

		got = room ? ust_recv(ep->conn, ep->rx + ep->rx_len, room)
			   : ust_recv(ep->conn, sink, sizeof(sink));
		if (got == 0)
			ep->eof = true;
		if (got <= 0)
			break;
		if (room)
			ep->rx_len += (size_t)got;
	}

	if (ep->shut_on_eof && ep->eof && !ep->shut_done && ust_shutdown(ep->conn) == 0)
		ep->shut_done = true;

	if (ep->close_when_done && ep->eof && ep->shut_done) {
		ust_close(ep->conn);
		ep->conn = NULL;
		ep->released = true;
	}
}

static void
on_accept(void *arg, struct ust_listener *l, struct ust_conn *conn)
{
	struct wire_node *n = arg;
	struct endpoint *ep = wire_endpoint(n->w, n->idx);

	n->accepted++;
	if (!ep) {
		ust_abort(conn);
		return;
	}
	*ep = n->tmpl;
	ep->used = true;
	ep->node = n;
	ep->conn = conn;
	ep->established = true;
	ust_conn_set_user(conn, ep);
	ust_conn_info(conn, &ep->at_accept);
	ep_step(ep);
}

static void
on_connected(void *arg, struct ust_conn *conn, int err)
{
	struct endpoint *ep = ust_conn_user(conn);

	ep->connect_err = err;
	if (err) {
		ep->conn = NULL;
		return;
	}
	ep->established = true;
	ep_step(ep);
}

static void
on_event(void *arg, struct ust_conn *conn)
{
	ep_step(ust_conn_user(conn));
}

static void
on_closed(void *arg, struct ust_conn *conn, enum ust_close_reason reason)
{
	struct endpoint *ep = ust_conn_user(conn);

	ep->closed++;
	ep->reason = reason;
	ep->conn = NULL;
}

void
wire_config(struct ust_config *cfg, int idx)
{
	ust_config_defaults(cfg);
	cfg->mac[0] = 0x02;
	cfg->mac[5] = (uint8_t)(idx + 1);
	cfg->ipv4 = IP4(10, 0, 0, idx + 1);
	cfg->prefix_len = 24;
	cfg->secret[0] = 0x1111111111111111ULL * (uint64_t)(idx + 1);
	cfg->secret[1] = 0x2222222222222222ULL;
	cfg->max_conns = 128;
	cfg->sndbuf = 256 * 1024;
	cfg->rcvbuf = 256 * 1024;
}

void
wire_faults_config(struct ust_faults_config *f, uint64_t seed)
{
	memset(f, 0, sizeof(*f));
	f->seed = seed;
	f->latency_us = 50;
	f->capacity = 512;
	f->frame_max = 2048;
}

int
wire_init(struct wire *w, const struct ust_config *cfg[2],
	  const struct ust_faults_config *faults[2])
{
	memset(w, 0, sizeof(*w));
	w->now = 1000000;

	for (int i = 0; i < 2; i++) {
		struct wire_node *n = &w->n[i];
		struct ust_config c;
		struct ust_faults_config f;
		struct ust_ops ops = {
			.arg = n,
			.tx = node_tx,
			.on_accept = on_accept,
			.on_connected = on_connected,
			.on_readable = on_event,
			.on_writable = on_event,
			.on_closed = on_closed,
		};
		int ret;

		n->w = w;
		n->idx = i;
		wire_config(&c, i);
		wire_faults_config(&f, 42 + (uint64_t)i);
		ret = ust_faults_create(faults && faults[i] ? faults[i] : &f, &n->out);
		if (ret == 0)
			ret = ust_stack_create(cfg && cfg[i] ? cfg[i] : &c, &ops, &n->st);
		if (ret != 0)
			return ret;
	}
	return 0;
}

void
wire_fini(struct wire *w)
{
	for (int i = 0; i < 2; i++) {
		ust_stack_destroy(w->n[i].st);
		ust_faults_destroy(w->n[i].out);
	}
}

struct endpoint *
wire_endpoint(struct wire *w, int idx)
{
	struct wire_node *n = &w->n[idx];

	for (int i = 0; i < WIRE_EPS; i++)
		if (!n->ep[i].used) {
			memset(&n->ep[i], 0, sizeof(n->ep[i]));
			n->ep[i].used = true;
			n->ep[i].node = n;
			return &n->ep[i];
		}
	return NULL;
}

int
wire_connect(struct wire *w, struct endpoint *ep, uint16_t port)
{
	return ust_connect(w->n[0].st, IP4(10, 0, 0, 2), port, 0, w->now, ep, &ep->conn);
}

static void
deliver_to_1(void *arg, const void *frame, size_t len)
{
	struct wire *w = arg;

	ust_input(w->n[1].st, frame, len, 0, w->now);
}

static void
deliver_to_0(void *arg, const void *frame, size_t len)
{
	struct wire *w = arg;

	ust_input(w->n[0].st, frame, len, 0, w->now);
}

static void
step(struct wire *w)
{
	ust_faults_pop(w->n[0].out, w->now, deliver_to_1, w);
	ust_faults_pop(w->n[1].out, w->now, deliver_to_0, w);
	for (int i = 0; i < 2; i++) {
		ust_timers(w->n[i].st, w->now);
		for (int e = 0; e < WIRE_EPS; e++)
			if (w->n[i].ep[e].used)
				ep_step(&w->n[i].ep[e]);
	}
	w->steps++;
}

static uint64_t
next_event(const struct wire *w)
{
	uint64_t next = UINT64_MAX;

	for (int i = 0; i < 2; i++) {
		uint64_t a = ust_faults_next(w->n[i].out), b = ust_next_timer(w->n[i].st);

		next = a < next ? a : next;
		next = b < next ? b : next;
	}
	return next;
}

bool
wire_run(struct wire *w, bool (*done)(struct wire *w, void *arg), void *arg, uint64_t max_us)
{
	uint64_t deadline = w->now + max_us;

	/* A bound on work as well as on virtual time, so a livelock fails. */
	for (int i = 0; i < 20000000; i++) {
		uint64_t next;

		step(w);
		if (done && done(w, arg))
			return true;

		next = next_event(w);
		if (next > deadline)
			break;
		if (next > w->now)
			w->now = next;
	}
	return done && done(w, arg);
}

void
wire_idle(struct wire *w, uint64_t us)
{
	uint64_t until = w->now + us;

	wire_run(w, NULL, NULL, us);
	w->now = until;
	step(w);
}
