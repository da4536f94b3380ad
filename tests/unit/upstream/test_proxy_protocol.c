/*
 * PROXY protocol headers, byte for byte against headers worked out by hand
 * from the specification.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "check.h"
#include "upstream.h"

static struct sockaddr_in
ipv4(const char *ip, uint16_t port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};

	inet_pton(AF_INET, ip, &sin.sin_addr);
	return sin;
}

static struct sockaddr_in6
ipv6(const char *ip, uint16_t port)
{
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(port)};

	inet_pton(AF_INET6, ip, &sin6.sin6_addr);
	return sin6;
}

/* Write a v1 header into buf and compare it with want. */
static void
check_v1(const struct ush_proxy_info *info, const char *want)
{
	char buf[USH_PROXY_V1_MAX];
	int len = ush_proxy_v1(info, buf, sizeof(buf));

	CHECK_EQ_INT(len, strlen(want));
	CHECK(len > 0 && memcmp(buf, want, (size_t)len) == 0);
}

static void
test_v1_ipv4(void)
{
	struct sockaddr_in client = ipv4("192.168.0.1", 56324);
	struct sockaddr_in local = ipv4("10.0.0.1", 443);
	struct ush_proxy_info info = {
		.client = (struct sockaddr *)&client,
		.local = (struct sockaddr *)&local,
		.sni = "example.com", /* v1 has no room for it */
	};

	check_v1(&info, "PROXY TCP4 192.168.0.1 10.0.0.1 56324 443\r\n");
}

static void
test_v1_ipv6(void)
{
	struct sockaddr_in6 client = ipv6("2001:db8::1", 40000);
	struct sockaddr_in6 local = ipv6("::1", 8443);
	struct ush_proxy_info info = {
		.client = (struct sockaddr *)&client,
		.local = (struct sockaddr *)&local,
	};

	check_v1(&info, "PROXY TCP6 2001:db8::1 ::1 40000 8443\r\n");
}

/* The longest line there is still fits USH_PROXY_V1_MAX. */
static void
test_v1_longest(void)
{
	const char *all_f = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe";
	struct sockaddr_in6 client = ipv6(all_f, 65535);
	struct sockaddr_in6 local = ipv6(all_f, 65534);
	struct ush_proxy_info info = {
		.client = (struct sockaddr *)&client,
		.local = (struct sockaddr *)&local,
	};

	check_v1(&info, "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe "
			"ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe 65535 65534\r\n");
}

/* An IPv4 client on a dual-stack socket is still an IPv4 client. */
static void
test_v1_mapped_and_mixed(void)
{
	struct sockaddr_in6 mapped = ipv6("::ffff:192.0.2.7", 1234);
	struct sockaddr_in local4 = ipv4("10.0.0.1", 443);
	struct sockaddr_in6 local6 = ipv6("2001:db8::5", 443);
	struct ush_proxy_info info = {
		.client = (struct sockaddr *)&mapped,
		.local = (struct sockaddr *)&local4,
	};

	check_v1(&info, "PROXY TCP4 192.0.2.7 10.0.0.1 1234 443\r\n");

	info.local = (struct sockaddr *)&local6;
	check_v1(&info, "PROXY TCP6 ::ffff:192.0.2.7 2001:db8::5 1234 443\r\n");

	info.client = (struct sockaddr *)&local4;
	check_v1(&info, "PROXY TCP6 ::ffff:10.0.0.1 2001:db8::5 443 443\r\n");
}

static void
test_v1_unknown(void)
{
	struct sockaddr_un unix_client = {.sun_family = AF_UNIX};
	struct sockaddr_in local = ipv4("10.0.0.1", 443);
	struct ush_proxy_info info = {.local = (struct sockaddr *)&local};

	check_v1(&info, "PROXY UNKNOWN\r\n");

	info.client = (struct sockaddr *)&unix_client;
	check_v1(&info, "PROXY UNKNOWN\r\n");
}

