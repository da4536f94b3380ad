/*
 * The access log: both formats exactly, hostile SNI, the file destination
 * with reopen, buffering, and whole lines from several threads at once.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "fixtures.h"
#include "log.h"
#include "ops_util.h"

#define FIXED_TIME_MS 1796316000123ull /* 2026-12-03T16:40:00.123Z */

static char tmpdir[256];
static struct sockaddr_in client4;

static struct ush_access_record
full_record(void)
{
	return (struct ush_access_record){
		.time_ms = FIXED_TIME_MS,
		.client = (const struct sockaddr *)&client4,
		.listener = "web",
		.sni = "example.com",
		.alpn = (const unsigned char *)"h2 and more bytes", /* not NUL-terminated */
		.alpn_len = 2,
		.tls_version = "TLSv1.3",
		.resumed = true,
		.ticket = "current",
		.server = "app-1",
		.bytes_in = 512,
		.bytes_out = 2048,
		.duration_ms = 35,
		.reason = "done",
	};
}

static const char *
format(const struct ush_access_record *rec, enum cfg_log_format f)
{
	static char line[USH_ACCESS_LINE_MAX];

	if (ush_access_log_format(rec, f, line, sizeof(line)) < 0)
		return "(refused)";
	return line;
}

static void
test_text_full(void)
{
	struct ush_access_record rec = full_record();

	CHECK_EQ_STR(format(&rec, CFG_LOG_FORMAT_TEXT),
		     "time=2026-12-03T16:40:00.123Z client=192.0.2.1:51234 listener=web "
		     "sni=example.com alpn=h2 tls=TLSv1.3 resumed=yes ticket=current server=app-1 "
		     "bytes_in=512 bytes_out=2048 duration_ms=35 reason=done\n");
}

static void
test_text_unknown_fields(void)
{
	struct ush_access_record rec = {.time_ms = FIXED_TIME_MS, .reason = "handshake_failed"};

	CHECK_EQ_STR(format(&rec, CFG_LOG_FORMAT_TEXT),
		     "time=2026-12-03T16:40:00.123Z client=- listener=- sni=- alpn=- tls=- "
		     "resumed=no ticket=- server=- bytes_in=0 bytes_out=0 duration_ms=0 "
		     "reason=handshake_failed\n");
}

static void
test_text_quoting(void)
{
	struct ush_access_record rec = {.time_ms = FIXED_TIME_MS};
	const char *line;

	/* A literal "-" and an empty value must not read as "unknown". */
	rec.sni = "-";
	rec.server = "";
	line = format(&rec, CFG_LOG_FORMAT_TEXT);
	CHECK(strstr(line, " sni=\"-\" ") != NULL);
	CHECK(strstr(line, " server=\"\" ") != NULL);

	/* Quotes, backslashes, '=', spaces, escapes and non-ASCII bytes. */
	rec.sni = "ev\"il x=1 \\ \x1b[0m\n\xc3\xa9\xff";
	line = format(&rec, CFG_LOG_FORMAT_TEXT);
	CHECK(strstr(line, " sni=\"ev\\\"il x=1 \\\\ \\x1b[0m\\x0a\\xc3\\xa9\\xff\" ") != NULL);
	CHECK_EQ_INT(strchr(line, '\n') - line, strlen(line) - 1);
}

static void
test_json_full(void)
{
	struct ush_access_record rec = full_record();

	CHECK_EQ_STR(format(&rec, CFG_LOG_FORMAT_JSON),
		     "{\"time\":\"2026-12-03T16:40:00.123Z\",\"client\":\"192.0.2.1:51234\","
		     "\"listener\":\"web\",\"sni\":\"example.com\",\"alpn\":\"h2\","
		     "\"tls\":\"TLSv1.3\",\"resumed\":true,\"ticket\":\"current\","
		     "\"server\":\"app-1\",\"bytes_in\":512,\"bytes_out\":2048,"
		     "\"duration_ms\":35,\"reason\":\"done\"}\n");

	rec = (struct ush_access_record){.time_ms = FIXED_TIME_MS};
	CHECK(strstr(format(&rec, CFG_LOG_FORMAT_JSON),
		     "\"client\":null,\"listener\":null,\"sni\":null,\"alpn\":null,\"tls\":null,"
		     "\"resumed\":false,") != NULL);
}

