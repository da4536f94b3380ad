/*
 * log: usher's event log and its access log.
 *
 * The event log goes to stderr, one line per event:
 *
 *	2026-12-03T16:40:00.123Z error [w1] connect() to '10.0.0.7:80' failed (Connection refused)
 *
 * that is UTC time, level, the thread's tag ("w1" for worker 1, "main",
 * "stats") and the message. Messages are lowercase, carry no trailing
 * period, and quote user values as '...'. Bytes outside printable ASCII are
 * written as \xHH, so a hostile value can neither split a line nor drive
 * the terminal.
 *
 * The access log has one line per connection, text (key=value) or JSON,
 * on stdout, stderr or a file. See ush_access_log_write() for how lines
 * from several workers stay whole.
 *
 * Every line is written with one write(2); nothing here takes a lock.
 */
#ifndef USHER_LOG_H
#define USHER_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "cfg.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define USH_PRINTF(fmt_arg, first_arg) __attribute__((format(printf, fmt_arg, first_arg)))
#else
#define USH_PRINTF(fmt_arg, first_arg)
#endif

/* Levels follow blame; see STYLE.md. */
enum ush_log_level {
	USH_LOG_ALERT = 0, /* a broken invariant: always written */
	USH_LOG_ERROR = 1, /* our failure or resource exhaustion */
	USH_LOG_WARN = 2,
	USH_LOG_INFO = 3, /* peer misbehaviour, rate-limited */
	USH_LOG_DEBUG = 4,
};

#define USH_LOG_LINE_MAX 2048 /* longer messages are cut and end in "..." */
#define USH_ADDR_STRLEN  64   /* "[ffff:...:ffff]:65535" and a NUL */

/* ---- event log ---------------------------------------------------------- */

/*
 * Write events up to and including level (alerts are always written). The
 * default is info. Any thread; workers see the change at their next line.
 */
void ush_log_set_level(enum cfg_log_level level);

/* Whether a line at level would be written; skip costly formatting. */
bool ush_log_enabled(enum ush_log_level level);

/*
 * Where event lines go: 2 (stderr) unless a test says otherwise. The fd is
 * not owned. Call before other threads log.
 */
void ush_log_set_fd(int fd);

/*
 * Tag the calling thread's lines: "w<worker>" for worker >= 0, "main" for a
 * negative worker. ush_log_set_thread() sets any other short tag ("stats");
 * it is cut at 15 bytes. Thread-local, so each thread calls it once.
 */
void ush_log_set_worker(int worker);
void ush_log_set_thread(const char *tag);

/* "alert", "error", "warn", "info" or "debug". */
const char *ush_log_level_name(enum ush_log_level level);

/* Write one event line if level is enabled. Any thread. */
void ush_log(enum ush_log_level level, const char *fmt, ...) USH_PRINTF(2, 3);
void ush_vlog(enum ush_log_level level, const char *fmt, va_list ap) USH_PRINTF(2, 0);

/*
 * The same, with " (strerror text)" appended for err, which may be an
 * errno value or its negation (the -errno our functions return):
 *
 *	ush_log_errno(USH_LOG_ERROR, rc, "accept4() failed");
 *	-> ... error [w0] accept4() failed (Too many open files)
 */
void ush_log_errno(enum ush_log_level level, int err, const char *fmt, ...) USH_PRINTF(3, 4);

/*
 * The same, with " (reason)" appended from the calling thread's OpenSSL
 * error queue (its most recent entry). The queue is cleared even when the
 * level is disabled, so a stale error never shows up against a later call.
 *
 *	ush_log_ssl(USH_LOG_INFO, "SSL_do_handshake() failed");
 *	-> ... info [w2] SSL_do_handshake() failed (error:0A00010B:SSL routines::wrong version number)
 */
void ush_log_ssl(enum ush_log_level level, const char *fmt, ...) USH_PRINTF(2, 3);

/*
 * The OpenSSL reason alone, for a message that needs it elsewhere than at
 * the end: fills buf, clears the queue, returns buf. "no openssl reason"
 * when the queue was empty.
 */
const char *ush_ssl_reason(char *buf, size_t cap);

/*
 * "192.0.2.1:443" or "[2001:db8::1]:443" into buf (USH_ADDR_STRLEN is
 * enough); "-" for NULL or a family other than IPv4/IPv6. Returns buf.
 */
const char *ush_addr_str(const struct sockaddr *sa, char *buf, size_t cap);

/* "2026-12-03T16:40:00.123Z" for unix_ms into buf (at least 32 bytes). */
void ush_log_format_time(uint64_t unix_ms, char *buf, size_t cap);

/* Wall-clock time in milliseconds since the epoch. */
uint64_t ush_log_now_unix_ms(void);

/* ---- rate limiting -------------------------------------------------------- */

/*
 * At most burst lines per interval_ms; the rest are counted, and the first
 * line let through afterwards is preceded by "suppressed K similar
 * messages". Meant for peer misbehaviour, which a peer can trigger at will.
 *
 * Owned by one thread (keep one per worker and per kind of message): no
 * locks, no atomics. Initialise with USH_RATELIMIT_INIT. A count held back
 * is reported only with the next line let through.
 */
struct ush_ratelimit {
	uint64_t interval_ms;
	uint32_t burst;
	uint32_t used; /* lines let through in the current window */
	uint64_t window_start_ms;
	uint64_t suppressed; /* held back since the last line let through */
};

