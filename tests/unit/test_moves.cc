// SPDX-License-Identifier: MIT
// Unit tests of the move counts (lib/moves.h) as a forked child resets
// them: only the slots some thread used are read, and only counts with a
// move on its way are written, so that a child of a multi-threaded process
// does not fault in (or copy) the 64 KiB of slots page by page. The pages
// it must leave alone are made inaccessible or read-only around the call:
// a read or write there ends the test with SIGSEGV.
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <sys/mman.h>

#include "../check_main.h"
#include "moves.h"

namespace {

constexpr size_t kCls = 5;
// A slot in the middle of the array: its pages hold nothing but slots.
constexpr size_t kSlot = rs::kMoveSlots / 2;

uintptr_t page_size() {
  return static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
}

/// Sets `prot` on every page that lies wholly inside g_move_slots and
/// holds no byte of slot `keep` (or, with `only`, on those that do).
/// Returns how many pages it changed, or -1 when mprotect failed. Calls
/// nothing of Check's: its state may share the pages around the array.
int protect(size_t keep, bool only, int prot) {
  uintptr_t ps = page_size();
  uintptr_t lo = reinterpret_cast<uintptr_t>(&rs::g_move_slots[0]);
  uintptr_t hi = reinterpret_cast<uintptr_t>(&rs::g_move_slots[rs::kMoveSlots]);
  uintptr_t keep_lo = reinterpret_cast<uintptr_t>(&rs::g_move_slots[keep]);
  uintptr_t keep_hi = keep_lo + sizeof(rs::MoveSlot);
  int changed = 0;
  for (uintptr_t p = (lo + ps - 1) & ~(ps - 1); p + ps <= hi; p += ps) {
    bool holds_keep = p + ps > keep_lo && p < keep_hi;
    if (holds_keep != only)
      continue;
    if (mprotect(reinterpret_cast<void*>(p), ps, prot) != 0)
      return -1;
    changed++;
  }
  return changed;
}

/// Marks slot kSlot used, with `started` and `finished` counts in class
/// kCls, as a thread of the parent would have left it.
void use_slot(uint32_t started, uint32_t finished) {
  rs::g_move_slots_used |= uint64_t{1} << kSlot;
  rs::g_move_slots[kSlot].cls[kCls].started = started;
  rs::g_move_slots[kSlot].cls[kCls].finished = finished;
}

}  // namespace

START_TEST(a_move_marks_its_slot_used) {
  size_t s = rs::move_slot();
  uint64_t bit = uint64_t{1} << s;
  ck_assert_uint_eq(rs::g_move_slots_used & bit, 0);
  size_t got = rs::move_begin(kCls);
  ck_assert_uint_eq(got, s);
  ck_assert_uint_ne(rs::g_move_slots_used & bit, 0);
  rs::move_end(kCls, got);
  ck_assert_uint_eq(rs::g_move_slots_used, bit);
}

END_TEST

START_TEST(child_reads_only_used_slots) {
  // A move on its way in one slot, as a thread of the parent may have had
  // one when another forked; every other slot's page inaccessible.
  use_slot(7, 6);
  int hidden = protect(kSlot, false, PROT_NONE);
  rs::moves_after_fork_child();
  int shown = protect(kSlot, false, PROT_READ | PROT_WRITE);
  ck_assert_int_eq(hidden, shown);
  // With 4 KiB pages, 13 of the 15 or 16 whole pages (the slot may
  // straddle two); with 64 KiB pages there may be none to hide.
  if (page_size() <= 4096)
    ck_assert_int_ge(hidden, 13);
  ck_assert_uint_eq(rs::g_move_slots[kSlot].cls[kCls].finished, 7);
  ck_assert_uint_eq(rs::moves_started(kCls), 7);
}

END_TEST

START_TEST(child_writes_no_quiet_count) {
  // Every count of the used slot is equal: the child's reset must leave
  // the slot's pages (shared with the parent after fork) unwritten.
  use_slot(3, 3);
  int locked = protect(kSlot, true, PROT_READ);
  rs::moves_after_fork_child();
  int unlocked = protect(kSlot, true, PROT_READ | PROT_WRITE);
  ck_assert_int_eq(locked, unlocked);
  if (page_size() <= 4096)
    ck_assert_int_ge(locked, 1);
  ck_assert_uint_eq(rs::g_move_slots[kSlot].cls[kCls].started, 3);
  ck_assert_uint_eq(rs::g_move_slots[kSlot].cls[kCls].finished, 3);
}

END_TEST

int main(void) {
  Suite* suite = suite_create("moves");
  TCase* tc = tcase_create("fork");
  tcase_add_test(tc, a_move_marks_its_slot_used);
  tcase_add_test(tc, child_reads_only_used_slots);
  tcase_add_test(tc, child_writes_no_quiet_count);
  suite_add_tcase(suite, tc);
  return rs_check_run(suite, "test_moves");
}
