/*
 * engine: how a worker moves bytes. An engine owns the sockets (kernel or
 * userspace), the event loop and the timers of one worker; the connection
 * logic (conn.h) and everything above it is the same for every engine.
 *
 * The runtime calls, on the worker's own thread:
 *
 *	init(w)   set up the loop and open this worker's listeners
 *	run(w)    loop until w->stop, then close every connection
 *	fini(w)   release what init made
 *
 * and from any thread:
 *
 *	wake(w)   make run() look at w's mailbox (stop, drain, new generation)
 *
 * Optional, for engines with process-wide state (DPDK's EAL and port):
 *
 *	global_init(cfg, n)  main thread, once, before any worker starts;
 *	                     0 or -errno after logging why
 *	global_fini()        main thread, after every worker is joined and
 *	                     the metrics endpoint has stopped
 *	print_metrics(out)   the stats thread: the engine's own families
 */
#ifndef USHER_ENGINE_H
#define USHER_ENGINE_H

#include "usher_build.h"

#ifdef __cplusplus
extern "C" {
#endif

struct cfg;
struct ush_metrics_writer;
struct ush_worker;

struct ush_engine_ops {
	const char *name;
	int (*init)(struct ush_worker *w);
	int (*run)(struct ush_worker *w);
	void (*fini)(struct ush_worker *w);
	void (*wake)(struct ush_worker *w);

	int (*global_init)(const struct cfg *cfg, unsigned n_workers); /* may be NULL */
	void (*global_fini)(void);                                     /* may be NULL */
	void (*print_metrics)(struct ush_metrics_writer *out);         /* may be NULL */
};

/* The io_uring engine on the kernel TCP stack. */
extern const struct ush_engine_ops ush_uring_engine;

#if USHER_HAVE_DPDK
/* Userspace TCP/IP (proxy/engine/dpdk/stack) on a DPDK port. */
extern const struct ush_engine_ops ush_dpdk_engine;
#endif

#ifdef __cplusplus
}
#endif

#endif
