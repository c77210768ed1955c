// SPDX-License-Identifier: MIT
// Placeholder replaced below.
#include "../check_main.h"
#include "size_class.h"

START_TEST(test_size_classes) {
  ck_assert_uint_eq(rs::class_size(rs::size_class_of(1)), 16);
}

END_TEST
int main(void) {
  Suite* s = suite_create("core");
  TCase* tc = tcase_create("size_class");
  tcase_add_test(tc, test_size_classes);
  suite_add_tcase(s, tc);
  return rs_check_run(s, "test_core");
}
