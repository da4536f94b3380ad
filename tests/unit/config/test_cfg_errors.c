/*
 * One case per validation rule: a small YAML file with one mistake, and the
 * diagnostic it must produce, with its line, column, key and message. Each
 * case also checks that the mistake is the only problem reported, so a rule
 * that fires too eagerly fails here as well.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg_test.h"
#include "check.h"

#define L CFG_TEST_LISTENERS
#define P CFG_TEST_POOLS
#define T CFG_TEST_TICKETS

/* 256 bytes, one more than an ALPN protocol name may have. */
#define ALPN_64  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define ALPN_256 ALPN_64 ALPN_64 ALPN_64 ALPN_64

struct error_case {
	const char *name;
	const char *yaml;
	unsigned line, col;
	const char *key;
	const char *message; /* a substring of the diagnostic */
	unsigned count;      /* diagnostics expected in all */
};

static const struct error_case cases[] = {
	/* YAML itself */
	{"syntax: unclosed flow list", "listeners: [\n", 2, 1, "",
	 "invalid YAML: did not find expected node content", 1},
	{"syntax: mapping in a scalar", "workers: a: b\n" L P T, 1, 11, "",
	 "invalid YAML: mapping values are not allowed", 1},
	{"syntax: unterminated quote", "workers: \"2\n" L P T, 11, 1, "",
	 "invalid YAML: found unexpected end of stream", 1},
	{"empty file", "", 1, 1, "", "the file holds no configuration", 1},
	{"comments only", "# nothing here\n", 1, 1, "", "the file holds no configuration", 1},
	{"top level is a list", "- listeners\n", 1, 1, "", "expected a mapping, found a list", 1},
	{"two documents", L P T "---\nworkers: 2\n", 11, 1, "",
	 "a second YAML document starts here", 1},

	/* keys */
	{"unknown key suggests the closest", "listner: []\n" L P T, 1, 1, "listner",
	 "unknown key 'listner'; did you mean 'listeners'?", 1},
	{"unknown key lists the valid ones", "frobnicate: 1\n" L P T, 1, 1, "frobnicate",
	 "unknown key 'frobnicate' (expected one of: workers, engine, pools, listeners", 1},
	{"unknown nested key", "timeouts: {handshak: 5s}\n" L P T, 1, 12, "timeouts.handshak",
	 "did you mean 'handshake'?", 1},
	{"duplicate key", "workers: 2\nworkers: 3\n" L P T, 2, 1, "workers",
	 "duplicate key 'workers' (first set at line 1)", 1},
	{"key that is not a scalar", "[a]: 1\n" L P T, 1, 1, "", "a key must be a scalar value", 1},

	/* types */
	{"mapping where a scalar is expected", "workers: {n: 2}\n" L P T, 1, 10, "workers",
	 "expected a scalar value, found a mapping", 1},
	{"list where a mapping is expected", "timeouts: [10s]\n" L P T, 1, 11, "timeouts",
	 "expected a mapping, found a list", 1},
	{"no value", "workers:\n" L P T, 1, 9, "workers", "has no value", 1},
	{"stats without a value", "stats:\n" L P T, 1, 7, "stats",
	 "expected a mapping, found no value", 1},

	/* required keys */
	{"no listeners", P T, 1, 1, "listeners", "required key is missing", 1},
	{"no pools", L T, 1, 1, "pools", "required key is missing", 1},
	{"no tickets", L P, 1, 1, "tickets", "required key is missing", 1},
	{"listener without bind",
	 "listeners:\n  - name: web\n    certificates: [{cert: certs/web.pem, key: certs/web.key}]\n"
	 "    pool: app\n" P T,
	 2, 5, "listeners[0].bind", "required key is missing", 1},
	{"listener without certificates",
	 "listeners:\n  - name: web\n    bind: 127.0.0.1:8443\n    pool: app\n" P T, 2, 5,
	 "listeners[0].certificates", "required key is missing", 1},
	{"listener without a pool",
	 "listeners:\n  - name: web\n    bind: 127.0.0.1:8443\n"
	 "    certificates: [{cert: certs/web.pem, key: certs/web.key}]\n" P T,
	 2, 5, "listeners[0].pool", "required key is missing", 1},
	{"listener without a name",
	 "listeners:\n  - bind: 127.0.0.1:8443\n"
	 "    certificates: [{cert: certs/web.pem, key: certs/web.key}]\n    pool: app\n" P T,
	 2, 5, "listeners[0].name", "required key is missing", 1},
	{"empty listeners", "listeners: []\n" P T, 1, 12, "listeners", "the list is empty", 1},
	{"certificate without key",
	 "listeners:\n  - name: web\n    bind: 127.0.0.1:8443\n"
	 "    certificates: [{cert: certs/web.pem}]\n    pool: app\n" P T,
	 4, 20, "listeners[0].certificates[0].key", "required key is missing", 1},
	{"pool without servers", L "pools:\n  - name: app\n" T, 7, 5, "pools[0].servers",
	 "required key is missing", 1},
	{"pool with an empty server list", L "pools:\n  - name: app\n    servers: []\n" T, 8, 14,
	 "pools[0].servers", "the list is empty", 1},
	{"pool without a name", L "pools:\n  - servers: [{name: a, address: 127.0.0.1:9000}]\n" T,
	 7, 5, "pools[0].name", "required key is missing", 2},
	{"server without an address", L "pools:\n  - name: app\n    servers: [{name: a}]\n" T, 8,
	 15, "pools[0].servers[0].address", "required key is missing", 1},
	{"tickets without a key source", "tickets: {affinity: false}\n" L P, 1, 10, "tickets",
	 "no ticket key source: set secret_file", 1},
	{"tickets with both key sources",
	 "tickets:\n  secret_file: secrets/ticket.secret\n  key_files: [keys/a.key]\n" L P, 3, 14,
	 "tickets", "set either secret_file or key_files, not both", 1},

	/* names and references */
	{"duplicate listener name",
	 L "  - name: web\n    bind: 127.0.0.1:8444\n"
	   "    certificates: [{cert: certs/web.pem, key: certs/web.key}]\n    pool: app\n" P T,
	 6, 11, "listeners[1].name", "listener name 'web' is already used by listeners[0]", 1},
	{"duplicate pool name",
	 L P "  - name: app\n    servers: [{name: b, address: 127.0.0.1:9001}]\n" T, 9, 11,
	 "pools[1].name", "pool name 'app' is already used by pools[0]", 1},
	{"duplicate server name",
	 L "pools:\n  - name: app\n    servers:\n      - {name: a, address: 127.0.0.1:9000}\n"
	   "      - {name: a, address: 127.0.0.1:9001}\n" T,
	 10, 16, "pools[0].servers[1].name", "server name 'a' is already used by servers[0]", 1},
	{"bad name",
	 L "pools:\n  - name: my pool\n    servers: [{name: a, address: 127.0.0.1:9000}]\n" T, 7,
	 11, "pools[0].name", "'my pool' is not a valid name", 2},
	{"unknown pool suggests the closest",
	 "listeners:\n  - name: web\n    bind: 127.0.0.1:8443\n"
	 "    certificates: [{cert: certs/web.pem, key: certs/web.key}]\n    pool: ap\n" P T,
	 5, 11, "listeners[0].pool", "pool 'ap' is not defined under pools; did you mean 'app'?",
	 1},
	{"bind used twice",
	 L "  - name: api\n    bind: 127.0.0.1:8443\n"
	   "    certificates: [{cert: certs/api.pem, key: certs/api.key}]\n    pool: app\n" P T,
	 7, 11, "listeners[1].bind", "'127.0.0.1:8443' is already used by listeners[0].bind", 1},
	{"bind overlaps a wildcard",
	 L "  - name: api\n    bind: 0.0.0.0:8443\n"
	   "    certificates: [{cert: certs/api.pem, key: certs/api.key}]\n    pool: app\n" P T,
	 7, 11, "listeners[1].bind", "overlaps '127.0.0.1:8443' of listeners[0].bind", 1},
	{"stats on a listener's address", "stats: {bind: 127.0.0.1:8443}\n" L P T, 1, 15,
	 "stats.bind", "'127.0.0.1:8443' is already used by listeners[0].bind", 1},

	/* addresses */
	{"bind without a port",
	 "listeners:\n  - name: web\n    bind: 127.0.0.1\n"
	 "    certificates: [{cert: certs/web.pem, key: certs/web.key}]\n    pool: app\n" P T,
	 3, 11, "listeners[0].bind", "'127.0.0.1' has no port (expected HOST:PORT or [IPv6]:PORT)",
	 1},
	{"IPv6 without brackets",
	 L "pools:\n  - name: app\n    servers: [{name: a, address: '::1:9000'}]\n" T, 8, 34,
	 "pools[0].servers[0].address", "looks like an IPv6 address; put it in brackets", 1},
	{"host name instead of an address",
	 L "pools:\n  - name: app\n    servers: [{name: a, address: 'localhost:9000'}]\n" T, 8, 34,
	 "pools[0].servers[0].address",
	 "is not an IPv4 address and port (host names are not resolved)", 1},
	{"port out of range", "stats: {bind: '127.0.0.1:70000'}\n" L P T, 1, 15, "stats.bind",
	 "has a port out of range (1..65535)", 1},
	{"bad IPv6", "stats: {bind: '[::g]:9100'}\n" L P T, 1, 15, "stats.bind",
	 "is not a valid IPv6 address", 1},

	/* numbers */
	{"workers 0", "workers: 0\n" L P T, 1, 10, "workers",
	 "'0' is out of range (1..256, or auto)", 1},
	{"workers 257", "workers: 257\n" L P T, 1, 10, "workers", "'257' is out of range", 1},
	{"workers word", "workers: many\n" L P T, 1, 10, "workers",
	 "'many' is not a worker count (expected 1..256 or auto)", 1},
	{"weight 0",
	 L
	 "pools:\n  - name: app\n    servers: [{name: a, address: 127.0.0.1:9000, weight: 0}]\n" T,
	 8, 58, "pools[0].servers[0].weight", "'0' is out of range (1..256)", 1},
	{"weight 257",
	 L
	 "pools:\n  - name: app\n    servers: [{name: a, address: 127.0.0.1:9000, weight: 257}]\n" T,
	 8, 58, "pools[0].servers[0].weight", "'257' is out of range (1..256)", 1},
	{"negative weight",
	 L
	 "pools:\n  - name: app\n    servers: [{name: a, address: 127.0.0.1:9000, weight: -1}]\n" T,
	 8, 58, "pools[0].servers[0].weight", "'-1' is negative", 1},
	{"fall 0", L P "    health_check: {fall: 0}\n" T, 9, 26, "pools[0].health_check.fall",
	 "'0' is out of range (1..1000)", 1},
	{"rise 0", L P "    health_check: {rise: 0}\n" T, 9, 26, "pools[0].health_check.rise",
	 "'0' is out of range (1..1000)", 1},
	{"max_connections 0", "limits: {max_connections: 0}\n" L P T, 1, 27,
	 "limits.max_connections", "'0' is out of range", 1},
	{"max_connections overflow", "limits: {max_connections: 99999999999999999999999}\n" L P T,
	 1, 27, "limits.max_connections", "is too large", 1},
	{"dpdk port not a number", "dpdk: {port: x, address: 10.0.0.2/24}\n" L P T, 1, 14,
	 "dpdk.port", "'x' is not a whole number", 1},

	/* enumerations */
	{"bad engine", "engine: epoll\n" L P T, 1, 9, "engine",
	 "unknown value 'epoll' (expected uring or dpdk)", 1},
	{"bad balance suggests",
	 L "pools:\n  - name: app\n    balance: round-robin\n"
	   "    servers: [{name: a, address: 127.0.0.1:9000}]\n" T,
	 8, 14, "pools[0].balance", "did you mean 'round_robin'?", 1},
	{"bad log level suggests", "log: {level: warning}\n" L P T, 1, 14, "log.level",
	 "unknown value 'warning'; did you mean 'warn'? (expected error, warn, info or debug)", 1},
	{"bad log format", "log: {format: xml}\n" L P T, 1, 15, "log.format",
	 "expected text or json", 1},
	{"bad proxy_protocol",
	 "listeners:\n  - name: web\n    bind: 127.0.0.1:8443\n"
	 "    certificates: [{cert: certs/web.pem, key: certs/web.key}]\n    pool: app\n"
	 "    proxy_protocol: v3\n" P T,
	 6, 21, "listeners[0].proxy_protocol", "expected off, v1 or v2", 1},
	{"bad boolean", "tickets: {secret_file: secrets/ticket.secret, affinity: maybe}\n" L P, 1,
	 57, "tickets.affinity", "'maybe' is not a boolean", 1},

	/* protocols and alpn */
	{"TLS 1.1 refused",
	 "listeners:\n  - name: web\n    bind: 127.0.0.1:8443\n"
	 "    certificates: [{cert: certs/web.pem, key: certs/web.key}]\n    pool: app\n"
	 "    protocols: [tls1.1, tls1.2]\n" P T,
	 6, 17, "listeners[0].protocols[0]", "TLS 1.1 and older are insecure and never enabled", 1},
	{"SSLv3 refused",
	 "listeners:\n  - name: web\n    bind: 127.0.0.1:8443\n"
	 "    certificates: [{cert: certs/web.pem, key: certs/web.key}]\n    pool: app\n"
	 "    protocols: [ssl3]\n" P T,
	 6, 17, "listeners[0].protocols[0]", "'ssl3' is not accepted: TLS 1.1 and older", 1},
	{"unknown protocol",
	 "listeners:\n  - name: web\n    bind: 127.0.0.1:8443\n"
	 "    certificates: [{cert: certs/web.pem, key: certs/web.key}]\n    pool: app\n"
	 "    protocols: [tls1.4]\n" P T,
	 6, 17, "listeners[0].protocols[0]", "unknown protocol 'tls1.4'", 1},
	{"empty protocols",
	 "listeners:\n  - name: web\n    bind: 127.0.0.1:8443\n"
	 "    certificates: [{cert: certs/web.pem, key: certs/web.key}]\n    pool: app\n"
	 "    protocols: []\n" P T,
	 6, 16, "listeners[0].protocols", "the list is empty; at least one item is needed", 1},
	{"protocol listed twice",
	 "listeners:\n  - name: web\n    bind: 127.0.0.1:8443\n"
	 "    certificates: [{cert: certs/web.pem, key: certs/web.key}]\n    pool: app\n"
	 "    protocols: [tls1.3, tls1.3]\n" P T,
	 6, 25, "listeners[0].protocols[1]", "'tls1.3' is listed twice", 1},
	{"protocols as a scalar",
	 "listeners:\n  - name: web\n    bind: 127.0.0.1:8443\n"
	 "    certificates: [{cert: certs/web.pem, key: certs/web.key}]\n    pool: app\n"
	 "    protocols: tls1.3\n" P T,
	 6, 16, "listeners[0].protocols", "write [tls1.3] for a list of one", 1},
	{"empty alpn name",
	 "listeners:\n  - name: web\n    bind: 127.0.0.1:8443\n"
	 "    certificates: [{cert: certs/web.pem, key: certs/web.key}]\n    pool: app\n"
	 "    alpn: [h2, '']\n" P T,
	 6, 16, "listeners[0].alpn[1]",
	 "an ALPN protocol name is 1 to 255 bytes; this one is empty", 1},
	{"alpn name over 255 bytes",
	 "listeners:\n  - name: web\n    bind: 127.0.0.1:8443\n"
	 "    certificates: [{cert: certs/web.pem, key: certs/web.key}]\n    pool: app\n"
	 "    alpn: [h2, " ALPN_256 "]\n" P T,
	 6, 16, "listeners[0].alpn[1]", "an ALPN protocol name is 1 to 255 bytes; this one is 256",
	 1},
	{"stats without bind", "stats: {}\n" L P T, 1, 8, "stats.bind", "required key is missing",
	 1},

	/* durations */
	{"duration without unit", "timeouts: {idle: 60}\n" L P T, 1, 18, "timeouts.idle",
	 "'60' has no unit (expected ms, s, m, h or d", 1},
	{"negative duration", "timeouts: {idle: -5s}\n" L P T, 1, 18, "timeouts.idle",
	 "'-5s' is negative", 1},
	{"zero duration", "timeouts: {handshake: 0s}\n" L P T, 1, 23, "timeouts.handshake",
	 "'0s' is too short (at least 1ms)", 1},
	{"duration overflow", "timeouts: {idle: 99999999999999999999d}\n" L P T, 1, 18,
	 "timeouts.idle", "is too large", 1},
	{"duration multiplication overflow", "timeouts: {idle: 999999999999999999d}\n" L P T, 1, 18,
	 "timeouts.idle", "is too large", 1},
	{"duration too long", "timeouts: {connect: 2d}\n" L P T, 1, 21, "timeouts.connect",
	 "'2d' is too long (at most 1d)", 1},
	{"duration with bad unit", "timeouts: {idle: 5min}\n" L P T, 1, 18, "timeouts.idle",
	 "'5min' has an unknown unit", 1},
	{"fractional duration", "timeouts: {idle: 1.5s}\n" L P T, 1, 18, "timeouts.idle",
	 "is not a whole number (write 1500ms, not 1.5s)", 1},
	{"health timeout longer than interval",
	 L P "    health_check: {interval: 1s, timeout: 5s}\n" T, 9, 43,
	 "pools[0].health_check.timeout", "5s is longer than the interval of 1s", 1},

	/* tickets */
	{"rotation under 1s",
	 "tickets: {secret_file: secrets/ticket.secret, rotation_interval: 500ms}\n" L P, 1, 66,
	 "tickets.rotation_interval", "'500ms' is too short (at least 1s)", 1},
	{"rotation not whole seconds",
	 "tickets: {secret_file: secrets/ticket.secret, rotation_interval: 1500ms}\n" L P, 1, 66,
	 "tickets.rotation_interval", "is not a whole number of seconds", 1},
	{"lifetime under rotation",
	 "tickets:\n  secret_file: secrets/ticket.secret\n  rotation_interval: 2h\n  lifetime: 1h\n" L
		 P,
	 4, 13, "tickets.lifetime", "1h is shorter than rotation_interval 2h", 1},
	{"lifetime over the ticket window",
	 "tickets:\n  secret_file: secrets/ticket.secret\n  rotation_interval: 10s\n  lifetime: 1d\n" L
		 P,
	 4, 13, "tickets.lifetime",
	 "1d spans 8640 rotation intervals of 10s; with the current and the next key that needs 8642 ticket keys, but at most 1024 are kept: raise rotation_interval to 85s or more",
	 1},
	{"ticket window one past the limit",
	 "tickets:\n  secret_file: secrets/ticket.secret\n  rotation_interval: 1s\n  lifetime: 1023s\n" L
		 P,
	 4, 13, "tickets.lifetime",
	 "that needs 1025 ticket keys, but at most 1024 are kept: raise rotation_interval to 2s",
	 1},
	{"lifetime over 7 days",
	 "tickets: {secret_file: secrets/ticket.secret, lifetime: 8d}\n" L P, 1, 57,
	 "tickets.lifetime", "'8d' is too long (at most 7d)", 1},

	/* dpdk */
	{"dpdk engine without a dpdk section", "engine: dpdk\n" L P T, 1, 9, "engine",
	 "engine 'dpdk' needs a dpdk: section", 1},
	{"dpdk engine without an address", "engine: dpdk\ndpdk: {port: 0}\n" L P T, 2, 7,
	 "dpdk.address", "required key is missing (engine is dpdk)", 1},
	{"dpdk address without prefix", "dpdk: {address: 10.0.0.2}\n" L P T, 1, 17, "dpdk.address",
	 "'10.0.0.2' has no prefix length (expected A.B.C.D/PREFIX", 1},
	{"dpdk prefix out of range", "dpdk: {address: 10.0.0.2/33}\n" L P T, 1, 17, "dpdk.address",
	 "has a prefix length out of range (1..32)", 1},
	{"dpdk gateway outside the subnet",
	 "dpdk: {address: 10.0.0.2/24, gateway: 10.0.1.1}\n" L P T, 1, 39, "dpdk.gateway",
	 "'10.0.1.1' is not inside the subnet of address (/24)", 1},
	{"dpdk gateway not an address", "dpdk: {address: 10.0.0.2/24, gateway: gw}\n" L P T, 1, 39,
	 "dpdk.gateway", "'gw' is not an IPv4 address", 1},
	{"eal_args not a list", "dpdk: {eal_args: --no-huge, address: 10.0.0.2/24}\n" L P T, 1, 18,
	 "dpdk.eal_args", "expected a list, found a scalar value", 1},
};

static void
run_case(const struct cfg_test_dir *dir, const struct error_case *c)
{
	struct cfg_diags diags = {0};
	struct cfg *cfg = NULL;
	int rc;

	rc = cfg_test_load(dir, c->yaml, &cfg, &diags);
	CHECK_EQ_INT(rc, -22);
	CHECK(cfg == NULL);
	CHECK(cfg_test_has_diag(&diags, c->line, c->col, c->key, c->message));
	if (diags.count != c->count) {
		printf("# case '%s': %zu diagnostics, expected %u\n", c->name, diags.count,
		       c->count);
		check_failures_in_case++;
	}

	cfg_diags_clear(&diags);
	cfg_free(cfg);
}

static struct cfg_test_dir dir;
static size_t current;

static void
run_current(void)
{
	run_case(&dir, &cases[current]);
}

int
main(void)
{
	if (cfg_test_dir_create(&dir) != 0) {
		printf("Bail out! cannot create the test directory\n");
		return 1;
	}

	/* One TAP line per case, named after the rule it pins. */
	for (current = 0; current < sizeof(cases) / sizeof(cases[0]); current++)
		check_run(cases[current].name, run_current);

	cfg_test_dir_remove(&dir);
	return check_done();
}
