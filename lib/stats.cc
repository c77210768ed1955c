// SPDX-License-Identifier: MIT
// Core layer: rendering statistics as text and JSON.
#include "stats.h"

#include <string.h>

#include "config.h"

namespace rs {
namespace {

void line(Log& log, const char* label, size_t bytes) {
  log.str("rsmalloc:   ").str(label).dec(bytes).str(" bytes (");
  log.dec(bytes >> 10).str(" KiB)\n");
}

void field(Log& log, const char* name, size_t value, bool comma = true) {
  log.chr('"').str(name).str("\": ").dec(value);
  if (comma)
    log.str(", ");
}

}  // namespace

void compute_stats(Stats* s, const StatsInputs& in) {
  memset(s, 0, sizeof(*s));
  for (size_t c = 1; c < kNumClasses; c++) {
    const CentralStats& cs = in.central[c];
    size_t allocated = cs.allocated < cs.capacity ? cs.allocated : cs.capacity;
    size_t cached = in.cached[c];
    if (cached > allocated)
      cached = allocated;  // racy reads
    size_t transfer = in.transfer[c];
    if (transfer > allocated - cached)
      transfer = allocated - cached;
    ClassStats& out = s->classes[c];
    out.in_use = allocated - cached - transfer;
    out.cached = cached;
    out.transfer = transfer;
    out.free = cs.capacity - allocated;
    out.spans = cs.spans;
    s->small_in_use_bytes += out.in_use * class_size(c);
    s->cpu_cache_bytes += cached * class_size(c);
    s->transfer_cache_bytes += transfer * class_size(c);
    // Free objects on system pages returned to the OS are not resident.
    size_t free_bytes = out.free * class_size(c);
    size_t released = cs.released < free_bytes ? cs.released : free_bytes;
    s->central_free_bytes += free_bytes - released;
    s->span_released_bytes += released;
  }
  const PageHeapStats& hs = in.heap;
  s->large_in_use_bytes = hs.large_bytes + hs.mapped_large_bytes;
  size_t held_large = in.held_large;  // freed, in the quarantine
  if (held_large > s->large_in_use_bytes)
    held_large = s->large_in_use_bytes;  // racy reads
  s->large_in_use_bytes -= held_large;
  s->in_use_bytes = s->small_in_use_bytes + s->large_in_use_bytes;
  size_t heap_released =
      hs.released_bytes < hs.free_bytes ? hs.released_bytes : hs.free_bytes;
  s->heap_free_bytes =
      hs.free_bytes - heap_released + in.cached_mappings + held_large;
  s->released_bytes = heap_released + s->span_released_bytes;
  s->metadata_bytes = hs.metadata_bytes;
  s->mapped_bytes = hs.heap_mapped_bytes + hs.mapped_large_bytes +
                    hs.metadata_bytes + in.cached_mappings;
  s->mapped_large_count = hs.mapped_large_count;
  s->mapped_large_bytes = hs.mapped_large_bytes;
  s->max_mapped_large_count = hs.max_mapped_large_count;
  s->max_mapped_large_bytes = hs.max_mapped_large_bytes;
  s->free_spans = hs.free_spans;
}

void format_stats_text(Log& log, const Stats& s, const char* cache_mode) {
  log.str("rsmalloc: statistics (cache mode ").str(cache_mode).str(")\n");
  line(log, "in use by the program:   ", s.in_use_bytes);
  line(log, "  small objects:         ", s.small_in_use_bytes);
  line(log, "  large allocations:     ", s.large_in_use_bytes);
  line(log, "cached in CPU caches:    ", s.cpu_cache_bytes);
  line(log, "held in transfer caches: ", s.transfer_cache_bytes);
  line(log, "free in central lists:   ", s.central_free_bytes);
  line(log, "free in page heap:       ", s.heap_free_bytes);
  line(log, "metadata:                ", s.metadata_bytes);
  line(log, "returned to the OS:      ", s.released_bytes);
  line(log, "  inside spans in use:   ", s.span_released_bytes);
  line(log, "mapped from the OS:      ", s.mapped_bytes);
  log.str(
      "rsmalloc:   resident estimate = in use + cached + free in lists "
      "and heap + metadata = ");
  log.dec(s.in_use_bytes + s.cpu_cache_bytes + s.transfer_cache_bytes +
          s.central_free_bytes + s.heap_free_bytes + s.metadata_bytes);
  log.str(
      " bytes\nrsmalloc:   class     size    in use    cached      free"
      "     spans\n");
  for (size_t c = 1; c < kNumClasses; c++) {
    const ClassStats& cs = s.classes[c];
    if (cs.spans == 0 && cs.cached == 0)
      continue;
    log.str("rsmalloc:   ").dec(c).str(" ").dec(class_size(c)).str(" ");
    log.dec(cs.in_use).str(" ").dec(cs.cached).str(" ").dec(cs.free);
    log.str(" ").dec(cs.spans).chr('\n');
  }
}

void format_stats_json(Log& log,
                       const Stats& s,
                       const char* cache_mode,
                       const char* version) {
  log.str("{\"version\": \"");
  log.str(version != nullptr ? version : PACKAGE_VERSION);
  log.str("\", \"cache_mode\": \"").str(cache_mode).str("\", ");
  field(log, "in_use_bytes", s.in_use_bytes);
  field(log, "small_in_use_bytes", s.small_in_use_bytes);
  field(log, "large_in_use_bytes", s.large_in_use_bytes);
  field(log, "cpu_cache_bytes", s.cpu_cache_bytes);
  field(log, "transfer_cache_bytes", s.transfer_cache_bytes);
  field(log, "central_free_bytes", s.central_free_bytes);
  field(log, "heap_free_bytes", s.heap_free_bytes);
  field(log, "released_bytes", s.released_bytes);
  field(log, "span_released_bytes", s.span_released_bytes);
  field(log, "metadata_bytes", s.metadata_bytes);
  field(log, "mapped_bytes", s.mapped_bytes);
  field(log, "mapped_large_count", s.mapped_large_count);
  field(log, "mapped_large_bytes", s.mapped_large_bytes);
  log.str("\"classes\": [");
  bool first = true;
  for (size_t c = 1; c < kNumClasses; c++) {
    const ClassStats& cs = s.classes[c];
    if (cs.spans == 0 && cs.cached == 0 && cs.transfer == 0)
      continue;
    if (!first)
      log.str(", ");
    first = false;
    log.chr('{');
    field(log, "class", c);
    field(log, "size", class_size(c));
    field(log, "in_use", cs.in_use);
    field(log, "cached", cs.cached);
    field(log, "transfer", cs.transfer);
    field(log, "free", cs.free);
    field(log, "spans", cs.spans, false);
    log.chr('}');
  }
  log.str("]}");
}

}  // namespace rs
