/*
 * health: the active checker. One thread for all pools opens a TCP
 * connection to every server at its pool's interval; a connection that
 * completes within the timeout is a success, anything else a failure.
 *
 * Checks run side by side: each is a non-blocking connect, and one poll()
 * waits for all of them, for the next check to fall due, and for the stop
 * eventfd, so stopping never waits for a slow server.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "upstream.h"
#include "upstream_internal.h"

struct ush_check {
	struct ush_server *server;
	uint64_t interval_ms;
	uint64_t timeout_ms;
	int fd;              /* the connect in flight, or -1 */
	uint64_t started_ms; /* of the connect in flight */
	uint64_t due_ms;     /* when the next one starts */
};

struct ush_health {
	struct ush_pools *pools;
	struct ush_check *checks;
	size_t n_checks;
	struct pollfd *pfds; /* [0] is stop_fd, then connects in flight */
	size_t *pfd_check;   /* check index of each pfds entry */
	int stop_fd;
	pthread_t thread;
};

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * Errors that say something about this host rather than the server: out of
 * descriptors, memory or local ports. They give no verdict either way.
 */
static bool
local_error(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM || err == EAGAIN ||
	       err == EADDRNOTAVAIL;
}

static void
record_result(struct ush_check *c, int err)
{
	if (err == 0) {
		ush_health_record_success(c->server, true);
		return;
	}

	if (local_error(err))
		return;

	ush_add_u64(&c->server->checks_failed, 1);
	ush_health_record_failure(c->server, err);
}

static void
finish_check(struct ush_check *c, int err)
{
	close(c->fd);
	c->fd = -1;
	record_result(c, err);
}

static void
start_check(struct ush_check *c, uint64_t now)
{
	const struct cfg_addr *addr = &c->server->cfg->address;
	int fd;

	c->due_ms = now + c->interval_ms;
	c->started_ms = now;

	fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		record_result(c, errno);
		return;
	}

	c->fd = fd;
	if (connect(fd, (const struct sockaddr *)&addr->ss, addr->len) == 0)
		finish_check(c, 0);
	else if (errno != EINPROGRESS)
		finish_check(c, errno);
}

static void
start_due_checks(struct ush_health *h, uint64_t now)
{
	for (size_t i = 0; i < h->n_checks; i++) {
		struct ush_check *c = &h->checks[i];

		if (c->fd < 0 && c->due_ms <= now)
			start_check(c, now);
	}
}

/* A connect that has run out of time fails with ETIMEDOUT. */
static void
expire_checks(struct ush_health *h, uint64_t now)
{
	for (size_t i = 0; i < h->n_checks; i++) {
		struct ush_check *c = &h->checks[i];

		if (c->fd >= 0 && now >= c->started_ms + c->timeout_ms)
			finish_check(c, ETIMEDOUT);
	}
}

/* Fill pfds with the stop fd and the connects in flight; their count. */
static size_t
fill_pollfds(struct ush_health *h)
{
	size_t n = 1;

	h->pfds[0] = (struct pollfd){.fd = h->stop_fd, .events = POLLIN};

	for (size_t i = 0; i < h->n_checks; i++) {
		if (h->checks[i].fd < 0)
			continue;

		h->pfds[n] = (struct pollfd){.fd = h->checks[i].fd, .events = POLLOUT};
		h->pfd_check[n] = i;
		n++;
	}

	return n;
}

/* Milliseconds until something is due: a start or a timeout. -1: never. */
static int
poll_timeout(const struct ush_health *h, uint64_t now)
{
	uint64_t next = UINT64_MAX;

	for (size_t i = 0; i < h->n_checks; i++) {
		const struct ush_check *c = &h->checks[i];
		uint64_t at = c->fd >= 0 ? c->started_ms + c->timeout_ms : c->due_ms;

		if (at < next)
			next = at;
	}

	if (next == UINT64_MAX)
		return -1;

	if (next <= now)
		return 0;

	return next - now > INT_MAX ? INT_MAX : (int)(next - now);
}

