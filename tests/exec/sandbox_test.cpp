// tests/exec/sandbox_test.cpp — exec::run end to end: namespaces, overlay root,
// whiteouts, users, PATH search, errors and cleanup. Needs root (label `sandbox`).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "base/error.h"
#include "base/fs.h"
#include "base/temp_dir.h"
#include "exec/sandbox.h"
#include "test_util.h"

namespace fs = std::filesystem;
using builder::exec::RunSpec;
using builder::exec::RunResult;

namespace {

const char* kApplets[] = {"sh", "echo", "cat", "ls", "id", "hostname", "sleep", "rm", "touch",
                          "pwd", "mkdir", "env", "test", "ip", "stat"};

/// A small root file system: busybox plus applet links, in <tmp>/lower; an empty
/// upper/work pair and a private scratch dir.
struct Rootfs {
  builder::base::TempDir tmp{"/tmp", "exec-test-"};
  std::string lower = tmp.path() + "/lower";
  std::string upper = tmp.path() + "/upper";
  std::string work = tmp.path() + "/work";
  std::string scratch = tmp.path() + "/scratch";

  explicit Rootfs(bool with_mount_points = true) {
    REQUIRE(fs::exists("/bin/busybox"));  // apt-get install -y busybox-static
    fs::create_directories(lower + "/bin");
    fs::copy_file("/bin/busybox", lower + "/bin/busybox");
    for (const char* a : kApplets) fs::create_symlink("busybox", lower + "/bin/" + a);
    if (with_mount_points)
      for (const char* d : {"/proc", "/dev", "/sys"}) fs::create_directories(lower + d);
    fs::create_directories(lower + "/etc");
    fs::create_directories(upper);
    fs::create_directories(work);
    fs::create_directories(scratch);
  }

  RunSpec spec(std::vector<std::string> args, bool writable = true) const {
    RunSpec s;
    s.lower_dirs = {lower};
    if (writable) {
      s.upper_dir = upper;
      s.work_dir = work;
    }
    s.scratch_dir = scratch;
    s.args = std::move(args);
    return s;
  }
};

struct Output {
  RunResult result;
  std::string out;
};

Output run_capture(RunSpec spec) {
  Output o;
  spec.on_output = [&](std::string_view chunk) { o.out.append(chunk); };
  o.result = builder::exec::run(spec);
  return o;
}

Output sh(const Rootfs& r, const std::string& script, bool writable = true) {
  return run_capture(r.spec({"sh", "-c", script}, writable));
}

void write(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << text;
}

bool host_mounts_mention(const std::string& needle) {
  std::string mounts = builder::base::read_file("/proc/self/mounts");
  return mounts.find(needle) != std::string::npos;
}

bool dir_empty(const std::string& dir) { return fs::is_empty(dir); }

/// Children of this process (all threads), from /proc/self/task/*/children.
size_t child_count() {
  size_t n = 0;
  for (const auto& task : fs::directory_iterator("/proc/self/task")) {
    std::string kids = builder::base::read_file(task.path().string() + "/children");
    for (char c : kids) n += c == ' ';
  }
  return n;
}

}  // namespace

TEST_CASE("sandbox: the process is PID 1 of its namespace") {
  if (!builder::test::have_root()) return;
  Rootfs r;
  auto o = sh(r, "echo $$");
  CHECK(o.result.exit_code == 0);
  CHECK(o.out == "1\n");
}

TEST_CASE("sandbox: exit codes and signals propagate") {
  if (!builder::test::have_root()) return;
  Rootfs r;
  auto o = sh(r, "exit 3");
  CHECK(o.result.exit_code == 3);
  CHECK(o.result.signal == 0);

  // PID 1 ignores SIGKILL from inside its namespace, so kill it from the host.
  auto spec = r.spec({"sleep", "30"});
  int started = 0;
  spec.on_start = [&](int pid) {
    started = pid;
    ::kill(pid, SIGKILL);
  };
  auto res = builder::exec::run(spec);
  CHECK(started > 1);
  CHECK(res.signal == SIGKILL);
  CHECK(res.exit_code == 128 + 9);
}

TEST_CASE("sandbox: hostname and stdout/stderr are captured together") {
  if (!builder::test::have_root()) return;
  Rootfs r;
  auto spec = r.spec({"sh", "-c", "hostname; echo err >&2"});
  spec.hostname = "step-42";
  auto o = run_capture(spec);
  CHECK(o.result.exit_code == 0);
  CHECK(o.out == "step-42\nerr\n");
}

