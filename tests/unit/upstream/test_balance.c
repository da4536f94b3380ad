/*
 * Balancing: smooth weighted round robin, least connections and client
 * hashing, with servers down and servers excluded.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "check.h"
#include "pool_fixture.h"
#include "upstream.h"

/* A pool table and one worker's balancer over its first pool. */
struct setup {
	struct fixture_cfg f;
	struct ush_pools *pools;
	struct ush_pool *pool;
	struct ush_balancer b;
};

static int
setup_pool(struct setup *t, enum cfg_balance balance, const unsigned *weights, size_t n)
{
	fixture_cfg_init(&t->f);
	fixture_add_pool(&t->f, "web", balance, weights, n);

	if (ush_pools_create(&t->f.cfg, &t->pools) != 0)
		return -1;

	t->pool = &t->pools->pools[0];
	return ush_balancer_init(&t->b, t->pool);
}

static void
teardown(struct setup *t)
{
	ush_balancer_fini(&t->b);
	ush_pools_free(t->pools);
}

/* The index of the picked server, or -1 for NULL. */
static int
pick(struct setup *t, const struct sockaddr *client, const struct ush_server *exclude)
{
	struct ush_server *s = ush_balancer_pick(&t->b, client, exclude);

	return s ? (int)s->index : -1;
}

static struct sockaddr_in
ipv4(const char *ip, uint16_t port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};

	inet_pton(AF_INET, ip, &sin.sin_addr);
	return sin;
}

/*
 * Weights 5, 1, 1: per cycle of 7 the heavy server five times, the light
 * ones once each and apart: a a b a c a a (worked out by hand).
 */
static void
test_round_robin_smooth_cycle(void)
{
	static const unsigned weights[] = {5, 1, 1};
	static const int expected[] = {0, 0, 1, 0, 2, 0, 0};
	struct setup t;

	REQUIRE(setup_pool(&t, CFG_BALANCE_ROUND_ROBIN, weights, 3) == 0);

	for (int cycle = 0; cycle < 4; cycle++) {
		for (size_t i = 0; i < 7; i++)
			CHECK_EQ_INT(pick(&t, NULL, NULL), expected[i]);
	}

	teardown(&t);
}

static void
test_round_robin_counts_match_weights(void)
{
	static const unsigned weights[] = {256, 1, 7, 40};
	const int cycle = 256 + 1 + 7 + 40;
	int counts[4] = {0};
	struct setup t;

	REQUIRE(setup_pool(&t, CFG_BALANCE_ROUND_ROBIN, weights, 4) == 0);

	for (int i = 0; i < 3 * cycle; i++) {
		int k = pick(&t, NULL, NULL);

		REQUIRE(k >= 0 && k < 4);
		counts[k]++;
	}

	for (int k = 0; k < 4; k++)
		CHECK_EQ_INT(counts[k], 3 * (int)weights[k]);

	teardown(&t);
}

/* With the heavy server down, the two light ones alternate. */
static void
test_round_robin_skips_down(void)
{
	static const unsigned weights[] = {5, 1, 1};
	struct setup t;

	REQUIRE(setup_pool(&t, CFG_BALANCE_ROUND_ROBIN, weights, 3) == 0);
	fixture_set_up(&t.pool->servers[0], false);

	for (int i = 0; i < 10; i++)
		CHECK_EQ_INT(pick(&t, NULL, NULL), 1 + i % 2);

	fixture_set_up(&t.pool->servers[0], true);
	CHECK_EQ_INT(pick(&t, NULL, NULL), 0);

	teardown(&t);
}

static void
test_exclude_never_chosen(void)
{
	static const enum cfg_balance methods[] = {
		CFG_BALANCE_ROUND_ROBIN,
		CFG_BALANCE_LEAST_CONN,
		CFG_BALANCE_HASH_CLIENT,
	};
	struct sockaddr_in client = ipv4("198.51.100.7", 5000);

	for (size_t m = 0; m < 3; m++) {
		struct setup t;
		const struct ush_server *ex;

		REQUIRE(setup_pool(&t, methods[m], NULL, 3) == 0);
		ex = &t.pool->servers[1];

		for (int i = 0; i < 20; i++) {
			int k = pick(&t, (struct sockaddr *)&client, ex);

			CHECK(k == 0 || k == 2);
		}

		/* The excluded server is the only one left: nothing. */
		fixture_set_up(&t.pool->servers[0], false);
		fixture_set_up(&t.pool->servers[2], false);
		CHECK_EQ_INT(pick(&t, (struct sockaddr *)&client, ex), -1);
		CHECK_EQ_INT(pick(&t, (struct sockaddr *)&client, NULL), 1);

		teardown(&t);
	}
}

