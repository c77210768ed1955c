/* SPDX-License-Identifier: MIT */
/* xthread: objects allocated on one thread and freed on another.
 *
 * The pattern of pipelines and message-passing servers (Lever and Boreham's
 * xmalloc-test, USENIX 2000): each producer thread allocates objects as fast
 * as it can, writes a word into each, and hands them to its own consumer
 * thread, which reads that word and frees them. The hand-over is a ring of
 * pointers per producer/consumer pair, published every `handoff` pointers
 * (1: one pointer at a time). A full or empty ring makes the waiting side
 * yield the CPU, so more threads than cores still make progress.
 *
 * Every free is of memory another thread allocated, and a producer never
 * gets its own objects back through its local cache: what the allocator
 * does with remote frees is all that is measured.
 *
 * Parameters: producers (1; as many consumers), min and max object size
 * (64 and 64; otherwise log-uniform in [min, max], 4096 sizes drawn ahead
 * and used in turn), objects per producer (10M x scale), handoff (8), ring
 * (4096 pointers), pin (0; 1 puts the producer and the consumer of a pair
 * on different CPUs of the process's affinity mask: pair p's producer on
 * its CPU 2p, the consumer on 2p + 1, modulo their number), words (1:
 * the leading words the producer writes into each object, at most min / 8;
 * 2 or more overwrite the allocator's word after the first, as most
 * programs' objects do), seed (1).
 * bench/run pins: unpinned, whether the scheduler put a pair on one CPU or
 * two changed a run's time up to sevenfold for every allocator. The RESULT
 * line reports seconds for the whole count and ops_per_sec, the objects
 * that crossed per second. */
#include "common.h"

typedef struct {
  /* Producer's side and consumer's side on their own cache lines. */
  _Alignas(64) size_t tail; /* written by the producer */
  _Alignas(64) size_t head; /* written by the consumer */
  _Alignas(64) void** slots;
  size_t mask;
} ring_t;

typedef struct {
  ring_t* ring;
  long id, objects, handoff, cpu; /* cpu: pin to this CPU, or -1 */
  long words;                     /* leading words written, >= 1 */
  size_t min, max;
  uint64_t seed, checksum;
  char pad[64];
} worker_t;

enum { kSpins = 64 };

/* Waits for *word (another thread's index) to differ from `seen`. */
static size_t wait_change(const size_t* word, size_t seen) {
  size_t v;
  int spins = 0;
  while ((v = __atomic_load_n(word, __ATOMIC_ACQUIRE)) == seen) {
    if (++spins >= kSpins) {
      sched_yield();
      spins = 0;
    }
  }
  return v;
}

enum { kSizes = 4096 }; /* sizes drawn ahead, used in turn */

static void* producer(worker_t* w) {
  ring_t* g = w->ring;
  rng_t r = rng_make(w->seed, (uint64_t)w->id);
  /* Drawn before the loop: log2 and exp2 per object would cost more than
   * the allocation measured. */
  uint32_t sizes[kSizes];
  for (size_t k = 0; k < kSizes; k++)
    sizes[k] = (uint32_t)rng_log_size(&r, w->min, w->max);
  size_t cap = g->mask + 1;
  size_t tail = 0, head = 0; /* head: the consumer's, as last read */
  for (long i = 0; i < w->objects; i++) {
    uint64_t* p = xmalloc(sizes[i % kSizes]);
    p[0] = (uint64_t)i;
    for (long k = 1; k < w->words; k++)
      ((volatile uint64_t*)p)[k] = (uint64_t)i + (uint64_t)k;
    while (tail - head == cap)
      head = wait_change(&g->head, head);
    g->slots[tail & g->mask] = p;
    tail++;
    if (tail % (size_t)w->handoff == 0)
      __atomic_store_n(&g->tail, tail, __ATOMIC_RELEASE);
  }
  __atomic_store_n(&g->tail, tail, __ATOMIC_RELEASE);
  return NULL;
}

