/*
 * The io_uring engine: one ring per worker on the kernel TCP stack.
 *
 * Every socket operation is an SQE whose user_data is a pointer with the
 * operation in its low three bits. Receives pick their buffer from a ring
 * of provided buffers, so an idle connection pins no receive memory; sends
 * go straight from the connection's output buffers. A connection has at
 * most one operation of each kind in flight and is freed only when none is
 * left, after its file descriptors were cancelled.
 *
 * One loop iteration: take the mailbox, run expired timers, submit what is
 * queued and wait for completions, all in one io_uring_enter().
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <liburing.h>

#include "engine.h"
#include "log.h"
#include "wheel.h"
#include "worker.h"

#define RING_ENTRIES   1024
#define BUF_GROUP      1
#define BUF_COUNT      512 /* power of two */
#define BUF_SIZE       16384
#define LISTEN_BACKLOG 4096
#define WAIT_MS        50
#define MAX_LISTENERS  64

enum op {
	OP_WAKE = 0,
	OP_ACCEPT = 1,
	OP_RECV_CLIENT = 2,
	OP_RECV_UPSTREAM = 3,
	OP_SEND_CLIENT = 4,
	OP_SEND_UPSTREAM = 5,
	OP_CONNECT = 6,
	OP_SHUTDOWN = 7,
};

#define OP_MASK 7u

/* Bits of uring_conn.armed: which operation kinds are in flight. */
#define ARMED_RECV_CLIENT   0x01u
#define ARMED_RECV_UPSTREAM 0x02u
#define ARMED_SEND_CLIENT   0x04u
#define ARMED_SEND_UPSTREAM 0x08u
#define ARMED_SHUTDOWN      0x10u

struct uring_worker;
struct uring_conn;

struct uring_listener {
	struct uring_worker *uw;
	char *bind_text;
	int fd;
	size_t env; /* index of its listener in the current share */
	bool accept_armed;
	bool stale; /* not in the current configuration any more */
} __attribute__((aligned(8)));

/* One upstream connect attempt; a retry abandons the previous one. */
struct connect_slot {
	struct uring_conn *uc;
	int fd;
	bool busy;
	bool abandoned;
} __attribute__((aligned(8)));

struct uring_conn {
	struct ush_conn conn;
	struct uring_worker *uw;
	struct ush_worker_share *share;
	struct uring_conn *next;
	struct uring_conn *prev;
	struct uring_conn *nobuf_next; /* waiting for a receive buffer */
	bool nobuf_queued;
	struct ush_wheel_node timer;
	int cfd;
	int ufd; /* the connected upstream, or -1 */
	unsigned inflight;
	unsigned armed;
	struct connect_slot slots[2];
	unsigned connect_for; /* conn.connect_tries of the active attempt */
	int active_slot;      /* -1 when no attempt is in flight */
	bool client_done;     /* recv returned 0 or an error */
	bool upstream_done;
	bool closing;
} __attribute__((aligned(16)));

struct uring_worker {
	struct ush_worker *w;
	struct io_uring ring;
	struct io_uring_buf_ring *br;
	unsigned char *bufs;
	size_t br_size;
	uint64_t wake_value;
	bool wake_armed;
	struct uring_listener listeners[MAX_LISTENERS];
	size_t n_listeners;
	struct ush_wheel wheel;
	struct uring_conn *conns;
	struct uring_conn *nobuf;
	uint64_t now_ms;
	uint64_t counters_ms;
	bool draining;
	struct ush_ratelimit log_limit;
};

static inline uint64_t
tag(const void *ptr, enum op op)
{
	return (uint64_t)(uintptr_t)ptr | (uint64_t)op;
}

static inline void *
untag(uint64_t user_data)
{
	return (void *)(uintptr_t)(user_data & ~(uint64_t)OP_MASK);
}

static struct io_uring_sqe *
get_sqe(struct uring_worker *uw)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&uw->ring);

	if (sqe == NULL) {
		/* The queue is full: hand it to the kernel and retry once. */
		io_uring_submit(&uw->ring);
		sqe = io_uring_get_sqe(&uw->ring);
	}

	return sqe;
}

/* ---- set-up ------------------------------------------------------------ */

