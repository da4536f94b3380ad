/*
 * The metrics endpoint against real sockets on 127.0.0.1: answers, bad
 * clients, the read timeout, the client cap, and no descriptor leaks.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cfg.h"
#include "check.h"
#include "ops_util.h"
#include "stats.h"

#define TIMEOUT_MS 200  /* the server's read timeout in these tests */
#define WAIT_MS    5000 /* how long a test waits for anything at all */

static struct ush_conn_stats w0, w1;
static struct ush_conn_stats *workers[] = {&w0, &w1};
static const char *const reasons[USH_CLOSE_REASONS] = {NULL, "done"};
static struct ush_stats_sources sources = {
	.workers = workers,
	.n_workers = 2,
	.close_reason_names = reasons,
};

static void
loopback(struct cfg_addr *a, unsigned port)
{
	struct sockaddr_in *in = (struct sockaddr_in *)&a->ss;

	memset(a, 0, sizeof(*a));
	in->sin_family = AF_INET;
	in->sin_port = htons((uint16_t)port);
	in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a->len = sizeof(*in);
}

static struct ush_stats_server *
start(unsigned max_clients)
{
	struct ush_stats_server_opts opts = {.read_timeout_ms = TIMEOUT_MS,
					     .max_clients = max_clients};
	struct ush_stats_server *srv = NULL;
	struct cfg_addr bind_addr;

	loopback(&bind_addr, 0);
	if (ush_stats_server_start_opts(&bind_addr, &sources, &opts, &srv) != 0)
		return NULL;
	return srv;
}

/* Send request on a new connection and read the answer to EOF. */
static char *
exchange(unsigned port, const void *request, size_t len)
{
	static char answer[1 << 16];
	int fd = ops_connect(port), err;

	answer[0] = '\0';
	if (fd < 0)
		return answer;
	if (len > 0)
		ops_send_all(fd, request, len);
	ops_read_all(fd, answer, sizeof(answer), WAIT_MS, &err);
	close(fd);
	return answer;
}

static char *
get(unsigned port, const char *request)
{
	return exchange(port, request, strlen(request));
}

static const char *
body_of(const char *answer)
{
	const char *b = strstr(answer, "\r\n\r\n");

	return b != NULL ? b + 4 : "";
}

