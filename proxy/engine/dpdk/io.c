/*
 * One worker's frames: its RX queue and steering ring in, its TX queue
 * out, the test-only fault injector in between, and the idle sleep.
 *
 *   RX queue --+--> ours -----------------> [rx faults] --> ust_input
 *              +--> another worker's -----> its ring
 *              +--> ARP: ours, and a copy to every other ring
 *   ring -----------------------------------^
 *
 *   ust tx --> [tx faults] --> mbuf --> batch --> rte_eth_tx_burst
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "dpdk.h"
#include "log.h"

#define ETH_HLEN       14
#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_ARP  0x0806
#define IPPROTO_TCP_   6
#define OWNER_ALL      (-1)  /* every worker needs the frame */
#define NAP_US         1000  /* the longest sleep without a wake-up source */
#define INTR_SLEEP_US  10000 /* drivers may miss a frame that raced the arming */

uint64_t
dpdk_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void
count_drop(struct dpdk_io *io, enum dpdk_drop reason)
{
	io->drops[reason]++;
}

/* ---- which worker a frame belongs to ------------------------------------- */

/* The worker whose slice of ephemeral ports holds port, or -2 for none. */
static int
port_owner(uint16_t port)
{
	unsigned slice;

	if (port < dpdk_port.port_min || port > dpdk_port.port_max)
		return -2;

	slice = (port - dpdk_port.port_min) / dpdk_port.ports_per_worker;
	return slice < dpdk_port.n_queues ? (int)slice : -2;
}

/*
 * ARP goes to everyone; a TCP segment to one of our ephemeral ports goes
 * to the worker that opened the connection; anything else stays here.
 * Only the headers are looked at; the stack validates the frame.
 */
static int
frame_owner(const struct dpdk_io *io, const uint8_t *f, size_t len)
{
	const uint8_t *ip = f + ETH_HLEN;
	unsigned type, ihl, frag;
	int owner;

	if (len < ETH_HLEN)
		return (int)io->id;

	type = (unsigned)f[12] << 8 | f[13];
	if (type == ETHERTYPE_ARP)
		return OWNER_ALL;
	if (type != ETHERTYPE_IPV4 || len < ETH_HLEN + 20)
		return (int)io->id;

	ihl = (ip[0] & 0x0fu) * 4u;
	frag = ((unsigned)ip[6] << 8 | ip[7]) & 0x1fffu;
	if (ip[9] != IPPROTO_TCP_ || frag != 0 || len < ETH_HLEN + ihl + 4)
		return (int)io->id;

	owner = port_owner((uint16_t)((unsigned)ip[ihl + 2] << 8 | ip[ihl + 3]));
	return owner < 0 ? (int)io->id : owner;
}

/* Wake worker id if it sleeps; it rechecks its ring after announcing it. */
static void
wake_peer(unsigned id)
{
	uint64_t one = 1;
	int fd;

	/* The enqueue must be visible before we read the flag (store-load). */
	atomic_thread_fence(memory_order_seq_cst);
	if (!atomic_load(&dpdk_port.asleep[id]))
		return;

	fd = atomic_load(&dpdk_port.wake_fds[id]);
	if (fd >= 0)
		(void)!write(fd, &one, sizeof(one));
}

static void
pass_to(struct dpdk_io *io, unsigned id, struct rte_mbuf *m)
{
	if (rte_ring_enqueue(dpdk_port.rings[id], m) != 0) {
		count_drop(io, DPDK_DROP_STEER_FULL);
		rte_pktmbuf_free(m);
		return;
	}

	wake_peer(id);
}

static void
copy_to_peers(struct dpdk_io *io, const struct rte_mbuf *m)
{
	unsigned id;

	for (id = 0; id < dpdk_port.n_queues; id++) {
		struct rte_mbuf *copy;

		if (id == io->id)
			continue;

		copy = rte_pktmbuf_copy(m, io->pool, 0, UINT32_MAX);
		if (copy == NULL) {
			count_drop(io, DPDK_DROP_NO_MBUF);
			continue;
		}
		pass_to(io, id, copy);
	}
}

/* ---- receive ---------------------------------------------------------------- */

