// tests/e2e/e2e_test.cpp — end-to-end: the real `builder` binary against a fresh store,
// with a busybox base image imported from scripts/make-busybox-rootfs.
#include <algorithm>
#include <regex>
#include <set>
#include <sstream>

#include "e2e_util.h"

using builder::e2e::count;
using builder::e2e::lines_of;
using builder::e2e::Result;
using builder::e2e::TestRoot;
using builder::e2e::testdata;
namespace fs = std::filesystem;

TEST_CASE("e2e: hello example builds and runs") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());

  Result b = root.builder({"build", "-t", "hello", testdata("examples/hello")});
  REQUIRE_MESSAGE(b.status == 0, b.describe());

  Result r = root.builder({"run", "--rm", "hello"});
  CHECK_MESSAGE(r.status == 0, r.describe());
  CHECK_MESSAGE(r.out == "Hello from builder\nhello.txt says hi\nbuilt on Linux\n", r.describe());

  // The exit code of the container's process propagates.
  Result e = root.builder({"run", "--rm", "hello", "sh", "-c", "exit 7"});
  CHECK_MESSAGE(e.status == 7, e.describe());
  // A command that cannot start: docker's 127 (not found) and 126 (not executable).
  Result nf = root.builder({"run", "--rm", "hello", "no-such-command"});
  CHECK_MESSAGE(nf.status == 127, nf.describe());
  CHECK_MESSAGE(nf.err.find("exec `no-such-command`: ENOENT") != std::string::npos, nf.describe());
  Result nx = root.builder({"run", "--rm", "hello", "/etc/passwd"});
  CHECK_MESSAGE(nx.status == 126, nx.describe());

  // WORKDIR and ENV reach the run.
  Result w = root.builder({"run", "--rm", "hello", "sh", "-c", "pwd; echo $GREETING"});
  CHECK_MESSAGE(w.out == "/app\nHello from builder\n", w.describe());

  Result images = root.builder({"images"});
  CHECK_MESSAGE(images.status == 0, images.describe());
  auto repos = builder::e2e::image_repositories(images.out);
  CHECK_MESSAGE(std::find(repos.begin(), repos.end(), "hello") != repos.end(), images.describe());
  root.check_no_mounts();
}

TEST_CASE("e2e: RUN and run see their process as pid 1") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());

  Result b = root.builder({"build", "-t", "pid1", testdata("e2e/pid1")});
  REQUIRE_MESSAGE(b.status == 0, b.describe());

  // CMD: cat /pid.txt (written by RUN echo $$) then echo $$.
  Result r = root.builder({"run", "--rm", "pid1"});
  CHECK_MESSAGE(r.status == 0, r.describe());
  CHECK_MESSAGE(r.out == "1\n1\n", r.describe());

  Result s = root.builder({"run", "--rm", "pid1", "sh", "-c", "echo $$"});
  CHECK_MESSAGE(s.status == 0, s.describe());
  CHECK_MESSAGE(s.out == "1\n", s.describe());
  root.check_no_mounts();
}

