// tests/e2e/sources_test.cpp — end-to-end: ADD's remote and archive sources and named
// contexts. ADD of a URL (mode 0600, Last-Modified as mtime, never unpacked, --checksum
// verified and used as the key, an unchanged URL cached through its ETag, HTTP errors
// located), ADD of a git repository (#ref, #ref:subdir, --keep-git-dir, keyed by the
// commit), local archives in every compression and tars that try to escape, and
// --build-context with a directory, docker-image:// and oci-layout://.
// The HTTP side is testdata/e2e/sources/serve.py on 127.0.0.1 (git through `git
// http-backend`: BuildKit takes no file:// URL for a git source), started per test.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <chrono>
#include <thread>

#include "e2e_util.h"

using builder::e2e::Result;
using builder::e2e::run_process;
using builder::e2e::slurp;
using builder::e2e::testdata;
using builder::e2e::TestRoot;
using builder::e2e::write_file;
namespace fs = std::filesystem;

namespace {

/// serve.py over `root` (files/, git/), killed on destruction.
class Server {
 public:
  explicit Server(const fs::path& root) : root_(root) {
    fs::create_directories(root / "files");
    fs::create_directories(root / "git");
    fs::path portfile = root / "port";
    log_ = root / "requests.log";
    write_file(log_, "");
    pid_ = ::fork();
    if (pid_ == 0) {
      int null = ::open("/dev/null", O_RDWR);
      ::dup2(null, 0);
      ::dup2(null, 1);
      ::execlp("python3", "python3", testdata("e2e/sources/serve.py").c_str(), root.c_str(), portfile.c_str(),
               log_.c_str(), nullptr);
      ::_exit(127);
    }
    for (int i = 0; i < 100 && !fs::exists(portfile); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    REQUIRE_MESSAGE(fs::exists(portfile), "serve.py did not start");
    port_ = slurp(portfile);
  }
  ~Server() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + port_ + path; }
  std::string log() const { return slurp(log_); }
  const fs::path& root() const { return root_; }

 private:
  fs::path root_, log_;
  pid_t pid_ = -1;
  std::string port_;
};

void set_mtime(const fs::path& p, time_t t) {
  struct timespec ts[2] = {{t, 0}, {t, 0}};
  REQUIRE(::utimensat(AT_FDCWD, p.c_str(), ts, AT_SYMLINK_NOFOLLOW) == 0);
}

struct stat stat_of(const fs::path& p) {
  struct stat st {};
  REQUIRE_MESSAGE(::lstat(p.c_str(), &st) == 0, p);
  return st;
}

Result sh(const std::string& script, const fs::path& cwd) { return run_process({"sh", "-ec", script}, cwd.string()); }

/// Builds `dockerfile` in a fresh context dir `name` with --progress=plain and the
/// final tree exported to work()/name-out (removed first).
Result build(const TestRoot& t, const std::string& name, const std::string& dockerfile,
             std::vector<std::string> extra = {}) {
  fs::path ctx = t.work() / name;
  fs::create_directories(ctx);
  write_file(ctx / "Dockerfile", dockerfile);
  fs::path out = t.work() / (name + "-out");
  fs::remove_all(out);
  std::vector<std::string> args{"build", "--progress=plain", "-o", "type=local,dest=" + out.string()};
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back(ctx.string());
  return t.builder(args);
}

}  // namespace

