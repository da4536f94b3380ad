/*
 * The worker: a set of connection slots driven by one epoll loop.
 *
 * A slot is one closed loop. In load mode each connection goes
 *
 *   CONNECTING -> HANDSHAKING -> WRITING -> READING -> CLOSING -+
 *        ^                                                      |
 *        +--------------------- next connection ----------------+
 *
 * and any failure goes to BACKOFF (10 ms) and then to the next
 * connection. In idle mode READING leads to HOLDING instead, where the
 * connection stays open until the run stops, and a slot is opened once.
 *
 * Sockets are registered edge-triggered for both directions once, and every
 * event simply drives the slot until OpenSSL wants I/O again, so no
 * interest ever has to be changed.
 *
 * Sessions (resume mode): the slot keeps the newest resumable session it
 * was given and offers it on its next connection. TLS 1.3 tickets arrive
 * after the handshake; reading until the backend's answer processes them,
 * and on_new_session() stores each. Every connection ends with
 * SSL_shutdown() before SSL_free(): OpenSSL marks the session of a
 * connection freed without close_notify as not resumable, and the run would
 * then measure nothing but full handshakes.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "lg.h"

#define TICK_MS     10                        /* epoll_wait timeout: backoffs and the stop flag */
#define SCAN_NS     (100 * UINT64_C(1000000)) /* timeout scan period */
#define BACKOFF_NS  (10 * UINT64_C(1000000))  /* after a failed connection */
#define MAX_EVENTS  256
#define REQUEST_MAX 64
#define ANSWER_MAX  (LG_NAME_MAX + REQUEST_MAX + 2)

enum slot_state {
	SLOT_UNOPENED = 0, /* idle mode: not opened yet */
	SLOT_CONNECTING,
	SLOT_HANDSHAKING,
	SLOT_WRITING,
	SLOT_READING,
	SLOT_CLOSING,
	SLOT_HOLDING, /* idle mode: answered, held open */
	SLOT_BACKOFF,
	SLOT_DONE,
};

/* What a step did: move on to the next state, or wait for an event. */
enum step {
	STEP_NEXT = 0,
	STEP_WAIT,
};

struct lg_slot {
	struct lg_worker *w;
	unsigned id;
	enum slot_state state;
	int fd;
	SSL *ssl;

	SSL_SESSION *session;     /* newest session: offered next time */
	char origin[LG_NAME_MAX]; /* backend of that session's full handshake */
	bool offered;             /* this connection offers a session */

	uint64_t started_ns; /* this connection's connect() */
	uint64_t wake_ns;    /* SLOT_BACKOFF: when to try again */
	uint64_t seq;
	char request[REQUEST_MAX];
	size_t request_len;
	char answer[ANSWER_MAX];
	size_t answer_len;
};

static void slot_next(struct lg_slot *s);
static void idle_slot_settled(struct lg_worker *w);

uint64_t
lg_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static const struct lg_options *
options_of(const struct lg_slot *s)
{
	return s->w->run->opt;
}

static void
count(_Atomic uint64_t *counter)
{
	atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

/* ---- sessions ------------------------------------------------------------- */

static void
drop_session(struct lg_slot *s)
{
	SSL_SESSION_free(s->session);
	s->session = NULL;
	s->origin[0] = '\0';
}

static void
keep_session(struct lg_slot *s, SSL_SESSION *sess)
{
	SSL_SESSION_free(s->session);
	s->session = sess;
}

/*
 * OpenSSL hands over every new session here: after a TLS 1.2 full
 * handshake, and for each TLS 1.3 NewSessionTicket. 1 keeps the reference.
 */
static int
on_new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct lg_slot *s = SSL_get_app_data(ssl);

	if (s == NULL || options_of(s)->mode != LG_MODE_RESUME)
		return 0;
	if (!SSL_SESSION_is_resumable(sess))
		return 0;

	keep_session(s, sess);
	return 1;
}

