/*
 * ust: usher's per-core userspace TCP/IP stack for the DPDK engine.
 *
 * The stack is sans-I/O. It never touches a NIC, a socket or a clock: the
 * engine hands it each received Ethernet frame (ust_input) with the time,
 * runs its timers (ust_timers) and gives it a transmit callback. Tests do
 * the same with crafted frames and a virtual clock.
 *
 * One struct ust_stack per core (lcore), owning one IPv4 address on one
 * port queue. Nothing in it is shared: no locks, no written globals. Every
 * function below must be called on the thread that owns the stack, and
 * every callback runs on that thread, from inside ust_input or ust_timers
 * only, never from the socket calls, so an application needs no guard
 * against re-entering itself. A callback must not call ust_input,
 * ust_timers or ust_stack_destroy.
 *
 * Layers, one file each: eth_arp.c (Ethernet and ARP), ipv4.c, icmp.c,
 * tcp_in.c (segment arrival, the state machine), tcp_out.c (segment
 * building, sending, retransmitting), tcp_timer.c (RTO, delayed ACK,
 * persist, TIME_WAIT), tcp_conn.c (tables and the socket calls),
 * tcp_cookie.c (SYN cookies), faults.c (the test-only fault injector).
 *
 * Addresses and ports are in host byte order in this API. Calls that take
 * no time (ust_send, ust_recv, ...) use the time of the last ust_input,
 * ust_timers or ust_connect.
 */
#ifndef USHER_UST_H
#define USHER_UST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ust_stack;
struct ust_conn;
struct ust_listener;

/* Transmit offloads the port offers (ust_config.offloads). */
#define UST_OFFLOAD_TX_IPV4_CSUM (1u << 0)
#define UST_OFFLOAD_TX_TCP_CSUM  (1u << 1)

/*
 * Flags on a transmitted frame (ops.tx): the engine must have the NIC fill
 * this checksum. For TCP the checksum field already holds the pseudo-header
 * sum, as DPDK's TX offload expects. L2 is always 14 bytes, L3 is 20.
 */
#define UST_TX_IPV4_CSUM (1u << 0)
#define UST_TX_TCP_CSUM  (1u << 1)

/* Flags on a received frame (ust_input): what the NIC already checked. */
#define UST_RX_IPV4_CSUM_GOOD (1u << 0)
#define UST_RX_IPV4_CSUM_BAD  (1u << 1)
#define UST_RX_L4_CSUM_GOOD   (1u << 2)
#define UST_RX_L4_CSUM_BAD    (1u << 3)

struct ust_config {
	uint8_t mac[6];
	uint32_t ipv4;      /* our address */
	uint8_t prefix_len; /* of the attached subnet, 1..32 */
	uint32_t gateway;   /* next hop off the subnet; 0 = none */
	uint16_t mtu;       /* IP MTU, 576..9000 */
	unsigned offloads;  /* UST_OFFLOAD_* */
	uint64_t secret[2]; /* keys ISNs, SYN cookies and hashing: random */

	uint32_t max_conns;     /* connection objects, any state but TIME_WAIT */
	uint32_t syn_backlog;   /* half-open per listener before SYN cookies */
	uint32_t time_wait_max; /* TIME_WAIT entries; the oldest is evicted */
	uint32_t sndbuf;        /* bytes per connection, 1 KiB..16 MiB */
	uint32_t rcvbuf;        /* bytes per connection, 1 KiB..16 MiB */
	bool syn_cookies;       /* answer SYNs statelessly past the backlog */
	bool window_scaling;    /* RFC 7323 */
	bool timestamps;        /* RFC 7323 */
	uint16_t port_min;      /* ephemeral range for ust_connect */
	uint16_t port_max;

