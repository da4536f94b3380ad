/*
 * metrics: wires the workers, ticket counters and pool health into the
 * Prometheus endpoint of stats.h.
 */
#ifndef USHER_METRICS_H
#define USHER_METRICS_H

#include <pthread.h>

#include "worker.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ush_metrics;

/*
 * Serve cfg->stats.bind if the stats section is present (otherwise *out
 * is NULL and 0 is returned). gen_lock guards the generation pointer,
 * which ush_metrics_set_generation() changes on reload. Main thread.
 */
int ush_metrics_start(const struct cfg *cfg, struct ush_worker *workers, size_t n_workers,
		      struct ush_generation *gen, pthread_mutex_t *gen_lock,
		      struct ush_metrics **out);

/* Report the pools of gen from now on. Call with gen_lock held or not. */
void ush_metrics_set_generation(struct ush_metrics *m, struct ush_generation *gen);

void ush_metrics_stop(struct ush_metrics *m);

#ifdef __cplusplus
}
#endif

#endif
