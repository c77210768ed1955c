// SPDX-License-Identifier: MIT
// Unit tests of the per-CPU caches (lib/rseq/cpu_cache.h) over a fake
// backend (cpu_cache_fake.h), in both the locked fallback and rseq mode:
// init, misses, refills, drains and the byte budget on one CPU, and the
// count of possible CPUs. test_cpu_cache_threads.cc has the tests across
// CPUs and threads.
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

#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>

#include "../check_main.h"
#include "cpu_cache_fake.h"

using namespace fake;  // NOLINT: the tests share the fake backend

// --- before and without init

START_TEST(uninitialised_cache_misses) {
  // Before init there is no backend either: only the fast paths and the
  // read-only calls are defined, and they all miss.
  ck_assert(g_cache->mode() == Mode::kNone);
  ck_assert_ptr_null(g_cache->pop(1));
  ck_assert(!g_cache->push(1, &g_objects[1][0]));
  ck_assert_uint_eq(g_cache->drain_all(), 0);
  ck_assert_uint_eq(g_cache->cached_objects(1), 0);
  ck_assert_ptr_nonnull(g_cache->describe());
  ck_assert_int_eq(g_refill_calls + g_drain_calls, 0);
}

END_TEST

// A capacity such that three classes need more slots than a region holds
// (64-bit) or than a uint16_t index reaches (32-bit).
constexpr uint16_t kHuge = rs::rseq::kRegionBytes / sizeof(void*) / 3 + 1;

START_TEST(init_refuses_bad_limits) {
  // More classes than a region has headers for.
  static rs::rseq::ClassLimits many[rs::rseq::kMaxClasses + 1];
  for (auto& l : many)
    l = {16, 1, 1};
  g_cache->init(many, rs::rseq::kMaxClasses + 1, {fake_refill, fake_drain},
                1 << 20, _i != 0);
  ck_assert(g_cache->mode() == Mode::kNone);
  ck_assert_ptr_null(g_cache->pop(1));
  ck_assert_uint_eq(g_cache->drain_all(), 0);
  // More slots than a region holds.
  delete g_cache;
  g_cache = new CpuCache();
  rs::rseq::ClassLimits huge[kClasses] = {
      {0, 0, 0}, {16, 8, kHuge}, {16, 8, kHuge}, {16, 8, kHuge}};
  g_cache->init(huge, kClasses, {fake_refill, fake_drain}, 1 << 20, _i != 0);
  ck_assert(g_cache->mode() == Mode::kNone);
  ck_assert_ptr_null(g_cache->pop(1));
  ck_assert(!g_cache->push(1, &g_objects[1][0]));
  ck_assert_int_eq(g_refill_calls + g_drain_calls, 0);
}

END_TEST

START_TEST(refused_init_still_reaches_the_backend) {
  // Mode::kNone is documented as "every operation goes to the backend";
  // that must hold however init came to refuse.
  rs::rseq::ClassLimits huge[kClasses] = {
      {0, 0, 0}, {16, 8, kHuge}, {16, 8, kHuge}, {16, 8, kHuge}};
  g_cache->init(huge, kClasses, {fake_refill, fake_drain}, 1 << 20, _i != 0);
  ck_assert(g_cache->mode() == Mode::kNone);
  void* p = g_cache->pop_slow(1);
  ck_assert_ptr_nonnull(p);
  ck_assert_int_eq(g_last_refill_n, 1);
  take_ownership(1, p);
  put(1, p);
  ck_assert_int_eq(g_drain_calls, 1);
  check_conservation(0);
}

END_TEST

