// SPDX-License-Identifier: MIT
// Unit tests of large allocations (lib/large.h): heap spans below the map
// threshold, own mappings above it, alignment, in-place resize with mremap
// (grow, forced move, shrink), and aborts on invalid frees.
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <sys/mman.h>

#include "config.h"
#ifdef RS_HAVE_VALGRIND
// Its macros use C casts and 0 for null pointers.
#  pragma GCC diagnostic ignored "-Wold-style-cast"
#  pragma GCC diagnostic ignored "-Wzero-as-null-pointer-constant"
#  include <valgrind/memcheck.h>
#endif

#include "../check_main.h"
#include "large.h"
#include "page_heap.h"
#include "page_map.h"
#include "settings.h"

namespace {

using rs::g_page_heap;
using rs::g_page_map;
using rs::kPageSize;
using rs::Span;
using rs::SpanState;

constexpr size_t kMiB = size_t{1} << 20;
constexpr size_t kDefaultThreshold = 4 * kMiB;

void setup() {
  rs::g_config = rs::Config{};
  rs::g_config.decay_ms = 3600 * 1000;
  rs::g_map_threshold = kDefaultThreshold;
}

void* must_allocate(size_t n, size_t align, bool* zeroed) {
  void* p = rs::large_allocate(n, align, zeroed);
  ck_assert_msg(p != nullptr, "large_allocate(%zu, %zu) failed", n, align);
  return p;
}

Span* span_of(const void* p) {
  Span* s = g_page_map.span_of(p);
  ck_assert_msg(s != nullptr, "no span for %p", p);
  return s;
}

bool is_mapped(const void* p) {
  void* page = reinterpret_cast<void*>(rs::addr(p) & ~uintptr_t{4095});
  // mincore, not msync: memcheck does not object to probing a hole.
  unsigned char vec;
  return mincore(page, 4096, &vec) == 0 || errno != ENOMEM;
}

/// Fills [p, p + n) with a pattern that depends on the offset.
void fill(void* p, size_t n, unsigned seed) {
  uint32_t* w = static_cast<uint32_t*>(p);
  for (size_t i = 0; i < n / 4; i++)
    w[i] = static_cast<uint32_t>(i * 2654435761u + seed);
}

/// The number of words of [p, p + n) that do not hold fill()'s pattern.
size_t mismatches(const void* p, size_t n, unsigned seed) {
  const uint32_t* w = static_cast<const uint32_t*>(p);
  size_t bad = 0;
  for (size_t i = 0; i < n / 4; i++)
    bad += w[i] != static_cast<uint32_t>(i * 2654435761u + seed);
  return bad;
}

bool all_zero(const void* p, size_t n) {
  const unsigned char* c = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; i++) {
    if (c[i] != 0)
      return false;
  }
  return true;
}

}  // namespace

// --- allocation

START_TEST(below_threshold_uses_heap_spans) {
  static const size_t sizes[] = {rs::kMaxSmallSize + 1, 300 * 1024, kMiB,
                                 3 * kMiB + 5, kDefaultThreshold - 1};
  for (size_t n : sizes) {
    rs::PageHeapStats a = g_page_heap.stats();
    bool zeroed = true;
    char* p = static_cast<char*>(must_allocate(n, kPageSize, &zeroed));
    // Heap pages may be reused dirty: zeroed only if they read as zeros.
    for (size_t i = 0; zeroed && i < n; i += 64)
      ck_assert_int_eq(p[i], 0);
    ck_assert_uint_eq(rs::addr(p) % kPageSize, 0);
    Span* s = span_of(p);
    ck_assert(s->state == SpanState::kLarge);
    ck_assert_uint_eq(s->start(), rs::addr(p));
    ck_assert_uint_eq(rs::large_usable_size(s), rs::align_up(n, kPageSize));
    ck_assert_ptr_eq(g_page_map.span_of(p + n - 1), s);
    ck_assert_ptr_eq(g_page_map.span_of(p + n / 2), s);
    ck_assert_uint_eq(g_page_map.class_of(p), 0);
    memset(p, 0x77, rs::large_usable_size(s));
    rs::PageHeapStats b = g_page_heap.stats();
    ck_assert_uint_eq(b.large_bytes - a.large_bytes,
                      rs::align_up(n, kPageSize));
    ck_assert_uint_eq(b.mapped_large_count, a.mapped_large_count);
    rs::large_free(s, p);
    rs::PageHeapStats c = g_page_heap.stats();
    ck_assert_uint_eq(c.large_bytes, a.large_bytes);
    ck_assert(span_of(p)->state == SpanState::kFree);
  }
}

