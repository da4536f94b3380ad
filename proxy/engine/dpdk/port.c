/*
 * Process-wide DPDK state: EAL, the port with one queue pair, mempool and
 * steering ring per worker, the test-only fault option, and the counters
 * the metrics thread prints.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include "dpdk.h"
#include "log.h"
#include "stats.h"

#define RX_DESC        512
#define TX_DESC        512
#define POOL_MBUFS     4095 /* 2^n - 1 suits the ring under the mempool */
#define POOL_CACHE     256
#define RING_SIZE      1024
#define EPHEMERAL_MIN  32768
#define EPHEMERAL_MAX  60999
#define FAULT_CAPACITY 4096

struct dpdk_port dpdk_port;

/*
 * The strings we own, and the vector handed to rte_eal_init, which
 * reorders it and overwrites entries with argv[0]: so free from the first.
 * Both live as long as EAL, which may keep pointers to the strings.
 */
static char **eal_strings;
static char **eal_argv;
static int eal_argc;

static const char *
ipv4_str(uint32_t host_order, char *buf, size_t cap)
{
	struct in_addr a = {.s_addr = htonl(host_order)};

	return inet_ntop(AF_INET, &a, buf, (socklen_t)cap) ? buf : "?";
}

/* ---- what only this engine checks ------------------------------------- */

bool
dpdk_bind_ok(const struct cfg_addr *bind)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&bind->ss;

	if (bind->ss.ss_family != AF_INET)
		return false;

	return sin->sin_addr.s_addr == htonl(INADDR_ANY) ||
	       ntohl(sin->sin_addr.s_addr) == dpdk_port.ipv4;
}

uint16_t
dpdk_bind_port(const struct cfg_addr *bind)
{
	return ntohs(((const struct sockaddr_in *)&bind->ss)->sin_port);
}

/* Every listener on our one address, and no two on the same port. */
static int
check_listeners(const struct cfg *cfg)
{
	char ip[INET_ADDRSTRLEN];
	size_t i, j;

	for (i = 0; i < cfg->n_listeners; i++) {
		const struct cfg_listener *l = &cfg->listeners[i];

		if (!dpdk_bind_ok(&l->bind)) {
			ush_log(USH_LOG_ERROR,
				"listener '%s': bind '%s' is not on the DPDK port; use dpdk.address '%s' or 0.0.0.0",
				l->name, l->bind.text, ipv4_str(dpdk_port.ipv4, ip, sizeof(ip)));
			return -EINVAL;
		}

		for (j = 0; j < i; j++) {
			if (dpdk_bind_port(&cfg->listeners[j].bind) != dpdk_bind_port(&l->bind))
				continue;
			ush_log(USH_LOG_ERROR,
				"listener '%s': port %u is taken by listener '%s'; the DPDK port has one address",
				l->name, dpdk_bind_port(&l->bind), cfg->listeners[j].name);
			return -EINVAL;
		}
	}

	return 0;
}

static int
check_servers(const struct cfg *cfg)
{
	size_t p, s;

	for (p = 0; p < cfg->n_pools; p++) {
		for (s = 0; s < cfg->pools[p].n_servers; s++) {
			const struct cfg_server *srv = &cfg->pools[p].servers[s];

			if (srv->address.ss.ss_family == AF_INET)
				continue;
			ush_log(USH_LOG_ERROR,
				"pool '%s', server '%s': address '%s' is not IPv4; the DPDK engine reaches IPv4 servers only",
				cfg->pools[p].name, srv->name, srv->address.text);
			return -EINVAL;
		}
	}

	return 0;
}

/* ---- the test-only fault option ----------------------------------------- */

struct fault_key {
	const char *name;
	size_t offset;
	bool ppm; /* a chance in a million, at most 1000000 */
	bool u64;
};

