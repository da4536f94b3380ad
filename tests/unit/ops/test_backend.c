/*
 * usher-testbackend as a real process: line echo with its name, PROXY v1
 * and v2 headers, --reset-after, --stall, --max-conns, and a clean exit on
 * SIGTERM. The path of the executable is argv[1].
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "ops_util.h"

#define WAIT_MS 5000

extern char **environ;

static const char *backend_path;

struct backend {
	pid_t pid;
	unsigned port;
};

/* Start the backend with extra arguments; wait for "listening ADDR". */
static int
backend_start(struct backend *b, const char *name, const char *const *extra)
{
	const char *argv[16] = {backend_path, "--listen", "127.0.0.1:0", "--name", name};
	posix_spawn_file_actions_t fa;
	char line[128], *colon;
	int out[2], rc;
	size_t n = 5;

	for (; extra != NULL && *extra != NULL && n < 15; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;

	if (pipe2(out, O_CLOEXEC) != 0)
		return -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	rc = posix_spawn(&b->pid, backend_path, &fa, NULL, (char *const *)(void *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(out[1]);
	if (rc != 0) {
		close(out[0]);
		return -1;
	}

	rc = (int)ops_read_line(out[0], line, sizeof(line), WAIT_MS);
	close(out[0]);
	colon = strrchr(line, ':');
	if (rc < 0 || strncmp(line, "listening 127.0.0.1:", 20) != 0 || colon == NULL)
		return -1;
	b->port = (unsigned)atoi(colon + 1);
	return 0;
}

/* SIGTERM; returns the exit status, or -1 if it did not exit cleanly. */
static int
backend_stop(struct backend *b)
{
	int status;

	kill(b->pid, SIGTERM);
	if (waitpid(b->pid, &status, 0) != b->pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int
say(int fd, const char *text)
{
	return ops_send_all(fd, text, strlen(text));
}

static const char *
answer(int fd)
{
	static char line[1024];

	if (ops_read_line(fd, line, sizeof(line), WAIT_MS) < 0)
		return "(nothing)";
	return line;
}

static void
test_echo_with_name(void)
{
	struct backend b;
	char rest[64];
	int fd, err;

	REQUIRE(backend_start(&b, "app-1", NULL) == 0);
	fd = ops_connect(b.port);
	REQUIRE(fd >= 0);

	say(fd, "hello\nwor");
	CHECK_EQ_STR(answer(fd), "app-1 hello");
	say(fd, "ld\r\n");
	CHECK_EQ_STR(answer(fd), "app-1 world");

	/* A last line without newline is answered at EOF, then closed. */
	say(fd, "bye");
	shutdown(fd, SHUT_WR);
	CHECK_EQ_STR(answer(fd), "app-1 bye");
	CHECK_EQ_INT(ops_read_all(fd, rest, sizeof(rest), WAIT_MS, &err), 0);
	CHECK_EQ_INT(err, 0);
	close(fd);

	CHECK_EQ_INT(backend_stop(&b), 0);
}

static void
test_many_connections_at_once(void)
{
	struct backend b;
	int fds[50];
	char expect[64];

	REQUIRE(backend_start(&b, "app-2", NULL) == 0);
	for (int i = 0; i < 50; i++) {
		char line[32];

		fds[i] = ops_connect(b.port);
		REQUIRE(fds[i] >= 0);
		snprintf(line, sizeof(line), "conn %d\n", i);
		say(fds[i], line);
	}
	for (int i = 49; i >= 0; i--) {
		snprintf(expect, sizeof(expect), "app-2 conn %d", i);
		CHECK_EQ_STR(answer(fds[i]), expect);
		close(fds[i]);
	}
	CHECK_EQ_INT(backend_stop(&b), 0);
}

static void
test_proxy_v1(void)
{
	const char *const args[] = {"--proxy-protocol", NULL};
	struct backend b;
	int fd;

	REQUIRE(backend_start(&b, "app-pp", args) == 0);
	fd = ops_connect(b.port);
	REQUIRE(fd >= 0);
	say(fd, "PROXY TCP4 192.0.2.7 198.51.100.1 40000 443\r\nwhoami\nping\n");
	CHECK_EQ_STR(answer(fd), "proxy 192.0.2.7:40000 sni=- alpn=- version=-");
	CHECK_EQ_STR(answer(fd), "app-pp ping");
	close(fd);

	fd = ops_connect(b.port);
	REQUIRE(fd >= 0);
	say(fd, "PROXY TCP6 2001:db8::7 2001:db8::1 40001 443\r\nwhoami\n");
	CHECK_EQ_STR(answer(fd), "proxy [2001:db8::7]:40001 sni=- alpn=- version=-");
	close(fd);

	fd = ops_connect(b.port);
	REQUIRE(fd >= 0);
	say(fd, "PROXY UNKNOWN\r\nwhoami\n");
	CHECK_EQ_STR(answer(fd), "proxy local sni=- alpn=- version=-");
	close(fd);

	CHECK_EQ_INT(backend_stop(&b), 0);
}

static size_t
tlv(unsigned char *p, unsigned type, const void *value, size_t len)
{
	p[0] = (unsigned char)type;
	p[1] = (unsigned char)(len >> 8);
	p[2] = (unsigned char)len;
	memcpy(p + 3, value, len);
	return 3 + len;
}

/* A v2 PROXY header for TCP over IPv4 with ALPN, authority and SSL TLVs. */
static size_t
build_v2(unsigned char *h, const char *sni)
{
	static const unsigned char sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
					      0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
	unsigned char ssl[64] = {0x01, 0, 0, 0, 0}; /* client: SSL, verify: 0 */
	size_t n = 16, ssl_len = 5;

	memcpy(h, sig, 12);
	h[12] = 0x21; /* v2, PROXY */
	h[13] = 0x11; /* TCP over IPv4 */
	inet_pton(AF_INET, "203.0.113.9", h + n);
	inet_pton(AF_INET, "127.0.0.1", h + n + 4);
	h[n + 8] = 0xc3; /* 50000 */
	h[n + 9] = 0x50;
	h[n + 10] = 0x01; /* 443 */
	h[n + 11] = 0xbb;
	n += 12;

	n += tlv(h + n, 0x01, "h2", 2);
	n += tlv(h + n, 0x02, sni, strlen(sni));
	ssl_len += tlv(ssl + ssl_len, 0x21, "TLSv1.3", 7);
	n += tlv(h + n, 0x20, ssl, ssl_len);

	h[14] = (unsigned char)((n - 16) >> 8);
	h[15] = (unsigned char)(n - 16);
	return n;
}

static void
test_proxy_v2(void)
{
	const char *const args[] = {"--proxy-protocol", NULL};
	unsigned char header[512];
	struct backend b;
	size_t n;
	int fd;

	REQUIRE(backend_start(&b, "app-pp2", args) == 0);
	fd = ops_connect(b.port);
	REQUIRE(fd >= 0);
	n = build_v2(header, "example.com");
	ops_send_all(fd, header, 7); /* split inside the signature */
	ops_send_all(fd, header + 7, n - 7);
	say(fd, "whoami\nping\n");
	CHECK_EQ_STR(answer(fd), "proxy 203.0.113.9:50000 sni=example.com alpn=h2 version=TLSv1.3");
	CHECK_EQ_STR(answer(fd), "app-pp2 ping");
	close(fd);

	/* A hostile SNI is printed escaped, still one line of one token. */
	fd = ops_connect(b.port);
	REQUIRE(fd >= 0);
	n = build_v2(header, "a b\nc");
	ops_send_all(fd, header, n);
	say(fd, "whoami\n");
	CHECK_EQ_STR(answer(fd),
		     "proxy 203.0.113.9:50000 sni=a\\x20b\\x0ac alpn=h2 version=TLSv1.3");
	close(fd);

	CHECK_EQ_INT(backend_stop(&b), 0);
}

static void
test_bad_proxy_header_closes(void)
{
	const char *const args[] = {"--proxy-protocol", NULL};
	unsigned char header[512];
	struct backend b;
	char rest[64];
	int fd, err;
	size_t n;

	REQUIRE(backend_start(&b, "app-pp3", args) == 0);

	fd = ops_connect(b.port);
	REQUIRE(fd >= 0);
	say(fd, "hello\nwhoami\n"); /* no header at all */
	CHECK_EQ_INT(ops_read_all(fd, rest, sizeof(rest), WAIT_MS, &err), 0);
	close(fd);

	fd = ops_connect(b.port);
	REQUIRE(fd >= 0);
	say(fd, "PROXY TCP4 999.0.0.1 1.2.3.4 1 2\r\nwhoami\n");
	CHECK_EQ_INT(ops_read_all(fd, rest, sizeof(rest), WAIT_MS, &err), 0);
	close(fd);

	/* A TLV running past the header's end. */
	fd = ops_connect(b.port);
	REQUIRE(fd >= 0);
	n = build_v2(header, "example.com");
	header[16 + 12 + 2] = 0xff;
	ops_send_all(fd, header, n);
	say(fd, "whoami\n");
	CHECK_EQ_INT(ops_read_all(fd, rest, sizeof(rest), WAIT_MS, &err), 0);
	close(fd);

	CHECK_EQ_INT(backend_stop(&b), 0);
}

static void
test_reset_after(void)
{
	const char *const args[] = {"--reset-after", "10", NULL};
	struct backend b;
	char rest[256];
	int fd, err;

	REQUIRE(backend_start(&b, "rst", args) == 0);
	fd = ops_connect(b.port);
	REQUIRE(fd >= 0);

	/* Lines within the first 10 bytes are answered, then the RST. */
	say(fd, "one\ntwo\nthree\nfour\n");
	ops_read_all(fd, rest, sizeof(rest), WAIT_MS, &err);
	CHECK_EQ_STR(rest, "rst one\nrst two\n");
	CHECK_EQ_INT(err, ECONNRESET);
	close(fd);

	CHECK_EQ_INT(backend_stop(&b), 0);
}

static void
test_stall(void)
{
	const char *const args[] = {"--stall", NULL};
	struct backend b;
	int fd;

	REQUIRE(backend_start(&b, "stall", args) == 0);
	fd = ops_connect(b.port);
	REQUIRE(fd >= 0);
	say(fd, "anyone there?\n");
	CHECK(!ops_readable(fd, 300));

	/* Stopped with the connection open: a clean exit, and it closes. */
	CHECK_EQ_INT(backend_stop(&b), 0);
	CHECK(ops_readable(fd, WAIT_MS));
	close(fd);
}

static void
test_max_conns(void)
{
	const char *const args[] = {"--max-conns", "1", NULL};
	struct backend b;
	char rest[64];
	int first, second, err;

	REQUIRE(backend_start(&b, "one", args) == 0);
	first = ops_connect(b.port);
	REQUIRE(first >= 0);
	say(first, "a\n");
	CHECK_EQ_STR(answer(first), "one a");

	second = ops_connect(b.port);
	REQUIRE(second >= 0);
	say(second, "b\n");
	CHECK_EQ_INT(ops_read_all(second, rest, sizeof(rest), WAIT_MS, &err), 0);
	close(second);

	say(first, "c\n");
	CHECK_EQ_STR(answer(first), "one c");
	close(first);

	CHECK_EQ_INT(backend_stop(&b), 0);
}

static void
test_bad_usage(void)
{
	const char *argv[] = {backend_path, "--listen", "not-an-address", NULL};
	pid_t pid;
	int status = 0;

	REQUIRE(posix_spawn(&pid, backend_path, NULL, NULL, (char *const *)(void *)argv, environ) ==
		0);
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1);

	argv[1] = "--bogus";
	REQUIRE(posix_spawn(&pid, backend_path, NULL, NULL, (char *const *)(void *)argv, environ) ==
		0);
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 2);
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		printf("1..0 # SKIP usage: test_ops_backend PATH-TO-usher-testbackend\n");
		return 77;
	}
	backend_path = argv[1];
	signal(SIGPIPE, SIG_IGN);

	RUN(test_echo_with_name);
	RUN(test_many_connections_at_once);
	RUN(test_proxy_v1);
	RUN(test_proxy_v2);
	RUN(test_bad_proxy_header_closes);
	RUN(test_reset_after);
	RUN(test_stall);
	RUN(test_max_conns);
	RUN(test_bad_usage);
	return check_done();
}
