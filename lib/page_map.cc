// SPDX-License-Identifier: MIT
// Core layer: leaf allocation and range updates of the page map.
#include "page_map.h"

#include "os.h"
#include "size_class.h"

namespace rs {

PageMap g_page_map;

bool PageMap::ensure(uintptr_t page, size_t n) {
  if (n == 0)
    return true;
  uintptr_t last = page + n - 1;
  if ((last >> kPageBits) != 0)
    return false;
  if (high_ == 0 || page < low_)
    low_ = page;
  if (last + 1 > high_)
    high_ = last + 1;
  for (uintptr_t i = page >> kLeafBits; i <= last >> kLeafBits; i++) {
    // A compare-exchange of null with null, not a load: a root page first
    // seen here takes one write fault, not a read fault and then a write
    // fault for the store. (An atomic add of 0 did that with gcc; clang
    // turns it into a load.)
    Leaf* current = nullptr;
    if (!__atomic_compare_exchange_n(&root_[i], &current, nullptr, false,
                                     __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
      // A leaf is there: its pieces for these pages may not be writable.
      size_t t = 0;
      while (t < tracked_ && tracked_root_[t] != i)
        t++;
      if (t < tracked_ &&
          !commit(t, reinterpret_cast<char*>(current), i, page, last))
        return false;
      continue;
    }
    // Touched a few entries at a time: a huge page here (the system's THP
    // policy "always", or khugepaged collapsing it later) would make 2 MiB
    // resident for a few KiB of entries. Reserved, not mapped writable:
    // under vm.overcommit_memory=2 a writable 4 MiB leaf is charged whole
    // to the commit limit, in every process (os.h, reserve). Published
    // once the pieces these pages need are writable.
    char* leaf = static_cast<char*>(os::reserve(sizeof(Leaf), true));
    if (leaf == nullptr)
      return false;
    bool tracked = kPieces > 1 && tracked_ < kTrackedLeaves;
    if (tracked) {
      tracked_root_[tracked_] = i;
      committed_[tracked_] = 0;
    }
    if (tracked ? !commit(tracked_, leaf, i, page, last)
                : !os::protect(leaf, sizeof(Leaf), true)) {
      os::unmap(leaf, sizeof(Leaf));
      return false;
    }
    if (tracked)
      tracked_++;
    __atomic_store_n(&root_[i], reinterpret_cast<Leaf*>(leaf),
                     __ATOMIC_RELEASE);
    __atomic_fetch_add(&leaf_bytes_, sizeof(Leaf), __ATOMIC_RELAXED);
  }
  return true;
}

bool PageMap::commit(
    size_t t, char* leaf, uintptr_t i, uintptr_t page, uintptr_t last) {
  // The entries of leaf i's part of [page, last], in pieces.
  uintptr_t lo = i << kLeafBits > page ? i << kLeafBits : page;
  uintptr_t hi =
      ((i + 1) << kLeafBits) - 1 < last ? ((i + 1) << kLeafBits) - 1 : last;
  size_t first = ((lo & (kLeafLength - 1)) << kSlotShift) >> kPieceShift;
  size_t end = (((hi & (kLeafLength - 1)) << kSlotShift) >> kPieceShift) + 1;
  for (size_t k = first; k < end;) {
    if ((committed_[t] >> k & 1) != 0) {
      k++;
      continue;
    }
    size_t run = k;  // the uncommitted pieces from k on, in one call
    while (run < end && (committed_[t] >> run & 1) == 0)
      run++;
    if (!os::protect(leaf + (k << kPieceShift), (run - k) << kPieceShift, true))
      return false;
    for (; k < run; k++)
      committed_[t] |= uint64_t{1} << k;
  }
  return true;
}

void PageMap::set_range(uintptr_t page, size_t n, Span* span, uint8_t cls) {
  // starts_slot's check off (word 0) until the central list has carved
  // the page's objects (set_fast_free). The check goes off before the
  // class changes and comes on after, naming the class it is for. While
  // no check was ever on, every check word is still 0: no write.
  bool checks = __atomic_load_n(&checks_used_, __ATOMIC_RELAXED);
  while (n > 0) {
    Leaf* leaf = root_[page >> kLeafBits];
    size_t i = page & (kLeafLength - 1);
    size_t run = kLeafLength - i;
    if (run > n)
      run = n;
    for (size_t k = 0; k < run; k++) {
      if (checks)
        __atomic_store_n(&leaf->slot[i + k].check, uint32_t{0},
                         __ATOMIC_RELEASE);
      __atomic_store_n(&leaf->slot[i + k].span, span, __ATOMIC_RELEASE);
      __atomic_store_n(&leaf->slot[i + k].size_class, cls, __ATOMIC_RELEASE);
    }
    page += run;
    n -= run;
  }
}

void PageMap::set_fast_free(const Span* span,
                            size_t on_halves,
                            uint64_t released,
                            size_t unit_shift) {
  if (on_halves == 0 && !__atomic_load_n(&checks_used_, __ATOMIC_RELAXED))
    return;  // every check is off already: none was ever on
  if (on_halves != 0)
    __atomic_store_n(&checks_used_, true, __ATOMIC_RELAXED);
  size_t cls = span->size_class;
  size_t size = class_size(cls);
  for (size_t k = 0; k < span->num_pages; k++) {
    bool on = 2 * k < on_halves;
    if (on && released != 0) {
      size_t first = (k << kPageShift) >> unit_shift;
      size_t last = (((k + 1) << kPageShift) - 1) >> unit_shift;
      for (size_t u = first; u <= last && u < 64; u++)
        on = on && ((released >> u) & 1) == 0;
    }
    uintptr_t page = span->first_page + k;
    Leaf* leaf = root_[page >> kLeafBits];
    size_t i = page & (kLeafLength - 1);
    uint32_t check = on ? check_word((k << kPageShift) % size, cls) : 0;
    if (on && 2 * k + 1 == on_halves)
      check |= kFirstHalf;
    // Only a word that changes: frees on other CPUs read these lines, and
    // a carve that turns one page on would otherwise take every page's
    // line of the span away from them.
    if (__atomic_load_n(&leaf->slot[i].check, __ATOMIC_RELAXED) != check)
      __atomic_store_n(&leaf->slot[i].check, check, __ATOMIC_RELEASE);
  }
}

}  // namespace rs
