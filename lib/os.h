// SPDX-License-Identifier: MIT
// Base layer: the only interface to the kernel. Every call is a raw system
// call: none allocates, none touches errno, none can be interposed by the
// program. Failures come back as nullptr/false/negative errno values.
#ifndef RS_OS_H_
#define RS_OS_H_

#include "base.h"

namespace rs::os {

/// Maps `size` bytes of zeroed read-write anonymous memory; nullptr on
/// failure (for example under RLIMIT_AS). `no_huge`: the mapping refuses
/// transparent huge pages (MAP_STACK from Linux 6.7 on, at no cost;
/// MADV_NOHUGEPAGE on older kernels).
void* map(size_t size, bool no_huge = false);

/// Reserves `size` bytes that read as zeros and cannot be written yet:
/// protect(..., true) makes parts of it writable. Under
/// vm.overcommit_memory=2 the kernel charges every writable private
/// mapping to the commit limit when it is made, MAP_NORESERVE or not;
/// a read-only one is charged nothing until a part becomes writable.
/// Readable, not PROT_NONE: lookups (the page map for a wild pointer, a
/// CPU's headers before its region is laid out) may read any part.
void* reserve(size_t size, bool no_huge = false);

/// Maps `size` bytes aligned to `align` (a power of two >= 4 KiB) by mapping
/// more and trimming the ends; nullptr on failure. `no_huge` as for map().
void* map_aligned(size_t size, size_t align, bool no_huge = false);

/// reserve(), aligned as map_aligned() aligns.
void* reserve_aligned(size_t size, size_t align, bool no_huge = false);

void unmap(void* p, size_t size);

/// Grows or shrinks a mapping where it is; false on failure (the mapping is
/// then unchanged).
bool remap_in_place(void* p, size_t old_size, size_t new_size);

/// Moves a mapping's pages onto [target, target + new_size), replacing what
/// was mapped there; false on failure (both mappings are then unchanged).
bool remap_to(void* p, size_t old_size, size_t new_size, void* target);

/// Gives pages back to the kernel (MADV_DONTNEED): they read as zero next.
bool release(void* p, size_t size);

/// Makes [p, p + size) (whole system pages) inaccessible (PROT_NONE), or
/// readable and writable again; false on failure.
bool protect(void* p, size_t size, bool access);

/// Transparent huge page advice for [p, p + size).
void advise_hugepage(void* p, size_t size, bool want);

long futex_wait(int* word, int expected);

long futex_wake(int* word, int count);

/// membarrier(cmd, 0, 0); negative errno on failure.
long membarrier(int cmd);

/// Writes all of buf to fd, retrying on EINTR and short writes.
void write_all(int fd, const char* buf, size_t len);

/// open(path, O_RDONLY|O_CLOEXEC); negative errno on failure.
int open_read(const char* path);

long read(int fd, void* buf, size_t len);

void close(int fd);

// getpid, sched_yield, nanosleep and sched_getaffinity as system calls of
// our own rather than libc's wrappers: each libc function the library
// names is a symbol lookup by the dynamic loader in every process
// (docs/benchmarks.md, start-up), and these are for rare paths.

/// The process id.
long pid();

/// sched_yield().
void yield();

/// Sleeps ms milliseconds (an interrupted sleep returns early).
void sleep_ms(uint64_t ms);

/// sched_getaffinity(0) into mask (bytes long): the bytes the kernel wrote
/// (the caller zeroes the rest beforehand), or a negative errno.
long affinity(void* mask, size_t bytes);

/// Fills buf with random bytes (getrandom, non-blocking); false on failure.
bool random_bytes(void* buf, size_t len);

/// Milliseconds from CLOCK_MONOTONIC_COARSE (vDSO; cheap), counted from
/// an arbitrary origin: only differences mean something. Held by
/// hold_clock(), it does not move (and reads no clock: the vDSO's data
/// page is a page fault of its own in a process that reads no time) until
/// start_clock(); stamps taken meanwhile count as taken at the start.
uint64_t now_ms();

/// Holds the clock until start_clock(): the first malloc does, so that a
/// process that allocates a few times reads no clock (docs/benchmarks.md,
/// start-up). Without it the clock starts at its first read.
void hold_clock();

/// Starts the clock (once; idempotent). Everything that needs time to pass
/// calls it first: the CPU caches' start, the page heap's growth past its
/// first chunk, large mappings, the purger, a wait with a deadline.
void start_clock();

/// The system's transparent huge page policy, the bracketed word of
/// /sys/kernel/mm/transparent_hugepage/enabled: kAlways backs all
/// anonymous memory with huge pages, kMadvise only what MADV_HUGEPAGE
/// names, kNever none (also when the file is absent or unreadable).
/// kUnknown (0) is for callers that have not read it yet.
enum class SystemThp : uint8_t { kUnknown, kAlways, kMadvise, kNever };
SystemThp system_thp();

/// Size of the system's base page (AT_PAGESZ), e.g. 4096.
size_t system_page_size();

/// Kills the process with SIGABRT without calling into libc.
[[noreturn]] void abort_process();

}  // namespace rs::os

#endif  // RS_OS_H_
