/* SPDX-License-Identifier: MIT */
/* Draining the per-CPU caches (malloc_trim(0): stop, fence, drain) while
 * other threads allocate and free with the real library: objects keep their
 * content, nothing crashes, and afterwards rsmalloc_stats_json's in_use for
 * a class the test alone uses equals what the test holds. */
#define _GNU_SOURCE
#include <check.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check_main.h"
#include "alloc_util.h"

enum { WORKERS = 6, HELD = 50 };

/* Held objects are 3000 bytes: class 3072, which the churn avoids. */
#define HELD_SIZE 3000
#define HELD_CLASS 3072
#define AVOID_LO 2817
#define AVOID_HI 3072

static void* g_held[WORKERS][HELD];
static uint64_t g_held_bad;
static volatile int g_trim_stop;
static uint64_t g_trims, g_trims_released;

static void held_start(churn_t* c) {
  for (int i = 0; i < HELD; i++) {
    void* p = malloc(HELD_SIZE);
    if (p == NULL) {
      c->nulls++;
      continue;
    }
    stamp(p, HELD_SIZE, 1000 + c->id, (uint32_t)i);
    g_held[c->id][i] = p;
  }
}

/* Checks the held objects (they stay allocated for the main thread). */
static void held_end(churn_t* c) {
  for (int i = 0; i < HELD; i++) {
    void* p = g_held[c->id][i];
    if (p && !stamped(p, HELD_SIZE, 1000 + c->id, (uint32_t)i))
      __atomic_add_fetch(&g_held_bad, 1, __ATOMIC_RELAXED);
  }
}

static void* trimmer(void* arg) {
  (void)arg;
  while (!__atomic_load_n(&g_trim_stop, __ATOMIC_RELAXED)) {
    /* 1 when it drained or released something: with workers freeing
     * into the caches, some of these trims must. */
    int rc = malloc_trim(0);
    __atomic_add_fetch(&g_trims, 1, __ATOMIC_RELAXED);
    if (rc == 1)
      __atomic_add_fetch(&g_trims_released, 1, __ATOMIC_RELAXED);
    sleep_us(200);
  }
  return NULL;
}

/* The trimmer's liveness: enough trims, and some that released. Counted
 * to a deadline rather than scaled down to nothing under valgrind. */
static int trimmer_did_enough(void* arg) {
  (void)arg;
  return __atomic_load_n(&g_trims, __ATOMIC_RELAXED) > 10 &&
         __atomic_load_n(&g_trims_released, __ATOMIC_RELAXED) >= 1;
}

static long held_in_use(long* cached) {
  long in_use;
  ck_assert_int_eq(class_stats(HELD_CLASS, &in_use, cached), 0);
  return in_use;
}

