/*
 * access: one line per finished connection, as text or JSON.
 *
 * Both formats are rendered from the same list of fields, so they always
 * carry the same keys in the same order.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

enum field_kind {
	FIELD_STRING = 0,
	FIELD_NUMBER = 1,
	FIELD_BOOL = 2,
};

struct field {
	const char *key;
	enum field_kind kind;
	const char *str; /* FIELD_STRING; NULL when unknown */
	size_t len;
	uint64_t num; /* FIELD_NUMBER, and FIELD_BOOL as 0/1 */
};

#define N_FIELDS 13

/* A bounded output buffer; once full it stays full and the line is refused. */
struct out {
	char *buf;
	size_t len;
	size_t cap;
	bool full;
};

static const char hex[] = "0123456789abcdef";

static void
put(struct out *o, const char *s, size_t n)
{
	if (o->full || o->cap - o->len < n) {
		o->full = true;
		return;
	}

	memcpy(o->buf + o->len, s, n);
	o->len += n;
}

static void
put_str(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void
put_char(struct out *o, char c)
{
	put(o, &c, 1);
}

static void
put_hex_byte(struct out *o, const char *prefix, unsigned char c)
{
	char esc[8];
	size_t n = strlen(prefix);

	memcpy(esc, prefix, n);
	esc[n++] = hex[c >> 4];
	esc[n++] = hex[c & 0xf];
	put(o, esc, n);
}

static void
put_u64(struct out *o, uint64_t v)
{
	char digits[24];
	size_t i = sizeof(digits);

	do {
		digits[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);

	put(o, digits + i, sizeof(digits) - i);
}

/* ---- text: key=value ------------------------------------------------------ */

static bool
text_plain_byte(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '=';
}

static bool
text_needs_quotes(const char *v, size_t n)
{
	if (n == 0 || (n == 1 && v[0] == '-'))
		return true; /* "-" alone means "unknown" */

	for (size_t i = 0; i < n; i++)
		if (!text_plain_byte((unsigned char)v[i]))
			return true;

	return false;
}

static void
put_text_string(struct out *o, const char *v, size_t n)
{
	if (v == NULL) {
		put_char(o, '-');
		return;
	}

	if (!text_needs_quotes(v, n)) {
		put(o, v, n);
		return;
	}

	put_char(o, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c == '"' || c == '\\') {
			put_char(o, '\\');
			put_char(o, (char)c);
		} else if (c >= 0x20 && c < 0x7f) {
			put_char(o, (char)c);
		} else {
			put_hex_byte(o, "\\x", c);
		}
	}
	put_char(o, '"');
}

static void
format_text(struct out *o, const struct field *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			put_char(o, ' ');
		put_str(o, f[i].key);
		put_char(o, '=');

		if (f[i].kind == FIELD_STRING)
			put_text_string(o, f[i].str, f[i].len);
		else if (f[i].kind == FIELD_BOOL)
			put_str(o, f[i].num ? "yes" : "no");
		else
			put_u64(o, f[i].num);
	}
}

/* ---- JSON ----------------------------------------------------------------- */

/*
 * Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlong
 * forms, no surrogates, nothing past U+10FFFF), or 0 if there is none.
 */
static size_t
utf8_sequence_len(const unsigned char *p, size_t n)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len;

	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4;
	else
		return 0;

	/* The second byte's range rules out overlongs and surrogates. */
	if (p[0] == 0xe0)
		lo = 0xa0;
	else if (p[0] == 0xed)
		hi = 0x9f;
	else if (p[0] == 0xf0)
		lo = 0x90;
	else if (p[0] == 0xf4)
		hi = 0x8f;

	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;

	return len;
}

static void
put_json_byte(struct out *o, unsigned char c)
{
	switch (c) {
	case '"':
		put_str(o, "\\\"");
		break;
	case '\\':
		put_str(o, "\\\\");
		break;
	case '\n':
		put_str(o, "\\n");
		break;
	case '\r':
		put_str(o, "\\r");
		break;
	case '\t':
		put_str(o, "\\t");
		break;
	default:
		if (c < 0x20 || c == 0x7f)
			put_hex_byte(o, "\\u00", c);
		else
			put_char(o, (char)c);
	}
}

