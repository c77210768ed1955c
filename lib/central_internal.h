// SPDX-License-Identifier: MIT
// Core layer, inside the central lists (central_list.cc, and
// central_release.cc, which returns the free pages of spans in use): a
// span's free bitmap, and what the two files share.
#ifndef RS_CENTRAL_INTERNAL_H_
#define RS_CENTRAL_INTERNAL_H_

#include "base.h"
#include "span.h"

namespace rs {
namespace central {

/// The facade's free mark (set_free_mark), for carved and reclaimed
/// objects and the tail of a span.
extern uintptr_t g_mark;

/// The unit a span's released_mask counts in: the system page, or a larger
/// power of two for spans of more than 64 system pages.
size_t release_shift(const Span* span);

/// Bytes of the units set in a span's released_mask.
size_t masked_bytes(const Span* span);

// A span's free objects are the bits of its free_bits (span.h), not a
// list threaded through them: a refill reads the descriptor's bitmap, one
// cache line, instead of a link in every freed object (a miss per object
// once they have gone cold: a program that frees most of its heap and
// allocates it again), and a drain writes nothing into the objects.

inline bool is_free(const Span* span, size_t i) {
  return (span->free_bits[i / 64] >> (i % 64)) & 1;
}

inline void set_free(Span* span, size_t i) {
  span->free_bits[i / 64] |= uint64_t{1} << (i % 64);
  span->num_free++;
}

inline void clear_free(Span* span, size_t i) {
  span->free_bits[i / 64] &= ~(uint64_t{1} << (i % 64));
  span->num_free--;
}

/// Takes the free object of the lowest address: its index. The span has
/// one (num_free > 0).
inline size_t take_lowest(Span* span) {
  size_t w = 0;
  while (span->free_bits[w] == 0)
    w++;
  uint64_t bits = span->free_bits[w];
  span->free_bits[w] = bits & (bits - 1);
  span->num_free--;
  return w * 64 + static_cast<size_t>(__builtin_ctzll(bits));
}

/// Sets a span's released_mask and the flag in its first line.
inline void set_released(Span* span, uint64_t mask) {
  span->released_mask = mask;
  span->any_released = mask != 0;
}

/// Empties the bitmap, whose words the page heap's fields share once the
/// span is no longer kSmall.
inline void clear_all(Span* span) {
  for (size_t w = 0; w < kSpanBitWords; w++)
    span->free_bits[w] = 0;
  span->num_free = 0;
}

}  // namespace central
}  // namespace rs

#endif  // RS_CENTRAL_INTERNAL_H_
