/*
 * The metrics text writer, usher's families, and the request parser of the
 * endpoint, all without sockets.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "stats.h"
#include "stats_http.h"

/* The writer's text as a C string; valid until the next call. */
static const char *
text_of(const struct ush_metrics_writer *w)
{
	static char *copy;

	free(copy);
	copy = malloc(w->len + 1);
	if (copy == NULL)
		return "";
	memcpy(copy, w->data, w->len);
	copy[w->len] = '\0';
	return copy;
}

static bool
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && strcmp(s + n - k, suffix) == 0;
}

static void
test_family_and_samples(void)
{
	struct ush_metrics_writer w;
	struct ush_metric_label labels[] = {{"pool", "web"}, {"server", "app-1"}};

	ush_metrics_writer_init(&w);
	ush_metrics_family(&w, "usher_server_up", USH_METRIC_GAUGE,
			   "1 when the server is considered healthy.");
	ush_metrics_sample(&w, "usher_server_up", labels, 2, 1);
	ush_metrics_family(&w, "usher_things_total", USH_METRIC_COUNTER, "Things.");
	ush_metrics_sample(&w, "usher_things_total", NULL, 0, 18446744073709551615ull);

	CHECK_EQ_INT(w.error, 0);
	CHECK_EQ_STR(text_of(&w),
		     "# HELP usher_server_up 1 when the server is considered healthy.\n"
		     "# TYPE usher_server_up gauge\n"
		     "usher_server_up{pool=\"web\",server=\"app-1\"} 1\n"
		     "# HELP usher_things_total Things.\n"
		     "# TYPE usher_things_total counter\n"
		     "usher_things_total 18446744073709551615\n");
	ush_metrics_writer_fini(&w);
	CHECK(w.data == NULL && w.len == 0);
}

static void
test_escaping(void)
{
	struct ush_metrics_writer w;
	struct ush_metric_label label = {"server", "a\"b\\c\nd {x=\"1\"} \xc3\xa9"};

	ush_metrics_writer_init(&w);
	ush_metrics_family(&w, "m", USH_METRIC_COUNTER, "help with \\ and\nnewline and \"quotes\"");
	ush_metrics_sample(&w, "m", &label, 1, 7);

	CHECK_EQ_INT(w.error, 0);
	CHECK_EQ_STR(text_of(&w), "# HELP m help with \\\\ and\\nnewline and \"quotes\"\n"
				  "# TYPE m counter\n"
				  "m{server=\"a\\\"b\\\\c\\nd {x=\\\"1\\\"} \xc3\xa9\"} 7\n");
	ush_metrics_writer_fini(&w);
}

static void
test_bad_names_are_refused(void)
{
	struct ush_metrics_writer w;
	struct ush_metric_label bad_label = {"has-dash", "v"};
	struct ush_metric_label colon_label = {"a:b", "v"};

	ush_metrics_writer_init(&w);
	ush_metrics_family(&w, "1starts_with_digit", USH_METRIC_COUNTER, "x");
	CHECK_EQ_INT(w.error, -EINVAL);
	CHECK_EQ_INT(w.len, 0);

	/* The first error sticks; nothing more is written. */
	ush_metrics_family(&w, "fine", USH_METRIC_COUNTER, "x");
	CHECK_EQ_INT(w.len, 0);
	ush_metrics_writer_fini(&w);

	ush_metrics_writer_init(&w);
	ush_metrics_sample(&w, "ok_name", &bad_label, 1, 1);
	CHECK_EQ_INT(w.error, -EINVAL);
	ush_metrics_writer_fini(&w);

	/* ':' is allowed in metric names but not in label names. */
	ush_metrics_writer_init(&w);
	ush_metrics_sample(&w, "job:rate", NULL, 0, 1);
	CHECK_EQ_INT(w.error, 0);
	ush_metrics_sample(&w, "job:rate", &colon_label, 1, 1);
	CHECK_EQ_INT(w.error, -EINVAL);
	ush_metrics_writer_fini(&w);
}

static void
test_large_output_grows(void)
{
	struct ush_metrics_writer w;
	char value[32];

	ush_metrics_writer_init(&w);
	ush_metrics_family(&w, "many", USH_METRIC_GAUGE, "Many samples.");
	for (int i = 0; i < 5000; i++) {
		struct ush_metric_label l = {"i", value};

		snprintf(value, sizeof(value), "%d", i);
		ush_metrics_sample(&w, "many", &l, 1, (uint64_t)i);
	}

	CHECK_EQ_INT(w.error, 0);
	CHECK(w.len > 5000 * 10);
	CHECK(strstr(text_of(&w), "\nmany{i=\"4999\"} 4999\n") != NULL);
	ush_metrics_writer_fini(&w);
}