START_TEST(no_memory_for_regions_passes_through) {
  // Under a tight address-space limit (ulimit -v) the regions cannot be
  // mapped: no caches, every operation goes to the backend, no crash.
  struct rlimit old;
  ck_assert_int_eq(getrlimit(RLIMIT_AS, &old), 0);
  FILE* f = fopen("/proc/self/statm", "r");
  ck_assert_ptr_nonnull(f);
  unsigned long pages = 0;
  ck_assert_int_eq(fscanf(f, "%lu", &pages), 1);
  fclose(f);
  struct rlimit tight = old;
  tight.rlim_cur = pages * static_cast<unsigned long>(sysconf(_SC_PAGESIZE)) +
                   64 * 1024;  // room for the side records, not the regions
  ck_assert_int_eq(setrlimit(RLIMIT_AS, &tight), 0);
  // qemu-user accepts the limit but does not enforce it (it would bind
  // the emulator itself): nothing to test there.
  void* probe = mmap(nullptr, 64 << 20, PROT_NONE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (probe != MAP_FAILED) {
    munmap(probe, 64 << 20);
    ck_assert_int_eq(setrlimit(RLIMIT_AS, &old), 0);
    fprintf(stderr,
            "no_memory_for_regions_passes_through: RLIMIT_AS is not "
            "enforced here (qemu-user): skipped\n");
    return;
  }
  g_cache->init(kLimits, kClasses, {fake_refill, fake_drain}, 1 << 20, _i != 0);
  ck_assert_int_eq(setrlimit(RLIMIT_AS, &old), 0);
  ck_assert(g_cache->mode() == Mode::kNone);
  ck_assert_msg(strncmp(g_cache->describe(), "fallback: ", 10) == 0, "%s",
                g_cache->describe());
  std::vector<void*> held;
  for (int k = 0; k < 10; k++) {
    void* p = get(2);
    ck_assert_ptr_nonnull(p);
    held.push_back(p);
  }
  ck_assert_int_eq(g_refill_calls, 10);  // one object at a time
  ck_assert_int_eq(g_last_refill_n, 1);
  for (void* p : held)
    put(2, p);
  ck_assert_int_eq(g_drain_calls, 10);
  ck_assert_uint_eq(g_cache->drain_all(), 0);
  check_conservation(0);
}

END_TEST

// glibc's word on whether the process has made a thread (weak: 2.32+).
extern "C" char __libc_single_threaded __attribute__((weak));

namespace {

bool single_threaded() {
  return &__libc_single_threaded == nullptr || __libc_single_threaded != 0;
}

int g_starts;  // calls of the start callback below

void count_and_start() {
  g_starts++;
  g_cache->start();
}

void* no_op_thread(void*) {
  return nullptr;
}

}  // namespace

START_TEST(caches_start_at_the_nth_slow_path) {
  // With a start callback the caches wait: the first kStartAfter - 1 slow
  // paths go to the backend one object at a time, with no region mapped;
  // the kStartAfter-th calls back, and from then on the caches work.
  if (!single_threaded()) {
    fprintf(stderr,
            "caches_start_at_the_nth_slow_path: the process has "
            "made threads (CK_FORK=no?): skipped\n");
    return;
  }
  int& starts = g_starts;
  starts = 0;
  g_cache->init(kLimits, kClasses, {fake_refill, fake_drain, count_and_start},
                1 << 20, _i != 0);
  pin_to(allowed_cpus()[0]);
  ck_assert(g_cache->mode() == Mode::kNone);
  ck_assert_ptr_null(g_cache->regions());
  ck_assert_uint_eq(g_cache->num_cpus(), 0);
  void* held = nullptr;
  for (uint32_t k = 1; k < rs::rseq::kStartAfter; k++) {  // get, put, ... get
    if (held == nullptr) {
      held = get(1);
      ck_assert_ptr_nonnull(held);
    } else {
      put(1, held);
      held = nullptr;
    }
  }
  ck_assert_ptr_nonnull(held);
  ck_assert_int_eq(starts, 0);
  ck_assert(g_cache->mode() == Mode::kNone);
  ck_assert_int_eq(g_last_refill_n, 1);
  ck_assert_int_eq(g_refill_calls + g_drain_calls,
                   static_cast<int>(rs::rseq::kStartAfter) - 1);
  ck_assert_uint_eq(total_cached(), 0);
  // The kStartAfter-th slow path starts them (and is served by them).
  void* p = get(1);
  ck_assert_ptr_nonnull(p);
  ck_assert_int_eq(starts, 1);
  ck_assert(g_cache->mode() != Mode::kNone);
  ck_assert_ptr_nonnull(g_cache->regions());
  ck_assert_uint_ge(g_cache->num_cpus(), 1);
  // Slow start: room for one, filled, and the caller's object.
  ck_assert_int_eq(g_last_refill_n, 2);
  ck_assert_uint_eq(g_cache->cached_objects(1), 1);
  ck_assert(!g_cache->start());  // once
  put(1, p);
  put(1, held);
  ck_assert_uint_gt(total_cached(), 0);
  for (int k = 0; k < 100; k++) {
    void* q = get(2);
    ck_assert_ptr_nonnull(q);
    put(2, q);
  }
  ck_assert_int_eq(starts, 1);
  g_cache->drain_all();
  check_conservation(0);
}

END_TEST

START_TEST(caches_start_with_the_first_thread) {
  // The first slow path after glibc says a thread was made starts them,
  // however few calls came before (registering the fence is cheaper while
  // the process has one thread; pthread_create's own allocations come
  // before the clone).
  g_starts = 0;
  g_cache->init(kLimits, kClasses, {fake_refill, fake_drain, count_and_start},
                1 << 20, _i != 0);
  void* p = get(1);
  ck_assert_ptr_nonnull(p);
  put(1, p);
  if (single_threaded()) {
    ck_assert_int_eq(g_starts, 0);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, nullptr, no_op_thread, nullptr), 0);
    ck_assert_int_eq(pthread_join(t, nullptr), 0);
  }
  ck_assert(!single_threaded());
  p = get(1);
  ck_assert_ptr_nonnull(p);
  ck_assert_int_eq(g_starts, 1);
  ck_assert(g_cache->mode() != Mode::kNone);
  put(1, p);
  g_cache->drain_all();
  check_conservation(0);
}