TEST_CASE("sandbox: writes land in upper_dir and deletions become whiteouts") {
  if (!builder::test::have_root()) return;
  Rootfs r;
  write(r.lower + "/data/a", "from lower\n");
  write(r.lower + "/data/b", "keep\n");
  auto o = sh(r, "cat /data/a && echo new > /data/new && rm /data/a && ls /data");
  CHECK(o.result.exit_code == 0);
  CHECK(o.out == "from lower\nb\nnew\n");
  CHECK(builder::base::read_file(r.upper + "/data/new") == "new\n");
  struct stat st;
  REQUIRE(::lstat((r.upper + "/data/a").c_str(), &st) == 0);
  CHECK(S_ISCHR(st.st_mode));
  CHECK(st.st_rdev == makedev(0, 0));
  CHECK(builder::base::read_file(r.lower + "/data/a") == "from lower\n");  // lower untouched
  CHECK(!fs::exists(r.upper + "/data/b"));
}

TEST_CASE("sandbox: a writable root is mounted with redirect_dir=off,metacopy=off,index=off") {
  if (!builder::test::have_root()) return;
  Rootfs r;
  auto spec = r.spec({"true"});
  spec.lower_dirs = {r.tmp.path() + "/missing"};  // fails the mount, which reports its options
  try {
    builder::exec::run(spec);
    FAIL("expected an error");
  } catch (const builder::base::SysError& e) {
    // On kernels from 4.19 on; older ones get only the options they know.
    CHECK(e.context() ==
          std::vector<std::string>{"overlay options: lowerdir=" + r.tmp.path() + "/missing,upperdir=" + r.upper +
                                   ",workdir=" + r.work + ",redirect_dir=off,metacopy=off,index=off"});
  }
  spec = r.spec({"true"}, /*writable=*/false);
  spec.lower_dirs = {r.tmp.path() + "/missing"};
  try {
    builder::exec::run(spec);
    FAIL("expected an error");
  } catch (const builder::base::SysError& e) {
    CHECK(e.context().back().find("redirect_dir") == std::string::npos);  // read-only: nothing to record
  }
}

TEST_CASE("sandbox: renaming a lower directory copies it into upper_dir, never a redirect xattr") {
  if (!builder::test::have_root()) return;
  Rootfs r;
  write(r.lower + "/data/dir/deep/f", "f\n");
  auto o = sh(r, "mv /data/dir /data/moved && cat /data/moved/deep/f");
  CHECK(o.result.exit_code == 0);
  CHECK(o.out == "f\n");
  CHECK(builder::base::read_file(r.upper + "/data/moved/deep/f") == "f\n");
  struct stat st;
  REQUIRE(::lstat((r.upper + "/data/dir").c_str(), &st) == 0);
  CHECK((S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)));
  for (const char* p : {"/data/moved", "/data/moved/deep", "/data"})
    CHECK(::lgetxattr((r.upper + p).c_str(), "trusted.overlay.redirect", nullptr, 0) < 0);
}

TEST_CASE("sandbox: a root without upper_dir is read-only") {
  if (!builder::test::have_root()) return;
  Rootfs r;
  auto o = sh(r, "touch /x", /*writable=*/false);
  CHECK(o.result.exit_code != 0);
  CHECK(o.out.find("Read-only file system") != std::string::npos);
  CHECK(!fs::exists(r.lower + "/x"));
}

TEST_CASE("sandbox: several lower layers, top-most first") {
  if (!builder::test::have_root()) return;
  Rootfs r;
  std::string top = r.tmp.path() + "/top";
  write(top + "/f", "top\n");
  write(r.lower + "/f", "bottom\n");
  write(r.lower + "/g", "g\n");
  // Relative lower dirs resolve against layers_base.
  auto spec = r.spec({"cat", "/f", "/g"}, /*writable=*/false);
  spec.layers_base = r.tmp.path();
  spec.lower_dirs = {"top", "lower"};
  auto o = run_capture(spec);
  CHECK(o.result.exit_code == 0);
  CHECK(o.out == "top\ng\n");
}

