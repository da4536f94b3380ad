/*
 * fuzz_config: feed arbitrary bytes to cfg_load_buffer() and free whatever
 * comes back. Relative paths in the input resolve against a scratch
 * directory made at start-up, holding the files the seeds and the shipped
 * examples name, so mutations of a valid file exercise the whole loader
 * (certificate checks, secrets, cross-checks) and not only the YAML parser.
 *
 *	./fuzz_config -dict=fuzz_config.dict -max_total_time=60 corpus_copy/ corpus/
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cfg.h"
#include "fixtures.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char base_dir[256];
static FILE *sink;

static void
remove_base_dir(void)
{
	fixture_rmdir(base_dir);
}

static int
write_pair(const char *name)
{
	char cert[512], key[512];

	snprintf(cert, sizeof(cert), "%s/certs/%s.pem", base_dir, name);
	snprintf(key, sizeof(key), "%s/certs/%s.key", base_dir, name);
	return fixture_write_cert(name, cert, key);
}

static int
write_bytes(const char *name, size_t len)
{
	unsigned char bytes[80];
	char path[512];

	memset(bytes, 0xa5, sizeof(bytes));
	snprintf(path, sizeof(path), "%s/%s", base_dir, name);
	return fixture_write_file(path, bytes, len, 0600);
}

static int
make_subdir(const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", base_dir, name);
	return mkdir(path, 0700);
}

static int
make_files(void)
{
	if (make_subdir("certs") != 0 || make_subdir("secrets") != 0 || make_subdir("keys") != 0)
		return -1;

	if (write_pair("web") != 0 || write_pair("api") != 0 || write_pair("quickstart") != 0)
		return -1;

	if (write_bytes("secrets/ticket.secret", 48) != 0 || write_bytes("keys/a.key", 80) != 0 ||
	    write_bytes("keys/current.key", 80) != 0 || write_bytes("keys/previous.key", 80) != 0)
		return -1;

	return 0;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (fixture_tmpdir(base_dir, sizeof(base_dir)) != 0 || make_files() != 0) {
		fprintf(stderr, "fuzz_config: cannot create the scratch directory\n");
		abort();
	}

	atexit(remove_base_dir);
	sink = fopen("/dev/null", "w");
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfg_diags diags = {0};
	struct cfg *cfg = NULL;
	int rc;

	rc = cfg_load_buffer("fuzz.yaml", base_dir, (const char *)data, size, &cfg, &diags);

	/* The contract: a snapshot exactly when there is no diagnostic. */
	if ((rc == 0) != (cfg != NULL) || (rc == 0 && diags.count + diags.dropped != 0) ||
	    (rc != 0 && diags.count + diags.dropped == 0))
		abort();

	cfg_diags_print(&diags, sink);
	cfg_diags_clear(&diags);
	cfg_free(cfg);
	return 0;
}
