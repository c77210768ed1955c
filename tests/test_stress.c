/* SPDX-License-Identifier: MIT */
/* Multi-threaded stress tests: objects freed by other threads than their
 * allocators (with content checks), no object handed out twice, thousands
 * of short-lived threads, concurrent realloc chains, malloc_trim and fork()
 * while other threads allocate (no deadlock; the child's heap works). */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/prctl.h>
#include <sys/wait.h>

#include "check_main.h"
#include "on_valgrind.h"
#include "rsmalloc.h"

#define KiB ((size_t)1024)
#define MiB (1024 * KiB)

typedef struct {
  uint64_t s;
} rng_t;

static uint64_t rnd(rng_t* r) {
  uint64_t x = r->s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return r->s = x;
}

static rng_t rng_seed(uint64_t seed) {
  rng_t r = {seed * 0x9e3779b97f4a7c15ull + 0x2545f4914f6cdd1dull};
  if (!r.s)
    r.s = 1;
  for (int i = 0; i < 4; i++)
    rnd(&r);
  return r;
}

/* A size spread over 1 .. max on a log scale. */
static size_t rnd_size(rng_t* r, size_t max) {
  unsigned bits = 1;
  while (((size_t)1 << bits) < max)
    bits++;
  size_t n = (size_t)(rnd(r) % ((uint64_t)1 << (rnd(r) % bits + 1))) + 1;
  return n > max ? max : n;
}

/* Objects carry a header (owner thread id, sequence) when there is room,
 * then bytes derived from both. */
typedef struct {
  uint32_t tid, seq;
} tag_t;

static unsigned char pat(uint32_t tid, uint32_t seq, size_t i) {
  return (unsigned char)(tid * 37u + seq * 11u + i * 7u + (i >> 8));
}

static void stamp(void* p, size_t n, uint32_t tid, uint32_t seq) {
  unsigned char* c = p;
  size_t i = 0;
  if (n >= sizeof(tag_t)) {
    tag_t t = {tid, seq};
    memcpy(c, &t, sizeof t);
    i = sizeof t;
  }
  for (; i < n; i++)
    c[i] = pat(tid, seq, i);
}

/* 1 when p still holds stamp(tid, seq). Checks every byte up to 64 KiB,
 * then one byte in 61 (large blocks would dominate the run time). */
