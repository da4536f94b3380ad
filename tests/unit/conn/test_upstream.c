/*
 * The upstream leg of ush_conn: a failed or timed-out connect moves on to
 * the other server before any client byte was forwarded; when every
 * server fails the client is let go with UPSTREAM_FAILED.
 */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "harness.h"

static const unsigned char request[] = "client bytes sent before the connect";

/*
 * A connection whose client has finished its handshake and spoken, with
 * connects to the servers in fail_mask failing and, if silent, none ever
 * answered.
 */
static int
open_and_speak(struct hc *h, struct hw *w, struct hc_client *cl, unsigned fail_mask, bool silent)
{
	if (hc_open(h, w, 0, cl, NULL, NULL) != 0)
		return -1;

	h->fail_mask = fail_mask;
	h->connect_silent = silent;
	h->tx = request;
	h->tx_len = sizeof(request);
	return hc_handshake(h);
}

static void
test_connect_failure_retries_other_server(void)
{
	struct hw w;
	struct hc_client cl;
	struct hc h;
	struct ush_conn_stats *st = &w.workers[0].stats;

	REQUIRE(hw_setup(&w, &(struct hw_opts){.n_certs = 1}) == 0);
	REQUIRE(hc_client_init(&cl, TLS1_3_VERSION, NULL, 0) == 0);
	REQUIRE(open_and_speak(&h, &w, &cl, 1u << 0, false) == 0);
	hc_settle(&h);
	CHECK_EQ_INT(h.n_connects, 2);
	CHECK_EQ_INT(h.connects[0], 0);
	CHECK_EQ_INT(h.connects[1], 1);
	CHECK_EQ_INT(h.c.state, USH_CONN_RELAY);
	CHECK(h.c.server == hw_server(&w, 1));
	CHECK(h.c.failed == hw_server(&w, 0));
	CHECK_EQ_INT(st->upstream_connect_failures, 1);
	CHECK_EQ_INT(st->upstream_retries, 1);
	CHECK_EQ_INT(hw_server(&w, 0)->consecutive_failures, 1);

	/* What the client sent while we were connecting arrives whole. */
	CHECK_EQ_INT(h.up_rx.len, sizeof(request));
	CHECK(h.up_rx.len == sizeof(request) &&
	      memcmp(h.up_rx.data, request, sizeof(request)) == 0);
	CHECK_EQ_INT(w.workers[0].balancer.active[1], 1);
	CHECK_EQ_INT(w.workers[0].balancer.active[0], 0);

	hc_free(&h);
	hc_client_free(&cl);
	hw_teardown(&w);
}

static void
test_all_servers_fail(void)
{
	struct hw w;
	struct hc_client cl;
	struct hc h;
	struct ush_conn_stats *st = &w.workers[0].stats;

	REQUIRE(hw_setup(&w, &(struct hw_opts){.n_certs = 1}) == 0);
	REQUIRE(hc_client_init(&cl, TLS1_2_VERSION, NULL, 0) == 0);
	REQUIRE(open_and_speak(&h, &w, &cl, (1u << 0) | (1u << 1), false) == 0);
	hc_settle(&h);
	CHECK_EQ_INT(h.n_connects, 2);
	CHECK(h.closed);
	CHECK_EQ_INT(h.c.reason, USH_CLOSE_UPSTREAM_FAILED);
	CHECK_EQ_INT(h.up_rx.len, 0);
	CHECK_EQ_INT(st->upstream_connect_failures, 2);
	CHECK_EQ_INT(st->upstream_retries, 1);
	CHECK_EQ_INT(st->closes[USH_CLOSE_UPSTREAM_FAILED], 1);

	hc_free(&h);
	hc_client_free(&cl);
	hw_teardown(&w);
}

/* A connect that hangs is given up at the connect timeout, and retried. */
static void
test_connect_timeout_retries(void)
{
	struct hw w;
	struct hc_client cl;
	struct hc h;

	REQUIRE(hw_setup(&w, &(struct hw_opts){.n_certs = 1}) == 0);
	REQUIRE(hc_client_init(&cl, TLS1_3_VERSION, NULL, 0) == 0);
	REQUIRE(open_and_speak(&h, &w, &cl, 0, true) == 0);
	hc_settle(&h);
	CHECK_EQ_INT(h.c.state, USH_CONN_CONNECTING);
	CHECK_EQ_INT(h.n_connects, 1);
	CHECK_EQ_INT(h.c.deadline_ms, w.now + w.timeouts.connect_ms);

	w.now += w.timeouts.connect_ms;
	ush_conn_on_timeout(&h.c);
	CHECK_EQ_INT(h.c.connect_tries, 2);
	CHECK(h.c.server == hw_server(&w, 1));
	CHECK_EQ_INT(h.c.deadline_ms, w.now + w.timeouts.connect_ms);

	/* The engine abandons the hung attempt and starts try 2. */
	h.connect_silent = false;
	hc_settle(&h);
	CHECK_EQ_INT(h.c.state, USH_CONN_RELAY);
	CHECK(h.c.server == hw_server(&w, 1));
	CHECK_EQ_INT(h.up_rx.len, sizeof(request));

	hc_free(&h);
	hc_client_free(&cl);
	hw_teardown(&w);
}

/* A late report about an attempt already given up is not a second failure. */
static void
test_stale_reports_ignored(void)
{
	struct hw w;
	struct hc_client cl;
	struct hc h;

	REQUIRE(hw_setup(&w, &(struct hw_opts){.n_certs = 1}) == 0);
	REQUIRE(hc_client_init(&cl, TLS1_3_VERSION, NULL, 0) == 0);
	REQUIRE(open_and_speak(&h, &w, &cl, 0, false) == 0);
	hc_settle(&h);
	REQUIRE(h.c.state == USH_CONN_RELAY);

	ush_conn_on_upstream_failed(&h.c, ECONNREFUSED);
	ush_conn_on_upstream_connected(&h.c);
	CHECK_EQ_INT(h.c.state, USH_CONN_RELAY);
	CHECK_EQ_INT(w.workers[0].stats.upstream_connect_failures, 0);
	CHECK_EQ_INT(w.workers[0].balancer.active[0], 1);

	hc_free(&h);
	hc_client_free(&cl);
	hw_teardown(&w);
}

int
main(void)
{
	RUN(test_connect_failure_retries_other_server);
	RUN(test_all_servers_fail);
	RUN(test_connect_timeout_retries);
	RUN(test_stale_reports_ignored);
	return check_done();
}
