// SPDX-License-Identifier: MIT
// C++ operator tests: every operator new/new[]/delete/delete[] variant that
// librsmalloc exports (plain, nothrow, sized, std::align_val_t and their
// combinations), std::bad_alloc for impossible sizes, nullptr from the
// nothrow forms, and the std::new_handler protocol.
#include <check.h>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <errno.h>
#include <limits>
#include <malloc.h>
#include <new>
#include <stdint.h>
#include <string.h>

// check_main.h is shared with the C suites and uses C casts.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"
#include "check_main.h"
#include "on_valgrind.h"
#pragma GCC diagnostic pop
#include "rsmalloc.h"

// ck_assert*() sends Check a mark point (a write to its pipe) every time it
// passes; in loops over many blocks or bytes that dominates the run time,
// above all under valgrind. These report failures only.
#define EXPECT(cond, ...)        \
  do {                           \
    if (!(cond))                 \
      ck_abort_msg(__VA_ARGS__); \
  } while (0)
#define EXPECT_TRUE(cond) EXPECT(cond, "Assertion '%s' failed", #cond)
#define EXPECT_NONNULL(p) EXPECT((p) != nullptr, "'%s' is NULL", #p)
#define EXPECT_PTR_NE(a, b) \
  EXPECT((a) != (b), "'%s' == '%s' == %p", #a, #b, static_cast<const void*>(a))
#define EXPECT_CMP(a, op, b)                                                 \
  do {                                                                       \
    auto a_ = static_cast<uintmax_t>(a);                                     \
    auto b_ = static_cast<uintmax_t>(b);                                     \
    if (!(a_ op b_))                                                         \
      ck_abort_msg("Assertion '%s %s %s' failed: %ju, %ju", #a, #op, #b, a_, \
                   b_);                                                      \
  } while (0)
#define EXPECT_UINT_EQ(a, b) EXPECT_CMP(a, ==, b)
#define EXPECT_UINT_GE(a, b) EXPECT_CMP(a, >=, b)
#define EXPECT_INT_EQ(a, b) EXPECT_CMP(a, ==, b)

namespace {

constexpr std::size_t kMiB = std::size_t{1} << 20;

// Hides a value from the optimiser so calls are neither folded nor elided.
std::size_t opaque(std::size_t n) {
  volatile std::size_t v = n;
  return v;
}

bool is_aligned(const void* p, std::size_t a) {
  return (reinterpret_cast<std::uintptr_t>(p) & (a - 1)) == 0;
}

bool rs_active() {
  return strcmp(rsmalloc_cache_mode(), "disabled") != 0;
}

// Checks a block from an operator new: aligned, usable, owned by rsmalloc
// (so the operator really is rsmalloc's), writable over its whole size.
void check_block(void* p, std::size_t n, std::size_t align) {
  EXPECT_NONNULL(p);
  EXPECT(is_aligned(p, align), "%zu bytes at %p, want align %zu", n, p, align);
  EXPECT(rsmalloc_owns(p) == (rs_active() ? 1 : 0),
         "%zu bytes, align %zu: %p is not rsmalloc's", n, align, p);
  EXPECT(rsmalloc_usable_size(p) >= n, "%zu bytes, align %zu: usable %zu", n,
         align, rsmalloc_usable_size(p));
  auto* c = static_cast<unsigned char*>(p);
  memset(c, 0xc3, n);
  for (std::size_t i = 0; i < n; i += 1 + i / 8)
    EXPECT_INT_EQ(c[i], 0xc3);
}

const std::size_t kSizes[] = {
    0,    1,    8,     16,     17,     100,      128,          1000,
    4096, 4097, 65536, 262144, 262145, 1 * kMiB, 3 * kMiB + 1, 16 * kMiB};

const std::size_t kImpossible[] = {
    std::numeric_limits<std::size_t>::max(),
    std::numeric_limits<std::size_t>::max() - 4096,
    static_cast<std::size_t>(std::numeric_limits<std::ptrdiff_t>::max()) + 1,
    static_cast<std::size_t>(std::numeric_limits<std::ptrdiff_t>::max()),
    std::size_t{1} << (sizeof(std::size_t) == 8 ? 62 : 31),
};

struct alignas(64) Line {
  unsigned char b[64];
};

struct alignas(4096) Page {
  unsigned char b[4096];
};

struct alignas(32768) Big {
  unsigned char b[100];
};

}  // namespace

START_TEST(new_delete_plain) {
  for (std::size_t n : kSizes) {
    void* p = ::operator new(opaque(n));
    check_block(p, n, 16);
    ::operator delete(p);
    void* a = ::operator new[](opaque(n));
    check_block(a, n, 16);
    ::operator delete[](a);
  }
  // Zero-byte objects are distinct.
  void* z1 = ::operator new(opaque(0));
  void* z2 = ::operator new(opaque(0));
  EXPECT_PTR_NE(z1, z2);
  ::operator delete(z1);
  ::operator delete(z2);
}

END_TEST

START_TEST(new_delete_sized) {
  for (int round = 0; round < 3; round++) {
    for (std::size_t n : kSizes) {
      void* p = ::operator new(opaque(n));
      check_block(p, n, 16);
      ::operator delete(p, n);
      void* a = ::operator new[](opaque(n));
      check_block(a, n, 16);
      ::operator delete[](a, n);
    }
  }
}

END_TEST

START_TEST(new_delete_nothrow) {
  for (std::size_t n : kSizes) {
    void* p = ::operator new(opaque(n), std::nothrow);
    check_block(p, n, 16);
    ::operator delete(p, std::nothrow);
    void* a = ::operator new[](opaque(n), std::nothrow);
    check_block(a, n, 16);
    ::operator delete[](a, std::nothrow);
  }
}

END_TEST

START_TEST(new_delete_aligned) {
  for (std::size_t align = 1; align <= 65536; align <<= 1) {
    auto al = static_cast<std::align_val_t>(align);
    for (std::size_t n : kSizes) {
      void* p = ::operator new(opaque(n), al);
      check_block(p, n, align);
      // A second live block of the same kind is a different one.
      void* p2 = ::operator new(opaque(n), al);
      EXPECT(p2 != p, "operator new(%zu, align %zu) returned %p twice", n,
             align, p);
      check_block(p2, n, align);
      ::operator delete(p2, al);
      ::operator delete(p, al);

      void* a = ::operator new[](opaque(n), al);
      check_block(a, n, align);
      ::operator delete[](a, al);

      // Sized and aligned delete.
      p = ::operator new(opaque(n), al);
      check_block(p, n, align);
      ::operator delete(p, n, al);
      a = ::operator new[](opaque(n), al);
      check_block(a, n, align);
      ::operator delete[](a, n, al);
    }
  }
}

END_TEST

START_TEST(new_delete_aligned_nothrow) {
  for (std::size_t align = 16; align <= 65536; align <<= 1) {
    auto al = static_cast<std::align_val_t>(align);
    for (std::size_t n : kSizes) {
      void* p = ::operator new(opaque(n), al, std::nothrow);
      check_block(p, n, align);
      ::operator delete(p, al, std::nothrow);
      void* a = ::operator new[](opaque(n), al, std::nothrow);
      check_block(a, n, align);
      ::operator delete[](a, al, std::nothrow);
    }
  }
}

END_TEST

// Mixed variants live at the same time do not overlap.
START_TEST(new_mixed_live) {
  enum { N = 600 };

  static unsigned char* p[N];
  static std::size_t sz[N];
  for (int i = 0; i < N; i++) {
    sz[i] = 1 + static_cast<std::size_t>(i) * 13 % 5000;
    std::size_t align = std::size_t{16} << (i % 8);
    auto al = static_cast<std::align_val_t>(align);
    switch (i % 4) {
      case 0:
        p[i] = static_cast<unsigned char*>(::operator new(sz[i]));
        break;
      case 1:
        p[i] = static_cast<unsigned char*>(::operator new[](sz[i], al));
        break;
      case 2:
        p[i] = static_cast<unsigned char*>(
            ::operator new(sz[i], al, std::nothrow));
        break;
      default:
        p[i] =
            static_cast<unsigned char*>(::operator new[](sz[i], std::nothrow));
        break;
    }
    EXPECT_NONNULL(p[i]);
    if (i % 4 == 1 || i % 4 == 2)
      EXPECT_TRUE(is_aligned(p[i], align));
    memset(p[i], i & 0xff, sz[i]);
  }
  for (int i = 0; i < N; i++) {
    for (std::size_t k = 0; k < sz[i]; k++)
      EXPECT(p[i][k] == (i & 0xff), "object %d byte %zu", i, k);
    auto al = static_cast<std::align_val_t>(std::size_t{16} << (i % 8));
    switch (i % 4) {
      case 0:
        ::operator delete(p[i], sz[i]);
        break;
      case 1:
        ::operator delete[](p[i], sz[i], al);
        break;
      case 2:
        ::operator delete(p[i], al);
        break;
      default:
        ::operator delete[](p[i]);
        break;
    }
  }
}

END_TEST

// new-expressions of over-aligned types go through the aligned operators.
START_TEST(new_expressions_overaligned) {
  for (int round = 0; round < 100; round++) {
    Line* l = new Line;
    EXPECT_TRUE(is_aligned(l, alignof(Line)));
    memset(l->b, 1, sizeof l->b);
    Page* pg = new Page[3];
    EXPECT_TRUE(is_aligned(pg, alignof(Page)));
    memset(pg, 2, 3 * sizeof(Page));
    Big* b = new (std::nothrow) Big;
    EXPECT_NONNULL(b);
    EXPECT_TRUE(is_aligned(b, alignof(Big)));
    memset(b->b, 3, sizeof b->b);
    EXPECT_INT_EQ(rsmalloc_owns(pg), rs_active() ? 1 : 0);
    delete b;
    delete[] pg;
    delete l;
    int* ints = new int[opaque(1000)];
    for (int i = 0; i < 1000; i++)
      ints[i] = i;
    EXPECT_INT_EQ(ints[999], 999);
    delete[] ints;
  }
}

END_TEST

START_TEST(delete_null) {
  ::operator delete(nullptr);
  ::operator delete[](nullptr);
  ::operator delete(nullptr, std::nothrow);
  ::operator delete[](nullptr, std::nothrow);
  ::operator delete (nullptr, std::size_t{0});
  ::operator delete[](nullptr, std::size_t{0});
  ::operator delete (nullptr, std::align_val_t{64});
  ::operator delete[](nullptr, std::align_val_t{64});
  ::operator delete (nullptr, std::size_t{0}, std::align_val_t{64});
  ::operator delete[](nullptr, std::size_t{0}, std::align_val_t{64});
  ::operator delete (nullptr, std::align_val_t{64}, std::nothrow);
  ::operator delete[](nullptr, std::align_val_t{64}, std::nothrow);
}

END_TEST

// Each throwing variant throws std::bad_alloc for an impossible size.
template <typename F>
static bool throws_bad_alloc(F f) {
  try {
    (void)f();  // Leaked on purpose: only reached when the test fails.
  } catch (const std::bad_alloc&) {
    return true;
  }
  return false;
}

START_TEST(new_huge_throws) {
  for (std::size_t n : kImpossible) {
    EXPECT(throws_bad_alloc([n] { return ::operator new(opaque(n)); }),
           "operator new(%zu) did not throw", n);
    EXPECT(throws_bad_alloc([n] { return ::operator new[](opaque(n)); }),
           "operator new[](%zu) did not throw", n);
    EXPECT(throws_bad_alloc([n] {
             return ::operator new (opaque(n), std::align_val_t{64});
           }),
           "operator new(%zu, align 64) did not throw", n);
    EXPECT(throws_bad_alloc([n] {
             return ::operator new[](opaque(n), std::align_val_t{4096});
           }),
           "operator new[](%zu, align 4096) did not throw", n);
  }
  // The allocator still works afterwards.
  void* p = ::operator new(opaque(100));
  check_block(p, 100, 16);
  ::operator delete(p);
}

END_TEST

START_TEST(new_huge_nothrow_null) {
  for (std::size_t n : kImpossible) {
    ck_assert_ptr_null(::operator new(opaque(n), std::nothrow));
    ck_assert_ptr_null(::operator new[](opaque(n), std::nothrow));
    ck_assert_ptr_null(
        ::operator new (opaque(n), std::align_val_t{128}, std::nothrow));
    ck_assert_ptr_null(
        ::operator new[](opaque(n), std::align_val_t{8192}, std::nothrow));
  }
}

END_TEST

namespace {

int handler_calls;

// Counts its calls; on the third one uninstalls itself so the next attempt
// fails for good.
void counting_handler() {
  if (++handler_calls == 3)
    std::set_new_handler(nullptr);
}

void once_handler() {
  handler_calls++;
  std::set_new_handler(nullptr);
}

struct my_bad_alloc : std::bad_alloc {
  const char* what() const noexcept override { return "my_bad_alloc"; }
};

void throwing_handler() {
  handler_calls++;
  throw my_bad_alloc();
}

// Frees a reserve on its first call, so a retry can succeed.
void* reserve;

void releasing_handler() {
  handler_calls++;
  ::operator delete(reserve);
  reserve = nullptr;
  std::set_new_handler(nullptr);
}

}  // namespace

START_TEST(new_handler_called_then_throws) {
  std::size_t huge = opaque(std::numeric_limits<std::size_t>::max() / 2);
  handler_calls = 0;
  std::set_new_handler(once_handler);
  bool threw = false;
  try {
    void* p = ::operator new(huge);
    ::operator delete(p);
  } catch (const std::bad_alloc&) {
    threw = true;
  }
  ck_assert(threw);
  ck_assert_int_eq(handler_calls, 1);
  ck_assert(std::get_new_handler() == nullptr);

  // The handler is retried until it uninstalls itself.
  handler_calls = 0;
  std::set_new_handler(counting_handler);
  threw = false;
  try {
    void* p = ::operator new[](huge);
    ::operator delete[](p);
  } catch (const std::bad_alloc&) {
    threw = true;
  }
  ck_assert(threw);
  ck_assert_int_eq(handler_calls, 3);

  // Aligned new follows the same protocol.
  handler_calls = 0;
  std::set_new_handler(once_handler);
  threw = false;
  try {
    void* p = ::operator new (huge, std::align_val_t{256});
    ::operator delete (p, std::align_val_t{256});
  } catch (const std::bad_alloc&) {
    threw = true;
  }
  ck_assert(threw);
  ck_assert_int_eq(handler_calls, 1);
}

END_TEST

START_TEST(new_handler_nothrow) {
  std::size_t huge = opaque(std::numeric_limits<std::size_t>::max() / 2);
  handler_calls = 0;
  std::set_new_handler(once_handler);
  ck_assert_ptr_null(::operator new(huge, std::nothrow));
  ck_assert_int_eq(handler_calls, 1);

  handler_calls = 0;
  std::set_new_handler(counting_handler);
  ck_assert_ptr_null(
      ::operator new[](huge, std::align_val_t{64}, std::nothrow));
  ck_assert_int_eq(handler_calls, 3);
}

END_TEST

// [new.delete.single]: the nothrow forms return nullptr when the handler
// throws bad_alloc; the exception must not escape them.
START_TEST(new_handler_throws_into_nothrow) {
  if (rs_on_valgrind()) {
    // libstdc++'s nothrow new, which catches for rsmalloc, is memcheck's
    // replacement there: a throwing handler ends the program (rsmalloc(7)).
    fprintf(stderr,
            "new_handler_throws_into_nothrow: skipped under valgrind\n");
    return;
  }
  std::size_t huge = opaque(std::numeric_limits<std::size_t>::max() / 2);
  handler_calls = 0;
  std::set_new_handler(throwing_handler);
  void* p = reinterpret_cast<void*>(1);
  void* q = reinterpret_cast<void*>(1);
  bool escaped = false;
  try {
    p = ::operator new(huge, std::nothrow);
    q = ::operator new[](huge, std::align_val_t{64}, std::nothrow);
  } catch (...) {
    escaped = true;
  }
  std::set_new_handler(nullptr);
  ck_assert_msg(!escaped, "the handler's exception escaped nothrow new");
  ck_assert_ptr_null(p);
  ck_assert_ptr_null(q);
  ck_assert_int_eq(handler_calls, 2);
}

END_TEST

START_TEST(new_handler_exception_propagates) {
  std::size_t huge = opaque(std::numeric_limits<std::size_t>::max() / 2);
  handler_calls = 0;
  std::set_new_handler(throwing_handler);
  const char* what = nullptr;
  try {
    void* p = ::operator new(huge);
    ::operator delete(p);
  } catch (const my_bad_alloc& e) {
    what = e.what();
  } catch (const std::bad_alloc&) {
    what = "plain bad_alloc";
  }
  std::set_new_handler(nullptr);
  ck_assert_ptr_nonnull(what);
  ck_assert_str_eq(what, "my_bad_alloc");
  ck_assert_int_eq(handler_calls, 1);
}

END_TEST

START_TEST(new_handler_not_called_on_success) {
  handler_calls = 0;
  std::set_new_handler(counting_handler);
  for (std::size_t n : kSizes) {
    void* p = ::operator new(opaque(n));
    ::operator delete(p, n);
    p = ::operator new (opaque(n), std::align_val_t{1024});
    ::operator delete (p, n, std::align_val_t{1024});
  }
  std::set_new_handler(nullptr);
  EXPECT_INT_EQ(handler_calls, 0);
}

END_TEST

// A handler may free memory from inside operator new's retry loop; the
// allocator is fine afterwards.
START_TEST(new_handler_can_free) {
  reserve = ::operator new(opaque(1000));
  handler_calls = 0;
  std::set_new_handler(releasing_handler);
  std::size_t huge = opaque(std::numeric_limits<std::size_t>::max() / 2);
  bool threw = false;
  try {
    void* p = ::operator new(huge);
    ::operator delete(p);
  } catch (const std::bad_alloc&) {
    threw = true;
  }
  ck_assert(threw);
  ck_assert_int_eq(handler_calls, 1);
  ck_assert_ptr_null(reserve);
  void* p = ::operator new(opaque(1000));
  check_block(p, 1000, 16);
  ::operator delete(p);
}

END_TEST

// std::bad_alloc from operator new unwinds through the library's frames
// into C++ code that cleans up with destructors.
namespace {
int destroyed;

struct Guard {
  ~Guard() { destroyed++; }
};

void* alloc_with_guard(std::size_t n) {
  Guard g;
  return ::operator new(n);
}
}  // namespace

START_TEST(bad_alloc_unwinds) {
  destroyed = 0;
  bool threw = false;
  try {
    void* p = alloc_with_guard(opaque(std::numeric_limits<std::size_t>::max()));
    ::operator delete(p);
  } catch (const std::bad_alloc& e) {
    threw = true;
    ck_assert_ptr_nonnull(e.what());
  }
  ck_assert(threw);
  ck_assert_int_eq(destroyed, 1);
}

END_TEST

// malloc'd and new'd memory come from the same heap (one allocator).
START_TEST(new_and_malloc_same_heap) {
  void* a = ::operator new(opaque(48));
  void* b = malloc(opaque(48));
  ck_assert_ptr_nonnull(b);
  // Both rsmalloc's, or (RSMALLOC_DISABLE=1) both glibc's: equal owns()
  // alone would also hold when neither allocator call reached rsmalloc.
  int active = rs_active() ? 1 : 0;
  ck_assert_int_eq(rsmalloc_owns(a), active);
  ck_assert_int_eq(rsmalloc_owns(b), active);
  ck_assert_uint_ge(malloc_usable_size(a), 48);
  ::operator delete(a);
  free(b);
}

END_TEST

int main() {
  Suite* s = suite_create("cxx");
  TCase* tc = tcase_create("operators");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, new_delete_plain);
  tcase_add_test(tc, new_delete_sized);
  tcase_add_test(tc, new_delete_nothrow);
  tcase_add_test(tc, new_delete_aligned);
  tcase_add_test(tc, new_delete_aligned_nothrow);
  tcase_add_test(tc, new_mixed_live);
  tcase_add_test(tc, new_expressions_overaligned);
  tcase_add_test(tc, delete_null);
  tcase_add_test(tc, new_and_malloc_same_heap);
  suite_add_tcase(s, tc);

  tc = tcase_create("failure");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, new_huge_throws);
  tcase_add_test(tc, new_huge_nothrow_null);
  tcase_add_test(tc, bad_alloc_unwinds);
  suite_add_tcase(s, tc);

  tc = tcase_create("new_handler");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, new_handler_called_then_throws);
  tcase_add_test(tc, new_handler_nothrow);
  tcase_add_test(tc, new_handler_exception_propagates);
  tcase_add_test(tc, new_handler_throws_into_nothrow);
  tcase_add_test(tc, new_handler_not_called_on_success);
  tcase_add_test(tc, new_handler_can_free);
  suite_add_tcase(s, tc);

  return rs_check_run(s, "test_cxx");
}