static int stamped(const void* p, size_t n, uint32_t tid, uint32_t seq) {
  const unsigned char* c = p;
  size_t i = 0;
  if (n >= sizeof(tag_t)) {
    tag_t t;
    memcpy(&t, c, sizeof t);
    if (t.tid != tid || t.seq != seq)
      return 0;
    i = sizeof t;
  }
  for (; i < n; i += i < 64 * KiB ? 1 : 61)
    if (c[i] != pat(tid, seq, i))
      return 0;
  if (n > 0 && n - 1 >= sizeof(tag_t) && c[n - 1] != pat(tid, seq, n - 1))
    return 0;
  return 1;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A number field of rsmalloc_stats_json ("in_use_bytes", ...); -1 when
 * it cannot be read. */
static long stats_field(const char* name) {
  static char buf[64 * 1024];
  char key[64];
  if (rsmalloc_stats_json(buf, sizeof buf) >= sizeof buf)
    return -1;
  snprintf(key, sizeof key, "\"%s\": ", name);
  const char* at = strstr(buf, key);
  return at ? strtol(at + strlen(key), NULL, 10) : -1;
}

/* ------------------------------------------------------------------ */
/* Producer/consumer: allocated in one thread, checked and freed in
 * another (sometimes after a realloc there). */

typedef struct {
  void* p;
  size_t n;
  uint32_t tid, seq;
} item_t;

enum { QCAP = 512, PRODUCERS = 3, CONSUMERS = 3, PER_PRODUCER = 40000 };

static struct {
  pthread_mutex_t mu;
  pthread_cond_t not_empty, not_full;
  item_t ring[QCAP];
  size_t head, count;
  int producers_left;
} pcq = {.mu = PTHREAD_MUTEX_INITIALIZER,
         .not_empty = PTHREAD_COND_INITIALIZER,
         .not_full = PTHREAD_COND_INITIALIZER};

static long pc_consumed, pc_bad, pc_null;

static void q_push(item_t it) {
  pthread_mutex_lock(&pcq.mu);
  while (pcq.count == QCAP)
    pthread_cond_wait(&pcq.not_full, &pcq.mu);
  pcq.ring[(pcq.head + pcq.count) % QCAP] = it;
  pcq.count++;
  pthread_cond_signal(&pcq.not_empty);
  pthread_mutex_unlock(&pcq.mu);
}

/* 0 when every producer is done and the queue is empty. */
static int q_pop(item_t* it) {
  pthread_mutex_lock(&pcq.mu);
  while (pcq.count == 0 && pcq.producers_left > 0)
    pthread_cond_wait(&pcq.not_empty, &pcq.mu);
  if (pcq.count == 0) {
    pthread_mutex_unlock(&pcq.mu);
    return 0;
  }
  *it = pcq.ring[pcq.head];
  pcq.head = (pcq.head + 1) % QCAP;
  pcq.count--;
  pthread_cond_signal(&pcq.not_full);
  pthread_mutex_unlock(&pcq.mu);
  return 1;
}

static void* producer(void* arg) {
  uint32_t tid = (uint32_t)(uintptr_t)arg;
  rng_t r = rng_seed(tid + 1);
  for (uint32_t seq = 0; seq < PER_PRODUCER; seq++) {
    size_t n =
        rnd(&r) % 300 == 0 ? rnd_size(&r, 2 * MiB) : rnd_size(&r, 16 * KiB);
    void* p = malloc(n);
    if (!p) {
      __atomic_add_fetch(&pc_null, 1, __ATOMIC_RELAXED);
      continue;
    }
    stamp(p, n, tid, seq);
    q_push((item_t){p, n, tid, seq});
  }
  pthread_mutex_lock(&pcq.mu);
  pcq.producers_left--;
  pthread_cond_broadcast(&pcq.not_empty);
  pthread_mutex_unlock(&pcq.mu);
  return NULL;
}

static void* consumer(void* arg) {
  rng_t r = rng_seed((uintptr_t)arg + 100);
  item_t it;
  while (q_pop(&it)) {
    if (!stamped(it.p, it.n, it.tid, it.seq))
      __atomic_add_fetch(&pc_bad, 1, __ATOMIC_RELAXED);
    if (rnd(&r) % 8 == 0) {
      size_t m = it.n + rnd_size(&r, 8 * KiB);
      void* g = realloc(it.p, m);
      if (!g) {
        __atomic_add_fetch(&pc_null, 1, __ATOMIC_RELAXED);
      } else {
        it.p = g;
        if (!stamped(g, it.n, it.tid, it.seq))
          __atomic_add_fetch(&pc_bad, 1, __ATOMIC_RELAXED);
      }
    }
    free(it.p);
    __atomic_add_fetch(&pc_consumed, 1, __ATOMIC_RELAXED);
  }
  return NULL;
}

START_TEST(producer_consumer_cross_thread_free) {
  pthread_t prod[PRODUCERS], cons[CONSUMERS];
  pcq.producers_left = PRODUCERS;
  for (uintptr_t i = 0; i < CONSUMERS; i++)
    ck_assert_int_eq(pthread_create(&cons[i], NULL, consumer, (void*)i), 0);
  for (uintptr_t i = 0; i < PRODUCERS; i++)
    ck_assert_int_eq(pthread_create(&prod[i], NULL, producer, (void*)i), 0);
  for (int i = 0; i < PRODUCERS; i++)
    pthread_join(prod[i], NULL);
  for (int i = 0; i < CONSUMERS; i++)
    pthread_join(cons[i], NULL);
  ck_assert_int_eq(pc_null, 0);
  ck_assert_int_eq(pc_bad, 0);
  ck_assert_int_eq(pc_consumed, (long)PRODUCERS * PER_PRODUCER);
}

END_TEST

/* ------------------------------------------------------------------ */
/* Several threads allocate at once: no block is handed out twice and no
 * two live blocks overlap; then each thread frees its neighbour's. */

enum { XT = 6, XPER = 15000 };

typedef struct {
  uintptr_t p;
  size_t n;
} span_t;

static span_t xblocks[XT][XPER];
static pthread_barrier_t xbarrier;
static long x_bad, x_null;

static void* cross_worker(void* arg) {
  uint32_t tid = (uint32_t)(uintptr_t)arg;
  rng_t r = rng_seed(tid + 1000);
  for (int round = 0; round < 4; round++) {
    for (uint32_t i = 0; i < XPER; i++) {
      size_t n = i % 500 == 0 ? rnd_size(&r, 600 * KiB) : rnd_size(&r, 2048);
      void* p = malloc(n);
      if (!p)
        __atomic_add_fetch(&x_null, 1, __ATOMIC_RELAXED);
      if (p)
        stamp(p, n, tid, i);
      xblocks[tid][i] = (span_t){(uintptr_t)p, p ? n : 0};
    }
    pthread_barrier_wait(&xbarrier); /* main checks for overlap */
    pthread_barrier_wait(&xbarrier);
    uint32_t other = (tid + 1) % XT;
    for (uint32_t i = 0; i < XPER; i++) {
      span_t s = xblocks[other][i];
      if (!s.p)
        continue;
      if (!stamped((void*)s.p, s.n, other, i))
        __atomic_add_fetch(&x_bad, 1, __ATOMIC_RELAXED);
      free((void*)s.p);
    }
    pthread_barrier_wait(&xbarrier);
  }
  return NULL;
}

static int span_cmp(const void* a, const void* b) {
  uintptr_t x = ((const span_t*)a)->p, y = ((const span_t*)b)->p;
  return x < y ? -1 : x > y;
}

START_TEST(concurrent_no_duplicates_no_overlap) {
  pthread_t t[XT];
  static span_t all[XT * XPER];
  ck_assert_int_eq(pthread_barrier_init(&xbarrier, NULL, XT + 1), 0);
  for (uintptr_t i = 0; i < XT; i++)
    ck_assert_int_eq(pthread_create(&t[i], NULL, cross_worker, (void*)i), 0);
  long overlaps = 0;
  for (int round = 0; round < 4; round++) {
    pthread_barrier_wait(&xbarrier);
    memcpy(all, xblocks, sizeof all);
    qsort(all, XT * XPER, sizeof all[0], span_cmp);
    for (size_t i = 1; i < XT * XPER; i++) {
      if (!all[i - 1].p)
        continue;
      if (all[i - 1].p + (all[i - 1].n ? all[i - 1].n : 1) > all[i].p) {
        if (overlaps++ < 5)
          fprintf(stderr, "round %d: [%#lx +%zu] overlaps [%#lx +%zu]\n", round,
                  (unsigned long)all[i - 1].p, all[i - 1].n,
                  (unsigned long)all[i].p, all[i].n);
      }
    }
    pthread_barrier_wait(&xbarrier);
    pthread_barrier_wait(&xbarrier);
  }
  for (int i = 0; i < XT; i++)
    pthread_join(t[i], NULL);
  pthread_barrier_destroy(&xbarrier);
  ck_assert_int_eq(x_null, 0);
  ck_assert_msg(overlaps == 0, "%ld live blocks overlap another", overlaps);
  ck_assert_int_eq(x_bad, 0);
}

END_TEST

/* ------------------------------------------------------------------ */
/* Thousands of short-lived threads, a few at a time. Each allocates and
 * frees, frees a block its creator allocated, leaves blocks for its
 * creator to free after it exits, and frees in a TLS destructor. */

enum { SL_THREADS = 2000, SL_BATCH = 8, SL_KEEP = 8 };

typedef struct {
  uint32_t id;
  void* from_main;
  size_t from_main_n;
  void* keep[SL_KEEP];
  size_t keep_n[SL_KEEP];
  int bad;
} sl_arg_t;

static pthread_key_t sl_key;
static long sl_destructors, sl_bad;

static void sl_destructor(void* v) {
  /* Runs after the thread function: allocating and freeing still work. */
  void* extra = malloc(100);
  if (!extra || !stamped(v, 333, 7, 7))
    __atomic_add_fetch(&sl_bad, 1, __ATOMIC_RELAXED);
  if (extra)
    stamp(extra, 100, 1, 1);
  free(extra);
  free(v);
  __atomic_add_fetch(&sl_destructors, 1, __ATOMIC_RELAXED);
}

static void* short_lived(void* varg) {
  sl_arg_t* a = varg;
  rng_t r = rng_seed(a->id + 5000);
  void* tls = malloc(333);
  if (!tls) {
    a->bad++;
    return NULL;
  }
  stamp(tls, 333, 7, 7);
  pthread_setspecific(sl_key, tls);
  void* tmp[48];
  size_t tn[48];
  for (int i = 0; i < 48; i++) {
    tn[i] = i % 16 == 0 ? rnd_size(&r, 512 * KiB) : rnd_size(&r, 4096);
    tmp[i] = malloc(tn[i]);
    if (!tmp[i]) {
      a->bad++;
      tn[i] = 0;
      continue;
    }
    stamp(tmp[i], tn[i], a->id, (uint32_t)i);
  }
  for (int i = 0; i < 48; i++) {
    if (tmp[i] && !stamped(tmp[i], tn[i], a->id, (uint32_t)i))
      a->bad++;
    free(tmp[i]);
  }
  if (!stamped(a->from_main, a->from_main_n, 0, a->id))
    a->bad++;
  free(a->from_main);
  for (int i = 0; i < SL_KEEP; i++) {
    a->keep_n[i] = rnd_size(&r, 20000);
    a->keep[i] = malloc(a->keep_n[i]);
    if (!a->keep[i]) {
      a->bad++;
      continue;
    }
    stamp(a->keep[i], a->keep_n[i], a->id, 100u + (uint32_t)i);
  }
  return NULL;
}

START_TEST(thousands_of_short_lived_threads) {
  ck_assert_int_eq(pthread_key_create(&sl_key, sl_destructor), 0);
  static sl_arg_t args[SL_BATCH];
  pthread_t t[SL_BATCH];
  int bad = 0, created = 0;
  for (uint32_t base = 0; base < SL_THREADS; base += SL_BATCH) {
    for (int i = 0; i < SL_BATCH; i++) {
      sl_arg_t* a = &args[i];
      memset(a, 0, sizeof *a);
      a->id = base + (uint32_t)i + 1;
      a->from_main_n = 16 + a->id % 3000;
      a->from_main = malloc(a->from_main_n);
      ck_assert_ptr_nonnull(a->from_main);
      stamp(a->from_main, a->from_main_n, 0, a->id);
      ck_assert_int_eq(pthread_create(&t[i], NULL, short_lived, a), 0);
      created++;
    }
    for (int i = 0; i < SL_BATCH; i++) {
      pthread_join(t[i], NULL);
      sl_arg_t* a = &args[i];
      bad += a->bad;
      for (int k = 0; k < SL_KEEP; k++) {
        if (!a->keep[k])
          continue;
        if (!stamped(a->keep[k], a->keep_n[k], a->id, 100u + (uint32_t)k))
          bad++;
        free(a->keep[k]);
      }
    }
  }
  ck_assert_int_eq(created, SL_THREADS);
  ck_assert_int_eq(bad, 0);
  ck_assert_int_eq(sl_bad, 0);
  ck_assert_int_eq(sl_destructors, SL_THREADS);
  pthread_key_delete(sl_key);
}

END_TEST

/* ------------------------------------------------------------------ */
/* realloc chains in several threads: each step keeps the old content. */

enum { RC_THREADS = 4, RC_CHAINS = 4, RC_STEPS = 2500 };

static long rc_bad, rc_null;

static void* realloc_chains(void* arg) {
  uint32_t tid = (uint32_t)(uintptr_t)arg;
  rng_t r = rng_seed(tid + 777);
  unsigned char* p[RC_CHAINS] = {0};
  size_t n[RC_CHAINS] = {0};
  for (int step = 0; step < RC_STEPS; step++) {
    int c = (int)(rnd(&r) % RC_CHAINS);
    size_t m;
    uint64_t kind = rnd(&r) % 100;
    if (kind < 2)
      m = 4 * MiB + rnd(&r) % (8 * MiB); /* huge */
    else if (kind < 12)
      m = 256 * KiB + rnd(&r) % (1 * MiB); /* large */
    else
      m = rnd_size(&r, 64 * KiB);
    unsigned char* g = realloc(p[c], m);
    if (!g) {
      __atomic_add_fetch(&rc_null, 1, __ATOMIC_RELAXED);
      continue;
    }
    size_t keep = n[c] < m ? n[c] : m;
    uint32_t seed = tid * RC_CHAINS + (uint32_t)c;
    for (size_t i = 0; i < keep; i += i < 16 * KiB ? 1 : 29) {
      if (g[i] != pat(seed, 0, i)) {
        __atomic_add_fetch(&rc_bad, 1, __ATOMIC_RELAXED);
        break;
      }
    }
    if (keep && g[keep - 1] != pat(seed, 0, keep - 1))
      __atomic_add_fetch(&rc_bad, 1, __ATOMIC_RELAXED);
    for (size_t i = keep; i < m; i++)
      g[i] = pat(seed, 0, i);
    p[c] = g;
    n[c] = m;
  }
  for (int c = 0; c < RC_CHAINS; c++)
    free(p[c]);
  return NULL;
}

START_TEST(concurrent_realloc_chains) {
  pthread_t t[RC_THREADS];
  for (uintptr_t i = 0; i < RC_THREADS; i++)
    ck_assert_int_eq(pthread_create(&t[i], NULL, realloc_chains, (void*)i), 0);
  for (int i = 0; i < RC_THREADS; i++)
    pthread_join(t[i], NULL);
  ck_assert_int_eq(rc_null, 0);
  ck_assert_int_eq(rc_bad, 0);
}

END_TEST

/* ------------------------------------------------------------------ */
/* Churn: worker threads replace blocks in their slot arrays as fast as
 * they can, checking each block before freeing it. The fork and trim tests
 * run against it. */

enum { FK_WORKERS = 4, FK_SLOTS = 256 };

typedef struct {
  void* p;
  size_t n;
  uint32_t seq;
} slot_t;

static slot_t fk_slots[FK_WORKERS][FK_SLOTS];
static int fk_stop;
static long fk_bad, fk_null, fk_ops;
static pthread_t fk_threads[FK_WORKERS + 1];
static int fk_nthreads;

static void* fork_worker(void* arg) {
  uint32_t tid = (uint32_t)(uintptr_t)arg;
  rng_t r = rng_seed(tid + 31337);
  uint32_t seq = 0;
  while (!__atomic_load_n(&fk_stop, __ATOMIC_ACQUIRE)) {
    slot_t* s = &fk_slots[tid][rnd(&r) % FK_SLOTS];
    void* old = __atomic_load_n(&s->p, __ATOMIC_ACQUIRE);
    if (old) {
      if (!stamped(old, s->n, tid, s->seq))
        __atomic_add_fetch(&fk_bad, 1, __ATOMIC_RELAXED);
      __atomic_store_n(&s->p, NULL, __ATOMIC_SEQ_CST);
      free(old);
    }
    uint64_t kind = rnd(&r) % 1000;
    size_t n = kind == 0   ? 4 * MiB + rnd(&r) % (4 * MiB)
               : kind < 20 ? 128 * KiB + rnd(&r) % (1 * MiB)
                           : rnd_size(&r, 8 * KiB);
    void* p;
    if (kind % 7 == 1) {
      p = calloc(1, n);
    } else if (kind % 7 == 2) {
      if (posix_memalign(&p, 64, n) != 0)
        p = NULL;
    } else {
      p = malloc(n);
    }
    if (!p) {
      __atomic_add_fetch(&fk_null, 1, __ATOMIC_RELAXED);
      continue;
    }
    seq++;
    stamp(p, n, tid, seq);
    s->n = n;
    s->seq = seq;
    __atomic_store_n(&s->p, p, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&fk_ops, 1, __ATOMIC_RELAXED);
  }
  return NULL;
}

static long trims, trims_released;
/* in_use_bytes after a trim before the churn started. */
static long fk_in_use_before;

/* Calls malloc_trim(0) until told to stop; counts those that drained or
 * released something (which ones do depends on the workers' timing). */
static void* trimmer(void* arg) {
  (void)arg;
  while (!__atomic_load_n(&fk_stop, __ATOMIC_ACQUIRE)) {
    if (malloc_trim(0) == 1)
      __atomic_add_fetch(&trims_released, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&trims, 1, __ATOMIC_RELAXED);
  }
  return NULL;
}

static void churn_start(int workers, int with_trimmer) {
  memset(fk_slots, 0, sizeof fk_slots);
  fk_stop = 0;
  fk_bad = fk_null = fk_ops = 0;
  trims = trims_released = 0;
  fk_nthreads = 0;
  malloc_trim(0);
  fk_in_use_before = stats_field("in_use_bytes");
  ck_assert_int_ge(fk_in_use_before, 0);
  for (uintptr_t i = 0; i < (uintptr_t)workers; i++)
    ck_assert_int_eq(
        pthread_create(&fk_threads[fk_nthreads++], NULL, fork_worker, (void*)i),
        0);
  if (with_trimmer)
    ck_assert_int_eq(
        pthread_create(&fk_threads[fk_nthreads++], NULL, trimmer, NULL), 0);
}

/* Stops the threads, checks and frees what they left, then checks that
 * nothing was lost on the way: with every worker (and trimmer) joined,
 * this thread alone drains what the workers freed (malloc_trim gives 1,
 * then 0 right after), and what the statistics count as in use is back
 * to what it was before the churn (glibc may keep a few small blocks per
 * thread it created, such as its TLS vectors: 64 KiB of slack). */
static void churn_stop(void) {
  __atomic_store_n(&fk_stop, 1, __ATOMIC_RELEASE);
  for (int i = 0; i < fk_nthreads; i++)
    pthread_join(fk_threads[i], NULL);
  for (int w = 0; w < FK_WORKERS; w++) {
    for (int s = 0; s < FK_SLOTS; s++) {
      slot_t* sl = &fk_slots[w][s];
      if (!sl->p)
        continue;
      if (!stamped(sl->p, sl->n, (uint32_t)w, sl->seq))
        fk_bad++;
      free(sl->p);
      sl->p = NULL;
    }
  }
  ck_assert_int_eq(fk_null, 0);
  ck_assert_int_eq(fk_bad, 0);
  ck_assert_int_gt(fk_ops, 1000);
  /* Both calls before any assertion: Check's own bookkeeping allocates. */
  int first = malloc_trim(0);
  int second = malloc_trim(0);
  ck_assert_msg(first == 1 && second == 0,
                "malloc_trim(0) gave %d then %d; want 1 (drained) then 0",
                first, second);
  long in_use = stats_field("in_use_bytes");
  ck_assert_msg(in_use >= 0 && in_use <= fk_in_use_before + 64 * (long)KiB,
                "in_use_bytes %ld after the churn, %ld before", in_use,
                fk_in_use_before);
}

/* Lets the churn run `min_ms`, then until it has made `ops` operations;
 * gives up after `max_ms` (stretched under valgrind). */
static void churn_run(long min_ms, long ops, long max_ms) {
  double deadline = now_s() + (double)rs_scaled_ms(max_ms) / 1000;
  sleep_ms(min_ms);
  while (__atomic_load_n(&fk_ops, __ATOMIC_RELAXED) <= ops &&
         now_s() < deadline)
    sleep_ms(10);
}

static void* child_thread(void* arg) {
  uint32_t tid = (uint32_t)(uintptr_t)arg;
  rng_t r = rng_seed(tid);
  for (uint32_t i = 0; i < 2000; i++) {
    size_t n = rnd_size(&r, 32 * KiB);
    void* p = malloc(n);
    if (!p)
      return (void*)1;
    stamp(p, n, tid, i);
    if (!stamped(p, n, tid, i))
      return (void*)1;
    free(p);
  }
  return NULL;
}

/* The forked child: uses the heap it inherited, including blocks the
 * parent's threads allocated, then starts threads of its own. */
static int child_main(pid_t parent) {
  alarm(rs_scaled_s(20)); /* a deadlock kills the child with SIGALRM */
  /* If the parent crashes, do not linger holding the test's output pipe. */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent)
    return 8;
  rng_t r = rng_seed((uint64_t)getpid());

  enum { N = 3000 };

  static void* p[N];
  static size_t n[N];
  for (int i = 0; i < N; i++) {
    n[i] = i % 700 == 0   ? 3 * MiB
           : i % 100 == 0 ? 300 * KiB
                          : rnd_size(&r, 4096);
    p[i] = i % 3 ? malloc(n[i]) : calloc(1, n[i]);
    if (!p[i])
      return 2;
    stamp(p[i], n[i], 99, (uint32_t)i);
  }
  for (int i = 0; i < N; i += 2)
    free(p[i]);
  /* Blocks the workers published before the fork are usable and freeable
   * here. */
  for (int t = 0; t < FK_WORKERS; t++) {
    for (int s = 0; s < FK_SLOTS; s++) {
      slot_t* sl = &fk_slots[t][s];
      void* q = __atomic_load_n(&sl->p, __ATOMIC_ACQUIRE);
      if (!q)
        continue;
      if (!stamped(q, sl->n, (uint32_t)t, sl->seq))
        return 3;
      sl->p = NULL;
      free(q);
    }
  }
  pthread_t th[2];
  for (uintptr_t i = 0; i < 2; i++)
    if (pthread_create(&th[i], NULL, child_thread, (void*)(i + 50)) != 0)
      return 4;
  for (int i = 0; i < 2; i++) {
    void* ret = NULL;
    pthread_join(th[i], &ret);
    if (ret)
      return 5;
  }
  for (int i = 1; i < N; i += 2) {
    if (!stamped(p[i], n[i], 99, (uint32_t)i))
      return 6;
    void* g = realloc(p[i], n[i] * 2 + 1);
    if (!g)
      return 7;
    free(g);
  }
  return 0;
}

