// exec/cgroup.cpp — per-container cgroups on v1 (pids and memory hierarchies, possibly
// beside an unused unified one) and on v2. Creation and removal run once per RUN step,
// so the host's layout is found once per process and a group costs a mkdir and a write
// or two per hierarchy.
#include "exec/cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstring>
#include <ctime>
#include <map>
#include <optional>
#include <set>
#include <string_view>

#include "base/error.h"
#include "base/fd.h"
#include "base/fs.h"
#include "base/log.h"

namespace builder::exec {
namespace {

constexpr unsigned kPids = 1;
constexpr unsigned kMemory = 2;

/// One mounted hierarchy holding at least one controller we use.
struct Hierarchy {
  std::string mount;        // mount point, e.g. /sys/fs/cgroup/pids
  std::string parent;       // where this process's groups go: <own group>/builder
  std::string root_parent;  // <mount>/builder, also searched by remove_stale_cgroups
  bool v2 = false;
  unsigned controllers = 0;  // kPids | kMemory
};

struct Layout {
  std::vector<Hierarchy> hierarchies;
  std::string unavailable;  // why there are none
  unsigned long long pidns = 0;
};

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(sep, start);
    if (end == std::string_view::npos) end = s.size();
    out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

bool has_token(std::string_view list, std::string_view token, char sep) {
  for (auto t : split(list, sep))
    if (t == token) return true;
  return false;
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape_mountinfo(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      int v = 0;
      bool ok = true;
      for (size_t k = 1; k <= 3; ++k) {
        char c = s[i + k];
        if (c < '0' || c > '7') ok = false;
        v = v * 8 + (c - '0');
      }
      if (ok) {
        out.push_back(static_cast<char>(v));
        i += 3;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

template <typename T>
bool parse_num(std::string_view s, T& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

bool is_dir(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

/// Writes `value` to a cgroup control file; throws SysError naming the file.
void write_control(const std::string& path, std::string_view value) {
  base::Fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) throw base::SysError(errno, "cgroup: open", path);
  ssize_t n = ::write(fd.get(), value.data(), value.size());
  if (n < 0) throw base::SysError(errno, "cgroup: write `" + std::string(value) + "` to", path);
}

/// Like write_control, but a missing file is not an error: returns false then.
bool write_control_if_present(const std::string& path, std::string_view value) {
  base::Fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return false;
    throw base::SysError(errno, "cgroup: open", path);
  }
  if (::write(fd.get(), value.data(), value.size()) < 0)
    throw base::SysError(errno, "cgroup: write `" + std::string(value) + "` to", path);
  return true;
}

/// The value of `key` in a flat-keyed file ("key value" lines: memory.events,
/// memory.oom_control); nullopt when absent.
std::optional<int64_t> keyed_value(const std::string& text, std::string_view key) {
  for (auto line : split(text, '\n')) {
    auto sp = line.find(' ');
    if (sp == std::string_view::npos || line.substr(0, sp) != key) continue;
    int64_t v = 0;
    if (parse_num(line.substr(sp + 1), v)) return v;
  }
  return std::nullopt;
}

/// Fields of /proc/<pid>/stat after the command (field 3, the state, is [0]); empty when
/// the process does not exist.
std::vector<std::string> stat_fields(const std::string& stat_path) {
  std::string text;
  try {
    text = base::read_file(stat_path);
  } catch (const base::SysError& e) {
    if (e.err() == ENOENT || e.err() == ESRCH) return {};
    throw;
  }
  auto close = text.rfind(')');
  if (close == std::string::npos) throw base::Error("cgroup: unexpected format of " + stat_path);
  std::vector<std::string> out;
  for (auto f : split(std::string_view(text).substr(close + 1), ' '))
    if (!f.empty() && f != "\n") out.emplace_back(f);
  return out;
}

constexpr size_t kStartTimeField = 22 - 3;  // field 22 (starttime) counted from the state

/// This process's pid and start time, recomputed after a fork (the cached pid differs).
struct Owner {
  pid_t pid;
  unsigned long long start;
};
Owner current_owner() {
  static std::atomic<pid_t> cached_pid{0};
  static std::atomic<unsigned long long> cached_start{0};
  pid_t pid = ::getpid();
  if (cached_pid.load(std::memory_order_acquire) == pid)
    return {pid, cached_start.load(std::memory_order_relaxed)};
  auto f = stat_fields("/proc/self/stat");
  unsigned long long start = 0;
  if (f.size() <= kStartTimeField || !parse_num(std::string_view(f[kStartTimeField]), start))
    throw base::Error("cgroup: cannot read this process's start time from /proc/self/stat");
  cached_start.store(start, std::memory_order_relaxed);
  cached_pid.store(pid, std::memory_order_release);
  return {pid, start};
}

/// Whether `pid` is a live process started at `start` (clock ticks since boot). Errors
/// other than "no such process" count as alive: a group is removed only when sure.
bool owner_alive(pid_t pid, unsigned long long start) {
  try {
    auto f = stat_fields("/proc/" + std::to_string(pid) + "/stat");
    if (f.empty()) return false;
    if (f[0] == "Z" || f[0] == "X") return false;  // exited; it creates and removes nothing more
    unsigned long long s = 0;
    if (f.size() <= kStartTimeField || !parse_num(std::string_view(f[kStartTimeField]), s))
      return true;
    return s == start;
  } catch (const std::exception&) {
    return true;
  }
}

/// Group names: <owner pid>-<owner start time>-<pid ns inode>-<counter>.
struct GroupName {
  pid_t pid = 0;
  unsigned long long start = 0;
  unsigned long long pidns = 0;
  unsigned long long counter = 0;
};
std::optional<GroupName> parse_group_name(std::string_view name) {
  auto parts = split(name, '-');
  GroupName g;
  if (parts.size() != 4 || !parse_num(parts[0], g.pid) || !parse_num(parts[1], g.start) ||
      !parse_num(parts[2], g.pidns) || !parse_num(parts[3], g.counter) || g.pid <= 0)
    return std::nullopt;
  return g;
}

/// This process's cgroup path (from /proc/self/cgroup) in the hierarchy with
/// `controller` ("" for v2); empty when not listed.
std::string self_cgroup_path(const std::string& proc_cgroup, std::string_view controller) {
  for (auto line : split(proc_cgroup, '\n')) {
    auto c1 = line.find(':');
    if (c1 == std::string_view::npos) continue;
    auto c2 = line.find(':', c1 + 1);
    if (c2 == std::string_view::npos) continue;
    auto ctrls = line.substr(c1 + 1, c2 - c1 - 1);
    bool match = controller.empty() ? (line.substr(0, c1) == "0" && ctrls.empty())
                                    : has_token(ctrls, controller, ',');
    if (match) return std::string(line.substr(c2 + 1));
  }
  return {};
}

/// <mount>/<own group>, given the mount's root inside the hierarchy (field 4 of
/// mountinfo); the mount point itself when the group is not visible through it.
std::string self_dir(const std::string& mount, const std::string& mount_root,
                     const std::string& self_path) {
  if (self_path.empty() || self_path == "/") return mount;
  std::string rel;
  if (mount_root == "/") {
    rel = self_path;
  } else if (self_path.compare(0, mount_root.size(), mount_root) == 0 &&
             (self_path.size() == mount_root.size() || self_path[mount_root.size()] == '/')) {
    rel = self_path.substr(mount_root.size());
  } else {
    return mount;
  }
  std::string dir = mount + rel;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return is_dir(dir) ? dir : mount;
}

void make_dir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) < 0 && errno != EEXIST)
    throw base::SysError(errno, "cgroup: mkdir", path);
}

/// Enables `controllers` for the children of `dir` (v2 cgroup.subtree_control).
void enable_subtree(const std::string& dir, unsigned controllers) {
  std::string current = base::read_file(dir + "/cgroup.subtree_control");
  if (!current.empty() && current.back() == '\n') current.pop_back();
  std::string want;
  if ((controllers & kPids) && !has_token(current, "pids", ' ')) want += "+pids ";
  if ((controllers & kMemory) && !has_token(current, "memory", ' ')) want += "+memory ";
  if (want.empty()) return;
  want.pop_back();
  write_control(dir + "/cgroup.subtree_control", want);
}

unsigned v2_controllers(const std::string& dir) {
  std::string text = base::read_file(dir + "/cgroup.controllers");
  if (!text.empty() && text.back() == '\n') text.pop_back();
  unsigned c = 0;
  if (has_token(text, "pids", ' ')) c |= kPids;
  if (has_token(text, "memory", ' ')) c |= kMemory;
  return c;
}

/// Finds the hierarchies and prepares their builder/ parents. Never throws: a host where
/// that fails has no usable cgroups, and the reason is kept.
Layout detect_layout() {
  Layout layout;
  try {
    struct stat st;
    if (::stat("/proc/self/ns/pid", &st) == 0) layout.pidns = st.st_ino;

    std::string mountinfo = base::read_file("/proc/self/mountinfo");
    std::string proc_cgroup = base::read_file("/proc/self/cgroup");

    struct V1 {
      std::string mount, root;
      unsigned controllers = 0;
    };
    std::vector<V1> v1;
    std::string v2_mount, v2_root;
    unsigned v1_have = 0;
    for (auto line : split(mountinfo, '\n')) {
      auto f = split(line, ' ');
      auto dash = std::find(f.begin(), f.end(), std::string_view("-"));
      if (f.size() < 5 || dash == f.end() || f.end() - dash < 4) continue;
      std::string_view fstype = dash[1], superopts = dash[3];
      if (fstype == "cgroup") {
        unsigned c = 0;
        if (has_token(superopts, "pids", ',') && !(v1_have & kPids)) c |= kPids;
        if (has_token(superopts, "memory", ',') && !(v1_have & kMemory)) c |= kMemory;
        if (c == 0) continue;
        v1_have |= c;
        v1.push_back({unescape_mountinfo(f[4]), unescape_mountinfo(f[3]), c});
      } else if (fstype == "cgroup2" && v2_mount.empty()) {
        v2_mount = unescape_mountinfo(f[4]);
        v2_root = unescape_mountinfo(f[3]);
      }
    }

    for (const auto& m : v1) {
      Hierarchy h;
      h.mount = m.mount;
      h.controllers = m.controllers;
      std::string self = self_cgroup_path(proc_cgroup, (m.controllers & kPids) ? "pids" : "memory");
      h.parent = self_dir(m.mount, m.root, self) + "/builder";
      h.root_parent = m.mount + "/builder";
      make_dir(h.parent);
      layout.hierarchies.push_back(std::move(h));
    }

    // v2 serves the controllers no v1 hierarchy holds (all of them on a pure v2 host).
    // TODO(exec): the v2 branch is untested on the development host (hybrid v1).
    if (!v2_mount.empty() && (v1_have & (kPids | kMemory)) != (kPids | kMemory)) {
      unsigned want = v2_controllers(v2_mount) & ~v1_have;
      if (want != 0) {
        Hierarchy h;
        h.mount = v2_mount;
        h.v2 = true;
        h.controllers = want;
        h.root_parent = v2_mount + "/builder";
        // Nest under our own group so containers stay within the builder's own limits.
        // A non-root group that holds processes (it holds us) cannot enable controllers
        // for children (the "no internal processes" rule): fall back to the root then.
        std::string base = self_dir(v2_mount, v2_root, self_cgroup_path(proc_cgroup, ""));
        if (base != v2_mount) {
          try {
            if ((v2_controllers(base) & want) != want) throw base::Error("not delegated");
            enable_subtree(base, want);
          } catch (const base::Error& e) {
            base::log_debug("cgroup: using the v2 root, not `" + base + "`: " + e.what());
            base = v2_mount;
          }
        }
        if (base == v2_mount) enable_subtree(base, want);
        h.parent = base + "/builder";
        make_dir(h.parent);
        enable_subtree(h.parent, want);
        layout.hierarchies.push_back(std::move(h));
      }
    }
    if (layout.hierarchies.empty())
      layout.unavailable = "no pids or memory cgroup controller is mounted";
  } catch (const std::exception& e) {
    layout.hierarchies.clear();
    layout.unavailable = e.what();
  }
  if (!layout.unavailable.empty())
    base::log_debug("cgroup: limits are not available: " + layout.unavailable);
  return layout;
}

const Layout& layout() {
  static const Layout l = detect_layout();
  return l;
}

/// Pids listed in <dir>/cgroup.procs; empty when the group is gone.
std::vector<pid_t> group_pids(const std::string& dir) {
  std::vector<pid_t> out;
  std::string text;
  try {
    text = base::read_file(dir + "/cgroup.procs");
  } catch (const base::SysError&) {
    return out;
  }
  for (auto line : split(text, '\n')) {
    pid_t p = 0;
    if (parse_num(line, p) && p > 0) out.push_back(p);
  }
  return out;
}

void pause_for(int round) {
  // Killed tasks leave their group as they exit, a few microseconds to milliseconds later.
  long ns = round < 5 ? 20'000L : round < 20 ? 200'000L : 2'000'000L;
  timespec ts{0, ns};
  ::nanosleep(&ts, nullptr);
}

/// Kills every task in `dirs` (not in their subgroups): cgroup.kill on v2, then SIGKILL to
/// each pid still listed until every cgroup.procs reads empty (on v1 that is the only
/// way; a task forking while we read shows up on the next round, and a killed one cannot
/// fork). Returns when the tasks are gone, or after a few seconds (logged).
void kill_tasks(const std::vector<std::string>& dirs, const std::vector<bool>& v2) noexcept {
  try {
    for (size_t i = 0; i < dirs.size(); ++i) {
      if (!v2[i]) continue;
      try {
        write_control_if_present(dirs[i] + "/cgroup.kill", "1");  // absent before Linux 5.14
      } catch (const base::SysError& e) {
        if (e.err() != ENOENT) base::log_warn(std::string(e.what()));  // ENOENT: group gone
      }
    }
    for (int round = 0; round < 1000; ++round) {
      bool any = false;
      for (const auto& d : dirs)
        for (pid_t p : group_pids(d)) {
          any = true;
          ::kill(p, SIGKILL);
        }
      if (!any) return;
      pause_for(round);
    }
    base::log_warn("cgroup: tasks survive SIGKILL in `" + dirs.front() + "`");
  } catch (const std::exception& e) {
    base::log_warn(std::string("cgroup: killing tasks: ") + e.what());
  }
}

bool remove_dirs(const std::vector<std::string>& dirs, const std::vector<bool>& v2) noexcept;

/// Removes the groups a (privileged) container made inside `dir`, deepest first.
void remove_subgroups(const std::string& dir, bool v2) noexcept {
  std::vector<std::string> subs;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d))
      if (e->d_type == DT_DIR && std::strcmp(e->d_name, ".") != 0 &&
          std::strcmp(e->d_name, "..") != 0)
        subs.push_back(dir + "/" + e->d_name);
    ::closedir(d);
  }
  for (const auto& s : subs) remove_dirs({s}, {v2});
}

