// SPDX-License-Identifier: MIT
// Harness for the rseq tests that drive a standalone rs::rseq::CpuCache: a
// fake backend over a fixed pool of 64K fake objects with one state word per
// object (in the pool, in a cache, or held by worker N), worker threads doing
// random pops and pushes, an affinity flipper, a drainer and a SIGALRM
// storm, and the final accounting. Header-only; one test file includes it.
#ifndef RS_TESTS_RSEQ_CACHE_HARNESS_H_
#define RS_TESTS_RSEQ_CACHE_HARNESS_H_

#include <atomic>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/time.h>

#include "../check_main.h"
#include "../on_valgrind.h"
#include "rseq/cpu_cache.h"

namespace {

using rs::rseq::CpuCache;
using rs::rseq::Mode;

// ---------------------------------------------------------------------
// The fake objects and their classes. Class 0 is unused (as in rsmalloc);
// class c owns objects [(c - 1) * kPerClass, c * kPerClass). Small
// capacities and batches so the slow paths and the batch sections run
// often; a small byte budget so grow() is refused now and then.

constexpr size_t kNumClasses = 5;
constexpr size_t kPerClass = 16384;
constexpr size_t kObjects = (kNumClasses - 1) * kPerClass;  // 65536
constexpr size_t kObjectBytes = 16;
constexpr size_t kBudgetBytes = 4096;

const rs::rseq::ClassLimits kLimits[kNumClasses] = {
    {0, 0, 0},     {16, 4, 16},    {64, 8, 24},
    {256, 16, 40}, {1024, 32, 64},  // batch 32 with max 64: push_slow drains
                                    // half
};

alignas(64) char g_arena[kObjects][kObjectBytes];

// Object states. Every transition is a compare-and-swap from the one state
// the object must be in; a failed one is a lost or duplicated object.
constexpr uint32_t kInCache = 0;   // in a CPU cache (or in the cache layer)
constexpr uint32_t kInPool = 1;    // in the fake backend's pool
constexpr uint32_t kHeldBase = 2;  // kHeldBase + w: held by worker w

std::atomic<uint32_t> g_state[kObjects];

struct Pool {
  pthread_mutex_t mu;
  size_t n;
  void* stack[kPerClass];
};

Pool g_pool[kNumClasses];

// ---------------------------------------------------------------------
// Error reporting from any thread: a count and the first message.

std::atomic<uint64_t> g_errors;
std::atomic<int> g_first_error_taken;
char g_first_error[512];

__attribute__((format(printf, 1, 2))) void report(const char* fmt, ...) {
  g_errors.fetch_add(1, std::memory_order_relaxed);
  if (g_first_error_taken.exchange(1) != 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_first_error, sizeof(g_first_error), fmt, ap);
  va_end(ap);
}

const char* state_name(uint32_t s, char* buf, size_t len) {
  if (s == kInCache)
    snprintf(buf, len, "in a CPU cache");
  else if (s == kInPool)
    snprintf(buf, len, "in the backend pool");
  else
    snprintf(buf, len, "held by worker %u", s - kHeldBase);
  return buf;
}

/// The index of fake object p, or -1 when p is not one.
long index_of(const void* p) {
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  uintptr_t lo = reinterpret_cast<uintptr_t>(&g_arena[0][0]);
  if (a < lo || a >= lo + sizeof(g_arena) || (a - lo) % kObjectBytes != 0)
    return -1;
  return static_cast<long>((a - lo) / kObjectBytes);
}

size_t class_of_index(long idx) {
  return 1 + static_cast<size_t>(idx) / kPerClass;
}

/// Moves object idx from state `from` to `to`; reports and returns false
/// when it was in another state.
bool transition(long idx, uint32_t from, uint32_t to, const char* what) {
  uint32_t seen = from;
  if (g_state[idx].compare_exchange_strong(seen, to,
                                           std::memory_order_acq_rel)) {
    return true;
  }
  char a[48], b[48];
  report("%s: object %ld (class %zu) was %s, expected %s", what, idx,
         class_of_index(idx), state_name(seen, a, sizeof(a)),
         state_name(from, b, sizeof(b)));
  return false;
}

// ---------------------------------------------------------------------
// The fake backend.

std::atomic<uint64_t> g_refill_calls, g_drain_calls, g_drained_objects;

// Whether refills bring more than n (reset_world turns it on).
std::atomic<bool> g_refill_extras;

/// Brings up to 7 objects more than n every other call (up to max), as the
/// real refill does to end a pair of cache lines, so the caches' room for
/// them and their drain when there is none run under the aborts too.
int fake_refill(size_t cls, void** out, int n, int max) {
  uint64_t call = g_refill_calls.fetch_add(1, std::memory_order_relaxed);
  if (cls < 1 || cls >= kNumClasses || n < 1 || n > 64 || max < n || max > 64) {
    report("refill(class %zu, n %d, max %d): bad arguments", cls, n, max);
    return 0;
  }
  bool extra = g_refill_extras.load(std::memory_order_relaxed) && call % 2;
  int want = n + static_cast<int>(extra ? call / 2 % 8 : 0);
  want = want < max ? want : max;
  Pool& pool = g_pool[cls];
  int k = 0;
  pthread_mutex_lock(&pool.mu);
  while (k < want && pool.n > 0)
    out[k++] = pool.stack[--pool.n];
  pthread_mutex_unlock(&pool.mu);
  for (int i = 0; i < k; i++)
    transition(index_of(out[i]), kInPool, kInCache, "refill");
  return k;
}

void fake_drain(size_t cls, void* const* objs, int n) {
  g_drain_calls.fetch_add(1, std::memory_order_relaxed);
  g_drained_objects.fetch_add(static_cast<uint64_t>(n),
                              std::memory_order_relaxed);
  if (cls < 1 || cls >= kNumClasses || n < 1 || n > 65) {
    report("drain(class %zu, n %d): bad arguments", cls, n);
    return;
  }
  Pool& pool = g_pool[cls];
  for (int i = 0; i < n; i++) {
    long idx = index_of(objs[i]);
    if (idx < 0) {
      report("drain(class %zu) got %p, not a fake object", cls, objs[i]);
      continue;
    }
    if (class_of_index(idx) != cls) {
      report("drain(class %zu) got object %ld of class %zu", cls, idx,
             class_of_index(idx));
      continue;
    }
    if (!transition(idx, kInCache, kInPool, "drain"))
      continue;  // not pushed: the pool must not hold it twice
    pthread_mutex_lock(&pool.mu);
    if (pool.n < kPerClass)
      pool.stack[pool.n++] = objs[i];
    else
      report("drain(class %zu): pool overflow", cls);
    pthread_mutex_unlock(&pool.mu);
  }
}

// ---------------------------------------------------------------------
// Random numbers (xorshift64*), per thread.

struct Rng {
  uint64_t s;