static void
test_all_down_gives_null(void)
{
	static const enum cfg_balance methods[] = {
		CFG_BALANCE_ROUND_ROBIN,
		CFG_BALANCE_LEAST_CONN,
		CFG_BALANCE_HASH_CLIENT,
	};
	struct sockaddr_in client = ipv4("198.51.100.7", 5000);

	for (size_t m = 0; m < 3; m++) {
		struct setup t;

		REQUIRE(setup_pool(&t, methods[m], NULL, 4) == 0);
		for (size_t i = 0; i < 4; i++)
			fixture_set_up(&t.pool->servers[i], false);

		CHECK(ush_balancer_pick(&t.b, (struct sockaddr *)&client, NULL) == NULL);
		CHECK(ush_balancer_pick(&t.b, NULL, NULL) == NULL);

		teardown(&t);
	}
}

static void
open_conns(struct setup *t, size_t server, int n)
{
	for (int i = 0; i < n; i++)
		ush_balancer_conn_opened(&t->b, &t->pool->servers[server]);
}

static void
test_least_conn_picks_emptiest(void)
{
	struct setup t;

	REQUIRE(setup_pool(&t, CFG_BALANCE_LEAST_CONN, NULL, 3) == 0);
	open_conns(&t, 0, 2);
	open_conns(&t, 2, 1);

	for (int i = 0; i < 5; i++)
		CHECK_EQ_INT(pick(&t, NULL, NULL), 1);

	open_conns(&t, 1, 2);
	CHECK_EQ_INT(pick(&t, NULL, NULL), 2);

	/* Closing two on server 0 makes it the emptiest. */
	ush_balancer_conn_closed(&t.b, &t.pool->servers[0]);
	ush_balancer_conn_closed(&t.b, &t.pool->servers[0]);
	CHECK_EQ_INT(pick(&t, NULL, NULL), 0);

	/* ... unless it is down. */
	fixture_set_up(&t.pool->servers[0], false);
	CHECK_EQ_INT(pick(&t, NULL, NULL), 2);

	teardown(&t);
}

static void
test_least_conn_ties(void)
{
	static const unsigned weights[] = {1, 3, 3};
	int seen[3] = {0};
	struct setup t;

	REQUIRE(setup_pool(&t, CFG_BALANCE_LEAST_CONN, weights, 3) == 0);

	/* Equal counts: a heavier server wins, equal ones take turns. */
	for (int i = 0; i < 10; i++) {
		int k = pick(&t, NULL, NULL);

		REQUIRE(k >= 0);
		seen[k]++;
	}

	CHECK_EQ_INT(seen[0], 0);
	CHECK_EQ_INT(seen[1], 5);
	CHECK_EQ_INT(seen[2], 5);

	/* The lighter server wins once it has fewer connections. */
	open_conns(&t, 1, 1);
	open_conns(&t, 2, 1);
	CHECK_EQ_INT(pick(&t, NULL, NULL), 0);

	teardown(&t);
}

/* Counts never go below zero, and another table's server is ignored. */
static void
test_least_conn_bookkeeping(void)
{
	struct setup t, other;

	REQUIRE(setup_pool(&t, CFG_BALANCE_LEAST_CONN, NULL, 2) == 0);
	REQUIRE(setup_pool(&other, CFG_BALANCE_LEAST_CONN, NULL, 2) == 0);

	ush_balancer_conn_closed(&t.b, &t.pool->servers[0]);
	CHECK_EQ_INT(t.b.active[0], 0);

	ush_balancer_conn_opened(&t.b, &other.pool->servers[0]);
	ush_balancer_conn_opened(&t.b, NULL);
	CHECK_EQ_INT(t.b.active[0], 0);
	CHECK_EQ_INT(t.b.active[1], 0);

	open_conns(&t, 1, 3);
	CHECK_EQ_INT(t.b.active[1], 3);

	teardown(&other);
	teardown(&t);
}

#define N_CLIENTS 2000

static void
client_addr(int i, uint16_t port, struct sockaddr_in *sin)
{
	char ip[32];

	snprintf(ip, sizeof(ip), "10.%d.%d.%d", i / 65536, (i / 256) % 256, i % 256);
	*sin = ipv4(ip, port);
}

