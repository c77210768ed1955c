// SPDX-License-Identifier: MIT
// Unit tests of the RSMALLOC_* settings (lib/settings.h): the strict
// parsers, and load_config's reports on stderr and its effect on g_config.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../check_main.h"
#include "settings.h"

namespace {

const char* const kVariables[] = {
    "RSMALLOC_DISABLE",   "RSMALLOC_VERBOSE",    "RSMALLOC_RSEQ",
    "RSMALLOC_CPU_CACHE", "RSMALLOC_DECAY_MS",   "RSMALLOC_THP",
    "RSMALLOC_STATS",     "RSMALLOC_BACKGROUND",
};

void clear_environment() {
  for (const char* v : kVariables)
    unsetenv(v);
}

void setup() {
  clear_environment();
  rs::g_config = rs::Config{};
}

void teardown() {
  clear_environment();
  rs::g_config = rs::Config{};
}

bool config_is_default(const rs::Config& c) {
  const rs::Config d{};
  return c.disable == d.disable && c.verbose == d.verbose && c.rseq == d.rseq &&
         c.cpu_cache_bytes == d.cpu_cache_bytes && c.decay_ms == d.decay_ms &&
         c.thp == d.thp && c.stats == d.stats && c.background == d.background;
}

/// What a call wrote on fd 2.
struct Captured {
  char text[8192];  // NUL-terminated
  size_t len;       // bytes in text
  bool result;      // the call's return value
};

/// Runs fn with fd 2 redirected into a pipe and collects what it wrote.
template <typename Fn>
void capture_stderr(Captured* out, Fn fn) {
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  int saved = dup(2);
  ck_assert_int_ge(saved, 0);
  ck_assert_int_eq(dup2(fds[1], 2), 2);
  out->result = fn();
  ck_assert_int_eq(dup2(saved, 2), 2);
  close(saved);
  close(fds[1]);
  out->len = 0;
  for (;;) {
    ssize_t n =
        read(fds[0], out->text + out->len, sizeof(out->text) - 1 - out->len);
    if (n <= 0)
      break;
    out->len += static_cast<size_t>(n);
  }
  close(fds[0]);
  out->text[out->len] = '\0';
}

size_t count_lines(const char* s) {
  size_t n = 0;
  for (; *s != '\0'; s++)
    n += *s == '\n';
  return n;
}

size_t count_substr(const char* s, const char* sub) {
  size_t n = 0;
  for (const char* p = strstr(s, sub); p != nullptr; p = strstr(p + 1, sub))
    n++;
  return n;
}

}  // namespace

// --- parsers

START_TEST(parse_bool_accepts_0_and_1) {
  bool b = true;
  ck_assert(rs::parse_bool("0", &b));
  ck_assert(!b);
  ck_assert(rs::parse_bool("1", &b));
  ck_assert(b);
}

END_TEST

START_TEST(parse_bool_rejects_the_rest) {
  static const char* const bad[] = {
      "",   "2",  "01", "00", "10",  "true", "false", "yes", "on",
      "1 ", " 1", "-1", "+1", "1\n", "0x1",  "Y",     "n",
  };
  for (const char* s : bad) {
    // Both initial values, so a stray write of either is seen.
    bool b = true;
    ck_assert_msg(!rs::parse_bool(s, &b), "accepted \"%s\"", s);
    ck_assert_msg(b, "\"%s\" changed the output", s);
    b = false;
    ck_assert_msg(!rs::parse_bool(s, &b), "accepted \"%s\"", s);
    ck_assert_msg(!b, "\"%s\" changed the output", s);
  }
}

END_TEST

START_TEST(parse_u64_accepts_decimal) {
  static const struct {
    const char* s;
    uint64_t v;
  } good[] = {
      {"0", 0},
      {"1", 1},
      {"42", 42},
      {"007", 7},
      {"4294967296", uint64_t{1} << 32},
      {"18446744073709551614", UINT64_MAX - 1},
      {"18446744073709551615", UINT64_MAX},
  };

  for (const auto& g : good) {
    uint64_t v = 12345;
    ck_assert_msg(rs::parse_u64(g.s, &v), "rejected \"%s\"", g.s);
    ck_assert_msg(v == g.v, "\"%s\" gave %llu", g.s,
                  static_cast<unsigned long long>(v));
  }
}

END_TEST

