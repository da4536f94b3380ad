/*
 * The connection buffers: memory only while non-empty, and bytes an
 * engine has peeked stay put while the connection appends behind them.
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "check.h"
#include "harness.h"

static void
test_memory_only_while_non_empty(void)
{
	struct ush_buf b = {0};

	CHECK(ush_buf_append(&b, "abc", 3, true) == 0);
	CHECK(b.data != NULL);
	CHECK_EQ_INT(ush_buf_len(&b), 3);

	ush_buf_consume(&b, 2);
	CHECK(b.data != NULL);
	ush_buf_consume(&b, 1);
	CHECK(b.data == NULL);
	CHECK_EQ_INT(b.cap, 0);

	/* Consuming more than held is clamped, not an underflow. */
	CHECK(ush_buf_append(&b, "x", 1, true) == 0);
	ush_buf_consume(&b, 100);
	CHECK(b.data == NULL);
}

/*
 * An engine peeks, starts a send, and meanwhile the conn appends enough
 * to move the contents: the peeked bytes must stay readable (ASan checks)
 * and unchanged until the engine reports the send.
 */
static void
test_peeked_bytes_stay_put(void)
{
	unsigned char first[1000], more[100000], copy[1000];
	const unsigned char *p;
	struct ush_buf b = {0};
	size_t len;

	hc_fill(first, sizeof(first), 7);
	hc_fill(more, sizeof(more), 8);
	REQUIRE(ush_buf_append(&b, first, sizeof(first), true) == 0);

	p = ush_buf_peek(&b, &len);
	REQUIRE(p != NULL && len == sizeof(first));
	REQUIRE(ush_buf_append(&b, more, sizeof(more), true) == 0);
	REQUIRE(ush_buf_append(&b, more, sizeof(more), true) == 0);
	CHECK(b.retired != NULL);

	memcpy(copy, p, sizeof(copy)); /* the send in flight reads */
	CHECK(memcmp(copy, first, sizeof(first)) == 0);

	ush_buf_consume(&b, 400); /* a partial send completed */
	CHECK(b.retired == NULL);
	p = ush_buf_peek(&b, &len);
	REQUIRE(p != NULL);
	CHECK_EQ_INT(len, sizeof(first) - 400 + 2 * sizeof(more));
	CHECK(memcmp(p, first + 400, sizeof(first) - 400) == 0);
	CHECK(memcmp(p + sizeof(first) - 400, more, sizeof(more)) == 0);

	ush_buf_release(&b);
	CHECK(b.data == NULL && b.retired == NULL);
}

static void
test_limit(void)
{
	struct ush_buf b = {0};
	unsigned char *big = calloc(1, USH_BUF_LIMIT + 1);

	REQUIRE(big != NULL);
	CHECK(ush_buf_append(&b, big, USH_BUF_LIMIT, false) == 0);
	CHECK(ush_buf_append(&b, big, 1, false) != 0);
	CHECK_EQ_INT(ush_buf_len(&b), USH_BUF_LIMIT);
	ush_buf_release(&b);
	free(big);
}

/* Borrowed bytes are never freed; what is left is copied on settle. */
static void
test_borrow_and_settle(void)
{
	unsigned char engine[64];
	struct ush_buf b = {0};

	hc_fill(engine, sizeof(engine), 9);
	ush_buf_borrow(&b, engine, sizeof(engine));
	CHECK(ush_buf_borrowed(&b));
	ush_buf_consume(&b, 60);
	CHECK(ush_buf_settle(&b) == 0);
	CHECK(!ush_buf_borrowed(&b));
	REQUIRE(b.data != NULL && b.data != engine);
	CHECK(memcmp(b.data, engine + 60, 4) == 0);
	ush_buf_release(&b);

	ush_buf_borrow(&b, engine, sizeof(engine));
	ush_buf_consume(&b, sizeof(engine));
	CHECK(b.data == NULL);
	CHECK(ush_buf_settle(&b) == 0);
	CHECK(b.data == NULL);
}

static void
test_close_reason_names(void)
{
	CHECK_EQ_STR(ush_close_reason_name(USH_CLOSE_DONE), "done");
	CHECK_EQ_STR(ush_close_reason_name(USH_CLOSE_HANDSHAKE_FAILED), "handshake_failed");
	CHECK_EQ_STR(ush_close_reason_name(USH_CLOSE_INTERNAL), "internal");
	CHECK_EQ_STR(ush_close_reason_name(USH_CLOSE_REASON_COUNT), "unknown");
	for (int r = 0; r < USH_CLOSE_REASON_COUNT; r++)
		CHECK(ush_close_reason_name((enum ush_close_reason)r) != NULL);
}

int
main(void)
{
	RUN(test_memory_only_while_non_empty);
	RUN(test_peeked_bytes_stay_put);
	RUN(test_limit);
	RUN(test_borrow_and_settle);
	RUN(test_close_reason_names);
	return check_done();
}
