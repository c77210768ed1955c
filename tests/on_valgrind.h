/* SPDX-License-Identifier: MIT */
/* rs_on_valgrind(): 1 when the test runs under valgrind (make
 * check-valgrind), where rsmalloc runs its locked fallback and a few
 * behaviours differ by design (rsmalloc(7), VALGRIND). */
#ifndef RS_TESTS_ON_VALGRIND_H
#define RS_TESTS_ON_VALGRIND_H

#include "config.h"

#ifdef RS_HAVE_VALGRIND
#  include <valgrind/valgrind.h>

static inline int rs_on_valgrind(void) {
  return RUNNING_ON_VALGRIND != 0;
}
#else
static inline int rs_on_valgrind(void) {
  return 0; /* built without client requests: nothing differs */
}
#endif

#endif
