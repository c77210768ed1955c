// SPDX-License-Identifier: MIT
// Base layer: reading and checking the RSMALLOC_* settings.
#include "settings.h"

#include <stdlib.h>
#include <unistd.h>

#include <sys/auxv.h>

#include "config.h"
#include "log.h"
#include "os.h"

namespace rs {

Config g_config;

namespace {

bool equals(const char* a, const char* b) {
  while (*a != '\0' && *a == *b) {
    a++;
    b++;
  }
  return *a == *b;
}

void report(const char* name, const char* value, const char* expected) {
  Log log;
  log.str("rsmalloc: ignoring ").str(name).chr('=').str(value);
  log.str(": expected ").str(expected).str("; keeping the default\n");
}

/// Whether s starts with "MALLOC_" or "RSMALLOC_" (MALLOC_PERTURB_ and
/// every RSMALLOC_* setting), compared a character at a time with
/// immediates: no string constant is read.
bool ours(const char* s) {
  if (s[0] == 'R' && s[1] == 'S')
    s += 2;
  return s[0] == 'M' && s[1] == 'A' && s[2] == 'L' && s[3] == 'L' &&
         s[4] == 'O' && s[5] == 'C' && s[6] == '_';
}

/// Whether the environment holds a variable rsmalloc reads. One pass over
/// environ: nearly every process has none, and then makes none of the ten
/// lookups and reads no page of the library's .rodata at start-up.
bool any_setting() {
  for (char** e = environ; *e != nullptr; e++) {
    if (ours(*e))
      return true;
  }
  return false;
}

/// Looks `name` up; a setuid or setgid program sees nothing. secure_getenv
/// written out (AT_SECURE is what glibc's reads): one libc symbol fewer to
/// look up at load in every process.
const char* lookup(const char* name) {
  if (getauxval(AT_SECURE) != 0)
    return nullptr;
  size_t len = 0;
  while (name[len] != '\0') {
    len++;
    __asm__("" : "+r"(len));  // not a call of strlen (gcc sees the idiom)
  }
  for (char** e = environ; *e != nullptr; e++) {
    const char* v = *e;
    size_t i = 0;
    while (i < len && v[i] == name[i])
      i++;
    if (i == len && v[len] == '=')
      return v + len + 1;
  }
  return nullptr;
}

template <typename T, typename Parse>
void read_setting(const char* name,
                  T* field,
                  Parse parse,
                  const char* expected) {
  const char* value = lookup(name);
  if (value == nullptr)
    return;
  if (!parse(value, field))
    report(name, value, expected);
}

bool parse_rseq(const char* s, RseqSetting* out) {
  if (equals(s, "auto") || equals(s, "1")) {
    *out = RseqSetting::kAuto;
  } else if (equals(s, "0")) {
    *out = RseqSetting::kOff;
  } else {
    return false;
  }
  return true;
}

bool parse_thp(const char* s, ThpSetting* out) {
  if (equals(s, "auto")) {
    *out = ThpSetting::kAuto;
  } else if (equals(s, "always")) {
    *out = ThpSetting::kAlways;
  } else if (equals(s, "never")) {
    *out = ThpSetting::kNever;
  } else if (equals(s, "grown")) {
    *out = ThpSetting::kGrown;
  } else {
    return false;
  }
  return true;
}

bool parse_stats(const char* s, StatsSetting* out) {
  if (equals(s, "0")) {
    *out = StatsSetting::kOff;
  } else if (equals(s, "1")) {
    *out = StatsSetting::kText;
  } else if (equals(s, "json")) {
    *out = StatsSetting::kJson;
  } else {
    return false;
  }
  return true;
}

bool parse_cache_size(const char* s, size_t* out) {
  size_t v;
  // At least one page's worth, at most 1 GiB per CPU.
  if (!parse_size(s, &v) || v < kPageSize || v > (size_t{1} << 30)) {
    return false;
  }
  *out = v;
  return true;
}

bool parse_decay(const char* s, uint64_t* out) {
  uint64_t v;
  if (!parse_u64(s, &v) || v > 3600u * 1000u)
    return false;
  *out = v;
  return true;
}

const char* thp_name(ThpSetting t) {
  switch (t) {
    case ThpSetting::kAlways:
      return "always";
    case ThpSetting::kNever:
      return "never";
    case ThpSetting::kGrown:
      return "grown";
    case ThpSetting::kAuto:
      break;
  }
  return "auto";
}

const char* stats_name(StatsSetting s) {
  switch (s) {
    case StatsSetting::kText:
      return "1";
    case StatsSetting::kJson:
      return "json";
    case StatsSetting::kOff:
      break;
  }
  return "0";
}

}  // namespace

bool parse_bool(const char* s, bool* out) {
  if (equals(s, "0")) {
    *out = false;
  } else if (equals(s, "1")) {
    *out = true;
  } else {
    return false;
  }
  return true;
}

bool parse_u64(const char* s, uint64_t* out) {
  if (*s == '\0')
    return false;
  uint64_t v = 0;
  for (; *s != '\0'; s++) {
    if (*s < '0' || *s > '9')
      return false;
    uint64_t digit = static_cast<uint64_t>(*s - '0');
    if (v > (UINT64_MAX - digit) / 10)
      return false;
    v = v * 10 + digit;
  }
  *out = v;
  return true;
}

bool parse_size(const char* s, size_t* out) {
  char digits[24];
  size_t n = 0;
  while (s[n] >= '0' && s[n] <= '9') {
    if (n + 1 == sizeof(digits))
      return false;
    digits[n] = s[n];
    n++;
  }
  digits[n] = '\0';
  uint64_t v;
  if (!parse_u64(digits, &v))
    return false;
  unsigned shift = 0;
  const char* suffix = s + n;
  if (equals(suffix, "k") || equals(suffix, "K")) {
    shift = 10;
  } else if (equals(suffix, "m") || equals(suffix, "M")) {
    shift = 20;
  } else if (equals(suffix, "g") || equals(suffix, "G")) {
    shift = 30;
  } else if (*suffix != '\0') {
    return false;
  }
  if (shift != 0 && v > (UINT64_MAX >> shift))
    return false;
  *out = static_cast<size_t>(v << shift);
  return true;
}

bool parse_perturb(const char* s, int* out) {
  unsigned base = 10;
  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    s += 2;
  }
  if (*s == '\0')
    return false;
  unsigned v = 0;
  for (; *s != '\0'; s++) {
    unsigned digit;
    if (*s >= '0' && *s <= '9') {
      digit = static_cast<unsigned>(*s - '0');
    } else if (base == 16 && *s >= 'a' && *s <= 'f') {
      digit = static_cast<unsigned>(*s - 'a' + 10);
    } else if (base == 16 && *s >= 'A' && *s <= 'F') {
      digit = static_cast<unsigned>(*s - 'A' + 10);
    } else {
      return false;
    }
    if (digit >= base)
      return false;
    v = v * base + digit;
    if (v > 255)
      return false;
  }
  *out = static_cast<int>(v);
  return true;
}

