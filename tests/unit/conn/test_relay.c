/*
 * Relaying through ush_conn: bytes arrive exact in both directions, the
 * buffers respect their limits under backpressure, an idle connection
 * holds no buffer, and each way a relay can end ends with its reason.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "check.h"
#include "harness.h"

#define MIB (1024u * 1024u)

/* What may sit in a buffer when its side stops being read from. */
#define RECORD_OVERHEAD 64u
#define BUFFER_BOUND    (USH_BUF_HIGH + 16384u + RECORD_OVERHEAD)

static bool
bytes_equal(const struct hc_bytes *b, const void *data, size_t len)
{
	return b->len == len && memcmp(b->data, data, len) == 0;
}

static void
relay_small_then_close(int version)
{
	static const unsigned char req[] = "GET / HTTP/1.1\r\n\r\n";
	static const unsigned char resp[] = "HTTP/1.1 200 OK\r\n\r\nhello";
	struct hw w;
	struct hc_client cl;
	struct hc h;
	struct ush_conn_stats *st = &w.workers[0].stats;

	REQUIRE(hw_setup(&w, &(struct hw_opts){.n_certs = 1}) == 0);
	REQUIRE(hc_client_init(&cl, version, NULL, 0) == 0);
	REQUIRE(hc_open(&h, &w, 0, &cl, NULL, NULL) == 0);
	REQUIRE(hc_establish(&h) == 0);

	h.tx = req;
	h.tx_len = sizeof(req);
	h.up_tx = resp;
	h.up_tx_len = sizeof(resp);
	hc_settle(&h);
	CHECK(bytes_equal(&h.up_rx, req, sizeof(req)));
	CHECK(bytes_equal(&h.rx, resp, sizeof(resp)));
	CHECK_EQ_INT(h.c.bytes_from_client, sizeof(req));
	CHECK_EQ_INT(h.c.bytes_to_client, sizeof(resp));
	CHECK_EQ_INT(st->bytes_from_client, sizeof(req));
	CHECK_EQ_INT(st->bytes_to_client, sizeof(resp));
	CHECK_EQ_INT(w.workers[0].balancer.active[0], 1);

	/* Nothing in flight: the connection owns no buffer memory. */
	CHECK(hc_holds_no_buffers(&h));
	CHECK(!(ush_conn_wants(&h.c) & (USH_WANT_SEND_CLIENT | USH_WANT_SEND_UPSTREAM)));

	/* The client says goodbye: the upstream is half-closed... */
	hc_client_close(&h, true);
	hc_settle(&h);
	CHECK(h.up_shut);
	CHECK(!h.closed);

	/* ...and when it closes too, the client gets close_notify. */
	h.up_eof = true;
	hc_settle(&h);
	CHECK(h.rx_closed);
	CHECK(h.closed);
	CHECK_EQ_INT(h.c.reason, USH_CLOSE_DONE);
	CHECK_EQ_INT(st->closes[USH_CLOSE_DONE], 1);

	hc_free(&h);
	CHECK_EQ_INT(w.workers[0].balancer.active[0], 0);
	hc_client_free(&cl);
	hw_teardown(&w);
}

static void
test_relay_tls12(void)
{
	relay_small_then_close(TLS1_2_VERSION);
}

static void
test_relay_tls13(void)
{
	relay_small_then_close(TLS1_3_VERSION);
}

/*
 * 1 MiB each way at once. First neither the client nor the upstream
 * reads: the conn must stop asking for more before its buffers pass
 * their bound. Then both read, and every byte must arrive in order.
 */
