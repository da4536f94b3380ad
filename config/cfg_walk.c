/*
 * The YAML walker: turns libyaml nodes into struct fields, guided by the
 * field tables of cfg_schema.c. Every problem is recorded and the walk goes
 * on with the next key, so one run reports them all.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cfg_internal.h"

static bool is_null_scalar(const yaml_node_t *node);

static const char *
node_kind_name(const yaml_node_t *node)
{
	switch (node->type) {
	case YAML_MAPPING_NODE:
		return "a mapping";
	case YAML_SEQUENCE_NODE:
		return "a list";
	default:
		return is_null_scalar(node) ? "no value" : "a scalar value";
	}
}

/* Each node visited costs one unit; see CFG_WALK_BUDGET. */
static bool
spend_budget(struct cfg_walk *w, yaml_node_t *at)
{
	if (w->over_budget)
		return false;

	if (w->budget == 0) {
		w->over_budget = true;
		cfg_error(
			w, at,
			"the document holds more than %u values once aliases are expanded; stopping",
			CFG_WALK_BUDGET);
		return false;
	}

	w->budget--;
	return true;
}

char *
cfg_strdup(struct cfg_walk *w, const char *s)
{
	char *copy = strdup(s);

	if (copy == NULL)
		w->oom = true;
	return copy;
}

static bool
is_null_scalar(const yaml_node_t *node)
{
	const char *v = (const char *)node->data.scalar.value;

	if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;

	return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0;
}

const char *
cfg_scalar(struct cfg_walk *w, yaml_node_t *node)
{
	const char *v;

	if (node->type != YAML_SCALAR_NODE) {
		cfg_error(w, node, "expected a scalar value, found %s", node_kind_name(node));
		return NULL;
	}

	v = (const char *)node->data.scalar.value;
	if (strlen(v) != node->data.scalar.length) {
		cfg_error(w, node, "value contains a NUL character");
		return NULL;
	}

	if (is_null_scalar(node)) {
		cfg_error(w, node, "has no value");
		return NULL;
	}

	return v;
}

yaml_node_t *
cfg_map_get(struct cfg_walk *w, yaml_node_t *map, const char *key)
{
	if (map == NULL || map->type != YAML_MAPPING_NODE)
		return NULL;

	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = yaml_document_get_node(w->doc, p->key);

		if (k != NULL && k->type == YAML_SCALAR_NODE &&
		    strcmp((const char *)k->data.scalar.value, key) == 0)
			return yaml_document_get_node(w->doc, p->value);
	}

	return NULL;
}

int
cfg_parse_path_node(struct cfg_walk *w, yaml_node_t *node, char **out)
{
	const char *text = cfg_scalar(w, node);

	if (text == NULL)
		return -EINVAL;
	if (*text == '\0') {
		cfg_error(w, node, "the path is empty");
		return -EINVAL;
	}

	free(*out);
	*out = cfg_resolve_path(w->base_dir, text);
	if (*out == NULL) {
		w->oom = true;
		return -ENOMEM;
	}

	return 0;
}

int
cfg_parse_addr_node(struct cfg_walk *w, yaml_node_t *node, struct cfg_addr *addr)
{
	const char *text = cfg_scalar(w, node);
	const char *why;

	if (text == NULL)
		return -EINVAL;

	why = cfg_syntax_addr(text, &addr->ss, &addr->len);
	if (why != NULL) {
		cfg_error(w, node, "'%s' %s", text, why);
		return -EINVAL;
	}

	free(addr->text);
	addr->text = cfg_strdup(w, text);
	return addr->text != NULL ? 0 : -ENOMEM;
}

static int
check_range(struct cfg_walk *w, yaml_node_t *node, const struct cfg_field *f, const char *text,
	    uint64_t v)
{
	if (v >= f->min && v <= f->max)
		return 0;

	cfg_error(w, node, "'%s' is out of range (%llu..%llu)", text, (unsigned long long)f->min,
		  (unsigned long long)f->max);
	return -EINVAL;
}

static int
parse_number(struct cfg_walk *w, yaml_node_t *node, const struct cfg_field *f, void *dst)
{
	const char *text = cfg_scalar(w, node);
	const char *why;
	uint64_t v;

	if (text == NULL)
		return -EINVAL;

	why = cfg_syntax_uint(text, &v);
	if (why != NULL) {
		cfg_error(w, node, "'%s' %s", text, why);
		return -EINVAL;
	}
	if (check_range(w, node, f, text, v) != 0)
		return -EINVAL;

	if (f->kind == CFG_KIND_UINT)
		*(unsigned *)dst = (unsigned)v;
	else
		*(uint64_t *)dst = v;
	return 0;
}