END_TEST

START_TEST(mode_and_cpu_count) {
  init_cache(_i != 0);
  fprintf(stderr, "want_rseq=%d: mode %s (%s), %zu CPUs\n", _i,
          mode_name(g_cache->mode()), g_cache->describe(), g_cache->num_cpus());
  const char* d = g_cache->describe();
  ck_assert_ptr_nonnull(d);
  if (g_cache->mode() == Mode::kLocked)
    ck_assert_msg(strncmp(d, "fallback: ", 10) == 0, "describe: %s", d);
  else
    ck_assert_msg(strncmp(d, "rseq/", 5) == 0, "describe: %s", d);
  long online = sysconf(_SC_NPROCESSORS_ONLN);
  ck_assert_int_gt(online, 0);
  ck_assert_uint_ge(g_cache->num_cpus(), static_cast<size_t>(online));
  if (rs::rseq::possible_cpus() != 0)
    ck_assert_uint_eq(g_cache->num_cpus(), rs::rseq::possible_cpus());
}

END_TEST

// --- one CPU

START_TEST(first_pop_and_push_miss) {
  init_cache(_i != 0);
  pin_to(allowed_cpus()[0]);
  ck_assert_ptr_null(g_cache->pop(1));
  ck_assert_ptr_null(g_cache->pop(3));
  std::vector<void*> objs = from_backend(2, 1);
  give_up_ownership(2, objs[0]);
  ck_assert(!g_cache->push(2, objs[0]));  // no room yet
  take_ownership(2, objs[0]);
  ck_assert_int_eq(g_refill_calls, 1);  // the fast path never refills
  ck_assert_int_eq(g_drain_calls, 0);
  ck_assert_uint_eq(total_cached(), 0);
}

END_TEST

