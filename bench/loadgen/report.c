/*
 * What usher-loadgen says: a progress line while it runs, then a summary
 * for people and a JSON document for scripts (bench/compare reads it).
 *
 * Percentages:
 *   resumed_pct  = resumed / connections that offered a session
 *   affinity_pct = resumed connections answered by the backend that served
 *                  their session's first (full) handshake / resumed
 * In resume mode each slot's first connection is a full handshake by
 * design and offers nothing, so it does not lower resumed_pct.
 */
#include <errno.h>
#include <string.h>

#include "lg.h"

static double
percent(uint64_t part, uint64_t whole)
{
	return whole != 0 ? 100.0 * (double)part / (double)whole : 0.0;
}

static uint64_t
load(const _Atomic uint64_t *counter)
{
	return atomic_load_explicit(counter, memory_order_relaxed);
}

void
lg_totals_read(const struct lg_worker *workers, unsigned n, struct lg_totals *t)
{
	memset(t, 0, sizeof(*t));
	for (unsigned i = 0; i < n; i++) {
		const struct lg_stats *st = &workers[i].stats;

		t->handshakes += load(&st->handshakes);
		t->resume_attempts += load(&st->resume_attempts);
		t->resumed += load(&st->resumed);
		t->affinity_same += load(&st->affinity_same);
		for (int e = 0; e < LG_ERR_COUNT; e++)
			t->errors += load(&st->errors[e]);
		t->idle_open += load(&st->idle_open);
		t->idle_dropped += load(&st->idle_dropped);
	}
}

void
lg_progress_print(const struct lg_options *opt, const struct lg_totals *now,
		  const struct lg_totals *before, double elapsed_s, double interval_s)
{
	double rate =
		interval_s > 0 ? (double)(now->handshakes - before->handshakes) / interval_s : 0.0;

	if (opt->mode == LG_MODE_IDLE) {
		fprintf(stderr, "\r%5.0fs  open %llu/%u  errors %llu  dropped %llu\033[K",
			elapsed_s, (unsigned long long)now->idle_open, opt->idle,
			(unsigned long long)now->errors, (unsigned long long)now->idle_dropped);
		return;
	}

	fprintf(stderr,
		"\r%5.0fs  %llu handshakes  %.0f/s  resumed %.2f%%  affinity %.2f%%  errors %llu\033[K",
		elapsed_s, (unsigned long long)now->handshakes, rate,
		percent(now->resumed, now->resume_attempts),
		percent(now->affinity_same, now->resumed), (unsigned long long)now->errors);
}

/* ---- merging -------------------------------------------------------------- */

static void
merge_backend(struct lg_result *r, const struct lg_backend_count *b)
{
	for (unsigned i = 0; i < r->n_backends; i++) {
		if (strcmp(r->backends[i].name, b->name) == 0) {
			r->backends[i].answers += b->answers;
			return;
		}
	}

	if (r->n_backends == LG_BACKENDS_MAX) {
		r->backends_other += b->answers;
		return;
	}
	r->backends[r->n_backends++] = *b;
}

static void
merge_stats(struct lg_result *r, const struct lg_stats *st)
{
	r->handshakes += load(&st->handshakes);
	r->resume_attempts += load(&st->resume_attempts);
	r->resumed += load(&st->resumed);
	r->affinity_same += load(&st->affinity_same);
	r->idle_dropped += load(&st->idle_dropped);
	for (int e = 0; e < LG_ERR_COUNT; e++) {
		r->errors[e] += load(&st->errors[e]);
		r->errors_total += load(&st->errors[e]);
	}

	lg_hist_merge(&r->latency_us, &st->latency_us);
	for (unsigned i = 0; i < st->n_backends; i++)
		merge_backend(r, &st->backends[i]);
	r->backends_other += st->backends_other;
	if (r->first_error[0] == '\0')
		memcpy(r->first_error, st->first_error, sizeof(r->first_error));
}

void
lg_result_merge(struct lg_result *r, const struct lg_worker *workers, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		merge_stats(r, &workers[i].stats);
}

/* ---- for people ----------------------------------------------------------- */

static const char *
mode_name(enum lg_mode mode)
{
	switch (mode) {
	case LG_MODE_FULL:
		return "full";
	case LG_MODE_RESUME:
		return "resume";
	default:
		return "idle";
	}
}

static const char *
tls_name(int version)
{
	return version == TLS1_2_VERSION ? "1.2" : "1.3";
}

static void
print_latency(FILE *f, const struct lg_hist *h)
{
	fprintf(f,
		"latency      p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms\n",
		(double)lg_hist_percentile(h, 50) / 1000, (double)lg_hist_percentile(h, 90) / 1000,
		(double)lg_hist_percentile(h, 99) / 1000,
		(double)lg_hist_percentile(h, 99.9) / 1000, (double)h->max / 1000);
}

static void
print_backends(FILE *f, const struct lg_result *r)
{
	fprintf(f, "backends    ");
	for (unsigned i = 0; i < r->n_backends; i++)
		fprintf(f, " %s %llu", r->backends[i].name,
			(unsigned long long)r->backends[i].answers);
	if (r->backends_other != 0)
		fprintf(f, " (others) %llu", (unsigned long long)r->backends_other);
	fprintf(f, "\n");
}

