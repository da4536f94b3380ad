/*
 * pool: the runtime pool table built from a configuration snapshot, the
 * name lookup used by ticket affinity, and passive health.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "upstream.h"
#include "upstream_internal.h"

uint64_t
ush_hash_bytes(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = 0xcbf29ce484222325u; /* FNV-1a 64, then a final mix */

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3u;
	}

	return ush_mix64(h);
}

/* The smallest power of two with at least twice as many slots as names. */
static size_t
name_table_size(size_t n_servers)
{
	size_t size = 4;

	while (size < 2 * n_servers)
		size <<= 1;

	return size;
}

static bool
name_matches(const struct ush_server *s, const char *name, size_t len)
{
	return strncmp(s->cfg->name, name, len) == 0 && s->cfg->name[len] == '\0';
}

struct ush_server *
ush_pool_find(const struct ush_pool *pool, const char *name, size_t len)
{
	uint64_t h;

	if (pool == NULL || pool->by_name == NULL || name == NULL ||
	    memchr(name, '\0', len) != NULL)
		return NULL;

	h = ush_hash_bytes(name, len);

	/* The table is at most half full, so an empty slot ends every probe. */
	for (size_t i = h & pool->by_name_mask;; i = (i + 1) & pool->by_name_mask) {
		uint32_t slot = pool->by_name[i];
		struct ush_server *s;

		if (slot == 0)
			return NULL;

		s = &pool->servers[slot - 1];
		if (s->name_hash == h && name_matches(s, name, len))
			return s;
	}
}

/* A repeated name keeps its first server; config validation refuses it. */
static void
index_name(struct ush_pool *pool, struct ush_server *s)
{
	size_t i = s->name_hash & pool->by_name_mask;
	size_t len = strlen(s->cfg->name);

	if (ush_pool_find(pool, s->cfg->name, len) != NULL)
		return;

	while (pool->by_name[i] != 0)
		i = (i + 1) & pool->by_name_mask;

	pool->by_name[i] = (uint32_t)(s->index + 1);
}

static int
build_pool(struct ush_pools *pools, struct ush_pool *pool, const struct cfg_pool *cfg, size_t index)
{
	size_t table_size = name_table_size(cfg->n_servers);

	pool->cfg = cfg;
	pool->index = index;
	pool->pools = pools;
	pool->n_servers = cfg->n_servers;
	pool->servers = calloc(cfg->n_servers ? cfg->n_servers : 1, sizeof(*pool->servers));
	pool->by_name = calloc(table_size, sizeof(*pool->by_name));
	pool->by_name_mask = table_size - 1;
	if (pool->servers == NULL || pool->by_name == NULL)
		return -ENOMEM;

	for (size_t i = 0; i < cfg->n_servers; i++) {
		struct ush_server *s = &pool->servers[i];

		s->cfg = &cfg->servers[i];
		s->pool = pool;
		s->index = i;
		s->name_hash = ush_hash_bytes(s->cfg->name, strlen(s->cfg->name));
		s->up = true;
		index_name(pool, s);
	}

	return 0;
}

int
ush_pools_create(const struct cfg *cfg, struct ush_pools **out)
{
	struct ush_pools *pools = calloc(1, sizeof(*pools));

	*out = NULL;
	if (pools == NULL)
		return -ENOMEM;

	pools->cfg = cfg;
	pools->n_pools = cfg->n_pools;
	pools->pools = calloc(cfg->n_pools ? cfg->n_pools : 1, sizeof(*pools->pools));
	if (pools->pools == NULL)
		goto fail;

	for (size_t i = 0; i < cfg->n_pools; i++) {
		if (build_pool(pools, &pools->pools[i], &cfg->pools[i], i) != 0)
			goto fail;
	}

	*out = pools;
	return 0;

fail:
	ush_pools_free(pools);
	return -ENOMEM;
}

void
ush_pools_free(struct ush_pools *pools)
{
	if (pools == NULL)
		return;

	for (size_t i = 0; pools->pools != NULL && i < pools->n_pools; i++) {
		free(pools->pools[i].servers);
		free(pools->pools[i].by_name);
	}

	free(pools->pools);
	free(pools);
}

static const struct ush_pool *
find_pool(const struct ush_pools *pools, const char *name)
{
	for (size_t i = 0; i < pools->n_pools; i++) {
		if (strcmp(pools->pools[i].cfg->name, name) == 0)
			return &pools->pools[i];
	}

	return NULL;
}

