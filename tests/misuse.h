/* SPDX-License-Identifier: MIT */
/* Misuse tests for the ABI test programs: runs a function in a child with
 * its stderr captured, and requires that the misuse dies of SIGABRT with
 * rsmalloc's own message while the same run without the misuse lives. */
#ifndef RS_TESTS_MISUSE_H
#define RS_TESTS_MISUSE_H

#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/wait.h>

#include "rsmalloc.h"
#include "run_child.h"

/* fn(1) must die of SIGABRT saying "rsmalloc: <what>", fn(0) must not. */
static inline void expect_abort(misuse_fn fn, const char* what) {
  static char msg[4096];
  int status = run_child(fn, 0, msg, sizeof msg);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "%s without the misuse: status %#x, stderr: %s", what, status,
                msg);
  if (strcmp(rsmalloc_cache_mode(), "disabled") == 0)
    return; /* RSMALLOC_DISABLE=1: glibc's own checks are its business */
  const char* preload = getenv("LD_PRELOAD");
  if (preload != NULL && strstr(preload, "vgpreload") != NULL)
    return; /* valgrind: rsmalloc leaves invalid frees to memcheck */
  status = run_child(fn, 1, msg, sizeof msg);
  ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
                "%s: status %#x, not SIGABRT; stderr: %s", what, status, msg);
  char want[128];
  snprintf(want, sizeof want, "rsmalloc: %s", what);
  ck_assert_msg(strncmp(msg, want, strlen(want)) == 0,
                "%s: stderr is \"%s\", not \"%s...\"", what, msg, want);
}

/* Keeps the compiler from folding allocation calls with constant sizes. */
static inline size_t misuse_opaque(size_t n) {
  volatile size_t v = n;
  return v;
}

/* A block of n bytes, written; the misuse passes p + off instead of p. */
static inline void free_interior(size_t n, size_t off, int misuse) {
  char* p = malloc(misuse_opaque(n));
  if (p == NULL)
    _exit(2);
  memset(p, 1, n);
  free(misuse ? p + off : p);
}

static inline void realloc_interior(size_t n, size_t off, int misuse) {
  char* p = malloc(misuse_opaque(n));
  if (p == NULL)
    _exit(2);
  memset(p, 1, n);
  char* q = realloc(misuse ? p + off : p, misuse_opaque(n + n / 2));
  if (q == NULL)
    _exit(3);
  free(q);
}

/* Between two blocks in use, so the freed block's pages stay a span of
 * their own, not merged into a free neighbour. */
static inline void double_free(size_t n, int misuse) {
  char* before = malloc(misuse_opaque(n));
  char* p = malloc(misuse_opaque(n));
  char* after = malloc(misuse_opaque(n));
  if (before == NULL || p == NULL || after == NULL)
    _exit(2);
  memset(p, 1, n);
  free(p);
  if (misuse)
    free(p);
  free(before);
  free(after);
}

#endif
