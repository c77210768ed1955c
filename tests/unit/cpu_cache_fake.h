// SPDX-License-Identifier: MIT
// The fake backend of the CPU-cache unit tests (test_cpu_cache.cc and
// test_cpu_cache_threads.cc): class c owns kPerClass fake 16-byte objects;
// the backend keeps a stack of the ones it holds, a flag per object says
// whether the backend has it, another whether the test holds it, and the
// cache holds the rest. Plus the helpers both programs use.
#ifndef RS_TESTS_UNIT_CPU_CACHE_FAKE_H_
#define RS_TESTS_UNIT_CPU_CACHE_FAKE_H_

#include <pthread.h>
#include <stddef.h>
#include <vector>

#include "rseq/cpu_cache.h"

namespace fake {

using rs::rseq::CpuCache;
using rs::rseq::Mode;

constexpr size_t kClasses = 4;  // 0 unused, like the real table
constexpr size_t kPerClass = 2048;

extern const rs::rseq::ClassLimits kLimits[kClasses];

struct alignas(16) FakeObject {
  char bytes[16];
};

extern FakeObject g_objects[kClasses][kPerClass];
extern pthread_mutex_t g_mu;                 // guards the pool
extern void* g_pool[kClasses][kPerClass];    // what the backend holds
extern size_t g_pool_n[kClasses];            // entries in g_pool
extern bool g_in_pool[kClasses][kPerClass];  // object is in the pool
extern int g_held[kClasses][kPerClass];      // test holds it (atomic)

// Counters (atomic).
extern int g_refill_calls, g_drain_calls, g_drained, g_max_drain,
    g_last_refill_n;
extern int g_errors;        // wrong class, double drain, double hand-out
extern int g_refill_extra;  // objects a refill brings over n (up to max)

extern CpuCache* g_cache;

void error();

/// Which fake object p is; false (and an error) when it is none of class c.
bool index_of(size_t c, const void* p, size_t* index);

int fake_refill(size_t cls, void** out, int n, int max);

void fake_drain(size_t cls, void* const* objs, int n);

void reset_counters();

void setup();

void teardown();

void init_cache(bool want_rseq, size_t budget = 1 << 20);

/// Marks p as held by the test; an error if something holds it already.
void take_ownership(size_t cls, void* p);

void give_up_ownership(size_t cls, void* p);

/// What the allocator does for malloc: fast path, then slow path.
void* get(size_t cls);

/// What the allocator does for free.
void put(size_t cls, void* p);

/// Objects straight from the backend, as if allocated long ago.
std::vector<void*> from_backend(size_t cls, int n);

size_t total_cached();

/// Every object is in exactly one place: the pool, the test, or the cache
/// (whose count is `cached`).
void check_conservation(size_t cached);

/// The CPUs this thread may run on.
std::vector<int> allowed_cpus();

/// Keeps this thread on one CPU, so every call sees the same cache.
void pin_to(int cpu);

const char* mode_name(Mode m);

}  // namespace fake

#endif  // RS_TESTS_UNIT_CPU_CACHE_FAKE_H_