/* Compared field by field: padding in a sockaddr may hold anything. */
static bool
same_address(const struct cfg_addr *a, const struct cfg_addr *b)
{
	const struct sockaddr_in *a4 = (const struct sockaddr_in *)&a->ss;
	const struct sockaddr_in *b4 = (const struct sockaddr_in *)&b->ss;
	const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&a->ss;
	const struct sockaddr_in6 *b6 = (const struct sockaddr_in6 *)&b->ss;

	if (a->ss.ss_family != b->ss.ss_family)
		return false;

	switch (a->ss.ss_family) {
	case AF_INET:
		return a4->sin_port == b4->sin_port && a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	case AF_INET6:
		return a6->sin6_port == b6->sin6_port && a6->sin6_scope_id == b6->sin6_scope_id &&
		       memcmp(&a6->sin6_addr, &b6->sin6_addr, sizeof(a6->sin6_addr)) == 0;
	default:
		return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
	}
}

static void
copy_health(struct ush_server *dst, const struct ush_server *src)
{
	ush_store_bool(&dst->up, ush_load_bool(&src->up));
	ush_store_u32(&dst->consecutive_failures, ush_load_u32(&src->consecutive_failures));
	ush_store_u32(&dst->checks_ok_in_row, ush_load_u32(&src->checks_ok_in_row));
	ush_store_u64(&dst->connect_failures, ush_load_u64(&src->connect_failures));
	ush_store_u64(&dst->checks_failed, ush_load_u64(&src->checks_failed));
}

/*
 * Health belongs to an address: a server whose name stayed but whose
 * address changed is a new machine and starts up like any new server.
 */
void
ush_pools_inherit_health(struct ush_pools *dst, const struct ush_pools *src)
{
	if (dst == NULL || src == NULL)
		return;

	for (size_t p = 0; p < dst->n_pools; p++) {
		struct ush_pool *pool = &dst->pools[p];
		const struct ush_pool *old = find_pool(src, pool->cfg->name);

		for (size_t i = 0; old != NULL && i < pool->n_servers; i++) {
			struct ush_server *s = &pool->servers[i];
			const char *name = s->cfg->name;
			const struct ush_server *was = ush_pool_find(old, name, strlen(name));

			if (was != NULL && same_address(&s->cfg->address, &was->cfg->address))
				copy_health(s, was);
		}
	}
}

bool
ush_server_usable(const struct ush_server *s)
{
	return ush_load_bool(&s->up);
}

static bool
has_active_checks(const struct ush_server *s)
{
	return s->pool->cfg->health_check.interval_ms > 0;
}

void
ush_health_record_failure(struct ush_server *s, int err)
{
	const struct cfg_health_check *hc = &s->pool->cfg->health_check;
	uint32_t fall = hc->fall > 0 ? hc->fall : 1;
	uint32_t in_row = ush_add_u32(&s->consecutive_failures, 1);

	ush_store_u32(&s->checks_ok_in_row, 0);

	if (in_row < fall || !has_active_checks(s))
		return;

	/* Only the thread that flips the flag reports the change. */
	if (ush_exchange_bool(&s->up, false))
		ush_health_changed(s, false, err);
}

void
ush_health_record_success(struct ush_server *s, bool active)
{
	const struct cfg_health_check *hc = &s->pool->cfg->health_check;
	uint32_t rise = hc->rise > 0 ? hc->rise : 1;

	ush_store_u32(&s->consecutive_failures, 0);

	/* A worker's connect may predate the fall; only checks count for rise. */
	if (!active)
		return;

	if (ush_add_u32(&s->checks_ok_in_row, 1) < rise || ush_load_bool(&s->up))
		return;

	if (!ush_exchange_bool(&s->up, true))
		ush_health_changed(s, true, 0);
}

void
ush_health_changed(const struct ush_server *s, bool up, int err)
{
	const struct ush_pools *pools = s->pool->pools;

	if (pools->on_change != NULL)
		pools->on_change(pools->on_change_arg, s->pool, s, up, err);
}

void
ush_server_report_connect(struct ush_server *s, bool ok)
{
	if (ok) {
		ush_health_record_success(s, false);
		return;
	}

	ush_add_u64(&s->connect_failures, 1);
	ush_health_record_failure(s, 0);
}