TEST_CASE("sources: ADD of a URL: 0600, Last-Modified, not unpacked; an unchanged URL is cached by its ETag") {
  if (!builder::test::have_root()) return;
  TestRoot t;
  REQUIRE(t.import_busybox());
  Server srv(t.dir() / "srv");
  write_file(srv.root() / "files/hello.txt", "hello\n");
  set_mtime(srv.root() / "files/hello.txt", 1600000000);
  REQUIRE(sh("mkdir -p a && echo in > a/in.txt && tar czf files/a.tar.gz -C a in.txt", srv.root()).status == 0);
  const std::string df = "FROM busybox\n"
                         "ADD " + srv.url("/files/hello.txt") + " /d/\n"
                         "ADD " + srv.url("/files/a.tar.gz") + " /d/\n"
                         "ADD --chmod=644 " + srv.url("/redirect/hello.txt") + " /named\n"
                         "RUN cat /d/hello.txt > /copy\n";
  Result r = build(t, "url", df);
  REQUIRE_MESSAGE(r.status == 0, r.describe());
  fs::path out = t.work() / "url-out";
  CHECK(slurp(out / "d/hello.txt") == "hello\n");
  CHECK((stat_of(out / "d/hello.txt").st_mode & 07777) == 0600);
  CHECK(stat_of(out / "d/hello.txt").st_mtime == 1600000000);
  CHECK(S_ISREG(stat_of(out / "d/a.tar.gz").st_mode));  // a URL is never unpacked
  CHECK(!fs::exists(out / "d/in.txt"));
  CHECK(slurp(out / "named") == "hello\n");  // DEST without '/' names the file
  CHECK((stat_of(out / "named").st_mode & 07777) == 0644);
  CHECK(slurp(out / "copy") == "hello\n");

  // Unchanged: one conditional request per URL answered 304, every step cached.
  r = build(t, "url", df);
  REQUIRE_MESSAGE(r.status == 0, r.describe());
  auto states = builder::e2e::step_cache_states(r.err, "(ADD|RUN)");
  CHECK(states.size() == 4);
  for (const auto& [step, cached] : states) CHECK_MESSAGE(cached, step << "\n" << r.err);
  CHECK(builder::e2e::count(srv.log(), "GET /files/hello.txt 304") == 2);

  // Changed content: the ADD and what follows run again with the new bytes; the other
  // URL's source is still cached (its step is not: it builds on the changed one).
  write_file(srv.root() / "files/hello.txt", "changed\n");
  r = build(t, "url", df);
  REQUIRE_MESSAGE(r.status == 0, r.describe());
  states = builder::e2e::step_cache_states(r.err, "(ADD|RUN)");
  CHECK(!states["ADD " + srv.url("/files/hello.txt") + " /d/"]);
  CHECK(!states["RUN cat /d/hello.txt > /copy"]);
  auto fetches = builder::e2e::step_cache_states(r.err, "fetch");
  CHECK(fetches.size() == 3);
  CHECK(!fetches["fetch " + srv.url("/files/hello.txt")]);
  CHECK(fetches["fetch " + srv.url("/files/a.tar.gz")]);
  CHECK(slurp(out / "copy") == "changed\n");
  t.check_no_mounts();
}

TEST_CASE("sources: ADD --checksum verifies, keys the cache (no request when cached) and a mismatch is located") {
  if (!builder::test::have_root()) return;
  TestRoot t;
  REQUIRE(t.import_busybox());
  Server srv(t.dir() / "srv");
  write_file(srv.root() / "files/data.bin", "payload\n");
  Result sum = run_process({"sha256sum", (srv.root() / "files/data.bin").string()});
  REQUIRE(sum.status == 0);
  const std::string good = "sha256:" + sum.out.substr(0, 64);
  const std::string df = "FROM busybox\nADD --checksum=" + good + " " + srv.url("/files/data.bin") + " /data\n";
  Result r = build(t, "sum", df);
  REQUIRE_MESSAGE(r.status == 0, r.describe());
  CHECK(slurp(t.work() / "sum-out/data") == "payload\n");
  CHECK(builder::e2e::count(srv.log(), "GET /files/data.bin") == 1);
  r = build(t, "sum", df);
  REQUIRE_MESSAGE(r.status == 0, r.describe());
  CHECK(builder::e2e::count(srv.log(), "GET /files/data.bin") == 1);  // cached: not fetched again

  const std::string bad = "sha256:" + std::string(64, '0');
  r = build(t, "badsum", "FROM busybox\nADD --checksum=" + bad + " " + srv.url("/files/data.bin") + " /data\n");
  CHECK(r.status == 1);
  CHECK_MESSAGE(r.err.find("Dockerfile:2\n") != std::string::npos, r.err);
  CHECK_MESSAGE(r.err.find("ERROR: failed to solve: digest mismatch for " + srv.url("/files/data.bin") + ": " + good +
                           " (expected: " + bad + ")") != std::string::npos,
                r.err);

  r = build(t, "badfmt", "FROM busybox\nADD --checksum=md5:abc " + srv.url("/files/data.bin") + " /data\n");
  CHECK(r.status == 1);
  CHECK_MESSAGE(r.err.find("invalid checksum digest format") != std::string::npos, r.err);
  r = build(t, "sumlocal", "FROM busybox\nADD --checksum=" + good + " Dockerfile /data\n");
  CHECK(r.status == 1);
  CHECK_MESSAGE(r.err.find("checksum requires HTTP(S) or Git sources") != std::string::npos, r.err);
}

