// SPDX-License-Identifier: MIT
// Core layer: the central lists' releases inside spans in use. The system
// pages of a partly used span that hold only free objects go back to the
// OS (malloc_trim, the decay); their objects leave the span's bitmap and
// come back (reclaim) once its other free objects are used up.
#include "central_internal.h"
#include "central_list.h"
#include "os.h"
#include "page_heap.h"
#include "page_map.h"
#include "valgrind.h"

namespace rs {

namespace {

// 0: no releases inside spans in use.
RS_STARTUP_DATA size_t g_sys_page_shift;
// madvise failed (locked memory): stop asking.
RS_STARTUP_DATA bool g_release_refused;

}  // namespace

namespace central {

size_t release_shift(const Span* span) {
  size_t shift = g_sys_page_shift;
  while ((span->bytes() >> shift) > 64)
    shift++;
  return shift;
}

size_t masked_bytes(const Span* span) {
  return static_cast<size_t>(__builtin_popcountll(span->released_mask))
         << release_shift(span);
}

}  // namespace central

void set_system_page_size(size_t bytes) {
  g_sys_page_shift = 0;
  if (!is_pow2(bytes) || bytes >= kPageSize)
    return;
  while ((size_t{1} << g_sys_page_shift) < bytes)
    g_sys_page_shift++;
}

namespace {

/// The objects a unit of a span overlaps (first > last: none, the span's
/// unused tail).
struct ObjectRange {
  size_t first;
  size_t last;
};

ObjectRange objects_on(size_t unit, size_t shift, const ClassInfo& ci) {
  size_t last = (((unit + 1) << shift) - 1) / ci.size;
  return {(unit << shift) / ci.size,
          last < ci.objects ? last : size_t{ci.objects} - 1};
}

/// One bit per object of a span (at most kPageSize / kMinAlign of them).
class ObjectBits {
 public:
  /// Starts from a span's free objects.
  explicit ObjectBits(const Span* span) {
    for (size_t w = 0; w < kSpanBitWords; w++)
      words_[w] = span->free_bits[w];
  }

  void set(size_t i) { words_[i / 64] |= uint64_t{1} << (i % 64); }

  bool test(size_t i) const { return (words_[i / 64] >> (i % 64)) & 1; }

  /// True when objects first..last are all set.
  bool all(size_t first, size_t last) const {
    for (size_t i = first; i <= last; i++) {
      if (!test(i))
        return false;
    }
    return true;
  }

 private:
  uint64_t words_[kSpanBitWords];
};

}  // namespace

using central::clear_free;
using central::g_mark;
using central::is_free;
using central::masked_bytes;
using central::release_shift;
using central::set_free;
using central::set_released;

bool CentralList::on_released_page(const Span* span, const void* p) const {
  if (!span->any_released)
    return false;
  size_t shift = release_shift(span);
  uintptr_t off = addr(p) - span->start();
  uintptr_t last = off + class_size(cls()) - 1;
  for (uintptr_t unit = off >> shift; unit <= last >> shift; unit++) {
    if ((span->released_mask >> unit) & 1)
      return true;
  }
  return false;
}

void CentralList::reclaim(Span* span) {
  // Every object on a released unit is free and off the bitmap (see
  // release_pages_of): put them back. Writing their free marks faults the
  // pages in again, as handing them out would.
  const ClassInfo& ci = class_info(cls());
  size_t shift = release_shift(span);
  size_t next = 0;  // objects below this one are done
  for (uint64_t m = span->released_mask; m != 0; m &= m - 1) {
    ObjectRange r =
        objects_on(static_cast<size_t>(__builtin_ctzll(m)), shift, ci);
    for (size_t i = r.first > next ? r.first : next; i <= r.last; i++) {
      void* obj = ptr_at<void>(span->start() + i * ci.size);
      static_cast<uintptr_t*>(obj)[1] = g_mark;  // free, as every free one
      set_free(span, i);
    }
    next = r.last + 1;
  }
  stats_.released -= masked_bytes(span);
  set_released(span, 0);
  mark_tail(span);  // its page may have gone back too
  update_fast_free(span);
}

size_t CentralList::release_pages_of(Span* span) {
  const ClassInfo& ci = class_info(cls());
  size_t size = ci.size;
  size_t shift = release_shift(span);
  size_t unit_bytes = size_t{1} << shift;
  size_t units = span->bytes() >> shift;
  size_t handed = (span->bump - span->start()) / size;  // never beyond: bump

  // Which objects are free: those in the bitmap and those on released
  // units.
  ObjectBits free_objs(span);
  uint64_t old_mask = span->released_mask;
  for (uint64_t m = old_mask; m != 0; m &= m - 1) {
    ObjectRange r =
        objects_on(static_cast<size_t>(__builtin_ctzll(m)), shift, ci);
    for (size_t i = r.first; i <= r.last; i++)
      free_objs.set(i);
  }

  // A unit can go when every object on it is free and was handed out at
  // some point (units the bump pointer has not passed stay: the objects
  // there are not on any list, so nothing would track them).
  uint64_t mask = old_mask;
  for (size_t unit = 0; unit < units; unit++) {
    ObjectRange r = objects_on(unit, shift, ci);
    if (r.first > r.last || r.last >= handed)
      break;
    if (free_objs.all(r.first, r.last))
      mask |= uint64_t{1} << unit;
  }
  if (mask == old_mask)
    return 0;

  // The free objects on the units that go leave the bitmap: the pages
  // read as zeros, so they no longer carry the free mark, and handing one
  // out must fault its page in through reclaim.
  set_released(span, mask);
  // A double free of an object on a released page would find no mark
  // there (the page reads as zeros): frees on those pages take the slow
  // path, which asks on_released_page, until reclaim.
  update_fast_free(span);
  for (size_t i = 0; i < handed; i++) {
    if (is_free(span, i) &&
        on_released_page(span, ptr_at<void>(span->start() + i * size)))
      clear_free(span, i);
  }

  size_t released = 0;
  uint64_t fresh = mask & ~old_mask;
  while (fresh != 0) {
    size_t lo = static_cast<size_t>(__builtin_ctzll(fresh));
    size_t hi = lo;
    while (hi < 64 && ((fresh >> hi) & 1))
      hi++;
    if (!os::release(ptr_at<void>(span->start() + lo * unit_bytes),
                     (hi - lo) * unit_bytes)) {
      reclaim(span);  // refused (locked memory): keep the objects listed
      g_release_refused = true;
      return 0;
    }
    g_page_heap.unadvise_released(span->start() + lo * unit_bytes,
                                  span->start() + hi * unit_bytes);
    released += (hi - lo) * unit_bytes;
    fresh &= hi < 64 ? ~((uint64_t{1} << hi) - 1) : 0;
  }
  stats_.released += released;
  return released;
}

size_t CentralList::release_free_pages(uint64_t idle_ms, size_t* budget) {
  if (g_sys_page_shift == 0 || vg::g_annotate || g_release_refused)
    return 0;  // valgrind: reclaim's marks are not annotated
  uint64_t now = idle_ms != 0 ? os::now_ms() : 0;
  LockGuard guard(lock_);
  size_t released = 0;
  for (Span* span = nonempty_; span != nullptr && *budget > 0;
       span = span->next) {
    // A span looked at before and not touched since has nothing new.
    if (span->pages_checked)
      continue;
    if (idle_ms != 0 && now - span->touched_ms < idle_ms)
      continue;
    released += release_pages_of(span);
    span->pages_checked = true;
    --*budget;
  }
  return released;
}

}  // namespace rs