/* Waits up to timeout_ms for pid; -1 on timeout (the child is killed). */
static int wait_with_timeout(pid_t pid, int* status, long timeout_ms) {
  double deadline = now_s() + (double)timeout_ms / 1000;
  for (;;) {
    pid_t w = waitpid(pid, status, WNOHANG);
    if (w == pid)
      return 0;
    if (w < 0 && errno != EINTR)
      return -2;
    if (now_s() > deadline)
      break;
    sleep_ms(1);
  }
  kill(pid, SIGKILL);
  waitpid(pid, status, 0);
  return -1;
}

/* Forks `count` times while the churn runs; returns how many children
 * failed (hung, crashed or reported an error). */
static int fork_children(int count) {
  int failures = 0;
  for (int k = 0; k < count; k++) {
    sleep_ms(10 + k % 4 * 5);
    pid_t parent = getpid();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
      rs_child_exit(child_main(parent));
    int status = 0;
    int rc = wait_with_timeout(pid, &status, rs_scaled_ms(30000));
    if (rc == -1) {
      fprintf(stderr, "fork %d: child hung (deadlock)\n", k);
      failures++;
    } else if (rc != 0) {
      fprintf(stderr, "fork %d: waitpid failed\n", k);
      failures++;
    } else if (WIFSIGNALED(status)) {
      fprintf(stderr, "fork %d: child killed by signal %d%s\n", k,
              WTERMSIG(status),
              WTERMSIG(status) == SIGALRM ? " (deadlock)" : "");
      failures++;
    } else if (WEXITSTATUS(status) != 0) {
      fprintf(stderr, "fork %d: child exited with %d\n", k,
              WEXITSTATUS(status));
      failures++;
    }
    /* The parent's heap works right after the fork, too. */
    void* p = malloc(1000);
    ck_assert_ptr_nonnull(p);
    stamp(p, 1000, 5, 5);
    ck_assert(stamped(p, 1000, 5, 5));
    free(p);
  }
  return failures;
}

