// SPDX-License-Identifier: MIT
// rseq layer: the per-CPU caches. Each CPU (or mm_cid) owns a region: a
// header per size class, then the classes' slots. In rseq mode pop and push
// are restartable sequences (critical.h); in fallback mode the same layout
// is guarded by a lock per CPU. This layer moves opaque pointers; sizes,
// batches and the refill and drain callbacks come from the layer above.
// Depends on base only.
#ifndef RS_RSEQ_CPU_CACHE_H_
#define RS_RSEQ_CPU_CACHE_H_

#include "base.h"
#include "lock.h"
#include "rseq/critical.h"
#include "rseq/rseq_abi.h"

namespace rs::rseq {

/// One CPU's header for one size class. Slots [begin, current) hold
/// objects; [current, end) is free room; end grows up to max_end. An
/// uninitialised header is all zero: no objects and no room, so both pop
/// and push fail into the slow path, which lays the region out. A stopped
/// header (begin = kStopped, end = 0) also fails both ways.
struct alignas(8) Header {
  uint16_t current;  // index of the next free slot (the commit target)
  uint16_t end;      // one past the last usable slot (the capacity)
  uint16_t begin;    // index of the class's first slot
  uint16_t max_end;  // end may grow up to here
};

inline constexpr uint16_t kStopped = 0xffff;

/// Limits the layer above sets for each class.
struct ClassLimits {
  uint32_t size;          // object size in bytes (for the byte budget)
  uint16_t batch;         // objects per refill or drain
  uint16_t max_capacity;  // most slots the class may use
};

/// Callbacks into the layer above (the central free lists).
struct Backend {
  // n objects wanted; out has room for max (>= n). More than n: the end
  // of a cache line carved from fresh objects, which the caller keeps.
  int (*refill)(size_t cls, void** out, int n, int max);  // 0: no memory
  void (*drain)(size_t cls, void* const* objs, int n);    // takes them all
  // The caches are due to start: take the lock that serialises start(),
  // call it. nullptr: init() starts them at once.
  void (*start)();
};

/// Slow paths (every malloc and free until then) served by the backend
/// before the caches start: a process that allocates a few times pays for
/// no region, fence or sysfs read. They start earlier when the process
/// makes its first thread.
inline constexpr uint32_t kStartAfter = 16;

inline constexpr size_t kRegionShift = 18;  // 256 KiB of address per CPU
inline constexpr size_t kRegionBytes = size_t{1} << kRegionShift;
inline constexpr size_t kMaxClasses = 128;
inline constexpr size_t kMaxCpus = 8192;  // CPUs (or mm_cids) supported

/// Slots each class starts with, all of them together right after the
/// headers (one system page for both): a process that keeps a few objects
/// of a class in a CPU's cache touches no page of that class's own slots.
/// A class that needs more room moves, once per CPU, to its home slots
/// (grow, rseq::relocate); a class with no more slots than this has none.
inline constexpr size_t kStarterSlots = 4;

/// Classes of objects this size and up (a system page or more) may hold
/// together at most 1/kBigShare of a CPU's budget (add_room; a class's
/// first step may go over, as it may over the budget). They move a few
/// objects a batch, their use costs more than a trip to the central list,
/// and what a cache keeps of them no other class can use: realloc's
/// buffers, grown through every class from 4 to 32 KiB, left 1.7 MiB of
/// such objects in its CPU caches at its peak, of a 12.6 MiB peak RSS.
inline constexpr size_t kBigObject = 4096;
inline constexpr size_t kBigShare = 4;

/// How the caches are reached.
enum class Mode : uint8_t {
  kNone,    // no caches: every operation goes to the backend
  kLocked,  // fallback: a lock per CPU, indexed by sched_getcpu()
  kRseq,    // restartable sequences, indexed by mm_cid or cpu_id
};

/// Side data of one CPU, outside the region (never read by the fast path).
struct alignas(64) CpuState {
  Lock lock;                // slow paths: layout, growth, drains; fallback: all
  bool initialised;         // the headers have been laid out
  bool writable;            // its region may be written (map_regions)
  size_t capacity_bytes;    // sum over classes of (end - begin) * size
  size_t big_bytes;         // the part of it in classes of kBigObject up
  uint64_t last_active_ms;  // last slow path on this CPU
  // Per class: a pop found it empty since a push last grew it past a batch.
  uint8_t underflowed[kMaxClasses];
  // Per class: its slots are its home slots (bit cls % 64 of word cls /
  // 64), not its starter slots. Set under the lock, read racily by
  // holds() and cached_objects().
  uint64_t at_home[kMaxClasses / 64];
};

/// The per-CPU caches of the process.
class CpuCache {
 public:
  /// configure(), then set_limits(). With a Backend::start, the caches
  /// themselves wait for start(): until then the mode is kNone and every
  /// operation goes to the backend. Without one, init() calls start().
  void init(const ClassLimits* limits,
            size_t num_classes,
            Backend backend,
            size_t budget_bytes,
            bool want_rseq);