static const struct fault_key fault_keys[] = {
	{"seed", offsetof(struct ust_faults_config, seed), false, true},
	{"drop", offsetof(struct ust_faults_config, drop_ppm), true, false},
	{"dup", offsetof(struct ust_faults_config, dup_ppm), true, false},
	{"delay", offsetof(struct ust_faults_config, delay_ppm), true, false},
	{"delay_max_us", offsetof(struct ust_faults_config, delay_max_us), false, true},
	{"latency_us", offsetof(struct ust_faults_config, latency_us), false, true},
};

static int
set_fault_key(struct ust_faults_config *fc, const char *key, const char *value)
{
	unsigned long long v;
	char *end;
	size_t i;

	errno = 0;
	v = strtoull(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0')
		return -EINVAL;

	for (i = 0; i < sizeof(fault_keys) / sizeof(fault_keys[0]); i++) {
		const struct fault_key *k = &fault_keys[i];
		void *field = (char *)fc + k->offset;

		if (strcmp(k->name, key) != 0)
			continue;
		if (k->ppm && v > 1000000)
			return -ERANGE;
		if (k->u64)
			*(uint64_t *)field = v;
		else
			*(uint32_t *)field = (uint32_t)v;
		return 0;
	}

	return -ENOENT;
}

/*
 * USHER_DPDK_FAULTS="seed=7,drop=50000,dup=50000,delay=50000,delay_max_us=2000"
 * (chances in parts per million). Test-only: it loses frames on purpose.
 */
static int
parse_faults(const char *text, struct ust_faults_config *fc)
{
	char *copy = strdup(text), *save = NULL, *item;
	int rc = 0;

	if (copy == NULL)
		return -ENOMEM;

	*fc = (struct ust_faults_config){.seed = 1,
					 .delay_max_us = 1000,
					 .capacity = FAULT_CAPACITY,
					 .frame_max = DPDK_FRAME_MAX};
	for (item = strtok_r(copy, ",", &save); item != NULL && rc == 0;
	     item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');

		if (eq == NULL) {
			rc = -EINVAL;
		} else {
			*eq = '\0';
			rc = set_fault_key(fc, item, eq + 1);
		}
		if (rc != 0)
			ush_log(USH_LOG_ERROR,
				"USHER_DPDK_FAULTS: '%s' is not key=number with a known key (seed, drop, dup, delay, delay_max_us, latency_us; chances in ppm up to 1000000)",
				item);
	}

	free(copy);
	return rc;
}

static int
load_faults(void)
{
	const char *text = getenv("USHER_DPDK_FAULTS");
	struct ust_faults_config *fc = &dpdk_port.faults;
	int rc;

	if (text == NULL || text[0] == '\0')
		return 0;

	rc = parse_faults(text, fc);
	if (rc != 0)
		return rc;

	dpdk_port.faults_on = true;
	ush_log(USH_LOG_WARN,
		"USHER_DPDK_FAULTS is set: frames are dropped (%u ppm), duplicated (%u ppm) and delayed (%u ppm, up to %llu us) on purpose, seed %llu; a test option, never for production",
		fc->drop_ppm, fc->dup_ppm, fc->delay_ppm, (unsigned long long)fc->delay_max_us,
		(unsigned long long)fc->seed);
	return 0;
}

/* ---- EAL ------------------------------------------------------------------ */

static int
copy_eal_args(const struct cfg_dpdk *d)
{
	size_t i;

	eal_strings = calloc(d->n_eal_args + 2, sizeof(*eal_strings));
	eal_argv = calloc(d->n_eal_args + 2, sizeof(*eal_argv));
	if (eal_strings == NULL || eal_argv == NULL)
		return -ENOMEM;

	eal_strings[eal_argc++] = strdup("usher");
	for (i = 0; i < d->n_eal_args; i++)
		eal_strings[eal_argc++] = strdup(d->eal_args[i]);

	for (i = 0; i < (size_t)eal_argc; i++) {
		if (eal_strings[i] == NULL)
			return -ENOMEM;
		eal_argv[i] = eal_strings[i];
	}
	return 0;
}

/*
 * rte_eal_init pins the calling thread to the main lcore; threads the main
 * thread starts later (health checks, metrics) inherit that, so give the
 * main thread its CPUs back afterwards. Workers pin themselves.
 */
static int
start_eal(const struct cfg_dpdk *d)
{
	cpu_set_t cpus;
	bool have_cpus;
	int rc;

	rc = copy_eal_args(d);
	if (rc != 0)
		return rc;

	have_cpus = pthread_getaffinity_np(pthread_self(), sizeof(cpus), &cpus) == 0;
	rc = rte_eal_init(eal_argc, eal_argv);
	if (have_cpus)
		pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus);

	if (rc < 0) {
		ush_log(USH_LOG_ERROR, "rte_eal_init() failed (%s); check dpdk.eal_args",
			rte_strerror(rte_errno));
		return -EINVAL;
	}

	dpdk_port.eal_up = true;
	return 0;
}

