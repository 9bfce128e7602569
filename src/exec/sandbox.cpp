// exec/sandbox.cpp — the parent side of run(): prepares every string the child needs,
// clone()s it into fresh namespaces, reports its setup errors as SysError, pumps its
// output and reaps it. The child side lives in sandbox_child.cpp; user and layer
// lookups in user.cpp. Never mentions graphs or Dockerfiles.
#include "exec/sandbox.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <set>

#include "base/error.h"
#include "base/fd.h"
#include "base/fs.h"
#include "base/log.h"
#include "base/pid.h"
#include "base/scope_exit.h"
#include "base/strings.h"
#include "base/temp_dir.h"
#include "exec/cgroup.h"
#include "exec/layers.h"
#include "exec/network.h"
#include "exec/sandbox_child.h"
#include "exec/seccomp.h"

namespace builder::exec {

using detail::BindPlan;
using detail::ChildPlan;
using detail::ErrorRecord;
using detail::Step;

namespace {

constexpr size_t kStackSize = 256 * 1024;
constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Legacy mount(2) data is limited to one page.
constexpr size_t kMaxMountData = 4095;

/// The child's stack. clone() without CLONE_VM gives the child a copy-on-write copy
/// of it, so the parent may unmap its own copy as soon as clone() returns.
class Stack {
 public:
  Stack() {
    mem_ = ::mmap(nullptr, kStackSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK,
                  -1, 0);
    if (mem_ == MAP_FAILED) throw base::SysError(errno, "sandbox: mmap child stack");
  }
  ~Stack() { ::munmap(mem_, kStackSize); }
  Stack(const Stack&) = delete;
  Stack& operator=(const Stack&) = delete;
  void* top() const { return static_cast<char*>(mem_) + kStackSize; }

 private:
  void* mem_;
};

/// Blocks every signal in the calling thread for its lifetime, so that no handler of
/// ours runs in the child between clone() and the child's reset of dispositions.
class BlockSignals {
 public:
  BlockSignals() {
    sigset_t all;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &old_);
  }
  ~BlockSignals() { ::pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
  BlockSignals(const BlockSignals&) = delete;
  BlockSignals& operator=(const BlockSignals&) = delete;

 private:
  sigset_t old_;
};

std::string absolute(const std::string& p) {
  if (!p.empty() && p.front() == '/') return p;
  return std::filesystem::absolute(p).lexically_normal().string();
}

/// "/a/./b//c/" -> "/a/b/c"; ".." is kept lexical and clamped at the root.
std::string clean_container_path(const std::string& p) {
  std::string s = std::filesystem::path("/" + p).lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  // lexically_normal keeps "/.." as "/..": clamp it.
  while (s.rfind("/..", 0) == 0 && (s.size() == 3 || s[3] == '/')) {
    if (s.size() == 3) return "/";
    s.erase(0, 3);
  }
  return s;
}

/// Options for a writable overlay that keep its upper dir a plain record of the change,
/// one image::write_layer can write as a layer: renaming a lower directory copies it
/// (EXDEV; no redirect xattr pointing at a path below), a copy-up copies data too (no
/// metacopy), no inode index. Whatever the kernel or distribution defaults are. Each
/// only where the kernel knows it (4.10, 4.19, 4.13, or its module parameter exists):
/// older kernels lack the feature, and an unknown option would fail the mount.
const std::string& overlay_upper_options() {
  static const std::string options = [] {
    int major = 0, minor = 0;
    struct utsname u;
    if (::uname(&u) == 0 && std::sscanf(u.release, "%d.%d", &major, &minor) != 2) major = minor = 0;
    auto knows = [&](const char* param, int since_major, int since_minor) {
      if (major > since_major || (major == since_major && minor >= since_minor)) return true;
      return ::access((std::string("/sys/module/overlay/parameters/") + param).c_str(), F_OK) == 0;
    };
    std::string o;
    if (knows("redirect_dir", 4, 10)) o += ",redirect_dir=off";
    if (knows("metacopy", 4, 19)) o += ",metacopy=off";
    if (knows("index", 4, 13)) o += ",index=off";
    return o;
  }();
  return options;
}

}  // namespace
}  // namespace builder::exec

