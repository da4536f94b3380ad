/*
 * conn: one client connection, its TLS session and its upstream leg, as a
 * state machine over memory buffers. It does no I/O: an engine (io_uring,
 * DPDK) feeds it bytes and events, then asks what it wants and does it.
 * The same code therefore runs on the kernel stack, on usher's userspace
 * stack, and in unit tests.
 *
 *             client bytes                        upstream bytes
 *   engine ---------------> on_client_data   on_upstream_data <--------- engine
 *                                 |   TLS   ^
 *                                 v         |
 *                    to_upstream buffer   to_client buffer
 *   engine <--- wants SEND_UPSTREAM        wants SEND_CLIENT ---> engine
 *
 * States:
 *
 *   HANDSHAKE --(TLS done)--> CONNECTING --(connected)--> RELAY --> CLOSING
 *       |                        |  ^ retry other server       |
 *       +------- error/timeout --+--+--------------------------+--> CLOSED
 *
 * All functions are for the owning worker's thread only.
 */
#ifndef USHER_CONN_H
#define USHER_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "cfg.h"
#include "tkc.h"
#include "upstream.h"

#ifdef __cplusplus
extern "C" {
#endif

enum ush_conn_state {
	USH_CONN_HANDSHAKE = 0,
	USH_CONN_CONNECTING = 1,
	USH_CONN_RELAY = 2,
	USH_CONN_CLOSING = 3, /* flushing what is left, then closed */
	USH_CONN_CLOSED = 4,
};

/* Why a connection ended: a stable token for logs and metrics. */
enum ush_close_reason {
	USH_CLOSE_NONE = 0,
	USH_CLOSE_DONE = 1,             /* both sides finished normally */
	USH_CLOSE_CLIENT_RESET = 2,     /* client closed or reset early */
	USH_CLOSE_HANDSHAKE_FAILED = 3, /* bad ClientHello, alert, garbage */
	USH_CLOSE_HANDSHAKE_TIMEOUT = 4,
	USH_CLOSE_IDLE_TIMEOUT = 5,
	USH_CLOSE_NO_SERVER = 6,       /* no usable server in the pool */
	USH_CLOSE_UPSTREAM_FAILED = 7, /* connect failed on every try */
	USH_CLOSE_UPSTREAM_RESET = 8,  /* upstream reset mid-stream */
	USH_CLOSE_SHUTDOWN = 9,        /* usher is stopping */
	USH_CLOSE_LIMIT = 10,          /* max_connections reached */
	USH_CLOSE_INTERNAL = 11,       /* our fault: memory, OpenSSL */
	USH_CLOSE_REASON_COUNT
};

const char *ush_close_reason_name(enum ush_close_reason reason);

/*
 * A byte buffer, allocated only while non-empty. Bytes the engine has
 * peeked stay at their address until it reports them with
 * ush_conn_on_sent(), even if the connection appends meanwhile, so an
 * engine may send straight from the buffer, one send in flight per
 * direction.
 */
struct ush_buf {
	unsigned char *data;
	uint32_t head; /* first byte not yet consumed */
	uint32_t tail; /* one past the last byte */
	uint32_t cap;
	unsigned char *retired; /* an older block a send may still read */
};

/*
 * Everything the connections of one listener on one worker share: its TLS
 * contexts and ticket shard, its pool's balancer, the timeouts.
 */
struct ush_tls;

struct ush_conn_env {
	const struct cfg_listener *listener;
	const struct cfg_timeouts *timeouts;
	struct ush_tls *tls;
	struct ush_balancer *balancer;
	struct ush_conn_stats *stats;  /* per worker, see stats.h */
	uint64_t (*now_ms)(void *arg); /* monotonic clock of the worker */
	void *now_arg;
};

/*
 * Bits of ush_conn_wants(). They are levels, not edges: the engine asks
 * after every event and does what is not already under way.
 *
 * RECV_*: bytes are welcome from that side. When a bit drops the engine
 * stops reading that side (backpressure); bytes it still delivers (a
 * multishot receive already armed) are accepted all the same.
 *
 * CONNECT: open an upstream to c->server and report the outcome with
 * on_upstream_connected() or on_upstream_failed(). After a failure or a
 * connect timeout the connection may choose another server and want
 * CONNECT again, with c->connect_tries one higher: an attempt still
 * pending from a lower try is to be abandoned.
 *
 * SHUT_UPSTREAM: shutdown(SHUT_WR) the upstream, then set
 * c->upstream_shut so the bit drops.
 *
 * CLOSE: close both sockets; once no operation of the engine refers to
 * the connection any more, call ush_conn_fini().
 */
#define USH_WANT_RECV_CLIENT   0x01u /* room to take more client bytes */
#define USH_WANT_RECV_UPSTREAM 0x02u
#define USH_WANT_SEND_CLIENT   0x04u /* to_client has bytes */
#define USH_WANT_SEND_UPSTREAM 0x08u /* to_upstream has bytes */
#define USH_WANT_CONNECT       0x10u /* open an upstream to c->server */
#define USH_WANT_SHUT_UPSTREAM 0x20u /* half-close: no more to upstream */
#define USH_WANT_CLOSE         0x40u /* done: close both, then free */

struct ush_conn {
	struct ush_conn_env *env;
	enum ush_conn_state state;
	enum ush_close_reason reason;

	SSL *ssl;
	struct tkc_conn ticket;
	struct ush_buf from_client; /* ciphertext TLS has not taken yet */
	struct ush_buf to_client;   /* ciphertext to send */
	struct ush_buf to_upstream; /* plaintext (and PROXY header) to send */

	struct sockaddr_storage client_addr;
	struct sockaddr_storage local_addr;
	struct ush_server *server; /* chosen upstream, NULL before */
	struct ush_server *failed; /* a server that already failed us */
	unsigned connect_tries;

	bool client_eof; /* the client will send nothing more */
	bool upstream_eof;
	bool upstream_open;      /* connected; set by on_upstream_connected */
	bool upstream_shut;      /* we half-closed towards upstream (engine sets) */
	bool forwarded;          /* some client byte reached an upstream */
	bool draining;           /* usher is stopping: close once quiet */
	unsigned long tls_error; /* OpenSSL's error of a TLS failure, for logs */

	uint64_t accepted_ms;
	/*
	 * When on_timeout is due, 0 = none; may change after any event. It
	 * is the handshake timeout in HANDSHAKE, the connect timeout per try
	 * in CONNECTING, the idle timeout (from the last byte moved) in
	 * RELAY, and a bound on flushing the last bytes in CLOSING.
	 */
	uint64_t deadline_ms;
	uint64_t bytes_from_client; /* plaintext bytes relayed */
	uint64_t bytes_to_client;

	void *engine; /* the engine's per-connection state */
};

/*
 * Start a connection accepted on env's listener. c is cleared except for
 * c->engine, which the engine may set before. 0, -ENOMEM or -EIO. On
 * failure c needs only ush_conn_fini().
 *
 * Counters: the connection counts handshakes, handshake failures, close
 * reasons, upstream connect failures and retries, and relayed bytes in
 * env->stats; conns_open, conns_accepted and conns_rejected are the
 * engine's to count.
 */
int ush_conn_init(struct ush_conn *c, struct ush_conn_env *env, const struct sockaddr *client,
		  socklen_t client_len, const struct sockaddr *local, socklen_t local_len);

/*
 * Release the SSL object and buffers, and give the upstream back to the
 * balancer. Safe on a half-built conn. Buffers are kept until here, not
 * freed at CLOSE, since an engine send may still be reading them.
 */
void ush_conn_fini(struct ush_conn *c);

/* Events from the engine. */
void ush_conn_on_client_data(struct ush_conn *c, const void *data, size_t len);
void ush_conn_on_client_eof(struct ush_conn *c);
void ush_conn_on_client_error(struct ush_conn *c, int err);
void ush_conn_on_upstream_connected(struct ush_conn *c);
void ush_conn_on_upstream_failed(struct ush_conn *c, int err);
void ush_conn_on_upstream_data(struct ush_conn *c, const void *data, size_t len);
void ush_conn_on_upstream_eof(struct ush_conn *c);
void ush_conn_on_upstream_error(struct ush_conn *c, int err);
void ush_conn_on_sent(struct ush_conn *c, int to_upstream, size_t n);
/* Called at or after c->deadline_ms; an early or stale call is ignored. */
void ush_conn_on_timeout(struct ush_conn *c);

/*
 * usher is draining: close at once if still in handshake, otherwise with
 * close_notify once no byte has moved for a quiet second (or the idle
 * timeout, if shorter). The engine bounds the whole drain itself.
 */
void ush_conn_shutdown(struct ush_conn *c);

/*
 * Close at once for a reason the engine found (LIMIT, INTERNAL when a
 * socket cannot be made, ...). Nothing more is sent.
 */
void ush_conn_abort(struct ush_conn *c, enum ush_close_reason reason);

/* What the engine should do now: USH_WANT_* bits. */
unsigned ush_conn_wants(const struct ush_conn *c);

/* The pending bytes for one direction, for the engine's send; NULL if none. */
static inline const unsigned char *
ush_buf_peek(const struct ush_buf *b, size_t *len)
{
	*len = b->tail - b->head;
	return *len > 0 ? b->data + b->head : NULL;
}

#ifdef __cplusplus
}
#endif

#endif