START_TEST(pop_slow_refills_then_pops_hit) {
  // Slow start: the first miss of a class makes room for one object and
  // fills it (with the caller's object, two), each later miss doubles the
  // room, a batch a step at most: a class a CPU uses one object at a time
  // keeps two objects there, not a batch (each refilled object gets the
  // free mark, which faults its page in).
  init_cache(_i != 0);
  pin_to(allowed_cpus()[0]);
  const size_t cls = 1;
  const int batch = kLimits[cls].batch;
  std::vector<void*> got;
  got.push_back(get(cls));
  ck_assert_ptr_nonnull(got[0]);
  ck_assert_int_eq(g_refill_calls, 1);
  ck_assert_int_eq(g_last_refill_n, 2);
  ck_assert_uint_eq(g_cache->cached_objects(cls), 1);
  int room = 1;
  for (;;) {
    int calls = g_refill_calls;
    size_t cached = g_cache->cached_objects(cls);
    for (size_t k = 0; k < cached; k++) {  // hits
      void* p = get(cls);
      ck_assert_ptr_nonnull(p);
      got.push_back(p);
    }
    ck_assert_int_eq(g_refill_calls, calls);  // all from the cache
    if (room >= batch)
      break;
    room += std::min(room, batch);
    got.push_back(get(cls));  // a miss
    ck_assert_int_eq(g_refill_calls, calls + 1);
    ck_assert_int_eq(g_last_refill_n, std::min(room + 1, batch));
    ck_assert_uint_eq(g_cache->cached_objects(cls),
                      static_cast<size_t>(std::min(room + 1, batch)) - 1);
  }
  // A batch a miss from now on.
  got.push_back(get(cls));
  ck_assert_int_eq(g_last_refill_n, batch);
  ck_assert_uint_eq(g_cache->cached_objects(cls), batch - 1);
  check_conservation(g_cache->cached_objects(cls));
  for (void* p : got)
    put(cls, p);
  ck_assert_uint_le(g_cache->cached_objects(cls), kLimits[cls].max_capacity);
  check_conservation(total_cached());
}

END_TEST

START_TEST(refill_over_n_stays_on_this_cpu) {
  // A refill that brings more than it was asked for (the rest of a cache
  // line the central list carved) leaves the extra here, in room made
  // for it: drained, it would go to another CPU's next refill.
  init_cache(_i != 0);
  pin_to(allowed_cpus()[0]);
  const size_t cls = 1;
  g_refill_extra = 3;
  void* first = get(cls);
  ck_assert_ptr_nonnull(first);
  ck_assert_int_eq(g_refill_calls, 1);
  ck_assert_int_eq(g_last_refill_n, 2);
  ck_assert_int_eq(g_drain_calls, 0);
  ck_assert_uint_eq(g_cache->cached_objects(cls), 4);
  std::vector<void*> got = {first};
  for (int k = 0; k < 4; k++)  // hits
    got.push_back(get(cls));
  ck_assert_int_eq(g_refill_calls, 1);
  g_refill_extra = 0;
  for (void* p : got)
    put(cls, p);
  check_conservation(total_cached());
}

END_TEST

START_TEST(push_past_capacity_drains) {
  // A class that a CPU only frees into keeps one batch of room there: its
  // drains go out whole, and no more of its objects wait where nothing
  // allocates them (the consumer of a pipeline).
  init_cache(_i != 0);
  pin_to(allowed_cpus()[0]);
  const size_t cls = 1;
  const size_t cap = kLimits[cls].max_capacity;
  const size_t batch = kLimits[cls].batch;
  std::vector<void*> objs = from_backend(cls, 100);
  reset_counters();
  size_t most = 0;
  for (void* p : objs) {
    put(cls, p);
    most = std::max(most, g_cache->cached_objects(cls));
  }
  ck_assert_uint_eq(most, batch);
  ck_assert_int_gt(g_drain_calls, 0);
  ck_assert_int_eq(g_max_drain, static_cast<int>(batch) + 1);  // whole
  ck_assert_uint_eq(
      static_cast<size_t>(g_drained) + g_cache->cached_objects(cls),
      objs.size());
  ck_assert_int_eq(g_refill_calls, 0);
  check_conservation(total_cached());
  // Once the class also runs empty on this CPU, a full one grows again,
  // up to its capacity and no further.
  std::vector<void*> held;
  for (int round = 0; round < 16; round++) {
    size_t n = g_cache->cached_objects(cls) + 1;  // the last one misses
    for (size_t k = 0; k < n; k++) {
      void* p = get(cls);
      ck_assert_ptr_nonnull(p);
      held.push_back(p);
    }
    for (void* p : held) {
      put(cls, p);
      size_t cached = g_cache->cached_objects(cls);
      ck_assert_msg(cached <= cap, "%zu cached, capacity %zu", cached, cap);
      most = std::max(most, cached);
    }
    held.clear();
  }
  ck_assert_uint_gt(most, batch);
  check_conservation(total_cached());
}

