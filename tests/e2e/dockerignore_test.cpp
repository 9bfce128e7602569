// tests/e2e/dockerignore_test.cpp — end-to-end: .dockerignore keeps excluded files out of
// COPY (by name, by wildcard, inside a copied directory) and out of the COPY's cache key.
// Context: testdata/e2e/dockerignore.
#include <map>
#include <regex>
#include <sstream>

#include "e2e_util.h"

using builder::e2e::Result;
using builder::e2e::testdata;
using builder::e2e::TestRoot;
namespace fs = std::filesystem;

namespace {

std::map<std::string, bool> copy_steps(const std::string& log) {
  return builder::e2e::step_cache_states(log, "COPY");
}

}  // namespace

TEST_CASE("e2e: .dockerignore keeps excluded files out of COPY and out of its cache key") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  // A copy of the context, to change files in it between builds.
  const fs::path ctx = root.work() / "ctx";
  fs::copy(testdata("e2e/dockerignore"), ctx, fs::copy_options::recursive);
  auto build = [&] { return root.builder({"build", "--progress=plain", "-t", "ignored", ctx.string()}); };

  Result first = build();
  REQUIRE_MESSAGE(first.status == 0, first.describe());
  // `COPY . /app` takes neither *.log (at any depth), nor out/ but its re-included
  // keep.txt, nor the Dockerfile and .dockerignore; `COPY *.txt` skips secret.txt.
  Result r = root.builder({"run", "--rm", "ignored"});
  CHECK_MESSAGE(r.status == 0, r.describe());
  CHECK_MESSAGE(r.out == ".\n./app\n./app/main.txt\n./keep.txt\n./out\n./out/keep.txt\nkeep.txt\n", r.describe());

  // Changing only excluded files leaves every COPY cached.
  builder::e2e::write_file(ctx / "x.log", "more log\n");
  builder::e2e::write_file(ctx / "app" / "debug.log", "more debug\n");
  builder::e2e::write_file(ctx / "out" / "out.o", "relinked\n");
  builder::e2e::write_file(ctx / "secret.txt", "rotated\n");
  Result second = build();
  REQUIRE_MESSAGE(second.status == 0, second.describe());
  CHECK_MESSAGE(
      copy_steps(second.err) == (std::map<std::string, bool>{{"COPY . /app", true}, {"COPY *.txt /txt/", true}}),
      second.describe());

  // Changing a re-included file runs the COPY again, and the image has the new content.
  builder::e2e::write_file(ctx / "out" / "keep.txt", "kept, changed\n");
  Result third = build();
  REQUIRE_MESSAGE(third.status == 0, third.describe());
  CHECK_MESSAGE(
      copy_steps(third.err) == (std::map<std::string, bool>{{"COPY . /app", false}, {"COPY *.txt /txt/", false}}),
      third.describe());
  Result cat = root.builder({"run", "--rm", "ignored", "cat", "/app/out/keep.txt"});
  CHECK_MESSAGE(cat.out == "kept, changed\n", cat.describe());
  root.check_no_mounts();
}

TEST_CASE("e2e: COPY of a file .dockerignore excludes fails and says it is excluded") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  const std::string ctx = testdata("e2e/dockerignore");

  // missing.Dockerfile is itself excluded (*.Dockerfile): the build still reads it.
  Result b = root.builder({"build", "--progress=plain", "-t", "missing", "-f", ctx + "/missing.Dockerfile", ctx});
  CHECK_MESSAGE(b.status == 1, b.describe());
  CHECK_MESSAGE(b.err.find("ERROR: failed to solve: COPY failed: \"x.log\" is excluded by .dockerignore (it "
                           "exists in the build context)\n") != std::string::npos,
                b.describe());
  CHECK_MESSAGE(b.err.find("missing.Dockerfile:2\n") != std::string::npos, b.describe());
  Result ins = root.builder({"inspect", "missing"});
  CHECK_MESSAGE(ins.status != 0, ins.describe());
  root.check_no_mounts();
}
