/* SPDX-License-Identifier: MIT */
/* rs_on_valgrind(): 1 when the test runs under valgrind (make
 * check-valgrind), where rsmalloc runs its locked fallback and a few
 * behaviours differ by design (rsmalloc(7), VALGRIND). */
#ifndef RS_TESTS_ON_VALGRIND_H
#define RS_TESTS_ON_VALGRIND_H

#include "config.h"

#ifdef RS_HAVE_VALGRIND
#  include <valgrind/valgrind.h>

static inline int rs_on_valgrind(void) {
  return RUNNING_ON_VALGRIND != 0;
}
#else
static inline int rs_on_valgrind(void) {
  return 0; /* built without client requests: nothing differs */
}
#endif

#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

/* The least count a liveness check expects of a helper thread (trims,
 * drains, flips, signals, operations): n, or 0 under valgrind, which runs
 * one thread at a time and may give a thread only a few turns. */
static inline uint64_t at_least(uint64_t n) {
  return rs_on_valgrind() ? 0 : n;
}

/* Ends a child made by fork() with `code`. Under valgrind it execs a shell
 * that exits with the code instead: memcheck's leak check of a forked copy
 * of a multi-threaded parent reports the blocks its other threads held in
 * registers and on their (now gone) stacks as lost, on any allocator. */
static inline void rs_child_exit(int code) {
  if (rs_on_valgrind()) {
    char cmd[32];
    snprintf(cmd, sizeof cmd, "exit %d", code & 255);
    execl("/bin/sh", "sh", "-c", cmd, (char*)NULL);
  }
  _exit(code);
}

#endif
