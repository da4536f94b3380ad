/*
 * stats_server: the metrics endpoint, a small HTTP/1.1 server on a thread
 * of its own. Kernel sockets and poll(2); every socket is non-blocking, so
 * one slow or hostile client never holds up another.
 *
 * A client goes through three phases, each with a deadline:
 *
 *   accept --> READING --(request judged)--> WRITING --(all sent)--> DRAINING
 *                 |                              |      shutdown(WR)    |
 *                 +-- EOF, error, deadline ------+----------------------+--> closed
 *
 * DRAINING reads and drops what the client still sends until it closes:
 * closing a socket with unread bytes makes the kernel send a RST, which
 * can destroy the response before the client has read it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cfg.h"
#include "log.h"
#include "stats.h"
#include "stats_http.h"

#define DRAIN_MS        1000 /* most time given to a client to close */
#define ACCEPT_PAUSE_MS 100  /* after accept4() fails for want of resources */
#define POLL_WAKE       0
#define POLL_LISTEN     1
#define POLL_CLIENTS    2

enum client_phase {
	CLIENT_READING = 0,
	CLIENT_WRITING = 1,
	CLIENT_DRAINING = 2,
};

struct client {
	int fd; /* -1 once closed; the slot is reused after compaction */
	enum client_phase phase;
	uint64_t deadline_ms;
	char *in; /* opts.max_request bytes */
	size_t in_len;
	char *out; /* the whole response */
	size_t out_len;
	size_t out_sent;
};

struct ush_stats_server {
	struct ush_stats_sources src;
	struct ush_stats_server_opts opts;
	int listen_fd;
	int wake_fd;
	unsigned port;
	pthread_t thread;
	bool thread_started;

	/* The server thread's alone while it runs. */
	struct client *clients;
	size_t n_clients;
	struct pollfd *pfds; /* wake, listen, then one per client */
	uint64_t accept_paused_until_ms;
	struct ush_ratelimit accept_errors;
};

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- clients -------------------------------------------------------------- */

static void
close_client(struct client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->in);
	free(c->out);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/* Drop closed clients from the array; order does not matter. */
static void
compact_clients(struct ush_stats_server *srv)
{
	size_t i = 0;

	while (i < srv->n_clients) {
		if (srv->clients[i].fd >= 0) {
			i++;
			continue;
		}
		srv->clients[i] = srv->clients[--srv->n_clients];
	}
}

struct response {
	const char *status;
	const char *extra_headers;
	const char *body; /* when no metrics text */
};

static const struct response responses[] = {
	[USH_HTTP_METRICS] = {"200 OK", "", NULL},
	[USH_HTTP_NOT_FOUND] = {"404 Not Found", "", "not found: try /metrics\n"},
	[USH_HTTP_BAD_METHOD] = {"405 Method Not Allowed", "Allow: GET\r\n",
				 "method not allowed: only GET\n"},
	[USH_HTTP_BAD_REQUEST] = {"400 Bad Request", "", "bad request\n"},
	[USH_HTTP_TOO_LARGE] = {"431 Request Header Fields Too Large", "", "request too large\n"},
};

static const struct response internal_error = {"500 Internal Server Error", "",
					       "metrics could not be rendered\n"};

/* Build c->out for the verdict: headers and body in one buffer. 0 or -ENOMEM. */
static int
build_response(struct ush_stats_server *srv, struct client *c, enum ush_http_verdict verdict)
{
	const struct response *r = &responses[verdict];
	const char *ctype = "text/plain; charset=utf-8";
	struct ush_metrics_writer body;
	const char *text;
	char head[256];
	size_t text_len;
	int head_len;

	ush_metrics_writer_init(&body);
	if (verdict == USH_HTTP_METRICS) {
		ush_stats_render(&srv->src, &body);
		ctype = "text/plain; version=0.0.4; charset=utf-8";
		if (body.error != 0)
			r = &internal_error;
	}

	text = r->body != NULL ? r->body : body.data;
	text_len = r->body != NULL ? strlen(r->body) : body.len;
	head_len = snprintf(head, sizeof(head),
			    "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			    "%sConnection: close\r\n\r\n",
			    r->status, r->body != NULL ? "text/plain; charset=utf-8" : ctype,
			    text_len, r->extra_headers);

	c->out = malloc((size_t)head_len + text_len);
	if (c->out != NULL) {
		memcpy(c->out, head, (size_t)head_len);
		if (text_len > 0)
			memcpy(c->out + head_len, text, text_len);
		c->out_len = (size_t)head_len + text_len;
	}

	ush_metrics_writer_fini(&body);
	return c->out != NULL ? 0 : -ENOMEM;
}

static void
drain_client(struct client *c)
{
	char scratch[1024];

	for (;;) {
		ssize_t n = recv(c->fd, scratch, sizeof(scratch), 0);

		if (n > 0)
			continue;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		close_client(c); /* EOF or error: done */
		return;
	}
}

