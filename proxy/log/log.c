/*
 * log: the event log on stderr, its rate limiter and small formatting
 * helpers shared with the access log.
 */
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#define TAG_MAX 16

static atomic_int log_level = USH_LOG_INFO;
static atomic_int log_fd = 2;
static _Thread_local char thread_tag[TAG_MAX] = "main";

static const char *const level_names[] = {
	[USH_LOG_ALERT] = "alert", [USH_LOG_ERROR] = "error", [USH_LOG_WARN] = "warn",
	[USH_LOG_INFO] = "info",   [USH_LOG_DEBUG] = "debug",
};

void
ush_log_set_level(enum cfg_log_level level)
{
	int ours = (int)level + 1; /* cfg levels start at error, ours at alert */

	if (ours > USH_LOG_DEBUG)
		ours = USH_LOG_DEBUG;
	atomic_store_explicit(&log_level, ours, memory_order_relaxed);
}

bool
ush_log_enabled(enum ush_log_level level)
{
	return (int)level <= atomic_load_explicit(&log_level, memory_order_relaxed);
}

void
ush_log_set_fd(int fd)
{
	atomic_store_explicit(&log_fd, fd, memory_order_relaxed);
}

void
ush_log_set_worker(int worker)
{
	if (worker < 0)
		snprintf(thread_tag, sizeof(thread_tag), "main");
	else
		snprintf(thread_tag, sizeof(thread_tag), "w%d", worker);
}

void
ush_log_set_thread(const char *tag)
{
	snprintf(thread_tag, sizeof(thread_tag), "%s", tag);
}

const char *
ush_log_level_name(enum ush_log_level level)
{
	if ((unsigned)level >= sizeof(level_names) / sizeof(level_names[0]))
		return "?";

	return level_names[level];
}

uint64_t
ush_log_now_unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void
ush_log_format_time(uint64_t unix_ms, char *buf, size_t cap)
{
	time_t secs = (time_t)(unix_ms / 1000);
	struct tm tm;

	gmtime_r(&secs, &tm);
	snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(unix_ms % 1000));
}

const char *
ush_addr_str(const struct sockaddr *sa, char *buf, size_t cap)
{
	char ip[INET6_ADDRSTRLEN];

	if (sa != NULL && sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		snprintf(buf, cap, "%s:%u", ip, ntohs(in->sin_port));
	} else if (sa != NULL && sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, cap, "[%s]:%u", ip, ntohs(in6->sin6_port));
	} else {
		snprintf(buf, cap, "-");
	}

	return buf;
}

const char *
ush_ssl_reason(char *buf, size_t cap)
{
	unsigned long err = ERR_peek_last_error();

	if (err == 0)
		snprintf(buf, cap, "no openssl reason");
	else
		ERR_error_string_n(err, buf, cap);

	ERR_clear_error();
	return buf;
}

/*
 * Copy src into dst (cap bytes, NUL included), writing bytes outside
 * printable ASCII as \xHH so that one event stays one line whatever a peer
 * put in it. Returns the length; *complete tells whether all of src fit.
 */
static size_t
copy_printable(char *dst, size_t cap, const char *src, bool *complete)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

	*complete = false;
	for (; *src != '\0'; src++) {
		unsigned char c = (unsigned char)*src;

		if (c >= 0x20 && c < 0x7f) {
			if (n + 1 >= cap)
				goto out;
			dst[n++] = (char)c;
			continue;
		}

		if (n + 4 >= cap)
			goto out;
		dst[n++] = '\\';
		dst[n++] = 'x';
		dst[n++] = hex[c >> 4];
		dst[n++] = hex[c & 0xf];
	}

	*complete = true;
out:
	dst[n] = '\0';
	return n;
}

/* Write one finished line with a single write(2); a short write is retried. */
static void
write_line(int fd, const char *line, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, line, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* stderr is gone: nowhere left to complain */
		line += n;
		len -= (size_t)n;
	}
}

/* The common tail of every ush_log*(): prefix, message, suffix, newline. */
static void USH_PRINTF(3, 0)
	emit(enum ush_log_level level, const char *suffix, const char *fmt, va_list ap)
{
	char message[USH_LOG_LINE_MAX];
	char line[USH_LOG_LINE_MAX + 64];
	char stamp[32];
	bool complete;
	size_t n;
	int len;

	len = vsnprintf(message, sizeof(message), fmt, ap);
	if (len < 0)
		len = snprintf(message, sizeof(message), "(unformattable message '%s')", fmt);
	if (suffix != NULL && (size_t)len < sizeof(message))
		len += snprintf(message + len, sizeof(message) - (size_t)len, " (%s)", suffix);

	ush_log_format_time(ush_log_now_unix_ms(), stamp, sizeof(stamp));
	n = (size_t)snprintf(line, sizeof(line), "%s %s [%s] ", stamp, ush_log_level_name(level),
			     thread_tag);

	/* Keep room for "...\n" in case the message must be cut. */
	n += copy_printable(line + n, sizeof(line) - n - 4, message, &complete);
	if (!complete || (size_t)len >= sizeof(message)) {
		memcpy(line + n, "...", 3);
		n += 3;
	}

	line[n++] = '\n';
	write_line(atomic_load_explicit(&log_fd, memory_order_relaxed), line, n);
}

void
ush_vlog(enum ush_log_level level, const char *fmt, va_list ap)
{
	if (!ush_log_enabled(level))
		return;

	emit(level, NULL, fmt, ap);
}

void
ush_log(enum ush_log_level level, const char *fmt, ...)
{
	va_list ap;

	if (!ush_log_enabled(level))
		return;

	va_start(ap, fmt);
	emit(level, NULL, fmt, ap);
	va_end(ap);
}

void
ush_log_errno(enum ush_log_level level, int err, const char *fmt, ...)
{
	char reason[128];
	va_list ap;

	if (!ush_log_enabled(level))
		return;

	va_start(ap, fmt);
	emit(level, strerror_r(abs(err), reason, sizeof(reason)), fmt, ap);
	va_end(ap);
}

void
ush_log_ssl(enum ush_log_level level, const char *fmt, ...)
{
	char reason[256];
	va_list ap;

	ush_ssl_reason(reason, sizeof(reason));
	if (!ush_log_enabled(level))
		return;

	va_start(ap, fmt);
	emit(level, reason, fmt, ap);
	va_end(ap);
}

/* ---- rate limiting -------------------------------------------------------- */

bool
ush_ratelimit_allow(struct ush_ratelimit *rl, uint64_t now_ms, uint64_t *suppressed)
{
	*suppressed = 0;

	if (now_ms - rl->window_start_ms >= rl->interval_ms || now_ms < rl->window_start_ms) {
		rl->window_start_ms = now_ms;
		rl->used = 0;
	}

	if (rl->used >= rl->burst) {
		rl->suppressed++;
		return false;
	}

	rl->used++;
	*suppressed = rl->suppressed;
	rl->suppressed = 0;
	return true;
}

static uint64_t
now_monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void
ush_log_limited(struct ush_ratelimit *rl, enum ush_log_level level, const char *fmt, ...)
{
	uint64_t suppressed;
	va_list ap;

	if (!ush_log_enabled(level))
		return;

	if (!ush_ratelimit_allow(rl, now_monotonic_ms(), &suppressed))
		return;

	if (suppressed > 0)
		ush_log(level, "suppressed %llu similar messages", (unsigned long long)suppressed);

	va_start(ap, fmt);
	emit(level, NULL, fmt, ap);
	va_end(ap);
}