TEST_CASE("sandbox: cwd is created when missing") {
  if (!builder::test::have_root()) return;
  Rootfs r;
  auto spec = r.spec({"pwd"});
  spec.cwd = "/work/sub";
  auto o = run_capture(spec);
  CHECK(o.result.exit_code == 0);
  CHECK(o.out == "/work/sub\n");
  CHECK(fs::is_directory(r.upper + "/work/sub"));
  CHECK((fs::status(r.upper + "/work/sub").permissions() & fs::perms::all) ==
        static_cast<fs::perms>(0755));
}

TEST_CASE("sandbox: env is passed and PATH is searched") {
  if (!builder::test::have_root()) return;
  Rootfs r;
  auto spec = r.spec({"sh", "-c", "echo $FOO; echo $PATH; echo $HOME"});
  spec.env = {"FOO=bar baz"};
  auto o = run_capture(spec);
  CHECK(o.result.exit_code == 0);
  CHECK(o.out == "bar baz\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n/\n");

  // A custom PATH: missing directories are skipped.
  auto spec2 = r.spec({"echo", "found"});
  spec2.env = {"PATH=/nope:/also/nope:/bin"};
  auto o2 = run_capture(spec2);
  CHECK(o2.result.exit_code == 0);
  CHECK(o2.out == "found\n");

  // Only the given environment is visible.
  auto spec3 = r.spec({"env"});
  spec3.env = {"A=1"};
  auto o3 = run_capture(spec3);
  CHECK(o3.out == "A=1\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nHOME=/\n");
}

TEST_CASE("sandbox: USER by name and by uid:gid from the image's passwd file") {
  if (!builder::test::have_root()) return;
  Rootfs r;
  write(r.lower + "/etc/passwd",
        "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1001:Alice:/home/alice:/bin/sh\n");
  write(r.lower + "/etc/group", "root:x:0:\nstaff:x:50:alice,bob\nalice:x:1001:\nwheel:x:10:root\n");

  auto spec = r.spec({"sh", "-c", "id -u; id -g; id -G; echo $HOME"});
  spec.user = "alice";
  auto o = run_capture(spec);
  CHECK(o.result.exit_code == 0);
  CHECK(o.out == "1000\n1001\n1001 50\n/home/alice\n");

  spec.user = "1234:5678";
  o = run_capture(spec);
  CHECK(o.result.exit_code == 0);
  CHECK(o.out == "1234\n5678\n5678\n/\n");

  spec.user = "alice:staff";
  o = run_capture(spec);
  CHECK(o.out == "1000\n50\n50\n/home/alice\n");

  spec.user = "";
  o = run_capture(spec);
  CHECK(o.out == "0\n0\n0 10\n/root\n");
}

TEST_CASE("sandbox: resolve_user honours upper dir and whiteouts") {
  if (!builder::test::have_root()) return;
  Rootfs r;
  write(r.lower + "/etc/passwd", "alice:x:1000:1000::/home/alice:/bin/sh\n");
  auto spec = r.spec({"true"});
  spec.user = "alice";
  CHECK(builder::exec::resolve_user(spec).uid == 1000);

  // A newer passwd in the upper dir wins.
  write(r.upper + "/etc/passwd", "alice:x:2000:2000::/a:/bin/sh\n");
  auto c = builder::exec::resolve_user(spec);
  CHECK(c.uid == 2000);
  CHECK(c.gid == 2000);
  CHECK(c.home == "/a");

  // A whiteout hides the lower file: alice is unknown, numeric users still work.
  fs::remove(r.upper + "/etc/passwd");
  REQUIRE(::mknod((r.upper + "/etc/passwd").c_str(), S_IFCHR | 0, makedev(0, 0)) == 0);
  try {
    builder::exec::resolve_user(spec);
    FAIL("expected an error");
  } catch (const builder::base::Error& e) {
    CHECK(std::string(e.what()) == "unable to find user alice: no matching entries in passwd file");
  }
  spec.user = "42";
  CHECK(builder::exec::resolve_user(spec).uid == 42);
  CHECK(builder::exec::resolve_user(spec).gid == 0);
}

TEST_CASE("sandbox: resolve_user reads only a regular passwd file, never blocks on a FIFO") {
  if (!builder::test::have_root()) return;
  Rootfs r;
  std::string fifo = r.upper + "/etc/passwd";
  fs::create_directories(r.upper + "/etc");
  REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
  auto spec = r.spec({"true"});
  spec.user = "42";
  auto pending = std::async(std::launch::async, [&] { return builder::exec::resolve_user(spec); });
  bool done = pending.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  if (!done) {
    // Unblock the reader stuck in open(), so the test can end.
    int w = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (w >= 0) ::close(w);
  }
  CHECK(done);
  auto c = pending.get();
  CHECK(c.uid == 42);
  CHECK(c.gid == 0);
}

