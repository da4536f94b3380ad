/*
 * Resumption through ush_conn: a full handshake on one worker, then a
 * resumed one on the other worker, must reach the same upstream server
 * (ticket affinity), under TLS 1.2 and TLS 1.3. A ticket naming a server
 * that is down repins the client, and the renewed ticket names the new
 * server.
 */
#include <string.h>

#include "check.h"
#include "harness.h"

static const int versions[] = {TLS1_2_VERSION, TLS1_3_VERSION};

static int
version_index(int version)
{
	return version == TLS1_3_VERSION ? 1 : 0;
}

/*
 * One connection that exchanges a few bytes both ways (a TLS 1.3 client
 * reads its tickets on the way) and closes cleanly. Returns the server
 * index it reached, or -1; *reused tells whether it resumed.
 */
static int
run_connection_failing(struct hw *w, int worker, struct hc_client *cl, SSL_SESSION *offer,
		       bool *reused, struct tkc_conn *ticket, unsigned fail_mask)
{
	static const unsigned char ping[] = "ping", pong[] = "pong";
	struct hc h;
	int server = -1;

	if (hc_open(&h, w, worker, cl, NULL, offer) != 0)
		goto out;

	h.fail_mask = fail_mask;
	if (hc_establish(&h) != 0)
		goto out;

	h.tx = ping;
	h.tx_len = sizeof(ping);
	h.up_tx = pong;
	h.up_tx_len = sizeof(pong);
	hc_settle(&h);

	/* Close the client cleanly, or OpenSSL will not resume its session. */
	hc_client_close(&h, true);
	h.up_eof = true;
	hc_settle(&h);

	if (h.up_rx.len != sizeof(ping) || h.rx.len != sizeof(pong) || !h.closed ||
	    h.c.reason != USH_CLOSE_DONE)
		goto out;

	/*
	 * A TLS 1.2 client resuming does not announce a renewed ticket to
	 * its new-session callback; the SSL holds it all the same.
	 */
	if (cl->newest == NULL)
		cl->newest = SSL_get1_session(h.ssl);

	*reused = SSL_session_reused(h.ssl) == 1;
	*ticket = h.c.ticket;
	server = (int)h.c.server->index;

out:
	hc_free(&h);
	return server;
}

static int
run_connection(struct hw *w, int worker, struct hc_client *cl, SSL_SESSION *offer, bool *reused,
	       struct tkc_conn *ticket)
{
	return run_connection_failing(w, worker, cl, offer, reused, ticket, 0);
}

static void
resume_on_other_worker(int version)
{
	struct hw w;
	struct hc_client cl;
	struct tkc_conn ticket;
	SSL_SESSION *session = NULL;
	bool reused = true;
	int v = version_index(version);
	int first, second;

	REQUIRE(hw_setup(&w, &(struct hw_opts){.n_certs = 1}) == 0);
	REQUIRE(hc_client_init(&cl, version, NULL, 0) == 0);

	first = run_connection(&w, 0, &cl, NULL, &reused, &ticket);
	CHECK_EQ_INT(first, 0);
	CHECK(!reused);
	CHECK_EQ_INT(ticket.server_id_len, 2);
	CHECK(memcmp(ticket.server_id, "s0", 2) == 0);
	CHECK_EQ_INT(w.workers[0].stats.handshakes_full[v], 1);
	CHECK_EQ_INT(w.workers[0].stats.closes[USH_CLOSE_DONE], 1);

	session = hc_client_take_session(&cl);
	REQUIRE(session != NULL);

	/* Move worker 1's balancer past s0: only the ticket can lead there. */
	CHECK(ush_balancer_pick(&w.workers[1].balancer, NULL, NULL) == hw_server(&w, 0));

	second = run_connection(&w, 1, &cl, session, &reused, &ticket);
	CHECK_EQ_INT(second, 0);
	CHECK(reused);
	CHECK(ticket.resumed_affinity);
	CHECK(!ticket.repinned);
	CHECK_EQ_INT(w.workers[1].stats.handshakes_resumed[v], 1);
	CHECK_EQ_INT(w.workers[1].stats.handshakes_full[v], 0);

	SSL_SESSION_free(session);
	hc_client_free(&cl);
	hw_teardown(&w);
}

static void
test_resume_tls12_same_server(void)
{
	resume_on_other_worker(versions[0]);
}

static void
test_resume_tls13_same_server(void)
{
	resume_on_other_worker(versions[1]);
}

