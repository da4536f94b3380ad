/*
 * Pools: building from a snapshot, lookup by name, passive health and
 * carrying health across a reload.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "pool_fixture.h"
#include "upstream.h"

static bool
is_up(const struct ush_server *s)
{
	return ush_server_usable(s);
}

static void
test_pools_mirror_config(void)
{
	static const unsigned weights[] = {4, 9};
	struct fixture_cfg f;
	struct ush_pools *pools;

	fixture_cfg_init(&f);
	fixture_add_pool(&f, "web", CFG_BALANCE_ROUND_ROBIN, weights, 2);
	fixture_add_pool(&f, "api", CFG_BALANCE_LEAST_CONN, NULL, 3);
	REQUIRE(ush_pools_create(&f.cfg, &pools) == 0);

	CHECK_EQ_INT(pools->n_pools, 2);
	CHECK_EQ_INT(pools->pools[1].n_servers, 3);
	CHECK_EQ_STR(pools->pools[1].cfg->name, "api");
	CHECK(pools->pools[0].servers[1].cfg == &f.servers[0][1]);
	CHECK_EQ_INT(pools->pools[0].servers[1].index, 1);
	CHECK(pools->pools[0].servers[1].pool == &pools->pools[0]);

	/* Every server starts up, with clean counters. */
	for (size_t p = 0; p < 2; p++) {
		for (size_t i = 0; i < pools->pools[p].n_servers; i++) {
			CHECK(is_up(&pools->pools[p].servers[i]));
			CHECK_EQ_INT(pools->pools[p].servers[i].consecutive_failures, 0);
		}
	}

	ush_pools_free(pools);
	ush_pools_free(NULL);
}

static void
test_find_by_name(void)
{
	struct fixture_cfg f;
	struct ush_pools *pools;
	struct ush_pool *pool;
	char name[16];

	fixture_cfg_init(&f);
	fixture_add_pool(&f, "web", CFG_BALANCE_ROUND_ROBIN, NULL, FIXTURE_MAX_SERVERS);
	fixture_set_name(&f, 0, 7, "apple");
	REQUIRE(ush_pools_create(&f.cfg, &pools) == 0);
	pool = &pools->pools[0];

	for (size_t i = 0; i < FIXTURE_MAX_SERVERS; i++) {
		const char *n = pool->servers[i].cfg->name;

		CHECK(ush_pool_find(pool, n, strlen(n)) == &pool->servers[i]);
	}

	/* Names come from tickets: counted, not NUL-terminated. */
	CHECK(ush_pool_find(pool, "applesauce", 5) == &pool->servers[7]);
	CHECK(ush_pool_find(pool, "s12xyz", 3) == &pool->servers[12]);

	CHECK(ush_pool_find(pool, "app", 3) == NULL);
	CHECK(ush_pool_find(pool, "apples", 6) == NULL);
	CHECK(ush_pool_find(pool, "nobody", 6) == NULL);
	CHECK(ush_pool_find(pool, "", 0) == NULL);
	CHECK(ush_pool_find(pool, "apple\0", 6) == NULL);
	CHECK(ush_pool_find(pool, NULL, 0) == NULL);
	CHECK(ush_pool_find(NULL, "apple", 5) == NULL);

	snprintf(name, sizeof(name), "s%d", FIXTURE_MAX_SERVERS);
	CHECK(ush_pool_find(pool, name, strlen(name)) == NULL);

	ush_pools_free(pools);
}

/* What the observer heard. */
struct changes {
	int downs;
	int ups;
	const struct ush_server *last;
};

static void
on_change(void *arg, const struct ush_pool *pool, const struct ush_server *s, bool up, int err)
{
	struct changes *c = arg;

	if (up)
		c->ups++;
	else
		c->downs++;
	c->last = s;
}

static void
test_passive_fall(void)
{
	struct changes seen = {0};
	struct fixture_cfg f;
	struct ush_pools *pools;
	struct ush_server *s;

	fixture_cfg_init(&f);
	fixture_add_pool(&f, "web", CFG_BALANCE_ROUND_ROBIN, NULL, 2);
	REQUIRE(ush_pools_create(&f.cfg, &pools) == 0);
	pools->on_change = on_change;
	pools->on_change_arg = &seen;
	s = &pools->pools[0].servers[1];

	/* fall is 3: two failures and a success leave it up and reset. */
	ush_server_report_connect(s, false);
	ush_server_report_connect(s, false);
	CHECK(is_up(s));
	ush_server_report_connect(s, true);
	CHECK_EQ_INT(s->consecutive_failures, 0);

	ush_server_report_connect(s, false);
	ush_server_report_connect(s, false);
	CHECK(is_up(s));
	ush_server_report_connect(s, false);
	CHECK(!is_up(s));
	ush_server_report_connect(s, false);
	CHECK(!is_up(s));

	/* One report per change, for the right server; the other is untouched. */
	CHECK_EQ_INT(seen.downs, 1);
	CHECK_EQ_INT(seen.ups, 0);
	CHECK(seen.last == s);
	CHECK(is_up(&pools->pools[0].servers[0]));
	CHECK_EQ_INT(s->connect_failures, 6);

	/* A worker's success does not bring it back: only active checks do. */
	ush_server_report_connect(s, true);
	CHECK(!is_up(s));

	ush_pools_free(pools);
}

