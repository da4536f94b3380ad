/*
 * ops_util: socket and descriptor helpers shared by the ops tests.
 */
#ifndef USHER_OPS_UTIL_H
#define USHER_OPS_UTIL_H

#include <stddef.h>
#include <sys/types.h>

/* Open descriptors of this process, from /proc/self/fd. */
int ops_count_fds(void);

/* A blocking TCP connection to 127.0.0.1:port, or -1. */
int ops_connect(unsigned port);

/* Send all of data. 0 or -1. */
int ops_send_all(int fd, const void *data, size_t len);

/*
 * Read until EOF, error, cap bytes or timeout_ms without progress. Returns
 * the byte count; buf is NUL-terminated (cap includes the NUL). *err gets
 * 0 for EOF, ETIMEDOUT, or the read errno (ECONNRESET).
 */
size_t ops_read_all(int fd, char *buf, size_t cap, int timeout_ms, int *err);

/* Read one line (without '\n') within timeout_ms. Length, or -1. */
ssize_t ops_read_line(int fd, char *buf, size_t cap, int timeout_ms);

/* Whether fd becomes readable within timeout_ms (data, EOF or error). */
int ops_readable(int fd, int timeout_ms);

#endif
