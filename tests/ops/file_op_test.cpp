#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>

#include "base/fs.h"
#include "base/strings.h"
#include "base/temp_dir.h"
#include "cache/checksum.h"
#include "cache/path_filter.h"
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
/// The inputs of a COPY: the target's layers, then the context with its excludes.
std::vector<ops::MergedFs> sources(const std::string& target, const std::string& ctx = {},
                                   const std::vector<std::string>& excludes = {}) {
  std::vector<ops::MergedFs> v;
  v.emplace_back(std::vector<std::string>{target});
  if (!ctx.empty()) v.emplace_back(std::vector<std::string>{ctx}, cache::PathFilter(excludes));
  return v;
}
/// Every path below `dir`, relative and sorted; directories end with '/'.
std::vector<std::string> tree(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    std::string rel = std::filesystem::relative(e.path(), dir).string();
    out.push_back(e.is_directory() && !e.is_symlink() ? rel + "/" : rel);
  }
  std::sort(out.begin(), out.end());
  return out;
}
/// What a copy produced under `dir`: every entry's path, type, mode, content or link
/// target (not times: the checksum leaves them out by design).
std::string tree_state(const std::string& dir) {
  std::string out;
  for (const auto& rel : tree(dir)) {
    std::string path = dir + "/" + (rel.ends_with('/') ? rel.substr(0, rel.size() - 1) : rel);
    struct stat st;
    REQUIRE(::lstat(path.c_str(), &st) == 0);
    out += rel + " " + std::to_string(st.st_mode) + " ";
    if (S_ISREG(st.st_mode)) out += base::read_file(path);
    if (S_ISLNK(st.st_mode)) out += std::filesystem::read_symlink(path).string();
    out += "\n";
  }
  struct stat st;
  REQUIRE(::lstat(dir.c_str(), &st) == 0);
  return out + ". " + std::to_string(st.st_mode);
}

/// A build context with a .dockerignore-worthy mix: logs, build output with a file to
/// keep, a cache directory, docs, and a symlink to an excluded file.
struct Context {
  base::TempDir tmp{"/tmp", "builder-test-ops-"};
  std::string dir = tmp.path() + "/ctx";
  Context() {
    put(dir + "/Dockerfile", "FROM scratch\n");
    put(dir + "/.dockerignore", "*.log\n");
    put(dir + "/x.log", "log");
    put(dir + "/keep.txt", "keep");
    put(dir + "/README.md", "readme");
    put(dir + "/NOTES.md", "notes");
    put(dir + "/app/main.c", "int main;");
    put(dir + "/app/debug.log", "debug");
    put(dir + "/build/out.o", "obj");
    put(dir + "/build/keep/k.txt", "k");
    put(dir + "/cache/tmp.bin", "tmp");
    REQUIRE(::symlink("x.log", (dir + "/link").c_str()) == 0);
  }
};
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
  ops::apply_file_action(copy({"hello.txt"}, "/app/"), upper, {lower}, sources(lower, ctx), std::nullopt);
  CHECK(base::read_file(upper + "/app/hello.txt") == "hi\n");
  struct stat st;
  REQUIRE(::stat((upper + "/app").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0750);  // copied up from below with its metadata

  ops::apply_file_action(copy({"dir"}, "/data"), upper, {lower}, sources(lower, ctx), ops::Owner{1000, 1000});
  REQUIRE(::stat((upper + "/data/sub/x").c_str(), &st) == 0);
  CHECK(st.st_uid == 1000);
  CHECK_FALSE(base::path_exists(upper + "/data/dir"));

  auto c = copy({"*.txt"}, "/w/");
  ops::apply_file_action(c, upper, {lower}, sources(lower, ctx), std::nullopt);
  CHECK(base::path_exists(upper + "/w/hello.txt"));

  CHECK_THROWS_WITH(ops::apply_file_action(copy({"missing"}, "/x"), upper, {lower}, sources(lower, ctx), std::nullopt),
                    "COPY failed: file not found in build context or excluded: stat missing: not found");
  // ".." cannot leave the context.
  put(t.path() + "/secret", "s");
  CHECK_THROWS(ops::apply_file_action(copy({"../secret"}, "/s"), upper, {lower}, sources(lower, ctx), std::nullopt));
}

TEST_CASE("file op: mkdir creates missing parents and leaves existing dirs alone") {
  if (!test::have_root()) return;
  base::TempDir t("/tmp", "builder-test-ops-");
  std::string lower = t.path() + "/lower", upper = t.path() + "/upper";
  base::make_dirs(lower + "/usr");
  base::make_dirs(upper);
  graph::MkdirAction m;
  m.path = "/usr";
  ops::apply_file_action(m, upper, {lower}, sources(lower), std::nullopt);
  CHECK_FALSE(base::path_exists(upper + "/usr"));
  m.path = "/srv/app/data";
  ops::apply_file_action(m, upper, {lower}, sources(lower), std::nullopt);
  struct stat st;
  REQUIRE(::stat((upper + "/srv/app/data").c_str(), &st) == 0);
  CHECK(S_ISDIR(st.st_mode));
}

