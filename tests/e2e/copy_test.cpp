// tests/e2e/copy_test.cpp — end-to-end: COPY from the build context as BuildKit does it
// (wildcards with dotfiles, followed symlinks resolved inside the context, directory
// contents, owners reset to 0:0, --chown/--chmod, hard links, fifos, empty directories,
// several sources) and a cache key that follows symlinked sources to their targets.
// Context: testdata/e2e/copy, completed at test time with what git cannot hold.
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/time.h>

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

/// Every entry below `dir`: "path type mode uid:gid detail", sorted; a file's detail is
/// its content (or the path it is hard linked to) and its mtime.
std::string listing(const fs::path& dir) {
  std::vector<std::string> paths;
  for (const auto& e : fs::recursive_directory_iterator(dir)) paths.push_back(fs::relative(e.path(), dir).string());
  std::sort(paths.begin(), paths.end());
  std::string out;
  std::map<ino_t, std::string> inodes;
  for (const auto& rel : paths) {
    const fs::path path = dir / rel;
    struct stat st;
    REQUIRE(::lstat(path.c_str(), &st) == 0);
    char head[64];
    char type = S_ISDIR(st.st_mode) ? 'd' : S_ISREG(st.st_mode) ? 'f' : S_ISLNK(st.st_mode) ? 'l' : 'p';
    std::snprintf(head, sizeof head, " %c %04o %u:%u", type, st.st_mode & 07777, st.st_uid, st.st_gid);
    std::string line = rel + head;
    if (S_ISREG(st.st_mode)) {
      auto [it, fresh] = inodes.emplace(st.st_ino, rel);
      std::string content = builder::e2e::slurp(path);
      if (!content.empty() && content.back() == '\n') content.pop_back();
      line += fresh ? " " + content : " link=" + it->second;
    }
    if (S_ISLNK(st.st_mode)) line += " -> " + fs::read_symlink(path).string();
    if (!S_ISDIR(st.st_mode)) line += " @" + std::to_string(st.st_mtime);
    out += line + "\n";
  }
  return out;
}

void set_mtime(const fs::path& p, time_t t) {
  struct timespec ts[2] = {{t, 0}, {t, 0}};
  REQUIRE(::utimensat(AT_FDCWD, p.c_str(), ts, AT_SYMLINK_NOFOLLOW) == 0);
}

/// testdata/e2e/copy plus what git cannot hold, with owners that the build must reset
/// and fixed mtimes that it must keep.
fs::path make_context(const TestRoot& root) {
  const fs::path ctx = root.work() / "ctx";
  fs::copy(testdata("e2e/copy"), ctx, fs::copy_options::recursive);
  fs::create_symlink("data/real.txt", ctx / "link");
  fs::create_symlink("data", ctx / "linkdir");
  fs::create_symlink("../../../etc/passwd", ctx / "up");  // leaves the context: resolved inside it
  fs::create_symlink("../a.txt", ctx / "data/inner");     // inside a copied directory: kept a link
  fs::create_directory(ctx / "data/empty");
  REQUIRE(::mkfifo((ctx / "data/fifo").c_str(), 0600) == 0);
  fs::create_hard_link(ctx / "data/real.txt", ctx / "data/hard");
  REQUIRE(::chmod((ctx / "data/real.txt").c_str(), 0640) == 0);
  REQUIRE(::chmod((ctx / "data/sub").c_str(), 0750) == 0);
  REQUIRE(::chown((ctx / "a.txt").c_str(), 1234, 1234) == 0);
  REQUIRE(::lchown((ctx / "data/inner").c_str(), 1234, 1234) == 0);
  time_t t = 1577934245;  // 2020-01-02 03:04:05 UTC
  for (const auto& e : fs::recursive_directory_iterator(ctx)) set_mtime(e.path(), t);
  return ctx;
}

}  // namespace