  explicit Rng(uint64_t seed) : s(seed * 0x9e3779b97f4a7c15ull + 1) {}

  uint64_t next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545f4914f6cdd1dull;
  }
};

void sleep_us(long us) {
  struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

}  // namespace

// glibc 2.35 and later: the size of the rseq area it registered, 0 when it
// did not (qemu-user has no rseq). Weak: absent on older glibc.
extern "C" const unsigned int __rseq_size __attribute__((weak));

namespace {

/// True when the environment asks for the fallback (RSMALLOC_RSEQ=0) or
/// has no rseq (valgrind, make check-valgrind; and off x86-64, a target
/// without critical sections or glibc without an rseq area, as under
/// qemu-user): the rseq runs then use the locked mode and skip their
/// rseq-only checks. Worked out without asking the library. On x86-64,
/// where the suite runs natively, rseq stays required otherwise.
bool rseq_forced_off() {
  const char* v = getenv("RSMALLOC_RSEQ");
  if ((v != nullptr && strcmp(v, "0") == 0) || rs_on_valgrind())
    return true;
#if defined(__x86_64__)
  return false;
#elif defined(__aarch64__)
  return &__rseq_size == nullptr || __rseq_size == 0;
#else
  return true;  // no critical sections for this architecture
#endif
}

/// Writes a line to stderr (the test log) and to fd 9 (make check's
/// terminal) when it is open.
[[maybe_unused]] __attribute__((format(printf, 1, 2))) void note(
    const char* fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  if (n <= 0)
    return;
  size_t len = static_cast<size_t>(n) < sizeof(line) ? static_cast<size_t>(n)
                                                     : sizeof(line) - 1;
  fputs(line, stderr);
  if (fcntl(9, F_GETFD) != -1 && write(9, line, len) < 0) {
    // Only a copy; the log has the line.
  }
}

// ---------------------------------------------------------------------
// A run.

struct RunConfig {
  const char* name;
  bool want_rseq;      // init(..., want_rseq)
  int workers;         // threads doing pops and pushes
  long millis;         // how long they run
  bool flip_affinity;  // move workers between CPUs every few hundred us
  bool drainer;        // a thread calling drain_all() every ~1.5 ms
  long signal_us;      // ITIMER_REAL interval for a SIGALRM storm; 0: none
  uint64_t idle_ms;    // set_idle_ms(): slow paths drain idle CPUs; the
                       // drainer calls drain(idle_ms), not drain_all()
  uint32_t spins[9];   // rs_rseq_inject_spins during the run
};

struct RunResult {
  Mode mode;
  const char* describe;
  uint64_t ops, fast_pops, fast_pushes, slow_pops, slow_pushes, nulls;
  uint64_t flips, drains, drained_by_drainer, signals, aborts;
  uint64_t lost, duplicated, misplaced, left_in_caches;
};

constexpr int kMaxWorkers = 64;
constexpr int kHold = 48;  // most objects a worker holds at once

struct Worker {
  pthread_t thread;
  std::atomic<pid_t> tid;
  uint32_t index;
  uint64_t ops, fast_pops, fast_pushes, slow_pops, slow_pushes, nulls;
};

CpuCache* g_cache;
Worker g_workers[kMaxWorkers];
int g_num_workers;
std::atomic<bool> g_stop;
std::atomic<int> g_running;
std::atomic<uint64_t> g_signals, g_flips, g_drains, g_drained_by_drainer;
cpu_set_t g_allowed;

void on_sigalrm(int) {
  g_signals.fetch_add(1, std::memory_order_relaxed);
}

void set_sigalrm_blocked(bool blocked) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGALRM);
  pthread_sigmask(blocked ? SIG_BLOCK : SIG_UNBLOCK, &set, nullptr);
}

