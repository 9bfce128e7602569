// exec/cgroup.h — one container's cgroups: the pids and memory limits of a RUN step or
// container, OOM-kill detection, killing whatever is left, and repair of groups left by a
// dead builder. Works on cgroup v1 (hybrid hosts) and on the unified v2 hierarchy.
// Knows nothing of sandboxes or the store; sandbox.cpp and the store's repair call it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace builder::exec {

/// Limits of one container; 0 means no limit.
struct CgroupLimits {
  int64_t pids_max = 0;    ///< tasks (processes and threads) at once
  int64_t memory_max = 0;  ///< bytes of memory; swap is not allowed beyond it
};

/// One container's cgroup, in every hierarchy of this host that holds a controller we use
/// (pids, memory): one directory per hierarchy, all with the same name.
///
/// Layout: <parent>/builder/<owner pid>-<owner start time>-<pid ns inode>-<counter>, where
/// <parent> is the creating process's own cgroup in that hierarchy (so the containers stay
/// inside whatever limits the builder itself runs under) — on v2, when that group holds
/// processes and so cannot delegate controllers, the hierarchy's root instead. The owner's
/// start time (field 22 of /proc/<pid>/stat) and pid namespace let remove_stale_cgroups()
/// tell a dead owner from a reused pid. Entries of another shape are never touched.
///
/// The container's init joins by writing "0" to each of procs_files() itself (in the
/// cloned child, before execve). Thread-safe: distinct objects may be used concurrently.
class Cgroup {
 public:
  /// Creates the groups and sets the limits. Throws base::SysError naming the file on
  /// failure (nothing is left behind then). When the host has no usable controller (none
  /// mounted, or cgroupfs read-only or not ours): an object with no procs files, available()
  /// false; unavailable_reason() says why.
  static Cgroup create(const CgroupLimits& limits);

  /// An unavailable group (no directories).
  Cgroup() = default;
  /// Kills any task still inside, then removes every directory; never throws (logs).
  ~Cgroup();
  Cgroup(Cgroup&& o) noexcept;
  Cgroup& operator=(Cgroup&& o) noexcept;
  Cgroup(const Cgroup&) = delete;
  Cgroup& operator=(const Cgroup&) = delete;

  /// Absolute paths of the cgroup.procs files to join (one per hierarchy); empty when
  /// unavailable.
  const std::vector<std::string>& procs_files() const { return procs_; }
  /// The group's directories, one per hierarchy (for diagnostics and tests).
  const std::vector<std::string>& dirs() const { return dirs_; }
  bool available() const { return !dirs_.empty(); }
  /// Whether the kernel's OOM killer killed a task of this group (v1: memory.oom_control
  /// `oom_kill`; v2: memory.events `oom_kill`). False without a memory controller.
  bool oom_killed() const;
  /// Peak memory use in bytes (v1 memory.max_usage_in_bytes, v2 memory.peak) and peak task
  /// count (pids.peak), when the kernel reports them.
  std::optional<int64_t> memory_peak() const;
  std::optional<int64_t> pids_peak() const;
  /// Kills every task in the group (v2: cgroup.kill; v1: SIGKILL each pid of cgroup.procs
  /// until it stays empty). Never throws.
  void kill_all() noexcept;

 private:
  void destroy() noexcept;

  std::vector<std::string> dirs_;
  std::vector<bool> dir_v2_;  // per dirs_: in the unified (v2) hierarchy
  std::vector<std::string> procs_;
  std::string pids_dir_;    // one of dirs_, or empty
  std::string memory_dir_;  // one of dirs_, or empty
  bool memory_v2_ = false;
};

/// Why Cgroup::create() returns unavailable groups on this host; empty when it does not.
std::string cgroup_unavailable_reason();

/// The `builder` parent directories this process creates its groups in (one per
/// hierarchy); empty when unavailable.
std::vector<std::string> cgroup_parent_dirs();

/// Removes the groups under builder/ (in this process's parent dirs and at each
/// hierarchy's root) whose owner is dead or whose pid now names another process, killing
/// any task left inside first. Groups of live owners and of owners in another pid
/// namespace are kept. Called by the store's repair at start. Returns how many containers'
/// groups were removed. Never throws (logs).
int remove_stale_cgroups() noexcept;

}  // namespace builder::exec
