/*
 * dpdk_loadgen (issue #5): the other end of a DPDK-to-DPDK path to usher's
 * DPDK engine, where no kernel carries a byte.
 *
 *   dpdk_loadgen            net_memif (shared memory)          usher
 *   ust stack 10.78.0.1  <-------------------------------->  DPDK engine
 *     TLS clients  -------------- 10.78.0.2:8443 -------->     |
 *     backends :9001.. <------------- upstream legs -----------+
 *
 * One process, one thread, one polled queue pair. It runs usher's own
 * userspace TCP/IP stack (ust) and, on top of it, both sides of the load:
 * closed-loop TLS clients (OpenSSL over memory BIOs, one request line per
 * connection, close_notify before the FIN so sessions stay resumable) and
 * the backends, which answer each line with "<name> <line>" like
 * usher-testbackend.
 *
 * After --warmup seconds it measures for --duration seconds: handshakes
 * answered per second, how many resumed, errors, and usher's CPU over the
 * window from /proc/PID/stat (utime + stime, all its threads) when --pid
 * is given. One JSON object on stdout.
 *
 *   dpdk_loadgen EAL-ARGS -- --target 10.78.0.2:8443 --address 10.78.0.1/24
 *                [--tls 1.2|1.3] [--mode full|resume] [--concurrency N]
 *                [--backends N] [--backend-port P] [--warmup S]
 *                [--duration S] [--pid USHER_PID]
 *
 * The client certificate check is off: the server is usher with a test
 * certificate, and what is measured is the handshake, not the trust path.
 *
 * Reading the figures: net_memif offers usher no RX interrupts, so its idle
 * worker naps up to 1 ms between polls. With few connections in flight the
 * rate is bounded by those naps, not by CPU; usher's CPU per handshake is
 * the figure to set beside the io_uring engine's.
 *
 * TODO(#5): latency percentiles (usher-loadgen keeps a histogram; this
 * counts only), several queues against a multi-worker usher, and a second
 * load core: one core of client TLS cannot saturate usher on TLS 1.3.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "ust.h"

#define RX_BURST     32
#define TX_BATCH     64
#define POOL_MBUFS   8191
#define QUEUE_DESCS  1024
#define SLOTS_MAX    1024
#define BACKENDS_MAX 16
#define ANSWER_MAX   256
#define LINE_MAX_LEN 256

enum conn_kind {
	KIND_CLIENT = 0,
	KIND_BACKEND,
};

enum slot_state {
	SLOT_IDLE = 0,
	SLOT_CONNECTING,
	SLOT_HANDSHAKE,
	SLOT_ANSWER,
};

enum lg_error {
	ERR_CONNECT = 0,
	ERR_HANDSHAKE,
	ERR_IO,
	ERR_ANSWER,
	ERR_CLOSED,
	ERR_COUNT,
};

static const char *const error_names[ERR_COUNT] = {
	"connect", "handshake", "io", "answer", "closed_early",
};

struct options {
	uint32_t target_ip;
	uint16_t target_port;
	uint32_t ip;
	uint8_t prefix_len;
	int tls_version;
	bool resume;
	unsigned concurrency;
	unsigned backends;
	uint16_t backend_port;
	double warmup_s;
	double duration_s;
	long usher_pid;
};

/* One closed-loop client: a connection at a time, its newest session. */
struct slot {
	enum conn_kind kind; /* first: ust_conn_user points at it */
	unsigned id;
	enum slot_state state;
	struct ust_conn *conn;
	SSL *ssl;
	BIO *net_in; /* bytes from the wire, for OpenSSL */
	BIO *net_out;
	SSL_SESSION *session;
	char request[LINE_MAX_LEN];
	size_t request_len;
	char answer[ANSWER_MAX];
	size_t answer_len;
	uint64_t sequence;
};

/* One backend connection: lines in, "<name> <line>" out. */
struct backend_conn {
	enum conn_kind kind;
	unsigned backend;
	char line[LINE_MAX_LEN];
	size_t len;
};