static int
setup_ring(struct uring_worker *uw)
{
	struct io_uring_params p;
	unsigned flag_sets[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		IORING_SETUP_COOP_TASKRUN,
		0,
	};
	size_t i;
	int rc = -EINVAL;

	/* Newer flags first; older kernels refuse them with -EINVAL. */
	for (i = 0; i < sizeof(flag_sets) / sizeof(flag_sets[0]); i++) {
		memset(&p, 0, sizeof(p));
		p.flags = flag_sets[i];
		rc = io_uring_queue_init_params(RING_ENTRIES, &uw->ring, &p);
		if (rc != -EINVAL)
			break;
	}

	return rc;
}

static int
setup_buffers(struct uring_worker *uw)
{
	struct io_uring_buf_reg reg = {0};
	unsigned mask = (unsigned)io_uring_buf_ring_mask(BUF_COUNT);
	unsigned i;
	void *mem;
	int rc;

	/* liburing 2.3 has no io_uring_setup_buf_ring(): map and register. */
	uw->br_size = BUF_COUNT * sizeof(struct io_uring_buf);
	mem = mmap(NULL, uw->br_size, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (mem == MAP_FAILED)
		return -errno;
	uw->br = mem;

	uw->bufs = malloc((size_t)BUF_COUNT * BUF_SIZE);
	if (uw->bufs == NULL)
		return -ENOMEM;

	reg.ring_addr = (uint64_t)(uintptr_t)uw->br;
	reg.ring_entries = BUF_COUNT;
	reg.bgid = BUF_GROUP;
	rc = io_uring_register_buf_ring(&uw->ring, &reg, 0);
	if (rc != 0)
		return rc;

	io_uring_buf_ring_init(uw->br);
	for (i = 0; i < BUF_COUNT; i++)
		io_uring_buf_ring_add(uw->br, uw->bufs + (size_t)i * BUF_SIZE, BUF_SIZE,
				      (unsigned short)i, (int)mask, (int)i);
	io_uring_buf_ring_advance(uw->br, BUF_COUNT);
	return 0;
}

static void
recycle_buffer(struct uring_worker *uw, unsigned bid)
{
	io_uring_buf_ring_add(uw->br, uw->bufs + (size_t)bid * BUF_SIZE, BUF_SIZE,
			      (unsigned short)bid, io_uring_buf_ring_mask(BUF_COUNT), 0);
	io_uring_buf_ring_advance(uw->br, 1);
}

static int
open_listen_socket(const struct cfg_addr *addr)
{
	int one = 1;
	int fd;

	fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;

	/*
	 * One socket per worker; the kernel spreads connections over them.
	 * Accepted sockets inherit TCP_NODELAY: without it Nagle holds a TLS
	 * 1.3 session ticket back until the client's delayed ACK, 40 ms.
	 */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
	    bind(fd, (const struct sockaddr *)&addr->ss, addr->len) != 0 ||
	    listen(fd, LISTEN_BACKLOG) != 0) {
		int err = -errno;

		close(fd);
		return err;
	}

	return fd;
}

/* ---- connections ------------------------------------------------------- */

static void reconcile(struct uring_conn *uc);

static void
link_conn(struct uring_worker *uw, struct uring_conn *uc)
{
	uc->next = uw->conns;
	uc->prev = NULL;
	if (uw->conns != NULL)
		uw->conns->prev = uc;
	uw->conns = uc;
}

static void
unlink_conn(struct uring_worker *uw, struct uring_conn *uc)
{
	if (uc->prev != NULL)
		uc->prev->next = uc->next;
	else
		uw->conns = uc->next;
	if (uc->next != NULL)
		uc->next->prev = uc->prev;
}

static void
free_conn(struct uring_conn *uc)
{
	struct uring_worker *uw = uc->uw;
	struct ush_worker *w = uw->w;

	ush_worker_log_close(w, &uc->conn, uw->now_ms);
	ush_wheel_cancel(&uw->wheel, &uc->timer);
	unlink_conn(uw, uc);
	if (uc->cfd >= 0)
		close(uc->cfd);
	if (uc->ufd >= 0)
		close(uc->ufd);
	ush_conn_fini(&uc->conn);
	ush_worker_conn_closed(w, uc->share);
	free(uc);
}

static void
cancel_fd(struct uring_worker *uw, int fd)
{
	struct io_uring_sqe *sqe;

	if (fd < 0)
		return;

	sqe = get_sqe(uw);
	if (sqe == NULL)
		return;

	io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
	io_uring_sqe_set_data64(sqe, 0);
}