TEST_CASE("e2e: COPY from the context matches BuildKit: wildcards, symlinks, metadata, several sources") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  const fs::path ctx = make_context(root);
  const fs::path out = root.work() / "out";
  Result r = root.builder({"build", "--progress=plain", "--output", "type=local,dest=" + out.string(), ctx.string()});
  REQUIRE_MESSAGE(r.status == 0, r.describe());
  CHECK(listing(out) ==
        "data d 0755 0:0\n"
        "data/empty d 0755 0:0\n"
        "data/fifo p 0600 0:0 @1577934245\n"
        "data/hard f 0640 0:0 real @1577934245\n"
        "data/inner l 0777 0:0 -> ../a.txt @1577934245\n"
        "data/real.txt f 0640 0:0 link=data/hard @1577934245\n"
        "data/sub d 0750 0:0\n"
        "data/sub/deep.txt f 0644 0:0 deep @1577934245\n"
        "escaped f 0644 0:0 context passwd @1577934245\n"
        "ld d 0755 0:0\n"
        "ld/empty d 0755 0:0\n"
        "ld/fifo p 0600 0:0 @1577934245\n"
        "ld/hard f 0640 0:0 real @1577934245\n"
        "ld/inner l 0777 0:0 -> ../a.txt @1577934245\n"
        "ld/real.txt f 0640 0:0 link=ld/hard @1577934245\n"
        "ld/sub d 0750 0:0\n"
        "ld/sub/deep.txt f 0644 0:0 deep @1577934245\n"
        "link-file f 0640 0:0 real @1577934245\n"
        "multi f 0644 0:0 b @1577934245\n"
        "owned d 0640 1000:1001\n"
        "owned/deep d 0640 1000:1001\n"
        "owned/deep/a.txt f 0640 1000:1001 a @1577934245\n"
        "txt d 0755 0:0\n"
        "txt/.hidden.txt f 0644 0:0 hidden @1577934245\n"
        "txt/a.txt f 0644 0:0 a @1577934245\n"
        "w d 0755 0:0\n"
        "w/rel d 0755 0:0\n"
        "w/rel/a.txt f 0644 0:0 a @1577934245\n");
  CHECK_FALSE(fs::exists(out / "nothing"));  // a wildcard matching nothing copies nothing
  root.check_no_mounts();
}

TEST_CASE("e2e: a COPY of a symlink is rebuilt when the file it leads to changes") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  const fs::path ctx = make_context(root);
  int n = 0;
  auto build = [&] {
    fs::path out = root.work() / ("out" + std::to_string(n++));
    Result r = root.builder({"build", "--progress=plain", "--output", "type=local,dest=" + out.string(), ctx.string()});
    REQUIRE_MESSAGE(r.status == 0, r.describe());
    return std::make_pair(copy_steps(r.err), out);
  };
  auto steps = [](bool txt, bool link, bool linkdir, bool up, bool data, bool rest) {
    return std::map<std::string, bool>{{"COPY *.txt /txt/", txt},
                                       {"COPY link /link-file", link},
                                       {"COPY linkdir /ld/", linkdir},
                                       {"COPY up /escaped", up},
                                       {"COPY data /data", data},
                                       {"COPY --chown=1000:1001 --chmod=0640 a.txt /owned/deep/", rest},
                                       {"COPY a.txt b.md /multi", rest},
                                       {"COPY *.zip /nothing/", rest},
                                       {"COPY a.txt rel/", rest}};
  };
  build();
  // Unchanged: everything cached. mtimes and owners are not part of the key.
  set_mtime(ctx / "data/real.txt", 1000);
  REQUIRE(::chown((ctx / "data/real.txt").c_str(), 42, 42) == 0);
  CHECK(build().first == steps(true, true, true, true, true, true));
  // The target of `link` (also inside `linkdir` and `data`): those COPYs run again and
  // each step after a rebuilt one is rebuilt as its input changed.
  builder::e2e::write_file(ctx / "data/real.txt", "real, changed\n");
  auto [changed, out] = build();
  CHECK(changed == steps(true, false, false, false, false, false));
  CHECK(builder::e2e::slurp(out / "link-file") == "real, changed\n");
  CHECK(builder::e2e::slurp(out / "ld/real.txt") == "real, changed\n");
  // `up` leads to the context's etc/passwd, never the host's.
  CHECK(build().first == steps(true, true, true, true, true, true));
  builder::e2e::write_file(ctx / "etc/passwd", "context passwd, changed\n");
  auto [escaped, out2] = build();
  CHECK(escaped == steps(true, true, true, false, false, false));
  CHECK(builder::e2e::slurp(out2 / "escaped") == "context passwd, changed\n");
  root.check_no_mounts();
}

TEST_CASE("e2e: COPY of a directory onto a file fails as in BuildKit") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  const fs::path ctx = make_context(root);
  Result r = root.builder({"build", "--progress=plain", "-f", (ctx / "dir-over-file.Dockerfile").string(), "-o",
                           (root.work() / "out").string(), ctx.string()});
  CHECK_MESSAGE(r.status == 1, r.describe());
  CHECK_MESSAGE(r.err.find("ERROR: failed to solve: COPY failed: cannot copy to non-directory: /x\n") !=
                    std::string::npos,
                r.describe());
  root.check_no_mounts();
}