/* ---- the port ------------------------------------------------------------- */

static int
check_port(uint16_t pid, unsigned n, struct rte_eth_dev_info *info)
{
	int rc;

	if (!rte_eth_dev_is_valid_port(pid)) {
		ush_log(USH_LOG_ERROR,
			"dpdk.port %u does not exist; EAL found %u port(s) (a --vdev or an allowed device in dpdk.eal_args?)",
			pid, (unsigned)rte_eth_dev_count_avail());
		return -ENODEV;
	}

	rc = rte_eth_dev_info_get(pid, info);
	if (rc != 0) {
		ush_log_errno(USH_LOG_ERROR, rc, "rte_eth_dev_info_get() failed on port %u", pid);
		return rc;
	}

	if (info->max_rx_queues < n || info->max_tx_queues < n) {
		ush_log(USH_LOG_ERROR,
			"port %u (%s) has %u RX and %u TX queues; %u workers need one pair each (lower 'workers')",
			pid, info->driver_name, info->max_rx_queues, info->max_tx_queues, n);
		return -EINVAL;
	}

	return 0;
}

/* RX interrupts let an idle worker sleep; not every driver has them. */
static int
configure_port(uint16_t pid, unsigned n, const struct rte_eth_dev_info *info, bool *rx_intr)
{
	const uint64_t csum_rx = RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_TCP_CKSUM;
	const uint64_t csum_tx = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_TCP_CKSUM;
	struct rte_eth_conf conf;
	int rc;

	memset(&conf, 0, sizeof(conf));
	conf.rxmode.offloads = info->rx_offload_capa & csum_rx;
	conf.txmode.offloads = dpdk_port.faults_on ? 0 : info->tx_offload_capa & csum_tx;
	conf.intr_conf.rxq = 1;

	rc = rte_eth_dev_configure(pid, (uint16_t)n, (uint16_t)n, &conf);
	*rx_intr = rc == 0;
	if (rc != 0) {
		conf.intr_conf.rxq = 0;
		rc = rte_eth_dev_configure(pid, (uint16_t)n, (uint16_t)n, &conf);
	}
	if (rc != 0) {
		ush_log_errno(USH_LOG_ERROR, rc, "rte_eth_dev_configure() failed on port %u", pid);
		return rc;
	}

	if (conf.txmode.offloads & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM)
		dpdk_port.tx_offloads |= UST_OFFLOAD_TX_IPV4_CSUM;
	if (conf.txmode.offloads & RTE_ETH_TX_OFFLOAD_TCP_CKSUM)
		dpdk_port.tx_offloads |= UST_OFFLOAD_TX_TCP_CSUM;
	return 0;
}

