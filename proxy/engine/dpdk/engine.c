/*
 * The DPDK engine's ops: each worker runs one userspace stack on its own
 * queue pair and glues each proxied connection, a pair of ust
 * connections (client and upstream), to ush_conn.
 *
 * The stack's sends are synchronous: ust_send copies what fits into the
 * connection's send buffer, so the engine reports it sent at once. Reads
 * happen only while ush_conn wants bytes; what it does not want stays in
 * the stack's receive buffer, whose window then closes towards the peer.
 *
 * The stack's callbacks never call reconcile(). They note what happened
 * (or, when a connection ends, deliver its last bytes) and put the
 * connection on the pending list; the loop reconciles pending connections
 * after each burst, and only reconcile() frees one. So no connection is
 * freed under a callback that still uses it.
 *
 * One loop iteration:
 *
 *   mailbox, drain, timeouts --> RX burst + ring --> stack timers
 *     --> reconcile pending connections --> TX burst --> spin or sleep
 */
#include "engine.h"

#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <rte_errno.h>
#include <rte_lcore.h>

#include "dpdk.h"
#include "log.h"
#include "ust.h"
#include "wheel.h"
#include "worker.h"

#define MAX_LISTENERS 16    /* the stack's own limit */
#define RECV_CHUNK    16384 /* read per step, so backpressure acts in steps */
#define SPIN_POLLS    256   /* empty polls before the worker sleeps */
#define MAX_SLEEP_US  50000 /* housekeeping runs at least this often */

struct dpdk_worker;
struct dpdk_conn;

/* One side of a proxied connection, the user pointer of its ust_conn. */
struct dpdk_leg {
	struct dpdk_conn *dc;
	struct ust_conn *uc; /* NULL before connect and once the stack is done */
	bool upstream;
	bool rx_done; /* its end of stream or an error reached ush_conn */
};

struct dpdk_conn {
	struct ush_conn conn;
	struct dpdk_worker *dw;
	struct ush_worker_share *share;
	struct dpdk_conn *next, *prev;                 /* every connection */
	struct dpdk_conn *pending_next, *pending_prev; /* to reconcile */
	bool pending;
	struct ush_wheel_node timer;
	struct dpdk_leg client;
	struct dpdk_leg upstream;
	bool attempted;       /* a connect for connect_for was started */
	unsigned connect_for; /* conn.connect_tries of that connect */
};

struct dpdk_listener {
	struct dpdk_worker *dw;
	struct ust_listener *l;
	uint16_t port;
	size_t env; /* index of its listener in the current share */
	bool used;
};

struct dpdk_worker {
	struct ush_worker *w;
	struct ust_stack *stack;
	bool registered; /* with EAL, for the mempool caches */
	struct dpdk_listener listeners[MAX_LISTENERS];
	struct ush_wheel wheel;
	struct dpdk_conn *conns;
	struct dpdk_conn *pending_head, *pending_tail;
	uint64_t now_ms;
	uint64_t counters_ms;
	unsigned idle_polls;
	bool draining;
	unsigned char rxbuf[RECV_CHUNK];
	struct dpdk_io io;
};

/* ---- the pending list ---------------------------------------------------- */

static void
mark_pending(struct dpdk_conn *dc)
{
	struct dpdk_worker *dw = dc->dw;

	if (dc->pending)
		return;

	dc->pending = true;
	dc->pending_next = NULL;
	dc->pending_prev = dw->pending_tail;
	if (dw->pending_tail != NULL)
		dw->pending_tail->pending_next = dc;
	else
		dw->pending_head = dc;
	dw->pending_tail = dc;
}

static void
unmark_pending(struct dpdk_conn *dc)
{
	struct dpdk_worker *dw = dc->dw;

	if (!dc->pending)
		return;

	if (dc->pending_prev != NULL)
		dc->pending_prev->pending_next = dc->pending_next;
	else
		dw->pending_head = dc->pending_next;
	if (dc->pending_next != NULL)
		dc->pending_next->pending_prev = dc->pending_prev;
	else
		dw->pending_tail = dc->pending_prev;
	dc->pending = false;
}

/* ---- connections ------------------------------------------------------------ */

static void
link_conn(struct dpdk_worker *dw, struct dpdk_conn *dc)
{
	dc->next = dw->conns;
	dc->prev = NULL;
	if (dw->conns != NULL)
		dw->conns->prev = dc;
	dw->conns = dc;
}

