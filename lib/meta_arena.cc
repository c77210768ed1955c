// SPDX-License-Identifier: MIT
// Core layer: span descriptor allocation.
#include "meta_arena.h"

#include <string.h>

#include "os.h"

namespace rs {

Span* SpanArena::allocate() {
  if (free_list_ != nullptr) {
    Span* span = free_list_;
    free_list_ = span->next;
    memset(span, 0, sizeof(Span));
    return span;
  }
  if (!first_used_) {
    first_used_ = true;
    bump_ = static_cast<char*>(static_cast<void*>(first_));
    limit_ = bump_ + sizeof(first_);
  }
  if (static_cast<size_t>(limit_ - bump_) < sizeof(Span)) {
    char* chunk = static_cast<char*>(os::map(kChunkBytes));
    if (chunk == nullptr)
      return nullptr;
    mapped_ += kChunkBytes;
    bump_ = chunk;
    limit_ = chunk + kChunkBytes;
  }
  // bump_ stays a multiple of sizeof(Span) from a page-aligned chunk (or
  // from first_).
  Span* span = static_cast<Span*>(static_cast<void*>(bump_));
  bump_ += sizeof(Span);
  return span;  // fresh mapping: already zero
}

void SpanArena::free(Span* span) {
  span->next = free_list_;
  free_list_ = span;
}

}  // namespace rs