static int
setup_queue(uint16_t pid, unsigned q)
{
	int socket = rte_eth_dev_socket_id(pid);
	uint16_t nb_rx = RX_DESC, nb_tx = TX_DESC;
	char name[RTE_MEMPOOL_NAMESIZE];
	int rc;

	snprintf(name, sizeof(name), "usher_pool_%u", q);
	dpdk_port.pools[q] = rte_pktmbuf_pool_create(name, POOL_MBUFS, POOL_CACHE, 0,
						     RTE_MBUF_DEFAULT_BUF_SIZE, socket);
	if (dpdk_port.pools[q] == NULL) {
		ush_log(USH_LOG_ERROR,
			"rte_pktmbuf_pool_create() failed for worker %u (%s); give EAL more memory (-m)",
			q, rte_strerror(rte_errno));
		return -ENOMEM;
	}

	snprintf(name, sizeof(name), "usher_ring_%u", q);
	dpdk_port.rings[q] = rte_ring_create(name, RING_SIZE, socket, RING_F_SC_DEQ);
	if (dpdk_port.rings[q] == NULL) {
		ush_log(USH_LOG_ERROR, "rte_ring_create() failed for worker %u (%s)", q,
			rte_strerror(rte_errno));
		return -ENOMEM;
	}

	rc = rte_eth_dev_adjust_nb_rx_tx_desc(pid, &nb_rx, &nb_tx);
	if (rc == 0)
		rc = rte_eth_rx_queue_setup(pid, (uint16_t)q, nb_rx, (unsigned)socket, NULL,
					    dpdk_port.pools[q]);
	if (rc == 0)
		rc = rte_eth_tx_queue_setup(pid, (uint16_t)q, nb_tx, (unsigned)socket, NULL);
	if (rc != 0)
		ush_log_errno(USH_LOG_ERROR, rc, "queue %u setup failed on port %u", q, pid);
	return rc;
}

/* Probe queue 0 once for the way an idle worker can sleep. */
static enum dpdk_wait
pick_wait(uint16_t pid, bool rx_intr)
{
	int fd = rx_intr ? rte_eth_dev_rx_intr_ctl_q_get_fd(pid, 0) : -1;

	if (fd < 0)
		return DPDK_WAIT_NAP;

	if (rte_eth_dev_rx_intr_enable(pid, 0) == 0) {
		rte_eth_dev_rx_intr_disable(pid, 0);
		return DPDK_WAIT_INTR;
	}

	/* net_tap hands out the queue's own descriptor: readable on data. */
	if (strcmp(dpdk_port.driver, "net_tap") == 0)
		return DPDK_WAIT_QUEUE_FD;
	return DPDK_WAIT_NAP;
}

static void
read_link_facts(uint16_t pid)
{
	struct rte_ether_addr mac;
	uint16_t mtu = 1500;

	if (rte_eth_macaddr_get(pid, &mac) == 0)
		memcpy(dpdk_port.mac, mac.addr_bytes, sizeof(dpdk_port.mac));

	if (rte_eth_dev_get_mtu(pid, &mtu) != 0)
		mtu = 1500;

	/* A frame we send must fit one mbuf. TODO(#5): jumbo frames. */
	if (mtu > RTE_MBUF_DEFAULT_DATAROOM - RTE_ETHER_HDR_LEN)
		mtu = RTE_MBUF_DEFAULT_DATAROOM - RTE_ETHER_HDR_LEN;
	dpdk_port.mtu = mtu < 576 ? 576 : mtu;
}

static int
start_port(uint16_t pid, unsigned n)
{
	struct rte_eth_dev_info info;
	bool rx_intr = false;
	unsigned q;
	int rc;

	rc = check_port(pid, n, &info);
	if (rc != 0)
		return rc;

	snprintf(dpdk_port.driver, sizeof(dpdk_port.driver), "%s", info.driver_name);
	rc = configure_port(pid, n, &info, &rx_intr);
	for (q = 0; rc == 0 && q < n; q++)
		rc = setup_queue(pid, q);
	if (rc != 0)
		return rc;

	rc = rte_eth_dev_start(pid);
	if (rc != 0) {
		ush_log_errno(USH_LOG_ERROR, rc, "rte_eth_dev_start() failed on port %u", pid);
		return rc;
	}

	dpdk_port.port_up = true;
	read_link_facts(pid);
	dpdk_port.wait = pick_wait(pid, rx_intr);
	return 0;
}