/* The churn alone, no fork and no trim: four threads on (usually) fewer
 * CPUs, so they are preempted and migrated inside the allocator. */
START_TEST(threads_replace_blocks) {
  churn_start(FK_WORKERS, 0);
  churn_run(2500, 1000, 30000);
  churn_stop();
}

END_TEST

/* fork() from one thread while four others allocate continuously. */
START_TEST(fork_while_threads_allocate) {
  churn_start(FK_WORKERS, 0);
  int failures = fork_children(20);
  churn_stop();
  ck_assert_msg(failures == 0, "%d of 20 forked children failed", failures);
}

END_TEST

/* malloc_trim(0) (which drains every CPU cache) while threads allocate:
 * nothing is lost or handed out twice (churn_stop), some of the trims find
 * objects the workers freed to drain, and the workers are not starved. */
START_TEST(trim_while_threads_allocate) {
  churn_start(3, 0);
  int released = 0, n = 0;
  double t0 = now_s(), elapsed = 0;
  /* At least 1000 trims, and until the workers have done 20000 operations
   * (they must not be starved: give up after 60 s, which a busy machine
   * needs, not a starved worker). Not under valgrind, whose scheduler runs
   * one thread at a time and favours the trimmer. */
  const long want_ops = (long)at_least(20000);
  while (n < 1000 || (__atomic_load_n(&fk_ops, __ATOMIC_RELAXED) < want_ops &&
                      elapsed < 60)) {
    if (malloc_trim(0) == 1)
      released++;
    n++;
    elapsed = now_s() - t0;
  }
  long ops = __atomic_load_n(&fk_ops, __ATOMIC_RELAXED);
  churn_stop();
  ck_assert_msg(ops >= want_ops,
                "workers made %ld operations during %d trims in %.1f s", ops, n,
                elapsed);
  /* Every operation frees a block into a CPU cache: over 1000 trims, some
   * drained one. */
  ck_assert_msg(released > 0, "none of %d trims during %ld operations drained",
                n, ops);
}