static void
test_relay_one_mib_with_backpressure(void)
{
	unsigned char *up = malloc(MIB), *down = malloc(MIB);
	struct hw w;
	struct hc_client cl;
	struct hc h;
	unsigned wants;

	REQUIRE(up != NULL && down != NULL);
	hc_fill(up, MIB, 1);
	hc_fill(down, MIB, 2);
	REQUIRE(hw_setup(&w, &(struct hw_opts){.n_certs = 1}) == 0);
	REQUIRE(hc_client_init(&cl, TLS1_3_VERSION, NULL, 0) == 0);
	REQUIRE(hc_open(&h, &w, 0, &cl, NULL, NULL) == 0);
	REQUIRE(hc_establish(&h) == 0);

	h.tx = up;
	h.tx_len = MIB;
	h.up_tx = down;
	h.up_tx_len = MIB;
	h.hold_client = true;
	h.hold_upstream = true;
	hc_settle(&h);

	wants = ush_conn_wants(&h.c);
	CHECK(!(wants & USH_WANT_RECV_CLIENT));
	CHECK(!(wants & USH_WANT_RECV_UPSTREAM));
	CHECK(h.tx_off < MIB);
	CHECK(h.up_tx_off < MIB);
	CHECK(h.max_to_upstream >= USH_BUF_HIGH);
	CHECK(h.max_to_upstream <= BUFFER_BOUND);
	CHECK(h.max_to_client >= USH_BUF_HIGH);
	CHECK(h.max_to_client <= BUFFER_BOUND);
	CHECK(h.max_from_client <= BUFFER_BOUND);

	h.hold_client = false;
	h.hold_upstream = false;
	hc_settle(&h);
	CHECK(bytes_equal(&h.up_rx, up, MIB));
	CHECK(bytes_equal(&h.rx, down, MIB));
	CHECK(h.max_to_upstream <= BUFFER_BOUND);
	CHECK(h.max_to_client <= BUFFER_BOUND);
	CHECK(hc_holds_no_buffers(&h));
	CHECK_EQ_INT(h.c.state, USH_CONN_RELAY);

	hc_free(&h);
	hc_client_free(&cl);
	hw_teardown(&w);
	free(up);
	free(down);
}

static void
proxy_header_first(enum cfg_proxy_protocol version)
{
	static const unsigned char v1[] = "PROXY TCP4 192.0.2.1 127.0.0.1 5555 8443\r\n";
	static const unsigned char v2_signature[] = "\r\n\r\n\0\r\nQUIT\n";
	static const unsigned char data[] = "first client bytes";
	struct hw w;
	struct hc_client cl;
	struct hc h;
	const unsigned char *rx;
	size_t header_len;

	REQUIRE(hw_setup(&w, &(struct hw_opts){.n_certs = 3, .proxy_protocol = version}) == 0);
	REQUIRE(hc_client_init(&cl, TLS1_3_VERSION, NULL, 0) == 0);
	REQUIRE(hc_open(&h, &w, 0, &cl, "api.test", NULL) == 0);
	REQUIRE(hc_establish(&h) == 0);

	h.tx = data;
	h.tx_len = sizeof(data);
	hc_settle(&h);
	rx = h.up_rx.data;
	REQUIRE(rx != NULL && h.up_rx.len > 16);

	if (version == CFG_PROXY_PROTOCOL_V1) {
		header_len = sizeof(v1) - 1;
		REQUIRE(h.up_rx.len >= header_len);
		CHECK(memcmp(rx, v1, header_len) == 0);
	} else {
		CHECK(memcmp(rx, v2_signature, 12) == 0);
		CHECK_EQ_INT(rx[12], 0x21); /* version 2, PROXY */
		CHECK_EQ_INT(rx[13], 0x11); /* TCP over IPv4 */
		header_len = 16 + ((size_t)rx[14] << 8 | rx[15]);
		REQUIRE(h.up_rx.len >= header_len);
		CHECK(memmem(rx, header_len, "api.test", 8) != NULL);
		CHECK(memmem(rx, header_len, "TLSv1.3", 7) != NULL);
	}

	CHECK_EQ_INT(h.up_rx.len, header_len + sizeof(data));
	CHECK(memcmp(rx + header_len, data, sizeof(data)) == 0);
	CHECK_EQ_INT(h.c.bytes_from_client, sizeof(data));

	hc_free(&h);
	hc_client_free(&cl);
	hw_teardown(&w);
}

static void
test_proxy_v1_first(void)
{
	proxy_header_first(CFG_PROXY_PROTOCOL_V1);
}

static void
test_proxy_v2_first(void)
{
	proxy_header_first(CFG_PROXY_PROTOCOL_V2);
}