TEST_CASE("sandbox: an unknown user is an error and nothing is left behind") {
  if (!builder::test::have_root()) return;
  Rootfs r;
  auto spec = r.spec({"id"});
  spec.user = "nobody-here";
  try {
    builder::exec::run(spec);
    FAIL("expected an error");
  } catch (const builder::base::Error& e) {
    CHECK(std::string(e.what()) == "unable to find user nobody-here: no matching entries in passwd file");
  }
  spec.user = "0:nogroup";
  try {
    builder::exec::run(spec);
    FAIL("expected an error");
  } catch (const builder::base::Error& e) {
    CHECK(std::string(e.what()) == "unable to find group nogroup: no matching entries in group file");
  }
  CHECK(dir_empty(r.scratch));
}

TEST_CASE("sandbox: the network namespace has only lo, and it is up") {
  if (!builder::test::have_root()) return;
  Rootfs r;
  auto o = sh(r, "cat /proc/net/dev; cat /sys/class/net/lo/flags");
  CHECK(o.result.exit_code == 0);
  std::vector<std::string> ifaces;
  std::string flags;
  size_t line_no = 0;
  size_t pos = 0;
  while (pos < o.out.size()) {
    size_t nl = o.out.find('\n', pos);
    std::string line = o.out.substr(pos, nl - pos);
    pos = nl == std::string::npos ? o.out.size() : nl + 1;
    ++line_no;
    if (line.rfind("0x", 0) == 0) {
      flags = line;
      continue;
    }
    if (line_no <= 2) continue;  // /proc/net/dev headers
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    name.erase(0, name.find_first_not_of(' '));
    ifaces.push_back(name);
  }
  CHECK(ifaces == std::vector<std::string>{"lo"});
  REQUIRE(!flags.empty());
  CHECK((std::stoul(flags, nullptr, 16) & 0x1) == 0x1);  // IFF_UP

  // host_network: the host's interfaces are visible.
  auto spec = r.spec({"cat", "/proc/net/dev"});
  spec.network = builder::exec::Network::Host;
  auto h = run_capture(spec);
  CHECK(h.result.exit_code == 0);
  CHECK(h.out == builder::base::read_file("/proc/net/dev"));
}

TEST_CASE("sandbox: /proc and /dev are fresh and minimal") {
  if (!builder::test::have_root()) return;
  Rootfs r;
  auto o = sh(r, "ls /proc | grep -c '^[0-9]*$'; ls /dev; echo x > /dev/null && cat /dev/null; "
                 "test -c /dev/urandom && echo urandom");
  CHECK(o.result.exit_code == 0);
  CHECK(o.out.find("fd\nfull\nmqueue\nnull\nptmx\npts\nrandom\nshm\nstderr\nstdin\nstdout\ntty\nurandom\nzero\n") !=
        std::string::npos);
  CHECK(o.out.find("urandom\n") != std::string::npos);
}

TEST_CASE("sandbox: bind mounts, read-only and writable") {
  if (!builder::test::have_root()) return;
  Rootfs r;
  std::string host = r.tmp.path() + "/host";
  write(host + "/in", "hello\n");
  std::string rw = r.tmp.path() + "/rw";
  fs::create_directories(rw);
  auto spec = r.spec({"sh", "-c", "cat /mnt/ro/in; touch /mnt/ro/x || echo ro-refused; echo out > /mnt/rw/out"});
  builder::exec::BindMount ro_mount, rw_mount;
  ro_mount.source = host;
  ro_mount.target = "/mnt/ro";
  rw_mount.source = rw;
  rw_mount.target = "/mnt/rw";
  rw_mount.readonly = false;
  spec.mounts = {ro_mount, rw_mount};
  auto o = run_capture(spec);
  CHECK(o.result.exit_code == 0);
  CHECK(o.out.find("hello\n") == 0);
  CHECK(o.out.find("ro-refused") != std::string::npos);
  CHECK(builder::base::read_file(rw + "/out") == "out\n");
  CHECK(!fs::exists(host + "/x"));
  // The created mount-point stubs do not end up in the layer.
  CHECK(!fs::exists(r.upper + "/mnt"));
  CHECK(!host_mounts_mention(r.tmp.path()));
}