struct counters {
	uint64_t answered, resumed;
	uint64_t errors[ERR_COUNT];
	uint64_t backend_lines;
};

struct loadgen {
	struct options opt;
	uint16_t port;
	struct rte_mempool *pool;
	struct rte_mbuf *tx[TX_BATCH];
	unsigned tx_n;
	uint64_t tx_dropped;

	struct ust_stack *st;
	SSL_CTX *ctx;
	struct slot slots[SLOTS_MAX];
	bool opening; /* start new connections */
	struct counters count;
	char first_error[200];
};

static volatile sig_atomic_t stop_requested;

static uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- frames: the port under the stack ------------------------------------ */

static void
flush_tx(struct loadgen *lg)
{
	uint16_t sent = 0;

	while (sent < lg->tx_n) {
		uint16_t n =
			rte_eth_tx_burst(lg->port, 0, lg->tx + sent, (uint16_t)(lg->tx_n - sent));

		if (n == 0)
			break;
		sent = (uint16_t)(sent + n);
	}
	for (unsigned i = sent; i < lg->tx_n; i++)
		rte_pktmbuf_free(lg->tx[i]);
	lg->tx_dropped += lg->tx_n - sent;
	lg->tx_n = 0;
}

static int
on_tx(void *arg, const void *frame, size_t len, unsigned tx_flags)
{
	struct loadgen *lg = arg;
	struct rte_mbuf *m;
	char *data;

	if (lg->tx_n == TX_BATCH)
		flush_tx(lg);

	m = rte_pktmbuf_alloc(lg->pool);
	if (m == NULL)
		return -ENOBUFS;
	data = rte_pktmbuf_append(m, (uint16_t)len);
	if (data == NULL) {
		rte_pktmbuf_free(m);
		return -EMSGSIZE;
	}
	memcpy(data, frame, len);
	lg->tx[lg->tx_n++] = m;
	return 0;
}

static void
poll_rx(struct loadgen *lg, uint64_t now)
{
	struct rte_mbuf *pkts[RX_BURST];
	uint8_t linear[RTE_MBUF_DEFAULT_DATAROOM];
	uint16_t n = rte_eth_rx_burst(lg->port, 0, pkts, RX_BURST);

	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		uint32_t len = rte_pktmbuf_pkt_len(m);
		const void *p = len <= sizeof(linear) ? rte_pktmbuf_read(m, 0, len, linear) : NULL;

		if (p != NULL)
			ust_input(lg->st, p, len, 0, now);
		rte_pktmbuf_free(m);
	}
}

/* ---- the TLS clients -------------------------------------------------- */

static void
slot_release(struct slot *s)
{
	SSL_free(s->ssl); /* frees both BIOs */
	s->ssl = NULL;
	s->state = SLOT_IDLE;
}

static void
slot_fail(struct loadgen *lg, struct slot *s, enum lg_error err, const char *what)
{
	lg->count.errors[err]++;
	if (lg->first_error[0] == '\0')
		snprintf(lg->first_error, sizeof(lg->first_error), "%s: %s", error_names[err],
			 what);

	if (s->conn != NULL)
		ust_abort(s->conn);
	s->conn = NULL;
	slot_release(s);

	/* A failed lineage starts over with a full handshake. */
	SSL_SESSION_free(s->session);
	s->session = NULL;
}

/* Move what OpenSSL wrote into the connection; false if it did not fit. */
static bool
slot_flush(struct slot *s)
{
	char buf[16384];
	int n;

	while ((n = BIO_read(s->net_out, buf, sizeof(buf))) > 0)
		if (ust_send(s->conn, buf, (size_t)n) != n)
			return false;
	return true;
}

/* OpenSSL hands us each new session; keep the newest, for the next. */
static int
on_new_session(SSL *ssl, SSL_SESSION *session)
{
	struct slot *s = SSL_get_app_data(ssl);

	SSL_SESSION_free(s->session);
	s->session = session;
	return 1;
}