/* A client that half-closes still gets the whole answer. */
static void
test_client_half_close(void)
{
	static const unsigned char req[] = "request", resp[] = "response after half-close";
	struct hw w;
	struct hc_client cl;
	struct hc h;

	REQUIRE(hw_setup(&w, &(struct hw_opts){.n_certs = 1}) == 0);
	REQUIRE(hc_client_init(&cl, TLS1_3_VERSION, NULL, 0) == 0);
	REQUIRE(hc_open(&h, &w, 0, &cl, NULL, NULL) == 0);
	REQUIRE(hc_establish(&h) == 0);

	h.tx = req;
	h.tx_len = sizeof(req);
	hc_settle(&h);
	hc_client_close(&h, false);
	hc_settle(&h);
	CHECK(bytes_equal(&h.up_rx, req, sizeof(req)));
	CHECK(h.up_shut);

	h.up_tx = resp;
	h.up_tx_len = sizeof(resp);
	h.up_eof = true;
	hc_settle(&h);
	CHECK(bytes_equal(&h.rx, resp, sizeof(resp)));
	CHECK(h.rx_closed);
	CHECK(h.closed);
	CHECK_EQ_INT(h.c.reason, USH_CLOSE_DONE);

	hc_free(&h);
	hc_client_free(&cl);
	hw_teardown(&w);
}

/* An upstream that breaks: what it sent arrives, without close_notify. */
static void
test_upstream_reset(void)
{
	static const unsigned char part[] = "partial answer";
	struct hw w;
	struct hc_client cl;
	struct hc h;

	REQUIRE(hw_setup(&w, &(struct hw_opts){.n_certs = 1}) == 0);
	REQUIRE(hc_client_init(&cl, TLS1_2_VERSION, NULL, 0) == 0);
	REQUIRE(hc_open(&h, &w, 0, &cl, NULL, NULL) == 0);
	REQUIRE(hc_establish(&h) == 0);

	h.up_tx = part;
	h.up_tx_len = sizeof(part);
	h.hold_client = true;
	hc_settle(&h);
	ush_conn_on_upstream_error(&h.c, ECONNRESET);
	CHECK_EQ_INT(h.c.reason, USH_CLOSE_UPSTREAM_RESET);

	h.hold_client = false;
	hc_settle(&h);
	CHECK(bytes_equal(&h.rx, part, sizeof(part)));
	CHECK(!h.rx_closed);
	CHECK(h.closed);
	CHECK_EQ_INT(w.workers[0].stats.closes[USH_CLOSE_UPSTREAM_RESET], 1);

	hc_free(&h);
	hc_client_free(&cl);
	hw_teardown(&w);
}

/* The idle timer runs from the last byte moved. */
static void
test_idle_timeout(void)
{
	static const unsigned char ping[] = "ping";
	struct hw w;
	struct hc_client cl;
	struct hc h;
	uint64_t idle;

	REQUIRE(hw_setup(&w, &(struct hw_opts){.n_certs = 1}) == 0);
	REQUIRE(hc_client_init(&cl, TLS1_3_VERSION, NULL, 0) == 0);
	REQUIRE(hc_open(&h, &w, 0, &cl, NULL, NULL) == 0);
	REQUIRE(hc_establish(&h) == 0);
	idle = w.timeouts.idle_ms;
	CHECK_EQ_INT(h.c.deadline_ms, w.now + idle);

	w.now += idle - 1;
	ush_conn_on_timeout(&h.c);
	CHECK_EQ_INT(h.c.state, USH_CONN_RELAY);

	h.tx = ping;
	h.tx_len = sizeof(ping);
	hc_settle(&h);
	CHECK_EQ_INT(h.c.deadline_ms, w.now + idle);

	w.now += idle - 1;
	ush_conn_on_timeout(&h.c);
	CHECK_EQ_INT(h.c.state, USH_CONN_RELAY);

	w.now += 1;
	ush_conn_on_timeout(&h.c);
	hc_pump(&h);
	CHECK(h.closed);
	CHECK_EQ_INT(h.c.reason, USH_CLOSE_IDLE_TIMEOUT);
	CHECK_EQ_INT(w.workers[0].stats.closes[USH_CLOSE_IDLE_TIMEOUT], 1);

	hc_free(&h);
	hc_client_free(&cl);
	hw_teardown(&w);
}

