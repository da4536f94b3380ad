/*
 * The handshake phase of ush_conn: ALPN and SNI selection, and each way a
 * handshake can fail (garbage, a client that leaves, a client that never
 * finishes, no server to go to, usher stopping).
 */
#include <string.h>

#include <openssl/x509.h>

#include "check.h"
#include "harness.h"

/* ---- ALPN ----------------------------------------------------------------- */

/* The protocol selected for a client offering offer, or "" for none. */
static void
alpn_selected(const unsigned char *offer, size_t offer_len, char *out, size_t cap)
{
	struct hw w;
	struct hc_client cl;
	struct hc h;
	const unsigned char *sel = NULL;
	unsigned len = 0;

	out[0] = '\0';
	REQUIRE(hw_setup(&w, &(struct hw_opts){.n_certs = 1, .alpn = true}) == 0);
	REQUIRE(hc_client_init(&cl, TLS1_3_VERSION, offer, offer_len) == 0);
	REQUIRE(hc_open(&h, &w, 0, &cl, NULL, NULL) == 0);
	REQUIRE(hc_establish(&h) == 0);

	SSL_get0_alpn_selected(h.ssl, &sel, &len);
	if (sel != NULL && len < cap) {
		memcpy(out, sel, len);
		out[len] = '\0';
	}

	/* Both ends agree. */
	SSL_get0_alpn_selected(h.c.ssl, &sel, &len);
	CHECK_EQ_INT(len, strlen(out));

	hc_free(&h);
	hc_client_free(&cl);
	hw_teardown(&w);
}

/*
 * An OpenSSL client lists AES-256-GCM first; the server's order wins and
 * picks the cheaper SHA-256 suite.
 */
static void
test_tls13_suite_is_aes128(void)
{
	struct hw w;
	struct hc_client cl;
	struct hc h;

	REQUIRE(hw_setup(&w, &(struct hw_opts){.n_certs = 1}) == 0);
	REQUIRE(hc_client_init(&cl, TLS1_3_VERSION, NULL, 0) == 0);
	REQUIRE(hc_open(&h, &w, 0, &cl, NULL, NULL) == 0);
	REQUIRE(hc_establish(&h) == 0);

	CHECK_EQ_STR(SSL_get_cipher_name(h.ssl), "TLS_AES_128_GCM_SHA256");

	hc_free(&h);
	hc_client_free(&cl);
	hw_teardown(&w);
}

static void
test_alpn_server_preference(void)
{
	static const unsigned char offer[] = "\x08http/1.1\x02h2";
	char sel[32] = "?";

	alpn_selected(offer, sizeof(offer) - 1, sel, sizeof(sel));
	CHECK_EQ_STR(sel, "h2");
}

static void
test_alpn_single_common(void)
{
	static const unsigned char offer[] = "\x06spdy/3\x08http/1.1";
	char sel[32] = "?";

	alpn_selected(offer, sizeof(offer) - 1, sel, sizeof(sel));
	CHECK_EQ_STR(sel, "http/1.1");
}

static void
test_alpn_no_overlap_goes_on(void)
{
	static const unsigned char offer[] = "\x03"
					     "foo";
	char sel[32] = "?";

	alpn_selected(offer, sizeof(offer) - 1, sel, sizeof(sel));
	CHECK_EQ_STR(sel, "");
}

/* ---- SNI ------------------------------------------------------------------ */

static void
served_name(const char *sni, char *cn, size_t cap)
{
	struct hw w;
	struct hc_client cl;
	struct hc h;
	X509 *cert;

	cn[0] = '\0';
	REQUIRE(hw_setup(&w, &(struct hw_opts){.n_certs = 3}) == 0);
	REQUIRE(hc_client_init(&cl, TLS1_3_VERSION, NULL, 0) == 0);
	REQUIRE(hc_open(&h, &w, 0, &cl, sni, NULL) == 0);
	REQUIRE(hc_establish(&h) == 0);

	cert = SSL_get0_peer_certificate(h.ssl);
	if (cert != NULL)
		X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn,
					  (int)cap);

	hc_free(&h);
	hc_client_free(&cl);
	hw_teardown(&w);
}

static void
test_sni_wildcard(void)
{
	char cn[64];

	served_name("www.example.test", cn, sizeof(cn));
	CHECK_EQ_STR(cn, "*.example.test");
}

static void
test_sni_exact_third(void)
{
	char cn[64];

	served_name("api.test", cn, sizeof(cn));
	CHECK_EQ_STR(cn, "api.test");
}

static void
test_sni_unknown_gets_default(void)
{
	char cn[64];

	served_name("nowhere.test", cn, sizeof(cn));
	CHECK_EQ_STR(cn, "default.test");

	/* A wildcard covers one label only. */
	served_name("a.b.example.test", cn, sizeof(cn));
	CHECK_EQ_STR(cn, "default.test");
}

static void
test_sni_absent_gets_default(void)
{
	char cn[64];

	served_name(NULL, cn, sizeof(cn));
	CHECK_EQ_STR(cn, "default.test");
}

/* ---- failures ------------------------------------------------------------- */

