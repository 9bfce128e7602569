// tests/e2e/crash_test.cpp — a build killed with SIGKILL in the middle of a RUN step
// leaves no process, mount or scratch directory behind once the next command has
// opened the store, and the store still builds.
#include <signal.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "e2e_util.h"

using builder::e2e::Result;
using builder::e2e::TestRoot;
using builder::e2e::testdata;
namespace fs = std::filesystem;

namespace {

/// Names in `dir` that start with `prefix`.
std::vector<std::string> entries_with_prefix(const fs::path& dir, const std::string& prefix) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) == 0) out.push_back(name);
  }
  return out;
}

/// Pids whose command line contains `needle` (from /proc/<pid>/cmdline).
std::vector<int> processes_with(const std::string& needle) {
  std::vector<int> pids;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmd = builder::e2e::slurp(e.path() / "cmdline");
    for (auto& c : cmd)
      if (c == '\0') c = ' ';
    if (cmd.find(needle) != std::string::npos) pids.push_back(std::stoi(name));
  }
  return pids;
}

}  // namespace

/// Starts `builder build` of testdata/e2e/killed with its output in `log`, waits until
/// its RUN step runs, sends `sig` and returns the wait status.
int build_and_signal(const TestRoot& root, const fs::path& log, int sig) {
  std::string cmd = "exec '" + builder::test::builder_binary() + "' --root '" + root.store().string() +
                    "' build --progress=plain -t killed '" + testdata("e2e/killed") + "' >'" + log.string() +
                    "' 2>&1";
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  bool running = false;
  for (int i = 0; i < 300 && !running; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    // The step's own output line ("#2 0.012 step-running"), not its header, which
    // names the command before the sandbox exists.
    running = builder::e2e::slurp(log).find(" step-running\n") != std::string::npos;
  }
  CHECK_MESSAGE(running, "the RUN step never started:\n" << builder::e2e::slurp(log));
  CHECK(!entries_with_prefix(root.store() / "run", "sandbox-").empty());
  ::kill(pid, sig);
  int ws = 0;
  ::waitpid(pid, &ws, 0);
  return ws;
}

TEST_CASE("e2e: Ctrl-C or SIGTERM stops a build cleanly, with nothing left to repair") {
  if (!builder::test::have_root()) return;
  for (int sig : {SIGINT, SIGTERM}) {
    CAPTURE(sig);
    TestRoot root;
    REQUIRE(root.import_busybox());
    fs::path log = root.work() / "build.log";
    int ws = build_and_signal(root, log, sig);
    std::string out = builder::e2e::slurp(log);
    CHECK_MESSAGE((WIFEXITED(ws) && WEXITSTATUS(ws) == 128 + sig), out);
    CHECK_MESSAGE(out.find(std::string("ERROR: build interrupted by SIG") + sigabbrev_np(sig) +
                           "; nothing was tagged") != std::string::npos,
                  out);
    CHECK(processes_with("sleep 1000").empty());
    root.check_no_mounts();
    // Cleaned on the way out, before any other command could repair.
    CHECK(entries_with_prefix(root.store() / "run", "sandbox-").empty());
    CHECK(entries_with_prefix(root.store() / "snapshots", "pending-").empty());
    Result images = root.builder({"images"});
    CHECK(builder::e2e::image_repositories(images.out) == std::vector<std::string>{"busybox"});
  }
}

TEST_CASE("e2e: a build killed during RUN leaves nothing behind and the store recovers") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());

  fs::path log = root.work() / "build.log";
  int ws = build_and_signal(root, log, SIGKILL);
  CHECK(WIFSIGNALED(ws));

  // The step's processes die with the builder (the pid namespace's init is killed).
  std::vector<int> left;
  for (int i = 0; i < 100; ++i) {
    left = processes_with("sleep 1000");
    if (left.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK_MESSAGE(left.empty(), left.size() << " step processes survived the builder");
  // Mounts lived in the step's own mount namespace.
  root.check_no_mounts();

  // The next command repairs: the scratch directory and the half-written snapshot go.
  Result images = root.builder({"images"});
  CHECK_MESSAGE(images.status == 0, images.describe());
  CHECK(builder::e2e::image_repositories(images.out) == std::vector<std::string>{"busybox"});
  CHECK(entries_with_prefix(root.store() / "run", "sandbox-").empty());
  CHECK(entries_with_prefix(root.store() / "snapshots", "pending-").empty());
  CHECK(entries_with_prefix(root.store() / "content" / "ingest", "").empty());

  // And the store still builds.
  builder::e2e::write_file(root.work() / "ctx" / "Dockerfile", "FROM busybox\nRUN echo ok > /ok\n");
  Result b = root.builder({"build", "-t", "after", (root.work() / "ctx").string()});
  CHECK_MESSAGE(b.status == 0, b.describe());
  Result r = root.builder({"run", "--rm", "after", "cat", "/ok"});
  CHECK_MESSAGE(r.out == "ok\n", r.describe());
  root.check_no_mounts();
}
