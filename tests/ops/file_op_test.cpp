#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>

#include "base/fs.h"
#include "base/strings.h"
#include "base/temp_dir.h"
#include "cache/checksum.h"
#include "cache/path_filter.h"
#include "cache/merged_fs.h"
#include "make_tar.h"
#include "solver/ops/file_op.h"
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
std::vector<cache::MergedFs> sources(const std::string& target, const std::string& ctx = {},
                                   const std::vector<std::string>& excludes = {}) {
  std::vector<cache::MergedFs> v;
  v.emplace_back(std::vector<std::string>{target});
  if (!ctx.empty()) v.push_back(cache::MergedFs::context(ctx, cache::PathFilter(excludes)));
  return v;
}
/// Every path below `dir`, relative and sorted; directories end with '/'.
std::vector<std::string> tree(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    std::string rel = e.path().lexically_relative(dir).string();  // never through symlinks
    out.push_back(e.is_directory() && !e.is_symlink() ? rel + "/" : rel);
  }
  std::sort(out.begin(), out.end());
  return out;
}
/// The user xattrs of `path` as " name=value", sorted.
std::string xattrs_of(const std::string& path) {
  char names[4096];
  ssize_t n = ::llistxattr(path.c_str(), names, sizeof names);
  std::vector<std::string> out;
  for (ssize_t i = 0; i < n; i += static_cast<ssize_t>(std::strlen(names + i)) + 1) {
    std::string name = names + i;
    if (name.rfind("user.", 0) != 0) continue;
    char v[256];
    ssize_t m = ::lgetxattr(path.c_str(), name.c_str(), v, sizeof v);
    out.push_back(" " + name + "=" + std::string(v, static_cast<size_t>(std::max<ssize_t>(m, 0))));
  }
  std::sort(out.begin(), out.end());
  return base::join(out, "");
}
/// What a copy produced under `dir`: every entry's path, type, mode, owner, content,
/// link target, device, xattrs and hard link group (not times: the checksum leaves them
/// out by design).
std::string tree_state(const std::string& dir) {
  std::string out;
  std::map<ino_t, std::string> inodes;
  for (const auto& rel : tree(dir)) {
    std::string path = dir + "/" + (rel.ends_with('/') ? rel.substr(0, rel.size() - 1) : rel);
    struct stat st;
    REQUIRE(::lstat(path.c_str(), &st) == 0);
    out += rel + " " + std::to_string(st.st_mode) + " " + std::to_string(st.st_uid) + ":" +
           std::to_string(st.st_gid) + " ";
    if (S_ISREG(st.st_mode)) out += base::read_file(path);
    if (S_ISLNK(st.st_mode)) out += std::filesystem::read_symlink(path).string();
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) out += std::to_string(st.st_rdev);
    if (S_ISREG(st.st_mode) && st.st_nlink > 1) {
      auto [it, fresh] = inodes.emplace(st.st_ino, rel);
      if (!fresh) out += " link=" + it->second;
    }
    out += xattrs_of(path) + "\n";
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
  cache::MergedFs fs({upper, lower});
  CHECK_FALSE(fs.lookup("etc/a").has_value());
  CHECK(fs.lookup("etc/b").has_value());
  CHECK(fs.list("etc") == std::vector<std::string>{"b"});
  CHECK(fs.resolve("/link/b", true) == "etc/b");
  CHECK(cache::clean_rel("/a/../../b/./c/") == "b/c");
}

