// exec/seccomp.cpp — builds Docker's default seccomp profile (x86_64 + i386 + x32) with
// libseccomp in the parent, once, and loads it in the child with one raw syscall.
// The syscall names are the data of moby/profiles' default.json, with its conditional
// groups resolved for amd64, Docker's default capability set and the running kernel.
#include "exec/seccomp.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/fd.h"
#include "base/log.h"

namespace builder::exec {
namespace {

// The unconditional allow list of the default profile (its first group), in its order.
// Names of other architectures (chown32, socketcall, ...) are kept: libseccomp applies
// each to the arches that have it, so the i386 sub-filter gets them.
constexpr const char* kAllowed[] = {
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "cachestat", "capget",
    "capset", "chdir", "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64",
    "clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64",
    "clock_nanosleep", "clock_nanosleep_time64", "close", "close_range", "connect",
    "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create", "epoll_create1",
    "epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2", "epoll_wait", "epoll_wait_old",
    "eventfd", "eventfd2", "execve", "execveat", "exit", "exit_group", "faccessat",
    "faccessat2", "fadvise64", "fadvise64_64", "fallocate", "fanotify_mark", "fchdir", "fchmod",
    "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync",
    "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr", "fstat", "fstat64",
    "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64", "futex",
    "futex_requeue", "futex_time64", "futex_wait", "futex_waitv", "futex_wake", "futimesat",
    "getcpu", "getcwd", "getdents", "getdents64", "getegid", "getegid32", "geteuid",
    "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32", "getitimer", "getpeername",
    "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom", "getresgid",
    "getresgid32", "getresuid", "getresuid32", "getrlimit", "get_robust_list", "getrusage",
    "getsid", "getsockname", "getsockopt", "get_thread_area", "gettid", "gettimeofday",
    "getuid", "getuid32", "getxattr", "getxattrat", "inotify_add_watch", "inotify_init",
    "inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy", "io_getevents",
    "io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set", "io_setup",
    "io_submit", "ipc", "kill", "landlock_add_rule", "landlock_create_ruleset",
    "landlock_restrict_self", "lchown", "lchown32", "lgetxattr", "link", "linkat", "listen",
    "listmount", "listxattr", "listxattrat", "llistxattr", "_llseek", "lremovexattr", "lseek",
    "lsetxattr", "lstat", "lstat64", "madvise", "map_shadow_stack", "membarrier",
    "memfd_create", "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock",
    "mlock2", "mlockall", "mmap", "mmap2", "mprotect", "mq_getsetattr", "mq_notify", "mq_open",
    "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64",
    "mq_unlink", "mremap", "mseal", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock",
    "munlockall", "munmap", "name_to_handle_at", "nanosleep", "newfstatat", "_newselect",
    "open", "openat", "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2",
    "pkey_alloc", "pkey_free", "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl",
    "pread64", "preadv", "preadv2", "prlimit64", "process_mrelease", "pselect6",
    "pselect6_time64", "pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink",
    "readlinkat", "readv", "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg",
    "remap_file_pages", "removexattr", "removexattrat", "rename", "renameat", "renameat2",
    "restart_syscall", "riscv_hwprobe", "rmdir", "rseq", "rt_sigaction", "rt_sigpending",
    "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait",
    "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr",
    "sched_getparam", "sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler",
    "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity",
    "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select",
    "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "send", "sendfile",
    "sendfile64", "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsgid32", "setfsuid",
    "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32", "setitimer", "setpgid",
    "setpriority", "setregid", "setregid32", "setresgid", "setresgid32", "setresuid",
    "setresuid32", "setreuid", "setreuid32", "setrlimit", "set_robust_list", "setsid",
    "setsockopt", "set_thread_area", "set_tid_address", "setuid", "setuid32", "setxattr",
    "setxattrat", "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd",
    "signalfd4", "sigprocmask", "sigreturn", "socketcall", "socketpair", "splice", "stat",
    "stat64", "statfs", "statfs64", "statmount", "statx", "symlink", "symlinkat", "sync",
    "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create",
    "timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime",
    "timer_settime64", "timerfd_create", "timerfd_gettime", "timerfd_gettime64",
    "timerfd_settime", "timerfd_settime64", "times", "tkill", "truncate", "truncate64",
    "ugetrlimit", "umask", "uname", "unlink", "unlinkat", "uretprobe", "utime", "utimensat",
    "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4", "waitid", "waitpid", "write",
    "writev",
};

// Allowed from kernel 4.8, whose seccomp can no longer be bypassed with ptrace.
constexpr const char* kAllowedFromKernel48[] = {"process_vm_readv", "process_vm_writev", "ptrace"};
constexpr int kPtraceMinMajor = 4, kPtraceMinMinor = 8;

// The groups gated on the native arch (amd64) and on capabilities in Docker's default set
// (CAP_SYS_CHROOT). Groups gated on capabilities outside it (CAP_SYS_ADMIN, CAP_SYS_PTRACE,
// CAP_SYS_MODULE, CAP_SYS_BOOT, CAP_SYS_TIME, CAP_BPF, ...) are deliberately absent.
constexpr const char* kAllowedAmd64[] = {"arch_prctl", "modify_ldt"};
constexpr const char* kAllowedSysChroot[] = {"chroot"};

// personality(2) values the profile allows: PER_LINUX, PER_LINUX32, UNAME26,
// UNAME26|PER_LINUX32, and 0xffffffff (a query). ADDR_NO_RANDOMIZE and friends are refused.
constexpr uint64_t kPersonalities[] = {0x0, 0x8, 0x20000, 0x20008, 0xffffffff};

// clone(2) flags that create namespaces; without CAP_SYS_ADMIN clone must have none of them.
constexpr uint64_t kNamespaceFlags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
                                     CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP;
static_assert(kNamespaceFlags == 2114060288, "the mask of the profile's clone rule");

// socket(2) domains the profile leaves out (so they get the default EPERM): the profile
// allows domain < AF_ALG, == 39 and > AF_VSOCK.
constexpr uint64_t kAfAlg = 38, kAfVsock = 40;

bool kernel_at_least(int major, int minor) {
  struct utsname u{};
  if (::uname(&u) != 0) throw base::SysError(errno, "uname");
  int ma = 0, mi = 0;
  if (std::sscanf(u.release, "%d.%d", &ma, &mi) != 2)
    throw base::Error("seccomp: cannot parse the kernel release `" + std::string(u.release) + "`");
  return ma > major || (ma == major && mi >= minor);
}

class Filter {
 public:
  Filter() : ctx_(::seccomp_init(SCMP_ACT_ERRNO(EPERM))) {
    if (!ctx_) throw base::Error("seccomp: seccomp_init failed");
  }
  ~Filter() { ::seccomp_release(ctx_); }
  Filter(const Filter&) = delete;
  Filter& operator=(const Filter&) = delete;

