// SPDX-License-Identifier: MIT
// ABI layer: pvalloc, in a file of its own so that its call to memalign
// goes through the PLT with every compiler (clang binds calls within one
// file directly): memcheck 3.19, when it replaces the allocator, replaces
// memalign but not pvalloc, and its free must get a block of its own.
#include <errno.h>
#include <malloc.h>
#include <stdint.h>

#include "base.h"
#include "os.h"

extern "C" {

RS_EXPORT void* pvalloc(size_t n) {
  size_t page = rs::os::system_page_size();
  if (n > SIZE_MAX - page) {
    errno = ENOMEM;
    return nullptr;
  }
  size_t rounded = n == 0 ? page : rs::align_up(n, page);
  return memalign(page, rounded);
}

}  // extern "C"
