// SPDX-License-Identifier: MIT
// Core layer: the per-class central free lists. Each keeps the spans of its
// class that have free objects, behind its own lock, and moves objects in
// batches to and from the CPU caches.
#ifndef RS_CENTRAL_LIST_H_
#define RS_CENTRAL_LIST_H_

#include "base.h"
#include "lock.h"
#include "size_class.h"
#include "span.h"

namespace rs {

/// Counters of one central list, read under its lock.
struct CentralStats {
  size_t spans;      // spans of this class
  size_t allocated;  // objects out of those spans (in caches or in use)
  size_t capacity;   // objects those spans can hold
};

/// The spans of one size class. Links inside free objects are encoded with
/// a per-process secret and checked on the way out, so a use-after-free
/// write is caught instead of handing out a wild pointer.
class CentralList {
 public:
  void init(uint8_t cls) { cls_ = cls; }

  /// Moves up to n objects into out; returns how many (0: out of memory).
  int remove_batch(void** out, int n);

  /// Takes back n objects of this class; aborts on a pointer that is not
  /// an object of this class (an invalid or double free).
  void insert_batch(void* const* objs, int n);

  CentralStats stats();

  Lock& lock() { return lock_; }

 private:
  void link(Span* span);
  void unlink(Span* span);
  void* pop(Span* span);

  /// True when p is the start of an object of span that was handed out
  /// at some point (below the bump pointer). Central lock held.
  bool handed_out(const Span* span, const void* p) const;
  Span* new_span();

  RS_CACHELINE_ALIGNED Lock lock_;
  uint8_t cls_;         // the size class
  Span* nonempty_;      // spans with free objects (doubly linked)
  CentralStats stats_;  // counters
};

extern CentralList g_central[kNumClasses];

/// Sets the secret that encodes free-list links. Called once at init.
void set_free_list_secret(uintptr_t secret);

}  // namespace rs

#endif  // RS_CENTRAL_LIST_H_
