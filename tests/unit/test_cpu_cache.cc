// SPDX-License-Identifier: MIT
// Unit tests of the per-CPU caches (lib/rseq/cpu_cache.h) over a fake
// backend, in both the locked fallback and rseq mode: misses, refills,
// drains, the byte budget, drain_all, fork, and conservation under threads.
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
#include "rseq/cpu_cache.h"

namespace {

using rs::rseq::CpuCache;
using rs::rseq::Mode;

// --- the fake backend
//
// Class c owns kPerClass fake 16-byte objects. The backend keeps a stack of
// the ones it holds; a flag per object says whether the backend has it,
// another whether the test holds it. The cache holds the rest.

constexpr size_t kClasses = 4;  // 0 unused, like the real table
constexpr size_t kPerClass = 2048;

const rs::rseq::ClassLimits kLimits[kClasses] = {
    {0, 0, 0},
    {16, 8, 32},  // small objects, capacity grows in batches of 8
    {256, 4, 16},
    {4096, 2, 64},  // big: the byte budget limits it first
};

struct alignas(16) FakeObject {
  char bytes[16];
};

FakeObject g_objects[kClasses][kPerClass];
pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;  // guards the pool
void* g_pool[kClasses][kPerClass];                 // what the backend holds
size_t g_pool_n[kClasses];                         // entries in g_pool
bool g_in_pool[kClasses][kPerClass];               // object is in the pool
int g_held[kClasses][kPerClass];                   // test holds it (atomic)

// Counters (atomic).
int g_refill_calls, g_drain_calls, g_drained, g_max_drain, g_last_refill_n;
int g_errors;  // wrong class, double drain, double hand-out

CpuCache* g_cache;

void error() {
  __atomic_add_fetch(&g_errors, 1, __ATOMIC_RELAXED);
}

/// Which fake object p is; false (and an error) when it is none of class c.
bool index_of(size_t c, const void* p, size_t* index) {
  uintptr_t a = rs::addr(p), lo = rs::addr(&g_objects[c][0]);
  if (a < lo || a >= lo + sizeof(g_objects[c]) || (a - lo) % 16 != 0) {
    error();
    return false;
  }
  *index = (a - lo) / 16;
  return true;
}

int fake_refill(size_t cls, void** out, int n) {
  __atomic_add_fetch(&g_refill_calls, 1, __ATOMIC_RELAXED);
  __atomic_store_n(&g_last_refill_n, n, __ATOMIC_RELAXED);
  if (cls == 0 || cls >= kClasses || n <= 0) {
    error();
    return 0;
  }
  pthread_mutex_lock(&g_mu);
  int k = 0;
  while (k < n && g_pool_n[cls] > 0) {
    void* p = g_pool[cls][--g_pool_n[cls]];
    size_t i;
    if (index_of(cls, p, &i))
      g_in_pool[cls][i] = false;
    out[k++] = p;
  }
  pthread_mutex_unlock(&g_mu);
  return k;
}

void fake_drain(size_t cls, void* const* objs, int n) {
  __atomic_add_fetch(&g_drain_calls, 1, __ATOMIC_RELAXED);
  __atomic_add_fetch(&g_drained, n, __ATOMIC_RELAXED);
  int seen = __atomic_load_n(&g_max_drain, __ATOMIC_RELAXED);
  while (n > seen &&
         !__atomic_compare_exchange_n(&g_max_drain, &seen, n, true,
                                      __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
  if (cls == 0 || cls >= kClasses || n <= 0) {
    error();
    return;
  }
  pthread_mutex_lock(&g_mu);
  for (int k = 0; k < n; k++) {
    size_t i;
    if (!index_of(cls, objs[k], &i))
      continue;
    if (g_in_pool[cls][i] || __atomic_load_n(&g_held[cls][i], __ATOMIC_RELAXED))
      error();  // drained twice, or the test still holds it
    g_in_pool[cls][i] = true;
    g_pool[cls][g_pool_n[cls]++] = objs[k];
  }
  pthread_mutex_unlock(&g_mu);
}

void reset_counters() {
  g_refill_calls = g_drain_calls = g_drained = g_max_drain = 0;
  g_last_refill_n = 0;
}

void setup() {
  for (size_t c = 1; c < kClasses; c++) {
    g_pool_n[c] = 0;
    for (size_t i = 0; i < kPerClass; i++) {
      g_pool[c][g_pool_n[c]++] = &g_objects[c][i];
      g_in_pool[c][i] = true;
      g_held[c][i] = 0;
    }
  }
  reset_counters();
  g_errors = 0;
  g_cache = new CpuCache();
}

void teardown() {
  delete g_cache;  // its mappings stay: the process ends soon
  g_cache = nullptr;
}

void init_cache(bool want_rseq, size_t budget = 1 << 20) {
  g_cache->init(kLimits, kClasses, {fake_refill, fake_drain}, budget,
                want_rseq);
  ck_assert(g_cache->mode() != Mode::kNone);
  if (!want_rseq)
    ck_assert(g_cache->mode() == Mode::kLocked);
}

/// Marks p as held by the test; an error if something holds it already.
void take_ownership(size_t cls, void* p) {
  size_t i;
  if (index_of(cls, p, &i) &&
      __atomic_exchange_n(&g_held[cls][i], 1, __ATOMIC_RELAXED) != 0) {
    error();
  }
}

void give_up_ownership(size_t cls, void* p) {
  size_t i;
  if (index_of(cls, p, &i) &&
      __atomic_exchange_n(&g_held[cls][i], 0, __ATOMIC_RELAXED) != 1) {
    error();
  }
}

/// What the allocator does for malloc: fast path, then slow path.
void* get(size_t cls) {
  void* p = g_cache->pop(cls);
  if (p == nullptr)
    p = g_cache->pop_slow(cls);
  if (p != nullptr)
    take_ownership(cls, p);
  return p;
}

/// What the allocator does for free.
void put(size_t cls, void* p) {
  give_up_ownership(cls, p);
  if (!g_cache->push(cls, p))
    g_cache->push_slow(cls, p);
}

/// Objects straight from the backend, as if allocated long ago.
std::vector<void*> from_backend(size_t cls, int n) {
  std::vector<void*> out(static_cast<size_t>(n));
  ck_assert_int_eq(fake_refill(cls, out.data(), n), n);
  for (void* p : out)
    take_ownership(cls, p);
  return out;
}

size_t total_cached() {
  size_t n = 0;
  for (size_t c = 1; c < kClasses; c++)
    n += g_cache->cached_objects(c);
  return n;
}

/// Every object is in exactly one place: the pool, the test, or the cache
/// (whose count is `cached`).
void check_conservation(size_t cached) {
  ck_assert_int_eq(g_errors, 0);
  size_t in_pool = 0, held = 0;
  for (size_t c = 1; c < kClasses; c++) {
    ck_assert_uint_le(g_pool_n[c], kPerClass);
    size_t flagged = 0;
    for (size_t i = 0; i < kPerClass; i++) {
      bool p = g_in_pool[c][i], h = g_held[c][i] != 0;
      ck_assert_msg(!(p && h), "class %zu object %zu in two places", c, i);
      flagged += p;
      held += h;
    }
    ck_assert_uint_eq(flagged, g_pool_n[c]);
    in_pool += g_pool_n[c];
  }
  ck_assert_uint_eq(in_pool + held + cached, (kClasses - 1) * kPerClass);
}

/// The CPUs this thread may run on.
std::vector<int> allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  ck_assert_int_eq(sched_getaffinity(0, sizeof(set), &set), 0);
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; c++) {
    if (CPU_ISSET(c, &set))
      cpus.push_back(c);
  }
  ck_assert(!cpus.empty());
  return cpus;
}

/// Keeps this thread on one CPU, so every call sees the same cache.
void pin_to(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  ck_assert_int_eq(sched_setaffinity(0, sizeof(set), &set), 0);
  sched_yield();
}

const char* mode_name(Mode m) {
  return m == Mode::kRseq ? "rseq" : m == Mode::kLocked ? "locked" : "none";
}

}  // namespace

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
      {0, 0, 0}, {16, 8, 20000}, {16, 8, 20000}, {16, 8, 20000}};
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
      {0, 0, 0}, {16, 8, 20000}, {16, 8, 20000}, {16, 8, 20000}};
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
  init_cache(_i != 0);
  pin_to(allowed_cpus()[0]);
  const size_t cls = 1;
  const int batch = kLimits[cls].batch;
  std::vector<void*> got;
  got.push_back(get(cls));
  ck_assert_ptr_nonnull(got[0]);
  ck_assert_int_eq(g_refill_calls, 1);
  ck_assert_int_eq(g_last_refill_n, batch);
  ck_assert_uint_eq(g_cache->cached_objects(cls), batch - 1);
  for (int k = 1; k < batch; k++) {
    void* p = get(cls);
    ck_assert_ptr_nonnull(p);
    got.push_back(p);
  }
  ck_assert_int_eq(g_refill_calls, 1);  // all from the cache
  ck_assert_uint_eq(g_cache->cached_objects(cls), 0);
  if (g_cache->mode() == Mode::kRseq)
    ck_assert_ptr_null(g_cache->pop(cls));  // empty again: a miss
  got.push_back(get(cls));
  ck_assert_int_eq(g_refill_calls, 2);
  check_conservation(g_cache->cached_objects(cls));
  for (void* p : got)
    put(cls, p);
  ck_assert_int_eq(g_drain_calls, 0);  // capacity grew to hold them
  check_conservation(total_cached());
}

