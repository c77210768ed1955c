// SPDX-License-Identifier: MIT
// rsmalloc-stat: reading one process (target.h). Against libc only.
#include "stat/target.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/stat.h>
#include <sys/uio.h>

#include "central_list.h"
#include "config.h"
#include "page_heap.h"
#include "size_class.h"
#include "transfer_cache.h"

namespace rs::inspect {

namespace {

/// Opens the library as the target sees it (through its root directory,
/// for a process in a container), or as we see it.
int open_library(pid_t pid, const char* path) {
  char in_root[4096 + 64];
  snprintf(in_root, sizeof(in_root), "/proc/%d/root%s", static_cast<int>(pid),
           path);
  int fd = open(in_root, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    fd = open(path, O_RDONLY | O_CLOEXEC);
  return fd;
}

bool pread_all(int fd, void* buf, size_t len, uint64_t offset) {
  return pread(fd, buf, len, static_cast<off_t>(offset)) ==
         static_cast<ssize_t>(len);
}

}  // namespace

const char* short_error(Error e) {
  switch (e) {
    case Error::kPermission:
      return "no access";
    case Error::kNoBlock:
    case Error::kLayout:
      return "other version";
    case Error::kExited:
    case Error::kNoProcess:
      return "exited";
    case Error::kNotReady:
      return "starting";
    case Error::kDisabled:
      return "disabled";
    default:
      return "error";
  }
}

bool Target::fail(Error e, const char* fmt, ...) {
  error_ = e;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message_, sizeof(message_), fmt, ap);
  va_end(ap);
  return false;
}

bool Target::gone() const {
  char dir[64];
  snprintf(dir, sizeof(dir), "/proc/%d/stat", static_cast<int>(pid_));
  struct stat st;
  if (stat(dir, &st) != 0)
    return true;
  // A zombie has no memory left to read.
  FILE* f = fopen(dir, "r");
  if (f == nullptr)
    return true;
  char line[512];
  bool zombie = false;
  if (fgets(line, sizeof(line), f) != nullptr) {
    const char* paren = strrchr(line, ')');
    zombie = paren != nullptr && (paren[1] == ' ') &&
             (paren[2] == 'Z' || paren[2] == 'X');
  }
  fclose(f);
  return zombie;
}

bool Target::read(uint64_t where, void* buf, size_t len) {
  struct iovec local = {buf, len};
  struct iovec remote = {reinterpret_cast<void*>(where), len};
  ssize_t got = process_vm_readv(pid_, &local, 1, &remote, 1, 0);
  if (got == static_cast<ssize_t>(len))
    return true;
  int err = got < 0 ? errno : EFAULT;
  if (err == EPERM || err == EACCES)
    return fail(Error::kPermission,
                "permission denied reading process %d (ptrace rules: the same "
                "user, or root; see kernel.yama.ptrace_scope)",
                static_cast<int>(pid_));
  if (err == ESRCH || gone())
    return fail(Error::kExited, "process %d exited while being read",
                static_cast<int>(pid_));
  if (err == EFAULT)
    return fail(Error::kExited,
                "process %d changed while being read (its rsmalloc memory is "
                "gone: did it exec?)",
                static_cast<int>(pid_));
  return fail(Error::kOther, "cannot read process %d: %s",
              static_cast<int>(pid_), strerror(err));
}

/// Reads until two reads in a row agree, so that a structure that its
/// owner updates under a lock is not seen half-written. After many
/// disagreeing reads the last one is kept: compute_stats clamps what a
/// racy read could make impossible.
bool Target::read_stable(uint64_t where, void* buf, size_t len) {
  char again[4096];
  if (len > sizeof(again))
    return fail(Error::kOther, "internal: read of %zu bytes", len);
  if (!read(where, buf, len))
    return false;
  for (int i = 0; i < 1000; i++) {
    if (!read(where, again, len))
      return false;
    if (memcmp(buf, again, len) == 0)
      return true;
    memcpy(buf, again, len);
  }
  return true;
}

bool Target::read_string(uint64_t where, char* buf, size_t len) {
  // A string may end just before an unmapped page: read up to it.
  size_t room = 4096 - (where & 4095);
  size_t n = len - 1 < room ? len - 1 : room;
  if (!read(where, buf, n))
    return false;
  buf[n] = '\0';
  return true;
}

bool Target::find_library() {
  char name[64];
  snprintf(name, sizeof(name), "/proc/%d/maps", static_cast<int>(pid_));
  FILE* maps = fopen(name, "r");
  if (maps == nullptr) {
    if (errno == ENOENT || errno == ESRCH)
      return fail(Error::kNoProcess, "no process with PID %d",
                  static_cast<int>(pid_));
    if (errno == EACCES || errno == EPERM)
      return fail(Error::kPermission,
                  "permission denied reading process %d (ptrace rules: the "
                  "same user, or root; see kernel.yama.ptrace_scope)",
                  static_cast<int>(pid_));
    return fail(Error::kOther, "cannot read %s: %s", name, strerror(errno));
  }
  char line[4096 + 256];
  bool found = false;
  while (!found && fgets(line, sizeof(line), maps) != nullptr) {
    unsigned long long start, end, offset;
    int path_at = -1;
    if (sscanf(line, "%llx-%llx %*s %llx %*s %*s %n", &start, &end, &offset,
               &path_at) < 3 ||
        path_at < 0 || line[path_at] != '/')
      continue;
    char* path = line + path_at;
    path[strcspn(path, "\n")] = '\0';
    const char* base = strrchr(path, '/') + 1;
    if (strncmp(base, "librsmalloc.so", 14) != 0 ||
        (base[14] != '\0' && base[14] != '.' && base[14] != ' '))
      continue;
    if (offset != 0)
      continue;
    char* deleted = strstr(path, " (deleted)");
    if (deleted != nullptr)
      *deleted = '\0';
    snprintf(path_, sizeof(path_), "%s", path);
    base_ = start;
    found = true;
  }
  bool failed = ferror(maps) != 0;
  fclose(maps);
  if (failed)
    return fail(Error::kExited, "process %d exited while being read",
                static_cast<int>(pid_));
  if (!found) {
    if (gone())
      return fail(Error::kNoProcess, "no process with PID %d",
                  static_cast<int>(pid_));
    return fail(Error::kNotRsmalloc, "process %d does not use rsmalloc",
                static_cast<int>(pid_));
  }
  return true;
}

/// Looks name up in the library's dynamic symbol table (from its file) and
/// gives its address in the target.
bool Target::lookup_symbol(const char* name, uint64_t* value) {
  int fd = open_library(pid_, path_);
  if (fd < 0)
    return fail(Error::kOther, "process %d: cannot open %s: %s",
                static_cast<int>(pid_), path_, strerror(errno));
  Elf64_Ehdr eh;
  bool ok = pread_all(fd, &eh, sizeof(eh), 0) &&
            memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0 &&
            eh.e_ident[EI_CLASS] == ELFCLASS64 &&
            eh.e_shentsize == sizeof(Elf64_Shdr) &&
            eh.e_phentsize == sizeof(Elf64_Phdr);
  if (!ok) {
    close(fd);
    return fail(Error::kLayout, "process %d: %s is not a 64-bit ELF library",
                static_cast<int>(pid_), path_);
  }
  // The load bias: the mapping at file offset 0 is the first PT_LOAD.
  uint64_t first_vaddr = UINT64_MAX;
  for (unsigned i = 0; ok && i < eh.e_phnum; i++) {
    Elf64_Phdr ph;
    ok = pread_all(fd, &ph, sizeof(ph), eh.e_phoff + i * sizeof(ph));
    if (ok && ph.p_type == PT_LOAD && ph.p_vaddr < first_vaddr)
      first_vaddr = ph.p_vaddr & ~uint64_t{4095};
  }
  bool found = false;
  for (unsigned i = 0; ok && !found && i < eh.e_shnum; i++) {
    Elf64_Shdr sh, strs;
    ok = pread_all(fd, &sh, sizeof(sh), eh.e_shoff + i * sizeof(sh));
    if (!ok || sh.sh_type != SHT_DYNSYM || sh.sh_entsize != sizeof(Elf64_Sym))
      continue;
    ok = sh.sh_link < eh.e_shnum &&
         pread_all(fd, &strs, sizeof(strs),
                   eh.e_shoff + sh.sh_link * sizeof(strs));
    size_t want = strlen(name) + 1;
    for (uint64_t k = 0; ok && !found && k < sh.sh_size / sizeof(Elf64_Sym);
         k++) {
      Elf64_Sym sym;
      char text[64];
      ok = pread_all(fd, &sym, sizeof(sym), sh.sh_offset + k * sizeof(sym));
      if (!ok || sym.st_shndx == SHN_UNDEF || sym.st_name + want > strs.sh_size)
        continue;
      if (!pread_all(fd, text, want, strs.sh_offset + sym.st_name))
        continue;
      if (memcmp(text, name, want) == 0) {
        *value = base_ - first_vaddr + sym.st_value;
        found = true;
      }
    }
  }
  close(fd);
  if (!found || first_vaddr == UINT64_MAX)
    return fail(Error::kNoBlock,
                "process %d runs an rsmalloc without the introspection block "
                "(%s: an older version?)",
                static_cast<int>(pid_), path_);
  return true;
}

bool Target::check_layout(const Introspection& d) {
  if (d.magic != rs::kIntrospectMagic)
    return fail(Error::kLayout,
                "process %d: the rsmalloc introspection block is not "
                "recognisable",
                static_cast<int>(pid_));
  if (d.layout != rs::kIntrospectLayout || d.size != sizeof(Introspection))
    return fail(Error::kLayout,
                "process %d runs rsmalloc with statistics layout %u; this "
                "tool (rsmalloc %s) reads layout %u",
                static_cast<int>(pid_), d.layout, PACKAGE_VERSION,
                rs::kIntrospectLayout);
  if (!d.ready)
    return fail(Error::kNotReady, "process %d has not initialised rsmalloc yet",
                static_cast<int>(pid_));
  // The layout as this build knows it; a mismatch means a layout change that
  // forgot its bump.
  bool same =
      d.num_classes == rs::kNumClasses && d.config_size == sizeof(rs::Config) &&
      d.class_info_size == sizeof(rs::ClassInfo) &&
      d.central_stride == sizeof(rs::CentralList) &&
      d.central_stats_size == sizeof(rs::CentralStats) &&
      d.central_stats + sizeof(rs::CentralStats) <= d.central_stride &&
      d.heap_stats_size == sizeof(rs::PageHeapStats) &&
      d.num_cpus <= rs::rseq::kMaxCpus &&
      d.region_shift == rs::rseq::kRegionShift &&
      d.header_size == sizeof(rs::rseq::Header) &&
      d.header_current == offsetof(rs::rseq::Header, current) &&
      d.state_size == sizeof(rs::rseq::CpuState) &&
      d.state_initialised == offsetof(rs::rseq::CpuState, initialised) &&
      d.transfer_stride == sizeof(rs::TransferCache) &&
      d.transfer_count + sizeof(uint32_t) <= d.transfer_stride;
  if (same) {
    rs::ClassInfo classes[rs::kNumClasses];
    if (!read(d.class_info, classes, sizeof(classes)))
      return false;
    for (size_t c = 1; c < rs::kNumClasses; c++)
      same = same && classes[c].size == rs::class_size(c);
  }
  if (!same)
    return fail(Error::kLayout,
                "process %d runs rsmalloc with another layout of its "
                "statistics than this tool (rsmalloc %s) reads",
                static_cast<int>(pid_), PACKAGE_VERSION);
  return true;
}

/// Objects in each class's CPU caches and bytes per CPU: current - begin
/// of every laid-out region, as CpuCache::cached_objects counts them.
bool Target::read_caches(const Introspection& d,
                         rs::StatsInputs* in,
                         Snapshot* out) {
  out->num_cpus = d.num_cpus;
  if (d.cache_mode == static_cast<uint64_t>(rs::rseq::Mode::kNone) ||
      d.regions == 0 || d.states == 0)
    return true;
  static rs::rseq::CpuState states[rs::rseq::kMaxCpus];
  if (!read(d.states, states, d.num_cpus * sizeof(states[0])))
    return false;
  for (size_t cpu = 0; cpu < d.num_cpus; cpu++) {
    bool initialised;
    memcpy(&initialised,
           reinterpret_cast<const char*>(&states[cpu]) + d.state_initialised,
           sizeof(bool));
    if (!initialised)
      continue;
    rs::rseq::Header headers[rs::kNumClasses];
    if (!read(d.regions + (uint64_t{cpu} << d.region_shift), headers,
              sizeof(headers)))
      return false;
    out->cpu_used[cpu] = true;
    for (size_t c = 1; c < rs::kNumClasses; c++) {
      // A class's slots begin at its starter slots or at its home slots
      // (the block's `begins`, kept for older readers): the header's begin
      // says which. A stopped or not yet laid out header counts nothing.
      uint16_t cur = headers[c].current;
      uint16_t begin = headers[c].begin;
      if (begin == rs::rseq::kStopped || cur <= begin)
        continue;
      in->cached[c] += cur - begin;
      out->cpu_bytes[cpu] += (cur - begin) * rs::class_size(c);
    }
  }
  return true;
}

bool Target::snapshot(Snapshot* out) {
  memset(&out->stats, 0, sizeof(out->stats));
  out->config = rs::Config();
  out->num_cpus = 0;
  memset(out->cpu_bytes, 0, sizeof(out->cpu_bytes));
  memset(out->cpu_used, 0, sizeof(out->cpu_used));
  if (!find_library())
    return false;
  uint64_t symbol = 0;
  if (!lookup_symbol("rsmalloc_introspection", &symbol))
    return false;
  // For the tests: a window in which the target can exit mid-read.
  if (const char* pause = getenv("RSMALLOC_STAT_TEST_PAUSE_MS")) {
    long ms = atol(pause);
    struct timespec ts = {ms / 1000, ms % 1000 * 1000000};
    nanosleep(&ts, nullptr);
  }
  uint64_t block;
  Introspection d;
  // The block is written at start-up (and again if the settings arrive
  // late): read it until two reads agree, like the counters.
  if (!read(symbol, &block, sizeof(block)) ||
      !read_stable(block, &d, sizeof(d)) || !check_layout(d))
    return false;
  bool disabled;
  if (!read(d.disabled, &disabled, sizeof(disabled)))
    return false;
  if (disabled)
    return fail(Error::kDisabled,
                "process %d runs rsmalloc with RSMALLOC_DISABLE=1: glibc's "
                "malloc serves it",
                static_cast<int>(pid_));
  uint64_t mode;
  if (!read_string(d.version, out->version, sizeof(out->version)) ||
      !read(d.mode, &mode, sizeof(mode)) ||
      !read_string(mode, out->mode, sizeof(out->mode)) ||
      !read_stable(d.config, &out->config, sizeof(out->config)))
    return false;
  static rs::StatsInputs in;
  memset(&in, 0, sizeof(in));
  for (size_t c = 1; c < rs::kNumClasses; c++) {
    uint64_t at = d.central + c * d.central_stride + d.central_stats;
    if (!read_stable(at, &in.central[c], sizeof(in.central[c])))
      return false;
  }
  size_t span_bytes, leaf_bytes;
  size_t held[256];
  if (!read_stable(d.heap_stats, &in.heap, sizeof(in.heap)) ||
      !read(d.span_bytes, &span_bytes, sizeof(span_bytes)) ||
      !read(d.leaf_bytes, &leaf_bytes, sizeof(leaf_bytes)) ||
      !read(d.mapping_bytes, &in.cached_mappings, sizeof(size_t)) ||
      !read(d.quarantine_held, held, sizeof(held)))
    return false;
  size_t transfer_bytes;
  if (!read(d.transfer_bytes, &transfer_bytes, sizeof(transfer_bytes)))
    return false;
  in.heap.metadata_bytes = span_bytes + leaf_bytes + transfer_bytes;
  in.held_large = held[0];
  for (size_t c = 1; c < rs::kNumClasses; c++) {
    uint32_t moving;
    uint64_t at = d.transfer + c * d.transfer_stride + d.transfer_count;
    if (!read(at, &moving, sizeof(moving)))
      return false;
    in.cached[c] = held[c];
    in.transfer[c] = moving;
  }
  if (!read_caches(d, &in, out))
    return false;
  rs::compute_stats(&out->stats, in);
  return true;
}

}  // namespace rs::inspect