/* Cancel what is in flight; the last completion frees the connection. */
static void
start_close(struct uring_conn *uc)
{
	size_t i;

	uc->closing = true;
	ush_wheel_cancel(&uc->uw->wheel, &uc->timer);

	if (uc->inflight == 0) {
		free_conn(uc);
		return;
	}

	cancel_fd(uc->uw, uc->cfd);
	cancel_fd(uc->uw, uc->ufd);
	for (i = 0; i < 2; i++)
		if (uc->slots[i].busy)
			cancel_fd(uc->uw, uc->slots[i].fd);
}

static void
op_done(struct uring_conn *uc)
{
	uc->inflight--;
	if (uc->closing && uc->inflight == 0)
		free_conn(uc);
	else if (!uc->closing)
		reconcile(uc);
}

static bool
submit_recv(struct uring_conn *uc, int fd, enum op op)
{
	struct io_uring_sqe *sqe = get_sqe(uc->uw);

	if (sqe == NULL)
		return false;

	io_uring_prep_recv(sqe, fd, NULL, BUF_SIZE, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BUF_GROUP;
	io_uring_sqe_set_data64(sqe, tag(uc, op));
	uc->inflight++;
	uc->armed |= op == OP_RECV_CLIENT ? ARMED_RECV_CLIENT : ARMED_RECV_UPSTREAM;
	return true;
}

static void
submit_send(struct uring_conn *uc, int to_upstream)
{
	const struct ush_buf *b = to_upstream ? &uc->conn.to_upstream : &uc->conn.to_client;
	struct io_uring_sqe *sqe;
	const unsigned char *data;
	size_t len;

	data = ush_buf_peek(b, &len);
	if (len == 0)
		return;

	sqe = get_sqe(uc->uw);
	if (sqe == NULL)
		return;

	io_uring_prep_send(sqe, to_upstream ? uc->ufd : uc->cfd, data, len, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, tag(uc, to_upstream ? OP_SEND_UPSTREAM : OP_SEND_CLIENT));
	uc->inflight++;
	uc->armed |= to_upstream ? ARMED_SEND_UPSTREAM : ARMED_SEND_CLIENT;
}

static void
submit_shutdown(struct uring_conn *uc)
{
	struct io_uring_sqe *sqe = get_sqe(uc->uw);

	if (sqe == NULL)
		return;

	io_uring_prep_shutdown(sqe, uc->ufd, SHUT_WR);
	io_uring_sqe_set_data64(sqe, tag(uc, OP_SHUTDOWN));
	uc->inflight++;
	uc->armed |= ARMED_SHUTDOWN;
}

static void
abandon_attempt(struct uring_conn *uc)
{
	struct connect_slot *slot;

	if (uc->active_slot < 0)
		return;

	slot = &uc->slots[uc->active_slot];
	slot->abandoned = true;
	cancel_fd(uc->uw, slot->fd);
	uc->active_slot = -1;
}

static void
start_connect(struct uring_conn *uc)
{
	const struct cfg_addr *addr = &uc->conn.server->cfg->address;
	struct connect_slot *slot;
	struct io_uring_sqe *sqe;
	int i = uc->slots[0].busy ? 1 : 0;
	int fd;

	slot = &uc->slots[i];
	if (slot->busy) /* both attempts still being cancelled */
		return;

	fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0) {
		int one = 1;

		/* Relayed writes are whole messages already: send them now. */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	sqe = fd >= 0 ? get_sqe(uc->uw) : NULL;
	if (sqe == NULL) {
		if (fd >= 0)
			close(fd);
		ush_conn_on_upstream_failed(&uc->conn, fd < 0 ? errno : ENOBUFS);
		return;
	}

	*slot = (struct connect_slot){.uc = uc, .fd = fd, .busy = true};
	io_uring_prep_connect(sqe, fd, (const struct sockaddr *)&addr->ss, addr->len);
	io_uring_sqe_set_data64(sqe, tag(slot, OP_CONNECT));
	uc->inflight++;
	uc->active_slot = i;
	uc->connect_for = uc->conn.connect_tries;
}

static void
ensure_connect(struct uring_conn *uc)
{
	if (uc->active_slot >= 0 && uc->connect_for == uc->conn.connect_tries)
		return;

	abandon_attempt(uc);
	start_connect(uc);
}

static void
queue_nobuf(struct uring_conn *uc)
{
	if (uc->nobuf_queued)
		return;

	uc->nobuf_queued = true;
	uc->nobuf_next = uc->uw->nobuf;
	uc->uw->nobuf = uc;
}

static void
arm_timer(struct uring_conn *uc)
{
	ush_wheel_follow(&uc->uw->wheel, &uc->timer, uc->conn.deadline_ms);
}

static void
reconcile_io(struct uring_conn *uc, unsigned wants)
{
	if ((wants & USH_WANT_SEND_CLIENT) && !(uc->armed & ARMED_SEND_CLIENT))
		submit_send(uc, 0);

	if (uc->ufd >= 0 && (wants & USH_WANT_SEND_UPSTREAM) && !(uc->armed & ARMED_SEND_UPSTREAM))
		submit_send(uc, 1);

	if ((wants & USH_WANT_RECV_CLIENT) && !uc->client_done &&
	    !(uc->armed & ARMED_RECV_CLIENT) && !submit_recv(uc, uc->cfd, OP_RECV_CLIENT))
		queue_nobuf(uc);

	if (uc->ufd >= 0 && (wants & USH_WANT_RECV_UPSTREAM) && !uc->upstream_done &&
	    !(uc->armed & ARMED_RECV_UPSTREAM) && !submit_recv(uc, uc->ufd, OP_RECV_UPSTREAM))
		queue_nobuf(uc);

	if (uc->ufd >= 0 && (wants & USH_WANT_SHUT_UPSTREAM) && !(uc->armed & ARMED_SHUTDOWN) &&
	    !(wants & USH_WANT_SEND_UPSTREAM))
		submit_shutdown(uc);
}

/* Make the in-flight operations match what the connection wants. */
static void
reconcile(struct uring_conn *uc)
{
	unsigned wants;

	if (uc->closing)
		return;

	wants = ush_conn_wants(&uc->conn);
	if (wants & USH_WANT_CLOSE) {
		abandon_attempt(uc);
		start_close(uc);
		return;
	}

	if (wants & USH_WANT_CONNECT)
		ensure_connect(uc);

	reconcile_io(uc, wants);
	arm_timer(uc);
}

/* ---- completions -------------------------------------------------------- */

static void
on_recv(struct uring_conn *uc, struct io_uring_cqe *cqe, int from_upstream)
{
	struct uring_worker *uw = uc->uw;
	struct ush_conn *c = &uc->conn;

	uc->armed &= from_upstream ? ~ARMED_RECV_UPSTREAM : ~ARMED_RECV_CLIENT;

	if (cqe->res == -ENOBUFS) {
		queue_nobuf(uc);
	} else if (uc->closing || cqe->res == -ECANCELED) {
		/* nothing to deliver */
	} else if (cqe->res > 0) {
		unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
		const unsigned char *data = uw->bufs + (size_t)bid * BUF_SIZE;

		if (from_upstream)
			ush_conn_on_upstream_data(c, data, (size_t)cqe->res);
		else
			ush_conn_on_client_data(c, data, (size_t)cqe->res);
	} else if (from_upstream) {
		uc->upstream_done = true;
		if (cqe->res == 0)
			ush_conn_on_upstream_eof(c);
		else
			ush_conn_on_upstream_error(c, -cqe->res);
	} else {
		uc->client_done = true;
		if (cqe->res == 0)
			ush_conn_on_client_eof(c);
		else
			ush_conn_on_client_error(c, -cqe->res);
	}

	/* The data was copied or consumed by the connection: give it back. */
	if (cqe->flags & IORING_CQE_F_BUFFER)
		recycle_buffer(uw, cqe->flags >> IORING_CQE_BUFFER_SHIFT);

	op_done(uc);
}

static void
on_send(struct uring_conn *uc, struct io_uring_cqe *cqe, int to_upstream)
{
	struct ush_conn *c = &uc->conn;

	uc->armed &= to_upstream ? ~ARMED_SEND_UPSTREAM : ~ARMED_SEND_CLIENT;

	if (uc->closing || cqe->res == -ECANCELED) {
		/* the connection is going away */
	} else if (cqe->res >= 0) {
		ush_conn_on_sent(c, to_upstream, (size_t)cqe->res);
	} else if (to_upstream) {
		uc->upstream_done = true;
		ush_conn_on_upstream_error(c, -cqe->res);
	} else {
		uc->client_done = true;
		ush_conn_on_client_error(c, -cqe->res);
	}

	op_done(uc);
}

static void
on_connect(struct connect_slot *slot, int res)
{
	struct uring_conn *uc = slot->uc;
	bool current = !slot->abandoned && !uc->closing;

	slot->busy = false;
	if (!current || res != 0) {
		close(slot->fd);
		slot->fd = -1;
	}

	if (current) {
		uc->active_slot = -1;
		if (res == 0) {
			uc->ufd = slot->fd;
			uc->upstream_done = false;
			ush_conn_on_upstream_connected(&uc->conn);
		} else {
			ush_conn_on_upstream_failed(&uc->conn, -res);
		}
	}

	op_done(uc);
}

static void
on_shutdown(struct uring_conn *uc)
{
	op_done(uc);
}

static void
accept_one(struct uring_listener *ul, int fd)
{
	struct uring_worker *uw = ul->uw;
	struct ush_worker *w = uw->w;
	struct ush_worker_share *share = w->current;
	struct sockaddr_storage peer, local;
	socklen_t peer_len = sizeof(peer), local_len = sizeof(local);
	struct uring_conn *uc;

	if (uw->draining || share == NULL || w->live_conns >= w->max_conns) {
		USH_STAT_ADD(w->stats.conns_rejected, 1);
		close(fd);
		return;
	}

	uc = calloc(1, sizeof(*uc));
	if (uc == NULL || getpeername(fd, (struct sockaddr *)&peer, &peer_len) != 0 ||
	    getsockname(fd, (struct sockaddr *)&local, &local_len) != 0) {
		free(uc);
		close(fd);
		return;
	}

	uc->uw = uw;
	uc->cfd = fd;
	uc->ufd = -1;
	uc->active_slot = -1;
	uc->share = share;
	uc->conn.engine = uc;
	USH_STAT_ADD(w->stats.conns_accepted, 1);
	ush_worker_conn_opened(w, share);
	link_conn(uw, uc);

	if (ush_conn_init(&uc->conn, &share->envs[ul->env], (struct sockaddr *)&peer, peer_len,
			  (struct sockaddr *)&local, local_len) != 0) {
		ush_log(USH_LOG_ERROR, "cannot set up a connection: out of memory or TLS failure");
		free_conn(uc);
		return;
	}

	reconcile(uc);
}

static void arm_accept(struct uring_listener *ul);

static void
on_accept(struct uring_listener *ul, struct io_uring_cqe *cqe)
{
	if (!(cqe->flags & IORING_CQE_F_MORE))
		ul->accept_armed = false;

	if (cqe->res >= 0) {
		if (ul->stale)
			close(cqe->res);
		else
			accept_one(ul, cqe->res);
	} else if (cqe->res != -ECANCELED && cqe->res != -EINVAL) {
		ush_log_limited(&ul->uw->log_limit, USH_LOG_WARN, "accept on '%s' failed (%s)",
				ul->bind_text, strerror(-cqe->res));
	}

	if (ul->accept_armed)
		return;

	if (ul->stale && ul->fd >= 0) {
		close(ul->fd);
		ul->fd = -1;
	} else if (!ul->stale) {
		arm_accept(ul);
	}
}

static void
arm_accept(struct uring_listener *ul)
{
	struct io_uring_sqe *sqe = get_sqe(ul->uw);

	if (sqe == NULL)
		return;

	io_uring_prep_multishot_accept(sqe, ul->fd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, tag(ul, OP_ACCEPT));
	ul->accept_armed = true;
}

static void
arm_wake(struct uring_worker *uw)
{
	struct io_uring_sqe *sqe = get_sqe(uw);

	if (sqe == NULL)
		return;

	io_uring_prep_read(sqe, uw->w->wake_fd, &uw->wake_value, sizeof(uw->wake_value), 0);
	io_uring_sqe_set_data64(sqe, tag(uw, OP_WAKE));
	uw->wake_armed = true;
}

static void
dispatch(struct uring_worker *uw, struct io_uring_cqe *cqe)
{
	uint64_t data = io_uring_cqe_get_data64(cqe);
	void *ptr = untag(data);

	if (ptr == NULL)
		return; /* a cancel request's own completion */

	switch ((enum op)(data & OP_MASK)) {
	case OP_WAKE:
		uw->wake_armed = false;
		break;
	case OP_ACCEPT:
		on_accept(ptr, cqe);
		break;
	case OP_RECV_CLIENT:
		on_recv(ptr, cqe, 0);
		break;
	case OP_RECV_UPSTREAM:
		on_recv(ptr, cqe, 1);
		break;
	case OP_SEND_CLIENT:
		on_send(ptr, cqe, 0);
		break;
	case OP_SEND_UPSTREAM:
		on_send(ptr, cqe, 1);
		break;
	case OP_CONNECT:
		on_connect(ptr, cqe->res);
		break;
	case OP_SHUTDOWN:
		on_shutdown(ptr);
		break;
	}
}

/* ---- listeners across reloads ------------------------------------------ */

static struct uring_listener *
find_listener(struct uring_worker *uw, const char *bind_text)
{
	size_t i;

	for (i = 0; i < uw->n_listeners; i++)
		if (!uw->listeners[i].stale && strcmp(uw->listeners[i].bind_text, bind_text) == 0)
			return &uw->listeners[i];

	return NULL;
}

/* The socket is closed when the cancelled accept reports its end. */
static void
retire_listener(struct uring_listener *ul)
{
	ul->stale = true;
	if (ul->accept_armed) {
		cancel_fd(ul->uw, ul->fd);
		return;
	}

	close(ul->fd);
	ul->fd = -1;
}

/* A slot never used, or whose retired socket is fully closed. */
static struct uring_listener *
free_listener_slot(struct uring_worker *uw)
{
	size_t i;

	for (i = 0; i < uw->n_listeners; i++)
		if (uw->listeners[i].stale && uw->listeners[i].fd < 0)
			return &uw->listeners[i];

	if (uw->n_listeners == MAX_LISTENERS)
		return NULL;

	return &uw->listeners[uw->n_listeners++];
}

static struct uring_listener *
add_listener(struct uring_worker *uw, const struct cfg_listener *l, size_t env)
{
	struct uring_listener *ul = free_listener_slot(uw);
	int fd;

	if (ul == NULL)
		return NULL;

	fd = open_listen_socket(&l->bind);
	if (fd < 0) {
		ush_log(USH_LOG_ERROR, "listener '%s': cannot listen on '%s' (%s)", l->name,
			l->bind.text, strerror(-fd));
		if (ul == &uw->listeners[uw->n_listeners - 1] && ul->bind_text == NULL)
			uw->n_listeners--;
		return NULL;
	}

	free(ul->bind_text);
	*ul = (struct uring_listener){.uw = uw, .fd = fd, .env = env};
	ul->bind_text = strdup(l->bind.text);
	arm_accept(ul);
	return ul;
}

/* Keep the sockets of binds that stay, open new ones, close the rest. */
static int
sync_listeners(struct uring_worker *uw, const struct cfg *cfg)
{
	bool keep[MAX_LISTENERS] = {false};
	size_t i;
	int rc = 0;

	for (i = 0; i < cfg->n_listeners; i++) {
		struct uring_listener *ul = find_listener(uw, cfg->listeners[i].bind.text);

		if (ul != NULL) {
			ul->env = i;
			keep[ul - uw->listeners] = true;
		} else if ((ul = add_listener(uw, &cfg->listeners[i], i)) != NULL) {
			keep[ul - uw->listeners] = true;
		} else {
			rc = -EADDRINUSE;
		}
	}

	for (i = 0; i < uw->n_listeners; i++)
		if (!keep[i] && !uw->listeners[i].stale)
			retire_listener(&uw->listeners[i]);

	return rc;
}

static void
take_mailbox(struct uring_worker *uw)
{
	struct ush_worker_share *share = ush_worker_take_mailbox(uw->w);

	if (share != NULL && !uw->draining)
		sync_listeners(uw, share->gen->cfg);
}

/* ---- the loop ------------------------------------------------------------ */

static void
on_timer(struct ush_wheel_node *node, void *arg)
{
	struct uring_worker *uw = arg;
	struct uring_conn *uc =
		(struct uring_conn *)((char *)node - offsetof(struct uring_conn, timer));

	if (!ush_wheel_still_due(&uw->wheel, node, uc->conn.deadline_ms, uw->now_ms))
		return;

	ush_conn_on_timeout(&uc->conn);
	reconcile(uc);
}

static void
retry_nobuf(struct uring_worker *uw)
{
	struct uring_conn *list = uw->nobuf;

	uw->nobuf = NULL;
	while (list != NULL) {
		struct uring_conn *uc = list;

		list = uc->nobuf_next;
		uc->nobuf_queued = false;
		reconcile(uc);
	}
}

static void
start_drain(struct uring_worker *uw)
{
	struct uring_conn *uc, *next;
	size_t i;

	uw->draining = true;
	for (i = 0; i < uw->n_listeners; i++)
		if (!uw->listeners[i].stale)
			retire_listener(&uw->listeners[i]);

	for (uc = uw->conns; uc != NULL; uc = next) {
		next = uc->next;
		ush_conn_shutdown(&uc->conn);
		reconcile(uc);
	}
}

static void
housekeeping(struct uring_worker *uw)
{
	struct ush_worker *w = uw->w;

	uw->now_ms = ush_now_ms();
	take_mailbox(uw);

	if (!uw->draining && atomic_load(&w->drain))
		start_drain(uw);

	ush_wheel_advance(&uw->wheel, uw->now_ms, on_timer, uw);
	retry_nobuf(uw);

	if (!uw->wake_armed)
		arm_wake(uw);

	if (uw->now_ms - uw->counters_ms >= 100) {
		ush_worker_publish_counters(w);
		uw->counters_ms = uw->now_ms;
	}
}

static void
wait_and_dispatch(struct uring_worker *uw)
{
	struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = WAIT_MS * 1000000L};
	struct io_uring_cqe *cqe;
	unsigned head, seen = 0;

	io_uring_submit_and_wait_timeout(&uw->ring, &cqe, 1, &ts, NULL);

	io_uring_for_each_cqe (&uw->ring, head, cqe) {
		seen++;
		dispatch(uw, cqe);
	}
	io_uring_cq_advance(&uw->ring, seen);
}

