/*
 * upstream: the pools of servers usher relays to, how a server is chosen,
 * and whether it is healthy.
 *
 * The pool table is built once per configuration snapshot and shared by
 * every worker. Its configuration part never changes; health is kept in
 * atomics written by the health checker and by workers reporting connect
 * results, and read by workers without locks. Balancer
 * state (round robin position, connection counts) is per worker, so picking
 * takes no lock and touches no other worker's memory.
 *
 * Health of one server, from any source of connect results:
 *
 *            fall failures in a row
 *      UP ---------------------------> DOWN
 *       ^                               |
 *       +-------------------------------+
 *          rise active checks in a row
 *
 * Workers report their connect results (passive); the health thread
 * connects to every server at its pool's interval (active). Only active
 * checks bring a server back, so a pool whose health_check.interval_ms is
 * 0 has no active checks and its servers are never marked down.
 */
#ifndef USHER_UPSTREAM_H
#define USHER_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "cfg.h"

/*
 * The health fields are C11 atomics. C++ before C++23 has no _Atomic, so a
 * C++ includer (the benchmarks) sees std::atomic of the same type, which
 * has the same size and alignment on every target usher builds for.
 */
#ifdef __cplusplus
#include <atomic>
#define USH_ATOMIC(type) std::atomic<type>
#else
#include <stdatomic.h>
#define USH_ATOMIC(type) _Atomic(type)
#endif

