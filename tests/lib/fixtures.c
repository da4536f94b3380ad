#include "fixtures.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

static int
sign_self(X509 *cert, EVP_PKEY *key, const char *cn)
{
	X509_NAME *name = X509_get_subject_name(cert);

	X509_set_version(cert, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(cert), (long)getpid());
	X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
	X509_gmtime_adj(X509_getm_notAfter(cert), 86400L * 30);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(cert, name);

	if (X509_set_pubkey(cert, key) != 1)
		return -1;

	return X509_sign(cert, key, EVP_sha256()) > 0 ? 0 : -1;
}

int
fixture_make_cert(const char *cn, EVP_PKEY **key, X509 **cert)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *c = X509_new();

	if (k == NULL || c == NULL || sign_self(c, k, cn) != 0) {
		EVP_PKEY_free(k);
		X509_free(c);
		return -1;
	}

	*key = k;
	*cert = c;
	return 0;
}

static int
write_pem(const char *path, int mode, EVP_PKEY *key, X509 *cert)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	FILE *f;
	int ok;

	if (fd < 0)
		return -1;

	f = fdopen(fd, "w");
	if (f == NULL) {
		close(fd);
		return -1;
	}

	if (key != NULL)
		ok = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
	else
		ok = PEM_write_X509(f, cert);

	return (fclose(f) == 0 && ok == 1) ? 0 : -1;
}

int
fixture_write_cert(const char *cn, const char *cert_path, const char *key_path)
{
	EVP_PKEY *key;
	X509 *cert;
	int rc;

	if (fixture_make_cert(cn, &key, &cert) != 0)
		return -1;

	rc = write_pem(cert_path, 0644, NULL, cert);
	if (rc == 0)
		rc = write_pem(key_path, 0600, key, NULL);

	EVP_PKEY_free(key);
	X509_free(cert);
	return rc;
}

int
fixture_tmpdir(char *path, size_t cap)
{
	const char *base = getenv("TMPDIR");

	if (base == NULL || *base == '\0')
		base = "/tmp";

	if ((size_t)snprintf(path, cap, "%s/usher-test-XXXXXX", base) >= cap)
		return -1;

	return mkdtemp(path) != NULL ? 0 : -1;
}

void
fixture_rmdir(const char *path)
{
	char cmd[4200];

	/* Test-only cleanup of a directory we created ourselves. */
	if ((size_t)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path) < sizeof(cmd))
		(void)!system(cmd);
}

int
fixture_write_file(const char *path, const void *data, size_t len, int mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	ssize_t n;

	if (fd < 0)
		return -1;

	/* The umask must not widen or narrow what a test asked for. */
	if (fchmod(fd, (mode_t)mode) != 0) {
		close(fd);
		return -1;
	}

	n = write(fd, data, len);
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}
