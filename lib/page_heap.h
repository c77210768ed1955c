// SPDX-License-Identifier: MIT
// Core layer: the page heap. Hands out spans of pages from address space
// taken from the OS in 2 MiB-aligned chunks, coalesces freed spans, and
// gives unused pages back to the OS after a decay time. A free span is
// either wholly resident or wholly released, so the heap knows which free
// pages are still in memory and reuses those first.
#ifndef RS_PAGE_HEAP_H_
#define RS_PAGE_HEAP_H_

#include "base.h"
#include "lock.h"
#include "meta_arena.h"
#include "os.h"
#include "span.h"

namespace rs {

/// Counters of the page heap, read under its lock.
struct PageHeapStats {
  size_t heap_mapped_bytes;       // address space of heap chunks
  size_t free_bytes;              // in free spans, resident or not
  size_t released_bytes;          // of free_bytes, returned to the OS
  size_t small_span_bytes;        // in spans carved into objects
  size_t large_bytes;             // in large spans from the heap
  size_t mapped_large_bytes;      // in large allocations with own mappings
  size_t mapped_large_count;      // how many of those
  size_t max_mapped_large_count;  // most of them at once
  size_t max_mapped_large_bytes;  // most bytes in them at once
  size_t metadata_bytes;          // span descriptors and page map leaves
  size_t free_spans;              // number of free spans
};

/// All spans come from here. Every public function takes the heap lock.
class PageHeap {
 public:
  /// A span of n pages in state `state`, its page map entries set (class
  /// cls on every page for small spans). align_pages (a power of two) is
  /// the alignment of its start in pages. nullptr when out of memory.
  /// *zeroed (when given) tells whether every page is fresh from the OS or
  /// was returned to it since: the span reads as zeros.
  Span* allocate(size_t n,
                 SpanState state,
                 uint8_t cls,
                 size_t align_pages = 1,
                 bool* zeroed = nullptr);

  /// Returns a span from allocate() to the free lists, coalescing it.
  void free(Span* span);

  /// Frees the large span that starts at p. False when p is not the start
  /// of a live large span (an invalid or double free).
  bool free_large(Span* span, const void* p);

  /// Grows the large span in use to n pages in place, from the free span
  /// right after it; false (nothing changed) when that is not free or too
  /// short. The new pages are not zeroed.
  bool extend_large(Span* span, size_t n);

  /// A descriptor for a mapping made by the caller, recorded in the page
  /// map (its first and last page) so frees find it; nullptr on failure.
  Span* record_mapping(void* start, size_t bytes);

  /// Forgets a recorded mapping after checking p is its start; false when it
  /// is not a live mapped span. The caller unmaps.
  bool forget_mapping(Span* span, const void* p);

  /// The size of the block that started at p in a span given back here
  /// lately (the last kFreedRecords): a small span's object size when p
  /// starts one of its slots, a large block's bytes when p is its start; 0
  /// when no such record is kept. For the report of a double free whose
  /// block's pages went back to the page heap.
  size_t freed_block_size(const void* p);

  /// Moves a recorded mapping's page map entries after mremap.
  bool move_mapping(Span* span, void* new_start, size_t new_bytes);

  /// Returns free pages to the OS: those free for at least decay_ms (all
  /// of them when decay_ms is 0). Returns bytes released now.
  size_t release(uint64_t decay_ms);

  /// Returns free pages to the OS, largest spans first (the tail of the
  /// last one only, as much as needed), until at most keep_bytes of free
  /// memory stay resident (malloc_trim's pad). Returns bytes released now.
  size_t trim(size_t keep_bytes);

  /// The resident free memory kept beyond a quarter of what is in use
  /// before free pages go back at once (mallopt M_TRIM_THRESHOLD); 2 MiB
  /// until set.
  void set_min_slack(size_t bytes);

  /// Unmaps every free span, giving its address space back (for when the
  /// OS refuses a mapping, e.g. under RLIMIT_AS). Returns bytes unmapped.
  size_t unmap_free();