TEST_CASE("merged fs: entries() is list() with lookup() of each, in one or many layers") {
  if (!test::have_root()) return;
  base::TempDir t("/tmp", "builder-test-ops-");
  std::string lower = t.path() + "/lower", upper = t.path() + "/upper";
  put(lower + "/d/a", "a");
  put(lower + "/d/b.log", "b");
  put(lower + "/d/keep/k.log", "k");
  put(upper + "/d/c", "c");
  REQUIRE(::mknod((upper + "/d/a").c_str(), S_IFCHR | 0, makedev(0, 0)) == 0);
  REQUIRE(::chown((lower + "/d/b.log").c_str(), 3, 4) == 0);
  auto same = [](const cache::MergedFs& fs, const std::string& dir) {
    std::vector<std::string> want, got;
    for (const auto& n : fs.list(dir)) {
      auto e = fs.lookup(dir + "/" + n);
      REQUIRE(e);
      want.push_back(n + " " + e->host_path + " " + std::to_string(e->st.st_uid));
    }
    for (const auto& [n, e] : fs.entries(dir)) got.push_back(n + " " + e.host_path + " " + std::to_string(e.st.st_uid));
    CHECK(got == want);
    return got.size();
  };
  CHECK(same(cache::MergedFs({upper, lower}), "d") == 3);  // a is whited out
  CHECK(same(cache::MergedFs({lower}, cache::PathFilter({"**/*.log", "!d/keep/k.log"})), "d") == 2);
  CHECK(same(cache::MergedFs::context(lower, cache::PathFilter({"*.log"})), "d") == 3);
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

  // Excluded paths are not copied, however they are named; the error says why.
  auto excluded = [](const std::string& p) {
    return "COPY failed: \"" + p + "\" is excluded by .dockerignore (it exists in the build context)";
  };
  CHECK(copy_error({"x.log"}, "/") == excluded("x.log"));
  CHECK(copy_error({"./app/../x.log"}, "/") == excluded("x.log"));
  CHECK(copy_error({"build/out.o"}, "/o") == excluded("build/out.o"));
  CHECK(copy_error({"cache"}, "/c") == excluded("cache"));
  CHECK(copy_error({"Dockerfile"}, "/d") == excluded("Dockerfile"));
  CHECK(copy_error({"nowhere.txt"}, "/n") ==
        "COPY failed: file not found in build context or excluded: stat nowhere.txt: not found");
  CHECK(copy_error({"*.log"}, "/logs/") == "COPY failed: no source files were specified matching `*.log`");
  // A symlink that shows does not lead to a file that does not.
  CHECK(copy_error({"link"}, "/l") == "COPY failed: \"link\" leads to \"x.log\", which is excluded by .dockerignore");
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

namespace {

/// A context, a lower layer and the new layer of one COPY, with exact listings.
struct Copy {
  base::TempDir tmp{"/tmp", "builder-test-ops-"};
  std::string ctx = tmp.path() + "/ctx", lower = tmp.path() + "/lower", upper = tmp.path() + "/upper";
  std::vector<std::string> excludes;
  Copy() {
    base::make_dirs(ctx);
    base::make_dirs(lower);
    base::make_dirs(upper);
  }
  /// Applies `c` from the context on top of `lower`; "" or the error message.
  std::string run(const graph::CopyAction& c, const std::optional<ops::Owner>& owner = std::nullopt) {
    try {
      ops::apply_file_action(c, upper, {lower}, sources(lower, ctx, excludes), owner);
    } catch (const base::Error& e) {
      return e.what();
    }
    return "";
  }
  std::string run(std::vector<std::string> srcs, std::string dest) { return run(copy(std::move(srcs), dest)); }
  /// The new layer below `rel`: "path type mode uid:gid detail" per entry, sorted.
  std::string layer(const std::string& rel = "") const { return listing(rel.empty() ? upper : upper + "/" + rel); }
  static std::string listing(const std::string& dir) {
    std::string out;
    std::map<ino_t, std::string> inodes;
    for (const auto& rel : tree(dir)) {
      std::string path = dir + "/" + (rel.ends_with('/') ? rel.substr(0, rel.size() - 1) : rel);
      struct stat st;
      REQUIRE(::lstat(path.c_str(), &st) == 0);
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
      char type = S_ISDIR(st.st_mode) ? 'd' : S_ISREG(st.st_mode) ? 'f' : S_ISLNK(st.st_mode) ? 'l'
                                       : S_ISCHR(st.st_mode) ? 'c' : S_ISBLK(st.st_mode) ? 'b' : 'p';
      out += rel + " " + type + " " + mode + " " + std::to_string(st.st_uid) + ":" + std::to_string(st.st_gid);
      if (S_ISREG(st.st_mode)) {
        auto [it, fresh] = inodes.emplace(st.st_ino, rel);
        out += fresh ? " " + base::read_file(path) : " link=" + it->second;
      }
      if (S_ISLNK(st.st_mode)) out += " -> " + std::filesystem::read_symlink(path).string();
      if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
        out += " " + std::to_string(major(st.st_rdev)) + "," + std::to_string(minor(st.st_rdev));
      out += xattrs_of(path) + "\n";
    }
    return out;
  }
  static struct stat stat_of(const std::string& path) {
    struct stat st;
    REQUIRE(::lstat(path.c_str(), &st) == 0);
    return st;
  }
};

void link(const std::string& target, const std::string& path) { REQUIRE(::symlink(target.c_str(), path.c_str()) == 0); }

void set_mtime(const std::string& path, time_t t) {
  struct timespec ts[2] = {{t, 0}, {t, 0}};
  REQUIRE(::utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW) == 0);
}

}  // namespace

TEST_CASE("copy: `*` matches names with a leading dot, as Go's filepath.Match does") {
  if (!test::have_root()) return;
  Copy t;
  put(t.ctx + "/a.txt", "a");
  put(t.ctx + "/.a.txt", "dot");
  put(t.ctx + "/b.md", "b");
  put(t.ctx + "/.hidden/x.txt", "x");
  CHECK(t.run({"*.txt"}, "/d/") == "");
  CHECK(t.run({".*"}, "/e/") == "");
  CHECK(t.layer() ==
        "d/ d 0755 0:0\nd/.a.txt f 0644 0:0 dot\nd/a.txt f 0644 0:0 a\n"
        "e/ d 0755 0:0\ne/.a.txt f 0644 0:0 dot\ne/x.txt f 0644 0:0 x\n");
}

TEST_CASE("copy: classes, `?` and escapes follow Go's filepath.Match") {
  if (!test::have_root()) return;
  Copy t;
  for (const char* n : {"a1", "a2", "ab", "a!", "ax", "a*b", "axb", "a\\*b", "\xc3\xa9", "\xc3\xa9" "a"})
    put(t.ctx + "/" + n, n);
  CHECK(t.run({"a[0-9]"}, "/n/") == "");
  CHECK(t.run({"a[!x]"}, "/bang/") == "");  // `!` is a member, not a negation
  CHECK(t.run({"a[^0-9!]"}, "/caret/") == "");
  CHECK(t.run({"?"}, "/q/") == "");  // one code point, "é" included
  CHECK(t.run({"a\\*?"}, "/esc/") == "");
  CHECK(t.run({"a\\*b"}, "/lit/") == "");  // no unescaped wildcard: the literal name
  CHECK(t.layer() ==
        "bang/ d 0755 0:0\nbang/a! f 0644 0:0 a!\nbang/ax f 0644 0:0 ax\n"
        "caret/ d 0755 0:0\ncaret/ab f 0644 0:0 ab\ncaret/ax f 0644 0:0 ax\n"
        "esc/ d 0755 0:0\nesc/a*b f 0644 0:0 a*b\n"
        "lit/ d 0755 0:0\nlit/a\\*b f 0644 0:0 a\\*b\n"
        "n/ d 0755 0:0\nn/a1 f 0644 0:0 a1\nn/a2 f 0644 0:0 a2\n"
        "q/ d 0755 0:0\nq/\xc3\xa9 f 0644 0:0 \xc3\xa9\n");
}