static void
test_hash_client_stable_and_minimal_moves(void)
{
	static int before[N_CLIENTS];
	int counts[5] = {0};
	struct setup t;

	REQUIRE(setup_pool(&t, CFG_BALANCE_HASH_CLIENT, NULL, 5) == 0);

	for (int i = 0; i < N_CLIENTS; i++) {
		struct sockaddr_in sin;

		client_addr(i, 1000, &sin);
		before[i] = pick(&t, (struct sockaddr *)&sin, NULL);
		REQUIRE(before[i] >= 0);
		counts[before[i]]++;

		/* The same client from another port lands on the same server. */
		client_addr(i, (uint16_t)(2000 + i), &sin);
		CHECK_EQ_INT(pick(&t, (struct sockaddr *)&sin, NULL), before[i]);
	}

	/* Every server gets a fair share: 400 each on average. */
	for (int k = 0; k < 5; k++)
		CHECK(counts[k] > 300 && counts[k] < 500);

	fixture_set_up(&t.pool->servers[2], false);

	for (int i = 0; i < N_CLIENTS; i++) {
		struct sockaddr_in sin;
		int now;

		client_addr(i, 1000, &sin);
		now = pick(&t, (struct sockaddr *)&sin, NULL);
		if (before[i] == 2)
			CHECK(now >= 0 && now != 2);
		else
			CHECK_EQ_INT(now, before[i]);
	}

	teardown(&t);
}

static void
test_hash_client_weights(void)
{
	static const unsigned weights[] = {1, 3};
	int counts[2] = {0};
	struct setup t;

	REQUIRE(setup_pool(&t, CFG_BALANCE_HASH_CLIENT, weights, 2) == 0);

	for (int i = 0; i < N_CLIENTS; i++) {
		struct sockaddr_in sin;
		int k;

		client_addr(i, 1000, &sin);
		k = pick(&t, (struct sockaddr *)&sin, NULL);
		REQUIRE(k >= 0);
		counts[k]++;
	}

	/* Expected 500 and 1500. */
	CHECK(counts[0] > 400 && counts[0] < 600);

	teardown(&t);
}

/* A client on an IPv6 listener as ::ffff:a.b.c.d is the same client. */
static void
test_hash_client_v4_mapped(void)
{
	struct setup t;

	REQUIRE(setup_pool(&t, CFG_BALANCE_HASH_CLIENT, NULL, 7) == 0);

	for (int i = 0; i < 100; i++) {
		struct sockaddr_in sin;
		struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};

		client_addr(i, 1000, &sin);
		sin6.sin6_addr.s6_addr[10] = 0xff;
		sin6.sin6_addr.s6_addr[11] = 0xff;
		memcpy(&sin6.sin6_addr.s6_addr[12], &sin.sin_addr, 4);

		CHECK_EQ_INT(pick(&t, (struct sockaddr *)&sin6, NULL),
			     pick(&t, (struct sockaddr *)&sin, NULL));
	}

	teardown(&t);
}

/* No IP address to hash (a UNIX socket, none at all): round robin. */
static void
test_hash_client_without_ip(void)
{
	struct sockaddr unix_client = {.sa_family = AF_UNIX};
	int seen[3] = {0};
	struct setup t;

	REQUIRE(setup_pool(&t, CFG_BALANCE_HASH_CLIENT, NULL, 3) == 0);

	for (int i = 0; i < 6; i++) {
		int k = pick(&t, i % 2 ? &unix_client : NULL, NULL);

		REQUIRE(k >= 0);
		seen[k]++;
	}

	CHECK(seen[0] == 2 && seen[1] == 2 && seen[2] == 2);

	teardown(&t);
}

int
main(void)
{
	RUN(test_round_robin_smooth_cycle);
	RUN(test_round_robin_counts_match_weights);
	RUN(test_round_robin_skips_down);
	RUN(test_exclude_never_chosen);
	RUN(test_all_down_gives_null);
	RUN(test_least_conn_picks_emptiest);
	RUN(test_least_conn_ties);
	RUN(test_least_conn_bookkeeping);
	RUN(test_hash_client_stable_and_minimal_moves);
	RUN(test_hash_client_weights);
	RUN(test_hash_client_v4_mapped);
	RUN(test_hash_client_without_ip);
	return check_done();
}