END_TEST

START_TEST(at_and_above_threshold_uses_own_mappings) {
  static const size_t sizes[] = {kDefaultThreshold, kDefaultThreshold + 1,
                                 5 * kMiB + 123, 64 * kMiB};
  for (size_t n : sizes) {
    rs::PageHeapStats a = g_page_heap.stats();
    bool zeroed = false;
    char* p = static_cast<char*>(must_allocate(n, kPageSize, &zeroed));
    ck_assert(zeroed);
    ck_assert_uint_eq(rs::addr(p) % kPageSize, 0);
    size_t usable = rs::align_up(n, kPageSize);
    ck_assert(all_zero(p, usable));
    Span* s = span_of(p);
    ck_assert(s->state == SpanState::kMapped);
    ck_assert_uint_eq(s->start(), rs::addr(p));
    ck_assert_uint_eq(rs::large_usable_size(s), usable);
    ck_assert_ptr_eq(g_page_map.span_of(p + usable - 1), s);
    ck_assert_uint_eq(g_page_map.class_of(p), 0);
    memset(p, 0x11, usable);
    rs::PageHeapStats b = g_page_heap.stats();
    ck_assert_uint_eq(b.mapped_large_count, a.mapped_large_count + 1);
    ck_assert_uint_eq(b.mapped_large_bytes, a.mapped_large_bytes + usable);
    ck_assert_uint_eq(b.heap_mapped_bytes, a.heap_mapped_bytes);  // no heap
    rs::large_free(s, p);
    rs::PageHeapStats c = g_page_heap.stats();
    ck_assert_uint_eq(c.mapped_large_count, a.mapped_large_count);
    ck_assert_uint_eq(c.mapped_large_bytes, a.mapped_large_bytes);
    ck_assert_ptr_null(g_page_map.span_of(p));
    ck_assert_ptr_null(g_page_map.span_of(p + usable - 1));
    // Kept for reuse (resident, not ours to hand out) until trimmed.
    ck_assert_uint_ge(rs::large_cached_bytes(), usable);
    ck_assert_uint_ge(rs::large_trim_mappings(0), usable);
    ck_assert_uint_eq(rs::large_cached_bytes(), 0);
    ck_assert(!is_mapped(p));  // given back to the OS
    ck_assert(!is_mapped(p + usable - 1));
  }
}

END_TEST

/// A freed mapping is reused, shrunk or grown, for the next mapped block:
/// its pages stay resident, so the block is not known to be zero.
START_TEST(freed_mappings_are_reused) {
  rs::g_config.decay_ms = 10000;  // the cache keeps entries this long
  size_t sizes[] = {8 * kMiB, 6 * kMiB, 12 * kMiB, 8 * kMiB};
  for (size_t n : sizes) {
    bool zeroed = true;
    char* p = static_cast<char*>(must_allocate(n, kPageSize, &zeroed));
    // Whether fresh, shrunk or grown, a block starts on an rsmalloc page.
    ck_assert_uint_eq(rs::addr(p) % kPageSize, 0);
    Span* s = span_of(p);
    ck_assert(s->state == SpanState::kMapped);
    ck_assert_uint_eq(s->start(), rs::addr(p));
    ck_assert_uint_eq(rs::large_usable_size(s), n);
    if (n != sizes[0]) {
      ck_assert(!zeroed);  // came from the cache
    }
    memset(p, 0x5a, n);  // every page writable
    ck_assert_ptr_eq(g_page_map.span_of(p + n - 1), s);
    rs::large_free(s, p);
  }
  // 8 MiB freed; 6 taken from it (its 2 MiB tail kept); 6 freed; 12 grown
  // from the 6; 12 freed; 8 taken from it (4 MiB tail kept); 8 freed.
  ck_assert_uint_eq(rs::large_cached_bytes(), 14 * kMiB);
  ck_assert_uint_eq(rs::large_trim_mappings(0), 14 * kMiB);
  ck_assert_uint_eq(rs::large_cached_bytes(), 0);
}

