/*
 * The event log: line shape, levels, thread tags, hostile bytes, the errno
 * and OpenSSL suffixes, and the rate limiter.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "check.h"
#include "log.h"

static int pipe_fds[2];

/* Everything logged since the last call (the pipe is non-blocking). */
static const char *
captured(void)
{
	static char buf[16384];
	size_t len = 0;
	ssize_t n;

	while ((n = read(pipe_fds[0], buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	return buf;
}

static size_t
count_lines(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

/* The text after "<time> <level> [<tag>] ", checking the prefix's shape. */
static const char *
after_prefix(const char *line, const char *level, const char *tag)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ ";
	char expect[64];

	for (size_t i = 0; shape[i] != '\0'; i++) {
		if (shape[i] == 'd' ? (line[i] < '0' || line[i] > '9') : line[i] != shape[i])
			return NULL;
	}

	snprintf(expect, sizeof(expect), "%s [%s] ", level, tag);
	line += strlen(shape);
	if (strncmp(line, expect, strlen(expect)) != 0)
		return NULL;
	return line + strlen(expect);
}

static void
test_line_shape(void)
{
	const char *line, *msg;

	ush_log_set_level(CFG_LOG_INFO);
	ush_log_set_worker(1);
	ush_log(USH_LOG_ERROR, "connect() to '%s' failed", "10.0.0.7:80");
	ush_log_set_worker(-1);

	line = captured();
	msg = after_prefix(line, "error", "w1");
	REQUIRE(msg != NULL);
	CHECK_EQ_STR(msg, "connect() to '10.0.0.7:80' failed\n");
}

static void
test_timestamp_is_now_utc(void)
{
	struct tm tm = {0};
	char stamp[32];
	time_t before = time(NULL), stamped;

	ush_log_format_time(ush_log_now_unix_ms(), stamp, sizeof(stamp));
	REQUIRE(strptime(stamp, "%Y-%m-%dT%H:%M:%S", &tm) != NULL);
	stamped = timegm(&tm);
	CHECK(stamped >= before - 1 && stamped <= time(NULL) + 1);

	ush_log_format_time(1796316000123ull, stamp, sizeof(stamp));
	CHECK_EQ_STR(stamp, "2026-12-03T16:40:00.123Z");
}

static void
test_levels(void)
{
	const char *out;

	ush_log_set_level(CFG_LOG_WARN);
	CHECK(!ush_log_enabled(USH_LOG_INFO));
	CHECK(ush_log_enabled(USH_LOG_WARN));
	ush_log(USH_LOG_DEBUG, "debug line");
	ush_log(USH_LOG_INFO, "info line");
	ush_log(USH_LOG_WARN, "warn line");
	ush_log(USH_LOG_ALERT, "alert line");
	out = captured();
	CHECK_EQ_INT(count_lines(out), 2);
	CHECK(strstr(out, " warn [main] warn line\n") != NULL);
	CHECK(strstr(out, " alert [main] alert line\n") != NULL);

	/* Alerts are written whatever the level. */
	ush_log_set_level(CFG_LOG_ERROR);
	ush_log(USH_LOG_WARN, "warn line");
	ush_log(USH_LOG_ALERT, "broken invariant");
	out = captured();
	CHECK_EQ_INT(count_lines(out), 1);
	CHECK(strstr(out, " alert [main] broken invariant\n") != NULL);

	ush_log_set_level(CFG_LOG_DEBUG);
	ush_log(USH_LOG_DEBUG, "debug line");
	CHECK(strstr(captured(), " debug [main] debug line\n") != NULL);
	ush_log_set_level(CFG_LOG_INFO);
}

static void *
log_from_thread(void *arg)
{
	ush_log(USH_LOG_INFO, "from a new thread");
	return arg;
}

static void
test_thread_tags(void)
{
	pthread_t t;

	ush_log_set_thread("stats");
	ush_log(USH_LOG_INFO, "tagged");
	CHECK(after_prefix(captured(), "info", "stats") != NULL);

	/* The tag is per thread: a new one starts as "main". */
	pthread_create(&t, NULL, log_from_thread, NULL);
	pthread_join(t, NULL);
	CHECK(after_prefix(captured(), "info", "main") != NULL);

	ush_log_set_thread("a-tag-far-too-long-to-keep");
	ush_log(USH_LOG_INFO, "cut");
	CHECK(after_prefix(captured(), "info", "a-tag-far-too-l") != NULL);
	ush_log_set_worker(-1);
}

static void
test_hostile_bytes_stay_on_one_line(void)
{
	const char *out;

	ush_log(USH_LOG_INFO, "bad sni '%s'",
		"evil\n2026-01-01T00:00:00.000Z alert [w0] \x1b[31mx\xff");
	out = captured();
	CHECK_EQ_INT(count_lines(out), 1);
	CHECK(strstr(out,
		     "bad sni 'evil\\x0a2026-01-01T00:00:00.000Z alert [w0] \\x1b[31mx\\xff'\n") !=
	      NULL);
}

static void
test_long_message_is_cut(void)
{
	char *big = malloc(5000);
	const char *out;
	size_t len;

	REQUIRE(big != NULL);
	memset(big, 'a', 4999);
	big[4999] = '\0';
	ush_log(USH_LOG_INFO, "%s", big);
	out = captured();
	len = strlen(out);
	CHECK_EQ_INT(count_lines(out), 1);
	CHECK(len <= USH_LOG_LINE_MAX + 64);
	CHECK(len > 4 && strcmp(out + len - 4, "...\n") == 0);

	/* Escapes that would overflow are cut whole, never half-written. */
	memset(big, '\x01', 4999);
	ush_log(USH_LOG_INFO, "%s", big);
	out = captured();
	len = strlen(out);
	CHECK(len > 8 && strcmp(out + len - 8, "\\x01...\n") == 0);
	free(big);
}

static void
test_errno_suffix(void)
{
	ush_log_errno(USH_LOG_ERROR, -ECONNREFUSED, "connect() to '%s' failed", "10.0.0.7:80");
	CHECK(strstr(captured(), "connect() to '10.0.0.7:80' failed (Connection refused)\n") !=
	      NULL);

	ush_log_errno(USH_LOG_ERROR, EMFILE, "accept4() failed");
	CHECK(strstr(captured(), "accept4() failed (Too many open files)\n") != NULL);
}

/* Put a real error on the queue: PEM garbage that no decoder takes. */
static unsigned long
provoke_openssl_error(void)
{
	BIO *bio = BIO_new_mem_buf("-----BEGIN PRIVATE KEY-----\nnot base64\n", -1);
	EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);

	EVP_PKEY_free(key);
	BIO_free(bio);
	return ERR_peek_last_error();
}

static void
test_ssl_suffix(void)
{
	char expect[300], reason[256];
	unsigned long err;

	ERR_clear_error();
	err = provoke_openssl_error();
	REQUIRE(err != 0);
	ERR_error_string_n(err, reason, sizeof(reason));
	snprintf(expect, sizeof(expect), "PEM_read_bio_PrivateKey() failed (%s)\n", reason);

	ush_log_ssl(USH_LOG_ERROR, "PEM_read_bio_PrivateKey() failed");
	CHECK(strstr(captured(), expect) != NULL);
	CHECK_EQ_INT(ERR_peek_error(), 0);

	/* An empty queue says so rather than inventing a reason. */
	ush_log_ssl(USH_LOG_ERROR, "SSL_do_handshake() failed");
	CHECK(strstr(captured(), "SSL_do_handshake() failed (no openssl reason)\n") != NULL);

	/* A disabled level writes nothing but still clears the queue. */
	REQUIRE(provoke_openssl_error() != 0);
	ush_log_ssl(USH_LOG_DEBUG, "quiet");
	CHECK_EQ_STR(captured(), "");
	CHECK_EQ_INT(ERR_peek_error(), 0);
}

static void
test_ratelimit_counts(void)
{
	struct ush_ratelimit rl = USH_RATELIMIT_INIT(3, 1000);
	uint64_t suppressed = 99;
	int allowed = 0;

	for (int i = 0; i < 8; i++)
		allowed += ush_ratelimit_allow(&rl, 10000 + (uint64_t)i, &suppressed);
	CHECK_EQ_INT(allowed, 3);
	CHECK_EQ_INT(rl.suppressed, 5);

	/* Still the same window. */
	CHECK(!ush_ratelimit_allow(&rl, 10999, &suppressed));
	CHECK_EQ_INT(rl.suppressed, 6);

	/* A new window: the first line learns what was held back. */
	CHECK(ush_ratelimit_allow(&rl, 11000, &suppressed));
	CHECK_EQ_INT(suppressed, 6);
	CHECK(ush_ratelimit_allow(&rl, 11001, &suppressed));
	CHECK_EQ_INT(suppressed, 0);
	CHECK(ush_ratelimit_allow(&rl, 11002, &suppressed));
	CHECK(!ush_ratelimit_allow(&rl, 11003, &suppressed));

	/* A quiet window reports nothing held back. */
	CHECK(ush_ratelimit_allow(&rl, 20000, &suppressed));
	CHECK_EQ_INT(suppressed, 1);
	CHECK(ush_ratelimit_allow(&rl, 30000, &suppressed));
	CHECK_EQ_INT(suppressed, 0);
}

static void
test_log_limited_lines(void)
{
	struct ush_ratelimit rl = USH_RATELIMIT_INIT(2, 300);
	struct timespec wait = {0, 350 * 1000000L};
	const char *out;

	for (int i = 0; i < 10; i++)
		ush_log_limited(&rl, USH_LOG_INFO, "peer sent garbage %d", i);
	out = captured();
	CHECK_EQ_INT(count_lines(out), 2);
	CHECK(strstr(out, "peer sent garbage 0\n") != NULL);
	CHECK(strstr(out, "peer sent garbage 1\n") != NULL);

	nanosleep(&wait, NULL);
	ush_log_limited(&rl, USH_LOG_INFO, "peer sent garbage again");
	out = captured();
	CHECK_EQ_INT(count_lines(out), 2);
	CHECK(strstr(out, "] suppressed 8 similar messages\n") != NULL);
	CHECK(strstr(out, "] peer sent garbage again\n") != NULL);

	/* A disabled level does not use the budget up. */
	rl = (struct ush_ratelimit)USH_RATELIMIT_INIT(1, 60000);
	ush_log_limited(&rl, USH_LOG_DEBUG, "hidden");
	ush_log_limited(&rl, USH_LOG_INFO, "shown");
	CHECK(strstr(captured(), "] shown\n") != NULL);
}

static void
test_addr_str(void)
{
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(51234)};
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(443)};
	struct sockaddr un = {.sa_family = AF_UNIX};
	char buf[USH_ADDR_STRLEN];

	inet_pton(AF_INET, "192.0.2.1", &in.sin_addr);
	inet_pton(AF_INET6, "2001:db8::1", &in6.sin6_addr);
	CHECK_EQ_STR(ush_addr_str((struct sockaddr *)&in, buf, sizeof(buf)), "192.0.2.1:51234");
	CHECK_EQ_STR(ush_addr_str((struct sockaddr *)&in6, buf, sizeof(buf)), "[2001:db8::1]:443");
	CHECK_EQ_STR(ush_addr_str(&un, buf, sizeof(buf)), "-");
	CHECK_EQ_STR(ush_addr_str(NULL, buf, sizeof(buf)), "-");
}

int
main(void)
{
	if (pipe2(pipe_fds, O_NONBLOCK | O_CLOEXEC) != 0)
		return 1;
	ush_log_set_fd(pipe_fds[1]);

	RUN(test_line_shape);
	RUN(test_timestamp_is_now_utc);
	RUN(test_levels);
	RUN(test_thread_tags);
	RUN(test_hostile_bytes_stay_on_one_line);
	RUN(test_long_message_is_cut);
	RUN(test_errno_suffix);
	RUN(test_ssl_suffix);
	RUN(test_ratelimit_counts);
	RUN(test_log_limited_lines);
	RUN(test_addr_str);
	return check_done();
}
