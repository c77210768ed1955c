/* SPDX-License-Identifier: MIT */
/* A program with one deliberate memory defect per mode, linked against
 * rsmalloc, for memcheck to find (tests/valgrind/memcheck.sh). Mode
 * "clean" exercises every allocation function (the C++ operators in
 * defects_cxx.cc) and must give zero errors. A defect mode is DEFECT or
 * DEFECT:KIND, where KIND picks the block: small (the default), large
 * (300 KiB, a span of its own), mapped (40 MiB and 100 bytes, its own
 * mapping) or
 * aligned (memalign(4096, 5000)); "cxx-*" modes are the C++ operators'. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rsmalloc.h"

/* C23's sized frees and the old cfree: glibc 2.36's headers declare none
 * of them; rsmalloc exports all three. */
void free_sized(void* p, size_t size);
void free_aligned_sized(void* p, size_t alignment, size_t size);
void cfree(void* p);

/* The C++ operators' part (defects_cxx.cc). */
int cxx_clean(void);
int cxx_defect(const char* mode);

/* Keeps the compiler from dropping reads and writes. */
static volatile int sink;
/* Hides an index from the compiler's bounds warnings. */
static volatile size_t past_the_end;

static void* volatile leaked;

/* Every C allocation function once, all freed: memcheck must stay silent.
 * Each block must be rsmalloc's (memcheck's replacements did not take
 * over). */
static int clean(void) {
  int errors = 0;
  char* p = malloc(24);
  memset(p, 1, 24);
  if (!rsmalloc_owns(p))
    errors++; /* rsmalloc served it, not memcheck */
  if (malloc_usable_size(p) != 24)
    errors++;
  char* z = calloc(10, 10);
  for (int i = 0; i < 100; i++)
    sink += z[i];
  p = realloc(p, 20); /* shrinks in place */
  p = realloc(p, 100000);
  p = realloc(p, 5 << 20); /* large */
  memset(p, 2, 5 << 20);
  p = reallocarray(p, 10, 3);
  for (int i = 0; i < 30; i++)
    sink += p[i];
  void* a = aligned_alloc(64, 100);
  void* b = NULL;
  if (posix_memalign(&b, 4096, 5000) != 0)
    errors++;
  memset(b, 3, 5000);
  void* big = malloc(3 << 20);
  memset(big, 4, 3 << 20);
  free_sized(big, 3 << 20);
  char* m = memalign(256, 1000);
  memset(m, 5, 1000);
  char* v = valloc(3000);
  memset(v, 6, 3000);
  char* pv = pvalloc(5000); /* rounded up to two pages */
  memset(pv, 7, 8192);
  char* fa = aligned_alloc(4096, 300 << 10);
  memset(fa, 8, 300 << 10);
  char* c = malloc(40);
  memset(c, 9, 40);
  void* all[] = {p, z, a, b, m, v, pv, fa, c};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    if (!rsmalloc_owns(all[i]))
      errors++;
  free_aligned_sized(fa, 4096, 300 << 10);
  cfree(c);
  free(pv);
  free(v);
  free(m);
  free(a);
  free(b);
  free(z);
  free(p);
  return errors + cxx_clean();
}

/* A block of the kind asked for, and its size: `small_n` bytes from
 * malloc for "small". */
static char* block(const char* kind, size_t small_n, size_t* n) {
  if (strcmp(kind, "large") == 0) {
    *n = 300 << 10;
    return malloc(*n);
  }
  if (strcmp(kind, "mapped") == 0) {
    /* Above the 64 MiB map threshold; not a page multiple: an overrun
     * stays mapped. */
    *n = (80 << 20) + 100;
    return malloc(*n);
  }
  if (strcmp(kind, "aligned") == 0) {
    *n = 5000;
    return memalign(4096, *n);
  }
  *n = small_n;
  return strcmp(kind, "small") == 0 ? malloc(small_n) : NULL;
}

/* Allocates a block and drops the only pointer to it. Out of line, and
 * followed by scrub(): no copy of the pointer may stay in a register or a
 * dead stack slot of main, or memcheck calls the block still reachable. */
__attribute__((noinline)) static void lose(const char* kind) {
  size_t n;
  leaked = block(kind, 77, &n);
  leaked = NULL; /* the only pointer is gone: definitely lost */
}

/* Overwrites the stack below main's frame that lose() used. */
__attribute__((noinline)) static void scrub(void) {
  volatile char junk[16384];
  for (size_t i = 0; i < sizeof junk; i++)
    junk[i] = 0;
}

/* One defect on a block of `kind`; 2 for an unknown mode. */
static int defect(const char* what, const char* kind) {
  size_t n;
  if (strcmp(what, "leak") == 0) {
    lose(kind);
    scrub();
  } else if (strcmp(what, "use-after-free") == 0) {
    char* q = block(kind, 40, &n);
    q[5] = 7;
    free(q);
    sink = q[5];
  } else if (strcmp(what, "reuse-after-free") == 0) {
    /* The freed block waits in rsmalloc's quarantine: the blocks of its
     * size allocated next are others, so the stale read is still seen. */
    char* q = block(kind, 40, &n);
    q[5] = 7;
    free(q);
    char* r[64];
    for (int i = 0; i < 64; i++) {
      r[i] = block(kind, 40, &n);
      memset(r[i], 0, n);
    }
    sink = q[5];
    for (int i = 0; i < 64; i++)
      free(r[i]);
  } else if (strcmp(what, "overrun") == 0) {
    char* o = block(kind, 24, &n);
    past_the_end = n;
    o[past_the_end] = 1; /* one byte past the block */
    free(o);
  } else if (strcmp(what, "uninitialised") == 0) {
    char* u = block(kind, 16, &n);
    if (u[n - 3] == 42)
      sink = 1;
    free(u);
  } else if (strcmp(what, "double-free") == 0) {
    char* d = block(kind, 32, &n);
    free(d);
    free(d);
    /* Reported, and not freed again: the heap stays whole. */
    char* e = block(kind, 32, &n);
    char* f = block(kind, 32, &n);
    int same = e == f;
    free(e);
    free(f);
    return same;
  } else {
    return 2;
  }
  return 0;
}

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "clean";
  int errors = clean();
  char what[64];
  snprintf(what, sizeof what, "%s", mode);
  char* colon = strchr(what, ':');
  const char* kind = "small";
  if (colon != NULL) {
    *colon = '\0';
    kind = colon + 1;
  }
  size_t n;
  int rc = 0;
  if (strncmp(mode, "cxx-", 4) == 0) {
    rc = cxx_defect(mode);
  } else if (strcmp(mode, "clean") != 0) {
    char* probe = block(kind, 1, &n);
    if (probe == NULL) {
      rc = 2;
    } else {
      free(probe);
      rc = defect(what, kind);
    }
  }
  if (rc == 2) {
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
  }
  errors += rc;
  if (errors != 0)
    fprintf(stderr, "defects: %d self-check errors\n", errors);
  return errors != 0;
}
