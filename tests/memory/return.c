/* SPDX-License-Identifier: MIT */
/* Giving memory back: 1 GiB of small objects allocated across threads and
 * freed, then RSS is read from /proc/self/statm after malloc_trim(0)
 * ("trim") or after light allocation activity for twice the decay time,
 * or longer on a busy machine, up to a deadline ("decay"). "scattered-trim" and
 * "scattered-decay" keep one object in 8 alive, so that every span stays in use
 * and only the free system pages inside spans can go back. Also checks
 * rsmalloc_stats_json's in-use figure
 * ("stats") and calloc ("calloc"). */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rsmalloc.h"

#define THREADS 4
#define PER_THREAD (256L << 20) /* 1 GiB in all */

static void** objects[THREADS];
static long counts[THREADS];

static long rss_bytes(void) {
  long pages = 0, resident = 0;
  FILE* f = fopen("/proc/self/statm", "r");
  if (f == NULL || fscanf(f, "%ld %ld", &pages, &resident) != 2)
    return -1;
  fclose(f);
  return resident * sysconf(_SC_PAGESIZE);
}

static void* allocate(void* arg) {
  long t = (long)arg;
  unsigned seed = (unsigned)t + 1;
  long n = 0, total = 0;
  objects[t] = malloc(sizeof(void*) * (PER_THREAD / 16));
  while (total < PER_THREAD) {
    seed = seed * 1103515245u + 12345u;
    size_t size = 16 + (seed >> 16) % 2000;
    char* p = malloc(size);
    if (p == NULL)
      return (void*)1;
    memset(p, (int)t, size);
    objects[t][n++] = p;
    total += (long)size;
  }
  counts[t] = n;
  return NULL;
}

/* Frees another thread's objects: remote frees, like a server's. */
static void* release(void* arg) {
  long t = (long)arg;
  for (long i = 0; i < counts[t]; i++)
    free(objects[t][i]);
  free(objects[t]);
  return NULL;
}

static int run(void* (*fn)(void*), int shift) {
  pthread_t threads[THREADS];
  void* result;
  int failed = 0;
  for (long t = 0; t < THREADS; t++)
    pthread_create(&threads[t], NULL, fn, (void*)((t + shift) % THREADS));
  for (int t = 0; t < THREADS; t++) {
    pthread_join(threads[t], &result);
    failed |= result != NULL;
  }
  return failed;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
}

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* How long the decay checks may wait: the decay runs on slow paths of
 * this program, which a busy machine (make -j2 check runs other tests)
 * can delay well past the decay time. Memory that never goes back still
 * fails, at this deadline. */
#define DECAY_DEADLINE_MS 20000

/* Parses "key": number out of the JSON text. */
static long json_number(const char* json, const char* key) {
  char pattern[64];
  snprintf(pattern, sizeof pattern, "\"%s\": ", key);
  const char* at = strstr(json, pattern);
  return at ? atol(at + strlen(pattern)) : -1;
}

static int stats_check(void) {
  static char before[65536], after[65536];

  enum { N = 20000 };

  static void* held[N];
  size_t need = rsmalloc_stats_json(before, sizeof before);
  if (need >= sizeof before)
    return fprintf(stderr, "JSON cut\n"), 1;
  long usable = 0;
  for (int i = 0; i < N; i++) {
    held[i] = malloc(16 + (size_t)(i * 37) % 3000);
    usable += (long)malloc_usable_size(held[i]);
  }
  rsmalloc_stats_json(after, sizeof after);
  long delta =
      json_number(after, "in_use_bytes") - json_number(before, "in_use_bytes");
  /* Objects sitting in CPU caches are not in use: a page per class. */
  long slack = 96L * 8192;
  printf("held %ld bytes, in_use grew by %ld\n", usable, delta);
  FILE* f =
      fopen(getenv("RS_JSON_OUT") ? getenv("RS_JSON_OUT") : "/dev/null", "w");
  if (f) {
    fputs(after, f);
    fclose(f);
  }
  for (int i = 0; i < N; i++)
    free(held[i]);
  return delta < usable - slack || delta > usable + slack;
}

