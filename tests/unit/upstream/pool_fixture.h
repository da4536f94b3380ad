/*
 * pool_fixture: configuration snapshots filled in by hand, so the upstream
 * tests need no YAML. Servers listen (or not) on 127.0.0.1.
 */
#ifndef USHER_TEST_POOL_FIXTURE_H
#define USHER_TEST_POOL_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "upstream.h"

#define FIXTURE_MAX_POOLS   4
#define FIXTURE_MAX_SERVERS 128

struct fixture_cfg {
	struct cfg cfg;
	struct cfg_pool pools[FIXTURE_MAX_POOLS];
	struct cfg_server servers[FIXTURE_MAX_POOLS][FIXTURE_MAX_SERVERS];
	char names[FIXTURE_MAX_POOLS][FIXTURE_MAX_SERVERS][CFG_NAME_MAX + 1];
	char pool_names[FIXTURE_MAX_POOLS][CFG_NAME_MAX + 1];
};

/* An empty snapshot. */
void fixture_cfg_init(struct fixture_cfg *f);

/*
 * Add a pool of n servers named "s0".."s<n-1>" at 127.0.0.1:(20000 + i),
 * with weights (NULL: all 1), fall 3, rise 2, checks every 100 ms. The
 * pool's index.
 */
size_t fixture_add_pool(struct fixture_cfg *f, const char *name, enum cfg_balance balance,
			const unsigned *weights, size_t n);

/* Point server i of pool p at 127.0.0.1:port. */
void fixture_set_port(struct fixture_cfg *f, size_t p, size_t i, uint16_t port);

/* Rename server i of pool p. */
void fixture_set_name(struct fixture_cfg *f, size_t p, size_t i, const char *name);

/* Mark a server up or down the way the health code does. */
void fixture_set_up(struct ush_server *s, bool up);

/* The number of open descriptors of this process. */
int fixture_count_fds(void);

#endif
