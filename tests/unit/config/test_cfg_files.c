/*
 * Files the configuration names: certificates and keys, the ticket secret
 * and nginx-layout key files. Real files with real modes; the problems
 * must be reported at the key that names the file, and key bytes must land
 * in the snapshot unchanged.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "cfg_test.h"
#include "check.h"
#include "fixtures.h"

static struct cfg_test_dir dir;

#define LP CFG_TEST_LISTENERS CFG_TEST_POOLS

/* A listener whose one certificate pair is given; the pair is on line 4. */
static void
listener_yaml(char *buf, size_t cap, const char *cert, const char *key)
{
	snprintf(buf, cap,
		 "listeners:\n  - name: web\n    bind: 127.0.0.1:8443\n"
		 "    certificates: [{cert: %s, key: %s}]\n    pool: app\n%s%s",
		 cert, key, CFG_TEST_POOLS, CFG_TEST_TICKETS);
}

/* Load and expect exactly one problem, at line:col under key. */
static void
expect_one(const char *yaml, unsigned line, unsigned col, const char *key, const char *needle)
{
	struct cfg_diags diags = {0};
	struct cfg *cfg = NULL;

	CHECK_EQ_INT(cfg_test_load(&dir, yaml, &cfg, &diags), -EINVAL);
	CHECK(cfg == NULL);
	CHECK(cfg_test_has_diag(&diags, line, col, key, needle));
	CHECK_EQ_INT(diags.count, 1);
	cfg_diags_clear(&diags);
}

/* Load and expect success; returns the snapshot for more checks. */
static struct cfg *
expect_ok(const char *yaml)
{
	struct cfg_diags diags = {0};
	struct cfg *cfg = NULL;

	CHECK_EQ_INT(cfg_test_load(&dir, yaml, &cfg, &diags), 0);
	cfg_diags_print(&diags, stdout);
	cfg_diags_clear(&diags);
	return cfg;
}

static void
write_secret(const char *name, size_t len, int mode)
{
	unsigned char bytes[8192];
	char path[512];

	for (size_t i = 0; i < len && i < sizeof(bytes); i++)
		bytes[i] = (unsigned char)(i * 7 + 1);
	fixture_write_file(cfg_test_path(&dir, name, path, sizeof(path)), bytes, len, mode);
}

static void
test_secret_mode_0600_accepted(void)
{
	struct cfg *cfg = NULL;
	unsigned char expect[48];
	char path[512];
	FILE *f;

	cfg = expect_ok(LP CFG_TEST_TICKETS);
	REQUIRE(cfg != NULL);
	f = fopen(cfg_test_path(&dir, "secrets/ticket.secret", path, sizeof(path)), "rb");
	REQUIRE(f != NULL);
	REQUIRE(fread(expect, 1, sizeof(expect), f) == sizeof(expect));
	fclose(f);

	REQUIRE(cfg->tickets.secret_len == 48);
	CHECK(memcmp(cfg->tickets.secret, expect, 48) == 0);
	cfg_free(cfg);
}

static void
test_secret_mode_0644_refused(void)
{
	char yaml[1024], path[512];

	write_secret("secrets/open.secret", 48, 0644);
	snprintf(yaml, sizeof(yaml), "tickets: {secret_file: secrets/open.secret}\n%s", LP);
	expect_one(yaml, 1, 24, "tickets.secret_file",
		   "has mode 0644, so other users can read it; run chmod 600");

	/* The message names the file so the operator can paste the fix. */
	cfg_test_path(&dir, "secrets/open.secret", path, sizeof(path));
	write_secret("secrets/open.secret", 48, 0640);
	expect_one(yaml, 1, 24, "tickets.secret_file", "has mode 0640");
	expect_one(yaml, 1, 24, "tickets.secret_file", path);
}

static void
test_secret_too_short(void)
{
	struct cfg *cfg;
	char yaml[1024];

	write_secret("secrets/short.secret", 31, 0600);
	snprintf(yaml, sizeof(yaml), "tickets: {secret_file: secrets/short.secret}\n%s", LP);
	expect_one(yaml, 1, 24, "tickets.secret_file",
		   "holds 31 bytes; it needs at least 32 random bytes");

	/* Exactly the minimum is enough. */
	write_secret("secrets/short.secret", 32, 0600);
	cfg = expect_ok(yaml);
	CHECK(cfg != NULL && cfg->tickets.secret_len == 32);
	cfg_free(cfg);
}