/* ---- usher's families ------------------------------------------------------ */

static const char *const reason_names[USH_CLOSE_REASONS] = {
	NULL,           "done",      "client_reset",    "handshake_failed", "handshake_timeout",
	"idle_timeout", "no_server", "upstream_failed", "upstream_reset",   "shutdown",
	"limit",        "internal",
};

static int extra_calls;

static void
print_extra(struct ush_metrics_writer *w, void *arg)
{
	extra_calls++;
	ush_metrics_family(w, "usher_extra_total", USH_METRIC_COUNTER, "From the lead.");
	ush_metrics_sample(w, "usher_extra_total", NULL, 0, *(uint64_t *)arg);
}

/*
 * Every sample must belong to the family whose TYPE line came last, and no
 * family may appear twice: what Prometheus requires of the text format.
 */
static void
check_families_grouped(const char *text)
{
	char family[128] = "", seen[4096] = " ";
	const char *line = text;

	while (*line != '\0') {
		const char *end = strchr(line, '\n');
		size_t len = end != NULL ? (size_t)(end - line) : strlen(line);
		char name[128] = "";

		if (strncmp(line, "# TYPE ", 7) == 0) {
			sscanf(line + 7, "%127s", family);
			snprintf(name, sizeof(name), " %s ", family);
			CHECK(strstr(seen, name) == NULL);
			strncat(seen, name + 1, sizeof(seen) - strlen(seen) - 1);
		} else if (line[0] != '#') {
			size_t n = strcspn(line, "{ ");

			CHECK(n < sizeof(name));
			memcpy(name, line, n < sizeof(name) ? n : sizeof(name) - 1);
			CHECK_EQ_STR(name, family);
		}
		line += len + (end != NULL);
	}
}

static void
test_render_from_counters(void)
{
	struct ush_conn_stats w0 = {0}, w1 = {0};
	struct ush_conn_stats *workers[] = {&w0, &w1};
	uint64_t extra_value = 77;
	struct ush_stats_sources src = {
		.workers = workers,
		.n_workers = 2,
		.close_reason_names = reason_names,
		.print_extra = print_extra,
		.extra_arg = &extra_value,
	};
	struct ush_metrics_writer w;
	const char *text;

	USH_STAT_ADD(w0.conns_open, 3);
	USH_STAT_ADD(w1.conns_accepted, 42);
	USH_STAT_ADD(w1.conns_rejected, 2);
	USH_STAT_ADD(w0.handshakes_full[0], 5);
	USH_STAT_ADD(w0.handshakes_resumed[1], 6);
	USH_STAT_ADD(w1.handshake_failures, 9);
	USH_STAT_ADD(w1.closes[1], 11);
	USH_STAT_ADD(w0.closes[7], 12);
	USH_STAT_ADD(w0.closes[0], 99); /* "none": no name, not printed */
	USH_STAT_ADD(w1.upstream_connect_failures, 13);
	USH_STAT_ADD(w1.upstream_retries, 14);
	USH_STAT_ADD(w0.bytes_from_client, 1000);
	USH_STAT_ADD(w0.bytes_to_client, 2000);

	extra_calls = 0;
	ush_metrics_writer_init(&w);
	ush_stats_render(&src, &w);
	REQUIRE(w.error == 0);
	text = text_of(&w);

	CHECK(strstr(text, "\nusher_connections_open{worker=\"0\"} 3\n") != NULL);
	CHECK(strstr(text, "\nusher_connections_open{worker=\"1\"} 0\n") != NULL);
	CHECK(strstr(text, "\nusher_connections_accepted_total{worker=\"1\"} 42\n") != NULL);
	CHECK(strstr(text, "\nusher_connections_rejected_total{worker=\"1\"} 2\n") != NULL);
	CHECK(strstr(text, "\nusher_handshakes_total{worker=\"0\",version=\"1.2\",kind=\"full\"} "
			   "5\n") != NULL);
	CHECK(strstr(text, "\nusher_handshakes_total{worker=\"0\",version=\"1.3\",kind=\"resumed\"}"
			   " 6\n") != NULL);
	CHECK(strstr(text, "\nusher_handshakes_total{worker=\"1\",version=\"1.3\",kind=\"full\"} "
			   "0\n") != NULL);
	CHECK(strstr(text, "\nusher_handshake_failures_total{worker=\"1\"} 9\n") != NULL);
	CHECK(strstr(text, "\nusher_connections_closed_total{worker=\"1\",reason=\"done\"} 11\n") !=
	      NULL);
	CHECK(strstr(text, "\nusher_connections_closed_total{worker=\"0\",reason=\"upstream_"
			   "failed\"} 12\n") != NULL);
	CHECK(strstr(text, " 99\n") == NULL);
	CHECK(strstr(text, "\nusher_upstream_connect_failures_total{worker=\"1\"} 13\n") != NULL);
	CHECK(strstr(text, "\nusher_upstream_retries_total{worker=\"1\"} 14\n") != NULL);
	CHECK(strstr(text, "\nusher_bytes_total{worker=\"0\",direction=\"in\"} 1000\n") != NULL);
	CHECK(strstr(text, "\nusher_bytes_total{worker=\"0\",direction=\"out\"} 2000\n") != NULL);
	CHECK(strstr(text, "\n# TYPE usher_connections_open gauge\n") != NULL);
	CHECK(strstr(text, "\n# TYPE usher_bytes_total counter\n") != NULL);
	CHECK(strstr(text, "\nusher_access_log_lost_total ") != NULL);

	/* The lead's families come last. */
	CHECK_EQ_INT(extra_calls, 1);
	CHECK(ends_with(text, "\nusher_extra_total 77\n"));

	check_families_grouped(text);
	ush_metrics_writer_fini(&w);
}

