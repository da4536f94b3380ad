/*
 * usher-testbackend: a real upstream server for integration tests, the
 * quickstart and benchmarks.
 *
 * For every line a client sends it answers "<name> <line>\n", so a client
 * learns which server usher routed it to. One thread, epoll, non-blocking
 * sockets; thousands of connections are fine.
 *
 * Per connection:
 *
 *   accept --> [PROXY header] --> lines --(client EOF)--> flush --> close
 *                                   |
 *                                   +--(--reset-after N)--> flush, RST
 *
 * Prints "listening <addr>" on stdout once it accepts; tests wait for it.
 * Exits 0 on SIGTERM or SIGINT.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy_header.h"

#define LINE_MAX_BYTES (16 * 1024)   /* a longer "line" is answered in pieces */
#define OUT_HIGH_WATER (1024 * 1024) /* stop reading while this much is unsent */
#define MAX_EVENTS     256

struct options {
	const char *listen;
	const char *name;
	bool proxy_protocol;
	bool stall;
	long long reset_after; /* -1: never */
	long max_conns;        /* 0: no limit */
};

struct conn {
	struct conn *prev, *next; /* every open conn, to release them at exit */
	int fd;
	char peer[INET6_ADDRSTRLEN + 8];
	bool header_done; /* PROXY header read, or none expected */
	struct tb_proxy_info proxy;
	unsigned char *in;
	size_t in_len;
	size_t in_cap;
	char *out;
	size_t out_len;
	size_t out_sent;
	size_t out_cap;
	uint64_t received;
	bool client_eof;
	uint32_t events; /* registered with epoll */
};

struct backend {
	struct options opt;
	int epfd;
	int listen_fd;
	int signal_fd;
	struct conn *conns;
	long n_conns;
	bool accept_paused; /* out of descriptors until a conn closes */
};

/* epoll data for the two non-connection descriptors. */
static char listen_tag, signal_tag;

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: usher-testbackend --listen ADDR:PORT [--name NAME] [--proxy-protocol]\n"
		"                         [--stall] [--reset-after N] [--max-conns N]\n"
		"\n"
		"  --listen ADDR:PORT  127.0.0.1:9001 or [::1]:9001; port 0 picks one\n"
		"  --name NAME         prefix of every answer (default 'backend')\n"
		"  --proxy-protocol    expect a PROXY v1 or v2 header; the line 'whoami'\n"
		"                      is then answered 'proxy ADDR:PORT sni=.. alpn=.. version=..'\n"
		"  --stall             accept, never read, never answer\n"
		"  --reset-after N     reset (RST) a connection once N bytes arrived on it\n"
		"  --max-conns N       close new connections at once beyond N open\n");
}

static bool
parse_number(const char *s, long long *out)
{
	char *end;

	errno = 0;
	*out = strtoll(s, &end, 10);
	return errno == 0 && end != s && *end == '\0' && *out >= 0;
}

/* 0 to run, 1 after --help, -1 on a usage error. */
static int
parse_options(int argc, char **argv, struct options *opt)
{
	static const struct option longopts[] = {
		{"listen", required_argument, NULL, 'l'},
		{"name", required_argument, NULL, 'n'},
		{"proxy-protocol", no_argument, NULL, 'p'},
		{"stall", no_argument, NULL, 's'},
		{"reset-after", required_argument, NULL, 'r'},
		{"max-conns", required_argument, NULL, 'm'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	long long n;
	int ch;

	*opt = (struct options){.name = "backend", .reset_after = -1};
	while ((ch = getopt_long(argc, argv, "l:n:psr:m:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'l':
			opt->listen = optarg;
			break;
		case 'n':
			opt->name = optarg;
			break;
		case 'p':
			opt->proxy_protocol = true;
			break;
		case 's':
			opt->stall = true;
			break;
		case 'r':
			if (!parse_number(optarg, &opt->reset_after))
				return -1;
			break;
		case 'm':
			if (!parse_number(optarg, &n) || n > LONG_MAX)
				return -1;
			opt->max_conns = (long)n;
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			return -1;
		}
	}

	return optind == argc && opt->listen != NULL ? 0 : -1;
}

static int
fill_ipv6(const char *host, size_t n, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	char text[INET6_ADDRSTRLEN];

	if (n >= sizeof(text))
		return -1;
	memcpy(text, host, n);
	text[n] = '\0';

	memset(in6, 0, sizeof(*in6));
	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons(port);
	*len = sizeof(*in6);
	return inet_pton(AF_INET6, text, &in6->sin6_addr) == 1 ? 0 : -1;
}

static int
fill_ipv4(const char *host, size_t n, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	char text[INET_ADDRSTRLEN];

	if (n >= sizeof(text))
		return -1;
	memcpy(text, host, n);
	text[n] = '\0';

	memset(in, 0, sizeof(*in));
	in->sin_family = AF_INET;
	in->sin_port = htons(port);
	*len = sizeof(*in);
	return inet_pton(AF_INET, text, &in->sin_addr) == 1 ? 0 : -1;
}

/* "1.2.3.4:80" or "[::1]:80". 0 or -1. */
static int
parse_addr(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
	const char *colon = strrchr(text, ':');
	long long port;
	size_t n;

	if (colon == NULL || !parse_number(colon + 1, &port) || port > 65535)
		return -1;

	n = (size_t)(colon - text);
	if (n >= 2 && text[0] == '[' && text[n - 1] == ']')
		return fill_ipv6(text + 1, n - 2, (uint16_t)port, ss, len);
	return fill_ipv4(text, n, (uint16_t)port, ss, len);
}

static void
format_addr(const struct sockaddr_storage *ss, char *buf, size_t cap)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, cap, "[%s]:%u", ip, ntohs(in6->sin6_port));
	} else {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		snprintf(buf, cap, "%s:%u", ip, ntohs(in->sin_port));
	}
}

