#include "pool_fixture.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

void
fixture_cfg_init(struct fixture_cfg *f)
{
	memset(f, 0, sizeof(*f));
	f->cfg.pools = f->pools;
}

void
fixture_set_port(struct fixture_cfg *f, size_t p, size_t i, uint16_t port)
{
	struct cfg_addr *a = &f->servers[p][i].address;
	struct sockaddr_in *in = (struct sockaddr_in *)&a->ss;

	memset(&a->ss, 0, sizeof(a->ss));
	in->sin_family = AF_INET;
	in->sin_port = htons(port);
	in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a->len = sizeof(*in);
}

void
fixture_set_name(struct fixture_cfg *f, size_t p, size_t i, const char *name)
{
	snprintf(f->names[p][i], sizeof(f->names[p][i]), "%s", name);
}

size_t
fixture_add_pool(struct fixture_cfg *f, const char *name, enum cfg_balance balance,
		 const unsigned *weights, size_t n)
{
	size_t p = f->cfg.n_pools++;
	struct cfg_pool *pool = &f->pools[p];

	snprintf(f->pool_names[p], sizeof(f->pool_names[p]), "%s", name);
	pool->name = f->pool_names[p];
	pool->balance = balance;
	pool->servers = f->servers[p];
	pool->n_servers = n;
	pool->health_check = (struct cfg_health_check){
		.interval_ms = 100,
		.timeout_ms = 100,
		.fall = 3,
		.rise = 2,
	};

	for (size_t i = 0; i < n; i++) {
		snprintf(f->names[p][i], sizeof(f->names[p][i]), "s%zu", i);
		f->servers[p][i].name = f->names[p][i];
		f->servers[p][i].weight = weights ? weights[i] : 1;
		fixture_set_port(f, p, i, (uint16_t)(20000 + i));
	}

	return p;
}

void
fixture_set_up(struct ush_server *s, bool up)
{
	atomic_store_explicit(&s->up, up, memory_order_relaxed);
}

int
fixture_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;

	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.')
			n++;
	}

	closedir(d);
	return n;
}