END_TEST

START_TEST(push_past_capacity_drains) {
  init_cache(_i != 0);
  pin_to(allowed_cpus()[0]);
  const size_t cls = 1;
  const size_t cap = kLimits[cls].max_capacity;
  const int batch = kLimits[cls].batch;
  std::vector<void*> objs = from_backend(cls, 100);
  reset_counters();
  size_t lowest_after_fill = SIZE_MAX;
  for (size_t k = 0; k < objs.size(); k++) {
    put(cls, objs[k]);
    size_t cached = g_cache->cached_objects(cls);
    ck_assert_msg(cached <= cap, "%zu cached, capacity %zu", cached, cap);
    if (k >= cap)
      lowest_after_fill = std::min(lowest_after_fill, cached);
  }
  ck_assert_int_gt(g_drain_calls, 0);
  ck_assert_int_le(g_max_drain, batch + 1);  // a batch plus the new one
  ck_assert_uint_ge(lowest_after_fill, cap - batch);
  ck_assert_uint_eq(
      static_cast<size_t>(g_drained) + g_cache->cached_objects(cls),
      objs.size());
  ck_assert_int_eq(g_refill_calls, 0);
  check_conservation(total_cached());
}

END_TEST

START_TEST(budget_limits_capacity) {
  const size_t budget = 16 * 1024;
  init_cache(_i != 0, budget);
  pin_to(allowed_cpus()[0]);
  const size_t cls = 3;  // 4 KiB objects, batch 2, capacity 64
  std::vector<void*> objs = from_backend(cls, 40);
  size_t most = 0;
  for (void* p : objs) {
    put(cls, p);
    most = std::max(most, g_cache->cached_objects(cls));
  }
  ck_assert_uint_le(most * kLimits[cls].size, budget);
  ck_assert_uint_ge(most, kLimits[cls].batch);  // the first batch always fits
  ck_assert_int_gt(g_drain_calls, 0);
  check_conservation(total_cached());
}