  /// Sets the backend and probes rseq (no system call; the offsets the
  /// sections read are set long before start() publishes the base). The
  /// first allocation of a process calls it; the per-class layout waits for
  /// set_limits(), which need only come before start().
  void configure(Backend backend, size_t budget_bytes, bool want_rseq);

  /// The per-class limits and the slots' layout; before start() (which
  /// falls back to the locked caches' "too many classes" without them).
  void set_limits(const ClassLimits* limits, size_t num_classes);

  /// Whether set_limits() has laid the classes out.
  bool laid_out() const { return num_classes_ != 0; }

  /// Maps the regions and picks the mode: rseq when `want_rseq` and rseq
  /// is usable, else the locked fallback; kNone when no memory. The reason
  /// for a fallback is kept for describe(). Once; true the first time.
  /// The caller serialises the calls (the layer above's start-up lock);
  /// slow paths ask for it through Backend::start after kStartAfter calls.
  bool start();

  /// Whether init() has run.
  bool configured() const { return backend_.refill != nullptr; }

  /// Pops an object of class cls, or nullptr on a miss (take pop_slow).
  /// Always misses while the fast path is off (set_fast_path).
  RS_FAST_PATH void* pop(size_t cls) {
    if (RS_UNLIKELY(fast_.base == nullptr))
      return nullptr;
    return rseq::pop(fast_, cls);
  }

  /// Pushes obj of class cls; false on a miss (take push_slow). Always
  /// misses while the fast path is off.
  RS_FAST_PATH bool push(size_t cls, void* obj) {
    if (RS_UNLIKELY(fast_.base == nullptr))
      return false;
    return rseq::push(fast_, cls, obj);
  }

  /// A word the layer above reads on its fast path (the free mark), kept
  /// next to what pop and push read so that it costs no other cache line
  /// and no other address computation.
  RS_FAST_PATH uintptr_t word() const { return word_; }

  void set_word(uintptr_t w) { word_ = w; }

  /// Whether the inline fast path is on (rseq mode, not turned off).
  RS_FAST_PATH bool fast_path_on() const { return fast_.base != nullptr; }

  /// push for a caller that has seen fast_path_on().
  RS_FAST_PATH bool push_fast(size_t cls, void* obj) {
    return rseq::push(fast_, cls, obj);
  }

  /// pop for slow paths: the same section, also while the fast path is
  /// off; nullptr on a miss (take pop_slow).
  void* pop_cached(size_t cls) {
    if (where_.base == nullptr)
      return nullptr;
    return rseq::pop(where_, cls);
  }

  /// push for slow paths: the same section, also while the fast path is
  /// off; false on a miss (take push_slow).
  bool push_cached(size_t cls, void* obj) {
    if (where_.base == nullptr)
      return false;
    return rseq::push(where_, cls, obj);
  }

  /// Turns the inline pop and push on or off. Off, every malloc and free
  /// reaches the layer above's slow paths (which use pop_cached and
  /// push_slow), so it can act on every block (mallopt M_PERTURB). A
  /// section that read the old state may still complete: the switch takes
  /// effect for operations that start after it.
  /// Before start(), the choice is kept and applied when the caches start.
  void set_fast_path(bool on) {
    LockGuard guard(switch_lock_);
    fast_on_ = on;
    __atomic_store_n(&fast_.base, on ? where_.base : nullptr, __ATOMIC_RELEASE);
  }

  /// The miss path of pop (every pop in fallback mode): lays out the CPU's
  /// region, grows the class's capacity, refills a batch from the backend.
  /// nullptr when out of memory.
  RS_SLOW_PATH void* pop_slow(size_t cls);

