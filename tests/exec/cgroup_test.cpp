// tests/exec/cgroup_test.cpp — exec::Cgroup: the pids limit stops a fork bomb, the memory
// limit OOM-kills and is reported, destroy kills what is left and leaves no directory,
// remove_stale_cgroups tells dead (and reused) owner pids from live ones. Needs root.
#include "exec/cgroup.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "base/fs.h"
#include "test_util.h"

namespace fs = std::filesystem;
using builder::exec::Cgroup;
using builder::exec::CgroupLimits;

namespace {

/// Joins `cg` as the sandbox's init does: "0" to each cgroup.procs.
bool join(const std::vector<std::string>& procs) {
  for (const auto& f : procs) {
    int fd = ::open(f.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return false;
    bool ok = ::write(fd, "0", 1) == 1;
    ::close(fd);
    if (!ok) return false;
  }
  return true;
}

/// Forks a child that joins `cg` and runs `body`; _exit(body()) or 120 when joining failed.
template <typename F>
pid_t fork_in(const Cgroup& cg, F body) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (!join(cg.procs_files())) ::_exit(120);
    ::_exit(body());
  }
  return pid;
}

int wait_status(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

bool usable_or_skip(const Cgroup& cg) {
  if (!cg.available())
    FAIL("no usable cgroup controllers as root: " << builder::exec::cgroup_unavailable_reason());
  return cg.available();
}

std::string read_trim(const std::string& path) {
  std::string s = builder::base::read_file(path);
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

}  // namespace

TEST_CASE("cgroup: the pids limit stops a fork bomb at the limit with EAGAIN") {
  if (!builder::test::have_root()) return;
  Cgroup cg = Cgroup::create(CgroupLimits{.pids_max = 20, .memory_max = 0});
  if (!usable_or_skip(cg)) return;
  int pipefd[2];
  REQUIRE(::pipe2(pipefd, O_CLOEXEC) == 0);
  pid_t child = fork_in(cg, [&] {
    ::close(pipefd[0]);
    std::vector<pid_t> kids;
    int err = 0;
    for (int i = 0; i < 100; ++i) {
      pid_t k = ::fork();
      if (k == 0) {
        ::pause();
        ::_exit(0);
      }
      if (k < 0) {
        err = errno;
        break;
      }
      kids.push_back(k);
    }
    for (pid_t k : kids) ::kill(k, SIGKILL);
    for (pid_t k : kids) ::waitpid(k, nullptr, 0);
    int report[2] = {static_cast<int>(kids.size()), err};
    return ::write(pipefd[1], report, sizeof report) == sizeof report ? 0 : 121;
  });
  ::close(pipefd[1]);
  int report[2] = {-1, -1};
  ssize_t n = ::read(pipefd[0], report, sizeof report);
  ::close(pipefd[0]);
  int status = wait_status(child);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  REQUIRE(n == sizeof report);
  CHECK(report[0] == 19);  // the child itself is the 20th task
  CHECK(report[1] == EAGAIN);
  if (auto peak = cg.pids_peak()) CHECK(*peak == 20);
  CHECK_FALSE(cg.oom_killed());
}

TEST_CASE("cgroup: a task past the memory limit is OOM-killed and reported") {
  if (!builder::test::have_root()) return;
  Cgroup cg = Cgroup::create(CgroupLimits{.pids_max = 2048, .memory_max = 32 << 20});
  if (!usable_or_skip(cg)) return;
  pid_t child = fork_in(cg, [] {
    size_t size = size_t{256} << 20;
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 122;
    std::memset(p, 0x5a, size);  // touch every page
    return 0;
  });
  int status = wait_status(child);
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);
  CHECK(cg.oom_killed());
  if (auto peak = cg.memory_peak()) CHECK(*peak <= (int64_t{32} << 20));
}

TEST_CASE("cgroup: a task within the memory limit is not reported as OOM-killed") {
  if (!builder::test::have_root()) return;
  Cgroup cg = Cgroup::create(CgroupLimits{.pids_max = 2048, .memory_max = 32 << 20});
  if (!usable_or_skip(cg)) return;
  pid_t child = fork_in(cg, [] {
    size_t size = size_t{4} << 20;
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 122;
    std::memset(p, 0x5a, size);
    return 0;
  });
  int status = wait_status(child);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK_FALSE(cg.oom_killed());
  if (auto peak = cg.memory_peak()) CHECK(*peak >= (int64_t{4} << 20));
}