static void
unlink_conn(struct dpdk_worker *dw, struct dpdk_conn *dc)
{
	if (dc->prev != NULL)
		dc->prev->next = dc->next;
	else
		dw->conns = dc->next;
	if (dc->next != NULL)
		dc->next->prev = dc->prev;
}

static void
free_conn(struct dpdk_conn *dc)
{
	struct dpdk_worker *dw = dc->dw;
	struct ush_worker *w = dw->w;

	ush_worker_log_close(w, &dc->conn, dw->now_ms);
	ush_wheel_cancel(&dw->wheel, &dc->timer);
	unmark_pending(dc);
	unlink_conn(dw, dc);
	ush_conn_fini(&dc->conn);
	ush_worker_conn_closed(w, dc->share);
	free(dc);
}

/* Give both ust connections back: FIN after what is queued, or RST. */
static void
close_conn(struct dpdk_conn *dc)
{
	if (dc->client.uc != NULL)
		ust_close(dc->client.uc);
	if (dc->upstream.uc != NULL)
		ust_close(dc->upstream.uc);
	dc->client.uc = dc->upstream.uc = NULL;
	free_conn(dc);
}

/* At exit: reset both sides, without waiting for the peers. */
static void
abort_conn(struct dpdk_conn *dc)
{
	if (dc->client.uc != NULL)
		ust_abort(dc->client.uc);
	if (dc->upstream.uc != NULL)
		ust_abort(dc->upstream.uc);
	dc->client.uc = dc->upstream.uc = NULL;
	free_conn(dc);
}

/*
 * Nothing more goes or comes this way (reset, timed out, already shut).
 * Safe after the end of stream was reported: ush_conn then only stops
 * sending that way.
 */
static void
report_broken(struct dpdk_conn *dc, struct dpdk_leg *leg, int err)
{
	leg->rx_done = true;
	if (leg->upstream)
		ush_conn_on_upstream_error(&dc->conn, err);
	else
		ush_conn_on_client_error(&dc->conn, err);
}

/* What ust_recv ended with: 0 for the peer's end of stream, or -errno. */
static void
report_end(struct dpdk_conn *dc, struct dpdk_leg *leg, long rc)
{
	if (rc != 0) {
		report_broken(dc, leg, (int)-rc);
		return;
	}

	leg->rx_done = true;
	if (leg->upstream)
		ush_conn_on_upstream_eof(&dc->conn);
	else
		ush_conn_on_client_eof(&dc->conn);
}

/* Read one chunk from leg into its ush_conn. Whether anything happened. */
static bool
recv_leg(struct dpdk_conn *dc, struct dpdk_leg *leg)
{
	unsigned char *buf = dc->dw->rxbuf;
	long n;

	if (leg->uc == NULL || leg->rx_done)
		return false;

	n = ust_recv(leg->uc, buf, RECV_CHUNK);
	if (n == -EAGAIN)
		return false;

	if (n > 0 && leg->upstream)
		ush_conn_on_upstream_data(&dc->conn, buf, (size_t)n);
	else if (n > 0)
		ush_conn_on_client_data(&dc->conn, buf, (size_t)n);
	else
		report_end(dc, leg, n);
	return true;
}

/*
 * Hand the stack what fits of one direction's pending bytes. A peer that
 * half-closed (its end of stream read) still takes our bytes.
 */
static bool
send_leg(struct dpdk_conn *dc, struct dpdk_leg *leg)
{
	struct ush_conn *c = &dc->conn;
	const struct ush_buf *b = leg->upstream ? &c->to_upstream : &c->to_client;
	const unsigned char *data;
	size_t len;
	long n;

	data = ush_buf_peek(b, &len);
	if (len == 0 || leg->uc == NULL)
		return false;

	n = ust_send(leg->uc, data, len);
	if (n == -EAGAIN)
		return false; /* on_writable follows once the peer acknowledges */

	if (n > 0)
		ush_conn_on_sent(c, leg->upstream, (size_t)n);
	else
		report_broken(dc, leg, n == 0 ? EPIPE : (int)-n);
	return true;
}

static void
abandon_connect(struct dpdk_conn *dc)
{
	if (dc->upstream.uc == NULL)
		return;

	ust_abort(dc->upstream.uc);
	dc->upstream.uc = NULL;
}