TEST_CASE("copy: a malformed pattern is an error once there is anything to match") {
  if (!test::have_root()) return;
  Copy t;
  put(t.ctx + "/a[", "a");
  base::make_dirs(t.ctx + "/empty");
  CHECK(t.run({"a["}, "/d/") == "COPY failed: syntax error in pattern `a[`");
  CHECK(t.run({"[]a]"}, "/d/") == "COPY failed: syntax error in pattern `[]a]`");
  auto c = copy({"empty/[a-]"}, "/d/");
  c.allow_empty_wildcard = true;
  CHECK(t.run(c) == "");  // nothing tested against it, as in BuildKit
  CHECK(t.layer().empty());
}

TEST_CASE("copy: a wildcard matching nothing copies nothing; a missing prefix is not found") {
  if (!test::have_root()) return;
  Copy t;
  put(t.ctx + "/a.txt", "a");
  auto c = copy({"*.zip", "a.txt"}, "/d/");
  c.allow_empty_wildcard = true;
  CHECK(t.run(c) == "");
  CHECK(t.layer() == "d/ d 0755 0:0\nd/a.txt f 0644 0:0 a\n");
  c = copy({"*.zip"}, "/e/");
  c.allow_empty_wildcard = true;
  CHECK(t.run(c) == "");
  CHECK_FALSE(base::path_exists(t.upper + "/e"));  // not even the destination
  c = copy({"missing/*.txt"}, "/f/");
  c.allow_empty_wildcard = true;
  CHECK(t.run(c) == "COPY failed: file not found in build context or excluded: stat missing: not found");
  c = copy({"a.txt/*"}, "/f/");  // a file is no directory to search: nothing
  c.allow_empty_wildcard = true;
  CHECK(t.run(c) == "");
}

TEST_CASE("copy: a symlink source copies what it leads to, resolved inside the context") {
  if (!test::have_root()) return;
  Copy t;
  put(t.ctx + "/real.txt", "real");
  put(t.ctx + "/dir/f", "f");
  put(t.ctx + "/etc/passwd", "context passwd");
  link("real.txt", t.ctx + "/link");
  link("link", t.ctx + "/chain");
  link("dir", t.ctx + "/linkdir");
  link("../real.txt", t.ctx + "/dir/rel");
  link("/etc/passwd", t.ctx + "/abs");
  link("../../../../etc/passwd", t.ctx + "/up");
  link("nowhere", t.ctx + "/dangling");
  link("cycle", t.ctx + "/cycle");
  CHECK(t.run({"link"}, "/l") == "");
  CHECK(t.run({"chain", "link"}, "/named/") == "");  // named by the source, not the target
  CHECK(t.run({"linkdir"}, "/ld") == "");            // a directory's contents; links inside kept
  CHECK(t.run({"linkdir/f"}, "/via") == "");
  CHECK(t.run({"l*"}, "/wild/") == "");  // wildcard matches are followed too
  CHECK(t.run({"abs", "up"}, "/esc/") == "");
  CHECK(t.layer() ==
        "esc/ d 0755 0:0\nesc/abs f 0644 0:0 context passwd\nesc/up f 0644 0:0 context passwd\n"
        "l f 0644 0:0 real\n"
        "ld/ d 0755 0:0\nld/f f 0644 0:0 f\nld/rel l 0777 0:0 -> ../real.txt\n"
        "named/ d 0755 0:0\nnamed/chain f 0644 0:0 real\nnamed/link f 0644 0:0 real\n"
        "via f 0644 0:0 f\n"
        "wild/ d 0755 0:0\nwild/f f 0644 0:0 f\nwild/link f 0644 0:0 real\nwild/rel l 0777 0:0 -> ../real.txt\n");
  CHECK(t.run({"dangling"}, "/x") ==
        "COPY failed: file not found in build context or excluded: stat dangling: not found");
  CHECK(t.run({"cycle"}, "/x") == "COPY failed: too many levels of symbolic links resolving `cycle`");
}

TEST_CASE("copy: the cache key of a symlink source covers its target") {
  if (!test::have_root()) return;
  Copy t;
  put(t.ctx + "/data/real.txt", "v1");
  link("data/real.txt", t.ctx + "/link");
  link("data", t.ctx + "/linkdir");
  for (const auto& src : {"link", "linkdir", "linkdir/real.txt", "l*"}) {
    CAPTURE(src);
    std::string before = cache::checksum_paths(t.ctx, {src}, {});
    put(t.ctx + "/data/real.txt", "v2");
    CHECK(cache::checksum_paths(t.ctx, {src}, {}) != before);
    put(t.ctx + "/data/real.txt", "v1");
    CHECK(cache::checksum_paths(t.ctx, {src}, {}) == before);
  }
}

