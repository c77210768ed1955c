/* SPDX-License-Identifier: MIT */
/* startup: what a system-wide allocator costs every process.
 *
 * Runs /bin/true (or prog=PATH) runs=500 times one after another with
 * posix_spawn, passing on the environment, so each child loads the
 * LD_PRELOADed allocator, runs its initialisation and exits. Reports the
 * mean wall time per process.
 *
 * Parameters: runs (500 x scale), prog (/bin/true). */
#include <spawn.h>

#include <sys/wait.h>

#include "common.h"

extern char** environ;

int main(int argc, char** argv) {
  bench_args(argc, argv);
  long runs = arg_scaled("runs", 500);
  const char* prog = arg_str("prog", "/bin/true");
  bench_args_done();

  char* child_argv[] = {(char*)prog, NULL};
  double t0 = now_sec();
  for (long i = 0; i < runs; i++) {
    pid_t pid;
    int err = posix_spawn(&pid, prog, NULL, NULL, child_argv, environ);
    if (err != 0)
      die("posix_spawn %s: %s", prog, strerror(err));
    int status;
    while (waitpid(pid, &status, 0) < 0) {
      if (errno != EINTR)
        die("waitpid: %s", strerror(errno));
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      die("%s failed (status 0x%x)", prog, status);
    }
  }
  double secs = now_sec() - t0;

  result_begin("startup", 1, (double)runs, secs);
  printf(" us_per_process=%.1f\n", secs * 1e6 / (double)runs);
  return 0;
}
