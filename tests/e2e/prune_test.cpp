// tests/e2e/prune_test.cpp — `builder du` and `builder prune` end to end: du lists the
// cache, prune -a empties it and the next build re-runs, an image still runs after its
// layers were pruned, the GC policy of config.json keeps the cache under its limit
// across builds, a prune during a build leaves that build intact, bad input fails.
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <regex>
#include <thread>

#include "e2e_util.h"

using builder::e2e::Result;
using builder::e2e::TestRoot;
using builder::e2e::testdata;
namespace fs = std::filesystem;

namespace {

/// The size of a du/prune "Total:" line in bytes (docker's decimal units).
double total_bytes(const std::string& out) {
  static const std::regex total(R"re(Total:\s+([0-9.]+)(B|kB|MB|GB))re");
  std::smatch m;
  if (!std::regex_search(out, m, total)) return -1;
  double v = std::stod(m[1]);
  std::string unit = m[2];
  if (unit == "kB") v *= 1e3;
  if (unit == "MB") v *= 1e6;
  if (unit == "GB") v *= 1e9;
  return v;
}

/// Rows of du's table (between its header and the blank line before the summary).
size_t du_rows(const std::string& out) {
  size_t rows = 0;
  bool in_table = false;
  for (const auto& l : builder::e2e::lines_of(out)) {
    if (l.rfind("ID ", 0) == 0) {
      in_table = true;
      continue;
    }
    if (in_table && l.empty()) break;
    if (in_table) ++rows;
  }
  return rows;
}

size_t dir_entries(const fs::path& dir) {
  size_t n = 0;
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); ++it) ++n;
  return n;
}

}  // namespace

TEST_CASE("prune: du lists the cache; prune -a empties it; rebuilds re-run; images still run") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  Result b = root.builder({"build", "--progress=plain", "-t", "pruned", testdata("e2e/prune")});
  REQUIRE_MESSAGE(b.status == 0, b.describe());

  Result du = root.builder({"du"});
  REQUIRE_MESSAGE(du.status == 0, du.describe());
  CHECK(du.out.find("RECLAIMABLE") != std::string::npos);
  CHECK(du_rows(du.out) >= 5);  // busybox layer, three steps, the cache mount
  for (const char* line : {"Shared:", "Private:", "Reclaimable:", "Total:"})
    CHECK_MESSAGE(du.out.find(line) != std::string::npos, du.out);
  // The 1 MiB layer and the 200 kB cache mount, at least.
  CHECK(total_bytes(du.out) > 1.2e6);
  Result verbose = root.builder({"du", "--verbose"});
  CHECK(verbose.status == 0);
  CHECK(verbose.out.find("Description:") != std::string::npos);
  CHECK(verbose.out.find("exec.cachemount") != std::string::npos);

  // Without -a: what the tagged image uses stays, the cache mount goes.
  Result p = root.builder({"prune", "-f"});
  REQUIRE_MESSAGE(p.status == 0, p.describe());
  CHECK(total_bytes(p.out) >= 2e5);
  CHECK(total_bytes(p.out) < 1e6);
  Result again = root.builder({"build", "--progress=plain", "-t", "pruned", testdata("e2e/prune")});
  REQUIRE_MESSAGE(again.status == 0, again.describe());
  auto cached = builder::e2e::step_cache_states(again.err, "RUN");
  CHECK(cached["RUN head -c 1048576 /dev/urandom > /big"]);
  CHECK(cached["RUN echo ok > /ok"]);

  // -a: everything; the snapshot directories are gone and du says 0B.
  p = root.builder({"prune", "-a", "-f"});
  REQUIRE_MESSAGE(p.status == 0, p.describe());
  CHECK(total_bytes(p.out) > 1e6);
  du = root.builder({"du"});
  CHECK(total_bytes(du.out) == 0);
  CHECK(du_rows(du.out) == 0);
  CHECK(dir_entries(root.store() / "snapshots") == 0);

  // The image is unpacked again from its blobs.
  Result run = root.builder({"run", "--rm", "pruned"});
  CHECK_MESSAGE(run.status == 0, run.describe());
  CHECK(run.out == "ok\n");
  Result big = root.builder({"run", "--rm", "pruned", "stat", "-c", "%s", "/big"});
  CHECK(big.out == "1048576\n");

  // A rebuild runs its steps again and still works.
  Result rebuilt = root.builder({"build", "--progress=plain", "-t", "pruned", testdata("e2e/prune")});
  REQUIRE_MESSAGE(rebuilt.status == 0, rebuilt.describe());
  cached = builder::e2e::step_cache_states(rebuilt.err, "RUN");
  CHECK_FALSE(cached["RUN head -c 1048576 /dev/urandom > /big"]);
  CHECK_FALSE(cached["RUN echo ok > /ok"]);
  run = root.builder({"run", "--rm", "pruned"});
  CHECK(run.out == "ok\n");
  root.check_no_mounts();
}