/// Takes a popped object into worker w's hands.
bool take(void* p, size_t cls, uint32_t w) {
  long idx = index_of(p);
  if (idx < 0) {
    report("pop(class %zu) returned %p, not a fake object", cls, p);
    return false;
  }
  if (class_of_index(idx) != cls) {
    report("pop(class %zu) returned object %ld of class %zu", cls, idx,
           class_of_index(idx));
    return false;
  }
  return transition(idx, kInCache, kHeldBase + w, "pop");
}

void* worker_main(void* arg) {
  Worker& me = *static_cast<Worker*>(arg);
  set_sigalrm_blocked(false);  // the storm is aimed at the workers
  me.tid.store(gettid(), std::memory_order_release);
  g_running.fetch_add(1);
  Rng rng(me.index + 1);

  struct Held {
    void* p;
    size_t cls;
  } held[kHold];

  int n = 0;
  uint32_t w = me.index;
  CpuCache& cache = *g_cache;
  while (!g_stop.load(std::memory_order_relaxed)) {
    uint64_t r = rng.next();
    // Alternate pop-heavy and push-heavy phases so classes run empty and
    // full on every CPU: both slow paths and both batch sections.
    bool pop_phase = ((me.ops >> 7) & 1) == 0;
    bool pop = n == 0 || (n < kHold && ((r & 3) != 0) == pop_phase);
    if (pop) {
      size_t cls = 1 + (r >> 8) % (kNumClasses - 1);
      void* p;
      if ((r >> 16) % 8 == 0) {
        p = cache.pop_slow(cls);
        me.slow_pops++;
      } else {
        p = cache.pop(cls);
        if (p != nullptr) {
          me.fast_pops++;
        } else {
          p = cache.pop_slow(cls);
          me.slow_pops++;
        }
      }
      if (p == nullptr) {
        me.nulls++;
      } else if (take(p, cls, w)) {
        held[n++] = {p, cls};
      }
    } else {
      int i = static_cast<int>((r >> 8) % static_cast<uint64_t>(n));
      Held h = held[i];
      held[i] = held[--n];
      long idx = index_of(h.p);
      if (!transition(idx, kHeldBase + w, kInCache, "push"))
        continue;  // already reported; do not hand it on
      if ((r >> 16) % 8 == 0) {
        cache.push_slow(h.cls, h.p);
        me.slow_pushes++;
      } else if (cache.push(h.cls, h.p)) {
        me.fast_pushes++;
      } else {
        cache.push_slow(h.cls, h.p);
        me.slow_pushes++;
      }
    }
    me.ops++;
  }
  // Give everything back.
  while (n > 0) {
    Held h = held[--n];
    if (transition(index_of(h.p), kHeldBase + w, kInCache, "final push") &&
        !cache.push(h.cls, h.p)) {
      cache.push_slow(h.cls, h.p);
    }
  }
  return nullptr;
}

