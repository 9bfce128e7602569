// exec/sandbox_child.cpp — the code that runs between clone() and execve().
// Rules (STYLE.md): no allocation, no locks, no exceptions, no stdio. Only system
// calls and stack buffers; every failure becomes an ErrorRecord on the sync socket and
// _exit(). Anything that needs a string is prepared by run() in the parent.
#include "exec/sandbox_child.h"

#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <linux/close_range.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

namespace builder::exec::detail {

const char* step_call(Step step) {
  switch (step) {
    case Step::kPdeathsig: return "sandbox: prctl(PR_SET_PDEATHSIG)";
    case Step::kParentGone: return "sandbox: parent exited before the child started";
    case Step::kMakePrivate: return "sandbox: make mounts private";
    case Step::kChdirLayers: return "sandbox: chdir to layers base";
    case Step::kMountOverlay: return "sandbox: mount overlay on";
    case Step::kOpenBindSource: return "sandbox: open bind mount source";
    case Step::kBindReadonly: return "sandbox: make bind mount read-only";
    case Step::kChdirRoot: return "sandbox: chdir to root";
    case Step::kPivotRoot: return "sandbox: pivot_root";
    case Step::kDetachOldRoot: return "sandbox: detach old root";
    case Step::kMkdirMountPoint: return "sandbox: create mount point";
    case Step::kMountProc: return "sandbox: mount proc on";
    case Step::kMountDev: return "sandbox: mount tmpfs on";
    case Step::kMknod: return "sandbox: mknod";
    case Step::kSymlink: return "sandbox: symlink";
    case Step::kMountDevpts: return "sandbox: mount devpts on";
    case Step::kMountShm: return "sandbox: mount tmpfs on";
    case Step::kMountMqueue: return "sandbox: mount mqueue on";
    case Step::kMountSys: return "sandbox: mount sysfs on";
    case Step::kBindTarget: return "sandbox: create bind mount target";
    case Step::kBindMount: return "sandbox: bind mount on";
    case Step::kOverlayMount: return "sandbox: mount overlay for";
    case Step::kTmpfsMount: return "sandbox: mount tmpfs on";
    case Step::kSethostname: return "sandbox: sethostname";
    case Step::kLoopback: return "sandbox: bring up loopback";
    case Step::kMkdirCwd: return "sandbox: create working directory";
    case Step::kChdirCwd: return "sandbox: chdir to working directory";
    case Step::kSetgroups: return "sandbox: setgroups";
    case Step::kSetgid: return "sandbox: setgid";
    case Step::kSetuid: return "sandbox: setuid";
    case Step::kStdio: return "sandbox: set up stdio";
    case Step::kExec: return "sandbox: exec";
  }
  return "sandbox: unknown step";
}

namespace {

[[noreturn]] void fail(const ChildPlan& p, Step step, int err, int index = 0) {
  ErrorRecord rec{static_cast<int32_t>(step), err, index};
  // Best effort: if the parent is gone there is nobody to tell.
  (void)!::write(p.sync_fd, &rec, sizeof rec);
  ::_exit(127);
}

void check(const ChildPlan& p, int rc, Step step, int index = 0) {
  if (rc < 0) fail(p, step, errno, index);
}

/// mkdir -p on a mutable absolute path, in place: each '/' is replaced by '\0' in turn.
/// Returns 0 or -1 with errno. Existing components (of any type) are left to the
/// caller's next call (chdir, mount) to judge.
int mkdir_p(char* path, mode_t mode) {
  for (char* s = path + 1; *s; ++s) {
    if (*s != '/') continue;
    *s = '\0';
    int rc = ::mkdir(path, mode);
    int err = errno;
    *s = '/';
    if (rc < 0 && err != EEXIST) {
      errno = err;
      return -1;
    }
  }
  if (::mkdir(path, mode) < 0 && errno != EEXIST) return -1;
  return 0;
}

/// Creates the parent directories of `path` and an empty file at `path` (bind mount
/// target for a non-directory source).
int make_file_target(char* path) {
  char* slash = std::strrchr(path, '/');
  if (slash && slash != path) {
    *slash = '\0';
    int rc = mkdir_p(path, 0755);
    int err = errno;
    *slash = '/';
    if (rc < 0) {
      errno = err;
      return -1;
    }
  }
  int fd = ::open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
  if (fd < 0) return errno == EISDIR ? 0 : -1;  // mount(2) reports the type mismatch
  ::close(fd);
  return 0;
}

/// Creates a missing fixed mount point; reports whether it is usable.
bool ensure_dir(const ChildPlan& p, int index, bool required) {
  const char* path = kMountPoints[index];
  struct stat st;
  if (::stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return true;
  if (::mkdir(path, 0755) == 0 || errno == EEXIST) return true;
  // A read-only root without /sys simply gets no sysfs; /proc and /dev are required.
  if (!required) return false;
  fail(p, Step::kMkdirMountPoint, errno, index);
}

void bring_up_loopback(const ChildPlan& p) {
  int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  check(p, s, Step::kLoopback);
  struct ifreq ifr;
  std::memset(&ifr, 0, sizeof ifr);
  std::memcpy(ifr.ifr_name, "lo", 3);
  check(p, ::ioctl(s, SIOCGIFFLAGS, &ifr), Step::kLoopback);
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  check(p, ::ioctl(s, SIOCSIFFLAGS, &ifr), Step::kLoopback);
  ::close(s);
}

/// The container's /dev: a small tmpfs with the usual nodes, not the host's devtmpfs.
void setup_dev(const ChildPlan& p) {
  check(p, ::mount("tmpfs", kDevDir, "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k"),
        Step::kMountDev);
  int i = 0;
  for (const DevNode& n : kDevNodes) {
    check(p, ::mknod(n.path, S_IFCHR | 0666, makedev(n.major, n.minor)), Step::kMknod, i);
    ++i;
  }
  i = 0;
  for (const DevLink& l : kDevLinks) {
    check(p, ::symlink(l.target, l.path), Step::kSymlink, i);
    ++i;
  }
  check(p, ::mkdir("/dev/pts", 0755), Step::kMountDevpts);
  // newinstance: the container gets its own pty numbering, not the host's.
  check(p, ::mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                   "newinstance,ptmxmode=0666,mode=0620,gid=5"),
        Step::kMountDevpts);
  check(p, ::mkdir("/dev/shm", 01777), Step::kMountShm);
  check(p, ::mount("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                   "mode=1777,size=65536k"),
        Step::kMountShm);
  check(p, ::mkdir("/dev/mqueue", 0755), Step::kMountMqueue);
  // Mounted from inside the new IPC namespace, so it shows this container's queues.
  check(p, ::mount("mqueue", "/dev/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr),
        Step::kMountMqueue);
}

/// Moves `fd` above the stdio range so that the dup2() calls cannot clobber it.
int lift_fd(const ChildPlan& p, int fd) {
  int lifted = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  check(p, lifted, Step::kStdio);
  return lifted;
}

void setup_stdio(const ChildPlan& p) {
  int lifted[3];
  for (int i = 0; i < 3; ++i) lifted[i] = lift_fd(p, p.stdio[i]);
  // dup2 clears FD_CLOEXEC on the new descriptor; the lifted copies close at execve.
  for (int i = 0; i < 3; ++i) check(p, ::dup2(lifted[i], i), Step::kStdio);
  // Other threads of builder (or its libraries) may have opened descriptors without
  // O_CLOEXEC; the container must not inherit them. Everything above stdio closes at
  // execve, including the sync socket, whose closing tells the parent we started.
  check(p, ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC), Step::kStdio);
}

/// Signals: run() blocked all of them around clone() so no parent handler can run
/// here. Ignored dispositions survive execve, so reset every one to the default
/// (the builder may ignore SIGPIPE; `yes | head` in a RUN must still work).
void reset_signals() {
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    ::sigaction(sig, &sa, nullptr);  // fails harmlessly for libc-reserved signals
  }
}

/// Hook for the security step (seccomp, capabilities, masked paths).
void apply_security(const ChildPlan&) {}

[[noreturn]] void exec_candidates(const ChildPlan& p) {
  int last_err = ENOENT;
  bool saw_eacces = false;
  for (size_t i = 0; i < p.ncandidates; ++i) {
    ::execve(p.candidates[i], p.argv, p.envp);
    int err = errno;
    // execvp semantics: keep searching past missing or unreadable candidates, but
    // report EACCES if one of them existed and could not be executed.
    if (err == EACCES) {
      saw_eacces = true;
      continue;
    }
    if (err == ENOENT || err == ENOTDIR || err == ESTALE || err == ENODEV || err == ETIMEDOUT) {
      last_err = err;
      continue;
    }
    last_err = err;
    break;
  }
  fail(p, Step::kExec, saw_eacces && last_err == ENOENT ? EACCES : last_err);
}

}  // namespace

int child_main(void* arg) {
  const ChildPlan& p = *static_cast<ChildPlan*>(arg);
  ChildPlan& mp = *static_cast<ChildPlan*>(arg);  // our private copy-on-write copy

  // If builder dies, so does the container (its PID namespace goes with its init).
  check(p, ::prctl(PR_SET_PDEATHSIG, SIGKILL), Step::kPdeathsig);
  // getppid() is 0 in a new PID namespace, so ask the parent's pidfd instead: if the
  // parent died before prctl() above, no SIGKILL will ever come.
  if (p.parent_pidfd >= 0) {
    struct pollfd pfd{p.parent_pidfd, POLLIN, 0};
    if (::poll(&pfd, 1, 0) != 0) ::_exit(127);
  }
  // Nodes and modes below are exact; the executed process gets the usual 022.
  ::umask(0);

  // Nothing we mount may propagate back to the host.
  check(p, ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), Step::kMakePrivate);
  if (p.layers_base) check(p, ::chdir(p.layers_base), Step::kChdirLayers);
  check(p, ::mount("overlay", p.root, "overlay", p.overlay_flags, p.overlay_data),
        Step::kMountOverlay);

