/* SPDX-License-Identifier: MIT */
/* startup_prog: allocations between marker system calls, for
 * tests/startup.sh, which runs it preloaded under strace. Not linked with
 * rsmalloc. The markers are close() of fds that cannot exist:
 *
 *   close(-101)  one malloc(32) and its free: the process's first
 *   close(-102)  12 more calls (6 malloc(48) and free): still before the
 *                caches start (the 16th call of the slow paths)
 *   close(-103)  200 more: the caches have started
 *   close(-104) */
#include <stdlib.h>
#include <unistd.h>

static void escape(void* p) {
  __asm__ volatile("" : : "r"(p) : "memory");
}

static int pairs(int n, size_t size) {
  for (int i = 0; i < n; i++) {
    void* p = malloc(size);
    if (p == NULL)
      return 1;
    escape(p);
    free(p);
  }
  return 0;
}

int main(void) {
  int bad = 0;
  close(-101);
  bad |= pairs(1, 32);
  close(-102);
  bad |= pairs(6, 48);
  close(-103);
  bad |= pairs(100, 64);
  close(-104);
  return bad;
}
