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

uintptr_t page_size() {
  return static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
}

/// Sets `prot` on every whole page of g_move_slots that holds no byte of
/// slot `keep`. Returns how many pages it changed.
size_t protect_other_slots(size_t keep, int prot) {
  uintptr_t ps = page_size();
  uintptr_t lo = reinterpret_cast<uintptr_t>(&rs::g_move_slots[0]);
  uintptr_t hi = reinterpret_cast<uintptr_t>(&rs::g_move_slots[rs::kMoveSlots]);
  uintptr_t keep_lo = reinterpret_cast<uintptr_t>(&rs::g_move_slots[keep]);
  uintptr_t keep_hi = keep_lo + sizeof(rs::MoveSlot);
  size_t changed = 0;
  for (uintptr_t p = (lo + ps - 1) & ~(ps - 1); p + ps <= hi; p += ps) {
    if (p + ps > keep_lo && p < keep_hi)
      continue;
    ck_assert_int_eq(mprotect(reinterpret_cast<void*>(p), ps, prot), 0);
    changed++;
  }
  return changed;
}

/// Sets `prot` on the pages that hold slot s.
void protect_slot(size_t s, int prot) {
  uintptr_t ps = page_size();
  uintptr_t lo = reinterpret_cast<uintptr_t>(&rs::g_move_slots[s]) & ~(ps - 1);
  uintptr_t hi = reinterpret_cast<uintptr_t>(&rs::g_move_slots[s + 1]);
  ck_assert_int_eq(mprotect(reinterpret_cast<void*>(lo), hi - lo, prot), 0);
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
  // A move on its way in this thread's slot, as a thread of the parent
  // may have had one when another forked.
  size_t s = rs::move_begin(kCls);
  ck_assert_uint_ne(rs::g_move_slots[s].cls[kCls].started,
                    rs::g_move_slots[s].cls[kCls].finished);
  // 64 slots of 1 KiB: of the 15 or 16 whole pages, all but the one or two
  // that hold s (it may straddle a page boundary) are protected.
  ck_assert_uint_ge(protect_other_slots(s, PROT_NONE),
                    rs::kMoveSlots * sizeof(rs::MoveSlot) / page_size() - 3);
  rs::moves_after_fork_child();
  protect_other_slots(s, PROT_READ | PROT_WRITE);
  ck_assert_uint_eq(rs::g_move_slots[s].cls[kCls].started,
                    rs::g_move_slots[s].cls[kCls].finished);
  ck_assert_uint_eq(rs::moves_started(kCls), 1);
}

END_TEST

START_TEST(child_writes_no_quiet_count) {
  // Every count of the used slot is equal: the child's reset must leave
  // the slot's pages (shared with the parent after fork) unwritten.
  size_t s = rs::move_begin(kCls);
  rs::move_end(kCls, s);
  protect_slot(s, PROT_READ);
  rs::moves_after_fork_child();
  protect_slot(s, PROT_READ | PROT_WRITE);
  ck_assert_uint_eq(rs::g_move_slots[s].cls[kCls].started, 1);
  ck_assert_uint_eq(rs::g_move_slots[s].cls[kCls].finished, 1);
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