END_TEST

START_TEST(budget_limits_capacity) {
  const size_t budget = 2048;
  init_cache(_i != 0, budget);
  pin_to(allowed_cpus()[0]);
  const size_t cls = 2;  // 256 B objects, batch 4, capacity 16 (4 KiB)
  // Misses grow the class (up to the budget), then all come back.
  std::vector<void*> objs;
  for (int k = 0; k < 16; k++) {
    objs.push_back(get(cls));
    ck_assert_ptr_nonnull(objs.back());
  }
  size_t most = 0;
  for (void* p : objs) {
    put(cls, p);
    most = std::max(most, g_cache->cached_objects(cls));
  }
  ck_assert_uint_le(most * kLimits[cls].size, budget);
  ck_assert_uint_ge(most, kLimits[cls].batch);
  ck_assert_int_gt(g_drain_calls, 0);
  check_conservation(total_cached());
}

END_TEST

START_TEST(big_objects_share_a_part_of_the_budget) {
  // Classes of 4 KiB and up hold at most 1/kBigShare of the budget
  // together; the small classes still grow into the rest.
  const size_t budget = 64 * 1024;
  const size_t share = budget / rs::rseq::kBigShare;
  ck_assert_uint_ge(kLimits[3].size, rs::rseq::kBigObject);
  ck_assert_uint_lt(kLimits[2].size, rs::rseq::kBigObject);
  ck_assert_uint_gt(kLimits[3].max_capacity * kLimits[3].size, share);
  init_cache(_i != 0, budget);
  pin_to(allowed_cpus()[0]);
  std::vector<void*> big, small;
  for (int k = 0; k < 40; k++)
    big.push_back(get(3));
  for (int k = 0; k < 16; k++)
    small.push_back(get(2));
  size_t most = 0;
  for (void* p : big) {
    put(3, p);
    most = std::max(most, g_cache->cached_objects(3));
  }
  ck_assert_uint_le(most * kLimits[3].size, share);
  ck_assert_uint_ge(most, kLimits[3].batch);
  // 256-byte objects grow past a batch into the rest of the budget.
  for (void* p : small)
    put(2, p);
  ck_assert_uint_ge(g_cache->cached_objects(2), 2 * kLimits[2].batch);
  check_conservation(total_cached());
}

END_TEST

START_TEST(big_objects_first_step_within_the_budget) {
  // The first step of a class is allowed over the budget, so that every
  // class caches something, but only for objects of at most 1/64 of the
  // budget: one each of the largest classes alone is more than a budget.
  const size_t budget = 2048;  // 1/64: 32 bytes
  init_cache(_i != 0, budget);
  pin_to(allowed_cpus()[0]);
  // Misses grow class 2 (256 B objects) to the whole budget.
  std::vector<void*> objs;
  for (int k = 0; k < 16; k++)
    objs.push_back(get(2));
  size_t most = 0;
  for (void* p : objs) {
    put(2, p);
    most = std::max(most, g_cache->cached_objects(2));
  }
  ck_assert_uint_eq(most * 256, budget);
  reset_counters();
  // Class 1 (16 B) still gets its first step; class 3 (4 KiB) does not:
  // its object goes straight back.
  std::vector<void*> one = from_backend(1, 1), big = from_backend(3, 1);
  put(1, one[0]);
  ck_assert_uint_eq(g_cache->cached_objects(1), 1);
  put(3, big[0]);
  ck_assert_uint_eq(g_cache->cached_objects(3), 0);
  ck_assert_int_eq(g_drained, 1);
  check_conservation(total_cached());
}

END_TEST

