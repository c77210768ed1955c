/* SPDX-License-Identifier: MIT */
/* rs_stuck_in_emulator(): whether a forked child that did not finish is
 * blocked on a lock of qemu-user's own rather than on anything of the
 * program's (rsmalloc's, glibc's or the test's).
 *
 * qemu-user 10.0.2 (bookworm-backports' 1:10.0.2+ds-2+deb13u1~bpo12+1)
 * does not hold its fd-translation table lock (target_fd_trans_lock)
 * across fork(). Every read, write, openat, close, ... takes it, in the
 * emulator, around the host call. When another thread is inside one of
 * those at the instant a thread forks, the child inherits the lock held
 * by a thread it does not have, and the child's first such call (the
 * openat of its fopen) waits for it forever. QEMU issue 2846, fixed
 * upstream by "linux-user: Hold the fd-trans lock across fork" (commit
 * e4e839b2, backported to 7.2.19). A plain C program with glibc's malloc,
 * threads in stdio and a thread that forks hangs the same way under the
 * same qemu (debian/librsmalloc.README.Debian says how often).
 *
 * What a child must show to be counted as stuck in the emulator, all of:
 *  1. RS_TEST_EMULATED is set (tests/cross-run.sh sets it under qemu-user);
 *  2. its host executable (/proc/PID/exe, which qemu-user passes through
 *     for any process but the caller) is not the one this process reports
 *     for itself: an emulator runs the program (natively a forked child is
 *     the same executable, so nothing natively can match);
 *  3. its main thread sleeps in a futex wait (wchan), twice 100 ms apart
 *     in the same system call with the same arguments;
 *  4. the futex word (the call's first argument, /proc/PID/syscall) lies
 *     in the emulator's own image: a mapping of that executable, or the
 *     nameless mapping right after its last one (its .bss). Guest memory
 *     is never there, so no lock of the program can match.
 * Anything short of that is not proven, and the caller counts the child
 * as hung. */
#ifndef RS_TESTS_EMULATOR_STUCK_H
#define RS_TESTS_EMULATOR_STUCK_H

#ifndef _GNU_SOURCE
#  define _GNU_SOURCE
#endif
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "on_valgrind.h"

/* Reads /proc/<pid>/<what> (one line at most) into buf; 0 when it could. */
static inline int rs_proc_line(pid_t pid,
                               const char* what,
                               char* buf,
                               size_t len) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, what);
  FILE* f = fopen(path, "r");
  if (f == NULL)
    return -1;
  char* got = fgets(buf, (int)len, f);
  fclose(f);
  if (got == NULL)
    return -1;
  buf[strcspn(buf, "\n")] = '\0';
  return 0;
}

/* Whether addr lies in the image of the executable `exe` as /proc/<pid>/maps
 * shows it: in one of its mappings, or in the nameless mapping that starts
 * where its last one ends. Writes the offset from the image's start. */
static inline int rs_in_image(pid_t pid,
                              const char* exe,
                              uint64_t addr,
                              uint64_t* offset) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
  FILE* f = fopen(path, "r");
  if (f == NULL)
    return 0;
  uint64_t base = 0, image_end = 0;
  int found = 0, seen = 0;
  char line[512];
  while (!found && fgets(line, sizeof line, f) != NULL) {
    uint64_t lo = 0, hi = 0;
    int name_at = 0;
    if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %*s %*s %*s %*s %n", &lo, &hi,
               &name_at) < 2 ||
        name_at == 0)
      continue;
    char* name = line + name_at;
    name[strcspn(name, "\n")] = '\0';
    if (strcmp(name, exe) == 0) {
      if (!seen)
        base = lo;
      seen = 1;
      image_end = hi;
      found = addr >= lo && addr < hi;
    } else if (seen && name[0] == '\0' && lo == image_end) {
      found = addr >= lo && addr < hi; /* the image's .bss */
    }
  }
  fclose(f);
  if (found)
    *offset = addr - base;
  return found;
}

/* Whether pid runs under an emulator: its host executable is not the one
 * this process reports for itself. Writes the emulator's path into exe. */
static inline int rs_child_emulated(pid_t pid, char* exe, size_t len) {
  char self[512], path[64];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  snprintf(path, sizeof path, "/proc/%d/exe", (int)pid);
  ssize_t m = readlink(path, exe, len - 1);
  if (n <= 0 || m <= 0)
    return 0;
  self[n] = exe[m] = '\0';
  return strcmp(self, exe) != 0;
}

/* How far pid (a child that did not finish) goes in the proof at the top
 * of this file: RS_STUCK_NOT_EMULATED, RS_STUCK_NOT_IN_FUTEX (emulated, but
 * not seen in one futex wait), RS_STUCK_IN_PROGRAM (a futex wait on a word
 * outside the emulator's image: the program's own memory) or
 * RS_STUCK_IN_EMULATOR (proven; what was seen is written to why). */
enum {
  RS_STUCK_NOT_EMULATED,
  RS_STUCK_NOT_IN_FUTEX,
  RS_STUCK_IN_PROGRAM,
  RS_STUCK_IN_EMULATOR
};

static inline int rs_stuck_stage(pid_t pid, char* why, size_t len) {
  char exe[512];
  if (!rs_on_emulator() || !rs_child_emulated(pid, exe, sizeof exe))
    return RS_STUCK_NOT_EMULATED;
  char wchan[128], call[256], again[256];
  if (rs_proc_line(pid, "wchan", wchan, sizeof wchan) != 0 ||
      strstr(wchan, "futex") == NULL ||
      rs_proc_line(pid, "syscall", call, sizeof call) != 0)
    return RS_STUCK_NOT_IN_FUTEX;
  struct timespec pause = {0, 100 * 1000 * 1000};
  nanosleep(&pause, NULL);
  long nr = 0;
  uint64_t word = 0;
  if (rs_proc_line(pid, "syscall", again, sizeof again) != 0 ||
      strcmp(call, again) != 0 || sscanf(call, "%ld %" SCNx64, &nr, &word) != 2)
    return RS_STUCK_NOT_IN_FUTEX;
  uint64_t offset = 0;
  if (!rs_in_image(pid, exe, word, &offset))
    return RS_STUCK_IN_PROGRAM;
  snprintf(why, len, "futex wait on %s+0x%" PRIx64 " (%s)", exe, offset, wchan);
  return RS_STUCK_IN_EMULATOR;
}

/* 1 when pid is proven stuck on one of the emulator's own locks. */
static inline int rs_stuck_in_emulator(pid_t pid, char* why, size_t len) {
  return rs_stuck_stage(pid, why, len) == RS_STUCK_IN_EMULATOR;
}

#endif
