/*
 * The schema: one table per mapping of the file, plus the few parsers that
 * do not fit a generic kind. Reading a table top to bottom gives every key
 * of that mapping, its type, its range and whether it is required; the
 * defaults live in set_defaults() and the per-item set-up functions.
 *
 * Table order is parse order (see cfg_internal.h): pools come before
 * listeners so a listener can resolve its pool, listeners before stats so
 * stats can spot a bind address that a listener already uses.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg_internal.h"

#define MS_PER_S   1000ull
#define MS_PER_DAY (24ull * 60 * 60 * MS_PER_S)

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* --- enumerations --- */

static const struct cfg_enum_name engine_names[] = {
	{"uring", CFG_ENGINE_URING},
	{"dpdk", CFG_ENGINE_DPDK},
	{NULL, 0},
};

static const struct cfg_enum_name balance_names[] = {
	{"round_robin", CFG_BALANCE_ROUND_ROBIN},
	{"least_conn", CFG_BALANCE_LEAST_CONN},
	{"hash_client", CFG_BALANCE_HASH_CLIENT},
	{NULL, 0},
};

static const struct cfg_enum_name proxy_protocol_names[] = {
	{"off", CFG_PROXY_PROTOCOL_OFF},
	{"v1", CFG_PROXY_PROTOCOL_V1},
	{"v2", CFG_PROXY_PROTOCOL_V2},
	{NULL, 0},
};

static const struct cfg_enum_name level_names[] = {
	{"error", CFG_LOG_ERROR},
	{"warn", CFG_LOG_WARN},
	{"info", CFG_LOG_INFO},
	{"debug", CFG_LOG_DEBUG},
	{NULL, 0},
};

static const struct cfg_enum_name format_names[] = {
	{"text", CFG_LOG_FORMAT_TEXT},
	{"json", CFG_LOG_FORMAT_JSON},
	{NULL, 0},
};

/* --- listeners --- */

static const struct cfg_field certificate_fields[] = {
	{"cert", CFG_KIND_PATH, offsetof(struct cfg_certificate, cert_path), .required = true},
	{"key", CFG_KIND_PATH, offsetof(struct cfg_certificate, key_path), .required = true},
};

static const struct cfg_section certificate_section = {certificate_fields,
						       ARRAY_LEN(certificate_fields), NULL};

static int
parse_certificate(struct cfg_walk *w, yaml_node_t *item, void *obj)
{
	struct cfg_certificate *c = obj;

	cfg_walk_mapping(w, item, &certificate_section, c);
	if (c->cert_path != NULL && c->key_path != NULL)
		cfg_check_certificate(w, item, c);
	return 0;
}

static int
parse_certificates(struct cfg_walk *w, yaml_node_t *node, void *obj)
{
	struct cfg_listener *l = obj;

	return cfg_walk_list(w, node, CFG_MAX_CERTIFICATES, false, sizeof(*l->certs),
			     (void **)&l->certs, &l->n_certs, parse_certificate);
}

static const char *const protocol_names[] = {"tls1.2", "tls1.3"};

static bool
is_old_protocol(const char *text)
{
	static const char *const old[] = {"tls1.1",  "tls1.0", "tls1",  "tlsv1", "tlsv1.0",
					  "tlsv1.1", "ssl3",   "sslv3", "ssl2",  "sslv2"};

	for (size_t i = 0; i < ARRAY_LEN(old); i++) {
		if (strcmp(text, old[i]) == 0)
			return true;
	}

	return false;
}

static int
parse_protocol(struct cfg_walk *w, yaml_node_t *item, size_t index, void *ctx)
{
	const char *text = cfg_scalar(w, item);
	unsigned *bits = ctx, bit;

	if (text == NULL)
		return -EINVAL;

	if (strcmp(text, "tls1.2") == 0) {
		bit = CFG_PROTO_TLS12;
	} else if (strcmp(text, "tls1.3") == 0) {
		bit = CFG_PROTO_TLS13;
	} else if (is_old_protocol(text)) {
		cfg_error(
			w, item,
			"'%s' is not accepted: TLS 1.1 and older are insecure and never enabled (use tls1.2 and tls1.3)",
			text);
		return -EINVAL;
	} else {
		const char *near = cfg_closest_name(text, protocol_names, 2);

		cfg_error(w, item, "unknown protocol '%s'%s%s%s (expected tls1.2 or tls1.3)", text,
			  near ? "; did you mean '" : "", near ? near : "", near ? "'?" : "");
		return -EINVAL;
	}

	if (*bits & bit) {
		cfg_error(w, item, "'%s' is listed twice", text);
		return -EINVAL;
	}

	*bits |= bit;
	return 0;
}

