// exec/sandbox_child.h — internal to exec/: the plan the cloned child follows and the
// error record it sends back. run() (sandbox.cpp) fills a ChildPlan with pointers into
// strings it owns, clone()s, and the child (sandbox_child.cpp) walks the plan without
// allocating, locking or throwing. Nothing outside exec/ should include this.
#pragma once

#include <linux/filter.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>

namespace builder::exec::detail {

/// Every step the child can fail at. The parent turns (step, errno, index) into
/// SysError("sandbox: <step>", <path>); keep step_call() in sync.
enum class Step : int32_t {
  kPdeathsig,
  kParentGone,
  kMakePrivate,
  kChdirLayers,
  kMountOverlay,
  kOpenBindSource,
  kBindReadonly,
  kChdirRoot,
  kPivotRoot,
  kDetachOldRoot,
  kMkdirMountPoint,
  kMountProc,
  kMountDev,
  kMknod,
  kSymlink,
  kMountDevpts,
  kMountShm,
  kMountMqueue,
  kMountSys,
  kNotADirectory,
  kMaskPath,
  kReadonlyPath,
  kFileData,
  kCloseFds,
  kJoinCgroup,
  kJoinNetwork,
  kDumpable,
  kCapBound,
  kSeccomp,
  kCapSet,
  kBindTarget,
  kBindMount,
  kOverlayMount,
  kTmpfsMount,
  kSethostname,
  kLoopback,
  kMkdirCwd,
  kChdirCwd,
  kSetgroups,
  kSetgid,
  kSetuid,
  kStdio,
  kExec,
};

/// Written by the child to the sync socket (SOCK_SEQPACKET: one record per packet).
/// `index` selects the path within the step (which bind mount, which device node).
struct ErrorRecord {
  int32_t step;
  int32_t err;
  int32_t index;
};

/// A bind mount, prepared in the parent. The child clones the source tree with
/// open_tree() while host paths are still visible, then attaches it after pivot_root,
/// so the target is resolved inside the container root (image symlinks cannot point
/// it at the host).
struct BindPlan {
  const char* source;  ///< host path
  char* target;        ///< absolute container path; mutable for the in-place mkdir -p
  bool source_is_dir;
  bool readonly;
  int tree_fd;  ///< set by the child
  /// An overlay made with fsopen() instead of a bind: lowerdir (and upperdir/workdir)
  /// option values, or null.
  const char* overlay_lower = nullptr;
  const char* overlay_upper = nullptr;
  const char* overlay_work = nullptr;
  /// A tmpfs mounted at the target instead (mount data, e.g. "size=65536"), or null.
  bool tmpfs = false;
  const char* tmpfs_data = nullptr;
  /// A file with these bytes instead: written to the child's private tmpfs at `source`
  /// (a path below ChildPlan::files_dir) and bound from there.
  const char* file_data = nullptr;
  size_t file_len = 0;
  uint32_t file_mode = 0444, file_uid = 0, file_gid = 0;
  /// Skipped when its target cannot be made (the sandbox's own /etc files).
  bool optional = false;
};

/// Fixed container mount points, created when missing (see stub cleanup in run()).
inline constexpr const char* kProcDir = "/proc";
inline constexpr const char* kDevDir = "/dev";
inline constexpr const char* kSysDir = "/sys";
/// Order of the mount points in error records of Step::kMkdirMountPoint.
inline constexpr const char* kMountPoints[] = {kProcDir, kDevDir, kSysDir};

struct DevNode {
  const char* path;
  unsigned major;
  unsigned minor;
};
/// Device nodes of the minimal /dev, as Docker creates them (mode 0666).
inline constexpr DevNode kDevNodes[] = {
    {"/dev/null", 1, 3},   {"/dev/zero", 1, 5},    {"/dev/full", 1, 7},
    {"/dev/random", 1, 8}, {"/dev/urandom", 1, 9}, {"/dev/tty", 5, 0},
};
struct DevLink {
  const char* target;
  const char* path;
};
inline constexpr DevLink kDevLinks[] = {
    {"/proc/self/fd", "/dev/fd"},     {"/proc/self/fd/0", "/dev/stdin"},
    {"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"},
    {"pts/ptmx", "/dev/ptmx"},
};

/// Hidden from the container (Docker's masked paths): a directory is covered by an
/// empty read-only tmpfs, anything else by a bind of a verified /dev/null.
inline constexpr const char* kMaskedPaths[] = {
    "/proc/acpi",          "/proc/asound",       "/proc/interrupts",
    "/proc/kcore",         "/proc/keys",         "/proc/latency_stats",
    "/proc/sched_debug",   "/proc/scsi",         "/proc/timer_list",
    "/proc/timer_stats",   "/sys/devices/virtual/powercap", "/sys/firmware",
};
/// Made read-only (Docker's readonly paths).
inline constexpr const char* kReadonlyPaths[] = {
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};

/// Docker's default capabilities: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID
/// SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP.
inline constexpr uint64_t kDefaultCaps = 0x00000000a80425fbULL;

/// Everything the child needs; all pointers stay valid in the child's copy of the
/// parent's memory (clone without CLONE_VM).
struct ChildPlan {
  int sync_fd = -1;      ///< child end of the sync socketpair (CLOEXEC)
  int parent_pidfd = -1;  ///< pidfd of the parent process, -1 if unsupported
  int stdio[3] = {-1, -1, -1};

  const char* layers_base = nullptr;  ///< chdir target before the overlay mount, or null
  const char* root = nullptr;         ///< absolute host path of the root mount point
  const char* overlay_data = nullptr;
  unsigned long overlay_flags = 0;

  bool new_net = true;
  int netns_fd = -1;  ///< join this network namespace (setns) instead of a new one
  const char* hostname = nullptr;
  size_t hostname_len = 0;

  BindPlan* binds = nullptr;
  size_t nbinds = 0;

  char* cwd = nullptr;  ///< mutable copy for the in-place mkdir -p

  /// Private tmpfs for file_data binds, mounted in the child's namespace only.
  const char* files_dir = nullptr;

  /// cgroup.procs files the child joins (writes "0" to) before anything else.
  const char* const* cgroup_procs = nullptr;
  size_t ncgroup_procs = 0;

  /// Docker's defaults unless privileged: bounding set and capabilities, masked and
  /// read-only paths, read-only /sys, the seccomp filter (null: none).
  bool privileged = false;
  /// Bounding/permitted/effective set for uid 0: Docker's defaults (or, privileged,
  /// everything builder holds), never more than builder holds.
  uint64_t caps = kDefaultCaps;
  int last_cap = 40;              ///< /proc/sys/kernel/cap_last_cap
  const struct sock_fprog* seccomp = nullptr;

  uint32_t uid = 0;
  uint32_t gid = 0;
  const gid_t* groups = nullptr;
  size_t ngroups = 0;

  /// The container's first program (exec/init/builder_init.c) as a sealed memfd, and
  /// its argv: the sync fd number (kInitSyncFd), the exec step, the PATH candidates,
  /// "--" and the command's argv. It execs the command with `envp`.
  int init_fd = -1;
  char* const* init_argv = nullptr;
  char* const* envp = nullptr;
};

/// The descriptor builder-init reports an exec failure on (the sync socket's copy).
inline constexpr int kInitSyncFd = 3;

/// The clone() entry point. Never returns: execve()s or _exit()s.
int child_main(void* plan);

/// "sandbox: <step>" for SysError; the path is chosen by the parent.
const char* step_call(Step step);

}  // namespace builder::exec::detail
