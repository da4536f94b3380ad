/*
 * Active health checks against real sockets on 127.0.0.1: a listening
 * server comes up after rise checks, a closed one goes down after fall.
 * Waits are bounded loops, never timing assertions.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "pool_fixture.h"
#include "upstream.h"

#define WAIT_LIMIT_MS 10000

/* A listening socket on an ephemeral port of 127.0.0.1; its fd or -1. */
static int
listen_loopback(uint16_t *port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(fd, 64) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) != 0) {
		close(fd);
		return -1;
	}

	*port = ntohs(sin.sin_port);
	return fd;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Health fields are written by the checker thread while we read. */
static uint32_t
load_u32(const USH_ATOMIC(uint32_t) * p)
{
	return atomic_load_explicit(p, memory_order_relaxed);
}

/* Wait, within a generous bound, for s to be up (or down). */
static bool
wait_for(const struct ush_server *s, bool up)
{
	for (int waited = 0; waited < WAIT_LIMIT_MS; waited += 10) {
		if (ush_server_usable(s) == up)
			return true;
		sleep_ms(10);
	}

	return ush_server_usable(s) == up;
}

/* The observer runs on the health thread. */
struct changes {
	pthread_mutex_t lock;
	int ups;
	int downs;
	int last_err;
};

static void
on_change(void *arg, const struct ush_pool *pool, const struct ush_server *s, bool up, int err)
{
	struct changes *c = arg;

	pthread_mutex_lock(&c->lock);
	if (up)
		c->ups++;
	else
		c->downs++;
	c->last_err = err;
	pthread_mutex_unlock(&c->lock);
}

/*
 * Server 0 listens and starts marked down; server 1 is a closed port in a
 * pool without active checks, marked down, and must stay untouched.
 */
static void
test_rise_and_fall_against_real_socket(void)
{
	struct changes seen = {.lock = PTHREAD_MUTEX_INITIALIZER};
	int fds_before = fixture_count_fds();
	struct fixture_cfg f;
	struct ush_pools *pools;
	struct ush_health *health;
	struct ush_server *s, *unchecked;
	uint16_t port;
	int lfd = listen_loopback(&port);

	REQUIRE(lfd >= 0);
	fixture_cfg_init(&f);
	fixture_add_pool(&f, "web", CFG_BALANCE_ROUND_ROBIN, NULL, 1);
	fixture_add_pool(&f, "quiet", CFG_BALANCE_ROUND_ROBIN, NULL, 1);
	f.pools[1].health_check.interval_ms = 0;
	fixture_set_port(&f, 0, 0, port);
	REQUIRE(ush_pools_create(&f.cfg, &pools) == 0);
	pools->on_change = on_change;
	pools->on_change_arg = &seen;
	s = &pools->pools[0].servers[0];
	unchecked = &pools->pools[1].servers[0];
	fixture_set_up(s, false);
	fixture_set_up(unchecked, false);

	REQUIRE(ush_health_start(pools, &health) == 0);

	CHECK(wait_for(s, true));
	CHECK(load_u32(&s->checks_ok_in_row) >= 2);

	close(lfd);
	CHECK(wait_for(s, false));
	CHECK(load_u32(&s->consecutive_failures) >= 3);
	CHECK(atomic_load_explicit(&s->checks_failed, memory_order_relaxed) >= 3);

	ush_health_stop(health);

	pthread_mutex_lock(&seen.lock);
	CHECK_EQ_INT(seen.ups, 1);
	CHECK_EQ_INT(seen.downs, 1);
	CHECK_EQ_INT(seen.last_err, ECONNREFUSED);
	pthread_mutex_unlock(&seen.lock);

	CHECK(!ush_server_usable(unchecked));
	CHECK_EQ_INT(unchecked->checks_failed, 0);

	ush_pools_free(pools);
	CHECK_EQ_INT(fixture_count_fds(), fds_before);
}

/*
 * A server that is up stays up while it answers, and a check success
 * clears a worker's failures.
 */
static void
test_checks_clear_passive_failures(void)
{
	struct fixture_cfg f;
	struct ush_pools *pools;
	struct ush_health *health;
	struct ush_server *s;
	uint16_t port;
	int lfd = listen_loopback(&port);

	REQUIRE(lfd >= 0);
	fixture_cfg_init(&f);
	fixture_add_pool(&f, "web", CFG_BALANCE_ROUND_ROBIN, NULL, 1);
	fixture_set_port(&f, 0, 0, port);
	REQUIRE(ush_pools_create(&f.cfg, &pools) == 0);
	s = &pools->pools[0].servers[0];

	ush_server_report_connect(s, false);
	ush_server_report_connect(s, false);
	REQUIRE(ush_health_start(pools, &health) == 0);

	for (int waited = 0; waited < WAIT_LIMIT_MS; waited += 10) {
		if (load_u32(&s->consecutive_failures) == 0)
			break;
		sleep_ms(10);
	}

	CHECK_EQ_INT(load_u32(&s->consecutive_failures), 0);
	CHECK(ush_server_usable(s));

	ush_health_stop(health);
	ush_pools_free(pools);
	close(lfd);
}

/*
 * Stop wakes the thread at once: with an hour between checks, a stop
 * that waited for the next one would hang the test.
 */
static void
test_stop_is_prompt_and_leaks_nothing(void)
{
	int fds_before = fixture_count_fds();
	struct fixture_cfg f;
	struct ush_pools *pools;

	fixture_cfg_init(&f);
	fixture_add_pool(&f, "web", CFG_BALANCE_ROUND_ROBIN, NULL, 3);
	f.pools[0].health_check.interval_ms = 3600 * 1000;
	f.pools[0].health_check.timeout_ms = 3600 * 1000;
	REQUIRE(ush_pools_create(&f.cfg, &pools) == 0);

	for (int i = 0; i < 20; i++) {
		struct ush_health *health;

		REQUIRE(ush_health_start(pools, &health) == 0);
		ush_health_stop(health);
	}

	ush_health_stop(NULL);
	ush_pools_free(pools);
	CHECK_EQ_INT(fixture_count_fds(), fds_before);
}

/* No pool with active checks: the thread only waits to be stopped. */
static void
test_nothing_to_check(void)
{
	struct fixture_cfg f;
	struct ush_pools *pools;
	struct ush_health *health;

	fixture_cfg_init(&f);
	fixture_add_pool(&f, "web", CFG_BALANCE_ROUND_ROBIN, NULL, 2);
	f.pools[0].health_check.interval_ms = 0;
	REQUIRE(ush_pools_create(&f.cfg, &pools) == 0);

	REQUIRE(ush_health_start(pools, &health) == 0);
	ush_health_stop(health);

	CHECK(ush_server_usable(&pools->pools[0].servers[0]));
	ush_pools_free(pools);
}

int
main(void)
{
	RUN(test_rise_and_fall_against_real_socket);
	RUN(test_checks_clear_passive_failures);
	RUN(test_stop_is_prompt_and_leaks_nothing);
	RUN(test_nothing_to_check);
	return check_done();
}
