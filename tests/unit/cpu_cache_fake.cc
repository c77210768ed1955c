// SPDX-License-Identifier: MIT
// The fake backend of the CPU-cache unit tests: see cpu_cache_fake.h.
#include "cpu_cache_fake.h"

#include <sched.h>
#include <stdint.h>

#include "../check_main.h"

namespace fake {

const rs::rseq::ClassLimits kLimits[kClasses] = {
    {0, 0, 0},
    {16, 8, 32},  // small objects, capacity grows in batches of 8
    {256, 4, 16},
    {4096, 2, 64},  // big: the byte budget limits it first
};

FakeObject g_objects[kClasses][kPerClass];
pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;  // guards the pool
void* g_pool[kClasses][kPerClass];                 // what the backend holds
size_t g_pool_n[kClasses];                         // entries in g_pool
bool g_in_pool[kClasses][kPerClass];               // object is in the pool
int g_held[kClasses][kPerClass];                   // test holds it (atomic)

// Counters (atomic).
int g_refill_calls, g_drain_calls, g_drained, g_max_drain, g_last_refill_n;
int g_errors;        // wrong class, double drain, double hand-out
int g_refill_extra;  // objects a refill brings over n (up to max)

CpuCache* g_cache;

void error() {
  __atomic_add_fetch(&g_errors, 1, __ATOMIC_RELAXED);
}

bool index_of(size_t c, const void* p, size_t* index) {
  uintptr_t a = rs::addr(p), lo = rs::addr(&g_objects[c][0]);
  if (a < lo || a >= lo + sizeof(g_objects[c]) || (a - lo) % 16 != 0) {
    error();
    return false;
  }
  *index = (a - lo) / 16;
  return true;
}

int fake_refill(size_t cls, void** out, int n, int max) {
  __atomic_add_fetch(&g_refill_calls, 1, __ATOMIC_RELAXED);
  __atomic_store_n(&g_last_refill_n, n, __ATOMIC_RELAXED);
  if (cls == 0 || cls >= kClasses || n <= 0 || max < n) {
    error();
    return 0;
  }
  int want = n + __atomic_load_n(&g_refill_extra, __ATOMIC_RELAXED);
  want = want < max ? want : max;
  pthread_mutex_lock(&g_mu);
  int k = 0;
  while (k < want && g_pool_n[cls] > 0) {
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
  g_refill_extra = 0;
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

void init_cache(bool want_rseq, size_t budget) {
  g_cache->init(kLimits, kClasses, {fake_refill, fake_drain}, budget,
                want_rseq);
  ck_assert(g_cache->mode() != Mode::kNone);
  if (!want_rseq)
    ck_assert(g_cache->mode() == Mode::kLocked);
}

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

void* get(size_t cls) {
  void* p = g_cache->pop(cls);
  if (p == nullptr)
    p = g_cache->pop_slow(cls);
  if (p != nullptr)
    take_ownership(cls, p);
  return p;
}

void put(size_t cls, void* p) {
  give_up_ownership(cls, p);
  if (!g_cache->push(cls, p))
    g_cache->push_slow(cls, p);
}

std::vector<void*> from_backend(size_t cls, int n) {
  std::vector<void*> out(static_cast<size_t>(n));
  ck_assert_int_eq(fake_refill(cls, out.data(), n, n), n);
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

}  // namespace fake