START_TEST(full_classes_leave_the_headers_alone) {
  // The slots start after the headers, which take two slots each with
  // 32-bit pointers: with one each, class 1's slots overwrote the headers
  // of classes 2 and 3 on i386 (test_abi's "free: invalid pointer").
  init_cache(_i != 0);
  pin_to(allowed_cpus()[0]);
  const uint16_t* begin = g_cache->begins();
  for (size_t c = 1; c < kClasses; c++) {
    ck_assert_uint_ge(begin[c] * sizeof(void*),
                      kClasses * sizeof(rs::rseq::Header));
  }
  std::vector<void*> objs[kClasses];
  for (size_t c = 1; c < kClasses; c++) {
    objs[c] = from_backend(c, kLimits[c].max_capacity);
    for (void* p : objs[c])
      put(c, p);
  }
  check_conservation(total_cached());
  // Every class gives back only its own objects (get checks the class).
  for (size_t c = 1; c < kClasses; c++) {
    size_t cached = g_cache->cached_objects(c);
    ck_assert_uint_gt(cached, 0);
    for (size_t k = 0; k < cached; k++)
      ck_assert_ptr_nonnull(get(c));
    ck_assert_int_eq(g_errors, 0);
  }
  check_conservation(total_cached());
}

END_TEST

/// Where class cls's slots begin in each laid-out region: how many regions
/// have them at home, how many in the starter slots.
static void count_layouts(size_t cls, size_t* home, size_t* starter) {
  *home = *starter = 0;
  for (size_t i = 0; i < g_cache->num_cpus(); i++) {
    if (!g_cache->states()[i].initialised)
      continue;
    size_t begin = g_cache->begin_of(i, cls);
    if (begin == g_cache->begins()[cls]) {
      ++*home;
    } else {
      // Right after the headers, all of them in one 4 KiB page.
      ck_assert_uint_ge(begin * sizeof(void*),
                        kClasses * sizeof(rs::rseq::Header));
      ck_assert_uint_le((begin + rs::rseq::kStarterSlots) * sizeof(void*),
                        4096);
      ++*starter;
    }
  }
}

START_TEST(classes_start_small_and_move_home) {
  // A class starts in its starter slots; a CPU that caches more than
  // kStarterSlots of it moves it, objects and all, to its home slots; a
  // drain sends it back. No object is lost or doubled on the way.
  init_cache(_i != 0);
  pin_to(allowed_cpus()[0]);
  const size_t cls = 1;  // capacity 32, batches of 8
  size_t home, starter;
  put(cls, get(cls));
  count_layouts(cls, &home, &starter);
  ck_assert_uint_eq(home, 0);
  ck_assert_uint_gt(starter, 0);
  std::vector<void*> objs = from_backend(cls, 20);
  for (void* p : objs)
    put(cls, p);
  check_conservation(total_cached());
  count_layouts(cls, &home, &starter);
  ck_assert_uint_gt(home, 0);
  ck_assert_uint_gt(g_cache->cached_objects(cls), rs::rseq::kStarterSlots);
  // Every object comes back once, from the home slots.
  size_t cached = g_cache->cached_objects(cls);
  for (size_t k = 0; k < cached; k++)
    ck_assert_ptr_nonnull(get(cls));
  ck_assert_int_eq(g_errors, 0);
  check_conservation(total_cached());
  g_cache->drain_all();
  count_layouts(cls, &home, &starter);
  ck_assert_uint_eq(home, 0);
  check_conservation(0);
}

END_TEST

START_TEST(push_slow_on_an_empty_class_that_cannot_grow) {
  // push_slow runs after a failed push, but by then the thread may be on
  // another CPU, or malloc_trim may have emptied this one: the class can be
  // empty with no room to grow. obj must still be taken.
  const size_t cls = 3;  // 4 KiB objects, batch 2
  // The budget: its share for big objects is one batch.
  init_cache(_i != 0, rs::rseq::kBigShare * 2 * kLimits[cls].size);
  pin_to(allowed_cpus()[0]);
  std::vector<void*> objs = from_backend(cls, 3);
  put(cls, objs[0]);  // lays out the region, grows to the budget
  put(cls, objs[1]);
  ck_assert_uint_eq(g_cache->cached_objects(cls), 2);
  void* a = get(cls);
  void* b = get(cls);
  ck_assert_uint_eq(g_cache->cached_objects(cls), 0);  // empty, no budget
  reset_counters();
  give_up_ownership(cls, objs[2]);
  g_cache->push_slow(cls, objs[2]);
  size_t cached = g_cache->cached_objects(cls);
  ck_assert_uint_eq(cached + static_cast<size_t>(g_drained), 1);
  check_conservation(total_cached());
  put(cls, a);
  put(cls, b);
  check_conservation(total_cached());
}

