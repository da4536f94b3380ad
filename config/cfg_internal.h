/*
 * cfg_internal: what the files of the config library share and nobody else
 * sees.
 *
 * Loading is one walk over the libyaml document. Every mapping of the schema
 * is described by a table of fields (cfg_schema.c); cfg_walk_mapping() checks
 * the keys against the table, then calls each field's parser in table order.
 * Table order, not file order, is what lets a listener look up its pool: the
 * pools are always parsed first. Problems are collected as diagnostics and the
 * walk goes on, so one run reports everything that is wrong.
 */
#ifndef USHER_CFG_INTERNAL_H
#define USHER_CFG_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <yaml.h>

#include "cfg.h"

#define CFG_KEY_PATH_MAX 128

/*
 * Upper bound on the values visited in one document. Aliases let a small
 * file name the same big subtree many times; this keeps such a file from
 * costing more than a large honest one.
 */
#define CFG_WALK_BUDGET 200000

/* Deepest nesting of lists and mappings accepted; the schema needs 6. */
#define CFG_MAX_DEPTH 64

/* Limits on list lengths, so one bad file cannot ask for unbounded work. */
#define CFG_MAX_LISTENERS    256
#define CFG_MAX_POOLS        256
#define CFG_MAX_SERVERS      1024
#define CFG_MAX_CERTIFICATES 64
#define CFG_MAX_ALPN         32
#define CFG_MAX_KEY_FILES    16
#define CFG_MAX_EAL_ARGS     64

/* A certificate or key file larger than this is refused unread. */
#define CFG_PEM_MAX_LEN (1u << 20)

/* State of one load: the document, where we are in it, what went wrong. */
struct cfg_walk {
	yaml_document_t *doc;
	struct cfg *cfg;
	struct cfg_diags *diags;
	const char *base_dir; /* absolute, no trailing slash unless "/" */

	char key[CFG_KEY_PATH_MAX]; /* dotted path of the current key */
	size_t key_len;

	unsigned long budget;
	bool over_budget;
	unsigned errors;
	bool oom;
};

/* --- diagnostics (cfg_diag.c) --- */

