/*
 * proxy_header: the PROXY protocol header (HAProxy's spec, v1 text and v2
 * binary) as the test backend reads it from usher.
 */
#ifndef USHER_TB_PROXY_HEADER_H
#define USHER_TB_PROXY_HEADER_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TB_PP_V2_MAX    (16 + 65535) /* signature..length, then the rest */
#define TB_PP_VALUE_MAX 255

struct tb_proxy_info {
	bool local;                 /* v2 LOCAL or v1 UNKNOWN: no address */
	char src[INET6_ADDRSTRLEN]; /* client address as text */
	unsigned src_port;
	bool ipv6;
	/* From v2 TLVs; empty when not sent. Raw bytes, NUL-terminated. */
	char sni[TB_PP_VALUE_MAX + 1];
	char alpn[TB_PP_VALUE_MAX + 1];
	char version[TB_PP_VALUE_MAX + 1];
};

/*
 * Parse the header at the start of buf. Returns its length when complete
 * and valid (info filled), 0 when more bytes are needed, -1 when buf
 * cannot start a valid header.
 */
int tb_proxy_parse(const unsigned char *buf, size_t len, struct tb_proxy_info *info);

#ifdef __cplusplus
}
#endif

#endif