static int
parse_protocols(struct cfg_walk *w, yaml_node_t *node, void *obj)
{
	struct cfg_listener *l = obj;

	l->protocols = 0;
	/* Room for mistakes, so each wrong item gets its own message. */
	return cfg_walk_each(w, node, 8, false, parse_protocol, &l->protocols);
}

static int
parse_alpn_name(struct cfg_walk *w, yaml_node_t *item, char **out)
{
	const char *text;

	/* An empty quoted name is a value; only a bare empty one is "none". */
	if (item->type == YAML_SCALAR_NODE && item->data.scalar.length == 0 &&
	    item->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
		cfg_error(w, item, "an ALPN protocol name is 1 to 255 bytes; this one is empty");
		return -EINVAL;
	}

	text = cfg_scalar(w, item);
	if (text == NULL)
		return -EINVAL;
	if (strlen(text) > 255) {
		cfg_error(w, item, "an ALPN protocol name is 1 to 255 bytes; this one is %zu",
			  strlen(text));
		return -EINVAL;
	}

	*out = cfg_strdup(w, text);
	return *out != NULL ? 0 : -ENOMEM;
}

static int
parse_alpn(struct cfg_walk *w, yaml_node_t *node, void *obj)
{
	struct cfg_listener *l = obj;

	return cfg_walk_strings(w, node, CFG_MAX_ALPN, true, &l->alpn, &l->n_alpn, parse_alpn_name);
}

static void
report_unknown_pool(struct cfg_walk *w, yaml_node_t *node, const char *name)
{
	const char *names[CFG_MAX_POOLS];
	size_t n = 0;
	const char *near;

	for (size_t i = 0; i < w->cfg->n_pools; i++) {
		if (w->cfg->pools[i].name != NULL)
			names[n++] = w->cfg->pools[i].name;
	}

	near = cfg_closest_name(name, names, n);
	if (near != NULL)
		cfg_error(w, node, "pool '%s' is not defined under pools; did you mean '%s'?", name,
			  near);
	else
		cfg_error(w, node, "pool '%s' is not defined under pools", name);
}

static int
parse_listener_pool(struct cfg_walk *w, yaml_node_t *node, void *obj)
{
	struct cfg_listener *l = obj;
	const char *text = cfg_scalar(w, node);
	int index;

	if (text == NULL)
		return -EINVAL;

	l->pool_name = cfg_strdup(w, text);
	index = cfg_find_pool(w->cfg, text);

	/* With no usable pools at all, that is the problem already reported. */
	if (index < 0 && w->cfg->n_pools != 0)
		report_unknown_pool(w, node, text);
	if (index < 0)
		return -EINVAL;

	l->pool = (size_t)index;
	return 0;
}

static const struct cfg_field listener_fields[] = {
	{"name", CFG_KIND_NAME, offsetof(struct cfg_listener, name), .required = true},
	{"bind", CFG_KIND_ADDR, offsetof(struct cfg_listener, bind), .required = true},
	{"certificates", CFG_KIND_CUSTOM, 0, .required = true, .parse = parse_certificates},
	{"protocols", CFG_KIND_CUSTOM, 0, .parse = parse_protocols},
	{"alpn", CFG_KIND_CUSTOM, 0, .parse = parse_alpn},
	{"pool", CFG_KIND_CUSTOM, 0, .required = true, .parse = parse_listener_pool},
	{"proxy_protocol", CFG_KIND_ENUM, offsetof(struct cfg_listener, proxy_protocol),
	 .names = proxy_protocol_names},
};

static const struct cfg_section listener_section = {listener_fields, ARRAY_LEN(listener_fields),
						    NULL};

static int
parse_listener(struct cfg_walk *w, yaml_node_t *item, void *obj)
{
	struct cfg_listener *l = obj;

	l->protocols = CFG_PROTO_TLS12 | CFG_PROTO_TLS13;
	l->proxy_protocol = CFG_PROXY_PROTOCOL_OFF;

	cfg_walk_mapping(w, item, &listener_section, l);
	cfg_check_listener(w, item, (size_t)(l - w->cfg->listeners));
	return 0;
}

static int
parse_listeners(struct cfg_walk *w, yaml_node_t *node, void *obj)
{
	struct cfg *cfg = obj;

	return cfg_walk_list(w, node, CFG_MAX_LISTENERS, false, sizeof(*cfg->listeners),
			     (void **)&cfg->listeners, &cfg->n_listeners, parse_listener);
}