END_TEST

/// Taking a smaller block from a cached mapping keeps the rest, resident,
/// for the next one.
START_TEST(cached_mapping_tail_is_reused) {
  rs::g_config.decay_ms = 10000;
  bool zeroed = true;
  char* big = static_cast<char*>(must_allocate(12 * kMiB, kPageSize, &zeroed));
  memset(big, 0x5a, 12 * kMiB);
  rs::large_free(span_of(big), big);
  char* a = static_cast<char*>(must_allocate(5 * kMiB, kPageSize, &zeroed));
  ck_assert_ptr_eq(a, big);
  ck_assert(!zeroed);
  ck_assert_uint_eq(rs::large_cached_bytes(), 7 * kMiB);
  char* b = static_cast<char*>(must_allocate(6 * kMiB, kPageSize, &zeroed));
  ck_assert_ptr_eq(b, big + 5 * kMiB);  // the tail, still resident
  ck_assert(!zeroed);
  ck_assert_uint_eq(static_cast<unsigned char>(b[0]), 0x5a);
  Span* s = span_of(b);
  ck_assert_uint_eq(rs::large_usable_size(s), 6 * kMiB);
  ck_assert_ptr_eq(g_page_map.span_of(b + 6 * kMiB - 1), s);
  ck_assert_uint_eq(rs::large_cached_bytes(), 1 * kMiB);
  rs::large_free(s, b);
  rs::large_free(span_of(a), a);
  ck_assert_uint_eq(rs::large_trim_mappings(0), 12 * kMiB);
}

END_TEST

START_TEST(threshold_is_adjustable) {
  rs::g_map_threshold = 512 * 1024;
  bool zeroed;
  void* mapped = must_allocate(600 * 1024, kPageSize, &zeroed);
  ck_assert(span_of(mapped)->state == SpanState::kMapped);
  void* heap = must_allocate(400 * 1024, kPageSize, &zeroed);
  ck_assert(span_of(heap)->state == SpanState::kLarge);
  rs::large_free(span_of(mapped), mapped);
  rs::large_free(span_of(heap), heap);
  rs::g_map_threshold = 64 * kMiB;
  void* big = must_allocate(32 * kMiB, kPageSize, &zeroed);
  ck_assert(span_of(big)->state == SpanState::kLarge);
  rs::large_free(span_of(big), big);
}

END_TEST

/// Below the default map threshold (64 MiB) big blocks are heap spans: a
/// freed one stays resident and the next block takes its pages (no page
/// faults), reported not zeroed; what is left stays resident and free.
START_TEST(big_heap_blocks_reuse_resident_pages) {
  rs::g_map_threshold = 64 * kMiB;
  bool zeroed = false;
  char* a = static_cast<char*>(must_allocate(20 * kMiB, kPageSize, &zeroed));
  ck_assert(span_of(a)->state == SpanState::kLarge);
  memset(a, 0x11, 20 * kMiB);
  rs::large_free(span_of(a), a);
  rs::PageHeapStats st = g_page_heap.stats();
  ck_assert_uint_ge(st.free_bytes - st.released_bytes, 20 * kMiB);
  zeroed = true;
  char* b = static_cast<char*>(must_allocate(12 * kMiB, kPageSize, &zeroed));
  ck_assert_msg(b >= a && b + 12 * kMiB <= a + 20 * kMiB,
                "12 MiB block at %p, not in the freed 20 MiB at %p", b, a);
  ck_assert(!zeroed);
  ck_assert_uint_eq(static_cast<unsigned char>(b[0]), 0x11);
  ck_assert_uint_eq(static_cast<unsigned char>(b[12 * kMiB - 1]), 0x11);
  rs::PageHeapStats after = g_page_heap.stats();
  ck_assert_uint_eq(after.heap_mapped_bytes, st.heap_mapped_bytes);
  ck_assert_uint_eq(after.released_bytes, st.released_bytes);
  ck_assert_uint_eq(after.mapped_large_count, 0);
  rs::large_free(span_of(b), b);
}

