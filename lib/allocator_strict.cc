// SPDX-License-Identifier: MIT
// Facade: strict mode (RSMALLOC_HARDEN=1). Small blocks end in an 8-byte
// canary that malloc_usable_size does not count; a freed small block is
// filled with kFreeFill (its second word keeps the free mark) and waits in
// the quarantine (vg::g_quarantine, shared with valgrind's) before reuse,
// and leaves it only if the fill is intact. The inline fast path is off,
// so every call comes through the slow paths.
#include <stdint.h>
#include <string.h>

#include "allocator_internal.h"
#include "moves.h"
#include "page_map.h"
#include "valgrind.h"

namespace rs {

RS_STARTUP_DATA bool g_harden = false;

namespace {

/// What a freed block holds in strict mode.
constexpr unsigned char kFreeFill = 0xdf;

/// A small block's canary: its address mixed with the free mark.
uintptr_t canary_of(const void* p) {
  return (addr(p) * 0x9e3779b97f4a7c15u) ^ g_free_mark;
}

uintptr_t* canary_word(void* p, size_t cls) {
  return ptr_at<uintptr_t>(addr(p) + class_size(cls) - kCanaryBytes);
}

}  // namespace

/// Strict mode: writes the canary of a new block p (small blocks only).
void* with_canary(void* p) {
  if (RS_UNLIKELY(g_harden) && p != nullptr) {
    size_t cls = g_page_map.class_of(p);
    if (cls != 0)
      *canary_word(p, cls) = canary_of(p);
  }
  return p;
}

/// Strict mode: frees up to 32 of the oldest quarantined blocks (all when
/// `all`, else those beyond its budget) after checking that their fill is
/// intact; `what` names the call that finds a write after free. Returns
/// how many.
size_t strict_drain_quarantine(bool all, const char* what) {
  // The blocks taken are in out only until they are freed: a move of
  // blocks of any class, counted as class 0 (moves.h).
  MoveScope move(0, false);
  void* out[32];
  size_t n = vg::g_quarantine.take(out, 32, all);
  for (size_t i = 0; i < n; i++) {
    void* q = out[i];
    size_t cls = g_page_map.class_of(q);
    // Word by word; word 1 holds the free mark.
    const uint64_t* w = static_cast<const uint64_t*>(q);
    constexpr uint64_t kFillWord = 0x0101010101010101u * kFreeFill;
    for (size_t k = 0; k < class_size(cls) / sizeof(uint64_t); k++) {
      if (w[k] != kFillWord && k != 1)
        fatal_block(what, "write after free to", q,
                    class_size(cls) - kCanaryBytes);
    }
    free_small(q, cls);
  }
  return n;
}

/// Strict mode's free of a small block: the canary checked, the block
/// filled, marked and quarantined; the oldest quarantined blocks leave.
void strict_free(void* p, size_t cls, const char* what) {
  size_t size = class_size(cls);
  if (*canary_word(p, cls) != canary_of(p))
    fatal_block(what, "overflow past the end of", p, size - kCanaryBytes);
  memset(p, kFreeFill, size);
  *mark_word(p) = g_free_mark;
  while (!vg::g_quarantine.put(p, size, static_cast<uint8_t>(cls))) {
    if (strict_drain_quarantine(false, what) == 0) {
      free_small(p, cls);  // no room for its record: no quarantine for it
      return;
    }
  }
  while (strict_drain_quarantine(false, what) > 0) {
  }
}

/// Strict mode, where every free comes through deallocate_slow: whether p
/// is the start of a slot of class cls that has been handed out, in a span
/// with no page returned to the OS, read without the class lock (bump and
/// released_mask are read racily: a stale bump is lower, and a page is
/// released only when every block on it is free). False sends the free
/// to the locked check.
bool strict_slot(const Span* span, const void* p, size_t cls) {
  return starts_slot(span, p, cls) &&
         addr(p) < __atomic_load_n(&span->bump, __ATOMIC_RELAXED) &&
         __atomic_load_n(&span->released_mask, __ATOMIC_RELAXED) == 0;
}

void set_harden(bool on) {
  if (g_valgrind || g_disabled)
    on = false;  // memcheck's checks, or glibc's, apply
  g_harden = on;
  set_fast_free_checks(!on);  // strict: sized frees reach deallocate_slow
  g_cpu_cache.set_fast_path(!on && g_perturb == 0);
}

}  // namespace rs