/* With no active checks nothing could bring a server back: never down. */
static void
test_passive_without_active_checks(void)
{
	struct fixture_cfg f;
	struct ush_pools *pools;
	struct ush_server *s;

	fixture_cfg_init(&f);
	fixture_add_pool(&f, "web", CFG_BALANCE_ROUND_ROBIN, NULL, 1);
	f.pools[0].health_check.interval_ms = 0;
	REQUIRE(ush_pools_create(&f.cfg, &pools) == 0);
	s = &pools->pools[0].servers[0];

	for (int i = 0; i < 10; i++)
		ush_server_report_connect(s, false);

	CHECK(is_up(s));
	CHECK_EQ_INT(s->connect_failures, 10);

	ush_pools_free(pools);
}

static void
fail_times(struct ush_server *s, int n)
{
	for (int i = 0; i < n; i++)
		ush_server_report_connect(s, false);
}

static void
test_inherit_health(void)
{
	struct fixture_cfg old_f, new_f;
	struct ush_pools *old_pools, *new_pools;
	struct ush_pool *web;

	/* Before: web = s0 s1 s2 s3, other = s0. */
	fixture_cfg_init(&old_f);
	fixture_add_pool(&old_f, "web", CFG_BALANCE_ROUND_ROBIN, NULL, 4);
	fixture_add_pool(&old_f, "other", CFG_BALANCE_ROUND_ROBIN, NULL, 1);
	REQUIRE(ush_pools_create(&old_f.cfg, &old_pools) == 0);
	fail_times(&old_pools->pools[0].servers[0], 3); /* down */
	fail_times(&old_pools->pools[0].servers[1], 2); /* up, 2 in a row */
	fail_times(&old_pools->pools[0].servers[3], 3); /* down */
	fail_times(&old_pools->pools[1].servers[0], 3); /* down */

	/*
	 * After: a new pool first; web lists s1 s0 s2 s3 new, s3 at a new
	 * address; "other" is gone and "fresh" has a server named s0.
	 */
	fixture_cfg_init(&new_f);
	fixture_add_pool(&new_f, "fresh", CFG_BALANCE_ROUND_ROBIN, NULL, 1);
	fixture_add_pool(&new_f, "web", CFG_BALANCE_ROUND_ROBIN, NULL, 5);
	fixture_set_name(&new_f, 1, 0, "s1");
	fixture_set_name(&new_f, 1, 1, "s0");
	fixture_set_port(&new_f, 1, 0, 20001);
	fixture_set_port(&new_f, 1, 1, 20000);
	fixture_set_name(&new_f, 1, 4, "new");
	fixture_set_port(&new_f, 1, 3, 29999);
	REQUIRE(ush_pools_create(&new_f.cfg, &new_pools) == 0);

	ush_pools_inherit_health(new_pools, old_pools);
	web = &new_pools->pools[1];

	CHECK(!is_up(&web->servers[1])); /* s0 stays down */
	CHECK_EQ_INT(web->servers[1].consecutive_failures, 3);
	CHECK(is_up(&web->servers[0])); /* s1 */
	CHECK_EQ_INT(web->servers[0].consecutive_failures, 2);
	CHECK_EQ_INT(web->servers[0].connect_failures, 2);
	CHECK(is_up(&web->servers[2])); /* s2 */
	CHECK(is_up(&web->servers[3])); /* s3 moved */
	CHECK_EQ_INT(web->servers[3].consecutive_failures, 0);
	CHECK(is_up(&web->servers[4]));                /* new */
	CHECK(is_up(&new_pools->pools[0].servers[0])); /* fresh/s0 */

	/* The old table is only read. */
	CHECK(!is_up(&old_pools->pools[0].servers[0]));

	ush_pools_inherit_health(new_pools, NULL);
	ush_pools_free(old_pools);
	ush_pools_free(new_pools);
}

int
main(void)
{
	RUN(test_pools_mirror_config);
	RUN(test_find_by_name);
	RUN(test_passive_fall);
	RUN(test_passive_without_active_checks);
	RUN(test_inherit_health);
	return check_done();
}