void* flipper_main(void*) {
  Rng rng(12345);
  int cpus[CPU_SETSIZE];
  int ncpus = 0;
  for (int c = 0; c < CPU_SETSIZE; c++) {
    if (CPU_ISSET(c, &g_allowed))
      cpus[ncpus++] = c;
  }
  while (!g_stop.load(std::memory_order_relaxed)) {
    uint64_t r = rng.next();
    Worker& w = g_workers[r % static_cast<uint64_t>(g_num_workers)];
    cpu_set_t set;
    CPU_ZERO(&set);
    // A random non-empty subset of the allowed CPUs (often just one).
    if ((r >> 20) % 3 == 0) {
      set = g_allowed;
    } else {
      CPU_SET(cpus[(r >> 24) % static_cast<uint64_t>(ncpus)], &set);
    }
    if (sched_setaffinity(w.tid.load(std::memory_order_acquire), sizeof(set),
                          &set) == 0) {
      g_flips.fetch_add(1, std::memory_order_relaxed);
    }
    sleep_us(100 + static_cast<long>((r >> 32) % 300));
  }
  for (int i = 0; i < g_num_workers; i++)
    sched_setaffinity(g_workers[i].tid.load(), sizeof(g_allowed), &g_allowed);
  return nullptr;
}

uint64_t g_idle_ms;

void* drainer_main(void*) {
  while (!g_stop.load(std::memory_order_relaxed)) {
    size_t n =
        g_idle_ms != 0 ? g_cache->drain(g_idle_ms) : g_cache->drain_all();
    g_drains.fetch_add(1, std::memory_order_relaxed);
    g_drained_by_drainer.fetch_add(n, std::memory_order_relaxed);
    sleep_us(1500);
  }
  return nullptr;
}

void reset_world() {
  for (size_t i = 0; i < kObjects; i++)
    g_state[i].store(kInPool, std::memory_order_relaxed);
  for (size_t c = 1; c < kNumClasses; c++) {
    Pool& pool = g_pool[c];
    pthread_mutex_init(&pool.mu, nullptr);
    pool.n = 0;
    for (size_t i = 0; i < kPerClass; i++)
      pool.stack[pool.n++] = g_arena[(c - 1) * kPerClass + i];
  }
  g_refill_extras.store(true, std::memory_order_relaxed);
  g_errors = 0;
  g_first_error_taken = 0;
  g_first_error[0] = '\0';
  g_refill_calls = g_drain_calls = g_drained_objects = 0;
  g_signals = g_flips = g_drains = g_drained_by_drainer = 0;
  g_stop = false;
  g_running = 0;
}

/// After the run: every object is in its class's pool exactly once and in
/// state kInPool; no CPU cache holds anything.
void account(RunResult* res) {
  static uint8_t seen[kObjects];
  memset(seen, 0, sizeof(seen));
  for (size_t c = 1; c < kNumClasses; c++) {
    res->left_in_caches += g_cache->cached_objects(c);
    Pool& pool = g_pool[c];
    for (size_t i = 0; i < pool.n; i++) {
      long idx = index_of(pool.stack[i]);
      if (idx < 0 || class_of_index(idx) != c) {
        res->misplaced++;
        continue;
      }
      if (seen[idx] < 255)
        seen[idx]++;
    }
  }
  long first_lost = -1, first_dup = -1;
  for (size_t i = 0; i < kObjects; i++) {
    if (seen[i] == 0) {
      res->lost++;
      if (first_lost < 0)
        first_lost = static_cast<long>(i);
    } else if (seen[i] > 1) {
      res->duplicated++;
      if (first_dup < 0)
        first_dup = static_cast<long>(i);
    }
    if (g_state[i].load() != kInPool)
      res->misplaced++;
  }
  if (first_lost >= 0) {
    char s[48];
    report("object %ld (class %zu) is not in the pool at the end (%s)",
           first_lost, class_of_index(first_lost),
           state_name(g_state[first_lost].load(), s, sizeof(s)));
  }
  if (first_dup >= 0) {
    report("object %ld (class %zu) is in the pool %u times", first_dup,
           class_of_index(first_dup), seen[first_dup]);
  }
}