/* ---- buffers -------------------------------------------------------------- */

static int
grow(void **buf, size_t *cap, size_t need)
{
	size_t cap2 = *cap != 0 ? *cap : 4096;
	void *p;

	while (cap2 < need)
		cap2 *= 2;
	if (cap2 == *cap)
		return 0;

	p = realloc(*buf, cap2);
	if (p == NULL)
		return -1;
	*buf = p;
	*cap = cap2;
	return 0;
}

static int
append_out(struct conn *c, const void *data, size_t n)
{
	if (grow((void **)&c->out, &c->out_cap, c->out_len + n) != 0)
		return -1;

	memcpy(c->out + c->out_len, data, n);
	c->out_len += n;
	return 0;
}

/* A value from the PROXY header, printable and without spaces, or "-". */
static void
append_value(char *dst, size_t cap, const char *key, const char *v)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = strlen(dst);

	n += (size_t)snprintf(dst + n, cap - n, " %s=", key);
	if (*v == '\0' && n + 1 < cap)
		dst[n++] = '-';

	for (; *v != '\0' && n + 5 < cap; v++) {
		unsigned char c = (unsigned char)*v;

		if (c > 0x20 && c < 0x7f && c != '\\') {
			dst[n++] = (char)c;
			continue;
		}
		dst[n++] = '\\';
		dst[n++] = 'x';
		dst[n++] = hex[c >> 4];
		dst[n++] = hex[c & 0xf];
	}
	dst[n] = '\0';
}

static int
answer_whoami(struct conn *c)
{
	const struct tb_proxy_info *p = &c->proxy;
	char line[4 * (3 * TB_PP_VALUE_MAX) + 128];

	if (p->local)
		snprintf(line, sizeof(line), "proxy local");
	else
		snprintf(line, sizeof(line), p->ipv6 ? "proxy [%s]:%u" : "proxy %s:%u", p->src,
			 p->src_port);
	append_value(line, sizeof(line), "sni", p->sni);
	append_value(line, sizeof(line), "alpn", p->alpn);
	append_value(line, sizeof(line), "version", p->version);

	return append_out(c, line, strlen(line)) == 0 && append_out(c, "\n", 1) == 0 ? 0 : -1;
}

static int
answer_line(const struct backend *b, struct conn *c, const unsigned char *line, size_t n)
{
	if (n > 0 && line[n - 1] == '\r')
		n--;

	if (b->opt.proxy_protocol && n == 6 && memcmp(line, "whoami", 6) == 0)
		return answer_whoami(c);

	if (append_out(c, b->opt.name, strlen(b->opt.name)) != 0 || append_out(c, " ", 1) != 0 ||
	    append_out(c, line, n) != 0 || append_out(c, "\n", 1) != 0)
		return -1;
	return 0;
}

/* Answer every complete line in c->in; a full buffer counts as a line. */
static int
answer_lines(const struct backend *b, struct conn *c)
{
	size_t start = 0;

	for (;;) {
		unsigned char *nl = memchr(c->in + start, '\n', c->in_len - start);
		size_t n;

		if (nl == NULL) {
			if (c->in_len - start < LINE_MAX_BYTES && !c->client_eof)
				break;
			n = c->in_len - start; /* overlong, or cut by EOF */
			if (n > 0 && answer_line(b, c, c->in + start, n) != 0)
				return -1;
			start = c->in_len;
			break;
		}

		n = (size_t)(nl - (c->in + start));
		if (answer_line(b, c, c->in + start, n) != 0)
			return -1;
		start += n + 1;
	}

	memmove(c->in, c->in + start, c->in_len - start);
	c->in_len -= start;
	return 0;
}

