// SPDX-License-Identifier: MIT
// rseq layer: access to the rseq area glibc registers for every thread.
// rsmalloc never registers rseq itself (glibc owns the registration); it
// finds the area at thread pointer + __rseq_offset.
#ifndef RS_RSEQ_RSEQ_ABI_H_
#define RS_RSEQ_RSEQ_ABI_H_

#include "base.h"

namespace rs::rseq {

// Field offsets in the kernel's struct rseq (linux/rseq.h).
inline constexpr long kCpuIdOffset = 4;   // s32 cpu_id (< 0: none)
inline constexpr long kRseqCsOffset = 8;  // u64 rseq_cs: ours to write
inline constexpr long kMmCidOffset = 24;  // u32 mm_cid (Linux 6.3+)

/// Signature before every abort handler: glibc's RSEQ_SIG (x86: 0x53053053;
/// arm64: the encoding of brk #0x45e0, read as a little-endian word).
#if defined(__aarch64__)
inline constexpr uint32_t kRseqSig = 0xd428bc00;
#else
inline constexpr uint32_t kRseqSig = 0x53053053;
#endif

/// How the per-CPU caches are indexed.
enum class Index : uint8_t { kMmCid, kCpuId };

/// What rseq offers this process; decided once at start-up.
struct Support {
  bool usable;         // glibc registered rseq and this thread has it
  Index index;         // mm_cid when the kernel fills it, else cpu_id
  long area_offset;    // __rseq_offset: thread pointer to the rseq area
  const char* reason;  // why not usable, for RSMALLOC_VERBOSE
};

/// Looks at glibc's registration (weak __rseq_offset/__rseq_size) and the
/// kernel's feature size (AT_RSEQ_FEATURE_SIZE). Never calls rseq(2).
Support probe();

/// This thread's rseq cpu_id; negative when its registration failed or
/// rseq is not in use. Only meaningful after probe() said usable.
int32_t thread_cpu_id(long area_offset);

/// This thread's cache index (mm_cid or cpu_id), read outside any critical
/// section: a hint for the slow path, stale as soon as it is read.
uint32_t thread_index(long area_offset, Index index);

/// membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ); false when the
/// kernel or a seccomp filter refuses it.
bool register_fence();

/// Restarts every rseq critical section running in this process
/// (membarrier PRIVATE_EXPEDITED_RSEQ) and orders memory on all CPUs.
bool fence();

}  // namespace rs::rseq

#endif  // RS_RSEQ_RSEQ_ABI_H_
