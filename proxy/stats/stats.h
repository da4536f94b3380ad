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

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define USH_TLS_VERSIONS  2  /* [0] TLS 1.2, [1] TLS 1.3 */
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
#define USH_STAT_ADD(field, n)                                                        \
	__atomic_store_n(&(field), __atomic_load_n(&(field), __ATOMIC_RELAXED) + (n), \
			 __ATOMIC_RELAXED)
#define USH_STAT_SUB(field, n)                                                        \
	__atomic_store_n(&(field), __atomic_load_n(&(field), __ATOMIC_RELAXED) - (n), \
			 __ATOMIC_RELAXED)
#define USH_STAT_LOAD(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

/* ---- Prometheus text format writer ---------------------------------------- */

enum ush_metric_type {
	USH_METRIC_COUNTER = 0,
	USH_METRIC_GAUGE = 1,
};

struct ush_metric_label {
	const char *name;  /* [a-zA-Z_][a-zA-Z0-9_]* */
	const char *value; /* anything; escaped as the format requires */
};

/*
 * A growing buffer of exposition text (format version 0.0.4). Plain fields:
 * data holds len bytes, not NUL-terminated. The first failure sticks in
 * error (-ENOMEM, or -EINVAL for a malformed metric or label name, a bug of
 * ours) and later calls do nothing, so a printer checks once at the end.
 */
struct ush_metrics_writer {
	char *data;
	size_t len;
	size_t cap;
	int error;
};

void ush_metrics_writer_init(struct ush_metrics_writer *w);
void ush_metrics_writer_fini(struct ush_metrics_writer *w);

/*
 * Start a family: its "# HELP" and "# TYPE" lines. Every sample of the
 * family must follow before the next family starts. help is escaped
 * ('\\' and newline).
 */
void ush_metrics_family(struct ush_metrics_writer *w, const char *name, enum ush_metric_type type,
			const char *help);

/*
 * One sample line: name{label="value",...} value. Label values are escaped
 * ('\\', '"', newline); n_labels may be 0.
 */
void ush_metrics_sample(struct ush_metrics_writer *w, const char *name,
			const struct ush_metric_label *labels, size_t n_labels, uint64_t value);

/* ---- what the endpoint reports -------------------------------------------- */

typedef void (*ush_metrics_print_fn)(struct ush_metrics_writer *w, void *arg);

/*
 * Where the figures come from. Everything pointed to must outlive the
 * server (or the ush_stats_render() call).
 */
struct ush_stats_sources {
	struct ush_conn_stats *const *workers; /* worker i's stats at [i] */
	size_t n_workers;

	/*
	 * USH_CLOSE_REASONS tokens, indexed like ush_conn_stats.closes (the
	 * lead passes ush_close_reason_name() of each reason). A NULL entry,
	 * or a NULL array, leaves that reason out.
	 */
	const char *const *close_reason_names;

	/*
	 * More families (ticket counters, pool and server health), printed
	 * after usher's own. Runs on the stats thread while workers run, so it
	 * must read only what is safe to read from another thread. May be
	 * NULL.
	 */
	ush_metrics_print_fn print_extra;
	void *extra_arg;
};

/*
 * Print every family of src into w:
 *
 *	usher_connections_open{worker}             gauge
 *	usher_connections_accepted_total{worker}
 *	usher_connections_rejected_total{worker}
 *	usher_handshakes_total{worker,version="1.2|1.3",kind="full|resumed"}
 *	usher_handshake_failures_total{worker}
 *	usher_connections_closed_total{worker,reason}
 *	usher_upstream_connect_failures_total{worker}
 *	usher_upstream_retries_total{worker}
 *	usher_bytes_total{worker,direction="in|out"}
 *	usher_access_log_lost_total
 *
 * then print_extra's. Any thread.
 */
void ush_stats_render(const struct ush_stats_sources *src, struct ush_metrics_writer *w);

/* ---- the HTTP endpoint ---------------------------------------------------- */

struct cfg_addr;
struct ush_stats_server;

struct ush_stats_server_opts {
	unsigned read_timeout_ms; /* per client, for its whole request */
	unsigned max_clients;     /* more wait in the listen backlog */
	size_t max_request;       /* request line and headers */
};

#define USH_STATS_READ_TIMEOUT_MS 5000
#define USH_STATS_MAX_CLIENTS     64
#define USH_STATS_MAX_REQUEST     8192

/*
 * Bind a listening socket to bind->ss and serve GET /metrics on a thread
 * of its own (signals blocked there, so they reach the main thread). src
 * is copied; what it points to is not. opts may be NULL for the defaults
 * above; a zero field also takes its default.
 *
 * Answers: 200 with the text of ush_stats_render() for GET /metrics (a
 * query string is ignored), 404 for another path, 405 for another method,
 * 400 for a malformed request, 431 for one larger than max_request. Every
 * response closes the connection. A client that has not sent its request
 * within read_timeout_ms is closed without an answer.
 *
 * Returns 0, or -errno from socket()/bind()/listen() (-EADDRINUSE, ...),
 * -ENOMEM, or -EAGAIN if the thread could not start. Never logs: the caller
 * reports the failure with bind->text. Main thread.
 */
int ush_stats_server_start(const struct cfg_addr *bind, const struct ush_stats_sources *src,
			   struct ush_stats_server **out);
int ush_stats_server_start_opts(const struct cfg_addr *bind, const struct ush_stats_sources *src,
				const struct ush_stats_server_opts *opts,
				struct ush_stats_server **out);

/* The bound port, in host order (useful when bind asked for port 0). */
unsigned ush_stats_server_port(const struct ush_stats_server *srv);

/*
 * Stop at once: wake the thread, join it, close the listener and every
 * client, free srv. NULL is a no-op. Main thread.
 */
void ush_stats_server_stop(struct ush_stats_server *srv);

#ifdef __cplusplus
}
#endif

#endif
