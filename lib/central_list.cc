// SPDX-License-Identifier: MIT
// Core layer: batch moves between spans and CPU caches.
#include "central_list.h"

#include "central_internal.h"
#include "os.h"
#include "page_heap.h"
#include "page_map.h"
#include "valgrind.h"

namespace rs {

CentralList g_central[kNumClasses];

namespace central {

RS_STARTUP_DATA uintptr_t g_mark;

}  // namespace central

using central::clear_all;
using central::g_mark;
using central::is_free;
using central::masked_bytes;
using central::release_shift;
using central::set_free;
using central::set_released;
using central::take_lowest;

namespace {

// Strict mode: no page gets free's fast check.
RS_STARTUP_DATA bool g_fast_free_off;
// Free's fast check has started (start_fast_free_checks): before, carving
// marks no slot and writes nothing in the page map.
RS_STARTUP_DATA bool g_checks_started;

bool checks_started() {
  return __atomic_load_n(&g_checks_started, __ATOMIC_ACQUIRE);
}

/// Objects ahead whose descriptors insert_batch loads early.
inline constexpr int kPrefetchAhead = 32;

/// Starts loading the descriptor of the span holding p: its first line,
/// and the second for classes of more than 128 objects a span (whose bits
/// go on there). Only a hint: p is checked under the lock, and a prefetch
/// of any address is harmless.
void prefetch_span(const void* p, bool both_lines) {
  const Span* span = g_page_map.span_of(p);
  if (span != nullptr) {
    __builtin_prefetch(span, 1);
    if (both_lines)
      __builtin_prefetch(span->free_bits + kSpanBitWords - 1, 1);
  }
}

}  // namespace

uint8_t CentralList::cls() const {
  return static_cast<uint8_t>(this - g_central);
}

void set_free_mark(uintptr_t mark) {
  g_mark = mark;
}

void set_fast_free_checks(bool on) {
  g_fast_free_off = !on;
}

void start_fast_free_checks() {
  if (checks_started())
    return;
  // First, so that spans carved from now on get their checks as they
  // carve; then the spans carved before, under their class's lock. A full
  // one gets them when a free puts it back on its list (link).
  __atomic_store_n(&g_checks_started, true, __ATOMIC_RELEASE);
  for (size_t c = 1; c < kNumClasses; c++)
    g_central[c].start_checks_of_list();
}

void CentralList::start_checks_of_list() {
  LockGuard guard(lock_);
  for (Span* span = nonempty_; span != nullptr; span = span->next) {
    if (span->checks_late)
      start_checks(span);
  }
}

void CentralList::start_checks(Span* span) {
  span->checks_late = false;
  // As if all of it was carved now: the tail mark, the marks of the
  // bump's page, the checks of the pages before it.
  carved(span, span->start());
}

void CentralList::link(Span* span) {
  if (span->checks_late && checks_started())
    start_checks(span);
  span->prev = nullptr;
  span->next = nonempty_;
  if (nonempty_ != nullptr)
    nonempty_->prev = span;
  nonempty_ = span;
  span->on_list = true;
}

void CentralList::unlink(Span* span) {
  if (span->prev != nullptr) {
    span->prev->next = span->next;
  } else {
    nonempty_ = span->next;
  }
  if (span->next != nullptr)
    span->next->prev = span->prev;
  span->next = span->prev = nullptr;
  span->on_list = false;
}

bool CentralList::handed_out(const Span* span, const void* p) const {
  uintptr_t a = addr(p);
  if (a < span->start() || a >= span->bump)
    return false;  // outside the span, or never handed out
  uintptr_t off = a - span->start();
  return class_divide(cls(), off) * class_size(cls()) == off;
}

void CentralList::mark_tail(Span* span) {
  // The room after the last object (a multiple of 16 bytes, shorter than
  // an object) starts on a slot boundary, so a free of its start passes
  // free's divisibility check. The mark there sends such a free to the
  // slow check, which finds it is not a block, instead of into a cache.
  const ClassInfo& ci = class_info(cls());
  uintptr_t tail = span->start() + size_t{ci.objects} * ci.size;
  if (tail + 2 * sizeof(uintptr_t) <= span->end()) {
    uintptr_t* word = ptr_at<uintptr_t>(tail) + 1;
    vg::make_undefined(word, sizeof(uintptr_t));  // no block: ours to write
    *word = g_mark;
    vg::make_noaccess(word, sizeof(uintptr_t));
  }
}

namespace {

/// Whether carving marks the uncarved slots of the page it enters.
bool marks_ahead(const ClassInfo& ci) {
  return ci.size < (size_t{1} << 12);  // below a 4 KiB system page
}

/// Writes the free mark into the second word of each slot of `size` bytes
/// that starts in [from, to): slots no program holds (uncarved, or about
/// to go to a CPU cache), which memcheck keeps unaddressable.
RS_FAST_PATH void mark_slots(uintptr_t from, uintptr_t to, size_t size) {
  for (uintptr_t a = from; a < to; a += size) {
    uintptr_t* word = ptr_at<uintptr_t>(a) + 1;
    vg::make_undefined(word, sizeof(uintptr_t));
    *word = g_mark;
    vg::make_noaccess(word, sizeof(uintptr_t));
  }
}

}  // namespace

void* CentralList::pop(Span* span, bool mark_new) {
  const ClassInfo& ci = class_info(cls());
  if (span->num_free == 0 && span->any_released &&
      span->bump >= span->start() + size_t{ci.objects} * ci.size)
    reclaim(span);
  void* obj;
  if (span->num_free != 0) {
    obj = ptr_at<void>(span->start() + take_lowest(span) * ci.size);
  } else {
    obj = ptr_at<void>(span->bump);
    span->bump += ci.size;
    uintptr_t* word = static_cast<uintptr_t*>(obj) + 1;
    vg::make_undefined(word, sizeof(uintptr_t));
    if (mark_new) {
      // New to the CPU caches, where every object carries the free mark
      // (a free of it before it is handed out is then seen).
      *word = g_mark;
    } else if (marks_ahead(ci) && *word == g_mark) {
      // For calloc, which was told it reads as zeros. Only classes that
      // mark ahead can find the mark here: reading a larger class's word
      // would fault in a page calloc counts on not touching (a read of a
      // new page is not free where the kernel maps no zero page for it).
      *word = 0;
    }
    vg::make_noaccess(word, sizeof(uintptr_t));
    // carved() follows, once for all the objects that one visit of
    // remove() carves from this span.
  }
  span->allocated++;
  return obj;
}

size_t CentralList::fast_free_halves(const Span* span, uintptr_t bump) const {
  if (span->checks_late || !checks_started())
    return 0;
  const ClassInfo& ci = class_info(cls());
  uintptr_t off = bump - span->start();  // the first slot not carved yet
  if (off >= size_t{ci.objects} * ci.size)
    return 2 * span->num_pages;  // all carved (the tail carries the mark)
  // Small objects: the page of the first uncarved slot is on too, its
  // uncarved slots marked (carved() writes them, on memory that carving is
  // about to touch anyway). In a span made while the process had one
  // thread (by_halves), only the half page of that slot: the page's other
  // half stays off until carving reaches it, so that a class's first
  // objects fault in one system page, not two. With threads, the whole
  // page: each change of a page's check is a write to the page map's line,
  // which frees on other CPUs read, and half pages made twice as many
  // (prodcons, one producer and one consumer: 1.13x the time). From a
  // system page up, marking would fault in pages nobody uses yet (calloc
  // counts on them being untouched): a page is on once no slot starts in
  // it uncarved.
  if (marks_ahead(ci)) {
    if (span->by_halves)
      return (off >> PageMap::kHalfShift) + 1;
    return 2 * ((off >> kPageShift) + 1);
  }
  return 2 * (off >> kPageShift);
}

void CentralList::carved(Span* span, uintptr_t old_bump) {
  // The pages whose slots are all carved (or marked) get free's fast
  // check; the others send their frees to the slow path, which sees that
  // a slot past the bump pointer was never handed out. Without that, a
  // wild free of such a slot would enter a CPU cache, and carving would
  // hand the slot out a second time.
  if (!checks_started()) {
    // Before the CPU caches start every free takes the slow path anyway:
    // no marks, no page-map writes (a process that allocates a few times
    // faults in neither the span's next system page nor the leaf's check
    // arrays). start_checks catches up.
    span->checks_late = true;
    return;
  }
  const ClassInfo& ci = class_info(cls());
  size_t before =
      old_bump == span->start() ? 0 : fast_free_halves(span, old_bump);
  size_t on = fast_free_halves(span, span->bump);
  if (on == before)
    return;
  uintptr_t objs_end = span->start() + size_t{ci.objects} * ci.size;
  size_t tail_half = (objs_end - span->start()) >> PageMap::kHalfShift;
  if (tail_half >= before && tail_half < on)
    mark_tail(span);  // the tail's half page just came on
  if (marks_ahead(ci) && span->bump < objs_end) {
    // The half page of the first uncarved slot just came on: mark its
    // uncarved slots (carving writes there anyway).
    uintptr_t half_end = span->start() + (on << PageMap::kHalfShift);
    mark_slots(span->bump, half_end < objs_end ? half_end : objs_end, ci.size);
  }
  update_fast_free(span);
}

void CentralList::update_fast_free(const Span* span) {
  size_t on = g_fast_free_off ? 0 : fast_free_halves(span, span->bump);
  g_page_map.set_fast_free(span, on, span->released_mask, release_shift(span));
}

Span* CentralList::new_span() {
  const ClassInfo& ci = class_info(cls());
  bool zeroed = false;
  Span* span =
      g_page_heap.allocate(ci.span_pages, SpanState::kSmall, cls(), 1, &zeroed);
  if (span == nullptr)
    return nullptr;
  span->bump_zeroed = zeroed;
  // No mark_tail here: carved() writes it when the tail's page gets the
  // fast check (a span whose last page is never carved never faults it in).
  span->bump = span->start();
  clear_all(span);  // the page heap's fields were there
  span->allocated = 0;
  set_released(span, 0);
  span->pages_checked = false;
  span->checks_late = false;
  span->by_halves = single_threaded(true);
  span->touched_ms = 0;
  return span;
}

void CentralList::fault_in(Span* span, size_t carve) {
  const ClassInfo& ci = class_info(cls());
  size_t objs = carve < ci.objects ? carve : ci.objects;
  uintptr_t objs_end = span->start() + size_t{ci.objects} * ci.size;
  uintptr_t end = span->start() + objs * ci.size;
  // Once the checks are on, carved() also marks the uncarved slots of the
  // page the carve ends in (classes that mark ahead), and the tail's word
  // when the carve reaches its page: the same range here.
  uintptr_t ahead =
      span->start() + (fast_free_halves(span, end) << PageMap::kHalfShift);
  if (ahead > end)
    end = ahead < objs_end ? ahead : objs_end;
  mark_slots(span->start(), end, ci.size);
  if (checks_started() && end >= objs_end)
    mark_tail(span);
}

Span* CentralList::nonempty_span(size_t carve) {
  // Central lock held; dropped while the page heap makes a new span.
  Span* span = nonempty_;
  if (span != nullptr)
    return span;
  lock_.unlock();  // never hold a central lock while taking the heap's
  span = new_span();
  // A fresh span's first pages fault in as its first objects get their
  // marks: on a VM where a fault costs ~9 us, under the lock that made the
  // other CPU's refills of this class sleep on it (threads-2's fill).
  if (span != nullptr && carve != 0)
    fault_in(span, carve);
  lock_.lock();
  if (span == nullptr)
    return nullptr;
  const ClassInfo& ci = class_info(cls());
  link(span);
  stats_.spans++;
  stats_.capacity += ci.objects;
  return span;
}

namespace {

/// Where a carve for a CPU cache may end: two 64-byte lines. One line is
/// what two CPUs must not share; the pair is what Intel's L2 prefetcher
/// fetches together, and for classes under 64 B it makes a CPU's first
/// refill two lines, which its pops hand out from the top: the caller's
/// object, then one from the other line (two objects that one thread
/// allocates back to back for two others are then not in one line).
inline constexpr uintptr_t kCarveAlign = 128;

/// Whether span's next object would be carved (no free one to take
/// first) and starts inside a line pair whose start was carved already.
/// Central lock held.
bool carving_mid_line(const Span* span, const ClassInfo& ci) {
  return span->num_free == 0 && (span->bump & (kCarveAlign - 1)) != 0 &&
         span->bump < span->start() + size_t{ci.objects} * ci.size;
}

/// Puts out[whole], the first object of a whole line pair, first, and the
/// objects before it (the rest of a pair that began elsewhere) after it. A
/// CPU cache gives out[0] to the caller and pushes the others in order, so
/// those become the bottom of its stack: the last objects its pops hand
/// out, after the whole pairs. Two objects popped back to back (the
/// caller's and the next, say one per thread of falseshare's passive
/// phase) then come from the whole pairs, and the object freed on top of
/// them later (the one carved alone) shares no line with either.
void whole_pair_first(void** out, int whole) {
  void* first = out[whole];
  for (int i = whole; i > 0; i--)
    out[i] = out[i - 1];
  out[0] = first;
}

/// Reverses out[1..got-1]: the order in which a CPU cache, which hands
/// out out[0] and pushes the others, pops them is then the order they were
/// taken in, lowest address first within each span (from the bitmap, then
/// carved). A program then gets the objects of one refill in address
/// order: records it builds one after another lie one after another, which
/// python's own code reads faster than the same objects in descending
/// order (its run 0.95-0.96 in CPU time, alternating pairs).
void pop_order(void** out, int got) {
  for (int a = 1, b = got - 1; a < b; a++, b--) {
    void* t = out[a];
    out[a] = out[b];
    out[b] = t;
  }
}

}  // namespace

int CentralList::remove(void** out, int n, int max, bool* first_zeroed) {
  const ClassInfo& ci = class_info(cls());
  int got = 0;
  uint64_t now = os::now_ms();
  if (first_zeroed != nullptr)
    *first_zeroed = false;
  int whole = -1;  // where a carve's first whole line pair starts in out
  bool for_cache = max > n;  // remove_to_line: for a CPU cache
  lock_.lock();
  while (got < n) {
    // Only a CPU cache's carve (marks, no calloc) is written ahead.
    Span* span = nonempty_span(
        first_zeroed == nullptr ? static_cast<size_t>(n - got) : 0);
    if (span == nullptr)
      break;
    uintptr_t old_bump = span->bump;
    if (max > n && whole < 0 && carving_mid_line(span, ci)) {
      // A carve for a CPU cache that would start inside a line pair whose
      // first objects went elsewhere: carved one at a time for callers
      // without a cache (before the caches start), or by a carve that its
      // max cut short. They may be in use on another CPU, or freed into
      // this one's cache later. The rest of that pair comes along but
      // does not count towards n; whole pairs follow, and
      // whole_pair_first() hands out one of those first.
      int extra = 0;
      while (extra < max - n && carving_mid_line(span, ci)) {
        out[got++] = pop(span, first_zeroed == nullptr);
        extra++;
      }
      n += extra;
      whole = got;
    }
    if (got == 0 && first_zeroed != nullptr) {
      // Past the bump pointer of a span that was zero when carved, with no
      // freed object to take first.
      *first_zeroed = span->num_free == 0 && span->bump_zeroed &&
                      span->bump < span->start() + size_t{ci.objects} * ci.size;
    }
    // Objects for a CPU cache get the free mark; calloc's (first_zeroed
    // given) go straight to the program and must stay zero.
    while (got < n && span->allocated < ci.objects)
      out[got++] = pop(span, first_zeroed == nullptr);
    // Classes that are not a multiple of 128 B: up to the next object that
    // starts a line pair (at most 7 more: sizes are multiples of 16).
    while (got < max && carving_mid_line(span, ci))
      out[got++] = pop(span, first_zeroed == nullptr);
    // The page map's checks and the marks ahead for what was carved, once
    // for the whole run (per object, it was 1.6% of python's run).
    if (span->bump != old_bump)
      carved(span, old_bump);
    span->touched_ms = now;  // in use: its free pages are wanted soon
    span->pages_checked = false;
    if (span->allocated == ci.objects)
      unlink(span);
  }
  stats_.allocated += static_cast<size_t>(got);
  lock_.unlock();
  if (whole > 0 && whole < got) {
    whole_pair_first(out, whole);
  } else if (whole < 0 && for_cache) {
    pop_order(out, got);
  }
  return got;
}

void CentralList::insert_batch(void* const* objs, int n) {
  const ClassInfo& ci = class_info(cls());
  Span* empty[64];
  int num_empty = 0;
  int i = 0;
  uint64_t now = os::now_ms();
  // The descriptors of a batch's objects (many spans, gone cold after a
  // burst of frees) were most of insert_batch's time, a miss for each
  // under the lock: their loads start here, before it, and for longer
  // batches kPrefetchAhead objects ahead.
  bool both_lines = ci.objects > 128;
  for (int k = 0; k < n && k < kPrefetchAhead; k++)
    prefetch_span(objs[k], both_lines);
  while (i < n) {
    lock_.lock();
    for (; i < n && num_empty < 64; i++) {
      void* obj = objs[i];
      if (i + kPrefetchAhead < n)
        prefetch_span(objs[i + kPrefetchAhead], both_lines);
      Span* span = g_page_map.span_of(obj);
      // Catches foreign and interior pointers, and every double free of an
      // object its span holds: free in the bitmap, or on a released page.
      // Nothing is read or written in the object itself.
      if (span == nullptr || span->state != SpanState::kSmall ||
          span->size_class != cls() || !handed_out(span, obj) ||
          span->allocated == 0) {
        lock_.unlock();
        fatal_pointer("free", obj);
      }
      size_t index = class_divide(cls(), addr(obj) - span->start());
      if (is_free(span, index) || on_released_page(span, obj)) {
        lock_.unlock();
        fatal_pointer("free", obj);
      }
      set_free(span, index);
      span->allocated--;
      span->touched_ms = now;
      span->pages_checked = false;
      stats_.allocated--;
      if (span->allocated == 0) {
        if (span->on_list)
          unlink(span);
        stats_.released -= masked_bytes(span);
        set_released(span, 0);  // the page heap tracks its own releases
        clear_all(span);        // its words are the page heap's fields
        stats_.spans--;
        stats_.capacity -= ci.objects;
        empty[num_empty++] = span;
      } else if (!span->on_list) {
        link(span);
      }
    }
    lock_.unlock();
    for (int k = 0; k < num_empty; k++)
      g_page_heap.free(empty[k]);
    num_empty = 0;
  }
}

BlockState CentralList::released_state(const void* p) {
  Span* span = g_page_map.span_of(p);
  LockGuard guard(lock_);
  if (span == nullptr || span->state != SpanState::kSmall ||
      span->size_class != cls() || !handed_out(span, p))
    return BlockState::kNotABlock;
  return on_released_page(span, p) ? BlockState::kFree : BlockState::kElsewhere;
}

BlockState CentralList::block_state(const void* p) {
  Span* span = g_page_map.span_of(p);
  LockGuard guard(lock_);
  if (span == nullptr || span->state != SpanState::kSmall ||
      span->size_class != cls() || !handed_out(span, p))
    return BlockState::kNotABlock;
  if (on_released_page(span, p) ||
      is_free(span, class_divide(cls(), addr(p) - span->start())))
    return BlockState::kFree;
  return BlockState::kElsewhere;
}

CentralStats CentralList::stats() {
  LockGuard guard(lock_);
  return stats_;
}

}  // namespace rs