static void
test_secret_too_large(void)
{
	char yaml[1024];

	write_secret("secrets/big.secret", CFG_SECRET_MAX_LEN + 1, 0600);
	snprintf(yaml, sizeof(yaml), "tickets: {secret_file: secrets/big.secret}\n%s", LP);
	expect_one(yaml, 1, 24, "tickets.secret_file", "it is larger than 4096 bytes");
}

static void
test_secret_unreadable(void)
{
	char yaml[1024];

	snprintf(yaml, sizeof(yaml), "tickets: {secret_file: secrets/missing.secret}\n%s", LP);
	expect_one(yaml, 1, 24, "tickets.secret_file", "cannot read ticket secret '");
	expect_one(yaml, 1, 24, "tickets.secret_file", "No such file or directory");

	snprintf(yaml, sizeof(yaml), "tickets: {secret_file: secrets}\n%s", LP);
	expect_one(yaml, 1, 24, "tickets.secret_file", "it is not a regular file");
}

/* A FIFO with no writer must be refused at once, not waited on. */
static void
test_secret_fifo(void)
{
	char yaml[1024], path[512];

	REQUIRE(mkfifo(cfg_test_path(&dir, "secrets/fifo", path, sizeof(path)), 0600) == 0);
	snprintf(yaml, sizeof(yaml), "tickets: {secret_file: secrets/fifo}\n%s", LP);
	expect_one(yaml, 1, 24, "tickets.secret_file", "it is not a regular file");
}

static void
test_key_files(void)
{
	unsigned char a[80], b[80];
	struct cfg *cfg = NULL;
	char path[512];
	FILE *f;

	REQUIRE(cfg_test_load(&dir, "tickets: {key_files: [keys/a.key, keys/b.key]}\n" LP, &cfg,
			      NULL) == 0);
	f = fopen(cfg_test_path(&dir, "keys/a.key", path, sizeof(path)), "rb");
	REQUIRE(f != NULL && fread(a, 1, 80, f) == 80);
	fclose(f);
	f = fopen(cfg_test_path(&dir, "keys/b.key", path, sizeof(path)), "rb");
	REQUIRE(f != NULL && fread(b, 1, 80, f) == 80);
	fclose(f);

	REQUIRE(cfg->tickets.n_key_files == 2);
	CHECK(cfg->tickets.secret == NULL && cfg->tickets.secret_file == NULL);
	CHECK_EQ_STR(cfg->tickets.key_files[0],
		     cfg_test_path(&dir, "keys/a.key", path, sizeof(path)));
	CHECK(memcmp(cfg->tickets.keys, a, 80) == 0);
	CHECK(memcmp(cfg->tickets.keys + 80, b, 80) == 0);
	cfg_free(cfg);
}

static void
test_key_file_size(void)
{
	const char *yaml = "tickets: {key_files: [keys/a.key, keys/odd.key]}\n" LP;

	write_secret("keys/odd.key", 79, 0600);
	expect_one(yaml, 1, 35, "tickets.key_files[1]",
		   "holds 79 bytes; it must be exactly 80 (nginx layout");
	write_secret("keys/odd.key", 81, 0600);
	expect_one(yaml, 1, 35, "tickets.key_files[1]", "holds 81 bytes");
	write_secret("keys/odd.key", 48, 0600);
	expect_one(yaml, 1, 35, "tickets.key_files[1]", "holds 48 bytes");
}

static void
test_key_file_mode(void)
{
	write_secret("keys/open.key", 80, 0604);
	expect_one("tickets: {key_files: [keys/open.key]}\n" LP, 1, 23, "tickets.key_files[0]",
		   "has mode 0604, so other users can read it; run chmod 600");
}

static void
test_key_files_empty(void)
{
	expect_one("tickets: {key_files: []}\n" LP, 1, 22, "tickets.key_files",
		   "the list is empty");
}

static void
test_certificate_unreadable(void)
{
	char yaml[1024];

	listener_yaml(yaml, sizeof(yaml), "certs/none.pem", "certs/web.key");
	expect_one(yaml, 4, 27, "listeners[0].certificates[0].cert", "cannot read certificate '");
	listener_yaml(yaml, sizeof(yaml), "certs/web.pem", "certs/none.key");
	expect_one(yaml, 4, 47, "listeners[0].certificates[0].key", "cannot read private key '");
}

static void
test_certificate_garbage(void)
{
	char yaml[1024], path[512];

	fixture_write_file(cfg_test_path(&dir, "certs/junk.pem", path, sizeof(path)), "hello\n", 6,
			   0644);
	listener_yaml(yaml, sizeof(yaml), "certs/junk.pem", "certs/web.key");
	expect_one(yaml, 4, 27, "listeners[0].certificates[0].cert", "holds no PEM certificate");

	/* A certificate where the key should be is not a key. */
	listener_yaml(yaml, sizeof(yaml), "certs/web.pem", "certs/web.pem");
	expect_one(yaml, 4, 47, "listeners[0].certificates[0].key",
		   "holds no usable PEM private key");
}

