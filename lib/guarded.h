// SPDX-License-Identifier: MIT
// Core layer: strict mode's large blocks (RSMALLOC_HARDEN=1). Each has a
// mapping of its own with an inaccessible (PROT_NONE) system page before
// and after it, and ends as close to the second one as its alignment
// allows, so a linear overflow past its end, or an underflow past its
// first system page, faults at the access. Freed ones stay mapped but
// inaccessible for a while (a use after free faults, a double free is
// named), then are unmapped; they are never reused.
#ifndef RS_GUARDED_H_
#define RS_GUARDED_H_

#include "base.h"
#include "lock.h"
#include "span.h"

namespace rs {

/// Whether the large block of span has guard pages.
inline bool is_guarded(const Span* span) {
  return span->state == SpanState::kMapped && span->guarded_start != 0;
}

/// Where the large block of span starts: inside its first page when it has
/// guard pages, else at the span's start.
inline uintptr_t large_block_start(const Span* span) {
  return is_guarded(span) ? span->guarded_start : span->start();
}

/// n bytes aligned to align (a power of two; at least 16 is used), with
/// guard pages, in fresh zeroed memory; nullptr when out of memory.
void* guarded_allocate(size_t n, size_t align);

/// Frees the guarded block p of span (is_guarded(span)); aborts when p is
/// not its start, or when the bytes before it in its first system page
/// were written (an underflow).
void guarded_free(Span* span, void* p);

/// Bytes usable at the guarded block of span: up to its trailing guard.
inline size_t guarded_usable_size(const Span* span) {
  return static_cast<size_t>(span->guarded_end - span->guarded_start);
}

/// realloc of the guarded block p to n bytes: p when n still ends it within
/// 16 bytes of its trailing guard, else nullptr (the caller allocates a new
/// guarded block and copies; a guarded block never grows or shrinks in
/// place, which would move a guard).
void* guarded_resize_in_place(Span* span, void* p, size_t n);

/// For a pointer the page map does not know: aborts naming `what` when p
/// lies in a freed guarded block that is still held back (a double free
/// when p is its start, else an invalid pointer).
void guarded_check_freed(const void* p, const char* what);

/// Unmaps every freed guarded block held back; returns their bytes.
size_t guarded_release_freed();

/// The lock of the freed blocks held back (a leaf), for the fork handlers.
Lock& guarded_lock();

}  // namespace rs

#endif  // RS_GUARDED_H_