/* What the port already checked, in the stack's terms. */
static unsigned
rx_flags(const struct rte_mbuf *m)
{
	uint64_t ip = m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK;
	uint64_t l4 = m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK;
	unsigned flags = 0;

	if (ip == RTE_MBUF_F_RX_IP_CKSUM_GOOD)
		flags |= UST_RX_IPV4_CSUM_GOOD;
	else if (ip == RTE_MBUF_F_RX_IP_CKSUM_BAD)
		flags |= UST_RX_IPV4_CSUM_BAD;

	if (l4 == RTE_MBUF_F_RX_L4_CKSUM_GOOD)
		flags |= UST_RX_L4_CSUM_GOOD;
	else if (l4 == RTE_MBUF_F_RX_L4_CKSUM_BAD)
		flags |= UST_RX_L4_CSUM_BAD;

	return flags;
}

/* The checksum verdicts stay with the mbuf; a faulty link drops them. */
static void
deliver(struct dpdk_io *io, const void *frame, size_t len, unsigned flags)
{
	if (io->rx_faults != NULL)
		ust_faults_push(io->rx_faults, frame, len, io->now_us);
	else
		ust_input(io->stack, frame, len, flags, io->now_us);
}

static void
rx_one(struct dpdk_io *io, struct rte_mbuf *m, bool from_peer)
{
	const uint8_t *frame;
	int owner;

	if (m->pkt_len > sizeof(io->scratch)) {
		count_drop(io, DPDK_DROP_RX_TOO_BIG);
		rte_pktmbuf_free(m);
		return;
	}

	/* Points into the mbuf when it is one segment, else at scratch. */
	frame = rte_pktmbuf_read(m, 0, m->pkt_len, io->scratch);

	if (!from_peer && dpdk_port.n_queues > 1) {
		owner = frame_owner(io, frame, m->pkt_len);
		if (owner == OWNER_ALL) {
			copy_to_peers(io, m);
		} else if (owner != (int)io->id) {
			io->steered++;
			pass_to(io, (unsigned)owner, m);
			return;
		}
	}

	deliver(io, frame, m->pkt_len, rx_flags(m));
	rte_pktmbuf_free(m);
}

static void
deliver_rx_fault(void *arg, const void *frame, size_t len)
{
	struct dpdk_io *io = arg;

	ust_input(io->stack, frame, len, 0, io->now_us);
}

static int send_frame(struct dpdk_io *io, const void *frame, size_t len, unsigned tx_flags);

static void
deliver_tx_fault(void *arg, const void *frame, size_t len)
{
	send_frame(arg, frame, len, 0);
}

static unsigned
release_faults(struct dpdk_io *io)
{
	unsigned n = 0;

	if (io->rx_faults != NULL)
		n += ust_faults_pop(io->rx_faults, io->now_us, deliver_rx_fault, io);
	if (io->tx_faults != NULL)
		n += ust_faults_pop(io->tx_faults, io->now_us, deliver_tx_fault, io);
	return n;
}

unsigned
dpdk_io_poll(struct dpdk_io *io)
{
	struct rte_mbuf *pkts[DPDK_RX_BURST];
	unsigned n, i, handled;

	io->now_us = dpdk_now_us();

	n = rte_eth_rx_burst(io->port_id, io->queue, pkts, DPDK_RX_BURST);
	io->rx_packets += n;
	for (i = 0; i < n; i++)
		rx_one(io, pkts[i], false);
	handled = n;

	n = rte_ring_dequeue_burst(io->ring, (void **)pkts, DPDK_RX_BURST, NULL);
	for (i = 0; i < n; i++)
		rx_one(io, pkts[i], true);
	handled += n;

	return handled + release_faults(io);
}

uint64_t
dpdk_io_next_due(const struct dpdk_io *io)
{
	uint64_t due = UINT64_MAX, next;

	if (io->rx_faults != NULL && (next = ust_faults_next(io->rx_faults)) < due)
		due = next;
	if (io->tx_faults != NULL && (next = ust_faults_next(io->tx_faults)) < due)
		due = next;
	return due;
}

/* ---- transmit ------------------------------------------------------------------ */

/* Drop the frame at index i of the batch: the driver refused it. */
static void
drop_queued(struct dpdk_io *io, unsigned i)
{
	rte_pktmbuf_free(io->tx[i]);
	memmove(&io->tx[i], &io->tx[i + 1], (io->n_tx - i - 1) * sizeof(io->tx[0]));
	io->n_tx--;
	count_drop(io, DPDK_DROP_TX_REJECTED);
}