static int
alloc_worker_arrays(unsigned n)
{
	unsigned i;

	dpdk_port.pools = calloc(n, sizeof(*dpdk_port.pools));
	dpdk_port.rings = calloc(n, sizeof(*dpdk_port.rings));
	dpdk_port.wake_fds = calloc(n, sizeof(*dpdk_port.wake_fds));
	dpdk_port.asleep = calloc(n, sizeof(*dpdk_port.asleep));
	dpdk_port.snaps = calloc(n, sizeof(*dpdk_port.snaps));
	if (!dpdk_port.pools || !dpdk_port.rings || !dpdk_port.wake_fds || !dpdk_port.asleep ||
	    !dpdk_port.snaps)
		return -ENOMEM;

	for (i = 0; i < n; i++)
		atomic_init(&dpdk_port.wake_fds[i], -1);
	return 0;
}

static void
split_ephemeral_ports(unsigned n)
{
	dpdk_port.port_min = EPHEMERAL_MIN;
	dpdk_port.port_max = EPHEMERAL_MAX;
	dpdk_port.ports_per_worker = (EPHEMERAL_MAX - EPHEMERAL_MIN + 1) / n;
}

uint16_t
dpdk_worker_port_min(unsigned id)
{
	return (uint16_t)(dpdk_port.port_min + id * dpdk_port.ports_per_worker);
}

uint16_t
dpdk_worker_port_max(unsigned id)
{
	return (uint16_t)(dpdk_worker_port_min(id) + dpdk_port.ports_per_worker - 1);
}

static const char *
wait_name(enum dpdk_wait wait)
{
	switch (wait) {
	case DPDK_WAIT_INTR:
		return "rx interrupts";
	case DPDK_WAIT_QUEUE_FD:
		return "tap queue descriptors";
	case DPDK_WAIT_NAP:
		return "short naps (no rx interrupts)";
	}
	return "?";
}

static void
log_port_up(const struct cfg_dpdk *d, unsigned n)
{
	const uint8_t *m = dpdk_port.mac;
	char ip[INET_ADDRSTRLEN], gw[INET_ADDRSTRLEN];

	ush_log(USH_LOG_INFO,
		"dpdk: port %u (%s) up, mac %02x:%02x:%02x:%02x:%02x:%02x, mtu %u, %u queue pair%s; address %s/%u, gateway %s; idle workers wait on %s",
		d->port, dpdk_port.driver, m[0], m[1], m[2], m[3], m[4], m[5], dpdk_port.mtu, n,
		n == 1 ? "" : "s", ipv4_str(dpdk_port.ipv4, ip, sizeof(ip)), dpdk_port.prefix_len,
		dpdk_port.gateway ? ipv4_str(dpdk_port.gateway, gw, sizeof(gw)) : "none",
		wait_name(dpdk_port.wait));
}

int
dpdk_port_setup(const struct cfg *cfg, unsigned n_workers)
{
	const struct cfg_dpdk *d = &cfg->dpdk;
	int rc;

	dpdk_port.port_id = (uint16_t)d->port;
	dpdk_port.n_queues = n_workers;
	dpdk_port.ipv4 = ntohl(d->address);
	dpdk_port.prefix_len = (uint8_t)d->prefix_len;
	dpdk_port.gateway = ntohl(d->gateway);
	split_ephemeral_ports(n_workers);

	rc = check_listeners(cfg);
	if (rc == 0)
		rc = check_servers(cfg);
	if (rc == 0)
		rc = load_faults();
	if (rc == 0)
		rc = alloc_worker_arrays(n_workers);
	if (rc == 0)
		rc = start_eal(d);
	if (rc == 0)
		rc = start_port(dpdk_port.port_id, n_workers);
	if (rc != 0)
		return rc;

	log_port_up(d, n_workers);
	return 0;
}

