#include "worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "tls.h"

uint64_t
ush_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t
clock_ms(void *arg)
{
	(void)arg;
	return ush_now_ms();
}

static int
make_ticket_source(const struct cfg_tickets *t, struct tkc_source **out)
{
	if (t->secret != NULL)
		return tkc_source_derived(t->secret, t->secret_len, t->rotation_interval_s,
					  t->lifetime_s, out);

	return tkc_source_explicit(t->keys, t->n_key_files, t->lifetime_s, out);
}

static void
share_free(struct ush_worker_share *share)
{
	const struct cfg *cfg;
	size_t i;

	if (share == NULL)
		return;

	cfg = share->gen->cfg;
	for (i = 0; share->envs != NULL && i < cfg->n_listeners; i++)
		ush_tls_free(share->envs[i].tls);
	for (i = 0; share->balancers != NULL && i < cfg->n_pools; i++)
		ush_balancer_fini(&share->balancers[i]);

	free(share->envs);
	free(share->balancers);
	ush_generation_unref(share->gen);
	free(share);
}

static int
share_build_envs(struct ush_worker_share *share, OSSL_LIB_CTX *libctx, char *err, size_t err_len)
{
	struct ush_generation *gen = share->gen;
	const struct cfg *cfg = gen->cfg;
	struct ush_tls_error tls_err = {0};
	size_t i;
	int rc;

	for (i = 0; i < cfg->n_pools; i++) {
		rc = ush_balancer_init(&share->balancers[i], &gen->pools->pools[i]);
		if (rc != 0)
			return rc;
	}

	for (i = 0; i < cfg->n_listeners; i++) {
		const struct cfg_listener *l = &cfg->listeners[i];
		struct ush_conn_env *env = &share->envs[i];

		env->listener = l;
		env->timeouts = &cfg->timeouts;
		env->balancer = &share->balancers[l->pool];
		env->now_ms = clock_ms;
		rc = ush_tls_create(l, gen->tickets, &cfg->tickets, libctx, &env->tls, &tls_err);
		if (rc != 0) {
			snprintf(err, err_len, "listener '%s': TLS setup failed%s%s%s (%s)",
				 l->name, tls_err.path[0] ? " for '" : "", tls_err.path,
				 tls_err.path[0] ? "'" : "",
				 tls_err.reason[0] ? tls_err.reason : strerror(-rc));
			return rc;
		}
	}

	return 0;
}

static int
share_create(struct ush_generation *gen, OSSL_LIB_CTX *libctx, struct ush_worker_share **out,
	     char *err, size_t err_len)
{
	struct ush_worker_share *share = calloc(1, sizeof(*share));
	const struct cfg *cfg = gen->cfg;
	int rc;

	if (share == NULL)
		return -ENOMEM;

	atomic_fetch_add(&gen->refs, 1);
	share->gen = gen;
	share->envs = calloc(cfg->n_listeners, sizeof(*share->envs));
	share->balancers = calloc(cfg->n_pools ? cfg->n_pools : 1, sizeof(*share->balancers));
	if (share->envs == NULL || share->balancers == NULL) {
		share_free(share);
		return -ENOMEM;
	}

	rc = share_build_envs(share, libctx, err, err_len);
	if (rc != 0) {
		share_free(share);
		return rc;
	}

	*out = share;
	return 0;
}

static void
generation_destroy(struct ush_generation *gen)
{
	size_t i;

	for (i = 0; gen->shares != NULL && i < gen->n_shares; i++)
		share_free(gen->shares[i]);

	free(gen->shares);
	ush_pools_free(gen->pools);
	tkc_source_unref(gen->tickets);
	cfg_free(gen->cfg);
	free(gen);
}

void
ush_generation_unref(struct ush_generation *gen)
{
	if (gen != NULL && atomic_fetch_sub(&gen->refs, 1) == 1)
		generation_destroy(gen);
}

/* Health changes are rare and matter to the operator: always say them. */
static void
on_health_change(void *arg, const struct ush_pool *pool, const struct ush_server *server, bool up,
		 int err)
{
	(void)arg;
	if (up)
		ush_log(USH_LOG_WARN, "server '%s' (%s) in pool '%s' is up again",
			server->cfg->name, server->cfg->address.text, pool->cfg->name);
	else
		ush_log(USH_LOG_WARN, "server '%s' (%s) in pool '%s' is down (%s)",
			server->cfg->name, server->cfg->address.text, pool->cfg->name,
			err != 0 ? strerror(err) : "health check failed");
}

static int
generation_build(struct ush_generation *gen, const struct ush_worker *workers, size_t n_workers,
		 char *err, size_t err_len)
{
	size_t i;
	int rc;

	rc = ush_pools_create(gen->cfg, &gen->pools);
	if (rc != 0) {
		snprintf(err, err_len, "upstream pools: %s", strerror(-rc));
		return rc;
	}
	gen->pools->on_change = on_health_change;

	rc = make_ticket_source(&gen->cfg->tickets, &gen->tickets);
	if (rc != 0) {
		snprintf(err, err_len, "ticket keys: %s", strerror(-rc));
		return rc;
	}

	gen->shares = calloc(n_workers, sizeof(*gen->shares));
	if (gen->shares == NULL)
		return -ENOMEM;
	gen->n_shares = n_workers;

	for (i = 0; i < n_workers; i++) {
		rc = share_create(gen, workers[i].libctx, &gen->shares[i], err, err_len);
		if (rc != 0)
			return rc;
	}

	return 0;
}