static void
repin_when_server_down(int version)
{
	struct hw w;
	struct hc_client cl;
	struct tkc_conn ticket;
	SSL_SESSION *session;
	struct tkc_counters counters;
	bool reused = false;
	int server;

	REQUIRE(hw_setup(&w, &(struct hw_opts){.n_certs = 1}) == 0);
	REQUIRE(hc_client_init(&cl, version, NULL, 0) == 0);

	CHECK_EQ_INT(run_connection(&w, 0, &cl, NULL, &reused, &ticket), 0);
	session = hc_client_take_session(&cl);
	REQUIRE(session != NULL);

	/* s0 is down: the client resumes, but goes to s1 and learns it. */
	hw_set_up(&w, 0, false);
	server = run_connection(&w, 1, &cl, session, &reused, &ticket);
	SSL_SESSION_free(session);
	CHECK_EQ_INT(server, 1);
	CHECK(reused);
	CHECK(ticket.repinned);
	CHECK_EQ_INT(ticket.server_id_len, 2);
	CHECK(memcmp(ticket.server_id, "s1", 2) == 0);
	tkc_shard_read_counters(ush_tls_shard(w.workers[1].tls), &counters);
	CHECK_EQ_INT(counters.affinity_repinned, 1);

	session = hc_client_take_session(&cl);
	REQUIRE(session != NULL);

	/* s0 is back and worker 0 would choose it next; the ticket says s1. */
	hw_set_up(&w, 0, true);
	CHECK(ush_balancer_pick(&w.workers[0].balancer, NULL, NULL) == hw_server(&w, 1));
	server = run_connection(&w, 0, &cl, session, &reused, &ticket);
	CHECK_EQ_INT(server, 1);
	CHECK(reused);
	CHECK(ticket.resumed_affinity);

	SSL_SESSION_free(session);
	hc_client_free(&cl);
	hw_teardown(&w);
}

static void
test_repin_tls12(void)
{
	repin_when_server_down(versions[0]);
}

static void
test_repin_tls13(void)
{
	repin_when_server_down(versions[1]);
}

/*
 * The server a TLS 1.3 ticket names fails its connect before the health
 * checks know it: the client is served by the other server and is handed
 * a ticket naming that one, so its next resumption goes there directly.
 */
static void
test_retry_renews_ticket_tls13(void)
{
	struct hw w;
	struct hc_client cl;
	struct tkc_conn ticket;
	SSL_SESSION *session;
	bool reused = false;
	int server;

	REQUIRE(hw_setup(&w, &(struct hw_opts){.n_certs = 1}) == 0);
	REQUIRE(hc_client_init(&cl, TLS1_3_VERSION, NULL, 0) == 0);

	CHECK_EQ_INT(run_connection(&w, 0, &cl, NULL, &reused, &ticket), 0);
	session = hc_client_take_session(&cl);
	REQUIRE(session != NULL);

	server = run_connection_failing(&w, 1, &cl, session, &reused, &ticket, 1u << 0);
	SSL_SESSION_free(session);
	CHECK_EQ_INT(server, 1);
	CHECK(reused);
	CHECK_EQ_INT(ticket.server_id_len, 2);
	CHECK(memcmp(ticket.server_id, "s1", 2) == 0);

	session = hc_client_take_session(&cl);
	REQUIRE(session != NULL);

	/* s0 answers again and worker 0 would choose it; the ticket says s1. */
	while (ush_balancer_pick(&w.workers[0].balancer, NULL, NULL) != hw_server(&w, 1))
		;
	server = run_connection(&w, 0, &cl, session, &reused, &ticket);
	CHECK_EQ_INT(server, 1);
	CHECK(reused);
	CHECK(ticket.resumed_affinity);

	SSL_SESSION_free(session);
	hc_client_free(&cl);
	hw_teardown(&w);
}

/* A resumption keeps working along a chain of renewed tickets. */
static void
test_resume_chain_tls13(void)
{
	struct hw w;
	struct hc_client cl;
	struct tkc_conn ticket;
	SSL_SESSION *session = NULL;
	bool reused = false;

	REQUIRE(hw_setup(&w, &(struct hw_opts){.n_certs = 1}) == 0);
	REQUIRE(hc_client_init(&cl, TLS1_3_VERSION, NULL, 0) == 0);

	for (int i = 0; i < 4; i++) {
		CHECK_EQ_INT(run_connection(&w, i % 2, &cl, session, &reused, &ticket), 0);
		CHECK(reused == (i > 0));
		SSL_SESSION_free(session);
		session = hc_client_take_session(&cl);
		REQUIRE(session != NULL);
	}

	SSL_SESSION_free(session);
	hc_client_free(&cl);
	hw_teardown(&w);
}

int
main(void)
{
	RUN(test_resume_tls12_same_server);
	RUN(test_resume_tls13_same_server);
	RUN(test_repin_tls12);
	RUN(test_repin_tls13);
	RUN(test_retry_renews_ticket_tls13);
	RUN(test_resume_chain_tls13);
	return check_done();
}