TEST_CASE("sources: ADD of a URL: HTTP errors, redirect loops and dead hosts are located errors naming the URL") {
  if (!builder::test::have_root()) return;
  TestRoot t;
  REQUIRE(t.import_busybox());
  Server srv(t.dir() / "srv");
  struct Case {
    std::string path, expect;
  };
  for (const auto& c : std::vector<Case>{
           {"/files/missing", "failed to fetch " + srv.url("/files/missing") + ": invalid response status 404 Not Found"},
           {"/loop", "failed to fetch " + srv.url("/loop") + ": stopped after 10 redirects"}}) {
    Result r = build(t, "err", "FROM busybox\nADD " + srv.url(c.path) + " /x\n");
    CHECK(r.status == 1);
    CHECK_MESSAGE(r.err.find("Dockerfile:2\n") != std::string::npos, r.err);
    CHECK_MESSAGE(r.err.find("ERROR: failed to solve: " + c.expect) != std::string::npos, r.err);
  }
  Result r = build(t, "err", "FROM busybox\nADD http://127.0.0.1:1/x /x\n");
  CHECK(r.status == 1);
  CHECK_MESSAGE(r.err.find("failed to fetch http://127.0.0.1:1/x: ") != std::string::npos, r.err);
  r = build(t, "copyurl", "FROM busybox\nCOPY " + srv.url("/files/x") + " /x\n");
  CHECK(r.status == 1);
  CHECK_MESSAGE(r.err.find("source can't be a URL for COPY") != std::string::npos, r.err);
}

