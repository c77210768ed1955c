// SPDX-License-Identifier: MIT
// Conservation of objects through a standalone rs::rseq::CpuCache: 24
// threads on 2 CPUs pop and push 64K fake objects (fast paths, slow paths
// and the batch sections behind them) while their affinity flips and, in
// some runs, drain_all() or drain(idle_ms) runs concurrently; at the end
// every object is in the fake backend exactly once and none was ever held
// twice. Rseq mode and the locked fallback; single-threaded edge cases too.
#include "cache_harness.h"

namespace {

RunConfig base_config(const char* name, bool want_rseq) {
  RunConfig cfg = {};
  cfg.name = name;
  cfg.want_rseq = want_rseq && !rseq_forced_off();
  cfg.workers = 24;
  cfg.millis = 1000;
  cfg.flip_affinity = true;
  return cfg;
}

START_TEST(rseq_mode_conserves_objects) {
  RunConfig cfg = base_config("rseq", true);
  RunResult res;
  run(cfg, &res);
  expect_mode(cfg, res);
  ck_assert_uint_gt(res.flips, at_least(10));
}

END_TEST

START_TEST(rseq_mode_with_concurrent_drain_all) {
  RunConfig cfg = base_config("rseq+drain_all", true);
  cfg.drainer = true;
  RunResult res;
  run(cfg, &res);
  expect_mode(cfg, res);
  ck_assert_uint_gt(res.drains, at_least(5));
  // drain_all() really took objects out of running caches.
  ck_assert_uint_gt(res.drained_by_drainer, 0);
}

END_TEST

// Idle drains (drain(idle_ms), also run from the slow paths once per idle
// period) pick CPUs by their last slow path: only the CPUs stopped and
// fenced may be emptied, and a CPU in use must keep its objects.
START_TEST(rseq_mode_with_idle_drains) {
  RunConfig cfg = base_config("rseq+idle drains", true);
  cfg.drainer = true;
  cfg.idle_ms = 1;
  RunResult res;
  run(cfg, &res);
  expect_mode(cfg, res);
  ck_assert_uint_gt(res.drains, at_least(5));
}

END_TEST

START_TEST(locked_mode_conserves_objects) {
  RunConfig cfg = base_config("locked", false);
  RunResult res;
  run(cfg, &res);
  expect_mode(cfg, res);
  ck_assert_uint_gt(res.flips, at_least(10));
}

END_TEST

START_TEST(locked_mode_with_idle_drains) {
  RunConfig cfg = base_config("locked+idle drains", false);
  cfg.drainer = true;
  cfg.idle_ms = 1;
  RunResult res;
  run(cfg, &res);
  expect_mode(cfg, res);
  ck_assert_uint_gt(res.drains, at_least(5));
}

END_TEST

START_TEST(locked_mode_with_concurrent_drain_all) {
  RunConfig cfg = base_config("locked+drain_all", false);
  cfg.drainer = true;
  RunResult res;
  run(cfg, &res);
  expect_mode(cfg, res);
  ck_assert_uint_gt(res.drains, at_least(5));
  ck_assert_uint_gt(res.drained_by_drainer, 0);
}

END_TEST

// One thread, no concurrency: exact counts. A fresh CPU's headers have no
// capacity, so the first pop misses; after a refill the next pops hit; a
// drain_all() empties the caches and resets the capacity.
START_TEST(single_thread_exact_counts) {
  reset_world();
  g_refill_extras.store(false, std::memory_order_relaxed);  // exact counts
  CpuCache* cache = new CpuCache;
  g_cache = cache;
  bool want = !rseq_forced_off();
  cache->init(kLimits, kNumClasses, {fake_refill, fake_drain}, kBudgetBytes,
              want);
  ck_assert(cache->mode() == (want ? Mode::kRseq : Mode::kLocked));
  // Pin to one CPU so every operation hits the same cache.
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(sched_getcpu(), &one);
  ck_assert_int_eq(sched_setaffinity(0, sizeof(one), &one), 0);

  const size_t cls = 3;                 // batch 16, max 40
  ck_assert_ptr_null(cache->pop(cls));  // no capacity yet
  void* first = cache->pop_slow(cls);
  ck_assert_ptr_nonnull(first);
  ck_assert(take(first, cls, 0));
  // Slow start: pop_slow grew the class by one slot and filled it.
  ck_assert_uint_eq(cache->cached_objects(cls), 1);
  ck_assert_uint_eq(g_pool[cls].n, kPerClass - 2);
  // Misses double the room (2, 4, 8, 16: a batch, the whole budget),
  // each refill filling it: 2 + 3 + 5 + 9 + 16 objects.
  void* held[64];
  size_t n = 0;
  for (size_t i = 0; i < 19 + 15; i++) {
    void* p = cache->pop(cls);
    if (p == nullptr)
      p = cache->pop_slow(cls);  // locked mode: always here
    ck_assert_ptr_nonnull(p);
    ck_assert(take(p, cls, 0));
    held[n++] = p;
    ck_assert_uint_eq(g_pool[cls].n + cache->cached_objects(cls) + n + 1,
                      kPerClass);
  }
  ck_assert_uint_eq(cache->cached_objects(cls), 0);
  ck_assert_uint_eq(g_pool[cls].n, kPerClass - 35);
  if (want)
    ck_assert_ptr_null(cache->pop(cls));  // empty again
  held[n++] = first;
  // 35 objects back into room for 16 (the whole 4 KiB budget): full, it
  // cannot grow, and a push past it takes the class back with it.
  for (size_t i = 0; i < n; i++) {
    ck_assert(transition(index_of(held[i]), kHeldBase, kInCache, "push"));
    if (!cache->push(cls, held[i]))
      cache->push_slow(cls, held[i]);
    ck_assert_uint_le(cache->cached_objects(cls), kLimits[cls].batch);
  }
  size_t cached = cache->cached_objects(cls);
  ck_assert_uint_eq(g_pool[cls].n + cached, kPerClass);
  ck_assert_uint_eq(cache->drain_all(), cached);
  ck_assert_uint_eq(cache->cached_objects(cls), 0);
  ck_assert_uint_eq(g_pool[cls].n, kPerClass);
  // The capacity went back too: a push misses until push_slow grows it.
  void* p;
  ck_assert_int_eq(fake_refill(cls, &p, 1, 1), 1);
  if (want)
    ck_assert(!cache->push(cls, p));
  cache->push_slow(cls, p);
  ck_assert_uint_eq(cache->cached_objects(cls), 1);
  ck_assert_uint_eq(cache->drain_all(), 1);
  RunResult res = {};
  account(&res);
  ck_assert_msg(g_errors.load() == 0, "%s", g_first_error);
  ck_assert_uint_eq(res.lost + res.duplicated + res.misplaced, 0);
}

END_TEST

/// Objects of class cls in caches, in the pool and held: all of them.
void expect_total(CpuCache* cache, size_t cls, size_t held, const char* when) {
  size_t cached = cache->cached_objects(cls);
  size_t pooled = g_pool[cls].n;
  ck_assert_msg(cached + pooled + held == kPerClass,
                "%s: class %zu: %zu cached + %zu in the pool + %zu held != "
                "%zu",
                when, cls, cached, pooled, held, kPerClass);
}

// The slow paths at the edges, single-threaded: push_slow on an empty class
// whose growth the byte budget refuses (its pop_batch finds nothing: this
// is where GCC 12 once made pop_batch return garbage for "none"), and on a
// full one (pop_batch takes a whole batch back to the backend).
START_TEST(slow_paths_at_the_edges) {
  reset_world();
  CpuCache* cache = new CpuCache;
  g_cache = cache;
  bool want = !rseq_forced_off();
  cache->init(kLimits, kNumClasses, {fake_refill, fake_drain}, kBudgetBytes,
              want);
  ck_assert(cache->mode() == (want ? Mode::kRseq : Mode::kLocked));
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(sched_getcpu(), &one);
  ck_assert_int_eq(sched_setaffinity(0, sizeof(one), &one), 0);

  // Misses grow class 4 (1 KiB objects) to 1, 2 and 4 slots: the whole
  // 4 KiB budget. Its refills bring 2 + 3 + 5 objects, all taken.
  const size_t big_cls = 4;
  void* big[10];
  size_t nbig = 0;
  for (size_t i = 0; i < 10; i++) {
    void* p = cache->pop(big_cls);
    if (p == nullptr)
      p = cache->pop_slow(big_cls);
    ck_assert(take(p, big_cls, 0));
    big[nbig++] = p;
  }
  ck_assert_uint_eq(cache->cached_objects(big_cls), 0);
  expect_total(cache, big_cls, nbig, "class 4 grown to the budget");

  // Class 3 (256 B: more than 1/64 of the budget, so no first step over
  // it) has no room and cannot grow: push_slow finds nothing to take
  // back and hands the object on alone.
  const size_t cls = 3;
  void* p;
  ck_assert_int_eq(fake_refill(cls, &p, 1, 1), 1);
  ck_assert(!want || !cache->push(cls, p));
  cache->push_slow(cls, p);
  ck_assert_uint_eq(cache->cached_objects(cls), 0);
  expect_total(cache, cls, 0, "push_slow on an empty class");

  // Class 4 back to full, then more through push_slow: each takes the
  // whole class back with it.
  while (nbig > 0) {
    p = big[--nbig];
    ck_assert(transition(index_of(p), kHeldBase, kInCache, "push"));
    if (!cache->push(big_cls, p))
      cache->push_slow(big_cls, p);
    ck_assert_uint_le(cache->cached_objects(big_cls), 4);
    expect_total(cache, big_cls, nbig, "pushing past full");
  }
  cache->drain_all();
  RunResult res = {};
  account(&res);
  ck_assert_msg(g_errors.load() == 0, "%s", g_first_error);
  ck_assert_uint_eq(res.lost + res.duplicated + res.misplaced, 0);
}

END_TEST

// drain(idle_ms) on a machine with one idle and one busy CPU, again and
// again: workers pinned to CPU B keep its cache busy while a thread on CPU
// A fills A's cache, lets it go idle and drains idle caches. Only A may be
// stopped and emptied; B's objects must stay where they are, however the
// clock moves while the drain runs.
std::atomic<uint64_t> g_idle_drains, g_idle_drained;

void* idle_drainer_main(void* arg) {
  int cpu = *static_cast<int*>(arg);
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  sched_setaffinity(0, sizeof(one), &one);
  while (!g_stop.load(std::memory_order_relaxed)) {
    // Give this CPU's cache something to drain, then let it idle.
    void* p = g_cache->pop(2);
    if (p == nullptr)
      p = g_cache->pop_slow(2);
    if (p != nullptr && take(p, 2, kMaxWorkers)) {
      transition(index_of(p), kHeldBase + kMaxWorkers, kInCache, "push");
      if (!g_cache->push(2, p))
        g_cache->push_slow(2, p);
    }
    sleep_us(2000);
    g_idle_drained.fetch_add(g_cache->drain(1), std::memory_order_relaxed);
    g_idle_drains.fetch_add(1, std::memory_order_relaxed);
  }
  return nullptr;
}

START_TEST(idle_drain_beside_a_busy_cpu) {
  reset_world();
  g_idle_drains = g_idle_drained = 0;
  ck_assert_int_eq(sched_getaffinity(0, sizeof(g_allowed), &g_allowed), 0);
  int cpus[2], n = 0;
  for (int c = 0; c < CPU_SETSIZE && n < 2; c++) {
    if (CPU_ISSET(c, &g_allowed))
      cpus[n++] = c;
  }
  if (n < 2) {
    fprintf(stderr, "idle drain: one CPU only, skipped\n");
    return;
  }
  g_cache = new CpuCache;
  bool want = !rseq_forced_off();
  g_cache->init(kLimits, kNumClasses, {fake_refill, fake_drain}, kBudgetBytes,
                want);
  ck_assert(g_cache->mode() == (want ? Mode::kRseq : Mode::kLocked));

  g_num_workers = 4;
  for (int i = 0; i < g_num_workers; i++) {
    Worker& w = g_workers[i];
    memset(static_cast<void*>(&w), 0, sizeof(w));
    w.index = static_cast<uint32_t>(i);
    ck_assert_int_eq(pthread_create(&w.thread, nullptr, worker_main, &w), 0);
  }
  while (g_running.load() < g_num_workers)
    sched_yield();
  cpu_set_t busy;
  CPU_ZERO(&busy);
  CPU_SET(cpus[1], &busy);
  for (int i = 0; i < g_num_workers; i++) {
    ck_assert_int_eq(
        sched_setaffinity(g_workers[i].tid.load(), sizeof(busy), &busy), 0);
  }
  pthread_t drainer;
  ck_assert_int_eq(
      pthread_create(&drainer, nullptr, idle_drainer_main, &cpus[0]), 0);
  sleep_us(1000 * 1000);
  // On a loaded machine the drainer may have had few turns in that second:
  // it gets up to 20 more to make the minimum the check below asks for.
  for (int i = 0; i < 200 && g_idle_drains.load() <= at_least(10); i++)
    sleep_us(100 * 1000);
  g_stop = true;
  for (int i = 0; i < g_num_workers; i++)
    pthread_join(g_workers[i].thread, nullptr);
  pthread_join(drainer, nullptr);
  g_cache->drain_all();
  RunResult res = {};
  account(&res);
  fprintf(stderr,
          "idle drain: mode %s, %llu drain(1) calls took %llu objects; lost "
          "%llu, duplicated %llu, misplaced %llu, errors %llu\n",
          g_cache->describe(),
          static_cast<unsigned long long>(g_idle_drains.load()),
          static_cast<unsigned long long>(g_idle_drained.load()),
          static_cast<unsigned long long>(res.lost),
          static_cast<unsigned long long>(res.duplicated),
          static_cast<unsigned long long>(res.misplaced),
          static_cast<unsigned long long>(g_errors.load()));
  ck_assert_msg(g_errors.load() == 0, "%llu errors; first: %s",
                static_cast<unsigned long long>(g_errors.load()),
                g_first_error);
  ck_assert_uint_eq(res.lost + res.duplicated + res.misplaced, 0);
  ck_assert_uint_gt(g_idle_drains.load(), at_least(10));
  ck_assert_uint_gt(g_idle_drained.load(), 0);  // CPU A was drained
}

END_TEST

}  // namespace

int main() {
  Suite* s = suite_create("rseq_conservation");
  TCase* tc = tcase_create("exact");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, single_thread_exact_counts);
  tcase_add_test(tc, slow_paths_at_the_edges);
  suite_add_tcase(s, tc);

  tc = tcase_create("rseq");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, rseq_mode_conserves_objects);
  tcase_add_test(tc, rseq_mode_with_concurrent_drain_all);
  tcase_add_test(tc, rseq_mode_with_idle_drains);
  tcase_add_test(tc, idle_drain_beside_a_busy_cpu);
  suite_add_tcase(s, tc);

  tc = tcase_create("locked");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, locked_mode_conserves_objects);
  tcase_add_test(tc, locked_mode_with_concurrent_drain_all);
  tcase_add_test(tc, locked_mode_with_idle_drains);
  suite_add_tcase(s, tc);
  return rs_check_run(s, "rseq/test_conservation");
}
