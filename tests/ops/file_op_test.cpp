#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "base/fs.h"
#include "base/temp_dir.h"
#include "solver/ops/file_op.h"
#include "solver/ops/merged_fs.h"
#include "test_util.h"

using namespace builder;

namespace {
void put(const std::string& path, const std::string& data) {
  base::make_dirs(path.substr(0, path.rfind('/')));
  base::write_file_atomic(path, data);
}
graph::CopyAction copy(std::vector<std::string> srcs, std::string dest) {
  graph::CopyAction c;
  c.src_paths = std::move(srcs);
  c.dest = std::move(dest);
  return c;
}
}  // namespace

TEST_CASE("merged fs: whiteouts hide lower entries and symlinks resolve inside the root") {
  if (!test::have_root()) return;
  base::TempDir t("/tmp", "builder-test-ops-");
  std::string lower = t.path() + "/lower", upper = t.path() + "/upper";
  put(lower + "/etc/a", "a");
  put(lower + "/etc/b", "b");
  base::make_dirs(upper + "/etc");
  REQUIRE(::mknod((upper + "/etc/a").c_str(), S_IFCHR | 0, makedev(0, 0)) == 0);
  REQUIRE(::symlink("../../../etc", (upper + "/link").c_str()) == 0);
  ops::MergedFs fs({upper, lower});
  CHECK_FALSE(fs.lookup("etc/a").has_value());
  CHECK(fs.lookup("etc/b").has_value());
  CHECK(fs.list("etc") == std::vector<std::string>{"b"});
  CHECK(fs.resolve("/link/b", true) == "etc/b");
  CHECK(ops::clean_rel("/a/../../b/./c/") == "b/c");
}

TEST_CASE("file op: COPY of a file into a directory and of a directory's contents") {
  if (!test::have_root()) return;
  base::TempDir t("/tmp", "builder-test-ops-");
  std::string ctx = t.path() + "/ctx", lower = t.path() + "/lower", upper = t.path() + "/upper";
  put(ctx + "/hello.txt", "hi\n");
  put(ctx + "/dir/sub/x", "x");
  base::make_dirs(lower + "/app");
  ::chmod((lower + "/app").c_str(), 0750);
  base::make_dirs(upper);
  ops::apply_file_action(copy({"hello.txt"}, "/app/"), upper, {lower}, {{lower}, {ctx}}, std::nullopt);
  CHECK(base::read_file(upper + "/app/hello.txt") == "hi\n");
  struct stat st;
  REQUIRE(::stat((upper + "/app").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0750);  // copied up from below with its metadata

  ops::apply_file_action(copy({"dir"}, "/data"), upper, {lower}, {{lower}, {ctx}}, ops::Owner{1000, 1000});
  REQUIRE(::stat((upper + "/data/sub/x").c_str(), &st) == 0);
  CHECK(st.st_uid == 1000);
  CHECK_FALSE(base::path_exists(upper + "/data/dir"));

  auto c = copy({"*.txt"}, "/w/");
  ops::apply_file_action(c, upper, {lower}, {{lower}, {ctx}}, std::nullopt);
  CHECK(base::path_exists(upper + "/w/hello.txt"));

  CHECK_THROWS_WITH(ops::apply_file_action(copy({"missing"}, "/x"), upper, {lower}, {{lower}, {ctx}}, std::nullopt),
                    "COPY failed: file not found in build context or excluded: stat missing: not found");
  // ".." cannot leave the context.
  put(t.path() + "/secret", "s");
  CHECK_THROWS(ops::apply_file_action(copy({"../secret"}, "/s"), upper, {lower}, {{lower}, {ctx}}, std::nullopt));
}

TEST_CASE("file op: mkdir creates missing parents and leaves existing dirs alone") {
  if (!test::have_root()) return;
  base::TempDir t("/tmp", "builder-test-ops-");
  std::string lower = t.path() + "/lower", upper = t.path() + "/upper";
  base::make_dirs(lower + "/usr");
  base::make_dirs(upper);
  graph::MkdirAction m;
  m.path = "/usr";
  ops::apply_file_action(m, upper, {lower}, {{lower}}, std::nullopt);
  CHECK_FALSE(base::path_exists(upper + "/usr"));
  m.path = "/srv/app/data";
  ops::apply_file_action(m, upper, {lower}, {{lower}}, std::nullopt);
  struct stat st;
  REQUIRE(::stat((upper + "/srv/app/data").c_str(), &st) == 0);
  CHECK(S_ISDIR(st.st_mode));
}
