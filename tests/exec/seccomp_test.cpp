// tests/exec/seccomp_test.cpp — the default seccomp filter, probed syscall by syscall in
// forked children that set no_new_privs and load it (so no root is needed). Each probe also
// runs without the filter where the unfiltered answer differs, so a filter that lets
// everything through fails the test.
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <string>

#include <doctest/doctest.h>

#include "exec/seccomp.h"

using builder::exec::default_seccomp_filter;
using builder::exec::load_seccomp_filter;

namespace {

constexpr int kLoadFailed = 250;
constexpr int kKilledBase = 1000;

/// Runs `probe` in a forked child, after no_new_privs and the default filter when `filtered`;
/// returns the probe's result (0..249), kLoadFailed, or kKilledBase + signal.
int run_probe(const std::function<int()>& probe, bool filtered = true) {
  const sock_fprog& prog = default_seccomp_filter();  // built in the parent, as the sandbox does
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (filtered &&
        (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || load_seccomp_filter(prog) != 0))
      ::_exit(kLoadFailed);
    ::_exit(probe());
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  if (WIFSIGNALED(status)) return kKilledBase + WTERMSIG(status);
  REQUIRE(WIFEXITED(status));
  return WEXITSTATUS(status);
}

/// 0 when `rc` is not negative, errno otherwise (errno values fit an exit code).
int errno_of(long rc) { return rc < 0 ? errno : 0; }

/// Forks with the raw clone syscall and `flags`; the child exits 42 at once. Returns 0 when
/// the child ran and exited 42, errno when clone failed, 99 otherwise.
int probe_clone(unsigned long flags) {
  long pid = ::syscall(SYS_clone, flags | SIGCHLD, nullptr, nullptr, nullptr, nullptr);
  if (pid < 0) return errno;
  if (pid == 0) ::_exit(42);
  int status = 0;
  if (::waitpid(static_cast<pid_t>(pid), &status, 0) != pid) return 99;
  return WIFEXITED(status) && WEXITSTATUS(status) == 42 ? 0 : 99;
}

int probe_socket(int domain, int type) {
  int fd = ::socket(domain, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  ::close(fd);
  return 0;
}

/// An i386 system call through int 0x80 (seccomp sees AUDIT_ARCH_I386): the raw result.
long syscall_i386(long nr, long a0 = 0) {
  long rc = nr;
  asm volatile("int $0x80" : "+a"(rc) : "b"(a0) : "rcx", "rdx", "r8", "r9", "r10", "r11", "memory");
  return rc;
}

}  // namespace

TEST_CASE("seccomp: the default filter is a valid program, built once") {
  auto t0 = std::chrono::steady_clock::now();
  const sock_fprog& a = default_seccomp_filter();
  auto first = std::chrono::steady_clock::now() - t0;
  const sock_fprog& b = default_seccomp_filter();
  CHECK(&a == &b);
  REQUIRE(a.filter != nullptr);
  CHECK(a.len > 100);
  CHECK(a.len <= BPF_MAXINSNS);
  // The time is the build's only when no earlier test in this process built the filter.
  MESSAGE("default filter: " << a.len << " instructions; first call in this test: "
          << std::chrono::duration_cast<std::chrono::microseconds>(first).count() << " us");
  // The program starts by checking the architecture (seccomp_data.arch at offset 4).
  CHECK(a.filter[0].code == (BPF_LD | BPF_W | BPF_ABS));
  CHECK(a.filter[0].k == 4);
}

TEST_CASE("seccomp: the filter is in force in the child and survives execve") {
  // /proc/self/status says "Seccomp:\t2" for filter mode.
  auto mode_is_filter = [] {
    int fd = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    char buf[8192];
    ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n <= 0) return 98;
    buf[n] = 0;
    return std::strstr(buf, "\nSeccomp:\t2\n") ? 0 : 97;
  };
  CHECK(run_probe(mode_is_filter) == 0);
  CHECK(run_probe(mode_is_filter, false) == 97);
  // A dynamically linked program starts, reads and writes under the filter (execve, mmap,
  // arch_prctl, openat, ...), and the filter is still there after exec.
  CHECK(run_probe([] {
          char* argv[] = {const_cast<char*>("/bin/sh"), const_cast<char*>("-c"),
                          const_cast<char*>("grep -q '^Seccomp:.2$' /proc/self/status && "
                                            "echo ok > /dev/null && cat /etc/passwd > /dev/null"),
                          nullptr};
          ::execve("/bin/sh", argv, environ);
          return errno;
        }) == 0);
  CHECK(run_probe([] {
          char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
          ::execve("/bin/true", argv, environ);
          return errno;
        }) == 0);
}