/* The same for small objects of a page or more (4 KiB, 64 KiB): 200 of
 * them from fresh spans grow RSS by much less than their size; freed dirty
 * and taken again, they read as zeros. */
static int calloc_small_check(size_t size) {
  enum { N = 200 };

  static unsigned char* blocks[N];
  malloc_trim(0);
  long before = rss_bytes();
  for (int i = 0; i < N; i++) {
    blocks[i] = calloc(1, size);
    if (blocks[i] == NULL)
      return fprintf(stderr, "calloc failed\n"), 1;
  }
  long grew = rss_bytes() - before;
  int bad = 0;
  for (int i = 0; i < N; i++) {
    for (size_t k = 0; k < size; k += 512)
      bad |= blocks[i][k];
    memset(blocks[i], 0xee, size);
  }
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < N; i++)
      free(blocks[i]);
    for (int i = 0; i < N; i++) {
      blocks[i] = calloc(1, size);
      for (size_t k = 0; blocks[i] != NULL && k < size; k++)
        bad |= blocks[i][k];
      if (blocks[i] != NULL)
        memset(blocks[i], 0xee, size);
    }
  }
  for (int i = 0; i < N; i++)
    free(blocks[i]);
  printf("calloc of %d blocks of %zu KiB grew RSS by %ld KiB%s\n", N,
         size >> 10, grew >> 10, bad ? "; NOT ZEROED" : "");
  return bad != 0 || grew > (long)(N * size / 4);
}

/* calloc of memory just returned to the OS (or fresh from it) skips the
 * memset: RSS does not grow by the block's size. Memory freed dirty is
 * still zeroed. */
static int calloc_check(void) {
  const size_t n = 3 << 20; /* from the page heap: under the map threshold */
  malloc_trim(0);
  long before = rss_bytes();
  unsigned char* p = calloc(1, n);
  if (p == NULL)
    return fprintf(stderr, "calloc failed\n"), 1;
  long grew = rss_bytes() - before;
  int bad = 0;
  for (size_t i = 0; i < n; i += 512)
    bad |= p[i];
  memset(p, 0xee, n);
  free(p);
  unsigned char* q = calloc(1, n); /* most likely p's dirty pages again */
  for (size_t i = 0; q != NULL && i < n; i++)
    bad |= q[i];
  free(q);
  printf("calloc of %zu KiB after a trim grew RSS by %ld KiB%s\n", n >> 10,
         grew >> 10, bad ? "; NOT ZEROED" : "");
  return bad != 0 || q == NULL || grew > (long)(n / 4) ||
         calloc_small_check(4096) || calloc_small_check(64 << 10);
}

/* Light activity for twice the decay time that reaches a slow path: a few
 * small and one mid-size block every 20 ms. */
static void light_activity(long decay) {
  for (long waited = 0; waited < 2 * decay; waited += 20) {
    free(malloc(64));
    free(malloc(4000));
    free(malloc(300000));
    sleep_ms(20);
  }
}

/* 64 MiB of 4000-byte blocks (32 KiB spans of 8), all but every 8th freed:
 * no span empties, yet 7 pages in 8 hold only free objects. */
