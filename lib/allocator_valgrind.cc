// SPDX-License-Identifier: MIT
// Facade: the paths under valgrind. Every call comes through the slow
// paths; memcheck is told about each block (vg_new, vg_free) and freed
// blocks wait in a quarantine before reuse, so that memcheck can report
// uses after free.
#include <stdint.h>
#include <string.h>

#include "allocator_internal.h"
#include "glibc.h"
#include "page_map.h"
#include "valgrind.h"

namespace rs {

namespace {

/// Frees p (ours; under valgrind already told to memcheck) for reuse.
void raw_free(void* p) {
  size_t cls = g_page_map.class_of(p);
  if (cls != 0) {
    g_cpu_cache.push_slow(cls, p);
  } else {
    large_free(g_page_map.span_of(p), p);
  }
}

}  // namespace

/// Under valgrind: tells memcheck about a new block of n requested bytes.
void* vg_new(void* p, size_t n, bool zeroed) {
  if (p == nullptr || g_disabled)
    return p;  // glibc's blocks are memcheck's own business
  size_t cls = g_page_map.class_of(p);
  size_t usable =
      raw_usable_size(cls, cls != 0 ? nullptr : g_page_map.span_of(p));
  if (kFreeChecks && cls != 0) {
    // Clear the free mark while the block is still ours; malloclike then
    // gives every byte its state (past n: unaddressable).
    vg::make_undefined(mark_word(p), sizeof(uintptr_t));
    *mark_word(p) = 0;
  }
  vg::g_sizes.put(p, n);
  vg::malloclike(p, n, usable, zeroed);
  return p;
}

/// Under valgrind: the block p (ours) is being freed. False when memcheck
/// did not know it as a live block (a double or invalid free, which it has
/// just reported): it must not be freed again.
bool vg_free(void* p) {
  bool live = vg::g_sizes.erase(p);
  vg::freelike(p);
  return live;
}

/// Frees up to 32 of the oldest quarantined blocks (all of them when
/// `all`, else those beyond its budget); returns how many.
size_t vg_drain_quarantine(bool all) {
  void* out[32];
  size_t n = vg::g_quarantine.take(out, 32, all);
  for (size_t i = 0; i < n; i++)
    raw_free(out[i]);
  return n;
}

/// Under valgrind: frees p after its time in the quarantine.
void vg_release(void* p) {
  size_t cls = g_page_map.class_of(p);
  Span* span = cls != 0 ? nullptr : g_page_map.span_of(p);
  if (!vg::g_quarantine.put(p, raw_usable_size(cls, span),
                            static_cast<uint8_t>(cls)))
    raw_free(p);
  while (vg_drain_quarantine(false) > 0) {
  }
}

/// realloc under valgrind: in place only within the same small object,
/// told to memcheck; otherwise a new block, a copy of what memcheck
/// considers defined, and a free.
void* vg_reallocate(void* p, size_t n) {
  size_t cls = g_page_map.class_of(p);
  Span* span = cls != 0 ? nullptr : large_span(p, "realloc");
  if (cls == 0 && span == nullptr)
    return __libc_realloc(p, n);
  size_t usable = raw_usable_size(cls, span);
  size_t old_n = vg::g_sizes.get(p, usable);
  if (cls != 0 && n <= usable && n >= usable / 2) {
    vg::resize_in_place(p, old_n, n);
    vg::g_sizes.put(p, n);
    return p;
  }
  void* q = vg_new(raw_allocate(n), n, false);
  if (q == nullptr)
    return nullptr;
  memcpy(q, p, n < old_n ? n : old_n);
  if (vg_free(p))
    vg_release(p);
  return q;
}

}  // namespace rs