/* 0 when done or waiting for more, -1 for a bad header. */
static int
read_proxy_header(struct conn *c)
{
	int n = tb_proxy_parse(c->in, c->in_len, &c->proxy);

	if (n < 0) {
		fprintf(stderr, "usher-testbackend: bad PROXY header from %s\n", c->peer);
		return -1;
	}
	if (n == 0)
		return c->client_eof ? -1 : 0;

	memmove(c->in, c->in + n, c->in_len - (size_t)n);
	c->in_len -= (size_t)n;
	c->header_done = true;
	return 0;
}

/* ---- connections ---------------------------------------------------------- */

static void
close_conn(struct backend *b, struct conn *c, bool reset)
{
	if (reset) {
		struct linger lg = {.l_onoff = 1, .l_linger = 0};

		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}

	close(c->fd); /* also leaves the epoll set */
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		b->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	free(c->in);
	free(c->out);
	free(c);
	b->n_conns--;

	if (b->accept_paused) {
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &listen_tag};

		epoll_ctl(b->epfd, EPOLL_CTL_ADD, b->listen_fd, &ev);
		b->accept_paused = false;
	}
}

/* Send what is pending; -1 when the peer is gone. */
static int
flush_out(struct conn *c)
{
	while (c->out_sent < c->out_len) {
		ssize_t n =
			send(c->fd, c->out + c->out_sent, c->out_len - c->out_sent, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n < 0)
			return -1;
		c->out_sent += (size_t)n;
	}

	c->out_len = 0;
	c->out_sent = 0;
	return 0;
}

/*
 * Re-register interest: read unless backed up or at EOF, write if pending.
 * EOF shows as readable; EPOLLRDHUP is only for --stall, since it stays
 * raised after the peer's FIN and would spin a conn that is still writing.
 */
static void
update_events(struct backend *b, struct conn *c)
{
	uint32_t events = 0;
	struct epoll_event ev;

	if (!c->client_eof && c->out_len - c->out_sent < OUT_HIGH_WATER)
		events |= EPOLLIN;
	if (c->out_sent < c->out_len)
		events |= EPOLLOUT;
	if (b->opt.stall)
		events = EPOLLRDHUP; /* notice the close, nothing else */

	if (events == c->events)
		return;

	ev = (struct epoll_event){.events = events, .data.ptr = c};
	epoll_ctl(b->epfd, EPOLL_CTL_MOD, c->fd, &ev);
	c->events = events;
}

/* Take bytes from the socket; returns how many, 0 at EOF, -1 on error. */
static ssize_t
read_some(struct conn *c)
{
	ssize_t n;

	if (grow((void **)&c->in, &c->in_cap, c->in_len + 4096) != 0)
		return -1;

	do
		n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
	while (n < 0 && errno == EINTR);

	if (n > 0)
		c->in_len += (size_t)n;
	return n;
}

/*
 * Past --reset-after N: answer what arrived within the first N bytes, send
 * it, then reset. Bytes past N are dropped unread.
 */
static bool
reset_due(const struct backend *b, struct conn *c, size_t fresh)
{
	long long limit = b->opt.reset_after;

	if (limit < 0 || c->received + fresh < (uint64_t)limit)
		return false;

	c->in_len -= (size_t)(c->received + fresh - (uint64_t)limit);
	return true;
}

/* What arrived: header first, then lines. -1 to close, 1 to reset. */
static int
consume_input(struct backend *b, struct conn *c, size_t fresh)
{
	bool reset = reset_due(b, c, fresh);

	c->received += fresh;
	if (!c->header_done && read_proxy_header(c) != 0)
		return -1;
	if (c->header_done && answer_lines(b, c) != 0)
		return -1;

	if (reset) {
		flush_out(c);
		return 1;
	}
	return 0;
}

static void
on_conn_event(struct backend *b, struct conn *c, uint32_t events)
{
	int rc = 0;

	if (b->opt.stall) {
		close_conn(b, c, false); /* any event: the peer closed or failed */
		return;
	}

	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		ssize_t n = read_some(c);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			n = -2; /* spurious */
		if (n == 0)
			c->client_eof = true;
		if (n == -1)
			rc = -1;
		else if (n >= 0)
			rc = consume_input(b, c, (size_t)n);
	}

	if (rc == 0 && flush_out(c) != 0)
		rc = -1;
	if (rc == 0 && c->client_eof && c->out_len == 0)
		rc = -1; /* all answered: a normal close */

	if (rc != 0) {
		close_conn(b, c, rc == 1);
		return;
	}
	update_events(b, c);
}