static int scattered_check(const char* mode, long decay) {
  enum { N = (64 << 20) / 4000 };

  static char* blocks[N];
  long base = rss_bytes();
  for (int i = 0; i < N; i++) {
    blocks[i] = malloc(4000);
    if (blocks[i] == NULL)
      return fprintf(stderr, "out of memory\n"), 1;
    memset(blocks[i], i & 0xff, 4000);
  }
  long peak = rss_bytes() - base;
  for (int i = 0; i < N; i++) {
    if (i % 8 != 0)
      free(blocks[i]);
  }
  long after_free = rss_bytes() - base;
  long waited = 0;
  if (strcmp(mode, "scattered-trim") == 0) {
    malloc_trim(0);
  } else {
    /* A decay pass looks at 2048 spans at most (these are 2100): two
     * passes are needed. Checks after each decay time, until the
     * deadline; `waited` is wall time. */
    long start = now_ms();
    while (waited < DECAY_DEADLINE_MS && rss_bytes() - base > peak / 4) {
      light_activity(decay / 2);
      waited = now_ms() - start;
    }
  }
  long end = rss_bytes() - base;
  int bad = 0;
  for (int i = 0; i < N; i += 8) {
    bad |=
        blocks[i][0] != (char)(i & 0xff) || blocks[i][3999] != (char)(i & 0xff);
    free(blocks[i]);
  }
  double percent = 100.0 * (double)end / (double)peak;
  printf(
      "%s: heap peak %ld MiB, after free %ld MiB, %ld MiB after %ld ms "
      "(%.1f%% of peak)%s\n",
      mode, peak >> 20, after_free >> 20, end >> 20, waited, percent,
      bad ? "; KEPT BLOCKS CHANGED" : "");
  return bad || percent > 25.0;
}

/* A burst and then idle: 1 GiB of 256-byte objects on one thread, freed
 * in 8 strided passes (so spans empty only in the last pass, within a
 * fraction of the decay time, as after a shuffled free), then no call at
 * all for a second. Nothing can return memory after the frees: it must go
 * back while they come. RSS then at most a quarter of the peak. */
static int idle_check(void) {
  enum { SIZE = 256, STRIDE = 8 };

  long n = (1L << 30) / SIZE;
  char** p = malloc(sizeof(char*) * (size_t)n);
  if (p == NULL)
    return fprintf(stderr, "out of memory\n"), 1;
  for (long i = 0; i < n; i++) {
    p[i] = malloc(SIZE);
    if (p[i] == NULL)
      return fprintf(stderr, "out of memory\n"), 1;
    memset(p[i], 1, SIZE);
  }
  long peak = rss_bytes();
  long start = now_ms();
  for (long s = 0; s < STRIDE; s++) {
    for (long i = s; i < n; i += STRIDE)
      free(p[i]);
  }
  long took = now_ms() - start;
  free(p);
  sleep_ms(1000);
  long end = rss_bytes();
  double percent = 100.0 * (double)end / (double)peak;
  printf(
      "idle: peak %ld MiB, frees took %ld ms, %ld MiB idle (%.1f%% of peak)\n",
      peak >> 20, took, end >> 20, percent);
  return percent <= 25.0 ? 0 : 1;
}

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "trim";
  if (strcmp(mode, "idle") == 0)
    return idle_check();
  if (strcmp(mode, "stats") == 0)
    return stats_check();
  if (strcmp(mode, "calloc") == 0)
    return calloc_check();
  long decay =
      getenv("RSMALLOC_DECAY_MS") ? atol(getenv("RSMALLOC_DECAY_MS")) : 250;
  if (strncmp(mode, "scattered", 9) == 0)
    return scattered_check(mode, decay);
  if (run(allocate, 0) != 0)
    return fprintf(stderr, "out of memory\n"), 1;
  long peak = rss_bytes();
  if (run(release, 1) != 0)
    return 1;
  long after_free = rss_bytes();
  long end, waited = 0;
  double limit = strcmp(mode, "trim") == 0 ? 5.0 : 10.0;
  if (strcmp(mode, "trim") == 0) {
    malloc_trim(0);
    end = rss_bytes();
  } else {
    /* Twice the decay time, then on (checking after each decay time)
     * until RSS is down or the deadline passes. */
    long start = now_ms();
    light_activity(decay);
    end = rss_bytes();
    waited = now_ms() - start;
    while (100.0 * (double)end / (double)peak >= limit &&
           waited < DECAY_DEADLINE_MS) {
      light_activity(decay / 2);
      end = rss_bytes();
      waited = now_ms() - start;
    }
  }
  double percent = 100.0 * (double)end / (double)peak;
  printf(
      "%s: peak %ld MiB, after free %ld MiB, at the end %ld MiB (%.1f%% of "
      "peak) after %ld ms\n",
      mode, peak >> 20, after_free >> 20, end >> 20, percent, waited);
  return percent < limit ? 0 : 1;
}
