/*
 * check: the smallest test harness that does the job. Each test program
 * runs its cases in order and reports in TAP, which meson reads
 * (protocol: 'tap'), so one failing case shows by name in the test log.
 *
 *	static void test_something(void) { CHECK(1 + 1 == 2); }
 *	int main(void) { RUN(test_something); return check_done(); }
 */
#ifndef USHER_CHECK_H
#define USHER_CHECK_H

#include <stdio.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

extern int check_failures_in_case;
extern int check_cases_run;
extern int check_cases_failed;

#define CHECK(cond)                                                                       \
	do {                                                                              \
		if (!(cond)) {                                                            \
			printf("# %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
			check_failures_in_case++;                                         \
		}                                                                         \
	} while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
	do {                                                                                       \
		long long check_a_ = (long long)(a), check_b_ = (long long)(b);                    \
		if (check_a_ != check_b_) {                                                        \
			printf("# %s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, #a, \
			       #b, check_a_, check_b_);                                            \
			check_failures_in_case++;                                                  \
		}                                                                                  \
	} while (0)

#define CHECK_EQ_STR(a, b)                                                                         \
	do {                                                                                       \
		const char *check_a_ = (a), *check_b_ = (b);                                       \
		if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0) {                   \
			printf("# %s:%d: %s == %s failed: '%s' != '%s'\n", __FILE__, __LINE__, #a, \
			       #b, check_a_ ? check_a_ : "(null)",                                 \
			       check_b_ ? check_b_ : "(null)");                                    \
			check_failures_in_case++;                                                  \
		}                                                                                  \
	} while (0)

/* Stop the current case when a precondition fails. */
#define REQUIRE(cond)                                                                       \
	do {                                                                                \
		if (!(cond)) {                                                              \
			printf("# %s:%d: REQUIRE(%s) failed\n", __FILE__, __LINE__, #cond); \
			check_failures_in_case++;                                           \
			return;                                                             \
		}                                                                           \
	} while (0)

#define RUN(fn) check_run(#fn, fn)

void check_run(const char *name, void (*fn)(void));

/* Print the TAP plan; the exit status for main(). */
int check_done(void);

#ifdef __cplusplus
}
#endif

#endif
