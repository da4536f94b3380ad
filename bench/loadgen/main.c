/*
 * usher-loadgen (issue #4): main thread. It starts the workers, prints a
 * progress line each second when stderr is a terminal, ends the run at
 * --duration (or when --max-connections is used up, or on SIGINT), then
 * merges what the workers counted and reports it.
 *
 * Exit status: 0 when at least one connection got its answer, 1 when none
 * did (nothing was measured), 2 for a usage error.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "lg.h"

#define POLL_NS     (50 * UINT64_C(1000000)) /* how often the main thread looks */
#define PROGRESS_NS UINT64_C(1000000000)

static volatile sig_atomic_t interrupted;

static void
on_interrupt(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void
setup_signals(void)
{
	struct sigaction sa = {.sa_handler = on_interrupt};

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	/* A server that closes first must not kill us halfway through a write. */
	signal(SIGPIPE, SIG_IGN);
}

/* Every connection is a descriptor: allow as many as the hard limit does. */
static void
raise_fd_limit(const struct lg_options *opt)
{
	rlim_t need = (opt->mode == LG_MODE_IDLE ? opt->idle : opt->concurrency) + 64;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= need)
		return;

	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need ? need : rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < need)
		fprintf(stderr,
			"usher-loadgen: open files are limited to %llu; connections beyond that will fail\n",
			(unsigned long long)rl.rlim_cur);
}

static void
sleep_ns(uint64_t ns)
{
	struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u),
			      .tv_nsec = (long)(ns % 1000000000u)};

	nanosleep(&ts, NULL);
}

/* ---- workers -------------------------------------------------------------- */

static unsigned
share(unsigned total, unsigned parts, unsigned i)
{
	return total / parts + (i < total % parts ? 1 : 0);
}

/* Create and start opt->threads workers; 0 or -errno (none left running). */
static int
start_workers(struct lg_run *run, struct lg_worker *workers, unsigned *started)
{
	const struct lg_options *opt = run->opt;
	unsigned total = opt->mode == LG_MODE_IDLE ? opt->idle : opt->concurrency;
	unsigned first = 0;
	int rc;

	*started = 0;
	for (unsigned i = 0; i < opt->threads; i++) {
		unsigned n = share(total, opt->threads, i);
		unsigned conc = share(opt->concurrency, opt->threads, i);

		rc = lg_worker_init(&workers[i], run, i, n, first, conc != 0 ? conc : 1);
		if (rc != 0)
			return rc;
		first += n;

		rc = pthread_create(&workers[i].thread, NULL, lg_worker_main, &workers[i]);
		if (rc != 0) {
			lg_worker_destroy(&workers[i]);
			return -rc;
		}
		(*started)++;
	}
	return 0;
}

static void
stop_workers(struct lg_run *run, struct lg_worker *workers, unsigned n)
{
	atomic_store(&run->stop, true);
	for (unsigned i = 0; i < n; i++)
		pthread_join(workers[i].thread, NULL);
}

static bool
json_on_stdout(const struct lg_options *opt)
{
	return opt->json_path != NULL && strcmp(opt->json_path, "-") == 0;
}

/* ---- the clock of the run ------------------------------------------------- */

struct progress {
	bool enabled;
	bool printed;
	uint64_t start_ns;
	uint64_t next_ns;
	struct lg_totals last;
};

static void
progress_tick(struct progress *p, const struct lg_run *run, const struct lg_worker *workers,
	      unsigned n)
{
	uint64_t now = lg_now_ns();
	struct lg_totals t;

	if (!p->enabled || now < p->next_ns)
		return;

	lg_totals_read(workers, n, &t);
	lg_progress_print(run->opt, &t, &p->last, (double)(now - p->start_ns) / 1e9,
			  (double)(now - p->next_ns + PROGRESS_NS) / 1e9);
	p->last = t;
	p->next_ns = now + PROGRESS_NS;
	p->printed = true;
}

static bool
all_done(const struct lg_run *run, unsigned n)
{
	return atomic_load(&run->workers_done) >= n;
}

/* Wait until deadline, all workers done, or SIGINT. The time it ended. */
static uint64_t
wait_phase(struct progress *p, const struct lg_run *run, const struct lg_worker *workers,
	   unsigned n, uint64_t deadline_ns, bool until_done)
{
	for (;;) {
		uint64_t now = lg_now_ns();

		if (interrupted || now >= deadline_ns || (until_done && all_done(run, n)))
			return now < deadline_ns ? now : deadline_ns;
		progress_tick(p, run, workers, n);
		sleep_ns(deadline_ns - now < POLL_NS ? deadline_ns - now : POLL_NS);
	}
}