static void
add_conn(struct backend *b, int fd, const struct sockaddr_storage *peer)
{
	struct conn *c = calloc(1, sizeof(*c));
	struct epoll_event ev;

	if (c == NULL) {
		close(fd);
		return;
	}

	c->fd = fd;
	c->header_done = !b->opt.proxy_protocol || b->opt.stall;
	c->events = b->opt.stall ? EPOLLRDHUP : EPOLLIN;
	format_addr(peer, c->peer, sizeof(c->peer));
	c->next = b->conns;
	if (b->conns != NULL)
		b->conns->prev = c;
	b->conns = c;
	b->n_conns++;

	ev = (struct epoll_event){.events = c->events, .data.ptr = c};
	if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, fd, &ev) != 0 || b->opt.reset_after == 0)
		close_conn(b, c, b->opt.reset_after == 0);
}

static void
accept_conns(struct backend *b)
{
	for (;;) {
		struct sockaddr_storage peer;
		socklen_t len = sizeof(peer);
		int fd = accept4(b->listen_fd, (struct sockaddr *)&peer, &len,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
			/* Resume when a connection closes; a full queue is fine. */
			fprintf(stderr, "usher-testbackend: out of file descriptors\n");
			epoll_ctl(b->epfd, EPOLL_CTL_DEL, b->listen_fd, NULL);
			b->accept_paused = true;
			return;
		}
		if (fd < 0 && errno == EINTR)
			continue;
		if (fd < 0)
			return; /* EAGAIN, or a connection that died in the queue */

		if (b->opt.max_conns > 0 && b->n_conns >= b->opt.max_conns) {
			close(fd);
			continue;
		}
		add_conn(b, fd, &peer);
	}
}

/* ---- set-up --------------------------------------------------------------- */

static int
open_listener(struct backend *b)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char text[INET6_ADDRSTRLEN + 8];
	int one = 1;

	if (parse_addr(b->opt.listen, &ss, &len) != 0) {
		fprintf(stderr, "usher-testbackend: bad address '%s'\n", b->opt.listen);
		return -1;
	}

	b->listen_fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (b->listen_fd < 0 ||
	    setsockopt(b->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(b->listen_fd, (struct sockaddr *)&ss, len) != 0 ||
	    listen(b->listen_fd, 4096) != 0) {
		fprintf(stderr, "usher-testbackend: cannot listen on '%s' (%s)\n", b->opt.listen,
			strerror(errno));
		return -1;
	}

	len = sizeof(ss);
	getsockname(b->listen_fd, (struct sockaddr *)&ss, &len);
	format_addr(&ss, text, sizeof(text));
	printf("listening %s\n", text);
	fflush(stdout);
	return 0;
}

static int
setup(struct backend *b)
{
	struct epoll_event ev;
	struct rlimit rl;
	sigset_t mask;

	/* Benchmarks open many connections: take every descriptor we may. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);

	b->epfd = epoll_create1(EPOLL_CLOEXEC);
	b->signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (b->epfd < 0 || b->signal_fd < 0) {
		fprintf(stderr, "usher-testbackend: epoll or signalfd failed (%s)\n",
			strerror(errno));
		return -1;
	}

	ev = (struct epoll_event){.events = EPOLLIN, .data.ptr = &signal_tag};
	epoll_ctl(b->epfd, EPOLL_CTL_ADD, b->signal_fd, &ev);
	if (open_listener(b) != 0)
		return -1;
	ev = (struct epoll_event){.events = EPOLLIN, .data.ptr = &listen_tag};
	return epoll_ctl(b->epfd, EPOLL_CTL_ADD, b->listen_fd, &ev);
}

static void
run(struct backend *b)
{
	struct epoll_event events[MAX_EVENTS];

	for (;;) {
		int n = epoll_wait(b->epfd, events, MAX_EVENTS, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return;

		for (int i = 0; i < n; i++) {
			void *tag = events[i].data.ptr;

			if (tag == &signal_tag)
				return;
			if (tag == &listen_tag)
				accept_conns(b);
			else
				on_conn_event(b, tag, events[i].events);
		}
	}
}

int
main(int argc, char **argv)
{
	struct backend b = {.epfd = -1, .listen_fd = -1, .signal_fd = -1};
	int rc = parse_options(argc, argv, &b.opt);

	if (rc != 0) {
		if (rc < 0)
			usage(stderr);
		return rc > 0 ? 0 : 2;
	}

	if (setup(&b) != 0)
		return 1;

	run(&b);

	while (b.conns != NULL)
		close_conn(&b, b.conns, false);
	close(b.listen_fd);
	close(b.signal_fd);
	close(b.epfd);
	return 0;
}
