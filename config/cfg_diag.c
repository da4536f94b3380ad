/*
 * Diagnostics: the list of problems a load found, each with its position
 * and the dotted key it concerns, and the "did you mean" helper.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg_internal.h"

/* Keys and messages end up on one terminal line each. */
static void
replace_control_chars(char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
	}
}

static int
grow_diags(struct cfg_diags *d)
{
	size_t cap = d->cap == 0 ? 16 : d->cap * 2;
	struct cfg_diag *items;

	if (cap > CFG_DIAGS_MAX)
		cap = CFG_DIAGS_MAX;

	items = realloc(d->items, cap * sizeof(*items));
	if (items == NULL)
		return -ENOMEM;

	d->items = items;
	d->cap = cap;
	return 0;
}

static int __attribute__((format(printf, 5, 0)))
add_diag_v(struct cfg_diags *d, unsigned line, unsigned col, const char *key, const char *fmt,
	   va_list ap)
{
	struct cfg_diag *item;

	if (d->count == CFG_DIAGS_MAX) {
		d->dropped++;
		return 0;
	}

	if (d->count == d->cap && grow_diags(d) != 0) {
		d->dropped++;
		return -ENOMEM;
	}

	item = &d->items[d->count++];
	item->line = line;
	item->col = col;
	snprintf(item->key, sizeof(item->key), "%s", key);
	vsnprintf(item->message, sizeof(item->message), fmt, ap);
	replace_control_chars(item->key);
	replace_control_chars(item->message);
	return 0;
}

int
cfg_diags_add(struct cfg_diags *d, unsigned line, unsigned col, const char *key, const char *fmt,
	      ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = add_diag_v(d, line, col, key, fmt, ap);
	va_end(ap);
	return rc;
}

static void __attribute__((format(printf, 3, 0)))
error_v(struct cfg_walk *w, const yaml_node_t *at, const char *fmt, va_list ap)
{
	unsigned line = at != NULL ? (unsigned)at->start_mark.line + 1 : 1;
	unsigned col = at != NULL ? (unsigned)at->start_mark.column + 1 : 1;

	w->errors++;
	if (add_diag_v(w->diags, line, col, w->key, fmt, ap) != 0)
		w->oom = true;
}

void
cfg_error(struct cfg_walk *w, const yaml_node_t *at, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	error_v(w, at, fmt, ap);
	va_end(ap);
}

void
cfg_error_key(struct cfg_walk *w, const yaml_node_t *at, const char *name, const char *fmt, ...)
{
	size_t saved = cfg_key_push(w, name);
	va_list ap;

	va_start(ap, fmt);
	error_v(w, at, fmt, ap);
	va_end(ap);
	cfg_key_pop(w, saved);
}

static int
diag_before(const struct cfg_diag *a, const struct cfg_diag *b)
{
	if (a->line != b->line)
		return a->line < b->line;
	return a->col < b->col;
}

/* Insertion sort: at most CFG_DIAGS_MAX items, and it is stable. */
void
cfg_diags_sort(struct cfg_diags *d)
{
	for (size_t i = 1; i < d->count; i++) {
		struct cfg_diag tmp = d->items[i];
		size_t j = i;

		while (j > 0 && diag_before(&tmp, &d->items[j - 1])) {
			d->items[j] = d->items[j - 1];
			j--;
		}
		d->items[j] = tmp;
	}
}

void
cfg_diags_print(const struct cfg_diags *diags, void *f)
{
	FILE *out = f;
	const char *file;

	if (diags == NULL)
		return;

	file = diags->file != NULL ? diags->file : "(config)";
	for (size_t i = 0; i < diags->count; i++) {
		const struct cfg_diag *d = &diags->items[i];

		fprintf(out, "%s:", file);
		if (d->line != 0)
			fprintf(out, "%u:%u:", d->line, d->col);
		if (d->key[0] != '\0')
			fprintf(out, " %s:", d->key);
		fprintf(out, " %s\n", d->message);
	}

	if (diags->dropped != 0)
		fprintf(out, "%s: %zu more problems not shown\n", file, diags->dropped);
}

void
cfg_diags_clear(struct cfg_diags *diags)
{
	if (diags == NULL)
		return;

	free(diags->file);
	free(diags->items);
	memset(diags, 0, sizeof(*diags));
}

/* Levenshtein distance, or SIZE_MAX past the lengths worth comparing. */
static size_t
edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t row[CFG_KEY_PATH_MAX + 1];

	if (la > CFG_KEY_PATH_MAX || lb > CFG_KEY_PATH_MAX)
		return SIZE_MAX;

	for (size_t j = 0; j <= lb; j++)
		row[j] = j;

	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			diag = up;
			row[j] = best;
		}
	}

	return row[lb];
}

/* Whether the shorter of a and b starts the longer one ("warn", "warning"). */
static bool
is_prefix_pair(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la == 0 || lb == 0)
		return false;
	return strncmp(a, b, la < lb ? la : lb) == 0;
}

const char *
cfg_closest_name(const char *word, const char *const *names, size_t n)
{
	/* A third of the word may be wrong, and one letter always may. */
	size_t limit = strlen(word) / 3 < 1 ? 1 : strlen(word) / 3;
	const char *best = NULL;
	size_t best_d = SIZE_MAX;

	for (size_t i = 0; i < n; i++) {
		size_t d = edit_distance(word, names[i]);

		if (d < best_d) {
			best_d = d;
			best = names[i];
		}
	}

	if (best_d <= limit)
		return best;

	for (size_t i = 0; i < n; i++) {
		if (is_prefix_pair(word, names[i]))
			return names[i];
	}

	return NULL;
}

static size_t
key_append(struct cfg_walk *w, const char *text)
{
	size_t saved = w->key_len;
	size_t room = sizeof(w->key) - w->key_len;
	int n = snprintf(w->key + w->key_len, room, "%s", text);

	/* An over-long path is cut; the diagnostic still names its start. */
	w->key_len += (size_t)n < room ? (size_t)n : room - 1;
	return saved;
}

size_t
cfg_key_push(struct cfg_walk *w, const char *name)
{
	size_t saved = w->key_len;

	if (w->key_len != 0)
		key_append(w, ".");
	key_append(w, name);
	return saved;
}

size_t
cfg_key_push_index(struct cfg_walk *w, size_t index)
{
	char text[32];

	snprintf(text, sizeof(text), "[%zu]", index);
	return key_append(w, text);
}

void
cfg_key_pop(struct cfg_walk *w, size_t len)
{
	w->key_len = len;
	w->key[len] = '\0';
}