/* --- pools --- */

static const struct cfg_field server_fields[] = {
	{"name", CFG_KIND_NAME, offsetof(struct cfg_server, name), .required = true},
	{"address", CFG_KIND_ADDR, offsetof(struct cfg_server, address), .required = true},
	{"weight", CFG_KIND_UINT, offsetof(struct cfg_server, weight), .min = 1, .max = 256},
};

static const struct cfg_section server_section = {server_fields, ARRAY_LEN(server_fields), NULL};

static int
parse_server(struct cfg_walk *w, yaml_node_t *item, void *obj)
{
	struct cfg_server *s = obj;

	s->weight = 1;
	return cfg_walk_mapping(w, item, &server_section, s);
}

static int
parse_servers(struct cfg_walk *w, yaml_node_t *node, void *obj)
{
	struct cfg_pool *p = obj;

	return cfg_walk_list(w, node, CFG_MAX_SERVERS, false, sizeof(*p->servers),
			     (void **)&p->servers, &p->n_servers, parse_server);
}

static const struct cfg_field health_fields[] = {
	{"interval", CFG_KIND_DURATION_MS, offsetof(struct cfg_health_check, interval_ms), .min = 1,
	 .max = MS_PER_DAY},
	{"timeout", CFG_KIND_DURATION_MS, offsetof(struct cfg_health_check, timeout_ms), .min = 1,
	 .max = MS_PER_DAY},
	{"fall", CFG_KIND_UINT, offsetof(struct cfg_health_check, fall), .min = 1, .max = 1000},
	{"rise", CFG_KIND_UINT, offsetof(struct cfg_health_check, rise), .min = 1, .max = 1000},
};

static const struct cfg_section health_section = {health_fields, ARRAY_LEN(health_fields),
						  cfg_check_health};

static const struct cfg_field pool_fields[] = {
	{"name", CFG_KIND_NAME, offsetof(struct cfg_pool, name), .required = true},
	{"balance", CFG_KIND_ENUM, offsetof(struct cfg_pool, balance), .names = balance_names},
	{"servers", CFG_KIND_CUSTOM, 0, .required = true, .parse = parse_servers},
	{"health_check", CFG_KIND_SECTION, offsetof(struct cfg_pool, health_check),
	 .section = &health_section},
};

static const struct cfg_section pool_section = {pool_fields, ARRAY_LEN(pool_fields), NULL};

static int
parse_pool(struct cfg_walk *w, yaml_node_t *item, void *obj)
{
	struct cfg_pool *p = obj;

	p->balance = CFG_BALANCE_ROUND_ROBIN;
	p->health_check.interval_ms = 2 * MS_PER_S;
	p->health_check.timeout_ms = 1 * MS_PER_S;
	p->health_check.fall = 3;
	p->health_check.rise = 2;

	cfg_walk_mapping(w, item, &pool_section, p);
	cfg_check_pool(w, item, (size_t)(p - w->cfg->pools));
	return 0;
}

static int
parse_pools(struct cfg_walk *w, yaml_node_t *node, void *obj)
{
	struct cfg *cfg = obj;

	return cfg_walk_list(w, node, CFG_MAX_POOLS, false, sizeof(*cfg->pools),
			     (void **)&cfg->pools, &cfg->n_pools, parse_pool);
}

/* --- tickets --- */

static int
parse_secret_file(struct cfg_walk *w, yaml_node_t *node, void *obj)
{
	struct cfg_tickets *t = obj;

	if (cfg_parse_path_node(w, node, &t->secret_file) != 0)
		return -EINVAL;

	return cfg_read_secret(w, node, t);
}

static int
parse_key_file(struct cfg_walk *w, yaml_node_t *item, size_t index, void *ctx)
{
	struct cfg_tickets *t = ctx;

	if (cfg_parse_path_node(w, item, &t->key_files[index]) != 0)
		return -EINVAL;

	return cfg_read_key_file(w, item, t->key_files[index],
				 t->keys + index * CFG_TICKET_KEY_LEN);
}

static int
parse_key_files(struct cfg_walk *w, yaml_node_t *node, void *obj)
{
	struct cfg_tickets *t = obj;
	size_t n = 0;

	if (node->type == YAML_SEQUENCE_NODE)
		n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);

	/* Allocate for a list cfg_walk_each() will accept; it reports the rest. */
	if (n >= 1 && n <= CFG_MAX_KEY_FILES) {
		t->key_files = calloc(n + 1, sizeof(*t->key_files));
		t->keys = calloc(n, CFG_TICKET_KEY_LEN);
		if (t->key_files == NULL || t->keys == NULL) {
			w->oom = true;
			return -ENOMEM;
		}
		t->n_key_files = n;
	}

	return cfg_walk_each(w, node, CFG_MAX_KEY_FILES, false, parse_key_file, t);
}

