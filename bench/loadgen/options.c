/*
 * usher-loadgen's command line. Addresses are numeric only, like usher's
 * configuration: a load generator aims at our own processes on this host
 * and has no business resolving names.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lg.h"

#define NS_PER_MS UINT64_C(1000000)
#define NS_PER_S  UINT64_C(1000000000)

static void
usage(FILE *f)
{
	fprintf(f, "usage: usher-loadgen --target ADDR:PORT [options]\n"
		   "\n"
		   "A closed-loop TLS client: every connection handshakes, sends one line,\n"
		   "reads the backend's answer \"<name> <line>\", sends close_notify and\n"
		   "closes; then its slot starts the next connection at once.\n"
		   "\n"
		   "  --target ADDR:PORT         where to connect (127.0.0.1:8443, [::1]:8443)\n"
		   "  --resume-target ADDR:PORT  resume here instead; full handshakes still\n"
		   "                             go to --target\n"
		   "  --mode full|resume         full: never offer a session; resume (default):\n"
		   "                             one full handshake per slot, then resume with\n"
		   "                             the newest session\n"
		   "  --tls 1.2|1.3              TLS version (default 1.3)\n"
		   "  --concurrency N            connections in flight (default 16)\n"
		   "  --threads N                worker threads sharing them (default 1)\n"
		   "  --duration D               how long to run: 500ms, 10s, 2m (default 10s)\n"
		   "  --max-connections N        stop after starting N connections\n"
		   "  --timeout D                give up on one connection after D (default 5s)\n"
		   "  --sni NAME                 server name to send (default localhost;\n"
		   "                             '' sends none)\n"
		   "  --json FILE                write the result as JSON ('-' for stdout)\n"
		   "  --idle K                   instead of load: open K connections (each\n"
		   "                             answers one line), print 'established N' on\n"
		   "                             stdout (stderr with --json -), hold them,\n"
		   "                             then close them\n"
		   "  --hold D                   how long --idle holds them (default 5s)\n"
		   "\n"
		   "A progress line goes to stderr each second when stderr is a terminal.\n");
}

static int
parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return -1;
	*out = v;
	return 0;
}

/* "250ms", "10s", "2m", or a bare number of seconds. */
static int
parse_duration(const char *s, uint64_t *ns)
{
	char *end;
	unsigned long long v;
	uint64_t unit;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;

	if (strcmp(end, "ms") == 0)
		unit = NS_PER_MS;
	else if (strcmp(end, "s") == 0 || *end == '\0')
		unit = NS_PER_S;
	else if (strcmp(end, "m") == 0)
		unit = 60 * NS_PER_S;
	else
		return -1;

	if (v > UINT64_MAX / unit / 2)
		return -1;
	*ns = v * unit;
	return 0;
}