static void
test_key_mismatch(void)
{
	char yaml[1024];

	listener_yaml(yaml, sizeof(yaml), "certs/web.pem", "certs/other.key");
	expect_one(yaml, 4, 47, "listeners[0].certificates[0].key",
		   "does not match the certificate in '");
}

static void
test_private_key_world_readable(void)
{
	char yaml[1024], path[512];

	cfg_test_path(&dir, "certs/api.key", path, sizeof(path));
	listener_yaml(yaml, sizeof(yaml), "certs/api.pem", "certs/api.key");
	REQUIRE(chmod(path, 0644) == 0);
	expect_one(yaml, 4, 47, "listeners[0].certificates[0].key",
		   "has mode 0644, so every user on the host can read this private key");

	/* A key group (ssl-cert) may read it; only "others" may not. */
	REQUIRE(chmod(path, 0640) == 0);
	cfg_free(expect_ok(yaml));
	REQUIRE(chmod(path, 0600) == 0);
}

/* An encrypted key would make OpenSSL prompt on the terminal; refuse it. */
static void
test_encrypted_key_refused(void)
{
	static char passphrase[] = "not-empty";
	char yaml[1024], path[512];
	EVP_PKEY *key;
	X509 *cert;
	FILE *f;

	REQUIRE(fixture_make_cert("enc.test", &key, &cert) == 0);
	f = fopen(cfg_test_path(&dir, "certs/enc.pem", path, sizeof(path)), "w");
	REQUIRE(f != NULL && PEM_write_X509(f, cert) == 1);
	fclose(f);
	f = fopen(cfg_test_path(&dir, "certs/enc.key", path, sizeof(path)), "w");
	REQUIRE(f != NULL);
	REQUIRE(chmod(path, 0600) == 0);
	REQUIRE(PEM_write_PrivateKey(f, key, EVP_aes_256_cbc(), NULL, 0, NULL, passphrase) == 1);
	fclose(f);
	EVP_PKEY_free(key);
	X509_free(cert);

	listener_yaml(yaml, sizeof(yaml), "certs/enc.pem", "certs/enc.key");
	expect_one(yaml, 4, 47, "listeners[0].certificates[0].key",
		   "keys with a passphrase are not supported");
}

/* Failed loads of every kind leave no descriptor behind. */
static void
test_no_fd_leak(void)
{
	static const char *const bad[] = {
		"tickets: {secret_file: secrets/open.secret}\n" LP,
		"tickets: {key_files: [keys/a.key, keys/odd.key]}\n" LP,
		"tickets: {secret_file: secrets/fifo}\n" LP,
		"listeners:\n  - name: web\n    bind: 127.0.0.1:8443\n"
		"    certificates: [{cert: certs/web.pem, key: certs/other.key}]\n"
		"    pool: app\n" CFG_TEST_POOLS CFG_TEST_TICKETS,
		"listeners: [\n",
	};
	int before = cfg_test_count_fds();

	REQUIRE(before > 0);
	for (int i = 0; i < 100; i++) {
		struct cfg *cfg = NULL;
		struct cfg_diags diags = {0};

		CHECK(cfg_test_load(&dir, bad[i % 5], &cfg, &diags) < 0);
		cfg_diags_clear(&diags);
		CHECK(cfg_load("/nonexistent.yaml", &cfg, NULL) == -ENOENT);
	}

	CHECK_EQ_INT(cfg_test_count_fds(), before);
}

int
main(void)
{
	if (cfg_test_dir_create(&dir) != 0) {
		printf("Bail out! cannot create the test directory\n");
		return 1;
	}

	RUN(test_secret_mode_0600_accepted);
	RUN(test_secret_mode_0644_refused);
	RUN(test_secret_too_short);
	RUN(test_secret_too_large);
	RUN(test_secret_unreadable);
	RUN(test_secret_fifo);
	RUN(test_key_files);
	RUN(test_key_file_size);
	RUN(test_key_file_mode);
	RUN(test_key_files_empty);
	RUN(test_certificate_unreadable);
	RUN(test_certificate_garbage);
	RUN(test_key_mismatch);
	RUN(test_private_key_world_readable);
	RUN(test_encrypted_key_refused);
	RUN(test_no_fd_leak);

	cfg_test_dir_remove(&dir);
	return check_done();
}