/// rmdir of each of `dirs` (the same group in several hierarchies). The first EBUSY (tasks
/// or subgroups inside) kills the tasks of all of them and removes subgroups; rmdir is
/// retried for a few seconds. Returns whether all are gone.
bool remove_dirs(const std::vector<std::string>& dirs, const std::vector<bool>& v2) noexcept {
  bool all = true;
  bool killed = false;
  for (size_t i = 0; i < dirs.size(); ++i) {
    const std::string& d = dirs[i];
    for (int round = 0;; ++round) {
      if (::rmdir(d.c_str()) == 0 || errno == ENOENT) break;
      int err = errno;
      if (err != EBUSY || round >= 200) {
        base::log_warn("cgroup: cannot remove `" + d + "`: " + std::strerror(err));
        all = false;
        break;
      }
      if (!killed || round % 20 == 19) {
        kill_tasks(dirs, v2);
        killed = true;
      }
      remove_subgroups(d, v2[i]);
      pause_for(round);
    }
  }
  return all;
}

}  // namespace

Cgroup Cgroup::create(const CgroupLimits& limits) {
  if (limits.pids_max < 0 || limits.memory_max < 0)
    throw base::Error("cgroup: a limit cannot be negative");
  const Layout& l = layout();
  Cgroup cg;
  unsigned have = 0;
  for (const auto& h : l.hierarchies) have |= h.controllers;
  if (limits.memory_max > 0 && !(have & kMemory))
    throw base::Error("cannot limit memory: no usable memory cgroup controller on this host" +
                      (l.unavailable.empty() ? std::string() : " (" + l.unavailable + ")"));
  if (l.hierarchies.empty()) return cg;

  static std::atomic<unsigned long long> counter{0};
  Owner owner = current_owner();
  std::string name = std::to_string(owner.pid) + "-" + std::to_string(owner.start) + "-" +
                     std::to_string(l.pidns) + "-" +
                     std::to_string(counter.fetch_add(1, std::memory_order_relaxed));

  // On a throw below, cg's destructor removes the directories made so far.
  for (const auto& h : l.hierarchies) {
    std::string dir = h.parent + "/" + name;
    if (::mkdir(dir.c_str(), 0755) < 0) {
      // Someone removed builder/ (an admin's cleanup): make it again, once.
      if (errno != ENOENT) throw base::SysError(errno, "cgroup: mkdir", dir);
      make_dir(h.parent);
      if (h.v2) enable_subtree(h.parent, h.controllers);
      if (::mkdir(dir.c_str(), 0755) < 0) throw base::SysError(errno, "cgroup: mkdir", dir);
    }
    cg.dirs_.push_back(dir);
    cg.dir_v2_.push_back(h.v2);
    cg.procs_.push_back(dir + "/cgroup.procs");
    if (h.controllers & kPids) {
      cg.pids_dir_ = dir;
      if (limits.pids_max > 0) write_control(dir + "/pids.max", std::to_string(limits.pids_max));
    }
    if (h.controllers & kMemory) {
      cg.memory_dir_ = dir;
      cg.memory_v2_ = h.v2;
      if (limits.memory_max > 0) {
        std::string v = std::to_string(limits.memory_max);
        if (h.v2) {
          write_control(dir + "/memory.max", v);
          write_control_if_present(dir + "/memory.swap.max", "0");  // as v1's memsw = limit
        } else {
          write_control(dir + "/memory.limit_in_bytes", v);
          // Absent without swap accounting; memsw must not be below the limit, so after it.
          write_control_if_present(dir + "/memory.memsw.limit_in_bytes", v);
        }
      }
    }
  }
  return cg;
}