END_TEST

START_TEST(alignment) {
  static const struct {
    size_t n, align;
    SpanState state;
  } cases[] = {
      {300 * 1024, 16 * 1024, SpanState::kLarge},
      {300 * 1024, 64 * 1024, SpanState::kLarge},
      {300 * 1024, kMiB, SpanState::kLarge},
      {3 * kMiB, kMiB, SpanState::kLarge},
      {300 * 1024, 2 * kMiB, SpanState::kMapped},  // beyond the heap's limit
      {300 * 1024, 16 * kMiB, SpanState::kMapped},
      {5 * kMiB, 2 * kMiB, SpanState::kMapped},
      {5 * kMiB, 64 * 1024, SpanState::kMapped},
      {0, 64 * 1024, SpanState::kLarge},  // aligned_alloc(align, 0)
      {0, 2 * kMiB, SpanState::kMapped},
  };

  for (const auto& c : cases) {
    bool zeroed;
    char* p = static_cast<char*>(must_allocate(c.n, c.align, &zeroed));
    ck_assert_msg(rs::addr(p) % c.align == 0, "n %zu align %zu: %p", c.n,
                  c.align, p);
    Span* s = span_of(p);
    ck_assert_msg(s->state == c.state, "n %zu align %zu: wrong kind", c.n,
                  c.align);
    ck_assert_uint_ge(rs::large_usable_size(s), c.n > 0 ? c.n : 1);
    memset(p, 1, rs::large_usable_size(s));
    rs::large_free(s, p);
  }
}

END_TEST

START_TEST(impossible_sizes_return_null) {
  bool zeroed;
  ck_assert_ptr_null(rs::large_allocate(SIZE_MAX, kPageSize, &zeroed));
  ck_assert_ptr_null(
      rs::large_allocate(SIZE_MAX - kPageSize, kPageSize, &zeroed));
  ck_assert_ptr_null(
      rs::large_allocate((SIZE_MAX >> 1) - kPageSize + 1, kPageSize, &zeroed));
  ck_assert_ptr_null(rs::large_allocate(
      size_t{1} << (sizeof(size_t) == 8 ? 50 : 31), kPageSize, &zeroed));
  rs::g_map_threshold = SIZE_MAX;  // the same through the heap
  ck_assert_ptr_null(rs::large_allocate(
      size_t{1} << (sizeof(size_t) == 8 ? 50 : 31), kPageSize, &zeroed));
  rs::g_map_threshold = kDefaultThreshold;
  ck_assert_uint_eq(g_page_heap.stats().mapped_large_count, 0);
  void* p = must_allocate(kMiB, kPageSize, &zeroed);  // still works
  rs::large_free(span_of(p), p);
}

END_TEST

// --- resize in place

START_TEST(heap_span_resize) {
  bool zeroed;
  void* p = must_allocate(300 * 1024, kPageSize, &zeroed);
  Span* s = span_of(p);
  size_t have = rs::large_usable_size(s);
  ck_assert_ptr_eq(rs::large_resize_in_place(s, p, have), p);
  ck_assert_ptr_eq(rs::large_resize_in_place(s, p, 200 * 1024), p);
  ck_assert_ptr_eq(rs::large_resize_in_place(s, p, have / 2 + 1), p);
  ck_assert_uint_eq(rs::large_usable_size(s), have);  // the span is kept
  ck_assert_ptr_null(rs::large_resize_in_place(s, p, have / 2));
  ck_assert_ptr_null(rs::large_resize_in_place(s, p, have + 1));
  ck_assert_ptr_null(rs::large_resize_in_place(s, p, 64 * kMiB));
  ck_assert(s->state == SpanState::kLarge);
  rs::large_free(s, p);
}