TEST_CASE("sandbox: mount points missing from the image are created, then removed from upper") {
  if (!builder::test::have_root()) return;
  Rootfs r(/*with_mount_points=*/false);
  auto o = sh(r, "echo $$; ls /dev/null; mkdir /made");
  CHECK(o.result.exit_code == 0);
  CHECK(o.out == "1\n/dev/null\n");
  CHECK(fs::is_directory(r.upper + "/made"));
  CHECK(!fs::exists(r.upper + "/proc"));
  CHECK(!fs::exists(r.upper + "/dev"));
  CHECK(!fs::exists(r.upper + "/sys"));
}

TEST_CASE("sandbox: nothing remains on the host after a run") {
  if (!builder::test::have_root()) return;
  Rootfs r;
  auto o = sh(r, "sleep 0.1 & sleep 0.1 & echo started");
  CHECK(o.result.exit_code == 0);
  CHECK(!host_mounts_mention(r.scratch));
  CHECK(!host_mounts_mention(r.tmp.path()));
  CHECK(dir_empty(r.scratch));
}

TEST_CASE("sandbox: concurrent runs from several threads") {
  if (!builder::test::have_root()) return;
  constexpr int kThreads = 8;
  Rootfs r;
  std::vector<std::string> outs(kThreads);
  std::vector<int> codes(kThreads, -1);
  std::vector<std::thread> threads;
  std::atomic<int> errors{0};
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      try {
        std::string upper = r.tmp.path() + "/u" + std::to_string(i);
        std::string work = r.tmp.path() + "/w" + std::to_string(i);
        fs::create_directories(upper);
        fs::create_directories(work);
        for (int round = 0; round < 3; ++round) {
          auto spec = r.spec({"sh", "-c", "echo $$ $(hostname); echo " + std::to_string(i) + " > /id"});
          spec.upper_dir = upper;
          spec.work_dir = work;
          spec.hostname = "h" + std::to_string(i);
          auto o = run_capture(spec);
          codes[i] = o.result.exit_code;
          outs[i] = o.out;
        }
      } catch (const std::exception& e) {
        MESSAGE(e.what());
        ++errors;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(errors == 0);
  for (int i = 0; i < kThreads; ++i) {
    CHECK(codes[i] == 0);
    CHECK(outs[i] == "1 h" + std::to_string(i) + "\n");
    CHECK(builder::base::read_file(r.tmp.path() + "/u" + std::to_string(i) + "/id") == std::to_string(i) + "\n");
  }
  CHECK(dir_empty(r.scratch));
  CHECK(!host_mounts_mention(r.tmp.path()));
}

TEST_CASE("sandbox: a failing setup step raises SysError naming it and leaves nothing") {
  if (!builder::test::have_root()) return;
  Rootfs r;
  auto spec = r.spec({"echo", "hi"});
  spec.lower_dirs = {r.tmp.path() + "/does-not-exist"};
  try {
    builder::exec::run(spec);
    FAIL("expected an error");
  } catch (const builder::base::SysError& e) {
    CHECK(e.err() == ENOENT);
    CHECK(e.message().rfind("sandbox: mount overlay on `" + r.scratch + "/sandbox-", 0) == 0);
    CHECK(std::string(e.what()).find("does-not-exist") != std::string::npos);
  }
  CHECK(dir_empty(r.scratch));
  CHECK(!host_mounts_mention(r.tmp.path()));

  auto spec2 = r.spec({"nosuchbinary", "x"});
  try {
    builder::exec::run(spec2);
    FAIL("expected an error");
  } catch (const builder::base::SysError& e) {
    CHECK(e.err() == ENOENT);
    CHECK(e.message() == "sandbox: exec `nosuchbinary`: ENOENT (No such file or directory)");
  }
  auto spec3 = r.spec({"/bin/nosuch"});
  try {
    builder::exec::run(spec3);
    FAIL("expected an error");
  } catch (const builder::base::SysError& e) {
    CHECK(e.message() == "sandbox: exec `/bin/nosuch`: ENOENT (No such file or directory)");
  }
  CHECK(child_count() == 0);
  CHECK(dir_empty(r.scratch));
  CHECK(!host_mounts_mention(r.tmp.path()));
}

TEST_CASE("sandbox: stdin defaults to /dev/null; explicit fds are used") {
  if (!builder::test::have_root()) return;
  Rootfs r;
  auto o = sh(r, "cat; echo done");
  CHECK(o.out == "done\n");

  std::string in_path = r.tmp.path() + "/in.txt";
  std::string out_path = r.tmp.path() + "/out.txt";
  write(in_path, "piped\n");
  int in = ::open(in_path.c_str(), O_RDONLY | O_CLOEXEC);
  int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  auto spec = r.spec({"cat"});
  spec.stdin_fd = in;
  spec.stdout_fd = out;
  spec.stderr_fd = out;
  bool called = false;
  spec.on_output = [&](std::string_view) { called = true; };
  auto res = builder::exec::run(spec);
  ::close(in);
  ::close(out);
  CHECK(res.exit_code == 0);
  CHECK(!called);
  CHECK(builder::base::read_file(out_path) == "piped\n");
}

TEST_CASE("sandbox: sandbox_available matches root") {
  CHECK(builder::exec::sandbox_available() == (::geteuid() == 0));
}

TEST_CASE("sandbox: an exception while the process runs kills and reaps it") {
  if (!builder::test::have_root()) return;
  Rootfs r;
  auto spec = r.spec({"sh", "-c", "echo hi; sleep 30 & sleep 30"});
  spec.on_output = [](std::string_view) { throw std::runtime_error("consumer gone"); };
  auto t0 = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH(builder::exec::run(spec), "consumer gone");
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10));
  CHECK(child_count() == 0);
  CHECK(dir_empty(r.scratch));
  CHECK(!host_mounts_mention(r.tmp.path()));
}

