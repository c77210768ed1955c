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

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Set (RS_TEST_EMULATED=1) by tests/system-aarch64.sh, whose guest runs
 * under qemu's TCG on a shared host, one to two orders of magnitude slower
 * than real hardware. */
static inline int rs_on_emulator(void) {
  const char* v = getenv("RS_TEST_EMULATED");
  return v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
}

/* How much longer things take under valgrind: the factor for deadlines,
 * alarms and waits (the same 20 that check_main.h gives Check's timeouts
 * under make check-valgrind); 10 under an emulator; 1 otherwise. */
static inline unsigned rs_time_scale(void) {
  return rs_on_valgrind() ? 20u : rs_on_emulator() ? 10u : 1u;
}

/* A child's alarm, a wait or a deadline of `s` seconds (`ms`
 * milliseconds), stretched under valgrind. */
static inline unsigned rs_scaled_s(unsigned s) {
  return s * rs_time_scale();
}

static inline long rs_scaled_ms(long ms) {
  return ms * (long)rs_time_scale();
}

/* The least count a liveness check expects of a helper thread (trims,
 * drains, flips, signals, operations): n; 0 under valgrind, which runs
 * one thread at a time and may give a thread only a few turns; n / 20
 * rounded down under an emulator (rs_on_emulator), where the runs do one
 * to two orders of magnitude less work: the checks are `count >
 * at_least(n)`, so some progress is still required. A lowered minimum says so
 * once in the test's log and on make check's terminal (fd 9): such a run must
 * not pass silently as if the full minimum had been met. */
static inline uint64_t at_least(uint64_t n) {
  static int said;
  const char* line;
  uint64_t least;
  if (rs_on_valgrind()) {
    line = "under valgrind: liveness minimums (at_least) are not checked\n";
    least = 0;
  } else if (rs_on_emulator()) {
    line = "under an emulator: liveness minimums (at_least) divided by 20\n";
    least = n / 20;
  } else {
    return n;
  }
  if (!__atomic_exchange_n(&said, 1, __ATOMIC_RELAXED)) {
    ssize_t w = write(2, line, strlen(line));
    if (fcntl(9, F_GETFD) != -1)
      w = write(9, line, strlen(line));
    (void)w; /* only a note */
  }
  return least;
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
