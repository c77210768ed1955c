// SPDX-License-Identifier: MIT
// rsmalloc-stat: the helper behind `rsmalloc stat PID` and `rsmalloc top`
// (tools/rsmalloc). Reads a running process's rsmalloc statistics from
// outside: finds librsmalloc in /proc/PID/maps, the introspection block
// through the library's dynamic symbol table (lib/introspect.h), and the
// counters with process_vm_readv. No signal, no stop, nothing run in the
// target. Computes and prints the figures with the library's own code
// (lib/stats.cc). Against libc only.
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
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
#include "introspect.h"
#include "log.h"
#include "page_heap.h"
#include "rseq/cpu_cache.h"
#include "settings.h"
#include "size_class.h"
#include "stats.h"

namespace {

using rs::Introspection;

/// Why a process could not be read; each has its own one-line message.
enum class Error {
  kNone,
  kNoProcess,    // no such PID
  kPermission,   // ptrace rules refuse access
  kNotRsmalloc,  // no librsmalloc mapped
  kNoBlock,      // an rsmalloc without the introspection block
  kLayout,       // another layout of the block
  kExited,       // exited (or exec'd) while being read
  kNotReady,     // rsmalloc loaded but not initialised yet
  kDisabled,     // RSMALLOC_DISABLE=1: glibc serves it
  kOther,        // anything else (the message says what)
};

/// The short form of an error for `rsmalloc top`'s table.
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

/// What one read of a process gives.
struct Snapshot {
  rs::Stats stats;                       // the figures, as collect_stats gives
  rs::Config config;                     // the settings in force
  char version[64];                      // the library's version
  char mode[128];                        // its cache mode
  size_t num_cpus;                       // CPU cache regions
  size_t cpu_bytes[rs::rseq::kMaxCpus];  // cached bytes per CPU
  bool cpu_used[rs::rseq::kMaxCpus];     // region laid out
};

/// A process being read. Every failure records an Error and a message.
class Target {
 public:
  explicit Target(pid_t pid) : pid_(pid) {}

  Error error() const { return error_; }

  const char* message() const { return message_; }

  pid_t pid() const { return pid_; }

  /// Finds the library and the block, and reads a consistent snapshot.
  bool snapshot(Snapshot* out);

  /// Finds librsmalloc in the maps: its path and load address. False with
  /// kNotRsmalloc when there is none.
  bool find_library();

 private:
  bool fail(Error e, const char* fmt, ...)
      __attribute__((format(printf, 3, 4)));
  bool read(uint64_t where, void* buf, size_t len);
  bool read_stable(uint64_t where, void* buf, size_t len);
  bool read_string(uint64_t where, char* buf, size_t len);
  bool lookup_symbol(const char* name, uint64_t* value);
  bool check_layout(const Introspection& d);
  bool read_caches(const Introspection& d, rs::StatsInputs* in, Snapshot* out);
  bool gone() const;

  pid_t pid_;
  Error error_ = Error::kNone;
  char message_[512] = {};
  char path_[4096] = {};  // the library file, as the maps name it
  uint64_t base_ = 0;     // where its first page is mapped
};

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
  // Layout 1 as this build knows it; a mismatch means a layout change that
  // forgot its bump.
  bool same = d.num_classes == rs::kNumClasses &&
              d.config_size == sizeof(rs::Config) &&
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
              d.state_initialised == offsetof(rs::rseq::CpuState, initialised);
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
  uint16_t begins[rs::kNumClasses];
  if (!read(d.begins, begins, sizeof(begins)))
    return false;
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
      uint16_t cur = headers[c].current;
      // A stopped or not yet laid out header counts nothing.
      if (cur > begins[c] && begins[c] != rs::rseq::kStopped) {
        in->cached[c] += cur - begins[c];
        out->cpu_bytes[cpu] += (cur - begins[c]) * rs::class_size(c);
      }
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
  in.heap.metadata_bytes = span_bytes + leaf_bytes;
  in.held_large = held[0];
  for (size_t c = 1; c < rs::kNumClasses; c++)
    in.cached[c] = held[c];
  if (!read_caches(d, &in, out))
    return false;
  rs::compute_stats(&out->stats, in);
  return true;
}

// --- output --------------------------------------------------------------

void to_stdout(void*, const char* text, size_t len) {
  fwrite(text, 1, len, stdout);
}

void command_name(pid_t pid, char* buf, size_t len) {
  char name[64];
  snprintf(name, sizeof(name), "/proc/%d/comm", static_cast<int>(pid));
  snprintf(buf, len, "?");
  FILE* f = fopen(name, "r");
  if (f == nullptr)
    return;
  if (fgets(buf, static_cast<int>(len), f) != nullptr)
    buf[strcspn(buf, "\n")] = '\0';
  fclose(f);
}