static bool
start_connect(struct dpdk_conn *dc)
{
	const struct cfg_addr *addr = &dc->conn.server->cfg->address;
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&addr->ss;
	struct ust_conn *uc = NULL;
	int rc = -EAFNOSUPPORT;

	abandon_connect(dc);
	dc->attempted = true;
	dc->connect_for = dc->conn.connect_tries;
	dc->upstream.rx_done = false;

	/* A reload may bring an IPv6 server; it fails like a refused one. */
	if (addr->ss.ss_family == AF_INET)
		rc = ust_connect(dc->dw->stack, ntohl(sin->sin_addr.s_addr), ntohs(sin->sin_port),
				 0, dc->dw->io.now_us, &dc->upstream, &uc);
	if (rc != 0) {
		ush_conn_on_upstream_failed(&dc->conn, -rc);
		return true;
	}

	dc->upstream.uc = uc;
	return true;
}

static bool
ensure_connect(struct dpdk_conn *dc)
{
	if (dc->attempted && dc->connect_for == dc->conn.connect_tries)
		return false;

	return start_connect(dc);
}

static bool
shut_upstream(struct dpdk_conn *dc)
{
	if (dc->conn.upstream_shut)
		return false;

	if (dc->upstream.uc != NULL)
		ust_shutdown(dc->upstream.uc);
	dc->conn.upstream_shut = true;
	return true;
}

static void
arm_timer(struct dpdk_conn *dc)
{
	ush_wheel_follow(&dc->dw->wheel, &dc->timer, dc->conn.deadline_ms);
}

/* One pass over what the connection wants; whether anything moved. */
static bool
reconcile_once(struct dpdk_conn *dc, unsigned wants)
{
	bool moved = false;

	if (wants & USH_WANT_CONNECT)
		moved |= ensure_connect(dc);
	if (wants & USH_WANT_SEND_CLIENT)
		moved |= send_leg(dc, &dc->client);
	if ((wants & USH_WANT_SEND_UPSTREAM) && dc->conn.upstream_open)
		moved |= send_leg(dc, &dc->upstream);
	if (wants & USH_WANT_RECV_CLIENT)
		moved |= recv_leg(dc, &dc->client);
	if ((wants & USH_WANT_RECV_UPSTREAM) && dc->conn.upstream_open)
		moved |= recv_leg(dc, &dc->upstream);
	if ((wants & USH_WANT_SHUT_UPSTREAM) && !(wants & USH_WANT_SEND_UPSTREAM))
		moved |= shut_upstream(dc);
	return moved;
}

/*
 * Do what the connection wants until nothing moves: each step may change
 * what it wants (a send makes room, so reading resumes). May free dc.
 */
static void
reconcile(struct dpdk_conn *dc)
{
	for (;;) {
		unsigned wants = ush_conn_wants(&dc->conn);

		if (wants & USH_WANT_CLOSE) {
			close_conn(dc);
			return;
		}
		if (!reconcile_once(dc, wants))
			break;
	}

	arm_timer(dc);
}

static unsigned
run_pending(struct dpdk_worker *dw)
{
	unsigned n = 0;

	while (dw->pending_head != NULL) {
		struct dpdk_conn *dc = dw->pending_head;

		unmark_pending(dc);
		reconcile(dc);
		n++;
	}

	return n;
}

/* ---- the stack's callbacks --------------------------------------------------- */

static void
fill_sockaddr(struct sockaddr_in *sin, uint32_t ip, uint16_t port)
{
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(ip);
	sin->sin_port = htons(port);
}

static struct dpdk_conn *
new_conn(struct dpdk_worker *dw, struct ust_conn *uc, struct ush_worker_share *share)
{
	struct dpdk_conn *dc = calloc(1, sizeof(*dc));

	if (dc == NULL)
		return NULL;

	dc->dw = dw;
	dc->share = share;
	dc->conn.engine = dc;
	dc->client = (struct dpdk_leg){.dc = dc, .uc = uc};
	dc->upstream = (struct dpdk_leg){.dc = dc, .upstream = true};
	ust_conn_set_user(uc, &dc->client);
	return dc;
}

