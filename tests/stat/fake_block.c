// SPDX-License-Identifier: MIT
// A stand-in librsmalloc for tests/stat/stat-errors.sh: it exports only an
// introspection block of a layout no rsmalloc has (999), which
// `rsmalloc stat` must refuse with its own message.
#include <stdint.h>

static const struct {
  uint64_t magic;     // "rsmalloc", as the real block's
  uint32_t layout;    // a layout this tool cannot read
  uint32_t size;      // the real block's fields stop mattering here
  uint64_t rest[64];  // room: the tool reads a whole block
} kBlock = {0x636f6c6c616d7372u, 999, 8 + 4 + 4 + 64 * 8, {0}};

__attribute__((visibility("default")))
const void* const rsmalloc_introspection = &kBlock;