static int
slot_start_tls(struct loadgen *lg, struct slot *s)
{
	s->ssl = SSL_new(lg->ctx);
	s->net_in = BIO_new(BIO_s_mem());
	s->net_out = BIO_new(BIO_s_mem());
	if (s->ssl == NULL || s->net_in == NULL || s->net_out == NULL) {
		BIO_free(s->net_in);
		BIO_free(s->net_out);
		return -ENOMEM;
	}

	/* An empty input BIO means "wait for more", not end of stream. */
	BIO_set_mem_eof_return(s->net_in, -1);
	SSL_set_bio(s->ssl, s->net_in, s->net_out);
	SSL_set_app_data(s->ssl, s);
	SSL_set_connect_state(s->ssl);
	if (lg->opt.resume && s->session != NULL)
		SSL_set_session(s->ssl, s->session);

	s->request_len =
		(size_t)snprintf(s->request, sizeof(s->request), "GET slot %u request %llu\n",
				 s->id, (unsigned long long)s->sequence++);
	s->answer_len = 0;
	s->state = SLOT_HANDSHAKE;
	return 0;
}

/* The answer must be "<name> <our request line>". */
static bool
answer_ok(const struct slot *s)
{
	const char *space = memchr(s->answer, ' ', s->answer_len);

	return space != NULL && s->answer_len - (size_t)(space + 1 - s->answer) == s->request_len &&
	       memcmp(space + 1, s->request, s->request_len) == 0;
}

/* Counted, close_notify and FIN sent, the connection given back. */
static void
slot_finish(struct loadgen *lg, struct slot *s)
{
	if (!answer_ok(s)) {
		slot_fail(lg, s, ERR_ANSWER, "the answer does not echo our line");
		return;
	}

	lg->count.answered++;
	if (SSL_session_reused(s->ssl))
		lg->count.resumed++;

	SSL_shutdown(s->ssl);
	slot_flush(s);
	ust_close(s->conn);
	s->conn = NULL;
	slot_release(s);
}

static void
slot_read_answer(struct loadgen *lg, struct slot *s)
{
	for (;;) {
		size_t room = sizeof(s->answer) - s->answer_len;
		int n;

		if (room == 0) {
			slot_fail(lg, s, ERR_ANSWER, "the answer is too long");
			return;
		}
		n = SSL_read(s->ssl, s->answer + s->answer_len, (int)room);
		if (n <= 0) {
			if (SSL_get_error(s->ssl, n) == SSL_ERROR_WANT_READ && slot_flush(s))
				return;
			slot_fail(lg, s, ERR_IO, "SSL_read failed");
			return;
		}
		s->answer_len += (size_t)n;
		if (s->answer[s->answer_len - 1] == '\n') {
			slot_finish(lg, s);
			return;
		}
	}
}

/* Advance the slot as far as the bytes at hand allow. */
static void
slot_drive(struct loadgen *lg, struct slot *s)
{
	int rc;

	if (s->state == SLOT_HANDSHAKE) {
		rc = SSL_do_handshake(s->ssl);
		if (rc != 1) {
			if (SSL_get_error(s->ssl, rc) == SSL_ERROR_WANT_READ && slot_flush(s))
				return;
			slot_fail(lg, s, ERR_HANDSHAKE, "SSL_do_handshake failed");
			return;
		}
		if (SSL_write(s->ssl, s->request, (int)s->request_len) != (int)s->request_len ||
		    !slot_flush(s)) {
			slot_fail(lg, s, ERR_IO, "the request did not go out");
			return;
		}
		s->state = SLOT_ANSWER;
	}

	if (s->state == SLOT_ANSWER)
		slot_read_answer(lg, s);
}

static void
slot_on_readable(struct loadgen *lg, struct slot *s)
{
	char buf[16384];
	long n;

	while ((n = ust_recv(s->conn, buf, sizeof(buf))) > 0)
		if (BIO_write(s->net_in, buf, (int)n) != (int)n) {
			slot_fail(lg, s, ERR_IO, "BIO_write failed");
			return;
		}

	if (n == 0 || (n < 0 && n != -EAGAIN)) {
		slot_fail(lg, s, ERR_CLOSED, "usher closed before answering");
		return;
	}
	slot_drive(lg, s);
}