/// Resident bytes from /proc/PID/statm; 0 when unknown.
size_t rss_bytes(pid_t pid) {
  char name[64];
  snprintf(name, sizeof(name), "/proc/%d/statm", static_cast<int>(pid));
  FILE* f = fopen(name, "r");
  if (f == nullptr)
    return 0;
  unsigned long size = 0, resident = 0;
  if (fscanf(f, "%lu %lu", &size, &resident) != 2)
    resident = 0;
  fclose(f);
  return resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

const char* rseq_name(rs::RseqSetting v) {
  return v == rs::RseqSetting::kOff ? "0" : "auto";
}

const char* thp_name(rs::ThpSetting v) {
  switch (v) {
    case rs::ThpSetting::kAlways:
      return "always";
    case rs::ThpSetting::kNever:
      return "never";
    default:
      return "auto";
  }
}

/// A string for JSON: the characters that need it escaped.
void json_string(rs::Log& log, const char* s) {
  log.chr('"');
  for (; *s != '\0'; s++) {
    unsigned char ch = static_cast<unsigned char>(*s);
    if (ch == '"' || ch == '\\') {
      log.chr('\\').chr(static_cast<char>(ch));
    } else if (ch < 0x20) {
      static const char kHex[] = "0123456789abcdef";
      log.str("\\u00").chr(kHex[ch >> 4]).chr(kHex[ch & 15]);
    } else {
      log.chr(static_cast<char>(ch));
    }
  }
  log.chr('"');
}

void print_stat_text(pid_t pid, const Snapshot& s) {
  rs::Log log(to_stdout, nullptr);
  rs::format_stats_text(log, s.stats, s.mode);
  char comm[64];
  command_name(pid, comm, sizeof(comm));
  log.str("rsmalloc:   process ").dec(static_cast<uint64_t>(pid));
  log.str(" (").str(comm).str("), rsmalloc ").str(s.version).chr('\n');
  const rs::Config& c = s.config;
  log.str("rsmalloc:   settings: RSMALLOC_RSEQ=").str(rseq_name(c.rseq));
  log.str(" RSMALLOC_CPU_CACHE=").dec(c.cpu_cache_bytes);
  log.str(" RSMALLOC_DECAY_MS=").dec(c.decay_ms);
  log.str(" RSMALLOC_THP=").str(thp_name(c.thp));
  log.str(" RSMALLOC_BACKGROUND=").dec(c.background ? 1 : 0);
  log.str(" MALLOC_PERTURB_=").dec(static_cast<uint64_t>(c.perturb));
  log.str("\nrsmalloc:   cpu cache    cached bytes\n");
  for (size_t cpu = 0; cpu < s.num_cpus; cpu++) {
    if (s.cpu_used[cpu])
      log.str("rsmalloc:   ").dec(cpu).str(" ").dec(s.cpu_bytes[cpu]).chr('\n');
  }
}

void print_stat_json(pid_t pid, const Snapshot& s) {
  // The library's JSON, then what only the tool adds, before the last '}'.
  static char buf[1 << 16];
  rs::Log body(buf, sizeof(buf));
  rs::format_stats_json(body, s.stats, s.mode, s.version);
  body.terminate();
  size_t len = strlen(buf);
  if (len > 0 && buf[len - 1] == '}')
    buf[--len] = '\0';
  fwrite(buf, 1, len, stdout);
  rs::Log log(to_stdout, nullptr);
  char comm[64];
  command_name(pid, comm, sizeof(comm));
  const rs::Config& c = s.config;
  log.str(", \"pid\": ").dec(static_cast<uint64_t>(pid));
  log.str(", \"command\": ");
  json_string(log, comm);
  log.str(", \"settings\": {\"rseq\": \"").str(rseq_name(c.rseq));
  log.str("\", \"cpu_cache_bytes\": ").dec(c.cpu_cache_bytes);
  log.str(", \"decay_ms\": ").dec(c.decay_ms);
  log.str(", \"thp\": \"").str(thp_name(c.thp));
  log.str("\", \"background\": ").dec(c.background ? 1 : 0);
  log.str(", \"perturb\": ").dec(static_cast<uint64_t>(c.perturb));
  log.str("}, \"cpus\": [");
  bool first = true;
  for (size_t cpu = 0; cpu < s.num_cpus; cpu++) {
    if (!s.cpu_used[cpu])
      continue;
    log.str(first ? "" : ", ").str("{\"cpu\": ").dec(cpu);
    log.str(", \"cached_bytes\": ").dec(s.cpu_bytes[cpu]).chr('}');
    first = false;
  }
  log.str("]}\n");
}

int parse_pid(const char* text, pid_t* pid) {
  char* end;
  errno = 0;
  long v = strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v <= 0 || v > 0x3fffffff)
    return 0;
  *pid = static_cast<pid_t>(v);
  return 1;
}

