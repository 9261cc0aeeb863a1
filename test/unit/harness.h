/*-------------------------------------------------------------------------
 *
 * harness.h
 *	  A tiny assertion harness for the C unit tests of the state engine.
 *
 * Copyright (c) 2026, eventsourcing developers
 *
 * IDENTIFICATION
 *	  test/unit/harness.h
 *
 *-------------------------------------------------------------------------
 *
 * A test case is a function "static void test_x(void)" run by RUN(test_x).
 * CHECK(cond) fails the case and leaves it (what the case allocated may
 * leak then; a failing case is a bug to fix anyway).  The runner prints one
 * line per case and, last, "N passed, N failed".
 */
#ifndef ES_TEST_HARNESS_H
#define ES_TEST_HARNESS_H

#include <stdbool.h>
#include <stdio.h>

static int	harness_passed;
static int	harness_failed;
static bool harness_case_failed;

/*
 * harness_fail: reports a failed check of the current case.
 */
static void
harness_fail(const char *file, int line, const char *what)
{
	printf("    %s:%d: check failed: %s\n", file, line, what);
	harness_case_failed = true;
}

#define CHECK(cond) \
	do { \
		if (!(cond)) \
		{ \
			harness_fail(__FILE__, __LINE__, #cond); \
			return; \
		} \
	} while (0)

/*
 * harness_run: runs one case and counts it.
 */
static void
harness_run(const char *name, void (*fn) (void))
{
	harness_case_failed = false;
	fn();
	if (harness_case_failed)
	{
		harness_failed++;
		printf("FAIL  %s\n", name);
	}
	else
	{
		harness_passed++;
		printf("ok    %s\n", name);
	}
	fflush(stdout);
}

#define RUN(fn) harness_run(#fn, fn)

/*
 * harness_summary: prints the last line and returns the exit status.
 */
static int
harness_summary(void)
{
	printf("%d passed, %d failed\n", harness_passed, harness_failed);
	return harness_failed == 0 ? 0 : 1;
}

#endif							/* ES_TEST_HARNESS_H */
