/*
 * Loading valid files: every key lands in the right field, defaults fill
 * what is left out, relative paths become absolute, and the diagnostics
 * of a bad file come out complete, sorted and in the documented format.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfg_test.h"
#include "check.h"
#include "fixtures.h"

static struct cfg_test_dir dir;

static const char full_yaml[] =
	"workers: 4\n"
	"engine: dpdk\n"
	"listeners:\n"
	"  - name: web\n"
	"    bind: 127.0.0.1:8443\n"
	"    certificates:\n"
	"      - cert: certs/web.pem\n"
	"        key: certs/web.key\n"
	"      - {cert: certs/api.pem, key: certs/api.key}\n"
	"    protocols: [tls1.3]\n"
	"    alpn: [h2, http/1.1]\n"
	"    pool: static\n"
	"    proxy_protocol: v2\n"
	"  - name: v6\n"
	"    bind: '[::1]:9443'\n"
	"    certificates: [{cert: certs/api.pem, key: certs/api.key}]\n"
	"    pool: app\n"
	"    proxy_protocol: v1\n"
	"pools:\n"
	"  - name: app\n"
	"    balance: least_conn\n"
	"    servers:\n"
	"      - name: app-1\n"
	"        address: 127.0.0.1:9000\n"
	"        weight: 3\n"
	"      - {name: app-2, address: '[::1]:9001'}\n"
	"    health_check: {interval: 500ms, timeout: 250ms, fall: 5, rise: 4}\n"
	"  - name: static\n"
	"    balance: hash_client\n"
	"    servers: [{name: s1, address: 10.0.0.1:80, weight: 256}]\n"
	"tickets:\n"
	"  secret_file: secrets/ticket.secret\n"
	"  rotation_interval: 30m\n"
	"  lifetime: 2d\n"
	"  affinity: false\n"
	"timeouts: {handshake: 5s, idle: 2m, connect: 1500ms, shutdown: 0s}\n"
	"limits: {max_connections: 5000}\n"
	"stats: {bind: 127.0.0.1:9100}\n"
	"log: {level: debug, access: logs/access.log, format: json}\n"
	"dpdk:\n"
	"  eal_args: [--no-huge, -m, \"512\", --no-pci, \"--vdev=net_tap0,iface=usher0\"]\n"
	"  port: 1\n"
	"  address: 10.77.0.2/24\n"
	"  gateway: 10.77.0.1\n";

/* dir/name in one of a few rotating buffers, so two fit in one CHECK. */
static const char *
abs_path(const char *name)
{
	static char buf[4][512];
	static int next;
	char *out = buf[next++ % 4];

	cfg_test_path(&dir, name, out, sizeof(buf[0]));
	return out;
}

