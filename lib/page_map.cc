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
  for (uintptr_t i = page >> kLeafBits; i <= last >> kLeafBits; i++) {
    if (root_[i] != nullptr)
      continue;
    void* leaf = os::map(sizeof(Leaf));
    if (leaf == nullptr)
      return false;
    __atomic_fetch_add(&leaf_bytes_, sizeof(Leaf), __ATOMIC_RELAXED);
    __atomic_store_n(&root_[i], static_cast<Leaf*>(leaf), __ATOMIC_RELEASE);
  }
  return true;
}

void PageMap::set_range(uintptr_t page, size_t n, Span* span, uint8_t cls) {
  while (n > 0) {
    Leaf* leaf = root_[page >> kLeafBits];
    size_t i = page & (kLeafLength - 1);
    size_t run = kLeafLength - i;
    if (run > n)
      run = n;
    // The divisibility check of object_class_of: for small spans only.
    uint64_t mul = cls != 0 ? UINT64_MAX / class_size(cls) + 1 : 0;
    uint64_t start_mul = cls != 0 ? span->start() * mul : 0;
    // A class before its check (a page becoming small), no check before
    // no class (a page leaving): a reader that sees the check sees a class.
    for (size_t k = 0; k < run; k++) {
      __atomic_store_n(&leaf->span[i + k], span, __ATOMIC_RELEASE);
      if (cls != 0)
        __atomic_store_n(&leaf->size_class[i + k], cls, __ATOMIC_RELEASE);
      __atomic_store_n(&leaf->check_mul[i + k], mul, __ATOMIC_RELEASE);
      __atomic_store_n(&leaf->start_mul[i + k], start_mul, __ATOMIC_RELEASE);
      if (cls == 0)
        __atomic_store_n(&leaf->size_class[i + k], cls, __ATOMIC_RELEASE);
    }
    page += run;
    n -= run;
  }
}

void PageMap::set_fast_free(const Span* span, bool on) {
  uint64_t mul = on ? UINT64_MAX / class_size(span->size_class) + 1 : 0;
  uint64_t start_mul = span->start() * mul;
  for (uintptr_t page = span->first_page;
       page < span->first_page + span->num_pages; page++) {
    Leaf* leaf = root_[page >> kLeafBits];
    size_t i = page & (kLeafLength - 1);
    // Off: no check first; on: the check last.
    if (on)
      __atomic_store_n(&leaf->start_mul[i], start_mul, __ATOMIC_RELEASE);
    __atomic_store_n(&leaf->check_mul[i], mul, __ATOMIC_RELEASE);
  }
}

}  // namespace rs