/*
 * A TLS 1.2 resumption does not call on_new_session(), even when the server
 * renewed the ticket; the connection's own session then holds the newest.
 */
static void
take_renewed_session(struct lg_slot *s)
{
	SSL_SESSION *sess;

	if (SSL_version(s->ssl) != TLS1_2_VERSION || !SSL_session_reused(s->ssl))
		return;

	sess = SSL_get1_session(s->ssl);
	if (sess != NULL && SSL_SESSION_is_resumable(sess))
		keep_session(s, sess);
	else
		SSL_SESSION_free(sess);
}

/* ---- failures ------------------------------------------------------------- */

static const char *const error_names[LG_ERR_COUNT] = {
	[LG_ERR_CONNECT] = "connect", [LG_ERR_HANDSHAKE] = "handshake", [LG_ERR_IO] = "io",
	[LG_ERR_ANSWER] = "answer",   [LG_ERR_TIMEOUT] = "timeout",
};

/*
 * Keep the first failure's words, so a broken run says why: what failed,
 * then errno's text or OpenSSL's reason when there is one.
 */
static void
note_error(struct lg_worker *w, enum lg_error kind, const char *what, int err)
{
	char detail[120] = "";
	unsigned long e = ERR_peek_last_error();

	if (w->stats.first_error[0] != '\0')
		return;

	if (err != 0)
		snprintf(detail, sizeof(detail), ": %s", strerror(err));
	else if (e != 0)
		snprintf(detail, sizeof(detail), ": %s", ERR_reason_error_string(e));
	snprintf(w->stats.first_error, sizeof(w->stats.first_error), "%s: %s%s", error_names[kind],
		 what, detail);
}

static void
slot_release(struct lg_slot *s)
{
	if (s->ssl != NULL) {
		SSL_free(s->ssl);
		s->ssl = NULL;
	}
	if (s->fd >= 0) {
		close(s->fd); /* also leaves the epoll set */
		s->fd = -1;
	}
	ERR_clear_error();
}

/*
 * The connection failed. Its session is dropped too: after a failure we
 * cannot tell which backend a ticket from this connection belongs to, so
 * the slot starts a new lineage with a full handshake.
 */
static void
slot_fail(struct lg_slot *s, enum lg_error kind, const char *what, int err)
{
	struct lg_worker *w = s->w;

	count(&w->stats.errors[kind]);
	note_error(w, kind, what, err);
	slot_release(s);
	drop_session(s);

	if (options_of(s)->mode == LG_MODE_IDLE) {
		s->state = SLOT_DONE;
		idle_slot_settled(w);
		return;
	}
	s->state = SLOT_BACKOFF;
	s->wake_ns = lg_now_ns() + BACKOFF_NS;
}

/* WANT_READ and WANT_WRITE wait for the next event; the rest fail. */
static enum step
ssl_wait_or_fail(struct lg_slot *s, int ret, enum lg_error kind, const char *what)
{
	int err = SSL_get_error(s->ssl, ret);

	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
		return STEP_WAIT;

	if (err == SSL_ERROR_ZERO_RETURN)
		slot_fail(s, kind, what, ECONNRESET);
	else if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
		slot_fail(s, kind, what, errno != 0 ? errno : ECONNRESET);
	else
		slot_fail(s, kind, what, 0);
	return STEP_WAIT;
}

/* ---- one connection ------------------------------------------------------- */

static const struct lg_addr *
pick_target(const struct lg_slot *s)
{
	const struct lg_options *opt = options_of(s);

	if (s->offered && opt->has_resume_target)
		return &opt->resume_target;
	return &opt->target;
}

