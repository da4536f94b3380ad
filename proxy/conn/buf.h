/*
 * buf: the byte buffers of a connection (struct ush_buf, see conn.h).
 * Internal to proxy/conn.
 *
 * A buffer owns memory only while it holds bytes: the block is allocated
 * by the first append and freed by the consume that empties it, so an idle
 * connection holds none.
 *
 * Buffers the engine sends from are "stable": bytes it has peeked keep
 * their address until it reports them sent, even when an append must
 * move the contents to a larger block. The old block is then kept aside
 * (retired) until the next consume, which is the engine telling us its
 * send from that block has completed. This lets an asynchronous engine
 * (io_uring) send straight from the buffer with one send in flight per
 * direction.
 *
 * A buffer may also borrow bytes it does not own (cap == 0, data != NULL):
 * client bytes are read by TLS straight from the engine's memory and only
 * what TLS leaves is copied.
 */
#ifndef USHER_CONN_BUF_H
#define USHER_CONN_BUF_H

#include <stdbool.h>
#include <stddef.h>

#include "conn.h"

#define USH_BUF_MIN_BLOCK 2048u
#define USH_BUF_HIGH      65536u     /* backpressure: stop filling past this */
#define USH_BUF_LIMIT     (1u << 20) /* a buffer never grows past this */

static inline size_t
ush_buf_len(const struct ush_buf *b)
{
	return b->tail - b->head;
}

static inline bool
ush_buf_empty(const struct ush_buf *b)
{
	return b->tail == b->head;
}

static inline bool
ush_buf_borrowed(const struct ush_buf *b)
{
	return b->data != NULL && b->cap == 0;
}

/* Bytes that may be added before the buffer counts as full. */
static inline size_t
ush_buf_room(const struct ush_buf *b)
{
	size_t len = ush_buf_len(b);

	return len >= USH_BUF_HIGH ? 0 : USH_BUF_HIGH - len;
}

/*
 * Make at least want bytes writable at the tail and return where, or NULL
 * (-ENOMEM, or the buffer would pass USH_BUF_LIMIT). *room gets the
 * writable size, which may exceed want. Not for borrowed buffers.
 */
unsigned char *ush_buf_reserve(struct ush_buf *b, size_t want, bool stable, size_t *room);

/* Count n bytes written at the tail after ush_buf_reserve(). */
void ush_buf_commit(struct ush_buf *b, size_t n);

/* Copy n bytes in. 0 or -ENOMEM. */
int ush_buf_append(struct ush_buf *b, const void *data, size_t n, bool stable);

/* Drop n bytes from the head; an emptied buffer gives its memory back. */
void ush_buf_consume(struct ush_buf *b, size_t n);

/* Point an empty buffer at bytes it does not own. */
void ush_buf_borrow(struct ush_buf *b, const void *data, size_t n);

/* Copy what is left of borrowed bytes into owned memory. 0 or -ENOMEM. */
int ush_buf_settle(struct ush_buf *b);

/* Forget the contents and free the memory. */
void ush_buf_release(struct ush_buf *b);

#endif
