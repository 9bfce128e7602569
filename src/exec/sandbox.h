// exec/sandbox.h — runs one process in a fresh container: new mount, PID, IPC, UTS
// and (unless host networking) network namespaces, an overlayfs root over layer
// directories, pivot_root, a fresh /proc and a minimal /dev. The process is PID 1 of
// its namespace. Used by RUN steps (solver/ops) and by `builder run` (runtime), so it
// never mentions graphs or Dockerfiles.
//
// Structure: spawn() clones a helper child with the namespace flags and a sync socket.
// All strings the child needs are prepared before clone(); between clone() and execve()
// the child neither allocates nor throws: a failure writes an error record to the sync
// socket and _exits, and the parent raises SysError("sandbox: <step> ..."). Every
// mount is made inside the child's mount namespace, so the kernel removes them when the
// namespace dies; PR_SET_PDEATHSIG kills the child if builder dies.
#pragma once

#include <cerrno>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace builder::exec {

/// A mount besides the root: a bind of a host path, an overlay of host directories, or
/// a tmpfs.
struct BindMount {
  std::string source;  ///< host path (a bind)
  std::string target;  ///< absolute path inside the container
  bool readonly = true;
  /// An overlay instead of a bind: these directories (top-most first, at least two
  /// without an upper dir); with overlay_upper/overlay_work it is writable.
  std::vector<std::string> overlay_lowers;
  std::string overlay_upper, overlay_work;
  bool tmpfs = false;      ///< a fresh tmpfs instead of a bind
  int64_t tmpfs_size = 0;  ///< bytes; 0 = the kernel's default
  /// A single file with exactly these bytes instead of a bind: made on a private tmpfs
  /// that exists only inside the container's mount namespace (secrets, /etc/hosts), so
  /// the bytes never touch a host disk. Owned by file_uid:file_gid with file_mode.
  std::optional<std::string> file_data;
  uint32_t file_mode = 0444;
  uint32_t file_uid = 0, file_gid = 0;
};

/// How a container reaches the network.
enum class Network {
  None,     ///< its own network namespace with only `lo`
  Default,  ///< the builder's shared sandbox network (user-mode NAT, see network.h);
            ///< falls back to None with a warning when it cannot be set up
  Host,     ///< the host's network namespace (needs the network.host entitlement)
};

/// Everything needed to run one process. Plain values.
struct RunSpec {
  /// Root file system: overlayfs of `lower_dirs` (top-most first). Relative entries are
  /// resolved against `layers_base` (keeps mount options short). With `upper_dir` and
  /// `work_dir` set the root is writable and changes land in upper_dir; otherwise it
  /// is read-only. With no lower dirs, an empty directory is used as the bottom layer.
  /// Relative upper_dir/work_dir are resolved against `layers_base` too. Mount points
  /// the sandbox had to create (/proc, /dev, /sys, bind targets) are removed from
  /// upper_dir afterwards when they are still empty, so they never reach a layer.
  /// A writable root is mounted with redirect_dir=off,metacopy=off,index=off (those
  /// the kernel knows), so upper_dir alone describes the change: a renamed lower
  /// directory is copied, never a redirect xattr.
  std::vector<std::string> lower_dirs;
  std::string layers_base;
  std::string upper_dir;
  std::string work_dir;

  /// A host directory run() may create a private temporary directory in (the root's
  /// mount point); run() removes what it created before returning.
  std::string scratch_dir = "/tmp";

  std::vector<std::string> args;  ///< argv; args[0] without '/' is searched in env PATH
  std::vector<std::string> env;   ///< "K=V"; PATH defaults to the standard one and HOME
                                  ///< to the user's passwd home ("/" if none) if absent
  std::string cwd = "/";          ///< created (0755) if missing
  /// "" (root), "name", "uid", "name:group", "uid:gid"; names resolved through the
  /// container's /etc/passwd and /etc/group (read from the layers, not the host).
  std::string user;
  std::string hostname = "builder";
  Network network = Network::None;
  std::vector<BindMount> mounts;

  /// Docker's defaults (false): the 14 default capabilities in the bounding, permitted
  /// and effective sets for root (none but the bounding set for other users), empty
  /// inheritable and ambient sets, Docker's default seccomp profile, masked and
  /// read-only /proc paths, read-only /sys. true (`--security=insecure`, `--privileged`):
  /// every capability, no seccomp filter, nothing masked, /sys writable.
  bool privileged = false;
  /// Cgroup limits of the container (0: none): the number of tasks, and memory in bytes.
  int64_t pids_limit = 2048;
  int64_t memory_limit = 0;

  /// -1: /dev/null for stdin; stdout/stderr captured and sent to on_output.
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  /// Receives captured output (stdout and stderr interleaved) as it arrives.
  std::function<void(std::string_view)> on_output;
  /// Called with the container's init pid (host pid namespace) once it started.
  std::function<void(int)> on_start;
};

struct RunResult {
  int exit_code = 0;  ///< 128+signal when killed by a signal, as shells report
  int signal = 0;     ///< the terminating signal, or 0
  bool oom_killed = false;  ///< the kernel's OOM killer killed a process of the container
};

/// The command itself could not be started (execve failed: not found, not executable),
/// after the sandbox was set up. err() is the errno; exit_code() is what shells and
/// `docker run` report for it: 127 when not found, 126 otherwise.
class CommandNotRunnable : public base::SysError {
 public:
  CommandNotRunnable(int err, std::string call, std::string path)
      : SysError(err, std::move(call), std::move(path)) {
    set_exit_code(err == ENOENT ? 127 : 126);
  }
};

/// Runs `spec` to completion. Throws base::SysError when the sandbox cannot be set up
/// (CommandNotRunnable when only the final execve failed)
/// (the message names the step: "sandbox: pivot_root ..."); a process that starts and
/// fails is a RunResult, not an exception. Leaves no mount, process or temporary
/// directory on the host when it returns or throws. Thread-safe.
RunResult run(const RunSpec& spec);

/// Kills (SIGKILL) every container run() of this process is running, and makes later
/// run() calls throw "sandbox: cancelled": for Ctrl-C and SIGTERM, so a build stops
/// and unwinds through its owners instead of dying. Thread-safe; not for use inside a
/// signal handler (it takes a lock): call it from a thread that sigwait()s.
void cancel_all() noexcept;
/// Whether cancel_all() was called: long waits outside run() poll it.
bool cancelled() noexcept;

/// Resolves `user` ("name[:group]", "uid[:gid]") against passwd/group files of a root
/// made of `lower_dirs` (top-most first, relative to `layers_base`) plus `upper_dir`.
struct Credentials {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> groups;  ///< supplementary groups (from /etc/group when a name was given)
  std::string home = "/";
};
Credentials resolve_user(const RunSpec& spec);

/// True when this process can create the namespaces run() needs (root, or a test on
/// an unprivileged machine).
bool sandbox_available();

}  // namespace builder::exec