static unsigned
port_of(const struct cfg_addr *a)
{
	if (a->ss.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
}

static void
check_full_listeners(const struct cfg *cfg)
{
	const struct cfg_listener *web = &cfg->listeners[0], *v6 = &cfg->listeners[1];

	CHECK_EQ_STR(web->name, "web");
	CHECK_EQ_STR(web->bind.text, "127.0.0.1:8443");
	CHECK_EQ_INT(web->bind.ss.ss_family, AF_INET);
	CHECK_EQ_INT(port_of(&web->bind), 8443);
	REQUIRE(web->n_certs == 2);
	CHECK_EQ_STR(web->certs[0].cert_path, abs_path("certs/web.pem"));
	CHECK_EQ_STR(web->certs[0].key_path, abs_path("certs/web.key"));
	CHECK_EQ_STR(web->certs[1].cert_path, abs_path("certs/api.pem"));
	CHECK_EQ_INT(web->protocols, CFG_PROTO_TLS13);
	REQUIRE(web->n_alpn == 2);
	CHECK_EQ_STR(web->alpn[0], "h2");
	CHECK_EQ_STR(web->alpn[1], "http/1.1");
	CHECK_EQ_STR(web->pool_name, "static");
	CHECK_EQ_INT(web->pool, 1);
	CHECK_EQ_INT(web->proxy_protocol, CFG_PROXY_PROTOCOL_V2);

	CHECK_EQ_STR(v6->bind.text, "[::1]:9443");
	CHECK_EQ_INT(v6->bind.ss.ss_family, AF_INET6);
	CHECK_EQ_INT(port_of(&v6->bind), 9443);
	CHECK_EQ_INT(v6->protocols, CFG_PROTO_TLS12 | CFG_PROTO_TLS13);
	CHECK_EQ_INT(v6->n_alpn, 0);
	CHECK_EQ_INT(v6->pool, 0);
	CHECK_EQ_INT(v6->proxy_protocol, CFG_PROXY_PROTOCOL_V1);
}

static void
check_full_pools(const struct cfg *cfg)
{
	const struct cfg_pool *app = &cfg->pools[0], *st = &cfg->pools[1];

	CHECK_EQ_STR(app->name, "app");
	CHECK_EQ_INT(app->balance, CFG_BALANCE_LEAST_CONN);
	REQUIRE(app->n_servers == 2);
	CHECK_EQ_STR(app->servers[0].name, "app-1");
	CHECK_EQ_STR(app->servers[0].address.text, "127.0.0.1:9000");
	CHECK_EQ_INT(app->servers[0].weight, 3);
	CHECK_EQ_INT(app->servers[1].weight, 1);
	CHECK_EQ_INT(app->servers[1].address.ss.ss_family, AF_INET6);
	CHECK(app->health_check.interval_ms == 500);
	CHECK(app->health_check.timeout_ms == 250);
	CHECK_EQ_INT(app->health_check.fall, 5);
	CHECK_EQ_INT(app->health_check.rise, 4);

	CHECK_EQ_STR(st->name, "static");
	CHECK_EQ_INT(st->balance, CFG_BALANCE_HASH_CLIENT);
	REQUIRE(st->n_servers == 1);
	CHECK_EQ_INT(st->servers[0].weight, 256);
	CHECK(st->health_check.interval_ms == 2000);
}

static void
check_full_rest(const struct cfg *cfg)
{
	CHECK_EQ_STR(cfg->tickets.secret_file, abs_path("secrets/ticket.secret"));
	CHECK_EQ_INT(cfg->tickets.secret_len, 48);
	CHECK(cfg->tickets.key_files == NULL);
	CHECK(cfg->tickets.rotation_interval_s == 1800);
	CHECK(cfg->tickets.lifetime_s == 2 * 86400);
	CHECK(!cfg->tickets.affinity);

	CHECK(cfg->timeouts.handshake_ms == 5000);
	CHECK(cfg->timeouts.idle_ms == 120000);
	CHECK(cfg->timeouts.connect_ms == 1500);
	CHECK(cfg->timeouts.shutdown_ms == 0);
	CHECK(cfg->limits.max_connections == 5000);
	CHECK(cfg->stats.enabled);
	CHECK_EQ_INT(port_of(&cfg->stats.bind), 9100);

	CHECK_EQ_INT(cfg->log.level, CFG_LOG_DEBUG);
	CHECK_EQ_INT(cfg->log.access, CFG_ACCESS_FILE);
	CHECK_EQ_STR(cfg->log.access_path, abs_path("logs/access.log"));
	CHECK_EQ_INT(cfg->log.format, CFG_LOG_FORMAT_JSON);
}

static void
check_full_dpdk(const struct cfg *cfg)
{
	CHECK_EQ_INT(cfg->engine, CFG_ENGINE_DPDK);
	CHECK(cfg->dpdk.present);
	REQUIRE(cfg->dpdk.n_eal_args == 5);
	CHECK_EQ_STR(cfg->dpdk.eal_args[0], "--no-huge");
	CHECK_EQ_STR(cfg->dpdk.eal_args[2], "512");
	CHECK_EQ_STR(cfg->dpdk.eal_args[4], "--vdev=net_tap0,iface=usher0");
	CHECK(cfg->dpdk.eal_args[5] == NULL);
	CHECK_EQ_INT(cfg->dpdk.port, 1);
	CHECK(cfg->dpdk.address == htonl(0x0a4d0002));
	CHECK_EQ_INT(cfg->dpdk.prefix_len, 24);
	CHECK(cfg->dpdk.gateway == htonl(0x0a4d0001));
}

static void
test_full_config(void)
{
	struct cfg_diags diags = {0};
	struct cfg *cfg = NULL;
	int rc = cfg_test_load(&dir, full_yaml, &cfg, &diags);

	cfg_diags_print(&diags, stdout);
	CHECK_EQ_INT(diags.count, 0);
	REQUIRE(rc == 0 && cfg != NULL);
	CHECK_EQ_STR(cfg->path, abs_path("usher.yaml"));
	CHECK_EQ_INT(cfg->workers, 4);
	CHECK(!cfg->workers_auto);
	REQUIRE(cfg->n_listeners == 2 && cfg->n_pools == 2);

	check_full_listeners(cfg);
	check_full_pools(cfg);
	check_full_rest(cfg);
	check_full_dpdk(cfg);

	CHECK_EQ_INT(cfg_find_pool(cfg, "static"), 1);
	CHECK_EQ_INT(cfg_find_pool(cfg, "nope"), -1);
	CHECK_EQ_INT(cfg_find_listener(cfg, "v6"), 1);
	CHECK_EQ_INT(cfg_find_listener(cfg, "web"), 0);
	CHECK_EQ_INT(cfg_find_listener(cfg, "app"), -1);
	cfg_free(cfg);
	cfg_diags_clear(&diags);
}

static void
test_defaults(void)
{
	struct cfg *cfg = NULL;

	REQUIRE(cfg_test_load(&dir, CFG_TEST_LISTENERS CFG_TEST_POOLS CFG_TEST_TICKETS, &cfg,
			      NULL) == 0);
	CHECK_EQ_INT(cfg->workers, 1);
	CHECK(!cfg->workers_auto);
	CHECK_EQ_INT(cfg->engine, CFG_ENGINE_URING);
	CHECK_EQ_INT(cfg->listeners[0].protocols, CFG_PROTO_TLS12 | CFG_PROTO_TLS13);
	CHECK_EQ_INT(cfg->listeners[0].proxy_protocol, CFG_PROXY_PROTOCOL_OFF);
	CHECK_EQ_INT(cfg->listeners[0].n_alpn, 0);
	CHECK_EQ_INT(cfg->pools[0].balance, CFG_BALANCE_ROUND_ROBIN);
	CHECK_EQ_INT(cfg->pools[0].servers[0].weight, 1);
	CHECK(cfg->pools[0].health_check.interval_ms == 2000);
	CHECK(cfg->pools[0].health_check.timeout_ms == 1000);
	CHECK_EQ_INT(cfg->pools[0].health_check.fall, 3);
	CHECK_EQ_INT(cfg->pools[0].health_check.rise, 2);
	CHECK(cfg->tickets.rotation_interval_s == 3600);
	CHECK(cfg->tickets.lifetime_s == 12 * 3600);
	CHECK(cfg->tickets.affinity);
	CHECK(cfg->timeouts.handshake_ms == 10000);
	CHECK(cfg->timeouts.idle_ms == 60000);
	CHECK(cfg->timeouts.connect_ms == 3000);
	CHECK(cfg->timeouts.shutdown_ms == 30000);
	CHECK(cfg->limits.max_connections == 100000);
	CHECK(!cfg->stats.enabled);
	CHECK_EQ_INT(cfg->log.level, CFG_LOG_INFO);
	CHECK_EQ_INT(cfg->log.access, CFG_ACCESS_STDOUT);
	CHECK(cfg->log.access_path == NULL);
	CHECK_EQ_INT(cfg->log.format, CFG_LOG_FORMAT_TEXT);
	CHECK(!cfg->dpdk.present);
	cfg_free(cfg);
}

static void
test_workers_auto(void)
{
	struct cfg *cfg = NULL;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	REQUIRE(cfg_test_load(&dir,
			      "workers: auto\n" CFG_TEST_LISTENERS CFG_TEST_POOLS CFG_TEST_TICKETS,
			      &cfg, NULL) == 0);
	CHECK(cfg->workers_auto);
	CHECK_EQ_INT(cfg->workers, cpus > 256 ? 256 : cpus);
	cfg_free(cfg);
}

static void
test_log_access_values(void)
{
	static const struct {
		const char *text;
		enum cfg_access_log access;
	} rows[] = {{"stdout", CFG_ACCESS_STDOUT},
		    {"stderr", CFG_ACCESS_STDERR},
		    {"off", CFG_ACCESS_OFF},
		    {"/var/log/usher/access.log", CFG_ACCESS_FILE}};

	char yaml[1024];

	for (size_t i = 0; i < 4; i++) {
		struct cfg *cfg = NULL;

		snprintf(yaml, sizeof(yaml), "log: {access: '%s'}\n%s%s%s", rows[i].text,
			 CFG_TEST_LISTENERS, CFG_TEST_POOLS, CFG_TEST_TICKETS);
		REQUIRE(cfg_test_load(&dir, yaml, &cfg, NULL) == 0);
		CHECK_EQ_INT(cfg->log.access, rows[i].access);
		if (rows[i].access == CFG_ACCESS_FILE)
			CHECK_EQ_STR(cfg->log.access_path, rows[i].text);
		cfg_free(cfg);
	}
}

static void
test_engine_uring_ignores_dpdk(void)
{
	struct cfg *cfg = NULL;

	REQUIRE(cfg_test_load(&dir,
			      "engine: uring\ndpdk: {port: 0}\n" CFG_TEST_LISTENERS CFG_TEST_POOLS
				      CFG_TEST_TICKETS,
			      &cfg, NULL) == 0);
	CHECK_EQ_INT(cfg->engine, CFG_ENGINE_URING);
	cfg_free(cfg);
}

/* The longest ALPN name the wire format allows is accepted as it is. */
static void
test_alpn_255_bytes(void)
{
	char name[256], yaml[2048];
	struct cfg *cfg = NULL;

	memset(name, 'x', 255);
	name[255] = '\0';
	snprintf(yaml, sizeof(yaml),
		 "listeners:\n  - name: web\n    bind: 127.0.0.1:8443\n"
		 "    certificates: [{cert: certs/web.pem, key: certs/web.key}]\n"
		 "    alpn: [%s]\n    pool: app\n%s%s",
		 name, CFG_TEST_POOLS, CFG_TEST_TICKETS);
	REQUIRE(cfg_test_load(&dir, yaml, &cfg, NULL) == 0);
	REQUIRE(cfg->listeners[0].n_alpn == 1);
	CHECK_EQ_STR(cfg->listeners[0].alpn[0], name);
	cfg_free(cfg);
}

/* 1022 intervals, plus the current and next key, is exactly the limit. */
static void
test_ticket_window_limit(void)
{
	struct cfg *cfg = NULL;

	REQUIRE(cfg_test_load(
			&dir,
			"tickets: {secret_file: secrets/ticket.secret, rotation_interval: 1s, lifetime: 1022s}\n" CFG_TEST_LISTENERS
				CFG_TEST_POOLS,
			&cfg, NULL) == 0);
	CHECK(cfg->tickets.lifetime_s == 1022);
	CHECK(cfg->tickets.rotation_interval_s == 1);
	cfg_free(cfg);
}

/* Paths resolve against the file's directory, not the working directory. */
static void
test_relative_paths(void)
{
	char yaml[2048], sub[600], path[700];
	struct cfg *cfg = NULL;

	snprintf(sub, sizeof(sub), "%s/etc", dir.path);
	REQUIRE(mkdir(sub, 0700) == 0);
	snprintf(yaml, sizeof(yaml),
		 "listeners:\n  - name: web\n    bind: 127.0.0.1:8443\n"
		 "    certificates: [{cert: ../certs/web.pem, key: '%s/certs/web.key'}]\n"
		 "    pool: app\n%s"
		 "tickets: {secret_file: ../secrets/ticket.secret}\n",
		 dir.path, CFG_TEST_POOLS);
	snprintf(path, sizeof(path), "%s/usher.yaml", sub);
	REQUIRE(fixture_write_file(path, yaml, strlen(yaml), 0644) == 0);

	REQUIRE(chdir("/") == 0);
	REQUIRE(cfg_load(path, &cfg, NULL) == 0);
	snprintf(path, sizeof(path), "%s/../certs/web.pem", sub);
	CHECK_EQ_STR(cfg->listeners[0].certs[0].cert_path, path);
	CHECK_EQ_STR(cfg->listeners[0].certs[0].key_path, abs_path("certs/web.key"));
	snprintf(path, sizeof(path), "%s/../secrets/ticket.secret", sub);
	CHECK_EQ_STR(cfg->tickets.secret_file, path);
	CHECK(cfg->path[0] == '/');
	cfg_free(cfg);
}

/* A relative config path itself: the directory is found from the cwd. */
static void
test_relative_config_path(void)
{
	const char *yaml = CFG_TEST_LISTENERS CFG_TEST_POOLS CFG_TEST_TICKETS;
	struct cfg *cfg = NULL;
	char path[512];

	REQUIRE(fixture_write_file(cfg_test_path(&dir, "usher.yaml", path, sizeof(path)), yaml,
				   strlen(yaml), 0644) == 0);
	REQUIRE(chdir(dir.path) == 0);
	REQUIRE(cfg_load("usher.yaml", &cfg, NULL) == 0);
	CHECK_EQ_STR(cfg->path, abs_path("usher.yaml"));
	CHECK_EQ_STR(cfg->listeners[0].certs[0].cert_path, abs_path("certs/web.pem"));
	cfg_free(cfg);
	REQUIRE(chdir("/") == 0);
}

static void
test_load_buffer(void)
{
	const char *yaml = CFG_TEST_LISTENERS CFG_TEST_POOLS CFG_TEST_TICKETS;
	struct cfg_diags diags = {0};
	struct cfg *cfg = NULL;

	REQUIRE(cfg_load_buffer("mem.yaml", dir.path, yaml, strlen(yaml), &cfg, &diags) == 0);
	CHECK_EQ_STR(cfg->path, abs_path("mem.yaml"));
	CHECK_EQ_STR(cfg->tickets.secret_file, abs_path("secrets/ticket.secret"));
	cfg_free(cfg);

	/* No data at all is an empty document, not a crash. */
	CHECK_EQ_INT(cfg_load_buffer(NULL, NULL, NULL, 0, &cfg, &diags), -EINVAL);
	CHECK(diags.count == 1 && strstr(diags.items[0].message, "holds no configuration") != NULL);
	CHECK_EQ_STR(diags.file, "(buffer)");
	CHECK_EQ_INT(cfg_load_buffer("x", NULL, NULL, 1, &cfg, &diags), -EINVAL);
	CHECK_EQ_INT(cfg_load(NULL, &cfg, &diags), -EINVAL);

	cfg = NULL;
	CHECK_EQ_INT(cfg_load_buffer("mem.yaml", "/nonexistent", yaml, strlen(yaml), &cfg, &diags),
		     -EINVAL);
	CHECK(cfg == NULL);
	CHECK_EQ_STR(diags.file, "mem.yaml");
	CHECK(diags.count == 3); /* certificate, key and secret */
	cfg_diags_clear(&diags);
}

/* Every problem is reported, in file order, whatever order they were found. */
static void
test_collects_every_problem(void)
{
	static const char yaml[] =
		"tickets: {secret_file: secrets/ticket.secret, lifetime: 1x}\n"
		"listeners:\n"
		"  - name: web\n"
		"    bind: 127.0.0.1\n"
		"    certificates: [{cert: certs/web.pem, key: certs/other.key}]\n"
		"    pool: nope\n"
		"pools:\n"
		"  - name: app\n"
		"    servers: [{name: a, address: 127.0.0.1:0}]\n"
		"workerz: 2\n";
	struct cfg_diags diags = {0};
	struct cfg *cfg = NULL;

	CHECK_EQ_INT(cfg_test_load(&dir, yaml, &cfg, &diags), -EINVAL);
	REQUIRE(diags.count == 6);
	CHECK(cfg_test_has_diag(&diags, 1, 57, "tickets.lifetime", "unknown unit"));
	CHECK(cfg_test_has_diag(&diags, 4, 11, "listeners[0].bind", "has no port"));
	CHECK(cfg_test_has_diag(&diags, 5, 47, "listeners[0].certificates[0].key",
				"does not match the certificate"));
	CHECK(cfg_test_has_diag(&diags, 6, 11, "listeners[0].pool", "'nope' is not defined"));
	CHECK(cfg_test_has_diag(&diags, 9, 34, "pools[0].servers[0].address", "1..65535"));
	CHECK(cfg_test_has_diag(&diags, 10, 1, "workerz", "did you mean 'workers'?"));
	for (size_t i = 1; i < diags.count; i++)
		CHECK(diags.items[i - 1].line <= diags.items[i].line);
	cfg_diags_clear(&diags);
}

static void
test_diags_print_format(void)
{
	struct cfg_diags diags = {0};
	struct cfg *cfg = NULL;
	char *text = NULL, expect[1024];
	size_t len = 0;
	FILE *f;

	cfg_test_load(&dir,
		      "listeners:\n  - name: web\n    bind: 127.0.0.1\n"
		      "    certificates: [{cert: certs/web.pem, key: certs/web.key}]\n"
		      "    pool: app\n" CFG_TEST_POOLS CFG_TEST_TICKETS,
		      &cfg, &diags);
	f = open_memstream(&text, &len);
	REQUIRE(f != NULL);
	cfg_diags_print(&diags, f);
	fclose(f);

	snprintf(
		expect, sizeof(expect),
		"%s/usher.yaml:3:11: listeners[0].bind: '127.0.0.1' has no port (expected HOST:PORT or [IPv6]:PORT)\n",
		dir.path);
	CHECK_EQ_STR(text, expect);
	free(text);
	cfg_diags_clear(&diags);
	CHECK(diags.file == NULL && diags.items == NULL && diags.count == 0);
}

static void
test_missing_file(void)
{
	struct cfg_diags diags = {0};
	struct cfg *cfg = NULL;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	CHECK_EQ_INT(cfg_load("/nonexistent/usher.yaml", &cfg, &diags), -ENOENT);
	CHECK(cfg == NULL);
	REQUIRE(diags.count == 1);
	f = open_memstream(&text, &len);
	REQUIRE(f != NULL);
	cfg_diags_print(&diags, f);
	fclose(f);
	CHECK_EQ_STR(
		text,
		"/nonexistent/usher.yaml: cannot open the configuration: No such file or directory\n");
	free(text);
	cfg_diags_clear(&diags);
}

static void
test_directory_as_config(void)
{
	struct cfg_diags diags = {0};
	struct cfg *cfg = NULL;

	CHECK_EQ_INT(cfg_load(dir.path, &cfg, &diags), -EINVAL);
	REQUIRE(diags.count == 1);
	CHECK(strstr(diags.items[0].message, "not a regular file") != NULL);
	cfg_diags_clear(&diags);
}

static void
test_oversized_file(void)
{
	size_t len = CFG_FILE_MAX_LEN + 1;
	char *big = malloc(len + 1);
	struct cfg_diags diags = {0};
	struct cfg *cfg = NULL;

	REQUIRE(big != NULL);
	memset(big, '#', len);
	big[len] = '\0';
	CHECK_EQ_INT(cfg_test_load(&dir, big, &cfg, &diags), -EFBIG);
	REQUIRE(diags.count == 1);
	CHECK(strstr(diags.items[0].message, "larger than 1 MiB") != NULL);
	CHECK_EQ_INT(cfg_load_buffer("big.yaml", dir.path, big, len, &cfg, &diags), -EFBIG);
	CHECK(diags.count == 1 && strstr(diags.items[0].message, "larger than 1 MiB") != NULL);
	CHECK(cfg == NULL);
	cfg_diags_clear(&diags);
	free(big);
}

/* Past CFG_DIAGS_MAX problems are counted, not stored, and still reported. */
static void
test_many_problems(void)
{
	size_t cap = 64 * 1024, used = 0;
	char *yaml = malloc(cap);
	struct cfg_diags diags = {0};
	struct cfg *cfg = NULL;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	REQUIRE(yaml != NULL);
	for (int i = 0; i < 150; i++)
		used += (size_t)snprintf(yaml + used, cap - used, "bogus%d: 1\n", i);
	snprintf(yaml + used, cap - used, "%s%s%s", CFG_TEST_LISTENERS, CFG_TEST_POOLS,
		 CFG_TEST_TICKETS);

	CHECK_EQ_INT(cfg_test_load(&dir, yaml, &cfg, &diags), -EINVAL);
	CHECK_EQ_INT(diags.count, CFG_DIAGS_MAX);
	CHECK_EQ_INT(diags.dropped, 50);
	f = open_memstream(&text, &len);
	REQUIRE(f != NULL);
	cfg_diags_print(&diags, f);
	fclose(f);
	CHECK(strstr(text, ": 50 more problems not shown\n") != NULL);
	free(text);
	free(yaml);
	cfg_diags_clear(&diags);
}

/*
 * libyaml slows down with nesting depth on every token; deep nesting is
 * refused before parsing, at the first level too many. Not timed: a
 * regression shows up as a test that takes minutes.
 */
static void
test_deep_nesting(void)
{
	size_t len = 512 * 1024;
	char *yaml = malloc(len + 16);
	struct cfg_diags diags = {0};
	struct cfg *cfg = NULL;

	REQUIRE(yaml != NULL);
	memcpy(yaml, "listeners: ", 11);
	memset(yaml + 11, '[', len);
	yaml[11 + len] = '\0';
	CHECK_EQ_INT(cfg_load_buffer("deep.yaml", "/", yaml, strlen(yaml), &cfg, &diags), -EINVAL);
	REQUIRE(diags.count == 1);
	/* The root mapping is the first level, so the 64th "[" is one too many. */
	CHECK(cfg_test_has_diag(&diags, 1, 12 + 63, "", "nested more than 64 levels deep"));
	cfg_diags_clear(&diags);

	/* 64 levels are fine as far as nesting goes; the schema then objects. */
	memset(yaml + 11, '[', 63);
	memset(yaml + 11 + 63, ']', 63);
	yaml[11 + 126] = '\0';
	CHECK_EQ_INT(cfg_load_buffer("deep.yaml", "/", yaml, strlen(yaml), &cfg, &diags), -EINVAL);
	CHECK(cfg_test_has_diag(&diags, 1, 13, "listeners[0]", "expected a mapping, found a list"));
	cfg_diags_clear(&diags);
	free(yaml);
}

int
main(void)
{
	if (cfg_test_dir_create(&dir) != 0) {
		printf("Bail out! cannot create the test directory\n");
		return 1;
	}

	RUN(test_full_config);
	RUN(test_defaults);
	RUN(test_workers_auto);
	RUN(test_log_access_values);
	RUN(test_engine_uring_ignores_dpdk);
	RUN(test_ticket_window_limit);
	RUN(test_alpn_255_bytes);
	RUN(test_relative_paths);
	RUN(test_relative_config_path);
	RUN(test_load_buffer);
	RUN(test_collects_every_problem);
	RUN(test_diags_print_format);
	RUN(test_missing_file);
	RUN(test_directory_as_config);
	RUN(test_oversized_file);
	RUN(test_many_problems);
	RUN(test_deep_nesting);

	cfg_test_dir_remove(&dir);
	return check_done();
}
