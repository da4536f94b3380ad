#include "runtime.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "worker.h"

struct ush_runtime {
	const char *config_path;
	struct ush_generation *gen;
	pthread_mutex_t gen_lock; /* between reload and the metrics thread */
	struct ush_worker *workers;
	size_t n_workers;
	size_t n_started;                       /* threads to join */
	const struct ush_engine_ops *engine_up; /* global_init ran: fini it */
	struct ush_health *health;
	struct ush_metrics *metrics;
};

/* ---- workers ------------------------------------------------------------- */

static void
pin_to_cpu(struct ush_worker *w)
{
	cpu_set_t set;

	if (w->cpu < 0)
		return;

	CPU_ZERO(&set);
	CPU_SET(w->cpu, &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0)
		ush_log(USH_LOG_WARN, "worker %u: cannot pin to cpu %d", w->id, w->cpu);
}

static void *
worker_main(void *arg)
{
	struct ush_worker *w = arg;
	int rc;

	ush_log_set_worker((int)w->id);
	ush_access_log_set_buffered(false);
	pin_to_cpu(w);

	rc = w->engine->init(w);
	if (rc == 0) {
		atomic_store(&w->ready, true);
		rc = w->engine->run(w);
	} else {
		ush_log(USH_LOG_ERROR, "worker %u: %s engine failed to start (%s)", w->id,
			w->engine->name, strerror(-rc));
	}

	w->engine->fini(w);
	ush_worker_release_all(w);
	w->exit_code = rc == 0 ? 0 : 1;
	atomic_store(&w->done, true);
	return NULL;
}

static const struct ush_engine_ops *
pick_engine(const struct cfg *cfg)
{
	if (cfg->engine == CFG_ENGINE_URING)
		return &ush_uring_engine;

#if USHER_HAVE_DPDK
	return &ush_dpdk_engine;
#else
	ush_log(USH_LOG_ERROR,
		"engine 'dpdk' is not available in this build (no libdpdk at build time); use 'uring'");
	return NULL;
#endif
}

static int
workers_create(struct ush_runtime *rt, const struct cfg *cfg)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	uint64_t share = (cfg->limits.max_connections + cfg->workers - 1) / cfg->workers;
	const struct ush_engine_ops *engine = pick_engine(cfg);
	size_t i;

	if (engine == NULL)
		return -ENOTSUP;

	rt->workers = calloc(cfg->workers, sizeof(*rt->workers));
	if (rt->workers == NULL)
		return -ENOMEM;
	rt->n_workers = cfg->workers;

	for (i = 0; i < rt->n_workers; i++)
		rt->workers[i].wake_fd = -1;

	/* The connection limit is split evenly: no counter is shared. */
	for (i = 0; i < rt->n_workers; i++) {
		struct ush_worker *w = &rt->workers[i];

		w->id = (unsigned)i;
		w->cpu = ncpu > 0 ? (int)(i % (size_t)ncpu) : -1;
		w->engine = engine;
		w->max_conns = share;
		w->peer_log_limit = (struct ush_ratelimit)USH_RATELIMIT_INIT(10, 1000);
		w->upstream_log_limit = (struct ush_ratelimit)USH_RATELIMIT_INIT(10, 1000);
		w->wake_fd = eventfd(0, EFD_CLOEXEC);
		if (w->wake_fd < 0)
			return -errno;

		/* Once per worker, not per generation: reloads reuse it. */
		w->libctx = OSSL_LIB_CTX_new();
		if (w->libctx == NULL)
			return -ENOMEM;
	}

	return 0;
}

/* Process-wide engine state (DPDK's EAL and port), before any worker. */
static int
engine_global_init(struct ush_runtime *rt, const struct cfg *cfg)
{
	const struct ush_engine_ops *engine = rt->workers[0].engine;

	if (engine->global_init == NULL)
		return 0;

	/* global_fini also undoes a global_init that failed half-way. */
	rt->engine_up = engine;
	return engine->global_init(cfg, (unsigned)rt->n_workers);
}

static void
engine_global_fini(struct ush_runtime *rt)
{
	if (rt->engine_up != NULL && rt->engine_up->global_fini != NULL)
		rt->engine_up->global_fini();
	rt->engine_up = NULL;
}