static void
on_accept(void *arg, struct ust_listener *l, struct ust_conn *uc)
{
	struct dpdk_worker *dw = arg;
	struct dpdk_listener *dl = ust_listener_user(l);
	struct ush_worker *w = dw->w;
	struct ush_worker_share *share = w->current;
	struct sockaddr_in peer, local;
	struct ust_conn_info info;
	struct dpdk_conn *dc;

	if (dw->draining || share == NULL || w->live_conns >= w->max_conns ||
	    (dc = new_conn(dw, uc, share)) == NULL) {
		USH_STAT_ADD(w->stats.conns_rejected, 1);
		ust_close(uc);
		return;
	}

	USH_STAT_ADD(w->stats.conns_accepted, 1);
	ush_worker_conn_opened(w, share);
	link_conn(dw, dc);

	ust_conn_info(uc, &info);
	fill_sockaddr(&peer, info.remote_ip, info.remote_port);
	fill_sockaddr(&local, info.local_ip, info.local_port);
	if (ush_conn_init(&dc->conn, &share->envs[dl->env], (struct sockaddr *)&peer, sizeof(peer),
			  (struct sockaddr *)&local, sizeof(local)) != 0) {
		ush_log(USH_LOG_ERROR, "cannot set up a connection: out of memory or TLS failure");
		close_conn(dc);
		return;
	}

	mark_pending(dc);
}

static void
on_connected(void *arg, struct ust_conn *uc, int err)
{
	struct dpdk_leg *leg = ust_conn_user(uc);
	struct dpdk_conn *dc = leg->dc;

	if (err != 0) {
		leg->uc = NULL; /* the stack frees it after we return */
		ush_conn_on_upstream_failed(&dc->conn, -err);
	} else {
		ush_conn_on_upstream_connected(&dc->conn);
	}

	mark_pending(dc);
}

static void
on_ready(void *arg, struct ust_conn *uc)
{
	struct dpdk_leg *leg = ust_conn_user(uc);

	mark_pending(leg->dc);
}

static int
close_errno(enum ust_close_reason reason)
{
	switch (reason) {
	case UST_CLOSE_TIMEOUT:
		return ETIMEDOUT;
	case UST_CLOSE_UNREACHABLE:
		return EHOSTUNREACH;
	case UST_CLOSE_REFUSED:
		return ECONNREFUSED;
	default:
		return ECONNRESET;
	}
}

/*
 * The stack is done with uc and frees it when we return: take the bytes
 * still unread and the end of the stream now, wanted or not (ush_conn
 * accepts bytes past its wish). Unless both sides closed in order, what
 * ush_conn still means to send that way can no longer go.
 */
static void
on_closed(void *arg, struct ust_conn *uc, enum ust_close_reason reason)
{
	struct dpdk_leg *leg = ust_conn_user(uc);
	struct dpdk_conn *dc = leg->dc;

	while (recv_leg(dc, leg) && !leg->rx_done)
		;
	if (reason != UST_CLOSE_NORMAL || !leg->rx_done)
		report_broken(dc, leg, close_errno(reason));

	leg->uc = NULL;
	mark_pending(dc);
}

static int
on_tx(void *arg, const void *frame, size_t len, unsigned tx_flags)
{
	struct dpdk_worker *dw = arg;

	return dpdk_io_tx(&dw->io, frame, len, tx_flags);
}

/* ---- listeners across reloads -------------------------------------------------- */

static struct dpdk_listener *
find_listener(struct dpdk_worker *dw, uint16_t port)
{
	size_t i;

	for (i = 0; i < MAX_LISTENERS; i++)
		if (dw->listeners[i].used && dw->listeners[i].port == port)
			return &dw->listeners[i];

	return NULL;
}

static struct dpdk_listener *
add_listener(struct dpdk_worker *dw, const struct cfg_listener *cl, size_t env)
{
	struct dpdk_listener *dl = NULL;
	uint16_t port = dpdk_bind_port(&cl->bind);
	size_t i;
	int rc;

	for (i = 0; i < MAX_LISTENERS && dl == NULL; i++)
		if (!dw->listeners[i].used)
			dl = &dw->listeners[i];

	rc = dl != NULL ? ust_listen(dw->stack, port, dl, &dl->l) : -ENOSPC;
	if (rc != 0) {
		ush_log_errno(USH_LOG_ERROR, rc, "listener '%s': cannot listen on '%s'", cl->name,
			      cl->bind.text);
		return NULL;
	}

	*dl = (struct dpdk_listener){.dw = dw, .l = dl->l, .port = port, .env = env, .used = true};
	return dl;
}

