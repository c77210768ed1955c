// SPDX-License-Identifier: MIT
// rseq layer: probing glibc's rseq registration and the membarrier fence.
#include "rseq/rseq_abi.h"

#include <stddef.h>

#include <linux/membarrier.h>
#include <sys/auxv.h>

#include "os.h"

// Weak, so the library still loads on a glibc older than 2.35.
extern "C" {
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));
}

#ifndef AT_RSEQ_FEATURE_SIZE
#  define AT_RSEQ_FEATURE_SIZE 27
#endif

namespace rs::rseq {
namespace {

const volatile char* area(long area_offset) {
#if defined(__x86_64__)
  char* tp;
  __asm__("movq %%fs:0, %0" : "=r"(tp));  // the thread pointer
#elif defined(__powerpc64__)
  char* tp;
  __asm__("mr %0, 13" : "=r"(tp));  // r13, which GCC 12 has no builtin for
#else
  // GCC knows the other targets' thread pointer (tpidr_el0 on arm64,
  // %gs-based on i386, TPIDRURO on armhf, a0/a1 on s390x, tp on riscv64).
  char* tp = static_cast<char*>(__builtin_thread_pointer());
#endif
  return tp + area_offset;
}

}  // namespace

int32_t thread_cpu_id(long area_offset) {
  // The rseq area is 32-byte aligned: through void* for -Wcast-align.
  return *static_cast<const volatile int32_t*>(
      static_cast<const volatile void*>(area(area_offset) + kCpuIdOffset));
}

uint32_t thread_index(long area_offset, Index index) {
  long off = index == Index::kMmCid ? kMmCidOffset : kCpuIdOffset;
  return *static_cast<const volatile uint32_t*>(
      static_cast<const volatile void*>(area(area_offset) + off));
}

Support probe() {
  // Field by field: clang copies an aggregate initialiser from .rodata,
  // the one page of it the first malloc would read (tests/startup.sh).
  Support s;
  s.usable = false;
  s.index = Index::kCpuId;
  s.area_offset = 0;
  s.reason = nullptr;
#if defined(__x86_64__) || defined(__aarch64__)
  if (&__rseq_size == nullptr || &__rseq_offset == nullptr) {
    s.reason = "glibc has no rseq support (older than 2.35)";
    return s;
  }
  if (__rseq_size == 0) {
    s.reason =
        "rseq not registered by glibc (glibc.pthread.rseq=0, "
        "valgrind, or a kernel without rseq)";
    return s;
  }
  s.area_offset = __rseq_offset;
  if (thread_cpu_id(s.area_offset) < 0) {
    s.reason = "rseq registration failed for this thread";
    return s;
  }
  unsigned long feature_size = getauxval(AT_RSEQ_FEATURE_SIZE);
  if (feature_size > 32)
    feature_size = 32;  // glibc 2.36 registers 32 bytes
  s.index = feature_size >= kMmCidOffset + 4 ? Index::kMmCid : Index::kCpuId;
  s.usable = true;
#else
  s.reason = "rseq critical sections are written for x86-64 and aarch64 only";
#endif
  return s;
}

bool register_fence() {
  return os::membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ) == 0;
}

bool fence() {
  return os::membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ) == 0;
}

}  // namespace rs::rseq