START_TEST(parse_u64_rejects_junk_and_overflow) {
  static const char* const bad[] = {
      "",
      "18446744073709551616",  // UINT64_MAX + 1
      "18446744073709551620",
      "99999999999999999999",
      "100000000000000000000",
      "-1",
      "+1",
      " 1",
      "1 ",
      "12x",
      "x12",
      "0x10",
      "1k",  // no suffixes here
      "1.0",
      "1e3",
      "1\n",
  };
  for (const char* s : bad) {
    uint64_t v = 0xdeadbeefcafef00dull;
    ck_assert_msg(!rs::parse_u64(s, &v), "accepted \"%s\"", s);
    ck_assert_msg(v == 0xdeadbeefcafef00dull, "\"%s\" changed the output", s);
  }
}

END_TEST

START_TEST(parse_size_accepts_suffixes) {
  static const struct {
    const char* s;
    size_t v;
  } good[] = {
    {"0", 0},
    {"4096", 4096},
    {"0k", 0},
    {"1k", 1024},
    {"1K", 1024},
    {"8k", 8192},
    {"2m", size_t{2} << 20},
    {"2M", size_t{2} << 20},
    {"1g", size_t{1} << 30},
    {"1G", size_t{1} << 30},
#if SIZE_MAX > 0xffffffffu
    {"16G", size_t{16} << 30},
    {"18446744073709551615", SIZE_MAX},
    {"18014398509481983K", ((size_t{1} << 54) - 1) << 10},
    {"17592186044415M", ((size_t{1} << 44) - 1) << 20},
    {"17179869183G", ((size_t{1} << 34) - 1) << 30},
#else
    {"4294967295", SIZE_MAX},
    {"4194303K", ((size_t{1} << 22) - 1) << 10},
    {"4095M", ((size_t{1} << 12) - 1) << 20},
    {"3G", size_t{3} << 30},
#endif
  };

  for (const auto& g : good) {
    size_t v = 12345;
    ck_assert_msg(rs::parse_size(g.s, &v), "rejected \"%s\"", g.s);
    ck_assert_msg(v == g.v, "\"%s\" gave %zu, want %zu", g.s, v, g.v);
  }
}

END_TEST

START_TEST(parse_size_rejects_junk_and_overflow) {
  static const char* const bad[] = {
      "",
      "k",
      "K",
      "M1",
      "12x",
      "-1",
      "+1",
      " 1",
      "1 ",
      "1k ",
      "1 k",
      "1kb",
      "1KB",
      "1KiB",
      "1kk",
      "1T",
      "1t",
      "1.5M",
      "0x10",
      "1e3",
      "18446744073709551616",     // SIZE_MAX + 1
      "99999999999999999999999",  // far too many digits
      "18014398509481984K",       // 2^64 with the suffix
      "17592186044416M",
      "17179869184G",
      "18446744073709551615K",
  };
  for (const char* s : bad) {
    size_t v = 0xdeadbeef;
    ck_assert_msg(!rs::parse_size(s, &v), "accepted \"%s\"", s);
    ck_assert_msg(v == 0xdeadbeef, "\"%s\" changed the output", s);
  }
}

END_TEST

// --- load_config

START_TEST(no_variables_keep_defaults_silently) {
  Captured out;
  capture_stderr(&out, [] { return rs::load_config(); });
  ck_assert(out.result);
  ck_assert_msg(out.len == 0, "unexpected output: %s", out.text);
  ck_assert(config_is_default(rs::g_config));
}

END_TEST

START_TEST(bad_value_reported_once_and_default_kept) {
  static const struct {
    const char* name;
    const char* value;
  } bad[] = {
      {"RSMALLOC_DISABLE", "yes"},    {"RSMALLOC_DISABLE", "2"},
      {"RSMALLOC_VERBOSE", "true"},   {"RSMALLOC_RSEQ", "off"},
      {"RSMALLOC_RSEQ", "2"},         {"RSMALLOC_CPU_CACHE", "12x"},
      {"RSMALLOC_CPU_CACHE", "4K"},   {"RSMALLOC_CPU_CACHE", "2G"},
      {"RSMALLOC_CPU_CACHE", "-1"},   {"RSMALLOC_DECAY_MS", "-1"},
      {"RSMALLOC_DECAY_MS", " 1"},    {"RSMALLOC_DECAY_MS", "3600001"},
      {"RSMALLOC_DECAY_MS", "1s"},    {"RSMALLOC_DECAY_MS", ""},
      {"RSMALLOC_THP", "madvise"},    {"RSMALLOC_THP", "Always"},
      {"RSMALLOC_THP", "Grown"},      {"RSMALLOC_STATS", "2"},
      {"RSMALLOC_STATS", "JSON"},     {"RSMALLOC_BACKGROUND", "2"},
      {"RSMALLOC_BACKGROUND", "yes"}, {"RSMALLOC_BACKGROUND", ""},
  };

  for (const auto& b : bad) {
    clear_environment();
    rs::g_config = rs::Config{};
    ck_assert_int_eq(setenv(b.name, b.value, 1), 0);
    Captured out;
    capture_stderr(&out, [] { return rs::load_config(); });
    ck_assert(out.result);
    ck_assert_msg(count_lines(out.text) == 1, "%s=%s: want one line, got: %s",
                  b.name, b.value, out.text);
    ck_assert_msg(strncmp(out.text, "rsmalloc", 8) == 0,
                  "%s=%s: message does not start with rsmalloc: %s", b.name,
                  b.value, out.text);
    ck_assert_msg(count_substr(out.text, b.name) == 1,
                  "%s=%s: message does not name the variable once: %s", b.name,
                  b.value, out.text);
    if (b.value[0] != '\0') {
      ck_assert_msg(strstr(out.text, b.value) != nullptr,
                    "%s=%s: message does not show the value: %s", b.name,
                    b.value, out.text);
    }
    ck_assert_msg(config_is_default(rs::g_config), "%s=%s changed g_config",
                  b.name, b.value);
  }
}

