/* SPDX-License-Identifier: MIT */
/* Runs a test function in a forked child with its stderr captured: the
 * misuse tests' helper (misuse.h), also used by the C++ rseq tests, so it
 * is both C and C++. */
#ifndef RS_TESTS_RUN_CHILD_H
#define RS_TESTS_RUN_CHILD_H

#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sys/wait.h>

typedef void (*misuse_fn)(int misuse);

/* Runs fn(misuse) in a child whose stderr goes through a pipe. Returns the
 * wait status; *msg gets what the child wrote (NUL-terminated). */
static inline int run_child(misuse_fn fn, int misuse, char* msg, size_t len) {
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  fflush(NULL);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], 2);
    close(fds[1]);
    signal(SIGABRT, SIG_DFL);
    fn(misuse);
    _exit(0);
  }
  close(fds[1]);
  size_t got = 0;
  for (;;) {
    ssize_t n = read(fds[0], msg + got, len - 1 - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    got += n; /* n > 0 */
    if (got == len - 1)
      break;
  }
  msg[got] = '\0';
  /* qemu-user reports the guest's death on the guest's stderr ("qemu:
   * uncaught target signal 6 (Aborted) - core dumped"): the emulator's
   * line, not the program's. */
  char* emulator = strstr(msg, "qemu: uncaught target signal ");
  if (emulator != NULL && (emulator == msg || emulator[-1] == '\n'))
    *emulator = '\0';
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    ck_assert_int_eq(errno, EINTR);
  return status;
}

#endif /* RS_TESTS_RUN_CHILD_H */