static int
uring_run(struct ush_worker *w)
{
	struct uring_worker *uw = w->engine_state;

	while (!atomic_load(&w->stop)) {
		housekeeping(uw);

		if (uw->draining && w->live_conns == 0)
			break;

		wait_and_dispatch(uw);
	}

	return 0;
}

/* ---- engine entry points --------------------------------------------------- */

static int
uring_init(struct ush_worker *w)
{
	struct uring_worker *uw = calloc(1, sizeof(*uw));
	int rc;

	if (uw == NULL)
		return -ENOMEM;

	uw->w = w;
	uw->log_limit = (struct ush_ratelimit)USH_RATELIMIT_INIT(10, 1000);
	w->engine_state = uw;

	rc = setup_ring(uw);
	if (rc != 0) {
		ush_log(USH_LOG_ERROR, "io_uring_queue_init() failed (%s)", strerror(-rc));
		return rc;
	}

	rc = setup_buffers(uw);
	if (rc != 0) {
		ush_log(USH_LOG_ERROR, "provided buffer ring setup failed (%s)", strerror(-rc));
		return rc;
	}

	uw->now_ms = ush_now_ms();
	ush_wheel_init(&uw->wheel, uw->now_ms);

	if (ush_worker_take_mailbox(w) == NULL)
		return -EINVAL;

	return sync_listeners(uw, w->current->gen->cfg);
}

