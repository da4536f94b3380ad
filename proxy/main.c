/*
 * usher: command line, configuration check, and start-up.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/opensslv.h>

#include "cfg.h"
#include "runtime.h"
#include "usher_build.h"

static void
print_usage(FILE *f)
{
	fprintf(f, "usage: usher -c FILE [--check]\n"
		   "       usher --version\n"
		   "\n"
		   "  -c, --config FILE  configuration file (YAML)\n"
		   "  -t, --check        validate the configuration and exit\n"
		   "  -V, --version      print the version and exit\n"
		   "  -h, --help         this text\n");
}

static void
print_version(void)
{
	printf("usher %s (%s, engines: uring%s)\n", USHER_VERSION, OPENSSL_VERSION_TEXT,
	       USHER_HAVE_DPDK ? ", dpdk" : "");
}

struct options {
	const char *config_path;
	int check_only;
};

/* 0 to go on, 1 when done (help, version), -1 on a usage error. */
static int
parse_options(int argc, char **argv, struct options *opt)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'},
		{"check", no_argument, NULL, 't'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "c:tVh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			opt->config_path = optarg;
			break;
		case 't':
			opt->check_only = 1;
			break;
		case 'V':
			print_version();
			return 1;
		case 'h':
			print_usage(stdout);
			return 1;
		default:
			print_usage(stderr);
			return -1;
		}
	}

	if (optind != argc || opt->config_path == NULL) {
		print_usage(stderr);
		return -1;
	}

	return 0;
}

static int
load_config(const char *path, struct cfg **out)
{
	struct cfg_diags diags = {0};
	int rc = cfg_load(path, out, &diags);

	if (rc != 0) {
		cfg_diags_print(&diags, stderr);
		fprintf(stderr, "usher: configuration '%s' has %zu problem%s\n", path, diags.count,
			diags.count == 1 ? "" : "s");
	}

	cfg_diags_clear(&diags);
	return rc;
}

int
main(int argc, char **argv)
{
	struct options opt = {0};
	struct cfg *cfg = NULL;
	int rc;

	rc = parse_options(argc, argv, &opt);
	if (rc != 0)
		return rc > 0 ? 0 : 2;

	if (load_config(opt.config_path, &cfg) != 0)
		return 1;

	if (opt.check_only) {
		printf("usher: configuration '%s' is valid\n", opt.config_path);
		cfg_free(cfg);
		return 0;
	}

	return ush_runtime_run(opt.config_path, cfg);
}
