#include "metrics.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "stats.h"

struct ush_metrics {
	struct ush_stats_server *server;
	struct ush_worker *workers;
	size_t n_workers;
	struct ush_conn_stats **worker_stats;
	const char *close_names[USH_CLOSE_REASONS];
	pthread_mutex_t *gen_lock;
	struct ush_generation *gen; /* read under gen_lock */
};

struct ticket_family {
	const char *name;
	const char *help;
	size_t offset;
};

static const struct ticket_family ticket_families[] = {
	{"usher_tickets_issued_total", "Session tickets issued.",
	 offsetof(struct tkc_counters, tickets_issued)},
	{"usher_affinity_routed_total", "Resumed connections routed to the server in their ticket.",
	 offsetof(struct tkc_counters, affinity_routed)},
	{"usher_affinity_repinned_total",
	 "Resumed connections whose ticket named a server that could not be used.",
	 offsetof(struct tkc_counters, affinity_repinned)},
	{"usher_ticket_key_rotations_total", "Ticket key sets rebuilt after an epoch change.",
	 offsetof(struct tkc_counters, key_rotations)},
};

struct decrypt_outcome {
	const char *label;
	size_t offset;
};

static const struct decrypt_outcome decrypt_outcomes[] = {
	{"current", offsetof(struct tkc_counters, decrypt_current)},
	{"old", offsetof(struct tkc_counters, decrypt_old)},
	{"unknown_key", offsetof(struct tkc_counters, decrypt_unknown_key)},
	{"undecryptable", offsetof(struct tkc_counters, decrypt_undecryptable)},
	{"rejected", offsetof(struct tkc_counters, appdata_rejected)},
};

static uint64_t
ticket_counter(struct ush_worker *w, size_t offset)
{
	uint64_t *field = (uint64_t *)((char *)&w->tickets + offset);

	return __atomic_load_n(field, __ATOMIC_RELAXED);
}

static void
print_ticket_family(struct ush_metrics *m, struct ush_metrics_writer *out,
		    const struct ticket_family *f)
{
	char id[24];
	size_t i;

	ush_metrics_family(out, f->name, USH_METRIC_COUNTER, f->help);
	for (i = 0; i < m->n_workers; i++) {
		struct ush_metric_label l = {"worker", id};

		snprintf(id, sizeof(id), "%zu", i);
		ush_metrics_sample(out, f->name, &l, 1, ticket_counter(&m->workers[i], f->offset));
	}
}

static void
print_decrypts(struct ush_metrics *m, struct ush_metrics_writer *out)
{
	const char *name = "usher_ticket_decrypts_total";
	char id[24];
	size_t i, k;

	ush_metrics_family(out, name, USH_METRIC_COUNTER,
			   "Tickets offered by clients, by how their decryption ended.");
	for (i = 0; i < m->n_workers; i++) {
		snprintf(id, sizeof(id), "%zu", i);
		for (k = 0; k < sizeof(decrypt_outcomes) / sizeof(decrypt_outcomes[0]); k++) {
			struct ush_metric_label l[2] = {{"worker", id},
							{"outcome", decrypt_outcomes[k].label}};

			ush_metrics_sample(
				out, name, l, 2,
				ticket_counter(&m->workers[i], decrypt_outcomes[k].offset));
		}
	}
}

static void
print_servers(struct ush_metrics_writer *out, const struct ush_pools *pools, bool health)
{
	const char *name = health ? "usher_server_up" : "usher_server_connect_failures_total";
	size_t p, s;

	ush_metrics_family(out, name, health ? USH_METRIC_GAUGE : USH_METRIC_COUNTER,
			   health ? "1 when the server is considered healthy."
				  : "Upstream connects to the server that failed.");
	for (p = 0; p < pools->n_pools; p++) {
		const struct ush_pool *pool = &pools->pools[p];

		for (s = 0; s < pool->n_servers; s++) {
			struct ush_server *srv = &pool->servers[s];
			struct ush_metric_label l[2] = {{"pool", pool->cfg->name},
							{"server", srv->cfg->name}};
			uint64_t v = health ? atomic_load(&srv->up)
					    : atomic_load(&srv->connect_failures);

			ush_metrics_sample(out, name, l, 2, v);
		}
	}
}

static void
print_extra(struct ush_metrics_writer *out, void *arg)
{
	struct ush_metrics *m = arg;
	size_t i;

	for (i = 0; i < sizeof(ticket_families) / sizeof(ticket_families[0]); i++)
		print_ticket_family(m, out, &ticket_families[i]);
	print_decrypts(m, out);

	pthread_mutex_lock(m->gen_lock);
	print_servers(out, m->gen->pools, true);
	print_servers(out, m->gen->pools, false);
	pthread_mutex_unlock(m->gen_lock);

	/* Every worker runs the same engine; it keeps its own figures. */
	if (m->n_workers > 0 && m->workers[0].engine->print_metrics != NULL)
		m->workers[0].engine->print_metrics(out);
}

int
ush_metrics_start(const struct cfg *cfg, struct ush_worker *workers, size_t n_workers,
		  struct ush_generation *gen, pthread_mutex_t *gen_lock, struct ush_metrics **out)
{
	struct ush_stats_sources src = {0};
	struct ush_metrics *m;
	size_t i;
	int rc;

	*out = NULL;
	if (!cfg->stats.enabled)
		return 0;

	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return -ENOMEM;
	m->worker_stats = calloc(n_workers, sizeof(*m->worker_stats));
	if (m->worker_stats == NULL) {
		free(m);
		return -ENOMEM;
	}

	m->workers = workers;
	m->n_workers = n_workers;
	m->gen_lock = gen_lock;
	m->gen = gen;
	for (i = 0; i < n_workers; i++)
		m->worker_stats[i] = &workers[i].stats;
	for (i = 0; i < USH_CLOSE_REASONS && i < USH_CLOSE_REASON_COUNT; i++)
		m->close_names[i] = ush_close_reason_name((enum ush_close_reason)i);

	src.workers = m->worker_stats;
	src.n_workers = n_workers;
	src.close_reason_names = m->close_names;
	src.print_extra = print_extra;
	src.extra_arg = m;

	rc = ush_stats_server_start(&cfg->stats.bind, &src, &m->server);
	if (rc != 0) {
		free(m->worker_stats);
		free(m);
		return rc;
	}

	*out = m;
	return 0;
}

void
ush_metrics_set_generation(struct ush_metrics *m, struct ush_generation *gen)
{
	if (m == NULL)
		return;

	pthread_mutex_lock(m->gen_lock);
	m->gen = gen;
	pthread_mutex_unlock(m->gen_lock);
}

void
ush_metrics_stop(struct ush_metrics *m)
{
	if (m == NULL)
		return;

	ush_stats_server_stop(m->server);
	free(m->worker_stats);
	free(m);
}
