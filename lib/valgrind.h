// SPDX-License-Identifier: MIT
// Base layer: memcheck client requests. Under valgrind rseq is unavailable
// and the locked fallback runs; that path (never the rseq fast path) tells
// memcheck about every block. Without valgrind's headers at configure time
// every request compiles to nothing.
#ifndef RS_VALGRIND_H_
#define RS_VALGRIND_H_

#include "base.h"
#include "config.h"
#include "lock.h"

#ifdef RS_HAVE_VALGRIND
#  include <valgrind/memcheck.h>
#  include <valgrind/valgrind.h>
// valgrind.h turns every request into nothing (NVALGRIND) on an
// architecture valgrind does not support (riscv64): use the stubs there.
#  ifdef NVALGRIND
#    undef RS_HAVE_VALGRIND
#  endif
#endif

namespace rs::vg {

/// Set by the facade when it runs under valgrind and annotates its blocks;
/// until then the core's own annotations are off (a unit test that drives
/// the core directly is not a malloc and has no blocks to announce).
extern bool g_annotate;

#ifdef RS_HAVE_VALGRIND
/// True when the process runs under valgrind (checked once at start-up).
inline bool detect() {
  return RUNNING_ON_VALGRIND != 0;
}

/// A block of n requested bytes at p, with usable bytes in all: the bytes
/// past n stay unaddressable.
inline void malloclike(void* p, size_t n, size_t usable, bool zeroed) {
  if (usable > n)
    VALGRIND_MAKE_MEM_NOACCESS(static_cast<char*>(p) + n, usable - n);
  VALGRIND_MALLOCLIKE_BLOCK(p, n, 0, zeroed ? 1 : 0);
}

inline void freelike(void* p) {
  VALGRIND_FREELIKE_BLOCK(p, 0);
}

inline void resize_in_place(void* p, size_t old_n, size_t new_n) {
  VALGRIND_RESIZEINPLACE_BLOCK(p, old_n, new_n, 0);
}

inline void make_defined(const void* p, size_t n) {
  if (g_annotate)
    VALGRIND_MAKE_MEM_DEFINED(p, n);
}

inline void make_undefined(const void* p, size_t n) {
  if (g_annotate)
    VALGRIND_MAKE_MEM_UNDEFINED(p, n);
}

inline void make_noaccess(const void* p, size_t n) {
  if (g_annotate)
    VALGRIND_MAKE_MEM_NOACCESS(p, n);
}
#else
inline bool detect() {
  return false;
}

inline void malloclike(void*, size_t, size_t, bool) {}

inline void freelike(void*) {}

inline void resize_in_place(void*, size_t, size_t) {}

inline void make_defined(const void*, size_t) {}

inline void make_undefined(const void*, size_t) {}

inline void make_noaccess(const void*, size_t) {}
#endif

/// Requested sizes of live blocks, kept only under valgrind so that
/// malloc_usable_size reports exactly what memcheck considers addressable.
/// An open-addressing table in memory mapped for itself; thread-safe.
class SizeTable {
 public:
  /// Records n for p; false when no memory was available (the block is then
  /// reported with its usable size).
  bool put(const void* p, size_t n);

  /// The recorded size of p, or `otherwise` if p is not recorded.
  size_t get(const void* p, size_t otherwise);

  /// Forgets p; false if it was not recorded.
  bool erase(const void* p);

  /// A leaf lock, for the fork handlers.
  Lock& lock() { return lock_; }

 private:
  bool grow_locked();
  size_t find_locked(uintptr_t key) const;

  Lock lock_;
  uintptr_t* keys_;  // 0 empty, 1 deleted, else a block address
  size_t* sizes_;    // requested bytes, parallel to keys_
  size_t capacity_;  // slots (a power of two)
  size_t used_;      // live and deleted slots
  size_t live_;      // live slots
};

extern SizeTable g_sizes;

/// Under valgrind freed blocks wait here before they are reused, oldest
/// out first, as in memcheck's own allocator (its --freelist-vol, 20 MB): a
/// read after free is reported as one for longer, and memcheck is not
/// handed again the block it has just seen freed. Thread-safe; a leaf lock.
class Quarantine {
 public:
  /// Holds p, a block of `bytes` usable bytes and of size class `cls` (0
  /// for a large block); false when there is no room for its record (free
  /// it now).
  bool put(void* p, size_t bytes, uint8_t cls);

  /// Moves into out up to max_out of the oldest blocks: those beyond the
  /// quarantine's budget, or every block when `all`. Returns how many.
  size_t take(void** out, size_t max_out, bool all);

  /// Whether p is held (a scan of every entry: for suspected double frees).
  bool holds(const void* p);

  /// Blocks of size class cls held (bytes of large blocks for 0); racy.
  size_t held(uint8_t cls) const {
    return __atomic_load_n(&held_[cls], __ATOMIC_RELAXED);
  }

  /// Where held() reads, for the introspection block: 256 counters.
  const size_t* held_addr() const { return held_; }

  Lock& lock() { return lock_; }

 private:
  static constexpr size_t kMaxBytes = size_t{20} << 20;
  static constexpr size_t kSlots = size_t{1} << 16;

  struct Entry {
    void* p;       // the freed block
    size_t bytes;  // its usable size
    uint8_t cls;   // its size class, 0 for a large block
  };

  void count(const Entry& e, bool in);

  Lock lock_;
  Entry* ring_;       // kSlots entries, mapped on first use
  size_t head_;       // index of the oldest entry
  size_t count_;      // entries held
  size_t bytes_;      // their usable bytes
  size_t held_[256];  // blocks held per size class; [0]: large bytes
};

extern Quarantine g_quarantine;

}  // namespace rs::vg

#endif  // RS_VALGRIND_H_
