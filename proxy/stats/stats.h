/*
 * stats: per-worker counters and the Prometheus endpoint.
 *
 * Each worker owns one struct ush_conn_stats and is its only writer; it
 * bumps fields with relaxed atomic stores (USH_STAT_ADD), so the stats
 * thread can read them at any time with relaxed loads and no lock. The
 * endpoint sums nothing itself: it prints each worker's figures with a
 * worker="N" label, plus pool/server health and ticket counters.
 */
#ifndef USHER_STATS_H
#define USHER_STATS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define USH_TLS_VERSIONS 2 /* [0] TLS 1.2, [1] TLS 1.3 */
#define USH_CLOSE_REASONS 12 /* = USH_CLOSE_REASON_COUNT in conn.h */

struct ush_conn_stats {
	uint64_t conns_open; /* gauge */
	uint64_t conns_accepted;
	uint64_t conns_rejected; /* over limits.max_connections */
	uint64_t handshakes_full[USH_TLS_VERSIONS];
	uint64_t handshakes_resumed[USH_TLS_VERSIONS];
	uint64_t handshake_failures;
	uint64_t closes[USH_CLOSE_REASONS];
	uint64_t upstream_connect_failures;
	uint64_t upstream_retries;
	uint64_t bytes_from_client;
	uint64_t bytes_to_client;
};

/* Single-writer counter update; readers use USH_STAT_LOAD. */
#define USH_STAT_ADD(field, n)                                                                     \
	__atomic_store_n(&(field), __atomic_load_n(&(field), __ATOMIC_RELAXED) + (n),               \
			 __ATOMIC_RELAXED)
#define USH_STAT_SUB(field, n)                                                                     \
	__atomic_store_n(&(field), __atomic_load_n(&(field), __ATOMIC_RELAXED) - (n),               \
			 __ATOMIC_RELAXED)
#define USH_STAT_LOAD(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

#ifdef __cplusplus
}
#endif

#endif
