/* SPDX-License-Identifier: MIT */
/* Run by ulimit.sh under `ulimit -v` (RLIMIT_AS), one phase per process:
 * start-up and normal allocation, impossible requests, and exhausting the
 * address space with blocks of one size; malloc must then return NULL with
 * ENOMEM (never abort), and after freeing, allocation must work again. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/mman.h>
#include <sys/resource.h>

#include "rsmalloc.h"

#define KiB ((size_t)1024)
#define MiB (1024 * KiB)

static int failures;

/* Reports through write(2): stdio may need memory there is none of. */
static void say(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n > 0 &&
      write(1, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1) < 0) {
  }
}

#define CHECK(cond, ...)         \
  do {                           \
    if (!(cond)) {               \
      say("FAIL: " __VA_ARGS__); \
      say("\n");                 \
      failures++;                \
    }                            \
  } while (0)

static size_t opaque(size_t n) {
  volatile size_t v = n;
  return v;
}

/* The pointer table lives outside the heap and is mapped before the
 * address space runs out. */
enum { TABLE = 200000 };

static void** table;

/* Allocates `size` blocks until malloc fails; checks the failure, frees
 * everything. Returns how many blocks there were. */
static size_t exhaust(size_t size, const char* what) {
  size_t n = 0;
  int err = 0;
  while (n < TABLE) {
    errno = 0;
    void* q = malloc(opaque(size));
    if (!q) {
      err = errno;
      break;
    }
    /* Touch both ends: the memory is really usable. */
    ((volatile char*)q)[0] = 1;
    ((volatile char*)q)[size - 1] = 2;
    table[n++] = q;
  }
  CHECK(n < TABLE, "%s: %zu blocks and still no failure", what, n);
  CHECK(n > 0, "%s: not even one block", what);
  CHECK(err == ENOMEM, "%s: malloc returned NULL with errno %d, not ENOMEM",
        what, err);
  /* Further failures are clean too; a small request may or may not work,
   * but never crashes. */
  for (int i = 0; i < 3; i++) {
    errno = 0;
    void* q = malloc(opaque(size));
    if (q)
      free(q);
    else
      CHECK(errno == ENOMEM, "%s: repeated failure errno %d", what, errno);
  }
  free(malloc(opaque(32)));
  for (size_t i = 0; i < n; i++) {
    CHECK(((volatile char*)table[i])[0] == 1, "%s: block %zu damaged", what, i);
    free(table[i]);
  }
  say("%s: %zu blocks of %zu bytes before ENOMEM\n", what, n, size);
  return n;
}

/* After the blocks are freed, `size` can be allocated again. */
static void works_again(size_t size, const char* what) {
  errno = 0;
  void* again = malloc(opaque(size));
  CHECK(again != NULL,
        "%s: malloc(%zu) fails after everything was freed "
        "(errno %d)",
        what, size, errno);
  if (again) {
    memset(again, 3, size);
    free(again);
  }
}

static void phase_start(void) {
  static void* keep[1000];
  for (int i = 0; i < 1000; i++) {
    keep[i] = malloc(opaque((size_t)(i % 100) * 40 + 1));
    CHECK(keep[i] != NULL, "start: malloc #%d failed", i);
  }
  int active = strcmp(rsmalloc_cache_mode(), "disabled") != 0;
  CHECK(rsmalloc_owns(keep[0]) == active, "rsmalloc is not the allocator");
  void* mid = malloc(opaque(4 * MiB));
  CHECK(mid != NULL, "start: malloc(4 MiB) failed");
  if (mid)
    memset(mid, 1, 4 * MiB);
  void* big = malloc(opaque(100 * MiB));
  CHECK(big != NULL, "start: malloc(100 MiB) failed");
  if (big)
    memset(big, 1, 100 * MiB);
  free(big);
  free(mid);
  for (int i = 0; i < 1000; i++)
    free(keep[i]);
}

/* Requests larger than the limit: NULL and ENOMEM from each entry point. */
static void phase_impossible(void) {
  errno = 0;
  void* huge = malloc(opaque(1024 * MiB));
  CHECK(huge == NULL && errno == ENOMEM, "malloc(1 GiB): %p errno %d", huge,
        errno);
  errno = 0;
  huge = calloc(opaque(1024), MiB);
  CHECK(huge == NULL && errno == ENOMEM, "calloc(1 GiB): %p errno %d", huge,
        errno);
  errno = 0;
  huge = aligned_alloc(opaque(2 * MiB), 1024 * MiB);
  CHECK(huge == NULL && errno == ENOMEM, "aligned_alloc(1 GiB): %p errno %d",
        huge, errno);
  void* pm = (void*)(uintptr_t)0x50;
  int rc = posix_memalign(&pm, opaque(4096), 1024 * MiB);
  CHECK(rc == ENOMEM && pm == (void*)(uintptr_t)0x50,
        "posix_memalign(1 GiB): %d", rc);
  char* r = malloc(opaque(1000));
  CHECK(r != NULL, "malloc(1000) failed");
  if (r) {
    memset(r, 7, 1000);
    errno = 0;
    void* g = realloc(r, opaque(1024 * MiB));
    if (g) {
      CHECK(0, "realloc(1 GiB) worked");
      free(g);
    } else {
      CHECK(errno == ENOMEM, "realloc(1 GiB): errno %d", errno);
      CHECK(r[0] == 7 && r[999] == 7, "failed realloc damaged the block");
      free(r);
    }
  }
  void* ok = malloc(opaque(64 * MiB));
  CHECK(ok != NULL, "malloc(64 MiB) fails after the failed 1 GiB requests");
  free(ok);
}

int main(int argc, char** argv) {
  if (argc < 2) {
    say("usage: limit_prog --probe | start | impossible | SIZE [THEN]\n");
    return 99;
  }
  if (strcmp(argv[1], "--probe") == 0)
    return 0;

  struct rlimit rl;
  getrlimit(RLIMIT_AS, &rl);
  if (rl.rlim_cur == RLIM_INFINITY) {
    say("FAIL: run me under ulimit -v\n");
    return 99;
  }
  table = mmap(NULL, TABLE * sizeof(void*), PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (table == MAP_FAILED) {
    say("FAIL: cannot map the pointer table\n");
    return 99;
  }
  say("RLIMIT_AS %llu MiB, rsmalloc %s, cache mode %s, phase %s\n",
      (unsigned long long)(rl.rlim_cur / MiB), rsmalloc_version(),
      rsmalloc_cache_mode(), argv[1]);

  if (strcmp(argv[1], "start") == 0) {
    phase_start();
  } else if (strcmp(argv[1], "impossible") == 0) {
    phase_impossible();
  } else {
    /* SIZE [THEN]: exhaust with SIZE-byte blocks, free them, then SIZE
     * (or THEN, a different size) must be allocatable again. */
    size_t size = strtoull(argv[1], NULL, 0);
    size_t then = argc > 2 ? strtoull(argv[2], NULL, 0) : size;
    if (size == 0 || then == 0) {
      say("bad size\n");
      return 99;
    }
    exhaust(size, argv[1]);
    works_again(then, argc > 2 ? argv[2] : argv[1]);
    /* A second round behaves the same. */
    exhaust(size, argv[1]);
    works_again(then, argc > 2 ? argv[2] : argv[1]);
  }
  say("%s\n", failures ? "FAILED" : "OK");
  return failures ? 1 : 0;
}
