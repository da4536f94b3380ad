/*
 * The fault injector: a seeded, bounded queue of frames that loses,
 * duplicates and holds back some of them. A test-only option of the DPDK
 * engine, and the link between two stacks in the unit tests.
 */
#include <errno.h>
#include <stdlib.h>

#include "ust_impl.h"

struct fault_slot {
	uint64_t due;
	uint64_t order; /* ties on due go first-offered first */
	uint32_t len;   /* 0 = free */
};

struct ust_faults {
	struct ust_faults_config cfg;
	struct ust_faults_stats stats;
	uint64_t rng;
	uint64_t next_order;
	struct fault_slot *slots;
	uint8_t *frames;  /* capacity * frame_max */
	uint8_t *scratch; /* the frame being delivered */
	uint32_t used;
};

int
ust_faults_create(const struct ust_faults_config *cfg, struct ust_faults **out)
{
	struct ust_faults *f;

	if (cfg->capacity == 0 || cfg->frame_max == 0 || cfg->drop_ppm > 1000000 ||
	    cfg->dup_ppm > 1000000 || cfg->delay_ppm > 1000000)
		return -EINVAL;

	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;

	f->cfg = *cfg;
	/* xorshift must not start at zero; any other seed replays exactly. */
	f->rng = cfg->seed ? cfg->seed : 0x9e3779b97f4a7c15ULL;
	f->slots = calloc(cfg->capacity, sizeof(*f->slots));
	f->frames = malloc((size_t)cfg->capacity * cfg->frame_max);
	f->scratch = malloc(cfg->frame_max);
	if (!f->slots || !f->frames || !f->scratch) {
		ust_faults_destroy(f);
		return -ENOMEM;
	}

	*out = f;
	return 0;
}

void
ust_faults_destroy(struct ust_faults *f)
{
	if (!f)
		return;

	free(f->slots);
	free(f->frames);
	free(f->scratch);
	free(f);
}

/* xorshift64*: small, fast and good enough to pick faults. */
static uint64_t
next_random(struct ust_faults *f)
{
	f->rng ^= f->rng >> 12;
	f->rng ^= f->rng << 25;
	f->rng ^= f->rng >> 27;
	return f->rng * 0x2545f4914f6cdd1dULL;
}

static bool
chance(struct ust_faults *f, uint32_t ppm)
{
	return ppm && (next_random(f) >> 11) % 1000000 < ppm;
}

static void
enqueue(struct ust_faults *f, const void *frame, uint32_t len, uint64_t due)
{
	struct fault_slot *slot = NULL;

	for (uint32_t i = 0; i < f->cfg.capacity && !slot; i++)
		if (f->slots[i].len == 0)
			slot = &f->slots[i];

	if (!slot) {
		f->stats.overflowed++;
		return;
	}

	slot->due = due;
	slot->order = f->next_order++;
	slot->len = len;
	memcpy(f->frames + (size_t)(slot - f->slots) * f->cfg.frame_max, frame, len);
	f->used++;
}

static uint64_t
due_time(struct ust_faults *f, uint64_t now)
{
	uint64_t due = now + f->cfg.latency_us;

	if (f->cfg.delay_max_us && chance(f, f->cfg.delay_ppm)) {
		f->stats.delayed++;
		due += 1 + (next_random(f) >> 11) % f->cfg.delay_max_us;
	}
	return due;
}

void
ust_faults_push(struct ust_faults *f, const void *frame, size_t len, uint64_t now_us)
{
	f->stats.offered++;
	if (len == 0 || len > f->cfg.frame_max) {
		f->stats.overflowed++;
		return;
	}
	if (chance(f, f->cfg.drop_ppm)) {
		f->stats.dropped++;
		return;
	}

	enqueue(f, frame, (uint32_t)len, due_time(f, now_us));
	if (chance(f, f->cfg.dup_ppm)) {
		f->stats.duplicated++;
		enqueue(f, frame, (uint32_t)len, due_time(f, now_us));
	}
}

/* The earliest slot due by now and offered before limit, or NULL. */
static struct fault_slot *
earliest_due(struct ust_faults *f, uint64_t now, uint64_t limit)
{
	struct fault_slot *best = NULL;

	for (uint32_t i = 0; i < f->cfg.capacity; i++) {
		struct fault_slot *s = &f->slots[i];

		if (s->len == 0 || s->due > now || s->order >= limit)
			continue;
		if (!best || s->due < best->due || (s->due == best->due && s->order < best->order))
			best = s;
	}
	return best;
}

unsigned
ust_faults_pop(struct ust_faults *f, uint64_t now_us,
	       void (*deliver)(void *arg, const void *frame, size_t len), void *arg)
{
	/* Frames offered while delivering wait for the next call. */
	uint64_t limit = f->next_order;
	struct fault_slot *slot;
	unsigned n = 0;

	while (f->used && (slot = earliest_due(f, now_us, limit))) {
		uint32_t len = slot->len;

		memcpy(f->scratch, f->frames + (size_t)(slot - f->slots) * f->cfg.frame_max, len);
		slot->len = 0;
		f->used--;
		f->stats.delivered++;
		n++;
		deliver(arg, f->scratch, len);
	}
	return n;
}

uint64_t
ust_faults_next(const struct ust_faults *f)
{
	uint64_t next = UINT64_MAX;

	for (uint32_t i = 0; i < f->cfg.capacity; i++)
		if (f->slots[i].len && f->slots[i].due < next)
			next = f->slots[i].due;
	return next;
}

const struct ust_faults_stats *
ust_faults_stats(const struct ust_faults *f)
{
	return &f->stats;
}