static void
put_json_string(struct out *o, const char *v, size_t n)
{
	const unsigned char *p = (const unsigned char *)v;
	size_t i = 0;

	if (v == NULL) {
		put_str(o, "null");
		return;
	}

	put_char(o, '"');
	while (i < n) {
		size_t seq;

		if (p[i] < 0x80) {
			put_json_byte(o, p[i++]);
			continue;
		}

		seq = utf8_sequence_len(p + i, n - i);
		if (seq == 0) {
			put_str(o, "\\ufffd"); /* one replacement per bad byte */
			i++;
			continue;
		}

		put(o, v + i, seq);
		i += seq;
	}
	put_char(o, '"');
}

static void
format_json(struct out *o, const struct field *f, size_t n)
{
	put_char(o, '{');
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			put_char(o, ',');
		put_char(o, '"');
		put_str(o, f[i].key);
		put_str(o, "\":");

		if (f[i].kind == FIELD_STRING)
			put_json_string(o, f[i].str, f[i].len);
		else if (f[i].kind == FIELD_BOOL)
			put_str(o, f[i].num ? "true" : "false");
		else
			put_u64(o, f[i].num);
	}
	put_char(o, '}');
}

/* ---- record to fields ----------------------------------------------------- */

static struct field
string_field(const char *key, const char *v, size_t len)
{
	struct field f = {.key = key, .kind = FIELD_STRING, .str = v};

	if (v != NULL)
		f.len = len < USH_ACCESS_VALUE_MAX ? len : USH_ACCESS_VALUE_MAX;
	return f;
}

static struct field
cstring_field(const char *key, const char *v)
{
	return string_field(key, v, v != NULL ? strnlen(v, USH_ACCESS_VALUE_MAX) : 0);
}

static struct field
number_field(const char *key, enum field_kind kind, uint64_t v)
{
	return (struct field){.key = key, .kind = kind, .num = v};
}

/* time and client (ush_addr_str(), "-" if unknown) are the caller's. */
static void
collect_fields(const struct ush_access_record *rec, const char *time, const char *client,
	       struct field *f)
{
	size_t i = 0;

	f[i++] = cstring_field("time", time);
	f[i++] = cstring_field("client", strcmp(client, "-") != 0 ? client : NULL);
	f[i++] = cstring_field("listener", rec->listener);
	f[i++] = cstring_field("sni", rec->sni);
	f[i++] = string_field("alpn", (const char *)rec->alpn, rec->alpn_len);
	f[i++] = cstring_field("tls", rec->tls_version);
	f[i++] = number_field("resumed", FIELD_BOOL, rec->resumed);
	f[i++] = cstring_field("ticket", rec->ticket);
	f[i++] = cstring_field("server", rec->server);
	f[i++] = number_field("bytes_in", FIELD_NUMBER, rec->bytes_in);
	f[i++] = number_field("bytes_out", FIELD_NUMBER, rec->bytes_out);
	f[i++] = number_field("duration_ms", FIELD_NUMBER, rec->duration_ms);
	f[i++] = cstring_field("reason", rec->reason);
}

int
ush_access_log_format(const struct ush_access_record *rec, enum cfg_log_format format, char *buf,
		      size_t cap)
{
	struct field fields[N_FIELDS];
	char time[32], client[USH_ADDR_STRLEN];
	struct out o = {.buf = buf, .cap = cap > 0 ? cap - 1 : 0}; /* room for a NUL */

	ush_log_format_time(rec->time_ms != 0 ? rec->time_ms : ush_log_now_unix_ms(), time,
			    sizeof(time));
	ush_addr_str(rec->client, client, sizeof(client));
	collect_fields(rec, time, client, fields);

	if (format == CFG_LOG_FORMAT_JSON)
		format_json(&o, fields, N_FIELDS);
	else
		format_text(&o, fields, N_FIELDS);
	put_char(&o, '\n');
	if (cap > 0)
		buf[o.len] = '\0';

	return o.full ? -ENOSPC : (int)o.len;
}

/* ---- destination ---------------------------------------------------------- */

/*
 * The descriptor workers write to. Set once; later destinations are
 * dup3()'d over the same number, so a worker that has just loaded it never
 * writes to a closed descriptor or to one reused for something else.
 */
static atomic_int access_fd = -1;
static atomic_int access_format = CFG_LOG_FORMAT_TEXT;
static atomic_bool access_on;
static atomic_uint_fast64_t access_lost;

/* Main thread only. */
static enum cfg_access_log access_kind = CFG_ACCESS_OFF;
static char *access_path;

/* A new descriptor for the destination, at 3 or above. fd or -errno. */
static int
open_destination(enum cfg_access_log kind, const char *path)
{
	int fd;

	if (kind == CFG_ACCESS_FILE)
		fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0640);
	else
		fd = fcntl(kind == CFG_ACCESS_STDOUT ? 1 : 2, F_DUPFD_CLOEXEC, 3);

	return fd < 0 ? -errno : fd;
}