static void
test_metrics_answer(void)
{
	struct ush_stats_server *srv = start(0);
	const char *answer, *body;
	char length[64];

	REQUIRE(srv != NULL);
	USH_STAT_ADD(w1.conns_accepted, 42);
	USH_STAT_ADD(w0.closes[1], 5);

	answer = get(ush_stats_server_port(srv), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
	body = body_of(answer);
	CHECK(strncmp(answer, "HTTP/1.1 200 OK\r\n", 17) == 0);
	CHECK(strstr(answer, "\r\nContent-Type: text/plain; version=0.0.4") != NULL);
	CHECK(strstr(answer, "\r\nConnection: close\r\n") != NULL);
	snprintf(length, sizeof(length), "\r\nContent-Length: %zu\r\n", strlen(body));
	CHECK(strstr(answer, length) != NULL);
	CHECK(strstr(body, "\nusher_connections_accepted_total{worker=\"1\"} 42\n") != NULL);
	CHECK(strstr(body, "\nusher_connections_closed_total{worker=\"0\",reason=\"done\"} 5\n") !=
	      NULL);

	/* Every scrape reads the counters afresh. */
	USH_STAT_ADD(w1.conns_accepted, 1);
	body = body_of(get(ush_stats_server_port(srv), "GET /metrics HTTP/1.0\r\n\r\n"));
	CHECK(strstr(body, "\nusher_connections_accepted_total{worker=\"1\"} 43\n") != NULL);

	ush_stats_server_stop(srv);
}

static void
test_error_answers(void)
{
	struct ush_stats_server *srv = start(0);
	unsigned port;
	const char *answer;

	REQUIRE(srv != NULL);
	port = ush_stats_server_port(srv);

	CHECK(strncmp(get(port, "GET /nope HTTP/1.1\r\n\r\n"), "HTTP/1.1 404 ", 13) == 0);

	answer = get(port, "POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
	CHECK(strncmp(answer, "HTTP/1.1 405 ", 13) == 0);
	CHECK(strstr(answer, "\r\nAllow: GET\r\n") != NULL);

	CHECK(strncmp(get(port, "GET /metrics HTTP/9.9\r\n\r\n"), "HTTP/1.1 400 ", 13) == 0);
	CHECK(strncmp(get(port, "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03"), "HTTP/1.1 400 ",
		      13) == 0);

	ush_stats_server_stop(srv);
}

static void
test_garbage_and_oversize(void)
{
	struct ush_stats_server *srv = start(0);
	char *junk = malloc(20000);
	unsigned port;

	REQUIRE(srv != NULL && junk != NULL);
	port = ush_stats_server_port(srv);

	/* Random binary: always a 400, and the server lives on. */
	srandom(11);
	for (int i = 0; i < 20; i++) {
		size_t len = 1 + (size_t)(random() % 2000);

		for (size_t k = 0; k < len; k++)
			junk[k] = (char)(random() % 256);
		junk[0] = (char)0x80; /* never a method byte */
		CHECK(strncmp(exchange(port, junk, len), "HTTP/1.1 400 ", 13) == 0);
	}

	/* Headers that never end: 431 at 8 KiB, with more still arriving. */
	memset(junk, 'a', 20000);
	memcpy(junk, "GET /metrics HTTP/1.1\r\nX-Pad: ", 30);
	CHECK(strncmp(exchange(port, junk, 20000), "HTTP/1.1 431 ", 13) == 0);

	CHECK(strncmp(get(port, "GET /metrics HTTP/1.1\r\n\r\n"), "HTTP/1.1 200 ", 13) == 0);
	free(junk);
	ush_stats_server_stop(srv);
}

static void
test_trickled_request(void)
{
	struct ush_stats_server *srv = start(0);
	const char *parts[] = {"GE", "T /metr", "ics HTTP/1.1\r", "\nHost: x\r\n", "\r\n"};
	struct timespec pause = {0, 20 * 1000000L};
	char answer[1 << 16];
	int fd, err;

	REQUIRE(srv != NULL);
	fd = ops_connect(ush_stats_server_port(srv));
	REQUIRE(fd >= 0);
	for (size_t i = 0; i < 5; i++) {
		ops_send_all(fd, parts[i], strlen(parts[i]));
		nanosleep(&pause, NULL);
	}
	ops_read_all(fd, answer, sizeof(answer), WAIT_MS, &err);
	close(fd);
	CHECK(strncmp(answer, "HTTP/1.1 200 ", 13) == 0);
	ush_stats_server_stop(srv);
}

/* A client that says nothing, or half a request, is closed unanswered. */
static void
test_silent_clients_time_out(void)
{
	struct ush_stats_server *srv = start(0);
	char answer[256];
	int silent, half, err;

	REQUIRE(srv != NULL);
	silent = ops_connect(ush_stats_server_port(srv));
	half = ops_connect(ush_stats_server_port(srv));
	REQUIRE(silent >= 0 && half >= 0);
	ops_send_all(half, "GET /metrics HTTP/1.1\r\n", 23);

	/* Not before the timeout: the server waits for a request. */
	CHECK(!ops_readable(silent, TIMEOUT_MS / 4));

	CHECK_EQ_INT(ops_read_all(silent, answer, sizeof(answer), WAIT_MS, &err), 0);
	CHECK(err == 0 || err == ECONNRESET);
	CHECK_EQ_INT(ops_read_all(half, answer, sizeof(answer), WAIT_MS, &err), 0);
	CHECK(err == 0 || err == ECONNRESET);

	close(silent);
	close(half);
	ush_stats_server_stop(srv);
}

/*
 * With every slot taken by idle clients, a new client waits in the backlog
 * and is served once the idle ones time out.
 */
static void
test_client_cap(void)
{
	struct ush_stats_server *srv = start(4);
	int idle[6], late;
	char answer[1 << 16];
	int err;

	REQUIRE(srv != NULL);
	for (int i = 0; i < 6; i++)
		idle[i] = ops_connect(ush_stats_server_port(srv));
	late = ops_connect(ush_stats_server_port(srv));
	REQUIRE(late >= 0);
	ops_send_all(late, "GET /metrics HTTP/1.1\r\n\r\n", 25);

	ops_read_all(late, answer, sizeof(answer), WAIT_MS, &err);
	CHECK(strncmp(answer, "HTTP/1.1 200 ", 13) == 0);

	for (int i = 0; i < 6; i++)
		if (idle[i] >= 0)
			close(idle[i]);
	close(late);
	ush_stats_server_stop(srv);
}

static void
test_reset_mid_request(void)
{
	struct ush_stats_server *srv = start(0);
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	int fd;

	REQUIRE(srv != NULL);
	fd = ops_connect(ush_stats_server_port(srv));
	REQUIRE(fd >= 0);
	ops_send_all(fd, "GET /met", 8);
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd); /* RST */

	CHECK(strncmp(get(ush_stats_server_port(srv), "GET /metrics HTTP/1.1\r\n\r\n"),
		      "HTTP/1.1 200 ", 13) == 0);
	ush_stats_server_stop(srv);
}

static void
test_stop_leaks_nothing(void)
{
	int before = ops_count_fds();
	struct ush_stats_server *srv = start(0);
	int idle, half;

	REQUIRE(srv != NULL);
	CHECK(ops_count_fds() > before);
	idle = ops_connect(ush_stats_server_port(srv));
	half = ops_connect(ush_stats_server_port(srv));
	ops_send_all(half, "GET /", 5);
	CHECK(strncmp(get(ush_stats_server_port(srv), "GET /metrics HTTP/1.1\r\n\r\n"),
		      "HTTP/1.1 200 ", 13) == 0);

	/* Stop with clients still connected: they are closed too. */
	ush_stats_server_stop(srv);
	close(idle);
	close(half);
	CHECK_EQ_INT(ops_count_fds(), before);
}

static void
test_bind_failure(void)
{
	int before = ops_count_fds();
	struct ush_stats_server *srv = start(0), *second = NULL;
	struct cfg_addr taken;

	REQUIRE(srv != NULL);
	loopback(&taken, ush_stats_server_port(srv));
	CHECK_EQ_INT(ush_stats_server_start(&taken, &sources, &second), -EADDRINUSE);
	CHECK(second == NULL);
	ush_stats_server_stop(srv);
	CHECK_EQ_INT(ops_count_fds(), before);

	ush_stats_server_stop(NULL);
}

int
main(void)
{
	RUN(test_metrics_answer);
	RUN(test_error_answers);
	RUN(test_garbage_and_oversize);
	RUN(test_trickled_request);
	RUN(test_silent_clients_time_out);
	RUN(test_client_cap);
	RUN(test_reset_mid_request);
	RUN(test_stop_leaks_nothing);
	RUN(test_bind_failure);
	return check_done();
}