	uint32_t arp_entries;    /* cache size */
	uint64_t arp_ttl_us;     /* a resolved entry expires after this */
	uint64_t arp_retry_us;   /* between requests for an unresolved entry */
	uint32_t arp_retries;    /* requests before giving up */
	uint64_t rto_initial_us; /* RFC 6298: 1 s */
	uint64_t rto_min_us;
	uint64_t rto_max_us;
	uint64_t delack_us;    /* delayed ACK timeout */
	uint64_t time_wait_us; /* 2 MSL */
	uint64_t fin_wait2_us; /* orphaned FIN_WAIT_2 timeout */
	uint32_t syn_retries;  /* SYN / SYN-ACK retransmissions */
	uint32_t data_retries; /* RTOs in a row before the connection dies */
};

/*
 * Drop reasons, each counted in ust_counters.drops[]. A frame is counted
 * once, under the first reason that rejected it.
 */
#define UST_DROP_REASONS(X)                       \
	X(ETH_SHORT, "eth_short")                 \
	X(ETH_DST, "eth_dst")                     \
	X(ETH_TYPE, "eth_type")                   \
	X(ARP_MALFORMED, "arp_malformed")         \
	X(ARP_NOT_US, "arp_not_us")               \
	X(ARP_UNRESOLVED, "arp_unresolved")       \
	X(ARP_HOLD_REPLACED, "arp_hold_replaced") \
	X(IP_SHORT, "ip_short")                   \
	X(IP_VERSION, "ip_version")               \
	X(IP_HDRLEN, "ip_hdrlen")                 \
	X(IP_LEN, "ip_len")                       \
	X(IP_CSUM, "ip_csum")                     \
	X(IP_FRAG, "ip_frag")                     \
	X(IP_NOT_US, "ip_not_us")                 \
	X(IP_SRC, "ip_src")                       \
	X(IP_PROTO, "ip_proto")                   \
	X(NO_ROUTE, "no_route")                   \
	X(ICMP_SHORT, "icmp_short")               \
	X(ICMP_CSUM, "icmp_csum")                 \
	X(ICMP_TYPE, "icmp_type")                 \
	X(ICMP_TOO_BIG, "icmp_too_big")           \
	X(TCP_SHORT, "tcp_short")                 \
	X(TCP_HDRLEN, "tcp_hdrlen")               \
	X(TCP_CSUM, "tcp_csum")                   \
	X(TCP_OPTIONS, "tcp_options")             \
	X(TCP_FLAGS, "tcp_flags")                 \
	X(TCP_PORT, "tcp_port")                   \
	X(TCP_NO_CONN, "tcp_no_conn")             \
	X(TCP_PAWS, "tcp_paws")                   \
	X(TCP_OUT_OF_WINDOW, "tcp_out_of_window") \
	X(TCP_BAD_ACK, "tcp_bad_ack")             \
	X(TCP_RST_IGNORED, "tcp_rst_ignored")     \
	X(TCP_SYN_IN_SYNC, "tcp_syn_in_sync")     \
	X(TCP_OOO_FULL, "tcp_ooo_full")           \
	X(TCP_BACKLOG, "tcp_backlog")             \
	X(TCP_NO_MEMORY, "tcp_no_memory")         \
	X(TCP_BAD_COOKIE, "tcp_bad_cookie")       \
	X(TCP_TIME_WAIT, "tcp_time_wait")         \
	X(TX_FAILED, "tx_failed")

#define UST_DROP_ENUM(name, str) UST_DROP_##name,

enum ust_drop { UST_DROP_NONE = 0, UST_DROP_REASONS(UST_DROP_ENUM) UST_DROP_MAX };

#undef UST_DROP_ENUM

/* The stable token for a drop reason ("ip_csum"), for metrics. */
const char *ust_drop_name(enum ust_drop reason);

/*
 * Counters of one stack, so of one lcore. Per-port figures are the sum over
 * the lcores serving the port (ust_counters_add). Plain integers: read them
 * on the owning thread, or accept torn reads.
 */
struct ust_counters {
	uint64_t rx_frames, rx_bytes;
	uint64_t tx_frames, tx_bytes;
	uint64_t drops[UST_DROP_MAX];

