// SPDX-License-Identifier: MIT
// Core layer: a snapshot of where the allocator's memory is, and its text
// and JSON renderings. Collected on demand from the central lists, the
// page heap and the CPU caches; nothing is counted on the fast path.
#ifndef RS_STATS_H_
#define RS_STATS_H_

#include "base.h"
#include "central_list.h"
#include "log.h"
#include "page_heap.h"
#include "size_class.h"

namespace rs {

/// Per-class figures of a snapshot.
struct ClassStats {
  size_t in_use;    // objects held by the program
  size_t cached;    // objects in CPU caches
  size_t transfer;  // objects in the class's transfer cache
  size_t free;      // free objects in the class's spans
  size_t spans;     // spans of the class
};

/// Where every byte rsmalloc took from the OS is.
struct Stats {
  size_t in_use_bytes;            // held by the program (small + large)
  size_t small_in_use_bytes;      // of which small objects
  size_t large_in_use_bytes;      // of which large allocations
  size_t cpu_cache_bytes;         // objects waiting in CPU caches
  size_t transfer_cache_bytes;    // objects waiting in transfer caches
  size_t central_free_bytes;      // free objects in spans of the central lists
  size_t heap_free_bytes;         // free pages in the page heap, still resident
  size_t released_bytes;          // free pages returned to the OS
  size_t span_released_bytes;     // of which inside partly used spans
  size_t metadata_bytes;          // span descriptors, page map, cache regions
  size_t mapped_bytes;            // address space taken from the OS
  size_t mapped_large_count;      // large allocations with their own mapping
  size_t mapped_large_bytes;      // their bytes
  size_t max_mapped_large_count;  // most such allocations at once
  size_t max_mapped_large_bytes;  // most bytes in them at once
  size_t free_spans;              // free spans in the page heap
  ClassStats classes[kNumClasses];  // per size class
};

/// The raw counters a snapshot is computed from: read inside the process
/// by collect_stats(), or from outside by `rsmalloc stat` (tools/), which
/// then computes the same figures with the same code.
struct StatsInputs {
  CentralStats central[kNumClasses];  // each class's counters
  size_t cached[kNumClasses];    // objects in CPU caches and the quarantine
  size_t transfer[kNumClasses];  // objects in the transfer caches
  PageHeapStats heap;            // the page heap's, with metadata_bytes
  size_t held_large;             // large bytes in the valgrind quarantine
  size_t cached_mappings;        // bytes of freed mappings kept for reuse
};

/// Fills s from in. The counters may have been read racily (one class at a
/// time, the CPU caches without their locks): figures that would come out
/// negative are clamped, never wrapped around.
void compute_stats(Stats* s, const StatsInputs& in);

void format_stats_text(Log& log, const Stats& s, const char* cache_mode);

/// version: the library version to report (nullptr: this build's).
void format_stats_json(Log& log,
                       const Stats& s,
                       const char* cache_mode,
                       const char* version = nullptr);

}  // namespace rs

#endif  // RS_STATS_H_
