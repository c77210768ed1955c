// SPDX-License-Identifier: MIT
// ABI layer: the rsmalloc_* extension API declared in rsmalloc.h.
#include "allocator.h"
#include "config.h"
#include "introspect.h"
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

/// Where `rsmalloc stat` (tools/) finds the introspection block: it looks
/// this symbol up in the library's dynamic symbol table and reads it from
/// outside the process. Not declared in rsmalloc.h: not for programs.
extern RS_EXPORT const rs::Introspection* const rsmalloc_introspection;
const rs::Introspection* const rsmalloc_introspection = &rs::g_introspection;

}  // extern "C"
