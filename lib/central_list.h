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

/// What a central list knows of a pointer into one of its spans.
enum class BlockState : uint8_t {
  kNotABlock,  // not the start of an object its span handed out
  kFree,       // free in its span's bitmap, or on a page returned to the OS
  kElsewhere,  // an object handed out: in use, or in some cache
};

/// Counters of one central list, read under its lock.
struct CentralStats {
  size_t spans;      // spans of this class
  size_t allocated;  // objects out of those spans (in caches or in use)
  size_t capacity;   // objects those spans can hold
  size_t released;   // bytes of system pages inside them returned to the OS
};

/// The spans of one size class. A span's free objects are bits in its
/// descriptor (Span::free_bits), never links inside the freed objects: a
/// use-after-free write has nothing to forge, and a batch moves without
/// touching the objects' memory.
class CentralList {
 public:
  /// Moves up to n objects into out; returns how many (0: out of memory).
  /// *first_zeroed (when given) tells whether out[0] reads as zeros: never
  /// handed out, in a span whose pages were fresh from the OS or returned
  /// to it.
  int remove_batch(void** out, int n, bool* first_zeroed = nullptr) {
    return remove(out, n, n, first_zeroed);
  }

  /// remove_batch for a CPU cache, which takes up to max (>= n) objects: a
  /// batch that carves never-used objects goes on carving, up to max, until
  /// the next one starts a pair of cache lines (128 bytes). The objects of
  /// a line carved by one refill go to one CPU cache, not some to the next
  /// refill's (another CPU's, whose writes to them would bounce the line:
  /// false sharing). A carve that would start inside a pair begun
  /// elsewhere takes the rest of that pair as well, not counted in n, and
  /// puts it after out[0], which is then from a whole pair (the bottom of
  /// the CPU cache's stack). Otherwise out[1..] are in the reverse of the
  /// order they were taken in, lowest address first, so that the CPU
  /// cache, which pushes them in order, pops them in that order.
  int remove_to_line(void** out, int n, int max) {
    return remove(out, n, max, nullptr);
  }

  /// One object, for calloc, with remove_batch's *zeroed. nullptr when out
  /// of memory.
  void* remove_one(bool* zeroed) {
    void* obj = nullptr;
    return remove_batch(&obj, 1, zeroed) == 1 ? obj : nullptr;
  }

  /// Takes back n objects of this class; aborts on a pointer that is not
  /// an object of this class (an invalid or double free).
  void insert_batch(void* const* objs, int n);

  /// Returns to the OS the system pages of partly used spans that hold
  /// only free objects, for malloc_trim and the decay. Their objects stay
  /// free; a span takes them back (and faults the pages in again) once its
  /// other free objects are used up. Only spans nothing moved in or out of
  /// for idle_ms are looked at (all of them when idle_ms is 0), and at most
  /// *budget of them (each look scans the span's objects); *budget is
  /// decreased by the spans looked at. Returns bytes released.
  size_t release_free_pages(uint64_t idle_ms, size_t* budget);

  /// All of them, for malloc_trim.
  size_t release_free_pages() {
    size_t all = SIZE_MAX;
    return release_free_pages(0, &all);
  }

  /// Whether p (from a free) starts an object of this class that was
  /// handed out, and whether its span holds it as free. Takes the lock.
  BlockState block_state(const void* p);

  /// block_state for objects on pages returned to the OS only (whose free
  /// mark is gone): kFree for those. For the frees of spans with such
  /// pages, which skip the fast path.
  BlockState released_state(const void* p);

  CentralStats stats();

  /// start_fast_free_checks for the spans on this list.
  void start_checks_of_list();

  /// Where the counters live, for the introspection block (read from
  /// outside the process, without the lock).
  const CentralStats* stats_addr() const { return &stats_; }

  Lock& lock() { return lock_; }

 private:
  int remove(void** out, int n, int max, bool* first_zeroed);
  void link(Span* span);
  void unlink(Span* span);
  /// One object of span: its lowest free one, else the next one carved
  /// (the caller then calls carved() for the run it carved).
  void* pop(Span* span, bool mark_new);
  size_t release_pages_of(Span* span);
  void reclaim(Span* span);
  void mark_tail(Span* span);
  /// How many half pages from the span's start get free's fast check
  /// (PageMap::set_fast_free) when the bump pointer is at bump.
  size_t fast_free_halves(const Span* span, uintptr_t bump) const;
  void carved(Span* span, uintptr_t old_bump);
  void start_checks(Span* span);
  void update_fast_free(const Span* span);
  bool on_released_page(const Span* span, const void* p) const;

  /// True when p is the start of an object of span that was handed out
  /// at some point (below the bump pointer). Central lock held.
  bool handed_out(const Span* span, const void* p) const;
  Span* new_span();
  /// A span with a free object, made when there is none; `carve` objects
  /// of a new one are written before the lock is taken again (fault_in).
  Span* nonempty_span(size_t carve);
  /// Writes what carving `carve` objects of the new span will write (their
  /// free marks, the marks ahead, the tail's), so that its page faults come
  /// before the central lock. The span is on no list yet: no other thread
  /// carves it.
  void fault_in(Span* span, size_t carve);

  /// The size class: the list's index in g_central. Not a member set at
  /// start-up: a process that uses a few classes touches only their lists'
  /// pages of g_central (zero until then: an unlocked, empty list).
  uint8_t cls() const;

  RS_CACHELINE_ALIGNED Lock lock_;
  Span* nonempty_;      // spans with free objects (doubly linked)
  CentralStats stats_;  // counters
};

extern CentralList g_central[kNumClasses];

/// Sets the free mark that objects on released pages get back when they
/// return to the free list (the facade's g_free_mark). Called once at init.
void set_free_mark(uintptr_t mark);

/// Sets the system page size that release_free_pages() works in: a power
/// of two below kPageSize, so that a span has at most 64 system pages; any
/// other value (or 0) turns those releases off. Called once at init.
void set_system_page_size(size_t bytes);

/// Turns free's fast check (page_map.h, starts_slot) on or off for pages
/// carved from now on; off, every free comes to the slow path, sized ones
/// with their size (strict mode: the block's canary is not the program's).
/// Called at init, before any span is carved.
void set_fast_free_checks(bool on);

/// Starts free's fast check (page_map.h, starts_slot), when the CPU caches
/// start: before, every free takes the slow path anyway, so carving leaves
/// every page's check off and writes no mark ahead. Once, g_init_lock held
/// (takes every class lock in turn).
void start_fast_free_checks();

}  // namespace rs

#endif  // RS_CENTRAL_LIST_H_
