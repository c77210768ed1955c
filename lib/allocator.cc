// SPDX-License-Identifier: MIT
// Facade: start-up, slow paths, realloc, alignment, trim, statistics and
// fork handling. Joins the per-CPU caches with the central lists.
#include "allocator.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <sys/auxv.h>

#include "central_list.h"
#include "glibc.h"
#include "large.h"
#include "log.h"
#include "os.h"
#include "page_heap.h"
#include "settings.h"
#include "valgrind.h"

namespace rs {

rseq::CpuCache g_cpu_cache;

namespace {

// Start-up state: an int so that __atomic builtins take it (clang refuses
// enums).
constexpr int kInitNone = 0;
constexpr int kInitReady = 1;

Lock g_init_lock;
int g_state = kInitNone;
bool g_disabled = false;       // RSMALLOC_DISABLE=1: glibc serves new requests
bool g_valgrind = false;       // running under valgrind: annotate every block
bool g_settings_read = false;  // the environment was readable at init
const char* g_mode = "uninitialised";

uint64_t g_next_span_release_ms;  // when the slow paths next look in spans

/// Releases the free system pages inside partly used spans of every class
/// that nothing moved in or out of for idle_ms (all when 0), unless huge
/// pages back the heap (that would split them). Looks at most `budget`
/// spans (each look walks a free list).
size_t release_span_pages(uint64_t idle_ms, size_t budget) {
  if (g_page_heap.huge_backed())
    return 0;
  size_t released = 0;
  for (size_t c = 1; c < kNumClasses && budget > 0; c++)
    released += g_central[c].release_free_pages(idle_ms, &budget);
  return released;
}

/// Spans one decay pass looks at: about 3 ms of free-list walking.
constexpr size_t kSpanReleaseBudget = 2048;

/// The decay of free pages inside spans: once per decay time (at least
/// 50 ms), one slow path looks at the spans left alone that long. A pass
/// that took long (a large, fragmented heap) waits 50 times as long before
/// the next, so this costs at most about 2% of one CPU.
void maybe_release_span_pages() {
  uint64_t now = os::now_ms();
  uint64_t next = __atomic_load_n(&g_next_span_release_ms, __ATOMIC_RELAXED);
  if (now < next)
    return;
  uint64_t decay = g_config.decay_ms;
  uint64_t period = decay > 50 ? decay : 50;
  if (!__atomic_compare_exchange_n(&g_next_span_release_ms, &next, now + period,
                                   false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
    return;  // another thread does it
  release_span_pages(decay, kSpanReleaseBudget);
  uint64_t took = os::now_ms() - now;
  if (took * 50 > period) {
    __atomic_store_n(&g_next_span_release_ms, now + took * 50,
                     __ATOMIC_RELAXED);
  }
}

int refill(size_t cls, void** out, int n) {
  int got = g_central[cls].remove_batch(out, n);
  maybe_release_span_pages();
  return got;
}

void drain(size_t cls, void* const* objs, int n) {
  g_central[cls].insert_batch(objs, n);
  maybe_release_span_pages();
}

void fork_prepare() {
  g_init_lock.lock();
  g_cpu_cache.lock_all();
  for (size_t c = 1; c < kNumClasses; c++)
    g_central[c].lock().lock();
  g_page_heap.lock().lock();
  large_cache_lock().lock();  // leaves: taken last
  vg::g_sizes.lock().lock();
  vg::g_quarantine.lock().lock();
}

void fork_parent() {
  vg::g_quarantine.lock().unlock();
  vg::g_sizes.lock().unlock();
  large_cache_lock().unlock();
  g_page_heap.lock().unlock();
  for (size_t c = kNumClasses - 1; c >= 1; c--)
    g_central[c].lock().unlock();
  g_cpu_cache.unlock_all();
  g_init_lock.unlock();
}

void fork_child() {
  vg::g_quarantine.lock().reset();
  vg::g_sizes.lock().reset();
  large_cache_lock().reset();
  g_page_heap.lock().reset();
  for (size_t c = 1; c < kNumClasses; c++)
    g_central[c].lock().reset();
  g_cpu_cache.after_fork_child();
  g_init_lock.reset();
}

uintptr_t make_secret() {
  uintptr_t secret = 0;
  if (!os::random_bytes(&secret, sizeof(secret))) {
    // AT_RANDOM: 16 random bytes the kernel gives every process.
    const void* r = reinterpret_cast<const void*>(getauxval(AT_RANDOM));
    if (r != nullptr)
      memcpy(&secret, r, sizeof(secret));
    secret ^= addr(&secret) * 0x9e3779b97f4a7c15u;
  }
  return secret;
}

void apply_settings() {
  g_disabled = g_config.disable;
  g_mode = g_disabled ? "disabled" : g_cpu_cache.describe();
}

/// A CPU cache with no slow path for this long is drained.
uint64_t idle_cache_ms() {
  return g_config.decay_ms == 0 ? 1000 : 5 * g_config.decay_ms;
}

void start_caches() {
  if (g_config.disable)
    return;
  rseq::ClassLimits limits[kNumClasses] = {};
  for (size_t c = 1; c < kNumClasses; c++) {
    const ClassInfo& ci = class_info(c);
    limits[c] = {ci.size, ci.batch, ci.max_capacity};
  }
  g_cpu_cache.init(limits, kNumClasses, {refill, drain},
                   g_config.cpu_cache_bytes,
                   g_config.rseq != RseqSetting::kOff);
  g_cpu_cache.set_idle_ms(idle_cache_ms());
  g_cpu_cache.set_single_index(g_valgrind);
}

/// The background purger (RSMALLOC_BACKGROUND=1): every half decay time it
/// returns aged free pages and drains idle CPU caches, for programs that go
/// quiet and would otherwise never reach a slow path.
void* purger(void*) {
  for (;;) {
    uint64_t period = g_config.decay_ms / 2 > 10 ? g_config.decay_ms / 2 : 10;
    struct timespec ts = {static_cast<time_t>(period / 1000),
                          static_cast<long>(period % 1000) * 1000000};
    nanosleep(&ts, nullptr);
    g_cpu_cache.drain(idle_cache_ms());
    g_page_heap.release(g_config.decay_ms);
    release_span_pages(g_config.decay_ms, kSpanReleaseBudget);
    large_trim_mappings(g_config.decay_ms);
  }
  return nullptr;
}

void start_purger() {
  // Blocks every signal in the new thread: the program's signals are for
  // its own threads.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  pthread_t thread;
  if (pthread_create(&thread, &attr, purger, nullptr) != 0) {
    Log log;
    log.str(
        "rsmalloc: RSMALLOC_BACKGROUND=1: cannot start the purger thread\n");
  }
  pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

RS_SLOW_PATH void init() {
  {
    LockGuard guard(g_init_lock);
    if (__atomic_load_n(&g_state, __ATOMIC_ACQUIRE) == kInitReady)
      return;
    set_free_list_secret(make_secret());
    set_system_page_size(os::system_page_size());
    for (size_t c = 1; c < kNumClasses; c++)
      g_central[c].init(static_cast<uint8_t>(c));
    g_settings_read = load_config();
    g_valgrind = vg::detect();
    vg::g_annotate = g_valgrind;
    start_caches();
    apply_settings();
    __atomic_store_n(&g_state, kInitReady, __ATOMIC_RELEASE);
  }
  // Outside the init lock: pthread_atfork may allocate.
  pthread_atfork(fork_prepare, fork_parent, fork_child);
  if (g_settings_read && g_config.verbose)
    print_config(g_mode);
}

RS_FAST_PATH void ensure_init() {
  if (RS_UNLIKELY(__atomic_load_n(&g_state, __ATOMIC_ACQUIRE) != kInitReady)) {
    init();
  }
}

/// Runs after libc is initialised: reads the settings if the first
/// allocation came before the environment was available.
__attribute__((constructor)) void late_init() {
  ensure_init();
  if (!g_settings_read) {
    g_settings_read = load_config();
    if (!g_settings_read)
      return;
    if (!g_config.disable && g_cpu_cache.mode() == rseq::Mode::kNone)
      start_caches();
    apply_settings();
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

void* fail_enomem() {
  errno = ENOMEM;
  return nullptr;
}

/// An object of class cls, from the cache or its slow path.
void* allocate_class(size_t cls) {
  void* p = g_cpu_cache.pop(cls);
  if (p == nullptr)
    p = g_cpu_cache.pop_slow(cls);
  return p != nullptr ? p : fail_enomem();
}

/// calloc from this size up: clearing costs more than a central-list trip
/// per cache miss (about 100 ns for 4 KiB, and a page made resident).
constexpr size_t kCallocDirectBytes = 4096;

/// For calloc of a page or more: a CPU-cache miss takes the object from its
/// span directly (not a batch), where it is known whether it was ever
/// written.
void* allocate_class_zeroed(size_t cls, bool* zeroed) {
  void* p = g_cpu_cache.pop(cls);
  if (p != nullptr)
    return p;
  p = g_central[cls].remove_one(zeroed);
  maybe_release_span_pages();
  return p != nullptr ? p : fail_enomem();
}

void* allocate_large(size_t n, size_t align, bool* zeroed) {
  if (n > PTRDIFF_MAX)
    return fail_enomem();
  void* p = large_allocate(n, align, zeroed);
  maybe_release_span_pages();
  return p != nullptr ? p : fail_enomem();
}

/// malloc after start-up, without valgrind annotations.
void* raw_allocate(size_t n) {
  if (RS_UNLIKELY(g_disabled))
    return __libc_malloc(n);
  if (n <= kMaxSmallSize)
    return allocate_class(size_class_of(n));
  bool zeroed;
  return allocate_large(n, kPageSize, &zeroed);
}

void* raw_allocate_aligned(size_t align, size_t n) {
  if (g_disabled)
    return __libc_memalign(align, n);
  if (align <= kPageSize && n <= kMaxSmallSize) {
    // Every object of a class whose size is a multiple of align is aligned:
    // spans start on a page boundary.
    size_t cls = size_class_of(n > align ? n : align);
    while (cls < kNumClasses && class_size(cls) % align != 0)
      cls++;
    if (cls < kNumClasses)
      return allocate_class(cls);
  }
  bool zeroed;
  return allocate_large(n, align > kPageSize ? align : kPageSize, &zeroed);
}

/// The span of a large allocation starting at p; aborts naming `what` when
/// p is inside our memory but not such a start. nullptr for foreign p.
Span* large_span(const void* p, const char* what) {
  Span* span = g_page_map.span_of(p);
  if (span == nullptr)
    return nullptr;
  if ((span->state != SpanState::kLarge && span->state != SpanState::kMapped) ||
      span->start() != addr(p)) {
    fatal_pointer(what, p);
  }
  return span;
}

/// Usable bytes of our block p (small or large).
size_t raw_usable_size(size_t cls, const Span* span) {
  return cls != 0 ? class_size(cls) : large_usable_size(span);
}

/// Under valgrind: tells memcheck about a new block of n requested bytes.
void* vg_new(void* p, size_t n, bool zeroed) {
  if (p == nullptr || g_disabled)
    return p;  // glibc's blocks are memcheck's own business
  size_t cls = g_page_map.class_of(p);
  size_t usable =
      raw_usable_size(cls, cls != 0 ? nullptr : g_page_map.span_of(p));
  vg::g_sizes.put(p, n);
  vg::malloclike(p, n, usable, zeroed);
  return p;
}

/// Under valgrind: the block p (ours) is being freed. False when memcheck
/// did not know it as a live block (a double or invalid free, which it has
/// just reported): it must not be freed again.
bool vg_free(void* p) {
  bool live = vg::g_sizes.erase(p);
  vg::freelike(p);
  return live;
}

/// Frees p (ours; under valgrind already told to memcheck) for reuse.
void raw_free(void* p) {
  size_t cls = g_page_map.class_of(p);
  if (cls != 0) {
    g_cpu_cache.push_slow(cls, p);
  } else {
    large_free(g_page_map.span_of(p), p);
  }
}

/// Frees up to 32 of the oldest quarantined blocks (all of them when
/// `all`, else those beyond its budget); returns how many.
size_t vg_drain_quarantine(bool all) {
  void* out[32];
  size_t n = vg::g_quarantine.take(out, 32, all);
  for (size_t i = 0; i < n; i++)
    raw_free(out[i]);
  return n;
}

/// Under valgrind: frees p after its time in the quarantine.
void vg_release(void* p) {
  size_t cls = g_page_map.class_of(p);
  Span* span = cls != 0 ? nullptr : g_page_map.span_of(p);
  if (!vg::g_quarantine.put(p, raw_usable_size(cls, span),
                            static_cast<uint8_t>(cls)))
    raw_free(p);
  while (vg_drain_quarantine(false) > 0) {
  }
}

/// realloc under valgrind: in place only within the same small object,
/// told to memcheck; otherwise a new block, a copy of what memcheck
/// considers defined, and a free.
void* vg_reallocate(void* p, size_t n) {
  size_t cls = g_page_map.class_of(p);
  Span* span = cls != 0 ? nullptr : large_span(p, "realloc");
  if (cls == 0 && span == nullptr)
    return __libc_realloc(p, n);
  size_t usable = raw_usable_size(cls, span);
  size_t old_n = vg::g_sizes.get(p, usable);
  if (cls != 0 && n <= usable && n >= usable / 2) {
    vg::resize_in_place(p, old_n, n);
    vg::g_sizes.put(p, n);
    return p;
  }
  void* q = vg_new(raw_allocate(n), n, false);
  if (q == nullptr)
    return nullptr;
  memcpy(q, p, n < old_n ? n : old_n);
  if (vg_free(p))
    vg_release(p);
  return q;
}

}  // namespace

void* allocate_slow(size_t n) {
  ensure_init();
  if (RS_UNLIKELY(g_valgrind))
    return vg_new(raw_allocate(n), n, false);
  return raw_allocate(n);
}

void deallocate_slow(void* p, size_t cls) {
  if (cls != 0) {
    if (RS_UNLIKELY(g_valgrind)) {
      if (vg_free(p))
        vg_release(p);
      return;
    }
    g_cpu_cache.push_slow(cls, p);
    return;
  }
  if (p == nullptr)
    return;
  Span* span = g_page_map.span_of(p);
  if (span == nullptr) {
    __libc_free(p);  // not ours: glibc's, from before rsmalloc was loaded
    return;
  }
  if (RS_UNLIKELY(g_valgrind)) {
    if (vg_free(p))
      vg_release(p);
    return;
  }
  large_free(span, p);
}

void* allocate_zeroed(size_t n) {
  ensure_init();
  if (g_disabled)
    return __libc_calloc(1, n);
  bool zeroed = false;
  void* p;
  if (n > kMaxSmallSize) {
    p = allocate_large(n, kPageSize, &zeroed);
  } else if (n >= kCallocDirectBytes && !g_valgrind) {
    p = allocate_class_zeroed(size_class_of(n), &zeroed);
  } else {
    p = raw_allocate(n);
  }
  if (RS_UNLIKELY(g_valgrind))
    vg_new(p, n, true);  // before the memset, which memcheck must allow
  if (p != nullptr && !zeroed)
    memset(p, 0, n);
  return p;
}

void* allocate_aligned(size_t align, size_t n) {
  if (align <= kMinAlign)
    return allocate(n);
  ensure_init();
  void* p = raw_allocate_aligned(align, n);
  if (RS_UNLIKELY(g_valgrind))
    vg_new(p, n, false);
  return p;
}

void* reallocate(void* p, size_t n) {
  if (n > PTRDIFF_MAX)
    return fail_enomem();
  if (RS_UNLIKELY(g_valgrind))
    return vg_reallocate(p, n);
  size_t cls = g_page_map.class_of(p);
  size_t old_size;
  Span* span = nullptr;
  if (cls != 0) {
    old_size = class_size(cls);
    if (n <= old_size && n >= old_size / 2)
      return p;
  } else {
    span = large_span(p, "realloc");
    if (span == nullptr)
      return __libc_realloc(p, n);
    void* q = large_resize_in_place(span, p, n);
    if (q != nullptr)
      return q;
    old_size = large_usable_size(span);
  }
  void* q = allocate(n);
  if (q == nullptr)
    return nullptr;
  memcpy(q, p, n < old_size ? n : old_size);
  if (span != nullptr) {
    large_free(span, p);
  } else {
    deallocate(p);
  }
  return q;
}

size_t usable_size(const void* p) {
  size_t cls = g_page_map.class_of(p);
  Span* span = nullptr;
  if (cls == 0) {
    if (p == nullptr)
      return 0;
    span = large_span(p, "malloc_usable_size");
    if (span == nullptr)
      return glibc::usable_size(const_cast<void*>(p));
  }
  size_t usable = raw_usable_size(cls, span);
  // Under valgrind: what memcheck considers addressable, the request.
  return RS_UNLIKELY(g_valgrind) ? vg::g_sizes.get(p, usable) : usable;
}

bool owns(const void* p) {
  Span* span = g_page_map.span_of(p);
  if (span == nullptr)
    return false;
  // Racy by nature (another thread may free the span): read it once.
  SpanState state = static_cast<SpanState>(__atomic_load_n(
      reinterpret_cast<const uint8_t*>(&span->state), __ATOMIC_RELAXED));
  if (state == SpanState::kSmall) {
    size_t cls = g_page_map.class_of(p);
    size_t off = addr(p) - span->start();
    return cls != 0 && class_divide(cls, off) * class_size(cls) == off &&
           class_divide(cls, off) < class_info(cls).objects;
  }
  return (state == SpanState::kLarge || state == SpanState::kMapped) &&
         span->start() == addr(p);
}

int trim(size_t pad) {
  ensure_init();
  if (g_disabled)
    return glibc::trim(pad);
  if (RS_UNLIKELY(g_valgrind)) {
    while (vg_drain_quarantine(true) > 0) {
    }
  }
  size_t drained = g_cpu_cache.drain_all();
  size_t released = g_page_heap.trim(pad) + large_trim_mappings(0);
  released += release_span_pages(0, SIZE_MAX);
  return released > 0 || drained > 0 ? 1 : 0;
}

void collect_stats(Stats* s) {
  memset(s, 0, sizeof(*s));
  for (size_t c = 1; c < kNumClasses; c++) {
    CentralStats cs = g_central[c].stats();
    // Under valgrind freed blocks wait in the quarantine: held, not in use.
    size_t cached = g_cpu_cache.cached_objects(c) +
                    vg::g_quarantine.held(static_cast<uint8_t>(c));
    if (cached > cs.allocated)
      cached = cs.allocated;  // racy reads
    ClassStats& out = s->classes[c];
    out.in_use = cs.allocated - cached;
    out.cached = cached;
    out.free = cs.capacity - cs.allocated;
    out.spans = cs.spans;
    s->small_in_use_bytes += out.in_use * class_size(c);
    s->cpu_cache_bytes += cached * class_size(c);
    // Free objects on system pages returned to the OS are not resident.
    size_t free_bytes = out.free * class_size(c);
    size_t released = cs.released < free_bytes ? cs.released : free_bytes;
    s->central_free_bytes += free_bytes - released;
    s->span_released_bytes += released;
  }
  PageHeapStats hs = g_page_heap.stats();
  s->large_in_use_bytes = hs.large_bytes + hs.mapped_large_bytes;
  size_t held_large = vg::g_quarantine.held(0);  // freed, in the quarantine
  if (held_large > s->large_in_use_bytes)
    held_large = s->large_in_use_bytes;  // racy reads
  s->large_in_use_bytes -= held_large;
  s->in_use_bytes = s->small_in_use_bytes + s->large_in_use_bytes;
  size_t cached_mappings = large_cached_bytes();  // freed, kept for reuse
  s->heap_free_bytes =
      hs.free_bytes - hs.released_bytes + cached_mappings + held_large;
  s->released_bytes = hs.released_bytes + s->span_released_bytes;
  s->metadata_bytes = hs.metadata_bytes;
  s->mapped_bytes = hs.heap_mapped_bytes + hs.mapped_large_bytes +
                    hs.metadata_bytes + cached_mappings;
  s->mapped_large_count = hs.mapped_large_count;
  s->mapped_large_bytes = hs.mapped_large_bytes;
  s->free_spans = hs.free_spans;
}

const char* cache_mode() {
  ensure_init();
  return g_mode;
}

bool on_valgrind() {
  return g_valgrind;
}

struct mallinfo2 mallinfo2() {
  ensure_init();
  if (g_disabled)
    return glibc::mallinfo2();
  Stats s;
  collect_stats(&s);
  struct mallinfo2 mi = {};
  mi.arena = s.mapped_bytes - s.mapped_large_bytes;  // non-mmapped space
  mi.ordblks = s.free_spans;
  mi.hblks = s.mapped_large_count;
  mi.hblkhd = s.mapped_large_bytes;
  mi.uordblks = s.in_use_bytes;
  mi.fordblks = s.cpu_cache_bytes + s.central_free_bytes + s.heap_free_bytes;
  mi.fsmblks = s.cpu_cache_bytes;
  mi.keepcost = 0;
  return mi;
}

void print_malloc_stats() {
  ensure_init();
  if (g_disabled) {
    glibc::malloc_stats();
    return;
  }
  Stats s;
  collect_stats(&s);
  Log log;
  format_stats_text(log, s, g_mode);
}

int malloc_info(int options, FILE* fp) {
  if (options != 0) {
    errno = EINVAL;
    return -1;
  }
  ensure_init();
  if (g_disabled)
    return glibc::malloc_info(options, fp);
  Stats s;
  collect_stats(&s);
  // glibc's shape: <malloc version="1"><heap nr="0">...</heap>...</malloc>.
  char buf[2048];
  Log x(buf, sizeof(buf));
  x.str("<malloc version=\"1\">\n<heap nr=\"0\">\n<sizes>\n");
  for (size_t c = 1; c < kNumClasses; c++) {
    size_t free_objects = s.classes[c].free + s.classes[c].cached;
    if (free_objects == 0)
      continue;
    x.str("  <size from=\"").dec(c > 1 ? class_size(c - 1) + 1 : 1);
    x.str("\" to=\"").dec(class_size(c)).str("\" total=\"");
    x.dec(free_objects * class_size(c)).str("\" count=\"").dec(free_objects);
    x.str("\"/>\n");
  }
  x.str("</sizes>\n<total type=\"fast\" count=\"0\" size=\"0\"/>\n");
  x.str("<total type=\"rest\" count=\"").dec(s.free_spans).str("\" size=\"");
  x.dec(s.cpu_cache_bytes + s.central_free_bytes + s.heap_free_bytes);
  x.str("\"/>\n<system type=\"current\" size=\"").dec(s.mapped_bytes);
  x.str("\"/>\n<system type=\"max\" size=\"").dec(s.mapped_bytes);
  x.str("\"/>\n<aspace type=\"total\" size=\"").dec(s.mapped_bytes);
  x.str("\"/>\n<aspace type=\"mprotect\" size=\"").dec(s.mapped_bytes);
  x.str("\"/>\n</heap>\n<total type=\"fast\" count=\"0\" size=\"0\"/>\n");
  x.str("<total type=\"rest\" count=\"").dec(s.free_spans).str("\" size=\"");
  x.dec(s.cpu_cache_bytes + s.central_free_bytes + s.heap_free_bytes);
  x.str("\"/>\n<total type=\"mmap\" count=\"").dec(s.mapped_large_count);
  x.str("\" size=\"").dec(s.mapped_large_bytes);
  x.str("\"/>\n<system type=\"current\" size=\"").dec(s.mapped_bytes);
  x.str("\"/>\n<system type=\"max\" size=\"").dec(s.mapped_bytes);
  x.str("\"/>\n<aspace type=\"total\" size=\"").dec(s.mapped_bytes);
  x.str("\"/>\n<aspace type=\"mprotect\" size=\"").dec(s.mapped_bytes);
  x.str("\"/>\n</malloc>\n");
  size_t len = x.total() < sizeof(buf) ? x.total() : sizeof(buf);
  // stdio may allocate; no allocator lock is held here.
  return fwrite(buf, 1, len, fp) == len ? 0 : -1;
}

int mallopt(int param, int value) {
  ensure_init();
  if (g_disabled)
    return glibc::mallopt(param, value);
  switch (param) {
    case M_MMAP_THRESHOLD:
      // glibc caps it at 32 MiB on 64-bit; below the small limit it has no
      // meaning here.
      if (value < 0 || static_cast<size_t>(value) > (size_t{32} << 20))
        return 0;
      __atomic_store_n(&g_map_threshold,
                       static_cast<size_t>(value) > kMaxSmallSize
                           ? static_cast<size_t>(value)
                           : kMaxSmallSize + 1,
                       __ATOMIC_RELAXED);
      return 1;
    case M_MXFAST:
    case M_TRIM_THRESHOLD:
    case M_TOP_PAD:
    case M_MMAP_MAX:
    case M_CHECK_ACTION:
    case M_ARENA_TEST:
    case M_ARENA_MAX:
      return 1;  // glibc tuning with no counterpart here: accepted, no effect
    default:
      return 0;  // M_PERTURB and unknown parameters
  }
}

size_t stats_json(char* buf, size_t len) {
  ensure_init();
  Stats s;
  collect_stats(&s);
  Log log(buf, len);
  format_stats_json(log, s, g_mode);
  log.terminate();
  return log.total();
}

}  // namespace rs
