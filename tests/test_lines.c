/* SPDX-License-Identifier: MIT */
/* Cache lines and CPU caches: objects that two CPUs' caches hand out never
 * share a cache line when they come fresh from a span, so two threads on
 * two CPUs that write their own objects do not bounce a line between them
 * (false sharing: bench/workloads/falseshare.c, Hoard's cache-thrash).
 * Nor do they share one with an object carved alone before the caches
 * started (falseshare's first small block, which its main thread frees
 * and hands out again in the passive phase, cache-scratch).
 * Runs in both cache modes (again in a child with RSMALLOC_RSEQ=0). */
#define _GNU_SOURCE
#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check_main.h"
#include "on_valgrind.h"
#include "rsmalloc.h"

enum { LINE = 64, PER_SIZE = 2 };

/* Sizes of classes that nothing else in this program allocates (Check's
 * and glibc's own allocations are smaller), none a multiple of 64 B:
 * classes 112, 160, 208 and 352. */
static const size_t kSizes[] = {100, 150, 200, 340};
#define NSIZES (sizeof(kSizes) / sizeof(kSizes[0]))

/* Sizes of four other such classes (144, 176, 240 and 288), of which
 * main() allocates one object each before anything else, so before the
 * caches start: a central list carves it alone, in the middle of a pair
 * of lines whose rest the next CPU cache's refill gets. */
static const size_t kAloneSizes[] = {130, 170, 230, 280};
static void* g_alone[NSIZES];

typedef struct {
  int cpu;                      /* pinned here */
  const size_t* sizes;          /* NSIZES sizes to allocate */
  void* objs[NSIZES][PER_SIZE]; /* what it allocated */
} worker_t;

static worker_t g_w[2];
static int g_step;   /* shared progress, atomic */
static int g_failed; /* a wait timed out, or pinning failed */

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Spins (the thread stays on its CPU, and keeps its mm_cid) until g_step
 * reaches `want`; 0 after 20 s. */
static int wait_step(int want) {
  double end = now() + 20;
  while (__atomic_load_n(&g_step, __ATOMIC_ACQUIRE) < want) {
    if (now() > end)
      return 0;
  }
  return 1;
}

/* Worker 0 allocates while worker 1 spins on its CPU, then worker 1
 * allocates while worker 0 spins: two running threads on two CPUs, so two
 * CPU caches (by CPU, or by mm_cid, which running threads never share). */
static void* worker(void* arg) {
  worker_t* w = arg;
  int id = (int)(w - g_w);
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(w->cpu, &set);
  if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0) {
    __atomic_store_n(&g_failed, 1, __ATOMIC_RELAXED);
    return NULL;
  }
  __atomic_add_fetch(&g_step, 1, __ATOMIC_ACQ_REL); /* 1, 2: both pinned */
  if (!wait_step(2 + id)) {
    __atomic_store_n(&g_failed, 1, __ATOMIC_RELAXED);
    return NULL;
  }
  for (size_t s = 0; s < NSIZES; s++) {
    for (int k = 0; k < PER_SIZE; k++) {
      w->objs[s][k] = malloc(w->sizes[s]);
      memset(w->objs[s][k], id + 1, w->sizes[s]);
    }
  }
  __atomic_add_fetch(&g_step, 1, __ATOMIC_ACQ_REL); /* 3, 4 */
  if (!wait_step(4))
    __atomic_store_n(&g_failed, 1, __ATOMIC_RELAXED);
  return NULL;
}

/* The first two CPUs this process may run on; 0 when it has fewer. */
static int two_cpus(int cpus[2]) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) != 0)
    return 0;
  int n = 0;
  for (int c = 0; c < CPU_SETSIZE && n < 2; c++) {
    if (CPU_ISSET(c, &set))
      cpus[n++] = c;
  }
  return n == 2;
}

/* Whether objects of `size` bytes at pa and pb touch a common line. */
static int share_line(uintptr_t pa, uintptr_t pb, size_t size) {
  /* The lines [first, last] each object touches. */
  uintptr_t a0 = pa / LINE, a1 = (pa + size - 1) / LINE;
  uintptr_t b0 = pb / LINE, b1 = (pb + size - 1) / LINE;
  return !(a1 < b0 || b1 < a0);
}

