// SPDX-License-Identifier: MIT
// Core layer: the transfer caches. One per size class, between the CPU
// caches and the central lists: a batch that one CPU's cache drains is
// kept whole, as pointers in the transfer cache's own array, and handed
// as a batch to the next CPU that refills, so objects freed on one thread
// and allocated on another never pass through their spans' free lists,
// the page map or the class lock. Only when the transfer cache is full
// (a drain) or empty (a refill) do batches go to the central list.
//
// Nothing is written into the objects: they keep the free mark the free
// path gave them, and no link lives in freed memory.
#ifndef RS_TRANSFER_CACHE_H_
#define RS_TRANSFER_CACHE_H_

#include "base.h"
#include "lock.h"
#include "size_class.h"

namespace rs {

/// Bytes of objects a class's transfer cache holds at first, and after it
/// has been idle.
inline constexpr size_t kTransferBytes = 64 * 1024;

/// Bytes it may grow to while objects flow from some threads' frees to
/// other threads' allocations.
inline constexpr size_t kTransferMaxBytes = 512 * 1024;

/// Objects a class's transfer cache holds at most.
inline constexpr size_t kMaxTransferObjects = 8192;

/// Limits of class cls's transfer cache, in objects.
struct TransferLimits {
  size_t base;  // at first: kTransferBytes, and at least two drains' worth
  size_t max;   // kTransferMaxBytes (at least base), and kMaxTransferObjects
};

/// Classes that move one object at a time (above 8 KiB) have no transfer
/// cache (both limits 0): a batch of one gains nothing.
constexpr TransferLimits transfer_limits(size_t cls) {
  const ClassInfo& ci = detail::kClassTable.info[cls];
  if (cls == 0 || ci.batch < 2)
    return {0, 0};
  size_t least = 2 * (size_t{ci.batch} + 1);  // a drain moves batch + 1
  size_t base = kTransferBytes / ci.size;
  base = base < least ? least : base;
  base = base < kMaxTransferObjects ? base : kMaxTransferObjects;
  size_t max = kTransferMaxBytes / ci.size;
  max = max < base ? base : max;
  max = max < kMaxTransferObjects ? max : kMaxTransferObjects;
  return {base, max};
}

/// One class's transfer cache: a stack of object pointers, in an array it
/// maps for itself the first time a batch comes, under a lock held only to
/// copy a batch in or out.
///
/// It holds up to `base` objects. When a drain finds it full after a
/// refill found it empty (objects flow from one set of threads to another
/// in bursts larger than it), it grows by that drain, up to `max`; an idle
/// look that finds it unused empties it and shrinks it back to `base`.
class TransferCache {
 public:
  /// Empties it and sets its class and limits (transfer_limits(cls), or
  /// the given ones, for the tests; at most kMaxTransferObjects). Not
  /// thread-safe: at start-up, before any batch comes (objects still in
  /// it are forgotten).
  void init(uint8_t cls);
  void init(uint8_t cls, TransferLimits limits);

  /// Keeps all n objects, or none when they do not fit (the caller then
  /// gives them to the central list). A batch stays whole.
  bool insert(void* const* objs, int n);

  /// Moves up to n objects into out, the last inserted first; returns how
  /// many (0 when empty).
  int remove(void** out, int n);

  /// Gives every object to the central list of its class; returns how
  /// many (malloc_trim). With `shrink`, its capacity goes back to its base
  /// once it is empty.
  size_t flush(bool shrink = false);

  /// As flush, and shrinks it back to its base size, but only when nothing
  /// went in or out since the previous call of flush_if_idle; returns how
  /// many objects went.
  size_t flush_if_idle();

  /// Whether p sits here (for a suspected double free). Takes the lock.
  bool holds(const void* p);

  /// Objects held now (racy without the lock).
  size_t count() const { return __atomic_load_n(&used_, __ATOMIC_RELAXED); }

  /// Objects it may hold now (between the base and the max).
  size_t capacity() const {
    return __atomic_load_n(&capacity_, __ATOMIC_RELAXED);
  }

  /// Bytes mapped for its array.
  size_t mapped_bytes() const { return slots_ != nullptr ? array_bytes() : 0; }

  /// Where count() lives, for the introspection block.
  const uint32_t* count_addr() const { return &used_; }

  Lock& lock() { return lock_; }

 private:
  size_t array_bytes() const { return align_up(max_ * sizeof(void*), 4096); }

  /// Moves up to kFlushChunk objects out under the lock; returns how many.
  int take_chunk(void** out);

  /// Maps the array (lock held); false when the OS refuses.
  bool map_slots();

  /// A refill found fewer objects than it wanted.
  void note_miss();

  RS_CACHELINE_ALIGNED Lock lock_;
  uint32_t used_;        // objects in slots_[0, used_)
  uint32_t capacity_;    // most objects allowed now
  uint32_t base_;        // capacity_ at first and after an idle flush
  uint32_t max_;         // capacity_ grows up to this
  uint8_t cls_;          // the size class
  uint32_t misses_;      // removes that found too few, not yet grown for
  bool no_memory_;       // the array could not be mapped: stay unused
  uint64_t moves_;       // inserts and removes so far
  uint64_t idle_moves_;  // moves_ at the last flush_if_idle
  void** slots_;         // max_ pointers, mapped on first use
};

extern TransferCache g_transfer[kNumClasses];

/// flush() of every class; returns the objects moved.
size_t flush_transfer_caches();

/// Once per period_ms at most (at least 50 ms), from slow paths: every
/// transfer cache that nothing used since the previous look gives its
/// objects to the central lists, so that their spans can empty and their
/// pages go back to the OS by the decay rules.
void maybe_flush_idle_transfer_caches(uint64_t period_ms);

/// Bytes mapped for the transfer caches' arrays (metadata), and where
/// that count lives, for the introspection block.
size_t transfer_mapped_bytes();
const size_t* transfer_mapped_bytes_addr();

}  // namespace rs

#endif  // RS_TRANSFER_CACHE_H_
