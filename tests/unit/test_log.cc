// SPDX-License-Identifier: MIT
// Unit tests of the write(2) formatter (lib/log.h): numbers and strings into
// a caller's buffer, truncation, NUL termination, fd output, fatal exits.
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <sys/wait.h>

#include "../check_main.h"
#include "log.h"

namespace {

/// A caller buffer with guard bytes on both sides.
struct Guarded {
  char before[16];
  char buf[64];
  char after[16];
};

void fill_guards(Guarded* g) {
  memset(g, '#', sizeof(*g));
}

bool guards_intact(const Guarded* g) {
  for (size_t i = 0; i < sizeof(g->before); i++) {
    if (g->before[i] != '#' || g->after[i] != '#')
      return false;
  }
  return true;
}

/// Formats with f into a large buffer and returns the NUL-terminated text.
template <typename F>
const char* format(F f) {
  static char buf[256];
  rs::Log log(buf, sizeof(buf));
  f(log);
  log.terminate();
  ck_assert_uint_lt(log.total(), sizeof(buf));
  ck_assert_uint_eq(strlen(buf), log.total());
  return buf;
}

}  // namespace

START_TEST(dec_formats_unsigned) {
  ck_assert_str_eq(format([](rs::Log& l) { l.dec(0); }), "0");
  ck_assert_str_eq(format([](rs::Log& l) { l.dec(7); }), "7");
  ck_assert_str_eq(format([](rs::Log& l) { l.dec(10); }), "10");
  ck_assert_str_eq(format([](rs::Log& l) { l.dec(1234567890); }), "1234567890");
  ck_assert_str_eq(format([](rs::Log& l) { l.dec(UINT64_MAX); }),
                   "18446744073709551615");
}

END_TEST

START_TEST(sdec_formats_signed) {
  ck_assert_str_eq(format([](rs::Log& l) { l.sdec(0); }), "0");
  ck_assert_str_eq(format([](rs::Log& l) { l.sdec(-1); }), "-1");
  ck_assert_str_eq(format([](rs::Log& l) { l.sdec(42); }), "42");
  ck_assert_str_eq(format([](rs::Log& l) { l.sdec(-1000); }), "-1000");
  ck_assert_str_eq(format([](rs::Log& l) { l.sdec(INT64_MAX); }),
                   "9223372036854775807");
  ck_assert_str_eq(format([](rs::Log& l) { l.sdec(INT64_MIN); }),
                   "-9223372036854775808");
  ck_assert_str_eq(format([](rs::Log& l) { l.sdec(INT64_MIN + 1); }),
                   "-9223372036854775807");
}

END_TEST

START_TEST(hex_formats_with_prefix) {
  ck_assert_str_eq(format([](rs::Log& l) { l.hex(0); }), "0x0");
  ck_assert_str_eq(format([](rs::Log& l) { l.hex(0xa); }), "0xa");
  ck_assert_str_eq(format([](rs::Log& l) { l.hex(0xdeadbeef); }), "0xdeadbeef");
  ck_assert_str_eq(format([](rs::Log& l) { l.hex(0x1000); }), "0x1000");
  ck_assert_str_eq(format([](rs::Log& l) { l.hex(UINT64_MAX); }),
                   "0xffffffffffffffff");
  ck_assert_str_eq(format([](rs::Log& l) { l.ptr(nullptr); }), "0x0");
  ck_assert_str_eq(
      format([](rs::Log& l) { l.ptr(reinterpret_cast<void*>(0x7f00ab)); }),
      "0x7f00ab");
}

END_TEST

START_TEST(str_and_chr_concatenate) {
  ck_assert_str_eq(format([](rs::Log& l) { l.str(""); }), "");
  ck_assert_str_eq(format([](rs::Log& l) {
                     l.str("rsmalloc: ").str("n=").dec(5).chr(',').chr(' ');
                     l.str("abcdef", 3).sdec(-2).hex(255);
                   }),
                   "rsmalloc: n=5, abc-20xff");
}

END_TEST

START_TEST(truncation_keeps_full_total) {
  Guarded g;
  fill_guards(&g);
  {
    rs::Log log(g.buf, 8);
    log.str("hello ").str("world").dec(12345);
    ck_assert_uint_eq(log.total(), 16);  // "hello world12345"
    log.terminate();
  }
  ck_assert_str_eq(g.buf, "hello w");  // last byte cut for the NUL
  ck_assert(guards_intact(&g));
  ck_assert_int_eq(g.buf[8], '#');  // nothing written past the capacity

  // Numbers cut in the middle: digits stop at the capacity.
  fill_guards(&g);
  {
    rs::Log log(g.buf, 5);
    log.dec(UINT64_MAX);
    ck_assert_uint_eq(log.total(), 20);
    log.sdec(INT64_MIN).hex(UINT64_MAX);
    ck_assert_uint_eq(log.total(), 20 + 20 + 18);
    log.terminate();
  }
  ck_assert_str_eq(g.buf, "1844");
  ck_assert(guards_intact(&g));
  ck_assert_int_eq(g.buf[5], '#');
}

END_TEST

START_TEST(exact_fit_and_terminate) {
  Guarded g;
  fill_guards(&g);
  {
    rs::Log log(g.buf, 6);
    log.str("abcde");  // leaves room for the NUL
    log.terminate();
    ck_assert_uint_eq(log.total(), 5);
  }
  ck_assert_str_eq(g.buf, "abcde");
  ck_assert(guards_intact(&g));

  fill_guards(&g);
  {
    rs::Log log(g.buf, 6);
    log.str("abcdef");  // fills it: terminate cuts the last byte
    log.terminate();
    ck_assert_uint_eq(log.total(), 6);
  }
  ck_assert_str_eq(g.buf, "abcde");
  ck_assert(guards_intact(&g));
  ck_assert_int_eq(g.buf[6], '#');

  fill_guards(&g);
  {
    rs::Log log(g.buf, 1);
    log.str("xyz");
    log.terminate();
    ck_assert_uint_eq(log.total(), 3);
  }
  ck_assert_int_eq(g.buf[0], '\0');
  ck_assert_int_eq(g.buf[1], '#');
  ck_assert(guards_intact(&g));
}

