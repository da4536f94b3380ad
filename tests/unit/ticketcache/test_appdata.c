/*
 * The appdata codec: what goes in comes out, and any other byte string is
 * refused without reading past its end (run under ASan to see the latter).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tkc.h"

static struct tkc_appdata
sample(const char *server)
{
	struct tkc_appdata ad = {0};

	ad.listener_tag = tkc_listener_tag("public-https");
	ad.first_handshake_s = 1700000123;
	ad.server_id_len = strlen(server);
	memcpy(ad.server_id, server, ad.server_id_len);
	return ad;
}

static void
test_round_trip(void)
{
	struct tkc_appdata in = sample("backend-a:8443"), out;
	unsigned char buf[TKC_APPDATA_MAX];
	int len = tkc_appdata_encode(&in, buf, sizeof(buf));

	REQUIRE(len > 0);
	CHECK_EQ_INT(tkc_appdata_decode(buf, (size_t)len, &out), 0);
	CHECK(out.listener_tag == in.listener_tag);
	CHECK(out.first_handshake_s == in.first_handshake_s);
	CHECK_EQ_INT(out.server_id_len, in.server_id_len);
	CHECK(memcmp(out.server_id, in.server_id, in.server_id_len) == 0);
}

static void
test_round_trip_without_server(void)
{
	struct tkc_appdata in = sample(""), out;
	unsigned char buf[TKC_APPDATA_MAX];
	int len = tkc_appdata_encode(&in, buf, sizeof(buf));

	REQUIRE(len > 0);
	CHECK_EQ_INT(tkc_appdata_decode(buf, (size_t)len, &out), 0);
	CHECK_EQ_INT(out.server_id_len, 0);
	CHECK(out.listener_tag == in.listener_tag);
}

static void
test_longest_server_id_fits(void)
{
	struct tkc_appdata in = sample(""), out;
	unsigned char buf[TKC_APPDATA_MAX];
	int len;

	memset(in.server_id, 'x', TKC_SERVER_ID_MAX);
	in.server_id_len = TKC_SERVER_ID_MAX;
	len = tkc_appdata_encode(&in, buf, sizeof(buf));
	REQUIRE(len > 0);
	CHECK(len <= TKC_APPDATA_MAX);
	CHECK_EQ_INT(tkc_appdata_decode(buf, (size_t)len, &out), 0);
	CHECK_EQ_INT(out.server_id_len, TKC_SERVER_ID_MAX);
}

/* Each prefix lives in its own allocation so ASan sees any overread. */
static void
test_every_truncation_fails(void)
{
	struct tkc_appdata in = sample("backend-b"), out;
	unsigned char buf[TKC_APPDATA_MAX];
	int len = tkc_appdata_encode(&in, buf, sizeof(buf));

	REQUIRE(len > 0);
	for (int cut = 0; cut < len; cut++) {
		unsigned char *copy = malloc(cut > 0 ? (size_t)cut : 1);

		REQUIRE(copy != NULL);
		memcpy(copy, buf, (size_t)cut);
		CHECK_EQ_INT(tkc_appdata_decode(copy, (size_t)cut, &out), -EINVAL);
		free(copy);
	}
}

static void
test_trailing_bytes_fail(void)
{
	struct tkc_appdata in = sample("backend-c"), out;
	unsigned char buf[TKC_APPDATA_MAX + 1];
	int len = tkc_appdata_encode(&in, buf, sizeof(buf));

	REQUIRE(len > 0);
	buf[len] = 0;
	CHECK_EQ_INT(tkc_appdata_decode(buf, (size_t)len + 1, &out), -EINVAL);
}

static void
test_unknown_version_is_eproto(void)
{
	struct tkc_appdata in = sample("backend-d"), out;
	unsigned char buf[TKC_APPDATA_MAX];
	int len = tkc_appdata_encode(&in, buf, sizeof(buf));

	REQUIRE(len > 0);
	CHECK_EQ_INT(buf[0], TKC_APPDATA_VERSION);
	buf[0] = TKC_APPDATA_VERSION + 1;
	CHECK_EQ_INT(tkc_appdata_decode(buf, (size_t)len, &out), -EPROTO);
	buf[0] = 0;
	CHECK_EQ_INT(tkc_appdata_decode(buf, (size_t)len, &out), -EPROTO);
	buf[0] = 0xff;
	CHECK_EQ_INT(tkc_appdata_decode(buf, 1, &out), -EPROTO);
}

static void
test_oversize_server_id_rejected(void)
{
	struct tkc_appdata in = sample(""), out;
	unsigned char buf[TKC_APPDATA_MAX];
	int len;

	in.server_id_len = TKC_SERVER_ID_MAX + 1;
	CHECK_EQ_INT(tkc_appdata_encode(&in, buf, sizeof(buf)), -EINVAL);

	/* A record that claims a longer id than any build writes. */
	in.server_id_len = TKC_SERVER_ID_MAX;
	memset(in.server_id, 'y', TKC_SERVER_ID_MAX);
	len = tkc_appdata_encode(&in, buf, sizeof(buf));
	REQUIRE(len > 0);
	buf[17] = TKC_SERVER_ID_MAX + 1;
	CHECK_EQ_INT(tkc_appdata_decode(buf, (size_t)len + 1, &out), -EINVAL);
	buf[17] = 0xff;
	CHECK_EQ_INT(tkc_appdata_decode(buf, sizeof(buf), &out), -EINVAL);
}

static void
test_encode_needs_room(void)
{
	struct tkc_appdata in = sample("backend-e");
	unsigned char buf[TKC_APPDATA_MAX];
	int len = tkc_appdata_encode(&in, buf, sizeof(buf));

	REQUIRE(len > 0);
	CHECK_EQ_INT(tkc_appdata_encode(&in, buf, (size_t)len - 1), -EINVAL);
	CHECK_EQ_INT(tkc_appdata_encode(&in, buf, (size_t)len), len);
}

static void
test_listener_tags(void)
{
	CHECK(tkc_listener_tag("a") == tkc_listener_tag("a"));
	CHECK(tkc_listener_tag("a") != tkc_listener_tag("b"));
	CHECK(tkc_listener_tag("public-https") != tkc_listener_tag("admin-https"));
	CHECK(tkc_listener_tag("") != tkc_listener_tag("a"));
}

int
main(void)
{
	RUN(test_round_trip);
	RUN(test_round_trip_without_server);
	RUN(test_longest_server_id_fits);
	RUN(test_every_truncation_fails);
	RUN(test_trailing_bytes_fail);
	RUN(test_unknown_version_is_eproto);
	RUN(test_oversize_server_id_rejected);
	RUN(test_encode_needs_room);
	RUN(test_listener_tags);
	return check_done();
}
