// SPDX-License-Identifier: MIT
// Facade: start-up (lazy, re-entrant, before and after libc's own
// initialisation), the CPU caches' backend, the opt-in purger thread and
// the statistics printed at exit.
#include "init.h"

#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <sys/auxv.h>

#include "allocator.h"
#include "central_list.h"
#include "introspect.h"
#include "large.h"
#include "log.h"
#include "os.h"
#include "page_heap.h"
#include "release.h"
#include "settings.h"
#include "transfer_cache.h"
#include "valgrind.h"

namespace rs {

RS_STARTUP_DATA Lock g_init_lock;
RS_STARTUP_DATA int g_state = kInitNone;
RS_STARTUP_DATA bool g_disabled = false;
RS_STARTUP_DATA bool g_valgrind = false;
const char* g_mode = "uninitialised";

namespace {

// The environment was readable at init.
RS_STARTUP_DATA bool g_settings_read = false;

// Strict mode's shuffle (racy updates are fine).
RS_STARTUP_DATA uint64_t g_shuffle_state;

/// Strict mode: the objects of a refill in random order, so a freed block
/// is not the next one handed out and neighbours are not handed out in
/// address order.
void shuffle(void** out, int n) {
  uint64_t s = __atomic_load_n(&g_shuffle_state, __ATOMIC_RELAXED) | 1;
  for (int i = n - 1; i > 0; i--) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    int j = static_cast<int>(s % static_cast<uint64_t>(i + 1));
    void* t = out[i];
    out[i] = out[j];
    out[j] = t;
  }
  __atomic_store_n(&g_shuffle_state, s, __ATOMIC_RELAXED);
}

// rsmalloc unmaps and releases memory in its own 8 KiB pages; on a kernel
// with larger pages (64 KiB on some arm64 and ppc64el kernels) munmap and
// madvise(MADV_DONTNEED) would round such a range up over the neighbouring
// spans and destroy live objects. Such a process runs on glibc's malloc,
// as with RSMALLOC_DISABLE=1, whatever the environment says.
RS_STARTUP_DATA bool g_page_too_big = false;

/// load_config(), then the disable that large system pages force.
bool read_settings() {
  bool read = load_config();
  g_page_too_big = os::system_page_size() > kPageSize;
  if (g_page_too_big)
    g_config.disable = true;
  return read;
}

/// Whether the CPU caches have started. The transfer caches serve only
/// them: they are set up just before (start_caches_locked), and until then
/// nothing touches their pages.
bool caches_started() {
  return g_cpu_cache.mode() != rseq::Mode::kNone;
}

/// The CPU caches' refill: a batch from the class's transfer cache (what
/// another CPU drained), the rest from the central list, which ends what
/// it carves on a cache line (up to max objects in all). A single object
/// (before the caches start, or for a thread without rseq) comes from the
/// central list.
int refill(size_t cls, void** out, int n, int max) {
  int got = n > 1 ? g_transfer[cls].remove(out, n) : 0;
  if (got < n) {
    got += g_central[cls].remove_to_line(out + got, n - got, max - got);
    maybe_release_span_pages();
    if (caches_started())
      maybe_flush_idle_transfer_caches(g_config.decay_ms);
  }
  if (RS_UNLIKELY(g_harden) && got > 1)
    shuffle(out, got);
  return got;
}

/// The CPU caches' drain: the batch whole into the class's transfer cache,
/// or to the central list when that is full. A single object (before the
/// caches start, or from a thread without rseq) goes to the central list:
/// a batch of one gains nothing, and the first free of a process maps no
/// transfer array.
void drain(size_t cls, void* const* objs, int n) {
  if (n > 1 && g_transfer[cls].insert(objs, n))
    return;
  g_central[cls].insert_batch(objs, n);
  maybe_release_span_pages();
  if (caches_started())
    maybe_flush_idle_transfer_caches(g_config.decay_ms);
}

/// Two random words: the free mark and the refill shuffle's seed.
void make_secrets(uintptr_t out[2]) {
  out[0] = out[1] = 0;
  if (!os::random_bytes(out, 2 * sizeof(uintptr_t))) {
    // AT_RANDOM: 16 random bytes the kernel gives every process.
    const void* r = reinterpret_cast<const void*>(getauxval(AT_RANDOM));
    if (r != nullptr)
      memcpy(out, r, 2 * sizeof(uintptr_t));
    out[0] ^= addr(out) * 0x9e3779b97f4a7c15u;
    out[1] ^= addr(out) * 0xbf58476d1ce4e5b9u;
  }
}

void set_mode() {
  const char* mode;
  if (g_page_too_big)
    mode = "disabled: system pages larger than 8 KiB";
  else
    mode = g_disabled ? "disabled" : g_cpu_cache.describe();
  __atomic_store_n(&g_mode, mode, __ATOMIC_RELEASE);
}

void apply_settings() {
  g_disabled = g_config.disable;
  set_mode();
  if (g_config.perturb != 0)
    set_perturb(g_config.perturb);
  publish_introspection();
}

// The transfer caches are set up.
RS_STARTUP_DATA bool g_transfer_ready = false;

/// The CPU caches' per-class limits, from the size-class table: when the
/// caches start, not at the first allocation (a process that allocates a
/// few times never needs them). g_init_lock held.
void set_cache_limits() {
  rseq::ClassLimits limits[kNumClasses] = {};
  for (size_t c = 1; c < kNumClasses; c++) {
    const ClassInfo& ci = class_info(c);
    limits[c] = {ci.size, ci.batch, ci.max_capacity};
  }
  g_cpu_cache.set_limits(limits, kNumClasses);
}

/// The transfer caches, then the CPU caches (which publish their mode
/// last). g_init_lock held. True the first time.
bool start_caches_locked() {
  if (!g_transfer_ready) {
    for (size_t c = 1; c < kNumClasses; c++) {
      LockGuard guard(g_transfer[c].lock());  // against malloc_trim's flush
      g_transfer[c].init(static_cast<uint8_t>(c));
    }
    g_transfer_ready = true;
    start_fast_free_checks();
  }
  os::start_clock();  // the caches' idle drains and the decay need time
  if (!g_cpu_cache.laid_out())
    set_cache_limits();
  return g_cpu_cache.start();
}

/// Backend::start: the kStartAfter-th slow path, or someone asks for the
/// mode. The caches map their regions and pick their mode.
void start_cpu_caches() {
  LockGuard guard(g_init_lock);
  if (!start_caches_locked())
    return;
  set_mode();
  publish_introspection();
}

/// Whether the settings ask for something at start-up or exit that shows
/// the cache mode (a report), so the caches start at once.
bool report_wanted() {
  return g_config.verbose || g_config.stats != StatsSetting::kOff;
}

void start_caches() {
  if (g_config.disable)
    return;
  g_cpu_cache.configure({refill, drain, start_cpu_caches},
                        g_config.cpu_cache_bytes,
                        g_config.rseq != RseqSetting::kOff);
  g_cpu_cache.set_idle_ms(idle_cache_ms());
  g_cpu_cache.set_single_index(g_valgrind);
  if (report_wanted())
    start_caches_locked();  // the caller holds g_init_lock
}

/// The background purger (RSMALLOC_BACKGROUND=1): every half decay time it
/// returns aged free pages and drains idle CPU caches, for programs that go
/// quiet and would otherwise never reach a slow path.
void* purger(void*) {
  for (;;) {
    uint64_t period = g_config.decay_ms / 2 > 10 ? g_config.decay_ms / 2 : 10;
    os::sleep_ms(period);
    g_cpu_cache.drain(idle_cache_ms());
    if (caches_started())
      maybe_flush_idle_transfer_caches(g_config.decay_ms);
    g_page_heap.release(g_config.decay_ms);
    release_span_pages(g_config.decay_ms, kSpanReleaseBudget);
    large_trim_mappings(g_config.decay_ms);
  }
  return nullptr;
}

/// The libc functions that start the purger, found when it starts: named
/// in the library, each would be a symbol lookup at load in every process
/// (docs/benchmarks.md, start-up), for a thread few ask for.
struct ThreadCalls {
  int (*set_sigmask)(int, const sigset_t*, sigset_t*);
  int (*attr_init)(pthread_attr_t*);
  int (*attr_setdetachstate)(pthread_attr_t*, int);
  int (*attr_setstacksize)(pthread_attr_t*, size_t);
  int (*attr_destroy)(pthread_attr_t*);
  int (*create)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);
};