/* Keep the ports that stay, listen on new ones, close the rest. */
static int
sync_listeners(struct dpdk_worker *dw, const struct cfg *cfg)
{
	bool keep[MAX_LISTENERS] = {false};
	size_t i;
	int rc = 0;

	for (i = 0; i < cfg->n_listeners; i++) {
		const struct cfg_listener *cl = &cfg->listeners[i];
		struct dpdk_listener *dl;

		/* Checked at start; a reload can still bring one, so say so once. */
		if (!dpdk_bind_ok(&cl->bind)) {
			if (dw->w->id == 0)
				ush_log(USH_LOG_ERROR,
					"listener '%s': bind '%s' is not on the DPDK port; not listening",
					cl->name, cl->bind.text);
			rc = -EINVAL;
			continue;
		}

		dl = find_listener(dw, dpdk_bind_port(&cl->bind));
		if (dl == NULL)
			dl = add_listener(dw, cl, i);
		if (dl == NULL) {
			rc = -EADDRINUSE;
			continue;
		}
		dl->env = i;
		keep[dl - dw->listeners] = true;
	}

	for (i = 0; i < MAX_LISTENERS; i++) {
		if (dw->listeners[i].used && !keep[i]) {
			ust_listener_close(dw->listeners[i].l);
			dw->listeners[i].used = false;
		}
	}

	return rc;
}

static void
close_listeners(struct dpdk_worker *dw)
{
	size_t i;

	for (i = 0; i < MAX_LISTENERS; i++) {
		if (dw->listeners[i].used)
			ust_listener_close(dw->listeners[i].l);
		dw->listeners[i].used = false;
	}
}

/* ---- the loop ------------------------------------------------------------------- */

static void
on_timer(struct ush_wheel_node *node, void *arg)
{
	struct dpdk_worker *dw = arg;
	struct dpdk_conn *dc =
		(struct dpdk_conn *)((char *)node - offsetof(struct dpdk_conn, timer));

	if (!ush_wheel_still_due(&dw->wheel, node, dc->conn.deadline_ms, dw->now_ms))
		return;

	ush_conn_on_timeout(&dc->conn);
	mark_pending(dc);
}

static void
start_drain(struct dpdk_worker *dw)
{
	struct dpdk_conn *dc;

	dw->draining = true;
	close_listeners(dw);
	for (dc = dw->conns; dc != NULL; dc = dc->next) {
		ush_conn_shutdown(&dc->conn);
		mark_pending(dc);
	}
}

static void
housekeeping(struct dpdk_worker *dw)
{
	struct ush_worker *w = dw->w;
	struct ush_worker_share *share;

	dw->now_ms = ush_now_ms();
	share = ush_worker_take_mailbox(w);
	if (share != NULL && !dw->draining)
		sync_listeners(dw, share->gen->cfg);

	if (!dw->draining && atomic_load(&w->drain))
		start_drain(dw);

	ush_wheel_advance(&dw->wheel, dw->now_ms, on_timer, dw);

	if (dw->now_ms - dw->counters_ms >= 100) {
		ush_worker_publish_counters(w);
		dpdk_io_publish(&dw->io);
		dw->counters_ms = dw->now_ms;
	}
}

/*
 * Every iteration, due or not: the stack's clock moves only here and on
 * input, and the sends that follow take their time from it.
 */
static void
run_stack_timers(struct dpdk_worker *dw)
{
	ust_timers(dw->stack, dw->io.now_us);
}

/*
 * Until a stack timer or a held-back frame is due, and at most
 * MAX_SLEEP_US, which bounds how late a connection timeout fires.
 */
static uint64_t
sleep_budget(struct dpdk_worker *dw)
{
	uint64_t now = dpdk_now_us();
	uint64_t due = now + MAX_SLEEP_US;
	uint64_t next = ust_next_timer(dw->stack);

	if (next < due)
		due = next;
	next = dpdk_io_next_due(&dw->io);
	if (next < due)
		due = next;

	return due > now ? due - now : 0;
}

/* Poll hot while there is work; after a run of empty polls, sleep. */
static void
idle(struct dpdk_worker *dw, unsigned work)
{
	uint64_t budget;

	if (work > 0) {
		dw->idle_polls = 0;
		return;
	}

	if (dw->idle_polls < SPIN_POLLS) {
		dw->idle_polls++;
		return;
	}

	budget = sleep_budget(dw);
	if (budget > 0)
		dpdk_io_sleep(&dw->io, budget);
}

static int
dpdk_run(struct ush_worker *w)
{
	struct dpdk_worker *dw = w->engine_state;

	while (!atomic_load(&w->stop)) {
		unsigned work;

		housekeeping(dw);
		if (dw->draining && w->live_conns == 0)
			break;

		work = dpdk_io_poll(&dw->io);
		run_stack_timers(dw);
		work += run_pending(dw);
		dpdk_io_flush(&dw->io);
		idle(dw, work);
	}

	dpdk_io_flush(&dw->io);
	return 0;
}

