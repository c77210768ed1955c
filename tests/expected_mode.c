/* SPDX-License-Identifier: MIT */
/* Prints the cache mode rsmalloc must report in this environment, worked
 * out without asking the library (this program runs on glibc's malloc):
 * "disabled" (RSMALLOC_DISABLE=1), "fallback: RSMALLOC_RSEQ=0", "fallback"
 * (any reason) when rseq cannot be used, else "rseq/mm_cid" when the
 * kernel's rseq feature size covers mm_cid, or "rseq/cpu_id". The
 * evidence goes to stderr. Shared by the shell tests (tests/lib.sh). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/membarrier.h>
#include <sys/auxv.h>
#include <sys/syscall.h>

#include "on_valgrind.h"

/* glibc 2.35 and later: the size of the rseq area glibc registered for
 * every thread, 0 when it did not (tunable off, kernel without rseq,
 * valgrind). Weak: absent on older glibc. */
extern const unsigned int __rseq_size __attribute__((weak));

#ifndef AT_RSEQ_FEATURE_SIZE
#  define AT_RSEQ_FEATURE_SIZE 27
#endif

/* mm_cid is the u32 at offset 24 of struct rseq. */
#define MM_CID_END 28

static int env_is(const char* name, const char* value) {
  const char* v = getenv(name);
  return v != NULL && strcmp(v, value) == 0;
}

/* 1 when GLIBC_TUNABLES sets glibc.pthread.rseq=0 (asked on x86-64 and aarch64
 * only). */
__attribute__((unused)) static int rseq_tunable_off(void) {
  const char* t = getenv("GLIBC_TUNABLES");
  if (t == NULL)
    return 0;
  const char* key = "glibc.pthread.rseq=";
  for (const char* p = strstr(t, key); p != NULL; p = strstr(p + 1, key)) {
    if ((p == t || p[-1] == ':') && p[strlen(key)] == '0')
      return 1;
  }
  return 0;
}

static const char* expected(void) {
  if (env_is("RSMALLOC_DISABLE", "1"))
    return "disabled";
  if (env_is("RSMALLOC_RSEQ", "0"))
    return "fallback: RSMALLOC_RSEQ=0";
#if !defined(__x86_64__) && !defined(__aarch64__)
  fprintf(stderr, "expected_mode: no rseq sections for this architecture\n");
  return "fallback";
#else
  if (rs_on_valgrind()) {
    fprintf(stderr, "expected_mode: under valgrind\n");
    return "fallback";
  }
  if (rseq_tunable_off()) {
    fprintf(stderr, "expected_mode: GLIBC_TUNABLES turns rseq off\n");
    return "fallback";
  }
  if (&__rseq_size == NULL || __rseq_size == 0) {
    fprintf(stderr, "expected_mode: glibc registered no rseq area\n");
    return "fallback";
  }
  long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
  if (cmds < 0 || (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ) == 0) {
    fprintf(stderr, "expected_mode: membarrier query gives %ld\n", cmds);
    return "fallback";
  }
  int fd = open("/sys/devices/system/cpu/possible", O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    fprintf(stderr, "expected_mode: no /sys/devices/system/cpu/possible\n");
    return "fallback";
  }
  close(fd);
  unsigned long feature = getauxval(AT_RSEQ_FEATURE_SIZE);
  fprintf(stderr,
          "expected_mode: __rseq_size %u, AT_RSEQ_FEATURE_SIZE %lu, "
          "membarrier commands %#lx\n",
          __rseq_size, feature, (unsigned long)cmds);
  /* DESIGN.md: the usable feature size is min(32, AT_RSEQ_FEATURE_SIZE)
   * (glibc 2.36 registers a 32-byte area). */
  if (feature >= MM_CID_END)
    return "rseq/mm_cid";
  return "rseq/cpu_id";
#endif
}

int main(void) {
  printf("%s\n", expected());
  return 0;
}