/// Runs cfg against a fresh CpuCache and checks conservation; fails the
/// current Check test on any lost or duplicated object.
/// Whether the flipper, the drainer and the signal timer did what the
/// tests' liveness checks ask of them (emulator runs wait for it).
bool helpers_ran(const RunConfig& cfg) {
  return (!cfg.flip_affinity || g_flips > at_least(10)) &&
         (!cfg.drainer || g_drains > at_least(5)) &&
         (cfg.signal_us == 0 || g_signals > at_least(100));
}

void run(const RunConfig& cfg, RunResult* res) {
  memset(res, 0, sizeof(*res));
  reset_world();
  ck_assert_int_le(cfg.workers, kMaxWorkers);
  ck_assert_int_eq(sched_getaffinity(0, sizeof(g_allowed), &g_allowed), 0);

  g_cache = new CpuCache;  // fresh per run: init() is once per object
  g_cache->init(kLimits, kNumClasses, {fake_refill, fake_drain}, kBudgetBytes,
                cfg.want_rseq);
  g_idle_ms = cfg.idle_ms;
  if (cfg.idle_ms != 0)
    g_cache->set_idle_ms(cfg.idle_ms);
  res->mode = g_cache->mode();
  res->describe = g_cache->describe();
  ck_assert_msg(res->mode != Mode::kNone, "CpuCache::init failed: %s",
                res->describe);

  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_sigalrm;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  ck_assert_int_eq(sigaction(SIGALRM, &sa, nullptr), 0);
  set_sigalrm_blocked(true);  // helpers inherit this; workers unblock

  for (int i = 0; i < 9; i++)
    rs_rseq_inject_spins[i] = cfg.spins[i];
  uint64_t aborts_before = rs_rseq_aborts;

  g_num_workers = cfg.workers;
  for (int i = 0; i < cfg.workers; i++) {
    Worker& w = g_workers[i];
    memset(static_cast<void*>(&w), 0, sizeof(w));
    w.index = static_cast<uint32_t>(i);
    ck_assert_int_eq(pthread_create(&w.thread, nullptr, worker_main, &w), 0);
  }
  while (g_running.load() < cfg.workers)
    sched_yield();
  pthread_t flipper, drainer;
  if (cfg.flip_affinity)
    ck_assert_int_eq(pthread_create(&flipper, nullptr, flipper_main, nullptr),
                     0);
  if (cfg.drainer)
    ck_assert_int_eq(pthread_create(&drainer, nullptr, drainer_main, nullptr),
                     0);
  if (cfg.signal_us > 0) {
    struct itimerval it = {{0, cfg.signal_us}, {0, cfg.signal_us}};
    ck_assert_int_eq(setitimer(ITIMER_REAL, &it, nullptr), 0);
  }

  sleep_us(cfg.millis * 1000);
  // Under an emulator (tests/system-aarch64.sh) a helper thread may get no
  // CPU time at all in cfg.millis: run on, up to 10 times as long, until
  // each helper has done what the liveness checks ask (at_least).
  for (long waited = 0;
       rs_on_emulator() && waited < 10 * cfg.millis && !helpers_ran(cfg);
       waited += 10)
    sleep_us(10000);
  g_stop = true;

  if (cfg.signal_us > 0) {
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, nullptr);
  }
  for (int i = 0; i < cfg.workers; i++)
    pthread_join(g_workers[i].thread, nullptr);
  if (cfg.flip_affinity)
    pthread_join(flipper, nullptr);
  if (cfg.drainer)
    pthread_join(drainer, nullptr);
  res->aborts = rs_rseq_aborts - aborts_before;
  for (int i = 0; i < 9; i++)
    rs_rseq_inject_spins[i] = 0;

  for (int i = 0; i < cfg.workers; i++) {
    const Worker& w = g_workers[i];
    res->ops += w.ops;
    res->fast_pops += w.fast_pops;
    res->fast_pushes += w.fast_pushes;
    res->slow_pops += w.slow_pops;
    res->slow_pushes += w.slow_pushes;
    res->nulls += w.nulls;
  }
  res->flips = g_flips;
  res->drains = g_drains;
  res->drained_by_drainer = g_drained_by_drainer;
  res->signals = g_signals;

  g_cache->drain_all();
  account(res);

  fprintf(stderr,
          "%s: mode %s, %d workers, %ld ms: ops %llu (fast pop %llu, fast "
          "push %llu, slow pop %llu, slow push %llu, null %llu), refills "
          "%llu, drains to backend %llu, affinity flips %llu, drain_all "
          "%llu (%llu objects), SIGALRM %llu, rseq aborts %llu; lost %llu, "
          "duplicated %llu, misplaced %llu, errors %llu\n",
          cfg.name, res->describe, cfg.workers, cfg.millis,
          static_cast<unsigned long long>(res->ops),
          static_cast<unsigned long long>(res->fast_pops),
          static_cast<unsigned long long>(res->fast_pushes),
          static_cast<unsigned long long>(res->slow_pops),
          static_cast<unsigned long long>(res->slow_pushes),
          static_cast<unsigned long long>(res->nulls),
          static_cast<unsigned long long>(g_refill_calls.load()),
          static_cast<unsigned long long>(g_drain_calls.load()),
          static_cast<unsigned long long>(res->flips),
          static_cast<unsigned long long>(res->drains),
          static_cast<unsigned long long>(res->drained_by_drainer),
          static_cast<unsigned long long>(res->signals),
          static_cast<unsigned long long>(res->aborts),
          static_cast<unsigned long long>(res->lost),
          static_cast<unsigned long long>(res->duplicated),
          static_cast<unsigned long long>(res->misplaced),
          static_cast<unsigned long long>(g_errors.load()));

  ck_assert_msg(g_errors.load() == 0, "%s: %llu errors; first: %s", cfg.name,
                static_cast<unsigned long long>(g_errors.load()),
                g_first_error);
  ck_assert_msg(res->lost == 0 && res->duplicated == 0 && res->misplaced == 0,
                "%s: lost %llu, duplicated %llu, misplaced %llu", cfg.name,
                static_cast<unsigned long long>(res->lost),
                static_cast<unsigned long long>(res->duplicated),
                static_cast<unsigned long long>(res->misplaced));
  ck_assert_msg(res->left_in_caches == 0,
                "%s: %llu objects still cached after drain_all()", cfg.name,
                static_cast<unsigned long long>(res->left_in_caches));
  ck_assert_msg(res->nulls == 0, "%s: %llu pops found no memory", cfg.name,
                static_cast<unsigned long long>(res->nulls));
  for (int i = 0; i < cfg.workers; i++) {
    ck_assert_msg(g_workers[i].ops > 0, "%s: worker %d never ran", cfg.name, i);
  }
  // The slow paths and both batch directions really ran.
  ck_assert_uint_gt(g_refill_calls.load(), 0);
  ck_assert_uint_gt(g_drain_calls.load(), 0);
}

/// The mode a run that wants rseq must get, unless RSMALLOC_RSEQ=0.
void expect_mode(const RunConfig& cfg, const RunResult& res) {
  if (!cfg.want_rseq) {
    ck_assert_msg(res.mode == Mode::kLocked, "%s: want_rseq=false gave %s",
                  cfg.name, res.describe);
    ck_assert_uint_eq(res.fast_pops, 0);  // the fast path is off
    ck_assert_uint_eq(res.fast_pushes, 0);
    return;
  }
  ck_assert_msg(res.mode == Mode::kRseq, "%s: want_rseq=true gave %s", cfg.name,
                res.describe);
  // The restartable sections did the bulk of the work.
  ck_assert_uint_gt(res.fast_pops, 0);
  ck_assert_uint_gt(res.fast_pushes, 0);
}

}  // namespace

#endif  // RS_TESTS_RSEQ_CACHE_HARNESS_H_