END_TEST

START_TEST(several_bad_values_each_reported_once) {
  setenv("RSMALLOC_THP", "sometimes", 1);
  setenv("RSMALLOC_DECAY_MS", "soon", 1);
  setenv("RSMALLOC_STATS", "yes", 1);
  setenv("RSMALLOC_VERBOSE", "0", 1);  // good: no report
  Captured out;
  capture_stderr(&out, [] { return rs::load_config(); });
  ck_assert(out.result);
  ck_assert_msg(count_lines(out.text) == 3, "want three lines: %s", out.text);
  ck_assert_uint_eq(count_substr(out.text, "rsmalloc"), 3);
  ck_assert_uint_eq(count_substr(out.text, "RSMALLOC_THP"), 1);
  ck_assert_uint_eq(count_substr(out.text, "RSMALLOC_DECAY_MS"), 1);
  ck_assert_uint_eq(count_substr(out.text, "RSMALLOC_STATS"), 1);
  ck_assert_uint_eq(count_substr(out.text, "RSMALLOC_VERBOSE"), 0);
  ck_assert(config_is_default(rs::g_config));
}

END_TEST

START_TEST(good_values_take_effect) {
  setenv("RSMALLOC_DISABLE", "1", 1);
  setenv("RSMALLOC_VERBOSE", "1", 1);
  setenv("RSMALLOC_RSEQ", "0", 1);
  setenv("RSMALLOC_CPU_CACHE", "4M", 1);
  setenv("RSMALLOC_DECAY_MS", "250", 1);
  setenv("RSMALLOC_THP", "never", 1);
  setenv("RSMALLOC_STATS", "json", 1);
  setenv("RSMALLOC_BACKGROUND", "1", 1);
  Captured out;
  capture_stderr(&out, [] { return rs::load_config(); });
  ck_assert(out.result);
  ck_assert_msg(out.len == 0, "unexpected output: %s", out.text);
  ck_assert(rs::g_config.background);
  ck_assert(rs::g_config.disable);
  ck_assert(rs::g_config.verbose);
  ck_assert(rs::g_config.rseq == rs::RseqSetting::kOff);
  ck_assert_uint_eq(rs::g_config.cpu_cache_bytes, size_t{4} << 20);
  ck_assert_uint_eq(rs::g_config.decay_ms, 250);
  ck_assert(rs::g_config.thp == rs::ThpSetting::kNever);
  ck_assert(rs::g_config.stats == rs::StatsSetting::kJson);
}

END_TEST

