/*
 * The stack's insides, shared by its layers and by nothing else.
 */
#ifndef USHER_UST_IMPL_H
#define USHER_UST_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ust.h"

#define ETH_HLEN       14
#define ETH_TYPE_IPV4  0x0800
#define ETH_TYPE_ARP   0x0806
#define IP_HLEN        20
#define IP_PROTO_ICMP  1
#define IP_PROTO_TCP   6
#define TCP_HLEN       20
#define UST_LISTENERS  16
#define UST_OOO_RANGES 8

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_PSH 0x08
#define TH_ACK 0x10
#define TH_URG 0x20

/* Sequence space comparisons (RFC 9293 3.4), modulo 2^32. */
#define SEQ_LT(a, b)  ((int32_t)((uint32_t)(a) - (uint32_t)(b)) < 0)
#define SEQ_LEQ(a, b) ((int32_t)((uint32_t)(a) - (uint32_t)(b)) <= 0)
#define SEQ_GT(a, b)  ((int32_t)((uint32_t)(a) - (uint32_t)(b)) > 0)
#define SEQ_GEQ(a, b) ((int32_t)((uint32_t)(a) - (uint32_t)(b)) >= 0)

static inline uint16_t
rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t
rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void
wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void
wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline uint64_t
min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static inline uint32_t
min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

static inline uint32_t
max_u32(uint32_t a, uint32_t b)
{
	return a > b ? a : b;
}

/* A frame on its way in, as each layer narrows it down. */
struct ust_pkt {
	const uint8_t *l3;
	size_t l3_len; /* the IP total length, trusted once ipv4.c checked it */
	const uint8_t *l4;
	size_t l4_len;
	uint32_t src, dst;
	unsigned rx_flags;
};

struct ust_tcp_opts {
	bool mss_ok, ws_ok, ts_ok;
	uint16_t mss;
	uint8_t ws;
	uint32_t tsval, tsecr;
};

/* One TCP segment, parsed and checked. */
struct ust_seg {
	uint32_t src;
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint32_t wnd; /* the raw 16-bit field */
	uint8_t flags;
	const uint8_t *data;
	uint32_t len;
	bool old; /* started before rcv_nxt: never a duplicate ACK */
	struct ust_tcp_opts opts;
};

/* A byte ring: the send and receive buffers. */
struct ust_ring {
	uint8_t *buf;
	uint32_t cap, head, len;
};

struct ust_range {
	uint32_t start, end; /* sequence numbers, end exclusive */
};

struct ust_listener {
	struct ust_stack *stack;
	uint16_t port; /* 0 = free slot */
	uint32_t half_open;
	void *user;
};

/* Events a connection owes its application, sent once processing is done. */
#define EV_ESTABLISHED (1u << 0)
#define EV_READABLE    (1u << 1)
#define EV_WRITABLE    (1u << 2)
#define EV_CLOSED      (1u << 3)
#define EV_CONNECT_ERR (1u << 4)

struct ust_conn {
	struct ust_stack *stack;
	struct ust_conn *hash_next;
	struct ust_conn *all_prev, *all_next; /* every connection object */
	struct ust_conn *reap_next;
	struct ust_listener *listener; /* of a passive one until accepted */
	void *user;

	uint32_t raddr;
	uint16_t lport, rport;
	enum ust_tcp_state state;
	bool hashed, reaping;
	bool app_owned; /* accepted / connected, not yet on_closed */
	bool released;  /* ust_close or ust_abort: no more callbacks */
	bool passive;
	bool half_open;  /* counted in listener->half_open */
	bool fin_queued; /* ust_shutdown/close: FIN after the data */
	bool fin_sent;   /* snd_max covers our FIN */
	bool fin_rcvd;
	bool ooo_fin; /* a FIN seen beyond a hole, at ooo_fin_seq */
	bool ws_ok, ts_ok;
	bool ack_now;    /* an ACK must go out before processing ends */
	bool want_write; /* ust_send came up short: on_writable owed */
	bool in_recovery;
	bool rtt_timing;
	unsigned events;
	int err; /* for EV_CONNECT_ERR */
	enum ust_close_reason close_reason;