/* Make fd the destination; fd is consumed. 0 or -errno. */
static int
install_fd(int fd)
{
	int current = atomic_load(&access_fd);
	int rc = 0;

	if (current < 0) {
		atomic_store(&access_fd, fd);
		return 0;
	}

	while (dup3(fd, current, O_CLOEXEC) < 0) {
		if (errno != EINTR && errno != EBUSY) {
			rc = -errno;
			break;
		}
	}

	close(fd);
	return rc;
}

int
ush_access_log_open(const struct cfg_log *log)
{
	char *path = NULL;
	int fd, rc;

	if (log->access == CFG_ACCESS_OFF) {
		atomic_store(&access_on, false);
		access_kind = CFG_ACCESS_OFF;
		return 0;
	}

	if (log->access == CFG_ACCESS_FILE) {
		if (log->access_path == NULL)
			return -EINVAL;
		path = strdup(log->access_path);
		if (path == NULL)
			return -ENOMEM;
	}

	fd = open_destination(log->access, path);
	if (fd < 0) {
		free(path);
		return fd;
	}

	rc = install_fd(fd);
	if (rc != 0) {
		free(path);
		return rc;
	}

	free(access_path);
	access_path = path;
	access_kind = log->access;
	atomic_store(&access_format, (int)log->format);
	atomic_store(&access_on, true);
	return 0;
}

int
ush_access_log_reopen(void)
{
	int fd;

	if (access_kind != CFG_ACCESS_FILE)
		return 0;

	fd = open_destination(CFG_ACCESS_FILE, access_path);
	if (fd < 0)
		return fd;

	return install_fd(fd);
}

void
ush_access_log_close(void)
{
	int fd = atomic_exchange(&access_fd, -1);

	atomic_store(&access_on, false);
	if (fd >= 0)
		close(fd);

	free(access_path);
	access_path = NULL;
	access_kind = CFG_ACCESS_OFF;
}

uint64_t
ush_access_log_lost(void)
{
	return atomic_load_explicit(&access_lost, memory_order_relaxed);
}

/* ---- writing -------------------------------------------------------------- */

/* A worker's pending lines; only whole lines, at most PIPE_BUF bytes. */
struct access_batch {
	bool on;
	size_t len;
	unsigned lines;
	char data[PIPE_BUF];
};

static _Thread_local struct access_batch batch;

static void
count_lost(uint64_t lines)
{
	atomic_fetch_add_explicit(&access_lost, lines, memory_order_relaxed);
}

/*
 * Write whole lines with one write(2); only a short write adds a second.
 *
 * TODO(#3): a destination that blocks (stdout piped to a stalled reader)
 * stalls the calling worker; hand lines to a writer thread, or drop and
 * count them when the descriptor is not ready.
 */
static void
write_lines(const char *data, size_t len, unsigned lines)
{
	int fd = atomic_load_explicit(&access_fd, memory_order_relaxed);

	if (fd < 0) {
		count_lost(lines);
		return;
	}

	while (len > 0) {
		ssize_t n = write(fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			count_lost(lines); /* disk full, pipe closed: counted */
			return;
		}
		data += n;
		len -= (size_t)n;
	}
}

void
ush_access_log_flush(void)
{
	if (batch.len == 0)
		return;

	write_lines(batch.data, batch.len, batch.lines);
	batch.len = 0;
	batch.lines = 0;
}

void
ush_access_log_set_buffered(bool on)
{
	if (!on)
		ush_access_log_flush();
	batch.on = on;
}

void
ush_access_log_write(const struct ush_access_record *rec)
{
	char line[USH_ACCESS_LINE_MAX];
	int n;

	if (!atomic_load_explicit(&access_on, memory_order_relaxed))
		return;

	n = ush_access_log_format(rec, atomic_load_explicit(&access_format, memory_order_relaxed),
				  line, sizeof(line));
	if (n < 0) {
		count_lost(1);
		return;
	}

	if (!batch.on || (size_t)n > sizeof(batch.data)) {
		ush_access_log_flush(); /* keep this thread's lines in order */
		write_lines(line, (size_t)n, 1);
		return;
	}

	if (batch.len + (size_t)n > sizeof(batch.data))
		ush_access_log_flush();

	memcpy(batch.data + batch.len, line, (size_t)n);
	batch.len += (size_t)n;
	batch.lines++;
}
