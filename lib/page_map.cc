// SPDX-License-Identifier: MIT
// Core layer: leaf allocation and range updates of the page map.
#include "page_map.h"

#include "os.h"

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
    for (size_t k = 0; k < run; k++) {
      __atomic_store_n(&leaf->span[i + k], span, __ATOMIC_RELEASE);
      __atomic_store_n(&leaf->size_class[i + k], cls, __ATOMIC_RELEASE);
    }
    page += run;
    n -= run;
  }
}

}  // namespace rs
