/* SPDX-License-Identifier: MIT */
/* fsprobe: falseshare's two phases with two threads pinned to two CPUs,
 * measured so that the load of other processes drops out (not a bench/run
 * workload; run it under LD_PRELOAD, see docs/benchmarks.md, "falseshare:
 * where the time went").
 *
 * Each round is falseshare's (malloc 8 bytes, write them `writes` times,
 * free). A round counts only when the other thread finished a round while
 * it ran, so both threads were on their CPUs; the median of those rounds
 * is the cost of a round with both running, which false sharing multiplies
 * and a busy machine does not. Prints per phase that median (each
 * thread's), how many rounds counted, and whether the two threads' first
 * objects were in one 64-byte line:
 *
 *   FSPROBE phase=active round_us=2.91,2.93 counted=15112,15101 same_line=0
 *
 * As falseshare's run_threads, the main thread allocates the array of
 * thread ids (16 bytes) before it makes the threads of a phase and frees
 * it after it joined them: in a fresh process that is its first small
 * block, allocated before the allocator's per-CPU caches start, and the
 * first of the two objects it hands out in the passive phase.
 *
 * Parameters: rounds per thread and phase (50000), writes per round
 * (1000). The threads are pinned to the first two CPUs this process may
 * use (taskset chooses them). */
#include "common.h"

typedef struct {
  int cpu;          /* pinned here */
  char* given;      /* passive phase: the object the main thread made */
  char* first;      /* the object of its first round */
  double* counted;  /* round times with the other thread running */
  long num_counted; /* entries in counted */
  long done;        /* rounds finished (atomic) */
  char pad[64];
} prober_t;

static prober_t g_p[2];
static long g_rounds, g_writes;
static pthread_barrier_t g_start;

static int by_value(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

static void* prober(void* arg) {
  prober_t* me = arg;
  prober_t* other = &g_p[me == &g_p[0] ? 1 : 0];
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(me->cpu, &set);
  if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0)
    die("cannot pin a thread to CPU %d", me->cpu);
  pthread_barrier_wait(&g_start);
  if (me->given != NULL)
    free(me->given);
  for (long round = 0; round < g_rounds; round++) {
    long before = __atomic_load_n(&other->done, __ATOMIC_RELAXED);
    double t0 = now_sec();
    volatile char* p = xmalloc(8);
    if (round == 0)
      me->first = (char*)p;
    for (long k = 0; k < g_writes; k++) {
      for (int j = 0; j < 8; j++)
        p[j] = (char)(p[j] + 1);
    }
    free((void*)p);
    double t1 = now_sec();
    long after = __atomic_load_n(&other->done, __ATOMIC_RELAXED);
    if (after > before && after < g_rounds)
      me->counted[me->num_counted++] = t1 - t0;
    __atomic_store_n(&me->done, round + 1, __ATOMIC_RELAXED);
  }
  return NULL;
}

static double median_us(prober_t* p) {
  if (p->num_counted == 0)
    return 0;
  qsort(p->counted, (size_t)p->num_counted, sizeof(double), by_value);
  return p->counted[p->num_counted / 2] * 1e6;
}

int main(int argc, char** argv) {
  bench_args(argc, argv);
  g_rounds = arg_long("rounds", 50000);
  g_writes = arg_long("writes", 1000);
  bench_args_done();
  if (g_rounds < 1 || g_writes < 1)
    die("rounds and writes must be positive");
  int cpus[2];
  if (allowed_cpus(cpus, 2) < 2)
    die("fsprobe needs two CPUs");
  for (int phase = 0; phase < 2; phase++) {
    pthread_barrier_init(&g_start, NULL, 2);
    for (int i = 0; i < 2; i++) {
      char* given = NULL;
      if (phase == 1) {
        given = xmalloc(8);
        given[0] = 1;
      }
      double* counted = calloc((size_t)g_rounds, sizeof(double));
      if (counted == NULL)
        die("calloc failed");
      g_p[i] = (prober_t){cpus[i], given, NULL, counted, 0, 0, {0}};
    }
    pthread_t* t = xmalloc(2 * sizeof(pthread_t));
    for (int i = 0; i < 2; i++) {
      if (pthread_create(&t[i], NULL, prober, &g_p[i]) != 0)
        die("pthread_create failed");
    }
    for (int i = 0; i < 2; i++)
      pthread_join(t[i], NULL);
    free(t);
    uintptr_t a = (uintptr_t)g_p[0].first, b = (uintptr_t)g_p[1].first;
    printf("FSPROBE phase=%s round_us=%.2f,%.2f counted=%ld,%ld same_line=%d\n",
           phase == 0 ? "active" : "passive", median_us(&g_p[0]),
           median_us(&g_p[1]), g_p[0].num_counted, g_p[1].num_counted,
           a / 64 == b / 64);
    for (int i = 0; i < 2; i++)
      free(g_p[i].counted);
    pthread_barrier_destroy(&g_start);
  }
  return 0;
}
