// tests/e2e/solver_cache_test.cpp — the cache end to end: what a step reads decides
// whether it re-runs, each step that runs says why (`#N cache miss: ...`), concurrent
// identical builds on one root run each step once, independent stages run at once.
#include <regex>
#include <set>
#include <thread>

#include "e2e_util.h"

using builder::e2e::Result;
using builder::e2e::TestRoot;
using builder::e2e::testdata;
namespace fs = std::filesystem;

namespace {

/// One build's steps from its --progress=plain log: instruction text -> miss reason,
/// or "CACHED".
struct Steps {
  std::map<std::string, std::string> state;
  std::string log;
  const std::string& operator[](const std::string& text) const {
    static const std::string none = "(not in the log)";
    auto it = state.find(text);
    return it == state.end() ? none : it->second;
  }
};

Steps steps_of(const Result& r) {
  static const std::regex step(R"re(^#(\d+) \[[^\]]*\] (.*)$)re");
  static const std::regex cached(R"re(^#(\d+) CACHED\s*$)re");
  static const std::regex miss(R"re(^#(\d+) cache miss: (.*)$)re");
  Steps out;
  out.log = r.describe();
  std::map<std::string, std::string> text_of;
  for (const auto& line : builder::e2e::lines_of(r.err)) {
    std::smatch m;
    if (std::regex_search(line, m, step)) {
      text_of[m[1]] = m[2];
    } else if (std::regex_search(line, m, cached) && text_of.count(m[1])) {
      out.state[text_of[m[1]]] = "CACHED";
    } else if (std::regex_search(line, m, miss) && text_of.count(m[1])) {
      out.state[text_of[m[1]]] = m[2];
    }
  }
  return out;
}

/// A writable copy of testdata/e2e/<name> in the root's work dir.
fs::path copy_context(const TestRoot& root, const std::string& name) {
  fs::path dst = root.work() / name;
  fs::copy(testdata("e2e/" + name), dst, fs::copy_options::recursive);
  return dst;
}

}  // namespace

TEST_CASE("e2e cache: unrelated changes stay cached, related ones re-run, and every miss says why") {
  TestRoot root;
  if (!root.import_busybox()) return;
  fs::path ctx = copy_context(root, "explain");
  auto build = [&](std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"build", "--progress=plain", "-t", "explain"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(ctx.string());
    Result r = root.builder(args);
    CHECK_MESSAGE(r.status == 0, r.describe());
    return steps_of(r);
  };
  // Progress names show arguments expanded, as BuildKit's do.
  const std::string kVersion = "RUN echo \"version 1\" > /version";
  const std::string kVersion2 = "RUN echo \"version 2\" > /version";
  const std::string kCopyApp = "COPY app/ /app/";
  const std::string kCat = "RUN cat /app/main.txt /version > /out";
  const std::string kNotes = "COPY notes.txt /notes.txt";

  Steps s = build();
  CHECK_MESSAGE(s[kVersion] == "no earlier result for this step", s.log);
  CHECK_MESSAGE(s[kCat] == "no earlier result for this step", s.log);

  // A file no step selects, and a new mtime on one that is selected: nothing runs.
  builder::e2e::write_file(ctx / "unrelated.txt", "changed, but never copied\n");
  fs::last_write_time(ctx / "app/main.txt", fs::file_time_type::clock::now() - std::chrono::hours(5));
  s = build();
  for (const auto& k : {kVersion, kCopyApp, kCat, kNotes}) CHECK_MESSAGE(s[k] == "CACHED", k << "\n" << s.log);
  CHECK_MESSAGE(s.log.find("cache miss") == std::string::npos, s.log);

  // A selected file's content: its COPY names it, the steps after name their input.
  builder::e2e::write_file(ctx / "app/main.txt", "main 2\n");
  s = build();
  CHECK_MESSAGE(s[kVersion] == "CACHED", s.log);
  CHECK_MESSAGE(s[kCopyApp] == "file \"app/main.txt\" changed", s.log);
  CHECK_MESSAGE(s[kCat] == "input step re-ran: [3/5] COPY app/ /app/", s.log);
  CHECK_MESSAGE(s[kNotes] == "input step re-ran: [4/5] RUN cat /app/main.txt /version > /out", s.log);

  // A file added to a copied directory; a file removed.
  builder::e2e::write_file(ctx / "app/new.txt", "new\n");
  fs::remove(ctx / "app/util.txt");
  s = build();
  CHECK_MESSAGE(s[kCopyApp] == "file \"app/new.txt\" added; file \"app/util.txt\" removed", s.log);

  // A build arg.
  s = build({"--build-arg", "VERSION=2"});
  CHECK_MESSAGE(s[kVersion2] == "build arg VERSION changed", s.log);
  CHECK_MESSAGE(s[kCopyApp] == "input step re-ran: [2/5] " + kVersion2, s.log);

  // --no-cache.
  s = build({"--build-arg", "VERSION=2", "--no-cache"});
  CHECK_MESSAGE(s[kVersion2] == "--no-cache", s.log);
  CHECK_MESSAGE(s[kNotes] == "--no-cache", s.log);

  Result run = root.builder({"run", "--rm", "explain"});
  CHECK_MESSAGE(run.out == "main 2\nversion 2\n", run.describe());
  root.check_no_mounts();
}

