/*
 * runtime: the main thread of usher. It starts one worker thread per
 * configured core, the health checker and the metrics endpoint, then waits
 * for signals:
 *
 *	SIGHUP          reload the configuration; a broken one is reported
 *	                and the running one stays
 *	SIGTERM, SIGINT stop accepting, let connections finish for up to
 *	                timeouts.shutdown, then exit 0
 */
#ifndef USHER_RUNTIME_H
#define USHER_RUNTIME_H

#include "cfg.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Run usher on cfg (taken over) until told to stop. The exit code. */
int ush_runtime_run(const char *config_path, struct cfg *cfg);

#ifdef __cplusplus
}
#endif

#endif
