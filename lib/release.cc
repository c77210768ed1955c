// SPDX-License-Identifier: MIT
// Facade: the decay of free pages inside partly used spans, driven by the
// slow paths (release.h).
#include "release.h"

#include "central_list.h"
#include "os.h"
#include "page_heap.h"
#include "settings.h"

namespace rs {
namespace {

// When the slow paths next look in spans.
RS_STARTUP_DATA uint64_t g_next_span_release_ms;

}  // namespace

size_t release_span_pages(uint64_t idle_ms, size_t budget) {
  if (g_page_heap.huge_backed())
    return 0;
  size_t released = 0;
  for (size_t c = 1; c < kNumClasses && budget > 0; c++)
    released += g_central[c].release_free_pages(idle_ms, &budget);
  return released;
}

// Once per decay time (at least 50 ms), one slow path looks at the spans
// left alone that long. A pass that took long (a large, fragmented heap)
// waits 50 times as long before the next.
void maybe_release_span_pages() {
  uint64_t now = os::now_ms();
  uint64_t next = __atomic_load_n(&g_next_span_release_ms, __ATOMIC_RELAXED);
  if (now < next)
    return;
  uint64_t decay = g_config.decay_ms;
  uint64_t period = decay > 50 ? decay : 50;
  if (next == 0) {
    // The first slow path (the first malloc of the process) only starts the
    // clock: nothing is old enough yet, and a pass would read the system's
    // THP setting from sysfs at start-up for nothing.
    __atomic_compare_exchange_n(&g_next_span_release_ms, &next, now + period,
                                false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    return;
  }
  if (!__atomic_compare_exchange_n(&g_next_span_release_ms, &next, now + period,
                                   false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
    return;  // another thread does it
  release_span_pages(decay, kSpanReleaseBudget);
  uint64_t took = os::now_ms() - now;
  if (took * 50 > period) {
    __atomic_store_n(&g_next_span_release_ms, now + took * 50,
                     __ATOMIC_RELAXED);
  }
}

}  // namespace rs