	uint64_t arp_requests_tx, arp_replies_tx, arp_announce_tx;
	uint64_t arp_requests_rx, arp_replies_rx, arp_resolved, arp_expired;
	uint64_t icmp_echo_replies;

	uint64_t tcp_active_opens;  /* ust_connect calls that sent a SYN */
	uint64_t tcp_passive_opens; /* SYNs that got a SYN-ACK */
	uint64_t tcp_established;   /* connections that reached ESTABLISHED */
	uint64_t tcp_conns;         /* connection objects now (a gauge) */
	uint64_t tcp_resets_rx;     /* connections reset by the peer */
	uint64_t tcp_resets_tx;     /* RSTs sent, any cause */
	uint64_t tcp_timeouts;      /* connections that ran out of retries */
	uint64_t tcp_retransmits;   /* segments sent again */
	uint64_t tcp_rto;           /* retransmission timeouts */
	uint64_t tcp_fast_retransmits;
	uint64_t tcp_dupacks_rx;
	uint64_t tcp_recoveries; /* NewReno recovery episodes */
	uint64_t tcp_zero_window_probes;
	uint64_t tcp_delayed_acks;   /* ACKs sent by the delayed-ACK timer */
	uint64_t tcp_challenge_acks; /* RFC 5961 */
	uint64_t tcp_syn_cookies_tx;
	uint64_t tcp_syn_cookies_ok;
	uint64_t tcp_time_wait; /* TIME_WAIT entries now (a gauge) */
	uint64_t tcp_time_wait_evicted;
	uint64_t tcp_time_wait_recycled;
};

/* dst += src, field by field (gauges add too: a port's total). */
void ust_counters_add(struct ust_counters *dst, const struct ust_counters *src);

/*
 * Call fn once per counter with a stable name for metrics: "rx_frames",
 * "tcp_retransmits", ... and "drop_<reason>" for each drop reason.
 */
void ust_counters_foreach(const struct ust_counters *c,
			  void (*fn)(void *arg, const char *name, uint64_t value), void *arg);

enum ust_close_reason {
	UST_CLOSE_NORMAL = 0,  /* both FINs exchanged and acknowledged */
	UST_CLOSE_RESET,       /* the peer sent RST */
	UST_CLOSE_TIMEOUT,     /* retransmissions ran out */
	UST_CLOSE_REFUSED,     /* RST in answer to our SYN */
	UST_CLOSE_UNREACHABLE, /* ARP never resolved the next hop */
	UST_CLOSE_ABORTED,     /* the stack was destroyed */
};

/* "normal", "reset", ...: a stable token for logs. */
const char *ust_close_reason_name(enum ust_close_reason reason);

/*
 * What the stack calls. All run on the stack's thread. arg is ops.arg.
 *
 * tx: send one frame (len <= mtu + 14). The frame is only valid during the
 * call: copy it. Returns 0, or < 0 if it was dropped (counted TX_FAILED).
 *
 * on_accept: a passive connection reached ESTABLISHED; the application now
 * owns conn. on_connected: the outcome of ust_connect; when err != 0 (a
 * -errno) conn is freed after the call returns. on_readable: ust_recv has
 * data or end of stream. on_writable: the send buffer has room again after
 * ust_send accepted less than asked. on_closed: the connection ended
 * without ust_close/ust_abort from the application; conn is freed after the
 * call returns. A callback may call any API function on any connection.
 */
struct ust_ops {
	void *arg;
	int (*tx)(void *arg, const void *frame, size_t len, unsigned tx_flags);
	void (*on_accept)(void *arg, struct ust_listener *l, struct ust_conn *conn);
	void (*on_connected)(void *arg, struct ust_conn *conn, int err);
	void (*on_readable)(void *arg, struct ust_conn *conn);
	void (*on_writable)(void *arg, struct ust_conn *conn);
	void (*on_closed)(void *arg, struct ust_conn *conn, enum ust_close_reason reason);
};

