// SPDX-License-Identifier: MIT
// Base layer: compiler attributes, constants shared by every layer, and the
// fatal-error check. Includes nothing from rsmalloc.
#ifndef RS_BASE_H_
#define RS_BASE_H_

#include <stddef.h>
#include <stdint.h>

#define RS_FAST_PATH inline __attribute__((always_inline))
#define RS_SLOW_PATH __attribute__((noinline, cold))
#define RS_NOINLINE __attribute__((noinline))
#define RS_LIKELY(x) __builtin_expect(!!(x), 1)
#define RS_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define RS_EXPORT __attribute__((visibility("default")))
// On the declarations of globals the fast paths read: -fvisibility=hidden
// covers definitions only, and through an extern declaration without it
// the compiler takes the address from the GOT (a lea once the linker has
// relaxed it) instead of reading the variable at its offset from %rip.
#define RS_INTERNAL __attribute__((visibility("hidden")))
#define RS_CACHELINE_ALIGNED alignas(64)
// Start-up state: small variables the first malloc (or late_init) writes,
// kept in the library's .data, on the page the dynamic loader writes
// anyway when it loads the library (its relocations, and the zeroing of
// the page's tail where .bss begins). In .bss they would fault in pages of
// their own. Small scalars only: tests/startup.sh counts the first
// malloc's page faults.
#define RS_STARTUP_DATA __attribute__((section(".data.rs_startup")))

// glibc 2.32 and later; weak, so the library loads without it.
extern "C" char __libc_single_threaded __attribute__((weak));

namespace rs {

inline constexpr size_t kPageShift = 13;  // rsmalloc pages are 8 KiB
inline constexpr size_t kPageSize = size_t{1} << kPageShift;
inline constexpr size_t kMinAlign = 16;  // every object is 16-byte aligned
inline constexpr size_t kMaxSmallSize = 256 * 1024;  // above: large path
inline constexpr size_t kHugePageSize = 2 * 1024 * 1024;
// User address space the page map covers: what the kernel hands out
// without a hint, 47 bits on x86-64 (the page map's root, static, is then
// 512 KiB, not 1 MiB: every process is charged its .bss to the commit
// limit), 48 on the other 64-bit targets (arm64, ppc64el, riscv64 sv48),
// all of it on 32-bit ones.
#if defined(__x86_64__)
inline constexpr size_t kAddressBits = 47;
#else
inline constexpr size_t kAddressBits = sizeof(void*) == 8 ? 48 : 32;
#endif

/// Writes "rsmalloc: <msg>" with the source location and aborts the process.
[[noreturn]] RS_SLOW_PATH void fatal(const char* file,
                                     int line,
                                     const char* msg);

/// Reports a detected misuse (invalid or double free) and aborts, the way
/// glibc does; `what` names the function and `ptr` the offending pointer.
[[noreturn]] RS_SLOW_PATH void fatal_pointer(const char* what, const void* ptr);

/// Reports a misuse of a block rsmalloc knows and aborts:
/// "rsmalloc: <what>(): <problem> 0x... (<size>-byte block)"; size 0 when
/// the block is gone (its memory is free).
[[noreturn]] RS_SLOW_PATH void fatal_block(const char* what,
                                           const char* problem,
                                           const void* ptr,
                                           size_t size);

/// Tells the CPU we are spinning.
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ volatile("yield");
#endif
}

constexpr bool is_pow2(size_t x) {
  return x != 0 && (x & (x - 1)) == 0;
}

constexpr size_t align_up(size_t x, size_t a) {
  return (x + a - 1) & ~(a - 1);
}

inline uintptr_t addr(const void* p) {
  return reinterpret_cast<uintptr_t>(p);
}

template <typename T>
inline T* ptr_at(uintptr_t a) {
  return reinterpret_cast<T*>(a);
}

/// Whether glibc says the process has one thread (__libc_single_threaded);
/// `unknown` with a glibc that does not say (before 2.32).
inline bool single_threaded(bool unknown) {
  if (&__libc_single_threaded == nullptr)
    return unknown;
  return __atomic_load_n(&__libc_single_threaded, __ATOMIC_RELAXED) != 0;
}

}  // namespace rs

#define RS_CHECK(cond, msg)                   \
  do {                                        \
    if (RS_UNLIKELY(!(cond))) {               \
      ::rs::fatal(__FILE__, __LINE__, (msg)); \
    }                                         \
  } while (0)

#endif  // RS_BASE_H_
