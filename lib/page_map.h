// SPDX-License-Identifier: MIT
// Core layer: the radix page map from page number to span and size class.
// Two levels over 48-bit addresses (32-bit on 32-bit targets); the root is
// static, leaves are mapped on demand and never freed. Lookups take no lock.
#ifndef RS_PAGE_MAP_H_
#define RS_PAGE_MAP_H_

#include "base.h"
#include "size_class.h"
#include "span.h"

namespace rs {

/// Answers "is this ours, which class, which span" for any address.
class PageMap {
 public:
  static constexpr size_t kPageBits =
      kAddressBits - kPageShift;  // 34 on x86-64, 35, 19
  // 32-bit: small leaves (21 KiB for 8 MiB of address space), 512 of them.
  static constexpr size_t kLeafBits = sizeof(void*) == 8 ? 18 : 10;
  static constexpr size_t kRootBits =
      kPageBits - kLeafBits;  // 16 on x86-64, 17, 9
  static constexpr size_t kLeafLength = size_t{1} << kLeafBits;
  static constexpr size_t kRootLength = size_t{1} << kRootBits;

  /// A page's span, class and check, 16 bytes: a 2 MiB chunk's entries
  /// fill one 4 KiB system page (the first malloc faults in one page of
  /// the leaf, not one of a span array and one of a class array), free's
  /// fast path still reaches the class with one scaled load (it shifts the
  /// address to a byte offset of the entry, shr and and, instead of a page
  /// index, and the load takes the field's displacement), and the slot
  /// check reads the line the class came from.
  struct alignas(16) Slot {
    Span* span;          // the span holding the page, or nullptr
    uint8_t size_class;  // its class for small spans, else 0
    uint32_t check;      // starts_slot's check word (check_word), 0 when off
  };

  static constexpr size_t kSlotShift = 4;
  static_assert(sizeof(Slot) == size_t{1} << kSlotShift);

  /// A page's check: its offset from its span's start modulo the class
  /// size (under 2^18), shifted left by kPhaseShift, and the class in the
  /// low byte; kFirstHalf when only slots that start in the page's first
  /// half pass (the span's carving has not reached the second: see
  /// set_fast_free). kFirstHalf is the bit of an offset in the page that
  /// says "second half", so starts_slot compares it along with the class.
  static constexpr size_t kHalfShift = kPageShift - 1;
  static constexpr uint32_t kFirstHalf = uint32_t{1} << kHalfShift;
  static constexpr size_t kPhaseShift = kPageShift;

  static constexpr uint32_t check_word(size_t phase, size_t cls) {
    return static_cast<uint32_t>(phase << kPhaseShift | cls);
  }

  /// One leaf covers kLeafLength pages (2 GiB of address space; 8 MiB on
  /// 32-bit targets).
  struct Leaf {
    Slot slot[kLeafLength];
  };

  /// Where class_at found a page's entry, for starts_slot: the byte offset
  /// of its Slot in leaf->slot.
  struct Entry {
    const Leaf* leaf;
    size_t offset;
  };

  /// class_of, keeping where the page's entry is (set when the class is
  /// not 0): free's fast path asks starts_slot only when the class tag
  /// does not vouch for p, and then without a second walk.
  RS_FAST_PATH size_t class_at(const void* p, Entry* e) const {
    uintptr_t root = addr(p) >> (kPageShift + kLeafBits);
    if (RS_UNLIKELY(root >= kRootLength))
      return 0;
    const Leaf* leaf = load_leaf(root);
    if (leaf == nullptr)
      return 0;
    e->leaf = leaf;
    e->offset = (addr(p) >> (kPageShift - kSlotShift)) &
                ((kLeafLength - 1) << kSlotShift);
    return slot_at(leaf, e->offset).size_class;
  }

  /// The slot check for a page whose entry class_at found with class cls:
  /// true when p starts an object slot of a small span of that class whose
  /// check is on. The page's check word holds the class it was set for and
  /// the page's phase, its offset from the span's start modulo the size:
  /// p's offset from the span's start is a multiple of the size exactly
  /// when x = (p's offset in the page) + phase is. With m = ceil(2^64 /
  /// size), an x < 2^32 is a multiple of size exactly when x * m mod 2^64 <
  /// m (Lemire, Kaser and Kurz, 2019); m comes from the class table. The
  /// word sits in the page's slot, on the line class_at read. A check word
  /// that names another class (a span's reuse racing this free: set_range
  /// clears the word before it changes the class, set_fast_free writes it
  /// after) or none (0: the check is off) never passes, and the word is
  /// read whole, so phase and class always belong to one span.
  RS_FAST_PATH static bool starts_slot(const void* p,
                                       const Entry& e,
                                       size_t cls) {
    // The leaf through an empty asm: the compiler cannot see that
    // leaf + offset here is class_at's, so free's hit path keeps its one
    // scaled load instead of forming that sum in a register for this cold
    // path to reuse (an lea: one instruction more).
    const Leaf* leaf = e.leaf;
    __asm__("" : "+r"(leaf));
    uint32_t check =
        __atomic_load_n(&slot_at(leaf, e.offset).check, __ATOMIC_RELAXED);
    uint64_t off = addr(p) & (kPageSize - 1);
    // The class, and for p in a page's second half the kFirstHalf flag
    // too, which must then be clear: two instructions and no branch of
    // their own (which pages are half on is a coin toss for the
    // predictor: a branch cost fastpath 1.6x).
    if ((check & (0xff | (off & kFirstHalf))) != cls)
      return false;
    uint64_t x = off + (check >> kPhaseShift);
    uint64_t m = class_check_mul(cls);
    return x * m < m;
  }