#define USH_RATELIMIT_INIT(burst_, interval_ms_)                                                   \
	{                                                                                          \
		.interval_ms = (interval_ms_), .burst = (burst_), .used = 0, .window_start_ms = 0, \
		.suppressed = 0                                                                    \
	}

/*
 * Whether one more line may be written at now_ms (any monotonic clock in
 * ms). When it may and earlier lines were held back, *suppressed gets how
 * many (else 0) and the count restarts.
 */
bool ush_ratelimit_allow(struct ush_ratelimit *rl, uint64_t now_ms, uint64_t *suppressed);

/*
 * ush_log() through rl, on CLOCK_MONOTONIC. A disabled level does not use
 * up the budget. Owning thread only.
 */
void ush_log_limited(struct ush_ratelimit *rl, enum ush_log_level level, const char *fmt, ...)
	USH_PRINTF(3, 4);

/* ---- access log ----------------------------------------------------------- */

/*
 * One finished connection, filled by the caller from its connection and
 * TLS state. Every pointer may be NULL (the field is then written as "-"
 * in text, null in JSON) and need only live during the call. String values
 * are cut at USH_ACCESS_VALUE_MAX bytes.
 */
struct ush_access_record {
	uint64_t time_ms;              /* unix ms of the close; 0 = now */
	const struct sockaddr *client; /* the client's address and port */
	const char *listener;
	const char *sni;           /* as the client sent it: untrusted */
	const unsigned char *alpn; /* selected protocol, NOT NUL-terminated */
	size_t alpn_len;
	const char *tls_version; /* SSL_get_version(): "TLSv1.3" */
	bool resumed;
	const char *ticket; /* tkc_outcome_name() */
	const char *server; /* upstream server name */
	uint64_t bytes_in;  /* plaintext bytes from the client */
	uint64_t bytes_out; /* plaintext bytes to the client */
	uint64_t duration_ms;
	const char *reason; /* ush_close_reason_name() */
};

#define USH_ACCESS_VALUE_MAX 255
#define USH_ACCESS_LINE_MAX  16384 /* every record fits, fully escaped */

/*
 * Format rec as one line ending in '\n' into buf. Text:
 *
 *	time=2026-12-03T16:40:00.123Z client=192.0.2.1:51234 listener=web
 *	sni=example.com alpn=h2 tls=TLSv1.3 resumed=yes ticket=current
 *	server=app-1 bytes_in=512 bytes_out=2048 duration_ms=35 reason=done
 *
 * (on one line). A value is put in double quotes when it is empty, is "-",
 * or holds a space, '=', '"', '\\' or a byte outside printable ASCII; inside
 * quotes '"' and '\\' are backslash-escaped and other such bytes are \xHH.
 *
 * JSON: one object with the same keys; resumed is a boolean, the counts are
 * numbers. Strings escape '"', '\\' and control bytes; valid UTF-8 passes
 * through and each byte of an invalid sequence becomes \ufffd, so the line
 * is always valid JSON in valid UTF-8.
 *
 * The line is NUL-terminated too. Returns its length, or -ENOSPC when cap
 * is too small (USH_ACCESS_LINE_MAX always suffices). Any thread; touches
 * no global state.
 */
int ush_access_log_format(const struct ush_access_record *rec, enum cfg_log_format format,
			  char *buf, size_t cap);

/*
 * Set the destination and format from log (log->access, log->access_path,
 * log->format). At start and on reload, from the main thread, while workers
 * may be writing: the descriptor number never changes once set (a new file
 * is dup3()'d over it), so no writer ever writes to a closed or reused fd.
 * Returns 0, or -errno when the file cannot be opened; the previous
 * destination then stays in use. Turning the log off keeps the old file
 * open until ush_access_log_close().
 */
int ush_access_log_open(const struct cfg_log *log);

/*
 * Reopen the file at the same path, after logrotate moved it away. Call
 * from the main thread on SIGHUP (not in the signal handler). 0, or -errno
 * with the old file still in use. A no-op for stdout, stderr or off.
 */
int ush_access_log_reopen(void);

/* Close the log at exit, once no thread writes any more. */
void ush_access_log_close(void);

/*
 * Write one record in the configured format; nothing when the log is off.
 * Any thread.
 *
 * Unbuffered (the default), each line is one write(2). A worker may call
 * ush_access_log_set_buffered(true) once and ush_access_log_flush() at the
 * end of every event-loop iteration: its lines then collect in a
 * thread-local buffer of PIPE_BUF bytes and go out in one write(2) of whole
 * lines at the flush, or earlier when the buffer would overflow. A write of
 * at most PIPE_BUF bytes is atomic on a pipe, and O_APPEND makes each write
 * land whole at the end of a file, so lines of different workers never mix.
 * A single line longer than PIPE_BUF is written alone.
 *
 * The write blocks if the destination does (a full pipe). Lines lost to
 * write errors are counted, see ush_access_log_lost().
 */
void ush_access_log_write(const struct ush_access_record *rec);

/* Buffer the calling thread's lines until ush_access_log_flush(). */
void ush_access_log_set_buffered(bool on);

/* Write out what the calling thread has buffered. Cheap when empty. */
void ush_access_log_flush(void);

/* Access log lines lost so far (write errors, oversized records). */
uint64_t ush_access_log_lost(void);

#ifdef __cplusplus
}
#endif

#endif
