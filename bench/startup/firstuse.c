/* SPDX-License-Identifier: MIT */
/* firstuse: the smallest programs that use an allocator, for
 * bench/startup-ab (what a preloaded allocator adds to a process's start).
 *
 *   firstuse none      allocates nothing itself
 *   firstuse one       one malloc(32) and its free
 *   firstuse mixed     1000 blocks of 16 B-2 KiB, then frees them
 *   firstuse threads   two threads, each 100 blocks of mixed sizes
 *
 * Built with plain cc by bench/startup-ab; never linked with an allocator. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void escape(void* p) {
  __asm__ volatile("" : : "r"(p) : "memory");
}

static int blocks(int n, unsigned seed) {
  void* live[1000];
  if (n > 1000)
    n = 1000;
  for (int i = 0; i < n; i++) {
    seed = seed * 1103515245u + 12345u;
    size_t size = 16 + (seed >> 16) % 2033;
    live[i] = malloc(size);
    if (live[i] == NULL)
      return 1;
    memset(live[i], i, 8);
    escape(live[i]);
  }
  for (int i = 0; i < n; i++)
    free(live[i]);
  return 0;
}

static void* worker(void* arg) {
  return (void*)(size_t)blocks(100, (unsigned)(size_t)arg);
}

int main(int argc, char** argv) {
  const char* what = argc > 1 ? argv[1] : "one";
  if (strcmp(what, "none") == 0)
    return 0;
  if (strcmp(what, "one") == 0) {
    void* p = malloc(32);
    escape(p);
    free(p);
    return p == NULL;
  }
  if (strcmp(what, "mixed") == 0)
    return blocks(1000, 1);
  if (strcmp(what, "threads") == 0) {
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
      if (pthread_create(&t[i], NULL, worker, (void*)(size_t)(i + 1)) != 0)
        return 1;
    }
    int bad = 0;
    for (int i = 0; i < 2; i++) {
      void* r;
      pthread_join(t[i], &r);
      bad |= r != NULL;
    }
    return bad;
  }
  fprintf(stderr, "firstuse: none, one, mixed or threads\n");
  return 2;
}