int
ush_generation_create(struct cfg *cfg, const struct ush_worker *workers, size_t n_workers,
		      struct ush_generation **out, char *err, size_t err_len)
{
	static atomic_uint_fast64_t next_id = 1;
	struct ush_generation *gen = calloc(1, sizeof(*gen));
	int rc;

	if (gen == NULL) {
		cfg_free(cfg);
		snprintf(err, err_len, "out of memory");
		return -ENOMEM;
	}

	atomic_init(&gen->refs, 1);
	gen->id = atomic_fetch_add(&next_id, 1);
	gen->cfg = cfg;

	rc = generation_build(gen, workers, n_workers, err, err_len);
	if (rc != 0) {
		/* Shares hold references too: drop them before our own. */
		ush_generation_unref(gen);
		return rc;
	}

	*out = gen;
	return 0;
}

void
ush_generation_publish(struct ush_generation *gen, struct ush_worker *workers, size_t n_workers)
{
	size_t i;

	for (i = 0; i < n_workers && i < gen->n_shares; i++) {
		struct ush_worker_share *old;

		old = atomic_exchange(&workers[i].mailbox, gen->shares[i]);
		gen->shares[i] = NULL;

		/* A share the worker never took holds no connection. */
		share_free(old);

		if (workers[i].engine != NULL && workers[i].engine->wake != NULL)
			workers[i].engine->wake(&workers[i]);
	}
}

static void
add_counters(struct tkc_counters *sum, const struct tkc_counters *c)
{
	sum->tickets_issued += c->tickets_issued;
	sum->decrypt_current += c->decrypt_current;
	sum->decrypt_old += c->decrypt_old;
	sum->decrypt_unknown_key += c->decrypt_unknown_key;
	sum->decrypt_undecryptable += c->decrypt_undecryptable;
	sum->appdata_rejected += c->appdata_rejected;
	sum->affinity_routed += c->affinity_routed;
	sum->affinity_repinned += c->affinity_repinned;
	sum->key_rotations += c->key_rotations;
}

static void
share_add_counters(const struct ush_worker_share *share, struct tkc_counters *sum)
{
	const struct cfg *cfg = share->gen->cfg;
	struct tkc_counters c;
	size_t i;

	for (i = 0; i < cfg->n_listeners; i++) {
		tkc_shard_read_counters(ush_tls_shard(share->envs[i].tls), &c);
		add_counters(sum, &c);
	}
}

static void
retire_share(struct ush_worker *w, struct ush_worker_share *share)
{
	if (share == NULL)
		return;

	if (share->live_conns == 0 || w->n_retired == sizeof(w->retired) / sizeof(w->retired[0])) {
		/* TODO(#3): past 64 overlapping reloads a share that still has
		 * connections is leaked rather than freed under them. */
		if (share->live_conns != 0)
			return;
		share_add_counters(share, &w->retired_tickets);
		share_free(share);
		return;
	}

	w->retired[w->n_retired++] = share;
}

struct ush_worker_share *
ush_worker_take_mailbox(struct ush_worker *w)
{
	struct ush_worker_share *share;

	if (atomic_load_explicit(&w->mailbox, memory_order_relaxed) == NULL)
		return NULL;

	share = atomic_exchange(&w->mailbox, NULL);
	if (share == NULL)
		return NULL;

	for (size_t i = 0; i < share->gen->cfg->n_listeners; i++)
		share->envs[i].stats = &w->stats;

	retire_share(w, w->current);
	w->current = share;
	return share;
}

void
ush_worker_conn_opened(struct ush_worker *w, struct ush_worker_share *share)
{
	share->live_conns++;
	w->live_conns++;
	USH_STAT_ADD(w->stats.conns_open, 1);
}

static void
drop_retired(struct ush_worker *w, size_t i)
{
	struct ush_worker_share *share = w->retired[i];

	share_add_counters(share, &w->retired_tickets);
	share_free(share);
	w->retired[i] = w->retired[--w->n_retired];
}

void
ush_worker_conn_closed(struct ush_worker *w, struct ush_worker_share *share)
{
	size_t i;

	share->live_conns--;
	w->live_conns--;
	USH_STAT_SUB(w->stats.conns_open, 1);

	if (share->live_conns != 0 || share == w->current)
		return;

	for (i = 0; i < w->n_retired; i++) {
		if (w->retired[i] == share) {
			drop_retired(w, i);
			return;
		}
	}
}

static void
store_counters(struct tkc_counters *dst, const struct tkc_counters *src)
{
	const uint64_t *s = (const uint64_t *)src;
	uint64_t *d = (uint64_t *)dst;
	size_t i;

	for (i = 0; i < sizeof(*src) / sizeof(uint64_t); i++)
		__atomic_store_n(&d[i], s[i], __ATOMIC_RELAXED);
}

void
ush_worker_publish_counters(struct ush_worker *w)
{
	struct tkc_counters sum = w->retired_tickets;
	size_t i;

	if (w->current != NULL)
		share_add_counters(w->current, &sum);
	for (i = 0; i < w->n_retired; i++)
		share_add_counters(w->retired[i], &sum);

	store_counters(&w->tickets, &sum);
}

void
ush_worker_release_all(struct ush_worker *w)
{
	struct ush_worker_share *pending = atomic_exchange(&w->mailbox, NULL);

	ush_worker_publish_counters(w);
	share_free(pending);
	share_free(w->current);
	w->current = NULL;
	while (w->n_retired > 0)
		share_free(w->retired[--w->n_retired]);
}