static int
open_socket(struct lg_slot *s, const struct lg_addr *to)
{
	int one = 1;

	s->fd = socket(to->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		return -errno;

	/* The request is one small write; do not let Nagle hold it back. */
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	if (connect(s->fd, (const struct sockaddr *)&to->ss, to->len) != 0 && errno != EINPROGRESS)
		return -errno;
	return 0;
}

static int
make_ssl(struct lg_slot *s)
{
	const struct lg_options *opt = options_of(s);

	s->ssl = SSL_new(s->w->ctx);
	if (s->ssl == NULL || SSL_set_fd(s->ssl, s->fd) != 1)
		return -ENOMEM;

	SSL_set_app_data(s->ssl, s);
	if (opt->sni != NULL && SSL_set_tlsext_host_name(s->ssl, opt->sni) != 1)
		return -EINVAL;
	if (s->offered && SSL_set_session(s->ssl, s->session) != 1)
		return -EINVAL;
	return 0;
}

static void
slot_connect(struct lg_slot *s)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET};
	int rc;

	s->started_ns = lg_now_ns();
	s->offered = s->session != NULL;
	s->answer_len = 0;
	s->seq++;
	s->request_len = (size_t)snprintf(s->request, sizeof(s->request), "usher-loadgen %u %llu\n",
					  s->id, (unsigned long long)s->seq);

	rc = open_socket(s, pick_target(s));
	if (rc != 0) {
		slot_fail(s, LG_ERR_CONNECT, "connect() failed", -rc);
		return;
	}

	rc = make_ssl(s);
	if (rc != 0) {
		slot_fail(s, LG_ERR_HANDSHAKE, "SSL_new() failed", 0);
		return;
	}

	ev.data.ptr = s;
	if (epoll_ctl(s->w->epfd, EPOLL_CTL_ADD, s->fd, &ev) != 0) {
		slot_fail(s, LG_ERR_CONNECT, "epoll_ctl() failed", errno);
		return;
	}
	s->state = SLOT_CONNECTING;
}

/*
 * SO_ERROR reads 0 both while connecting and once connected, and an event
 * can be left over from the slot's previous socket: only a peer address
 * proves the connection is up.
 */
static enum step
step_connected(struct lg_slot *s)
{
	struct sockaddr_storage peer;
	socklen_t peer_len = sizeof(peer);
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		err = errno;
	if (err == 0 && getpeername(s->fd, (struct sockaddr *)&peer, &peer_len) != 0)
		err = errno;
	if (err == ENOTCONN || err == EINPROGRESS)
		return STEP_WAIT;
	if (err != 0) {
		slot_fail(s, LG_ERR_CONNECT, "connect() failed", err);
		return STEP_WAIT;
	}

	s->state = SLOT_HANDSHAKING;
	return STEP_NEXT;
}

static enum step
step_handshake(struct lg_slot *s)
{
	int ret = SSL_connect(s->ssl);

	if (ret != 1)
		return ssl_wait_or_fail(s, ret, LG_ERR_HANDSHAKE, "SSL_connect() failed");

	s->state = SLOT_WRITING;
	return STEP_NEXT;
}

static enum step
step_write(struct lg_slot *s)
{
	int ret = SSL_write(s->ssl, s->request, (int)s->request_len);

	if (ret <= 0)
		return ssl_wait_or_fail(s, ret, LG_ERR_IO, "SSL_write() failed");

	s->state = SLOT_READING;
	return STEP_NEXT;
}

static void
count_backend(struct lg_stats *st, const char *name)
{
	for (unsigned i = 0; i < st->n_backends; i++) {
		if (strcmp(st->backends[i].name, name) == 0) {
			st->backends[i].answers++;
			return;
		}
	}

	if (st->n_backends == LG_BACKENDS_MAX) {
		st->backends_other++;
		return;
	}
	snprintf(st->backends[st->n_backends].name, LG_NAME_MAX, "%s", name);
	st->backends[st->n_backends++].answers = 1;
}

/*
 * Count a connection that got its answer. Affinity is judged against the
 * backend of the full handshake that began the session's lineage.
 */
