// SPDX-License-Identifier: MIT
// Core layer: compile-time proofs about the size-class table.
#include "size_class.h"

namespace rs {
namespace {

using detail::kClassTable;

constexpr bool classes_sorted_and_aligned() {
  for (size_t c = 1; c < kNumClasses; c++) {
    if (kClassTable.info[c].size % kMinAlign != 0)
      return false;
    if (c > 1 && kClassTable.info[c].size <= kClassTable.info[c - 1].size)
      return false;
  }
  return kClassTable.info[kNumClasses - 1].size == kMaxSmallSize;
}

constexpr bool waste_bounded() {
  // Any request above 128 B wastes at most 1/8 of the object it gets.
  for (size_t c = 2; c < kNumClasses; c++) {
    size_t lo = kClassTable.info[c - 1].size + 1;  // smallest request here
    size_t size = kClassTable.info[c].size;
    if (lo > 128 && (size - lo) * 8 > size)
      return false;
  }
  return true;
}

constexpr bool spans_fit() {
  for (size_t c = 1; c < kNumClasses; c++) {
    const ClassInfo& ci = kClassTable.info[c];
    size_t bytes = size_t{ci.span_pages} * kPageSize;
    if (ci.objects == 0 || (bytes % ci.size) * 8 > bytes)
      return false;
  }
  return true;
}

static_assert(classes_sorted_and_aligned(), "size classes out of order");
static_assert(waste_bounded(), "a size class wastes more than 12.5%");
static_assert(spans_fit(), "a span wastes more than 12.5%");

constexpr bool objects_fit_bitmap() {
  // central_list.cc keeps one bit per object of a span on the stack.
  for (size_t c = 1; c < kNumClasses; c++) {
    if (kClassTable.info[c].objects > kPageSize / kMinAlign)
      return false;
  }
  return true;
}

static_assert(objects_fit_bitmap(), "a span holds too many objects");

}  // namespace
}  // namespace rs