TEST_CASE("cgroup: the limits are written to the control files") {
  if (!builder::test::have_root()) return;
  Cgroup cg = Cgroup::create(CgroupLimits{.pids_max = 77, .memory_max = 64 << 20});
  if (!usable_or_skip(cg)) return;
  bool saw_pids = false, saw_memory = false;
  for (const auto& d : cg.dirs()) {
    if (fs::exists(d + "/pids.max")) {
      saw_pids = true;
      CHECK(read_trim(d + "/pids.max") == "77");
    }
    if (fs::exists(d + "/memory.limit_in_bytes")) {
      saw_memory = true;
      CHECK(read_trim(d + "/memory.limit_in_bytes") == std::to_string(64 << 20));
      if (fs::exists(d + "/memory.memsw.limit_in_bytes"))
        CHECK(read_trim(d + "/memory.memsw.limit_in_bytes") == std::to_string(64 << 20));
    } else if (fs::exists(d + "/memory.max")) {
      saw_memory = true;
      CHECK(read_trim(d + "/memory.max") == std::to_string(64 << 20));
    }
  }
  CHECK(saw_pids);
  CHECK(saw_memory);
  // Without limits nothing is written: the defaults stay unlimited.
  Cgroup open = Cgroup::create(CgroupLimits{});
  for (const auto& d : open.dirs())
    if (fs::exists(d + "/pids.max")) CHECK(read_trim(d + "/pids.max") == "max");
  CHECK_THROWS_WITH(Cgroup::create(CgroupLimits{.pids_max = -1}),
                    "cgroup: a limit cannot be negative");
}

TEST_CASE("cgroup: destroy kills the tasks still inside and removes every directory") {
  if (!builder::test::have_root()) return;
  std::vector<std::string> dirs;
  pid_t child = -1;
  {
    Cgroup cg = Cgroup::create(CgroupLimits{.pids_max = 100, .memory_max = 0});
    if (!usable_or_skip(cg)) return;
    dirs = cg.dirs();
    int pipefd[2];
    REQUIRE(::pipe2(pipefd, O_CLOEXEC) == 0);
    child = fork_in(cg, [&] {
      // A grandchild too, in a subgroup the container made (as a privileged one may): it
      // is not ours to reap, and destroy must still find it and remove the subgroup.
      std::vector<std::string> inner;
      for (const auto& d : cg.dirs()) {
        inner.push_back(d + "/inner/cgroup.procs");
        if (::mkdir((d + "/inner").c_str(), 0755) != 0) return 123;
      }
      if (::fork() == 0) {
        if (!join(inner)) ::_exit(120);
        (void)!::write(pipefd[1], "y", 1);
        ::pause();
        ::_exit(0);
      }
      (void)!::write(pipefd[1], "x", 1);
      ::pause();
      return 0;
    });
    ::close(pipefd[1]);
    char c[2];
    REQUIRE(::read(pipefd[0], &c[0], 1) == 1);
    REQUIRE(::read(pipefd[0], &c[1], 1) == 1);
    ::close(pipefd[0]);
    std::string procs = builder::base::read_file(cg.procs_files().at(0));
    CHECK(procs == std::to_string(child) + "\n");
    std::string inner = builder::base::read_file(cg.dirs().at(0) + "/inner/cgroup.procs");
    CHECK(std::count(inner.begin(), inner.end(), '\n') == 1);
    // Moved from: the moved-to object owns the group, the old one is empty.
    Cgroup owner = std::move(cg);
    CHECK_FALSE(cg.available());
    CHECK(owner.available());
  }
  // Destroy has returned: the child must be dead already (give it a moment to be reaped
  // by the kernel's bookkeeping, but never hang the suite on a survivor).
  int status = 0;
  pid_t r = 0;
  for (int i = 0; i < 500 && (r = ::waitpid(child, &status, WNOHANG)) == 0; ++i) ::usleep(10'000);
  if (r == 0) {
    ::kill(child, SIGKILL);
    wait_status(child);
    FAIL("the task inside survived destroy");
  }
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);
  for (const auto& d : dirs) CHECK_MESSAGE(!fs::exists(d), d);
}