END_TEST

// --- possible CPUs

START_TEST(possible_cpus_counts_every_cpu) {
  size_t possible = rs::rseq::possible_cpus();
  size_t fallback = rs::rseq::possible_cpus_fallback();
  long online = sysconf(_SC_NPROCESSORS_ONLN);
  long conf = sysconf(_SC_NPROCESSORS_CONF);
  ck_assert_int_gt(online, 0);
  ck_assert_uint_ge(fallback, 1);
  std::vector<int> allowed = allowed_cpus();
  ck_assert_uint_ge(fallback, static_cast<size_t>(allowed.back() + 1));

  FILE* f = fopen("/sys/devices/system/cpu/possible", "r");
  if (f == nullptr) {
    ck_assert_uint_eq(possible, 0);  // unreadable: the caller falls back
    return;
  }
  // The highest number in a list such as "0-3,8,10-11".
  char line[256] = "";
  ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
  fclose(f);
  long highest = -1, value = -1;
  for (const char* p = line;; p++) {
    if (*p >= '0' && *p <= '9') {
      value = (value < 0 ? 0 : value * 10) + (*p - '0');
      continue;
    }
    highest = value > highest ? value : highest;
    value = -1;
    if (*p == '\0')
      break;
  }
  ck_assert_int_ge(highest, 0);
  ck_assert_uint_eq(possible, static_cast<size_t>(highest + 1));
  ck_assert_uint_ge(possible, static_cast<size_t>(online));
  ck_assert_uint_ge(possible, static_cast<size_t>(conf));
  ck_assert_uint_ge(possible, static_cast<size_t>(allowed.back() + 1));
}

END_TEST

int main(void) {
  Suite* s = suite_create("cpu_cache");
  // Loop index: 0 = locked fallback, 1 = rseq (when the system allows it).
  TCase* tc = tcase_create("init");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, uninitialised_cache_misses);
  tcase_add_loop_test(tc, init_refuses_bad_limits, 0, 2);
  tcase_add_loop_test(tc, refused_init_still_reaches_the_backend, 0, 2);
  tcase_add_loop_test(tc, no_memory_for_regions_passes_through, 0, 2);
  tcase_add_loop_test(tc, caches_start_at_the_nth_slow_path, 0, 2);
  tcase_add_loop_test(tc, caches_start_with_the_first_thread, 0, 2);
  tcase_add_loop_test(tc, mode_and_cpu_count, 0, 2);
  tcase_add_test(tc, possible_cpus_counts_every_cpu);
  suite_add_tcase(s, tc);
  tc = tcase_create("one_cpu");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_loop_test(tc, first_pop_and_push_miss, 0, 2);
  tcase_add_loop_test(tc, pop_slow_refills_then_pops_hit, 0, 2);
  tcase_add_loop_test(tc, refill_over_n_stays_on_this_cpu, 0, 2);
  tcase_add_loop_test(tc, push_past_capacity_drains, 0, 2);
  tcase_add_loop_test(tc, budget_limits_capacity, 0, 2);
  tcase_add_loop_test(tc, big_objects_share_a_part_of_the_budget, 0, 2);
  tcase_add_loop_test(tc, big_objects_first_step_within_the_budget, 0, 2);
  tcase_add_loop_test(tc, push_slow_on_an_empty_class_that_cannot_grow, 0, 2);
  tcase_add_loop_test(tc, full_classes_leave_the_headers_alone, 0, 2);
  tcase_add_loop_test(tc, classes_start_small_and_move_home, 0, 2);
  suite_add_tcase(s, tc);
  return rs_check_run(s, "test_cpu_cache");
}