TEST_CASE("seccomp: everyday syscalls are allowed") {
  CHECK(run_probe([] {
          if (::getpid() <= 0) return 90;
          int p[2];
          if (::pipe2(p, O_CLOEXEC) != 0) return errno;
          if (::write(p[1], "x", 1) != 1) return errno;
          char c = 0;
          if (::read(p[0], &c, 1) != 1 || c != 'x') return 91;
          int fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
          if (fd < 0) return errno;
          if (::write(fd, "y", 1) != 1) return errno;
          return errno_of(::close(fd));
        }) == 0);
}

TEST_CASE("seccomp: clone3 fails with ENOSYS so libc falls back to clone") {
  auto probe = [] {
    struct clone_args args{};
    args.exit_signal = SIGCHLD;
    long pid = ::syscall(SYS_clone3, &args, sizeof args);
    if (pid < 0) return errno;
    if (pid == 0) ::_exit(0);
    int status = 0;
    ::waitpid(static_cast<pid_t>(pid), &status, 0);
    return 0;
  };
  CHECK(run_probe(probe) == ENOSYS);
  CHECK(run_probe(probe, false) == 0);
}

TEST_CASE("seccomp: fork and clone without namespace flags work; namespace flags are refused") {
  CHECK(run_probe([] {
          pid_t pid = ::fork();
          if (pid < 0) return errno;
          if (pid == 0) ::_exit(7);
          int status = 0;
          if (::waitpid(pid, &status, 0) != pid) return errno;
          return WIFEXITED(status) && WEXITSTATUS(status) == 7 ? 0 : 99;
        }) == 0);
  CHECK(run_probe([] { return probe_clone(0); }) == 0);
  for (unsigned long flag : {CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWNET,
                             CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWCGROUP}) {
    CAPTURE(flag);
    CHECK(run_probe([flag] { return probe_clone(flag); }) == EPERM);
  }
  // Unfiltered, root (or any user, where user namespaces are enabled) can clone a new user
  // namespace: the EPERM above is the filter's.
  if (::geteuid() == 0) CHECK(run_probe([] { return probe_clone(CLONE_NEWUSER); }, false) == 0);
}

TEST_CASE("seccomp: unshare, setns, mount, umount2 and pivot_root are refused") {
  auto unshare_ns = [] { return errno_of(::unshare(CLONE_NEWNS)); };
  CHECK(run_probe(unshare_ns) == EPERM);
  CHECK(run_probe([] { return errno_of(::unshare(CLONE_NEWUSER)); }) == EPERM);
  CHECK(run_probe([] { return errno_of(::setns(0, 0)); }) == EPERM);
  // Targets that do not exist: unfiltered, root gets ENOENT and nothing is mounted.
  auto do_mount = [] {
    return errno_of(::mount("none", "/nonexistent-seccomp-probe", "tmpfs", 0, nullptr));
  };
  CHECK(run_probe(do_mount) == EPERM);
  CHECK(run_probe([] { return errno_of(::umount2("/nonexistent-seccomp-probe", 0)); }) == EPERM);
  CHECK(run_probe([] {
          return errno_of(::syscall(SYS_pivot_root, "/nonexistent-a", "/nonexistent-b"));
        }) == EPERM);
  if (::geteuid() == 0) {
    CHECK(run_probe(unshare_ns, false) == 0);
    CHECK(run_probe(do_mount, false) == ENOENT);
  }
}

TEST_CASE("seccomp: socket refuses AF_ALG and AF_VSOCK with EPERM, allows the others") {
  CHECK(run_probe([] { return probe_socket(38 /* AF_ALG */, SOCK_SEQPACKET); }) == EPERM);
  CHECK(run_probe([] { return probe_socket(40 /* AF_VSOCK */, SOCK_STREAM); }) == EPERM);
  CHECK(run_probe([] { return probe_socket(AF_INET, SOCK_DGRAM); }) == 0);
  CHECK(run_probe([] { return probe_socket(AF_INET6, SOCK_STREAM); }) != EPERM);
  CHECK(run_probe([] { return probe_socket(AF_UNIX, SOCK_STREAM); }) == 0);
  // The neighbours of the refused domains reach the kernel (which may not support them,
  // but does not answer EPERM for an unprivileged datagram/seqpacket socket).
  CHECK(run_probe([] { return probe_socket(37, SOCK_DGRAM); }) != EPERM);
  CHECK(run_probe([] { return probe_socket(39, SOCK_SEQPACKET); }) != EPERM);
  CHECK(run_probe([] { return probe_socket(41, SOCK_DGRAM); }) != EPERM);
  // Unfiltered, the kernel answers AF_ALG itself (a socket, or EAFNOSUPPORT), never EPERM.
  CHECK(run_probe([] { return probe_socket(38, SOCK_SEQPACKET); }, false) != EPERM);
}