template <typename Fn>
bool find(Fn* fn, const char* name) {
  *fn = reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, name));
  return *fn != nullptr;
}

bool find_thread_calls(ThreadCalls* c) {
  return find(&c->set_sigmask, "pthread_sigmask") &&
         find(&c->attr_init, "pthread_attr_init") &&
         find(&c->attr_setdetachstate, "pthread_attr_setdetachstate") &&
         find(&c->attr_setstacksize, "pthread_attr_setstacksize") &&
         find(&c->attr_destroy, "pthread_attr_destroy") &&
         find(&c->create, "pthread_create");
}

void start_purger() {
  os::start_clock();
  ThreadCalls c;
  if (!find_thread_calls(&c)) {
    Log log;
    log.str(
        "rsmalloc: RSMALLOC_BACKGROUND=1: cannot start the purger thread\n");
    return;
  }
  // Blocks every signal in the new thread: the program's signals are for
  // its own threads. (All bits set: pthread_sigmask leaves out the
  // signals glibc keeps for itself, as sigfillset does.)
  sigset_t all, old;
  memset(&all, 0xff, sizeof(all));
  c.set_sigmask(SIG_SETMASK, &all, &old);
  pthread_attr_t attr;
  c.attr_init(&attr);
  c.attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  c.attr_setstacksize(&attr, 64 * 1024);
  pthread_t thread;
  if (c.create(&thread, &attr, purger, nullptr) != 0) {
    Log log;
    log.str(
        "rsmalloc: RSMALLOC_BACKGROUND=1: cannot start the purger thread\n");
  }
  c.attr_destroy(&attr);
  c.set_sigmask(SIG_SETMASK, &old, nullptr);
}

}  // namespace