END_TEST

/* What malloc_trim(0) answers, with no other thread running: 1 right
 * after a dirty block was freed (its pages go back: an 80 MiB mapping is
 * unmapped, a 300 KiB span's pages released), 0 on a second call that
 * finds nothing. Each pair of calls comes before any assertion: Check's
 * bookkeeping allocates. */
/* Strict mode (RSMALLOC_HARDEN=1): blocks of 48 bytes hold 56, not 64. */
static int strict_mode(void) {
  void* p = malloc(48);
  size_t usable = malloc_usable_size(p);
  free(p);
  return usable == 56;
}

START_TEST(trim_answers_what_it_did) {
  if (strict_mode()) {
    /* Large blocks have guard pages and go back to the OS when freed:
     * malloc_trim finds nothing of theirs to do. */
    long before = stats_field("mapped_bytes");
    char* big = malloc(40 * MiB);
    ck_assert_ptr_nonnull(big);
    memset(big, 0x5a, 40 * MiB);
    long live = stats_field("mapped_bytes");
    free(big);
    long after = stats_field("mapped_bytes");
    ck_assert_msg(
        live - before >= (long)(40 * MiB) && live - after >= (long)(40 * MiB),
        "strict: mapped_bytes %ld, %ld with the block, %ld after", before, live,
        after);
    return;
  }
  malloc_trim(0);
  int idle = malloc_trim(0);

  char* big = malloc(80 * MiB);
  ck_assert_ptr_nonnull(big);
  memset(big, 0x5a, 80 * MiB);
  free(big);
  long mapped_before = stats_field("mapped_bytes");
  int big_first = malloc_trim(0);
  int big_second = malloc_trim(0);
  long mapped_after = stats_field("mapped_bytes");

  char* mid = malloc(300 * KiB);
  ck_assert_ptr_nonnull(mid);
  memset(mid, 0xa5, 300 * KiB);
  free(mid);
  long released_before = stats_field("released_bytes");
  int mid_first = malloc_trim(0);
  int mid_second = malloc_trim(0);
  long released_after = stats_field("released_bytes");

  ck_assert_msg(idle == 0, "malloc_trim(0) right after another gave %d", idle);
  ck_assert_msg(big_first == 1 && big_second == 0,
                "after freeing 80 MiB: malloc_trim(0) gave %d then %d",
                big_first, big_second);
  ck_assert_msg(mapped_before - mapped_after >= (long)(80 * MiB),
                "mapped_bytes %ld -> %ld: the 80 MiB mapping stayed",
                mapped_before, mapped_after);
  ck_assert_msg(mid_first == 1 && mid_second == 0,
                "after freeing 300 KiB: malloc_trim(0) gave %d then %d",
                mid_first, mid_second);
  ck_assert_msg(released_after - released_before >= (long)(300 * KiB),
                "released_bytes %ld -> %ld: the 300 KiB block's pages stayed",
                released_before, released_after);
}