TEST_CASE("copy: several sources and wildcard matches are copied in turn") {
  if (!test::have_root()) return;
  Copy t;
  put(t.ctx + "/a.txt", "a");
  put(t.ctx + "/b.txt", "b");
  put(t.ctx + "/dir/x", "x");
  CHECK(t.run({"a.txt", "b.txt"}, "/out") == "");  // no trailing '/': the last one wins
  CHECK(t.run({"*.txt"}, "/wild") == "");
  CHECK(t.run({"a.txt"}, "/one") == "");
  CHECK(t.run({"dir", "a.txt"}, "/mixed") == "");  // a directory, then a file into it
  CHECK(t.layer() ==
        "mixed/ d 0755 0:0\nmixed/a.txt f 0644 0:0 a\nmixed/x f 0644 0:0 x\n"
        "one f 0644 0:0 a\nout f 0644 0:0 b\nwild f 0644 0:0 b\n");
  CHECK(t.run({"a.txt", "dir"}, "/files") == "COPY failed: cannot copy to non-directory: /files");
}

TEST_CASE("copy: the destination is followed through symlinks, the last component too") {
  if (!test::have_root()) return;
  Copy t;
  put(t.ctx + "/a.txt", "new");
  base::make_dirs(t.lower + "/realdir");
  put(t.lower + "/realfile", "old");
  link("/realdir", t.lower + "/todir");
  link("realfile", t.lower + "/tofile");
  link("/nothere/x", t.lower + "/dangling");
  link("realdir", t.lower + "/viadir");
  CHECK(t.run({"a.txt"}, "/todir") == "");
  CHECK(t.run({"a.txt"}, "/tofile") == "");    // written through the link
  CHECK(t.run({"a.txt"}, "/dangling") == "");  // creates what the link names
  CHECK(t.run({"a.txt"}, "/viadir/sub/n") == "");
  CHECK(t.layer() ==
        "nothere/ d 0755 0:0\nnothere/x f 0644 0:0 new\n"
        "realdir/ d 0755 0:0\nrealdir/a.txt f 0644 0:0 new\nrealdir/sub/ d 0755 0:0\nrealdir/sub/n f 0644 0:0 new\n"
        "realfile f 0644 0:0 new\n");
}

TEST_CASE("copy: a trailing slash or `/.` names a directory to copy into") {
  if (!test::have_root()) return;
  Copy t;
  put(t.ctx + "/a.txt", "a");
  put(t.ctx + "/dir/x", "x");
  CHECK(t.run({"a.txt"}, "/f") == "");
  CHECK(t.run({"a.txt"}, "/d/") == "");
  CHECK(t.run({"a.txt"}, "/dot/.") == "");
  CHECK(t.run({"a.txt"}, "/") == "");
  CHECK(t.run({"dir"}, "/") == "");
  CHECK(t.run({"dir/"}, "/d2") == "");
  CHECK(t.layer() ==
        "a.txt f 0644 0:0 a\nd/ d 0755 0:0\nd/a.txt f 0644 0:0 a\nd2/ d 0755 0:0\nd2/x f 0644 0:0 x\n"
        "dot/ d 0755 0:0\ndot/a.txt f 0644 0:0 a\nf f 0644 0:0 a\nx f 0644 0:0 x\n");
}

TEST_CASE("copy: the copied directory gets 0755 (or --chmod) and its source's mtime, not its mode") {
  if (!test::have_root()) return;
  Copy t;
  put(t.ctx + "/d700/inner/y", "y");
  REQUIRE(::chmod((t.ctx + "/d700/inner").c_str(), 0711) == 0);
  REQUIRE(::chmod((t.ctx + "/d700").c_str(), 0700) == 0);
  set_mtime(t.ctx + "/d700/inner", 1000000);
  set_mtime(t.ctx + "/d700", 2000000);
  base::make_dirs(t.lower + "/existing");
  REQUIRE(::chmod((t.lower + "/existing").c_str(), 0750) == 0);
  REQUIRE(::chown((t.lower + "/existing").c_str(), 5, 6) == 0);
  CHECK(t.run({"d700"}, "/new") == "");
  CHECK(t.run({"d700"}, "/existing") == "");
  auto c = copy({"d700"}, "/chmod");
  c.chmod = 0640;
  CHECK(t.run(c) == "");
  CHECK(t.layer() ==
        "chmod/ d 0640 0:0\nchmod/inner/ d 0640 0:0\nchmod/inner/y f 0640 0:0 y\n"
        "existing/ d 0750 5:6\nexisting/inner/ d 0711 0:0\nexisting/inner/y f 0644 0:0 y\n"
        "new/ d 0755 0:0\nnew/inner/ d 0711 0:0\nnew/inner/y f 0644 0:0 y\n");
  for (const char* d : {"/new", "/existing", "/chmod"}) {
    CAPTURE(d);
    CHECK(Copy::stat_of(t.upper + d).st_mtime == 2000000);
    CHECK(Copy::stat_of(t.upper + d + "/inner").st_mtime == 1000000);
  }
}

TEST_CASE("copy: directories inside the copy take the source's metadata, even existing ones") {
  if (!test::have_root()) return;
  Copy t;
  put(t.ctx + "/v2/d/f", "two");
  REQUIRE(::chmod((t.ctx + "/v2/d").c_str(), 0750) == 0);
  put(t.lower + "/d/f", "one");
  put(t.lower + "/d/keep", "k");
  REQUIRE(::chmod((t.lower + "/d").c_str(), 0700) == 0);
  REQUIRE(::chown((t.lower + "/d").c_str(), 5, 6) == 0);
  CHECK(t.run({"v2"}, "/") == "");
  CHECK(t.layer() == "d/ d 0750 0:0\nd/f f 0644 0:0 two\n");  // keep stays below
}

