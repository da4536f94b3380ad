/*
 * The wire: two stacks back to back, each one's frames going through its
 * own fault injector to the other, on a virtual clock that jumps to the
 * next thing due. Each node runs a small application of "endpoints", one
 * per connection, that send a buffer, read into another, and may shut
 * down or close when done.
 */
#ifndef USHER_WIRE_H
#define USHER_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ust.h"

#define WIRE_EPS 64

struct wire_node;
struct cap;

struct endpoint {
	struct wire_node *node;
	struct ust_conn *conn;
	bool used, established, released;
	int connect_err;
	int closed;
	enum ust_close_reason reason;

	const uint8_t *tx; /* what to send, then shut down if shut_after_tx */
	size_t tx_len, tx_off;
	bool shut_after_tx, shut_done;
	uint8_t *rx; /* what arrived; rx_cap bytes at most are kept */
	size_t rx_cap, rx_len;
	bool eof;
	bool paused;          /* stop reading: the peer's window closes */
	bool shut_on_eof;     /* answer the peer's FIN with ours */
	bool close_when_done; /* ust_close after EOF and our FIN */
	struct ust_conn_info at_accept;
};

struct wire_node {
	struct wire *w;
	int idx;
	struct ust_stack *st;
	struct ust_faults *out;
	struct ust_listener *listener;
	struct endpoint tmpl; /* copied for each accepted connection */
	struct endpoint ep[WIRE_EPS];
	int accepted;
	struct cap *tap; /* if set, a copy of every frame sent */
};

struct wire {
	struct wire_node n[2];
	uint64_t now;
	uint64_t steps;
};

/* Node configs for 10.0.0.1 (node 0) and 10.0.0.2 (node 1). */
void wire_config(struct ust_config *cfg, int idx);

/* A fault config with a seed and nothing else. */
void wire_faults_config(struct ust_faults_config *f, uint64_t seed);

/* cfg/faults may be NULL for the defaults. 0 or a negative errno. */
int wire_init(struct wire *w, const struct ust_config *cfg[2],
	      const struct ust_faults_config *faults[2]);
void wire_fini(struct wire *w);

/* A free endpoint of node idx, already zeroed. */
struct endpoint *wire_endpoint(struct wire *w, int idx);

/* Connect an endpoint of node 0 to node 1's port. */
int wire_connect(struct wire *w, struct endpoint *ep, uint16_t port);

/*
 * Pump until done(w, arg) or until max_us of virtual time passed. Returns
 * whether done was reached.
 */
bool wire_run(struct wire *w, bool (*done)(struct wire *w, void *arg), void *arg, uint64_t max_us);

/* Let virtual time pass (pumping all the while). */
void wire_idle(struct wire *w, uint64_t us);

#endif
