/*
 * balance: choosing a server for a new connection. The state here belongs
 * to one worker; the only shared memory read is each server's up flag.
 */
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "upstream.h"
#include "upstream_internal.h"

int
ush_balancer_init(struct ush_balancer *b, const struct ush_pool *pool)
{
	size_t n = pool->n_servers ? pool->n_servers : 1;

	memset(b, 0, sizeof(*b));
	b->pool = pool;
	b->rr_current = calloc(n, sizeof(*b->rr_current));
	b->active = calloc(n, sizeof(*b->active));
	if (b->rr_current == NULL || b->active == NULL) {
		ush_balancer_fini(b);
		return -ENOMEM;
	}

	return 0;
}

void
ush_balancer_fini(struct ush_balancer *b)
{
	free(b->rr_current);
	free(b->active);
	memset(b, 0, sizeof(*b));
}

static bool
candidate(const struct ush_server *s, const struct ush_server *exclude)
{
	return s != exclude && ush_server_usable(s);
}

/*
 * Smooth weighted round robin: every candidate gains its weight, the
 * richest is chosen and pays the sum of all weights. Over a cycle each
 * server is chosen weight times, spread out rather than in runs; ties go
 * to the lower index so the order is reproducible.
 */
static struct ush_server *
pick_round_robin(struct ush_balancer *b, const struct ush_server *exclude)
{
	const struct ush_pool *pool = b->pool;
	struct ush_server *best = NULL;
	int64_t total = 0;

	for (size_t i = 0; i < pool->n_servers; i++) {
		struct ush_server *s = &pool->servers[i];

		if (!candidate(s, exclude))
			continue;

		b->rr_current[i] += s->cfg->weight;
		total += s->cfg->weight;
		if (best == NULL || b->rr_current[i] > b->rr_current[best->index])
			best = s;
	}

	if (best != NULL)
		b->rr_current[best->index] -= total;

	return best;
}

/* Whether a is a better least_conn choice than the best so far. */
static bool
fewer_conns(const struct ush_balancer *b, const struct ush_server *a, const struct ush_server *best)
{
	if (best == NULL)
		return true;

	if (b->active[a->index] != b->active[best->index])
		return b->active[a->index] < b->active[best->index];

	return a->cfg->weight > best->cfg->weight;
}

/*
 * The scan starts just after the last server chosen, and a tie keeps the
 * first server seen, so equal servers take turns.
 */
static struct ush_server *
pick_least_conn(struct ush_balancer *b, const struct ush_server *exclude)
{
	const struct ush_pool *pool = b->pool;
	size_t n = pool->n_servers;
	size_t start = n ? (size_t)(b->rr_next % n) : 0;
	struct ush_server *best = NULL;

	for (size_t k = 0; k < n; k++) {
		struct ush_server *s = &pool->servers[(start + k) % n];

		if (candidate(s, exclude) && fewer_conns(b, s, best))
			best = s;
	}

	if (best != NULL)
		b->rr_next = best->index + 1;

	return best;
}

/*
 * The bytes of the client's IP address, IPv4-mapped IPv6 folded to IPv4 so
 * that one client hashes alike on both kinds of listener. 0 if it has none.
 */
static size_t
client_ip(const struct sockaddr *client, const unsigned char **ip)
{
	const struct sockaddr_in *in4 = (const struct sockaddr_in *)client;
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)client;

	if (client == NULL)
		return 0;

	if (client->sa_family == AF_INET) {
		*ip = (const unsigned char *)&in4->sin_addr;
		return 4;
	}

	if (client->sa_family != AF_INET6)
		return 0;

	if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
		*ip = in6->sin6_addr.s6_addr + 12;
		return 4;
	}

	*ip = in6->sin6_addr.s6_addr;
	return 16;
}

/*
 * Weighted rendezvous score: a uniform draw u in (0, 1) from the pair
 * (client, server) becomes weight / -ln(u). The highest score wins, and a
 * server wins with a probability proportional to its weight. Removing a
 * server changes no other server's score, so only its clients move.
 */
static double
rendezvous_score(uint64_t client_hash, const struct ush_server *s)
{
	uint64_t h = ush_mix64(client_hash ^ s->name_hash);
	double u = ((double)(h >> 11) + 0.5) * 0x1.0p-53;

	return (double)s->cfg->weight / -log(u);
}

static struct ush_server *
pick_hash_client(struct ush_balancer *b, const struct sockaddr *client,
		 const struct ush_server *exclude)
{
	const struct ush_pool *pool = b->pool;
	const unsigned char *ip = NULL;
	size_t ip_len = client_ip(client, &ip);
	struct ush_server *best = NULL;
	double best_score = 0;
	uint64_t client_hash;

	if (ip_len == 0)
		return pick_round_robin(b, exclude);

	client_hash = ush_hash_bytes(ip, ip_len);

	for (size_t i = 0; i < pool->n_servers; i++) {
		struct ush_server *s = &pool->servers[i];
		double score;

		if (!candidate(s, exclude))
			continue;

		score = rendezvous_score(client_hash, s);
		if (best == NULL || score > best_score) {
			best = s;
			best_score = score;
		}
	}

	return best;
}

struct ush_server *
ush_balancer_pick(struct ush_balancer *b, const struct sockaddr *client,
		  const struct ush_server *exclude)
{
	switch (b->pool->cfg->balance) {
	case CFG_BALANCE_LEAST_CONN:
		return pick_least_conn(b, exclude);
	case CFG_BALANCE_HASH_CLIENT:
		return pick_hash_client(b, client, exclude);
	case CFG_BALANCE_ROUND_ROBIN:
	default:
		return pick_round_robin(b, exclude);
	}
}

static bool
owns(const struct ush_balancer *b, const struct ush_server *s)
{
	return s != NULL && s->index < b->pool->n_servers && &b->pool->servers[s->index] == s;
}

void
ush_balancer_conn_opened(struct ush_balancer *b, const struct ush_server *s)
{
	if (owns(b, s))
		b->active[s->index]++;
}

void
ush_balancer_conn_closed(struct ush_balancer *b, const struct ush_server *s)
{
	if (owns(b, s) && b->active[s->index] > 0)
		b->active[s->index]--;
}