TEST_CASE("e2e cache: a base image that moves to another digest is named as the reason") {
  TestRoot root;
  if (!root.import_busybox()) return;
  fs::path ctx = copy_context(root, "explain");
  Result r = root.builder({"build", "--progress=plain", "-t", "explain", ctx.string()});
  REQUIRE_MESSAGE(r.status == 0, r.describe());

  // The same rootfs plus one file, imported under the same name: a new digest.
  fs::path tar = root.work() / "busybox2.tar";
  fs::copy_file(builder::e2e::busybox_rootfs(), tar);
  builder::e2e::write_file(root.work() / "extra/marker", "moved\n");
  Result add = builder::e2e::run_process({"tar", "-rf", tar.string(), "-C", (root.work() / "extra").string(), "marker"});
  REQUIRE_MESSAGE(add.status == 0, add.describe());
  Result imp = root.builder({"import", tar.string(), "busybox:latest"});
  REQUIRE_MESSAGE(imp.status == 0, imp.describe());

  Steps s = steps_of(root.builder({"build", "--progress=plain", "-t", "explain", ctx.string()}));
  const std::string& why = s["RUN echo \"version 1\" > /version"];
  CHECK_MESSAGE(why.rfind("base image busybox:latest moved to sha256:", 0) == 0, s.log);
  CHECK_MESSAGE(why.find("(was sha256:") != std::string::npos, s.log);
  root.check_no_mounts();
}

TEST_CASE("e2e cache: two concurrent builds on one root run each step once") {
  TestRoot root;
  if (!root.import_busybox()) return;
  const std::string ctx = testdata("e2e/concurrent");
  Result a, b;
  std::thread ta([&] { a = root.builder({"build", "--progress=plain", "-t", "one", ctx}); });
  std::thread tb([&] { b = root.builder({"build", "--progress=plain", "-t", "two", ctx}); });
  ta.join();
  tb.join();
  REQUIRE_MESSAGE(a.status == 0, a.describe());
  REQUIRE_MESSAGE(b.status == 0, b.describe());
  // Both get the same image (the second took the first's results).
  CHECK(a.out == b.out);

  // Each step's process ran exactly once: the shared cache mount counted.
  Result count = root.builder({"build", "--progress=plain", "--no-cache", "--build-arg", "NONCE=" + std::to_string(::getpid()),
                               "-f", ctx + "/count.Dockerfile", ctx});
  REQUIRE_MESSAGE(count.status == 0, count.describe());
  CHECK_MESSAGE(count.err.find(" first: 1\n") != std::string::npos, count.describe());
  CHECK_MESSAGE(count.err.find(" second: 1\n") != std::string::npos, count.describe());

  // And the two logs agree: each RUN ran (cache miss) in one build and was CACHED in the other.
  Steps sa = steps_of(a), sb = steps_of(b);
  for (const auto& [text, state] : sa.state) {
    if (text.rfind("RUN", 0) != 0) continue;
    bool ran_a = state != "CACHED", ran_b = sb[text] != "CACHED";
    CHECK_MESSAGE(ran_a != ran_b, text << "\n" << sa.log << "\n" << sb.log);
  }
  // No single-flight lock is left behind.
  CHECK(fs::is_empty(root.store() / "locks"));
  root.check_no_mounts();
}

TEST_CASE("e2e cache: independent stages run at once, unused stages never") {
  TestRoot root;
  if (!root.import_busybox()) return;
  Result r = root.builder({"build", "--progress=plain", "-t", "parallel", testdata("e2e/parallel")});
  REQUIRE_MESSAGE(r.status == 0, r.describe());
  // Every `RUN sleep 1` step starts before any of them is done.
  static const std::regex start(R"re(^#(\d+) \[s\d 2/2\] RUN sleep 1)re");
  static const std::regex done(R"re(^#(\d+) DONE )re");
  std::set<std::string> sleepers;
  int started = 0;
  bool any_done_before_all_started = false;
  for (const auto& line : builder::e2e::lines_of(r.err)) {
    std::smatch m;
    if (std::regex_search(line, m, start)) {
      sleepers.insert(m[1]);
      ++started;
    } else if (std::regex_search(line, m, done) && sleepers.count(m[1]) && started < 6) {
      any_done_before_all_started = true;
    }
  }
  CHECK_MESSAGE(started == 6, r.describe());
  CHECK_MESSAGE(!any_done_before_all_started, r.describe());
  CHECK_MESSAGE(r.err.find("never") == std::string::npos, r.describe());
  Result run = root.builder({"run", "--rm", "parallel"});
  CHECK_MESSAGE(run.out == "1\n2\n3\n4\n5\n6\n", run.describe());
}