  /// True when huge pages back the heap (RSMALLOC_THP=always, or auto and
  /// the system's THP setting is "always"): releases then go in whole huge
  /// pages only.
  bool huge_backed();

  /// For a range of heap pages just returned to the OS: takes the huge-page
  /// advice back from the huge pages it touches, when grow() gave them
  /// that advice (page_heap_huge.cc). Without the lock: a central list
  /// calls it under its own.
  void unadvise_released(uintptr_t lo, uintptr_t hi);

  PageHeapStats stats();

  /// Where the counters live (metadata_bytes not kept there: it is the sum
  /// of the two below), for the introspection block.
  const PageHeapStats* stats_addr() const { return &stats_; }

  const size_t* span_bytes_addr() const { return spans_.mapped_bytes_addr(); }

  Lock& lock() { return lock_; }

 private:
  static constexpr size_t kExactLists = 128;  // lists for 1..128 pages
  static constexpr size_t kChunkBytes = kHugePageSize;
  // Under RSMALLOC_THP=auto, chunks mapped while the heap is smaller than
  // this refuse huge pages (grow()).
  static constexpr size_t kSmallHeapBytes = 8u << 20;
  static constexpr size_t kMinSlackBytes = 2u << 20;  // resident free kept
  // The first chunk is reserved; this much of it is made writable first,
  // then steps as large as all before them (grow_reserved).
  static constexpr size_t kReserveStepBytes = 256 * 1024;
  // The at-once trim (trim_to_slack) returns only free spans of at least
  // this many pages (256 KiB), and at least this much of one: a madvise of
  // fewer than 33 system pages makes the kernel flush the TLB page by page,
  // which some VMs charge an exit for each (about 25 us a page on the
  // reference machine, against 0.4 us a page for 1024 pages in one call).
  // Smaller free spans wait for the decay, or merge into larger ones.
  static constexpr size_t kAtOnceMinPages = 32;
  static constexpr size_t kPeakKeepDivisor = 8;   // of the window's peak, kept
  static constexpr uint64_t kRegrowWindows = 16;  // decay times a trim counts
  static constexpr int kResident = 0;  // free_[kResident]: pages in memory
  static constexpr int kReleased = 1;  // free_[kReleased]: given back

  /// A run of free spans, resident and released, that n pages could be
  /// carved from so that they cover as many resident pages as possible.
  struct Placement {
    uintptr_t first_page;  // where the n pages would start
    size_t resident;       // resident pages among them
  };

  static constexpr size_t kFreedRecords = 128;

  /// A span given back to the heap: its pages (numbers, not addresses:
  /// valgrind's leak check must not take a record for a pointer to a block
  /// the pages went to since), and its blocks' size.
  struct FreedRecord {
    uintptr_t first_page;
    uintptr_t pages;
    size_t block;  // object size (small span) or block bytes (large)
  };

  void remember_freed(const Span* span);
  Span* allocate_locked(size_t n, bool runs);
  Span* best_fit(int kind, size_t n);
  bool place_over_resident(size_t n, Placement* best);
  size_t resident_in(uintptr_t first, size_t n);
  Span* carve_range(uintptr_t first, size_t n);
  Span* carve_exact(Span* span, size_t n);
  bool grow(size_t n);
  /// grow() from the reservation of the first chunk (n pages fit in it).
  bool grow_reserved(size_t n);
  void insert(Span* span);
  void remove(Span* span);
  void merge_insert(Span* span);
  void free_locked(Span* span);
  void free_piece(Span* piece, bool released);
  Span* carve_tail(Span* span, size_t n);
  void maybe_decay();
  void trim_to_slack();
  void note_regrowth(size_t faulted_bytes);
  size_t release_locked(uint64_t decay_ms, uint64_t now);
  size_t unmap_free_locked();
  /// Returns resident free pages, largest spans first, until at most
  /// keep_bytes stay; spans under min_pages are left alone.
  size_t trim_locked(size_t keep_bytes, size_t min_pages);
  size_t release_span(Span* span, size_t max_pages);
  bool huge_backed_locked();
  os::SystemThp system_thp_locked();
  void advise_chunk_locked(void* mem, size_t bytes);
  void forget_advised_locked();
  void note_mapping_peak();