/* Draining: a quiet relay says close_notify and goes. */
static void
test_shutdown_drains_relay(void)
{
	struct hw w;
	struct hc_client cl;
	struct hc h;

	REQUIRE(hw_setup(&w, &(struct hw_opts){.n_certs = 1}) == 0);
	REQUIRE(hc_client_init(&cl, TLS1_3_VERSION, NULL, 0) == 0);
	REQUIRE(hc_open(&h, &w, 0, &cl, NULL, NULL) == 0);
	REQUIRE(hc_establish(&h) == 0);

	ush_conn_shutdown(&h.c);
	CHECK_EQ_INT(h.c.state, USH_CONN_RELAY);
	CHECK(h.c.deadline_ms <= w.now + 1000);

	w.now = h.c.deadline_ms;
	ush_conn_on_timeout(&h.c);
	hc_settle(&h);
	CHECK(h.rx_closed);
	CHECK(h.closed);
	CHECK_EQ_INT(h.c.reason, USH_CLOSE_SHUTDOWN);

	hc_free(&h);
	hc_client_free(&cl);
	hw_teardown(&w);
}

/* A client that vanishes mid-relay. */
static void
test_client_reset_in_relay(void)
{
	struct hw w;
	struct hc_client cl;
	struct hc h;

	REQUIRE(hw_setup(&w, &(struct hw_opts){.n_certs = 1}) == 0);
	REQUIRE(hc_client_init(&cl, TLS1_3_VERSION, NULL, 0) == 0);
	REQUIRE(hc_open(&h, &w, 0, &cl, NULL, NULL) == 0);
	REQUIRE(hc_establish(&h) == 0);

	ush_conn_on_client_error(&h.c, ECONNRESET);
	CHECK(ush_conn_wants(&h.c) == USH_WANT_CLOSE);
	CHECK_EQ_INT(h.c.reason, USH_CLOSE_CLIENT_RESET);

	hc_free(&h);
	hc_client_free(&cl);
	hw_teardown(&w);
}

/* A TLS 1.3 key update asked by the client is answered, mid-relay. */
static void
test_key_update(void)
{
	static const unsigned char req[] = "after the key update", resp[] = "answer";
	struct hw w;
	struct hc_client cl;
	struct hc h;
	size_t sent;

	REQUIRE(hw_setup(&w, &(struct hw_opts){.n_certs = 1}) == 0);
	REQUIRE(hc_client_init(&cl, TLS1_3_VERSION, NULL, 0) == 0);
	REQUIRE(hc_open(&h, &w, 0, &cl, NULL, NULL) == 0);
	REQUIRE(hc_establish(&h) == 0);
	sent = h.sent_to_client;

	REQUIRE(SSL_key_update(h.ssl, SSL_KEY_UPDATE_REQUESTED) == 1);
	h.tx = req;
	h.tx_len = sizeof(req);
	hc_settle(&h);
	CHECK(bytes_equal(&h.up_rx, req, sizeof(req)));
	CHECK(h.sent_to_client > sent); /* our own KeyUpdate, unprompted by upstream */

	h.up_tx = resp;
	h.up_tx_len = sizeof(resp);
	hc_settle(&h);
	CHECK(bytes_equal(&h.rx, resp, sizeof(resp)));
	CHECK_EQ_INT(h.c.state, USH_CONN_RELAY);
	CHECK(hc_holds_no_buffers(&h));

	hc_free(&h);
	hc_client_free(&cl);
	hw_teardown(&w);
}

int
main(void)
{
	RUN(test_relay_tls12);
	RUN(test_relay_tls13);
	RUN(test_relay_one_mib_with_backpressure);
	RUN(test_proxy_v1_first);
	RUN(test_proxy_v2_first);
	RUN(test_client_half_close);
	RUN(test_upstream_reset);
	RUN(test_idle_timeout);
	RUN(test_shutdown_drains_relay);
	RUN(test_client_reset_in_relay);
	RUN(test_key_update);
	return check_done();
}