END_TEST

/// A heap span grows in place into the free pages right after it, keeping
/// its content, when they suffice; not past the map threshold.
START_TEST(heap_span_grows_into_free_neighbour) {
  rs::g_map_threshold = 64 * kMiB;
  bool zeroed;
  // 8 MiB of free resident pages; spans are cut from the top of a free
  // span: b lies right below a.
  char* room = static_cast<char*>(must_allocate(8 * kMiB, kPageSize, &zeroed));
  memset(room, 1, 8 * kMiB);
  rs::large_free(span_of(room), room);
  char* a = static_cast<char*>(must_allocate(2 * kMiB, kPageSize, &zeroed));
  char* b = static_cast<char*>(must_allocate(kMiB, kPageSize, &zeroed));
  ck_assert_ptr_eq(b + kMiB, a);
  fill(b, kMiB, 7);
  memset(a, 0x3c, 2 * kMiB);
  rs::large_free(span_of(a), a);
  rs::PageHeapStats before = g_page_heap.stats();
  Span* s = span_of(b);
  ck_assert_ptr_eq(rs::large_resize_in_place(s, b, 2 * kMiB + 100), b);
  ck_assert_uint_eq(rs::large_usable_size(s), 2 * kMiB + kPageSize);
  ck_assert_uint_eq(mismatches(b, kMiB, 7), 0);
  ck_assert_ptr_eq(g_page_map.span_of(b + 2 * kMiB + 100), s);
  ck_assert(span_of(b + 2 * kMiB + kPageSize)->state == SpanState::kFree);
  memset(b + kMiB, 0x44, kMiB + kPageSize);
  rs::PageHeapStats after = g_page_heap.stats();
  ck_assert_uint_eq(after.large_bytes - before.large_bytes, kMiB + kPageSize);
  ck_assert_uint_eq(before.free_bytes - after.free_bytes, kMiB + kPageSize);
  ck_assert_uint_eq(after.heap_mapped_bytes, before.heap_mapped_bytes);
  // Not past the free pages there, nor to the map threshold.
  ck_assert_ptr_null(rs::large_resize_in_place(s, b, 40 * kMiB));
  ck_assert_ptr_null(rs::large_resize_in_place(s, b, 64 * kMiB));
  ck_assert_uint_eq(rs::large_usable_size(s), 2 * kMiB + kPageSize);
  rs::large_free(s, b);
  rs::PageHeapStats end = g_page_heap.stats();
  ck_assert_uint_eq(end.large_bytes, before.large_bytes - kMiB);
}

END_TEST

START_TEST(mapped_grow_keeps_content) {
  bool zeroed;
  char* p = static_cast<char*>(must_allocate(5 * kMiB, kPageSize, &zeroed));
  fill(p, 5 * kMiB, 1);
  rs::PageHeapStats a = g_page_heap.stats();
  char* q =
      static_cast<char*>(rs::large_resize_in_place(span_of(p), p, 12 * kMiB));
  ck_assert_ptr_nonnull(q);
  ck_assert_uint_eq(mismatches(q, 5 * kMiB, 1), 0);
  Span* s = span_of(q);
  ck_assert(s->state == SpanState::kMapped);
  ck_assert_uint_eq(s->start(), rs::addr(q));
  ck_assert_uint_eq(rs::large_usable_size(s), 12 * kMiB);
  ck_assert_ptr_eq(g_page_map.span_of(q + 12 * kMiB - 1), s);
  if (q != p && (p < q || p >= q + 12 * kMiB))
    ck_assert_ptr_null(g_page_map.span_of(p));
#ifdef RS_HAVE_VALGRIND
  // Memcheck does not carry the grown part of an mremap onto another
  // mapping over as addressable; the facade's MALLOCLIKE announces it.
  VALGRIND_MAKE_MEM_UNDEFINED(q + 5 * kMiB, 7 * kMiB);
#endif
  memset(q + 5 * kMiB, 0x22, 7 * kMiB);  // the new part is usable
  rs::PageHeapStats b = g_page_heap.stats();
  ck_assert_uint_eq(b.mapped_large_count, a.mapped_large_count);
  ck_assert_uint_eq(b.mapped_large_bytes, a.mapped_large_bytes + 7 * kMiB);
  rs::large_free(s, q);
  ck_assert_uint_eq(g_page_heap.stats().mapped_large_count, 0);
}

