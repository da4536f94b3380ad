/*
 * proxy_protocol: the PROXY protocol header (versions 1 and 2) that tells
 * an upstream who the client is and what it negotiated with usher.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "upstream.h"

/* Version 2 constants, from the PROXY protocol specification. */
#define PP2_SIGNATURE           "\r\n\r\n\0\r\nQUIT\n"
#define PP2_SIGNATURE_LEN       12
#define PP2_HEADER_LEN          16   /* signature, ver_cmd, family, length */
#define PP2_VERSION_PROXY       0x21 /* version 2, command PROXY */
#define PP2_FAMILY_UNSPEC       0x00
#define PP2_FAMILY_TCP4         0x11
#define PP2_FAMILY_TCP6         0x21
#define PP2_ADDR_LEN_TCP4       12
#define PP2_ADDR_LEN_TCP6       36
#define PP2_TLV_HEADER_LEN      3
#define PP2_TYPE_ALPN           0x01
#define PP2_TYPE_AUTHORITY      0x02
#define PP2_TYPE_SSL            0x20
#define PP2_SUBTYPE_SSL_VERSION 0x21
#define PP2_CLIENT_SSL          0x01
#define PP2_SSL_FIXED_LEN       5 /* client flags, verify */
#define PP2_VERIFY_NONE         1 /* non-zero: no certificate was verified */

/* One end of the connection, IPv4 held as an IPv4-mapped IPv6 address. */
struct endpoint {
	unsigned char ip[16];
	uint16_t port; /* network byte order */
	bool v4;
};

/* The two ends, both of one family, or family AF_UNSPEC. */
struct endpoints {
	int family;
	struct endpoint src;
	struct endpoint dst;
};

static const unsigned char v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static bool
read_endpoint(const struct sockaddr *sa, struct endpoint *ep)
{
	const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

	if (sa == NULL)
		return false;

	if (sa->sa_family == AF_INET) {
		memcpy(ep->ip, v4_mapped_prefix, sizeof(v4_mapped_prefix));
		memcpy(ep->ip + 12, &in4->sin_addr, 4);
		ep->port = in4->sin_port;
		ep->v4 = true;
		return true;
	}

	if (sa->sa_family == AF_INET6) {
		memcpy(ep->ip, &in6->sin6_addr, 16);
		ep->port = in6->sin6_port;
		ep->v4 = IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr);
		return true;
	}

	return false;
}

/*
 * Both ends as IPv4 when both are, else both as IPv6 (an IPv4 end then
 * written mapped); AF_UNSPEC when either is missing or of another family.
 */
static void
read_endpoints(const struct ush_proxy_info *info, struct endpoints *e)
{
	memset(e, 0, sizeof(*e));

	if (!read_endpoint(info->client, &e->src) || !read_endpoint(info->local, &e->dst))
		e->family = AF_UNSPEC;
	else if (e->src.v4 && e->dst.v4)
		e->family = AF_INET;
	else
		e->family = AF_INET6;
}

static const unsigned char *
endpoint_ip(const struct endpoints *e, const struct endpoint *ep)
{
	return e->family == AF_INET ? ep->ip + 12 : ep->ip;
}

static int
format_v1(const struct endpoints *e, char *line, size_t cap)
{
	char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN];

	if (e->family == AF_UNSPEC)
		return snprintf(line, cap, "PROXY UNKNOWN\r\n");

	inet_ntop(e->family, endpoint_ip(e, &e->src), src, sizeof(src));
	inet_ntop(e->family, endpoint_ip(e, &e->dst), dst, sizeof(dst));

	return snprintf(line, cap, "PROXY %s %s %s %u %u\r\n",
			e->family == AF_INET ? "TCP4" : "TCP6", src, dst, ntohs(e->src.port),
			ntohs(e->dst.port));
}

int
ush_proxy_v1(const struct ush_proxy_info *info, char *buf, size_t cap)
{
	char line[USH_PROXY_V1_MAX + 1]; /* snprintf's NUL */
	struct endpoints e;
	int len;

	if (info == NULL)
		return -EINVAL;

	read_endpoints(info, &e);
	len = format_v1(&e, line, sizeof(line));
	if (len < 0 || (size_t)len >= sizeof(line))
		return -EINVAL;

	if ((size_t)len > cap)
		return -ENOSPC;

	memcpy(buf, line, (size_t)len);
	return len;
}

/* Lengths of the v2 parts, computed before anything is written. */
struct v2_layout {
	size_t addr_len;
	size_t sni_len;
	size_t version_len;
	size_t tlv_len;
	size_t total;
};

