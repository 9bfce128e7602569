// tests/e2e/leak_test.cpp — nothing stays on the host, however a build ends. 200
// `builder build --no-cache` runs on one root end by success, by a failing RUN, by Ctrl-C
// (SIGINT) or SIGTERM while a RUN sleeps, or by SIGKILL of builder itself mid-RUN; their
// RUN steps use bind, tmpfs and cache mounts, the default (NAT) network and no network,
// and leave background processes behind. Before and after, the host is compared: mounts,
// `ip netns`, processes (this test's descendants, steps' processes by their cgroup, and
// anything naming the test root), builder's cgroups and /tmp. Only what this test made is
// considered: other tests may run on the machine at the same time.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "e2e_util.h"

using builder::e2e::Result;
using builder::e2e::TestRoot;
using builder::e2e::slurp;
using builder::e2e::testdata;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

/// One process as /proc shows it.
struct Proc {
  int pid = 0;
  int ppid = 0;
  char state = '?';
  unsigned long long start = 0;  // field 22 of stat: clock ticks since boot
  std::string comm;
};

/// Parses /proc/<pid>/stat; false if the process is gone.
bool read_stat(int pid, Proc& p) {
  std::string s = slurp("/proc/" + std::to_string(pid) + "/stat");
  size_t open = s.find('('), close = s.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close + 2 >= s.size()) return false;
  p.pid = pid;
  p.comm = s.substr(open + 1, close - open - 1);
  std::istringstream rest(s.substr(close + 2));
  std::vector<std::string> f;
  for (std::string w; rest >> w;) f.push_back(w);
  // f[0] is field 3 (state), so field N is f[N - 3].
  if (f.size() < 20) return false;
  p.state = f[0][0];
  p.ppid = std::stoi(f[1]);
  p.start = std::stoull(f[19]);
  return true;
}

std::vector<Proc> process_table() {
  std::vector<Proc> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    std::string name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    Proc p;
    if (read_stat(std::stoi(name), p)) out.push_back(p);
  }
  return out;
}

std::string cmdline_of(int pid) {
  std::string cmd = slurp("/proc/" + std::to_string(pid) + "/cmdline");
  for (auto& c : cmd)
    if (c == '\0') c = ' ';
  while (!cmd.empty() && cmd.back() == ' ') cmd.pop_back();
  return cmd;
}

std::string describe(const Proc& p) {
  return std::to_string(p.pid) + " (" + p.comm + ", state " + p.state + ", parent " + std::to_string(p.ppid) +
         "): " + cmdline_of(p.pid);
}

/// Live (not zombie) processes below `ancestor` in the process tree.
std::vector<Proc> live_descendants(int ancestor) {
  auto table = process_table();
  std::map<int, std::vector<const Proc*>> children;
  for (const auto& p : table) children[p.ppid].push_back(&p);
  std::vector<Proc> out;
  std::vector<int> todo{ancestor};
  while (!todo.empty()) {
    int at = todo.back();
    todo.pop_back();
    for (const Proc* c : children[at]) {
      if (c->state != 'Z' && c->state != 'X') out.push_back(*c);
      todo.push_back(c->pid);
    }
  }
  return out;
}

/// A builder process this test started: its cgroups are named "<pid>-<start time>-...".
struct Spawned {
  pid_t pid = 0;
  std::string group_prefix;
};

/// Processes whose cgroup (any hierarchy) belongs to one of `builders` (a RUN step's).
std::vector<Proc> processes_in_groups_of(const std::vector<Spawned>& builders) {
  std::vector<Proc> out;
  for (const auto& p : process_table()) {
    if (p.state == 'Z') continue;
    std::string cg = slurp("/proc/" + std::to_string(p.pid) + "/cgroup");
    for (const auto& b : builders)
      if (cg.find("/builder/" + b.group_prefix) != std::string::npos) {
        out.push_back(p);
        break;
      }
  }
  return out;
}

