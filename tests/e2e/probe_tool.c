/* tests/e2e/probe_tool.c — a static helper the sandbox e2e tests copy into a build
 * context: it attempts what busybox cannot express (abstract sockets, raw system calls,
 * writing to other processes' executables) and prints one "name=result" line per try,
 * where result is "ok" or the errno name. Nothing here is trusted by the tests: they
 * compare the printed results with what a contained step must see.
 *   probe-tool status              capability sets, Seccomp, NoNewPrivs, Groups, open fds
 *   probe-tool syscalls            unshare/mount/clone3/AF_ALG/AF_VSOCK/keyctl/...
 *   probe-tool abstract NAME       connect to the abstract unix socket "\0NAME"
 *   probe-tool exe-write           open every visible /proc/PID/exe for writing
 *   probe-tool ps                  every visible process: pid and its exe */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

static const char* result(long rc) {
  if (rc >= 0) return "ok";
  switch (errno) {
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ENOSYS: return "ENOSYS";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ENOENT: return "ENOENT";
    case ETXTBSY: return "ETXTBSY";
    case EROFS: return "EROFS";
    case EINVAL: return "EINVAL";
    case ELOOP: return "ELOOP";
    default: {
      static char buf[32];
      snprintf(buf, sizeof buf, "errno%d", errno);
      return buf;
    }
  }
}

static int status(void) {
  FILE* f = fopen("/proc/self/status", "r");
  if (!f) return 1;
  char line[512];
  static const char* keys[] = {"CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:",
                               "NoNewPrivs:", "Seccomp:", "Groups:"};
  while (fgets(line, sizeof line, f))
    for (size_t i = 0; i < sizeof keys / sizeof *keys; ++i)
      if (strncmp(line, keys[i], strlen(keys[i])) == 0) fputs(line, stdout);
  fclose(f);
  DIR* d = opendir("/proc/self/fd");
  if (!d) return 1;
  printf("Fds:");
  struct dirent* e;
  while ((e = readdir(d)))
    if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d)) printf(" %s", e->d_name);
  printf("\n");
  closedir(d);
  return 0;
}

static int syscalls(void) {
  printf("unshare_mnt=%s\n", result(unshare(CLONE_NEWNS)));
  printf("unshare_user=%s\n", result(unshare(CLONE_NEWUSER)));
  printf("mount=%s\n", result(mount("none", "/tmp", "tmpfs", 0, NULL)));
  printf("clone3=%s\n", result(syscall(SYS_clone3, NULL, 0)));
  printf("af_alg=%s\n", result(socket(38, SOCK_SEQPACKET, 0)));
  printf("af_vsock=%s\n", result(socket(40, SOCK_STREAM, 0)));
  printf("keyctl=%s\n", result(syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3, 0)));
  printf("af_inet=%s\n", result(socket(AF_INET, SOCK_STREAM, 0)));
  printf("chroot=%s\n", result(chroot("/")));
  return 0;
}

static int abstract(const char* name) {
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  if (s < 0) {
    printf("abstract=%s\n", result(s));
    return 0;
  }
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  size_t n = strlen(name);
  if (n > sizeof a.sun_path - 2) n = sizeof a.sun_path - 2;
  memcpy(a.sun_path + 1, name, n);
  printf("abstract=%s\n", result(connect(s, (struct sockaddr*)&a, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n))));
  return 0;
}

static int procs(int write_exe) {
  DIR* d = opendir("/proc");
  if (!d) return 1;
  struct dirent* e;
  while ((e = readdir(d))) {
    int pid = atoi(e->d_name);
    if (pid <= 0) continue;
    char path[64], link[4096];
    snprintf(path, sizeof path, "/proc/%d/exe", pid);
    ssize_t n = readlink(path, link, sizeof link - 1);
    link[n > 0 ? n : 0] = '\0';
    if (write_exe) {
      int fd = open(path, O_WRONLY);
      printf("exe_write_%d=%s\n", pid, result(fd));
      if (fd >= 0) close(fd);
    } else {
      printf("pid %d exe %s\n", pid, n > 0 ? link : "?");
    }
  }
  closedir(d);
  return 0;
}

int main(int argc, char** argv) {
  if (argc == 2 && strcmp(argv[1], "status") == 0) return status();
  if (argc == 2 && strcmp(argv[1], "syscalls") == 0) return syscalls();
  if (argc == 3 && strcmp(argv[1], "abstract") == 0) return abstract(argv[2]);
  if (argc == 2 && strcmp(argv[1], "exe-write") == 0) return procs(1);
  if (argc == 2 && strcmp(argv[1], "ps") == 0) return procs(0);
  fprintf(stderr, "usage: probe-tool status|syscalls|abstract NAME|exe-write|ps\n");
  return 2;
}