  /// The miss path of push: grows the capacity or drains a batch to the
  /// backend; always takes obj.
  RS_SLOW_PATH void push_slow(size_t cls, void* obj);

  /// Empties every CPU's cache into the backend and gives its capacity back
  /// (malloc_trim). In rseq mode: stop, fence, drain, restart. Returns the
  /// number of objects drained.
  size_t drain_all() { return drain(0); }

  /// Empties the caches of CPUs whose slow paths have not run for idle_ms
  /// (all of them for 0) and gives their capacity back. Returns the number
  /// of objects drained.
  size_t drain(uint64_t idle_ms);

  /// Shrinks idle caches (see drain) at most once per idle period; called
  /// from slow paths. 0 (the default) turns it off.
  void set_idle_ms(uint64_t idle_ms) { idle_ms_ = idle_ms; }

  /// Locked mode: use one cache for every thread. Under valgrind threads
  /// run one at a time and sched_getcpu() is a costly emulated syscall.
  void set_single_index(bool single) { single_index_ = single; }

  void maybe_drain_idle(uint64_t now);

  /// Whether obj sits in some CPU's cache of class cls (racy: for a
  /// suspected double free only).
  bool holds(size_t cls, const void* obj) const;

  /// Objects sitting in caches for class cls, across CPUs (racy).
  size_t cached_objects(size_t cls) const;

  /// Acquire: who sees a mode sees the layout start() made before it.
  /// (Through its bytes: clang's __atomic builtins refuse enums.)
  Mode mode() const {
    return static_cast<Mode>(__atomic_load_n(
        reinterpret_cast<const uint8_t*>(&mode_), __ATOMIC_ACQUIRE));
  }

  /// "rseq/mm_cid", "rseq/cpu_id" or "fallback: <reason>".
  const char* describe() const { return description_; }

  size_t num_cpus() const { return num_cpus_; }

  /// Where the regions, the side records and the classes' first slots
  /// are, for the introspection block (read from outside the process).
  const char* regions() const { return regions_; }

  const CpuState* states() const { return states_; }

  const uint16_t* begins() const { return begin_; }

  /// Where class cls's slots begin on a CPU now: its home slots or its
  /// starter slots (kStarterSlots).
  size_t begin_of(size_t cpu, size_t cls) const {
    return at_home(cpu, cls) ? begin_[cls] : starter_[cls];
  }

  /// Fork support: take, release, or reset the fast-path switch's lock and
  /// every CPU lock; the child also re-registers the membarrier fence.
  void lock_all();
  void unlock_all();
  void after_fork_child();

 private:
  /// Objects one refill or drain moves at most.
  static constexpr size_t kMaxBatch = 64;

  // Regions are page-aligned: through void*, which -Wcast-align accepts
  // on strict-alignment targets (32-bit ARM) too.
  Header* header(size_t cpu, size_t cls) const {
    return static_cast<Header*>(region(cpu)) + cls;
  }

  void*& slot(size_t cpu, size_t index) const {
    return static_cast<void**>(region(cpu))[index];
  }

  void* region(size_t cpu) const { return regions_ + (cpu << kRegionShift); }

  /// Whether class cls's slots on a CPU are its home slots, and one past
  /// the last slot it may use there now.
  bool at_home(size_t cpu, size_t cls) const {
    uint64_t word =
        __atomic_load_n(&states_[cpu].at_home[cls / 64], __ATOMIC_RELAXED);
    return (word >> (cls % 64) & 1) != 0;
  }

  size_t max_end_of(size_t cpu, size_t cls) const {
    size_t cap = limits_[cls].max_capacity;
    if (!at_home(cpu, cls) && cap > kStarterSlots)
      cap = kStarterSlots;
    return begin_of(cpu, cls) + cap;
  }

  /// Whether a class with `more` slots of room than it has would have to
  /// leave its starter slots for its home slots first (the CPU's lock
  /// held): it has home slots, is not there, and its starter slots are
  /// laid out but too few.
  bool needs_home(size_t cpu, size_t cls, size_t more) const {
    const Header* h = header(cpu, cls);
    return begin_[cls] != starter_[cls] && !at_home(cpu, cls) &&
           h->max_end != 0 &&
           __atomic_load_n(&h->end, __ATOMIC_RELAXED) + more > h->max_end;
  }