static void
test_render_without_optional_parts(void)
{
	struct ush_conn_stats w0 = {0};
	struct ush_conn_stats *workers[] = {&w0};
	struct ush_stats_sources src = {.workers = workers, .n_workers = 1};
	struct ush_metrics_writer w;
	const char *text;

	ush_metrics_writer_init(&w);
	ush_stats_render(&src, &w);
	CHECK_EQ_INT(w.error, 0);
	text = text_of(&w);
	CHECK(strstr(text, "# TYPE usher_connections_closed_total counter\n") != NULL);
	CHECK(strstr(text, "usher_connections_closed_total{") == NULL);
	check_families_grouped(text);
	ush_metrics_writer_fini(&w);
}

/* ---- the request parser ----------------------------------------------------- */

static enum ush_http_verdict
parse(const char *s)
{
	return ush_http_parse(s, strlen(s), USH_STATS_MAX_REQUEST);
}

static void
test_parser_verdicts(void)
{
	CHECK_EQ_INT(parse("GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n"),
		     USH_HTTP_METRICS);
	CHECK_EQ_INT(parse("GET /metrics HTTP/1.0\r\n\r\n"), USH_HTTP_METRICS);
	CHECK_EQ_INT(parse("GET /metrics HTTP/1.1\n\n"), USH_HTTP_METRICS); /* bare LF */
	CHECK_EQ_INT(parse("GET /metrics?name[]=x HTTP/1.1\r\n\r\n"), USH_HTTP_METRICS);
	CHECK_EQ_INT(parse("GET / HTTP/1.1\r\n\r\n"), USH_HTTP_NOT_FOUND);
	CHECK_EQ_INT(parse("GET /metricsx HTTP/1.1\r\n\r\n"), USH_HTTP_NOT_FOUND);
	CHECK_EQ_INT(parse("GET /metric HTTP/1.1\r\n\r\n"), USH_HTTP_NOT_FOUND);
	CHECK_EQ_INT(parse("POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\n"),
		     USH_HTTP_BAD_METHOD);
	CHECK_EQ_INT(parse("HEAD /metrics HTTP/1.1\r\n\r\n"), USH_HTTP_BAD_METHOD);
	CHECK_EQ_INT(parse("get /metrics HTTP/1.1\r\n\r\n"), USH_HTTP_BAD_METHOD);
}