TEST_CASE("sources: ADD of a git repository: #ref, #ref:subdir, --keep-git-dir, cached by commit") {
  if (!builder::test::have_root()) return;
  if (!builder::e2e::require_tool("git")) return;
  TestRoot t;
  REQUIRE(t.import_busybox());
  Server srv(t.dir() / "srv");
  const fs::path w = t.dir() / "w";
  fs::create_directories(w);
  const std::string git = "git -c user.email=t@t -c user.name=t ";
  Result g = sh("git init -q -b main . && echo one > a.txt && mkdir sub && echo bee > sub/b.txt && git add . && " +
                    git + "commit -qm one && git tag v1 && echo two > a.txt && " + git +
                    "commit -qam two && git clone -q --bare . " + (srv.root() / "git/repo.git").string(),
                w);
  REQUIRE_MESSAGE(g.status == 0, g.describe());
  const std::string repo = srv.url("/git/repo.git");
  const std::string df = "FROM busybox\n"
                         "ADD " + repo + "#v1 /src\n"
                         "ADD --keep-git-dir=true " + repo + "#main /withgit\n"
                         "ADD " + repo + "#v1:sub /sub\n"
                         "ADD " + repo + " /head\n";
  Result r = build(t, "git", df);
  REQUIRE_MESSAGE(r.status == 0, r.describe());
  fs::path out = t.work() / "git-out";
  CHECK(slurp(out / "src/a.txt") == "one\n");
  CHECK(slurp(out / "src/sub/b.txt") == "bee\n");
  CHECK(!fs::exists(out / "src/.git"));
  CHECK(slurp(out / "withgit/a.txt") == "two\n");
  CHECK(fs::is_directory(out / "withgit/.git"));
  CHECK(slurp(out / "sub/b.txt") == "bee\n");
  CHECK(!fs::exists(out / "sub/a.txt"));
  CHECK(slurp(out / "head/a.txt") == "two\n");

  r = build(t, "git", df);
  REQUIRE_MESSAGE(r.status == 0, r.describe());
  for (const auto& [step, cached] : builder::e2e::step_cache_states(r.err, "ADD")) CHECK_MESSAGE(cached, step);

  // A new commit on main: only the steps that follow main run again.
  g = sh(git + "commit -q --allow-empty -m three && echo three > a.txt && " + git + "commit -qam three && git push -q " +
             (srv.root() / "git/repo.git").string() + " main",
         w);
  REQUIRE_MESSAGE(g.status == 0, g.describe());
  r = build(t, "git", df);
  REQUIRE_MESSAGE(r.status == 0, r.describe());
  // The sources of v1 are cached (the steps after /withgit are not: they build on it).
  auto states = builder::e2e::step_cache_states(r.err, "ADD");
  CHECK(states["ADD " + repo + "#v1 /src"]);
  CHECK(!states["ADD --keep-git-dir=true " + repo + "#main /withgit"]);
  auto fetches = builder::e2e::step_cache_states(r.err, "git");
  CHECK(fetches.size() == 4);
  CHECK(fetches["git " + repo + "#v1"]);
  CHECK(fetches["git " + repo + "#v1:sub"]);
  CHECK(!fetches["git " + repo + "#main"]);
  CHECK(!fetches["git " + repo]);
  CHECK(slurp(out / "withgit/a.txt") == "three\n");

  r = build(t, "gitbad", "FROM busybox\nADD " + repo + "#nosuchref /x\n");
  CHECK(r.status == 1);
  CHECK_MESSAGE(r.err.find("Dockerfile:2\n") != std::string::npos, r.err);
  CHECK_MESSAGE(r.err.find("repository does not contain ref nosuchref") != std::string::npos, r.err);
  r = build(t, "gitsum", "FROM busybox\nADD --checksum=0000000 " + repo + "#v1 /x\n");
  CHECK(r.status == 1);
  CHECK_MESSAGE(r.err.find("expected checksum to match 0000000") != std::string::npos, r.err);
  r = build(t, "gitsub", "FROM busybox\nADD " + repo + "#v1:nodir /x\n");
  CHECK(r.status == 1);
  CHECK_MESSAGE(r.err.find("subdirectory nodir does not exist") != std::string::npos, r.err);
  t.check_no_mounts();
}

TEST_CASE("sources: ADD unpacks local tar archives in gzip, bzip2, xz and zstd") {
  if (!builder::test::have_root()) return;
  TestRoot t;
  REQUIRE(t.import_busybox());
  fs::path ctx = t.work() / "arch";
  fs::create_directories(ctx / "tree/dir");
  write_file(ctx / "tree/dir/f.txt", "content\n");
  ::symlink("dir/f.txt", (ctx / "tree/link").c_str());
  std::string df = "FROM busybox\n";
  for (const char* flag : {"z", "j", "J", "-zstd"}) {
    std::string ext = std::string(flag) == "z" ? "gz" : std::string(flag) == "j" ? "bz2" : std::string(flag) == "J" ? "xz" : "zst";
    std::string f = std::string(flag).size() == 1 ? std::string("-") + flag : "-" + std::string(flag);
    Result r = sh("tar -c " + f + " -f a." + ext + " -C tree dir link", ctx);
    REQUIRE_MESSAGE(r.status == 0, r.describe());
    df += "ADD a." + ext + " /" + ext + "/\n";
  }
  fs::remove_all(ctx / "tree");
  Result r = build(t, "arch", df);
  REQUIRE_MESSAGE(r.status == 0, r.describe());
  for (const char* ext : {"gz", "bz2", "xz", "zst"}) {
    fs::path out = t.work() / "arch-out" / ext;
    CHECK_MESSAGE(slurp(out / "dir/f.txt") == "content\n", ext);
    CHECK_MESSAGE(fs::read_symlink(out / "link") == "dir/f.txt", ext);
  }
}