static int
check_duration_range(struct cfg_walk *w, yaml_node_t *node, const struct cfg_field *f,
		     const char *text, uint64_t ms)
{
	char limit[32];

	if (ms < f->min) {
		cfg_format_duration(f->min, limit, sizeof(limit));
		cfg_error(w, node, "'%s' is too short (at least %s)", text, limit);
		return -EINVAL;
	}

	if (ms > f->max) {
		cfg_format_duration(f->max, limit, sizeof(limit));
		cfg_error(w, node, "'%s' is too long (at most %s)", text, limit);
		return -EINVAL;
	}

	if (f->kind == CFG_KIND_DURATION_S && ms % 1000 != 0) {
		cfg_error(w, node, "'%s' is not a whole number of seconds", text);
		return -EINVAL;
	}

	return 0;
}

static int
parse_duration(struct cfg_walk *w, yaml_node_t *node, const struct cfg_field *f, void *dst)
{
	const char *text = cfg_scalar(w, node);
	const char *why;
	uint64_t ms;

	if (text == NULL)
		return -EINVAL;

	why = cfg_syntax_duration(text, &ms);
	if (why != NULL) {
		cfg_error(w, node, "'%s' %s", text, why);
		return -EINVAL;
	}
	if (check_duration_range(w, node, f, text, ms) != 0)
		return -EINVAL;

	*(uint64_t *)dst = f->kind == CFG_KIND_DURATION_S ? ms / 1000 : ms;
	return 0;
}

static int
parse_bool(struct cfg_walk *w, yaml_node_t *node, void *dst)
{
	const char *text = cfg_scalar(w, node);
	const char *why;

	if (text == NULL)
		return -EINVAL;

	why = cfg_syntax_bool(text, dst);
	if (why != NULL) {
		cfg_error(w, node, "'%s' %s", text, why);
		return -EINVAL;
	}

	return 0;
}

/* "a, b or c" into buf. */
static void
list_enum_names(const struct cfg_enum_name *names, char *buf, size_t cap)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; names[i].name != NULL && used < cap; i++) {
		const char *sep = i == 0 ? "" : names[i + 1].name == NULL ? " or " : ", ";
		int n = snprintf(buf + used, cap - used, "%s%s", sep, names[i].name);

		if (n < 0)
			break;
		used += (size_t)n;
	}
}

static void
report_bad_enum(struct cfg_walk *w, yaml_node_t *node, const struct cfg_enum_name *names,
		const char *text)
{
	const char *candidates[16];
	const char *near;
	char expected[160];
	size_t n = 0;

	for (; names[n].name != NULL && n < 16; n++)
		candidates[n] = names[n].name;

	list_enum_names(names, expected, sizeof(expected));
	near = cfg_closest_name(text, candidates, n);
	if (near != NULL)
		cfg_error(w, node, "unknown value '%s'; did you mean '%s'? (expected %s)", text,
			  near, expected);
	else
		cfg_error(w, node, "unknown value '%s' (expected %s)", text, expected);
}

static int
parse_enum(struct cfg_walk *w, yaml_node_t *node, const struct cfg_field *f, void *dst)
{
	const char *text = cfg_scalar(w, node);

	if (text == NULL)
		return -EINVAL;

	for (const struct cfg_enum_name *e = f->names; e->name != NULL; e++) {
		if (strcmp(text, e->name) == 0) {
			*(int *)dst = e->value;
			return 0;
		}
	}

	report_bad_enum(w, node, f->names, text);
	return -EINVAL;
}

static int
parse_name(struct cfg_walk *w, yaml_node_t *node, char **dst)
{
	const char *text = cfg_scalar(w, node);
	const char *why;

	if (text == NULL)
		return -EINVAL;

	why = cfg_syntax_name(text);
	if (why != NULL) {
		cfg_error(w, node, "'%s' %s", text, why);
		return -EINVAL;
	}

	free(*dst);
	*dst = cfg_strdup(w, text);
	return *dst != NULL ? 0 : -ENOMEM;
}

