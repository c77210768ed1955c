// SPDX-License-Identifier: MIT
// Core layer: the page heap's transparent huge pages (RSMALLOC_THP).
//
// RSMALLOC_THP=grown, where the system backs with huge pages only what a
// program asks for ("madvise", Debian's default): a heap that has grown
// past kHugeAdviceFromBytes asks for them on the chunks it maps from then
// on. A program that builds a large live set then faults its heap in
// 2 MiB at a time instead of 4 KiB (512 times fewer page faults) and
// misses in the TLB less when it frees objects all over it; small
// programs never reach the threshold and keep 4 KiB pages. Not the
// default: where the kernel reports free memory to a hypervisor (virtio
// free page reporting), a huge page taken from memory the host has
// reclaimed costs 40 times a warm one to clear (docs/benchmarks.md,
// "memory: where the time goes").
//
// Pages of a huge page still go back one by one (a partly used span's free
// pages, the decay's free spans): the kernel splits the huge page, and the
// program's RSS drops at once. The first release inside a run of advised
// chunks takes the advice back from the whole run, so that khugepaged,
// which fills the holes of the advised huge pages it collapses
// (max_ptes_none), does not bring released pages back while the program
// idles; the heap's huge pages are then the ones faulted in while it
// grew.
#include "os.h"
#include "page_heap.h"
#include "settings.h"

namespace rs {

bool PageHeap::huge_backed_locked() {
  ThpSetting thp = g_config.thp;
  if (thp == ThpSetting::kAuto || thp == ThpSetting::kGrown)
    return system_thp_locked() == os::SystemThp::kAlways;
  return thp == ThpSetting::kAlways;
}

bool PageHeap::huge_backed() {
  LockGuard guard(lock_);
  return huge_backed_locked();
}

os::SystemThp PageHeap::system_thp_locked() {
  if (system_thp_ == os::SystemThp::kUnknown)
    system_thp_ = os::system_thp();
  return system_thp_;
}

void PageHeap::advise_chunk_locked(void* mem, size_t bytes) {
  // grow() refused huge pages already for never, and for auto and grown
  // while the heap is small.
  if (g_config.thp == ThpSetting::kAlways)
    os::advise_hugepage(mem, bytes, true);
  if (g_config.thp != ThpSetting::kGrown)
    return;  // auto: the kernel's policy
  uintptr_t lo = addr(mem), hi = lo + bytes;
  // Whole huge pages only (a chunk is, unless a tight RLIMIT_AS made grow
  // map just what it needed); the first chunks never (heap_mapped_bytes
  // does not count this chunk yet).
  if (stats_.heap_mapped_bytes < kHugeAdviceFromBytes ||
      ((lo | bytes) & (kHugePageSize - 1)) != 0)
    return;
  AdvisedRuns* runs = advised_;
  size_t n = runs != nullptr ? runs->count : 0;
  size_t advised = bytes;
  AdvisedRun* run = nullptr;
  for (size_t i = 0; i < n; i++) {
    uintptr_t a = __atomic_load_n(&runs->run[i].lo, __ATOMIC_RELAXED);
    uintptr_t b = __atomic_load_n(&runs->run[i].hi, __ATOMIC_RELAXED);
    advised += b - a;
    if (a == hi || b == lo)  // mmap puts new chunks next to the last
      run = &runs->run[i];
  }
  if (advised > kMaxAdvisedBytes || (run == nullptr && n == kMaxAdvisedRuns))
    return;  // a heap that large or that scattered: its VMAs stay few
  if (system_thp_locked() != os::SystemThp::kMadvise)
    return;  // "always" needs no advice; "never" ignores it
  if (runs == nullptr) {
    runs = static_cast<AdvisedRuns*>(os::map(sizeof(AdvisedRuns)));
    if (runs == nullptr)
      return;
    __atomic_store_n(&advised_, runs, __ATOMIC_RELEASE);
  }
  os::advise_hugepage(mem, bytes, true);
  if (run == nullptr) {
    runs->run[n] = {lo, hi};
    __atomic_store_n(&runs->count, n + 1, __ATOMIC_RELEASE);
  } else if (__atomic_load_n(&run->lo, __ATOMIC_RELAXED) == hi) {
    __atomic_store_n(&run->lo, lo, __ATOMIC_RELAXED);
  } else {
    __atomic_store_n(&run->hi, hi, __ATOMIC_RELAXED);
  }
}

void PageHeap::unadvise_released(uintptr_t lo, uintptr_t hi) {
  AdvisedRuns* runs = __atomic_load_n(&advised_, __ATOMIC_ACQUIRE);
  size_t n =
      runs != nullptr ? __atomic_load_n(&runs->count, __ATOMIC_ACQUIRE) : 0;
  for (size_t i = 0; i < n; i++) {
    AdvisedRun& r = runs->run[i];
    // The first release inside a run takes the advice back from all of it
    // at once (one madvise, and the run's VMA stays one), and empties the
    // run (hi = lo): later releases there make no system call.
    uintptr_t a = __atomic_load_n(&r.lo, __ATOMIC_RELAXED);
    uintptr_t b = __atomic_load_n(&r.hi, __ATOMIC_RELAXED);
    while (a < hi && lo < b) {
      if (__atomic_compare_exchange_n(&r.hi, &b, a, false, __ATOMIC_RELAXED,
                                      __ATOMIC_RELAXED)) {
        os::advise_hugepage(ptr_at<void>(a), b - a, false);
        break;
      }
      a = __atomic_load_n(&r.lo, __ATOMIC_RELAXED);  // widened meanwhile
    }
  }
}

void PageHeap::forget_advised_locked() {
  // Chunks are about to be unmapped: their address space may become
  // someone else's mapping, which no run may cover.
  AdvisedRuns* runs = advised_;
  for (size_t i = 0; runs != nullptr && i < runs->count; i++) {
    AdvisedRun& r = runs->run[i];
    __atomic_store_n(&r.hi, __atomic_load_n(&r.lo, __ATOMIC_RELAXED),
                     __ATOMIC_RELAXED);
  }
}

}  // namespace rs