#ifdef __cplusplus
extern "C" {
#endif

struct ush_pool;

/* The atomic fields are shared between threads; relaxed loads suffice. */
struct ush_server {
	const struct cfg_server *cfg; /* name, address, weight */
	const struct ush_pool *pool;  /* the pool it belongs to */
	size_t index;                 /* within its pool */
	uint64_t name_hash;           /* of cfg->name: lookup and hash_client */

	USH_ATOMIC(bool) up;
	USH_ATOMIC(uint32_t) consecutive_failures; /* connect failures in a row, any source */
	USH_ATOMIC(uint32_t) checks_ok_in_row;     /* active checks, for rise */
	USH_ATOMIC(uint64_t) connect_failures;     /* total reported by workers, for metrics */
	USH_ATOMIC(uint64_t) checks_failed;        /* total active check failures */
};

struct ush_pool {
	const struct cfg_pool *cfg;
	size_t index;
	struct ush_server *servers;
	size_t n_servers;
	/* open addressing: server name -> index + 1 (0 = empty slot) */
	uint32_t *by_name;
	size_t by_name_mask;
	struct ush_pools *pools; /* the table it belongs to */
};

/*
 * Called once per health change (up -> down or down -> up), on the thread
 * that made it: a worker (passive) or the health thread. err is the errno
 * of the last failed connect when known, else 0. It must be thread-safe and
 * quick; the main program logs there.
 */
typedef void (*ush_health_change_fn)(void *arg, const struct ush_pool *pool,
				     const struct ush_server *server, bool up, int err);

struct ush_pools {
	const struct cfg *cfg;
	struct ush_pool *pools;
	size_t n_pools;
	ush_health_change_fn on_change; /* may be NULL; set before sharing */
	void *on_change_arg;
};

/*
 * Build the runtime pools of cfg; cfg must outlive them. Every server
 * starts up. 0 or -ENOMEM. Any thread.
 */
int ush_pools_create(const struct cfg *cfg, struct ush_pools **out);

/* Stop the health checker of these pools first. NULL is a no-op. */
void ush_pools_free(struct ush_pools *pools);

/*
 * Carry health over from an older table (reload): a server keeps its state
 * when the old table has a server of the same name and the same address in
 * a pool of the same name. Call before publishing dst, while no health
 * checker runs on dst.
 */
void ush_pools_inherit_health(struct ush_pools *dst, const struct ush_pools *src);

/*
 * The server named name (len bytes, not necessarily NUL-terminated) in
 * pool, or NULL. O(1). Any thread.
 */
struct ush_server *ush_pool_find(const struct ush_pool *pool, const char *name, size_t len);

/* Whether s may be given new connections now. Any thread. */
bool ush_server_usable(const struct ush_server *s);

/*
 * Passive health: a worker reports each upstream connect result. fall
 * failures in a row mark the server down (when its pool has active checks
 * to bring it back); a success resets the count. Any thread.
 */
void ush_server_report_connect(struct ush_server *s, bool ok);

/* Per-worker balancer state for one pool. */
struct ush_balancer {
	const struct ush_pool *pool;
	uint64_t rr_next;    /* least_conn: after the last pick, for ties */
	int64_t *rr_current; /* smooth weighted round robin, per server */
	uint32_t *active;    /* connections this worker has open per server */
};

/* 0 or -ENOMEM. On failure b needs no fini. Owning worker only. */
int ush_balancer_init(struct ush_balancer *b, const struct ush_pool *pool);

/* Safe on a zeroed or finished balancer. */
void ush_balancer_fini(struct ush_balancer *b);

/*
 * Choose a usable server with the pool's balance method:
 *   round_robin  smooth weighted round robin;
 *   least_conn   fewest connections open from this worker, ties to the
 *                higher weight, then in turn;
 *   hash_client  weighted rendezvous hashing of the client IP address (not
 *                the port), so a server going down moves only its own
 *                clients. Without an IP client address it falls back to
 *                round robin.
 * exclude, if not NULL, is a server already tried for this connection: it
 * is never chosen. Returns NULL when no other server is usable. Owning
 * worker only.
 */
struct ush_server *ush_balancer_pick(struct ush_balancer *b, const struct sockaddr *client,
				     const struct ush_server *exclude);

/*
 * The worker opened / closed a connection to s (least_conn). A server of
 * another pool table (one from before a reload) is ignored.
 */
void ush_balancer_conn_opened(struct ush_balancer *b, const struct ush_server *s);
void ush_balancer_conn_closed(struct ush_balancer *b, const struct ush_server *s);

/*
 * Active health checks: one thread that TCP-connects to every server of
 * every pool at its pool's interval, with its timeout, and applies
 * fall/rise. ush_health_start returns 0 or -errno (-ENOMEM, or what
 * eventfd() or pthread_create() failed with). ush_health_stop wakes the
 * thread, joins it and closes every descriptor it used; NULL is a no-op.
 * pools must outlive the checker. Control thread only.
 */
struct ush_health;
int ush_health_start(struct ush_pools *pools, struct ush_health **out);
void ush_health_stop(struct ush_health *h);

/*
 * PROXY protocol headers, sent first on the upstream connection.
 *
 * client is the address of the TLS client, local the address it connected
 * to. Both are written as IPv4 when both are IPv4 (IPv4-mapped IPv6
 * included), else both as IPv6 with an IPv4 one mapped. A NULL address or
 * a family other than IPv4/IPv6 gives "UNKNOWN" (v1) or AF_UNSPEC (v2).
 *
 * v2 carries TLVs: ALPN (the selected protocol, when alpn_len > 0),
 * AUTHORITY (sni, when set and not empty) and SSL with the PP2_CLIENT_SSL
 * flag (every usher client speaks TLS) and a version sub-TLV when
 * tls_version (like "TLSv1.3") is set. No client certificate is verified,
 * so the SSL verify field is non-zero, as the specification asks.
 *
 * Both write into buf (v1 without a terminating NUL) and return the length,
 * -ENOSPC when cap is too small (buf is then left alone) or -EINVAL when
 * info is NULL or a TLV does not fit the header's 16-bit length.
 * Any thread.
 */
struct ush_proxy_info {
	const struct sockaddr *client;
	const struct sockaddr *local;
	const char *sni;
	const unsigned char *alpn;
	size_t alpn_len;
	const char *tls_version;
};

#define USH_PROXY_V1_MAX 107 /* longest v1 line, "\r\n" included */

int ush_proxy_v1(const struct ush_proxy_info *info, char *buf, size_t cap);
int ush_proxy_v2(const struct ush_proxy_info *info, unsigned char *buf, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