int usage(FILE* f, int status) {
  fputs(
      "Usage: rsmalloc stat PID [--json]\n"
      "       rsmalloc top [--once] [--json] [--delay SECONDS]\n",
      f);
  return status;
}

int cmd_stat(int argc, char** argv) {
  bool json = false;
  const char* pid_text = nullptr;
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0)
      json = true;
    else if (pid_text == nullptr && argv[i][0] != '-')
      pid_text = argv[i];
    else
      return usage(stderr, 2);
  }
  pid_t pid;
  if (pid_text == nullptr)
    return usage(stderr, 2);
  if (!parse_pid(pid_text, &pid)) {
    fprintf(stderr, "rsmalloc: stat: not a process ID: %s\n", pid_text);
    return 2;
  }
  Target target(pid);
  static Snapshot snap;
  if (!target.snapshot(&snap)) {
    fprintf(stderr, "rsmalloc: stat: %s\n", target.message());
    return 1;
  }
  if (json)
    print_stat_json(pid, snap);
  else
    print_stat_text(pid, snap);
  fflush(stdout);
  return ferror(stdout) ? 1 : 0;
}

// --- top -----------------------------------------------------------------

struct Row {
  pid_t pid;        // the process
  char comm[32];    // its command
  size_t rss;       // resident bytes
  Error error;      // kNone when read
  size_t in_use;    // held by the program
  size_t cached;    // in CPU caches
  size_t free;      // free in central lists and page heap (resident)
  size_t released;  // returned to the OS
  char mode[128];   // cache mode
};

int by_in_use(const void* a, const void* b) {
  const Row* x = static_cast<const Row*>(a);
  const Row* y = static_cast<const Row*>(b);
  if ((x->error == Error::kNone) != (y->error == Error::kNone))
    return x->error == Error::kNone ? -1 : 1;
  if (x->in_use != y->in_use)
    return x->in_use > y->in_use ? -1 : 1;
  return x->pid < y->pid ? -1 : (x->pid > y->pid ? 1 : 0);
}

/// Every process on rsmalloc; *unseen counts those whose maps we may not
/// read (so we cannot tell). Returns the number of rows.
size_t scan(Row** rows_out, size_t* unseen) {
  static Row* rows = nullptr;
  static size_t cap = 0;
  size_t n = 0;
  *unseen = 0;
  DIR* proc = opendir("/proc");
  if (proc == nullptr)
    return 0;
  static Snapshot snap;
  while (struct dirent* e = readdir(proc)) {
    pid_t pid;
    if (!parse_pid(e->d_name, &pid))
      continue;
    Target t(pid);
    if (!t.find_library()) {
      if (t.error() == Error::kPermission)
        ++*unseen;
      continue;
    }
    if (n == cap) {
      cap = cap ? 2 * cap : 64;
      Row* grown = static_cast<Row*>(realloc(rows, cap * sizeof(Row)));
      if (grown == nullptr)
        break;
      rows = grown;
    }
    Row& r = rows[n];
    memset(&r, 0, sizeof(r));
    r.pid = pid;
    command_name(pid, r.comm, sizeof(r.comm));
    r.rss = rss_bytes(pid);
    Target full(pid);
    if (full.snapshot(&snap)) {
      r.error = Error::kNone;
      r.in_use = snap.stats.in_use_bytes;
      r.cached = snap.stats.cpu_cache_bytes;
      r.free = snap.stats.central_free_bytes + snap.stats.heap_free_bytes;
      r.released = snap.stats.released_bytes;
      snprintf(r.mode, sizeof(r.mode), "%s", snap.mode);
    } else {
      r.error = full.error();
      if (r.error == Error::kNoProcess || r.error == Error::kExited)
        continue;  // gone since the listing: not a row
    }
    n++;
  }
  closedir(proc);
  qsort(rows, n, sizeof(Row), by_in_use);
  *rows_out = rows;
  return n;
}