uint64_t idle_cache_ms() {
  return g_config.decay_ms == 0 ? 1000 : 5 * g_config.decay_ms;
}

RS_SLOW_PATH void init() {
  {
    LockGuard guard(g_init_lock);
    if (__atomic_load_n(&g_state, __ATOMIC_ACQUIRE) == kInitReady)
      return;
    uintptr_t secrets[2];
    make_secrets(secrets);
    // Low byte 0: a class tag (the base ^ class) has the class there, the
    // free mark kMarkByte (allocator.h). On 64-bit, top bits 01: no mark
    // and no tag is a canonical address, so no pointer a program keeps in
    // a block's second word equals one.
    g_tag_base = secrets[1];
    if (sizeof(uintptr_t) == 8)
      g_tag_base =
          (g_tag_base >> 2) | (uintptr_t{1} << (8 * sizeof(uintptr_t) - 2));
    g_tag_base &= ~uintptr_t{0xff};
    g_free_mark = g_tag_base | kMarkByte;
    g_shuffle_state = secrets[0] ^ secrets[1];
    g_cpu_cache.set_word(g_tag_base);
    // No clock read until the caches start or the heap grows (os.h): the
    // first calls' stamps count from then on.
    os::hold_clock();
    set_free_mark(g_free_mark);
    set_system_page_size(os::system_page_size());
    if (!g_settings_read)  // late_init may have read them (once: it reports)
      g_settings_read = read_settings();
    g_valgrind = vg::detect();
    vg::g_annotate = g_valgrind;
    start_caches();
    apply_settings();
    // Strict mode from the start or not at all: every small block needs
    // its canary (the build's default applies when the environment cannot
    // be read yet).
    set_harden(g_config.harden);
    __atomic_store_n(&g_state, kInitReady, __ATOMIC_RELEASE);
  }
  // Outside the init lock: pthread_atfork may allocate.
  install_fork_handlers();
  if (g_settings_read && g_config.verbose)
    print_config(g_mode);
}

namespace {

/// Runs after libc is initialised: reads the settings if the first
/// allocation came before the environment was available. If nothing was
/// allocated yet, start-up waits for the first allocation (a process that
/// never allocates, such as true(1), pays for none of it), unless a setting
/// asks for something now: a report at start-up or at exit, or the purger.
__attribute__((constructor)) void late_init() {
  {
    LockGuard guard(g_init_lock);
    if (__atomic_load_n(&g_state, __ATOMIC_ACQUIRE) != kInitReady) {
      g_settings_read = read_settings();
      if (g_settings_read && !g_config.verbose && !g_config.background &&
          g_config.stats == StatsSetting::kOff) {
        // rsmalloc-stat finds the process (no cache yet, nothing in use).
        publish_introspection();
        return;
      }
    }
  }
  ensure_init();
  if (!g_settings_read) {
    g_settings_read = read_settings();
    if (!g_settings_read)
      return;
    if (!g_config.disable && !g_cpu_cache.configured()) {
      LockGuard guard(g_init_lock);
      start_caches();
    } else if (!g_config.disable && report_wanted()) {
      start_cpu_caches();
    }
    apply_settings();
    if (g_config.harden && !g_harden) {
      // Blocks are out without canaries: too late to turn it on.
      Log log;
      log.str(
          "rsmalloc: RSMALLOC_HARDEN=1 was read after the first "
          "allocations; strict mode stays off\n");
      g_config.harden = false;
    }
    set_harden(g_harden && g_config.harden);
    if (g_config.verbose)
      print_config(g_mode);
  }
  // Here, not in init(): pthread_create allocates, and libc is ready now.
  if (g_config.background && !g_disabled)
    start_purger();
}

__attribute__((destructor)) void print_stats_at_exit() {
  if (g_config.stats == StatsSetting::kOff || g_disabled)
    return;
  Stats s;
  collect_stats(&s);
  Log log;
  if (g_config.stats == StatsSetting::kJson) {
    format_stats_json(log, s, g_mode);
    log.chr('\n');
  } else {
    format_stats_text(log, s, g_mode);
  }
}
}  // namespace

const char* cache_mode() {
  ensure_init();
  if (!g_disabled)
    start_cpu_caches();
  return __atomic_load_n(&g_mode, __ATOMIC_ACQUIRE);
}

bool on_valgrind() {
  return g_valgrind;
}

}  // namespace rs