static void
test_v1_errors(void)
{
	struct sockaddr_in client = ipv4("192.168.0.1", 56324);
	struct sockaddr_in local = ipv4("10.0.0.1", 443);
	struct ush_proxy_info info = {
		.client = (struct sockaddr *)&client,
		.local = (struct sockaddr *)&local,
	};
	const char *want = "PROXY TCP4 192.168.0.1 10.0.0.1 56324 443\r\n";
	size_t len = strlen(want);
	char buf[USH_PROXY_V1_MAX];

	memset(buf, 'x', sizeof(buf));
	CHECK_EQ_INT(ush_proxy_v1(&info, buf, len - 1), -ENOSPC);
	CHECK_EQ_INT(ush_proxy_v1(&info, buf, 0), -ENOSPC);
	CHECK(buf[0] == 'x');

	/* Exactly the room it needs, and nothing written past it. */
	CHECK_EQ_INT(ush_proxy_v1(&info, buf, len), len);
	CHECK(memcmp(buf, want, len) == 0);
	CHECK(buf[len] == 'x');

	CHECK_EQ_INT(ush_proxy_v1(NULL, buf, sizeof(buf)), -EINVAL);
}

/* Write a v2 header and compare it with want. */
static void
check_v2(const struct ush_proxy_info *info, const unsigned char *want, size_t want_len)
{
	unsigned char buf[512];
	int len = ush_proxy_v2(info, buf, sizeof(buf));

	CHECK_EQ_INT(len, want_len);
	CHECK(len > 0 && memcmp(buf, want, want_len) == 0);
}

#define SIG 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a

/*
 * Every TLV: 16 header bytes, then 49 = 12 (addresses) + 5 (ALPN "h2") +
 * 14 (AUTHORITY "example.com") + 18 (SSL: flags, verify, version TLV).
 */
/* clang-format off */
static const unsigned char v2_ipv4_all[] = {
	SIG,
	0x21, 0x11, 0x00, 0x31,                         /* v2 PROXY, TCP4, 49 */
	0xc0, 0xa8, 0x00, 0x01,                         /* 192.168.0.1 */
	0x0a, 0x00, 0x00, 0x01,                         /* 10.0.0.1 */
	0xdc, 0x04, 0x01, 0xbb,                         /* 56324, 443 */
	0x01, 0x00, 0x02, 'h', '2',                     /* ALPN */
	0x02, 0x00, 0x0b, 'e', 'x', 'a', 'm', 'p', 'l', /* AUTHORITY */
	'e', '.', 'c', 'o', 'm',
	0x20, 0x00, 0x0f,                               /* SSL, 15 */
	0x01,                                           /* PP2_CLIENT_SSL */
	0x00, 0x00, 0x00, 0x01,                         /* verify: none */
	0x21, 0x00, 0x07, 'T', 'L', 'S', 'v', '1', '.', '3',
};

/* clang-format on */

static void
test_v2_ipv4_all_tlvs(void)
{
	static const unsigned char h2[] = {'h', '2'};
	struct sockaddr_in client = ipv4("192.168.0.1", 56324);
	struct sockaddr_in local = ipv4("10.0.0.1", 443);
	struct ush_proxy_info info = {
		.client = (struct sockaddr *)&client,
		.local = (struct sockaddr *)&local,
		.sni = "example.com",
		.alpn = h2,
		.alpn_len = sizeof(h2),
		.tls_version = "TLSv1.3",
	};

	check_v2(&info, v2_ipv4_all, sizeof(v2_ipv4_all));
}

/* No ALPN, no SNI, no version: 36 address bytes and a bare SSL TLV. */
/* clang-format off */
static const unsigned char v2_ipv6_bare[] = {
	SIG,
	0x21, 0x21, 0x00, 0x2c, /* v2 PROXY, TCP6, 44 */
	0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, /* 2001:db8::1 */
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* ::1 */
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x9c, 0x40, 0x20, 0xfb,                         /* 40000, 8443 */
	0x20, 0x00, 0x05, 0x01, 0x00, 0x00, 0x00, 0x01, /* SSL */
};

/* clang-format on */

static void
test_v2_ipv6_bare(void)
{
	struct sockaddr_in6 client = ipv6("2001:db8::1", 40000);
	struct sockaddr_in6 local = ipv6("::1", 8443);
	struct ush_proxy_info info = {
		.client = (struct sockaddr *)&client,
		.local = (struct sockaddr *)&local,
		.sni = "", /* an empty name is no name */
	};

	check_v2(&info, v2_ipv6_bare, sizeof(v2_ipv6_bare));
}