static void
count_answer(struct lg_slot *s, const char *backend)
{
	struct lg_stats *st = &s->w->stats;
	bool reused = SSL_session_reused(s->ssl) == 1;

	count(&st->handshakes);
	if (s->offered)
		count(&st->resume_attempts);
	if (reused)
		count(&st->resumed);

	if (reused && strcmp(backend, s->origin) == 0)
		count(&st->affinity_same);
	if (!reused)
		snprintf(s->origin, sizeof(s->origin), "%s", backend);

	lg_hist_record(&st->latency_us, (lg_now_ns() - s->started_ns) / 1000);
	count_backend(st, backend);
}

/* The answer must be "<name> <our request line>": 0, or -1. */
static int
parse_answer(struct lg_slot *s, char *name)
{
	const char *space = memchr(s->answer, ' ', s->answer_len);
	size_t n;

	if (space == NULL)
		return -1;
	n = (size_t)(space - s->answer);
	if (n == 0 || n >= LG_NAME_MAX)
		return -1;
	if (s->answer_len != n + 1 + s->request_len ||
	    memcmp(space + 1, s->request, s->request_len) != 0)
		return -1;

	memcpy(name, s->answer, n);
	name[n] = '\0';
	return 0;
}

static enum step
finish_answer(struct lg_slot *s)
{
	char backend[LG_NAME_MAX];

	if (parse_answer(s, backend) != 0) {
		slot_fail(s, LG_ERR_ANSWER, "the answer does not echo our line", 0);
		return STEP_WAIT;
	}

	take_renewed_session(s);
	count_answer(s, backend);

	/* A session that failed to resume at --resume-target is from there, not from
	 * --target: start over at --target rather than measure that host alone. */
	if (s->offered && !SSL_session_reused(s->ssl) && options_of(s)->has_resume_target)
		drop_session(s);

	if (options_of(s)->mode == LG_MODE_IDLE) {
		s->state = SLOT_HOLDING;
		count(&s->w->stats.idle_open);
		idle_slot_settled(s->w);
		return STEP_WAIT;
	}
	s->state = SLOT_CLOSING;
	return STEP_NEXT;
}

static enum step
step_read(struct lg_slot *s)
{
	for (;;) {
		size_t room = sizeof(s->answer) - s->answer_len;
		int ret;

		if (room == 0) {
			slot_fail(s, LG_ERR_ANSWER, "the answer is too long", 0);
			return STEP_WAIT;
		}

		ret = SSL_read(s->ssl, s->answer + s->answer_len, (int)room);
		if (ret <= 0)
			return ssl_wait_or_fail(s, ret, LG_ERR_IO, "SSL_read() failed");

		s->answer_len += (size_t)ret;
		if (s->answer[s->answer_len - 1] == '\n')
			return finish_answer(s);
	}
}

static enum step
step_close(struct lg_slot *s)
{
	int ret = SSL_shutdown(s->ssl);

	/* Only an unsent close_notify is worth waiting for; once it is out
	 * (0 or 1), or the peer is already gone, the session stays resumable. */
	if (ret < 0 && SSL_get_error(s->ssl, ret) == SSL_ERROR_WANT_WRITE)
		return STEP_WAIT;

	slot_release(s);
	slot_next(s);
	return STEP_WAIT;
}

/* A held connection: anything but "no data yet" means the server closed it. */
static enum step
step_hold(struct lg_slot *s)
{
	char scratch[256];
	int ret = SSL_read(s->ssl, scratch, sizeof(scratch));
	int err;

	if (ret > 0)
		return STEP_NEXT; /* unexpected bytes: read on */

	err = SSL_get_error(s->ssl, ret);
	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
		return STEP_WAIT;

	count(&s->w->stats.idle_dropped);
	atomic_fetch_sub_explicit(&s->w->stats.idle_open, 1, memory_order_relaxed);
	slot_release(s);
	s->state = SLOT_DONE;
	return STEP_WAIT;
}

