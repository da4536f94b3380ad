/*
 * The shipped examples in config/examples/ must load. Each is copied into
 * a scratch directory holding the certificates, keys and secrets it names,
 * exactly where the quickstart script would put them.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cfg_test.h"
#include "check.h"
#include "fixtures.h"

static struct cfg_test_dir dir;

static int
copy_example(const char *name)
{
	char src[1024], dst[512], buf[65536];
	size_t len;
	FILE *f;

	snprintf(src, sizeof(src), "%s/%s", CFG_EXAMPLES_DIR, name);
	f = fopen(src, "rb");
	if (f == NULL)
		return -1;
	len = fread(buf, 1, sizeof(buf), f);
	fclose(f);

	return fixture_write_file(cfg_test_path(&dir, name, dst, sizeof(dst)), buf, len, 0644);
}

static struct cfg *
load_example(const char *name)
{
	struct cfg_diags diags = {0};
	struct cfg *cfg = NULL;
	char path[512];

	if (copy_example(name) != 0) {
		printf("# cannot copy %s/%s\n", CFG_EXAMPLES_DIR, name);
		return NULL;
	}

	cfg_load(cfg_test_path(&dir, name, path, sizeof(path)), &cfg, &diags);
	cfg_diags_print(&diags, stdout);
	cfg_diags_clear(&diags);
	return cfg;
}

static unsigned
port_of(const struct cfg_addr *a)
{
	return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
}

static void
test_quickstart(void)
{
	struct cfg *cfg = load_example("quickstart.yaml");
	char path[512];

	REQUIRE(cfg != NULL);
	REQUIRE(cfg->n_listeners == 1 && cfg->n_pools == 1);
	CHECK_EQ_STR(cfg->listeners[0].bind.text, "127.0.0.1:8443");
	CHECK_EQ_STR(cfg->listeners[0].certs[0].cert_path,
		     cfg_test_path(&dir, "certs/quickstart.pem", path, sizeof(path)));
	CHECK_EQ_STR(cfg->pools[0].name, "demo");
	REQUIRE(cfg->pools[0].n_servers == 2);
	CHECK_EQ_INT(port_of(&cfg->pools[0].servers[0].address), 9001);
	CHECK_EQ_INT(port_of(&cfg->pools[0].servers[1].address), 9002);
	CHECK_EQ_STR(cfg->tickets.secret_file,
		     cfg_test_path(&dir, "secrets/ticket.secret", path, sizeof(path)));
	cfg_free(cfg);
}

static void
test_full(void)
{
	struct cfg *cfg = load_example("full.yaml");

	REQUIRE(cfg != NULL);
	CHECK(cfg->workers_auto);
	CHECK_EQ_INT(cfg->n_listeners, 2);
	CHECK_EQ_INT(cfg->n_pools, 2);
	CHECK(cfg->stats.enabled);
	CHECK(cfg->dpdk.present);
	CHECK_EQ_INT(cfg->engine, CFG_ENGINE_URING);
	cfg_free(cfg);
}

static void
test_dpdk(void)
{
	struct cfg *cfg = load_example("dpdk.yaml");

	REQUIRE(cfg != NULL);
	CHECK_EQ_INT(cfg->engine, CFG_ENGINE_DPDK);
	CHECK(cfg->dpdk.present);
	CHECK_EQ_INT(cfg->dpdk.n_eal_args, 9);
	CHECK(cfg->dpdk.address == htonl(0x0a4d0002));
	cfg_free(cfg);
}

static void
test_nginx_keys(void)
{
	struct cfg *cfg = load_example("nginx-keys.yaml");

	REQUIRE(cfg != NULL);
	CHECK_EQ_INT(cfg->tickets.n_key_files, 2);
	CHECK(cfg->tickets.secret_file == NULL);
	cfg_free(cfg);
}

static int
make_files(void)
{
	static const char *const pairs[] = {"quickstart", "web", "api"};
	unsigned char key[80];
	char cert[512], pkey[512], name[64];

	for (size_t i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "certs/%s.pem", pairs[i]);
		cfg_test_path(&dir, name, cert, sizeof(cert));
		snprintf(name, sizeof(name), "certs/%s.key", pairs[i]);
		cfg_test_path(&dir, name, pkey, sizeof(pkey));
		if (fixture_write_cert(pairs[i], cert, pkey) != 0)
			return -1;
	}

	memset(key, 0x5a, sizeof(key));
	if (fixture_write_file(cfg_test_path(&dir, "keys/current.key", cert, sizeof(cert)), key, 80,
			       0600) != 0)
		return -1;
	return fixture_write_file(cfg_test_path(&dir, "keys/previous.key", cert, sizeof(cert)), key,
				  80, 0600);
}

int
main(void)
{
	if (cfg_test_dir_create(&dir) != 0 || make_files() != 0) {
		printf("Bail out! cannot create the test directory\n");
		return 1;
	}

	RUN(test_quickstart);
	RUN(test_full);
	RUN(test_dpdk);
	RUN(test_nginx_keys);

	cfg_test_dir_remove(&dir);
	return check_done();
}