TEST_CASE("file op: COPY from a context never sees what .dockerignore excludes") {
  if (!test::have_root()) return;
  Context ctx;
  std::string lower = ctx.tmp.path() + "/lower", upper = ctx.tmp.path() + "/upper";
  base::make_dirs(lower);
  base::make_dirs(upper);
  const std::vector<std::string> ignore{"*.log", "**/*.log",   "build",      "!build/keep",  "cache",
                                        "*.md",  "!README.md", "Dockerfile", ".dockerignore"};
  auto src = sources(lower, ctx.dir, ignore);
  auto copy_ok = [&](std::vector<std::string> srcs, std::string dest) {
    ops::apply_file_action(copy(std::move(srcs), dest), upper, {lower}, src, std::nullopt);
    return tree(upper + dest);
  };
  auto copy_error = [&](std::vector<std::string> srcs, std::string dest) -> std::string {
    try {
      ops::apply_file_action(copy(std::move(srcs), std::move(dest)), upper, {lower}, src, std::nullopt);
    } catch (const base::Error& e) {
      return e.what();
    }
    return "no error";
  };

  // The whole context: an excluded directory shows only with what is re-included in it.
  CHECK(copy_ok({"."}, "/app") == std::vector<std::string>{"README.md", "app/", "app/main.c", "build/", "build/keep/",
                                                           "build/keep/k.txt", "keep.txt", "link"});
  // A directory source that holds excluded files.
  CHECK(copy_ok({"app"}, "/a") == std::vector<std::string>{"main.c"});
  CHECK(copy_ok({"build"}, "/b") == std::vector<std::string>{"keep/", "keep/k.txt"});
  // Wildcards match only what shows.
  CHECK(copy_ok({"*.md"}, "/docs/") == std::vector<std::string>{"README.md"});
  CHECK(copy_ok({"app/*"}, "/star/") == std::vector<std::string>{"main.c"});
  CHECK(copy_ok({"[a-k]*"}, "/all/") == std::vector<std::string>{"keep.txt", "keep/", "keep/k.txt", "main.c"});

  // Excluded paths are not found, however they are named.
  CHECK(copy_error({"x.log"}, "/") ==
        "COPY failed: file not found in build context or excluded: stat x.log: not found");
  CHECK(copy_error({"./app/../x.log"}, "/") ==
        "COPY failed: file not found in build context or excluded: stat x.log: not found");
  CHECK(copy_error({"build/out.o"}, "/o") ==
        "COPY failed: file not found in build context or excluded: stat build/out.o: not found");
  CHECK(copy_error({"cache"}, "/c") ==
        "COPY failed: file not found in build context or excluded: stat cache: not found");
  CHECK(copy_error({"Dockerfile"}, "/d") ==
        "COPY failed: file not found in build context or excluded: stat Dockerfile: not found");
  CHECK(copy_error({"*.log"}, "/logs/") == "COPY failed: no source files were specified matching `*.log`");
  // A symlink that shows does not lead to a file that does not.
  CHECK(copy_error({"link"}, "/l") == "COPY failed: file not found in build context or excluded: stat link: not found");
  CHECK_FALSE(base::path_exists(upper + "/l"));
}

TEST_CASE("file op: a COPY from a context reads exactly what its cache key covers") {
  if (!test::have_root()) return;
  const std::vector<std::vector<std::string>> ignores{
      {"*.log", "**/*.log", "build", "!build/keep", "cache", "*.md", "!README.md"},
      {"*.log", "build", "cache"},
      {"build", "cache", "!**/*.txt", "**/*.log"},
      {"**", "!app", "!build/keep/"},
  };
  const std::vector<std::vector<std::string>> copies{{"."}, {"app"}, {"build"}, {"*.md"}, {"build/keep"}, {"cache"}};
  for (const auto& ignore : ignores) {
    for (const auto& srcs : copies) {
      Context ctx;
      std::string lower = ctx.tmp.path() + "/lower";
      base::make_dirs(lower);
      // The selection the frontend makes for these sources (lower_copy.cpp).
      std::vector<std::string> include;
      for (const auto& s : srcs)
        if (s != ".") include.push_back(s);
      int step = 0;
      auto state = [&] {
        std::string upper = ctx.tmp.path() + "/upper" + std::to_string(step++);
        base::make_dirs(upper);
        std::string out;
        try {
          ops::apply_file_action(copy(srcs, "/out/"), upper, {lower}, sources(lower, ctx.dir, ignore), std::nullopt);
          out = tree_state(upper + "/out");
        } catch (const base::Error& e) {
          out = e.what();
        }
        return std::make_pair(cache::checksum_paths(ctx.dir, include, ignore), out);
      };
      auto before = state();
      auto mutate = [&](const std::string& what, const std::function<void()>& change) {
        change();
        auto after = state();
        std::string patterns = base::join(ignore, " ");
        CAPTURE(patterns);
        CAPTURE(srcs.front());
        CAPTURE(what);
        CHECK((after.first != before.first) == (after.second != before.second));
        before = after;
      };
      for (const auto* f : {"x.log", "keep.txt", "README.md", "NOTES.md", "app/main.c", "app/debug.log", "build/out.o",
                            "build/keep/k.txt", "cache/tmp.bin", "Dockerfile"})
        mutate(f, [&] { put(ctx.dir + "/" + f, "changed"); });
      for (const auto* d : {"", "app", "build", "build/keep", "cache"})
        mutate(std::string("mode of ") + d, [&] { REQUIRE(::chmod((ctx.dir + "/" + d).c_str(), 0700) == 0); });
      mutate("link", [&] {
        REQUIRE(::unlink((ctx.dir + "/link").c_str()) == 0);
        REQUIRE(::symlink("keep.txt", (ctx.dir + "/link").c_str()) == 0);
      });
      mutate("new file in build", [&] { put(ctx.dir + "/build/keep/new.txt", "new"); });
    }
  }
}