TEST_CASE("seccomp: personality allows only the profile's values") {
  auto query = [] { return ::personality(0xffffffff) < 0 ? errno : 0; };
  CHECK(run_probe(query) == 0);
  CHECK(run_probe([] { return errno_of(::personality(PER_LINUX)); }) == 0);
  CHECK(run_probe([] { return errno_of(::personality(PER_LINUX32)); }) == 0);
  auto no_randomize = [] { return errno_of(::personality(ADDR_NO_RANDOMIZE)); };
  CHECK(run_probe(no_randomize) == EPERM);
  CHECK(run_probe(no_randomize, false) == 0);
}

TEST_CASE("seccomp: keyrings, bpf, perf, kexec and unknown syscalls get EPERM") {
  auto keyctl = [] {
    // KEYCTL_GET_KEYRING_ID of the session keyring, creating it.
    return errno_of(::syscall(SYS_keyctl, 0, -3, 1, 0, 0));
  };
  CHECK(run_probe(keyctl) == EPERM);
  CHECK(run_probe(keyctl, false) == 0);
  CHECK(run_probe([] {
          return errno_of(::syscall(SYS_add_key, "user", "builder-probe", "x", 1, -3));
        }) == EPERM);
  CHECK(run_probe([] {
          return errno_of(::syscall(SYS_request_key, "user", "builder-probe", nullptr, 0));
        }) == EPERM);
  CHECK(run_probe([] { return errno_of(::syscall(SYS_bpf, 0, nullptr, 0)); }) == EPERM);
  CHECK(run_probe([] {
          return errno_of(::syscall(SYS_perf_event_open, nullptr, 0, -1, -1, 0));
        }) == EPERM);
  // Bogus arch bits and too many segments: unfiltered the kernel refuses it (EPERM without
  // CAP_SYS_BOOT, EINVAL with it, ENOSYS without CONFIG_KEXEC) and never touches the
  // loaded kernel image.
  auto kexec = [] {
    return errno_of(::syscall(SYS_kexec_load, 0UL, 1000UL, nullptr, 0x7fff0000UL));
  };
  CHECK(run_probe(kexec) == EPERM);
  if (::geteuid() == 0) {
    int unfiltered = run_probe(kexec, false);
    CHECK((unfiltered == EINVAL || unfiltered == ENOSYS));
  }
  CHECK(run_probe([] { return errno_of(::syscall(SYS_init_module, nullptr, 0, "")); }) == EPERM);
  // A number no kernel assigns yet: the default action, not ENOSYS.
  auto unknown = [] { return errno_of(::syscall(500)); };
  CHECK(run_probe(unknown) == EPERM);
  CHECK(run_probe(unknown, false) == ENOSYS);
}

TEST_CASE("seccomp: chroot and ptrace are allowed, as for Docker's default capabilities") {
  // Lookup comes before the capability check: ENOENT means the call reached the kernel.
  CHECK(run_probe([] { return errno_of(::chroot("/nonexistent-seccomp-probe")); }) == ENOENT);
  // PTRACE_PEEKDATA on a pid that does not exist.
  CHECK(run_probe([] {
          return errno_of(
              ::syscall(SYS_ptrace, 2 /* PTRACE_PEEKDATA */, 0x3ffffff0, nullptr, nullptr));
        }) == ESRCH);
  // kcmp is in the profile's CAP_SYS_PTRACE group, which the default set lacks: refused.
  CHECK(run_probe([] { return errno_of(::syscall(SYS_kcmp, ::getpid(), ::getpid(), 0, 0, 0)); }) ==
        EPERM);
}

TEST_CASE("seccomp: i386 system calls are filtered by the same rules, not killed") {
  constexpr long kGetpid32 = 20, kUnshare32 = 310;
  // Without IA32 emulation (ia32_emulation=0) the kernel runs no i386 code to filter.
  if (run_probe([] { return syscall_i386(kGetpid32) == ::getpid() ? 0 : 1; }, false) != 0) {
    MESSAGE("no IA32 emulation in this kernel: i386 probes not run");
    return;
  }
  // Had the filter no i386 section, libseccomp's bad-arch action would kill with SIGSYS.
  CHECK(run_probe([] { return syscall_i386(kGetpid32) == ::getpid() ? 0 : 1; }) == 0);
  CHECK(run_probe([] { return static_cast<int>(-syscall_i386(kUnshare32, CLONE_NEWNS)); }) ==
        EPERM);
}
