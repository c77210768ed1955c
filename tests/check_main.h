/* SPDX-License-Identifier: MIT */
/* Shared runner for Check suites: runs the suite, prints Check's summary
 * into the test log and onto fd 9 (which make check routes to the
 * terminal), and maps the result to automake's exit codes. */
#ifndef RS_TESTS_CHECK_MAIN_H
#define RS_TESTS_CHECK_MAIN_H

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Under make check-valgrind (which exports VALGRIND) every test is far
 * slower: stretch Check's timeouts before the suites are built. */
__attribute__((constructor)) static void rs_check_env(void) {
  if (getenv("VALGRIND") != NULL)
    setenv("CK_TIMEOUT_MULTIPLIER", "20", 0);
}

/* Runs `suite`, prints "<name>: 100%: Checks: N, Failures: F, Errors: E". */
static inline int rs_check_run(Suite* suite, const char* name) {
  SRunner* runner = srunner_create(suite);
  srunner_run_all(runner, CK_NORMAL);
  int run = srunner_ntests_run(runner);
  int failures = 0, errors = 0;
  TestResult** results = srunner_results(runner);
  for (int i = 0; i < run; i++) {
    if (tr_rtype(results[i]) == CK_FAILURE)
      failures++;
    if (tr_rtype(results[i]) == CK_ERROR)
      errors++;
  }
  free(results);
  char line[256];
  int n = snprintf(line, sizeof line,
                   "%s: %d%%: Checks: %d, Failures: %d, Errors: %d\n", name,
                   run ? (run - failures - errors) * 100 / run : 0, run,
                   failures, errors);
  if (n > 0 && fcntl(9, F_GETFD) != -1 && write(9, line, (size_t)n) < 0) {
    /* Nothing to do: the log still has Check's own summary. */
  }
  srunner_free(runner);
  if (run == 0)
    return 99;
  return failures + errors == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