TEST_CASE("prune: until keeps what was used recently; keep-storage; bad input is refused") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  Result b = root.builder({"build", "-q", testdata("e2e/prune")});
  REQUIRE_MESSAGE(b.status == 0, b.describe());
  Result du = root.builder({"du"});
  double before = total_bytes(du.out);
  REQUIRE(before > 1e6);

  Result p = root.builder({"prune", "-a", "-f", "--filter", "until=1h"});
  CHECK_MESSAGE(p.status == 0, p.describe());
  CHECK(p.out.find("Total:  0B") != std::string::npos);
  CHECK(total_bytes(root.builder({"du"}).out) == before);

  p = root.builder({"prune", "-a", "-f", "--keep-storage", "1GB"});
  CHECK(p.status == 0);
  CHECK(total_bytes(p.out) == 0);

  struct Bad {
    std::vector<std::string> args;
    std::string message;
  };
  for (const Bad& bad : std::vector<Bad>{
           {{"prune", "-f", "--filter", "until=2d"}, "invalid duration `2d`"},
           {{"prune", "-f", "--filter", "id=abc"}, "unsupported filter `id`"},
           {{"prune", "-f", "--filter", "until"}, "expected KEY=VALUE"},
           {{"prune", "-f", "--keep-storage", "10XB"}, "--keep-storage: invalid size `10XB`"},
           {{"prune"}, "stdin is not a terminal: use -f/--force"},
       }) {
    Result r = root.builder(bad.args);
    CHECK_MESSAGE(r.status == 1, r.describe());
    CHECK_MESSAGE(r.err.find(bad.message) != std::string::npos, r.describe());
  }
  CHECK(total_bytes(root.builder({"du"}).out) == before);  // nothing was removed

  // A bad config file fails the build before it starts, naming the file and key.
  builder::e2e::write_file(root.store() / "config.json", R"({"gc": {"maxUsedSpace": "lots"}})");
  Result bad = root.builder({"build", "-q", testdata("e2e/prune")});
  CHECK(bad.status == 1);
  CHECK_MESSAGE(bad.err.find("config.json`: gc.maxUsedSpace: invalid size `lots`") != std::string::npos, bad.describe());
}

TEST_CASE("prune: the GC policy keeps the cache under maxUsedSpace across builds") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  constexpr double kLimit = 5 * 1024 * 1024;
  builder::e2e::write_file(root.store() / "config.json",
                           R"({"gc": {"maxUsedSpace": "5MiB", "reservedSpace": "0", "minFreeSpace": "0",
                                      "keepDuration": "0"}})");
  bool collected = false;
  for (int i = 1; i <= 6; ++i) {
    std::string tag = "gc" + std::to_string(i);
    Result b = root.builder({"build", "--progress=plain", "--build-arg", "N=" + std::to_string(i), "-t", tag,
                             testdata("e2e/prune-gc")});
    REQUIRE_MESSAGE(b.status == 0, b.describe());
    collected = collected || b.err.find("GC: removed") != std::string::npos;
    Result du = root.builder({"du"});
    double total = total_bytes(du.out);
    CHECK_MESSAGE(total > 0, du.out);
    CHECK_MESSAGE(total <= kLimit, "after build " << i << ":\n" << du.out);
  }
  CHECK(collected);  // each build adds 1.3 MB: the limit was reached and enforced
  // The images whose layers went are unpacked again when run.
  Result run = root.builder({"run", "--rm", "gc1", "cat", "/n"});
  CHECK_MESSAGE(run.status == 0, run.describe());
  CHECK(run.out == "1\n");
  // Quiet and tty builds say nothing of the GC.
  Result q = root.builder({"build", "-q", "--build-arg", "N=7", testdata("e2e/prune-gc")});
  CHECK(q.status == 0);
  CHECK(q.err.find("GC:") == std::string::npos);
  CHECK(total_bytes(root.builder({"du"}).out) <= kLimit);
  root.check_no_mounts();
}

TEST_CASE("prune: a prune during a build does not break it (leases)") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  Result first = root.builder({"build", "-q", "--build-arg", "X=a", "-t", "conc", testdata("e2e/prune-concurrent")});
  REQUIRE_MESSAGE(first.status == 0, first.describe());
  CHECK(root.builder({"rmi", "conc"}).status == 0);  // nothing holds the first build's layers now

  fs::path log = root.work() / "build.log";
  std::string cmd = "exec '" + builder::test::builder_binary() + "' --root '" + root.store().string() +
                    "' build --progress=plain --build-arg X=b -t conc '" + testdata("e2e/prune-concurrent") + "' >'" +
                    log.string() + "' 2>&1";
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  bool sleeping = false;
  for (int i = 0; i < 600 && !sleeping; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    sleeping = builder::e2e::slurp(log).find("marker-step-sleeping") != std::string::npos;
  }
  CHECK_MESSAGE(sleeping, builder::e2e::slurp(log));
  // While the step runs: everything not leased goes (the first build's last layer).
  Result p = root.builder({"prune", "-a", "-f"});
  CHECK_MESSAGE(p.status == 0, p.describe());
  CHECK_MESSAGE(total_bytes(p.out) >= 1e5, p.out);
  CHECK(p.out.find("*") == std::string::npos);  // nothing in use is listed as removed
  int st = 0;
  ::waitpid(pid, &st, 0);
  std::string out = builder::e2e::slurp(log);
  REQUIRE_MESSAGE((WIFEXITED(st) && WEXITSTATUS(st) == 0), out);
  auto cached = builder::e2e::step_cache_states(out, "RUN");
  CHECK(cached["RUN echo one > /one"]);  // looked up and leased before the prune

  Result run = root.builder({"run", "--rm", "conc"});
  CHECK_MESSAGE(run.status == 0, run.describe());
  CHECK(run.out == "one\nb\n");
  // And the next prune takes all of it, the build being over.
  p = root.builder({"prune", "-a", "-f"});
  CHECK(p.status == 0);
  CHECK(total_bytes(root.builder({"du"}).out) == 0);
  root.check_no_mounts();
}
