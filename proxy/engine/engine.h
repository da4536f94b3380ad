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
 */
#ifndef USHER_ENGINE_H
#define USHER_ENGINE_H

#ifdef __cplusplus
extern "C" {
#endif

struct ush_worker;

struct ush_engine_ops {
	const char *name;
	int (*init)(struct ush_worker *w);
	int (*run)(struct ush_worker *w);
	void (*fini)(struct ush_worker *w);
	void (*wake)(struct ush_worker *w);
};

/* The io_uring engine on the kernel TCP stack. */
extern const struct ush_engine_ops ush_uring_engine;

#ifdef __cplusplus
}
#endif

#endif