static void
test_json_hostile_sni(void)
{
	struct ush_access_record rec = {.time_ms = FIXED_TIME_MS};
	const char *line;

	rec.sni = "a\"b\\c\n\x01\x7f"
		  "\xc3\xa9"         /* e-acute: valid, kept */
		  "\xff"             /* never valid */
		  "\xc0\xaf"         /* overlong '/' */
		  "\xed\xa0\x80"     /* a surrogate */
		  "\xf0\x9f\x98\x80" /* U+1F600: valid, kept */
		  "\xe2\x82";        /* cut short */
	line = format(&rec, CFG_LOG_FORMAT_JSON);
	CHECK(strstr(line, "\"sni\":\"a\\\"b\\\\c\\n\\u0001\\u007f\xc3\xa9"
			   "\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\xf0\x9f\x98\x80"
			   "\\ufffd\\ufffd\",") != NULL);
}

/*
 * Random hostile values through Python's json module, a parser that is
 * not ours. Each JSON line is followed by the raw value in hex. Every line
 * must parse, and the value must come back: valid UTF-8 exactly, invalid
 * bytes as U+FFFD (Python drops those where we replace them, so both
 * sides are compared without U+FFFD).
 */
static const char round_trip_script[] =
	"import json,sys\n"
	"n=0\n"
	"lines=sys.stdin.buffer.read().split(b'\\n')\n"
	"for j,h in zip(lines[0::2],lines[1::2]):\n"
	"  o=json.loads(j.decode('utf-8'))\n"
	"  raw=bytes.fromhex(h.decode())[:255]\n"
	"  want=raw.decode('utf-8','ignore').replace('\\ufffd','')\n"
	"  assert o['sni'].replace('\\ufffd','')==want, (raw,o['sni'])\n"
	"  n+=1\n"
	"print(n)\n";

static void
test_json_random_values_round_trip(void)
{
	char cmd[1024], out[32] = "";
	FILE *py;

	if (system("python3 -c 'import json' >/dev/null 2>&1") != 0) {
		printf("# python3 missing: json round trip not checked\n");
		return;
	}

	snprintf(cmd, sizeof(cmd), "python3 -c \"%s\" > %s/py.out", round_trip_script, tmpdir);
	py = popen(cmd, "w");
	REQUIRE(py != NULL);

	srandom(42);
	for (int i = 0; i < 2000; i++) {
		char sni[300];
		size_t len = (size_t)(random() % 299);
		struct ush_access_record rec = {.listener = "fuzz", .sni = sni};

		for (size_t k = 0; k < len; k++)
			sni[k] = (char)(1 + random() % 255); /* every byte but NUL */
		sni[len] = '\0';
		fputs(format(&rec, CFG_LOG_FORMAT_JSON), py);
		for (size_t k = 0; k < len; k++)
			fprintf(py, "%02x", (unsigned char)sni[k]);
		fputc('\n', py);
	}

	CHECK_EQ_INT(pclose(py), 0);
	snprintf(cmd, sizeof(cmd), "%s/py.out", tmpdir);
	py = fopen(cmd, "r");
	REQUIRE(py != NULL);
	CHECK(fgets(out, sizeof(out), py) != NULL);
	fclose(py);
	CHECK_EQ_STR(out, "2000\n");
}