static size_t
tlv_size(size_t value_len)
{
	return PP2_TLV_HEADER_LEN + value_len;
}

/*
 * The header's length field is 16 bits; a longer TLV set (an absurd SNI)
 * cannot be sent at all.
 */
static int
plan_v2(const struct ush_proxy_info *info, const struct endpoints *e, struct v2_layout *l)
{
	size_t ssl_value;

	l->addr_len = e->family == AF_INET    ? PP2_ADDR_LEN_TCP4
		      : e->family == AF_INET6 ? PP2_ADDR_LEN_TCP6
					      : 0;
	l->sni_len = info->sni != NULL ? strlen(info->sni) : 0;
	l->version_len = info->tls_version != NULL ? strlen(info->tls_version) : 0;

	if (info->alpn_len > UINT16_MAX || l->sni_len > UINT16_MAX || l->version_len > UINT16_MAX)
		return -EINVAL;

	ssl_value = PP2_SSL_FIXED_LEN + (info->tls_version ? tlv_size(l->version_len) : 0);
	l->tlv_len = tlv_size(ssl_value);
	if (info->alpn_len > 0)
		l->tlv_len += tlv_size(info->alpn_len);
	if (l->sni_len > 0)
		l->tlv_len += tlv_size(l->sni_len);

	if (l->addr_len + l->tlv_len > UINT16_MAX)
		return -EINVAL;

	l->total = PP2_HEADER_LEN + l->addr_len + l->tlv_len;
	return 0;
}

static unsigned char *
put_u16(unsigned char *p, size_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
	return p + 2;
}

static unsigned char *
put_bytes(unsigned char *p, const void *data, size_t len)
{
	if (len > 0)
		memcpy(p, data, len);
	return p + len;
}

static unsigned char *
put_tlv(unsigned char *p, unsigned type, const void *value, size_t len)
{
	*p++ = (unsigned char)type;
	p = put_u16(p, len);
	return put_bytes(p, value, len);
}

static unsigned char *
put_addresses(unsigned char *p, const struct endpoints *e)
{
	size_t ip_len = e->family == AF_INET ? 4 : 16;

	if (e->family == AF_UNSPEC)
		return p;

	p = put_bytes(p, endpoint_ip(e, &e->src), ip_len);
	p = put_bytes(p, endpoint_ip(e, &e->dst), ip_len);
	p = put_bytes(p, &e->src.port, 2);
	return put_bytes(p, &e->dst.port, 2);
}

static unsigned char *
put_ssl_tlv(unsigned char *p, const struct ush_proxy_info *info, const struct v2_layout *l)
{
	size_t value_len = PP2_SSL_FIXED_LEN;

	if (info->tls_version != NULL)
		value_len += tlv_size(l->version_len);

	*p++ = PP2_TYPE_SSL;
	p = put_u16(p, value_len);
	*p++ = PP2_CLIENT_SSL;
	p = put_u16(p, 0);
	p = put_u16(p, PP2_VERIFY_NONE);

	if (info->tls_version != NULL)
		p = put_tlv(p, PP2_SUBTYPE_SSL_VERSION, info->tls_version, l->version_len);

	return p;
}

int
ush_proxy_v2(const struct ush_proxy_info *info, unsigned char *buf, size_t cap)
{
	struct endpoints e;
	struct v2_layout l;
	unsigned char *p = buf;

	if (info == NULL || (info->alpn == NULL && info->alpn_len > 0))
		return -EINVAL;

	read_endpoints(info, &e);
	if (plan_v2(info, &e, &l) != 0)
		return -EINVAL;

	if (l.total > cap)
		return -ENOSPC;

	p = put_bytes(p, PP2_SIGNATURE, PP2_SIGNATURE_LEN);
	*p++ = PP2_VERSION_PROXY;
	*p++ = e.family == AF_INET    ? PP2_FAMILY_TCP4
	       : e.family == AF_INET6 ? PP2_FAMILY_TCP6
				      : PP2_FAMILY_UNSPEC;
	p = put_u16(p, l.addr_len + l.tlv_len);
	p = put_addresses(p, &e);

	if (info->alpn_len > 0)
		p = put_tlv(p, PP2_TYPE_ALPN, info->alpn, info->alpn_len);
	if (l.sni_len > 0)
		p = put_tlv(p, PP2_TYPE_AUTHORITY, info->sni, l.sni_len);
	p = put_ssl_tlv(p, info, &l);

	return (int)(p - buf);
}