/* Two pinned workers allocate PER_SIZE objects of each of `sizes` (worker
 * 0 first); 0 when there are fewer than two CPUs. */
static int run_workers(const size_t* sizes, int cpus[2]) {
  if (!two_cpus(cpus)) {
    fprintf(stderr, "test_lines: fewer than two CPUs; nothing to compare\n");
    return 0;
  }
  memset(g_w, 0, sizeof(g_w));
  g_step = 0;
  g_failed = 0;
  pthread_t t[2];
  for (int i = 0; i < 2; i++) {
    g_w[i].cpu = cpus[i];
    g_w[i].sizes = sizes;
    ck_assert_int_eq(pthread_create(&t[i], NULL, worker, &g_w[i]), 0);
  }
  for (int i = 0; i < 2; i++)
    pthread_join(t[i], NULL);
  ck_assert_msg(!g_failed, "a worker could not pin itself or timed out");
  for (size_t s = 0; s < NSIZES; s++) {
    for (int a = 0; a < PER_SIZE; a++) {
      uintptr_t pa = (uintptr_t)g_w[0].objs[s][a];
      for (int b = 0; b < PER_SIZE; b++) {
        uintptr_t pb = (uintptr_t)g_w[1].objs[s][b];
        ck_assert(pa != 0 && pb != 0);
        ck_assert_msg(!share_line(pa, pb, sizes[s]),
                      "size %zu: %p (CPU %d) and %p (CPU %d) share a line",
                      sizes[s], (void*)pa, cpus[0], (void*)pb, cpus[1]);
      }
    }
  }
  return 1;
}

static void free_workers_objects(void) {
  for (int i = 0; i < 2; i++) {
    for (size_t s = 0; s < NSIZES; s++) {
      for (int k = 0; k < PER_SIZE; k++)
        free(g_w[i].objs[s][k]);
    }
  }
}

START_TEST(fresh_objects_of_two_cpus_share_no_line) {
  int cpus[2];
  if (run_workers(kSizes, cpus))
    free_workers_objects();
}

END_TEST

/* The object main() carved alone stays in use (as falseshare's main thread
 * keeps its first block until it frees it into its own cache): the first
 * refills of the two CPUs' caches carve the rest of its line pair, but
 * hand out objects of whole pairs, and keep the others for last. */
START_TEST(objects_carved_alone_share_no_line_with_caches) {
  int cpus[2];
  if (!run_workers(kAloneSizes, cpus))
    return;
  for (size_t s = 0; s < NSIZES; s++) {
    uintptr_t alone = (uintptr_t)g_alone[s];
    ck_assert(alone != 0);
    for (int i = 0; i < 2; i++) {
      for (int k = 0; k < PER_SIZE; k++) {
        uintptr_t p = (uintptr_t)g_w[i].objs[s][k];
        ck_assert_msg(!share_line(alone, p, kAloneSizes[s]),
                      "size %zu: %p (carved alone) and %p (CPU %d) share a "
                      "line",
                      kAloneSizes[s], (void*)alone, (void*)p, cpus[i]);
      }
    }
  }
  free_workers_objects();
}

END_TEST

static Suite* make_suite(void) {
  Suite* s = suite_create("lines");
  TCase* tc = tcase_create("false sharing");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, fresh_objects_of_two_cpus_share_no_line);
  tcase_add_test(tc, objects_carved_alone_share_no_line_with_caches);
  suite_add_tcase(s, tc);
  return s;
}

int main(int argc, char** argv) {
  (void)argc;
  /* First: before anything else allocates, the caches have not started
   * (they start at the 16th allocation or the first thread). */
  for (size_t s = 0; s < NSIZES; s++)
    g_alone[s] = malloc(kAloneSizes[s]);
  /* Under valgrind every thread uses one cache, and disabled there are
   * none: nothing to judge. */
  if (rs_on_valgrind() || strcmp(rsmalloc_cache_mode(), "disabled") == 0)
    return 77;
  return rs_check_run_both_modes(make_suite(), "test_lines", argv);
}