static void
test_values_are_bounded(void)
{
	char big[1000], line[USH_ACCESS_LINE_MAX];
	struct ush_access_record rec = {.time_ms = FIXED_TIME_MS};
	int n;

	/* The worst case: every string at the limit, all of it escaped. */
	memset(big, 0xff, sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	rec.listener = rec.sni = rec.tls_version = rec.ticket = rec.server = rec.reason = big;
	rec.alpn = (const unsigned char *)big;
	rec.alpn_len = sizeof(big) - 1;
	n = ush_access_log_format(&rec, CFG_LOG_FORMAT_JSON, line, sizeof(line));
	CHECK(n > 0 && n <= USH_ACCESS_LINE_MAX);
	CHECK(n > 0 && strstr(line, "\"sni\":\"") != NULL);

	/* Each value is cut at USH_ACCESS_VALUE_MAX bytes. */
	memset(big, 'a', sizeof(big) - 1);
	rec = (struct ush_access_record){.time_ms = FIXED_TIME_MS, .sni = big};
	n = ush_access_log_format(&rec, CFG_LOG_FORMAT_TEXT, line, sizeof(line));
	REQUIRE(n > 0);
	CHECK(strstr(line, "sni=aaa") != NULL);
	CHECK_EQ_INT(strspn(strstr(line, "sni=") + 4, "a"), USH_ACCESS_VALUE_MAX);

	/* A buffer too small is refused, never overrun. */
	CHECK_EQ_INT(ush_access_log_format(&rec, CFG_LOG_FORMAT_TEXT, line, 40), -ENOSPC);
}

static void
test_ipv6_client(void)
{
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(443)};
	struct ush_access_record rec = {.time_ms = FIXED_TIME_MS};

	inet_pton(AF_INET6, "2001:db8::1", &in6.sin6_addr);
	rec.client = (const struct sockaddr *)&in6;
	CHECK(strstr(format(&rec, CFG_LOG_FORMAT_TEXT), " client=[2001:db8::1]:443 ") != NULL);
	CHECK(strstr(format(&rec, CFG_LOG_FORMAT_JSON), "\"client\":\"[2001:db8::1]:443\"") !=
	      NULL);
}

/* ---- destinations ---------------------------------------------------------- */

/* The whole file; valid until the next call. NULL if it cannot be read. */
static char *
slurp(const char *path)
{
	static char *buf;
	FILE *f = fopen(path, "r");
	struct stat st;
	size_t n;

	free(buf);
	buf = NULL;
	if (f == NULL)
		return NULL;

	if (fstat(fileno(f), &st) == 0)
		buf = malloc((size_t)st.st_size + 1);
	if (buf != NULL) {
		n = fread(buf, 1, (size_t)st.st_size, f);
		buf[n] = '\0';
	}
	fclose(f);
	return buf;
}

static size_t
count_lines(const char *s)
{
	size_t n = 0;

	if (s == NULL)
		return 0;
	for (size_t i = 0; s[i] != '\0'; i++)
		n += s[i] == '\n';
	return n;
}

static void
path_in_tmp(char *buf, size_t cap, const char *name)
{
	snprintf(buf, cap, "%s/%s", tmpdir, name);
}

static void
test_file_and_reopen(void)
{
	char path[300], rotated[300];
	struct cfg_log log = {.access = CFG_ACCESS_FILE, .access_path = path};
	struct ush_access_record rec = full_record();
	int fds = ops_count_fds();

	path_in_tmp(path, sizeof(path), "access.log");
	path_in_tmp(rotated, sizeof(rotated), "access.log.1");
	REQUIRE(ush_access_log_open(&log) == 0);
	CHECK_EQ_INT(ops_count_fds(), fds + 1);

	ush_access_log_write(&rec);
	CHECK_EQ_STR(slurp(path), format(&rec, CFG_LOG_FORMAT_TEXT));

	/* logrotate moves the file; lines follow it until the reopen. */
	REQUIRE(rename(path, rotated) == 0);
	ush_access_log_write(&rec);
	CHECK_EQ_INT(ush_access_log_reopen(), 0);
	CHECK_EQ_INT(ops_count_fds(), fds + 1);
	rec.listener = "after-reopen";
	ush_access_log_write(&rec);

	CHECK_EQ_INT(count_lines(slurp(rotated)), 2);
	CHECK_EQ_INT(count_lines(slurp(path)), 1);
	CHECK(strstr(slurp(path), "listener=after-reopen") != NULL);

	/* A reload to JSON changes the format of the same file. */
	log.format = CFG_LOG_FORMAT_JSON;
	REQUIRE(ush_access_log_open(&log) == 0);
	ush_access_log_write(&rec);
	CHECK(strstr(slurp(path), "\n{\"time\":") != NULL);

	ush_access_log_close();
	CHECK_EQ_INT(ops_count_fds(), fds);
}