END_TEST

START_TEST(mapped_grow_moves_when_blocked) {
  bool zeroed;
  char* p = static_cast<char*>(must_allocate(5 * kMiB, kPageSize, &zeroed));
  fill(p, 5 * kMiB, 2);
  // Occupy the pages right after the mapping, so it cannot grow in place.
  // (One system page: if anything is there already, it blocks as well.)
  const size_t sys_page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  void* blocker =
      mmap(p + 5 * kMiB, sys_page, PROT_READ,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  bool own_blocker = blocker == p + 5 * kMiB;
#ifdef RS_HAVE_VALGRIND
  if (!own_blocker && errno != EEXIST && RUNNING_ON_VALGRIND) {
    // Valgrind 3.19 refuses MAP_FIXED_NOREPLACE.
    fprintf(stderr, "mapped_grow_moves_when_blocked: skipped under valgrind\n");
    rs::large_free(span_of(p), p);
    return;
  }
#endif
  ck_assert_msg(own_blocker || (blocker == MAP_FAILED && errno == EEXIST),
                "could not place the blocker: %s", strerror(errno));
  char* q =
      static_cast<char*>(rs::large_resize_in_place(span_of(p), p, 8 * kMiB));
  ck_assert_ptr_nonnull(q);
  ck_assert_ptr_ne(q, p);
  ck_assert_uint_eq(mismatches(q, 5 * kMiB, 2), 0);
  Span* s = span_of(q);
  ck_assert(s->state == SpanState::kMapped);
  ck_assert_uint_eq(s->start(), rs::addr(q));
  ck_assert_uint_eq(rs::large_usable_size(s), 8 * kMiB);
  ck_assert_ptr_eq(g_page_map.span_of(q + 8 * kMiB - 1), s);
  ck_assert_ptr_null(g_page_map.span_of(p));  // the old place is forgotten
  ck_assert_ptr_null(g_page_map.span_of(p + 5 * kMiB - 1));
  ck_assert(!is_mapped(p));
  memset(q + 5 * kMiB, 0x33, 3 * kMiB);
  rs::PageHeapStats st = g_page_heap.stats();
  ck_assert_uint_eq(st.mapped_large_count, 1);
  ck_assert_uint_eq(st.mapped_large_bytes, 8 * kMiB);
  rs::large_free(s, q);
  st = g_page_heap.stats();
  ck_assert_uint_eq(st.mapped_large_count, 0);
  ck_assert_uint_eq(st.mapped_large_bytes, 0);
  if (own_blocker)
    munmap(blocker, sys_page);
}

END_TEST

START_TEST(mapped_shrink) {
  bool zeroed;
  char* p = static_cast<char*>(must_allocate(12 * kMiB, kPageSize, &zeroed));
  fill(p, 12 * kMiB, 3);
  Span* s = span_of(p);
  // Same page count: nothing to do.
  ck_assert_ptr_eq(rs::large_resize_in_place(s, p, 12 * kMiB - 100), p);
  ck_assert_uint_eq(rs::large_usable_size(s), 12 * kMiB);
  ck_assert_ptr_eq(rs::large_resize_in_place(s, p, 5 * kMiB), p);
  ck_assert_ptr_eq(span_of(p), s);
  ck_assert_uint_eq(rs::large_usable_size(s), 5 * kMiB);
  ck_assert_ptr_eq(g_page_map.span_of(p + 5 * kMiB - 1), s);
  ck_assert_ptr_null(g_page_map.span_of(p + 12 * kMiB - 1));
  ck_assert_uint_eq(mismatches(p, 5 * kMiB, 3), 0);
  ck_assert(!is_mapped(p + 5 * kMiB));  // the tail went back to the OS
  ck_assert(!is_mapped(p + 12 * kMiB - 1));
  ck_assert_uint_eq(g_page_heap.stats().mapped_large_bytes, 5 * kMiB);
  // Small enough for the heap: the caller must copy; nothing changes.
  ck_assert_ptr_null(rs::large_resize_in_place(s, p, kMiB));
  ck_assert_uint_eq(rs::large_usable_size(s), 5 * kMiB);
  ck_assert_ptr_eq(span_of(p), s);
  rs::large_free(s, p);
  ck_assert_uint_eq(g_page_heap.stats().mapped_large_bytes, 0);
}

END_TEST

// --- invalid frees abort

START_TEST(heap_interior_free_aborts) {
  bool zeroed;
  char* p = static_cast<char*>(must_allocate(kMiB, kPageSize, &zeroed));
  rs::large_free(span_of(p), p + kPageSize);
}

END_TEST

START_TEST(heap_unaligned_free_aborts) {
  bool zeroed;
  char* p = static_cast<char*>(must_allocate(kMiB, kPageSize, &zeroed));
  rs::large_free(span_of(p), p + 16);
}

END_TEST

START_TEST(mapped_interior_free_aborts) {
  bool zeroed;
  char* p = static_cast<char*>(must_allocate(8 * kMiB, kPageSize, &zeroed));
  rs::large_free(span_of(p), p + kPageSize);
}

END_TEST

START_TEST(heap_double_free_aborts) {
  bool zeroed;
  void* keep = must_allocate(kMiB, kPageSize, &zeroed);  // a neighbour
  void* p = must_allocate(kMiB, kPageSize, &zeroed);
  Span* s = span_of(p);
  rs::large_free(s, p);
  rs::large_free(span_of(p), p);
  (void)keep;
}

END_TEST

START_TEST(mapped_double_free_aborts) {
  bool zeroed;
  void* p = must_allocate(8 * kMiB, kPageSize, &zeroed);
  Span* s = span_of(p);
  rs::large_free(s, p);
  rs::large_free(s, p);
}

END_TEST

int main(void) {
  Suite* s = suite_create("large");
  TCase* tc = tcase_create("allocate");
  tcase_add_checked_fixture(tc, setup, nullptr);
  tcase_set_timeout(tc, 20);
  tcase_add_test(tc, below_threshold_uses_heap_spans);
  tcase_add_test(tc, at_and_above_threshold_uses_own_mappings);
  tcase_add_test(tc, freed_mappings_are_reused);
  tcase_add_test(tc, cached_mapping_tail_is_reused);
  tcase_add_test(tc, threshold_is_adjustable);
  tcase_add_test(tc, big_heap_blocks_reuse_resident_pages);
  tcase_add_test(tc, alignment);
  tcase_add_test(tc, impossible_sizes_return_null);
  suite_add_tcase(s, tc);
  tc = tcase_create("resize");
  tcase_add_checked_fixture(tc, setup, nullptr);
  tcase_set_timeout(tc, 20);
  tcase_add_test(tc, heap_span_resize);
  tcase_add_test(tc, heap_span_grows_into_free_neighbour);
  tcase_add_test(tc, mapped_grow_keeps_content);
  tcase_add_test(tc, mapped_grow_moves_when_blocked);
  tcase_add_test(tc, mapped_shrink);
  suite_add_tcase(s, tc);
  tc = tcase_create("invalid_free");
  tcase_add_checked_fixture(tc, setup, nullptr);
  tcase_add_test_raise_signal(tc, heap_interior_free_aborts, SIGABRT);
  tcase_add_test_raise_signal(tc, heap_unaligned_free_aborts, SIGABRT);
  tcase_add_test_raise_signal(tc, mapped_interior_free_aborts, SIGABRT);
  tcase_add_test_raise_signal(tc, heap_double_free_aborts, SIGABRT);
  tcase_add_test_raise_signal(tc, mapped_double_free_aborts, SIGABRT);
  suite_add_tcase(s, tc);
  return rs_check_run(s, "test_large");
}
