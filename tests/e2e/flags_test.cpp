// tests/e2e/flags_test.cpp — end-to-end: the flag families of COPY, ADD and RUN as BuildKit
// gives them meaning: --chmod (symbolic and octal), --exclude, --parents (with and
// without a "/./" pivot), --link, heredoc documents, ADD of local archives (and
// --unpack=false), `#!` heredoc scripts, RUN --mount of type bind (context, stage, rw),
// tmpfs and cache, --network=none|host with its entitlement, and the error for a COPY
// of a file .dockerignore hides. Context: testdata/e2e/flags plus archives made here.
#include <sys/stat.h>

#include <algorithm>

#include "e2e_util.h"

using builder::e2e::Result;
using builder::e2e::testdata;
using builder::e2e::TestRoot;
namespace fs = std::filesystem;

namespace {

fs::path make_context(const TestRoot& root) {
  const fs::path ctx = root.work() / "ctx";
  fs::copy(testdata("e2e/flags"), ctx, fs::copy_options::recursive);
  // An archive with its own owners, and a plain one: ADD unpacks both.
  Result t = builder::e2e::run_process({"tar", "--owner=1234", "--group=99", "--numeric-owner", "-czf",
                                        "arch.tar.gz", "dir"},
                                       ctx.string());
  REQUIRE_MESSAGE(t.status == 0, t.describe());
  t = builder::e2e::run_process({"tar", "--owner=0", "--group=0", "--numeric-owner", "-cf", "plain.tar", "x"},
                                ctx.string());
  REQUIRE_MESSAGE(t.status == 0, t.describe());
  return ctx;
}

/// "path mode uid:gid [content]" for every entry below `dir`, sorted.
std::string listing(const fs::path& dir) {
  std::vector<std::string> lines;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    struct stat st;
    REQUIRE(::lstat(e.path().c_str(), &st) == 0);
    char head[48];
    std::snprintf(head, sizeof head, " %04o %u:%u", st.st_mode & 07777, st.st_uid, st.st_gid);
    std::string line = fs::relative(e.path(), dir).string() + head;
    if (S_ISREG(st.st_mode) && e.path().extension() != ".gz") {
      std::string c = builder::e2e::slurp(e.path());
      while (!c.empty() && c.back() == '\n') c.pop_back();
      line += " " + c;
    }
    lines.push_back(line);
  }
  std::sort(lines.begin(), lines.end());
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

}  // namespace

