/* SPDX-License-Identifier: MIT */
/* launch: run one program and report its exit status, wall time and peak
 * RSS, like /usr/bin/time -f.
 *
 *   launch OUTFILE PROGRAM [ARG...]
 *
 * The runner (and real.py) start every measured program through this small
 * process instead of directly: Linux keeps a process's ru_maxrss across
 * exec, so a child forked from the Python runner would report the runner's
 * RSS as its own peak. If LAUNCH_LD_PRELOAD is set, the child gets it as
 * LD_PRELOAD (this process itself runs without one). The child is killed
 * if this process dies (the runner's timeout). Writes one line to OUTFILE
 * when the child ends:
 *
 *   status=N signal=N maxrss_kb=N wall_seconds=S
 *
 * and exits with the child's status (128 + signal if it was killed). */
#include <signal.h>

#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "common.h"

int main(int argc, char** argv) {
  if (argc < 3)
    die("usage: launch OUTFILE PROGRAM [ARG...]");
  FILE* out = fopen(argv[1], "we");
  if (out == NULL)
    die("cannot write %s: %s", argv[1], strerror(errno));
  const char* preload = getenv("LAUNCH_LD_PRELOAD");
  if (preload != NULL) {
    if (*preload != '\0')
      setenv("LD_PRELOAD", preload, 1);
    unsetenv("LAUNCH_LD_PRELOAD");
  }

  double t0 = now_sec();
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0)
    die("fork: %s", strerror(errno));
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
      _exit(127);
    execvp(argv[2], argv + 2);
    fprintf(stderr, "bench: cannot run %s: %s\n", argv[2], strerror(errno));
    _exit(127);
  }
  int status;
  struct rusage ru;
  while (wait4(pid, &status, 0, &ru) < 0) {
    if (errno != EINTR)
      die("wait4: %s", strerror(errno));
  }
  double wall = now_sec() - t0;

  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
  int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  fprintf(out, "status=%d signal=%d maxrss_kb=%ld wall_seconds=%.6f\n", code,
          sig, ru.ru_maxrss, wall);
  fclose(out);
  return sig != 0 ? 128 + sig : code;
}
