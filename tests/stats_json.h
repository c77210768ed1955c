/* SPDX-License-Identifier: MIT */
/* rs_stat_bytes(): one number from rsmalloc_stats_json(), for the ABI
 * test programs (Check). */
#ifndef RS_TESTS_STATS_JSON_H
#define RS_TESTS_STATS_JSON_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rsmalloc.h"

/* The value of a field of rsmalloc_stats_json(), e.g. "released_bytes". */
static inline size_t rs_stat_bytes(const char* name) {
  static char buf[1 << 16];
  char key[64];
  size_t n = rsmalloc_stats_json(buf, sizeof buf);
  /* ck_abort_msg only on failure: Check's passing assertions allocate (in
   * fork mode they report where they are), which a caller measuring
   * malloc_trim's answer must not see. */
  if (n >= sizeof buf)
    ck_abort_msg("rsmalloc_stats_json needs %zu bytes", n);
  snprintf(key, sizeof key, "\"%s\": ", name);
  const char* at = strstr(buf, key);
  if (at == NULL)
    ck_abort_msg("no %s in %.200s", name, buf);
  return (size_t)strtoull(at + strlen(key), NULL, 10);
}

#endif