  /// Whether p is the start of an object slot in a small span whose check
  /// is on, with its class (never 0) in *cls; false for an interior
  /// pointer, a large block, a free page, memory that is not ours, nullptr.
  /// class_at and starts_slot, as free's fast path takes them apart.
  RS_FAST_PATH bool object_at(const void* p, size_t* cls) const {
    Entry e;
    size_t c = class_at(p, &e);
    if (c == 0 || !starts_slot(p, e, c))
      return false;
    *cls = c;
    return true;
  }

  /// The size class of the object at p; 0 when p is not in a small span
  /// (including pointers that are not ours, and nullptr). Two loads.
  RS_FAST_PATH size_t class_of(const void* p) const {
    Entry e;
    return class_at(p, &e);
  }

  /// The span holding p, or nullptr when p is not in memory we manage.
  RS_FAST_PATH Span* span_of(const void* p) const {
    return span_at(addr(p) >> kPageShift);
  }

  RS_FAST_PATH Span* span_at(uintptr_t page) const {
    if (RS_UNLIKELY(page >> kPageBits))
      return nullptr;
    const Leaf* leaf = load_leaf(page >> kLeafBits);
    if (leaf == nullptr)
      return nullptr;
    return leaf->slot[page & (kLeafLength - 1)].span;
  }

  /// Makes sure leaves exist for [page, page + n); false when out of memory.
  /// Caller holds the page heap lock.
  bool ensure(uintptr_t page, size_t n);

  /// span_at for the page heap's neighbour checks (its lock held): nullptr
  /// without a look outside the pages ensure() was ever asked for, which
  /// no span ever held, so a new chunk's look at its neighbours faults in
  /// no page of a leaf.
  Span* span_near(uintptr_t page) const {
    return page >= low_ && page < high_ ? span_at(page) : nullptr;
  }

  /// Points pages [page, page + n) at span with class cls. Leaves must
  /// exist (ensure). Caller holds the page heap lock.
  void set_range(uintptr_t page, size_t n, Span* span, uint8_t cls);

  /// Sets starts_slot's check for the pages of the small span `span`: on for
  /// its first `on_halves` half pages (1 << kHalfShift bytes each; an odd
  /// count leaves the last page on for its first half only, kFirstHalf)
  /// except pages that overlap a unit set in `released` (units of 1 <<
  /// unit_shift bytes from the span's start), off for the rest: their
  /// frees then take the slow path, which looks at the span. set_range
  /// leaves the pages of a new small span off. Caller holds the span's
  /// central lock.
  void set_fast_free(const Span* span,
                     size_t on_halves,
                     uint64_t released,
                     size_t unit_shift);

  /// Whether set_fast_free has ever turned a check on. Before that every
  /// check word is 0 (and its pages may never have been touched), so no
  /// starts_slot can pass.
  RS_FAST_PATH bool checks_used() const {
    return __atomic_load_n(&checks_used_, __ATOMIC_RELAXED);
  }

  /// Bytes of leaves mapped so far (metadata statistics).
  size_t leaf_bytes() const {
    return __atomic_load_n(&leaf_bytes_, __ATOMIC_RELAXED);
  }

  /// Where leaf_bytes() lives, for the introspection block.
  const size_t* leaf_bytes_addr() const { return &leaf_bytes_; }

 private:
  /// The Slot at a byte offset (Entry::offset).
  RS_FAST_PATH static const Slot& slot_at(const Leaf* leaf, size_t offset) {
    return *reinterpret_cast<const Slot*>(
        reinterpret_cast<const char*>(leaf->slot) + offset);
  }

  RS_FAST_PATH const Leaf* load_leaf(uintptr_t i) const {
    return __atomic_load_n(&root_[i], __ATOMIC_ACQUIRE);
  }

  /// Makes the entries of pages [page, last] in leaf i (at `leaf`, its
  /// pieces tracked in committed_[t]) writable: a leaf is an os::reserve,
  /// and only the pieces that pages of ours need are committed. False when
  /// the kernel refuses.
  bool commit(
      size_t t, char* leaf, uintptr_t i, uintptr_t page, uintptr_t last);

  // A leaf is made writable a piece at a time: 64 KiB of entries, 32 MiB of
  // address space (4 MiB leaves). The pieces of the first kTrackedLeaves
  // leaves are tracked; a leaf past those is made writable whole.
  static constexpr size_t kPieceShift = 16;
  static constexpr size_t kPieces = sizeof(Leaf) >> kPieceShift;  // 64 (0)
  static constexpr size_t kTrackedLeaves = 8;

  Leaf* root_[kRootLength];  // lazily mapped leaves
  size_t leaf_bytes_;        // total bytes of leaves
  uintptr_t low_;            // ensure()'s pages so far: [low_, high_)
  uintptr_t high_;
  uintptr_t tracked_root_[kTrackedLeaves];  // root index of each
  uint64_t committed_[kTrackedLeaves];      // its writable pieces
  size_t tracked_;
  bool checks_used_;  // set_fast_free has turned a check on
};

extern RS_INTERNAL PageMap g_page_map;

}  // namespace rs

#endif  // RS_PAGE_MAP_H_