END_TEST

START_TEST(zero_capacity_writes_nothing) {
  Guarded g;
  fill_guards(&g);
  {
    rs::Log log(g.buf, 0);
    log.str("abc").dec(99);
    log.terminate();
    ck_assert_uint_eq(log.total(), 5);
  }
  ck_assert_int_eq(g.buf[0], '#');
  ck_assert(guards_intact(&g));
}

END_TEST

START_TEST(terminate_on_empty) {
  Guarded g;
  fill_guards(&g);
  {
    rs::Log log(g.buf, 4);
    log.terminate();
    ck_assert_uint_eq(log.total(), 0);
  }
  ck_assert_str_eq(g.buf, "");
  ck_assert(guards_intact(&g));
}

END_TEST

START_TEST(fd_output_in_order_past_the_buffer) {
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  // More than the 1 KiB internal buffer, so flush happens in the middle.
  static char expect[5000];
  size_t n = 0;
  {
    rs::Log log(fds[1]);
    for (int i = 0; i < 500; i++) {
      log.dec(static_cast<uint64_t>(i)).chr(';');
      char tmp[16];
      int k = snprintf(tmp, sizeof tmp, "%d;", i);
      memcpy(expect + n, tmp, static_cast<size_t>(k));
      n += static_cast<size_t>(k);
    }
    ck_assert_uint_eq(log.total(), n);
  }  // the destructor flushes the rest
  close(fds[1]);
  static char got[8192];
  size_t len = 0;
  for (;;) {
    ssize_t r = read(fds[0], got + len, sizeof(got) - len);
    if (r <= 0)
      break;
    len += static_cast<size_t>(r);
  }
  close(fds[0]);
  ck_assert_uint_eq(len, n);
  ck_assert_mem_eq(got, expect, n);
}

END_TEST

START_TEST(fd_output_one_write_per_message) {
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  {
    rs::Log log(fds[1]);
    log.str("rsmalloc: ").str("one ").str("message\n");
    // Nothing reaches the fd before the flush (a single write(2) later).
    ck_assert_int_eq(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
    char c;
    ck_assert_int_eq(read(fds[0], &c, 1), -1);
    log.flush();
    log.str("second\n");
  }
  close(fds[1]);
  ck_assert_int_eq(fcntl(fds[0], F_SETFL, 0), 0);
  char got[64] = "";
  size_t len = 0;
  for (;;) {
    ssize_t r = read(fds[0], got + len, sizeof(got) - 1 - len);
    if (r <= 0)
      break;
    len += static_cast<size_t>(r);
  }
  close(fds[0]);
  ck_assert_str_eq(got, "rsmalloc: one message\nsecond\n");
}

END_TEST

START_TEST(fatal_aborts) {
  rs::fatal("lib/some_file.cc", 42, "test message");
}

END_TEST

START_TEST(fatal_pointer_aborts) {
  rs::fatal_pointer("free", reinterpret_cast<void*>(0x1234));
}

END_TEST

START_TEST(fatal_message_format) {
  // Run the fatal path in a child and read what it says on stderr.
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    dup2(fds[1], 2);
    rs::fatal_pointer("free", reinterpret_cast<void*>(0xabc0));
  }
  close(fds[1]);
  char got[512] = "";
  size_t len = 0;
  for (;;) {
    ssize_t r = read(fds[0], got + len, sizeof(got) - 1 - len);
    if (r <= 0)
      break;
    len += static_cast<size_t>(r);
  }
  close(fds[0]);
  int status = 0;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert(WIFSIGNALED(status));
  ck_assert_int_eq(WTERMSIG(status), SIGABRT);
  ck_assert_msg(strncmp(got, "rsmalloc: free: invalid pointer 0xabc0", 38) == 0,
                "got: %s", got);
  ck_assert_int_eq(got[len - 1], '\n');
}

END_TEST

int main(void) {
  Suite* s = suite_create("log");
  TCase* tc = tcase_create("format");
  tcase_add_test(tc, dec_formats_unsigned);
  tcase_add_test(tc, sdec_formats_signed);
  tcase_add_test(tc, hex_formats_with_prefix);
  tcase_add_test(tc, str_and_chr_concatenate);
  suite_add_tcase(s, tc);
  tc = tcase_create("buffer");
  tcase_add_test(tc, truncation_keeps_full_total);
  tcase_add_test(tc, exact_fit_and_terminate);
  tcase_add_test(tc, zero_capacity_writes_nothing);
  tcase_add_test(tc, terminate_on_empty);
  suite_add_tcase(s, tc);
  tc = tcase_create("fd");
  tcase_add_test(tc, fd_output_in_order_past_the_buffer);
  tcase_add_test(tc, fd_output_one_write_per_message);
  suite_add_tcase(s, tc);
  tc = tcase_create("fatal");
  tcase_add_test_raise_signal(tc, fatal_aborts, SIGABRT);
  tcase_add_test_raise_signal(tc, fatal_pointer_aborts, SIGABRT);
  tcase_add_test(tc, fatal_message_format);
  suite_add_tcase(s, tc);
  return rs_check_run(s, "test_log");
}