/// Bytes for a column: exact up to 99999, then K, M, G (base 1024).
const char* human(size_t v, char* buf, size_t len) {
  static const char kUnits[] = "KMGTP";
  if (v < 100000) {
    snprintf(buf, len, "%zu", v);
    return buf;
  }
  double d = static_cast<double>(v) / 1024;
  int u = 0;
  while (d >= 10000 && u < 4) {
    d /= 1024;
    u++;
  }
  snprintf(buf, len, d < 100 ? "%.1f%c" : "%.0f%c", d, kUnits[u]);
  return buf;
}

void print_top_text(const Row* rows, size_t n, size_t unseen) {
  printf("%7s %-15s %8s %8s %8s %8s %8s  %s\n", "PID", "COMMAND", "RSS",
         "IN-USE", "CACHED", "FREE", "RELEASED", "MODE");
  for (size_t i = 0; i < n; i++) {
    const Row& r = rows[i];
    char a[16], b[16], c[16], d[16], e[16];
    if (r.error != Error::kNone) {
      printf("%7d %-15s %8s %8s %8s %8s %8s  %s\n", static_cast<int>(r.pid),
             r.comm, human(r.rss, a, sizeof(a)), "-", "-", "-", "-",
             short_error(r.error));
      continue;
    }
    printf("%7d %-15s %8s %8s %8s %8s %8s  %s\n", static_cast<int>(r.pid),
           r.comm, human(r.rss, a, sizeof(a)), human(r.in_use, b, sizeof(b)),
           human(r.cached, c, sizeof(c)), human(r.free, d, sizeof(d)),
           human(r.released, e, sizeof(e)), r.mode);
  }
  if (unseen > 0)
    printf("rsmalloc: %zu processes not examined (permission denied)%s\n",
           unseen, geteuid() == 0 ? "" : "; run as root to see them");
}

void print_top_json(const Row* rows, size_t n, size_t unseen) {
  rs::Log log(to_stdout, nullptr);
  log.str("{\"processes\": [");
  for (size_t i = 0; i < n; i++) {
    const Row& r = rows[i];
    log.str(i ? ", " : "").str("{\"pid\": ").dec(static_cast<uint64_t>(r.pid));
    log.str(", \"command\": ");
    json_string(log, r.comm);
    log.str(", \"rss_bytes\": ").dec(r.rss);
    if (r.error != Error::kNone) {
      log.str(", \"error\": \"").str(short_error(r.error)).str("\"}");
      continue;
    }
    log.str(", \"in_use_bytes\": ").dec(r.in_use);
    log.str(", \"cached_bytes\": ").dec(r.cached);
    log.str(", \"free_bytes\": ").dec(r.free);
    log.str(", \"released_bytes\": ").dec(r.released);
    log.str(", \"cache_mode\": ");
    json_string(log, r.mode);
    log.chr('}');
  }
  log.str("], \"not_examined\": ").dec(unseen).str("}\n");
}

volatile sig_atomic_t g_stop = 0;

void on_signal(int) {
  g_stop = 1;
}

int cmd_top(int argc, char** argv) {
  bool once = false, json = false;
  double delay = 2;
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--once") == 0) {
      once = true;
    } else if (strcmp(argv[i], "--json") == 0) {
      json = true;
    } else if ((strcmp(argv[i], "--delay") == 0 ||
                strcmp(argv[i], "-d") == 0) &&
               i + 1 < argc) {
      char* end;
      delay = strtod(argv[++i], &end);
      if (*end != '\0' || !(delay >= 0.1 && delay <= 86400))
        return usage(stderr, 2);
    } else {
      return usage(stderr, 2);
    }
  }
  bool tty = isatty(STDOUT_FILENO) != 0;
  if (json && !once && !tty)
    once = true;  // one JSON document for a script
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  for (;;) {
    Row* rows;
    size_t unseen;
    size_t n = scan(&rows, &unseen);
    if (!once && tty)
      fputs("\033[H\033[2J", stdout);  // home, clear: a refreshed screen
    if (json)
      print_top_json(rows, n, unseen);
    else
      print_top_text(rows, n, unseen);
    fflush(stdout);
    if (once || g_stop)
      break;
    if (!tty)
      putchar('\n');
    struct timespec ts = {
        static_cast<time_t>(delay),
        static_cast<long>(
            (delay - static_cast<double>(static_cast<time_t>(delay))) * 1e9)};
    nanosleep(&ts, nullptr);
    if (g_stop)
      break;
  }
  return ferror(stdout) ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2)
    return usage(stderr, 2);
  if (strcmp(argv[1], "stat") == 0)
    return cmd_stat(argc - 2, argv + 2);
  if (strcmp(argv[1], "top") == 0)
    return cmd_top(argc - 2, argv + 2);
  if (strcmp(argv[1], "--help") == 0)
    return usage(stdout, 0);
  return usage(stderr, 2);
}