TEST_CASE("copy: created parents are 0:0 0755, or --chown's owner and --chmod's permissions") {
  if (!test::have_root()) return;
  Copy t;
  put(t.ctx + "/a", "a");
  put(t.lower + "/exist/old", "o");
  REQUIRE(::chown((t.lower + "/exist").c_str(), 5, 6) == 0);
  CHECK(t.run({"a"}, "/p/q/r") == "");
  auto c = copy({"a"}, "/exist/new/deep/");
  c.chmod = 04710;
  CHECK(t.run(c, ops::Owner{7, 8}) == "");
  CHECK(t.layer() ==
        "exist/ d 0755 5:6\nexist/new/ d 0710 7:8\nexist/new/deep/ d 0710 7:8\nexist/new/deep/a f 4710 7:8 a\n"
        "p/ d 0755 0:0\np/q/ d 0755 0:0\np/q/r f 0644 0:0 a\n");
}

TEST_CASE("copy: keeps source owners without --chown; a context's entries are 0:0") {
  if (!test::have_root()) return;
  Copy t;
  put(t.ctx + "/a", "a");
  REQUIRE(::chown((t.ctx + "/a").c_str(), 1234, 5678) == 0);
  CHECK(t.run({"a"}, "/ctx") == "");
  // Another stage or image: owners are kept.
  put(t.tmp.path() + "/stage/d/x", "x");
  REQUIRE(::chown((t.tmp.path() + "/stage/d").c_str(), 7, 8) == 0);
  REQUIRE(::chown((t.tmp.path() + "/stage/d/x").c_str(), 9, 10) == 0);
  std::vector<cache::MergedFs> from;
  from.emplace_back(std::vector<std::string>{t.lower});
  from.emplace_back(std::vector<std::string>{t.tmp.path() + "/stage"});
  ops::apply_file_action(copy({"/d"}, "/stage/"), t.upper, {t.lower}, from, std::nullopt);
  ops::apply_file_action(copy({"/"}, "/all/"), t.upper, {t.lower}, from, std::nullopt);
  CHECK(t.layer() ==
        "all/ d 0755 0:0\nall/d/ d 0755 7:8\nall/d/x f 0644 9:10 x\n"
        "ctx f 0644 0:0 a\nstage/ d 0755 0:0\nstage/x f 0644 9:10 x\n");
}

TEST_CASE("copy: keeps mtimes, setuid and sticky bits, xattrs; --chmod replaces all bits") {
  if (!test::have_root()) return;
  Copy t;
  put(t.ctx + "/suid", "s");
  REQUIRE(::chmod((t.ctx + "/suid").c_str(), 04755) == 0);
  put(t.ctx + "/sticky/z", "z");
  REQUIRE(::chmod((t.ctx + "/sticky/z").c_str(), 02750) == 0);
  REQUIRE(::chmod((t.ctx + "/sticky").c_str(), 01777) == 0);
  bool xattrs = ::lsetxattr((t.ctx + "/suid").c_str(), "user.k", "v", 1, 0) == 0;
  set_mtime(t.ctx + "/suid", 1234567);
  set_mtime(t.ctx + "/sticky/z", 7654321);
  CHECK(t.run({"suid", "sticky"}, "/d/") == "");
  auto c = copy({"suid"}, "/m");
  c.chmod = 0;
  CHECK(t.run(c) == "");
  CHECK(t.layer() == std::string("d/ d 0755 0:0\nd/suid f 4755 0:0 s") + (xattrs ? " user.k=v" : "") +
                         "\nd/z f 2750 0:0 z\nm f 0000 0:0 s" + (xattrs ? " user.k=v" : "") + "\n");
  CHECK(Copy::stat_of(t.upper + "/d/suid").st_mtime == 1234567);
  CHECK(Copy::stat_of(t.upper + "/d/z").st_mtime == 7654321);
  // A directory inside the copy keeps its sticky bit (the copied one gets 0755 above).
  put(t.ctx + "/st/sticky2/q", "q");
  REQUIRE(::chmod((t.ctx + "/st/sticky2").c_str(), 01777) == 0);
  CHECK(t.run({"st"}, "/s3") == "");
  CHECK((Copy::stat_of(t.upper + "/s3/sticky2").st_mode & 07777) == 01777);
}

TEST_CASE("copy: hard links within one source are kept, not across sources") {
  if (!test::have_root()) return;
  Copy t;
  put(t.ctx + "/a", "a");
  REQUIRE(::link((t.ctx + "/a").c_str(), (t.ctx + "/b").c_str()) == 0);
  put(t.ctx + "/d/e", "e");
  REQUIRE(::link((t.ctx + "/a").c_str(), (t.ctx + "/d/c").c_str()) == 0);
  REQUIRE(::link((t.ctx + "/d/e").c_str(), (t.ctx + "/d/f").c_str()) == 0);
  CHECK(t.run({"."}, "/h/") == "");
  CHECK(t.run({"a", "b"}, "/two/") == "");
  CHECK(t.layer() ==
        "h/ d 0755 0:0\nh/a f 0644 0:0 a\nh/b f 0644 0:0 link=h/a\nh/d/ d 0755 0:0\nh/d/c f 0644 0:0 link=h/a\n"
        "h/d/e f 0644 0:0 e\nh/d/f f 0644 0:0 link=h/d/e\n"
        "two/ d 0755 0:0\ntwo/a f 0644 0:0 a\ntwo/b f 0644 0:0 a\n");
}

