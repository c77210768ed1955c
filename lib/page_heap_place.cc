// SPDX-License-Identifier: MIT
// Core layer: the page heap's placement, where a request's pages come
// from: the smallest resident free span, a run of adjacent free spans with
// the most resident pages, a released span, or new address space.
#include "page_heap.h"
#include "page_map.h"

namespace rs {
namespace {

/// Most spans of the long lists that one allocation looks at for a run.
constexpr int kRunCandidates = 64;

}  // namespace

// Where n pages go, in order of preference: the smallest resident free
// span that holds them (no page faults); else, when `runs` allows, a run
// of adjacent free spans that covers the most resident pages (faults only
// for the released ones); else the smallest released span (all fault);
// else new address space. The result is a span of exactly n pages in state
// kLarge, its released_pages telling how many of them were released.
Span* PageHeap::allocate_locked(size_t n, bool runs) {
  for (int attempt = 0; attempt < 2; attempt++) {
    if (Span* s = best_fit(kResident, n))
      return carve_exact(s, n);
    Placement at;
    if (runs && place_over_resident(n, &at)) {
      if (Span* s = carve_range(at.first_page, n))
        return s;
    }
    if (Span* s = best_fit(kReleased, n))
      return carve_exact(s, n);
    if (attempt == 0 && !grow(n))
      return nullptr;
  }
  return nullptr;
}

// The free span s (one residency) cut to its last n pages, the rest kept.
Span* PageHeap::carve_exact(Span* span, size_t n) {
  remove(span);
  if (span->num_pages > n) {
    Span* tail = carve_tail(span, n);
    insert(span);  // what is left stays free, with the same residency
    if (tail == nullptr)
      return nullptr;
    span = tail;
    g_page_map.set_range(span->first_page, n, span, 0);
  }
  span->state = SpanState::kLarge;  // in use; the caller sets the final state
  return span;
}

// For each resident span in the long lists (and the exact lists from n / 4
// up), the free run around it: n pages that end where it ends, or start
// where it starts, if the run is long enough. The one with the most
// resident pages wins.
bool PageHeap::place_over_resident(size_t n, Placement* best) {
  best->resident = 0;
  int looked = 0;
  // The exact lists from n / 4 pages to n - 1, then the long list.
  size_t from = n / 4 > 0 ? n / 4 : 1;
  for (size_t k = from <= kExactLists ? from : kExactLists + 1;
       k <= kExactLists + 1; k++) {
    if (k <= kExactLists && k >= n)
      k = kExactLists + 1;
    Span* s = free_[kResident][k <= kExactLists ? k : 0];
    for (; s != nullptr && looked < kRunCandidates; s = s->next, looked++) {
      if (s->num_pages >= n)
        continue;  // best_fit would have taken it
      uintptr_t r0 = s->first_page, r1 = r0 + s->num_pages;
      uintptr_t a0 = r0, a1 = r1;  // the free run around s, up to n pages out
      for (Span* l = g_page_map.span_at(a0 - 1);
           l != nullptr && l->state == SpanState::kFree && r1 - a0 < n;
           l = g_page_map.span_at(a0 - 1)) {
        a0 = l->first_page;
      }
      for (Span* r = g_page_map.span_at(a1);
           r != nullptr && r->state == SpanState::kFree && a1 - r0 < n;
           r = g_page_map.span_at(a1)) {
        a1 = r->first_page + r->num_pages;
      }
      if (a1 - a0 < n)
        continue;
      const uintptr_t where[2] = {
          r1 - a0 >= n ? r1 - n : a0,  // ending where s ends
          a1 - r0 >= n ? r0 : a1 - n,  // starting where s starts
      };
      for (uintptr_t first : where) {
        size_t resident = resident_in(first, n);
        if (resident > best->resident) {
          best->resident = resident;
          best->first_page = first;
        }
      }
    }
  }
  return best->resident > 0;
}

// Resident pages in [first, first + n), all of it free.
size_t PageHeap::resident_in(uintptr_t first, size_t n) {
  size_t resident = 0;
  for (uintptr_t p = first; p < first + n;) {
    Span* s = g_page_map.span_at(p);
    if (s == nullptr || s->state != SpanState::kFree)
      return 0;  // not all free (cannot happen: the caller walked it)
    uintptr_t end = s->first_page + s->num_pages;
    uintptr_t stop = end < first + n ? end : first + n;
    if (s->released_pages == 0)
      resident += stop - p;
    p = stop;
  }
  return resident;
}

// [first, first + n), all free, made one span in use: the free spans it
// overlaps are taken whole, except the parts of the first and the last
// outside it, which stay free with their residency. nullptr (nothing
// changed) when no descriptor can be had for those parts.
Span* PageHeap::carve_range(uintptr_t first, size_t n) {
  Span* spare[2] = {spans_.allocate(), spans_.allocate()};
  if (spare[0] == nullptr || spare[1] == nullptr) {
    for (Span* s : spare) {
      if (s != nullptr)
        spans_.free(s);
    }
    return nullptr;
  }
  uintptr_t end = first + n;
  Span* block = nullptr;
  size_t released = 0;
  for (uintptr_t p = first; p < end;) {
    Span* s = g_page_map.span_at(p);
    if (s == nullptr || s->state != SpanState::kFree)
      fatal(__FILE__, __LINE__, "page heap: a run to carve is not free");
    remove(s);
    uintptr_t s_end = s->first_page + s->num_pages;
    if (s->first_page < p) {  // its head stays free
      Span* head = spare[0];
      spare[0] = nullptr;
      *head = *s;
      head->num_pages = p - s->first_page;
      head->released_pages = s->released_pages != 0 ? head->num_pages : 0;
      g_page_map.set_range(head->first_page, head->num_pages, head, 0);
      insert(head);
      s->first_page = p;
      s->num_pages = s_end - p;
      s->released_pages = head->released_pages != 0 ? s->num_pages : 0;
    }
    if (s_end > end) {  // its tail stays free
      Span* tail = spare[1];
      spare[1] = nullptr;
      *tail = *s;
      tail->first_page = end;
      tail->num_pages = s_end - end;
      tail->released_pages = s->released_pages != 0 ? tail->num_pages : 0;
      g_page_map.set_range(end, tail->num_pages, tail, 0);
      insert(tail);
      s->num_pages = end - s->first_page;
      s->released_pages = s->released_pages != 0 ? s->num_pages : 0;
    }
    released += s->released_pages;
    p = s->first_page + s->num_pages;
    if (block == nullptr) {
      block = s;
    } else {
      block->num_pages += s->num_pages;
      spans_.free(s);
    }
  }
  for (Span* s : spare) {
    if (s != nullptr)
      spans_.free(s);
  }
  block->released_pages = released;
  block->next = block->prev = nullptr;
  block->state = SpanState::kLarge;
  g_page_map.set_range(first, n, block, 0);
  return block;
}

}  // namespace rs
