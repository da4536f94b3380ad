/*
 * proxy_header: PROXY protocol v1 and v2, read strictly enough that a test
 * notices when usher writes a malformed header.
 */
#include "proxy_header.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define V1_MAX 107 /* the spec's longest line, CRLF included */

static const unsigned char v2_signature[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
					       0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

enum {
	PP2_TYPE_ALPN = 0x01,
	PP2_TYPE_AUTHORITY = 0x02,
	PP2_TYPE_SSL = 0x20,
	PP2_SUBTYPE_SSL_VERSION = 0x21,
};

/* Whether buf so far agrees with prefix; len may be shorter. */
static bool
starts_like(const unsigned char *buf, size_t len, const void *prefix, size_t prefix_len)
{
	return memcmp(buf, prefix, len < prefix_len ? len : prefix_len) == 0;
}

static bool
parse_port(const char *s, unsigned *port)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return false;

	v = strtoul(s, &end, 10);
	if (*end != '\0' || v > 65535)
		return false;

	*port = (unsigned)v;
	return true;
}

/* "TCP4 src dst sport dport" after "PROXY ". */
static int
parse_v1_fields(char *line, struct tb_proxy_info *info)
{
	char *save = NULL, *tok[6];
	unsigned char addr[sizeof(struct in6_addr)];
	unsigned dst_port;
	size_t n = 0;
	int family;

	for (char *t = strtok_r(line, " ", &save); t != NULL; t = strtok_r(NULL, " ", &save))
		if (n < 6)
			tok[n++] = t;
		else
			return -1;

	if (n >= 2 && strcmp(tok[1], "UNKNOWN") == 0) {
		info->local = true;
		return 0;
	}
	if (n != 6 || strcmp(tok[0], "PROXY") != 0)
		return -1;

	if (strcmp(tok[1], "TCP4") == 0)
		family = AF_INET;
	else if (strcmp(tok[1], "TCP6") == 0)
		family = AF_INET6;
	else
		return -1;

	if (inet_pton(family, tok[2], addr) != 1 || inet_pton(family, tok[3], addr) != 1 ||
	    !parse_port(tok[4], &info->src_port) || !parse_port(tok[5], &dst_port))
		return -1;

	snprintf(info->src, sizeof(info->src), "%s", tok[2]);
	info->ipv6 = family == AF_INET6;
	return 0;
}

static int
parse_v1(const unsigned char *buf, size_t len, struct tb_proxy_info *info)
{
	char line[V1_MAX + 1];
	const unsigned char *crlf;
	size_t line_len;

	if (buf == NULL || !starts_like(buf, len, "PROXY ", 6))
		return -1;

	crlf = memmem(buf, len < V1_MAX ? len : V1_MAX, "\r\n", 2);
	if (crlf == NULL)
		return len >= V1_MAX ? -1 : 0;

	line_len = (size_t)(crlf - buf);
	memcpy(line, buf, line_len);
	line[line_len] = '\0';
	if (memchr(line, '\0', line_len) != NULL)
		return -1;

	return parse_v1_fields(line, info) == 0 ? (int)line_len + 2 : -1;
}

static void
copy_value(char *dst, const unsigned char *v, size_t n)
{
	if (n > TB_PP_VALUE_MAX)
		n = TB_PP_VALUE_MAX;
	memcpy(dst, v, n);
	dst[n] = '\0';
}

/* The sub-TLVs of PP2_TYPE_SSL, after its client(1) and verify(4) fields. */
static int
parse_v2_ssl(const unsigned char *v, size_t n, struct tb_proxy_info *info)
{
	size_t i = 5;

	if (n < 5)
		return -1;

	while (i < n) {
		size_t len;

		if (n - i < 3)
			return -1;
		len = (size_t)v[i + 1] << 8 | v[i + 2];
		if (n - i - 3 < len)
			return -1;
		if (v[i] == PP2_SUBTYPE_SSL_VERSION)
			copy_value(info->version, v + i + 3, len);
		i += 3 + len;
	}

	return 0;
}

static int
parse_v2_tlvs(const unsigned char *p, size_t n, struct tb_proxy_info *info)
{
	size_t i = 0;

	while (i < n) {
		size_t len;

		if (n - i < 3)
			return -1;
		len = (size_t)p[i + 1] << 8 | p[i + 2];
		if (n - i - 3 < len)
			return -1;

		if (p[i] == PP2_TYPE_ALPN)
			copy_value(info->alpn, p + i + 3, len);
		else if (p[i] == PP2_TYPE_AUTHORITY)
			copy_value(info->sni, p + i + 3, len);
		else if (p[i] == PP2_TYPE_SSL && parse_v2_ssl(p + i + 3, len, info) != 0)
			return -1;
		i += 3 + len;
	}

	return 0;
}

/* Addresses of the PROXY command; returns their length or -1. */
static int
parse_v2_addresses(unsigned char fam, const unsigned char *p, size_t n, struct tb_proxy_info *info)
{
	switch (fam) {
	case 0x11: /* TCP over IPv4 */
		if (n < 12)
			return -1;
		inet_ntop(AF_INET, p, info->src, sizeof(info->src));
		info->src_port = (unsigned)p[8] << 8 | p[9];
		return 12;
	case 0x21: /* TCP over IPv6 */
		if (n < 36)
			return -1;
		inet_ntop(AF_INET6, p, info->src, sizeof(info->src));
		info->src_port = (unsigned)p[32] << 8 | p[33];
		info->ipv6 = true;
		return 36;
	case 0x00: /* unspecified: no address, as for LOCAL */
		info->local = true;
		return 0;
	default:
		return -1;
	}
}

static int
parse_v2(const unsigned char *buf, size_t len, struct tb_proxy_info *info)
{
	size_t total;
	int addr_len;

	if (!starts_like(buf, len, v2_signature, sizeof(v2_signature)))
		return -1;
	if (len < 16)
		return 0;
	if (buf[12] >> 4 != 2 || (buf[12] & 0xf) > 1)
		return -1;

	total = 16 + ((size_t)buf[14] << 8 | buf[15]);
	if (len < total)
		return 0;

	if ((buf[12] & 0xf) == 0) {
		info->local = true; /* LOCAL: a health check; the rest is ignored */
		return (int)total;
	}

	addr_len = parse_v2_addresses(buf[13], buf + 16, total - 16, info);
	if (addr_len < 0)
		return -1;
	if (parse_v2_tlvs(buf + 16 + addr_len, total - 16 - (size_t)addr_len, info) != 0)
		return -1;
	return (int)total;
}

int
tb_proxy_parse(const unsigned char *buf, size_t len, struct tb_proxy_info *info)
{
	memset(info, 0, sizeof(*info));
	if (len == 0)
		return 0;

	if (buf[0] == 'P')
		return parse_v1(buf, len, info);
	if (buf[0] == v2_signature[0])
		return parse_v2(buf, len, info);
	return -1;
}