static void* consumer(worker_t* w) {
  ring_t* g = w->ring;
  size_t head = 0, tail = 0, total = (size_t)w->objects;
  uint64_t sum = 0;
  while (head < total) {
    if (head == tail) {
      tail = wait_change(&g->tail, tail);
      continue;
    }
    uint64_t* p = g->slots[head & g->mask];
    sum += p[0];
    free(p);
    head++;
    /* Free room in batches too: a store per pointer would make the two
     * threads fight over the line. */
    if (head % 16 == 0 || head == tail)
      __atomic_store_n(&g->head, head, __ATOMIC_RELEASE);
  }
  w->checksum = sum;
  return NULL;
}

static void* start(void* arg) {
  worker_t* w = arg;
  if (w->cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET((int)w->cpu, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0)
      die("cannot pin a thread to CPU %ld", w->cpu);
  }
  return w->id >= 0 ? producer(w) : consumer(w);
}

int main(int argc, char** argv) {
  bench_args(argc, argv);
  long producers = arg_long("producers", 1);
  long min = arg_long("min", 64);
  long max = arg_long("max", 64);
  long objects = arg_scaled("objects", 10000000);
  long handoff = arg_long("handoff", 8);
  long ring = arg_long("ring", 4096);
  long pin = arg_long("pin", 0);
  long words = arg_long("words", 1);
  uint64_t seed = (uint64_t)arg_long("seed", 1);
  bench_args_done();
  if (producers < 1 || producers > 1024)
    die("producers=%ld: 1 to 1024", producers);
  if (min < 8 || max < min)
    die("need 8 <= min <= max");
  if (handoff < 1 || ring < 2 || (ring & (ring - 1)) != 0 || handoff > ring)
    die("ring must be a power of two, 1 <= handoff <= ring");
  if (words < 1 || words > min / 8)
    die("words=%ld: 1 to min / 8", words);

  int allowed[CPU_SETSIZE];
  long num_allowed = allowed_cpus(allowed, CPU_SETSIZE);
  if (num_allowed == 0)
    die("no CPU in the affinity mask");

  ring_t* rings = aligned_alloc(64, (size_t)producers * sizeof(ring_t));
  if (rings == NULL)
    die("aligned_alloc failed");
  long threads = 2 * producers;
  worker_t* w = calloc((size_t)threads, sizeof(worker_t));
  if (w == NULL)
    die("calloc failed");
  for (long i = 0; i < producers; i++) {
    memset(&rings[i], 0, sizeof(ring_t));
    rings[i].slots = xmalloc((size_t)ring * sizeof(void*));
    rings[i].mask = (size_t)ring - 1;
  }
  for (long i = 0; i < threads; i++) {
    /* Producer i and consumer -1 - i share ring i. */
    long pair = i < producers ? i : i - producers;
    long id = i < producers ? i : -1 - pair;
    /* pin=1: producer and consumer of a pair on different CPUs. */
    long cpu = pin ? allowed[(2 * pair + (id < 0)) % num_allowed] : -1;
    w[i] = (worker_t){.ring = &rings[pair],
                      .id = id,
                      .objects = objects,
                      .handoff = handoff,
                      .cpu = cpu,
                      .words = words,
                      .min = (size_t)min,
                      .max = (size_t)max,
                      .seed = seed};
  }
  double t0 = now_sec();
  run_threads(threads, start, w, sizeof(worker_t));
  double secs = now_sec() - t0;
  uint64_t sum = 0;
  for (long i = producers; i < threads; i++)
    sum += w[i].checksum;
  uint64_t expect =
      (uint64_t)producers * (uint64_t)objects * (uint64_t)(objects - 1) / 2;
  if (sum != expect)
    die("checksum %llu, expected %llu", (unsigned long long)sum,
        (unsigned long long)expect);
  for (long i = 0; i < producers; i++)
    free(rings[i].slots);
  free(rings);
  free(w);

  result_begin("xthread", threads, (double)objects * (double)producers, secs);
  printf(" producers=%ld min=%ld max=%ld handoff=%ld pin=%ld words=%ld\n",
         producers, min, max, handoff, pin, words);
  return 0;
}
