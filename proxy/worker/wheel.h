/*
 * wheel: a hashed timer wheel for one worker's connection timeouts.
 *
 * Connections move their deadline on every byte (idle timeout), so the
 * wheel is lazy: a node sits in the slot of the deadline it had when it was
 * armed, and when that slot expires the owner is asked whether its deadline
 * is really due; if it moved later, the node is re-armed. Arming is O(1),
 * expiry is O(expired + re-armed), and no syscall is made per connection.
 */
#ifndef USHER_WHEEL_H
#define USHER_WHEEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define USH_WHEEL_SLOTS   4096 /* power of two */
#define USH_WHEEL_TICK_MS 10

struct ush_wheel_node {
	struct ush_wheel_node *next;
	struct ush_wheel_node *prev;
	uint64_t due_ms; /* deadline the node was armed for */
};

struct ush_wheel {
	struct ush_wheel_node slots[USH_WHEEL_SLOTS]; /* list heads */
	uint64_t now_tick;                            /* every tick before this one has been run */
	uint64_t armed;
};

void ush_wheel_init(struct ush_wheel *w, uint64_t now_ms);

/* Arm (or re-arm) node for due_ms. */
void ush_wheel_arm(struct ush_wheel *w, struct ush_wheel_node *node, uint64_t due_ms);

void ush_wheel_cancel(struct ush_wheel *w, struct ush_wheel_node *node);

static inline bool
ush_wheel_armed(const struct ush_wheel_node *node)
{
	return node->next != NULL;
}

/*
 * Keep node armed for a deadline that moves, lazily: 0 disarms it; a
 * deadline earlier than the one armed re-arms it; a later one is left for
 * ush_wheel_still_due() to notice when the armed slot fires.
 */
void ush_wheel_follow(struct ush_wheel *w, struct ush_wheel_node *node, uint64_t deadline_ms);

/*
 * In an expiry callback: whether deadline_ms (the owner's current one) has
 * come at now_ms. If it moved later the node is re-armed for it; if it is
 * 0 nothing is due.
 */
bool ush_wheel_still_due(struct ush_wheel *w, struct ush_wheel_node *node, uint64_t deadline_ms,
			 uint64_t now_ms);

/*
 * Run every slot up to now_ms, calling on_expire for each node whose slot
 * has come. The node is disarmed before the call; the callee may re-arm it
 * or free it.
 */
void ush_wheel_advance(struct ush_wheel *w, uint64_t now_ms,
		       void (*on_expire)(struct ush_wheel_node *node, void *arg), void *arg);

#ifdef __cplusplus
}
#endif

#endif