void
dpdk_port_teardown(void)
{
	unsigned i;

	if (dpdk_port.port_up) {
		rte_eth_dev_stop(dpdk_port.port_id);
		rte_eth_dev_close(dpdk_port.port_id);
	}

	/* The queues referred to the pools: free them only now. */
	for (i = 0; i < dpdk_port.n_queues && dpdk_port.rings != NULL; i++)
		rte_ring_free(dpdk_port.rings[i]);
	for (i = 0; i < dpdk_port.n_queues && dpdk_port.pools != NULL; i++)
		rte_mempool_free(dpdk_port.pools[i]);

	if (dpdk_port.eal_up)
		rte_eal_cleanup();

	free(dpdk_port.pools);
	free(dpdk_port.rings);
	free(dpdk_port.wake_fds);
	free(dpdk_port.asleep);
	free(dpdk_port.snaps);
	for (i = 0; eal_strings != NULL && i < (unsigned)eal_argc; i++)
		free(eal_strings[i]);
	free(eal_strings);
	free(eal_argv);
	eal_strings = eal_argv = NULL;
	eal_argc = 0;
	memset(&dpdk_port, 0, sizeof(dpdk_port));
}

/* ---- counters -------------------------------------------------------------- */

void
dpdk_port_publish(void)
{
	struct dpdk_port_snapshot *p = &dpdk_port.port_snap;
	struct rte_eth_stats st;

	if (rte_eth_stats_get(dpdk_port.port_id, &st) != 0)
		return;

	DPDK_STORE(p->ipackets, st.ipackets);
	DPDK_STORE(p->opackets, st.opackets);
	DPDK_STORE(p->imissed, st.imissed);
	DPDK_STORE(p->ierrors, st.ierrors);
	DPDK_STORE(p->oerrors, st.oerrors);
	DPDK_STORE(p->rx_nombuf, st.rx_nombuf);
}

#define DPDK_DROP_NAME(name, str) str,
static const char *const engine_drop_names[DPDK_DROP_MAX] = {DPDK_DROP_REASONS(DPDK_DROP_NAME)};
#undef DPDK_DROP_NAME

/* A family with one sample per worker, read at offset in its snapshot. */
static void
print_per_worker(struct ush_metrics_writer *out, const char *name, enum ush_metric_type type,
		 const char *help, size_t offset)
{
	char id[16];
	unsigned i;

	ush_metrics_family(out, name, type, help);
	for (i = 0; i < dpdk_port.n_queues; i++) {
		uint64_t *field = (uint64_t *)((char *)&dpdk_port.snaps[i] + offset);
		struct ush_metric_label l = {"worker", id};

		snprintf(id, sizeof(id), "%u", i);
		ush_metrics_sample(out, name, &l, 1, DPDK_LOAD(*field));
	}
}

static void
print_drops(struct ush_metrics_writer *out)
{
	const char *name = "usher_dpdk_drops_total";
	char id[16];
	unsigned i, r;

	ush_metrics_family(out, name, USH_METRIC_COUNTER,
			   "Frames the userspace stack or the DPDK engine dropped, by reason.");
	for (i = 0; i < dpdk_port.n_queues; i++) {
		struct dpdk_snapshot *s = &dpdk_port.snaps[i];
		struct ush_metric_label l[2] = {{"worker", id}, {"reason", NULL}};

		snprintf(id, sizeof(id), "%u", i);
		for (r = UST_DROP_NONE + 1; r < UST_DROP_MAX; r++) {
			l[1].value = ust_drop_name((enum ust_drop)r);
			ush_metrics_sample(out, name, l, 2, DPDK_LOAD(s->stack_drops[r]));
		}
		for (r = 0; r < DPDK_DROP_MAX; r++) {
			l[1].value = engine_drop_names[r];
			ush_metrics_sample(out, name, l, 2, DPDK_LOAD(s->engine_drops[r]));
		}
	}
}

