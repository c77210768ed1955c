// SPDX-License-Identifier: MIT
// Facade: statistics and glibc's reporting and tuning functions
// (mallinfo2, malloc_stats, malloc_info, mallopt), or glibc's own when
// rsmalloc is disabled.
#include <dlfcn.h>
#include <errno.h>
#include <string.h>

#include "allocator.h"
#include "central_list.h"
#include "glibc.h"
#include "init.h"
#include "large.h"
#include "log.h"
#include "page_heap.h"
#include "transfer_cache.h"
#include "valgrind.h"

namespace rs {

void collect_stats(Stats* s) {
  StatsInputs in;
  for (size_t c = 1; c < kNumClasses; c++) {
    in.central[c] = g_central[c].stats();
    // Under valgrind freed blocks wait in the quarantine: held, not in use.
    in.cached[c] = g_cpu_cache.cached_objects(c) +
                   vg::g_quarantine.held(static_cast<uint8_t>(c));
    in.transfer[c] = g_transfer[c].count();
  }
  in.heap = g_page_heap.stats();
  in.heap.metadata_bytes += transfer_mapped_bytes();
  in.held_large = vg::g_quarantine.held(0);
  in.cached_mappings = large_cached_bytes();
  compute_stats(s, in);
}

struct mallinfo2 mallinfo2() {
  ensure_init();
  if (g_disabled)
    return glibc::mallinfo2();
  Stats s;
  collect_stats(&s);
  // glibc's split: arena and uordblks exclude blocks with their own
  // mapping, which hblks and hblkhd count.
  struct mallinfo2 mi = {};
  mi.arena = s.mapped_bytes - s.mapped_large_bytes;
  mi.ordblks = s.free_spans;
  mi.hblks = s.mapped_large_count;
  mi.hblkhd = s.mapped_large_bytes;
  mi.uordblks = s.in_use_bytes - s.mapped_large_bytes;
  mi.fordblks = s.cpu_cache_bytes + s.transfer_cache_bytes +
                s.central_free_bytes + s.heap_free_bytes;
  mi.fsmblks = s.cpu_cache_bytes + s.transfer_cache_bytes;
  mi.keepcost = 0;
  return mi;
}

namespace {

/// One "label = %10zu" line of glibc's malloc_stats.
void glibc_line(Log& log, const char* label, size_t value) {
  char digits[24];
  Log d(digits, sizeof(digits));
  d.dec(value);
  log.str(label).str(" = ");
  for (size_t pad = d.total(); pad < 10; pad++)
    log.chr(' ');
  log.str(digits, d.total()).chr('\n');
}

}  // namespace

void print_malloc_stats() {
  ensure_init();
  if (g_disabled) {
    glibc::malloc_stats();
    return;
  }
  Stats s;
  collect_stats(&s);
  Log log;
  // glibc's lines first, which programs and test suites search for: rsmalloc
  // has one heap, reported as arena 0, then the totals with the blocks that
  // have their own mapping. Numbers are not cut to 32 bits as glibc's are.
  size_t heap_in_use = s.in_use_bytes - s.mapped_large_bytes;
  size_t heap_system = s.mapped_bytes - s.mapped_large_bytes;
  log.str("Arena 0:\n");
  glibc_line(log, "system bytes    ", heap_system);
  glibc_line(log, "in use bytes    ", heap_in_use);
  log.str("Total (incl. mmap):\n");
  glibc_line(log, "system bytes    ", s.mapped_bytes);
  glibc_line(log, "in use bytes    ", s.in_use_bytes);
  glibc_line(log, "max mmap regions", s.max_mapped_large_count);
  glibc_line(log, "max mmap bytes  ", s.max_mapped_large_bytes);
  format_stats_text(log, s, cache_mode());
}

namespace {

/// Where malloc_info's text goes: fwrite, remembering a failure.
struct InfoSink {
  FILE* fp;  // the caller's stream
  bool ok;   // every fwrite took all its bytes
};

using Fwrite = size_t (*)(const void*, size_t, size_t, FILE*);

// fwrite, found at the first malloc_info: named in the library it would be
// a symbol lookup at load in every process.
Fwrite g_fwrite;

void info_write(void* ctx, const char* text, size_t len) {
  InfoSink* sink = static_cast<InfoSink*>(ctx);
  Fwrite fn = __atomic_load_n(&g_fwrite, __ATOMIC_RELAXED);
  if (fn == nullptr) {
    fn = reinterpret_cast<Fwrite>(dlsym(RTLD_DEFAULT, "fwrite"));
    __atomic_store_n(&g_fwrite, fn, __ATOMIC_RELAXED);
  }
  // stdio may allocate: no allocator lock is held here.
  if (fn == nullptr || fn(text, 1, len, sink->fp) != len)
    sink->ok = false;
}

/// The <total>, <system> and <aspace> elements of a heap or of the whole.
void info_totals(Log& x, const Stats& s, bool whole) {
  x.str("<total type=\"fast\" count=\"0\" size=\"0\"/>\n");
  x.str("<total type=\"rest\" count=\"").dec(s.free_spans).str("\" size=\"");
  x.dec(s.cpu_cache_bytes + s.transfer_cache_bytes + s.central_free_bytes +
        s.heap_free_bytes);
  x.str("\"/>\n");
  if (whole) {
    x.str("<total type=\"mmap\" count=\"").dec(s.mapped_large_count);
    x.str("\" size=\"").dec(s.mapped_large_bytes).str("\"/>\n");
  }
  x.str("<system type=\"current\" size=\"").dec(s.mapped_bytes);
  x.str("\"/>\n<system type=\"max\" size=\"").dec(s.mapped_bytes);
  x.str("\"/>\n<aspace type=\"total\" size=\"").dec(s.mapped_bytes);
  x.str("\"/>\n<aspace type=\"mprotect\" size=\"").dec(s.mapped_bytes);
  x.str("\"/>\n");
}

}  // namespace

int malloc_info(int options, FILE* fp) {
  if (options != 0)
    return EINVAL;  // glibc's answer, errno untouched
  ensure_init();
  if (g_disabled)
    return glibc::malloc_info(options, fp);
  Stats s;
  collect_stats(&s);
  // glibc's shape: <malloc version="1"><heap nr="0">...</heap>...</malloc>,
  // streamed in pieces: one line per size class has no fixed bound.
  InfoSink sink = {fp, true};
  {
    Log x(info_write, &sink);
    x.str("<malloc version=\"1\">\n<heap nr=\"0\">\n<sizes>\n");
    for (size_t c = 1; c < kNumClasses; c++) {
      size_t free_objects =
          s.classes[c].free + s.classes[c].cached + s.classes[c].transfer;
      if (free_objects == 0)
        continue;
      x.str("  <size from=\"").dec(c > 1 ? class_size(c - 1) + 1 : 1);
      x.str("\" to=\"").dec(class_size(c)).str("\" total=\"");
      x.dec(free_objects * class_size(c)).str("\" count=\"").dec(free_objects);
      x.str("\"/>\n");
    }
    x.str("</sizes>\n");
    info_totals(x, s, false);
    x.str("</heap>\n");
    info_totals(x, s, true);
    x.str("</malloc>\n");
  }  // the Log's destructor hands over the last piece
  return sink.ok ? 0 : -1;
}

int mallopt(int param, int value) {
  ensure_init();
  if (g_disabled)
    return glibc::mallopt(param, value);
  switch (param) {
    case M_MMAP_THRESHOLD:
      // glibc caps it at 32 MiB on 64-bit; below the small limit it has no
      // meaning here.
      if (value < 0 || static_cast<size_t>(value) > (size_t{32} << 20))
        return 0;
      __atomic_store_n(&g_map_threshold,
                       static_cast<size_t>(value) > kMaxSmallSize
                           ? static_cast<size_t>(value)
                           : kMaxSmallSize + 1,
                       __ATOMIC_RELAXED);
      return 1;
    case M_PERTURB:
      set_perturb(value);
      return 1;
    case M_TRIM_THRESHOLD:
      // glibc: free memory at the top of the heap beyond this is trimmed.
      // Here: the free pages kept resident beyond a quarter of what is in
      // use before the rest goes back at once.
      if (value < 0)
        return 0;
      g_page_heap.set_min_slack(static_cast<size_t>(value));
      return 1;
    case M_MXFAST:
      // glibc's fastbin limit (at most 160 bytes on 64-bit); rsmalloc has
      // no fastbins.
      return value >= 0 && value <= 160 ? 1 : 0;
    case M_TOP_PAD:
    case M_MMAP_MAX:
    case M_CHECK_ACTION:
    case M_ARENA_TEST:
    case M_ARENA_MAX:
      return 1;  // glibc tuning with no counterpart here: accepted, no effect
    default:
      return 0;  // unknown parameters
  }
}

size_t stats_json(char* buf, size_t len) {
  ensure_init();
  Stats s;
  collect_stats(&s);
  Log log(buf, len);
  format_stats_json(log, s, cache_mode());
  log.terminate();
  return log.total();
}

}  // namespace rs
