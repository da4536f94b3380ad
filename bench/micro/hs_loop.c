/*
 * hs_loop: a fixed number of in-memory handshakes against usher's server
 * setup, for profilers (callgrind, perf) that want a plain program with
 * a known amount of work rather than Google Benchmark's calibration.
 *
 *	hs_loop tls12|tls13 full|resumed COUNT
 *
 * The server's SSL_do_handshake() calls all go through hs_server_step(),
 * so `valgrind --tool=callgrind --toggle-collect=hs_server_step` profiles
 * the server alone. Prints the server's CPU per handshake. Exits 1 when a
 * handshake fails or a resumption does not resume.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hs_pair.h"
#include "tkc.h"

#define ROTATION_S 3600
#define LIFETIME_S (12 * 3600)

static const unsigned char secret[32] = "usher hs_loop secret, 32 bytes.";

struct loop_args {
	int version;
	bool resumed;
	long count;
};

static int
parse_args(int argc, char **argv, struct loop_args *a)
{
	char *end;

	if (argc != 4)
		return -1;

	if (strcmp(argv[1], "tls12") == 0)
		a->version = TLS1_2_VERSION;
	else if (strcmp(argv[1], "tls13") == 0)
		a->version = TLS1_3_VERSION;
	else
		return -1;

	if (strcmp(argv[2], "full") != 0 && strcmp(argv[2], "resumed") != 0)
		return -1;
	a->resumed = strcmp(argv[2], "resumed") == 0;

	a->count = strtol(argv[3], &end, 10);
	return *end == '\0' && a->count > 0 ? 0 : -1;
}

static int
run_loop(const struct loop_args *a, struct hs_client *c, struct hs_server *s)
{
	SSL_SESSION *offer = NULL;
	uint64_t server_ns = 0;
	int rc = 0;

	if (a->resumed && (offer = hs_fetch_session(c, s)) == NULL) {
		fprintf(stderr, "hs_loop: no session to resume\n");
		return -1;
	}

	for (long i = 0; i < a->count && rc == 0; i++) {
		struct hs_result res;

		rc = hs_connect(c, s, offer, &res);
		if (rc == 0 && res.reused != a->resumed) {
			fprintf(stderr, "hs_loop: handshake %ld did not %s\n", i,
				a->resumed ? "resume" : "run in full");
			rc = -1;
		}
		server_ns += res.server_hs_ns;
	}

	if (rc == 0)
		printf("%ld handshakes, server %.1f us per handshake\n", a->count,
		       (double)server_ns / 1e3 / (double)a->count);
	SSL_SESSION_free(offer);
	return rc;
}

int
main(int argc, char **argv)
{
	struct loop_args a;
	struct tkc_source *src = NULL;
	struct hs_server server = {0};
	struct hs_client client = {0};
	int rc = 1;

	if (parse_args(argc, argv, &a) != 0) {
		fprintf(stderr, "usage: hs_loop tls12|tls13 full|resumed COUNT\n");
		return 2;
	}

	if (hs_identity_init() != 0 ||
	    tkc_source_derived(secret, sizeof(secret), ROTATION_S, LIFETIME_S, &src) != 0 ||
	    hs_server_usher(&server, src) != 0 || hs_client_init(&client, a.version) != 0) {
		fprintf(stderr, "hs_loop: cannot set up client and server\n");
		goto out;
	}

	if (run_loop(&a, &client, &server) == 0)
		rc = 0;
out:
	hs_client_free(&client);
	hs_server_free(&server);
	tkc_source_unref(src);
	hs_identity_free();
	return rc;
}
