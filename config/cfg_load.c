/*
 * Entry points: read the file, let libyaml build the document, walk it into
 * a new snapshot, and hand the snapshot out only if nothing was wrong.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cfg_internal.h"

/* libyaml reports encoding problems by byte offset; turn that into line:col. */
static void
offset_to_mark(const char *data, size_t len, size_t offset, unsigned *line, unsigned *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < offset && i < len; i++) {
		if (data[i] == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

static void
report_yaml_error(struct cfg_walk *w, const yaml_parser_t *p, const char *data, size_t len)
{
	unsigned line = (unsigned)p->problem_mark.line + 1;
	unsigned col = (unsigned)p->problem_mark.column + 1;
	const char *problem = p->problem != NULL ? p->problem : "unknown problem";

	if (p->error == YAML_MEMORY_ERROR) {
		w->oom = true;
		return;
	}

	if (p->error == YAML_READER_ERROR)
		offset_to_mark(data, len, p->problem_offset, &line, &col);

	w->errors++;
	if (p->context != NULL)
		cfg_diags_add(w->diags, line, col, "", "invalid YAML: %s (%s at line %u)", problem,
			      p->context, (unsigned)p->context_mark.line + 1);
	else
		cfg_diags_add(w->diags, line, col, "", "invalid YAML: %s", problem);
}

/* A second document in the same file is a mistake worth naming. */
static void
check_single_document(struct cfg_walk *w, yaml_parser_t *parser, const char *data, size_t len)
{
	yaml_document_t next;
	yaml_node_t *root;

	if (!yaml_parser_load(parser, &next)) {
		report_yaml_error(w, parser, data, len);
		return;
	}

	root = yaml_document_get_root_node(&next);
	if (root != NULL) {
		w->errors++;
		cfg_diags_add(
			w->diags, (unsigned)root->start_mark.line + 1,
			(unsigned)root->start_mark.column + 1, "",
			"a second YAML document starts here; the configuration is one document");
	}

	yaml_document_delete(&next);
}

static int
nesting_change(yaml_token_type_t type)
{
	switch (type) {
	case YAML_FLOW_SEQUENCE_START_TOKEN:
	case YAML_FLOW_MAPPING_START_TOKEN:
	case YAML_BLOCK_SEQUENCE_START_TOKEN:
	case YAML_BLOCK_MAPPING_START_TOKEN:
		return 1;
	case YAML_FLOW_SEQUENCE_END_TOKEN:
	case YAML_FLOW_MAPPING_END_TOKEN:
	case YAML_BLOCK_END_TOKEN:
		return -1;
	default:
		return 0;
	}
}

/*
 * libyaml's scanner does work in proportion to the nesting depth for every
 * token, so a megabyte of "[[[[" takes minutes to reject. Scan the tokens
 * first, stopping early, and refuse nesting no configuration needs. A
 * syntax error is left for the real parse to report.
 */
static int
check_nesting(struct cfg_walk *w, const char *data, size_t len)
{
	yaml_parser_t parser;
	yaml_token_t token;
	long depth = 0;
	bool done = false;

	if (!yaml_parser_initialize(&parser)) {
		w->oom = true;
		return -ENOMEM;
	}

	yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
	while (!done && depth <= CFG_MAX_DEPTH && yaml_parser_scan(&parser, &token)) {
		depth += nesting_change(token.type);
		done = token.type == YAML_STREAM_END_TOKEN;
		if (depth > CFG_MAX_DEPTH) {
			w->errors++;
			cfg_diags_add(
				w->diags, (unsigned)token.start_mark.line + 1,
				(unsigned)token.start_mark.column + 1, "",
				"values are nested more than %d levels deep; refusing to parse",
				CFG_MAX_DEPTH);
		}
		yaml_token_delete(&token);
	}

	yaml_parser_delete(&parser);
	return depth > CFG_MAX_DEPTH ? -EINVAL : 0;
}

static void
walk_text(struct cfg_walk *w, const char *data, size_t len)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;

	if (check_nesting(w, data, len) != 0)
		return;

	if (!yaml_parser_initialize(&parser)) {
		w->oom = true;
		return;
	}

	yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
	if (!yaml_parser_load(&parser, &doc)) {
		report_yaml_error(w, &parser, data, len);
		yaml_parser_delete(&parser);
		return;
	}

	root = yaml_document_get_root_node(&doc);
	if (root == NULL) {
		w->errors++;
		cfg_diags_add(w->diags, 1, 1, "", "the file holds no configuration");
	} else {
		check_single_document(w, &parser, data, len);
		w->doc = &doc;
		cfg_schema_walk(w, root);
		w->doc = NULL;
	}

	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
}

/* Hand out the snapshot, or free it and say why not. */
static int
finish_load(struct cfg_walk *w, struct cfg **out)
{
	if (w->oom) {
		cfg_diags_add(w->diags, 0, 0, "", "out of memory while loading the configuration");
		cfg_free(w->cfg);
		return -ENOMEM;
	}

	if (w->errors != 0) {
		cfg_free(w->cfg);
		return -EINVAL;
	}

	*out = w->cfg;
	return 0;
}

static int
load_text(struct cfg_diags *diags, char *abs_path, const char *base_dir, const char *data,
	  size_t len, struct cfg **out)
{
	struct cfg_walk w = {.diags = diags, .base_dir = base_dir, .budget = CFG_WALK_BUDGET};
	int rc;

	w.cfg = calloc(1, sizeof(*w.cfg));
	if (w.cfg == NULL) {
		free(abs_path);
		cfg_diags_add(diags, 0, 0, "", "out of memory while loading the configuration");
		return -ENOMEM;
	}

	w.cfg->path = abs_path;
	walk_text(&w, data, len);
	rc = finish_load(&w, out);
	cfg_diags_sort(diags);
	return rc;
}

/* Start diags afresh for file; with diags NULL, use scratch. */
static struct cfg_diags *
begin_diags(struct cfg_diags *diags, struct cfg_diags *scratch, const char *file)
{
	struct cfg_diags *d = diags != NULL ? diags : scratch;

	cfg_diags_clear(d);
	d->file = strdup(file);
	return d;
}

static void
end_diags(struct cfg_diags *d, struct cfg_diags *scratch)
{
	if (d == scratch)
		cfg_diags_clear(scratch);
}

static char *
dir_of(const char *abs_path)
{
	const char *slash = strrchr(abs_path, '/');
	size_t len = slash == abs_path ? 1 : (size_t)(slash - abs_path);

	return strndup(abs_path, len);
}

/* base_dir made absolute against the working directory. */
static char *
absolute_dir(const char *base_dir)
{
	char cwd[PATH_MAX];

	if (base_dir != NULL && base_dir[0] == '/')
		return strdup(base_dir);

	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return NULL;

	return base_dir != NULL && base_dir[0] != '\0' ? cfg_resolve_path(cwd, base_dir)
						       : strdup(cwd);
}

static int
check_size(struct cfg_diags *d, size_t len)
{
	if (len <= CFG_FILE_MAX_LEN)
		return 0;

	cfg_diags_add(d, 0, 0, "",
		      "the file is larger than 1 MiB (%zu bytes); refusing to parse it", len);
	return -EFBIG;
}

int
cfg_load_buffer(const char *name, const char *base_dir, const char *data, size_t len,
		struct cfg **out, struct cfg_diags *diags)
{
	struct cfg_diags scratch = {0};
	struct cfg_diags *d;
	char *dir, *abs_path = NULL;
	int rc;

	if (out == NULL || (data == NULL && len != 0))
		return -EINVAL;
	if (data == NULL)
		data = ""; /* libyaml insists on a buffer, even an empty one */

	d = begin_diags(diags, &scratch, name != NULL ? name : "(buffer)");
	dir = absolute_dir(base_dir);
	rc = check_size(d, len);

	if (rc == 0 && dir != NULL)
		abs_path = cfg_resolve_path(dir, name != NULL ? name : "(buffer)");
	if (rc == 0 && abs_path == NULL) {
		cfg_diags_add(d, 0, 0, "", "cannot resolve the configuration directory");
		rc = -ENOMEM;
	}

	if (rc == 0)
		rc = load_text(d, abs_path, dir, data, len, out);

	free(dir);
	end_diags(d, &scratch);
	return rc;
}

static int
read_config_file(struct cfg_diags *d, const char *path, char **abs_path, unsigned char **data,
		 size_t *len)
{
	int rc;

	*abs_path = realpath(path, NULL);
	if (*abs_path == NULL) {
		rc = -errno;
		cfg_diags_add(d, 0, 0, "", "cannot open the configuration: %s", strerror(-rc));
		return rc;
	}

	rc = cfg_read_file(*abs_path, CFG_FILE_MAX_LEN, data, len, NULL);
	if (rc == -EFBIG)
		cfg_diags_add(d, 0, 0, "", "the file is larger than 1 MiB; refusing to parse it");
	else if (rc == -EINVAL)
		cfg_diags_add(d, 0, 0, "", "not a regular file");
	else if (rc != 0)
		cfg_diags_add(d, 0, 0, "", "cannot read the configuration: %s", strerror(-rc));

	if (rc != 0) {
		free(*abs_path);
		*abs_path = NULL;
	}
	return rc;
}

int
cfg_load(const char *path, struct cfg **out, struct cfg_diags *diags)
{
	struct cfg_diags scratch = {0};
	struct cfg_diags *d;
	unsigned char *data = NULL;
	char *abs_path, *dir = NULL;
	size_t len = 0;
	int rc;

	if (path == NULL || out == NULL)
		return -EINVAL;

	d = begin_diags(diags, &scratch, path);
	rc = read_config_file(d, path, &abs_path, &data, &len);
	if (rc == 0) {
		dir = dir_of(abs_path);
		rc = dir != NULL ? load_text(d, abs_path, dir, (const char *)data, len, out)
				 : -ENOMEM;
		if (dir == NULL)
			free(abs_path);
	}

	free(dir);
	free(data);
	end_diags(d, &scratch);
	return rc;
}

static void
free_addr(struct cfg_addr *a)
{
	free(a->text);
}

static void
free_strings(char **list, size_t n)
{
	for (size_t i = 0; list != NULL && i < n; i++)
		free(list[i]);
	free(list);
}

static void
free_listener(struct cfg_listener *l)
{
	free(l->name);
	free_addr(&l->bind);
	for (size_t i = 0; i < l->n_certs; i++) {
		free(l->certs[i].cert_path);
		free(l->certs[i].key_path);
	}
	free(l->certs);
	free_strings(l->alpn, l->n_alpn);
	free(l->pool_name);
}

static void
free_pool(struct cfg_pool *p)
{
	free(p->name);
	for (size_t i = 0; i < p->n_servers; i++) {
		free(p->servers[i].name);
		free_addr(&p->servers[i].address);
	}
	free(p->servers);
}

static void
free_tickets(struct cfg_tickets *t)
{
	if (t->secret != NULL)
		OPENSSL_cleanse(t->secret, t->secret_len);
	free(t->secret);

	if (t->keys != NULL)
		OPENSSL_cleanse(t->keys, t->n_key_files * CFG_TICKET_KEY_LEN);
	free(t->keys);

	free(t->secret_file);
	free_strings(t->key_files, t->n_key_files);
}

void
cfg_free(struct cfg *cfg)
{
	if (cfg == NULL)
		return;

	for (size_t i = 0; cfg->listeners != NULL && i < cfg->n_listeners; i++)
		free_listener(&cfg->listeners[i]);
	free(cfg->listeners);

	for (size_t i = 0; cfg->pools != NULL && i < cfg->n_pools; i++)
		free_pool(&cfg->pools[i]);
	free(cfg->pools);

	free_tickets(&cfg->tickets);
	free_addr(&cfg->stats.bind);
	free(cfg->log.access_path);
	free_strings(cfg->dpdk.eal_args, cfg->dpdk.n_eal_args);
	free(cfg->path);
	free(cfg);
}

int
cfg_find_pool(const struct cfg *cfg, const char *name)
{
	for (size_t i = 0; cfg != NULL && name != NULL && i < cfg->n_pools; i++) {
		if (cfg->pools[i].name != NULL && strcmp(cfg->pools[i].name, name) == 0)
			return (int)i;
	}

	return -1;
}

int
cfg_find_listener(const struct cfg *cfg, const char *name)
{
	for (size_t i = 0; cfg != NULL && name != NULL && i < cfg->n_listeners; i++) {
		if (cfg->listeners[i].name != NULL && strcmp(cfg->listeners[i].name, name) == 0)
			return (int)i;
	}

	return -1;
}