/// Processes whose command line or working directory names `needle`.
std::vector<Proc> processes_naming(const std::string& needle) {
  std::vector<Proc> out;
  for (const auto& p : process_table()) {
    std::error_code ec;
    std::string cwd = fs::read_symlink("/proc/" + std::to_string(p.pid) + "/cwd", ec).string();
    if (cmdline_of(p.pid).find(needle) != std::string::npos || cwd.find(needle) != std::string::npos)
      out.push_back(p);
  }
  return out;
}

/// The directories builder makes its cgroups in: `builder/` at the root of each cgroup
/// hierarchy with a pids or memory controller (or the unified one), and below this
/// process's own group there (builder creates its groups under its parent's).
std::vector<fs::path> cgroup_builder_dirs() {
  std::map<std::string, std::string> own;  // controller list ("" for v2) -> path
  for (const auto& line : builder::e2e::lines_of(slurp("/proc/self/cgroup"))) {
    size_t a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    own[line.substr(a + 1, b - a - 1)] = line.substr(b + 1);
  }
  std::set<fs::path> dirs;
  for (const auto& line : builder::e2e::lines_of(slurp("/proc/self/mountinfo"))) {
    // "<id> <parent> <dev> <root> <mount point> <opts> ... - <fstype> <source> <super opts>"
    std::istringstream in(line);
    std::vector<std::string> f;
    for (std::string w; in >> w;) f.push_back(w);
    auto dash = std::find(f.begin(), f.end(), "-");
    if (f.size() < 5 || f.end() - dash < 4) continue;
    const std::string fstype = *(dash + 1), super = *(dash + 3);
    std::string key;
    if (fstype == "cgroup2") {
      key = "";
    } else if (fstype == "cgroup") {
      std::string ctl;
      for (const auto& [k, v] : own)
        if (k.find("pids") != std::string::npos || k.find("memory") != std::string::npos) {
          // The super options name the controllers of this mount ("rw,memory").
          bool all = true;
          std::istringstream ks(k);
          for (std::string c; std::getline(ks, c, ',');) all = all && super.find(c) != std::string::npos;
          if (all) ctl = k;
        }
      if (ctl.empty()) continue;
      key = ctl;
    } else {
      continue;
    }
    fs::path mp = f[4];
    dirs.insert(mp / "builder");
    if (own.count(key) && f[3] == "/") dirs.insert(mp / fs::path(own[key]).relative_path() / "builder");
  }
  std::vector<fs::path> out;
  for (const auto& d : dirs)
    if (fs::is_directory(d)) out.push_back(d);
  return out;
}

/// Cgroup directories named for one of `builders`.
std::vector<std::string> groups_of(const std::vector<Spawned>& builders) {
  std::vector<std::string> out;
  for (const auto& dir : cgroup_builder_dirs()) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      std::string name = e.path().filename().string();
      for (const auto& b : builders)
        if (name.rfind(b.group_prefix, 0) == 0) out.push_back(e.path().string());
    }
  }
  return out;
}

/// Lines of /proc/self/mountinfo.
std::set<std::string> mountinfo() {
  auto lines = builder::e2e::lines_of(slurp("/proc/self/mountinfo"));
  return {lines.begin(), lines.end()};
}

/// Mount point and file system type of a mountinfo line.
std::pair<std::string, std::string> mount_point_and_type(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> f;
  for (std::string w; in >> w;) f.push_back(w);
  auto dash = std::find(f.begin(), f.end(), "-");
  return {f.size() > 4 ? f[4] : "", dash != f.end() && dash + 1 != f.end() ? *(dash + 1) : ""};
}

/// Mounts that are this test's leaks: any line naming `test_dir`, and overlay or tmpfs
/// mounts that are not in `before`, except those below another directory of /tmp (another
/// test's root, mounted by that test).
std::vector<std::string> leaked_mounts(const std::set<std::string>& before, const std::string& test_dir) {
  std::vector<std::string> out;
  for (const auto& line : mountinfo()) {
    if (line.find(test_dir) != std::string::npos) {
      out.push_back(line);
      continue;
    }
    if (before.count(line)) continue;
    auto [point, type] = mount_point_and_type(line);
    if (type != "overlay" && type != "tmpfs") continue;
    if (point.rfind("/tmp/", 0) == 0) continue;  // another test's (ours name test_dir)
    out.push_back(line);
  }
  return out;
}