static void
write_client(struct client *c, uint64_t now)
{
	while (c->out_sent < c->out_len) {
		ssize_t n =
			send(c->fd, c->out + c->out_sent, c->out_len - c->out_sent, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return; /* wait for POLLOUT */
		if (n < 0) {
			close_client(c);
			return;
		}
		c->out_sent += (size_t)n;
	}

	shutdown(c->fd, SHUT_WR);
	c->phase = CLIENT_DRAINING;
	c->deadline_ms = now + DRAIN_MS;
	drain_client(c);
}

static void
read_client(struct ush_stats_server *srv, struct client *c, uint64_t now)
{
	size_t max = srv->opts.max_request;
	enum ush_http_verdict verdict;
	ssize_t n;

	n = recv(c->fd, c->in + c->in_len, max - c->in_len, 0);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		close_client(c); /* gone before asking anything complete */
		return;
	}

	c->in_len += (size_t)n;
	verdict = ush_http_parse(c->in, c->in_len, max);
	if (verdict == USH_HTTP_INCOMPLETE)
		return;

	if (build_response(srv, c, verdict) != 0) {
		ush_log(USH_LOG_ERROR, "no memory for a metrics response, closing the client");
		close_client(c);
		return;
	}

	c->phase = CLIENT_WRITING;
	c->deadline_ms = now + srv->opts.read_timeout_ms;
	write_client(c, now);
}

static void
serve_client(struct ush_stats_server *srv, struct client *c, short revents, uint64_t now)
{
	if (revents == 0)
		return;

	switch (c->phase) {
	case CLIENT_READING:
		read_client(srv, c, now);
		break;
	case CLIENT_WRITING:
		write_client(c, now);
		break;
	case CLIENT_DRAINING:
		drain_client(c);
		break;
	}
}

/* A client past its deadline is closed without an answer. */
static void
expire_clients(struct ush_stats_server *srv, uint64_t now)
{
	for (size_t i = 0; i < srv->n_clients; i++) {
		struct client *c = &srv->clients[i];

		if (c->fd >= 0 && c->deadline_ms <= now)
			close_client(c);
	}
}

/* ---- accepting ------------------------------------------------------------ */

/* Errors accept4() passes on from a connection that died in the queue. */
static bool
is_transient_accept_error(int err)
{
	switch (err) {
	case ECONNABORTED:
	case EPROTO:
	case ENETDOWN:
	case ENOPROTOOPT:
	case EHOSTDOWN:
	case ENONET:
	case EHOSTUNREACH:
	case EOPNOTSUPP:
	case ENETUNREACH:
	case EPERM: /* a firewall rule */
		return true;
	default:
		return false;
	}
}

static void
pause_accepting(struct ush_stats_server *srv, int err, uint64_t now)
{
	char reason[64];

	ush_log_limited(&srv->accept_errors, USH_LOG_ERROR,
			"accept4() on the stats listener failed (%s), pausing for %d ms",
			strerror_r(err, reason, sizeof(reason)), ACCEPT_PAUSE_MS);
	srv->accept_paused_until_ms = now + ACCEPT_PAUSE_MS;
}

static void
accept_clients(struct ush_stats_server *srv, uint64_t now)
{
	while (srv->n_clients < srv->opts.max_clients) {
		struct client *c = &srv->clients[srv->n_clients];
		int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0 && (errno == EINTR || is_transient_accept_error(errno)))
			continue;
		if (fd < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (fd < 0) {
			pause_accepting(srv, errno, now); /* EMFILE, ENOBUFS, ... */
			return;
		}

		memset(c, 0, sizeof(*c));
		c->fd = fd;
		c->phase = CLIENT_READING;
		c->deadline_ms = now + srv->opts.read_timeout_ms;
		c->in = malloc(srv->opts.max_request);
		if (c->in == NULL) {
			close_client(c);
			pause_accepting(srv, ENOMEM, now);
			return;
		}
		srv->n_clients++;
	}
}

/* ---- the thread ----------------------------------------------------------- */

static short
client_events(const struct client *c)
{
	return c->phase == CLIENT_WRITING ? POLLOUT : POLLIN;
}

/* Fill pfds for this round; returns how many. */
static nfds_t
build_pollfds(struct ush_stats_server *srv, uint64_t now)
{
	bool accepting =
		srv->n_clients < srv->opts.max_clients && srv->accept_paused_until_ms <= now;

	srv->pfds[POLL_WAKE] = (struct pollfd){.fd = srv->wake_fd, .events = POLLIN};
	srv->pfds[POLL_LISTEN] =
		(struct pollfd){.fd = accepting ? srv->listen_fd : -1, .events = POLLIN};
	for (size_t i = 0; i < srv->n_clients; i++)
		srv->pfds[POLL_CLIENTS + i] = (struct pollfd){
			.fd = srv->clients[i].fd, .events = client_events(&srv->clients[i])};

	return POLL_CLIENTS + srv->n_clients;
}

/* Until the nearest deadline or the end of an accept pause; -1 if none. */
static int
poll_timeout(const struct ush_stats_server *srv, uint64_t now)
{
	uint64_t next =
		srv->accept_paused_until_ms > now ? srv->accept_paused_until_ms : UINT64_MAX;

	for (size_t i = 0; i < srv->n_clients; i++)
		if (srv->clients[i].deadline_ms < next)
			next = srv->clients[i].deadline_ms;

	if (next == UINT64_MAX)
		return -1;
	return next <= now ? 0 : (int)(next - now);
}