static void
test_open_failure_keeps_old_destination(void)
{
	char path[300], bad[300];
	struct cfg_log log = {.access = CFG_ACCESS_FILE, .access_path = path};
	struct ush_access_record rec = full_record();

	path_in_tmp(path, sizeof(path), "keep.log");
	path_in_tmp(bad, sizeof(bad), "no-such-dir/access.log");
	REQUIRE(ush_access_log_open(&log) == 0);

	log.access_path = bad;
	CHECK_EQ_INT(ush_access_log_open(&log), -ENOENT);
	ush_access_log_write(&rec);
	CHECK_EQ_INT(count_lines(slurp(path)), 1);

	/* Off writes nothing; on again resumes. */
	log.access = CFG_ACCESS_OFF;
	CHECK_EQ_INT(ush_access_log_open(&log), 0);
	ush_access_log_write(&rec);
	CHECK_EQ_INT(count_lines(slurp(path)), 1);

	ush_access_log_close();
}

static void
test_stderr_destination(void)
{
	struct cfg_log log = {.access = CFG_ACCESS_STDERR, .format = CFG_LOG_FORMAT_JSON};
	struct ush_access_record rec = full_record();
	int pipe_fds[2], saved = dup(2), err;
	char buf[4096];

	REQUIRE(saved >= 0 && pipe(pipe_fds) == 0);
	dup2(pipe_fds[1], 2);
	close(pipe_fds[1]);

	CHECK_EQ_INT(ush_access_log_open(&log), 0);
	dup2(saved, 2); /* the log holds its own duplicate */
	close(saved);
	ush_access_log_write(&rec);
	ush_access_log_close(); /* the last write end: EOF for the reader */

	ops_read_all(pipe_fds[0], buf, sizeof(buf), 1000, &err);
	close(pipe_fds[0]);
	CHECK_EQ_STR(buf, format(&rec, CFG_LOG_FORMAT_JSON));
}

static void
test_write_errors_are_counted(void)
{
	char dev_full[] = "/dev/full";
	struct cfg_log log = {.access = CFG_ACCESS_FILE, .access_path = dev_full};
	struct ush_access_record rec = full_record();
	uint64_t lost = ush_access_log_lost();

	if (access("/dev/full", W_OK) != 0) {
		printf("# /dev/full missing: lost lines not checked\n");
		return;
	}

	REQUIRE(ush_access_log_open(&log) == 0);
	ush_access_log_write(&rec);
	ush_access_log_write(&rec);
	CHECK_EQ_INT(ush_access_log_lost(), lost + 2);
	ush_access_log_close();
}