/* Advance s until OpenSSL or the socket has to wait. */
static void
slot_drive(struct lg_slot *s)
{
	enum step step = STEP_NEXT;

	while (step == STEP_NEXT) {
		switch (s->state) {
		case SLOT_CONNECTING:
			step = step_connected(s);
			break;
		case SLOT_HANDSHAKING:
			step = step_handshake(s);
			break;
		case SLOT_WRITING:
			step = step_write(s);
			break;
		case SLOT_READING:
			step = step_read(s);
			break;
		case SLOT_CLOSING:
			step = step_close(s);
			break;
		case SLOT_HOLDING:
			step = step_hold(s);
			break;
		default:
			return;
		}
	}
}

/* ---- the loop ------------------------------------------------------------- */

static bool
in_flight(const struct lg_slot *s)
{
	return s->state >= SLOT_CONNECTING && s->state <= SLOT_CLOSING;
}

/* Claim one connection from --max-connections; false when none is left. */
static bool
take_budget(struct lg_run *run)
{
	if (run->opt->max_connections == 0)
		return true;
	return atomic_fetch_sub_explicit(&run->budget, 1, memory_order_relaxed) > 0;
}

/* Load mode: the slot's connection is over; start the next, or finish. */
static void
slot_next(struct lg_slot *s)
{
	struct lg_run *run = s->w->run;

	if (atomic_load_explicit(&run->stop, memory_order_relaxed) || !take_budget(run)) {
		s->state = SLOT_DONE;
		s->w->active--;
		return;
	}
	slot_connect(s);
}

/* Idle mode: open slots until concurrency connections are handshaking. */
static void
idle_open_more(struct lg_worker *w)
{
	bool stopping = atomic_load_explicit(&w->run->stop_opening, memory_order_relaxed);

	/* A connect that fails at once settles its slot and calls back here;
	 * the loop below already goes on, so do not recurse K levels deep. */
	if (w->opening_more)
		return;

	w->opening_more = true;
	while (!stopping && w->opening < w->concurrency && w->next_unopened < w->n_slots) {
		struct lg_slot *s = &w->slots[w->next_unopened++];

		w->opening++;
		slot_connect(s);
	}
	w->opening_more = false;
}

static void
report_done(struct lg_worker *w)
{
	if (w->reported_done)
		return;
	w->reported_done = true;
	atomic_fetch_add(&w->run->workers_done, 1);
}

/* Idle mode: a slot left the opening phase, held or failed. */
static void
idle_slot_settled(struct lg_worker *w)
{
	w->opening--;
	idle_open_more(w);
	if (w->opening == 0 && (w->next_unopened == w->n_slots ||
				atomic_load_explicit(&w->run->stop_opening, memory_order_relaxed)))
		report_done(w);
}

static void
expire_slots(struct lg_worker *w, uint64_t now)
{
	uint64_t timeout = w->run->opt->timeout_ns;

	for (unsigned i = 0; i < w->n_slots; i++) {
		struct lg_slot *s = &w->slots[i];

		if (in_flight(s) && now - s->started_ns > timeout)
			slot_fail(s, LG_ERR_TIMEOUT, "no answer in time", 0);
	}
}

/* Idle mode, the opening is over: what is still handshaking has failed. */
static void
abort_opening(struct lg_worker *w)
{
	for (unsigned i = 0; i < w->n_slots; i++) {
		if (in_flight(&w->slots[i]))
			slot_fail(&w->slots[i], LG_ERR_TIMEOUT, "not open when the opening ended",
				  0);
	}
	report_done(w);
}

