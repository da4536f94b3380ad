#include "cfg_test.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/rand.h>

#include "fixtures.h"

const char *
cfg_test_path(const struct cfg_test_dir *dir, const char *name, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/%s", dir->path, name);
	return buf;
}

static int
write_random(const struct cfg_test_dir *dir, const char *name, size_t len)
{
	unsigned char bytes[128];
	char path[512];

	if (len > sizeof(bytes) || RAND_bytes(bytes, (int)len) != 1)
		return -1;

	return fixture_write_file(cfg_test_path(dir, name, path, sizeof(path)), bytes, len, 0600);
}

static int
write_pair(const struct cfg_test_dir *dir, const char *cn, const char *cert, const char *key)
{
	char cert_path[512], key_path[512];

	return fixture_write_cert(cn, cfg_test_path(dir, cert, cert_path, sizeof(cert_path)),
				  cfg_test_path(dir, key, key_path, sizeof(key_path)));
}

static int
make_subdirs(const struct cfg_test_dir *dir)
{
	static const char *const subdirs[] = {"certs", "secrets", "keys"};
	char path[512];

	for (size_t i = 0; i < 3; i++) {
		if (mkdir(cfg_test_path(dir, subdirs[i], path, sizeof(path)), 0700) != 0)
			return -1;
	}

	return 0;
}

int
cfg_test_dir_create(struct cfg_test_dir *dir)
{
	if (fixture_tmpdir(dir->path, sizeof(dir->path)) != 0 || make_subdirs(dir) != 0)
		return -1;

	if (write_pair(dir, "web.test", "certs/web.pem", "certs/web.key") != 0 ||
	    write_pair(dir, "api.test", "certs/api.pem", "certs/api.key") != 0 ||
	    write_pair(dir, "other.test", "certs/other.pem", "certs/other.key") != 0)
		return -1;

	if (write_random(dir, "secrets/ticket.secret", 48) != 0 ||
	    write_random(dir, "keys/a.key", 80) != 0 || write_random(dir, "keys/b.key", 80) != 0)
		return -1;

	return 0;
}

void
cfg_test_dir_remove(struct cfg_test_dir *dir)
{
	fixture_rmdir(dir->path);
}

int
cfg_test_load(const struct cfg_test_dir *dir, const char *text, struct cfg **out,
	      struct cfg_diags *diags)
{
	char path[512];

	cfg_test_path(dir, "usher.yaml", path, sizeof(path));
	if (fixture_write_file(path, text, strlen(text), 0644) != 0)
		return -1000;

	return cfg_load(path, out, diags);
}

bool
cfg_test_has_diag(const struct cfg_diags *diags, unsigned line, unsigned col, const char *key,
		  const char *needle)
{
	for (size_t i = 0; i < diags->count; i++) {
		const struct cfg_diag *d = &diags->items[i];

		if (d->line == line && d->col == col && strcmp(d->key, key) == 0 &&
		    strstr(d->message, needle) != NULL)
			return true;
	}

	printf("# wanted %u:%u: %s: ...%s...\n# got:\n", line, col, key, needle);
	for (size_t i = 0; i < diags->count; i++)
		printf("#   %u:%u: %s: %s\n", diags->items[i].line, diags->items[i].col,
		       diags->items[i].key, diags->items[i].message);
	return false;
}

int
cfg_test_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (d == NULL)
		return -1;

	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}
