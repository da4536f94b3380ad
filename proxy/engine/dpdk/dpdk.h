/*
 * The DPDK engine: each worker polls its own RX/TX queue pair of one DPDK
 * port and runs usher's userspace TCP/IP stack (stack/ust.h) on it, so no
 * byte crosses the kernel. Internal to proxy/engine/dpdk.
 *
 * Three parts, one file each:
 *
 *	port.c    process-wide: EAL, the port, a mempool and a steering
 *	          ring per worker, the counters the metrics thread reads
 *	io.c      one worker's frames: RX burst, steering between workers,
 *	          batched TX, the test-only fault injector, idle sleep
 *	engine.c  the engine ops: listeners, the stack's callbacks, and the
 *	          glue between a ust connection pair and ush_conn
 *
 * Which worker gets a frame. Every worker owns one queue pair and one
 * stack with the same address, so a TCP segment must reach the worker
 * whose stack holds its connection:
 *
 *   - Client connections: the port puts a flow on a queue by a hash of the
 *     flow, and the worker that answers the SYN answers on the same queue.
 *     On net_tap the kernel picks the queue per flow and prefers the queue
 *     the application last sent that flow on (entries expire after 3 s of
 *     silence, after which it falls back to the hash, the SYN's queue).
 *   - Upstream connections: worker i opens them from its own slice of the
 *     ephemeral ports, and a segment to a port in worker j's slice that
 *     lands on another queue is passed to worker j through j's ring. On a
 *     tap this covers an upstream that speaks after more than 3 s of
 *     silence, when the kernel has forgotten the queue.
 *   - ARP: one worker receives each ARP frame and every stack needs it, so
 *     it is copied to every other worker's ring.
 *
 * TODO(#5): on NICs with RSS, program a symmetric RSS key and pick
 * upstream source ports whose software Toeplitz hash lands on the opening
 * worker's queue, so the ring is a fallback and not the common path.
 *
 * Test-only fault injection: with USHER_DPDK_FAULTS set, for example
 * "seed=7,drop=50000,dup=50000,delay=50000,delay_max_us=2000" (chances in
 * parts per million, delays in microseconds), every worker puts the
 * stack's fault injector (ust_faults) on its RX and TX paths and the port
 * runs without checksum offloads. usher logs a warning at start. It loses
 * frames on purpose: never set it outside tests.
 *
 * Other gaps: TODO(#5) IPv6 (the stack speaks IPv4 only); TODO(#5) the
 * health checks of upstream servers still use the kernel's TCP stack,
 * which reaches them only where the kernel shares the DPDK port's network.
 *
 * Threads: dpdk_port_setup/teardown run on the main thread before the
 * workers start and after they are joined, dpdk_print_metrics on the stats
 * thread. Everything else runs on a worker's own thread (registered with
 * EAL); workers touch each other only through the rings and wake_fds.
 */
#ifndef USHER_DPDK_H
#define USHER_DPDK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "ust.h"

