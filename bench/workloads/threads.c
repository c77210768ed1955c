/* SPDX-License-Identifier: MIT */
/* threads: footprint as the thread count grows.
 *
 * A fixed live set (16 MiB of 16 B - 1 KiB objects) is split evenly over
 * threads=N threads, as a server shards its data over a thread pool. Each
 * thread fills its share, replaces random objects (2M replacements in all,
 * split evenly), and then stays alive and idle, holding its share. The main
 * thread waits idle_ms and reads RSS from /proc/self/statm while every
 * thread is still alive, which shows what per-thread caches, arenas and
 * stranded free memory cost at 2, 64 and 256 threads.
 *
 * Parameters: threads (2), live_mib (16), ops in all (2M x scale),
 * idle_ms (300), seed (1). */
#include "common.h"

typedef struct {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  long done;
  int release;
} shared_t;

typedef struct {
  long id, slots, ops;
  uint64_t seed;
  shared_t* sh;
} worker_t;

static void* worker(void* arg) {
  worker_t* w = arg;
  rng_t r = rng_make(w->seed, (uint64_t)w->id);
  char** slot = xmalloc((size_t)w->slots * sizeof(char*));
  for (long i = 0; i < w->slots; i++) {
    size_t n = 16 + rng_below(&r, 1009);
    slot[i] = xmalloc(n);
    memset(slot[i], 1, n);
  }
  for (long op = 0; op < w->ops; op++) {
    uint64_t i = rng_below(&r, (uint64_t)w->slots);
    free(slot[i]);
    size_t n = 16 + rng_below(&r, 1009);
    slot[i] = xmalloc(n);
    memset(slot[i], 1, n);
  }

  shared_t* sh = w->sh;
  pthread_mutex_lock(&sh->lock);
  sh->done++;
  pthread_cond_broadcast(&sh->cond);
  while (!sh->release)
    pthread_cond_wait(&sh->cond, &sh->lock);
  pthread_mutex_unlock(&sh->lock);

  for (long i = 0; i < w->slots; i++)
    free(slot[i]);
  free(slot);
  return NULL;
}

int main(int argc, char** argv) {
  bench_args(argc, argv);
  long threads = arg_threads(2);
  double live_mib = arg_double("live_mib", 16);
  long ops = arg_scaled("ops", 2000000);
  long idle_ms = arg_long("idle_ms", 300);
  uint64_t seed = (uint64_t)arg_long("seed", 1);
  bench_args_done();

  long objects = (long)(live_mib * 1024 * 1024 / 520); /* mean size 520 B */
  shared_t sh;
  memset(&sh, 0, sizeof(sh));
  pthread_mutex_init(&sh.lock, NULL);
  pthread_cond_init(&sh.cond, NULL);
  worker_t* w = xmalloc((size_t)threads * sizeof(worker_t));
  pthread_t* tids = xmalloc((size_t)threads * sizeof(pthread_t));
  long slots = objects / threads > 0 ? objects / threads : 1;
  for (long i = 0; i < threads; i++) {
    w[i] = (worker_t){i, slots, ops / threads, seed, &sh};
  }

  double t0 = now_sec();
  for (long i = 0; i < threads; i++) {
    int err = pthread_create(&tids[i], NULL, worker, &w[i]);
    if (err != 0)
      die("pthread_create: %s", strerror(err));
  }
  pthread_mutex_lock(&sh.lock);
  while (sh.done < threads)
    pthread_cond_wait(&sh.cond, &sh.lock);
  pthread_mutex_unlock(&sh.lock);
  double secs = now_sec() - t0;

  sleep_ms(idle_ms);
  long rss_idle = rss_kb();

  pthread_mutex_lock(&sh.lock);
  sh.release = 1;
  pthread_cond_broadcast(&sh.cond);
  pthread_mutex_unlock(&sh.lock);
  for (long i = 0; i < threads; i++)
    pthread_join(tids[i], NULL);
  free(tids);
  free(w);

  result_begin("threads", threads, (double)(ops / threads) * (double)threads,
               secs);
  printf(" live_kb=%.0f rss_idle_kb=%ld\n", live_mib * 1024, rss_idle);
  return 0;
}
