#include "cache/checksum.h"

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/error.h"
#include "cache_test_util.h"

using namespace builder;

namespace {

struct Context {
  base::TempDir tmp{"/tmp", "cache-ctx-"};
  std::string dir = tmp.path() + "/ctx";
  Context() {
    test::write(dir + "/a.txt", "a");
    test::write(dir + "/b.txt", "b");
    test::write(dir + "/app.log", "log");
    test::write(dir + "/README.md", "readme");
    test::write(dir + "/NOTES.md", "notes");
    test::write(dir + "/src/main.c", "int main;");
    test::write(dir + "/src/deep/x.txt", "x");
    test::write(dir + "/build/out.o", "obj");
    REQUIRE(::symlink("a.txt", (dir + "/link").c_str()) == 0);
  }
  std::string sum(const std::vector<std::string>& inc, const std::vector<std::string>& exc = {}) {
    return cache::checksum_paths(dir, inc, exc);
  }
  std::string p(const std::string& rel) { return dir + "/" + rel; }
};

void touch_mtime(const std::string& path) {
  struct timeval tv[2] = {{1000000, 0}, {1000000, 0}};
  REQUIRE(::lutimes(path.c_str(), tv) == 0);
}

}  // namespace

TEST_CASE("checksum: stable, 32 hex chars, independent of mtime") {
  Context c;
  std::string all = c.sum({});
  CHECK(all.size() == 32);
  CHECK(all.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(c.sum({}) == all);
  CHECK(c.sum({"."}) == all);
  touch_mtime(c.p("a.txt"));
  touch_mtime(c.p("src"));
  touch_mtime(c.p("link"));
  CHECK(c.sum({}) == all);
}

TEST_CASE("checksum: changes with content, mode and symlink target of selected files") {
  Context c;
  std::string before = c.sum({"a.txt", "link"});
  test::write(c.p("a.txt"), "A");
  std::string after_content = c.sum({"a.txt", "link"});
  CHECK(after_content != before);

  REQUIRE(::chmod(c.p("a.txt").c_str(), 0600) == 0);
  std::string after_mode = c.sum({"a.txt", "link"});
  CHECK(after_mode != after_content);

  REQUIRE(::unlink(c.p("link").c_str()) == 0);
  REQUIRE(::symlink("b.txt", c.p("link").c_str()) == 0);
  CHECK(c.sum({"a.txt", "link"}) != after_mode);

  // Renaming a selected file changes the checksum too.
  std::string now = c.sum({"src"});
  REQUIRE(::rename(c.p("src/main.c").c_str(), c.p("src/main2.c").c_str()) == 0);
  CHECK(c.sum({"src"}) != now);
}

TEST_CASE("checksum: unselected files do not matter") {
  Context c;
  std::string before = c.sum({"a.txt"});
  test::write(c.p("b.txt"), "changed");
  test::write(c.p("src/new.c"), "new");
  REQUIRE(::chmod(c.p("README.md").c_str(), 0600) == 0);
  CHECK(c.sum({"a.txt"}) == before);
  // A pattern that matches nothing contributes nothing (the caller reports it).
  CHECK(c.sum({"a.txt", "missing/*.c", "nope"}) == before);
  CHECK(c.sum({"nope"}) == c.sum({"also-nope"}));
}

TEST_CASE("checksum: a selected directory brings its whole subtree") {
  Context c;
  std::string before = c.sum({"src"});
  CHECK(c.sum({"src/"}) == before);
  CHECK(c.sum({"./src"}) == before);
  test::write(c.p("src/deep/x.txt"), "y");
  CHECK(c.sum({"src"}) != before);
  std::string deep = c.sum({"src/deep/x.txt"});
  test::write(c.p("src/main.c"), "changed");
  CHECK(c.sum({"src/deep/x.txt"}) == deep);
}

TEST_CASE("checksum: wildcard include patterns") {
  Context c;
  std::string txt = c.sum({"*.txt"});
  test::write(c.p("src/deep/x.txt"), "not top level");  // `*` does not cross `/`
  test::write(c.p("app.log"), "changed");
  CHECK(c.sum({"*.txt"}) == txt);
  test::write(c.p("b.txt"), "B");
  CHECK(c.sum({"*.txt"}) != txt);
  CHECK(c.sum({"?.txt"}) == c.sum({"*.txt"}));
  CHECK(c.sum({"[ab].txt"}) == c.sum({"a.txt", "b.txt"}));

  std::string src = c.sum({"src/*"});
  CHECK(src == c.sum({"src/deep", "src/main.c"}));
  test::write(c.p("src/deep/x.txt"), "deeper change");  // src/* selects src/deep whole
  CHECK(c.sum({"src/*"}) != src);
  std::string after = c.sum({"src/*"});
  test::write(c.p("a.txt"), "outside");
  CHECK(c.sum({"src/*"}) == after);
}

TEST_CASE("checksum: exclude patterns (.dockerignore)") {
  Context c;
  std::string base = c.sum({}, {"*.log", "build", "*.md", "!README.md"});
  test::write(c.p("app.log"), "more log");
  test::write(c.p("build/out.o"), "relinked");
  test::write(c.p("build/new/thing"), "x");
  test::write(c.p("NOTES.md"), "more notes");
  CHECK(c.sum({}, {"*.log", "build", "*.md", "!README.md"}) == base);
  test::write(c.p("README.md"), "re-included");
  CHECK(c.sum({}, {"*.log", "build", "*.md", "!README.md"}) != base);

  // Excludes apply within includes, with leading slashes and `**`.
  std::string src = c.sum({"src"}, {"/src/deep"});
  test::write(c.p("src/deep/x.txt"), "ignored");
  CHECK(c.sum({"src"}, {"/src/deep"}) == src);
  std::string any = c.sum({}, {"**/x.txt"});
  test::write(c.p("src/deep/x.txt"), "ignored again");
  CHECK(c.sum({}, {"**/x.txt"}) == any);
  // Excluding nothing that exists changes nothing.
  CHECK(c.sum({}, {"nothing-here"}) == c.sum({}));
}

TEST_CASE("checksum: an excluded directory counts only with the entries re-included in it") {
  Context c;
  const std::vector<std::string> keep{"build", "!build/keep.txt"};
  test::write(c.p("build/keep.txt"), "kept");
  std::string before = c.sum({}, keep);
  test::write(c.p("build/out.o"), "relinked");
  test::write(c.p("build/sub/deep.o"), "new");
  CHECK(c.sum({}, keep) == before);
  test::write(c.p("build/keep.txt"), "changed");
  CHECK(c.sum({}, keep) != before);
  // The directory shows (with its own metadata) because keep.txt does.
  std::string shown = c.sum({}, keep);
  REQUIRE(::chmod(c.p("build").c_str(), 0700) == 0);
  CHECK(c.sum({}, keep) != shown);
  CHECK(c.sum({"build"}, keep) != c.sum({"nope"}, keep));

  // Without a re-included entry the directory is gone whole, metadata included.
  std::string gone = c.sum({}, {"build"});
  REQUIRE(::chmod(c.p("build").c_str(), 0755) == 0);
  CHECK(c.sum({}, {"build"}) == gone);
  REQUIRE(::unlink(c.p("build/keep.txt").c_str()) == 0);
  CHECK(c.sum({}, keep) == c.sum({}, {"build"}));
  CHECK(c.sum({"build"}, keep) == c.sum({"nope"}, keep));
}

TEST_CASE("checksum: a malformed exclude pattern is an error") {
  Context c;
  std::string message =
      "invalid exclude pattern `src/[a-`: syntax error in pattern\n  while checksumming `" + c.dir +
      "`";
  CHECK_THROWS_WITH_AS(c.sum({}, {"*.log", "src/[a-"}), message.c_str(), base::Error);
}

TEST_CASE("checksum: a symlinked source covers what it leads to, never what is outside") {
  Context c;
  // `link` -> a.txt: the COPY copies a.txt's content, so the key follows it.
  std::string before = c.sum({"link"});
  test::write(c.p("a.txt"), "A changed");
  CHECK(c.sum({"link"}) != before);
  // Through a symlinked directory in the middle of the path, and by wildcard.
  REQUIRE(::symlink("src", c.p("srclink").c_str()) == 0);
  std::string via = c.sum({"srclink/deep/x.txt"});
  std::string wild = c.sum({"srcl*"});
  test::write(c.p("src/deep/x.txt"), "x changed");
  CHECK(c.sum({"srclink/deep/x.txt"}) != via);
  CHECK(c.sum({"srcl*"}) != wild);
  // A link to an absolute host path resolves inside the context: outside/secret is never
  // read; the context has no such path, so the source selects nothing.
  test::write(c.tmp.path() + "/outside/secret", "s1");
  REQUIRE(::symlink((c.tmp.path() + "/outside").c_str(), c.p("out").c_str()) == 0);
  REQUIRE(::symlink("../outside/secret", c.p("up").c_str()) == 0);
  CHECK(c.sum({"out"}) == c.sum({"nope"}));
  CHECK(c.sum({"out/*"}) == c.sum({"nope"}));
  CHECK(c.sum({"up"}) == c.sum({"nope"}));
  // "../outside/secret" from the root is "outside/secret" in the context.
  test::write(c.p("outside/secret"), "inside");
  std::string up = c.sum({"up"});
  CHECK(up != c.sum({"nope"}));
  test::write(c.tmp.path() + "/outside/secret", "s2");
  CHECK(c.sum({"up"}) == up);
  test::write(c.p("outside/secret"), "inside, changed");
  CHECK(c.sum({"up"}) != up);
}

TEST_CASE("checksum: symlinks inside a selected directory count as links") {
  Context c;
  REQUIRE(::symlink("../a.txt", c.p("src/l").c_str()) == 0);
  std::string before = c.sum({"src"});
  test::write(c.p("a.txt"), "A changed");  // the copy keeps src/l a link
  CHECK(c.sum({"src"}) == before);
  REQUIRE(::unlink(c.p("src/l").c_str()) == 0);
  REQUIRE(::symlink("../b.txt", c.p("src/l").c_str()) == 0);
  CHECK(c.sum({"src"}) != before);
}

TEST_CASE("checksum: wildcards select as Go's filepath.Match, dotfiles included") {
  Context c;
  std::string txt = c.sum({"*.txt"});
  test::write(c.p(".hidden.txt"), "dot");
  CHECK(c.sum({"*.txt"}) != txt);
  CHECK(c.sum({"*.txt"}) == c.sum({".hidden.txt", "a.txt", "b.txt"}));
  CHECK(c.sum({"[!a].txt"}) == c.sum({"a.txt"}));  // `!` is a literal in a class
  CHECK(c.sum({"[^a].txt"}) == c.sum({"b.txt"}));
  // A malformed pattern selects nothing (the COPY reports it).
  CHECK(c.sum({"a["}) == c.sum({"nope"}));
}

TEST_CASE("checksum: owners, and the copied directory's own mode, are not read") {
  Context c;
  std::string all = c.sum({});
  std::string src = c.sum({"src"});
  // A context is sent owned by 0:0; the copy makes its destination 0755.
  REQUIRE(::lchown(c.p("a.txt").c_str(), 1234, 5678) == 0);
  REQUIRE(::chmod(c.p("src").c_str(), 0700) == 0);
  CHECK(c.sum({"src"}) == src);
  CHECK(c.sum({}) != all);  // but `src` below the root is copied with its mode
  REQUIRE(::chmod(c.p("src").c_str(), 0755) == 0);
  CHECK(c.sum({}) == all);
}

TEST_CASE("checksum: xattrs and hard links are read") {
  Context c;
  std::string all = c.sum({});
  REQUIRE(::link(c.p("a.txt").c_str(), c.p("src/a-link").c_str()) == 0);
  std::string linked = c.sum({});
  REQUIRE(::unlink(c.p("src/a-link").c_str()) == 0);
  test::write(c.p("src/a-link"), "a");  // same content, no longer a link
  CHECK(c.sum({}) != linked);
  REQUIRE(::unlink(c.p("src/a-link").c_str()) == 0);
  CHECK(c.sum({}) == all);
  if (::lsetxattr(c.p("a.txt").c_str(), "user.test", "v", 1, 0) == 0) CHECK(c.sum({}) != all);
}

TEST_CASE("checksum: a missing directory is an error") {
  base::TempDir tmp("/tmp", "cache-ctx-");
  CHECK_THROWS_AS(cache::checksum_paths(tmp.path() + "/missing", {}, {}), base::Error);
}

namespace {

/// Bytes this process has read with read(2) and friends (/proc/self/io rchar), before
/// and after reading /proc/self/io itself (the printed count already includes that read).
struct Rchar {
  long long before, after;
};
Rchar bytes_read() {
  std::string io = base::read_file("/proc/self/io");
  auto at = io.find("rchar: ");
  REQUIRE(at != std::string::npos);
  long long printed = std::stoll(io.substr(at + 7));
  return {printed - static_cast<long long>(io.size()), printed};
}

}  // namespace

TEST_CASE("checksum: a memo skips reading unchanged files and never hides a change") {
  Context c;
  // Files written in the last two seconds are not remembered (one timestamp tick cannot
  // tell two writes apart), so let the context age first.
  ::sleep(3);
  std::string memo_path = c.tmp.path() + "/memo";
  std::string plain = c.sum({});
  {
    cache::ChecksumMemo memo(memo_path);
    CHECK(cache::checksum_paths(c.dir, {}, {}, &memo) == plain);  // fills the memo
    CHECK(memo.size() >= 8);
    long long before = bytes_read().after;
    CHECK(cache::checksum_paths(c.dir, {}, {}, &memo) == plain);
    CHECK(bytes_read().before == before);  // no file content read again
    memo.save();
  }
  // A new process (a new memo object) loads the saved memo and reads nothing either.
  cache::ChecksumMemo memo(memo_path);
  long long before = bytes_read().after;
  CHECK(cache::checksum_paths(c.dir, {}, {}, &memo) == plain);
  CHECK(bytes_read().before == before);

  // Rewriting a file in place with the same size changes its ctime: re-read, new sum.
  {
    int fd = ::open(c.p("a.txt").c_str(), O_WRONLY | O_TRUNC);
    REQUIRE(fd >= 0);
    REQUIRE(::write(fd, "Z", 1) == 1);
    ::close(fd);
  }
  std::string changed = cache::checksum_paths(c.dir, {}, {}, &memo);
  CHECK(changed != plain);
  CHECK(changed == c.sum({}));
  // So does a mode change, which touches nothing but the inode.
  REQUIRE(::chmod(c.p("b.txt").c_str(), 0600) == 0);
  CHECK(cache::checksum_paths(c.dir, {}, {}, &memo) == c.sum({}));

  // A damaged memo file is an empty memo, not an error.
  test::write(memo_path, "not a memo");
  cache::ChecksumMemo damaged(memo_path);
  CHECK(damaged.size() == 0);
  CHECK(cache::checksum_paths(c.dir, {}, {}, &damaged) == c.sum({}));
}

TEST_CASE("checksum: lists each selected entry with its own sum") {
  Context c;
  std::vector<cache::FileSum> files;
  cache::checksum_paths(c.dir, {"src", "a.txt"}, {}, nullptr, &files);
  std::vector<std::string> paths;
  for (const auto& f : files) paths.push_back(f.path);
  CHECK(paths == std::vector<std::string>{"src/deep", "src/deep/x.txt", "src/main.c", "a.txt"});
  std::string sum_x = files[1].sum;
  test::write(c.p("src/deep/x.txt"), "changed");
  std::vector<cache::FileSum> again;
  cache::checksum_paths(c.dir, {"src", "a.txt"}, {}, nullptr, &again);
  REQUIRE(again.size() == files.size());
  CHECK(again[1].sum != sum_x);
  CHECK(again[0].sum == files[0].sum);
  CHECK(again[3].sum == files[3].sum);
}
