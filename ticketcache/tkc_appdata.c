/*
 * The appdata record carried inside a ticket. It is authenticated by the
 * ticket's MAC, but a ticket from another build or a key shared with some
 * other program can still hold anything, so decoding trusts nothing.
 *
 * Version 1, all integers big-endian:
 *
 *	offset  size  field
 *	0       1     version (1)
 *	1       8     listener tag
 *	9       8     first_handshake_s
 *	17      1     server id length n (0..TKC_SERVER_ID_MAX)
 *	18      n     server id
 *
 * The record ends exactly after the server id; trailing bytes are an error.
 */
#include <errno.h>
#include <string.h>

#include <openssl/sha.h>

#include "tkc.h"
#include "tkc_internal.h"

#define APPDATA_HEADER_LEN 18

uint64_t
tkc_listener_tag(const char *listener_name)
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	/* The one-shot SHA256() cannot fail and needs no algorithm fetch. */
	SHA256((const unsigned char *)listener_name, strlen(listener_name), md);
	return tkc_get_be64(md);
}

int
tkc_appdata_encode(const struct tkc_appdata *ad, unsigned char *buf, size_t cap)
{
	size_t len;

	if (ad == NULL || buf == NULL || ad->server_id_len > TKC_SERVER_ID_MAX)
		return -EINVAL;

	len = APPDATA_HEADER_LEN + ad->server_id_len;
	if (cap < len)
		return -EINVAL;

	buf[0] = TKC_APPDATA_VERSION;
	tkc_put_be64(buf + 1, ad->listener_tag);
	tkc_put_be64(buf + 9, ad->first_handshake_s);
	buf[17] = (unsigned char)ad->server_id_len;
	memcpy(buf + APPDATA_HEADER_LEN, ad->server_id, ad->server_id_len);
	return (int)len;
}

int
tkc_appdata_decode(const unsigned char *buf, size_t len, struct tkc_appdata *ad)
{
	size_t id_len;

	if (buf == NULL || len == 0 || ad == NULL)
		return -EINVAL;

	/* The version decides the layout, so it is read before anything else. */
	if (buf[0] != TKC_APPDATA_VERSION)
		return -EPROTO;

	if (len < APPDATA_HEADER_LEN)
		return -EINVAL;

	id_len = buf[17];
	if (id_len > TKC_SERVER_ID_MAX || len != APPDATA_HEADER_LEN + id_len)
		return -EINVAL;

	memset(ad, 0, sizeof(*ad));
	ad->listener_tag = tkc_get_be64(buf + 1);
	ad->first_handshake_s = tkc_get_be64(buf + 9);
	ad->server_id_len = id_len;
	memcpy(ad->server_id, buf + APPDATA_HEADER_LEN, id_len);
	return 0;
}