END_TEST

START_TEST(push_slow_on_an_empty_class_that_cannot_grow) {
  // push_slow runs after a failed push, but by then the thread may be on
  // another CPU, or malloc_trim may have emptied this one: the class can be
  // empty with no room to grow. obj must still be taken.
  const size_t cls = 3;                        // 4 KiB objects, batch 2
  init_cache(_i != 0, 2 * kLimits[cls].size);  // budget: one batch
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
  size_t left = g_cache->cached_objects(2);
  ck_assert_uint_eq(left, kLimits[2].batch - 1u);
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
  tcase_add_loop_test(tc, mode_and_cpu_count, 0, 2);
  tcase_add_test(tc, possible_cpus_counts_every_cpu);
  suite_add_tcase(s, tc);
  tc = tcase_create("one_cpu");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_loop_test(tc, first_pop_and_push_miss, 0, 2);
  tcase_add_loop_test(tc, pop_slow_refills_then_pops_hit, 0, 2);
  tcase_add_loop_test(tc, push_past_capacity_drains, 0, 2);
  tcase_add_loop_test(tc, budget_limits_capacity, 0, 2);
  tcase_add_loop_test(tc, push_slow_on_an_empty_class_that_cannot_grow, 0, 2);
  suite_add_tcase(s, tc);
  tc = tcase_create("all_cpus");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_loop_test(tc, drain_all_returns_everything, 0, 2);
  tcase_add_loop_test(tc, fork_child_can_use_the_cache, 0, 2);
  tcase_add_loop_test(tc, conservation_across_threads, 0, 2);
  suite_add_tcase(s, tc);
  return rs_check_run(s, "test_cpu_cache");
}
