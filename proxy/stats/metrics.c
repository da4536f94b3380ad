/*
 * metrics: the Prometheus text format (version 0.0.4) writer, and usher's
 * own families rendered from the per-worker counters.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "stats.h"

void
ush_metrics_writer_init(struct ush_metrics_writer *w)
{
	memset(w, 0, sizeof(*w));
}

void
ush_metrics_writer_fini(struct ush_metrics_writer *w)
{
	free(w->data);
	memset(w, 0, sizeof(*w));
}

static bool
reserve(struct ush_metrics_writer *w, size_t more)
{
	size_t cap = w->cap != 0 ? w->cap : 4096;
	char *data;

	if (w->error != 0)
		return false;
	if (w->cap - w->len >= more)
		return true;

	while (cap - w->len < more)
		cap *= 2;

	data = realloc(w->data, cap);
	if (data == NULL) {
		w->error = -ENOMEM;
		return false;
	}

	w->data = data;
	w->cap = cap;
	return true;
}

static void
put(struct ush_metrics_writer *w, const char *s, size_t n)
{
	if (!reserve(w, n))
		return;

	memcpy(w->data + w->len, s, n);
	w->len += n;
}

static void
put_str(struct ush_metrics_writer *w, const char *s)
{
	put(w, s, strlen(s));
}

/*
 * Escape what the format reserves: '\\' and newline everywhere, '"' too in
 * label values. Everything else, UTF-8 included, passes as is.
 */
static void
put_escaped(struct ush_metrics_writer *w, const char *s, bool quote)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			put_str(w, "\\\\");
		else if (*s == '\n')
			put_str(w, "\\n");
		else if (*s == '"' && quote)
			put_str(w, "\\\"");
		else
			put(w, s, 1);
	}
}

/* Metric names may hold ':' as well; label names may not. */
static bool
valid_name(const char *name, bool metric)
{
	if (name == NULL || *name == '\0' || (*name >= '0' && *name <= '9'))
		return false;

	for (; *name != '\0'; name++) {
		char c = *name;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || (metric && c == ':')))
			return false;
	}

	return true;
}

static bool
check_name(struct ush_metrics_writer *w, const char *name, bool metric)
{
	if (valid_name(name, metric))
		return true;

	if (w->error == 0)
		w->error = -EINVAL;
	return false;
}

void
ush_metrics_family(struct ush_metrics_writer *w, const char *name, enum ush_metric_type type,
		   const char *help)
{
	if (!check_name(w, name, true))
		return;

	put_str(w, "# HELP ");
	put_str(w, name);
	put_str(w, " ");
	put_escaped(w, help, false);
	put_str(w, "\n# TYPE ");
	put_str(w, name);
	put_str(w, type == USH_METRIC_GAUGE ? " gauge\n" : " counter\n");
}

void
ush_metrics_sample(struct ush_metrics_writer *w, const char *name,
		   const struct ush_metric_label *labels, size_t n_labels, uint64_t value)
{
	char number[32];

	if (!check_name(w, name, true))
		return;
	for (size_t i = 0; i < n_labels; i++)
		if (!check_name(w, labels[i].name, false))
			return;

	put_str(w, name);
	for (size_t i = 0; i < n_labels; i++) {
		put_str(w, i == 0 ? "{" : ",");
		put_str(w, labels[i].name);
		put_str(w, "=\"");
		put_escaped(w, labels[i].value != NULL ? labels[i].value : "", true);
		put_str(w, "\"");
	}
	if (n_labels > 0)
		put_str(w, "}");

	snprintf(number, sizeof(number), " %llu\n", (unsigned long long)value);
	put_str(w, number);
}

/* ---- usher's own families ------------------------------------------------- */

/*
 * One family with one sample per worker and no other label; field picks
 * the counter out of a worker's stats.
 */
typedef uint64_t (*field_fn)(const struct ush_conn_stats *s);

#define FIELD_READER(field_)                                          \
	static uint64_t read_##field_(const struct ush_conn_stats *s) \
	{                                                             \
		return USH_STAT_LOAD(s->field_);                      \
	}

FIELD_READER(conns_open)
FIELD_READER(conns_accepted)
FIELD_READER(conns_rejected)
FIELD_READER(handshake_failures)
FIELD_READER(upstream_connect_failures)
FIELD_READER(upstream_retries)

struct per_worker_family {
	const char *name;
	enum ush_metric_type type;
	const char *help;
	field_fn read;
};

static const struct per_worker_family fam_open = {"usher_connections_open", USH_METRIC_GAUGE,
						  "Client connections open now.", read_conns_open};
static const struct per_worker_family fam_accepted = {
	"usher_connections_accepted_total", USH_METRIC_COUNTER, "Client connections accepted.",
	read_conns_accepted};
static const struct per_worker_family fam_rejected = {
	"usher_connections_rejected_total", USH_METRIC_COUNTER,
	"Client connections refused because limits.max_connections was reached.",
	read_conns_rejected};