static void
open_slots(struct loadgen *lg, uint64_t now)
{
	for (unsigned i = 0; i < lg->opt.concurrency; i++) {
		struct slot *s = &lg->slots[i];
		int rc;

		if (s->state != SLOT_IDLE)
			continue;
		rc = ust_connect(lg->st, lg->opt.target_ip, lg->opt.target_port, 0, now, s,
				 &s->conn);
		if (rc != 0) {
			lg->count.errors[ERR_CONNECT]++;
			continue;
		}
		s->state = SLOT_CONNECTING;
	}
}

/* ---- the backends ----------------------------------------------------- */

static void
backend_answer(struct ust_conn *conn, struct backend_conn *b, struct loadgen *lg)
{
	char out[LINE_MAX_LEN + 32];
	int n = snprintf(out, sizeof(out), "app-%u %.*s", b->backend + 1, (int)b->len, b->line);

	if (n > 0 && (size_t)n < sizeof(out))
		ust_send(conn, out, (size_t)n);
	lg->count.backend_lines++;
	b->len = 0;
}

static void
backend_on_readable(struct loadgen *lg, struct ust_conn *conn, struct backend_conn *b)
{
	char buf[4096];
	long n;

	while ((n = ust_recv(conn, buf, sizeof(buf))) > 0) {
		for (long i = 0; i < n; i++) {
			if (b->len < sizeof(b->line))
				b->line[b->len++] = buf[i];
			if (buf[i] == '\n' || b->len == sizeof(b->line))
				backend_answer(conn, b, lg);
		}
	}

	/* usher closed its upstream leg: close ours after the answers. A
	 * reset is left to on_closed, which frees b. */
	if (n == 0) {
		ust_close(conn);
		free(b);
	}
}

/* ---- the stack's callbacks ------------------------------------------- */

static void
on_accept(void *arg, struct ust_listener *l, struct ust_conn *conn)
{
	struct backend_conn *b = calloc(1, sizeof(*b));

	if (b == NULL) {
		ust_abort(conn);
		return;
	}
	b->kind = KIND_BACKEND;
	b->backend = (unsigned)(uintptr_t)ust_listener_user(l);
	ust_conn_set_user(conn, b);
}

static void
on_connected(void *arg, struct ust_conn *conn, int err)
{
	struct loadgen *lg = arg;
	struct slot *s = ust_conn_user(conn);

	if (err != 0) {
		s->conn = NULL;
		s->state = SLOT_IDLE;
		slot_fail(lg, s, ERR_CONNECT, ust_close_reason_name(UST_CLOSE_REFUSED));
		return;
	}
	if (slot_start_tls(lg, s) != 0) {
		slot_fail(lg, s, ERR_HANDSHAKE, "SSL_new failed");
		return;
	}
	slot_drive(lg, s);
}

static void
on_readable(void *arg, struct ust_conn *conn)
{
	struct loadgen *lg = arg;
	enum conn_kind *kind = ust_conn_user(conn);

	if (*kind == KIND_BACKEND)
		backend_on_readable(lg, conn, (struct backend_conn *)kind);
	else
		slot_on_readable(lg, (struct slot *)kind);
}

static void
on_closed(void *arg, struct ust_conn *conn, enum ust_close_reason reason)
{
	struct loadgen *lg = arg;
	enum conn_kind *kind = ust_conn_user(conn);
	struct slot *s;

	if (*kind == KIND_BACKEND) {
		free(kind);
		return;
	}

	s = (struct slot *)kind;
	s->conn = NULL;
	if (s->state == SLOT_CONNECTING) {
		s->state = SLOT_IDLE;
		lg->count.errors[ERR_CONNECT]++;
		return;
	}
	slot_fail(lg, s, ERR_CLOSED, ust_close_reason_name(reason));
}

