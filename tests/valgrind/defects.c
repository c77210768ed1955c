/* SPDX-License-Identifier: MIT */
/* A program with one deliberate memory defect per mode, linked against
 * rsmalloc, for memcheck to find (tests/valgrind/memcheck.sh). Mode
 * "clean" exercises every entry point and must give zero errors. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rsmalloc.h"

/* C23's sized free; glibc 2.36's headers do not declare it yet. */
void free_sized(void* p, size_t size);

/* Keeps the compiler from dropping reads and writes. */
static volatile int sink;
/* Hides an index from the compiler's bounds warnings. */
static volatile int past_the_end = 24;

static void* leaked;

/* Every allocation function once, all freed: memcheck must stay silent. */
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
  free(a);
  free(b);
  free(z);
  free(p);
  return errors;
}

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "clean";
  int errors = clean();
  if (strcmp(mode, "leak") == 0) {
    leaked = malloc(77);
    leaked = NULL; /* the only pointer is gone: definitely lost */
  } else if (strcmp(mode, "use-after-free") == 0) {
    char* q = malloc(40);
    q[5] = 7;
    free(q);
    sink = q[5];
  } else if (strcmp(mode, "reuse-after-free") == 0) {
    /* The freed block waits in rsmalloc's quarantine: the blocks of its
     * size allocated next are others, so the stale read is still seen. */
    char* q = malloc(40);
    q[5] = 7;
    free(q);
    char* r[64];
    for (int i = 0; i < 64; i++) {
      r[i] = malloc(40);
      memset(r[i], 0, 40);
    }
    sink = q[5];
    for (int i = 0; i < 64; i++)
      free(r[i]);
  } else if (strcmp(mode, "overrun") == 0) {
    char* o = malloc(24);
    o[past_the_end] = 1; /* one byte past a 24-byte block, in its class */
    free(o);
  } else if (strcmp(mode, "uninitialised") == 0) {
    char* u = malloc(16);
    if (u[3] == 42)
      sink = 1;
    free(u);
  } else if (strcmp(mode, "double-free") == 0) {
    char* d = malloc(32);
    free(d);
    free(d);
    /* Reported, and not freed again: the heap stays whole. */
    char* e = malloc(32);
    char* f = malloc(32);
    if (e == f)
      errors++;
    free(e);
    free(f);
  } else if (strcmp(mode, "clean") != 0) {
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
  }
  if (errors != 0)
    fprintf(stderr, "defects: %d self-check errors\n", errors);
  return errors != 0;
}