TEST_CASE("sources: ADD refuses archives that try to write outside the destination, and writes nothing there") {
  if (!builder::test::have_root()) return;
  TestRoot t;
  REQUIRE(t.import_busybox());
  fs::path ctx = t.work() / "evil";
  fs::create_directories(ctx);
  const fs::path outside = t.dir() / "outside";
  fs::create_directories(outside);
  // Each archive is made with Python's tarfile, which writes what it is told.
  const std::string py = R"(
import io, sys, tarfile
kind, out, outside = sys.argv[1], sys.argv[2], sys.argv[3]
with tarfile.open(out, "w:gz") as t:
    def add(name, data=b"x", **kw):
        i = tarfile.TarInfo(name)
        for k, v in kw.items(): setattr(i, k, v)
        if i.type == tarfile.REGTYPE: i.size = len(data); t.addfile(i, io.BytesIO(data))
        else: t.addfile(i)
    add("ok.txt")
    if kind == "dotdot": add("../../../escaped.txt")
    if kind == "symlink":
        add("link", type=tarfile.SYMTYPE, linkname=outside)
        add("link/escaped.txt")
    if kind == "hardlink": add("hl", type=tarfile.LNKTYPE, linkname="../../../../etc/passwd")
    if kind == "abs": add(outside + "/escaped.txt")
)";
  write_file(ctx / "make.py", py);
  struct Case {
    std::string kind, expect;
  };
  for (const auto& c : std::vector<Case>{{"dotdot", "path escapes the destination"},
                                         {"symlink", "` does not exist"},
                                         {"hardlink", "path escapes the destination"},
                                         {"abs", "absolute path"}}) {
    CAPTURE(c.kind);
    Result r = run_process({"python3", (ctx / "make.py").string(), c.kind, (ctx / "a.tar.gz").string(), outside.string()});
    REQUIRE_MESSAGE(r.status == 0, r.describe());
    r = build(t, "evil", "FROM busybox\nADD a.tar.gz /x/\n");
    CHECK(r.status == 1);
    CHECK_MESSAGE(r.err.find("ADD failed: refusing tar entry") != std::string::npos, r.err);
    CHECK_MESSAGE(r.err.find(c.expect) != std::string::npos, r.err);
    CHECK_MESSAGE(r.err.find("Dockerfile:2\n") != std::string::npos, r.err);
    CHECK(fs::is_empty(outside));
    CHECK(!fs::exists(t.work() / "escaped.txt"));
    CHECK(!fs::exists(t.dir() / "escaped.txt"));
  }
  // An absolute symlink that nothing is written through is an ordinary entry (Docker).
  Result r = run_process({"python3", "-c",
                          "import io,tarfile\nt=tarfile.open('" + (ctx / "a.tar.gz").string() +
                              "','w:gz')\ni=tarfile.TarInfo('abs')\ni.type=tarfile.SYMTYPE\ni.linkname='/etc/passwd'\n"
                              "t.addfile(i)\nt.close()"});
  REQUIRE(r.status == 0);
  r = build(t, "evil", "FROM busybox\nADD a.tar.gz /x/\n");
  REQUIRE_MESSAGE(r.status == 0, r.describe());
  CHECK(fs::read_symlink(t.work() / "evil-out/x/abs") == "/etc/passwd");
  t.check_no_mounts();
}