END_TEST

/* fork() while one thread trims and three allocate: the child must not
 * inherit a cache left stopped or a lock left taken. */
START_TEST(fork_while_another_thread_trims) {
  churn_start(3, 1);
  int failures = fork_children(10);
  churn_stop();
  ck_assert_msg(failures == 0, "%d of 10 forked children failed", failures);
  ck_assert_int_gt(trims, 0);
  /* The workers free into the CPU caches all along: some trims drain. */
  ck_assert_int_ge(trims_released, (long)at_least(1));
}

END_TEST

int main(void) {
  Suite* s = suite_create("stress");
  TCase* tc = tcase_create("cross_thread");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, producer_consumer_cross_thread_free);
  tcase_add_test(tc, concurrent_no_duplicates_no_overlap);
  suite_add_tcase(s, tc);

  tc = tcase_create("threads");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, thousands_of_short_lived_threads);
  tcase_add_test(tc, concurrent_realloc_chains);
  suite_add_tcase(s, tc);

  tc = tcase_create("fork_trim");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, threads_replace_blocks);
  tcase_add_test(tc, fork_while_threads_allocate);
  tcase_add_test(tc, trim_answers_what_it_did);
  tcase_add_test(tc, trim_while_threads_allocate);
  tcase_add_test(tc, fork_while_another_thread_trims);
  suite_add_tcase(s, tc);

  return rs_check_run(s, "test_stress");
}