// The static builder-init program, embedded by exec/init/blob.cpp.
extern "C" const unsigned char builder_init_blob_start[];
extern "C" const unsigned char builder_init_blob_end[];

namespace builder::exec {
namespace {

/// builder-init in a sealed memfd, made once per process: the program every container
/// starts with. Sealed, so nothing (a container holding /proc/<pid>/exe) can change it.
int init_program_fd() {
  static const int fd = [] {
    base::Fd mfd(::memfd_create("builder-init", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!mfd) throw base::SysError(errno, "sandbox: memfd_create");
    size_t size = static_cast<size_t>(builder_init_blob_end - builder_init_blob_start);
    base::write_all(mfd.get(), std::string_view(reinterpret_cast<const char*>(builder_init_blob_start), size));
    // F_SEAL_WRITE waits for transient page references and can fail with EBUSY (seen
    // under load); retry, then settle for F_SEAL_FUTURE_WRITE, which also refuses
    // every later write.
    const int seals = F_SEAL_SHRINK | F_SEAL_GROW;
    int rc = -1;
    for (int attempt = 0; attempt < 5 && rc < 0; ++attempt) {
      rc = ::fcntl(mfd.get(), F_ADD_SEALS, seals | F_SEAL_WRITE);
      if (rc < 0 && errno != EBUSY) break;
      if (rc < 0) ::usleep(10000);
    }
    if (rc < 0 && errno == EBUSY) rc = ::fcntl(mfd.get(), F_ADD_SEALS, seals | F_SEAL_FUTURE_WRITE);
    base::check_sys(rc, "sandbox: seal builder-init");
    base::check_sys(::fcntl(mfd.get(), F_ADD_SEALS, F_SEAL_SEAL), "sandbox: seal builder-init");
    return mfd.release();
  }();
  return fd;
}

/// The highest capability number this kernel knows.
int last_cap() {
  static const int cap = [] {
    int v = 40;
    if (FILE* f = std::fopen("/proc/sys/kernel/cap_last_cap", "r")) {
      if (std::fscanf(f, "%d", &v) != 1 || v < 0 || v > 63) v = 40;
      std::fclose(f);
    }
    return v;
  }();
  return cap;
}

/// The capabilities builder itself holds (its permitted set): a container can get no
/// more, and asking for more would fail (a host may withhold some, e.g. SYS_RESOURCE).
uint64_t held_caps() {
  static const uint64_t caps = [] {
    struct __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2] = {};
    if (::syscall(SYS_capget, &hdr, data) < 0) throw base::SysError(errno, "sandbox: capget");
    return static_cast<uint64_t>(data[0].permitted) | static_cast<uint64_t>(data[1].permitted) << 32;
  }();
  return caps;
}

void check_overlay_path(const std::string& p) {
  // The legacy overlay option parser splits on ',' and ':'; refuse rather than
  // mount the wrong layers.
  if (p.find_first_of(",:\\") != std::string::npos)
    throw base::Error("sandbox: layer path `" + p + "` contains ',', ':' or '\\', unsupported by overlayfs options");
}

std::optional<std::string> env_value(const std::vector<std::string>& env, std::string_view key) {
  std::optional<std::string> v;
  for (const auto& e : env)  // the last assignment wins, as in a shell
    if (e.size() > key.size() && e.compare(0, key.size(), key) == 0 && e[key.size()] == '=')
      v = e.substr(key.size() + 1);
  return v;
}

/// A path the sandbox may create in the upper dir although the image lacks it: the
/// components of a mount point below the upper dir, and the index of the first one
/// missing from the image (what the sandbox creates starts there).
struct Stub {
  std::vector<std::string> parts;
  size_t first_missing = 0;
};

std::optional<Stub> find_stub(const LayerView& view, const std::string& path) {
  Stub stub;
  std::string rel;
  bool missing = false;
  for (auto& part : base::split(path, '/')) {
    if (part.empty()) continue;
    rel += "/" + part;
    if (!missing && !view.find(rel)) {
      missing = true;
      stub.first_missing = stub.parts.size();
    }
    stub.parts.push_back(part);
  }
  if (!missing) return std::nullopt;
  return stub;
}

/// Removes what the sandbox created for mount points from the upper dir, deepest
/// first, stopping at anything the process put there. Runs after the container's
/// mount namespace is gone (the overlay is no longer mounted). The process may have
/// planted symlinks in the upper dir, so every component is opened with O_NOFOLLOW
/// relative to its parent: nothing outside the upper dir is ever removed.
void remove_stubs(const std::string& upper, const std::vector<Stub>& stubs) noexcept {
  for (const auto& stub : stubs) {
    std::vector<base::Fd> dirs;  // dirs[i] is the directory holding parts[i]
    dirs.emplace_back(::open(upper.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dirs.back()) continue;
    while (dirs.size() < stub.parts.size()) {
      int fd = ::openat(dirs.back().get(), stub.parts[dirs.size() - 1].c_str(),
                        O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) break;
      dirs.emplace_back(fd);
    }
    for (size_t i = stub.parts.size(); i-- > stub.first_missing;) {
      if (i >= dirs.size()) continue;  // a parent is missing or not a directory
      const char* name = stub.parts[i].c_str();
      struct stat st;
      if (::fstatat(dirs[i].get(), name, &st, AT_SYMLINK_NOFOLLOW) < 0) continue;  // never created
      int rc = -1;
      if (S_ISDIR(st.st_mode)) rc = ::unlinkat(dirs[i].get(), name, AT_REMOVEDIR);
      else if (i + 1 == stub.parts.size() && S_ISREG(st.st_mode) && st.st_size == 0)
        rc = ::unlinkat(dirs[i].get(), name, 0);
      if (rc < 0) break;  // not empty or not ours: keep it and its parents
    }
  }
}

/// Everything prepared before clone(); ChildPlan points into it.
struct Prepared {
  std::string root;
  std::string files_dir;  // mount point of the private tmpfs for file_data binds
  std::vector<BindMount> mounts;  // the spec's and the sandbox's own (/etc/hosts, ...)
  std::vector<std::string> cgroup_procs;
  std::vector<const char*> cgroup_procs_ptrs;
  std::string overlay_data;
  std::string hostname;
  std::vector<std::string> bind_sources;
  std::vector<std::vector<char>> bind_targets;  // mutable: the child mkdirs in place
  std::vector<std::string> mount_data;           // per mount: overlay lowerdir or tmpfs options
  std::vector<BindPlan> binds;
  std::vector<char> cwd;
  std::vector<gid_t> groups;
  std::vector<std::string> args;
  std::vector<char*> argv;
  std::vector<std::string> env;
  std::vector<char*> envp;
};

std::vector<char*> c_array(std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

std::vector<std::string> path_candidates(const std::string& name, const std::string& path) {
  if (name.find('/') != std::string::npos) return {name};
  std::vector<std::string> out;
  for (auto& dir : base::split(path, ':')) out.push_back(dir.empty() ? name : base::path_join(dir, name));
  return out;
}

/// The path a failed step was working on, for the error message.
std::string step_path(const Prepared& p, const RunSpec& spec, const ErrorRecord& rec) {
  auto idx = static_cast<size_t>(rec.index);
  switch (static_cast<Step>(rec.step)) {
    case Step::kChdirLayers: return spec.layers_base;
    case Step::kMountOverlay:
    case Step::kChdirRoot:
    case Step::kPivotRoot: return p.root;
    case Step::kOpenBindSource:
    case Step::kBindReadonly: return idx < p.bind_sources.size() ? p.bind_sources[idx] : "";
    case Step::kOverlayMount:
    case Step::kTmpfsMount:
    case Step::kBindTarget:
    case Step::kBindMount: return idx < p.bind_targets.size() ? p.bind_targets[idx].data() : "";
    case Step::kMkdirMountPoint: return idx < std::size(detail::kMountPoints) ? detail::kMountPoints[idx] : "";
    case Step::kMountProc: return detail::kProcDir;
    case Step::kMountDev: return detail::kDevDir;
    case Step::kMknod: return idx < std::size(detail::kDevNodes) ? detail::kDevNodes[idx].path : "";
    case Step::kSymlink: return idx < std::size(detail::kDevLinks) ? detail::kDevLinks[idx].path : "";
    case Step::kMountDevpts: return "/dev/pts";
    case Step::kMountShm: return "/dev/shm";
    case Step::kMountMqueue: return "/dev/mqueue";
    case Step::kMountSys: return detail::kSysDir;
    case Step::kSethostname: return spec.hostname;
    case Step::kMkdirCwd:
    case Step::kChdirCwd: return p.cwd.data();
    case Step::kSetgroups:
    case Step::kSetgid:
    case Step::kSetuid: return spec.user;
    case Step::kExec: return spec.args.front();
    default: return {};
  }
}

[[noreturn]] void throw_step_error(const Prepared& p, const RunSpec& spec, const ErrorRecord& rec) {
  if (static_cast<Step>(rec.step) == Step::kExec)
    throw CommandNotRunnable(rec.err, detail::step_call(Step::kExec), step_path(p, spec, rec));
  base::SysError e(rec.err, detail::step_call(static_cast<Step>(rec.step)), step_path(p, spec, rec));
  if (static_cast<Step>(rec.step) == Step::kMountOverlay) e.add_context("overlay options: " + p.overlay_data);
  throw e;
}

// Every running container of this process, as pidfds (immune to pid reuse), so that
// cancel_all() can kill them from another thread.
std::mutex g_running_mu;
std::set<int> g_running;
std::atomic<bool> g_cancelled{false};

/// Registers a running container's pidfd for cancel_all() for its lifetime.
class Running {
 public:
  explicit Running(int pid) : pidfd_(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0))) {
    if (!pidfd_) return;  // no pidfd_open: cancel_all() cannot reach it; PDEATHSIG still does
    std::lock_guard lk(g_running_mu);
    g_running.insert(pidfd_.get());
    // A cancel that raced with our start must still stop us.
    if (g_cancelled.load()) ::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
  }
  ~Running() {
    if (!pidfd_) return;
    std::lock_guard lk(g_running_mu);
    g_running.erase(pidfd_.get());
  }
  Running(const Running&) = delete;
  Running& operator=(const Running&) = delete;

 private:
  base::Fd pidfd_;
};

}  // namespace

bool cancelled() noexcept { return g_cancelled.load(); }

void cancel_all() noexcept {
  g_cancelled.store(true);
  std::lock_guard lk(g_running_mu);
  for (int fd : g_running) ::syscall(SYS_pidfd_send_signal, fd, SIGKILL, nullptr, 0);
}

RunResult run(const RunSpec& spec) {
  if (spec.args.empty()) throw base::Error("sandbox: no command to run");
  if (g_cancelled.load()) throw base::Error("sandbox: cancelled");
  if (spec.upper_dir.empty() != spec.work_dir.empty())
    throw base::Error("sandbox: upper_dir and work_dir must be set together");
  if (spec.hostname.size() > HOST_NAME_MAX)
    throw base::Error("sandbox: hostname `" + spec.hostname + "` is longer than " + std::to_string(HOST_NAME_MAX));

  // Before clone(): the child cannot parse /etc/passwd without allocating.
  Credentials creds = resolve_user(spec);
  LayerView view(spec);
  const bool writable = !spec.upper_dir.empty();

  // The pid in the name lets the store's repair remove it if we are killed.
  base::TempDir tmp(absolute(spec.scratch_dir), "sandbox-" + std::to_string(::getpid()) + "-");
  Prepared p;
  p.root = tmp.path() + "/root";
  base::check_sys(::mkdir(p.root.c_str(), 0755), "sandbox: mkdir", p.root);

  // ---- overlay options
  std::vector<std::string> lowers = spec.lower_dirs;
  for (const auto& l : lowers) check_overlay_path(l);
  // overlayfs needs a bottom layer, and without an upper at least two lower layers.
  if (lowers.empty() || (!writable && lowers.size() == 1)) {
    std::string empty = tmp.path() + "/empty";
    base::check_sys(::mkdir(empty.c_str(), 0755), "sandbox: mkdir", empty);
    check_overlay_path(empty);
    lowers.push_back(empty);
  }
  p.overlay_data = "lowerdir=" + base::join(lowers, ":");
  if (writable) {
    check_overlay_path(spec.upper_dir);
    check_overlay_path(spec.work_dir);
    p.overlay_data += ",upperdir=" + spec.upper_dir + ",workdir=" + spec.work_dir + overlay_upper_options();
  }
  if (p.overlay_data.size() > kMaxMountData)
    // TODO(exec): use fsopen()/fsconfig("lowerdir+") (Linux 6.8) for very deep images.
    throw base::Error("sandbox: overlay options exceed one page (" + std::to_string(lowers.size()) +
                      " layers); set layers_base to shorten them");

  // ---- bind mounts: the spec's, then the container's /etc/hosts and /etc/resolv.conf
  // (read-only files of our own, as BuildKit binds them), unless the spec mounts those.
  int netns_fd = -1;
  Network network = spec.network;
  if (network == Network::Default) {
    try {
      netns_fd = SharedNetwork::get().netns_fd();
    } catch (const base::Error& e) {
      static std::once_flag warned;
      std::call_once(warned, [&] {
        base::log_warn("the sandbox network is unavailable, RUN steps get an isolated network: " + e.message());
      });
      network = Network::None;
    }
  }
  p.mounts = spec.mounts;
  auto own_file = [&](const char* target, std::string data) {
    for (const auto& m : spec.mounts)
      if (clean_container_path(m.target) == target) return;
    BindMount m;
    m.target = target;
    m.file_data = std::move(data);
    m.file_mode = 0644;
    p.mounts.push_back(std::move(m));
  };
  own_file("/etc/hosts", hosts_file(spec.hostname));
  own_file("/etc/resolv.conf", network == Network::Default ? SharedNetwork::get().resolv_conf()
                                                                  : host_resolv_conf(network == Network::Host));
  bool any_file = false;
  for (const auto& m : p.mounts) {
    if (m.target.empty() || m.target.front() != '/')
      throw base::Error("sandbox: bind mount target `" + m.target + "` is not absolute");
    bool is_dir = true;
    if (m.file_data) {
      if (!any_file) {
        p.files_dir = tmp.path() + "/files";
        base::check_sys(::mkdir(p.files_dir.c_str(), 0700), "sandbox: mkdir", p.files_dir);
        any_file = true;
      }
      p.mount_data.push_back(p.files_dir + "/" + std::to_string(p.mount_data.size()));
      is_dir = false;
    } else if (m.tmpfs) {
      p.mount_data.push_back(m.tmpfs_size > 0 ? "size=" + std::to_string(m.tmpfs_size) : "");
    } else if (!m.overlay_lowers.empty()) {
      if (m.overlay_lowers.size() < 2 && m.overlay_upper.empty())
        throw base::Error("sandbox: a read-only overlay mount needs two lower directories");
      for (const auto& l : m.overlay_lowers) check_overlay_path(l);
      p.mount_data.push_back(base::join(m.overlay_lowers, ":"));
    } else {
      struct stat st;
      if (::stat(m.source.c_str(), &st) < 0) throw base::SysError(errno, "sandbox: bind mount source", m.source);
      is_dir = S_ISDIR(st.st_mode);
      p.mount_data.emplace_back();
    }
    if (!m.overlay_upper.empty()) {
      check_overlay_path(m.overlay_upper);
      check_overlay_path(m.overlay_work);
    }
    std::string target = clean_container_path(m.target);
    p.bind_sources.push_back(m.file_data ? p.mount_data.back()
                             : m.tmpfs  ? "tmpfs"
                             : m.overlay_lowers.empty() ? m.source
                                                        : p.mount_data.back());
    p.bind_targets.emplace_back(target.begin(), target.end());
    p.bind_targets.back().push_back('\0');
    BindPlan b{nullptr, nullptr, is_dir, m.readonly, -1};
    b.tmpfs = m.tmpfs;
    p.binds.push_back(b);
  }
  for (size_t i = 0; i < p.binds.size(); ++i) {
    const BindMount& m = p.mounts[i];
    BindPlan& b = p.binds[i];
    b.source = p.bind_sources[i].c_str();
    b.target = p.bind_targets[i].data();
    b.optional = i >= spec.mounts.size();  // the sandbox's own files, not the spec's
    if (m.file_data) {
      b.file_data = m.file_data->data();
      b.file_len = m.file_data->size();
      b.file_mode = m.file_mode;
      b.file_uid = m.file_uid;
      b.file_gid = m.file_gid;
    }
    if (m.tmpfs) b.tmpfs_data = p.mount_data[i].empty() ? nullptr : p.mount_data[i].c_str();
    if (!m.overlay_lowers.empty()) {
      b.overlay_lower = p.mount_data[i].c_str();
      if (!m.overlay_upper.empty()) {
        b.overlay_upper = m.overlay_upper.c_str();
        b.overlay_work = m.overlay_work.c_str();
      }
    }
  }

  // ---- process: argv, env, PATH candidates, cwd, credentials
  // builder-init SYNC_FD EXEC_STEP N CANDIDATE... -- ARGV... (see exec/init/builder_init.c)
  p.env = spec.env;
  if (!env_value(p.env, "PATH")) p.env.push_back(std::string("PATH=") + kDefaultPath);
  if (!env_value(p.env, "HOME")) p.env.push_back("HOME=" + creds.home);  // as Docker does
  p.envp = c_array(p.env);
  std::vector<std::string> candidates = path_candidates(spec.args.front(), *env_value(p.env, "PATH"));
  p.args = {"builder-init", std::to_string(detail::kInitSyncFd), std::to_string(static_cast<int>(Step::kExec)),
            std::to_string(candidates.size())};
  p.args.insert(p.args.end(), candidates.begin(), candidates.end());
  p.args.emplace_back("--");
  p.args.insert(p.args.end(), spec.args.begin(), spec.args.end());
  p.argv = c_array(p.args);
  std::string cwd = clean_container_path(spec.cwd.empty() ? "/" : spec.cwd);
  p.cwd.assign(cwd.begin(), cwd.end());
  p.cwd.push_back('\0');
  p.groups.assign(creds.groups.begin(), creds.groups.end());
  p.hostname = spec.hostname;

  // ---- mount-point stubs to remove from the layer afterwards
  // TODO(exec): a bind target reached through a symlink in the image is created where
  // the symlink points (inside the root); that stub is not found here and stays.
  std::vector<Stub> stubs;
  std::string upper = resolve_layer_dir(spec.layers_base, spec.upper_dir);
  if (writable) {
    std::vector<std::string> points(std::begin(detail::kMountPoints), std::end(detail::kMountPoints));
    for (const auto& t : p.bind_targets) points.emplace_back(t.data());
    for (const auto& pt : points)
      if (auto stub = find_stub(view, pt)) stubs.push_back(std::move(*stub));
  }

  // ---- cgroups: limits, OOM accounting, and a group to kill whatever escapes the
  // PID namespace's teardown. Destroyed after the container is reaped.
  // The first container of a process also removes groups a killed builder left.
  static std::once_flag repaired;
  std::call_once(repaired, [] { remove_stale_cgroups(); });
  Cgroup cgroup = Cgroup::create(CgroupLimits{spec.pids_limit, spec.memory_limit});
  if (!cgroup.available() && spec.pids_limit > 0) {
    static std::once_flag warned;
    std::call_once(warned, [] {
      base::log_warn("no pids cgroup controller: containers run without a task limit (" +
                     cgroup_unavailable_reason() + ")");
    });
  }
  p.cgroup_procs = cgroup.procs_files();
  for (const auto& f : p.cgroup_procs) p.cgroup_procs_ptrs.push_back(f.c_str());

  // ---- descriptors
  base::Fd dev_null;
  int stdin_fd = spec.stdin_fd;
  if (stdin_fd < 0) {
    dev_null = base::open_fd("/dev/null", O_RDONLY);
    stdin_fd = dev_null.get();
  }
  base::Fd out_read, out_write;
  if (spec.stdout_fd < 0 || spec.stderr_fd < 0) {
    int fds[2];
    base::check_sys(::pipe2(fds, O_CLOEXEC), "sandbox: pipe2");
    out_read = base::Fd(fds[0]);
    out_write = base::Fd(fds[1]);
  }
  int sv[2];
  base::check_sys(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), "sandbox: socketpair");
  base::Fd sync_parent(sv[0]);
  base::Fd sync_child(sv[1]);
  // pidfd_open (Linux 5.3) returns a CLOEXEC descriptor; without it the child just
  // relies on PR_SET_PDEATHSIG.
  base::Fd parent_pidfd(static_cast<int>(::syscall(SYS_pidfd_open, ::getpid(), 0)));