std::set<std::string> lines_set(const std::string& text) {
  auto lines = builder::e2e::lines_of(text);
  return {lines.begin(), lines.end()};
}

std::set<std::string> tmp_entries() {
  std::set<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/tmp", ec)) out.insert(e.path().filename().string());
  return out;
}

/// New entries of /tmp that another process may have made while this test ran: another
/// test's root or run_process() output files, the compiler's and mktemp's scratch files.
/// Nothing builder makes is named so (its scratch lives in <root>/run; a scratch dir
/// left in /tmp would be sandbox-<pid>-..., context-<pid>-..., ssh-<pid>-...).
bool someone_elses(const std::string& name) {
  static const std::regex others(
      R"re(^(builder-test-\w{6}|builder-e2e-(out|err|rootfs)\.\w{6}|cc\w{6}\.\w+|tmp\.?\w+|builder-bench\.\w+)$)re");
  return std::regex_match(name, others);
}

/// The kinds of ending of a build, in the order the loop cycles through them.
enum class Kind { Success, Failure, Interrupt, Terminate, Kill };
constexpr Kind kKinds[] = {Kind::Success, Kind::Interrupt, Kind::Failure, Kind::Kill, Kind::Terminate};
const char* name_of(Kind k) {
  switch (k) {
    case Kind::Success: return "success";
    case Kind::Failure: return "failure (RUN exits 1)";
    case Kind::Interrupt: return "SIGINT while RUN sleeps";
    case Kind::Terminate: return "SIGTERM while RUN sleeps";
    case Kind::Kill: return "SIGKILL of builder mid-RUN";
  }
  return "?";
}

/// Starts `builder --root <store> args...` in the background (stdout and stderr to `log`).
Spawned spawn(const TestRoot& root, const std::vector<std::string>& args, const fs::path& log) {
  std::vector<std::string> argv{builder::test::builder_binary(), "--root", root.store().string()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  // Emptied before fork: the caller reads it at once and must not see the last build's.
  int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  REQUIRE(out >= 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int in = ::open("/dev/null", O_RDONLY);
    if (in < 0 || ::chdir(root.work().c_str()) != 0) _exit(126);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(out, 2);
    ::execv(cargv[0], cargv.data());
    _exit(127);
  }
  ::close(out);
  // The start time does not change at execve: read it now, while the child surely lives.
  Proc p;
  REQUIRE(read_stat(pid, p));
  return {pid, std::to_string(pid) + "-" + std::to_string(p.start) + "-"};
}

int wait_status(pid_t pid) {
  int ws = 0;
  while (::waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
  }
  return ws;
}

/// Reaps dead children of this process that no one else waits for: orphans of a killed
/// builder, re-parented here because this process is a child subreaper (called only
/// when no builder of ours runs). Returns how many.
int reap_orphans() {
  int n = 0;
  for (const auto& p : process_table())
    if (p.ppid == ::getpid() && p.state == 'Z') n += ::waitpid(p.pid, nullptr, WNOHANG) > 0;
  return n;
}

/// Waits up to `limit` for `check` to return an empty list; returns its last answer.
template <typename F>
auto settle(F check, std::chrono::milliseconds limit = std::chrono::seconds(5)) {
  auto deadline = Clock::now() + limit;
  auto left = check();
  while (!left.empty() && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    left = check();
  }
  return left;
}

std::string describe(const std::vector<Proc>& ps) {
  std::string s;
  for (const auto& p : ps) s += describe(p) + "\n";
  return s;
}

long ms(Clock::duration d) { return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()); }

}  // namespace

