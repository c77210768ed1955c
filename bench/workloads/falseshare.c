/* SPDX-License-Identifier: MIT */
/* falseshare: small objects of different threads written in tight loops
 * (Hoard's cache-thrash and cache-scratch).
 *
 * Active phase: each thread repeatedly allocates a small object (8 B), writes
 * it in a tight loop, and frees it. Passive phase: the main thread allocates
 * one small object per thread back to back, each thread frees the one it was
 * given and then does the same as in the active phase. An allocator that
 * puts two threads' objects in one cache line makes the writes bounce the
 * line between CPUs (false sharing); time grows many-fold.
 *
 * Besides the times, the result line counts per phase the pairs of threads
 * whose first objects share a 64-byte line (active_shared, passive_shared):
 * which of the runs false sharing slowed.
 *
 * Parameters: threads (one per CPU), size (8), rounds per thread and phase
 * (50000 x scale), writes per round (1000). */
#include "common.h"

typedef struct {
  long id, rounds, writes;
  size_t size;
  char* given; /* passive phase: the object the main thread handed over */
  char* first; /* the object of its first round */
  pthread_barrier_t* start;
  char pad[64];
} worker_t;

static void* worker(void* arg) {
  worker_t* w = arg;
  pthread_barrier_wait(w->start);
  if (w->given != NULL)
    free(w->given);
  for (long round = 0; round < w->rounds; round++) {
    volatile char* p = xmalloc(w->size);
    if (round == 0)
      w->first = (char*)p;
    for (long k = 0; k < w->writes; k++) {
      for (size_t j = 0; j < w->size; j++)
        p[j] = (char)(p[j] + 1);
    }
    free((void*)p);
  }
  return NULL;
}

int main(int argc, char** argv) {
  bench_args(argc, argv);
  long threads = arg_threads(0);
  long size = arg_long("size", 8);
  long rounds = arg_scaled("rounds", 50000);
  long writes = arg_long("writes", 1000);
  bench_args_done();
  if (size < 1 || size > 4096)
    die("size must be 1-4096");

  worker_t* w = calloc((size_t)threads, sizeof(worker_t));
  if (w == NULL)
    die("calloc failed");
  pthread_barrier_t start;
  double secs[2];
  long shared[2] = {0, 0};
  for (int phase = 0; phase < 2; phase++) {
    pthread_barrier_init(&start, NULL, (unsigned)threads);
    for (long i = 0; i < threads; i++) {
      char* given = NULL;
      if (phase == 1) {
        given = xmalloc((size_t)size);
        given[0] = 1;
      }
      w[i] =
          (worker_t){i, rounds, writes, (size_t)size, given, NULL, &start, {0}};
    }
    double t0 = now_sec();
    run_threads(threads, worker, w, sizeof(worker_t));
    secs[phase] = now_sec() - t0;
    for (long i = 0; i < threads; i++) {
      for (long j = i + 1; j < threads; j++) {
        uintptr_t a = (uintptr_t)w[i].first, b = (uintptr_t)w[j].first;
        if (a / 64 <= (b + (size_t)size - 1) / 64 &&
            b / 64 <= (a + (size_t)size - 1) / 64)
          shared[phase]++;
      }
    }
    pthread_barrier_destroy(&start);
  }
  free(w);

  double ops = 2.0 * (double)threads * (double)rounds * (double)writes;
  result_begin("falseshare", threads, ops, secs[0] + secs[1]);
  printf(" active_seconds=%.6f passive_seconds=%.6f", secs[0], secs[1]);
  printf(" active_shared=%ld passive_shared=%ld\n", shared[0], shared[1]);
  return 0;
}