static void *
serve(void *arg)
{
	struct ush_stats_server *srv = arg;

	ush_log_set_thread("stats");

	for (;;) {
		uint64_t now = now_ms();
		nfds_t n = build_pollfds(srv, now);
		size_t polled = srv->n_clients;

		if (poll(srv->pfds, n, poll_timeout(srv, now)) < 0) {
			if (errno == EINTR)
				continue;
			ush_log_errno(USH_LOG_ERROR, errno, "poll() failed in the stats server");
			poll(NULL, 0, ACCEPT_PAUSE_MS); /* back off, don't spin */
			continue;
		}
		if (srv->pfds[POLL_WAKE].revents != 0)
			break;

		now = now_ms();
		for (size_t i = 0; i < polled; i++)
			serve_client(srv, &srv->clients[i], srv->pfds[POLL_CLIENTS + i].revents,
				     now);
		compact_clients(srv);

		if (srv->pfds[POLL_LISTEN].revents != 0)
			accept_clients(srv, now);
		expire_clients(srv, now);
		compact_clients(srv);
	}

	return NULL;
}

/* ---- start and stop ------------------------------------------------------- */

static int
open_listener(const struct cfg_addr *bind_addr, int *fd_out, unsigned *port_out)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int one = 1, fd, rc = 0;

	fd = socket(bind_addr->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;

	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (const struct sockaddr *)&bind_addr->ss, bind_addr->len) < 0 ||
	    listen(fd, 64) < 0 || getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}

	if (ss.ss_family == AF_INET6)
		*port_out = ntohs(((const struct sockaddr_in6 *)(const void *)&ss)->sin6_port);
	else
		*port_out = ntohs(((const struct sockaddr_in *)(const void *)&ss)->sin_port);
	*fd_out = fd;
	return 0;
}

/* Start the thread with every signal blocked; it inherits the mask. */
static int
start_thread(struct ush_stats_server *srv)
{
	sigset_t all, old;
	int rc;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&srv->thread, NULL, serve, srv);
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	if (rc != 0)
		return -rc;
	srv->thread_started = true;
	return 0;
}

static void
apply_defaults(struct ush_stats_server_opts *o, const struct ush_stats_server_opts *given)
{
	if (given != NULL)
		*o = *given;
	if (o->read_timeout_ms == 0)
		o->read_timeout_ms = USH_STATS_READ_TIMEOUT_MS;
	if (o->max_clients == 0)
		o->max_clients = USH_STATS_MAX_CLIENTS;
	if (o->max_request == 0)
		o->max_request = USH_STATS_MAX_REQUEST;
}

int
ush_stats_server_start_opts(const struct cfg_addr *bind_addr, const struct ush_stats_sources *src,
			    const struct ush_stats_server_opts *opts, struct ush_stats_server **out)
{
	struct ush_stats_server *srv = calloc(1, sizeof(*srv));
	int rc = -ENOMEM;

	if (srv == NULL)
		return -ENOMEM;

	srv->listen_fd = -1;
	srv->src = *src;
	srv->accept_errors = (struct ush_ratelimit)USH_RATELIMIT_INIT(1, 10000);
	apply_defaults(&srv->opts, opts);

	srv->clients = calloc(srv->opts.max_clients, sizeof(*srv->clients));
	srv->pfds = calloc(POLL_CLIENTS + srv->opts.max_clients, sizeof(*srv->pfds));
	srv->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (srv->clients == NULL || srv->pfds == NULL)
		goto fail;
	if (srv->wake_fd < 0) {
		rc = -errno;
		goto fail;
	}

	rc = open_listener(bind_addr, &srv->listen_fd, &srv->port);
	if (rc == 0)
		rc = start_thread(srv);
	if (rc != 0)
		goto fail;

	*out = srv;
	return 0;

fail:
	ush_stats_server_stop(srv);
	return rc;
}

int
ush_stats_server_start(const struct cfg_addr *bind_addr, const struct ush_stats_sources *src,
		       struct ush_stats_server **out)
{
	return ush_stats_server_start_opts(bind_addr, src, NULL, out);
}

unsigned
ush_stats_server_port(const struct ush_stats_server *srv)
{
	return srv->port;
}

void
ush_stats_server_stop(struct ush_stats_server *srv)
{
	uint64_t one = 1;

	if (srv == NULL)
		return;

	if (srv->thread_started) {
		if (write(srv->wake_fd, &one, sizeof(one)) < 0)
			ush_log_errno(USH_LOG_ALERT, errno, "cannot wake the stats server");
		pthread_join(srv->thread, NULL);
	}

	for (size_t i = 0; i < srv->n_clients; i++)
		close_client(&srv->clients[i]);
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	if (srv->wake_fd >= 0)
		close(srv->wake_fd);

	free(srv->clients);
	free(srv->pfds);
	free(srv);
}
