// SPDX-License-Identifier: MIT
// ABI layer: every C++ operator new and delete. The new_handler and the
// bad_alloc throw are reached through weak references, so the library
// needs no C++ runtime and a C program loads none.
#include <dlfcn.h>
#include <new>
#include <type_traits>

#include "allocator.h"
#include "log.h"

// Weak: present only when libstdc++ is loaded (a C++ program).
namespace std {
__attribute__((weak)) new_handler get_new_handler() noexcept;
[[noreturn]] __attribute__((weak)) void __throw_bad_alloc();
}  // namespace std

namespace {

// Our own tag object: std::nothrow lives in libstdc++.
const std::nothrow_t kNothrow = std::nothrow_t();

using NothrowNew = void* (*)(size_t, const std::nothrow_t&);
using NothrowAlignedNew = void* (*)(size_t,
                                    std::align_val_t,
                                    const std::nothrow_t&);

// libstdc++'s nothrow operator new by its mangled name, whose size_t is
// `m` (unsigned long: 64-bit targets) or `j` (unsigned int: i386, armhf).
constexpr bool kSizeIsLong = std::is_same_v<size_t, unsigned long>;
static_assert(kSizeIsLong || std::is_same_v<size_t, unsigned int>);
constexpr const char* kNothrowNewName =
    kSizeIsLong ? "_ZnwmRKSt9nothrow_t" : "_ZnwjRKSt9nothrow_t";
constexpr const char* kNothrowAlignedNewName =
    kSizeIsLong ? "_ZnwmSt11align_val_tRKSt9nothrow_t"
                : "_ZnwjSt11align_val_tRKSt9nothrow_t";

/// A new_handler may throw bad_alloc, which a nothrow new must turn into
/// nullptr; rsmalloc has no exception support, so it lets libstdc++'s own
/// nothrow new (found after rsmalloc in the lookup order) do the catching:
/// it calls our throwing operator new inside its try block.
void* nothrow_via_libstdcxx(size_t n, size_t align, bool* done) {
  *done = false;
  if (align == 0) {
    auto fn = reinterpret_cast<NothrowNew>(dlsym(RTLD_NEXT, kNothrowNewName));
    if (fn == nullptr)
      return nullptr;
    *done = true;
    return fn(n, kNothrow);
  }
  auto fn = reinterpret_cast<NothrowAlignedNew>(
      dlsym(RTLD_NEXT, kNothrowAlignedNewName));
  if (fn == nullptr)
    return nullptr;
  *done = true;
  return fn(n, static_cast<std::align_val_t>(align), kNothrow);
}

/// Out of memory in operator new: call the new_handler and retry, as the
/// standard says; with no handler, throw bad_alloc (or return nullptr for
/// the nothrow forms).
RS_SLOW_PATH void* new_failed(size_t n, size_t align, bool nothrow) {
  for (;;) {
    std::new_handler handler =
        &std::get_new_handler != nullptr ? std::get_new_handler() : nullptr;
    if (handler == nullptr) {
      if (nothrow)
        return nullptr;
      if (&std::__throw_bad_alloc != nullptr)
        std::__throw_bad_alloc();
      rs::fatal(__FILE__, __LINE__, "operator new: out of memory");
    }
    // Under valgrind libstdc++'s nothrow new is memcheck's replacement,
    // which never calls the handler: call it here (a handler that throws
    // then ends the program, as it would from any noexcept function).
    if (nothrow && !rs::on_valgrind()) {
      bool done;
      void* p = nothrow_via_libstdcxx(n, align, &done);
      if (done)
        return p;
    }
    handler();
    void* p = align != 0 ? rs::allocate_aligned(align, n) : rs::allocate(n);
    if (p != nullptr)
      return p;
  }
}

RS_FAST_PATH void* new_impl(size_t n) {
  void* p = rs::allocate(n);
  if (RS_LIKELY(p != nullptr))
    return p;
  return new_failed(n, 0, false);
}

RS_FAST_PATH void* new_nothrow(size_t n) {
  void* p = rs::allocate(n);
  if (RS_LIKELY(p != nullptr))
    return p;
  return new_failed(n, 0, true);
}

RS_FAST_PATH void* new_aligned(size_t n, std::align_val_t al, bool nothrow) {
  size_t align = static_cast<size_t>(al);
  void* p = rs::allocate_aligned(align, n);
  if (RS_LIKELY(p != nullptr))
    return p;
  return new_failed(n, align, nothrow);
}

}  // namespace

RS_EXPORT void* operator new(size_t n) {
  return new_impl(n);
}

RS_EXPORT void* operator new[](size_t n) {
  return new_impl(n);
}

RS_EXPORT void* operator new(size_t n, const std::nothrow_t&) noexcept {
  return new_nothrow(n);
}

RS_EXPORT void* operator new[](size_t n, const std::nothrow_t&) noexcept {
  return new_nothrow(n);
}

RS_EXPORT void* operator new(size_t n, std::align_val_t al) {
  return new_aligned(n, al, false);
}

RS_EXPORT void* operator new[](size_t n, std::align_val_t al) {
  return new_aligned(n, al, false);
}

RS_EXPORT void* operator new(size_t n,
                             std::align_val_t al,
                             const std::nothrow_t&) noexcept {
  return new_aligned(n, al, true);
}

RS_EXPORT void* operator new[](size_t n,
                               std::align_val_t al,
                               const std::nothrow_t&) noexcept {
  return new_aligned(n, al, true);
}

RS_EXPORT void operator delete(void* p) noexcept {
  rs::deallocate(p, "operator delete");
}

RS_EXPORT void operator delete[](void* p) noexcept {
  rs::deallocate(p, "operator delete[]");
}

RS_EXPORT void operator delete(void* p, size_t n) noexcept {
  rs::deallocate_sized(p, n, "operator delete");
}

RS_EXPORT void operator delete[](void* p, size_t n) noexcept {
  rs::deallocate_sized(p, n, "operator delete[]");
}

RS_EXPORT void operator delete(void* p, const std::nothrow_t&) noexcept {
  rs::deallocate(p, "operator delete");
}

RS_EXPORT void operator delete[](void* p, const std::nothrow_t&) noexcept {
  rs::deallocate(p, "operator delete[]");
}

RS_EXPORT void operator delete(void* p, std::align_val_t) noexcept {
  rs::deallocate(p, "operator delete");
}

RS_EXPORT void operator delete[](void* p, std::align_val_t) noexcept {
  rs::deallocate(p, "operator delete[]");
}

RS_EXPORT void operator delete(void* p, size_t n, std::align_val_t) noexcept {
  rs::deallocate_sized(p, n, "operator delete");
}

RS_EXPORT void operator delete[](void* p, size_t n, std::align_val_t) noexcept {
  rs::deallocate_sized(p, n, "operator delete[]");
}

RS_EXPORT void operator delete(void* p,
                               std::align_val_t,
                               const std::nothrow_t&) noexcept {
  rs::deallocate(p, "operator delete");
}

RS_EXPORT void operator delete[](void* p,
                                 std::align_val_t,
                                 const std::nothrow_t&) noexcept {
  rs::deallocate(p, "operator delete[]");
}