/* ---- engine entry points ----------------------------------------------------------- */

static uint32_t
clamp_u32(uint64_t v, uint32_t lo, uint32_t hi)
{
	return v < lo ? lo : v > hi ? hi : (uint32_t)v;
}

static int
create_stack(struct dpdk_worker *dw)
{
	struct ust_ops ops = {
		.arg = dw,
		.tx = on_tx,
		.on_accept = on_accept,
		.on_connected = on_connected,
		.on_readable = on_ready,
		.on_writable = on_ready,
		.on_closed = on_closed,
	};
	struct ust_config cfg;
	unsigned id = dw->w->id;

	ust_config_defaults(&cfg);
	memcpy(cfg.mac, dpdk_port.mac, sizeof(cfg.mac));
	cfg.ipv4 = dpdk_port.ipv4;
	cfg.prefix_len = dpdk_port.prefix_len;
	cfg.gateway = dpdk_port.gateway;
	cfg.mtu = dpdk_port.mtu;
	cfg.offloads = dpdk_port.tx_offloads;
	if (getrandom(cfg.secret, sizeof(cfg.secret), 0) != sizeof(cfg.secret))
		return -EIO;

	/* Each proxied connection holds two: the client's and the upstream. */
	cfg.max_conns =
		clamp_u32(dw->w->max_conns < (1u << 21) ? dw->w->max_conns * 2 + 64 : 1u << 22, 256,
			  1u << 22);
	cfg.port_min = dpdk_worker_port_min(id);
	cfg.port_max = dpdk_worker_port_max(id);

	return ust_stack_create(&cfg, &ops, &dw->stack);
}

static int
dpdk_init(struct ush_worker *w)
{
	struct dpdk_worker *dw = calloc(1, sizeof(*dw));
	int rc;

	if (dw == NULL)
		return -ENOMEM;

	dw->w = w;
	dw->io.id = w->id; /* so fini knows whose slot to clear */
	dw->io.epfd = -1;
	w->engine_state = dw;

	/* A registered thread has an lcore id, so mempool caches work. */
	if (rte_thread_register() != 0) {
		ush_log(USH_LOG_ERROR, "rte_thread_register() failed (%s)",
			rte_strerror(rte_errno));
		return -rte_errno;
	}
	dw->registered = true;

	rc = dpdk_io_init(&dw->io, w->id, w->wake_fd);
	if (rc != 0)
		return rc;

	rc = create_stack(dw);
	if (rc != 0) {
		ush_log_errno(USH_LOG_ERROR, rc, "cannot create the userspace TCP/IP stack");
		return rc;
	}
	dw->io.stack = dw->stack;

	dw->now_ms = ush_now_ms();
	ush_wheel_init(&dw->wheel, dw->now_ms);
	if (ush_worker_take_mailbox(w) == NULL)
		return -EINVAL;

	return sync_listeners(dw, w->current->gen->cfg);
}

static void
dpdk_fini(struct ush_worker *w)
{
	struct dpdk_worker *dw = w->engine_state;

	if (dw == NULL)
		return;

	dw->now_ms = ush_now_ms();
	while (dw->conns != NULL)
		abort_conn(dw->conns);

	/*
	 * The resets just queued go out before the stack disappears.
	 * TODO(#5): linger briefly so the FINs of connections that closed
	 * during the drain are acknowledged, as the kernel would.
	 */
	dpdk_io_flush(&dw->io);
	ust_stack_destroy(dw->stack);
	dpdk_io_fini(&dw->io);
	if (dw->registered)
		rte_thread_unregister();

	free(dw);
	w->engine_state = NULL;
}

/* The eventfd belongs to the runtime, so this is safe at any time. */
static void
dpdk_wake(struct ush_worker *w)
{
	uint64_t one = 1;

	if (w->wake_fd >= 0)
		(void)!write(w->wake_fd, &one, sizeof(one));
}

const struct ush_engine_ops ush_dpdk_engine = {
	.name = "dpdk",
	.init = dpdk_init,
	.run = dpdk_run,
	.fini = dpdk_fini,
	.wake = dpdk_wake,
	.global_init = dpdk_port_setup,
	.global_fini = dpdk_port_teardown,
	.print_metrics = dpdk_print_metrics,
};
