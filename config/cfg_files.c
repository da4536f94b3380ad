/*
 * Files named by the configuration: certificates and their keys, the
 * ticket secret and nginx-layout ticket key files.
 *
 * Every file is read whole into memory with a size bound, so a path that
 * points at a device, a pipe or a huge file costs nothing. Buffers that
 * held key material are wiped before they are freed, and no byte of a key
 * ever reaches a diagnostic.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cfg_internal.h"

static int
read_fd(int fd, unsigned char *buf, size_t cap, size_t *len)
{
	size_t got = 0;

	while (got < cap) {
		ssize_t n = read(fd, buf + got, cap - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		got += (size_t)n;
	}

	*len = got;
	return 0;
}

static int
open_regular(const char *path, size_t max, struct stat *st)
{
	/* O_NONBLOCK: opening a FIFO must not wait for a writer. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	if (fd < 0)
		return -errno;

	if (fstat(fd, st) != 0) {
		int rc = -errno;

		close(fd);
		return rc;
	}

	if (!S_ISREG(st->st_mode) || (uint64_t)st->st_size > max) {
		close(fd);
		return S_ISREG(st->st_mode) ? -EFBIG : -EINVAL;
	}

	return fd;
}

int
cfg_read_file(const char *path, size_t max, unsigned char **data, size_t *len, unsigned *mode)
{
	unsigned char *buf;
	struct stat st;
	size_t cap, got = 0;
	int fd, rc;

	fd = open_regular(path, max, &st);
	if (fd < 0)
		return fd;

	/* One byte more than fstat promised shows a file that grew meanwhile. */
	cap = (size_t)st.st_size + 1;
	buf = malloc(cap);
	if (buf == NULL) {
		close(fd);
		return -ENOMEM;
	}

	rc = read_fd(fd, buf, cap, &got);
	close(fd);
	if (rc == 0 && got == cap)
		rc = got > max ? -EFBIG : -EAGAIN;
	if (rc != 0) {
		OPENSSL_cleanse(buf, cap);
		free(buf);
		return rc;
	}

	*data = buf;
	*len = got;
	if (mode != NULL)
		*mode = (unsigned)(st.st_mode & 07777);
	return 0;
}

static void
drop_buffer(unsigned char *buf, size_t len)
{
	if (buf == NULL)
		return;

	OPENSSL_cleanse(buf, len);
	free(buf);
}

/* Why a file could not be read, for "cannot read WHAT 'PATH': WHY". */
static const char *
read_error_text(int rc, size_t max, char *buf, size_t cap)
{
	switch (rc) {
	case -EFBIG:
		snprintf(buf, cap, "it is larger than %zu bytes", max);
		return buf;
	case -EINVAL:
		return "it is not a regular file";
	case -EAGAIN:
		return "it changed while being read";
	default:
		return strerror(-rc);
	}
}

static int
read_or_report(struct cfg_walk *w, yaml_node_t *at, const char *what, const char *path, size_t max,
	       unsigned char **data, size_t *len, unsigned *mode)
{
	char why[64];
	int rc = cfg_read_file(path, max, data, len, mode);

	if (rc == -ENOMEM)
		w->oom = true;
	if (rc != 0)
		cfg_error(w, at, "cannot read %s '%s': %s", what, path,
			  read_error_text(rc, max, why, sizeof(why)));
	return rc;
}

