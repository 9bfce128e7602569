// exec/sandbox_child.cpp — the code that runs between clone() and execve().
// Rules (STYLE.md): no allocation, no locks, no exceptions, no stdio. Only system
// calls and stack buffers; every failure becomes an ErrorRecord on the sync socket and
// _exit(). Anything that needs a string is prepared by run() in the parent.
//
// Containment, in order: every inherited descriptor but our own is closed first (no
// host directory can be reached through /proc/self/fd, CVE-2024-21626), the process is
// made non-dumpable until execve (nothing may ptrace it or open its /proc/<pid>/exe,
// CVE-2016-9962 and CVE-2019-5736), it joins its cgroups and a fresh cgroup namespace.
// After pivot_root every container path is opened with openat2(RESOLVE_IN_ROOT |
// RESOLVE_NO_MAGICLINKS) and mounted on through that descriptor (move_mount), so image
// symlinks cannot redirect a mount to the host (CVE-2019-16884, CVE-2021-30465);
// /proc, /dev and /sys must be plain directories. Then Docker's masked and read-only
// paths, the capability bounding set, the seccomp filter (loaded while we still hold
// CAP_SYS_ADMIN, since no_new_privs stays off as in BuildKit), the user, and the final
// capability sets with empty inheritable and ambient sets (CVE-2022-24769).
#include "exec/sandbox_child.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
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
#include <utility>

#include "exec/seccomp.h"

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
    case Step::kNotADirectory: return "sandbox: the image's mount point is a symlink or not a directory:";
    case Step::kMaskPath: return "sandbox: mask";
    case Step::kReadonlyPath: return "sandbox: make read-only";
    case Step::kFileData: return "sandbox: write file for";
    case Step::kCloseFds: return "sandbox: close inherited descriptors";
    case Step::kJoinCgroup: return "sandbox: join cgroup";
    case Step::kJoinNetwork: return "sandbox: join network namespace";
    case Step::kDumpable: return "sandbox: prctl(PR_SET_DUMPABLE)";
    case Step::kCapBound: return "sandbox: drop capability from the bounding set";
    case Step::kSeccomp: return "sandbox: load seccomp filter";
    case Step::kCapSet: return "sandbox: set capabilities";
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

/// openat2(2), which glibc 2.36 does not wrap.
int openat2_fd(int dirfd, const char* path, uint64_t flags, uint64_t resolve) {
  struct open_how how;
  std::memset(&how, 0, sizeof how);
  how.flags = flags;
  how.resolve = resolve;
  return static_cast<int>(::syscall(SYS_openat2, dirfd, path, &how, sizeof how));
}

/// Container paths resolve inside the root; /proc/<pid>/fd-style links are refused.
constexpr uint64_t kInRoot = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;

/// An O_PATH descriptor of the container path `path` (absolute, clean) below `root`,
/// creating missing directories on the way and, unless `dir`, an empty file as the
/// last component: a mount point. Symlinks of the image resolve inside the root.
/// Returns -1 with errno on failure. `path` is modified and restored in place.
int open_mount_point(int root, char* path, bool dir) {
  if (path[0] == '/' && path[1] == '\0') return openat2_fd(root, "/", O_PATH | O_CLOEXEC, kInRoot);
  for (char* s = path + 1;; ++s) {
    if (*s != '/' && *s != '\0') continue;
    const char saved = *s;
    const bool last = saved == '\0';
    *s = '\0';
    int fd = openat2_fd(root, path, O_PATH | O_CLOEXEC, kInRoot);
    if (fd < 0 && errno == ENOENT) {
      char* slash = std::strrchr(path, '/');
      *slash = '\0';
      int parent = openat2_fd(root, slash == path ? "/" : path, O_PATH | O_DIRECTORY | O_CLOEXEC, kInRoot);
      *slash = '/';
      int rc = parent;
      if (parent >= 0) {
        if (!last || dir) {
          rc = ::mkdirat(parent, slash + 1, 0755);
        } else {
          rc = ::openat(parent, slash + 1, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0644);
          if (rc >= 0) rc = ::close(rc);
        }
        int err = errno;
        ::close(parent);
        errno = err;
      }
      if (rc < 0 && errno != EEXIST) {
        *s = saved;
        return -1;
      }
      fd = openat2_fd(root, path, O_PATH | O_CLOEXEC, kInRoot);
    }
    *s = saved;
    if (fd < 0 || last) return fd;
    ::close(fd);
  }
}