TEST_CASE("cgroup: remove_stale_cgroups removes groups of dead or reused owners only") {
  if (!builder::test::have_root()) return;
  Cgroup live = Cgroup::create(CgroupLimits{.pids_max = 100, .memory_max = 0});
  if (!usable_or_skip(live)) return;

  // A builder that dies without destroying its group, leaving a task inside.
  int pipefd[2];
  REQUIRE(::pipe2(pipefd, O_CLOEXEC) == 0);
  pid_t owner = ::fork();
  REQUIRE(owner >= 0);
  if (owner == 0) {
    Cgroup cg = Cgroup::create(CgroupLimits{.pids_max = 100, .memory_max = 0});
    pid_t leftover = ::fork();
    if (leftover == 0) {
      if (!join(cg.procs_files())) ::_exit(120);
      std::string dirs;
      for (const auto& d : cg.dirs()) dirs += d + "\n";
      (void)!::write(pipefd[1], dirs.data(), dirs.size());
      ::close(pipefd[1]);
      ::pause();
      ::_exit(0);
    }
    ::_exit(0);  // no destructors: the group stays
  }
  ::close(pipefd[1]);
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = ::read(pipefd[0], buf, sizeof buf)) > 0;) text.append(buf, size_t(n));
  ::close(pipefd[0]);
  int status = wait_status(owner);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  std::vector<std::string> stale;
  for (size_t pos = 0, nl; (nl = text.find('\n', pos)) != std::string::npos; pos = nl + 1)
    stale.push_back(text.substr(pos, nl - pos));
  REQUIRE(stale.size() == live.dirs().size());
  for (const auto& d : stale) REQUIRE(fs::exists(d));

  // A group whose owner pid is alive but is another process (pid reuse): wrong start time.
  // And a directory of another shape, which is never ours to remove.
  struct stat ns;
  REQUIRE(::stat("/proc/self/ns/pid", &ns) == 0);
  std::vector<std::string> reused, foreign;
  for (const auto& parent : builder::exec::cgroup_parent_dirs()) {
    reused.push_back(parent + "/" + std::to_string(::getpid()) + "-1-" + std::to_string(ns.st_ino) +
                     "-999999");
    foreign.push_back(parent + "/not-a-builder-group-" + std::to_string(::getpid()));
    REQUIRE(::mkdir(reused.back().c_str(), 0755) == 0);
    REQUIRE(::mkdir(foreign.back().c_str(), 0755) == 0);
  }

  int removed = builder::exec::remove_stale_cgroups();
  CHECK(removed >= 2);  // other dead builders' groups may be there too
  for (const auto& d : stale) CHECK_MESSAGE(!fs::exists(d), d);
  for (const auto& d : reused) CHECK_MESSAGE(!fs::exists(d), d);
  for (const auto& d : live.dirs()) CHECK_MESSAGE(fs::exists(d), d);
  for (const auto& d : foreign) {
    CHECK_MESSAGE(fs::exists(d), d);
    ::rmdir(d.c_str());
  }
}

TEST_CASE("cgroup: create and destroy are cheap and leave nothing") {
  if (!builder::test::have_root()) return;
  {
    Cgroup warm = Cgroup::create(CgroupLimits{.pids_max = 2048, .memory_max = 0});
    if (!usable_or_skip(warm)) return;
  }
  auto count_groups = [] {
    size_t n = 0;
    for (const auto& parent : builder::exec::cgroup_parent_dirs())
      for (const auto& e : fs::directory_iterator(parent))
        if (e.is_directory() &&
            e.path().filename().string().rfind(std::to_string(::getpid()) + "-", 0) == 0)
          ++n;
    return n;
  };
  size_t before = count_groups();
  for (int64_t memory : {int64_t{0}, int64_t{256} << 20}) {
    constexpr int kRounds = 200;
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kRounds; ++i) {
      Cgroup cg = Cgroup::create(CgroupLimits{.pids_max = 2048, .memory_max = memory});
    }
    auto us =
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    MESSAGE("create+destroy, memory limit " << memory << ": " << us / kRounds << " us mean over "
                                            << kRounds);
    CHECK(us / kRounds < 20'000);
  }
  CHECK(count_groups() == before);
}