/* Load: run until the duration is over or every worker is out of work. */
static double
run_load(struct progress *p, struct lg_run *run, struct lg_worker *workers, unsigned n)
{
	uint64_t end = wait_phase(p, run, workers, n, p->start_ns + run->opt->duration_ns, true);

	return (double)(end - p->start_ns) / 1e9;
}

/*
 * Idle: open, then announce on stdout how many are held (bench/compare
 * measures the server's memory then), hold, and let the workers close them.
 */
static double
run_idle(struct progress *p, struct lg_run *run, struct lg_worker *workers, unsigned n,
	 uint64_t *established)
{
	/* stdout, unless the JSON document goes there and must stay pure. */
	FILE *announce = json_on_stdout(run->opt) ? stderr : stdout;
	uint64_t end = wait_phase(p, run, workers, n, p->start_ns + run->opt->duration_ns, true);
	struct lg_totals t;

	atomic_store(&run->stop_opening, true);
	while (!all_done(run, n) && !interrupted)
		sleep_ns(POLL_NS / 5);

	lg_totals_read(workers, n, &t);
	*established = t.idle_open;
	fprintf(announce, "established %llu\n", (unsigned long long)t.idle_open);
	fflush(announce);

	wait_phase(p, run, workers, n, lg_now_ns() + run->opt->hold_ns, false);
	return (double)(end - p->start_ns) / 1e9;
}

/* ---- reporting ------------------------------------------------------------ */

/* Open --json FILE before the run, so a typo does not waste the run. */
static FILE *
open_json(const struct lg_options *opt)
{
	FILE *f;

	if (opt->json_path == NULL || json_on_stdout(opt))
		return NULL;

	f = fopen(opt->json_path, "w");
	if (f == NULL)
		fprintf(stderr, "usher-loadgen: cannot write '%s': %s\n", opt->json_path,
			strerror(errno));
	return f;
}

static int
write_json(const struct lg_options *opt, FILE *f, const struct lg_result *r)
{
	int rc;

	if (json_on_stdout(opt))
		return lg_result_write_json(stdout, opt, r);

	rc = lg_result_write_json(f, opt, r);
	if (fclose(f) != 0 || rc != 0) {
		fprintf(stderr, "usher-loadgen: writing '%s' failed: %s\n", opt->json_path,
			strerror(errno));
		return -1;
	}
	return 0;
}

static int
report(const struct lg_options *opt, FILE *json, const struct lg_result *r)
{
	lg_result_print(json_on_stdout(opt) ? stderr : stdout, opt, r);
	if (opt->json_path != NULL && write_json(opt, json, r) != 0)
		return 1;
	return r->handshakes > 0 ? 0 : 1;
}

/* Start the workers, run, stop them and merge what they counted into r. */
static int
run_workers(const struct lg_options *opt, struct lg_result *r)
{
	struct lg_run run = {.opt = opt};
	struct progress p = {0};
	struct lg_worker *workers;
	unsigned started = 0;
	int rc;

	atomic_init(&run.budget, (int64_t)opt->max_connections);
	workers = calloc(opt->threads, sizeof(*workers));
	if (workers == NULL) {
		fprintf(stderr, "usher-loadgen: out of memory\n");
		return -ENOMEM;
	}

	p.enabled = isatty(STDERR_FILENO) == 1;
	p.start_ns = lg_now_ns();
	p.next_ns = p.start_ns + PROGRESS_NS;

	rc = start_workers(&run, workers, &started);
	if (rc != 0)
		fprintf(stderr, "usher-loadgen: cannot start worker %u: %s\n", started,
			strerror(-rc));
	else if (opt->mode == LG_MODE_IDLE)
		r->elapsed_s = run_idle(&p, &run, workers, started, &r->idle_established);
	else
		r->elapsed_s = run_load(&p, &run, workers, started);

	stop_workers(&run, workers, started);
	if (p.printed)
		fprintf(stderr, "\n");

	lg_result_merge(r, workers, started);
	for (unsigned i = 0; i < started; i++)
		lg_worker_destroy(&workers[i]);
	free(workers);
	return rc;
}

int
main(int argc, char **argv)
{
	static struct lg_result result;
	struct lg_options opt;
	FILE *json;
	int rc;

	rc = lg_options_parse(argc, argv, &opt);
	if (rc != 0)
		return rc > 0 ? 0 : 2;

	json = open_json(&opt);
	if (opt.json_path != NULL && !json_on_stdout(&opt) && json == NULL)
		return 2;

	setup_signals();
	raise_fd_limit(&opt);
	lg_hist_init(&result.latency_us);
	if (run_workers(&opt, &result) != 0) {
		if (json != NULL)
			fclose(json);
		return 1;
	}
	return report(&opt, json, &result);
}