  /// RSMALLOC_THP=grown where the system's setting is "madvise": the chunks
  /// grow() maps once the heap holds this much address space get
  /// MADV_HUGEPAGE (page_heap_huge.cc), at most kMaxAdvisedBytes of them
  /// at once, in at most kMaxAdvisedRuns runs of adjacent chunks over the
  /// process's life.
  static constexpr size_t kHugeAdviceFromBytes = size_t{32} << 20;
  static constexpr size_t kMaxAdvisedBytes = size_t{4} << 30;
  static constexpr size_t kMaxAdvisedRuns = 32;

  /// A run of adjacent chunks given huge-page advice, [lo, hi). Added and
  /// widened under the lock; emptied (hi = lo) without it, by a CAS in
  /// unadvise_released. Each bound is one atomic word, and a slot is never
  /// reused, so any pair of bounds read covers heap chunks only.
  struct AdvisedRun {
    uintptr_t lo;
    uintptr_t hi;
  };

  /// The first list of `kind` from index `from` on that holds a span, or
  /// kExactLists + 1 when none does.
  size_t next_nonempty(int kind, size_t from) const;

  static constexpr size_t kListWords = (kExactLists + 1 + 63) / 64;

  Lock lock_;
  // Free spans by residency and length; [k][0] holds the longer ones.
  Span* free_[2][kExactLists + 1];
  // Bit i of kind k: free_[k][i] is not empty. best_fit and the decay
  // skip the empty lists by it instead of reading all 129 heads (the
  // first malloc of a process read 512, about 3000 instructions).
  uint64_t nonempty_[2][kListWords];
  SpanArena spans_;      // descriptors
  FreedRecord* freed_;   // spans freed lately, a ring (mapped when first used)
  size_t freed_next_;    // where the next record goes
  PageHeapStats stats_;  // counters (metadata_bytes computed)
  uint64_t next_decay_ms_;  // when maybe_decay() next does work
  bool cannot_release_;     // madvise refused (mlock): stop asking
  // The system's THP setting, kUnknown (zero: no constructor runs at load
  // time) until read.
  os::SystemThp system_thp_;

  // The runs of advised chunks, mapped when the first chunk is advised (a
  // table here would move the globals after it: a page fault more at
  // start-up). Published with a release store.
  struct AdvisedRuns {
    size_t count;
    AdvisedRun run[kMaxAdvisedRuns];
  };

  AdvisedRuns* advised_;
  uint64_t window_end_ms_;  // end of the current peak window
  size_t window_peak_;      // most bytes in use during the window
  size_t large_peak_;       // most bytes in large spans during the window
  size_t last_large_peak_;  // the same during the window before
  uintptr_t reserved_lo_;   // the first chunk's part not yet in the heap:
  uintptr_t reserved_hi_;   // [lo, hi), read-only (grow_reserved)
  size_t min_slack_;        // set_min_slack's bytes, if min_slack_set_
  bool min_slack_set_;      // else kMinSlackBytes
  // Regrowth (trim_to_slack): bytes its trims gave back that no span has
  // faulted in again yet, until trimmed_until_ms_; what the last trim kept
  // resident; how much of what they gave back spans faulted in again; and
  // the slack that earned (the two together, the size of a round).
  size_t trimmed_;
  uint64_t trimmed_until_ms_;
  size_t trimmed_kept_;
  size_t regrown_;
  size_t regrow_keep_;
  uint64_t long_end_ms_;   // end of the current span of kRegrowWindows
  size_t long_peak_;       // most bytes in use during it
  size_t last_long_peak_;  // the same during the span before
};

extern PageHeap g_page_heap;

}  // namespace rs

#endif  // RS_PAGE_HEAP_H_
