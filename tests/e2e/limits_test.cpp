// tests/e2e/limits_test.cpp — the cgroup limits of RUN steps and `builder run` containers
// from the command line (--pids-limit, --memory) and from <root>/config.json's `sandbox`
// section: over the limit a step fails (busybox sh cannot fork; the OOM killer ends it,
// and the error says so and points at the Dockerfile line), under the default it passes,
// and a bad value is a clear error with a non-zero exit.
#include "e2e_util.h"

using builder::e2e::Result;
using builder::e2e::TestRoot;
using builder::e2e::testdata;
namespace fs = std::filesystem;

namespace {

/// `builder build --no-cache --progress=plain [extra...] -f limits/<file> limits`.
Result build(const TestRoot& root, const std::string& file, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args{"build", "--no-cache", "--progress=plain"};
  args.insert(args.end(), extra.begin(), extra.end());
  for (const std::string& a : {std::string("-f"), testdata("e2e/limits/" + file), testdata("e2e/limits")})
    args.push_back(a);
  return root.builder(args);
}

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

/// What forks.Dockerfile's RUN runs: 40 background sleeps, then a line.
/// (The lines it prints are not in its text, so a log echoing the command does not match.)
const std::string kForks = "i=0; while [ $i -lt 40 ]; do sleep 5 & i=$((i+1)); done; echo forked-$i";

}  // namespace

TEST_CASE("limits: --pids-limit 20 makes a RUN forking 40 processes fail; the default 2048 lets it pass") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());

  Result limited = build(root, "forks.Dockerfile", {"--pids-limit", "20"});
  CHECK_MESSAGE(limited.status != 0, limited.describe());
  CHECK_MESSAGE(contains(limited.err, "can't fork"), limited.describe());
  CHECK_MESSAGE(!contains(limited.err, "forked-40"), limited.describe());
  CHECK_MESSAGE(contains(limited.err, "forks.Dockerfile:3"), limited.describe());

  Result fine = build(root, "forks.Dockerfile");
  CHECK_MESSAGE(fine.status == 0, fine.describe());
  CHECK_MESSAGE(contains(fine.err, "forked-40"), fine.describe());
  CHECK_MESSAGE(!contains(fine.err, "can't fork"), fine.describe());

  // 0 is no limit at all.
  Result unlimited = build(root, "forks.Dockerfile", {"--pids-limit", "0"});
  CHECK_MESSAGE(unlimited.status == 0, unlimited.describe());
  root.check_no_mounts();
}

TEST_CASE("limits: config.json's sandbox.pidsLimit limits RUN steps; --pids-limit overrides it") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  builder::e2e::write_file(root.store() / "config.json", R"({"sandbox": {"pidsLimit": 20}})");

  Result limited = build(root, "forks.Dockerfile");
  CHECK_MESSAGE(limited.status != 0, limited.describe());
  CHECK_MESSAGE(contains(limited.err, "can't fork"), limited.describe());

  Result overridden = build(root, "forks.Dockerfile", {"--pids-limit", "2048"});
  CHECK_MESSAGE(overridden.status == 0, overridden.describe());
  CHECK_MESSAGE(contains(overridden.err, "forked-40"), overridden.describe());

  // memoryLimit from the file, as bytes or as a size string.
  for (const std::string& value : {std::string("33554432"), std::string("\"32MiB\"")}) {
    CAPTURE(value);
    builder::e2e::write_file(root.store() / "config.json", R"({"sandbox": {"memoryLimit": )" + value + "}}");
    Result oom = build(root, "memory.Dockerfile");
    CHECK_MESSAGE(oom.status != 0, oom.describe());
    CHECK_MESSAGE(contains(oom.err, "OOM"), oom.describe());
  }
}

TEST_CASE("limits: --memory 32MiB makes a RUN touching 200 MiB fail, reported as an OOM kill at its line") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());

  Result oom = build(root, "memory.Dockerfile", {"--memory", "32MiB"});
  CHECK_MESSAGE(oom.status != 0, oom.describe());
  // The step's error says the OOM killer ended it, with the limit...
  CHECK_MESSAGE(contains(oom.err, "was killed by the kernel's OOM killer (out of memory: the step's limit is "
                                  "33554432 bytes): exit code: 137"),
                oom.describe());
  CHECK_MESSAGE(!contains(oom.err, "200MiB-allocated"), oom.describe());
  // ...and points at the RUN's line (4), not at the one before it.
  CHECK_MESSAGE(contains(oom.err, "memory.Dockerfile:4\n"), oom.describe());
  CHECK_MESSAGE(contains(oom.err, ">>> RUN dd if=/dev/zero of=/dev/null bs=200M count=1 "), oom.describe());
  CHECK_MESSAGE(!contains(oom.err, ">>> RUN echo before-allocation"), oom.describe());

  // -m is the short form.
  Result short_flag = build(root, "memory.Dockerfile", {"-m", "32MiB"});
  CHECK_MESSAGE(contains(short_flag.err, "OOM killer"), short_flag.describe());

  Result fine = build(root, "memory.Dockerfile");
  CHECK_MESSAGE(fine.status == 0, fine.describe());
  CHECK_MESSAGE(contains(fine.err, "200MiB-allocated"), fine.describe());
  CHECK_MESSAGE(!contains(fine.err, "OOM"), fine.describe());
  root.check_no_mounts();
}