static void
print_faults(struct ush_metrics_writer *out)
{
	static const char *const dirs[2] = {"rx", "tx"};
	static const char *const kinds[3] = {"dropped", "duplicated", "delayed"};
	const char *name = "usher_dpdk_faults_total";
	char id[16];
	unsigned i, d, k;

	ush_metrics_family(
		out, name, USH_METRIC_COUNTER,
		"Frames the test-only fault injector (USHER_DPDK_FAULTS) dropped, duplicated or delayed.");
	for (i = 0; i < dpdk_port.n_queues; i++) {
		snprintf(id, sizeof(id), "%u", i);
		for (d = 0; d < 2; d++) {
			for (k = 0; k < 3; k++) {
				struct ush_metric_label l[3] = {{"worker", id},
								{"direction", dirs[d]},
								{"fault", kinds[k]}};

				ush_metrics_sample(out, name, l, 3,
						   DPDK_LOAD(dpdk_port.snaps[i].faults[d][k]));
			}
		}
	}
}

static void
print_port(struct ush_metrics_writer *out)
{
	struct dpdk_port_snapshot *p = &dpdk_port.port_snap;
	const char *drops = "usher_dpdk_port_drops_total";
	char id[16];
	struct ush_metric_label l[2] = {{"port", id}, {"reason", NULL}};

	const struct {
		const char *reason;
		uint64_t *field;
	} reasons[] = {{"missed", &p->imissed},
		       {"rx_errors", &p->ierrors},
		       {"tx_errors", &p->oerrors},
		       {"rx_no_mbuf", &p->rx_nombuf}};

	size_t r;

	snprintf(id, sizeof(id), "%u", dpdk_port.port_id);
	ush_metrics_family(out, "usher_dpdk_port_rx_packets_total", USH_METRIC_COUNTER,
			   "Packets the DPDK port received (rte_eth_stats).");
	ush_metrics_sample(out, "usher_dpdk_port_rx_packets_total", l, 1, DPDK_LOAD(p->ipackets));
	ush_metrics_family(out, "usher_dpdk_port_tx_packets_total", USH_METRIC_COUNTER,
			   "Packets the DPDK port sent (rte_eth_stats).");
	ush_metrics_sample(out, "usher_dpdk_port_tx_packets_total", l, 1, DPDK_LOAD(p->opackets));

	ush_metrics_family(out, drops, USH_METRIC_COUNTER,
			   "Packets the DPDK port itself lost or refused (rte_eth_stats).");
	for (r = 0; r < sizeof(reasons) / sizeof(reasons[0]); r++) {
		l[1].value = reasons[r].reason;
		ush_metrics_sample(out, drops, l, 2, DPDK_LOAD(*reasons[r].field));
	}
}

void
dpdk_print_metrics(struct ush_metrics_writer *out)
{
	if (dpdk_port.snaps == NULL)
		return;

	print_per_worker(out, "usher_dpdk_rx_packets_total", USH_METRIC_COUNTER,
			 "Frames a worker received from its RX queue.",
			 offsetof(struct dpdk_snapshot, rx_packets));
	print_per_worker(out, "usher_dpdk_tx_packets_total", USH_METRIC_COUNTER,
			 "Frames a worker's TX queue took.",
			 offsetof(struct dpdk_snapshot, tx_packets));
	print_per_worker(
		out, "usher_dpdk_steered_total", USH_METRIC_COUNTER,
		"TCP segments a worker received for a connection of another worker and passed on.",
		offsetof(struct dpdk_snapshot, steered));
	print_drops(out);
	print_per_worker(out, "usher_dpdk_retransmits_total", USH_METRIC_COUNTER,
			 "TCP segments the userspace stack sent again.",
			 offsetof(struct dpdk_snapshot, retransmits));
	print_per_worker(out, "usher_dpdk_tcp_connections", USH_METRIC_GAUGE,
			 "TCP connections in the userspace stack, any state but TIME_WAIT.",
			 offsetof(struct dpdk_snapshot, tcp_conns));
	if (dpdk_port.faults_on)
		print_faults(out);
	print_port(out);
}
