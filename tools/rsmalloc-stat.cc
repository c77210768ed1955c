// SPDX-License-Identifier: MIT
// rsmalloc-stat: the helper behind `rsmalloc stat PID` and `rsmalloc top`
// (tools/rsmalloc). Reads a running process's rsmalloc statistics from
// outside (stat/target.h: no signal, no stop, nothing run in the target)
// and prints them with the library's own code (lib/stats.cc): the command
// line, the output, and top's table. Against libc only.
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "settings.h"
#include "size_class.h"
#include "stat/target.h"
#include "stats.h"

namespace {

using rs::inspect::Error;
using rs::inspect::short_error;
using rs::inspect::Snapshot;
using rs::inspect::Target;

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
  size_t cached;    // in CPU caches and transfer caches
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
      r.cached = snap.stats.cpu_cache_bytes + snap.stats.transfer_cache_bytes;
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
    printf("rsmalloc: %zu process%s not examined (permission denied)%s\n",
           unseen, unseen == 1 ? "" : "es",
           geteuid() == 0 ? "" : "; run as root to see them");
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