static int
fill_sockaddr(const char *host, uint16_t port, bool bracketed, struct lg_addr *a)
{
	struct sockaddr_in *in = (struct sockaddr_in *)&a->ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a->ss;

	if (!bracketed && inet_pton(AF_INET, host, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		a->len = sizeof(*in);
		return 0;
	}
	if (bracketed && inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		a->len = sizeof(*in6);
		return 0;
	}
	return -1;
}

/* "1.2.3.4:443" or "[::1]:443". */
static int
parse_addr(const char *text, struct lg_addr *a)
{
	const char *colon = strrchr(text, ':');
	char host[INET6_ADDRSTRLEN];
	bool bracketed = false;
	const char *start = text;
	uint64_t port;
	size_t n;

	if (colon == NULL || parse_uint(colon + 1, 65535, &port) != 0 || port == 0)
		return -1;

	n = (size_t)(colon - text);
	if (n >= 2 && text[0] == '[' && text[n - 1] == ']') {
		bracketed = true;
		start++;
		n -= 2;
	}
	if (n == 0 || n >= sizeof(host) || strlen(text) >= sizeof(a->text))
		return -1;
	memcpy(host, start, n);
	host[n] = '\0';

	memset(a, 0, sizeof(*a));
	strcpy(a->text, text);
	return fill_sockaddr(host, (uint16_t)port, bracketed, a);
}

static int
bad_value(const char *option, const char *value, const char *expected)
{
	fprintf(stderr, "usher-loadgen: %s '%s': expected %s\n", option, value, expected);
	return -1;
}

enum {
	OPT_TARGET = 256,
	OPT_RESUME_TARGET,
	OPT_MODE,
	OPT_TLS,
	OPT_CONCURRENCY,
	OPT_THREADS,
	OPT_DURATION,
	OPT_MAX_CONNECTIONS,
	OPT_TIMEOUT,
	OPT_SNI,
	OPT_JSON,
	OPT_IDLE,
	OPT_HOLD,
	OPT_HELP,
};

static const struct option longopts[] = {
	{"target", required_argument, NULL, OPT_TARGET},
	{"resume-target", required_argument, NULL, OPT_RESUME_TARGET},
	{"mode", required_argument, NULL, OPT_MODE},
	{"tls", required_argument, NULL, OPT_TLS},
	{"concurrency", required_argument, NULL, OPT_CONCURRENCY},
	{"threads", required_argument, NULL, OPT_THREADS},
	{"duration", required_argument, NULL, OPT_DURATION},
	{"max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS},
	{"timeout", required_argument, NULL, OPT_TIMEOUT},
	{"sni", required_argument, NULL, OPT_SNI},
	{"json", required_argument, NULL, OPT_JSON},
	{"idle", required_argument, NULL, OPT_IDLE},
	{"hold", required_argument, NULL, OPT_HOLD},
	{"help", no_argument, NULL, OPT_HELP},
	{NULL, 0, NULL, 0},
};

static int
parse_mode(const char *v, struct lg_options *opt)
{
	if (strcmp(v, "full") == 0)
		opt->mode = LG_MODE_FULL;
	else if (strcmp(v, "resume") == 0)
		opt->mode = LG_MODE_RESUME;
	else
		return bad_value("--mode", v, "full or resume");
	return 0;
}

static int
parse_tls(const char *v, struct lg_options *opt)
{
	if (strcmp(v, "1.2") == 0)
		opt->tls_version = TLS1_2_VERSION;
	else if (strcmp(v, "1.3") == 0)
		opt->tls_version = TLS1_3_VERSION;
	else
		return bad_value("--tls", v, "1.2 or 1.3");
	return 0;
}

static int
parse_count(const char *option, const char *v, uint64_t max, uint64_t *out)
{
	char expected[64];

	if (parse_uint(v, max, out) == 0 && *out > 0)
		return 0;
	snprintf(expected, sizeof(expected), "a number from 1 to %llu", (unsigned long long)max);
	return bad_value(option, v, expected);
}

static int
parse_time(const char *option, const char *v, uint64_t *ns)
{
	if (parse_duration(v, ns) == 0 && *ns > 0)
		return 0;
	return bad_value(option, v, "a duration such as 500ms, 10s or 2m");
}

/* One option; 0, or -1 after printing why not. */
static int
parse_one(int ch, char *v, struct lg_options *opt)
{
	uint64_t n;

	switch (ch) {
	case OPT_TARGET:
		return parse_addr(v, &opt->target) == 0
			       ? 0
			       : bad_value("--target", v, "A.B.C.D:PORT or [IPv6]:PORT");
	case OPT_RESUME_TARGET:
		opt->has_resume_target = true;
		return parse_addr(v, &opt->resume_target) == 0
			       ? 0
			       : bad_value("--resume-target", v, "A.B.C.D:PORT or [IPv6]:PORT");
	case OPT_MODE:
		return parse_mode(v, opt);
	case OPT_TLS:
		return parse_tls(v, opt);
	case OPT_CONCURRENCY:
		if (parse_count("--concurrency", v, 100000, &n) != 0)
			return -1;
		opt->concurrency = (unsigned)n;
		return 0;
	case OPT_THREADS:
		if (parse_count("--threads", v, 64, &n) != 0)
			return -1;
		opt->threads = (unsigned)n;
		return 0;
	case OPT_DURATION:
		return parse_time("--duration", v, &opt->duration_ns);
	case OPT_MAX_CONNECTIONS:
		return parse_count("--max-connections", v, INT64_MAX, &opt->max_connections);
	case OPT_TIMEOUT:
		return parse_time("--timeout", v, &opt->timeout_ns);
	case OPT_SNI:
		opt->sni = *v != '\0' ? v : NULL;
		return 0;
	case OPT_JSON:
		opt->json_path = v;
		return 0;
	case OPT_IDLE:
		if (parse_count("--idle", v, 1000000, &n) != 0)
			return -1;
		opt->idle = (unsigned)n;
		return 0;
	case OPT_HOLD:
		return parse_time("--hold", v, &opt->hold_ns);
	default:
		return -1;
	}
}

int
lg_options_parse(int argc, char **argv, struct lg_options *opt)
{
	static char default_sni[] = "localhost";
	int ch;

	*opt = (struct lg_options){
		.mode = LG_MODE_RESUME,
		.tls_version = TLS1_3_VERSION,
		.sni = default_sni,
		.concurrency = 16,
		.threads = 1,
		.duration_ns = 10 * NS_PER_S,
		.timeout_ns = 5 * NS_PER_S,
		.hold_ns = 5 * NS_PER_S,
	};

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (ch == OPT_HELP) {
			usage(stdout);
			return 1;
		}
		if (ch == '?' || parse_one(ch, optarg, opt) != 0)
			goto usage_error;
	}

	if (optind != argc) {
		fprintf(stderr, "usher-loadgen: unexpected argument '%s'\n", argv[optind]);
		goto usage_error;
	}
	if (opt->target.len == 0) {
		fprintf(stderr, "usher-loadgen: --target is required\n");
		goto usage_error;
	}

	if (opt->idle > 0)
		opt->mode = LG_MODE_IDLE;
	if (opt->threads > opt->concurrency)
		opt->threads = opt->concurrency;
	if (opt->mode == LG_MODE_IDLE && opt->threads > opt->idle)
		opt->threads = opt->idle;
	return 0;

usage_error:
	fprintf(stderr, "usher-loadgen: try --help\n");
	return -1;
}