TEST_CASE("e2e: COPY/ADD flags, heredocs and RUN mounts build what BuildKit builds") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  const fs::path ctx = make_context(root);
  const fs::path out = root.work() / "out";
  Result r = root.builder({"build", "--progress=plain", "-o", "type=local,dest=" + out.string(), ctx.string()});
  REQUIRE_MESSAGE(r.status == 0, r.describe());
  // --link with --chown: the linked layer's own /out (made for the copy) carries the
  // owner over the stage's, as BuildKit's merged layer does.
  CHECK(listing(out / "out") ==
        "cache 0644 0:0 1\n"
        "cacheseed 0644 0:0 seeded\n"
        "ctxls 0644 0:0 . .. .dockerignore Dockerfile a.txt arch.tar.gz b.md dir plain.tar x \n"
        "doc.txt 0644 0:0 hello world\n"
        "docs 0755 0:0\n"
        "docs/EOF 0644 0:0 raw $WHO\n"
        "docs/EOT 0644 0:0 chomped\n"
        "ex 0755 0:0\n"
        "ex/c.txt 0644 0:0 c\n"
        "ex/sub 0755 0:0\n"
        "fromstage 0644 0:0 seeded\n"
        "lnk 0755 1000:1000\n"
        "lnk/a.txt 0644 1000:1000 a\n"
        "netnone 0644 0:0 lo\n"
        "nounp 0755 0:0\n"
        "nounp/arch.tar.gz 0644 0:0\n"
        "oct 0600 0:0\n"
        "oct/a.txt 0600 0:0 a\n"
        "par 0755 0:0\n"
        "par/dir 0755 0:0\n"
        "par/dir/sub 0755 0:0\n"
        "par/dir/sub/d.md 0644 0:0 d\n"
        "par/x 0755 0:0\n"
        "par/x/y 0755 0:0\n"
        "par/x/y/f.txt 0644 0:0 f\n"
        "piv 0755 0:0\n"
        "piv/y 0755 0:0\n"
        "piv/y/f.txt 0644 0:0 f\n"
        "rwbind 0644 0:0 /mnt/b/new\n"
        "script 0644 0:0 script at /dev/pipes/EOF\n"
        "sym 0755 0:0\n"
        "sym/a.txt 0750 0:0 a\n"
        "tmpfs 0644 0:0 1024\n"
        "unp 0755 0:0\n"
        "unp/dir 0755 1234:99\n"
        "unp/dir/c.txt 0644 1234:99 c\n"
        "unp/dir/sub 0755 1234:99\n"
        "unp/dir/sub/d.md 0644 1234:99 d\n"
        "unpplain 0755 0:0\n"
        "unpplain/x 0755 0:0\n"
        "unpplain/x/y 0755 0:0\n"
        "unpplain/x/y/f.txt 0644 0:0 f\n");
  CHECK(fs::exists(out / "out"));
  struct stat st;
  REQUIRE(::lstat((out / "out").c_str(), &st) == 0);
  CHECK(st.st_uid == 1000u);
  CHECK_FALSE(fs::exists(out / "mnt/b/new"));  // a rw bind's writes are thrown away
  CHECK(r.err.find("[stage-1  7/20] LINK COPY --link --chown=1000:1000 a.txt /out/lnk/") != std::string::npos);
  CHECK(r.err.find("RUN <<EOF (#!/bin/sh...)") != std::string::npos);

  // The cache mount outlives the build: a rebuild that runs the step again sees it.
  const fs::path again = root.work() / "again";
  r = root.builder({"build", "--no-cache", "--progress=plain", "-o", "type=local,dest=" + again.string(),
                    ctx.string()});
  REQUIRE_MESSAGE(r.status == 0, r.describe());
  CHECK(builder::e2e::slurp(again / "out/cache") == "2\n");
  root.check_no_mounts();
}

TEST_CASE("e2e: RUN --network=host needs --allow network.host; a COPY of an ignored file says so") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  const fs::path ctx = root.work() / "net";
  builder::e2e::write_file(ctx / "Dockerfile",
                           "FROM busybox\nRUN --network=host cat /proc/net/dev | tail -n +3 | wc -l > /n\n");
  Result r = root.builder({"build", "--progress=plain", ctx.string()});
  CHECK(r.status != 0);
  CHECK(r.err.find("Dockerfile:2:1") != std::string::npos);
  CHECK(r.err.find("needs the entitlement network.host") != std::string::npos);
  const fs::path out = root.work() / "netout";
  r = root.builder({"build", "--allow", "network.host", "--progress=plain", "-o", "type=local,dest=" + out.string(),
                    ctx.string()});
  REQUIRE_MESSAGE(r.status == 0, r.describe());
  // The host's interfaces: more than the loopback a sandboxed step gets.
  CHECK(std::stoi(builder::e2e::slurp(out / "n")) >= 2);
  r = root.builder({"build", "--allow", "net.everything", ctx.string()});
  CHECK(r.status != 0);
  CHECK(r.err.find("unknown entitlement") != std::string::npos);

  const fs::path ign = root.work() / "ign";
  builder::e2e::write_file(ign / "Dockerfile", "FROM busybox\nCOPY secret.txt /\n");
  builder::e2e::write_file(ign / "secret.txt", "s\n");
  builder::e2e::write_file(ign / ".dockerignore", "secret.txt\n");
  r = root.builder({"build", "--progress=plain", ign.string()});
  CHECK(r.status != 0);
  CHECK(r.err.find("\"secret.txt\" is excluded by .dockerignore") != std::string::npos);
  root.check_no_mounts();
}