/* A private key with a passphrase is refused rather than prompted for. */
static int
refuse_passphrase(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

static X509 *
load_certificate(struct cfg_walk *w, yaml_node_t *at, const char *path)
{
	unsigned char *pem;
	size_t len;
	X509 *x509 = NULL;
	BIO *bio;

	if (read_or_report(w, at, "certificate", path, CFG_PEM_MAX_LEN, &pem, &len, NULL) != 0)
		return NULL;

	bio = BIO_new_mem_buf(pem, (int)len);
	if (bio != NULL)
		x509 = PEM_read_bio_X509(bio, NULL, refuse_passphrase, NULL);
	BIO_free(bio);
	drop_buffer(pem, len);
	ERR_clear_error();

	if (x509 == NULL)
		cfg_error(w, at, "'%s' holds no PEM certificate", path);
	return x509;
}

static bool
key_mode_ok(struct cfg_walk *w, yaml_node_t *at, const char *path, unsigned mode)
{
	/* Group access is left alone: a key group (ssl-cert) is common practice. */
	if ((mode & 007) == 0)
		return true;

	cfg_error(
		w, at,
		"'%s' has mode %04o, so every user on the host can read this private key; run chmod 600 '%s'",
		path, mode, path);
	return false;
}

static EVP_PKEY *
load_private_key(struct cfg_walk *w, yaml_node_t *at, const char *path)
{
	unsigned char *pem;
	size_t len;
	unsigned mode;
	EVP_PKEY *key = NULL;
	BIO *bio;

	if (read_or_report(w, at, "private key", path, CFG_PEM_MAX_LEN, &pem, &len, &mode) != 0)
		return NULL;

	bio = BIO_new_mem_buf(pem, (int)len);
	if (bio != NULL)
		key = PEM_read_bio_PrivateKey(bio, NULL, refuse_passphrase, NULL);
	BIO_free(bio);
	drop_buffer(pem, len);
	ERR_clear_error();

	if (key == NULL)
		cfg_error(
			w, at,
			"'%s' holds no usable PEM private key (keys with a passphrase are not supported)",
			path);
	if (key != NULL && !key_mode_ok(w, at, path, mode)) {
		EVP_PKEY_free(key);
		key = NULL;
	}

	return key;
}

/*
 * TODO(#2): an expired or not yet valid certificate loads without a word;
 * say so once we know whether that should refuse the file or only warn.
 */
void
cfg_check_certificate(struct cfg_walk *w, yaml_node_t *map, const struct cfg_certificate *c)
{
	yaml_node_t *cert_at = cfg_map_get(w, map, "cert");
	yaml_node_t *key_at = cfg_map_get(w, map, "key");
	size_t saved = cfg_key_push(w, "cert");
	X509 *x509 = load_certificate(w, cert_at, c->cert_path);
	EVP_PKEY *key;

	cfg_key_pop(w, saved);
	cfg_key_push(w, "key");
	key = load_private_key(w, key_at, c->key_path);

	if (x509 != NULL && key != NULL && X509_check_private_key(x509, key) != 1)
		cfg_error(w, key_at, "'%s' does not match the certificate in '%s'", c->key_path,
			  c->cert_path);

	cfg_key_pop(w, saved);
	ERR_clear_error();
	EVP_PKEY_free(key);
	X509_free(x509);
}

static bool
secret_mode_ok(struct cfg_walk *w, yaml_node_t *at, const char *what, const char *path,
	       unsigned mode)
{
	if ((mode & 077) == 0)
		return true;

	cfg_error(w, at, "%s '%s' has mode %04o, so other users can read it; run chmod 600 '%s'",
		  what, path, mode, path);
	return false;
}

int
cfg_read_secret(struct cfg_walk *w, yaml_node_t *at, struct cfg_tickets *t)
{
	const char *path = t->secret_file;
	unsigned char *data;
	size_t len;
	unsigned mode;
	bool ok;

	if (read_or_report(w, at, "ticket secret", path, CFG_SECRET_MAX_LEN, &data, &len, &mode) !=
	    0)
		return -EINVAL;

	ok = secret_mode_ok(w, at, "ticket secret", path, mode);
	if (len < CFG_SECRET_MIN_LEN) {
		cfg_error(
			w, at,
			"ticket secret '%s' holds %zu bytes; it needs at least %d random bytes (openssl rand -out FILE 48)",
			path, len, CFG_SECRET_MIN_LEN);
		ok = false;
	}

	if (!ok) {
		drop_buffer(data, len);
		return -EINVAL;
	}

	t->secret = data;
	t->secret_len = len;
	return 0;
}

int
cfg_read_key_file(struct cfg_walk *w, yaml_node_t *at, const char *path, unsigned char *dst)
{
	unsigned char *data;
	size_t len;
	unsigned mode;
	bool ok;

	if (read_or_report(w, at, "ticket key file", path, CFG_SECRET_MAX_LEN, &data, &len,
			   &mode) != 0)
		return -EINVAL;

	ok = secret_mode_ok(w, at, "ticket key file", path, mode);
	if (len != CFG_TICKET_KEY_LEN) {
		cfg_error(
			w, at,
			"ticket key file '%s' holds %zu bytes; it must be exactly %d (nginx layout: openssl rand -out FILE 80)",
			path, len, CFG_TICKET_KEY_LEN);
		ok = false;
	}

	if (ok)
		memcpy(dst, data, CFG_TICKET_KEY_LEN);
	drop_buffer(data, len);
	return ok ? 0 : -EINVAL;
}
