#include "wheel.h"

#include <stddef.h>

static uint64_t
tick_of(uint64_t ms)
{
	return ms / USH_WHEEL_TICK_MS;
}

void
ush_wheel_init(struct ush_wheel *w, uint64_t now_ms)
{
	size_t i;

	for (i = 0; i < USH_WHEEL_SLOTS; i++) {
		w->slots[i].next = &w->slots[i];
		w->slots[i].prev = &w->slots[i];
	}

	w->now_tick = tick_of(now_ms);
	w->armed = 0;
}

void
ush_wheel_cancel(struct ush_wheel *w, struct ush_wheel_node *node)
{
	if (!ush_wheel_armed(node))
		return;

	node->prev->next = node->next;
	node->next->prev = node->prev;
	node->next = NULL;
	node->prev = NULL;
	w->armed--;
}

void
ush_wheel_arm(struct ush_wheel *w, struct ush_wheel_node *node, uint64_t due_ms)
{
	uint64_t tick = tick_of(due_ms);
	struct ush_wheel_node *head;

	ush_wheel_cancel(w, node);

	/* A deadline in the past fires on the next advance. */
	if (tick < w->now_tick)
		tick = w->now_tick;

	head = &w->slots[tick & (USH_WHEEL_SLOTS - 1)];
	node->due_ms = due_ms;
	node->next = head->next;
	node->prev = head;
	head->next->prev = node;
	head->next = node;
	w->armed++;
}

/*
 * Nodes due more than one revolution ahead share the slot with nearer
 * ones; they are put back untouched.
 */
static void
run_slot(struct ush_wheel *w, uint64_t slot, uint64_t tick,
	 void (*on_expire)(struct ush_wheel_node *node, void *arg), void *arg)
{
	struct ush_wheel_node *head = &w->slots[slot & (USH_WHEEL_SLOTS - 1)];
	struct ush_wheel_node due;
	struct ush_wheel_node *node;

	/* Move the due nodes to a private list first: callbacks re-arm. */
	due.next = &due;
	due.prev = &due;
	for (node = head->next; node != head;) {
		struct ush_wheel_node *next = node->next;

		if (tick_of(node->due_ms) <= tick) {
			node->prev->next = node->next;
			node->next->prev = node->prev;
			node->next = due.next;
			node->prev = &due;
			due.next->prev = node;
			due.next = node;
		}
		node = next;
	}

	while (due.next != &due) {
		node = due.next;
		due.next = node->next;
		node->next->prev = &due;
		node->next = NULL;
		node->prev = NULL;
		w->armed--;
		on_expire(node, arg);
	}
}

void
ush_wheel_advance(struct ush_wheel *w, uint64_t now_ms,
		  void (*on_expire)(struct ush_wheel_node *node, void *arg), void *arg)
{
	uint64_t target = tick_of(now_ms);
	uint64_t slot;

	/* After a stall longer than a revolution, every slot is due at once. */
	if (target >= w->now_tick + USH_WHEEL_SLOTS) {
		w->now_tick = target + 1;
		for (slot = 0; slot < USH_WHEEL_SLOTS; slot++)
			run_slot(w, slot, target, on_expire, arg);
		return;
	}

	/* now_tick moves first, so a node re-armed in the past by a callback
	 * lands in a slot still to be run rather than a whole turn later. */
	while (w->now_tick <= target) {
		uint64_t tick = w->now_tick++;

		run_slot(w, tick, tick, on_expire, arg);
	}
}

void
ush_wheel_follow(struct ush_wheel *w, struct ush_wheel_node *node, uint64_t deadline_ms)
{
	if (deadline_ms == 0) {
		ush_wheel_cancel(w, node);
		return;
	}

	if (!ush_wheel_armed(node) || deadline_ms < node->due_ms)
		ush_wheel_arm(w, node, deadline_ms);
}

bool
ush_wheel_still_due(struct ush_wheel *w, struct ush_wheel_node *node, uint64_t deadline_ms,
		    uint64_t now_ms)
{
	if (deadline_ms == 0)
		return false;

	if (deadline_ms > now_ms) {
		ush_wheel_arm(w, node, deadline_ms);
		return false;
	}

	return true;
}