TEST_CASE("leak: 200 builds ending by success, failure, Ctrl-C, SIGTERM and SIGKILL leave the host as it was") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  const std::string test_dir = root.dir().string();
  const std::string ctx = testdata("e2e/leak");
  const bool have_ip = builder::e2e::have_tool("ip");
  if (!have_ip) MESSAGE("ip not installed: network namespaces not compared");

  // Orphans of the builders (a step's process or a slirp4netns that outlived its
  // builder) are re-parented to this process instead of init, so they can be found.
  REQUIRE(::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
  struct Unsubreaper {
    ~Unsubreaper() { ::prctl(PR_SET_CHILD_SUBREAPER, 0); }
  } unsubreaper;

  // The host before.
  const auto mounts_before = mountinfo();
  const auto netns_before = have_ip ? lines_set(builder::e2e::run_process({"ip", "netns", "list"}).out)
                                    : std::set<std::string>{};
  const auto tmp_before = tmp_entries();
  std::set<int> descendants_before;
  for (const auto& p : live_descendants(::getpid())) descendants_before.insert(p.pid);
  const auto cgroup_dirs = cgroup_builder_dirs();
  MESSAGE("test root " << test_dir << "; builder cgroup dirs: " << cgroup_dirs.size());

  std::vector<Spawned> builders;
  std::map<Kind, int> counts;
  std::map<Kind, std::vector<long>> times;
  std::vector<std::pair<int, unsigned long long>> slirps;  // seen as children of a running builder
  std::vector<int> no_slirp;  // default-network builds without one when their step ran
  std::map<std::string, int> warnings;  // builder's warnings, and how many builds printed each
  bool checked_running_default = false, checked_running_none = false;
  int orphans_reaped = 0;
  constexpr int kBuilds = 200;
  const auto loop_start = Clock::now();

  for (int i = 0; i < kBuilds; ++i) {
    const Kind kind = kKinds[i % 5];
    const bool signalled = kind == Kind::Interrupt || kind == Kind::Terminate || kind == Kind::Kill;
    // The sleeping step alternates between the default network and none.
    const bool no_network = (i / 5) % 2 == 1;
    std::string file = kind == Kind::Success   ? "ok.Dockerfile"
                       : kind == Kind::Failure ? "fail.Dockerfile"
                       : no_network            ? "hang-none.Dockerfile"
                                               : "hang.Dockerfile";
    CAPTURE(i);
    CAPTURE(file);
    const fs::path log = root.work() / "build.log";
    const auto t0 = Clock::now();
    Spawned b = spawn(root, {"build", "--no-cache", "--progress=plain", "-f", ctx + "/" + file, ctx}, log);
    builders.push_back(b);

    int ws = 0;
    if (!signalled) {
      ws = wait_status(b.pid);
    } else {
      // Wait for the step's own output (not its header), then a varying few ms, so the
      // signal lands at different instants of the running step.
      bool running = false, exited = false;
      while (!running && !exited && Clock::now() - t0 < std::chrono::seconds(30)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(3));
        running = slurp(log).find(" leak-step-running\n") != std::string::npos;
        exited = ::waitpid(b.pid, &ws, WNOHANG) == b.pid;
      }
      CHECK_MESSAGE(running, "the RUN step never started:\n" << slurp(log));
      if (running) {
        bool& checked = no_network ? checked_running_none : checked_running_default;
        if (!checked) {
          // Once per network kind, the detectors must see a running step: its sleeps below
          // its builder and in its cgroup, and the cgroup itself. (The step's last `sleep
          // 100` starts just after its marker line: give it a moment.)
          checked = true;
          auto sleeps_in = [](const std::vector<Proc>& ps) {
            return std::count_if(ps.begin(), ps.end(), [](const Proc& p) { return p.comm == "sleep"; });
          };
          auto seen = Clock::now();
          while (sleeps_in(live_descendants(b.pid)) < 3 && Clock::now() - seen < std::chrono::seconds(3))
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
          auto below = live_descendants(b.pid);
          CHECK_MESSAGE(sleeps_in(below) >= 3, "the step's sleeps are not below its builder:\n" << describe(below));
          if (!cgroup_dirs.empty()) {
            auto in_groups = processes_in_groups_of({b});
            CHECK_MESSAGE(sleeps_in(in_groups) >= 3, "the step's sleeps are not seen by cgroup:\n" << describe(in_groups));
            CHECK_MESSAGE(!groups_of({b}).empty(), "the running step's cgroup is not seen");
          }
        }
        if (!no_network) {
          size_t had = slirps.size();
          for (const auto& p : process_table())
            if (p.ppid == b.pid && p.comm == "slirp4netns") slirps.emplace_back(p.pid, p.start);
          if (slirps.size() == had) no_slirp.push_back(i);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds((i * 37) % 50));
        ::kill(b.pid, kind == Kind::Interrupt ? SIGINT : kind == Kind::Terminate ? SIGTERM : SIGKILL);
        ws = wait_status(b.pid);
      } else if (!exited) {
        ::kill(b.pid, SIGKILL);
        ws = wait_status(b.pid);
      }
    }
    times[kind].push_back(ms(Clock::now() - t0));
    orphans_reaped += reap_orphans();

    const std::string out = slurp(log);
    for (const auto& line : builder::e2e::lines_of(out))
      if (line.find("warning: ") != std::string::npos) warnings[line.substr(line.find("warning: "))]++;
    bool as_expected = false;
    switch (kind) {
      case Kind::Success: as_expected = WIFEXITED(ws) && WEXITSTATUS(ws) == 0; break;
      case Kind::Failure:
        as_expected = WIFEXITED(ws) && WEXITSTATUS(ws) != 0 && out.find("exit code: 1") != std::string::npos &&
                      out.find("leak-fail-second") != std::string::npos;
        break;
      case Kind::Interrupt: as_expected = WIFEXITED(ws) && WEXITSTATUS(ws) == 128 + SIGINT; break;
      case Kind::Terminate: as_expected = WIFEXITED(ws) && WEXITSTATUS(ws) == 128 + SIGTERM; break;
      case Kind::Kill: as_expected = WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL; break;
    }
    CHECK_MESSAGE(as_expected, name_of(kind) << ": wait status " << ws << "\n" << out);
    counts[kind] += as_expected;

    // Mounts are cheap to look at: after every build, nothing of this root is mounted.
    auto leaked = leaked_mounts(mounts_before, test_dir);
    CHECK_MESSAGE(leaked.empty(), "mounts left after build " << i << ":\n" << builder::e2e::join(leaked));
  }
  const auto loop_time = Clock::now() - loop_start;

  // A last successful build: it also removes the groups of the SIGKILLed builders (the
  // first container of a builder repairs what a dead one left).
  const fs::path log = root.work() / "build.log";
  Spawned last = spawn(root, {"build", "--no-cache", "--progress=plain", "-f", ctx + "/ok.Dockerfile", ctx}, log);
  builders.push_back(last);
  int ws = wait_status(last.pid);
  REQUIRE_MESSAGE((WIFEXITED(ws) && WEXITSTATUS(ws) == 0), slurp(log));

  std::string summary;
  for (Kind k : kKinds) {
    auto& t = times[k];
    std::sort(t.begin(), t.end());
    summary += std::string("\n  ") + name_of(k) + ": " + std::to_string(counts[k]) + " (median " +
               std::to_string(t.empty() ? 0 : t[t.size() / 2]) + " ms)";
  }
  std::string missing;
  for (int i : no_slirp) missing += " " + std::to_string(i);
  MESSAGE(kBuilds << " builds in " << ms(loop_time) << " ms:" << summary << "\n  slirp4netns seen: " << slirps.size()
                  << (missing.empty() ? "" : " (none in builds" + missing + ")")
                  << "; orphans reaped (children of killed builders): " << orphans_reaped);
  for (const auto& [w, n] : warnings) MESSAGE(n << " builds warned: " << w);
  CHECK_MESSAGE(no_slirp.empty(), "default-network steps ran without the builder's slirp4netns:" << missing);
  CHECK(counts[Kind::Success] + counts[Kind::Failure] + counts[Kind::Interrupt] + counts[Kind::Terminate] +
            counts[Kind::Kill] ==
        kBuilds);

  // Processes: nothing below this test (every builder is reaped; any orphan of theirs
  // would be re-parented here), no step process in a group of our builders, nothing
  // naming the root, and no slirp4netns seen under a builder.
  auto descendants = settle([&] {
    orphans_reaped += reap_orphans();
    std::vector<Proc> left;
    for (const auto& p : live_descendants(::getpid()))
      if (!descendants_before.count(p.pid)) left.push_back(p);
    return left;
  });
  CHECK_MESSAGE(descendants.empty(), "processes left below the test:\n" << describe(descendants));
  auto in_groups = settle([&] { return processes_in_groups_of(builders); });
  CHECK_MESSAGE(in_groups.empty(), "step processes left:\n" << describe(in_groups));
  auto naming = settle([&] { return processes_naming(test_dir); });
  CHECK_MESSAGE(naming.empty(), "processes naming the test root:\n" << describe(naming));
  for (const auto& [pid, start] : slirps) {
    Proc p;
    bool same = read_stat(pid, p) && p.start == start;
    CHECK_MESSAGE(!same, "slirp4netns " << pid << " outlived its builder: " << describe(p));
  }
  // In particular no `sleep 100` a step started in the background (already covered by
  // the two checks above; said explicitly since it is the classic leak).
  auto sleeps = settle([&] {
    std::vector<Proc> left;
    auto ours = live_descendants(::getpid());
    auto grouped = processes_in_groups_of(builders);
    ours.insert(ours.end(), grouped.begin(), grouped.end());
    for (const auto& p : ours)
      if (p.comm == "sleep" && cmdline_of(p.pid) == "sleep 100") left.push_back(p);
    return left;
  });
  CHECK_MESSAGE(sleeps.empty(), "orphan `sleep 100` of our steps:\n" << describe(sleeps));

  // Cgroups: none named for any builder this test started.
  auto groups = settle([&] { return groups_of(builders); });
  CHECK_MESSAGE(groups.empty(), "cgroups left:\n" << builder::e2e::join(groups));

  // Network namespaces.
  if (have_ip) {
    auto now = lines_set(builder::e2e::run_process({"ip", "netns", "list"}).out);
    std::vector<std::string> added;
    std::set_difference(now.begin(), now.end(), netns_before.begin(), netns_before.end(), std::back_inserter(added));
    CHECK_MESSAGE(added.empty(), "network namespaces added:\n" << builder::e2e::join(added));
  }

  // Mounts.
  auto leaked = leaked_mounts(mounts_before, test_dir);
  CHECK_MESSAGE(leaked.empty(), "mounts left:\n" << builder::e2e::join(leaked));

  // /tmp: the root's own directory aside, nothing new (another test's files aside, after
  // they have had a moment to go).
  auto tmp_new = [&] {
    std::vector<std::string> added, theirs;
    for (const auto& n : tmp_entries())
      if (!tmp_before.count(n) && "/tmp/" + n != test_dir) (someone_elses(n) ? theirs : added).push_back(n);
    return std::pair{added, theirs};
  };
  auto tmp_added = settle([&] { return tmp_new().first; });
  CHECK_MESSAGE(tmp_added.empty(), "new in /tmp:\n" << builder::e2e::join(tmp_added));
  if (auto theirs = tmp_new().second; !theirs.empty())
    MESSAGE("new in /tmp, from other tests or the compiler (not counted):\n" << builder::e2e::join(theirs));

  // The root itself can go: nothing is mounted or busy under it.
  root.check_no_mounts();
  std::error_code ec;
  fs::remove_all(root.dir(), ec);
  CHECK_MESSAGE(!ec, "cannot remove " << test_dir << ": " << ec.message());
  CHECK(!fs::exists(root.dir()));
}
