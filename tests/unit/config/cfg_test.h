/*
 * cfg_test: a scratch directory holding real files for the config tests
 * (a certificate and its key, a second pair that does not match, a ticket
 * secret and nginx-layout key files), plus helpers to load YAML text from
 * that directory and to look for one diagnostic.
 */
#ifndef USHER_CFG_TEST_H
#define USHER_CFG_TEST_H

#include <stdbool.h>
#include <stddef.h>

#include "cfg.h"

/*
 * Files in the scratch directory, relative to it:
 *   certs/web.pem  certs/web.key     a matching pair (key mode 0600)
 *   certs/api.pem  certs/api.key     a second matching pair
 *   certs/other.key                  a key that matches neither
 *   secrets/ticket.secret            48 random bytes, mode 0600
 *   keys/a.key  keys/b.key           80 random bytes each, mode 0600
 */
struct cfg_test_dir {
	char path[256];
};

/* Create the directory and its files. 0 or -1. */
int cfg_test_dir_create(struct cfg_test_dir *dir);

void cfg_test_dir_remove(struct cfg_test_dir *dir);

/* dir/name into buf. */
const char *cfg_test_path(const struct cfg_test_dir *dir, const char *name, char *buf, size_t cap);

/* Write text to dir/usher.yaml and load it. Returns what cfg_load() does. */
int cfg_test_load(const struct cfg_test_dir *dir, const char *text, struct cfg **out,
		  struct cfg_diags *diags);

/*
 * Whether diags holds a problem at line:col for key whose message contains
 * needle. Prints every diagnostic when it does not, to explain the failure.
 */
bool cfg_test_has_diag(const struct cfg_diags *diags, unsigned line, unsigned col, const char *key,
		       const char *needle);

/* Number of open descriptors of this process. */
int cfg_test_count_fds(void);

/*
 * A valid configuration in three parts, so a test can put its own lines
 * first and know their line numbers.
 */
#define CFG_TEST_LISTENERS                                                \
	"listeners:\n"                                                    \
	"  - name: web\n"                                                 \
	"    bind: 127.0.0.1:8443\n"                                      \
	"    certificates: [{cert: certs/web.pem, key: certs/web.key}]\n" \
	"    pool: app\n"
#define CFG_TEST_POOLS    \
	"pools:\n"        \
	"  - name: app\n" \
	"    servers: [{name: app-1, address: 127.0.0.1:9000}]\n"
#define CFG_TEST_TICKETS "tickets: {secret_file: secrets/ticket.secret}\n"

#endif