	/* send sequence space */
	uint32_t iss, snd_una, snd_nxt, snd_max;
	uint32_t snd_wnd, snd_wl1, snd_wl2, max_snd_wnd;
	uint8_t snd_wscale, rcv_wscale;
	uint16_t mss; /* payload per segment, options excluded */
	uint32_t cwnd, ssthresh, recover;
	uint32_t dupacks;

	/* RFC 6298 */
	uint64_t srtt_us, rttvar_us, rto_us;
	uint32_t backoff;
	uint32_t rtt_seq;
	uint64_t rtt_start;

	/* receive sequence space */
	uint32_t irs, rcv_nxt, rcv_adv, ooo_fin_seq;
	uint32_t unacked_segs;
	uint32_t ts_recent, last_ack_sent;
	struct ust_range ooo[UST_OOO_RANGES];
	uint32_t n_ooo;

	/* timers: absolute times, 0 = off */
	uint64_t rtx_at, dack_at, persist_at, linger_at;
	uint64_t deadline;
	uint32_t heap_idx; /* UINT32_MAX when not in the heap */
	uint32_t retries;
	uint32_t persist_shift;

	uint64_t rtt_samples, retransmits, fast_retransmits, zwp;

	struct ust_ring snd, rcv;
};

/* A connection in TIME_WAIT, kept small so many can wait cheaply. */
struct ust_tw {
	uint32_t raddr;
	uint16_t lport, rport;
	uint32_t snd_nxt, rcv_nxt;
	uint32_t ts_recent;
	bool ts_ok, used;
	uint64_t expires;
	uint32_t hash_next; /* index + 1; 0 ends the chain */
};

struct ust_arp_entry {
	uint32_t ip; /* 0 = free */
	uint8_t mac[6];
	bool resolved;
	uint64_t expires;  /* resolved: when it goes stale */
	uint64_t retry_at; /* unresolved: the next request */
	uint32_t tries;
	uint64_t last_used;
	uint32_t hold_len; /* one frame waiting for this address */
	unsigned hold_flags;
	uint8_t *hold;
};

struct ust_stack {
	struct ust_config cfg;
	struct ust_ops ops;
	struct ust_counters ctr;
	uint64_t now;
	uint32_t netmask;
	int depth; /* API calls in progress: frees wait until it is 0 */

	uint8_t *txbuf; /* one outgoing frame at a time */
	size_t frame_max;
	uint16_t ip_id;

	struct ust_arp_entry *arp;

	struct ust_listener listeners[UST_LISTENERS];
	struct ust_conn **buckets;
	uint32_t bucket_mask;
	struct ust_conn *all;
	struct ust_conn *reap;
	uint32_t nconns;
	struct ust_conn **heap;
	uint32_t heap_len;
	uint16_t next_port;
	uint8_t our_wscale;

	struct ust_tw *tw;
	uint32_t *tw_buckets; /* index + 1 */
	uint32_t tw_mask, tw_head, tw_count;
};

/* stack.c */
void stack_enter(struct ust_stack *s);
void stack_leave(struct ust_stack *s);
void stack_drop(struct ust_stack *s, enum ust_drop reason);
uint64_t stack_hash(const struct ust_stack *s, const void *data, size_t len);

/* csum.c */
uint64_t siphash24(const uint64_t key[2], const void *data, size_t len);

/* eth_arp.c */
void eth_input(struct ust_stack *s, const uint8_t *frame, size_t len, unsigned rx_flags);
/* Send the IP packet at s->txbuf + ETH_HLEN, resolving the next hop. */
void eth_output_ip(struct ust_stack *s, uint32_t dst, size_t ip_len, unsigned tx_flags);
int arp_create(struct ust_stack *s);
void arp_destroy(struct ust_stack *s);
void arp_timers(struct ust_stack *s);
uint64_t arp_next_timer(const struct ust_stack *s);
bool arp_route_ok(const struct ust_stack *s, uint32_t dst);

/* ipv4.c */
void ipv4_input(struct ust_stack *s, const uint8_t *l3, size_t len, unsigned rx_flags);
/* Fill the IP header at s->txbuf + ETH_HLEN around l4_len bytes and send. */
void ipv4_output(struct ust_stack *s, uint32_t dst, uint8_t proto, size_t l4_len,
		 unsigned tx_flags);