/* Record a problem at node (or 1:1 when NULL) under the current key. */
void cfg_error(struct cfg_walk *w, const yaml_node_t *at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The same under the current key plus ".name". */
void cfg_error_key(struct cfg_walk *w, const yaml_node_t *at, const char *name, const char *fmt,
		   ...) __attribute__((format(printf, 4, 5)));

/* Append one diagnostic; past CFG_DIAGS_MAX it is only counted. 0 or -ENOMEM. */
int cfg_diags_add(struct cfg_diags *d, unsigned line, unsigned col, const char *key,
		  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Order diagnostics by line, then column, keeping the order of equals. */
void cfg_diags_sort(struct cfg_diags *d);

/* The name in names closest to word, or NULL when none is close enough. */
const char *cfg_closest_name(const char *word, const char *const *names, size_t n);

/* Add ".name" or "[index]" to the current key; returns the length to restore. */
size_t cfg_key_push(struct cfg_walk *w, const char *name);
size_t cfg_key_push_index(struct cfg_walk *w, size_t index);
void cfg_key_pop(struct cfg_walk *w, size_t len);

/* --- scalar syntax (cfg_parse.c): NULL when fine, else why not --- */

const char *cfg_syntax_duration(const char *text, uint64_t *ms);
const char *cfg_syntax_uint(const char *text, uint64_t *value);
const char *cfg_syntax_bool(const char *text, bool *value);
const char *cfg_syntax_addr(const char *text, struct sockaddr_storage *ss, socklen_t *len);
const char *cfg_syntax_ipv4(const char *text, uint32_t *addr);
const char *cfg_syntax_ipv4_prefix(const char *text, uint32_t *addr, unsigned *prefix_len);
const char *cfg_syntax_name(const char *text);

/* Write a duration the way an operator would ("1500ms", "2s", "1h"). */
void cfg_format_duration(uint64_t ms, char *buf, size_t cap);

/* base_dir joined with path unless path is absolute; NULL on ENOMEM. */
char *cfg_resolve_path(const char *base_dir, const char *path);

/* --- the YAML walker (cfg_walk.c) --- */

enum cfg_kind {
	CFG_KIND_UINT = 0,    /* unsigned, min..max */
	CFG_KIND_U64,         /* uint64_t, min..max */
	CFG_KIND_BOOL,        /* bool */
	CFG_KIND_DURATION_MS, /* uint64_t milliseconds, min..max in ms */
	CFG_KIND_DURATION_S,  /* uint64_t whole seconds, min..max in ms */
	CFG_KIND_ENUM,        /* an int-sized enum, from names */
	CFG_KIND_NAME,        /* char *, checked by cfg_syntax_name() */
	CFG_KIND_PATH,        /* char *, made absolute */
	CFG_KIND_ADDR,        /* struct cfg_addr */
	CFG_KIND_SECTION,     /* a nested mapping, described by section */
	CFG_KIND_CUSTOM,      /* parse() does it all */
};

struct cfg_enum_name {
	const char *name;
	int value;
};

struct cfg_section;

struct cfg_field {
	const char *name;
	enum cfg_kind kind;
	size_t offset; /* into the object the mapping fills */
	bool required;
	uint64_t min, max;
	const struct cfg_enum_name *names; /* NULL-terminated, for CFG_KIND_ENUM */
	const struct cfg_section *section; /* for CFG_KIND_SECTION */
	int (*parse)(struct cfg_walk *w, yaml_node_t *value, void *obj);
};

/* Most fields one mapping may have; the walker keeps per-field state on the stack. */
#define CFG_SECTION_MAX_FIELDS 32

struct cfg_section {
	const struct cfg_field *fields;
	size_t n_fields; /* at most CFG_SECTION_MAX_FIELDS */
	/* Checks that involve several keys, once the fields are parsed. */
	void (*finish)(struct cfg_walk *w, yaml_node_t *map, void *obj);
};

/* Check node is a mapping and fill obj from it. 0 or -EINVAL. */
int cfg_walk_mapping(struct cfg_walk *w, yaml_node_t *node, const struct cfg_section *s, void *obj);

/*
 * Check node is a list of 1..max items (0..max with allow_empty) and call
 * fn on each, with the key path set to the item. 0 or -EINVAL when node is
 * not such a list.
 */
int cfg_walk_each(struct cfg_walk *w, yaml_node_t *node, size_t max, bool allow_empty,
		  int (*fn)(struct cfg_walk *w, yaml_node_t *item, size_t index, void *ctx),
		  void *ctx);

/*
 * Check node is a list of 1..max items (0..max with allow_empty), allocate
 * an array of item_size elements and call parse_item on each. On success
 * *items and *n are set even if some items had problems.
 */
int cfg_walk_list(struct cfg_walk *w, yaml_node_t *node, size_t max, bool allow_empty,
		  size_t item_size, void **items, size_t *n,
		  int (*parse_item)(struct cfg_walk *w, yaml_node_t *item, void *obj));

/* A list of strings; each goes through parse_item if given, else kept as is. */
int cfg_walk_strings(struct cfg_walk *w, yaml_node_t *node, size_t max, bool allow_empty,
		     char ***out, size_t *n,
		     int (*parse_item)(struct cfg_walk *w, yaml_node_t *item, char **out));

/* The text of a scalar node, or NULL after recording why it is not one. */
const char *cfg_scalar(struct cfg_walk *w, yaml_node_t *node);

/* The value node under key in a mapping, or NULL. */
yaml_node_t *cfg_map_get(struct cfg_walk *w, yaml_node_t *map, const char *key);

/* strdup that records an out-of-memory failure in w. */
char *cfg_strdup(struct cfg_walk *w, const char *s);

/* Parse a scalar as a path and make it absolute. 0 or -EINVAL/-ENOMEM. */
int cfg_parse_path_node(struct cfg_walk *w, yaml_node_t *node, char **out);

/* Parse a scalar as a socket address, keeping the text. 0 or -EINVAL. */
int cfg_parse_addr_node(struct cfg_walk *w, yaml_node_t *node, struct cfg_addr *addr);

/* --- schema (cfg_schema.c) --- */

/* Walk the root mapping of a document into w->cfg. */
void cfg_schema_walk(struct cfg_walk *w, yaml_node_t *root);

/* --- cross-checks (cfg_validate.c) --- */

void cfg_check_listener(struct cfg_walk *w, yaml_node_t *map, size_t index);
void cfg_check_pool(struct cfg_walk *w, yaml_node_t *map, size_t index);
void cfg_check_health(struct cfg_walk *w, yaml_node_t *map, void *obj);
void cfg_check_tickets(struct cfg_walk *w, yaml_node_t *map, void *obj);
void cfg_check_stats(struct cfg_walk *w, yaml_node_t *map, void *obj);
void cfg_check_dpdk(struct cfg_walk *w, yaml_node_t *map, void *obj);
void cfg_check_root(struct cfg_walk *w, yaml_node_t *map, void *obj);

/* --- files named by the configuration (cfg_files.c) --- */

/* Load and match one certificate and its key; problems go to w. */
void cfg_check_certificate(struct cfg_walk *w, yaml_node_t *map, const struct cfg_certificate *c);

/* Read the ticket secret file; problems go to w. */
int cfg_read_secret(struct cfg_walk *w, yaml_node_t *at, struct cfg_tickets *t);

/* Read one 80-byte ticket key file into dst; problems go to w. */
int cfg_read_key_file(struct cfg_walk *w, yaml_node_t *at, const char *path, unsigned char *dst);

/*
 * Read a whole regular file of at most max bytes. On success *data (wipe and
 * free it) and *len are set and 0 is returned; otherwise -errno, with -EFBIG
 * for a file over max and -EINVAL for one that is not a regular file. With
 * mode non-NULL the file's permission bits are stored there.
 */
int cfg_read_file(const char *path, size_t max, unsigned char **data, size_t *len, unsigned *mode);

#endif