Cgroup::~Cgroup() { destroy(); }

Cgroup::Cgroup(Cgroup&& o) noexcept
    : dirs_(std::move(o.dirs_)),
      dir_v2_(std::move(o.dir_v2_)),
      procs_(std::move(o.procs_)),
      pids_dir_(std::move(o.pids_dir_)),
      memory_dir_(std::move(o.memory_dir_)),
      memory_v2_(o.memory_v2_) {
  o.dirs_.clear();
  o.dir_v2_.clear();
  o.procs_.clear();
  o.pids_dir_.clear();
  o.memory_dir_.clear();
}

Cgroup& Cgroup::operator=(Cgroup&& o) noexcept {
  if (this != &o) {
    destroy();
    dirs_ = std::move(o.dirs_);
    dir_v2_ = std::move(o.dir_v2_);
    procs_ = std::move(o.procs_);
    pids_dir_ = std::move(o.pids_dir_);
    memory_dir_ = std::move(o.memory_dir_);
    memory_v2_ = o.memory_v2_;
    o.dirs_.clear();
    o.dir_v2_.clear();
    o.procs_.clear();
    o.pids_dir_.clear();
    o.memory_dir_.clear();
  }
  return *this;
}

void Cgroup::destroy() noexcept {
  if (dirs_.empty()) return;
  // Tasks normally are gone (the caller reaped the init, the PID namespace took the rest):
  // then this is one rmdir per hierarchy, and killing happens only on EBUSY.
  remove_dirs(dirs_, dir_v2_);
  dirs_.clear();
  dir_v2_.clear();
  procs_.clear();
  pids_dir_.clear();
  memory_dir_.clear();
}

