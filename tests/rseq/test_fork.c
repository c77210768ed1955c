/* SPDX-License-Identifier: MIT */
/* fork() against the per-CPU caches with the real library: forking while
 * another thread drains (malloc_trim(0) in a loop) must not deadlock; a
 * child in rseq mode creates threads that allocate, hand over and free with
 * content checks, forks again, and drains; several threads fork at once. */
#define _GNU_SOURCE
#include <check.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/wait.h>

#include "../check_main.h"
#include "alloc_util.h"

enum { PARENT_N = 400, CHILD_WORKERS = 4 };

static volatile int g_trim_stop;
static uint64_t g_trims;
static char g_parent_mode[128];
static void* g_parent_obj[PARENT_N];

static void* trimmer(void* arg) {
  (void)arg;
  while (!__atomic_load_n(&g_trim_stop, __ATOMIC_RELAXED)) {
    malloc_trim(0);
    __atomic_add_fetch(&g_trims, 1, __ATOMIC_RELAXED);
    sleep_us(100);
  }
  return NULL;
}

static size_t parent_size(int i) {
  return i % 50 == 0 ? 200 * KiB : MIN_OBJECT + (size_t)(i * 37) % 2000;
}

static void parent_objects_alloc(void) {
  for (int i = 0; i < PARENT_N; i++) {
    g_parent_obj[i] = malloc(parent_size(i));
    ck_assert_ptr_nonnull(g_parent_obj[i]);
    stamp(g_parent_obj[i], parent_size(i), 77, (uint32_t)i);
  }
}

static int parent_objects_ok(void) {
  for (int i = 0; i < PARENT_N; i++)
    if (!stamped(g_parent_obj[i], parent_size(i), 77, (uint32_t)i))
      return 0;
  return 1;
}

static void parent_objects_free(void) {
  for (int i = 0; i < PARENT_N; i++) {
    free(g_parent_obj[i]);
    g_parent_obj[i] = NULL;
  }
}

/* A burst of allocations: returns 0 when every object kept its content.
 * `alone`: no other thread runs in this process, so a trim right after
 * freeing the round's 200 objects must drain them (1) and a second one
 * must find nothing (0). */
static int burst(uint32_t id, int rounds, int alone) {
  enum { N = 200 };

  void* p[N];
  size_t n[N];
  rng_t r = rng_seed(id);
  for (int round = 0; round < rounds; round++) {
    for (int i = 0; i < N; i++) {
      n[i] = churn_size(&r);
      p[i] = malloc(n[i]);
      if (p[i] == NULL)
        return 10;
      stamp(p[i], n[i], id, (uint32_t)(round * N + i));
    }
    for (int i = 0; i < N; i++) {
      if (!stamped(p[i], n[i], id, (uint32_t)(round * N + i)))
        return 11;
      free(p[i]);
    }
    if (round % 4 == 3) {
      int first = malloc_trim(0);
      int second = malloc_trim(0);
      if (alone && (first != 1 || second != 0)) {
        fprintf(stderr, "burst %u alone: malloc_trim gave %d then %d\n",
                (unsigned)id, first, second);
        return 12;
      }
    }
  }
  return 0;
}

/* Waits for every child; returns how many failed and describes the first
 * failure into why. */
static int reap(const pid_t* pids, int n, char* why, size_t len) {
  int failed = 0;
  for (int k = 0; k < n; k++) {
    int status = 0;
    char what[96];
    int rc = wait_with_timeout(pids[k], &status, rs_scaled_ms(30000));
    if (!child_ok(rc, status, what, sizeof what)) {
      if (failed++ == 0)
        snprintf(why, len, "child %d: %s", k, what);
      fprintf(stderr, "child %d: %s\n", k, what);
    }
  }
  return failed;
}

START_TEST(fork_while_another_thread_drains) {
  enum { FORKS = 40 };

  churn_t w[2];
  memset(w, 0, sizeof w);
  pthread_t t;
  g_trim_stop = 0;
  g_trims = 0;
  ck_assert_int_eq(churn_start(w, 2, 0), 0);
  ck_assert_int_eq(pthread_create(&t, NULL, trimmer, NULL), 0);
  pid_t pids[FORKS];
  for (int k = 0; k < FORKS; k++) {
    sleep_us(2000 + k % 5 * 1000);
    pids[k] = fork();
    ck_assert_int_ge(pids[k], 0);
    if (pids[k] == 0) {
      alarm(rs_scaled_s(10)); /* a deadlock ends with SIGALRM */
      rs_child_exit(burst(500u + (uint32_t)k, 6, 1));
    }
  }
  char why[160] = "";
  int failed = reap(pids, FORKS, why, sizeof why);
  uint64_t ops;
  uint64_t bad = churn_finish(w, 2, &ops);
  g_trim_stop = 1;
  pthread_join(t, NULL);
  note("rseq/test_fork: mode %s, %d forks during %llu malloc_trim(0)\n",
       rsmalloc_cache_mode(), FORKS, (unsigned long long)g_trims);
  ck_assert_msg(failed == 0, "%d of %d children failed; %s", failed, FORKS,
                why);
  ck_assert_uint_eq(bad, 0);
  ck_assert_uint_gt(g_trims, at_least(10));
}

END_TEST

/* In a child: the parent's objects survived; threads allocate and hand
 * objects to each other; maybe a grandchild does the same; then a drain. */
