// SPDX-License-Identifier: MIT
// Facade: the decay of free memory that the slow paths drive (no thread
// unless RSMALLOC_BACKGROUND asks for one), and malloc_trim.
#ifndef RS_RELEASE_H_
#define RS_RELEASE_H_

#include "base.h"

namespace rs {

/// Spans one decay pass looks at: about 3 ms of free-list walking.
inline constexpr size_t kSpanReleaseBudget = 2048;

/// Releases the free system pages inside partly used spans of every class
/// that nothing moved in or out of for idle_ms (all when 0), unless huge
/// pages back the heap (that would split them). Looks at most `budget`
/// spans (each look walks a free list). Returns the bytes released.
size_t release_span_pages(uint64_t idle_ms, size_t budget);

/// The decay of free pages inside spans, called from slow paths: a pass at
/// most once per decay time, costing at most about 2% of one CPU.
void maybe_release_span_pages();

}  // namespace rs

#endif  // RS_RELEASE_H_