  void add_arch(uint32_t arch, const char* name) {
    int rc = ::seccomp_arch_add(ctx_, arch);
    if (rc < 0 && rc != -EEXIST) throw base::SysError(-rc, "seccomp_arch_add", name);
  }

  void set_attr(enum scmp_filter_attr attr, uint32_t value, const char* name) {
    int rc = ::seccomp_attr_set(ctx_, attr, value);
    if (rc < 0) throw base::SysError(-rc, "seccomp_attr_set", name);
  }

  /// Adds `action` for `name` when all of `args` hold; a name the linked libseccomp does
  /// not know is skipped (and logged), not an error.
  void add(uint32_t action, const char* name, std::vector<scmp_arg_cmp> args = {}) {
    int nr = ::seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) {
      base::log_debug(std::string("seccomp: libseccomp does not know `") + name + "`; left out");
      return;
    }
    int rc = ::seccomp_rule_add_array(ctx_, action, nr, static_cast<unsigned>(args.size()),
                                      args.empty() ? nullptr : args.data());
    if (rc < 0) throw base::SysError(-rc, "seccomp_rule_add", name);
  }

  /// The program as libseccomp generates it for seccomp(2).
  std::vector<sock_filter> export_bpf() const {
    // libseccomp 2.5 exports only to a file descriptor.
    base::Fd fd(::memfd_create("builder-seccomp", MFD_CLOEXEC));
    if (!fd) throw base::SysError(errno, "memfd_create", "builder-seccomp");
    int rc = ::seccomp_export_bpf(ctx_, fd.get());
    if (rc < 0) throw base::SysError(-rc, "seccomp_export_bpf");
    struct stat st{};
    base::check_sys(::fstat(fd.get(), &st), "fstat", "builder-seccomp");
    size_t bytes = static_cast<size_t>(st.st_size);
    if (bytes == 0 || bytes % sizeof(sock_filter) != 0 ||
        bytes / sizeof(sock_filter) > BPF_MAXINSNS)
      throw base::Error("seccomp: libseccomp exported a program of " + std::to_string(bytes) +
                        " bytes, not a valid BPF program");
    std::vector<sock_filter> prog(bytes / sizeof(sock_filter));
    auto* out = reinterpret_cast<char*>(prog.data());
    for (size_t done = 0; done < bytes;) {
      ssize_t n = ::pread(fd.get(), out + done, bytes - done, static_cast<off_t>(done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw base::SysError(errno, "pread", "builder-seccomp");
      if (n == 0) throw base::Error("seccomp: the exported program is shorter than its file");
      done += static_cast<size_t>(n);
    }
    return prog;
  }

 private:
  scmp_filter_ctx ctx_;
};

std::vector<sock_filter> build_default_filter() {
  Filter f;
  // As Docker on amd64: the native arch plus i386 and x32, each with the same rules.
  f.add_arch(SCMP_ARCH_X86_64, "x86_64");
  f.add_arch(SCMP_ARCH_X86, "x86");
  f.add_arch(SCMP_ARCH_X32, "x32");
  // The filter is exported, never loaded by libseccomp: no_new_privs is the caller's choice.
  f.set_attr(SCMP_FLTATR_CTL_NNP, 0, "SCMP_FLTATR_CTL_NNP");

  for (const char* name : kAllowed) f.add(SCMP_ACT_ALLOW, name);
  if (kernel_at_least(kPtraceMinMajor, kPtraceMinMinor))
    for (const char* name : kAllowedFromKernel48) f.add(SCMP_ACT_ALLOW, name);
  for (const char* name : kAllowedAmd64) f.add(SCMP_ACT_ALLOW, name);
  for (const char* name : kAllowedSysChroot) f.add(SCMP_ACT_ALLOW, name);

  // Several rules for one syscall are alternatives: any match allows it.
  f.add(SCMP_ACT_ALLOW, "socket", {SCMP_A0(SCMP_CMP_LT, kAfAlg)});
  f.add(SCMP_ACT_ALLOW, "socket", {SCMP_A0(SCMP_CMP_EQ, kAfAlg + 1)});
  f.add(SCMP_ACT_ALLOW, "socket", {SCMP_A0(SCMP_CMP_GT, kAfVsock)});
  for (uint64_t persona : kPersonalities)
    f.add(SCMP_ACT_ALLOW, "personality", {SCMP_A0(SCMP_CMP_EQ, persona)});
  // The flags are argument 0 of clone on x86_64, i386 and x32 alike (s390 differs).
  f.add(SCMP_ACT_ALLOW, "clone", {SCMP_A0(SCMP_CMP_MASKED_EQ, kNamespaceFlags, 0)});
  // clone3 passes its flags in memory, which BPF cannot read: refuse it as unimplemented
  // so glibc and others fall back to clone, whose flags the rule above checks.
  f.add(SCMP_ACT_ERRNO(ENOSYS), "clone3");
  return f.export_bpf();
}

struct Program {
  std::vector<sock_filter> insns;
  sock_fprog fprog{};
  Program() : insns(build_default_filter()) {
    fprog.len = static_cast<unsigned short>(insns.size());
    fprog.filter = insns.data();
  }
};

}  // namespace

const struct sock_fprog& default_seccomp_filter() {
  // A throwing initializer leaves the static uninitialized; the next call tries again.
  static const Program program;
  return program.fprog;
}

int load_seccomp_filter(const struct sock_fprog& prog) noexcept {
  long rc = ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
  return rc < 0 ? -1 : 0;
}

}  // namespace builder::exec