void Cgroup::kill_all() noexcept { kill_tasks(dirs_, dir_v2_); }

bool Cgroup::oom_killed() const {
  if (memory_dir_.empty()) return false;
  std::string file = memory_dir_ + (memory_v2_ ? "/memory.events" : "/memory.oom_control");
  auto n = keyed_value(base::read_file(file), "oom_kill");
  return n && *n > 0;
}

std::optional<int64_t> Cgroup::memory_peak() const {
  if (memory_dir_.empty()) return std::nullopt;
  try {
    std::string text =
        base::read_file(memory_dir_ + (memory_v2_ ? "/memory.peak" : "/memory.max_usage_in_bytes"));
    int64_t v = 0;
    if (!text.empty() && text.back() == '\n') text.pop_back();
    if (parse_num(std::string_view(text), v)) return v;
  } catch (const base::SysError&) {
  }
  return std::nullopt;
}

std::optional<int64_t> Cgroup::pids_peak() const {
  if (pids_dir_.empty()) return std::nullopt;
  try {
    std::string text = base::read_file(pids_dir_ + "/pids.peak");
    int64_t v = 0;
    if (!text.empty() && text.back() == '\n') text.pop_back();
    if (parse_num(std::string_view(text), v)) return v;
  } catch (const base::SysError&) {
  }
  return std::nullopt;
}

