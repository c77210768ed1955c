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
#endif

namespace rs::vg {

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
  VALGRIND_MAKE_MEM_DEFINED(p, n);
}

inline void make_undefined(const void* p, size_t n) {
  VALGRIND_MAKE_MEM_UNDEFINED(p, n);
}

inline void make_noaccess(const void* p, size_t n) {
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

  void erase(const void* p);

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
};

extern SizeTable g_sizes;

}  // namespace rs::vg

#endif  // RS_VALGRIND_H_