  /// Moves a class from its starter slots to its home slots (the CPU's
  /// lock held); false when it cannot now.
  bool move_home(size_t cpu, size_t cls);

  size_t current_cpu() const;
  bool thread_has_rseq() const;
  bool map_regions();
  void init_region(size_t cpu);
  void ensure_region(size_t cpu);
  /// Adds room to a class of a CPU (its lock held): after a pop found it
  /// empty (underflow), or a push found it full. False when it cannot.
  bool grow(size_t cpu, size_t cls, bool underflow);

  /// Whether class cls counts in a CPU's big_bytes (kBigObject up).
  bool big_class(size_t cls) const { return limits_[cls].size >= kBigObject; }

  /// Adds up to n slots of room to a class of a CPU (its lock held), as
  /// far as max_end and the byte budget allow (grow's first step of a
  /// class, `first_step`, may exceed the budget); returns how many.
  size_t add_room(size_t cpu, size_t cls, size_t n, bool first_step = false);
  /// add_room for the rest of a refill's cache line, which moves the class
  /// home when its starter slots have no room for it.
  size_t add_line_room(size_t cpu, size_t cls, size_t n);
  void* pop_locked(size_t cls);
  void push_locked(size_t cls, void* obj);
  size_t push_batch(size_t cls, void* const* objs, size_t n);
  size_t pop_batch(size_t cls, void** out, size_t n);
  size_t take_all(size_t cpu, size_t cls, bool reset_capacity);
  size_t drain_cpu(size_t cpu);
  size_t restart_cpu(size_t cpu);
  bool selected(size_t cpu, uint64_t now, uint64_t idle_ms) const;
  void note_activity(size_t cpu);
  Mode mode_or_start();

  /// mode_ = m, with release (see mode()).
  void publish_mode(Mode m) {
    __atomic_store_n(reinterpret_cast<uint8_t*>(&mode_),
                     static_cast<uint8_t>(m), __ATOMIC_RELEASE);
  }

  Where fast_ = {};     // what pop and push read: where_, or no base when off
  uintptr_t word_ = 0;  // the layer above's fast-path word (word())
  Where where_ = {};    // rseq mode only: what the slow paths' sections read
  Mode mode_ = Mode::kNone;          // how caches are reached
  Index index_ = Index::kCpuId;      // rseq: mm_cid or cpu_id
  bool fence_ok_ = false;            // rseq: membarrier fence registered
  char* regions_ = nullptr;          // num_cpus_ regions of kRegionBytes
  CpuState* states_ = nullptr;       // num_cpus_ side records
  size_t num_cpus_ = 0;              // possible CPUs
  size_t num_classes_ = 0;           // classes in use, <= kMaxClasses
  size_t budget_bytes_ = 0;          // capacity bytes allowed per CPU
  uint64_t idle_ms_ = 0;             // drain caches idle this long (0: never)
  bool single_index_ = false;        // locked mode: every thread uses cache 0
  uint64_t next_idle_check_ms_ = 0;  // when maybe_drain_idle next looks
  Backend backend_ = {};             // refill, drain and start
  Support support_ = {};             // rseq::probe() at init
  bool want_rseq_ = false;           // RSMALLOC_RSEQ is not 0
  bool started_ = false;             // start() has run
  uint32_t slow_calls_ = 0;          // slow paths before start (relaxed)
  bool starting_ = false;            // a slow path has called Backend::start
  Lock switch_lock_{};               // set_fast_path against start
  bool fast_on_ = true;              // set_fast_path's choice
  const char* description_ = "fallback: not initialised";  // for verbose
  char reason_buf_[128] = {};                              // its text
  ClassLimits limits_[kMaxClasses] = {};                   // per class
  uint16_t begin_[kMaxClasses] = {};    // first home slot of each class
  uint16_t starter_[kMaxClasses] = {};  // first starter slot of each class
};

/// Number of possible CPUs from /sys/devices/system/cpu/possible, or 0 when
/// it cannot be read. possible_cpus_fallback() asks sched_getaffinity.
size_t possible_cpus();
size_t possible_cpus_fallback();

}  // namespace rs::rseq

#endif  // RS_RSEQ_CPU_CACHE_H_
