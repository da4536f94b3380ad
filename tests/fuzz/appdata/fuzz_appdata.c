/*
 * Fuzz the appdata decoder: any byte string either fails cleanly or
 * decodes to a record that encodes back to exactly the same bytes (the
 * format has one encoding per record) and decodes to the same record.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tkc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_same(const struct tkc_appdata *a, const struct tkc_appdata *b)
{
	if (a->listener_tag != b->listener_tag || a->first_handshake_s != b->first_handshake_s ||
	    a->server_id_len != b->server_id_len ||
	    memcmp(a->server_id, b->server_id, a->server_id_len) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tkc_appdata first, second;
	unsigned char buf[TKC_APPDATA_MAX];
	int len;

	if (tkc_appdata_decode(data, size, &first) != 0)
		return 0;

	if (first.server_id_len > TKC_SERVER_ID_MAX)
		abort();

	len = tkc_appdata_encode(&first, buf, sizeof(buf));
	if (len < 0 || (size_t)len != size || memcmp(buf, data, size) != 0)
		abort();

	if (tkc_appdata_decode(buf, (size_t)len, &second) != 0)
		abort();
	check_same(&first, &second);
	return 0;
}