TEST_CASE("e2e: a rebuild is fully cached and prints no step output") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  const std::string ctx = testdata("e2e/cache");

  Result first = root.builder({"build", "--progress=plain", "-t", "cached", ctx});
  REQUIRE_MESSAGE(first.status == 0, first.describe());

  Result second = root.builder({"build", "--progress=plain", "-t", "cached", ctx});
  REQUIRE_MESSAGE(second.status == 0, second.describe());

  // Every WORKDIR/COPY/RUN step header `#N [k/n] KIND ...` must have a `#N CACHED` line.
  static const std::regex step(R"re(^#(\d+) \[[^\]]*\] (RUN|COPY|WORKDIR)\b)re");
  static const std::regex cached(R"re(^#(\d+) CACHED\s*$)re");
  static const std::regex log_line(R"re(^#\d+ \d+\.\d+ )re");
  std::set<std::string> steps, cached_ids;
  size_t cached_lines = 0;
  for (const auto& line : lines_of(second.err)) {
    std::smatch m;
    if (std::regex_search(line, m, step)) steps.insert(m[1]);
    if (std::regex_search(line, m, cached)) {
      cached_ids.insert(m[1]);
      ++cached_lines;
    }
    // No output from a step ran: no timestamped log lines, and the marker echoed by
    // the RUN step appears only in the step's own header.
    CHECK_MESSAGE(!std::regex_search(line, log_line), "step output on a cached build: " << line);
    if (line.find("step-output-marker") != std::string::npos)
      CHECK_MESSAGE(line.find("RUN") != std::string::npos, "step output on a cached build: " << line);
  }
  CHECK_MESSAGE(steps.size() == 4, second.describe());  // WORKDIR, COPY, RUN, RUN
  for (const auto& id : steps)
    CHECK_MESSAGE(cached_ids.count(id) == 1, "step #" << id << " not cached\n" << second.describe());
  CHECK_MESSAGE(cached_lines >= steps.size(), second.describe());
  CHECK_MESSAGE(second.out.find("step-output-marker") == std::string::npos, second.describe());
  // Nothing ran, so nothing changed: the same config, the same image ID (stdout).
  CHECK_MESSAGE(first.out == second.out, first.describe() << "\n" << second.describe());
  CHECK(first.out.rfind("sha256:", 0) == 0);

  // --no-cache runs every step again.
  Result third = root.builder({"build", "--progress=plain", "--no-cache", "-t", "cached", ctx});
  REQUIRE_MESSAGE(third.status == 0, third.describe());
  CHECK_MESSAGE(third.err.find("step-output-marker") != std::string::npos, third.describe());
  // Only sources (the base image, the context) may be reused; the 4 steps run.
  CHECK_MESSAGE(builder::e2e::count(third.err, " CACHED") <= 2, third.describe());
  CHECK_MESSAGE(builder::e2e::count(third.err, " DONE ") >= 4, third.describe());

  Result r = root.builder({"run", "--rm", "cached"});
  CHECK_MESSAGE(r.out == "cache test data\n", r.describe());
  root.check_no_mounts();
}

TEST_CASE("e2e: oci and docker outputs, save/rmi/load round trip") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  const std::string ctx = testdata("examples/hello");
  const fs::path work = root.work();

  SUBCASE("oci archive is readable by skopeo and umoci") {
    Result b = root.builder({"build", "-t", "hello-oci:v1", "--output", "type=oci,dest=" + (work / "out.tar").string(), ctx});
    REQUIRE_MESSAGE(b.status == 0, b.describe());
    REQUIRE(fs::exists(work / "out.tar"));

    // -t with --output oci also tags in the store.
    Result ins = root.builder({"inspect", "hello-oci:v1"});
    CHECK_MESSAGE(ins.status == 0, ins.describe());

    if (builder::e2e::require_tool("skopeo")) {
      Result s = builder::e2e::run_process({"skopeo", "inspect", "oci-archive:" + (work / "out.tar").string()});
      CHECK_MESSAGE(s.status == 0, s.describe());
    }

    fs::create_directories(work / "layout");
    Result x = builder::e2e::run_process({"tar", "-C", (work / "layout").string(), "-xf", (work / "out.tar").string()});
    REQUIRE_MESSAGE(x.status == 0, x.describe());
    if (builder::e2e::require_tool("oci-image-tool")) {
      // The image-spec's own validator: layout, index, manifest, config and layer digests.
      Result v = builder::e2e::run_process({"oci-image-tool", "validate", "--type", "image", (work / "layout").string()});
      CHECK_MESSAGE(v.status == 0, v.describe());
      CHECK_MESSAGE(v.out.find("Validation succeeded") != std::string::npos, v.describe());
    }

    if (builder::e2e::require_tool("umoci")) {
      std::string index = builder::e2e::slurp(work / "layout" / "index.json");
      std::smatch m;
      static const std::regex ref(R"re("org\.opencontainers\.image\.ref\.name"\s*:\s*"([^"]+)")re");
      std::string tag = std::regex_search(index, m, ref) ? std::string(m[1]) : "latest";
      Result u = builder::e2e::run_process(
          {"umoci", "unpack", "--image", (work / "layout").string() + ":" + tag, (work / "bundle").string()});
      CHECK_MESSAGE(u.status == 0, "tag " << tag << "\n" << index << "\n" << u.describe());
      CHECK(fs::exists(work / "bundle" / "rootfs" / "app" / "hello.txt"));
      CHECK(fs::exists(work / "bundle" / "rootfs" / "app" / "built.txt"));
    }
  }

  SUBCASE("docker archive is readable by skopeo") {
    Result b = root.builder({"build", "-t", "hello-docker:v1", "--output", "type=docker,dest=" + (work / "d.tar").string(), ctx});
    REQUIRE_MESSAGE(b.status == 0, b.describe());
    REQUIRE(fs::exists(work / "d.tar"));
    if (builder::e2e::require_tool("skopeo")) {
      Result s = builder::e2e::run_process({"skopeo", "inspect", "docker-archive:" + (work / "d.tar").string()});
      CHECK_MESSAGE(s.status == 0, s.describe());
    }
  }

  SUBCASE("save, rmi, load keeps the image id") {
    Result b = root.builder({"build", "-t", "roundtrip", ctx});
    REQUIRE_MESSAGE(b.status == 0, b.describe());
    Result before = root.builder({"inspect", "roundtrip"});
    REQUIRE_MESSAGE(before.status == 0, before.describe());
    std::string id = builder::e2e::image_id(before.out);
    REQUIRE_MESSAGE(!id.empty(), before.describe());

    Result save = root.builder({"save", "-o", (work / "s.tar").string(), "roundtrip"});
    REQUIRE_MESSAGE(save.status == 0, save.describe());
    Result rmi = root.builder({"rmi", "roundtrip"});
    REQUIRE_MESSAGE(rmi.status == 0, rmi.describe());
    Result gone = root.builder({"inspect", "roundtrip"});
    CHECK_MESSAGE(gone.status != 0, gone.describe());

    Result load = root.builder({"load", "-i", (work / "s.tar").string()});
    REQUIRE_MESSAGE(load.status == 0, load.describe());
    Result after = root.builder({"inspect", "roundtrip"});
    REQUIRE_MESSAGE(after.status == 0, after.describe());
    CHECK_MESSAGE(builder::e2e::image_id(after.out) == id, before.out << "\n---\n" << after.out);

    Result r = root.builder({"run", "--rm", "roundtrip"});
    CHECK_MESSAGE(r.out == "Hello from builder\nhello.txt says hi\nbuilt on Linux\n", r.describe());
  }
  root.check_no_mounts();
}

TEST_CASE("e2e: a failing RUN points at its line and tags nothing") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());

  Result b = root.builder({"build", "--progress=plain", "-t", "failtag", testdata("e2e/fail")});
  CHECK_MESSAGE(b.status != 0, b.describe());
  CHECK_MESSAGE(b.err.find("Dockerfile:3") != std::string::npos, b.describe());

  Result images = root.builder({"images"});
  CHECK_MESSAGE(images.status == 0, images.describe());
  CHECK_MESSAGE(images.out.find("failtag") == std::string::npos, images.describe());
  Result ins = root.builder({"inspect", "failtag"});
  CHECK_MESSAGE(ins.status != 0, ins.describe());
  root.check_no_mounts();
}