/* Close whatever is left at exit, without waiting for the peers. */
static void
drop_all(struct uring_worker *uw)
{
	while (uw->conns != NULL) {
		struct uring_conn *uc = uw->conns;

		uc->inflight = 0;
		free_conn(uc);
	}
}

static void
uring_fini(struct ush_worker *w)
{
	struct uring_worker *uw = w->engine_state;
	size_t i;

	if (uw == NULL)
		return;

	/* Tearing the ring down first cancels everything still in flight. */
	if (uw->ring.ring_fd > 0)
		io_uring_queue_exit(&uw->ring);

	drop_all(uw);
	for (i = 0; i < uw->n_listeners; i++) {
		if (uw->listeners[i].fd >= 0)
			close(uw->listeners[i].fd);
		free(uw->listeners[i].bind_text);
	}

	if (uw->br != NULL)
		munmap(uw->br, uw->br_size);
	free(uw->bufs);
	free(uw);
	w->engine_state = NULL;
}

/* The eventfd belongs to the runtime, so this is safe at any time. */
static void
uring_wake(struct ush_worker *w)
{
	uint64_t one = 1;

	if (w->wake_fd >= 0)
		(void)!write(w->wake_fd, &one, sizeof(one));
}

const struct ush_engine_ops ush_uring_engine = {
	.name = "uring",
	.init = uring_init,
	.run = uring_run,
	.fini = uring_fini,
	.wake = uring_wake,
};