/* ---- setup -------------------------------------------------------------- */

static int
setup_port(struct loadgen *lg)
{
	struct rte_eth_conf conf;
	struct rte_eth_link link;
	uint64_t deadline;

	if (rte_eth_dev_count_avail() == 0) {
		fprintf(stderr, "dpdk_loadgen: EAL found no port (a --vdev?)\n");
		return -ENODEV;
	}
	lg->port = 0;
	lg->pool = rte_pktmbuf_pool_create("lg_pool", POOL_MBUFS, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
					   (int)rte_socket_id());
	if (lg->pool == NULL) {
		fprintf(stderr, "dpdk_loadgen: no mempool (%s); give EAL more memory (-m)\n",
			rte_strerror(rte_errno));
		return -ENOMEM;
	}

	memset(&conf, 0, sizeof(conf));
	if (rte_eth_dev_configure(lg->port, 1, 1, &conf) != 0 ||
	    rte_eth_rx_queue_setup(lg->port, 0, QUEUE_DESCS, (unsigned)rte_socket_id(), NULL,
				   lg->pool) != 0 ||
	    rte_eth_tx_queue_setup(lg->port, 0, QUEUE_DESCS, (unsigned)rte_socket_id(), NULL) !=
		    0 ||
	    rte_eth_dev_start(lg->port) != 0) {
		fprintf(stderr, "dpdk_loadgen: cannot set port 0 up\n");
		return -EIO;
	}

	/* memif comes up when the other side has connected. */
	deadline = now_us() + 15 * 1000000u;
	do {
		rte_eth_link_get_nowait(lg->port, &link);
		if (link.link_status == RTE_ETH_LINK_UP)
			return 0;
		usleep(10000);
	} while (now_us() < deadline && !stop_requested);

	fprintf(stderr, "dpdk_loadgen: port 0 link still down after 15 s (is usher up?)\n");
	return -ETIMEDOUT;
}

static int
setup_stack(struct loadgen *lg)
{
	struct ust_config cfg;
	struct ust_ops ops;
	struct rte_ether_addr mac;

	ust_config_defaults(&cfg);
	rte_eth_macaddr_get(lg->port, &mac);
	memcpy(cfg.mac, mac.addr_bytes, 6);
	cfg.ipv4 = lg->opt.ip;
	cfg.prefix_len = lg->opt.prefix_len;
	cfg.max_conns = 16384;
	cfg.time_wait_max = 16384;
	if (RAND_bytes((unsigned char *)cfg.secret, sizeof(cfg.secret)) != 1)
		return -EIO;

	memset(&ops, 0, sizeof(ops));
	ops.arg = lg;
	ops.tx = on_tx;
	ops.on_accept = on_accept;
	ops.on_connected = on_connected;
	ops.on_readable = on_readable;
	ops.on_closed = on_closed;
	if (ust_stack_create(&cfg, &ops, &lg->st) != 0)
		return -EINVAL;

	for (unsigned i = 0; i < lg->opt.backends; i++) {
		struct ust_listener *l;

		if (ust_listen(lg->st, (uint16_t)(lg->opt.backend_port + i), (void *)(uintptr_t)i,
			       &l) != 0)
			return -EADDRINUSE;
	}
	return 0;
}

