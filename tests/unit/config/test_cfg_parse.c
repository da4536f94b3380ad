/*
 * Scalar syntax on its own: durations, addresses, names and the "did you
 * mean" helper. Table-driven, so a new rule is one more row.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "cfg_internal.h"
#include "check.h"

struct duration_row {
	const char *text;
	int rc;
	uint64_t ms;
};

static const struct duration_row durations[] = {
	{"250ms", 0, 250},
	{"0ms", 0, 0},
	{"0s", 0, 0},
	{"1s", 0, 1000},
	{"10s", 0, 10000},
	{"5m", 0, 300000},
	{"1h", 0, 3600000},
	{"2d", 0, 172800000},
	{"007s", 0, 7000},
	{"18446744073709551615ms", 0, UINT64_MAX},
	{"18446744073709551616ms", -EINVAL, 0}, /* one past UINT64_MAX */
	{"18446744073709552s", -EINVAL, 0},     /* overflows once scaled */
	{"213503982335d", -EINVAL, 0},
	{"", -EINVAL, 0},
	{"10", -EINVAL, 0},
	{"-1s", -EINVAL, 0},
	{"+1s", -EINVAL, 0},
	{"1.5s", -EINVAL, 0},
	{"1,5s", -EINVAL, 0},
	{"s", -EINVAL, 0},
	{"1 s", -EINVAL, 0},
	{"1sec", -EINVAL, 0},
	{"1S", -EINVAL, 0},
	{"1h30m", -EINVAL, 0},
	{"1us", -EINVAL, 0},
	{"1w", -EINVAL, 0},
	{" 1s", -EINVAL, 0},
	{"1s ", -EINVAL, 0},
};

static void
test_duration_table(void)
{
	for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
		const struct duration_row *r = &durations[i];
		uint64_t ms = 12345;
		int rc = cfg_parse_duration(r->text, &ms);

		if (rc != r->rc || (rc == 0 && ms != r->ms))
			printf("# duration '%s': rc %d ms %llu\n", r->text, rc,
			       (unsigned long long)ms);
		CHECK_EQ_INT(rc, r->rc);
		if (rc == 0)
			CHECK(ms == r->ms);
	}
}

static void
test_duration_reasons(void)
{
	uint64_t ms;

	CHECK(strstr(cfg_syntax_duration("10", &ms), "has no unit") != NULL);
	CHECK(strstr(cfg_syntax_duration("-3s", &ms), "is negative") != NULL);
	CHECK(strstr(cfg_syntax_duration("99999999999999999999s", &ms), "too large") != NULL);
	CHECK(strstr(cfg_syntax_duration("2x", &ms), "unknown unit") != NULL);
	CHECK(strstr(cfg_syntax_duration("0.5s", &ms), "not a whole number") != NULL);
	CHECK(strstr(cfg_syntax_duration("soon", &ms), "not a duration") != NULL);
}

static void
test_format_duration(void)
{
	static const struct {
		uint64_t ms;
		const char *text;
	} rows[] = {{0, "0ms"},      {1500, "1500ms"}, {90000, "90s"},   {60000, "1m"},
		    {3600000, "1h"}, {86400000, "1d"}, {90000000, "25h"}};

	char buf[32];

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		cfg_format_duration(rows[i].ms, buf, sizeof(buf));
		CHECK_EQ_STR(buf, rows[i].text);
	}
}

static void
test_addr_ipv4(void)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	socklen_t len = 0;

	REQUIRE(cfg_parse_addr("127.0.0.1:8443", &ss, &len) == 0);
	CHECK_EQ_INT(ss.ss_family, AF_INET);
	CHECK_EQ_INT(len, sizeof(struct sockaddr_in));
	CHECK_EQ_INT(ntohs(sin->sin_port), 8443);
	CHECK(sin->sin_addr.s_addr == htonl(INADDR_LOOPBACK));
}

static void
test_addr_ipv6(void)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t len = 0;

	REQUIRE(cfg_parse_addr("[::1]:443", &ss, &len) == 0);
	CHECK_EQ_INT(ss.ss_family, AF_INET6);
	CHECK_EQ_INT(len, sizeof(struct sockaddr_in6));
	CHECK_EQ_INT(ntohs(sin6->sin6_port), 443);
	CHECK(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
}