static void
finish_ready(struct ush_health *h, size_t n_pfds)
{
	for (size_t k = 1; k < n_pfds; k++) {
		struct ush_check *c = &h->checks[h->pfd_check[k]];
		int err = 0;
		socklen_t len = sizeof(err);

		if (h->pfds[k].revents == 0)
			continue;

		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
			err = errno;

		finish_check(c, err);
	}
}

static void
close_in_flight(struct ush_health *h)
{
	for (size_t i = 0; i < h->n_checks; i++) {
		if (h->checks[i].fd >= 0) {
			close(h->checks[i].fd);
			h->checks[i].fd = -1;
		}
	}
}

static void *
run_checks(void *arg)
{
	struct ush_health *h = arg;

	for (;;) {
		uint64_t now = now_ms();
		size_t n_pfds;

		start_due_checks(h, now);
		n_pfds = fill_pollfds(h);

		if (poll(h->pfds, n_pfds, poll_timeout(h, now)) < 0) {
			/* EINTR, or ENOMEM that may pass: try again. */
			continue;
		}

		if (h->pfds[0].revents != 0)
			break;

		finish_ready(h, n_pfds);
		expire_checks(h, now_ms());
	}

	close_in_flight(h);
	return NULL;
}

static size_t
count_checks(const struct ush_pools *pools)
{
	size_t n = 0;

	for (size_t p = 0; p < pools->n_pools; p++) {
		if (pools->pools[p].cfg->health_check.interval_ms > 0)
			n += pools->pools[p].n_servers;
	}

	return n;
}

/* Every server of a pool with active checks gets one, due at once. */
static void
plan_checks(struct ush_health *h, uint64_t now)
{
	size_t n = 0;

	for (size_t p = 0; p < h->pools->n_pools; p++) {
		struct ush_pool *pool = &h->pools->pools[p];
		const struct cfg_health_check *hc = &pool->cfg->health_check;

		if (hc->interval_ms == 0)
			continue;

		for (size_t i = 0; i < pool->n_servers; i++) {
			h->checks[n++] = (struct ush_check){
				.server = &pool->servers[i],
				.interval_ms = hc->interval_ms,
				/* a connect never outlives its interval unless told to */
				.timeout_ms = hc->timeout_ms ? hc->timeout_ms : hc->interval_ms,
				.fd = -1,
				.due_ms = now,
			};
		}
	}
}

static void
free_health(struct ush_health *h)
{
	if (h->stop_fd >= 0)
		close(h->stop_fd);

	free(h->checks);
	free(h->pfds);
	free(h->pfd_check);
	free(h);
}

/* The thread takes no signals: they belong to the main thread. */
static int
spawn_thread(struct ush_health *h)
{
	sigset_t all, old;
	int rc;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&h->thread, NULL, run_checks, h);
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	if (rc == 0)
		pthread_setname_np(h->thread, "ush-health");

	return -rc;
}

int
ush_health_start(struct ush_pools *pools, struct ush_health **out)
{
	struct ush_health *h = calloc(1, sizeof(*h));
	size_t n;
	int rc;

	*out = NULL;
	if (h == NULL)
		return -ENOMEM;

	n = count_checks(pools);
	h->pools = pools;
	h->n_checks = n;
	h->stop_fd = -1;
	h->checks = calloc(n ? n : 1, sizeof(*h->checks));
	h->pfds = calloc(n + 1, sizeof(*h->pfds));
	h->pfd_check = calloc(n + 1, sizeof(*h->pfd_check));
	if (h->checks == NULL || h->pfds == NULL || h->pfd_check == NULL) {
		free_health(h);
		return -ENOMEM;
	}

	h->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (h->stop_fd < 0) {
		rc = -errno;
		free_health(h);
		return rc;
	}

	plan_checks(h, now_ms());

	rc = spawn_thread(h);
	if (rc != 0) {
		free_health(h);
		return rc;
	}

	*out = h;
	return 0;
}

void
ush_health_stop(struct ush_health *h)
{
	uint64_t one = 1;

	if (h == NULL)
		return;

	/* An eventfd counter cannot overflow from one write; it cannot fail. */
	while (write(h->stop_fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;

	pthread_join(h->thread, NULL);
	free_health(h);
}
