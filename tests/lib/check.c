#include "check.h"

#include <stdio.h>

int check_failures_in_case;
int check_cases_run;
int check_cases_failed;

void
check_run(const char *name, void (*fn)(void))
{
	check_failures_in_case = 0;
	fn();
	check_cases_run++;

	if (check_failures_in_case == 0) {
		printf("ok %d - %s\n", check_cases_run, name);
	} else {
		check_cases_failed++;
		printf("not ok %d - %s\n", check_cases_run, name);
	}

	fflush(stdout);
}

int
check_done(void)
{
	printf("1..%d\n", check_cases_run);
	return check_cases_failed == 0 ? 0 : 1;
}