TEST_CASE("limits: bad --memory, --pids-limit and config.json sandbox values are clear errors") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());

  struct Bad {
    std::vector<std::string> flags;
    std::string says;
  };
  for (const auto& bad : std::vector<Bad>{
           {{"--memory", "abc"}, "invalid size `abc`"},
           {{"--memory", "-5"}, "--memory"},
           {{"--pids-limit", "-3"}, "--pids-limit"},
           {{"--pids-limit", "many"}, "--pids-limit"},
       }) {
    CAPTURE(bad.flags[0] + " " + bad.flags[1]);
    Result r = build(root, "image.Dockerfile", bad.flags);
    CHECK_MESSAGE(r.status != 0, r.describe());
    CHECK_MESSAGE(contains(r.err, bad.says), r.describe());
    if (bad.flags[0] == "--memory") CHECK_MESSAGE(contains(r.err, "--memory"), r.describe());
    CHECK_MESSAGE(!contains(r.err, "#3 "), "a step ran:\n" << r.describe());
  }

  const fs::path config = root.store() / "config.json";
  for (const auto& [json, says] : std::vector<std::pair<std::string, std::string>>{
           {R"({"sandbox": {"pidsLimit": "20"}})", "sandbox.pidsLimit: expected a number of tasks"},
           {R"({"sandbox": {"pidsLimit": -1}})", "sandbox.pidsLimit: expected a number of tasks"},
           {R"({"sandbox": {"memoryLimit": "abc"}})", "invalid size `abc`"},
           {R"({"sandbox": {"memoryLimit": true}})", "sandbox.memoryLimit: expected a size in bytes"},
           {R"({"sandbox": {"pidLimit": 20}})", "unknown key `sandbox.pidLimit`"},
           {R"({"sandbox": 20})", "`sandbox` must be an object"},
       }) {
    CAPTURE(json);
    builder::e2e::write_file(config, json);
    Result r = build(root, "image.Dockerfile");
    CHECK_MESSAGE(r.status != 0, r.describe());
    CHECK_MESSAGE(contains(r.err, says), r.describe());
    CHECK_MESSAGE(contains(r.err, config.string()), "the error names the file:\n" << r.describe());
    // `builder run` reads the same section.
    Result run = root.builder({"run", "--rm", "busybox", "true"});
    CHECK_MESSAGE(run.status != 0, run.describe());
    CHECK_MESSAGE(contains(run.err, says), run.describe());
  }
  fs::remove(config);
  Result good = build(root, "image.Dockerfile");
  CHECK_MESSAGE(good.status == 0, good.describe());
}

TEST_CASE("limits: `builder run --pids-limit` and `--memory` limit the container") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  Result img = root.builder({"build", "-t", "limits", "-f", testdata("e2e/limits/image.Dockerfile"),
                             testdata("e2e/limits")});
  REQUIRE_MESSAGE(img.status == 0, img.describe());

  Result forks = root.builder({"run", "--rm", "--pids-limit", "20", "limits", "sh", "-c", kForks});
  CHECK_MESSAGE(forks.status != 0, forks.describe());
  CHECK_MESSAGE(contains(forks.err, "can't fork"), forks.describe());
  CHECK_MESSAGE(!contains(forks.out, "forked-40"), forks.describe());
  Result forks_ok = root.builder({"run", "--rm", "limits", "sh", "-c", kForks});
  CHECK_MESSAGE(forks_ok.status == 0, forks_ok.describe());
  CHECK_MESSAGE(contains(forks_ok.out, "forked-40"), forks_ok.describe());

  const std::vector<std::string> dd{"sh", "-c",
                                    "dd if=/dev/zero of=/dev/null bs=200M count=1 && echo $((100+100))MiB-allocated"};
  std::vector<std::string> args{"run", "--rm", "--memory", "32MiB", "limits"};
  args.insert(args.end(), dd.begin(), dd.end());
  Result oom = root.builder(args);
  // Killed by SIGKILL, as `docker run` reports an OOM kill.
  CHECK_MESSAGE(oom.status == 137, oom.describe());
  CHECK_MESSAGE(!contains(oom.out, "200MiB-allocated"), oom.describe());
  args = {"run", "--rm", "limits"};
  args.insert(args.end(), dd.begin(), dd.end());
  Result fine = root.builder(args);
  CHECK_MESSAGE(fine.status == 0, fine.describe());
  CHECK_MESSAGE(contains(fine.out, "200MiB-allocated"), fine.describe());

  // config.json applies to `run` too, and the flag overrides it.
  builder::e2e::write_file(root.store() / "config.json", R"({"sandbox": {"pidsLimit": 20}})");
  Result cfg = root.builder({"run", "--rm", "limits", "sh", "-c", kForks});
  CHECK_MESSAGE(cfg.status != 0, cfg.describe());
  CHECK_MESSAGE(contains(cfg.err, "can't fork"), cfg.describe());
  Result cfg_over = root.builder({"run", "--rm", "--pids-limit", "100", "limits", "sh", "-c", kForks});
  CHECK_MESSAGE(cfg_over.status == 0, cfg_over.describe());

  for (const auto& bad : std::vector<std::vector<std::string>>{{"--memory", "abc"}, {"--pids-limit", "-1"}}) {
    CAPTURE(bad[0] + " " + bad[1]);
    std::vector<std::string> a{"run", "--rm", bad[0], bad[1], "limits", "echo", "ran"};
    Result r = root.builder(a);
    CHECK_MESSAGE(r.status != 0, r.describe());
    CHECK_MESSAGE(contains(r.err, bad[0]), r.describe());
    CHECK_MESSAGE(!contains(r.out, "ran"), r.describe());
  }
  root.check_no_mounts();
}
