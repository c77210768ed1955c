/* SPDX-License-Identifier: MIT */
/* prodcons: one set of threads allocates, another frees.
 *
 * Producers allocate objects (16 B - 1 KiB, log-uniform), fill a header and
 * pass them in batches of 256 through a bounded queue (at most `queue`
 * batches in flight, 8) to consumers, which read and free them: a pipeline,
 * a message queue or a logger thread. Every free is of memory another thread
 * allocated, and the producer never gets its own frees back locally.
 *
 * The queue is short so that the peak RSS is the allocator's: the objects in
 * flight are at most 8 x 256 x ~240 B, about 0.5 MiB. With 64 batches (4 MiB
 * in flight, more than any allocator's own footprint here) the peak depended
 * on whether the scheduler let the producer fill the queue in one time slice:
 * 3.6 or 8.6 MiB for the same library from run to run.
 *
 * Parameters: producers and consumers (half the CPUs each, at least 1),
 * objects per producer (4M x scale), queue (8 batches, at most 64), seed (1).
 */
#include "common.h"

enum { kBatch = 256, kQueueMax = 64 };

typedef struct {
  size_t n;
  void* items[kBatch];
} batch_t;

typedef struct {
  pthread_mutex_t lock;
  pthread_cond_t not_empty, not_full;
  batch_t* ring[kQueueMax];
  size_t head, tail, depth;
  long producers_left;
} queue_t;

typedef struct {
  queue_t* q;
  long id, objects;
  uint64_t seed;
  uint64_t checksum;
  char pad[64];
} worker_t;

static void queue_put(queue_t* q, batch_t* b) {
  pthread_mutex_lock(&q->lock);
  while (q->tail - q->head == q->depth)
    pthread_cond_wait(&q->not_full, &q->lock);
  q->ring[q->tail++ % kQueueMax] = b;
  pthread_cond_signal(&q->not_empty);
  pthread_mutex_unlock(&q->lock);
}

/* NULL once the queue is empty and every producer has finished. */
static batch_t* queue_get(queue_t* q) {
  pthread_mutex_lock(&q->lock);
  while (q->tail == q->head && q->producers_left > 0) {
    pthread_cond_wait(&q->not_empty, &q->lock);
  }
  batch_t* b = NULL;
  if (q->tail != q->head) {
    b = q->ring[q->head++ % kQueueMax];
    pthread_cond_signal(&q->not_full);
  }
  pthread_mutex_unlock(&q->lock);
  return b;
}

static void* producer(void* arg) {
  worker_t* w = arg;
  rng_t r = rng_make(w->seed, (uint64_t)w->id);
  batch_t* b = NULL;
  for (long i = 0; i < w->objects; i++) {
    if (b == NULL) {
      b = xmalloc(sizeof(batch_t));
      b->n = 0;
    }
    size_t n = rng_log_size(&r, 16, 1024);
    uint64_t* p = xmalloc(n);
    p[0] = (uint64_t)i;
    p[1] = n;
    b->items[b->n++] = p;
    if (b->n == kBatch) {
      queue_put(w->q, b);
      b = NULL;
    }
  }
  if (b != NULL)
    queue_put(w->q, b);
  pthread_mutex_lock(&w->q->lock);
  w->q->producers_left--;
  pthread_cond_broadcast(&w->q->not_empty);
  pthread_mutex_unlock(&w->q->lock);
  return NULL;
}

static void* consumer(void* arg) {
  worker_t* w = arg;
  batch_t* b;
  while ((b = queue_get(w->q)) != NULL) {
    for (size_t i = 0; i < b->n; i++) {
      uint64_t* p = b->items[i];
      w->checksum += p[0] + p[1];
      free(p);
    }
    free(b);
  }
  return NULL;
}

static void* start(void* arg) {
  worker_t* w = arg;
  return w->id >= 0 ? producer(w) : consumer(w);
}

int main(int argc, char** argv) {
  bench_args(argc, argv);
  long half = ncpus() / 2 > 0 ? ncpus() / 2 : 1;
  long producers = arg_long("producers", half);
  long consumers = arg_long("consumers", half);
  long objects = arg_scaled("objects", 4000000);
  long depth = arg_long("queue", 8);
  uint64_t seed = (uint64_t)arg_long("seed", 1);
  bench_args_done();
  if (producers < 1 || consumers < 1)
    die("need a producer and a consumer");
  if (depth < 1 || depth > kQueueMax)
    die("queue must be 1..%d", kQueueMax);

  queue_t q;
  memset(&q, 0, sizeof(q));
  pthread_mutex_init(&q.lock, NULL);
  pthread_cond_init(&q.not_empty, NULL);
  pthread_cond_init(&q.not_full, NULL);
  q.producers_left = producers;
  q.depth = (size_t)depth;

  long threads = producers + consumers;
  worker_t* w = calloc((size_t)threads, sizeof(worker_t));
  if (w == NULL)
    die("calloc failed");
  for (long i = 0; i < threads; i++) {
    /* Producers get ids 0.., consumers negative ids. */
    long id = i < producers ? i : -1 - (i - producers);
    w[i] = (worker_t){&q, id, objects, seed, 0, {0}};
  }
  double t0 = now_sec();
  run_threads(threads, start, w, sizeof(worker_t));
  double secs = now_sec() - t0;
  uint64_t sum = 0;
  for (long i = producers; i < threads; i++)
    sum += w[i].checksum;
  free(w);

  result_begin("prodcons", threads, (double)objects * (double)producers, secs);
  printf(" producers=%ld consumers=%ld queue=%ld checksum=%llu\n", producers,
         consumers, depth, (unsigned long long)sum);
  return 0;
}