static int child_main(int k) {
  alarm(rs_scaled_s(20));
  if (strcmp(rsmalloc_cache_mode(), g_parent_mode) != 0)
    return 20;
  if (!parent_objects_ok())
    return 21;
  /* Objects the parent's workers had in transit belong to us now. */
  churn_t w[CHILD_WORKERS];
  memset(w, 0, sizeof w);
  if (churn_start(w, CHILD_WORKERS, 100 + (uint32_t)k * 10) != 0)
    return 22;
  pid_t grandchild = -1;
  if (k % 3 == 0) {
    grandchild = fork();
    if (grandchild < 0)
      return 23;
    if (grandchild == 0) {
      alarm(rs_scaled_s(20));
      /* Only the forking thread exists here; start fresh workers. */
      churn_t g[2];
      memset(g, 0, sizeof g);
      if (churn_start(g, 2, 900) != 0)
        rs_child_exit(24);
      int rc = burst(901, 4, 0);
      sleep_us(50000);
      if (churn_finish(g, 2, NULL) != 0)
        rs_child_exit(25);
      rs_child_exit(rc != 0 ? rc : parent_objects_ok() ? 0 : 26);
    }
  }
  int rc = burst(200u + (uint32_t)k, 4, 0);
  if (rc != 0)
    return rc;
  /* Let every thread get going: at least 200 operations each (on a busy
   * machine that can take a while; the alarm bounds it). */
  sleep_us(100000);
  for (int i = 0; i < CHILD_WORKERS; i++)
    while (__atomic_load_n(&w[i].ops, __ATOMIC_RELAXED) < 200)
      sleep_us(1000);
  if (churn_finish(w, CHILD_WORKERS, NULL) != 0)
    return 27;
  if (grandchild > 0) {
    int status = 0;
    char what[96];
    if (!child_ok(wait_with_timeout(grandchild, &status, rs_scaled_ms(20000)),
                  status, what, sizeof what)) {
      fprintf(stderr, "grandchild of child %d: %s\n", k, what);
      return 29;
    }
  }
  if (!parent_objects_ok())
    return 30;
  parent_objects_free();
  /* The workers are joined and the grandchild gone: this thread is alone,
   * and the parent's objects it just freed are there to drain. */
  int first = malloc_trim(0);
  int second = malloc_trim(0);
  if (first != 1 || second != 0) {
    fprintf(stderr, "child %d: malloc_trim gave %d then %d\n", k, first,
            second);
    return 31;
  }
  return 0;
}

START_TEST(child_allocates_from_threads) {
  enum { FORKS = 8 };

  snprintf(g_parent_mode, sizeof g_parent_mode, "%s", rsmalloc_cache_mode());
  parent_objects_alloc();
  churn_t w[3];
  memset(w, 0, sizeof w);
  ck_assert_int_eq(churn_start(w, 3, 0), 0);
  pid_t pids[FORKS];
  for (int k = 0; k < FORKS; k++) {
    sleep_us(5000);
    pids[k] = fork();
    ck_assert_int_ge(pids[k], 0);
    if (pids[k] == 0)
      rs_child_exit(child_main(k));
  }
  char why[160] = "";
  int failed = reap(pids, FORKS, why, sizeof why);
  uint64_t bad = churn_finish(w, 3, NULL);
  note("rseq/test_fork: mode %s, %d children with %d threads each\n",
       g_parent_mode, FORKS, CHILD_WORKERS);
  ck_assert_msg(failed == 0, "%d of %d children failed; %s", failed, FORKS,
                why);
  ck_assert_uint_eq(bad, 0);
  ck_assert(parent_objects_ok());
  parent_objects_free();
}

END_TEST

/* Three threads fork at once (each five times) while two allocate and one
 * drains: the atfork handlers' locks must not deadlock. */
static void* forker(void* arg) {
  uintptr_t id = (uintptr_t)arg;
  pid_t pids[5];
  for (int k = 0; k < 5; k++) {
    sleep_us(1000 + (long)id * 300);
    pids[k] = fork();
    if (pids[k] < 0)
      return (void*)1;
    if (pids[k] == 0) {
      alarm(rs_scaled_s(10));
      rs_child_exit(burst(700u + (uint32_t)(id * 10 + (uintptr_t)k), 3, 1));
    }
  }
  char why[160];
  return (void*)(uintptr_t)reap(pids, 5, why, sizeof why);
}

START_TEST(several_threads_fork_at_once) {
  churn_t w[2];
  memset(w, 0, sizeof w);
  pthread_t t, f[3];
  g_trim_stop = 0;
  ck_assert_int_eq(churn_start(w, 2, 0), 0);
  ck_assert_int_eq(pthread_create(&t, NULL, trimmer, NULL), 0);
  for (uintptr_t i = 0; i < 3; i++)
    ck_assert_int_eq(pthread_create(&f[i], NULL, forker, (void*)i), 0);
  uintptr_t failed = 0;
  for (int i = 0; i < 3; i++) {
    void* ret;
    pthread_join(f[i], &ret);
    failed += (uintptr_t)ret;
  }
  uint64_t bad = churn_finish(w, 2, NULL);
  g_trim_stop = 1;
  pthread_join(t, NULL);
  ck_assert_msg(failed == 0, "%lu of 15 children failed (see the log)",
                (unsigned long)failed);
  ck_assert_uint_eq(bad, 0);
}

END_TEST

int main(void) {
  Suite* s = suite_create("rseq_fork");
  TCase* tc = tcase_create("fork");
  tcase_set_timeout(tc, 90);
  tcase_add_test(tc, fork_while_another_thread_drains);
  tcase_add_test(tc, child_allocates_from_threads);
  tcase_add_test(tc, several_threads_fork_at_once);
  suite_add_tcase(s, tc);
  return rs_check_run(s, "rseq/test_fork");
}