/* Fill cfg with defaults: everything but mac, addresses and secret. */
void ust_config_defaults(struct ust_config *cfg);

/*
 * Create a stack. cfg and ops are copied. Sends the gratuitous ARP
 * announcement through ops->tx before returning, so the port must be up.
 * 0, -EINVAL for a bad config (nothing sent), or -ENOMEM.
 */
int ust_stack_create(const struct ust_config *cfg, const struct ust_ops *ops,
		     struct ust_stack **out);

/* Free the stack and every connection in it; no callbacks, nothing sent. */
void ust_stack_destroy(struct ust_stack *s);

/* Send a gratuitous ARP announcement of our address (again). */
void ust_announce(struct ust_stack *s);

/*
 * Handle one received Ethernet frame at time now_us (a monotonic clock in
 * microseconds; it must not go backwards). rx_flags are UST_RX_*. Any
 * bytes at all are safe here: bad frames are dropped and counted.
 */
void ust_input(struct ust_stack *s, const void *frame, size_t len, unsigned rx_flags,
	       uint64_t now_us);

/* Run every timer due at now_us. */
void ust_timers(struct ust_stack *s, uint64_t now_us);

/* When ust_timers next has work, or UINT64_MAX. */
uint64_t ust_next_timer(const struct ust_stack *s);

const struct ust_counters *ust_counters(const struct ust_stack *s);

/*
 * Listen on port. user is returned by ust_listener_user. 0, -EADDRINUSE,
 * -ENOSPC (too many listeners) or -EINVAL (port 0).
 */
int ust_listen(struct ust_stack *s, uint16_t port, void *user, struct ust_listener **out);

void *ust_listener_user(const struct ust_listener *l);

/* Stop accepting on l. Established connections are not touched. */
void ust_listener_close(struct ust_listener *l);

/*
 * Open a connection to ip:port from local_port (0 = pick from the
 * ephemeral range). The outcome arrives through on_connected. 0,
 * -EADDRINUSE (that local port is taken for this peer), -EADDRNOTAVAIL
 * (no free port), -ENETUNREACH (no route), -ENOBUFS (max_conns).
 */
int ust_connect(struct ust_stack *s, uint32_t ip, uint16_t port, uint16_t local_port,
		uint64_t now_us, void *user, struct ust_conn **out);

/*
 * Queue up to len bytes. Returns the bytes taken (the send buffer is
 * bounded; when it is short on_writable follows later), -EAGAIN (buffer
 * full), -ENOTCONN (not yet established), -EPIPE (after shutdown or close)
 * or -ECONNRESET.
 */
long ust_send(struct ust_conn *c, const void *data, size_t len);

/*
 * Read up to cap bytes. Returns the bytes read, 0 at end of stream (the
 * peer's FIN, after all data), -EAGAIN (nothing yet), -ENOTCONN or
 * -ECONNRESET.
 */
long ust_recv(struct ust_conn *c, void *buf, size_t cap);

/* Send FIN after the queued data; reading goes on. 0 or -ENOTCONN. */
int ust_shutdown(struct ust_conn *c);

/*
 * Give conn back to the stack: no more callbacks. Queued data is still
 * sent and the connection closed with FIN, unless received data was left
 * unread, which resets it (RFC 2525). conn is invalid after the call.
 */
void ust_close(struct ust_conn *c);

/* Reset the connection (RST) and free it. conn is invalid after the call. */
void ust_abort(struct ust_conn *c);

void ust_conn_set_user(struct ust_conn *c, void *user);
void *ust_conn_user(const struct ust_conn *c);

enum ust_tcp_state {
	UST_TCP_CLOSED = 0,
	UST_TCP_SYN_SENT,
	UST_TCP_SYN_RCVD,
	UST_TCP_ESTABLISHED,
	UST_TCP_FIN_WAIT_1,
	UST_TCP_FIN_WAIT_2,
	UST_TCP_CLOSING,
	UST_TCP_TIME_WAIT,
	UST_TCP_CLOSE_WAIT,
	UST_TCP_LAST_ACK,
};

