// SPDX-License-Identifier: MIT
// Unit tests of the per-CPU caches (lib/rseq/cpu_cache.h) across CPUs and
// threads, over the fake backend (cpu_cache_fake.h), in both the locked
// fallback and rseq mode: drain_all, fork, and conservation under threads
// with a signal storm.
#include <algorithm>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <vector>

#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>

#include "../check_main.h"
#include "cpu_cache_fake.h"

using namespace fake;  // NOLINT: the tests share the fake backend

// --- every CPU

START_TEST(drain_all_returns_everything) {
  init_cache(_i != 0);
  std::vector<int> cpus = allowed_cpus();
  if (cpus.size() > 4)
    cpus.resize(4);
  std::vector<void*> keep;
  for (int cpu : cpus) {
    pin_to(cpu);
    for (size_t c = 1; c < kClasses; c++) {
      for (void* p : from_backend(c, 10))
        put(c, p);
    }
    for (int k = 0; k < 3; k++)
      keep.push_back(get(1));
  }
  size_t cached = total_cached();
  ck_assert_uint_gt(cached, 0);
  check_conservation(cached);
  reset_counters();
  size_t drained = g_cache->drain_all();
  ck_assert_uint_eq(drained, cached);
  ck_assert_int_eq(g_drained, static_cast<int>(cached));
  ck_assert_int_le(g_max_drain, 64);
  for (size_t c = 1; c < kClasses; c++)
    ck_assert_uint_eq(g_cache->cached_objects(c), 0);
  check_conservation(0);
  // The capacity went back too: the next pop misses, then refills.
  pin_to(cpus[0]);
  ck_assert_ptr_null(g_cache->pop(2));
  void* p = get(2);
  ck_assert_ptr_nonnull(p);
  ck_assert_int_eq(g_refill_calls, 1);
  ck_assert_int_eq(g_last_refill_n, 2);  // from the first step again
  size_t left = g_cache->cached_objects(2);
  ck_assert_uint_eq(left, 1);
  ck_assert_uint_eq(g_cache->drain_all(), left);
  check_conservation(0);
}

END_TEST

START_TEST(fork_child_can_use_the_cache) {
  init_cache(_i != 0);
  pin_to(allowed_cpus()[0]);
  void* a = get(1);
  ck_assert_ptr_nonnull(a);
  g_cache->lock_all();  // what the atfork prepare handler does
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    alarm(10);  // a deadlock kills the child instead of hanging the test
    g_cache->after_fork_child();
    std::vector<void*> held;
    for (int k = 0; k < 100; k++)
      held.push_back(get(1 + k % 3));
    for (int k = 0; k < 100; k++)
      put(1 + k % 3, held[static_cast<size_t>(k)]);
    g_cache->drain_all();
    _exit(g_errors == 0 && total_cached() == 0 ? 0 : 1);
  }
  g_cache->unlock_all();
  int status = 0;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "child status %#x", status);
  put(1, a);  // the parent goes on
  check_conservation(total_cached());
}

END_TEST

// --- conservation under threads

namespace {

constexpr int kThreads = 4;
constexpr size_t kHoldMax = 48;  // per thread and class

struct Worker {
  pthread_t thread;
  unsigned seed;
  std::vector<void*> held[kClasses];  // what this thread ends up holding
  long gets, puts, misses;
};

void on_alarm(int) {}

void* cache_worker(void* arg) {
  Worker* w = static_cast<Worker*>(arg);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGALRM);
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);  // signals land inside pops
  for (int op = 0; op < 60000; op++) {
    unsigned r = rand_r(&w->seed);
    size_t c = 1 + r % (kClasses - 1);
    std::vector<void*>& h = w->held[c];
    bool want_put = !h.empty() && (((r >> 4) & 1) || h.size() >= kHoldMax);
    if (want_put) {
      size_t i = (r >> 5) % h.size();
      void* p = h[i];
      h[i] = h.back();
      h.pop_back();
      put(c, p);
      w->puts++;
    } else {
      void* p = get(c);
      if (p == nullptr) {
        w->misses++;  // backend empty: allowed, not lost
      } else {
        h.push_back(p);
        w->gets++;
      }
    }
    if ((r & 0xff) == 0)
      sched_yield();
  }
  // Give half back, so the caches hold something at the end.
  for (size_t c = 1; c < kClasses; c++) {
    while (w->held[c].size() > kHoldMax / 2) {
      put(c, w->held[c].back());
      w->held[c].pop_back();
      w->puts++;
    }
  }
  return nullptr;
}

}  // namespace

START_TEST(conservation_across_threads) {
  init_cache(_i != 0, 64 * 1024);
  fprintf(stderr, "conservation in %s mode\n", mode_name(g_cache->mode()));
  // A signal storm at the workers: in rseq mode, sections get restarted.
  struct sigaction sa = {};
  sa.sa_handler = on_alarm;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGALRM, &sa, nullptr);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGALRM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  struct itimerval storm = {{0, 200}, {0, 200}};
  setitimer(ITIMER_REAL, &storm, nullptr);

  Worker workers[kThreads] = {};
  for (int i = 0; i < kThreads; i++) {
    workers[i].seed = static_cast<unsigned>(1234 + i);
    ck_assert_int_eq(
        pthread_create(&workers[i].thread, nullptr, cache_worker, &workers[i]),
        0);
  }
  // Meanwhile, drain everything now and then (what malloc_trim does).
  size_t drains = 0;
  for (int k = 0; k < 50; k++) {
    usleep(2000);
    g_cache->drain_all();
    drains++;
  }
  for (Worker& w : workers)
    pthread_join(w.thread, nullptr);
  struct itimerval off = {};
  setitimer(ITIMER_REAL, &off, nullptr);

  long gets = 0, puts = 0;
  size_t held = 0;
  for (Worker& w : workers) {
    gets += w.gets;
    puts += w.puts;
    for (size_t c = 1; c < kClasses; c++)
      held += w.held[c].size();
  }
  fprintf(stderr, "%ld gets, %ld puts, %zu held, %zu drains\n", gets, puts,
          held, drains);
  ck_assert_int_gt(gets, 10000);
  ck_assert_uint_eq(static_cast<size_t>(gets - puts), held);
  check_conservation(total_cached());
  g_cache->drain_all();
  ck_assert_uint_eq(total_cached(), 0);
  check_conservation(0);
  // The workers' own lists agree with the flags.
  for (Worker& w : workers) {
    for (size_t c = 1; c < kClasses; c++) {
      for (void* p : w.held[c]) {
        size_t i;
        ck_assert(index_of(c, p, &i));
        ck_assert_int_eq(g_held[c][i], 1);
      }
    }
  }
}

END_TEST

int main(void) {
  Suite* s = suite_create("cpu_cache_threads");
  // Loop index: 0 = locked fallback, 1 = rseq (when the system allows it).
  TCase* tc = tcase_create("all_cpus");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_loop_test(tc, drain_all_returns_everything, 0, 2);
  tcase_add_loop_test(tc, fork_child_can_use_the_cache, 0, 2);
  tcase_add_loop_test(tc, conservation_across_threads, 0, 2);
  suite_add_tcase(s, tc);
  return rs_check_run(s, "test_cpu_cache_threads");
}
