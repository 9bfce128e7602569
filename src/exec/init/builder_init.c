/* exec/init/builder_init.c — the first program a container runs. The sandbox's cloned
 * child is a copy of builder, so a command it execve()d directly could reach the host's
 * builder binary through /proc/self/exe (a `#!/proc/self/exe` script, CVE-2019-5736).
 * Instead the child execs this small static program from a sealed memfd (exec/sandbox.cpp
 * embeds it), and this program execs the command. /proc/<pid>/exe then names the
 * memfd: read-only, and not the host's binary.
 *
 * Usage (from the sandbox only):
 *   builder-init SYNC_FD EXEC_STEP NCANDIDATES CANDIDATE... -- ARGV...
 * Tries each candidate path in order as execvp does; if none can be executed, writes
 * the sandbox's error record {EXEC_STEP, errno, 0} to SYNC_FD and exits 127. SYNC_FD is
 * marked close-on-exec first, so a successful exec closes it (the parent's "started").
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char** environ;

static int parse_int(const char* s, int* out) {
  long v = 0;
  if (!s || !*s) return -1;
  for (; *s; ++s) {
    if (*s < '0' || *s > '9' || v > 1000000) return -1;
    v = v * 10 + (*s - '0');
  }
  *out = (int)v;
  return 0;
}

static void report(int fd, int step, int err) {
  int32_t rec[3] = {step, err, 0};
  if (fd >= 0) (void)!write(fd, rec, sizeof rec);
}

int main(int argc, char** argv) {
  static const char usage[] = "builder-init: runs a container's command; not for direct use\n";
  int sync_fd, step, n;
  if (argc < 5 || parse_int(argv[1], &sync_fd) || parse_int(argv[2], &step) || parse_int(argv[3], &n) ||
      n < 1 || 4 + n >= argc || strcmp(argv[4 + n], "--") != 0 || 5 + n >= argc) {
    (void)!write(2, usage, sizeof usage - 1);
    return 127;
  }
  if (fcntl(sync_fd, F_SETFD, FD_CLOEXEC) < 0) sync_fd = -1;
  char** candidates = argv + 4;
  char** cmd = argv + 5 + n;
  int last_err = ENOENT, saw_eacces = 0;
  for (int i = 0; i < n; ++i) {
    execve(candidates[i], cmd, environ);
    int err = errno;
    /* execvp: keep searching past missing or unreadable candidates, but report EACCES
     * if one of them existed and could not be executed. */
    if (err == EACCES) {
      saw_eacces = 1;
      continue;
    }
    last_err = err;
    if (err == ENOENT || err == ENOTDIR || err == ESTALE || err == ENODEV || err == ETIMEDOUT) continue;
    break;
  }
  report(sync_fd, step, saw_eacces && last_err == ENOENT ? EACCES : last_err);
  return 127;
}