const char *ust_tcp_state_name(enum ust_tcp_state state);

/* A snapshot of one connection, for tests, metrics and debugging. */
struct ust_conn_info {
	enum ust_tcp_state state;
	uint32_t local_ip, remote_ip;
	uint16_t local_port, remote_port;
	uint16_t mss;                   /* payload bytes per segment we send */
	uint8_t snd_wscale, rcv_wscale; /* 0 when scaling is off */
	bool wscale_ok, ts_ok;
	uint32_t snd_wnd, rcv_wnd; /* bytes */
	uint32_t cwnd, ssthresh;
	uint64_t srtt_us, rttvar_us, rto_us;
	uint32_t backoff;                /* RTO doublings in force */
	uint32_t ts_recent;              /* the peer's last timestamp */
	uint32_t snd_queued, rcv_queued; /* bytes in the buffers */
	uint64_t rtt_samples;
	uint64_t retransmits;
	uint64_t fast_retransmits;
	uint64_t zero_window_probes;
	bool in_recovery;
};

void ust_conn_info(const struct ust_conn *c, struct ust_conn_info *info);

/* --- Checksums (RFC 1071), exposed for the engine and for tests --- */

/* Add len bytes to a running one's complement sum (not folded). */
uint32_t ust_csum_add(uint32_t sum, const void *data, size_t len);

/* Fold a running sum to 16 bits and complement it: the field's value. */
uint16_t ust_csum_fold(uint32_t sum);

/* The TCP/UDP pseudo-header sum for IPv4, unfolded. */
uint32_t ust_csum_pseudo(uint32_t src, uint32_t dst, uint8_t proto, uint16_t l4_len);

/*
 * --- The fault injector, a test-only option ---
 *
 * A seeded queue that sits between a sender and a receiver of frames: each
 * frame offered is dropped, passed, duplicated or delayed, by chance drawn
 * from its own xorshift generator, so a seed replays the same faults.
 * Delayed frames are overtaken by later ones, which is how it reorders.
 * The DPDK engine puts one on RX and one on TX when the test option is on;
 * the unit tests put one on each direction of an in-memory link.
 */
struct ust_faults;

struct ust_faults_config {
	uint64_t seed;
	uint32_t drop_ppm;     /* chance in a million that a frame is lost */
	uint32_t dup_ppm;      /* ... that it is delivered twice */
	uint32_t delay_ppm;    /* ... that it is held back (reordering) */
	uint64_t delay_max_us; /* held back by up to this */
	uint64_t latency_us;   /* every frame's one-way delay */
	uint32_t capacity;     /* frames queued at most; more are dropped */
	uint32_t frame_max;    /* largest frame, bytes */
};

struct ust_faults_stats {
	uint64_t offered, delivered, dropped, duplicated, delayed, overflowed;
};

/* 0, -EINVAL or -ENOMEM. */
int ust_faults_create(const struct ust_faults_config *cfg, struct ust_faults **out);
void ust_faults_destroy(struct ust_faults *f);

/* Offer a frame at now_us; it is copied. Frames over frame_max are dropped. */
void ust_faults_push(struct ust_faults *f, const void *frame, size_t len, uint64_t now_us);

/*
 * Hand every frame due by now_us to deliver, earliest first (ties in the
 * order offered). deliver may push more frames. Returns how many.
 */
unsigned ust_faults_pop(struct ust_faults *f, uint64_t now_us,
			void (*deliver)(void *arg, const void *frame, size_t len), void *arg);

/* When the next frame is due, or UINT64_MAX when none is queued. */
uint64_t ust_faults_next(const struct ust_faults *f);

const struct ust_faults_stats *ust_faults_stats(const struct ust_faults *f);

#ifdef __cplusplus
}
#endif

#endif
