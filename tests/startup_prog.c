/* SPDX-License-Identifier: MIT */
/* startup_prog: allocations between marker system calls, for
 * tests/startup.sh, which runs it preloaded under strace. Not linked with
 * rsmalloc. The markers are close() of fds that cannot exist:
 *
 *   close(-101)  one malloc(32) and its free: the process's first
 *   close(-102)  12 more calls (6 malloc(48) and free): still before the
 *                caches start (the 16th call of the slow paths)
 *   close(-103)  200 more: the caches have started
 *   close(-104)
 *
 * startup_prog faults: prints the minor page faults that the process's
 * first malloc(32) and its free take (getrusage around them), for the
 * bound in tests/startup.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/resource.h>

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

static long minflt(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_minflt;
}

/* The stack the allocator's first call may use, faulted in beforehand
 * (its faults are not the allocator's). */
static __attribute__((noinline)) void touch_stack(void) {
  volatile char stack[64 * 1024];
  memset((char*)stack, 1, sizeof(stack));
}

static int first_faults(void) {
  touch_stack();
  /* libc's code the first malloc runs, faulted in beforehand: which of its
   * pages an earlier fault mapped around varies with the load address. */
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  long before = minflt();
  void* p = malloc(32);
  escape(p);
  free(p);
  long after = minflt();
  printf("%ld\n", after - before);
  return p == NULL;
}

int main(int argc, char** argv) {
  int bad = 0;
  if (argc > 1 && strcmp(argv[1], "faults") == 0)
    return first_faults();
  close(-101);
  bad |= pairs(1, 32);
  close(-102);
  bad |= pairs(6, 48);
  close(-103);
  bad |= pairs(100, 64);
  close(-104);
  return bad;
}