START_TEST(boundary_values_accepted) {
  static const struct {
    const char* name;
    const char* value;
  } good[] = {
      {"RSMALLOC_CPU_CACHE", "8K"},     {"RSMALLOC_CPU_CACHE", "1G"},
      {"RSMALLOC_CPU_CACHE", "8192"},   {"RSMALLOC_DECAY_MS", "0"},
      {"RSMALLOC_DECAY_MS", "3600000"}, {"RSMALLOC_RSEQ", "auto"},
      {"RSMALLOC_RSEQ", "1"},           {"RSMALLOC_THP", "always"},
      {"RSMALLOC_THP", "auto"},         {"RSMALLOC_STATS", "0"},
      {"RSMALLOC_STATS", "1"},          {"RSMALLOC_DISABLE", "0"},
      {"RSMALLOC_BACKGROUND", "0"},     {"RSMALLOC_BACKGROUND", "1"},
      {"RSMALLOC_THP", "grown"},
  };

  for (const auto& g : good) {
    clear_environment();
    rs::g_config = rs::Config{};
    setenv(g.name, g.value, 1);
    Captured out;
    capture_stderr(&out, [] { return rs::load_config(); });
    ck_assert_msg(out.len == 0, "%s=%s reported: %s", g.name, g.value,
                  out.text);
  }
  clear_environment();
  rs::g_config = rs::Config{};
  setenv("RSMALLOC_CPU_CACHE", "8K", 1);
  setenv("RSMALLOC_DECAY_MS", "0", 1);
  setenv("RSMALLOC_THP", "always", 1);
  setenv("RSMALLOC_STATS", "1", 1);
  setenv("RSMALLOC_RSEQ", "auto", 1);
  rs::g_config.rseq = rs::RseqSetting::kOff;  // "auto" must set it back
  ck_assert(rs::load_config());
  ck_assert_uint_eq(rs::g_config.cpu_cache_bytes, 8192);
  ck_assert_uint_eq(rs::g_config.decay_ms, 0);
  ck_assert(rs::g_config.thp == rs::ThpSetting::kAlways);
  ck_assert(rs::g_config.stats == rs::StatsSetting::kText);
  ck_assert(rs::g_config.rseq == rs::RseqSetting::kAuto);
  // "0" sets it back too.
  rs::g_config.background = true;
  setenv("RSMALLOC_BACKGROUND", "0", 1);
  ck_assert(rs::load_config());
  ck_assert(!rs::g_config.background);
  setenv("RSMALLOC_CPU_CACHE", "1G", 1);
  setenv("RSMALLOC_DECAY_MS", "3600000", 1);
  ck_assert(rs::load_config());
  ck_assert_uint_eq(rs::g_config.cpu_cache_bytes, size_t{1} << 30);
  ck_assert_uint_eq(rs::g_config.decay_ms, 3600000);
}

END_TEST

START_TEST(print_config_shows_effective_values) {
  rs::g_config.decay_ms = 250;
  rs::g_config.cpu_cache_bytes = size_t{4} << 20;
  rs::g_config.thp = rs::ThpSetting::kNever;
  rs::g_config.stats = rs::StatsSetting::kJson;
  rs::g_config.rseq = rs::RseqSetting::kOff;
  rs::g_config.background = true;
  Captured out;
  capture_stderr(&out, [] {
    rs::print_config("test-mode");
    return true;
  });
  ck_assert_msg(strncmp(out.text, "rsmalloc: ", 10) == 0, "%s", out.text);
  ck_assert_ptr_nonnull(strstr(out.text, "test-mode"));
  ck_assert_ptr_nonnull(strstr(out.text, "RSMALLOC_DECAY_MS=250"));
  ck_assert_ptr_nonnull(strstr(out.text, "RSMALLOC_CPU_CACHE=4194304"));
  ck_assert_ptr_nonnull(strstr(out.text, "RSMALLOC_THP=never"));
  ck_assert_ptr_nonnull(strstr(out.text, "RSMALLOC_STATS=json"));
  ck_assert_ptr_nonnull(strstr(out.text, "RSMALLOC_RSEQ=0"));
  ck_assert_ptr_nonnull(strstr(out.text, "RSMALLOC_DISABLE=0"));
  ck_assert_ptr_nonnull(strstr(out.text, "RSMALLOC_BACKGROUND=1"));
  // Every line is prefixed, so it is clear where it came from.
  size_t lines = count_lines(out.text);
  ck_assert_uint_gt(lines, 0);
  ck_assert_uint_eq(count_substr(out.text, "rsmalloc: "), lines);
  ck_assert_int_eq(out.text[out.len - 1], '\n');
}

END_TEST

int main(void) {
  Suite* s = suite_create("settings");
  TCase* tc = tcase_create("parsers");
  tcase_add_test(tc, parse_bool_accepts_0_and_1);
  tcase_add_test(tc, parse_bool_rejects_the_rest);
  tcase_add_test(tc, parse_u64_accepts_decimal);
  tcase_add_test(tc, parse_u64_rejects_junk_and_overflow);
  tcase_add_test(tc, parse_size_accepts_suffixes);
  tcase_add_test(tc, parse_size_rejects_junk_and_overflow);
  suite_add_tcase(s, tc);
  tc = tcase_create("load_config");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, no_variables_keep_defaults_silently);
  tcase_add_test(tc, bad_value_reported_once_and_default_kept);
  tcase_add_test(tc, several_bad_values_each_reported_once);
  tcase_add_test(tc, good_values_take_effect);
  tcase_add_test(tc, boundary_values_accepted);
  tcase_add_test(tc, print_config_shows_effective_values);
  suite_add_tcase(s, tc);
  return rs_check_run(s, "test_settings");
}