struct failure_case {
	const char *name;
	const unsigned char *bytes;
	size_t len;
};

static void
test_garbage_fails_safely(void)
{
	static const unsigned char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	static const unsigned char bad_hello[] = {0x16, 0x03, 0x01, 0x00, 0x08, 0x01, 0x00,
						  0x00, 0x04, 0xff, 0xff, 0xff, 0xff};
	static const unsigned char huge_record[] = {0x16, 0x03, 0x01, 0xff, 0xff, 0x01};
	static const unsigned char zeros[64] = {0};
	const struct failure_case cases[] = {
		{"http", http, sizeof(http) - 1},
		{"bad hello", bad_hello, sizeof(bad_hello)},
		{"huge record", huge_record, sizeof(huge_record)},
		{"zeros", zeros, sizeof(zeros)},
	};
	struct hw w;
	struct hc_client cl;
	int alerts = 0;

	REQUIRE(hw_setup(&w, &(struct hw_opts){.n_certs = 1}) == 0);
	REQUIRE(hc_client_init(&cl, TLS1_3_VERSION, NULL, 0) == 0);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct hc h;

		printf("# case %s\n", cases[i].name);
		REQUIRE(hc_open(&h, &w, 0, &cl, NULL, NULL) == 0);
		ush_conn_on_client_data(&h.c, cases[i].bytes, cases[i].len);
		CHECK_EQ_INT(h.c.reason, USH_CLOSE_HANDSHAKE_FAILED);
		CHECK(h.c.state == USH_CONN_CLOSING || h.c.state == USH_CONN_CLOSED);
		CHECK(h.c.tls_error != 0);

		/* Whatever went out is one alert record; then the conn closes. */
		if (h.c.state == USH_CONN_CLOSING) {
			size_t len;
			const unsigned char *p = ush_buf_peek(&h.c.to_client, &len);

			CHECK_EQ_INT(len, 7);
			CHECK(p != NULL && p[0] == 0x15);
			alerts++;
		}

		/* Bytes after the failure are dropped, not parsed. */
		ush_conn_on_client_data(&h.c, cases[i].bytes, cases[i].len);
		hc_pump(&h);
		CHECK(h.closed);
		hc_free(&h);
	}

	/* A malformed hello at least is answered with an alert. */
	CHECK(alerts >= 1);
	CHECK_EQ_INT(w.workers[0].stats.handshake_failures, 4);
	CHECK_EQ_INT(w.workers[0].stats.closes[USH_CLOSE_HANDSHAKE_FAILED], 4);

	hc_client_free(&cl);
	hw_teardown(&w);
}

/* The client sends its hello and leaves. */
static void
test_client_eof_mid_handshake(void)
{
	struct hw w;
	struct hc_client cl;
	struct hc h;

	REQUIRE(hw_setup(&w, &(struct hw_opts){.n_certs = 1}) == 0);
	REQUIRE(hc_client_init(&cl, TLS1_3_VERSION, NULL, 0) == 0);
	REQUIRE(hc_open(&h, &w, 0, &cl, NULL, NULL) == 0);

	SSL_do_handshake(h.ssl);
	hc_pump(&h);
	CHECK_EQ_INT(h.c.state, USH_CONN_HANDSHAKE);

	h.tcp_eof = true;
	hc_pump(&h);
	CHECK(h.closed);
	CHECK_EQ_INT(h.c.reason, USH_CLOSE_CLIENT_RESET);
	CHECK_EQ_INT(w.workers[0].stats.handshake_failures, 0);

	hc_free(&h);
	hc_client_free(&cl);
	hw_teardown(&w);
}

/* Half a ClientHello, then EOF. */
static void
test_client_eof_inside_hello(void)
{
	unsigned char hello[4096];
	struct hw w;
	struct hc_client cl;
	struct hc h;
	int n;

	REQUIRE(hw_setup(&w, &(struct hw_opts){.n_certs = 1}) == 0);
	REQUIRE(hc_client_init(&cl, TLS1_2_VERSION, NULL, 0) == 0);
	REQUIRE(hc_open(&h, &w, 0, &cl, NULL, NULL) == 0);

	SSL_do_handshake(h.ssl);
	n = BIO_read(h.net, hello, sizeof(hello));
	REQUIRE(n > 20);
	ush_conn_on_client_data(&h.c, hello, (size_t)n / 2);
	CHECK_EQ_INT(h.c.state, USH_CONN_HANDSHAKE);
	CHECK(h.c.from_client.data == NULL); /* TLS took the partial record */

	ush_conn_on_client_eof(&h.c);
	CHECK(ush_conn_wants(&h.c) == USH_WANT_CLOSE);
	CHECK_EQ_INT(h.c.reason, USH_CLOSE_CLIENT_RESET);

	hc_free(&h);
	hc_client_free(&cl);
	hw_teardown(&w);
}