static int
workers_start(struct ush_runtime *rt)
{
	size_t i;
	int rc;

	for (i = 0; i < rt->n_workers; i++) {
		rc = pthread_create(&rt->workers[i].thread, NULL, worker_main, &rt->workers[i]);
		if (rc != 0)
			return -rc;
		rt->n_started++;
	}

	return 0;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Wait until every worker runs, or one has given up. */
static int
workers_wait_ready(struct ush_runtime *rt)
{
	for (;;) {
		size_t ready = 0, i;

		for (i = 0; i < rt->n_started; i++) {
			if (atomic_load(&rt->workers[i].done))
				return -1;
			ready += atomic_load(&rt->workers[i].ready);
		}

		if (ready == rt->n_workers)
			return 0;
		sleep_ms(5);
	}
}

static void
workers_signal(struct ush_runtime *rt, atomic_bool *(*flag)(struct ush_worker *))
{
	size_t i;

	for (i = 0; rt->workers != NULL && i < rt->n_workers; i++) {
		atomic_store(flag(&rt->workers[i]), true);
		rt->workers[i].engine->wake(&rt->workers[i]);
	}
}

static atomic_bool *
drain_flag(struct ush_worker *w)
{
	return &w->drain;
}

static atomic_bool *
stop_flag(struct ush_worker *w)
{
	return &w->stop;
}

static bool
workers_all_done(const struct ush_runtime *rt)
{
	size_t i;

	for (i = 0; i < rt->n_started; i++)
		if (!atomic_load(&rt->workers[i].done))
			return false;

	return true;
}

static int
workers_join(struct ush_runtime *rt)
{
	int code = 0;
	size_t i;

	for (i = 0; i < rt->n_started; i++) {
		pthread_join(rt->workers[i].thread, NULL);
		code |= rt->workers[i].exit_code;
	}

	rt->n_started = 0;
	return code;
}

/*
 * After the threads are joined. A share still in a mailbox (its worker
 * never started) holds SSL_CTX of the worker's library context, so it
 * goes before the context does.
 */
static void
workers_free(struct ush_runtime *rt)
{
	size_t i;

	for (i = 0; rt->workers != NULL && i < rt->n_workers; i++) {
		struct ush_worker *w = &rt->workers[i];

		ush_worker_release_all(w);
		OSSL_LIB_CTX_free(w->libctx);
		if (w->wake_fd >= 0)
			close(w->wake_fd);
	}

	free(rt->workers);
	rt->workers = NULL;
}

/* ---- reload ------------------------------------------------------------- */

static void
log_diags(const struct cfg_diags *diags)
{
	size_t i;

	for (i = 0; i < diags->count; i++) {
		const struct cfg_diag *d = &diags->items[i];

		ush_log(USH_LOG_ERROR, "%s:%u:%u: %s%s%s", diags->file ? diags->file : "?", d->line,
			d->col, d->key, d->key[0] ? ": " : "", d->message);
	}
}

static struct cfg *
reload_config(struct ush_runtime *rt)
{
	struct cfg_diags diags = {0};
	struct cfg *cfg = NULL;

	if (cfg_load(rt->config_path, &cfg, &diags) != 0) {
		log_diags(&diags);
		ush_log(USH_LOG_ERROR,
			"reload of '%s' failed with %zu problem%s; still running the previous configuration",
			rt->config_path, diags.count, diags.count == 1 ? "" : "s");
		cfg = NULL;
	}

	cfg_diags_clear(&diags);
	return cfg;
}

static void
warn_restart_only(const struct cfg *old, const struct cfg *cfg)
{
	if (cfg->workers != old->workers)
		ush_log(USH_LOG_WARN,
			"reload: 'workers' changed from %u to %u; this takes effect on restart only",
			old->workers, cfg->workers);
	if (cfg->engine != old->engine)
		ush_log(USH_LOG_WARN,
			"reload: 'engine' changed; this takes effect on restart only");
}

static void
swap_health(struct ush_runtime *rt, struct ush_generation *gen)
{
	int rc;

	ush_health_stop(rt->health);
	rt->health = NULL;
	rc = ush_health_start(gen->pools, &rt->health);
	if (rc != 0)
		ush_log(USH_LOG_ERROR, "health checks did not start (%s)", strerror(-rc));
}

static void
reload(struct ush_runtime *rt)
{
	struct ush_generation *gen, *old = rt->gen;
	struct cfg *cfg;
	char err[256] = "";

	ush_log(USH_LOG_INFO, "SIGHUP: reloading '%s'", rt->config_path);
	cfg = reload_config(rt);
	if (cfg == NULL)
		return;

	warn_restart_only(old->cfg, cfg);
	ush_log_set_level(cfg->log.level);
	if (ush_generation_create(cfg, rt->workers, rt->n_workers, &gen, err, sizeof(err)) != 0) {
		ush_log(USH_LOG_ERROR,
			"reload failed: %s; still running the previous configuration", err);
		return;
	}

	ush_pools_inherit_health(gen->pools, old->pools);
	swap_health(rt, gen);

	pthread_mutex_lock(&rt->gen_lock);
	rt->gen = gen;
	pthread_mutex_unlock(&rt->gen_lock);

	ush_generation_publish(gen, rt->workers, rt->n_workers);
	ush_metrics_set_generation(rt->metrics, gen);
	ush_generation_unref(old);

	if (ush_access_log_reopen() != 0)
		ush_log(USH_LOG_ERROR, "cannot reopen the access log; lines go to the old file");
	ush_log(USH_LOG_INFO, "configuration reloaded (generation %llu)",
		(unsigned long long)gen->id);
}

/* ---- shutdown ------------------------------------------------------------ */

static int
drain_and_stop(struct ush_runtime *rt, int signo)
{
	uint64_t limit = rt->gen->cfg->timeouts.shutdown_ms;
	uint64_t start = ush_now_ms();

	ush_log(USH_LOG_INFO, "%s: no new connections; draining for up to %llu ms",
		signo == SIGINT ? "SIGINT" : "SIGTERM", (unsigned long long)limit);
	workers_signal(rt, drain_flag);

	while (!workers_all_done(rt) && ush_now_ms() - start < limit)
		sleep_ms(20);

	if (!workers_all_done(rt))
		ush_log(USH_LOG_WARN,
			"shutdown timeout reached; closing the remaining connections");

	workers_signal(rt, stop_flag);
	return workers_join(rt);
}

static void
block_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	pthread_sigmask(SIG_BLOCK, set, NULL);

	/* A peer that goes away mid-write is an error code, not a signal. */
	signal(SIGPIPE, SIG_IGN);
}

