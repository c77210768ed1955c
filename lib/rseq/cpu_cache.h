// SPDX-License-Identifier: MIT
// rseq layer: the per-CPU caches. Each CPU (or mm_cid) owns a region: a
// header per size class, then that class's slots. This layer moves opaque
// pointers; the sizes, batches and the refill and drain callbacks come from
// the layer above. Depends on base only.
#ifndef RS_RSEQ_CPU_CACHE_H_
#define RS_RSEQ_CPU_CACHE_H_

#include <sched.h>

#include "base.h"
#include "lock.h"

namespace rs::rseq {

/// One CPU's header for one size class. Slots [begin, current) hold
/// objects; [current, end) is free room; end grows up to max_end. An
/// uninitialised header is all zero: no objects and no room, so both pop
/// and push fail into the slow path, which initialises the region.
struct alignas(8) Header {
  uint16_t current;  // index of the next free slot
  uint16_t end;      // one past the last usable slot (the capacity)
  uint16_t begin;    // index of the class's first slot
  uint16_t max_end;  // end may grow up to here
};

/// Limits the layer above sets for each class.
struct ClassLimits {
  uint32_t size;          // object size in bytes (for the byte budget)
  uint16_t batch;         // objects per refill or drain
  uint16_t max_capacity;  // most slots the class may use
};

/// Callbacks into the layer above (the central free lists).
struct Backend {
  int (*refill)(size_t cls, void** out, int n);         // 0: no memory
  void (*drain)(size_t cls, void* const* objs, int n);  // takes them all
};

inline constexpr size_t kRegionShift = 18;  // 256 KiB of address per CPU
inline constexpr size_t kRegionBytes = size_t{1} << kRegionShift;
inline constexpr size_t kMaxClasses = 128;

/// Side data of one CPU, outside the region (never read by the fast path).
struct alignas(64) CpuState {
  Lock lock;              // fallback mode: guards the region; also init
  bool initialised;       // the headers have been laid out
  size_t capacity_bytes;  // sum over classes of (end - begin) * size
  uint64_t last_miss_ms;  // for shrinking idle caches
};

/// The per-CPU caches of the process.
class CpuCache {
 public:
  /// Maps (reserve-only) one region per possible CPU. False when the
  /// memory is not available; every operation then misses.
  bool init(const ClassLimits* limits,
            size_t num_classes,
            Backend backend,
            size_t budget_bytes);

  /// Pops an object of class cls, or nullptr on a miss (take slow path).
  RS_FAST_PATH void* pop(size_t cls) {
    if (RS_UNLIKELY(regions_ == nullptr))
      return nullptr;
    size_t cpu = current_cpu();
    CpuState& st = states_[cpu];
    st.lock.lock();
    Header* h = header(cpu, cls);
    void* obj = nullptr;
    if (RS_LIKELY(h->current > h->begin))
      obj = slot(cpu, --h->current);
    st.lock.unlock();
    return obj;
  }

  /// Pushes obj of class cls; false on a miss (cache full or uninitialised).
  RS_FAST_PATH bool push(size_t cls, void* obj) {
    if (RS_UNLIKELY(regions_ == nullptr))
      return false;
    size_t cpu = current_cpu();
    CpuState& st = states_[cpu];
    st.lock.lock();
    Header* h = header(cpu, cls);
    bool ok = h->current < h->end;
    if (RS_LIKELY(ok))
      slot(cpu, h->current++) = obj;
    st.lock.unlock();
    return ok;
  }

  /// The miss path of pop: initialises the CPU, grows the class's capacity
  /// and refills a batch from the backend. nullptr when out of memory.
  RS_SLOW_PATH void* pop_slow(size_t cls);

  /// The miss path of push: grows the capacity or drains a batch to the
  /// backend; always takes obj.
  RS_SLOW_PATH void push_slow(size_t cls, void* obj);

  /// Empties every CPU's cache into the backend (malloc_trim). Returns the
  /// number of objects drained.
  size_t drain_all();

  /// Bytes of objects sitting in caches for class cls, across CPUs.
  size_t cached_objects(size_t cls) const;

  size_t num_cpus() const { return num_cpus_; }

  bool active() const { return regions_ != nullptr; }

  /// Fork support: take, release, or reset every CPU lock.
  void lock_all();
  void unlock_all();
  void reset_locks();

 private:
  RS_FAST_PATH Header* header(size_t cpu, size_t cls) const {
    return reinterpret_cast<Header*>(regions_ + (cpu << kRegionShift)) + cls;
  }

  RS_FAST_PATH void*& slot(size_t cpu, size_t index) const {
    return reinterpret_cast<void**>(regions_ + (cpu << kRegionShift))[index];
  }

  RS_FAST_PATH size_t current_cpu() const;

  void init_region(size_t cpu);
  bool grow(size_t cpu, size_t cls);
  int push_batch(size_t cls, void* const* objs, int n);
  int pop_batch(size_t cpu, size_t cls, void** out, int n);

  char* regions_ = nullptr;               // num_cpus_ regions of kRegionBytes
  CpuState* states_ = nullptr;            // num_cpus_ side records
  size_t num_cpus_ = 0;                   // possible CPUs
  size_t num_classes_ = 0;                // classes in use, <= kMaxClasses
  size_t budget_bytes_ = 0;               // capacity bytes allowed per CPU
  Backend backend_ = {};                  // refill and drain
  ClassLimits limits_[kMaxClasses] = {};  // per class
};

RS_FAST_PATH size_t CpuCache::current_cpu() const {
  int cpu = sched_getcpu();  // glibc reads rseq's cpu_id or the vDSO
  size_t c = cpu < 0 ? 0 : static_cast<size_t>(cpu);
  return RS_LIKELY(c < num_cpus_) ? c : c % num_cpus_;
}

/// Number of possible CPUs, from /sys/devices/system/cpu/possible or
/// sched_getaffinity; at least 1.
size_t possible_cpus();

}  // namespace rs::rseq

#endif  // RS_RSEQ_CPU_CACHE_H_
