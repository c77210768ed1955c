/* SPDX-License-Identifier: MIT */
/* server: a server's request threads (the larson / xmalloc-test pattern).
 *
 * Each thread keeps a working set of objects (8 B - 8 KiB, skewed small) and
 * replaces a random one per operation. One freed object in eight was
 * allocated by this thread but is handed to another thread to free (a
 * request built by one thread and retired by another), in batches of 64
 * through a locked inbox that each thread drains every 64 operations. So the
 * allocator sees steady churn, a large live set and cross-thread frees.
 *
 * An inbox holds at most kInboxCap objects: a thread whose destination is
 * full drains its own inbox and yields until there is room (backpressure,
 * as a server's bounded queue). Without the bound, a thread that the
 * scheduler kept off its CPU came back to an inbox of hundreds of thousands
 * of objects, and the peak RSS of every allocator varied tenfold from run
 * to run with the scheduler. A thread that has finished takes no more
 * objects: what would go to it is freed where it is.
 *
 * Parameters: threads (one per CPU), slots per thread (4096), ops per thread
 * (4M x scale), remote=N (1 in N frees is remote, 8; 0 for none), seed. */
#include "common.h"

enum { kBatch = 64, kInboxCap = 16 * kBatch };

typedef struct {
  pthread_mutex_t lock;
  void** items;
  size_t len, cap;
  int closed; /* its thread has finished; under lock */
} inbox_t;

typedef struct {
  long id, threads, slots, ops, remote;
  uint64_t seed;
  inbox_t* inboxes;
  char pad[64];
} worker_t;

/* Appends n objects to `in`, or frees them here when its thread has
 * finished. With `own` (the sender's inbox): waits while `in` is full,
 * draining `own` meanwhile so that two threads waiting on each other's
 * inboxes both make progress; without, appends whatever the fill. */
static size_t inbox_drain(inbox_t* in);

static void inbox_push(inbox_t* in, void** items, size_t n, inbox_t* own) {
  for (;;) {
    pthread_mutex_lock(&in->lock);
    if (in->closed) {
      pthread_mutex_unlock(&in->lock);
      for (size_t i = 0; i < n; i++)
        free(items[i]);
      return;
    }
    if (own == NULL || in->len + n <= kInboxCap)
      break;
    pthread_mutex_unlock(&in->lock);
    inbox_drain(own);
    sched_yield();
  }
  if (in->len + n > in->cap) {
    in->cap = (in->len + n) * 2;
    in->items = xrealloc(in->items, in->cap * sizeof(void*));
  }
  memcpy(in->items + in->len, items, n * sizeof(void*));
  in->len += n;
  pthread_mutex_unlock(&in->lock);
}

/* Frees everything other threads handed us; returns how many. */
static size_t inbox_drain(inbox_t* in) {
  pthread_mutex_lock(&in->lock);
  void** items = in->items;
  size_t n = in->len;
  in->items = NULL;
  in->len = in->cap = 0;
  pthread_mutex_unlock(&in->lock);
  for (size_t i = 0; i < n; i++)
    free(items[i]);
  free(items);
  return n;
}

static void* worker(void* arg) {
  worker_t* w = arg;
  rng_t r = rng_make(w->seed, (uint64_t)w->id);
  char** slot = xmalloc((size_t)w->slots * sizeof(char*));
  for (long i = 0; i < w->slots; i++) {
    size_t n = rng_server_size(&r);
    slot[i] = xmalloc(n);
    memset(slot[i], (int)i, n < 64 ? n : 64);
  }
  /* One outgoing batch per destination thread. */
  void** out = xmalloc((size_t)w->threads * kBatch * sizeof(void*));
  size_t* out_len = calloc((size_t)w->threads, sizeof(size_t));
  if (out_len == NULL)
    die("calloc failed");

  for (long op = 0; op < w->ops; op++) {
    uint64_t i = rng_below(&r, (uint64_t)w->slots);
    if (w->remote > 0 && w->threads > 1 &&
        rng_below(&r, (uint64_t)w->remote) == 0) {
      long to = (w->id + 1 + (long)rng_below(&r, (uint64_t)w->threads - 1)) %
                w->threads;
      void** batch = out + to * kBatch;
      batch[out_len[to]++] = slot[i];
      if (out_len[to] == kBatch) {
        inbox_push(&w->inboxes[to], batch, kBatch, &w->inboxes[w->id]);
        out_len[to] = 0;
      }
    } else {
      free(slot[i]);
    }
    size_t n = rng_server_size(&r);
    slot[i] = xmalloc(n);
    memset(slot[i], (int)op, n < 64 ? n : 64);
    if ((op & 63) == 63)
      inbox_drain(&w->inboxes[w->id]);
  }

  /* From here on nobody waits for this thread's inbox: pushes to it stop
   * (the main thread frees what is left in it). */
  pthread_mutex_lock(&w->inboxes[w->id].lock);
  w->inboxes[w->id].closed = 1;
  pthread_mutex_unlock(&w->inboxes[w->id].lock);
  for (long t = 0; t < w->threads; t++) {
    if (out_len[t] > 0)
      inbox_push(&w->inboxes[t], out + t * kBatch, out_len[t], NULL);
  }
  for (long i = 0; i < w->slots; i++)
    free(slot[i]);
  free(slot);
  free(out);
  free(out_len);
  return NULL;
}

int main(int argc, char** argv) {
  bench_args(argc, argv);
  long threads = arg_threads(0);
  long slots = arg_long("slots", 4096);
  long ops = arg_scaled("ops", 4000000);
  long remote = arg_long("remote", 8);
  uint64_t seed = (uint64_t)arg_long("seed", 1);
  bench_args_done();
  if (slots < 1)
    die("slots must be positive");

  inbox_t* inboxes = calloc((size_t)threads, sizeof(inbox_t));
  worker_t* w = calloc((size_t)threads, sizeof(worker_t));
  if (inboxes == NULL || w == NULL)
    die("calloc failed");
  for (long i = 0; i < threads; i++) {
    pthread_mutex_init(&inboxes[i].lock, NULL);
    w[i] = (worker_t){i, threads, slots, ops, remote, seed, inboxes, {0}};
  }
  double t0 = now_sec();
  run_threads(threads, worker, w, sizeof(worker_t));
  size_t leftover = 0;
  for (long i = 0; i < threads; i++)
    leftover += inbox_drain(&inboxes[i]);
  double secs = now_sec() - t0;

  result_begin("server", threads, (double)ops * (double)threads, secs);
  printf(" remote=%ld leftover=%zu\n", remote, leftover);
  free(inboxes);
  free(w);
  return 0;
}
