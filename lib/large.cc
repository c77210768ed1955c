// SPDX-License-Identifier: MIT
// Core layer: large allocations from the page heap or their own mappings.
#include "large.h"

#include "os.h"
#include "page_heap.h"
#include "page_map.h"

namespace rs {

size_t g_map_threshold = 4 * 1024 * 1024;

namespace {

/// Alignments above this use a mapping of their own, whatever the size.
constexpr size_t kMaxHeapAlign = 1024 * 1024;

void* map_large(size_t n, size_t align) {
  size_t bytes = align_up(n, kPageSize);
  if (bytes < n)
    return nullptr;
  size_t map_align = align > kPageSize ? align : kPageSize;
  void* mem = os::map_aligned(bytes, map_align);
  if (mem == nullptr && g_page_heap.unmap_free() > 0) {
    mem = os::map_aligned(bytes, map_align);  // address space came back
  }
  if (mem == nullptr)
    return nullptr;
  if (g_page_heap.record_mapping(mem, bytes) == nullptr) {
    os::unmap(mem, bytes);
    return nullptr;
  }
  return mem;
}

}  // namespace

void* large_allocate(size_t n, size_t align, bool* zeroed) {
  if (n > (SIZE_MAX >> 1) - align)
    return nullptr;
  if (n == 0)
    n = 1;  // aligned_alloc(align, 0) still gets a block of its own
  if (n >= __atomic_load_n(&g_map_threshold, __ATOMIC_RELAXED) ||
      align > kMaxHeapAlign) {
    *zeroed = true;  // fresh from mmap
    return map_large(n, align);
  }
  size_t pages = align_up(n, kPageSize) >> kPageShift;
  size_t align_pages = align > kPageSize ? align >> kPageShift : 1;
  Span* span = g_page_heap.allocate(pages, SpanState::kLarge, 0, align_pages);
  *zeroed = false;
  return span != nullptr ? ptr_at<void>(span->start()) : nullptr;
}

void large_free(Span* span, void* p) {
  if (span->state == SpanState::kMapped) {
    size_t bytes = span->mapped_bytes;
    if (!g_page_heap.forget_mapping(span, p))
      fatal_pointer("free", p);
    os::unmap(p, bytes);
    return;
  }
  if (!g_page_heap.free_large(span, p))
    fatal_pointer("free", p);
}

size_t large_usable_size(const Span* span) {
  return span->state == SpanState::kMapped ? span->mapped_bytes : span->bytes();
}

void* large_resize_in_place(Span* span, void* p, size_t n) {
  size_t have = large_usable_size(span);
  if (span->state != SpanState::kMapped) {
    // A heap span: keep it while the new size fits and wastes at most half.
    return n <= have && n > have / 2 ? p : nullptr;
  }
  size_t bytes = align_up(n, kPageSize);
  if (bytes < n)
    return nullptr;
  if (bytes == have)
    return p;
  if (n < __atomic_load_n(&g_map_threshold, __ATOMIC_RELAXED) / 2) {
    return nullptr;  // small enough to go back to the heap: copy
  }
  if (bytes < have) {  // shrinking in place always works
    if (!os::remap_in_place(p, have, bytes))
      return nullptr;
    g_page_heap.move_mapping(span, p, bytes);
    return p;
  }
  if (os::remap_in_place(p, have, bytes)) {
    if (g_page_heap.move_mapping(span, p, bytes))
      return p;
    os::remap_in_place(p, bytes, have);  // no page map memory: undo
    return nullptr;
  }
  // Move the pages (no copy) onto a new recorded mapping.
  void* target = map_large(bytes, kPageSize);
  if (target == nullptr)
    return nullptr;
  Span* target_span = g_page_map.span_of(target);
  if (!os::remap_to(p, have, bytes, target)) {
    large_free(target_span, target);
    return nullptr;
  }
  if (!g_page_heap.forget_mapping(span, p))
    fatal_pointer("realloc", p);
  return target;
}

}  // namespace rs
