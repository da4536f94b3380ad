/*
 * upstream: the pools of servers usher relays to, how a server is chosen,
 * and whether it is healthy.
 *
 * The pool table is built once per configuration snapshot and shared by
 * every worker. Its configuration part never changes; health is kept in
 * atomics written by the health checker and by workers reporting connect
 * results, and read by workers without locks. Balancer state (round robin
 * position, connection counts) is per worker, so picking takes no lock and
 * touches no other worker's memory.
 */
#ifndef USHER_UPSTREAM_H
#define USHER_UPSTREAM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "cfg.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ush_server {
	const struct cfg_server *cfg; /* name, address, weight */
	size_t index;                 /* within its pool */
	atomic_bool up;
	atomic_uint consecutive_failures; /* connect failures in a row */
	atomic_uint checks_ok_in_row;     /* active checks, for rise */
	atomic_uint_fast64_t connect_failures; /* total, for metrics */
};

struct ush_pool {
	const struct cfg_pool *cfg;
	size_t index;
	struct ush_server *servers;
	size_t n_servers;
	/* open-addressing table: server name -> index, for ticket affinity */
	uint32_t *by_name;
	size_t by_name_mask;
};

struct ush_pools {
	struct ush_pool *pools;
	size_t n_pools;
};

/* Build the runtime pools of cfg. Every server starts up. 0 or -ENOMEM. */
int ush_pools_create(const struct cfg *cfg, struct ush_pools **out);
void ush_pools_free(struct ush_pools *pools);

/*
 * Carry health over from an older table (reload): servers with the same
 * pool and server name keep their state. Call before publishing.
 */
void ush_pools_inherit_health(struct ush_pools *dst, const struct ush_pools *src);

/* The server with that name in pool, or NULL. O(1). Any thread. */
struct ush_server *ush_pool_find(const struct ush_pool *pool, const char *name, size_t len);

bool ush_server_usable(const struct ush_server *s);

/*
 * Passive health: a worker reports each upstream connect result. fall
 * failures in a row mark the server down. Any thread.
 */
void ush_server_report_connect(struct ush_server *s, bool ok);

/* Per-worker balancer state for one pool. */
struct ush_balancer {
	const struct ush_pool *pool;
	uint64_t rr_next;       /* smooth weighted round robin */
	int64_t *rr_current;    /* per server */
	uint32_t *active;       /* connections this worker has open per server */
};

int ush_balancer_init(struct ush_balancer *b, const struct ush_pool *pool);
void ush_balancer_fini(struct ush_balancer *b);

/*
 * Choose a usable server with the pool's balance method. client is the
 * client address (hash_client). exclude, if not NULL, is a server already
 * tried for this connection. Returns NULL when no server is usable.
 * Owning worker only.
 */
struct ush_server *ush_balancer_pick(struct ush_balancer *b, const struct sockaddr *client,
				     const struct ush_server *exclude);

/* The worker opened / closed a connection to s (least_conn). */
void ush_balancer_conn_opened(struct ush_balancer *b, const struct ush_server *s);
void ush_balancer_conn_closed(struct ush_balancer *b, const struct ush_server *s);

/*
 * Active health checks: a thread that TCP-connects to every server of
 * every pool at its pool's interval, with its timeout, and applies
 * fall/rise. ush_health_start returns 0 or -errno; stop joins the thread.
 */
struct ush_health;
int ush_health_start(struct ush_pools *pools, struct ush_health **out);
void ush_health_stop(struct ush_health *h);

/*
 * PROXY protocol headers (v1 text, v2 binary with TLVs). Write into buf,
 * return the length or -ENOSPC / -EINVAL. alpn, sni may be NULL; tls_version
 * is like "TLSv1.3" or NULL.
 */
struct ush_proxy_info {
	const struct sockaddr *client;
	const struct sockaddr *local;
	const char *sni;
	const unsigned char *alpn;
	size_t alpn_len;
	const char *tls_version;
};

int ush_proxy_v1(const struct ush_proxy_info *info, char *buf, size_t cap);
int ush_proxy_v2(const struct ush_proxy_info *info, unsigned char *buf, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
