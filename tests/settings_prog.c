/* SPDX-License-Identifier: MIT */
/* Run by tests/settings-effects.sh under RSMALLOC_* settings; prints what
 * the shell test judges:
 *   cache  fills the CPU cache with many classes, prints
 *          rsmalloc_stats_json()
 *   thp [first|last] [trim]
 *          touches 64 MiB of small objects, prints the smaps fields of the
 *          mapping that holds the middle one, or the first or last
 *          ("mapping ...", "AnonHugePages N", "THPeligible N", "nohuge N":
 *          1 when VmFlags has nh); with trim, first frees all but one
 *          object in 64 and calls malloc_trim(0) (the last one probed is
 *          then the last survivor)
 *   small  one malloc(32), then every anonymous mapping of 2 MiB or more
 *          (where a huge page fits), and the block's: "anon KIB nohuge N
 *          holds_block N"
 *   hold   keeps SMALL bytes in 10000-byte blocks and one LARGE-byte block
 *          live at exit, prints "small_held N", "large_held N", "mode M" */
#define _GNU_SOURCE
#include <fcntl.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rsmalloc.h"

static int phase_cache(void) {
  static const size_t sizes[] = {16, 32, 48, 64, 128, 256, 512, 1024, 2048};

  enum { kObjects = 300 };

  static void* p[kObjects];
  for (int round = 0; round < 3; round++) {
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
      for (int i = 0; i < kObjects; i++) {
        p[i] = malloc(sizes[s]);
        if (p[i] == NULL)
          return 1;
      }
      for (int i = 0; i < kObjects; i++)
        free(p[i]);
    }
  }
  static char json[65536];
  size_t len = rsmalloc_stats_json(json, sizeof json);
  if (len >= sizeof json) {
    printf("stats_json needs %zu bytes\n", len);
    return 1;
  }
  printf("%s\n", json);
  return 0;
}

/* /proc/self/smaps, read whole with raw calls (nothing allocates
 * meanwhile) into a static buffer; NULL when it cannot be read. */
static char* read_smaps(void) {
  static char buf[1 << 20]; /* under 2 MiB: no huge page of its own */
  int fd = open("/proc/self/smaps", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return NULL;
  size_t len = 0;
  for (;;) {
    ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
    if (n <= 0)
      break;
    len += (size_t)n;
  }
  close(fd);
  buf[len] = '\0';
  return buf;
}

/* Whether line starts a mapping ("lo-hi perms offset dev inode [path]");
 * sets *lo, *hi and *anon (no path). */
static int mapping_line(const char* line,
                        unsigned long long* lo,
                        unsigned long long* hi,
                        int* anon) {
  unsigned long long a, b;
  char dash;
  int end = 0;
  if (line[0] == ' ' || strchr(line, ':') == NULL ||
      strncmp(line, "THPeligible", 11) == 0 ||
      sscanf(line, "%llx%c%llx %*s %*s %*s %*s%n", &a, &dash, &b, &end) < 3 ||
      dash != '-' || end == 0)
    return 0;
  *lo = a;
  *hi = b;
  const char* rest = line + end;
  while (*rest == ' ')
    rest++;
  *anon = *rest == '\0';
  return 1;
}

static int phase_thp(const char* at, int trim) {
  enum { kSize = 1024, kCount = 64 * 1024, kKeep = 64 };

  static void* p[kCount];
  for (int i = 0; i < kCount; i++) {
    p[i] = malloc(kSize);
    if (p[i] == NULL)
      return 1;
    memset(p[i], 1, kSize);
  }
  int index = kCount / 2;
  if (strcmp(at, "first") == 0)
    index = 0;
  else if (strcmp(at, "last") == 0)
    index = kCount - kKeep;
  if (trim) {
    for (int i = 0; i < kCount; i++) {
      if (i % kKeep != 0) {
        free(p[i]);
        p[i] = NULL;
      }
    }
    malloc_trim(0);
  }
  uintptr_t probe = (uintptr_t)p[index];
  char* buf = read_smaps();
  if (buf == NULL)
    return 1;
  int in_mapping = 0;
  for (char* line = strtok(buf, "\n"); line != NULL;
       line = strtok(NULL, "\n")) {
    unsigned long long lo, hi;
    int anon;
    if (mapping_line(line, &lo, &hi, &anon)) {
      in_mapping = lo <= probe && probe < hi;
      if (in_mapping)
        printf("mapping %s\nmapping_kib %llu\n", line, (hi - lo) >> 10);
      continue;
    }
    if (in_mapping && (strncmp(line, "AnonHugePages:", 14) == 0 ||
                       strncmp(line, "THPeligible:", 12) == 0)) {
      char key[32];
      unsigned long long v;
      if (sscanf(line, "%31[^:]: %llu", key, &v) == 2)
        printf("%s %llu\n", key, v);
    }
    if (in_mapping && strncmp(line, "VmFlags:", 8) == 0)
      printf("nohuge %d\n", strstr(line, " nh") != NULL);
  }
  for (int i = 0; i < kCount; i++)
    free(p[i]);
  return 0;
}

static int phase_small(void) {
  char* block = malloc(32);
  if (block == NULL)
    return 1;
  block[0] = 1;
  char* buf = read_smaps();
  if (buf == NULL)
    return 1;
  unsigned long long lo = 0, hi = 0;
  int anon = 0, big = 0;
  for (char* line = strtok(buf, "\n"); line != NULL;
       line = strtok(NULL, "\n")) {
    if (mapping_line(line, &lo, &hi, &anon)) {
      // And the block's own, whatever its size: the first heap chunk is
      // made writable a step at a time, a mapping (VMA) of its own.
      big = anon && (hi - lo >= (2ull << 20) ||
                     (lo <= (uintptr_t)block && (uintptr_t)block < hi));
      continue;
    }
    if (big && strncmp(line, "VmFlags:", 8) == 0) {
      printf("anon %llu nohuge %d holds_block %d\n", (hi - lo) >> 10,
             strstr(line, " nh") != NULL,
             lo <= (uintptr_t)block && (uintptr_t)block < hi);
    }
  }
  free(block);
  return 0;
}

static int phase_hold(size_t small, size_t large) {
  enum { kBlock = 10000 };

  size_t n = small / kBlock;
  for (size_t i = 0; i < n; i++) {
    char* p = malloc(kBlock);
    if (p == NULL)
      return 1;
    p[0] = 1; /* left live on purpose: the exit statistics count it */
  }
  char* big = malloc(large);
  if (big == NULL)
    return 1;
  big[0] = 1;
  /* Churn that leaves nothing behind. */
  for (int i = 0; i < 10000; i++)
    free(malloc((size_t)(i % 300) + 1));
  printf("small_held %zu\nlarge_held %zu\nmode %s\n", n * kBlock, large,
         rsmalloc_cache_mode());
  return 0;
}

int main(int argc, char** argv) {
  if (argc >= 2 && strcmp(argv[1], "cache") == 0)
    return phase_cache();
  if (argc >= 2 && strcmp(argv[1], "thp") == 0)
    return phase_thp(argc >= 3 ? argv[2] : "middle",
                     argc >= 4 && strcmp(argv[3], "trim") == 0);
  if (argc >= 2 && strcmp(argv[1], "small") == 0)
    return phase_small();
  if (argc == 4 && strcmp(argv[1], "hold") == 0)
    return phase_hold(strtoull(argv[2], NULL, 10), strtoull(argv[3], NULL, 10));
  fprintf(stderr,
          "usage: settings_prog cache | thp [first|last] [trim] | small | "
          "hold SMALL LARGE\n");
  return 2;
}