TEST_CASE("e2e: a syntax error points at its line") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());

  Result b = root.builder({"build", "-t", "syntaxtag", testdata("e2e/syntax")});
  CHECK_MESSAGE(b.status != 0, b.describe());
  CHECK_MESSAGE(b.err.find("Dockerfile:2") != std::string::npos, b.describe());
  root.check_no_mounts();
}

// Declared last so it runs after the others (doctest's default order is file order).
TEST_CASE("e2e: no mount outlives a test root") {
  if (!builder::test::have_root()) return;
  std::string path;
  {
    TestRoot root;
    path = root.dir().string();
    REQUIRE(root.import_busybox());
    Result b = root.builder({"build", "-t", "hello", testdata("examples/hello")});
    CHECK_MESSAGE(b.status == 0, b.describe());
    Result r = root.builder({"run", "--rm", "hello"});
    CHECK_MESSAGE(r.status == 0, r.describe());
    Result f = root.builder({"run", "--rm", "hello", "sh", "-c", "exit 1"});
    CHECK(f.status == 1);
  }
  auto here = builder::e2e::mounts_containing(path);
  CHECK_MESSAGE(here.empty(), builder::e2e::join(here));
  auto any = builder::e2e::mounts_containing("builder-test");
  CHECK_MESSAGE(any.empty(), builder::e2e::join(any));
  CHECK_FALSE(fs::exists(path));
}

TEST_CASE("e2e: a relative --root is the same store as its absolute path") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  // builder runs in work(); the store is its sibling `root`.
  auto relative = [&](const std::vector<std::string>& args) {
    std::vector<std::string> argv{builder::test::builder_binary(), "--root", "../root"};
    argv.insert(argv.end(), args.begin(), args.end());
    return builder::e2e::run_process(argv, root.work().string());
  };
  Result b = relative({"build", "-q", "-t", "rel", testdata("e2e/pid1")});
  REQUIRE_MESSAGE(b.status == 0, b.describe());
  Result r = root.builder({"run", "--rm", "rel", "echo", "same store"});
  CHECK_MESSAGE(r.out == "same store\n", r.describe());
  root.check_no_mounts();
}