static void
test_addr_rejects(void)
{
	static const char *const bad[] = {
		"",
		"127.0.0.1",
		"127.0.0.1:",
		"127.0.0.1:0",
		"1.2.3.4:65536",
		"1.2.3.4:-1",
		"1.2.3.4:80x",
		"localhost:80",
		"::1:80",
		"[::1]",
		"[::1]80",
		"[::1:80",
		"[zz]:80",
		"256.1.1.1:80",
		":80",
		"1.2.3.4:99999999999999999999",
		"[]:80",
		"[::1]:",
	};
	struct sockaddr_storage ss;
	socklen_t len;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = cfg_parse_addr(bad[i], &ss, &len);

		if (rc != -EINVAL)
			printf("# accepted '%s'\n", bad[i]);
		CHECK_EQ_INT(rc, -EINVAL);
	}
}

static void
test_addr_reasons(void)
{
	struct sockaddr_storage ss;
	socklen_t len;

	CHECK_EQ_STR(cfg_syntax_addr("127.0.0.1", &ss, &len),
		     "has no port (expected HOST:PORT or [IPv6]:PORT)");
	CHECK(strstr(cfg_syntax_addr("::1:80", &ss, &len), "brackets") != NULL);
	CHECK(strstr(cfg_syntax_addr("1.2.3.4:0", &ss, &len), "1..65535") != NULL);
	CHECK(strstr(cfg_syntax_addr("example.com:443", &ss, &len), "not resolved") != NULL);
}

static void
test_ipv4_prefix(void)
{
	uint32_t addr = 0;
	unsigned prefix = 0;

	REQUIRE(cfg_syntax_ipv4_prefix("10.77.0.2/24", &addr, &prefix) == NULL);
	CHECK(addr == htonl(0x0a4d0002));
	CHECK_EQ_INT(prefix, 24);
	CHECK(cfg_syntax_ipv4_prefix("10.77.0.2", &addr, &prefix) != NULL);
	CHECK(cfg_syntax_ipv4_prefix("10.77.0.2/0", &addr, &prefix) != NULL);
	CHECK(cfg_syntax_ipv4_prefix("10.77.0.2/33", &addr, &prefix) != NULL);
	CHECK(cfg_syntax_ipv4_prefix("0.0.0.0/8", &addr, &prefix) != NULL);
	CHECK(cfg_syntax_ipv4_prefix("10.77.0/24", &addr, &prefix) != NULL);
}

static void
test_names(void)
{
	CHECK(cfg_syntax_name("app-1") == NULL);
	CHECK(cfg_syntax_name("a.b_c-D9") == NULL);
	CHECK(cfg_syntax_name("") != NULL);
	CHECK(cfg_syntax_name("has space") != NULL);
	CHECK(cfg_syntax_name("slash/") != NULL);
	CHECK(cfg_syntax_name("ünï") != NULL);
	CHECK(cfg_syntax_name("123456789012345678901234567890123456789012345678901234567890123") ==
	      NULL);
	CHECK(cfg_syntax_name("1234567890123456789012345678901234567890123456789012345678901234") !=
	      NULL);
}

static void
test_closest_name(void)
{
	static const char *const keys[] = {"workers", "engine", "listeners", "pools", "tickets"};

	CHECK_EQ_STR(cfg_closest_name("listner", keys, 5), "listeners");
	CHECK_EQ_STR(cfg_closest_name("listenres", keys, 5), "listeners");
	CHECK_EQ_STR(cfg_closest_name("pool", keys, 5), "pools");
	CHECK_EQ_STR(cfg_closest_name("worker", keys, 5), "workers");
	CHECK_EQ_STR(cfg_closest_name("tikets", keys, 5), "tickets");
	CHECK(cfg_closest_name("zzz", keys, 5) == NULL);
	CHECK(cfg_closest_name("frobnicate", keys, 5) == NULL);
}

static void
test_resolve_path(void)
{
	char *p = cfg_resolve_path("/etc/usher", "certs/a.pem");

	CHECK_EQ_STR(p, "/etc/usher/certs/a.pem");
	free(p);
	p = cfg_resolve_path("/etc/usher", "/srv/a.pem");
	CHECK_EQ_STR(p, "/srv/a.pem");
	free(p);
	p = cfg_resolve_path("/", "a.pem");
	CHECK_EQ_STR(p, "/a.pem");
	free(p);
}

int
main(void)
{
	RUN(test_duration_table);
	RUN(test_duration_reasons);
	RUN(test_format_duration);
	RUN(test_addr_ipv4);
	RUN(test_addr_ipv6);
	RUN(test_addr_rejects);
	RUN(test_addr_reasons);
	RUN(test_ipv4_prefix);
	RUN(test_names);
	RUN(test_closest_name);
	RUN(test_resolve_path);
	return check_done();
}