std::string cgroup_unavailable_reason() { return layout().unavailable; }

std::vector<std::string> cgroup_parent_dirs() {
  std::vector<std::string> out;
  for (const auto& h : layout().hierarchies) out.push_back(h.parent);
  return out;
}

int remove_stale_cgroups() noexcept {
  try {
    const Layout& l = layout();
    // name -> its directories in every hierarchy (and whether each is v2)
    std::map<std::string, std::pair<std::vector<std::string>, std::vector<bool>>> stale;
    for (const auto& h : l.hierarchies) {
      std::set<std::string> parents{h.parent, h.root_parent};
      for (const auto& parent : parents) {
        DIR* d = ::opendir(parent.c_str());
        if (!d) continue;  // no builder/ at the root: nothing there
        while (dirent* e = ::readdir(d)) {
          if (e->d_type != DT_DIR) continue;
          auto g = parse_group_name(e->d_name);
          // Another pid namespace's pids mean nothing here: keep its groups.
          if (!g || g->pidns != l.pidns || owner_alive(g->pid, g->start)) continue;
          auto& entry = stale[e->d_name];
          entry.first.push_back(parent + "/" + e->d_name);
          entry.second.push_back(h.v2);
        }
        ::closedir(d);
      }
    }
    int removed = 0;
    for (auto& [name, dirs] : stale) {
      base::log_debug("cgroup: removing stale group " + name);
      if (remove_dirs(dirs.first, dirs.second)) ++removed;
    }
    return removed;
  } catch (const std::exception& e) {
    base::log_warn(std::string("cgroup: removing stale groups: ") + e.what());
    return 0;
  }
}

}  // namespace builder::exec