static void
test_handshake_timeout(void)
{
	struct hw w;
	struct hc_client cl;
	struct hc h;

	REQUIRE(hw_setup(&w, &(struct hw_opts){.n_certs = 1}) == 0);
	REQUIRE(hc_client_init(&cl, TLS1_3_VERSION, NULL, 0) == 0);
	REQUIRE(hc_open(&h, &w, 0, &cl, NULL, NULL) == 0);
	CHECK_EQ_INT(h.c.deadline_ms, w.now + w.timeouts.handshake_ms);

	SSL_do_handshake(h.ssl);
	hc_pump(&h);

	/* Early and repeated calls change nothing. */
	w.now += w.timeouts.handshake_ms - 1;
	ush_conn_on_timeout(&h.c);
	ush_conn_on_timeout(&h.c);
	CHECK_EQ_INT(h.c.state, USH_CONN_HANDSHAKE);

	w.now += 1;
	ush_conn_on_timeout(&h.c);
	hc_pump(&h);
	CHECK(h.closed);
	CHECK_EQ_INT(h.c.reason, USH_CLOSE_HANDSHAKE_TIMEOUT);
	CHECK_EQ_INT(h.c.deadline_ms, 0);
	CHECK_EQ_INT(w.workers[0].stats.closes[USH_CLOSE_HANDSHAKE_TIMEOUT], 1);

	hc_free(&h);
	hc_client_free(&cl);
	hw_teardown(&w);
}

static void
test_shutdown_during_handshake(void)
{
	struct hw w;
	struct hc_client cl;
	struct hc h;

	REQUIRE(hw_setup(&w, &(struct hw_opts){.n_certs = 1}) == 0);
	REQUIRE(hc_client_init(&cl, TLS1_3_VERSION, NULL, 0) == 0);
	REQUIRE(hc_open(&h, &w, 0, &cl, NULL, NULL) == 0);

	SSL_do_handshake(h.ssl);
	hc_pump(&h);
	ush_conn_shutdown(&h.c);
	CHECK(ush_conn_wants(&h.c) == USH_WANT_CLOSE);
	CHECK_EQ_INT(h.c.reason, USH_CLOSE_SHUTDOWN);

	hc_free(&h);
	hc_client_free(&cl);
	hw_teardown(&w);
}

/* Every server down: the handshake completes, then the conn gives up. */
static void
test_no_usable_server(void)
{
	struct hw w;
	struct hc_client cl;
	struct hc h;

	REQUIRE(hw_setup(&w, &(struct hw_opts){.n_certs = 1}) == 0);
	REQUIRE(hc_client_init(&cl, TLS1_2_VERSION, NULL, 0) == 0);
	hw_set_up(&w, 0, false);
	hw_set_up(&w, 1, false);
	REQUIRE(hc_open(&h, &w, 0, &cl, NULL, NULL) == 0);

	hc_handshake(&h);
	hc_settle(&h);
	CHECK(SSL_is_init_finished(h.ssl));
	CHECK(h.closed);
	CHECK_EQ_INT(h.n_connects, 0);
	CHECK_EQ_INT(h.c.reason, USH_CLOSE_NO_SERVER);
	CHECK_EQ_INT(w.workers[0].stats.closes[USH_CLOSE_NO_SERVER], 1);

	hc_free(&h);
	hc_client_free(&cl);
	hw_teardown(&w);
}

/* Only the configured versions are spoken. */
static void
version_refused(unsigned listener_protocols, int client_version)
{
	struct hw w;
	struct hc_client cl;
	struct hc h;

	REQUIRE(hw_setup(&w, &(struct hw_opts){.n_certs = 1, .protocols = listener_protocols}) ==
		0);
	REQUIRE(hc_client_init(&cl, client_version, NULL, 0) == 0);
	/* OpenSSL 3.0 clients speak TLS 1.1 only at security level 0. */
	SSL_CTX_set_security_level(cl.ctx, 0);
	REQUIRE(hc_open(&h, &w, 0, &cl, NULL, NULL) == 0);

	CHECK(hc_handshake(&h) != 0);
	hc_settle(&h);
	CHECK(h.closed);
	CHECK_EQ_INT(h.c.reason, USH_CLOSE_HANDSHAKE_FAILED);

	hc_free(&h);
	hc_client_free(&cl);
	hw_teardown(&w);
}

static void
test_versions_enforced(void)
{
	version_refused(CFG_PROTO_TLS13, TLS1_2_VERSION);
	version_refused(CFG_PROTO_TLS12, TLS1_3_VERSION);
	version_refused(CFG_PROTO_TLS12 | CFG_PROTO_TLS13, TLS1_1_VERSION);
}

int
main(void)
{
	RUN(test_tls13_suite_is_aes128);
	RUN(test_alpn_server_preference);
	RUN(test_alpn_single_common);
	RUN(test_alpn_no_overlap_goes_on);
	RUN(test_sni_wildcard);
	RUN(test_sni_exact_third);
	RUN(test_sni_unknown_gets_default);
	RUN(test_sni_absent_gets_default);
	RUN(test_garbage_fails_safely);
	RUN(test_client_eof_mid_handshake);
	RUN(test_client_eof_inside_hello);
	RUN(test_handshake_timeout);
	RUN(test_shutdown_during_handshake);
	RUN(test_no_usable_server);
	RUN(test_versions_enforced);
	return check_done();
}
