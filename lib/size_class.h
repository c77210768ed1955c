// SPDX-License-Identifier: MIT
// Core layer: the size-class table. Class 0 means "not a small object";
// classes 1..kNumClasses-1 run from 16 B to 256 KiB with at most 12.5%
// internal waste above 128 B. Built at compile time.
#ifndef RS_SIZE_CLASS_H_
#define RS_SIZE_CLASS_H_

#include "base.h"

namespace rs {

inline constexpr size_t kNumClasses = 98;  // including class 0

/// The one class off the regular spacing: a 4 KiB page and its header.
/// sqlite's page cache allocates 4368 bytes a page, programs' I/O buffers
/// 4096 bytes and a few words; 4608 bytes, the next class, took 5.5% more
/// and spans of ten (sqlite: peak RSS 439 -> 421 MiB).
inline constexpr size_t kPageHeaderSize = 4096 + 384;

/// What the allocator knows about one size class.
struct ClassInfo {
  uint32_t size;          // object size in bytes
  uint16_t span_pages;    // pages per span
  uint16_t batch;         // objects moved per refill or drain
  uint16_t max_capacity;  // most objects a CPU cache holds of this class
  uint16_t objects;       // objects per span
  uint64_t div_magic;     // ceil(2^40 / size): offset / size by multiply
};

namespace detail {

struct ClassTable {
  ClassInfo info[kNumClasses];
  // ceil(2^64 / size), PageMap's slot check: an array of its own, so that
  // free's full path reaches it with one load scaled by the class (a field
  // of the 24-byte ClassInfo took a shift and a register copy more).
  uint64_t check_mul[kNumClasses];
  // By (n + 15) / 16 for every small size: one lookup on the fast path.
  uint8_t index[kMaxSmallSize / 16 + 1];
};

constexpr size_t clamp(size_t v, size_t lo, size_t hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

constexpr ClassTable make_class_table() {
  ClassTable t{};
  size_t n = 1;
  for (size_t s = 16; s <= 128; s += 16)
    t.info[n++].size = static_cast<uint32_t>(s);
  for (size_t base = 128; base < kMaxSmallSize; base *= 2) {
    if (base == 4096)
      t.info[n++].size = static_cast<uint32_t>(kPageHeaderSize);
    for (size_t j = 1; j <= 8; j++) {
      t.info[n++].size = static_cast<uint32_t>(base + base / 8 * j);
    }
  }
  for (size_t c = 1; c < kNumClasses; c++) {
    ClassInfo& ci = t.info[c];
    size_t size = ci.size;
    // Eight objects a span, two from 16 KiB, one from 64 KiB: a span's
    // free objects stay resident while any of its objects is in use, and
    // the large classes have few objects in use each (a span of eight 36
    // KiB objects holding one kept 252 KiB for it). From 64 KiB a free
    // object's span goes back to the page heap, where any class can use
    // its pages: a buffer grown by realloc through these classes left one
    // free object of each beside the one in use (bench/run's realloc: peak
    // RSS 14.1 MiB before, 13.2 after). Copying or filling such an object
    // costs more than a trip to the page heap.
    size_t per_span = size >= 64 * 1024 ? 1 : (size >= 16 * 1024 ? 2 : 8);
    size_t target = clamp(size * per_span, kPageSize, 256 * 1024);
    size_t pages = (target + kPageSize - 1) / kPageSize;
    // At most 1/8 of the span after its last object, and below 16 KiB
    // less than a 4 KiB system page: the tail's free mark (central lists)
    // faults its page in, which would hold no object (4608-byte objects,
    // eight in 40 KiB: sqlite's page cache kept a tenth of it that way).
    while ((pages * kPageSize) % size > pages * kPageSize / 8 ||
           (size < 16 * 1024 && (pages * kPageSize) % size >= 4096))
      pages++;
    ci.span_pages = static_cast<uint16_t>(pages);
    ci.objects = static_cast<uint16_t>(pages * kPageSize / size);
    ci.batch = static_cast<uint16_t>(clamp(16 * 1024 / size, 1, 32));
    ci.max_capacity = static_cast<uint16_t>(clamp(128 * 1024 / size, 2, 1024));
    ci.div_magic = ((uint64_t{1} << 40) + size - 1) / size;
    t.check_mul[c] = UINT64_MAX / size + 1;
  }
  size_t c = 1;
  for (size_t i = 0; i <= kMaxSmallSize / 16; i++) {
    while (t.info[c].size < i * 16)
      c++;
    t.index[i] = static_cast<uint8_t>(c);
  }
  return t;
}

// In the library's first segment (lib/early.ld).
[[gnu::section(".rs_early_rodata")]] inline constexpr ClassTable kClassTable =
    make_class_table();

}  // namespace detail

/// The size class for a request of n <= kMaxSmallSize bytes (n may be 0).
RS_FAST_PATH constexpr size_t size_class_of(size_t n) {
  return detail::kClassTable.index[(n + 15) >> 4];
}

RS_FAST_PATH const ClassInfo& class_info(size_t cls) {
  return detail::kClassTable.info[cls];
}

RS_FAST_PATH constexpr size_t class_size(size_t cls) {
  return detail::kClassTable.info[cls].size;
}

static_assert(class_size(kNumClasses - 1) == kMaxSmallSize,
              "kNumClasses matches the table");
static_assert(class_size(size_class_of(kPageHeaderSize)) == kPageHeaderSize &&
              class_size(size_class_of(kPageHeaderSize) - 1) == 4096 &&
              class_size(size_class_of(kPageHeaderSize) + 1) == 4608);

/// ceil(2^64 / size): x is a multiple of the size exactly when x * m mod
/// 2^64 < m, for x < 2^32.
RS_FAST_PATH uint64_t class_check_mul(size_t cls) {
  return detail::kClassTable.check_mul[cls];
}

/// offset / size for an offset inside a span of this class.
RS_FAST_PATH size_t class_divide(size_t cls, size_t offset) {
  return static_cast<size_t>(
      (offset * detail::kClassTable.info[cls].div_magic) >> 40);
}

/// Total slots all classes may use in one CPU cache.
constexpr size_t total_max_capacity() {
  size_t sum = 0;
  for (size_t c = 1; c < kNumClasses; c++)
    sum += detail::kClassTable.info[c].max_capacity;
  return sum;
}

}  // namespace rs

#endif  // RS_SIZE_CLASS_H_