static const struct cfg_field ticket_fields[] = {
	{"secret_file", CFG_KIND_CUSTOM, 0, .parse = parse_secret_file},
	{"key_files", CFG_KIND_CUSTOM, 0, .parse = parse_key_files},
	/* RFC 8446 caps a ticket's lifetime at 7 days. */
	{"rotation_interval", CFG_KIND_DURATION_S,
	 offsetof(struct cfg_tickets, rotation_interval_s), .min = MS_PER_S, .max = 7 * MS_PER_DAY},
	{"lifetime", CFG_KIND_DURATION_S, offsetof(struct cfg_tickets, lifetime_s), .min = MS_PER_S,
	 .max = 7 * MS_PER_DAY},
	{"affinity", CFG_KIND_BOOL, offsetof(struct cfg_tickets, affinity)},
};

static const struct cfg_section ticket_section = {ticket_fields, ARRAY_LEN(ticket_fields),
						  cfg_check_tickets};

/* --- timeouts, limits, stats, log --- */

static const struct cfg_field timeout_fields[] = {
	{"handshake", CFG_KIND_DURATION_MS, offsetof(struct cfg_timeouts, handshake_ms), .min = 1,
	 .max = MS_PER_DAY},
	{"idle", CFG_KIND_DURATION_MS, offsetof(struct cfg_timeouts, idle_ms), .min = 1,
	 .max = MS_PER_DAY},
	{"connect", CFG_KIND_DURATION_MS, offsetof(struct cfg_timeouts, connect_ms), .min = 1,
	 .max = MS_PER_DAY},
	/* 0 is meaningful here: close at once instead of draining. */
	{"shutdown", CFG_KIND_DURATION_MS, offsetof(struct cfg_timeouts, shutdown_ms), .min = 0,
	 .max = MS_PER_DAY},
};

static const struct cfg_section timeout_section = {timeout_fields, ARRAY_LEN(timeout_fields), NULL};

static const struct cfg_field limit_fields[] = {
	{"max_connections", CFG_KIND_U64, offsetof(struct cfg_limits, max_connections), .min = 1,
	 .max = 10000000},
};

static const struct cfg_section limit_section = {limit_fields, ARRAY_LEN(limit_fields), NULL};

static const struct cfg_field stats_fields[] = {
	{"bind", CFG_KIND_ADDR, offsetof(struct cfg_stats, bind), .required = true},
};

static const struct cfg_section stats_section = {stats_fields, ARRAY_LEN(stats_fields),
						 cfg_check_stats};

static int
parse_access(struct cfg_walk *w, yaml_node_t *node, void *obj)
{
	struct cfg_log *log = obj;
	const char *text = cfg_scalar(w, node);

	if (text == NULL)
		return -EINVAL;

	if (strcmp(text, "stdout") == 0)
		log->access = CFG_ACCESS_STDOUT;
	else if (strcmp(text, "stderr") == 0)
		log->access = CFG_ACCESS_STDERR;
	else if (strcmp(text, "off") == 0)
		log->access = CFG_ACCESS_OFF;
	else if (cfg_parse_path_node(w, node, &log->access_path) == 0)
		log->access = CFG_ACCESS_FILE;
	else
		return -EINVAL;

	return 0;
}

static const struct cfg_field log_fields[] = {
	{"level", CFG_KIND_ENUM, offsetof(struct cfg_log, level), .names = level_names},
	{"access", CFG_KIND_CUSTOM, 0, .parse = parse_access},
	{"format", CFG_KIND_ENUM, offsetof(struct cfg_log, format), .names = format_names},
};

static const struct cfg_section log_section = {log_fields, ARRAY_LEN(log_fields), NULL};

/* --- dpdk --- */

static int
parse_eal_args(struct cfg_walk *w, yaml_node_t *node, void *obj)
{
	struct cfg_dpdk *d = obj;

	return cfg_walk_strings(w, node, CFG_MAX_EAL_ARGS, true, &d->eal_args, &d->n_eal_args,
				NULL);
}

static int
parse_dpdk_address(struct cfg_walk *w, yaml_node_t *node, void *obj)
{
	struct cfg_dpdk *d = obj;
	const char *text = cfg_scalar(w, node);
	const char *why;

	if (text == NULL)
		return -EINVAL;

	why = cfg_syntax_ipv4_prefix(text, &d->address, &d->prefix_len);
	if (why != NULL) {
		d->address = 0;
		cfg_error(w, node, "'%s' %s", text, why);
		return -EINVAL;
	}

	return 0;
}

