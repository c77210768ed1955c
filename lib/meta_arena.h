// SPDX-License-Identifier: MIT
// Core layer: memory for the allocator's own metadata (span descriptors),
// mapped from the OS in chunks and never mixed with user objects.
#ifndef RS_META_ARENA_H_
#define RS_META_ARENA_H_

#include "base.h"
#include "span.h"

namespace rs {

/// Hands out zeroed Span descriptors and takes them back. Not thread-safe:
/// the page heap lock protects it. The first descriptors come from a block
/// inside the arena itself (static storage, zero), so a process that needs
/// a few spans maps no chunk for them. An arena lives only in static
/// storage (it relies on the block being zero).
class SpanArena {
 public:
  /// A zeroed span, or nullptr when the OS refuses memory.
  Span* allocate();

  void free(Span* span);

  /// Bytes mapped for descriptors.
  size_t mapped_bytes() const { return mapped_; }

  /// Where mapped_bytes() lives, for the introspection block.
  const size_t* mapped_bytes_addr() const { return &mapped_; }

 private:
  static constexpr size_t kChunkBytes = 64 * 1024;
  // In first_, before any chunk: 1.5 KiB, as sixteen 96-byte ones were.
  // Sixteen of 128 bytes moved the central lists' first lines onto a
  // page of their own: two more page faults in the first malloc
  // (tests/startup.sh).
  static constexpr size_t kFirstSpans = 12;

  Span* free_list_;          // recycled descriptors, linked through next
  char* bump_;               // next unused byte of the current chunk
  char* limit_;              // end of the current chunk
  size_t mapped_;            // bytes mapped in all
  bool first_used_;          // bump_ has been pointed at first_
  Span first_[kFirstSpans];  // the first descriptors
};

}  // namespace rs

#endif  // RS_META_ARENA_H_
