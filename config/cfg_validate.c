/*
 * Cross-checks: rules that involve more than one key, such as unique names,
 * bind addresses used twice or a lifetime shorter than the rotation. Each
 * runs right after the mapping it concerns has been parsed, while its nodes
 * are at hand to give the problem a position.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "cfg_internal.h"

/* Report at the value of key in map, or at map when the key is absent. */
static yaml_node_t *
node_or_map(struct cfg_walk *w, yaml_node_t *map, const char *key)
{
	yaml_node_t *value = cfg_map_get(w, map, key);

	return value != NULL ? value : map;
}

static bool
is_wildcard(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);

	return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

static in_port_t
port_of(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)ss)->sin_port;

	return ((const struct sockaddr_in6 *)ss)->sin6_port;
}

static bool
same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;

	return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		      &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr)) == 0;
}

/*
 * Whether two listening sockets would fight over the same address.
 * TODO(#2): "[::]:443" also clashes with "0.0.0.0:443" unless the proxy
 * sets IPV6_V6ONLY; decide that with the engine and check across families.
 */
static bool
binds_clash(const struct cfg_addr *a, const struct cfg_addr *b)
{
	if (a->text == NULL || b->text == NULL)
		return false;
	if (a->ss.ss_family != b->ss.ss_family || port_of(&a->ss) != port_of(&b->ss))
		return false;

	return same_host(&a->ss, &b->ss) || is_wildcard(&a->ss) || is_wildcard(&b->ss);
}

/* Report addr when an earlier listener already binds it. */
static void
check_bind_unused(struct cfg_walk *w, yaml_node_t *at, const char *key, const struct cfg_addr *addr,
		  size_t n_earlier)
{
	const struct cfg_listener *ls = w->cfg->listeners;

	for (size_t j = 0; j < n_earlier; j++) {
		if (!binds_clash(addr, &ls[j].bind))
			continue;

		if (strcmp(addr->text, ls[j].bind.text) == 0)
			cfg_error_key(w, at, key, "'%s' is already used by listeners[%zu].bind",
				      addr->text, j);
		else
			cfg_error_key(
				w, at, key,
				"'%s' overlaps '%s' of listeners[%zu].bind (same port, and one of them is a wildcard)",
				addr->text, ls[j].bind.text, j);
		return;
	}
}

void
cfg_check_listener(struct cfg_walk *w, yaml_node_t *map, size_t index)
{
	const struct cfg_listener *l = &w->cfg->listeners[index];

	for (size_t j = 0; l->name != NULL && j < index; j++) {
		const char *other = w->cfg->listeners[j].name;

		if (other != NULL && strcmp(l->name, other) == 0) {
			cfg_error_key(w, node_or_map(w, map, "name"), "name",
				      "listener name '%s' is already used by listeners[%zu]",
				      l->name, j);
			break;
		}
	}

	check_bind_unused(w, node_or_map(w, map, "bind"), "bind", &l->bind, index);
}

static void
check_server_names(struct cfg_walk *w, yaml_node_t *map, const struct cfg_pool *p)
{
	yaml_node_t *list = cfg_map_get(w, map, "servers");

	for (size_t i = 1; list != NULL && i < p->n_servers; i++) {
		const char *name = p->servers[i].name;

		for (size_t j = 0; name != NULL && j < i; j++) {
			const char *other = p->servers[j].name;
			yaml_node_t *item;
			size_t saved;

			if (other == NULL || strcmp(name, other) != 0)
				continue;

			item = yaml_document_get_node(w->doc, list->data.sequence.items.start[i]);
			saved = cfg_key_push(w, "servers");
			cfg_key_push_index(w, i);
			cfg_error_key(
				w, node_or_map(w, item, "name"), "name",
				"server name '%s' is already used by servers[%zu] of this pool",
				name, j);
			cfg_key_pop(w, saved);
			break;
		}
	}
}

void
cfg_check_pool(struct cfg_walk *w, yaml_node_t *map, size_t index)
{
	const struct cfg_pool *p = &w->cfg->pools[index];

	for (size_t j = 0; p->name != NULL && j < index; j++) {
		const char *other = w->cfg->pools[j].name;

		if (other != NULL && strcmp(p->name, other) == 0) {
			cfg_error_key(w, node_or_map(w, map, "name"), "name",
				      "pool name '%s' is already used by pools[%zu]", p->name, j);
			break;
		}
	}

	check_server_names(w, map, p);
}

void
cfg_check_health(struct cfg_walk *w, yaml_node_t *map, void *obj)
{
	const struct cfg_health_check *h = obj;
	char interval[32], timeout[32];

	if (h->timeout_ms <= h->interval_ms)
		return;

	cfg_format_duration(h->interval_ms, interval, sizeof(interval));
	cfg_format_duration(h->timeout_ms, timeout, sizeof(timeout));
	cfg_error_key(
		w, node_or_map(w, map, "timeout"), "timeout",
		"%s is longer than the interval of %s; a check must end before the next one starts",
		timeout, interval);
}