void
lg_result_print(FILE *f, const struct lg_options *opt, const struct lg_result *r)
{
	fprintf(f, "usher-loadgen: %s, TLS %s, %s, %u in flight, %.1f s\n", opt->target.text,
		tls_name(opt->tls_version), mode_name(opt->mode), opt->concurrency, r->elapsed_s);
	if (opt->mode == LG_MODE_IDLE)
		fprintf(f, "held         %llu of %u (%llu closed by the server)\n",
			(unsigned long long)r->idle_established, opt->idle,
			(unsigned long long)r->idle_dropped);
	fprintf(f, "handshakes   %llu (%.1f/s)\n", (unsigned long long)r->handshakes,
		r->elapsed_s > 0 ? (double)r->handshakes / r->elapsed_s : 0.0);
	fprintf(f, "resumed      %.2f%% of %llu offers\n", percent(r->resumed, r->resume_attempts),
		(unsigned long long)r->resume_attempts);
	fprintf(f, "affinity     %.2f%% of %llu resumed\n", percent(r->affinity_same, r->resumed),
		(unsigned long long)r->resumed);
	fprintf(f,
		"errors       %llu (connect %llu, handshake %llu, io %llu, answer %llu, timeout %llu)\n",
		(unsigned long long)r->errors_total, (unsigned long long)r->errors[LG_ERR_CONNECT],
		(unsigned long long)r->errors[LG_ERR_HANDSHAKE],
		(unsigned long long)r->errors[LG_ERR_IO],
		(unsigned long long)r->errors[LG_ERR_ANSWER],
		(unsigned long long)r->errors[LG_ERR_TIMEOUT]);
	if (r->first_error[0] != '\0')
		fprintf(f, "first error  %s\n", r->first_error);
	print_latency(f, &r->latency_us);
	print_backends(f, r);
}

/* ---- for scripts ---------------------------------------------------------- */

/* A JSON string; backend names come from the network, so escape all. */
static void
put_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void
put_u64(FILE *f, const char *key, uint64_t v)
{
	fprintf(f, "  \"%s\": %llu,\n", key, (unsigned long long)v);
}

static void
put_double(FILE *f, const char *key, double v)
{
	fprintf(f, "  \"%s\": %.3f,\n", key, v);
}

static void
put_settings(FILE *f, const struct lg_options *opt)
{
	fprintf(f, "  \"target\": ");
	put_string(f, opt->target.text);
	fprintf(f, ",\n  \"resume_target\": ");
	if (opt->has_resume_target)
		put_string(f, opt->resume_target.text);
	else
		fprintf(f, "null");
	fprintf(f, ",\n  \"mode\": \"%s\",\n  \"tls\": \"%s\",\n", mode_name(opt->mode),
		tls_name(opt->tls_version));
	put_u64(f, "concurrency", opt->concurrency);
	put_u64(f, "threads", opt->threads);
}

static void
put_latency(FILE *f, const struct lg_hist *h)
{
	put_u64(f, "p50_us", lg_hist_percentile(h, 50));
	put_u64(f, "p90_us", lg_hist_percentile(h, 90));
	put_u64(f, "p99_us", lg_hist_percentile(h, 99));
	put_u64(f, "p999_us", lg_hist_percentile(h, 99.9));
	put_u64(f, "min_us", h->count != 0 ? h->min : 0);
	put_u64(f, "max_us", h->max);
	put_double(f, "mean_us", lg_hist_mean(h));
}

static void
put_errors(FILE *f, const struct lg_result *r)
{
	static const char *const names[LG_ERR_COUNT] = {
		[LG_ERR_CONNECT] = "connect", [LG_ERR_HANDSHAKE] = "handshake", [LG_ERR_IO] = "io",
		[LG_ERR_ANSWER] = "answer",   [LG_ERR_TIMEOUT] = "timeout",
	};

	put_u64(f, "errors", r->errors_total);
	fprintf(f, "  \"errors_by_kind\": {");
	for (int e = 0; e < LG_ERR_COUNT; e++)
		fprintf(f, "%s\"%s\": %llu", e != 0 ? ", " : "", names[e],
			(unsigned long long)r->errors[e]);
	fprintf(f, "},\n  \"first_error\": ");
	if (r->first_error[0] != '\0')
		put_string(f, r->first_error);
	else
		fprintf(f, "null");
	fprintf(f, ",\n");
}

static void
put_backends(FILE *f, const struct lg_result *r)
{
	fprintf(f, "  \"backends\": {");
	for (unsigned i = 0; i < r->n_backends; i++) {
		fprintf(f, "%s", i != 0 ? ", " : "");
		put_string(f, r->backends[i].name);
		fprintf(f, ": %llu", (unsigned long long)r->backends[i].answers);
	}
	fprintf(f, "},\n  \"backends_other\": %llu\n", (unsigned long long)r->backends_other);
}

int
lg_result_write_json(FILE *f, const struct lg_options *opt, const struct lg_result *r)
{
	fprintf(f, "{\n");
	put_settings(f, opt);
	put_double(f, "duration_s", r->elapsed_s);
	put_u64(f, "handshakes", r->handshakes);
	put_double(f, "handshakes_per_s",
		   r->elapsed_s > 0 ? (double)r->handshakes / r->elapsed_s : 0.0);
	put_u64(f, "resume_attempts", r->resume_attempts);
	put_u64(f, "resumed", r->resumed);
	put_double(f, "resumed_pct", percent(r->resumed, r->resume_attempts));
	put_u64(f, "affinity_same", r->affinity_same);
	put_double(f, "affinity_pct", percent(r->affinity_same, r->resumed));
	if (opt->mode == LG_MODE_IDLE) {
		put_u64(f, "idle_requested", opt->idle);
		put_u64(f, "idle_established", r->idle_established);
		put_u64(f, "idle_dropped", r->idle_dropped);
	}
	put_errors(f, r);
	put_latency(f, &r->latency_us);
	put_backends(f, r);
	fprintf(f, "}\n");

	if (fflush(f) != 0 || ferror(f))
		return -1;
	return 0;
}