/* icmp.c */
void icmp_input(struct ust_stack *s, const struct ust_pkt *pkt);

/* tcp_in.c */
void tcp_input(struct ust_stack *s, const struct ust_pkt *pkt);
void tcp_negotiate(struct ust_conn *c, const struct ust_seg *syn);

/* tcp_state.c */
void tcp_process(struct ust_conn *c, const struct ust_seg *seg);

/* tcp_out.c */
void tcp_output(struct ust_conn *c);
void tcp_send_syn(struct ust_conn *c);
void tcp_send_ack(struct ust_conn *c);
void tcp_send_probe(struct ust_conn *c);
void tcp_send_rst(struct ust_conn *c);
void tcp_send_reply_rst(struct ust_stack *s, const struct ust_seg *seg);
void tcp_send_bare(struct ust_stack *s, uint32_t raddr, uint16_t lport, uint16_t rport,
		   uint32_t seq, uint32_t ack, uint8_t flags, uint32_t tsval, uint32_t tsecr,
		   bool ts);
void tcp_send_synack_cookie(struct ust_stack *s, const struct ust_seg *seg, uint32_t isn,
			    uint32_t tsval, bool ws);
uint32_t tcp_rcv_window(const struct ust_conn *c);
uint32_t tcp_now_ts(const struct ust_stack *s);
void tcp_retransmit_first(struct ust_conn *c);

/* tcp_timer.c */
void timer_update(struct ust_conn *c);
void timer_remove(struct ust_conn *c);
void tcp_timers(struct ust_stack *s);
uint64_t tcp_next_timer(const struct ust_stack *s);
void tcp_rtt_sample(struct ust_conn *c, uint64_t rtt_us);
void tcp_arm_rtx(struct ust_conn *c);
int tw_create(struct ust_stack *s);
void tw_destroy(struct ust_stack *s);
void tw_enter(struct ust_conn *c);
struct ust_tw *tw_lookup(struct ust_stack *s, uint32_t raddr, uint16_t lport, uint16_t rport);
void tw_remove(struct ust_stack *s, struct ust_tw *tw);
void tw_timers(struct ust_stack *s);

/* tcp_conn.c */
int conn_tables_create(struct ust_stack *s);
void conn_tables_destroy(struct ust_stack *s);
struct ust_conn *conn_lookup(struct ust_stack *s, uint32_t raddr, uint16_t lport, uint16_t rport);
struct ust_listener *listener_find(struct ust_stack *s, uint16_t port);
struct ust_conn *conn_new(struct ust_stack *s, uint32_t raddr, uint16_t lport, uint16_t rport);
void conn_set_state(struct ust_conn *c, enum ust_tcp_state state);
void conn_closed(struct ust_conn *c, enum ust_close_reason reason);
void conn_dispatch(struct ust_conn *c);
void conn_reap_all(struct ust_stack *s);
void conn_established(struct ust_conn *c);
uint32_t conn_isn(struct ust_stack *s, uint32_t raddr, uint16_t lport, uint16_t rport);
uint16_t conn_mss_for(const struct ust_stack *s, uint16_t peer_mss, bool ts);

/* tcp_cookie.c */
uint32_t cookie_make(struct ust_stack *s, const struct ust_seg *seg, uint16_t *mss_out);
bool cookie_check(struct ust_stack *s, const struct ust_seg *seg, uint16_t *mss_out);
uint32_t cookie_tsval(struct ust_stack *s, const struct ust_seg *syn);
void cookie_options(uint32_t tsecr, bool *ws_ok, uint8_t *ws);

/* ring.c */
int ring_init(struct ust_ring *r, uint32_t cap);
void ring_free(struct ust_ring *r);
uint32_t ring_push(struct ust_ring *r, const uint8_t *data, uint32_t len);
uint32_t ring_pop(struct ust_ring *r, uint8_t *out, uint32_t len);
void ring_drop(struct ust_ring *r, uint32_t len);
void ring_peek(const struct ust_ring *r, uint32_t off, uint8_t *out, uint32_t len);
void ring_write_at(struct ust_ring *r, uint32_t off, const uint8_t *data, uint32_t len);

#endif
