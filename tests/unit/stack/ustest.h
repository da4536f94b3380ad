/*
 * Helpers for the ust stack tests: crafting frames, capturing what a stack
 * transmits, parsing it back, a recording application, and the "wire":
 * two stacks back to back through fault injectors, on a virtual clock.
 */
#ifndef USHER_USTEST_H
#define USHER_USTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ust.h"

#define IP4(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))

extern const uint8_t MAC_US[6];   /* the stack under test */
extern const uint8_t MAC_PEER[6]; /* the crafted peer */
extern const uint8_t MAC_GW[6];
#define IP_US   IP4(10, 0, 0, 1)
#define IP_PEER IP4(10, 0, 0, 2)
#define IP_GW   IP4(10, 0, 0, 254)

/* --- Frames a stack sent --- */

#define CAP_FRAMES 512
#define CAP_BYTES  2048

struct cap {
	int n;
	size_t len[CAP_FRAMES];
	unsigned flags[CAP_FRAMES];
	uint8_t frame[CAP_FRAMES][CAP_BYTES];
};

int cap_tx(void *arg, const void *frame, size_t len, unsigned tx_flags);
void cap_clear(struct cap *c);

/* --- A parsed TCP segment --- */

struct tcpv {
	uint32_t src, dst;
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t wnd;
	const uint8_t *data;
	size_t len;
	bool mss_ok, ws_ok, ts_ok;
	uint16_t mss;
	uint8_t ws;
	uint32_t tsval, tsecr;
	bool ip_csum_ok, tcp_csum_ok;
};

/* Parse an Ethernet/IPv4/TCP frame; false if it is not one. */
bool parse_tcp(const uint8_t *frame, size_t len, struct tcpv *v);

/* The last TCP segment in c, or false. */
bool last_tcp(const struct cap *c, struct tcpv *v);

/* How many captured frames are TCP with exactly these flags. */
int count_tcp_flags(const struct cap *c, uint8_t flags);

/* --- Crafting --- */

#define F_FIN 0x01
#define F_SYN 0x02
#define F_RST 0x04
#define F_PSH 0x08
#define F_ACK 0x10

struct tcpb {
	uint32_t src, dst;
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t wnd;
	const uint8_t *opts; /* raw option bytes, a multiple of 4 */
	size_t optlen;
	const void *data;
	size_t len;
};

/* Ethernet + IPv4 (checksummed) around payload; returns the frame length. */
size_t build_ip(uint8_t *frame, uint32_t src, uint32_t dst, uint8_t proto, const void *payload,
		size_t len);
size_t build_tcp(uint8_t *frame, const struct tcpb *b);
size_t build_arp(uint8_t *frame, uint16_t op, const uint8_t *sha, uint32_t spa, const uint8_t *tha,
		 uint32_t tpa, const uint8_t *eth_dst);

/* Recompute the TCP checksum of a frame after editing its segment. */
void fix_tcp_csum(uint8_t *frame);

/* Option blocks: MSS, NOP, WS, NOP NOP TS (20 bytes) and NOP NOP TS (12). */
size_t opts_syn(uint8_t *p, uint16_t mss, int ws, bool ts, uint32_t tsval, uint32_t tsecr);
size_t opts_ts(uint8_t *p, uint32_t tsval, uint32_t tsecr);

/* --- A stack for crafted-packet tests --- */

struct app {
	struct ust_conn *conn; /* the last accepted or connected */
	int accepted, connected, readable, writable, closed;
	int connect_err;
	enum ust_close_reason reason;
	struct ust_listener *listener;
	/* Called from on_readable and on_writable, with the nesting tracked. */
	void (*hook)(struct ust_conn *conn);
	int depth, max_depth;
};

struct rig {
	struct ust_stack *st;
	struct cap cap;
	struct app app;
	uint64_t now;
};

/* Defaults for tests: 10.0.0.1/24, gateway .254, small buffers. */
void rig_config(struct ust_config *cfg);

/* Create r->st with cfg (NULL = rig_config) and ops that record into r->app. */
int rig_init(struct rig *r, const struct ust_config *cfg);
void rig_fini(struct rig *r);

/* Feed the stack one crafted frame at r->now. */
void rig_input(struct rig *r, const uint8_t *frame, size_t len);
void rig_tcp(struct rig *r, const struct tcpb *b);

/* Tell the stack the peer's MAC, so TCP output is not held for ARP. */
void rig_learn_peer(struct rig *r);

/* Advance the clock to t and run timers. */
void rig_advance(struct rig *r, uint64_t t);

/* Ops whose arg is r: tx into r->cap, events into r->app. */
void rig_ops(struct ust_ops *ops, struct rig *r);

#endif
