// SPDX-License-Identifier: MIT
// Core layer: the span descriptor. Spans are runs of pages with one purpose;
// their descriptors live out of band, in metadata memory (meta_arena.h).
#ifndef RS_SPAN_H_
#define RS_SPAN_H_

#include "base.h"

namespace rs {

enum class SpanState : uint8_t {
  kFree,    // in the page heap's free lists
  kSmall,   // carved into objects of one size class
  kLarge,   // one large allocation from the page heap
  kMapped,  // one large allocation with its own mapping
};

/// 64-bit words of a span's free-object bitmap: one bit per object, and a
/// span holds at most kPageSize / kMinAlign objects (size_class.cc).
inline constexpr size_t kSpanBitWords = kPageSize / kMinAlign / 64;

/// A run of pages. Which lock protects which field is stated per field.
/// Two cache lines, aligned: the first holds what a central list reads
/// for every object it moves, with the bitmap words of a span's first 128
/// objects (all of them from 64-byte objects up); the second the rest of
/// the bitmap and what only the page heap and the releases read.
struct alignas(64) Span {
  Span* next;            // list link (page heap free list or central list)
  Span* prev;            // list link
  uintptr_t first_page;  // address >> kPageShift of the first page

  union {
    uintptr_t bump;           // kSmall: next never-used object address
                              // (central lock)
    uintptr_t guarded_start;  // kMapped: the block's address when it has
                              // guard pages (strict mode, guarded.cc), else 0
  };

  uint16_t allocated;  // kSmall: objects out of the span (central lock)
  uint8_t size_class;  // kSmall: its class; 0 otherwise
  SpanState state;     // what the span is (page heap lock)
  // Not next to allocated: a free's allocated-- and num_free++ were then
  // one vector add of a constant from .rodata, a page the first free
  // faulted in (tests/startup.sh).
  uint16_t num_free;  // kSmall: bits set in free_bits (central lock)
  // kSmall, central lock:
  bool on_list : 1;        // on the central list's nonempty list
  bool pages_checked : 1;  // no free page found since last touched
  bool bump_zeroed : 1;    // objects past the bump pointer read as zeros
  bool checks_late : 1;    // carved before free's fast check started: every
                           // page off until start_checks
  bool any_released : 1;   // released_mask != 0, in this line
  bool by_halves : 1;      // free's fast check comes on half a page at a
                           // time (CentralList::fast_free_halves)
  uint64_t touched_ms;     // kSmall: when objects last moved in or out

  union {
    // kSmall, central lock: bit i set when object i is free and may be
    // handed out again (handed out before, below the bump pointer, not on
    // a released page). Kept here rather than as a list threaded through
    // the freed objects: taking a batch reads no freed object's memory (a
    // cache miss per object once they have gone cold) and hands objects
    // out in address order, and a write after free has no link to forge.
    // Zero whenever the span is not kSmall (the page heap's fields below).
    uint64_t free_bits[kSpanBitWords];

    struct {
      uint64_t free_since_ms;  // kFree: when it was freed, for decay
      size_t released_pages;   // kFree: pages already returned to the OS
                               // (0 or all)
      size_t mapped_bytes;     // kMapped: length of the mapping
    };
  };

  size_t num_pages;  // length in pages

  union {
    uint64_t released_mask;  // kSmall: system pages returned to the OS; every
                             // object on them is free and off the bitmap
                             // (central lock; any_released tells it is set)
    uint64_t guarded_end;    // kMapped with guards: where the guard page
                             // after the block starts
  };

  uintptr_t start() const { return first_page << kPageShift; }

  size_t bytes() const { return num_pages << kPageShift; }

  uintptr_t end() const { return start() + bytes(); }
};

// Two cache lines, with 64-bit pointers and with 32-bit ones (i386 and
// armhf, where the fields leave part of the lines unused).
static_assert(sizeof(Span) == 128, "span descriptors grew");
static_assert(sizeof(void*) != 8 ||
                  offsetof(Span, free_bits) + 2 * sizeof(uint64_t) <= 64,
              "the first 128 objects' bits left the first cache line");

}  // namespace rs

#endif  // RS_SPAN_H_
