// SPDX-License-Identifier: MIT
// ABI layer: the rsmalloc_* extension API declared in rsmalloc.h.
#include "allocator.h"
#include "config.h"
#include "rsmalloc.h"

extern "C" {

RS_EXPORT const char* rsmalloc_version(void) {
  return PACKAGE_VERSION;
}

RS_EXPORT size_t rsmalloc_usable_size(const void* p) {
  return rs::usable_size(p);
}

RS_EXPORT const char* rsmalloc_cache_mode(void) {
  return rs::cache_mode();
}

RS_EXPORT int rsmalloc_owns(const void* p) {
  return rs::owns(p) ? 1 : 0;
}

RS_EXPORT size_t rsmalloc_stats_json(char* buf, size_t len) {
  return rs::stats_json(buf, len);
}

}  // extern "C"