START_TEST(trim_while_threads_allocate) {
  churn_avoid_lo = AVOID_LO;
  churn_avoid_hi = AVOID_HI;
  long cached;
  malloc_trim(0);
  long base = held_in_use(&cached);
  ck_assert_int_eq(cached, 0);  // trim emptied every cache

  churn_t w[WORKERS];
  memset(w, 0, sizeof w);
  for (int i = 0; i < WORKERS; i++) {
    w[i].on_start = held_start;
    w[i].on_end = held_end;
  }
  pthread_t t;
  g_trim_stop = 0;
  g_trims = g_trims_released = 0;
  ck_assert_int_eq(churn_start(w, WORKERS, 0), 0);
  ck_assert_int_eq(pthread_create(&t, NULL, trimmer, NULL), 0);
  run_until(trimmer_did_enough, NULL, test_ms(2000), 30000);
  uint64_t ops;
  uint64_t bad = churn_finish(w, WORKERS, &ops);
  g_trim_stop = 1;
  pthread_join(t, NULL);
  note(
      "rseq/test_drain: mode %s, %llu operations, %llu malloc_trim(0) "
      "(%llu released something)\n",
      rsmalloc_cache_mode(), (unsigned long long)ops,
      (unsigned long long)g_trims, (unsigned long long)g_trims_released);
  ck_assert_msg(bad == 0, "%llu objects lost their content (or failed)",
                (unsigned long long)bad);
  ck_assert_uint_eq(g_held_bad, 0);
  ck_assert_msg(trimmer_did_enough(NULL),
                "%llu trims, %llu released something (want > 10 and >= 1)",
                (unsigned long long)g_trims,
                (unsigned long long)g_trims_released);

  /* What the test holds of class 3072 is what the statistics say is in
   * use: exactly, after a drain (a few extra for anything else). */
  malloc_trim(0);
  long in_use = held_in_use(&cached);
  ck_assert_int_eq(cached, 0);
  ck_assert_msg(
      in_use >= base + WORKERS * HELD && in_use <= base + WORKERS * HELD + 4,
      "class %d: in_use %ld, expected %d (+ %ld before)", HELD_CLASS, in_use,
      WORKERS * HELD, base);
  /* Freed, they sit in the CPU caches, which in_use does not count; only
   * this thread runs now, so the next trim drains them (1) and the one
   * right after it finds nothing (0). */
  for (int i = 0; i < WORKERS; i++)
    for (int k = 0; k < HELD; k++) {
      ck_assert(
          stamped(g_held[i][k], HELD_SIZE, 1000 + (uint32_t)i, (uint32_t)k));
      free(g_held[i][k]);
      g_held[i][k] = NULL;
    }
  in_use = held_in_use(&cached);
  ck_assert_msg(in_use >= base && in_use <= base + 4,
                "class %d: in_use %ld after freeing all, %ld before",
                HELD_CLASS, in_use, base);
  /* Both calls before any assertion: Check's own bookkeeping allocates. */
  int first = malloc_trim(0);
  int second = malloc_trim(0);
  ck_assert_msg(first == 1 && second == 0,
                "malloc_trim(0) gave %d then %d; want 1 (drained) then 0",
                first, second);
  in_use = held_in_use(&cached);
  ck_assert_int_eq(cached, 0);
  ck_assert_msg(in_use >= base && in_use <= base + 4,
                "class %d: in_use %ld after trim, %ld before", HELD_CLASS,
                in_use, base);
}

END_TEST

static churn_t* g_ops_of;
static int g_ops_of_n;

/* Enough trims and enough operations by the workers in g_ops_of. */
static int trims_and_ops_enough(void* arg) {
  (void)arg;
  uint64_t ops = 0;
  for (int i = 0; i < g_ops_of_n; i++)
    ops += __atomic_load_n(&g_ops_of[i].ops, __ATOMIC_RELAXED);
  return __atomic_load_n(&g_trims, __ATOMIC_RELAXED) > 10 && ops > 500;
}

/* Trims from several threads at once, while others allocate: drains must
 * not deadlock against each other or lose objects. */
START_TEST(concurrent_trims) {
  churn_avoid_lo = 1;
  churn_avoid_hi = 0;
  churn_t w[3];
  memset(w, 0, sizeof w);
  pthread_t t[3];
  g_trims = g_trims_released = 0;
  g_trim_stop = 0;
  ck_assert_int_eq(churn_start(w, 3, 10), 0);
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(pthread_create(&t[i], NULL, trimmer, NULL), 0);
  g_ops_of = w;
  g_ops_of_n = 3;
  run_until(trims_and_ops_enough, NULL, test_ms(2000) / 2, 30000);
  uint64_t ops;
  uint64_t bad = churn_finish(w, 3, &ops);
  g_trim_stop = 1;
  for (int i = 0; i < 3; i++)
    pthread_join(t[i], NULL);
  ck_assert_msg(bad == 0, "%llu objects lost their content (or failed)",
                (unsigned long long)bad);
  ck_assert_msg(g_trims > 10 && ops > 500,
                "%llu trims and %llu operations (want > 10 and > 500)",
                (unsigned long long)g_trims, (unsigned long long)ops);
}

END_TEST

int main(void) {
  Suite* s = suite_create("rseq_drain");
  TCase* tc = tcase_create("drain");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, trim_while_threads_allocate);
  tcase_add_test(tc, concurrent_trims);
  suite_add_tcase(s, tc);
  return rs_check_run(s, "rseq/test_drain");
}