static int
parse_field(struct cfg_walk *w, yaml_node_t *node, const struct cfg_field *f, void *obj)
{
	void *dst = (char *)obj + f->offset;

	switch (f->kind) {
	case CFG_KIND_UINT:
	case CFG_KIND_U64:
		return parse_number(w, node, f, dst);
	case CFG_KIND_BOOL:
		return parse_bool(w, node, dst);
	case CFG_KIND_DURATION_MS:
	case CFG_KIND_DURATION_S:
		return parse_duration(w, node, f, dst);
	case CFG_KIND_ENUM:
		return parse_enum(w, node, f, dst);
	case CFG_KIND_NAME:
		return parse_name(w, node, dst);
	case CFG_KIND_PATH:
		return cfg_parse_path_node(w, node, dst);
	case CFG_KIND_ADDR:
		return cfg_parse_addr_node(w, node, dst);
	case CFG_KIND_SECTION:
		return cfg_walk_mapping(w, node, f->section, dst);
	case CFG_KIND_CUSTOM:
		return f->parse(w, node, obj);
	}

	return -EINVAL;
}

static int
find_field(const struct cfg_section *s, const char *name)
{
	for (size_t i = 0; i < s->n_fields; i++) {
		if (strcmp(s->fields[i].name, name) == 0)
			return (int)i;
	}

	return -1;
}

static void
report_unknown_key(struct cfg_walk *w, yaml_node_t *key, const struct cfg_section *s,
		   const char *name)
{
	const char *names[CFG_SECTION_MAX_FIELDS];
	char expected[256] = "";
	size_t used = 0, n = 0;
	const char *near;

	for (; n < s->n_fields && n < CFG_SECTION_MAX_FIELDS; n++) {
		names[n] = s->fields[n].name;
		used += (size_t)snprintf(expected + used, sizeof(expected) - used, "%s%s",
					 n == 0 ? "" : ", ", names[n]);
		if (used >= sizeof(expected))
			used = sizeof(expected) - 1;
	}

	near = cfg_closest_name(name, names, n);
	if (near != NULL)
		cfg_error_key(w, key, name, "unknown key '%s'; did you mean '%s'?", name, near);
	else
		cfg_error_key(w, key, name, "unknown key '%s' (expected one of: %s)", name,
			      expected);
}

/*
 * First pass: every key is a known scalar and appears once. seen[i] gets
 * the value node of field i.
 */
static void
index_keys(struct cfg_walk *w, yaml_node_t *map, const struct cfg_section *s, yaml_node_t **seen,
	   yaml_node_t **seen_key)
{
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *key = yaml_document_get_node(w->doc, p->key);
		const char *name;
		int i;

		if (key == NULL || !spend_budget(w, map))
			return;
		if (key->type != YAML_SCALAR_NODE) {
			cfg_error(w, key, "a key must be a scalar value, found %s",
				  node_kind_name(key));
			continue;
		}

		name = (const char *)key->data.scalar.value;
		i = find_field(s, name);
		if (i < 0) {
			report_unknown_key(w, key, s, name);
		} else if (seen[i] != NULL) {
			cfg_error_key(w, key, name, "duplicate key '%s' (first set at line %u)",
				      name, (unsigned)seen_key[i]->start_mark.line + 1);
		} else {
			seen[i] = yaml_document_get_node(w->doc, p->value);
			seen_key[i] = key;
		}
	}
}

int
cfg_walk_mapping(struct cfg_walk *w, yaml_node_t *node, const struct cfg_section *s, void *obj)
{
	yaml_node_t *seen[CFG_SECTION_MAX_FIELDS] = {NULL};
	yaml_node_t *seen_key[CFG_SECTION_MAX_FIELDS] = {NULL};

	if (s->n_fields > CFG_SECTION_MAX_FIELDS)
		return -EINVAL;

	if (node->type != YAML_MAPPING_NODE) {
		cfg_error(w, node, "expected a mapping, found %s", node_kind_name(node));
		return -EINVAL;
	}

	index_keys(w, node, s, seen, seen_key);

	for (size_t i = 0; i < s->n_fields && !w->over_budget; i++) {
		const struct cfg_field *f = &s->fields[i];
		size_t saved = cfg_key_push(w, f->name);

		if (seen[i] != NULL)
			parse_field(w, seen[i], f, obj);
		else if (f->required)
			cfg_error(w, node, "required key is missing");
		cfg_key_pop(w, saved);
	}

	if (s->finish != NULL && !w->over_budget)
		s->finish(w, node, obj);
	return 0;
}