static int
setup_tls(struct loadgen *lg)
{
	lg->ctx = SSL_CTX_new(TLS_client_method());
	if (lg->ctx == NULL)
		return -ENOMEM;
	SSL_CTX_set_min_proto_version(lg->ctx, lg->opt.tls_version);
	SSL_CTX_set_max_proto_version(lg->ctx, lg->opt.tls_version);
	SSL_CTX_set_verify(lg->ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_session_cache_mode(lg->ctx,
				       SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(lg->ctx, on_new_session);

	for (unsigned i = 0; i < SLOTS_MAX; i++) {
		lg->slots[i].kind = KIND_CLIENT;
		lg->slots[i].id = i;
	}
	return 0;
}

/* ---- options ------------------------------------------------------------ */

static int
parse_ip(const char *text, uint32_t *ip)
{
	struct in_addr a;

	if (inet_pton(AF_INET, text, &a) != 1)
		return -EINVAL;
	*ip = ntohl(a.s_addr);
	return 0;
}

/* "IP:PORT" or "IP/PREFIX". */
static int
parse_pair(const char *text, char sep, uint32_t *ip, long *num)
{
	char buf[64];
	char *mark, *end;

	if (strlen(text) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, text);
	mark = strchr(buf, sep);
	if (mark == NULL)
		return -EINVAL;
	*mark = '\0';
	*num = strtol(mark + 1, &end, 10);
	if (*end != '\0')
		return -EINVAL;
	return parse_ip(buf, ip);
}

static int
parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{"target", required_argument, NULL, 't'},
		{"address", required_argument, NULL, 'a'},
		{"tls", required_argument, NULL, 'v'},
		{"mode", required_argument, NULL, 'm'},
		{"concurrency", required_argument, NULL, 'c'},
		{"backends", required_argument, NULL, 'b'},
		{"backend-port", required_argument, NULL, 'p'},
		{"warmup", required_argument, NULL, 'w'},
		{"duration", required_argument, NULL, 'd'},
		{"pid", required_argument, NULL, 'P'},
		{NULL, 0, NULL, 0},
	};
	long num;
	int ch;

	*o = (struct options){.tls_version = TLS1_3_VERSION,
			      .resume = true,
			      .concurrency = 16,
			      .backends = 4,
			      .backend_port = 9001,
			      .warmup_s = 2,
			      .duration_s = 10};
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 't':
			if (parse_pair(optarg, ':', &o->target_ip, &num) != 0 || num < 1 ||
			    num > 65535)
				return -EINVAL;
			o->target_port = (uint16_t)num;
			break;
		case 'a':
			if (parse_pair(optarg, '/', &o->ip, &num) != 0 || num < 1 || num > 32)
				return -EINVAL;
			o->prefix_len = (uint8_t)num;
			break;
		case 'v':
			o->tls_version =
				strcmp(optarg, "1.2") == 0 ? TLS1_2_VERSION : TLS1_3_VERSION;
			break;
		case 'm':
			o->resume = strcmp(optarg, "full") != 0;
			break;
		case 'c':
			o->concurrency = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'b':
			o->backends = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'p':
			o->backend_port = (uint16_t)strtoul(optarg, NULL, 10);
			break;
		case 'w':
			o->warmup_s = strtod(optarg, NULL);
			break;
		case 'd':
			o->duration_s = strtod(optarg, NULL);
			break;
		case 'P':
			o->usher_pid = strtol(optarg, NULL, 10);
			break;
		default:
			return -EINVAL;
		}
	}

	if (o->target_ip == 0 || o->ip == 0 || o->concurrency == 0 || o->concurrency > SLOTS_MAX ||
	    o->backends > BACKENDS_MAX || o->duration_s <= 0)
		return -EINVAL;
	return 0;
}

/* ---- the run ------------------------------------------------------------ */

/* usher's utime + stime in seconds, or -1 without --pid. */
static double
usher_cpu_s(long pid)
{
	char path[64], buf[1024];
	unsigned long long utime, stime;
	const char *p;
	FILE *f;
	size_t n;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';

	/* Fields 14 and 15, counted after the ")" that ends the name. */
	p = strrchr(buf, ')');
	if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
				&utime, &stime) != 2)
		return -1;
	return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static void
run_until(struct loadgen *lg, uint64_t end)
{
	uint64_t now;

	while ((now = now_us()) < end && !stop_requested) {
		poll_rx(lg, now);
		if (ust_next_timer(lg->st) <= now)
			ust_timers(lg->st, now);
		if (lg->opening)
			open_slots(lg, now);
		flush_tx(lg);
	}
}