/* Wait for signals until told to stop; the exit code. */
static int
signal_loop(struct ush_runtime *rt, const sigset_t *set)
{
	struct timespec tick = {.tv_sec = 0, .tv_nsec = 200 * 1000000L};

	for (;;) {
		int signo = sigtimedwait(set, NULL, &tick);

		if (signo == SIGHUP)
			reload(rt);
		else if (signo == SIGTERM || signo == SIGINT)
			return drain_and_stop(rt, signo);

		if (workers_all_done(rt)) {
			ush_log(USH_LOG_ALERT, "every worker has stopped; exiting");
			workers_join(rt);
			return 1;
		}
	}
}

/* ---- start-up ------------------------------------------------------------ */

static void
log_started(const struct ush_runtime *rt)
{
	const struct cfg *cfg = rt->gen->cfg;
	size_t i;

	for (i = 0; i < cfg->n_listeners; i++)
		ush_log(USH_LOG_INFO, "listener '%s' on %s, pool '%s'", cfg->listeners[i].name,
			cfg->listeners[i].bind.text, cfg->listeners[i].pool_name);

	ush_log(USH_LOG_INFO, "usher started: %zu worker%s, engine %s, pid %d", rt->n_workers,
		rt->n_workers == 1 ? "" : "s", rt->workers[0].engine->name, (int)getpid());
}

static int
start_services(struct ush_runtime *rt)
{
	const struct cfg *cfg = rt->gen->cfg;
	int rc;

	rc = ush_health_start(rt->gen->pools, &rt->health);
	if (rc != 0) {
		ush_log(USH_LOG_ERROR, "health checks did not start (%s)", strerror(-rc));
		return rc;
	}

	rc = ush_metrics_start(cfg, rt->workers, rt->n_workers, rt->gen, &rt->gen_lock,
			       &rt->metrics);
	if (rc != 0)
		ush_log(USH_LOG_ERROR, "metrics endpoint on '%s' did not start (%s)",
			cfg->stats.bind.text ? cfg->stats.bind.text : "-", strerror(-rc));
	return rc;
}

static int
start(struct ush_runtime *rt, struct cfg *cfg)
{
	char err[256] = "";
	int rc;

	rc = workers_create(rt, cfg);
	if (rc == 0)
		rc = engine_global_init(rt, cfg);
	if (rc != 0) {
		cfg_free(cfg);
		return rc;
	}

	rc = ush_generation_create(cfg, rt->workers, rt->n_workers, &rt->gen, err, sizeof(err));
	if (rc != 0) {
		ush_log(USH_LOG_ERROR, "cannot start: %s", err);
		return rc;
	}

	ush_generation_publish(rt->gen, rt->workers, rt->n_workers);
	rc = start_services(rt);
	if (rc != 0)
		return rc;

	rc = workers_start(rt);
	if (rc == 0)
		rc = workers_wait_ready(rt);
	return rc;
}

static void
cleanup(struct ush_runtime *rt)
{
	ush_metrics_stop(rt->metrics);
	ush_health_stop(rt->health);
	ush_generation_unref(rt->gen); /* before the workers' library contexts */
	workers_free(rt);
	engine_global_fini(rt);
	ush_access_log_close();
	pthread_mutex_destroy(&rt->gen_lock);
}

int
ush_runtime_run(const char *config_path, struct cfg *cfg)
{
	struct ush_runtime rt = {.config_path = config_path};
	sigset_t set;
	int code;

	pthread_mutex_init(&rt.gen_lock, NULL);
	block_signals(&set);
	ush_log_set_level(cfg->log.level);

	if (ush_access_log_open(&cfg->log) != 0) {
		ush_log(USH_LOG_ERROR, "cannot open the access log");
		cfg_free(cfg);
		return 1;
	}

	if (start(&rt, cfg) != 0) {
		workers_signal(&rt, stop_flag);
		workers_join(&rt);
		cleanup(&rt);
		return 1;
	}

	log_started(&rt);
	code = signal_loop(&rt, &set);
	ush_log(USH_LOG_INFO, "usher stopped");
	cleanup(&rt);
	return code;
}