  // Clone bind sources while host paths are visible; attach them after pivot_root.
  for (size_t i = 0; i < p.nbinds; ++i) {
    BindPlan& b = mp.binds[i];
    int idx = static_cast<int>(i);
    if (b.tmpfs) continue;  // mounted inside the root, below
    if (b.overlay_lower) {
      int fs = ::fsopen("overlay", FSOPEN_CLOEXEC);
      check(p, fs, Step::kOverlayMount, idx);
      check(p, ::fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir", b.overlay_lower, 0), Step::kOverlayMount, idx);
      if (b.overlay_upper) {
        check(p, ::fsconfig(fs, FSCONFIG_SET_STRING, "upperdir", b.overlay_upper, 0), Step::kOverlayMount, idx);
        check(p, ::fsconfig(fs, FSCONFIG_SET_STRING, "workdir", b.overlay_work, 0), Step::kOverlayMount, idx);
      }
      check(p, ::fsconfig(fs, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0), Step::kOverlayMount, idx);
      b.tree_fd = ::fsmount(fs, FSMOUNT_CLOEXEC, b.readonly ? MOUNT_ATTR_RDONLY : 0);
      check(p, b.tree_fd, Step::kOverlayMount, idx);
      ::close(fs);
      continue;
    }
    b.tree_fd = ::open_tree(AT_FDCWD, b.source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
    check(p, b.tree_fd, Step::kOpenBindSource, idx);
    if (b.readonly) {
      struct mount_attr attr;
      std::memset(&attr, 0, sizeof attr);
      attr.attr_set = MOUNT_ATTR_RDONLY;
      check(p, ::mount_setattr(b.tree_fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr),
            Step::kBindReadonly, static_cast<int>(i));
    }
  }

  // pivot_root(".", ".") stacks the old root on top of the new one; detaching "."
  // then removes it without needing a directory for it inside the image.
  check(p, ::chdir(p.root), Step::kChdirRoot);
  check(p, static_cast<int>(::syscall(SYS_pivot_root, ".", ".")), Step::kPivotRoot);
  check(p, ::umount2(".", MNT_DETACH), Step::kDetachOldRoot);
  check(p, ::chdir("/"), Step::kChdirRoot);

  // From here every path resolves inside the container root.
  ensure_dir(p, 0, true);
  check(p, ::mount("proc", kProcDir, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr),
        Step::kMountProc);
  ensure_dir(p, 1, true);
  setup_dev(p);
  if (ensure_dir(p, 2, false)) {
    check(p, ::mount("sysfs", kSysDir, "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr),
          Step::kMountSys);
  }

  for (size_t i = 0; i < p.nbinds; ++i) {
    BindPlan& b = mp.binds[i];
    int idx = static_cast<int>(i);
    check(p, b.source_is_dir ? mkdir_p(b.target, 0755) : make_file_target(b.target),
          Step::kBindTarget, idx);
    if (b.tmpfs) {
      check(p, ::mount("tmpfs", b.target, "tmpfs", MS_NOSUID | MS_NODEV, b.tmpfs_data), Step::kTmpfsMount, idx);
      continue;
    }
    check(p, ::move_mount(b.tree_fd, "", AT_FDCWD, b.target, MOVE_MOUNT_F_EMPTY_PATH),
          Step::kBindMount, idx);
    ::close(b.tree_fd);
  }

  check(p, ::sethostname(p.hostname, p.hostname_len), Step::kSethostname);
  if (p.new_net) bring_up_loopback(p);

  check(p, mkdir_p(p.cwd, 0755), Step::kMkdirCwd);
  check(p, ::chdir(p.cwd), Step::kChdirCwd);

  // Groups first: after setuid we may no longer change them. Raw system calls: glibc's
  // wrappers broadcast the change to every thread of the parent (SIGSETXID) and would
  // wait forever on a futex for threads that do not exist in this copy of the process.
  check(p, static_cast<int>(::syscall(SYS_setgroups, p.ngroups, p.groups)), Step::kSetgroups);
  check(p, static_cast<int>(::syscall(SYS_setresgid, p.gid, p.gid, p.gid)), Step::kSetgid);
  check(p, static_cast<int>(::syscall(SYS_setresuid, p.uid, p.uid, p.uid)), Step::kSetuid);

  apply_security(p);
  setup_stdio(p);
  ::umask(022);
  reset_signals();
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  exec_candidates(p);
}

}  // namespace builder::exec::detail