bool load_config() {
  if (environ == nullptr)
    return false;
  if (!any_setting())
    return true;  // the defaults
  read_setting("RSMALLOC_DISABLE", &g_config.disable, parse_bool, "0 or 1");
  read_setting("RSMALLOC_VERBOSE", &g_config.verbose, parse_bool, "0 or 1");
  read_setting("RSMALLOC_RSEQ", &g_config.rseq, parse_rseq, "auto, 1 or 0");
  read_setting("RSMALLOC_CPU_CACHE", &g_config.cpu_cache_bytes,
               parse_cache_size, "a size from 8K to 1G, e.g. 2M");
  read_setting("RSMALLOC_DECAY_MS", &g_config.decay_ms, parse_decay,
               "milliseconds from 0 to 3600000");
  read_setting("RSMALLOC_THP", &g_config.thp, parse_thp,
               "auto, always, never or grown");
  read_setting("RSMALLOC_STATS", &g_config.stats, parse_stats, "0, 1 or json");
  read_setting("RSMALLOC_BACKGROUND", &g_config.background, parse_bool,
               "0 or 1");
  read_setting("RSMALLOC_HARDEN", &g_config.harden, parse_bool, "0 or 1");
  // glibc's variable, read as glibc reads it: not in setuid programs, and
  // a bad value is ignored silently.
  if (const char* perturb = lookup("MALLOC_PERTURB_"))
    parse_perturb(perturb, &g_config.perturb);
  return true;
}

void print_config(const char* cache_mode) {
  Log log;
  log.str("rsmalloc: version " PACKAGE_VERSION ", pid ");
  log.dec(static_cast<uint64_t>(os::pid()));
  log.str("\nrsmalloc: cache mode ").str(cache_mode);
  log.str("\nrsmalloc: RSMALLOC_DISABLE=").dec(g_config.disable);
  log.str(" RSMALLOC_RSEQ=");
  log.str(g_config.rseq == RseqSetting::kOff ? "0" : "auto");
  log.str(" RSMALLOC_CPU_CACHE=").dec(g_config.cpu_cache_bytes);
  log.str(" RSMALLOC_DECAY_MS=").dec(g_config.decay_ms);
  log.str(" RSMALLOC_THP=").str(thp_name(g_config.thp));
  log.str(" RSMALLOC_STATS=").str(stats_name(g_config.stats));
  log.str(" RSMALLOC_BACKGROUND=").dec(g_config.background).chr('\n');
  if (g_config.perturb != 0)
    log.str("rsmalloc: MALLOC_PERTURB_=").dec(g_config.perturb).chr('\n');
  if (g_config.harden)
    log.str("rsmalloc: RSMALLOC_HARDEN=1 (strict mode)\n");
}

}  // namespace rs