TEST_CASE("copy: fifos, devices and empty directories are copied; a socket becomes an empty file") {
  if (!test::have_root()) return;
  Copy t;
  REQUIRE(::mkfifo((t.ctx + "/fifo").c_str(), 0640) == 0);
  REQUIRE(::mknod((t.ctx + "/null").c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0);
  REQUIRE(::chmod((t.ctx + "/null").c_str(), 0666) == 0);
  REQUIRE(::mknod((t.ctx + "/blk").c_str(), S_IFBLK | 0600, makedev(7, 200)) == 0);
  REQUIRE(::mknod((t.ctx + "/sock").c_str(), S_IFSOCK | 0755, 0) == 0);
  base::make_dirs(t.ctx + "/empty/inner");
  CHECK(t.run({"."}, "/s/") == "");
  CHECK(t.run({"empty"}, "/e") == "");
  CHECK(t.layer() ==
        "e/ d 0755 0:0\ne/inner/ d 0755 0:0\n"
        "s/ d 0755 0:0\ns/blk b 0600 0:0 7,200\ns/empty/ d 0755 0:0\ns/empty/inner/ d 0755 0:0\n"
        "s/fifo p 0640 0:0\ns/null c 0666 0:0 1,3\ns/sock f 0755 0:0 \n");
}

TEST_CASE("copy: a directory onto a file, a file onto a directory, a path through a file fail") {
  if (!test::have_root()) return;
  Copy t;
  put(t.ctx + "/a", "a");
  put(t.ctx + "/d/f", "f");
  put(t.ctx + "/t/x/f", "f");
  put(t.ctx + "/u/x", "x");
  put(t.lower + "/file", "old");
  base::make_dirs(t.lower + "/x");
  link("x", t.lower + "/lx");
  CHECK(t.run({"d"}, "/file") == "COPY failed: cannot copy to non-directory: /file");
  CHECK(t.run({"u/"}, "/") == "COPY failed: cannot replace to directory /x with file");
  CHECK(t.run({"a"}, "/file/b") == "COPY failed: mkdir /file: not a directory");
  put(t.ctx + "/v/lx/f", "f");
  CHECK(t.run({"v"}, "/") == "COPY failed: cannot copy to non-directory: /lx");  // no following inside
}

TEST_CASE("copy: what a lower layer had is replaced in the new layer, and stays hidden") {
  if (!test::have_root()) return;
  Copy t;
  put(t.ctx + "/f", "new");
  put(t.ctx + "/dir/g", "g");
  put(t.lower + "/f", "old");
  link("f", t.lower + "/l");
  put(t.lower + "/deep/er/old", "o");
  REQUIRE(::chmod((t.lower + "/deep").c_str(), 0711) == 0);
  CHECK(t.run({"f"}, "/deep/er/f") == "");  // parents copied up with their metadata
  CHECK(t.run({"f"}, "/f") == "");
  CHECK(t.run({"dir/g"}, "/l") == "");  // a symlink is followed, f rewritten
  CHECK(t.layer() == "deep/ d 0711 0:0\ndeep/er/ d 0755 0:0\ndeep/er/f f 0644 0:0 new\nf f 0644 0:0 g\n");
  // A directory where the new layer has a whiteout hides what is below.
  Copy w;
  put(w.ctx + "/d/new", "n");
  put(w.lower + "/d/old", "o");
  base::make_dirs(w.upper);
  REQUIRE(::mknod((w.upper + "/d").c_str(), S_IFCHR | 0600, makedev(0, 0)) == 0);
  CHECK(w.run({"d"}, "/d") == "");
  char v = 0;
  CHECK(::lgetxattr((w.upper + "/d").c_str(), "trusted.overlay.opaque", &v, 1) == 1);
  CHECK(v == 'y');
  cache::MergedFs merged({w.upper, w.lower});
  CHECK(merged.list("d") == std::vector<std::string>{"new"});
}

TEST_CASE("copy: a source with `..` never leaves the context") {
  if (!test::have_root()) return;
  Copy t;
  put(t.tmp.path() + "/outside", "secret");
  put(t.ctx + "/a.txt", "a");
  put(t.ctx + "/sub/x", "x");
  CHECK(t.run({"../outside"}, "/o") ==
        "COPY failed: file not found in build context or excluded: stat outside: not found");
  CHECK(t.run({"../../a.txt", "sub/../../a.txt", "/a.txt"}, "/p/") == "");
  CHECK(t.run({"../*"}, "/w/") == "");
  CHECK(t.layer() ==
        "p/ d 0755 0:0\np/a.txt f 0644 0:0 a\n"
        "w/ d 0755 0:0\nw/a.txt f 0644 0:0 a\nw/x f 0644 0:0 x\n");
}

TEST_CASE("copy: --chown resolves as BuildKit's file op does") {
  if (!test::have_root()) return;
  base::TempDir tmp("/tmp", "builder-test-ops-");
  put(tmp.path() + "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n\n  bob:x:1000:1001::/home/bob:/bin/sh  \n");
  put(tmp.path() + "/etc/group", "root:x:0:\nstaff:x:50:bob\n");
  cache::MergedFs target({tmp.path()});
  auto owner = [&](const std::string& s) {
    auto o = ops::resolve_owner(s, target);
    return o ? std::to_string(o->uid) + ":" + std::to_string(o->gid) : std::string("none");
  };
  CHECK(owner("") == "none");
  CHECK(owner("1002") == "1002:1002");  // a numeric user is the group too
  CHECK(owner("1002:7") == "1002:7");
  CHECK(owner("bob") == "1000:1001");
  CHECK(owner("bob:staff") == "1000:50");
  CHECK(owner("bob:1") == "1000:1");
  CHECK(owner(":staff") == "0:50");
  CHECK(owner("root:staff") == "0:50");
  CHECK(owner("nobody") == "0:0");         // not found: 0, as in BuildKit
  CHECK(owner("bob:nogroup") == "1000:1001");
  cache::MergedFs empty({tmp.path() + "/etc"});  // no /etc/passwd at all
  CHECK(ops::resolve_owner("bob:staff", empty)->uid == 0);
}

TEST_CASE("file op: symlinked, wildcard and hard-linked sources read exactly what their key covers") {
  if (!test::have_root()) return;
  const std::vector<std::vector<std::string>> ignores{{}, {"data/*.log", "top.txt"}, {"data", "!data/real.txt"}};
  const std::vector<std::vector<std::string>> copies{
      {"link"}, {"chain"}, {"linkdir"}, {"linkdir/real.txt"}, {"l*"},    {"*.txt"},
      {"."},    {"data"},  {"d*/*"},    {"abs", "up"},        {"hard*"}, {"[^d]*"}};
  for (const auto& ignore : ignores) {
    for (const auto& srcs : copies) {
      base::TempDir tmp("/tmp", "builder-test-ops-");
      std::string ctx = tmp.path() + "/ctx", lower = tmp.path() + "/lower";
      base::make_dirs(lower);
      put(ctx + "/data/real.txt", "real");
      put(ctx + "/data/other.txt", "other");
      put(ctx + "/data/secret.log", "s");
      put(ctx + "/top.txt", "top");
      put(ctx + "/.dot.txt", "dot");
      put(ctx + "/hard1", "h");
      REQUIRE(::link((ctx + "/hard1").c_str(), (ctx + "/hard2").c_str()) == 0);
      link("../top.txt", ctx + "/data/inner");
      link("data/real.txt", ctx + "/link");
      link("link", ctx + "/chain");
      link("data", ctx + "/linkdir");
      link("/top.txt", ctx + "/abs");
      link("../../top.txt", ctx + "/up");
      std::vector<std::string> include;
      for (const auto& s : srcs)
        if (s != ".") include.push_back(s);
      int step = 0;
      auto state = [&] {
        std::string upper = tmp.path() + "/upper" + std::to_string(step++);
        base::make_dirs(upper);
        std::string out;
        try {
          auto c = copy(srcs, "/out/");
          c.allow_empty_wildcard = true;
          ops::apply_file_action(c, upper, {lower}, sources(lower, ctx, ignore), std::nullopt);
          out = base::path_exists(upper + "/out") ? tree_state(upper + "/out") : "nothing";
        } catch (const base::Error& e) {
          out = e.what();
        }
        return std::make_pair(cache::checksum_paths(ctx, include, ignore), out);
      };
      auto before = state();
      auto mutate = [&](const std::string& what, const std::function<void()>& change) {
        change();
        auto after = state();
        std::string patterns = base::join(ignore, " ");
        std::string sources = base::join(srcs, " ");
        CAPTURE(patterns);
        CAPTURE(sources);
        CAPTURE(what);
        // A failing COPY is never cached: its key does not matter.
        if (!before.second.starts_with("COPY failed") && !after.second.starts_with("COPY failed"))
          CHECK((after.first != before.first) == (after.second != before.second));
        before = after;
      };
      for (const auto* f : {"data/real.txt", "data/other.txt", "data/secret.log", "top.txt", ".dot.txt", "hard1"})
        mutate(f, [&] { put(ctx + "/" + f, std::string("changed ") + f); });
      mutate("retarget link", [&] {
        REQUIRE(::unlink((ctx + "/link").c_str()) == 0);
        link("data/other.txt", ctx + "/link");
      });
      mutate("retarget inner", [&] {
        REQUIRE(::unlink((ctx + "/data/inner").c_str()) == 0);
        link("other.txt", ctx + "/data/inner");
      });
      mutate("mode of a target", [&] { REQUIRE(::chmod((ctx + "/data/real.txt").c_str(), 0600) == 0); });
      mutate("mode of data", [&] { REQUIRE(::chmod((ctx + "/data").c_str(), 0700) == 0); });
      mutate("owner of a target", [&] { REQUIRE(::chown((ctx + "/data/real.txt").c_str(), 7, 7) == 0); });
      mutate("xattr", [&] { ::lsetxattr((ctx + "/data/real.txt").c_str(), "user.k", "v", 1, 0); });
      mutate("hard link broken", [&] {
        REQUIRE(::unlink((ctx + "/hard2").c_str()) == 0);
        put(ctx + "/hard2", "changed hard1");
      });
      mutate("new dotfile", [&] { put(ctx + "/.new.txt", "new"); });
      mutate("new file in data", [&] { put(ctx + "/data/new.txt", "new"); });
      mutate("linkdir to the root", [&] {
        REQUIRE(::unlink((ctx + "/linkdir").c_str()) == 0);
        link(".", ctx + "/linkdir");
      });
    }
  }
}

namespace {
graph::CopyAction add_archive(const std::string& dest) {
  graph::CopyAction c = copy({"a.tar"}, dest);
  c.unpack_archives = true;
  return c;
}
}  // namespace

TEST_CASE("add: an archive unpacks as under Docker's chroot at the destination") {
  if (!test::have_root()) return;
  // What Docker 20.10's BuildKit made of this archive (ADD a.tar /x/): links in the
  // archive are followed inside /x, an absolute one restarting at /x, `..` stopping there.
  Copy t;
  test::make_tar(t.ctx + "/a.tar", {{"usr/", 'd', "", 0755},
                                    {"usr/lib/", 'd', "", 0755},
                                    {"lib", 'l', "usr/lib"},
                                    {"lib/foo", 'f', "x"},
                                    {"abs", 'l', "/usr"},
                                    {"abs/bar", 'f', "y"},
                                    {"hl", 'h', "abs/bar"},
                                    {"lib/sub/deep", 'f', "z"},
                                    {"up", 'l', "../../../.."},
                                    {"up/tmp/t", 'f', "t"}});
  CHECK(t.run(add_archive("/x/")) == "");
  CHECK(t.layer() ==
        "x/ d 0755 0:0\n"
        "x/abs l 0777 0:0 -> /usr\n"
        "x/hl f 0644 0:0 y\n"
        "x/lib l 0777 0:0 -> usr/lib\n"
        "x/tmp/ d 0755 0:0\n"
        "x/tmp/t f 0644 0:0 t\n"
        "x/up l 0777 0:0 -> ../../../..\n"
        "x/usr/ d 0755 0:0\n"
        "x/usr/bar f 0644 0:0 link=x/hl\n"
        "x/usr/lib/ d 0755 0:0\n"
        "x/usr/lib/foo f 0644 0:0 x\n"
        "x/usr/lib/sub/ d 0755 0:0\n"
        "x/usr/lib/sub/deep f 0644 0:0 z\n");

  // A layer directory reached through a symlink (a store root on a linked disk).
  Copy linked;
  test::make_tar(linked.ctx + "/a.tar", {{"d/f", 'f', "x"}});
  REQUIRE(::symlink(linked.upper.c_str(), (linked.tmp.path() + "/upper-link").c_str()) == 0);
  linked.upper = linked.tmp.path() + "/upper-link";
  CHECK(linked.run(add_archive("/x/")) == "");
  CHECK(base::read_file(linked.tmp.path() + "/upper/x/d/f") == "x");
}

TEST_CASE("add: an archive follows the image's symlinks, and its directory entries replace them") {
  if (!test::have_root()) return;
  // A merged-/usr image: /mlib and /mlib2 are links into /usr. As with Docker, an entry
  // below mlib/ lands in /usr/mlib; an explicit `mlib2/` directory entry replaces the
  // link with a directory; an existing directory takes the entry's owner and mode.
  Copy t;
  put(t.lower + "/usr/mlib/old", "o");
  put(t.lower + "/usr/mlib2/keep", "k");
  put(t.lower + "/etc/keep", "k");
  put(t.lower + "/base", "b");
  link("usr/mlib", t.lower + "/mlib");
  link("usr/mlib2", t.lower + "/mlib2");
  test::make_tar(t.ctx + "/a.tar", {{"mlib/x/foo", 'f', "x"},
                                    {"mlib2/", 'd', "", 0755},
                                    {"mlib2/foo", 'f', "f"},
                                    {"etc/", 'd', "", 0700},
                                    {"hb", 'h', "base"}});
  CHECK(t.run(add_archive("/")) == "");
  CHECK(t.layer() ==
        "base f 0644 0:0 b\n"
        "etc/ d 0700 0:0\n"
        "hb f 0644 0:0 link=base\n"
        "mlib2/ d 0755 0:0\n"
        "mlib2/foo f 0644 0:0 f\n"
        "usr/ d 0755 0:0\n"
        "usr/mlib/ d 0755 0:0\n"
        "usr/mlib/x/ d 0755 0:0\n"
        "usr/mlib/x/foo f 0644 0:0 x\n");
  cache::MergedFs merged({t.upper, t.lower});
  CHECK(merged.list("etc") == std::vector<std::string>{"keep"});
  CHECK(merged.list("mlib2") == std::vector<std::string>{"foo"});
  CHECK(merged.list("usr/mlib2") == std::vector<std::string>{"keep"});
  CHECK(merged.list("usr/mlib") == std::vector<std::string>{"old", "x"});
}

TEST_CASE("add: an archive entry through a link to nothing, a file or a loop fails; `..` never leaves") {
  if (!test::have_root()) return;
  struct Case {
    std::vector<test::TarItem> items;
    std::string error;
  };
  std::vector<Case> cases = {
      {{{"out", 'l', "/outside/dir"}, {"out/evil", 'f', "x"}},
       "ADD failed: refusing tar entry `out/evil`: `/x/outside` does not exist"},
      {{{"f", 'f', "x"}, {"lf", 'l', "f"}, {"lf/evil", 'f', "x"}},
       "ADD failed: refusing tar entry `lf/evil`: `/x/f` is not a directory"},
      {{{"loop", 'l', "loop"}, {"loop/evil", 'f', "x"}},
       "ADD failed: refusing tar entry `loop/evil`: too many levels of symbolic links"},
      {{{"../evil", 'f', "x"}}, "ADD failed: refusing tar entry `../evil`: path escapes the destination"},
      {{{"ok", 'f', "x"}, {"hl", 'h', "../../etc/passwd"}},
       "ADD failed: refusing tar entry `../../etc/passwd`: path escapes the destination"},
      {{{"hl", 'h', "missing"}}, "ADD failed: hard link target `missing` does not exist"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.error);
    Copy t;
    test::make_tar(t.ctx + "/a.tar", c.items);
    CHECK(t.run(add_archive("/x/")) == c.error);
    CHECK_FALSE(base::path_exists(t.tmp.path() + "/evil"));
    CHECK_FALSE(base::path_exists(t.tmp.path() + "/outside"));
  }
}
