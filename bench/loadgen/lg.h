/*
 * usher-loadgen (issue #4): a closed-loop TLS client for handshake and
 * resumption load. This header holds what its parts share: the options,
 * the run every worker obeys, and the counters each worker keeps.
 *
 * Threads: the main thread parses options, starts the workers, prints
 * progress and decides when the run ends. Each worker is one thread with
 * its own epoll set, SSL_CTX and connections (see client.c). Counters are
 * written by their worker only; the main thread reads the atomic ones
 * while the run goes on and everything else after the workers joined.
 */
#ifndef USHER_LOADGEN_LG_H
#define USHER_LOADGEN_LG_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "hist.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LG_NAME_MAX     64  /* a backend name from an answer, with its NUL */
#define LG_BACKENDS_MAX 32  /* distinct backend names counted one by one */
#define LG_ERROR_TEXT   200 /* the first error's description */

enum lg_mode {
	LG_MODE_FULL = 0, /* never offer a session: every handshake is full */
	LG_MODE_RESUME,   /* one full handshake per slot, then resume */
	LG_MODE_IDLE,     /* open --idle connections, hold them, close them */
};

enum lg_error {
	LG_ERR_CONNECT = 0, /* socket() or connect() failed */
	LG_ERR_HANDSHAKE,   /* the TLS handshake failed */
	LG_ERR_IO,          /* write or read after the handshake, early close */
	LG_ERR_ANSWER,      /* the answer was not "<name> <our line>" */
	LG_ERR_TIMEOUT,     /* no answer within --timeout */
	LG_ERR_COUNT,
};

struct lg_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char text[64];
};

struct lg_options {
	struct lg_addr target;
	struct lg_addr resume_target;
	bool has_resume_target;
	enum lg_mode mode;
	int tls_version; /* TLS1_2_VERSION or TLS1_3_VERSION */
	char *sni;       /* NULL: send no SNI; not const for SSL_set_tlsext_host_name() */
	const char *json_path;
	unsigned concurrency;
	unsigned threads;
	uint64_t duration_ns;
	uint64_t timeout_ns;
	uint64_t max_connections; /* 0: no limit */
	unsigned idle;            /* LG_MODE_IDLE: connections to hold */
	uint64_t hold_ns;
};

/* The run as the main thread steers it; shared by every worker. */
struct lg_run {
	const struct lg_options *opt;
	atomic_bool stop;         /* drop what is in flight and return */
	atomic_bool stop_opening; /* idle mode: open no more connections */
	_Atomic int64_t budget;   /* connections still to start, with --max-connections */
	atomic_uint workers_done; /* load: out of work; idle: done opening */
};

struct lg_backend_count {
	char name[LG_NAME_MAX];
	uint64_t answers;
};

struct lg_stats {
	/* Written by the owning worker, read by the progress line. */
	_Atomic uint64_t handshakes;      /* connections that got their answer */
	_Atomic uint64_t resume_attempts; /* of those, how many offered a session */
	_Atomic uint64_t resumed;         /* and how many resumed */
	_Atomic uint64_t affinity_same;   /* resumed and answered by the session's backend */
	_Atomic uint64_t errors[LG_ERR_COUNT];
	_Atomic uint64_t idle_open;    /* idle mode: connections held now */
	_Atomic uint64_t idle_dropped; /* idle mode: closed by the server while held */

	/* Owner only until the worker has joined. */
	struct lg_hist latency_us; /* connect start to the backend's answer */
	struct lg_backend_count backends[LG_BACKENDS_MAX];
	unsigned n_backends;
	uint64_t backends_other; /* answers from names beyond LG_BACKENDS_MAX */
	char first_error[LG_ERROR_TEXT];
};

struct lg_slot;

struct lg_worker {
	struct lg_run *run;
	unsigned id;
	SSL_CTX *ctx;
	int epfd;
	pthread_t thread;

	struct lg_slot *slots;
	unsigned n_slots;
	unsigned first_slot_id; /* slot numbers are unique across workers */
	unsigned concurrency;   /* idle mode: handshakes in flight at once */
	unsigned active;        /* load mode: slots not done */
	unsigned opening;       /* idle mode: connections between connect and answer */
	unsigned next_unopened; /* idle mode: the next slot to open */
	bool opening_more;      /* idle mode: inside idle_open_more() */
	bool reported_done;
	uint64_t next_scan_ns;

	struct lg_stats stats;
};

/* options.c */

/*
 * Fill opt from the command line. 0 to run, 1 after --help (printed to
 * stdout), -1 after a usage error (printed to stderr).
 */
int lg_options_parse(int argc, char **argv, struct lg_options *opt);

/* client.c */

/*
 * Prepare worker id with n_slots connections numbered from first_slot_id;
 * in idle mode at most concurrency of them handshake at once.
 * 0 or -errno; on failure nothing is left to free.
 */
int lg_worker_init(struct lg_worker *w, struct lg_run *run, unsigned id, unsigned n_slots,
		   unsigned first_slot_id, unsigned concurrency);

/* The worker thread: runs until run->stop, or until it is out of work. */
void *lg_worker_main(void *arg);

/* Free what lg_worker_init made; the thread must have joined. */
void lg_worker_destroy(struct lg_worker *w);

/* Monotonic time in nanoseconds. */
uint64_t lg_now_ns(void);

/* report.c */

/* Sum of the atomic counters of every worker, for the progress line. */
struct lg_totals {
	uint64_t handshakes;
	uint64_t resume_attempts;
	uint64_t resumed;
	uint64_t affinity_same;
	uint64_t errors;
	uint64_t idle_open;
	uint64_t idle_dropped;
};

void lg_totals_read(const struct lg_worker *workers, unsigned n, struct lg_totals *t);

/* One progress line on stderr, overwritten each second. */
void lg_progress_print(const struct lg_options *opt, const struct lg_totals *now,
		       const struct lg_totals *before, double elapsed_s, double interval_s);

/* Everything the workers counted, merged after they joined. */
struct lg_result {
	double elapsed_s;
	uint64_t handshakes;
	uint64_t resume_attempts;
	uint64_t resumed;
	uint64_t affinity_same;
	uint64_t errors[LG_ERR_COUNT];
	uint64_t errors_total;
	uint64_t idle_established; /* idle mode: held when the opening ended */
	uint64_t idle_dropped;
	struct lg_hist latency_us;
	struct lg_backend_count backends[LG_BACKENDS_MAX];
	unsigned n_backends;
	uint64_t backends_other;
	char first_error[LG_ERROR_TEXT];
};

void lg_result_merge(struct lg_result *r, const struct lg_worker *workers, unsigned n);

/* The human summary. */
void lg_result_print(FILE *f, const struct lg_options *opt, const struct lg_result *r);

/* The JSON document; 0 or -1 with errno. */
int lg_result_write_json(FILE *f, const struct lg_options *opt, const struct lg_result *r);

#ifdef __cplusplus
}
#endif

#endif
