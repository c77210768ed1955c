/* SPDX-License-Identifier: MIT */
/* Shared runner for Check suites: runs the suite, prints Check's summary
 * into the test log and onto fd 9 (which make check routes to the
 * terminal), and maps the result to automake's exit codes. */
#ifndef RS_TESTS_CHECK_MAIN_H
#define RS_TESTS_CHECK_MAIN_H

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/wait.h>

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

/* Runs this program again, as a child, with RSMALLOC_RSEQ=0 (the locked
 * fallback), so one make check covers both cache modes. Returns the
 * child's exit status, 99 when it could not run or did not exit. */
static inline int rs_rerun_without_rseq(char** argv) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0)
    return 99;
  if (pid == 0) {
    setenv("RSMALLOC_RSEQ", "0", 1);
    execv("/proc/self/exe", argv);
    _exit(99);
  }
  int status;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR)
      return 99;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 99;
}

/* The name a suite reports under: "<name> (RSMALLOC_RSEQ=0)" in the rerun.
 * Not reentrant (one static buffer). */
static inline const char* rs_run_name(const char* name) {
  static char buf[128];
  if (getenv("RSMALLOC_RSEQ") == NULL)
    return name;
  snprintf(buf, sizeof buf, "%s (RSMALLOC_RSEQ=0)", name);
  return buf;
}

/* glibc 2.35 and later: the size of the rseq area it registered, 0 when
 * it did not (glibc.pthread.rseq=0, valgrind, qemu-user). Weak: absent
 * on older glibc. */
#ifdef __cplusplus
extern "C" {
#endif
extern const unsigned int __rseq_size __attribute__((weak));
#ifdef __cplusplus
}
#endif

/* Runs `suite`, then (unless RSMALLOC_RSEQ is set: this is the rerun, or
 * the caller chose a mode) the program again without rseq. Without an
 * rseq area the first run was in the locked mode already and is not
 * repeated (qemu-user, which has none, could not run it either: it
 * cannot exec a guest program without binfmt_misc). The first failure's
 * status. */
static inline int rs_check_run_both_modes(Suite* suite,
                                          const char* name,
                                          char** argv) {
  int rc = rs_check_run(suite, rs_run_name(name));
  if (getenv("RSMALLOC_RSEQ") != NULL)
    return rc;
  if (&__rseq_size == NULL || __rseq_size == 0) {
    fprintf(stderr, "%s: no rseq area: the locked mode ran already\n", name);
    return rc;
  }
  int again = rs_rerun_without_rseq(argv);
  return rc != EXIT_SUCCESS ? rc : again;
}

#endif