TEST_CASE("sandbox: descriptors without O_CLOEXEC do not leak into the container") {
  if (!builder::test::have_root()) return;
  Rootfs r;
  int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int leaky = ::fcntl(fd, F_DUPFD, 57);  // deliberately without O_CLOEXEC
  ::close(fd);
  REQUIRE(leaky >= 57);
  auto o = sh(r, "ls /proc/self/fd");
  ::close(leaky);
  CHECK(o.result.exit_code == 0);
  CHECK(o.out.find("0\n1\n2\n") == 0);
  CHECK(o.out.find(std::to_string(leaky)) == std::string::npos);
}

TEST_CASE("sandbox: bind mount targets resolve inside the root, not through image symlinks") {
  if (!builder::test::have_root()) return;
  Rootfs r;
  std::string hostside = r.tmp.path() + "/hostside";
  fs::create_directories(hostside);
  fs::create_symlink(hostside, r.lower + "/escape");  // absolute symlink in the image
  fs::create_directories(r.lower + hostside);          // ... resolving inside the image too
  std::string src = r.tmp.path() + "/src";
  write(src + "/f", "data\n");
  auto spec = r.spec({"cat", "/escape/m/f"});
  builder::exec::BindMount m;
  m.source = src;
  m.target = "/escape/m";
  spec.mounts = {m};
  auto o = run_capture(spec);
  CHECK(o.result.exit_code == 0);
  CHECK(o.out == "data\n");
  CHECK(dir_empty(hostside));  // the mount point was created in the container's view
}

TEST_CASE("sandbox: stub cleanup never follows symlinks planted in the upper dir") {
  if (!builder::test::have_root()) return;
  Rootfs r;
  std::string victim = r.tmp.path() + "/victim";
  fs::create_directories(victim + "/x");
  std::string src = r.tmp.path() + "/src";
  fs::create_directories(src);
  // The step replaces the (missing) mount point's parent with a symlink to a host dir
  // holding an empty directory of the same name.
  auto spec = r.spec({"sh", "-c", "true"});
  builder::exec::BindMount m;
  m.source = src;
  m.target = "/mnt/x";
  spec.mounts = {m};
  // Privileged: only a step with CAP_SYS_ADMIN (--security=insecure) can unmount.
  spec.privileged = true;
  spec.args = {"sh", "-c", "umount /mnt/x 2>/dev/null; rm -rf /mnt; ln -s " + victim + " /mnt"};
  auto o = run_capture(spec);
  CHECK(o.result.exit_code == 0);
  CHECK(fs::is_directory(victim + "/x"));  // not removed through the symlink
  CHECK(fs::is_symlink(r.upper + "/mnt"));
}