static const struct per_worker_family fam_handshake_failures = {
	"usher_handshake_failures_total", USH_METRIC_COUNTER, "TLS handshakes that failed.",
	read_handshake_failures};
static const struct per_worker_family fam_connect_failures = {
	"usher_upstream_connect_failures_total", USH_METRIC_COUNTER,
	"Upstream connection attempts that failed.", read_upstream_connect_failures};
static const struct per_worker_family fam_retries = {
	"usher_upstream_retries_total", USH_METRIC_COUNTER,
	"Upstream connections retried on another server.", read_upstream_retries};

static void
worker_label(char *buf, size_t cap, size_t worker)
{
	snprintf(buf, cap, "%zu", worker);
}

static void
render_simple(const struct ush_stats_sources *src, const struct per_worker_family *f,
	      struct ush_metrics_writer *w)
{
	char worker[24];

	ush_metrics_family(w, f->name, f->type, f->help);
	for (size_t i = 0; i < src->n_workers; i++) {
		worker_label(worker, sizeof(worker), i);
		ush_metrics_sample(w, f->name, &(struct ush_metric_label){"worker", worker}, 1,
				   f->read(src->workers[i]));
	}
}

static void
render_handshakes(const struct ush_stats_sources *src, struct ush_metrics_writer *w)
{
	static const char *const versions[USH_TLS_VERSIONS] = {"1.2", "1.3"};
	const char *name = "usher_handshakes_total";
	char worker[24];

	ush_metrics_family(w, name, USH_METRIC_COUNTER, "TLS handshakes completed.");
	for (size_t i = 0; i < src->n_workers; i++) {
		const struct ush_conn_stats *s = src->workers[i];

		worker_label(worker, sizeof(worker), i);
		for (size_t v = 0; v < USH_TLS_VERSIONS; v++) {
			struct ush_metric_label labels[] = {
				{"worker", worker}, {"version", versions[v]}, {"kind", "full"}};

			ush_metrics_sample(w, name, labels, 3,
					   USH_STAT_LOAD(s->handshakes_full[v]));
			labels[2].value = "resumed";
			ush_metrics_sample(w, name, labels, 3,
					   USH_STAT_LOAD(s->handshakes_resumed[v]));
		}
	}
}

static void
render_closes(const struct ush_stats_sources *src, struct ush_metrics_writer *w)
{
	const char *name = "usher_connections_closed_total";
	char worker[24];

	ush_metrics_family(w, name, USH_METRIC_COUNTER, "Client connections closed, by reason.");
	if (src->close_reason_names == NULL)
		return;

	for (size_t i = 0; i < src->n_workers; i++) {
		worker_label(worker, sizeof(worker), i);
		for (size_t r = 0; r < USH_CLOSE_REASONS; r++) {
			struct ush_metric_label labels[] = {{"worker", worker},
							    {"reason", src->close_reason_names[r]}};

			if (labels[1].value == NULL)
				continue;
			ush_metrics_sample(w, name, labels, 2,
					   USH_STAT_LOAD(src->workers[i]->closes[r]));
		}
	}
}

static void
render_bytes(const struct ush_stats_sources *src, struct ush_metrics_writer *w)
{
	const char *name = "usher_bytes_total";
	char worker[24];

	ush_metrics_family(w, name, USH_METRIC_COUNTER,
			   "Plaintext bytes relayed: in from clients, out to clients.");
	for (size_t i = 0; i < src->n_workers; i++) {
		const struct ush_conn_stats *s = src->workers[i];
		struct ush_metric_label labels[] = {{"worker", worker}, {"direction", "in"}};

		worker_label(worker, sizeof(worker), i);
		ush_metrics_sample(w, name, labels, 2, USH_STAT_LOAD(s->bytes_from_client));
		labels[1].value = "out";
		ush_metrics_sample(w, name, labels, 2, USH_STAT_LOAD(s->bytes_to_client));
	}
}

void
ush_stats_render(const struct ush_stats_sources *src, struct ush_metrics_writer *w)
{
	const char *lost = "usher_access_log_lost_total";

	/* The order of the list in stats.h. */
	render_simple(src, &fam_open, w);
	render_simple(src, &fam_accepted, w);
	render_simple(src, &fam_rejected, w);
	render_handshakes(src, w);
	render_simple(src, &fam_handshake_failures, w);
	render_closes(src, w);
	render_simple(src, &fam_connect_failures, w);
	render_simple(src, &fam_retries, w);
	render_bytes(src, w);

	ush_metrics_family(w, lost, USH_METRIC_COUNTER, "Access log lines lost to write errors.");
	ush_metrics_sample(w, lost, NULL, 0, ush_access_log_lost());

	if (src->print_extra != NULL)
		src->print_extra(w, src->extra_arg);
}
