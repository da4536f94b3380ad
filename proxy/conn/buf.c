/*
 * buf: growable byte buffers that give their memory back when empty.
 */
#include "buf.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static size_t
block_size_for(size_t need)
{
	size_t size = USH_BUF_MIN_BLOCK;

	while (size < need)
		size <<= 1;

	return size;
}

static void
drop_retired(struct ush_buf *b)
{
	free(b->retired);
	b->retired = NULL;
}

/*
 * Move the contents to a new block of at least need bytes. The old block
 * of a stable buffer is kept for a send that may be reading it; a block
 * already kept is older than any send in flight (the engine keeps one per
 * direction), so the intermediate one can go.
 */
static int
move_to_new_block(struct ush_buf *b, size_t need, bool stable)
{
	size_t len = ush_buf_len(b);
	size_t size;
	unsigned char *block;

	if (need > USH_BUF_LIMIT)
		return -ENOMEM;

	size = block_size_for(need);
	block = malloc(size);
	if (block == NULL)
		return -ENOMEM;

	if (len > 0)
		memcpy(block, b->data + b->head, len);

	if (stable && len > 0 && b->retired == NULL)
		b->retired = b->data;
	else
		free(b->data);

	b->data = block;
	b->head = 0;
	b->tail = (uint32_t)len;
	b->cap = (uint32_t)size;
	return 0;
}

unsigned char *
ush_buf_reserve(struct ush_buf *b, size_t want, bool stable, size_t *room)
{
	size_t len = ush_buf_len(b);

	if (b->data == NULL || b->cap - b->tail < want) {
		/* A non-stable buffer with space at its head just slides down. */
		if (!stable && b->data != NULL && b->cap - len >= want) {
			memmove(b->data, b->data + b->head, len);
			b->head = 0;
			b->tail = (uint32_t)len;
		} else if (move_to_new_block(b, len + want, stable) != 0) {
			return NULL;
		}
	}

	*room = b->cap - b->tail;
	return b->data + b->tail;
}

void
ush_buf_commit(struct ush_buf *b, size_t n)
{
	b->tail += (uint32_t)n;
}

int
ush_buf_append(struct ush_buf *b, const void *data, size_t n, bool stable)
{
	unsigned char *p;
	size_t room;

	if (n == 0)
		return 0;

	p = ush_buf_reserve(b, n, stable, &room);
	if (p == NULL)
		return -ENOMEM;

	memcpy(p, data, n);
	ush_buf_commit(b, n);
	return 0;
}

void
ush_buf_consume(struct ush_buf *b, size_t n)
{
	if (n > ush_buf_len(b))
		n = ush_buf_len(b);

	b->head += (uint32_t)n;

	/* A consume means the send from any retired block has completed. */
	drop_retired(b);

	if (ush_buf_empty(b))
		ush_buf_release(b);
}

void
ush_buf_borrow(struct ush_buf *b, const void *data, size_t n)
{
	/* The bytes are only read through b; the cast does not write them. */
	b->data = (unsigned char *)(uintptr_t)data;
	b->head = 0;
	b->tail = (uint32_t)n;
	b->cap = 0;
}

int
ush_buf_settle(struct ush_buf *b)
{
	struct ush_buf owned = {0};
	int rc;

	if (!ush_buf_borrowed(b))
		return 0;

	rc = ush_buf_append(&owned, b->data + b->head, ush_buf_len(b), false);
	*b = owned;
	return rc;
}

void
ush_buf_release(struct ush_buf *b)
{
	if (!ush_buf_borrowed(b))
		free(b->data);

	drop_retired(b);
	b->data = NULL;
	b->head = 0;
	b->tail = 0;
	b->cap = 0;
}
