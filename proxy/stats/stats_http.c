/*
 * stats_http: just enough of HTTP/1.x (RFC 9112) to answer a scraper, and
 * strict about it: one method, one path, nothing else.
 */
#include "stats_http.h"

#include <stdbool.h>
#include <string.h>

/* A method is an RFC 9110 token. */
static bool
is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;

	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool
is_visible(unsigned char c)
{
	return c > 0x20 && c < 0x7f;
}

/* Progress of a scan over what has arrived so far. */
enum scan {
	SCAN_MORE = 0, /* valid so far */
	SCAN_DONE = 1,
	SCAN_BAD = 2,
};

struct request_line {
	const char *method;
	size_t method_len;
	const char *path; /* the target up to '?' */
	size_t path_len;
	size_t end; /* offset just past the line's '\n' */
};

/* Expect the literal s at *i and step over it. */
static enum scan
expect(const char *b, size_t len, size_t *i, const char *s)
{
	for (; *s != '\0'; s++, (*i)++) {
		if (*i == len)
			return SCAN_MORE;
		if (b[*i] != *s)
			return SCAN_BAD;
	}

	return SCAN_DONE;
}

/* method SP target SP HTTP/1.0|1.1 CRLF (a bare LF is tolerated). */
static enum scan
scan_request_line(const char *b, size_t len, struct request_line *rl)
{
	const unsigned char *u = (const unsigned char *)b;
	enum scan v;
	size_t i = 0, start;

	while (i < len && is_tchar(u[i]))
		i++;
	if (i == len)
		return SCAN_MORE;
	if (i == 0 || b[i] != ' ')
		return SCAN_BAD;
	rl->method = b;
	rl->method_len = i++;

	start = i;
	if (i < len && b[i] != '/')
		return SCAN_BAD; /* origin-form only */
	while (i < len && is_visible(u[i]))
		i++;
	if (i == len)
		return SCAN_MORE;
	if (i == start || b[i] != ' ')
		return SCAN_BAD;
	rl->path = b + start;
	rl->path_len = i - start;
	i++;

	v = expect(b, len, &i, "HTTP/1.");
	if (v != SCAN_DONE)
		return v;
	if (i == len)
		return SCAN_MORE;
	if (b[i] != '0' && b[i] != '1')
		return SCAN_BAD;
	i++;

	if (i < len && b[i] == '\r')
		i++;
	if (i == len)
		return SCAN_MORE;
	if (b[i] != '\n')
		return SCAN_BAD;

	rl->end = i + 1;
	return SCAN_DONE;
}

/* Header lines from off on, up to the empty line; no control bytes. */
static enum scan
scan_headers(const char *b, size_t len, size_t off)
{
	const unsigned char *u = (const unsigned char *)b;
	bool line_empty = true;

	for (size_t i = off; i < len; i++) {
		if (u[i] == '\n') {
			if (line_empty)
				return SCAN_DONE;
			line_empty = true;
		} else if (u[i] == '\r') {
			if (i + 1 < len && u[i + 1] != '\n')
				return SCAN_BAD;
		} else if ((u[i] < 0x20 && u[i] != '\t') || u[i] == 0x7f) {
			return SCAN_BAD;
		} else {
			line_empty = false;
		}
	}

	return SCAN_MORE;
}

static bool
is_metrics_path(const struct request_line *rl)
{
	const char *query = memchr(rl->path, '?', rl->path_len);
	size_t n = query != NULL ? (size_t)(query - rl->path) : rl->path_len;

	return n == strlen("/metrics") && memcmp(rl->path, "/metrics", n) == 0;
}

enum ush_http_verdict
ush_http_parse(const char *buf, size_t len, size_t max)
{
	struct request_line rl = {0};
	enum scan v;

	v = scan_request_line(buf, len, &rl);
	if (v == SCAN_DONE)
		v = scan_headers(buf, len, rl.end);
	if (v == SCAN_BAD)
		return USH_HTTP_BAD_REQUEST;
	if (v == SCAN_MORE)
		return len >= max ? USH_HTTP_TOO_LARGE : USH_HTTP_INCOMPLETE;

	if (rl.method_len != 3 || memcmp(rl.method, "GET", 3) != 0)
		return USH_HTTP_BAD_METHOD;
	if (!is_metrics_path(&rl))
		return USH_HTTP_NOT_FOUND;

	return USH_HTTP_METRICS;
}