TEST_CASE("sources: --build-context NAME=DIR is a second local context for COPY --from, RUN --mount and FROM") {
  if (!builder::test::have_root()) return;
  TestRoot t;
  REQUIRE(t.import_busybox());
  fs::path extra = t.dir() / "extra";
  write_file(extra / "x.txt", "extra\n");
  write_file(extra / "ignored.txt", "no\n");
  write_file(extra / ".dockerignore", "ignored.txt\n");
  const std::string ctxflag = "--build-context";
  Result r = build(t, "named",
                   "FROM busybox AS base\nRUN echo stage > /which\n"
                   "FROM busybox\n"
                   "COPY --from=extra x.txt /copied.txt\n"
                   "RUN --mount=from=extra,target=/m cat /m/x.txt > /mounted.txt; ls /m > /listing\n"
                   "COPY --from=base / /base/\n",
                   {ctxflag, "extra=" + extra.string(), ctxflag, "base=" + extra.string()});
  REQUIRE_MESSAGE(r.status == 0, r.describe());
  fs::path out = t.work() / "named-out";
  CHECK(slurp(out / "copied.txt") == "extra\n");
  CHECK(slurp(out / "mounted.txt") == "extra\n");
  CHECK(slurp(out / "listing") == "x.txt\n");  // its own .dockerignore applies
  // The context replaces the stage of the same name: its RUN never ran.
  CHECK(slurp(out / "base/x.txt") == "extra\n");
  CHECK(!fs::exists(out / "base/which"));

  r = build(t, "fromdir", "FROM extra\n", {ctxflag, "extra=" + extra.string()});
  REQUIRE_MESSAGE(r.status == 0, r.describe());
  CHECK(slurp(t.work() / "fromdir-out/x.txt") == "extra\n");

  r = build(t, "bad", "FROM busybox\n", {ctxflag, "x=ftp://host/y"});
  CHECK(r.status == 1);
  CHECK_MESSAGE(r.err.find("--build-context x=ftp://host/y: unsupported context source \"ftp://\"") != std::string::npos,
                r.err);
  r = build(t, "bad", "FROM busybox\n", {ctxflag, "x=" + (t.dir() / "nope").string()});
  CHECK(r.status == 1);
  CHECK_MESSAGE(r.err.find("is not a directory") != std::string::npos, r.err);
}

TEST_CASE("sources: --build-context with docker-image:// and oci-layout:// stands for the image of its name") {
  if (!builder::test::have_root()) return;
  TestRoot t;
  REQUIRE(t.import_busybox());
  Result r = t.builder({"tag", "busybox:latest", "mybox:1"});
  REQUIRE_MESSAGE(r.status == 0, r.describe());
  const std::string ctxflag = "--build-context";
  // `alpine` is in no store: the context makes FROM and COPY --from use mybox:1.
  const std::string df = "FROM alpine AS built\nRUN echo ran > /ran\n"
                         "FROM busybox\nCOPY --from=built /ran /ran\nCOPY --from=alpine:latest /bin/busybox /bb\n";
  r = build(t, "img", df, {ctxflag, "alpine=docker-image://mybox:1"});
  REQUIRE_MESSAGE(r.status == 0, r.describe());
  CHECK(slurp(t.work() / "img-out/ran") == "ran\n");
  CHECK(fs::is_regular_file(t.work() / "img-out/bb"));
  r = build(t, "img", df);
  CHECK(r.status != 0);  // without it, alpine is unknown

  // An OCI layout directory: a saved image, unpacked.
  fs::path layout = t.dir() / "layout";
  fs::create_directories(layout);
  r = t.builder({"save", "--format", "oci", "-o", (t.dir() / "box.tar").string(), "mybox:1"});
  REQUIRE_MESSAGE(r.status == 0, r.describe());
  REQUIRE(run_process({"tar", "-xf", (t.dir() / "box.tar").string(), "-C", layout.string()}).status == 0);
  r = t.builder({"rmi", "mybox:1"});
  REQUIRE_MESSAGE(r.status == 0, r.describe());
  r = build(t, "oci", "FROM base\nRUN busybox echo from-layout > /o\n", {ctxflag, "base=oci-layout://" + layout.string()});
  REQUIRE_MESSAGE(r.status == 0, r.describe());
  CHECK(slurp(t.work() / "oci-out/o") == "from-layout\n");
  r = build(t, "oci", "FROM base\n", {ctxflag, "base=oci-layout://" + layout.string() + ":nosuchtag"});
  CHECK(r.status == 1);
  CHECK_MESSAGE(r.err.find("no image tagged \"nosuchtag\"") != std::string::npos, r.err);
}