void
dpdk_io_flush(struct dpdk_io *io)
{
	uint16_t ready, sent;

	if (io->n_tx == 0)
		return;

	/* Drivers that need the offload fields adjusted do it here. */
	while ((ready = rte_eth_tx_prepare(io->port_id, io->queue, io->tx, (uint16_t)io->n_tx)) <
	       io->n_tx)
		drop_queued(io, ready);

	sent = rte_eth_tx_burst(io->port_id, io->queue, io->tx, (uint16_t)io->n_tx);
	io->tx_packets += sent;
	io->n_tx -= sent;
	memmove(&io->tx[0], &io->tx[sent], io->n_tx * sizeof(io->tx[0]));
}

static void
set_tx_offloads(struct rte_mbuf *m, unsigned tx_flags)
{
	if (tx_flags == 0)
		return;

	m->l2_len = ETH_HLEN;
	m->l3_len = 20;
	m->ol_flags |= RTE_MBUF_F_TX_IPV4;
	if (tx_flags & UST_TX_IPV4_CSUM)
		m->ol_flags |= RTE_MBUF_F_TX_IP_CKSUM;
	if (tx_flags & UST_TX_TCP_CSUM)
		m->ol_flags |= RTE_MBUF_F_TX_TCP_CKSUM;
}

/* Unsent frames stay queued; a frame that finds the batch still full is lost. */
static int
send_frame(struct dpdk_io *io, const void *frame, size_t len, unsigned tx_flags)
{
	struct rte_mbuf *m;
	char *data;

	if (io->n_tx == DPDK_TX_BURST)
		dpdk_io_flush(io);
	if (io->n_tx == DPDK_TX_BURST) {
		count_drop(io, DPDK_DROP_TX_FULL);
		return -ENOBUFS;
	}

	m = rte_pktmbuf_alloc(io->pool);
	if (m == NULL) {
		count_drop(io, DPDK_DROP_NO_MBUF);
		return -ENOMEM;
	}

	data = rte_pktmbuf_append(m, (uint16_t)len);
	if (data == NULL) {
		rte_pktmbuf_free(m);
		count_drop(io, DPDK_DROP_NO_MBUF);
		return -EMSGSIZE;
	}

	memcpy(data, frame, len);
	set_tx_offloads(m, tx_flags);
	io->tx[io->n_tx++] = m;
	return 0;
}

int
dpdk_io_tx(struct dpdk_io *io, const void *frame, size_t len, unsigned tx_flags)
{
	/* The port is set up without checksum offloads when faults are on. */
	if (io->tx_faults != NULL) {
		ust_faults_push(io->tx_faults, frame, len, io->now_us);
		return 0;
	}

	return send_frame(io, frame, len, tx_flags);
}

/* ---- sleeping ------------------------------------------------------------------- */

static void
drain_wake_fd(struct dpdk_io *io)
{
	uint64_t value;

	(void)!read(io->wake_fd, &value, sizeof(value));
}

static int
sleep_ms(enum dpdk_wait wait, uint64_t timeout_us)
{
	if (wait == DPDK_WAIT_NAP && timeout_us > NAP_US)
		timeout_us = NAP_US;
	if (wait == DPDK_WAIT_INTR && timeout_us > INTR_SLEEP_US)
		timeout_us = INTR_SLEEP_US;

	/* epoll counts milliseconds: round up, or a short wait spins. */
	return (int)((timeout_us + 999) / 1000);
}

void
dpdk_io_sleep(struct dpdk_io *io, uint64_t timeout_us)
{
	struct epoll_event ev[4];
	int n, i;

	dpdk_io_flush(io);
	atomic_store(&dpdk_port.asleep[io->id], true);

	if (rte_ring_count(io->ring) == 0) {
		if (dpdk_port.wait == DPDK_WAIT_INTR)
			rte_eth_dev_rx_intr_enable(io->port_id, io->queue);

		n = epoll_wait(io->epfd, ev, 4, sleep_ms(dpdk_port.wait, timeout_us));
		for (i = 0; i < n; i++)
			if (ev[i].data.fd == io->wake_fd)
				drain_wake_fd(io);

		if (dpdk_port.wait == DPDK_WAIT_INTR)
			rte_eth_dev_rx_intr_disable(io->port_id, io->queue);
	}

	atomic_store(&dpdk_port.asleep[io->id], false);
}