/// Attaches the detached mount `tree` on the descriptor `target` and closes `tree`.
int attach(int tree, int target) {
  int rc = ::move_mount(tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
  int err = errno;
  ::close(tree);
  errno = err;
  return rc;
}

/// A new mount of `fstype` with `data` ("k=v,k2=v2", at most 255 bytes) and mount
/// attributes `attrs`, attached on `target`. Returns 0 or -1 with errno.
int mount_fs_on(const char* fstype, const char* data, unsigned attrs, int target) {
  int fs = ::fsopen(fstype, FSOPEN_CLOEXEC);
  if (fs < 0) return -1;
  char buf[256];
  size_t n = data ? std::strlen(data) : 0;
  int rc = 0;
  if (n >= sizeof buf) {
    errno = E2BIG;
    rc = -1;
  } else if (n > 0) {
    std::memcpy(buf, data, n + 1);
    for (char* opt = buf; rc == 0 && opt && *opt;) {
      char* comma = std::strchr(opt, ',');
      if (comma) *comma = '\0';
      char* eq = std::strchr(opt, '=');
      if (eq) {
        *eq = '\0';
        rc = ::fsconfig(fs, FSCONFIG_SET_STRING, opt, eq + 1, 0);
      } else {
        rc = ::fsconfig(fs, FSCONFIG_SET_FLAG, opt, nullptr, 0);
      }
      opt = comma ? comma + 1 : nullptr;
    }
  }
  if (rc == 0) rc = ::fsconfig(fs, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0);
  int mnt = rc == 0 ? ::fsmount(fs, FSMOUNT_CLOEXEC, attrs) : -1;
  int err = errno;
  ::close(fs);
  if (mnt < 0) {
    errno = err;
    return -1;
  }
  return attach(mnt, target);
}

/// A fixed mount point (/proc, /dev, /sys) of the image: created when missing, and
/// refused unless it is a real directory, so a symlink in the image cannot move the
/// kernel's file systems (or the masks over them) elsewhere. Returns an O_PATH
/// descriptor, or -1 when `required` is false and it cannot be made (a read-only
/// root without /sys).
int fixed_mount_point(const ChildPlan& p, int root, int index, bool required) {
  const char* path = kMountPoints[index];
  constexpr uint64_t kNoLinks = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS;
  int fd = openat2_fd(root, path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, kNoLinks);
  if (fd >= 0) return fd;
  if (errno == ENOENT) {
    if (::mkdirat(root, path + 1, 0755) == 0 || errno == EEXIST) {
      fd = openat2_fd(root, path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, kNoLinks);
      if (fd >= 0) return fd;
    } else if (!required) {
      return -1;
    } else {
      fail(p, Step::kMkdirMountPoint, errno, index);
    }
  }
  if (errno == ELOOP || errno == ENOTDIR || errno == EXDEV) fail(p, Step::kNotADirectory, errno, index);
  fail(p, Step::kMkdirMountPoint, errno, index);
}

/// Closes every descriptor the child inherited except its own (sync socket, parent
/// pidfd, stdio, network namespace): other threads of builder may have had host
/// directories open without O_CLOEXEC, and a working directory such as
/// /proc/self/fd/7 must not reach them (CVE-2024-21626).
void close_inherited_fds(const ChildPlan& p) {
  int keep[7] = {p.sync_fd, p.parent_pidfd, p.stdio[0], p.stdio[1], p.stdio[2], p.netns_fd, p.init_fd};
  size_t n = 0;
  for (int fd : keep)
    if (fd >= 0) keep[n++] = fd;
  for (size_t i = 1; i < n; ++i)  // insertion sort: at most seven entries
    for (size_t j = i; j > 0 && keep[j - 1] > keep[j]; --j) std::swap(keep[j - 1], keep[j]);
  unsigned next = 0;
  for (size_t i = 0; i < n; ++i) {
    auto fd = static_cast<unsigned>(keep[i]);
    if (fd > next) check(p, ::close_range(next, fd - 1, 0), Step::kCloseFds);
    next = fd + 1;
  }
  check(p, ::close_range(next, ~0U, 0), Step::kCloseFds);
}

/// Joins the container's cgroups (writing "0" moves the writer), then unshares the
/// cgroup namespace so that the container sees its own group as the root.
void join_cgroups(const ChildPlan& p) {
  for (size_t i = 0; i < p.ncgroup_procs; ++i) {
    int fd = ::open(p.cgroup_procs[i], O_WRONLY | O_CLOEXEC);
    check(p, fd, Step::kJoinCgroup, static_cast<int>(i));
    check(p, static_cast<int>(::write(fd, "0", 1)), Step::kJoinCgroup, static_cast<int>(i));
    ::close(fd);
  }
  if (p.ncgroup_procs > 0) check(p, ::unshare(CLONE_NEWCGROUP), Step::kJoinCgroup);
}

/// Writes the file_data of bind `i` to the private tmpfs and clones it as a bind.
void prepare_file_bind(const ChildPlan& p, BindPlan& b, int i) {
  int fd = ::open(b.source, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, b.file_mode & 07777);
  check(p, fd, Step::kFileData, i);
  for (size_t off = 0; off < b.file_len;) {
    ssize_t w = ::write(fd, b.file_data + off, b.file_len - off);
    if (w < 0 && errno == EINTR) continue;
    check(p, static_cast<int>(w), Step::kFileData, i);
    off += static_cast<size_t>(w);
  }
  check(p, ::fchown(fd, b.file_uid, b.file_gid), Step::kFileData, i);
  check(p, ::fchmod(fd, b.file_mode & 07777), Step::kFileData, i);
  ::close(fd);
  b.tree_fd = ::open_tree(AT_FDCWD, b.source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  check(p, b.tree_fd, Step::kFileData, i);
}

/// Docker's masked paths: an empty read-only tmpfs over a directory, a bind of the
/// container's own /dev/null (checked to be the null device, not something planted)
/// over anything else. Paths this kernel lacks are skipped.
void mask_paths(const ChildPlan& p, int root) {
  int null_fd = openat2_fd(root, "/dev/null", O_PATH | O_NOFOLLOW | O_CLOEXEC, RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS);
  check(p, null_fd, Step::kMaskPath);
  struct stat st;
  check(p, ::fstat(null_fd, &st), Step::kMaskPath);
  if (!S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3)) fail(p, Step::kMaskPath, EPERM);
  int i = 0;
  for (const char* path : kMaskedPaths) {
    int fd = openat2_fd(root, path, O_PATH | O_NOFOLLOW | O_CLOEXEC, RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS);
    if (fd < 0 && errno == ENOENT) {
      ++i;
      continue;
    }
    check(p, fd, Step::kMaskPath, i);
    check(p, ::fstat(fd, &st), Step::kMaskPath, i);
    if (S_ISDIR(st.st_mode)) {
      check(p, mount_fs_on("tmpfs", nullptr, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, fd),
            Step::kMaskPath, i);
    } else {
      int tree = ::open_tree(null_fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
      check(p, tree, Step::kMaskPath, i);
      check(p, attach(tree, fd), Step::kMaskPath, i);
    }
    ::close(fd);
    ++i;
  }
  ::close(null_fd);
}

/// Docker's read-only paths: each bound onto itself read-only.
void readonly_paths(const ChildPlan& p, int root) {
  int i = 0;
  for (const char* path : kReadonlyPaths) {
    int fd = openat2_fd(root, path, O_PATH | O_NOFOLLOW | O_CLOEXEC, RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS);
    if (fd < 0 && errno == ENOENT) {
      ++i;
      continue;
    }
    check(p, fd, Step::kReadonlyPath, i);
    int tree = ::open_tree(fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
    check(p, tree, Step::kReadonlyPath, i);
    struct mount_attr attr;
    std::memset(&attr, 0, sizeof attr);
    attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
    check(p, ::mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr), Step::kReadonlyPath, i);
    check(p, attach(tree, fd), Step::kReadonlyPath, i);
    ::close(fd);
    ++i;
  }
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
void setup_dev(const ChildPlan& p, int dev_fd) {
  check(p, mount_fs_on("tmpfs", "mode=755,size=65536k", MOUNT_ATTR_NOSUID | MOUNT_ATTR_STRICTATIME, dev_fd),
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

/// Narrows the bounding set to the container's capabilities and loads the seccomp
/// filter. Runs as root before the user switch: seccomp without no_new_privs needs
/// CAP_SYS_ADMIN, and dropping from the bounding set needs CAP_SETPCAP.
void restrict_privileges(const ChildPlan& p) {
  if (p.privileged) return;  // p.caps is all we hold; the bounding set stays as it is
  for (int cap = 0; cap <= p.last_cap; ++cap)
    if (!(p.caps >> cap & 1)) check(p, ::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), Step::kCapBound, cap);
  if (p.seccomp)
    check(p, load_seccomp_filter(*p.seccomp), Step::kSeccomp);
}

/// After the user switch: root keeps the container's capabilities as permitted and
/// effective, any other user none (as Docker: they stay in the bounding set only);
/// inheritable and ambient sets are empty, so no file capability or later exec can
/// widen them (CVE-2022-24769).
void set_capabilities(const ChildPlan& p) {
  uint64_t caps = p.uid == 0 ? p.caps : 0;
  struct __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  std::memset(data, 0, sizeof data);
  data[0].effective = data[0].permitted = static_cast<uint32_t>(caps);
  data[1].effective = data[1].permitted = static_cast<uint32_t>(caps >> 32);
  check(p, static_cast<int>(::syscall(SYS_capset, &hdr, data)), Step::kCapSet);
  check(p, ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), Step::kCapSet);
}

/// Execs builder-init from its memfd with the sync socket as kInitSyncFd, without
/// close-on-exec: builder-init reports a command it cannot exec there.
[[noreturn]] void exec_init(const ChildPlan& p) {
  int init_fd = p.init_fd;
  if (init_fd == kInitSyncFd) init_fd = lift_fd(p, init_fd);
  if (p.sync_fd != kInitSyncFd) check(p, ::dup2(p.sync_fd, kInitSyncFd), Step::kStdio);
  else check(p, ::fcntl(kInitSyncFd, F_SETFD, 0), Step::kStdio);
  ::syscall(SYS_execveat, init_fd, "", p.init_argv, p.envp, AT_EMPTY_PATH);
  fail(p, Step::kExec, errno, 1);
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
  // Until execve we are a copy of builder: nothing may ptrace us or open our
  // /proc/<pid>/exe (the host's builder binary). execve makes the command dumpable.
  check(p, ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), Step::kDumpable);
  close_inherited_fds(p);
  join_cgroups(p);
  if (p.netns_fd >= 0) check(p, ::setns(p.netns_fd, CLONE_NEWNET), Step::kJoinNetwork);
  // Nodes and modes below are exact; the executed process gets the usual 022.
  ::umask(0);

  // Nothing we mount may propagate back to the host.
  check(p, ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), Step::kMakePrivate);
  if (p.layers_base) check(p, ::chdir(p.layers_base), Step::kChdirLayers);
  check(p, ::mount("overlay", p.root, "overlay", p.overlay_flags, p.overlay_data),
        Step::kMountOverlay);

  // Files with given bytes (secrets, /etc/hosts) live on a tmpfs of this namespace.
  if (p.files_dir)
    check(p, ::mount("tmpfs", p.files_dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700"), Step::kFileData);

  // Clone bind sources while host paths are visible; attach them after pivot_root.
  for (size_t i = 0; i < p.nbinds; ++i) {
    BindPlan& b = mp.binds[i];
    int idx = static_cast<int>(i);
    if (b.tmpfs) continue;  // mounted inside the root, below
    if (b.file_data) {
      prepare_file_bind(p, b, idx);
    } else if (b.overlay_lower) {
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
    } else {
      b.tree_fd = ::open_tree(AT_FDCWD, b.source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
      check(p, b.tree_fd, Step::kOpenBindSource, idx);
    }
    // Bind mounts are never a way to gain privileges: nosuid, nodev.
    struct mount_attr attr;
    std::memset(&attr, 0, sizeof attr);
    attr.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (b.readonly ? MOUNT_ATTR_RDONLY : 0);
    check(p, ::mount_setattr(b.tree_fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr),
          Step::kBindReadonly, idx);
  }

  // pivot_root(".", ".") stacks the old root on top of the new one; detaching "."
  // then removes it without needing a directory for it inside the image.
  check(p, ::chdir(p.root), Step::kChdirRoot);
  check(p, static_cast<int>(::syscall(SYS_pivot_root, ".", ".")), Step::kPivotRoot);
  check(p, ::umount2(".", MNT_DETACH), Step::kDetachOldRoot);
  check(p, ::chdir("/"), Step::kChdirRoot);

  // From here every path is opened below `root`, never followed as a string.
  int root = ::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  check(p, root, Step::kChdirRoot);
  int proc_fd = fixed_mount_point(p, root, 0, true);
  check(p, mount_fs_on("proc", nullptr, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, proc_fd),
        Step::kMountProc);
  ::close(proc_fd);
  int dev_fd = fixed_mount_point(p, root, 1, true);
  setup_dev(p, dev_fd);
  ::close(dev_fd);
  int sys_fd = fixed_mount_point(p, root, 2, false);
  if (sys_fd >= 0) {
    unsigned ro = p.privileged ? 0 : MOUNT_ATTR_RDONLY;
    check(p, mount_fs_on("sysfs", nullptr, ro | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, sys_fd),
          Step::kMountSys);
    ::close(sys_fd);
  }

  for (size_t i = 0; i < p.nbinds; ++i) {
    BindPlan& b = mp.binds[i];
    int idx = static_cast<int>(i);
    int target = open_mount_point(root, b.target, b.source_is_dir && !b.file_data);
    if (target < 0 && b.optional) {  // e.g. /etc/hosts on a read-only root without /etc
      if (b.tree_fd >= 0) ::close(b.tree_fd);
      continue;
    }
    check(p, target, Step::kBindTarget, idx);
    if (b.tmpfs) {
      check(p, mount_fs_on("tmpfs", b.tmpfs_data, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, target), Step::kTmpfsMount, idx);
    } else {
      check(p, attach(b.tree_fd, target), Step::kBindMount, idx);
    }
    ::close(target);
  }

  if (!p.privileged) {
    mask_paths(p, root);
    readonly_paths(p, root);
  }

  check(p, ::sethostname(p.hostname, p.hostname_len), Step::kSethostname);
  if (p.new_net) bring_up_loopback(p);

  int cwd = open_mount_point(root, p.cwd, true);
  check(p, cwd, Step::kMkdirCwd);
  check(p, ::fchdir(cwd), Step::kChdirCwd);
  ::close(cwd);
  ::close(root);

  restrict_privileges(p);
  // Groups first: after setuid we may no longer change them. Raw system calls: glibc's
  // wrappers broadcast the change to every thread of the parent (SIGSETXID) and would
  // wait forever on a futex for threads that do not exist in this copy of the process.
  check(p, static_cast<int>(::syscall(SYS_setgroups, p.ngroups, p.groups)), Step::kSetgroups);
  check(p, static_cast<int>(::syscall(SYS_setresgid, p.gid, p.gid, p.gid)), Step::kSetgid);
  check(p, static_cast<int>(::syscall(SYS_setresuid, p.uid, p.uid, p.uid)), Step::kSetuid);
  set_capabilities(p);

  setup_stdio(p);
  ::umask(022);
  reset_signals();
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  exec_init(p);
}

}  // namespace builder::exec::detail