  ChildPlan plan;
  plan.sync_fd = sync_child.get();
  plan.parent_pidfd = parent_pidfd.get();
  plan.stdio[0] = stdin_fd;
  plan.stdio[1] = spec.stdout_fd >= 0 ? spec.stdout_fd : out_write.get();
  plan.stdio[2] = spec.stderr_fd >= 0 ? spec.stderr_fd : out_write.get();
  plan.layers_base = spec.layers_base.empty() ? nullptr : spec.layers_base.c_str();
  plan.root = p.root.c_str();
  plan.overlay_data = p.overlay_data.c_str();
  plan.overlay_flags = writable ? 0 : MS_RDONLY;
  plan.new_net = network == Network::None;
  plan.netns_fd = netns_fd;
  plan.files_dir = p.files_dir.empty() ? nullptr : p.files_dir.c_str();
  plan.privileged = spec.privileged;
  plan.last_cap = last_cap();
  plan.caps = spec.privileged ? held_caps() : detail::kDefaultCaps & held_caps();
  plan.seccomp = spec.privileged ? nullptr : &default_seccomp_filter();
  plan.cgroup_procs = p.cgroup_procs_ptrs.data();
  plan.ncgroup_procs = p.cgroup_procs_ptrs.size();
  plan.hostname = p.hostname.c_str();
  plan.hostname_len = p.hostname.size();
  plan.binds = p.binds.data();
  plan.nbinds = p.binds.size();
  plan.cwd = p.cwd.data();
  plan.uid = creds.uid;
  plan.gid = creds.gid;
  plan.groups = p.groups.data();
  plan.ngroups = p.groups.size();
  plan.init_fd = init_program_fd();
  plan.init_argv = p.argv.data();
  plan.envp = p.envp.data();