/* IPv6 with SNI and version, the IPv4 end mapped. */
/* clang-format off */
static const unsigned char v2_ipv6_mixed[] = {
	SIG,
	0x21, 0x21, 0x00, 0x3d, /* v2 PROXY, TCP6, 36 + 7 + 18 = 61 */
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* ::ffff:192.0.2.7 */
	0x00, 0x00, 0xff, 0xff, 0xc0, 0x00, 0x02, 0x07,
	0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, /* 2001:db8::5 */
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05,
	0x04, 0xd2, 0x01, 0xbb,                         /* 1234, 443 */
	0x02, 0x00, 0x04, 'a', '.', 'b', 'c',           /* AUTHORITY */
	0x20, 0x00, 0x0f, 0x01, 0x00, 0x00, 0x00, 0x01, /* SSL */
	0x21, 0x00, 0x07, 'T', 'L', 'S', 'v', '1', '.', '2',
};

/* clang-format on */

static void
test_v2_ipv6_mixed(void)
{
	struct sockaddr_in client = ipv4("192.0.2.7", 1234);
	struct sockaddr_in6 local = ipv6("2001:db8::5", 443);
	struct ush_proxy_info info = {
		.client = (struct sockaddr *)&client,
		.local = (struct sockaddr *)&local,
		.sni = "a.bc",
		.tls_version = "TLSv1.2",
	};

	check_v2(&info, v2_ipv6_mixed, sizeof(v2_ipv6_mixed));
}

/* Unknown addresses: family UNSPEC, no address block, TLVs still sent. */
/* clang-format off */
static const unsigned char v2_unspec[] = {
	SIG,
	0x21, 0x00, 0x00, 0x12, /* v2 PROXY, UNSPEC, 18 */
	0x20, 0x00, 0x0f, 0x01, 0x00, 0x00, 0x00, 0x01, /* SSL */
	0x21, 0x00, 0x07, 'T', 'L', 'S', 'v', '1', '.', '3',
};

/* clang-format on */

static void
test_v2_unspec(void)
{
	struct sockaddr_in6 local = ipv6("::1", 8443);
	struct ush_proxy_info info = {
		.local = (struct sockaddr *)&local,
		.tls_version = "TLSv1.3",
	};

	check_v2(&info, v2_unspec, sizeof(v2_unspec));
}

static void
test_v2_errors(void)
{
	static const unsigned char h2[] = {'h', '2'};
	struct sockaddr_in client = ipv4("192.168.0.1", 56324);
	struct sockaddr_in local = ipv4("10.0.0.1", 443);
	struct ush_proxy_info info = {
		.client = (struct sockaddr *)&client,
		.local = (struct sockaddr *)&local,
		.sni = "example.com",
		.alpn = h2,
		.alpn_len = sizeof(h2),
		.tls_version = "TLSv1.3",
	};
	size_t len = sizeof(v2_ipv4_all);
	unsigned char buf[sizeof(v2_ipv4_all) + 1];
	char *huge;

	memset(buf, 0xee, sizeof(buf));
	CHECK_EQ_INT(ush_proxy_v2(&info, buf, len - 1), -ENOSPC);
	CHECK_EQ_INT(ush_proxy_v2(&info, buf, 0), -ENOSPC);
	CHECK(buf[0] == 0xee);

	CHECK_EQ_INT(ush_proxy_v2(&info, buf, len), len);
	CHECK(memcmp(buf, v2_ipv4_all, len) == 0);
	CHECK(buf[len] == 0xee);

	CHECK_EQ_INT(ush_proxy_v2(NULL, buf, sizeof(buf)), -EINVAL);

	info.alpn = NULL;
	CHECK_EQ_INT(ush_proxy_v2(&info, buf, sizeof(buf)), -EINVAL);
	info.alpn = h2;

	/* A name too long for the 16-bit length field cannot be sent. */
	huge = malloc(70000);
	REQUIRE(huge != NULL);
	memset(huge, 'a', 69999);
	huge[69999] = '\0';
	info.sni = huge;
	CHECK_EQ_INT(ush_proxy_v2(&info, buf, sizeof(buf)), -EINVAL);

	/* One that fits the field but not the whole header either. */
	huge[65535 - 12 - 3] = '\0';
	CHECK_EQ_INT(ush_proxy_v2(&info, buf, sizeof(buf)), -EINVAL);
	free(huge);
}

int
main(void)
{
	RUN(test_v1_ipv4);
	RUN(test_v1_ipv6);
	RUN(test_v1_longest);
	RUN(test_v1_mapped_and_mixed);
	RUN(test_v1_unknown);
	RUN(test_v1_errors);
	RUN(test_v2_ipv4_all_tlvs);
	RUN(test_v2_ipv6_bare);
	RUN(test_v2_ipv6_mixed);
	RUN(test_v2_unspec);
	RUN(test_v2_errors);
	return check_done();
}