static int
check_list(struct cfg_walk *w, yaml_node_t *node, size_t max, bool allow_empty)
{
	size_t n;

	if (node->type == YAML_SCALAR_NODE && !is_null_scalar(node)) {
		cfg_error(w, node,
			  "expected a list, found a scalar value (write [%s] for a list of one)",
			  (const char *)node->data.scalar.value);
		return -EINVAL;
	}
	if (node->type != YAML_SEQUENCE_NODE) {
		cfg_error(w, node, "expected a list, found %s", node_kind_name(node));
		return -EINVAL;
	}

	n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
	if (n == 0 && !allow_empty) {
		cfg_error(w, node, "the list is empty; at least one item is needed");
		return -EINVAL;
	}
	if (n > max) {
		cfg_error(w, node, "the list has %zu items; at most %zu are allowed", n, max);
		return -EINVAL;
	}

	return 0;
}

static size_t
list_length(const yaml_node_t *node)
{
	return (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
}

int
cfg_walk_each(struct cfg_walk *w, yaml_node_t *node, size_t max, bool allow_empty,
	      int (*fn)(struct cfg_walk *w, yaml_node_t *item, size_t index, void *ctx), void *ctx)
{
	size_t count;

	if (check_list(w, node, max, allow_empty) != 0)
		return -EINVAL;

	count = list_length(node);
	for (size_t i = 0; i < count && !w->oom; i++) {
		yaml_node_t *item =
			yaml_document_get_node(w->doc, node->data.sequence.items.start[i]);
		size_t saved = cfg_key_push_index(w, i);

		if (item != NULL && spend_budget(w, item))
			fn(w, item, i, ctx);
		cfg_key_pop(w, saved);
	}

	return 0;
}

struct list_ctx {
	char *array;
	size_t item_size;
	int (*parse_item)(struct cfg_walk *w, yaml_node_t *item, void *obj);
};

static int
parse_list_item(struct cfg_walk *w, yaml_node_t *item, size_t index, void *ctx)
{
	struct list_ctx *c = ctx;

	return c->parse_item(w, item, c->array + index * c->item_size);
}

int
cfg_walk_list(struct cfg_walk *w, yaml_node_t *node, size_t max, bool allow_empty, size_t item_size,
	      void **items, size_t *n,
	      int (*parse_item)(struct cfg_walk *w, yaml_node_t *item, void *obj))
{
	struct list_ctx c = {.item_size = item_size, .parse_item = parse_item};
	size_t count;

	if (check_list(w, node, max, allow_empty) != 0)
		return -EINVAL;

	count = list_length(node);
	c.array = calloc(count == 0 ? 1 : count, item_size);
	if (c.array == NULL) {
		w->oom = true;
		return -ENOMEM;
	}

	*items = c.array;
	*n = count;
	return cfg_walk_each(w, node, max, allow_empty, parse_list_item, &c);
}

struct strings_ctx {
	char **array;
	int (*parse_item)(struct cfg_walk *w, yaml_node_t *item, char **out);
};

static int
keep_string(struct cfg_walk *w, yaml_node_t *item, char **out)
{
	const char *text = cfg_scalar(w, item);

	if (text == NULL)
		return -EINVAL;

	*out = cfg_strdup(w, text);
	return *out != NULL ? 0 : -ENOMEM;
}

static int
parse_string_item(struct cfg_walk *w, yaml_node_t *item, size_t index, void *ctx)
{
	struct strings_ctx *c = ctx;

	return c->parse_item(w, item, &c->array[index]);
}

int
cfg_walk_strings(struct cfg_walk *w, yaml_node_t *node, size_t max, bool allow_empty, char ***out,
		 size_t *n, int (*parse_item)(struct cfg_walk *w, yaml_node_t *item, char **out))
{
	struct strings_ctx c = {.parse_item = parse_item != NULL ? parse_item : keep_string};
	size_t count;

	if (check_list(w, node, max, allow_empty) != 0)
		return -EINVAL;

	count = list_length(node);
	c.array = calloc(count + 1, sizeof(*c.array));
	if (c.array == NULL) {
		w->oom = true;
		return -ENOMEM;
	}

	*out = c.array;
	*n = count;
	return cfg_walk_each(w, node, max, allow_empty, parse_string_item, &c);
}