static void
test_parser_refuses_garbage_early(void)
{
	/* Refused on the first bad byte, without waiting for a newline. */
	CHECK_EQ_INT(parse("\x16\x03\x01\x02\x00"), USH_HTTP_BAD_REQUEST); /* a ClientHello */
	CHECK_EQ_INT(parse(" GET"), USH_HTTP_BAD_REQUEST);
	CHECK_EQ_INT(parse("GET metrics"), USH_HTTP_BAD_REQUEST);
	CHECK_EQ_INT(parse("GET /metrics HTTP/2"), USH_HTTP_BAD_REQUEST);
	CHECK_EQ_INT(parse("GET /metrics HTTP/1.2"), USH_HTTP_BAD_REQUEST);
	CHECK_EQ_INT(parse("GET /metrics HTTP/1.1x"), USH_HTTP_BAD_REQUEST);
	CHECK_EQ_INT(parse("GET /met\x01rics"), USH_HTTP_BAD_REQUEST);
	CHECK_EQ_INT(parse("GET  /metrics"), USH_HTTP_BAD_REQUEST);
	CHECK_EQ_INT(parse("\r\n"), USH_HTTP_BAD_REQUEST);
	CHECK_EQ_INT(ush_http_parse("GET\0/", 5, USH_STATS_MAX_REQUEST), USH_HTTP_BAD_REQUEST);

	/* Headers: control bytes and a lone CR. */
	CHECK_EQ_INT(parse("GET /metrics HTTP/1.1\r\nX: a\x01\r\n\r\n"), USH_HTTP_BAD_REQUEST);
	CHECK_EQ_INT(parse("GET /metrics HTTP/1.1\r\nX: a\rb\r\n\r\n"), USH_HTTP_BAD_REQUEST);
	CHECK_EQ_INT(
		ush_http_parse("GET /metrics HTTP/1.1\r\nX: \0\r\n\r\n", 30, USH_STATS_MAX_REQUEST),
		USH_HTTP_BAD_REQUEST);
}

static void
test_parser_waits_for_the_whole_request(void)
{
	const char *req = "GET /metrics HTTP/1.1\r\nHost: localhost:9100\r\n\r\n";
	size_t len = strlen(req);

	for (size_t i = 0; i < len; i++)
		CHECK_EQ_INT(ush_http_parse(req, i, USH_STATS_MAX_REQUEST), USH_HTTP_INCOMPLETE);
	CHECK_EQ_INT(ush_http_parse(req, len, USH_STATS_MAX_REQUEST), USH_HTTP_METRICS);
}

static void
test_parser_size_limit(void)
{
	char *req = malloc(USH_STATS_MAX_REQUEST);
	size_t head;

	REQUIRE(req != NULL);
	head = (size_t)snprintf(req, USH_STATS_MAX_REQUEST, "GET /metrics HTTP/1.1\r\nX-Pad: ");
	memset(req + head, 'a', USH_STATS_MAX_REQUEST - head);

	CHECK_EQ_INT(ush_http_parse(req, USH_STATS_MAX_REQUEST - 1, USH_STATS_MAX_REQUEST),
		     USH_HTTP_INCOMPLETE);
	CHECK_EQ_INT(ush_http_parse(req, USH_STATS_MAX_REQUEST, USH_STATS_MAX_REQUEST),
		     USH_HTTP_TOO_LARGE);

	/* A long target is no different. */
	memcpy(req, "GET /", 5);
	memset(req + 5, 'a', USH_STATS_MAX_REQUEST - 5);
	CHECK_EQ_INT(ush_http_parse(req, USH_STATS_MAX_REQUEST, USH_STATS_MAX_REQUEST),
		     USH_HTTP_TOO_LARGE);
	free(req);
}

/* Random bytes: a verdict, never a crash or a read past len (ASan checks). */
static void
test_parser_random_bytes(void)
{
	srandom(7);
	for (int i = 0; i < 20000; i++) {
		size_t len = (size_t)(random() % 64);
		char *buf = malloc(len + 1);
		enum ush_http_verdict v;

		REQUIRE(buf != NULL);
		for (size_t k = 0; k < len; k++)
			buf[k] = (char)(k < 4 && i % 2 ? "GET "[k] : random() % 256);
		v = ush_http_parse(buf, len, 48);
		CHECK(v >= USH_HTTP_INCOMPLETE && v <= USH_HTTP_TOO_LARGE);
		free(buf);
	}
}

int
main(void)
{
	RUN(test_family_and_samples);
	RUN(test_escaping);
	RUN(test_bad_names_are_refused);
	RUN(test_large_output_grows);
	RUN(test_render_from_counters);
	RUN(test_render_without_optional_parts);
	RUN(test_parser_verdicts);
	RUN(test_parser_refuses_garbage_early);
	RUN(test_parser_waits_for_the_whole_request);
	RUN(test_parser_size_limit);
	RUN(test_parser_random_bytes);
	return check_done();
}
