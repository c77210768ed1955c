/* SPDX-License-Identifier: MIT */
/* Run by tests/settings-effects.sh under RSMALLOC_* settings; prints what
 * the shell test judges:
 *   cache  fills the CPU cache with many classes, prints
 *          rsmalloc_stats_json()
 *   thp [first|last] [trim]
 *          touches 64 MiB of small objects, prints the smaps fields of the
 *          mapping that holds the middle one, or the first or last
 *          ("mapping ...", "AnonHugePages N", "THPeligible N"); with trim,
 *          first frees all but one object in 64 and calls malloc_trim(0)
 *          (the last one probed is then the last survivor)
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
  /* Read smaps whole with raw calls: nothing allocates meanwhile. */
  static char buf[4 << 20];
  int fd = open("/proc/self/smaps", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 1;
  size_t len = 0;
  for (;;) {
    ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
    if (n <= 0)
      break;
    len += (size_t)n;
  }
  close(fd);
  buf[len] = '\0';
  int in_mapping = 0;
  for (char* line = strtok(buf, "\n"); line != NULL;
       line = strtok(NULL, "\n")) {
    unsigned long long lo, hi;
    char dash;
    if (sscanf(line, "%llx%c%llx ", &lo, &dash, &hi) == 3 && dash == '-' &&
        strchr(line, ':') != NULL && line[0] != ' ' &&
        strncmp(line, "THPeligible", 11) != 0) {
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
  }
  for (int i = 0; i < kCount; i++)
    free(p[i]);
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
  if (argc == 4 && strcmp(argv[1], "hold") == 0)
    return phase_hold(strtoull(argv[2], NULL, 10), strtoull(argv[3], NULL, 10));
  fprintf(stderr,
          "usage: settings_prog cache | thp [first|last] [trim] | hold SMALL "
          "LARGE\n");
  return 2;
}