  // Declared before the Pid so they run after it is reaped: the overlay is gone with
  // the container's mount namespace by then.
  base::ScopeExit cleanup_stubs([&] { remove_stubs(upper, stubs); });

  // ---- clone
  // PID namespace: orphans die with the step; mount namespace: every mount dies with
  // it too; we are multithreaded, so clone() with our own stack instead of fork().
  int flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | SIGCHLD;
  if (network == Network::None) flags |= CLONE_NEWNET;  // Default joins the shared one
  base::Pid child;
  {
    Stack stack;
    BlockSignals blocked;
    pid_t pid = ::clone(detail::child_main, stack.top(), flags, &plan);
    if (pid < 0) throw base::SysError(errno, "sandbox: clone");
    child = base::Pid(pid);
  }
  sync_child.reset();
  out_write.reset();
  dev_null.reset();

  // ---- wait for execve (EOF: the CLOEXEC sync socket closed) or an error record
  ErrorRecord rec{};
  ssize_t n;
  do n = ::read(sync_parent.get(), &rec, sizeof rec);
  while (n < 0 && errno == EINTR);
  if (n < 0) throw base::SysError(errno, "sandbox: read sync socket");
  if (n > 0) {
    child.wait();
    if (n != sizeof rec) throw base::Error("sandbox: short error record from the child");
    throw_step_error(p, spec, rec);
  }
  sync_parent.reset();
  // Destroyed before `child` is reaped (declared after it), so the pidfd never
  // outlives the process it names.
  Running running(child.get());
  if (spec.on_start) spec.on_start(child.get());

  // ---- output until every writer (the whole container) is gone
  if (out_read) {
    std::vector<char> buf(64 * 1024);
    for (;;) {
      ssize_t r = ::read(out_read.get(), buf.data(), buf.size());
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) throw base::SysError(errno, "sandbox: read output");
      if (r == 0) break;
      if (spec.on_output) spec.on_output(std::string_view(buf.data(), static_cast<size_t>(r)));
    }
  }

  int status = child.wait();
  RunResult result;
  if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
    result.exit_code = 128 + result.signal;
  } else {
    result.exit_code = WEXITSTATUS(status);
  }
  result.oom_killed = cgroup.oom_killed();
  return result;
}

bool sandbox_available() {
  // TODO(exec): rootless mode (user namespaces) would relax this.
  return ::geteuid() == 0;
}

}  // namespace builder::exec