#ifdef __cplusplus
extern "C" {
#endif

struct rte_mbuf;
struct rte_mempool;
struct rte_ring;
struct ush_metrics_writer;

#define DPDK_TX_BURST  32
#define DPDK_RX_BURST  32
#define DPDK_FRAME_MAX (9000 + 14) /* the stack's largest MTU plus Ethernet */

/* Drops the engine counts itself, next to the stack's (ust_drop). */
#define DPDK_DROP_REASONS(X)                                                       \
	X(RX_TOO_BIG, "rx_too_big")      /* frame longer than DPDK_FRAME_MAX */    \
	X(STEER_FULL, "steer_ring_full") /* the other worker's ring was full */    \
	X(NO_MBUF, "no_mbuf")            /* the mempool was empty */               \
	X(TX_FULL, "tx_queue_full")      /* the TX queue did not take the frame */ \
	X(TX_REJECTED, "tx_rejected")    /* rte_eth_tx_prepare refused the frame */

#define DPDK_DROP_ENUM(name, str) DPDK_DROP_##name,

enum dpdk_drop { DPDK_DROP_REASONS(DPDK_DROP_ENUM) DPDK_DROP_MAX };

#undef DPDK_DROP_ENUM

/* Counters one thread writes and another reads: relaxed, never torn. */
#define DPDK_STORE(field, value) __atomic_store_n(&(field), (value), __ATOMIC_RELAXED)
#define DPDK_LOAD(field)         __atomic_load_n(&(field), __ATOMIC_RELAXED)

/* How a worker sleeps when its queue is idle. */
enum dpdk_wait {
	DPDK_WAIT_INTR = 0,     /* RX interrupts through rte_eth_dev_rx_intr_* */
	DPDK_WAIT_QUEUE_FD = 1, /* net_tap: the queue's fd is readable on data */
	DPDK_WAIT_NAP = 2,      /* neither: short sleeps */
};

/*
 * One worker's figures for the metrics thread: the worker stores them with
 * relaxed atomics every 100 ms, the stats thread loads them the same way.
 */
struct dpdk_snapshot {
	uint64_t rx_packets; /* from this worker's RX queue */
	uint64_t tx_packets; /* taken by its TX queue */
	uint64_t steered;    /* TCP segments passed to the worker that owns them */
	uint64_t retransmits;
	uint64_t tcp_conns; /* a gauge */
	uint64_t stack_drops[UST_DROP_MAX];
	uint64_t engine_drops[DPDK_DROP_MAX];
	uint64_t faults[2][3]; /* [rx, tx][dropped, duplicated, delayed] */
};

/* The port's own figures (rte_eth_stats), stored by worker 0. */
struct dpdk_port_snapshot {
	uint64_t ipackets, opackets;
	uint64_t imissed, ierrors, oerrors, rx_nombuf;
};

/*
 * Process-wide state. The main thread fills it before any worker starts;
 * afterwards only the snapshots, wake_fds and asleep flags change.
 */
struct dpdk_port {
	bool eal_up;
	bool port_up;
	uint16_t port_id;
	unsigned n_queues; /* one RX/TX pair per worker */
	char driver[32];
	uint8_t mac[6];
	uint16_t mtu;
	unsigned tx_offloads; /* UST_OFFLOAD_* the port does for us */
	enum dpdk_wait wait;

	uint32_t ipv4; /* host byte order */
	uint8_t prefix_len;
	uint32_t gateway;
	uint16_t port_min, port_max; /* the whole ephemeral range */
	uint32_t ports_per_worker;

	bool faults_on; /* USHER_DPDK_FAULTS, test-only */
	struct ust_faults_config faults;

	struct rte_mempool **pools;  /* [worker] */
	struct rte_ring **rings;     /* [worker]: frames passed to it */
	_Atomic int *wake_fds;       /* [worker]: its eventfd, -1 before */
	atomic_bool *asleep;         /* [worker]: in epoll_wait, wake it */
	struct dpdk_snapshot *snaps; /* [worker] */
	struct dpdk_port_snapshot port_snap;
};

extern struct dpdk_port dpdk_port;

/* ---- port.c ---- */

/*
 * Main thread, once, before the workers start: check the parts of cfg
 * that only this engine cares about, start EAL with cfg->dpdk.eal_args,
 * set the port up with one queue pair and one mempool per worker, and
 * start it. 0, or -errno after logging why.
 */
int dpdk_port_setup(const struct cfg *cfg, unsigned n_workers);

/* Main thread, after every worker is joined: stop the port, end EAL. */
void dpdk_port_teardown(void);

/* Worker 0's turn to copy the port's own counters (rte_eth_stats). */
void dpdk_port_publish(void);

/* Stats thread: the usher_dpdk_* families. */
void dpdk_print_metrics(struct ush_metrics_writer *out);

/* Whether a listener's bind is on the port: its address, or 0.0.0.0. */
bool dpdk_bind_ok(const struct cfg_addr *bind);
uint16_t dpdk_bind_port(const struct cfg_addr *bind);

/* The first ephemeral port of worker id's slice, and its last. */
uint16_t dpdk_worker_port_min(unsigned id);
uint16_t dpdk_worker_port_max(unsigned id);

/* ---- io.c ---- */

/*
 * One worker's frame I/O. Not shared: the worker thread alone touches it,
 * except the ring other workers enqueue to.
 */
struct dpdk_io {
	unsigned id;
	uint16_t port_id;
	uint16_t queue;
	struct rte_mempool *pool;
	struct rte_ring *ring;
	struct ust_stack *stack; /* where received frames go */

	struct rte_mbuf *tx[DPDK_TX_BURST];
	unsigned n_tx;

	struct ust_faults *rx_faults; /* NULL unless the test option is on */
	struct ust_faults *tx_faults;

	int epfd;
	int wake_fd;
	int rx_fd; /* the queue's fd or interrupt fd, -1 when napping */

	uint64_t now_us;
	uint64_t rx_packets, tx_packets;
	uint64_t steered;
	uint64_t drops[DPDK_DROP_MAX];

	uint8_t scratch[DPDK_FRAME_MAX]; /* a received frame made contiguous */
};

/*
 * Set io up for worker id on its own thread: queue, pool, ring, epoll on
 * wake_fd and the queue, and the fault injectors when the test option is
 * on. 0 or -errno (logged).
 */
int dpdk_io_init(struct dpdk_io *io, unsigned id, int wake_fd);
void dpdk_io_fini(struct dpdk_io *io);

/*
 * Receive what the queue and the ring hold, pass each frame to its
 * worker, feed ours to io->stack; release frames the fault injector holds
 * that are due. Returns how many frames were handled (0 = idle).
 */
unsigned dpdk_io_poll(struct dpdk_io *io);

/* ust_ops.tx: one frame from the stack, queued for the next flush. */
int dpdk_io_tx(struct dpdk_io *io, const void *frame, size_t len, unsigned tx_flags);

/* Hand the queued frames to the TX queue. */
void dpdk_io_flush(struct dpdk_io *io);

/* When the fault injectors next have a frame due, or UINT64_MAX. */
uint64_t dpdk_io_next_due(const struct dpdk_io *io);

/*
 * Sleep until a frame arrives, the worker is woken, or timeout_us has
 * passed. Flushes first. The ring is checked after announcing the sleep,
 * so a frame passed meanwhile is never left waiting.
 */
void dpdk_io_sleep(struct dpdk_io *io, uint64_t timeout_us);

/* Copy the worker's counters (and its stack's) for the metrics thread. */
void dpdk_io_publish(struct dpdk_io *io);

/* Monotonic microseconds. */
uint64_t dpdk_now_us(void);

#ifdef __cplusplus
}
#endif

#endif