static void
check_ticket_source(struct cfg_walk *w, yaml_node_t *map)
{
	yaml_node_t *secret = cfg_map_get(w, map, "secret_file");
	yaml_node_t *keys = cfg_map_get(w, map, "key_files");

	if (secret != NULL && keys != NULL)
		cfg_error(
			w, keys,
			"set either secret_file or key_files, not both (key_files is for keys shared with nginx)");
	else if (secret == NULL && keys == NULL)
		cfg_error(
			w, map,
			"no ticket key source: set secret_file (32 or more random bytes) or key_files");
}

/*
 * Every key a live ticket may need is kept: one per rotation interval of
 * the lifetime, plus the current and the next one (clock skew between
 * hosts). That must fit in CFG_MAX_TICKET_WINDOW keys, the limit the
 * ticket cache enforces too.
 */
static void
report_ticket_window(struct cfg_walk *w, yaml_node_t *map, const struct cfg_tickets *t,
		     uint64_t intervals)
{
	uint64_t most = CFG_MAX_TICKET_WINDOW - 2;
	uint64_t min_rotation = (t->lifetime_s + most - 1) / most;
	char life[32], rot[32], need[32];

	cfg_format_duration(t->lifetime_s * 1000, life, sizeof(life));
	cfg_format_duration(t->rotation_interval_s * 1000, rot, sizeof(rot));
	cfg_format_duration(min_rotation * 1000, need, sizeof(need));
	cfg_error_key(
		w, node_or_map(w, map, "lifetime"), "lifetime",
		"%s spans %llu rotation intervals of %s; with the current and the next key that needs %llu ticket keys, but at most %u are kept: raise rotation_interval to %s or more, or shorten lifetime",
		life, (unsigned long long)intervals, rot, (unsigned long long)intervals + 2,
		CFG_MAX_TICKET_WINDOW, need);
}

static void
check_ticket_window(struct cfg_walk *w, yaml_node_t *map, const struct cfg_tickets *t)
{
	uint64_t intervals;
	char life[32], rot[32];

	if (t->rotation_interval_s == 0 || t->lifetime_s < t->rotation_interval_s) {
		cfg_format_duration(t->lifetime_s * 1000, life, sizeof(life));
		cfg_format_duration(t->rotation_interval_s * 1000, rot, sizeof(rot));
		cfg_error_key(
			w, node_or_map(w, map, "lifetime"), "lifetime",
			"%s is shorter than rotation_interval %s; a ticket must outlive the key that made it",
			life, rot);
		return;
	}

	intervals = (t->lifetime_s + t->rotation_interval_s - 1) / t->rotation_interval_s;
	if (intervals + 2 > CFG_MAX_TICKET_WINDOW)
		report_ticket_window(w, map, t, intervals);
}

void
cfg_check_tickets(struct cfg_walk *w, yaml_node_t *map, void *obj)
{
	const struct cfg_tickets *t = obj;

	check_ticket_source(w, map);
	check_ticket_window(w, map, t);
}

void
cfg_check_stats(struct cfg_walk *w, yaml_node_t *map, void *obj)
{
	struct cfg_stats *s = obj;

	s->enabled = true;
	if (s->bind.text != NULL)
		check_bind_unused(w, node_or_map(w, map, "bind"), "bind", &s->bind,
				  w->cfg->n_listeners);
}

void
cfg_check_dpdk(struct cfg_walk *w, yaml_node_t *map, void *obj)
{
	struct cfg_dpdk *d = obj;
	uint32_t mask;
	char gw[INET_ADDRSTRLEN];

	d->present = true;
	if (d->address == 0 || d->gateway == 0)
		return;

	mask = htonl(~0u << (32 - d->prefix_len));
	if ((d->address & mask) == (d->gateway & mask))
		return;

	inet_ntop(AF_INET, &d->gateway, gw, sizeof(gw));
	cfg_error_key(
		w, node_or_map(w, map, "gateway"), "gateway",
		"'%s' is not inside the subnet of address (/%u); the gateway must be reachable directly",
		gw, d->prefix_len);
}

void
cfg_check_root(struct cfg_walk *w, yaml_node_t *map, void *obj)
{
	const struct cfg *cfg = obj;

	if (cfg->engine != CFG_ENGINE_DPDK)
		return;

	if (!cfg->dpdk.present)
		cfg_error_key(w, node_or_map(w, map, "engine"), "engine",
			      "engine 'dpdk' needs a dpdk: section (eal_args, port, address)");
	else if (cfg->dpdk.address == 0 &&
		 cfg_map_get(w, cfg_map_get(w, map, "dpdk"), "address") == NULL)
		cfg_error_key(w, node_or_map(w, map, "dpdk"), "dpdk.address",
			      "required key is missing (engine is dpdk)");
}