static void
print_report(const struct loadgen *lg, const struct counters *c, double seconds, double cpu)
{
	uint64_t errors = 0;

	for (int i = 0; i < ERR_COUNT; i++)
		errors += c->errors[i];

	printf("{\"tls\": \"%s\", \"mode\": \"%s\", \"concurrency\": %u, \"seconds\": %.2f, "
	       "\"handshakes\": %llu, \"per_second\": %.1f, \"resumed_pct\": %.2f, "
	       "\"errors\": %llu, \"backend_lines\": %llu, \"tx_dropped\": %llu, "
	       "\"usher_cpu_s\": %.2f, \"usher_us_per_handshake\": %.1f, "
	       "\"usher_busy_pct\": %.1f, \"first_error\": \"%s\"}\n",
	       lg->opt.tls_version == TLS1_2_VERSION ? "1.2" : "1.3",
	       lg->opt.resume ? "resume" : "full", lg->opt.concurrency, seconds,
	       (unsigned long long)c->answered, (double)c->answered / seconds,
	       c->answered ? 100.0 * (double)c->resumed / (double)c->answered : 0.0,
	       (unsigned long long)errors, (unsigned long long)c->backend_lines,
	       (unsigned long long)lg->tx_dropped, cpu,
	       cpu >= 0 && c->answered ? cpu * 1e6 / (double)c->answered : -1.0,
	       cpu >= 0 ? 100.0 * cpu / seconds : -1.0, lg->first_error);
}

/* Warm up, then measure a window: the counters and usher's CPU in it. */
static void
run(struct loadgen *lg)
{
	struct counters before, *c = &lg->count;
	uint64_t start;
	double cpu0, cpu1;

	lg->opening = true;
	run_until(lg, now_us() + (uint64_t)(lg->opt.warmup_s * 1e6));

	before = lg->count;
	cpu0 = usher_cpu_s(lg->opt.usher_pid);
	start = now_us();
	run_until(lg, start + (uint64_t)(lg->opt.duration_s * 1e6));
	cpu1 = usher_cpu_s(lg->opt.usher_pid);

	c->answered -= before.answered;
	c->resumed -= before.resumed;
	c->backend_lines -= before.backend_lines;
	for (int i = 0; i < ERR_COUNT; i++)
		c->errors[i] -= before.errors[i];
	print_report(lg, c, (double)(now_us() - start) / 1e6,
		     cpu0 >= 0 && cpu1 >= 0 ? cpu1 - cpu0 : -1);

	/* Let what is in flight end, so usher sees clean closes. */
	lg->opening = false;
	run_until(lg, now_us() + 300000);
}

static void
on_signal(int sig)
{
	stop_requested = 1;
}

int
main(int argc, char **argv)
{
	static struct loadgen lg;
	int consumed;

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	consumed = rte_eal_init(argc, argv);
	if (consumed < 0) {
		fprintf(stderr, "dpdk_loadgen: rte_eal_init() failed (%s)\n",
			rte_strerror(rte_errno));
		return 77;
	}
	argc -= consumed;
	argv += consumed;

	if (parse_options(argc, argv, &lg.opt) != 0) {
		fprintf(stderr, "usage: dpdk_loadgen EAL-ARGS -- --target IP:PORT --address "
				"IP/PREFIX [--tls 1.2|1.3] [--mode full|resume] [--concurrency N] "
				"[--backends N] [--backend-port P] [--warmup S] [--duration S] "
				"[--pid PID]\n");
		return 2;
	}

	if (setup_port(&lg) != 0 || setup_stack(&lg) != 0 || setup_tls(&lg) != 0)
		return 1;
	run(&lg);

	ust_stack_destroy(lg.st);
	for (unsigned i = 0; i < SLOTS_MAX; i++) {
		SSL_free(lg.slots[i].ssl);
		SSL_SESSION_free(lg.slots[i].session);
	}
	SSL_CTX_free(lg.ctx);
	rte_eth_dev_stop(lg.port);
	rte_eal_cleanup();
	return 0;
}
