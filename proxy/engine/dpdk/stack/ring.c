/*
 * The byte rings behind each connection's send and receive buffers. The
 * capacity is fixed when the connection is made, which is what bounds a
 * connection's memory. Offsets are from the head (the oldest byte).
 */
#include <errno.h>
#include <stdlib.h>

#include "ust_impl.h"

int
ring_init(struct ust_ring *r, uint32_t cap)
{
	r->buf = malloc(cap);
	if (!r->buf)
		return -ENOMEM;

	r->cap = cap;
	r->head = 0;
	r->len = 0;
	return 0;
}

void
ring_free(struct ust_ring *r)
{
	free(r->buf);
	r->buf = NULL;
}

/* Copy len bytes to ring position off (from the head), wrapping. */
void
ring_write_at(struct ust_ring *r, uint32_t off, const uint8_t *data, uint32_t len)
{
	uint32_t pos = (r->head + off) % r->cap;
	uint32_t first = min_u32(len, r->cap - pos);

	memcpy(r->buf + pos, data, first);
	memcpy(r->buf, data + first, len - first);
}

void
ring_peek(const struct ust_ring *r, uint32_t off, uint8_t *out, uint32_t len)
{
	uint32_t pos = (r->head + off) % r->cap;
	uint32_t first = min_u32(len, r->cap - pos);

	memcpy(out, r->buf + pos, first);
	memcpy(out + first, r->buf, len - first);
}

uint32_t
ring_push(struct ust_ring *r, const uint8_t *data, uint32_t len)
{
	len = min_u32(len, r->cap - r->len);
	ring_write_at(r, r->len, data, len);
	r->len += len;
	return len;
}

void
ring_drop(struct ust_ring *r, uint32_t len)
{
	len = min_u32(len, r->len);
	r->head = (r->head + len) % r->cap;
	r->len -= len;
}

uint32_t
ring_pop(struct ust_ring *r, uint8_t *out, uint32_t len)
{
	len = min_u32(len, r->len);
	ring_peek(r, 0, out, len);
	ring_drop(r, len);
	return len;
}