static void
test_buffered_until_flush(void)
{
	char path[300];
	struct cfg_log log = {.access = CFG_ACCESS_FILE, .access_path = path};
	struct ush_access_record rec = full_record();
	const char *text;
	size_t len;

	path_in_tmp(path, sizeof(path), "buffered.log");
	REQUIRE(ush_access_log_open(&log) == 0);
	ush_access_log_set_buffered(true);

	for (int i = 0; i < 3; i++)
		ush_access_log_write(&rec);
	CHECK_EQ_STR(slurp(path), "");
	ush_access_log_flush();
	CHECK_EQ_INT(count_lines(slurp(path)), 3);

	/* More than PIPE_BUF: whole lines go out early, the rest at the flush. */
	for (int i = 0; i < 100; i++)
		ush_access_log_write(&rec);
	text = slurp(path);
	REQUIRE(text != NULL);
	len = strlen(text);
	CHECK(count_lines(text) > 3 && count_lines(text) < 103);
	CHECK(len > 0 && text[len - 1] == '\n');
	ush_access_log_flush();
	CHECK_EQ_INT(count_lines(slurp(path)), 103);

	ush_access_log_set_buffered(false);
	ush_access_log_close();
}

struct writer_arg {
	int id;
	bool buffered;
};

static void *
write_many(void *p)
{
	const struct writer_arg *arg = p;
	char listener[16], sni[200];
	struct ush_access_record rec = full_record();

	snprintf(listener, sizeof(listener), "t%d", arg->id);
	rec.listener = listener;
	rec.sni = sni;
	ush_access_log_set_buffered(arg->buffered);

	for (int i = 0; i < 2000; i++) {
		size_t n = (size_t)(i * 7 + arg->id) % (sizeof(sni) - 1);

		memset(sni, 'a' + arg->id, n); /* lines of many lengths */
		sni[n] = '\0';
		ush_access_log_write(&rec);
		if (arg->buffered && i % 7 == 0)
			ush_access_log_flush();
	}

	ush_access_log_flush();
	return NULL;
}

/* Every line must be whole, whichever thread wrote it and however. */
static void
test_threads_write_whole_lines(void)
{
	char path[300];
	struct cfg_log log = {.access = CFG_ACCESS_FILE, .access_path = path};
	struct writer_arg args[4] = {{0, false}, {1, true}, {2, false}, {3, true}};
	pthread_t threads[4];
	size_t per_thread[4] = {0}, lines = 0;
	char *text, *save = NULL;

	path_in_tmp(path, sizeof(path), "threads.log");
	REQUIRE(ush_access_log_open(&log) == 0);
	for (int i = 0; i < 4; i++)
		pthread_create(&threads[i], NULL, write_many, &args[i]);
	for (int i = 0; i < 4; i++)
		pthread_join(threads[i], NULL);
	ush_access_log_close();

	text = slurp(path);
	REQUIRE(text != NULL);
	for (char *l = strtok_r(text, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
		char *tag = strstr(l, " listener=t");
		size_t len = strlen(l);

		lines++;
		CHECK(strncmp(l, "time=", 5) == 0);
		CHECK(len > 11 && strcmp(l + len - 11, "reason=done") == 0);
		if (tag != NULL && tag[11] >= '0' && tag[11] <= '3')
			per_thread[tag[11] - '0']++;
	}

	CHECK_EQ_INT(lines, 8000);
	for (int i = 0; i < 4; i++)
		CHECK_EQ_INT(per_thread[i], 2000);
}

int
main(void)
{
	int rc;

	client4 = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(51234)};
	inet_pton(AF_INET, "192.0.2.1", &client4.sin_addr);
	if (fixture_tmpdir(tmpdir, sizeof(tmpdir)) != 0)
		return 1;

	RUN(test_text_full);
	RUN(test_text_unknown_fields);
	RUN(test_text_quoting);
	RUN(test_json_full);
	RUN(test_json_hostile_sni);
	RUN(test_json_random_values_round_trip);
	RUN(test_values_are_bounded);
	RUN(test_ipv6_client);
	RUN(test_file_and_reopen);
	RUN(test_open_failure_keeps_old_destination);
	RUN(test_stderr_destination);
	RUN(test_write_errors_are_counted);
	RUN(test_buffered_until_flush);
	RUN(test_threads_write_whole_lines);

	rc = check_done();
	fixture_rmdir(tmpdir);
	return rc;
}