/* ---- set-up ---------------------------------------------------------------------- */

static int
watch_fd(int epfd, int fd)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -errno;
}

static int
setup_wait(struct dpdk_io *io)
{
	int rc;

	io->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (io->epfd < 0)
		return -errno;

	rc = watch_fd(io->epfd, io->wake_fd);
	if (rc != 0 || dpdk_port.wait == DPDK_WAIT_NAP)
		return rc;

	io->rx_fd = rte_eth_dev_rx_intr_ctl_q_get_fd(io->port_id, io->queue);
	if (io->rx_fd < 0)
		return -ENODEV;
	return watch_fd(io->epfd, io->rx_fd);
}

/* Each direction of each worker draws its own faults, all from one seed. */
static int
setup_faults(struct dpdk_io *io)
{
	struct ust_faults_config fc = dpdk_port.faults;
	int rc;

	if (!dpdk_port.faults_on)
		return 0;

	fc.seed = dpdk_port.faults.seed * 1000003u + io->id * 2u;
	rc = ust_faults_create(&fc, &io->rx_faults);
	if (rc != 0)
		return rc;

	fc.seed++;
	return ust_faults_create(&fc, &io->tx_faults);
}

int
dpdk_io_init(struct dpdk_io *io, unsigned id, int wake_fd)
{
	int rc;

	io->id = id;
	io->port_id = dpdk_port.port_id;
	io->queue = (uint16_t)id;
	io->pool = dpdk_port.pools[id];
	io->ring = dpdk_port.rings[id];
	io->wake_fd = wake_fd;
	io->epfd = -1;
	io->rx_fd = -1;
	io->now_us = dpdk_now_us();

	rc = setup_wait(io);
	if (rc != 0) {
		ush_log_errno(USH_LOG_ERROR, rc, "cannot wait on queue %u of port %u", io->queue,
			      io->port_id);
		return rc;
	}

	rc = setup_faults(io);
	if (rc != 0) {
		ush_log_errno(USH_LOG_ERROR, rc, "cannot set up the fault injector");
		return rc;
	}

	atomic_store(&dpdk_port.wake_fds[id], wake_fd);
	return 0;
}

void
dpdk_io_fini(struct dpdk_io *io)
{
	void *m;

	if (dpdk_port.wake_fds != NULL)
		atomic_store(&dpdk_port.wake_fds[io->id], -1);

	while (io->n_tx > 0)
		rte_pktmbuf_free(io->tx[--io->n_tx]);
	while (io->ring != NULL && rte_ring_dequeue(io->ring, &m) == 0)
		rte_pktmbuf_free(m);

	ust_faults_destroy(io->rx_faults);
	ust_faults_destroy(io->tx_faults);
	io->rx_faults = io->tx_faults = NULL;
	if (io->epfd >= 0)
		close(io->epfd);
	io->epfd = -1;
}

/* ---- counters --------------------------------------------------------------------- */

static void
publish_faults(struct dpdk_snapshot *s, unsigned dir, const struct ust_faults *f)
{
	const struct ust_faults_stats *st;

	if (f == NULL)
		return;

	st = ust_faults_stats(f);
	DPDK_STORE(s->faults[dir][0], st->dropped + st->overflowed);
	DPDK_STORE(s->faults[dir][1], st->duplicated);
	DPDK_STORE(s->faults[dir][2], st->delayed);
}

void
dpdk_io_publish(struct dpdk_io *io)
{
	struct dpdk_snapshot *s = &dpdk_port.snaps[io->id];
	const struct ust_counters *c = ust_counters(io->stack);
	unsigned r;

	DPDK_STORE(s->rx_packets, io->rx_packets);
	DPDK_STORE(s->tx_packets, io->tx_packets);
	DPDK_STORE(s->steered, io->steered);
	DPDK_STORE(s->retransmits, c->tcp_retransmits);
	DPDK_STORE(s->tcp_conns, c->tcp_conns);
	for (r = 0; r < UST_DROP_MAX; r++)
		DPDK_STORE(s->stack_drops[r], c->drops[r]);
	for (r = 0; r < DPDK_DROP_MAX; r++)
		DPDK_STORE(s->engine_drops[r], io->drops[r]);
	publish_faults(s, 0, io->rx_faults);
	publish_faults(s, 1, io->tx_faults);

	if (io->id == 0)
		dpdk_port_publish();
}
