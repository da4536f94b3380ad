/*
 * The worker's timer wheel: nodes fire in the tick of their deadline, not
 * before; a deadline that moves later is followed lazily; cancelled nodes
 * never fire; a stall longer than a revolution fires everything due.
 */
#include <stddef.h>

#include "check.h"
#include "wheel.h"

#define NODES 4

struct fixture {
	struct ush_wheel wheel;
	struct ush_wheel_node nodes[NODES];
	uint64_t deadline[NODES]; /* the owners' current deadlines */
	int fired[NODES];
	uint64_t now;
};

static struct fixture fx;

static size_t
index_of(const struct ush_wheel_node *node)
{
	return (size_t)(node - fx.nodes);
}

/* What an engine does: check the owner's deadline, then act. */
static void
on_expire(struct ush_wheel_node *node, void *arg)
{
	size_t i = index_of(node);

	(void)arg;
	if (ush_wheel_still_due(&fx.wheel, node, fx.deadline[i], fx.now))
		fx.fired[i]++;
}

static void
advance_to(uint64_t now)
{
	fx.now = now;
	ush_wheel_advance(&fx.wheel, now, on_expire, NULL);
}

static void
setup(uint64_t start)
{
	fx = (struct fixture){.now = start};
	ush_wheel_init(&fx.wheel, start);
}

static void
follow(size_t i, uint64_t deadline)
{
	fx.deadline[i] = deadline;
	ush_wheel_follow(&fx.wheel, &fx.nodes[i], deadline);
}

static void
test_fires_at_deadline_not_before(void)
{
	setup(1000);
	follow(0, 1500);

	advance_to(1489);
	CHECK_EQ_INT(fx.fired[0], 0);
	advance_to(1500);
	CHECK_EQ_INT(fx.fired[0], 1);
	CHECK(!ush_wheel_armed(&fx.nodes[0]));
	CHECK_EQ_INT(fx.wheel.armed, 0);
}

static void
test_later_deadline_followed_lazily(void)
{
	setup(0);
	follow(0, 100);

	/* Activity moves the deadline: the node stays where it was armed. */
	follow(0, 5000);
	CHECK_EQ_INT(fx.nodes[0].due_ms, 100);

	advance_to(200);
	CHECK_EQ_INT(fx.fired[0], 0);
	CHECK(ush_wheel_armed(&fx.nodes[0]));
	CHECK_EQ_INT(fx.nodes[0].due_ms, 5000);

	advance_to(5000);
	CHECK_EQ_INT(fx.fired[0], 1);
}

static void
test_earlier_deadline_rearms(void)
{
	setup(0);
	follow(0, 5000);
	follow(0, 300);
	CHECK_EQ_INT(fx.nodes[0].due_ms, 300);

	advance_to(300);
	CHECK_EQ_INT(fx.fired[0], 1);
}

static void
test_zero_and_cancel_never_fire(void)
{
	setup(0);
	follow(0, 100);
	follow(1, 100);
	follow(0, 0);
	CHECK(!ush_wheel_armed(&fx.nodes[0]));
	ush_wheel_cancel(&fx.wheel, &fx.nodes[1]);

	advance_to(10000);
	CHECK_EQ_INT(fx.fired[0], 0);
	CHECK_EQ_INT(fx.fired[1], 0);
	CHECK_EQ_INT(fx.wheel.armed, 0);
}

/* Deadlines more than a revolution apart share a slot. */
static void
test_beyond_one_revolution(void)
{
	uint64_t turn = (uint64_t)USH_WHEEL_SLOTS * USH_WHEEL_TICK_MS;

	setup(0);
	follow(0, 50);
	follow(1, 50 + turn);

	advance_to(60);
	CHECK_EQ_INT(fx.fired[0], 1);
	CHECK_EQ_INT(fx.fired[1], 0);

	advance_to(60 + turn);
	CHECK_EQ_INT(fx.fired[1], 1);
}

static void
test_long_stall_fires_everything_due(void)
{
	uint64_t turn = (uint64_t)USH_WHEEL_SLOTS * USH_WHEEL_TICK_MS;

	setup(0);
	follow(0, 10);
	follow(1, turn / 2);
	follow(2, 3 * turn);
	follow(3, 9 * turn);

	advance_to(5 * turn);
	CHECK_EQ_INT(fx.fired[0], 1);
	CHECK_EQ_INT(fx.fired[1], 1);
	CHECK_EQ_INT(fx.fired[2], 1);
	CHECK_EQ_INT(fx.fired[3], 0);
	CHECK(ush_wheel_armed(&fx.nodes[3]));
}

int
main(void)
{
	RUN(test_fires_at_deadline_not_before);
	RUN(test_later_deadline_followed_lazily);
	RUN(test_earlier_deadline_rearms);
	RUN(test_zero_and_cancel_never_fire);
	RUN(test_beyond_one_revolution);
	RUN(test_long_stall_fires_everything_due);
	return check_done();
}
