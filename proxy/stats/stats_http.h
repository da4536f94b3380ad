/*
 * stats_http: the request parser of the metrics endpoint, apart from the
 * server so that tests can feed it any bytes. Internal to proxy/stats.
 */
#ifndef USHER_STATS_HTTP_H
#define USHER_STATS_HTTP_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum ush_http_verdict {
	USH_HTTP_INCOMPLETE = 0,  /* valid so far: read more */
	USH_HTTP_METRICS = 1,     /* GET /metrics -> 200 */
	USH_HTTP_NOT_FOUND = 2,   /* -> 404 */
	USH_HTTP_BAD_METHOD = 3,  /* -> 405 */
	USH_HTTP_BAD_REQUEST = 4, /* -> 400 */
	USH_HTTP_TOO_LARGE = 5,   /* no end of headers within max -> 431 */
};

/*
 * Judge the request in buf[0..len) (any bytes). A malformed request line
 * is refused as soon as the first bad byte arrives; a well-formed one is
 * judged once the empty line ending the headers is there. Header lines are
 * only checked for control bytes. max is the most a request may take.
 */
enum ush_http_verdict ush_http_parse(const char *buf, size_t len, size_t max);

#ifdef __cplusplus
}
#endif

#endif