static void
on_tick(struct lg_worker *w)
{
	uint64_t now = lg_now_ns();

	for (unsigned i = 0; i < w->n_slots; i++) {
		struct lg_slot *s = &w->slots[i];

		if (s->state == SLOT_BACKOFF && now >= s->wake_ns)
			slot_next(s);
	}

	if (now >= w->next_scan_ns) {
		expire_slots(w, now);
		w->next_scan_ns = now + SCAN_NS;
	}

	if (w->run->opt->mode == LG_MODE_IDLE && !w->reported_done &&
	    atomic_load_explicit(&w->run->stop_opening, memory_order_relaxed))
		abort_opening(w);
}

/* The run is over: abandon what is in flight, close what is held. */
static void
close_all(struct lg_worker *w)
{
	for (unsigned i = 0; i < w->n_slots; i++) {
		struct lg_slot *s = &w->slots[i];

		if (s->state == SLOT_HOLDING)
			SSL_shutdown(s->ssl);
		slot_release(s);
		drop_session(s);
	}
}

static void
start_slots(struct lg_worker *w)
{
	if (w->run->opt->mode == LG_MODE_IDLE) {
		idle_open_more(w);
		if (w->n_slots == 0)
			report_done(w);
		return;
	}

	w->active = w->n_slots;
	for (unsigned i = 0; i < w->n_slots; i++)
		slot_next(&w->slots[i]);
}

static bool
worker_finished(struct lg_worker *w)
{
	if (atomic_load_explicit(&w->run->stop, memory_order_relaxed))
		return true;
	if (w->run->opt->mode != LG_MODE_IDLE && w->active == 0) {
		report_done(w);
		return true;
	}
	return false;
}

void *
lg_worker_main(void *arg)
{
	struct lg_worker *w = arg;
	struct epoll_event events[MAX_EVENTS];

	start_slots(w);
	while (!worker_finished(w)) {
		int n = epoll_wait(w->epfd, events, MAX_EVENTS, TICK_MS);

		for (int i = 0; i < n; i++)
			slot_drive(events[i].data.ptr);
		on_tick(w);
	}

	close_all(w);
	return NULL;
}

/* ---- setup ---------------------------------------------------------------- */

static SSL_CTX *
make_ctx(const struct lg_options *opt)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL)
		return NULL;

	/* A load generator measures the server; verifying its certificate
	 * would only add client CPU to every full handshake. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	if (SSL_CTX_set_min_proto_version(ctx, opt->tls_version) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, opt->tls_version) != 1) {
		SSL_CTX_free(ctx);
		return NULL;
	}

	/* Sessions live in the slots, not in OpenSSL's client cache. */
	SSL_CTX_set_session_cache_mode(ctx,
				       SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, on_new_session);
	return ctx;
}

int
lg_worker_init(struct lg_worker *w, struct lg_run *run, unsigned id, unsigned n_slots,
	       unsigned first_slot_id, unsigned concurrency)
{
	memset(w, 0, sizeof(*w));
	w->run = run;
	w->id = id;
	w->n_slots = n_slots;
	w->first_slot_id = first_slot_id;
	w->concurrency = concurrency;
	lg_hist_init(&w->stats.latency_us);

	w->slots = calloc(n_slots != 0 ? n_slots : 1, sizeof(*w->slots));
	w->ctx = make_ctx(run->opt);
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (w->slots == NULL || w->ctx == NULL || w->epfd < 0) {
		lg_worker_destroy(w);
		return -ENOMEM;
	}

	for (unsigned i = 0; i < n_slots; i++) {
		w->slots[i].w = w;
		w->slots[i].id = first_slot_id + i;
		w->slots[i].fd = -1;
	}
	return 0;
}

void
lg_worker_destroy(struct lg_worker *w)
{
	if (w->slots != NULL) {
		for (unsigned i = 0; i < w->n_slots; i++) {
			slot_release(&w->slots[i]);
			drop_session(&w->slots[i]);
		}
	}
	free(w->slots);
	w->slots = NULL;
	SSL_CTX_free(w->ctx);
	w->ctx = NULL;
	if (w->epfd >= 0)
		close(w->epfd);
	w->epfd = -1;
}
