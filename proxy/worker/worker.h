/*
 * worker: one core's share of usher, independent of the engine.
 *
 * A generation is everything built from one configuration snapshot: the
 * config, the upstream pools, the ticket key source, and for each worker a
 * share of its own (TLS contexts and ticket shards per listener, balancers
 * per pool). The main thread builds a generation and drops each share in
 * its worker's mailbox; the worker switches at its next loop iteration.
 * Connections keep the share they started with, and a share is freed by its
 * worker when it is no longer current and its last connection is gone, so a
 * reload never disturbs an established connection.
 *
 * Each worker also has an OpenSSL library context of its own, made with
 * the worker and kept across reloads until exit, since a new context
 * would load its providers again. Every share of that worker builds its
 * TLS contexts and ticket shards in it, so that the algorithm store,
 * property cache and random generator that a handshake locks belong to
 * its worker alone (proxy/conn/tls.h).
 */
#ifndef USHER_WORKER_H
#define USHER_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/crypto.h>

#include "cfg.h"
#include "conn.h"
#include "engine.h"
#include "log.h"
#include "stats.h"
#include "tkc.h"
#include "upstream.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ush_generation {
	atomic_uint refs; /* the runtime's, plus one per share */
	uint64_t id;
	struct cfg *cfg;
	struct ush_pools *pools;
	struct tkc_source *tickets;
	struct ush_worker_share **shares; /* one per worker, until handed over */
	size_t n_shares;
};

struct ush_worker_share {
	struct ush_generation *gen;
	struct ush_conn_env *envs;      /* one per listener, same order as cfg */
	struct ush_balancer *balancers; /* one per pool */
	uint64_t live_conns;
};

struct ush_worker {
	unsigned id;
	int cpu;              /* pinned to, or -1 */
	OSSL_LIB_CTX *libctx; /* owned by the runtime; outlives every share */
	pthread_t thread;
	const struct ush_engine_ops *engine;
	void *engine_state;

	struct ush_conn_stats stats;
	struct tkc_counters tickets; /* copied from the shards, relaxed */
	uint64_t max_conns;          /* this worker's part of the limit */
	uint64_t live_conns;

	_Atomic(struct ush_worker_share *) mailbox;
	struct ush_worker_share *current;
	struct ush_worker_share *retired[64]; /* shares still holding conns */
	size_t n_retired;
	struct tkc_counters retired_tickets; /* sums of freed shares */

	int wake_fd;                         /* eventfd owned by the runtime; engines wait on it */
	atomic_bool ready;                   /* init succeeded, the loop runs */
	struct ush_ratelimit peer_log_limit; /* clients misbehaving */
	struct ush_ratelimit upstream_log_limit; /* upstream outages */
	atomic_bool stop;                        /* leave the loop now */
	atomic_bool drain;                       /* stop accepting; leave when idle */
	atomic_bool done;                        /* the loop has ended */
	int exit_code;
};

/*
 * Build a generation from cfg (which it takes over) for n_workers workers:
 * pools, ticket source, and each worker's share, built in that worker's
 * libctx. On failure returns -errno and has written the reason to err
 * (for the operator).
 */
int ush_generation_create(struct cfg *cfg, const struct ush_worker *workers, size_t n_workers,
			  struct ush_generation **out, char *err, size_t err_len);
void ush_generation_unref(struct ush_generation *gen);

/* Hand each worker its share of gen (main thread). */
void ush_generation_publish(struct ush_generation *gen, struct ush_worker *workers,
			    size_t n_workers);

/*
 * On the worker: take a newly published share, if any, retire the old one.
 * Returns the new share or NULL when there was none.
 */
struct ush_worker_share *ush_worker_take_mailbox(struct ush_worker *w);

/* Connection accounting on the worker: frees retired shares when empty. */
void ush_worker_conn_opened(struct ush_worker *w, struct ush_worker_share *share);
void ush_worker_conn_closed(struct ush_worker *w, struct ush_worker_share *share);

/* Copy ticket counters of the live shards for the stats thread. */
void ush_worker_publish_counters(struct ush_worker *w);

/* Free every share the worker still holds (worker exit). */
void ush_worker_release_all(struct ush_worker *w);

/* Write the access log line of a connection that ends (owning worker). */
void ush_worker_log_close(struct ush_worker *w, const struct ush_conn *c, uint64_t now_ms);

/* Monotonic milliseconds. */
uint64_t ush_now_ms(void);

#ifdef __cplusplus
}
#endif

#endif