static int
parse_dpdk_gateway(struct cfg_walk *w, yaml_node_t *node, void *obj)
{
	struct cfg_dpdk *d = obj;
	const char *text = cfg_scalar(w, node);
	const char *why;

	if (text == NULL)
		return -EINVAL;

	why = cfg_syntax_ipv4(text, &d->gateway);
	if (why != NULL) {
		cfg_error(w, node, "'%s' %s", text, why);
		return -EINVAL;
	}

	return 0;
}

static const struct cfg_field dpdk_fields[] = {
	{"eal_args", CFG_KIND_CUSTOM, 0, .parse = parse_eal_args},
	{"port", CFG_KIND_UINT, offsetof(struct cfg_dpdk, port), .min = 0, .max = 1023},
	{"address", CFG_KIND_CUSTOM, 0, .parse = parse_dpdk_address},
	{"gateway", CFG_KIND_CUSTOM, 0, .parse = parse_dpdk_gateway},
};

static const struct cfg_section dpdk_section = {dpdk_fields, ARRAY_LEN(dpdk_fields),
						cfg_check_dpdk};

/* --- the root --- */

static unsigned
online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1;
	return n > 256 ? 256 : (unsigned)n;
}

static int
parse_workers(struct cfg_walk *w, yaml_node_t *node, void *obj)
{
	struct cfg *cfg = obj;
	const char *text = cfg_scalar(w, node);
	uint64_t n;

	if (text == NULL)
		return -EINVAL;

	if (strcmp(text, "auto") == 0) {
		cfg->workers_auto = true;
		cfg->workers = online_cpus();
		return 0;
	}

	if (cfg_syntax_uint(text, &n) != NULL) {
		cfg_error(w, node, "'%s' is not a worker count (expected 1..256 or auto)", text);
		return -EINVAL;
	}
	if (n < 1 || n > 256) {
		cfg_error(w, node, "'%s' is out of range (1..256, or auto)", text);
		return -EINVAL;
	}

	cfg->workers = (unsigned)n;
	return 0;
}

static const struct cfg_field root_fields[] = {
	{"workers", CFG_KIND_CUSTOM, 0, .parse = parse_workers},
	{"engine", CFG_KIND_ENUM, offsetof(struct cfg, engine), .names = engine_names},
	{"pools", CFG_KIND_CUSTOM, 0, .required = true, .parse = parse_pools},
	{"listeners", CFG_KIND_CUSTOM, 0, .required = true, .parse = parse_listeners},
	{"tickets", CFG_KIND_SECTION, offsetof(struct cfg, tickets), .required = true,
	 .section = &ticket_section},
	{"timeouts", CFG_KIND_SECTION, offsetof(struct cfg, timeouts), .section = &timeout_section},
	{"limits", CFG_KIND_SECTION, offsetof(struct cfg, limits), .section = &limit_section},
	{"stats", CFG_KIND_SECTION, offsetof(struct cfg, stats), .section = &stats_section},
	{"log", CFG_KIND_SECTION, offsetof(struct cfg, log), .section = &log_section},
	{"dpdk", CFG_KIND_SECTION, offsetof(struct cfg, dpdk), .section = &dpdk_section},
};

static const struct cfg_section root_section = {root_fields, ARRAY_LEN(root_fields),
						cfg_check_root};

static void
set_defaults(struct cfg *cfg)
{
	cfg->workers = 1;
	cfg->engine = CFG_ENGINE_URING;

	cfg->tickets.rotation_interval_s = 60 * 60;
	cfg->tickets.lifetime_s = 12 * 60 * 60;
	cfg->tickets.affinity = true;

	cfg->timeouts.handshake_ms = 10 * MS_PER_S;
	cfg->timeouts.idle_ms = 60 * MS_PER_S;
	cfg->timeouts.connect_ms = 3 * MS_PER_S;
	cfg->timeouts.shutdown_ms = 30 * MS_PER_S;

	cfg->limits.max_connections = 100000;

	cfg->log.level = CFG_LOG_INFO;
	cfg->log.access = CFG_ACCESS_STDOUT;
	cfg->log.format = CFG_LOG_FORMAT_TEXT;
}

void
cfg_schema_walk(struct cfg_walk *w, yaml_node_t *root)
{
	set_defaults(w->cfg);
	cfg_walk_mapping(w, root, &root_section, w->cfg);
}
