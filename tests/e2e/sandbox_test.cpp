// tests/e2e/sandbox_test.cpp — end-to-end: what a RUN step can and cannot do. Docker's
// default containment (capabilities, seccomp, masked and read-only paths, fds, host
// files, hostname), one attempt per known escape class (each must fail and leave the
// host as it was), and the RUN --mount options, networks and security modes. Contexts:
// testdata/e2e/sandbox plus two static probes (tests/e2e/probe_tool.c, xattr_tool.c).
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <functional>
#include <set>

#include "e2e_util.h"

using builder::e2e::Result;
using builder::e2e::run_process;
using builder::e2e::slurp;
using builder::e2e::testdata;
using builder::e2e::TestRoot;
namespace fs = std::filesystem;

namespace {

fs::path make_context(const TestRoot& root) {
  const fs::path ctx = root.work() / "ctx";
  fs::copy(testdata("e2e/sandbox"), ctx, fs::copy_options::recursive);
  fs::copy_file(BUILDER_PROBE_TOOL, ctx / "probe-tool");
  fs::copy_file(BUILDER_XATTR_TOOL, ctx / "xattr-tool");
  return ctx;
}

/// `builder build -f ctx/<dockerfile> -o type=local,dest=<out> [extra...] ctx`.
Result build(const TestRoot& root, const fs::path& ctx, const std::string& dockerfile, const fs::path& out,
             std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"build", "--progress=plain", "-f", (ctx / dockerfile).string(),
                                "-o", "type=local,dest=" + out.string()};
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back(ctx.string());
  return root.builder(args);
}

std::string trimmed(const fs::path& p) {
  std::string s = slurp(p);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

/// The whitespace-separated values of the "Key:" line of a /proc/self/status extract.
std::vector<std::string> status_field(const std::string& status, const std::string& key) {
  for (const auto& line : builder::e2e::lines_of(status)) {
    if (line.rfind(key + ":", 0) != 0) continue;
    std::istringstream in(line.substr(key.size() + 1));
    std::vector<std::string> out;
    for (std::string w; in >> w;) out.push_back(w);
    return out;
  }
  return {"<missing " + key + ">"};
}

std::string one(const std::string& status, const std::string& key) {
  auto v = status_field(status, key);
  return v.size() == 1 ? v[0] : "<" + std::to_string(v.size()) + " values>";
}

std::string sha256_of(const std::string& path) {
  Result r = run_process({"sha256sum", path});
  REQUIRE_MESSAGE(r.status == 0, r.describe());
  return r.out.substr(0, 64);
}

/// Names of the entries of `dir`, sorted (recursively, relative paths).
std::vector<std::string> tree(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) out.push_back(fs::relative(e.path(), dir).string());
  std::sort(out.begin(), out.end());
  return out;
}

std::string hostname() {
  char buf[HOST_NAME_MAX + 1] = {};
  ::gethostname(buf, sizeof buf - 1);
  return buf;
}

/// A host directory the escape attempts aim at: a marker file and an empty a/b.
fs::path make_host_dir(const TestRoot& root) {
  fs::path dir = root.dir() / "hostdir";
  fs::create_directories(dir / "a/b");
  builder::e2e::write_file(dir / "marker", "host marker\n");
  return dir;
}

/// The busybox rootfs unpacked, changed by `edit`, and imported as `name`.
void import_edited_busybox(const TestRoot& root, const std::string& name, const std::function<void(const fs::path&)>& edit) {
  fs::path dir = root.work() / ("rootfs-" + name);
  fs::create_directories(dir);
  Result x = run_process({"tar", "-C", dir.string(), "-xf", builder::e2e::busybox_rootfs()});
  REQUIRE_MESSAGE(x.status == 0, x.describe());
  edit(dir);
  fs::path tar = root.work() / (name + ".tar");
  Result t = run_process({"tar", "-C", dir.string(), "-cf", tar.string(), "."});
  REQUIRE_MESSAGE(t.status == 0, t.describe());
  Result i = root.builder({"import", tar.string(), name + ":latest"});
  REQUIRE_MESSAGE(i.status == 0, i.describe());
}

}  // namespace

TEST_CASE("sandbox e2e: a RUN step is contained as Docker's defaults contain a container") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  const fs::path ctx = make_context(root);
  const fs::path secret = root.dir() / "host-only-file";
  builder::e2e::write_file(secret, "not for containers\n");
  const std::string host_name = hostname();
  const fs::path out = root.work() / "out";

  Result r = build(root, ctx, "Dockerfile.contained", out, {"--build-arg", "HOSTFILE=" + secret.string()});
  REQUIRE_MESSAGE(r.status == 0, r.describe());
  const fs::path o = out / "out";

  std::string st = slurp(o / "status-root");
  CHECK(one(st, "CapEff") == "00000000a80425fb");
  CHECK(one(st, "CapPrm") == "00000000a80425fb");
  CHECK(one(st, "CapBnd") == "00000000a80425fb");
  CHECK(one(st, "CapInh") == "0000000000000000");
  CHECK(one(st, "CapAmb") == "0000000000000000");
  CHECK(one(st, "Seccomp") == "2");
  CHECK(one(st, "NoNewPrivs") == "0");  // as BuildKit: setuid programs keep working
  CHECK(status_field(st, "Fds") == std::vector<std::string>{"0", "1", "2"});

  std::string sc = slurp(o / "syscalls");
  for (const char* refused : {"unshare_mnt=EPERM", "unshare_user=EPERM", "mount=EPERM", "clone3=ENOSYS",
                              "af_alg=EPERM", "af_vsock=EPERM", "keyctl=EPERM", "af_inet=ok", "chroot=ok"})
    CHECK_MESSAGE(sc.find(refused) != std::string::npos, refused << " in:\n" << sc);

  CHECK(trimmed(o / "procsys") == "refused");
  CHECK(trimmed(o / "mount") == "refused");
  CHECK(trimmed(o / "hostfile") == "unreadable");
  CHECK(trimmed(o / "sethostname") == "refused");
  CHECK(trimmed(o / "hostname") == "builder");
  CHECK(hostname() == host_name);
  CHECK(trimmed(o / "sysrq") == "refused");
  CHECK(trimmed(o / "sys") == "refused");
  // Every masked path that exists on this kernel reads as nothing.
  auto masked = builder::e2e::lines_of(slurp(o / "masked"));
  CHECK(!masked.empty());
  for (const auto& line : masked) {
    bool reads_nothing = line.size() > 2 && line.substr(line.size() - 2) == " 0";
    CHECK_MESSAGE(reads_nothing, line);
  }

  // File capabilities with every inheritable bit: root still gets only the bounding
  // set, another user nothing.
  std::string capfile_root = slurp(o / "capfile-root");
  CHECK(one(capfile_root, "CapEff") == "00000000a80425fb");
  CHECK(one(capfile_root, "CapInh") == "0000000000000000");
  std::string alice = slurp(o / "status-alice");
  CHECK(one(alice, "CapEff") == "0000000000000000");
  CHECK(one(alice, "CapPrm") == "0000000000000000");
  CHECK(one(alice, "CapBnd") == "00000000a80425fb");
  std::string capfile_alice = slurp(o / "capfile-alice");
  CHECK(one(capfile_alice, "CapEff") == "0000000000000000");
  CHECK(one(capfile_alice, "CapPrm") == "0000000000000000");
  // Supplementary groups: exactly the user's /etc/group entries, never builder's.
  CHECK(status_field(alice, "Groups") == std::vector<std::string>{"2345"});
  CHECK(status_field(slurp(o / "status-uidgid"), "Groups").empty());
  root.check_no_mounts();
}

TEST_CASE("sandbox e2e: /proc/self/exe never leads a container to the host's builder binary (CVE-2019-5736)") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  const fs::path ctx = make_context(root);
  const std::string before = sha256_of(builder::test::builder_binary());
  const fs::path out = root.work() / "out";
  // The step's command is a `#!/proc/self/exe` script: its interpreter is the sealed
  // builder-init that execs it, which refuses to run it.
  Result evil = build(root, ctx, "Dockerfile.exe-script", root.work() / "out-evil");
  CHECK(evil.status != 0);
  CHECK_MESSAGE(evil.err.find("builder-init: runs a container's command") != std::string::npos, evil.err);
  CHECK(evil.err.find("exit code: 127") != std::string::npos);
  CHECK(evil.err.find("--root") == std::string::npos);  // not builder's own command line

  Result r = build(root, ctx, "Dockerfile.exe", out);
  REQUIRE_MESSAGE(r.status == 0, r.describe());
  std::string writes = slurp(out / "out/exe-write");
  CHECK(!writes.empty());
  CHECK_MESSAGE(writes.find("=ok") == std::string::npos, writes);
  std::string ps = slurp(out / "out/ps");
  CHECK(ps.find(builder::test::builder_binary()) == std::string::npos);
  CHECK(ps.find("builder-init") == std::string::npos);
  CHECK(sha256_of(builder::test::builder_binary()) == before);
}

TEST_CASE("sandbox e2e: a working directory through /proc/self/fd is refused (CVE-2024-21626)") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  const fs::path ctx = make_context(root);
  for (int n = 3; n <= 9; ++n) {
    CAPTURE(n);
    const fs::path out = root.work() / ("out" + std::to_string(n));
    Result r = build(root, ctx, "Dockerfile.workdir", out, {"--build-arg", "N=" + std::to_string(n)});
    CHECK(r.status != 0);
    CHECK_MESSAGE(r.err.find("working directory") != std::string::npos, r.err);
    CHECK(!fs::exists(out / "listing"));
  }
  Result run = root.builder({"run", "--rm", "-w", "/proc/self/fd/5", "busybox", "ls", "../../.."});
  CHECK(run.status != 0);
  CHECK_MESSAGE(run.err.find("working directory") != std::string::npos, run.err);
  root.check_no_mounts();
}

TEST_CASE("sandbox e2e: mount targets and stubs behind image symlinks stay inside the root") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  const fs::path ctx = make_context(root);
  const fs::path host = make_host_dir(root);
  const auto before = tree(host);
  const fs::path out = root.work() / "out";
  Result r = build(root, ctx, "Dockerfile.mount-symlinks", out, {"--build-arg", "HOSTDIR=" + host.string()});
  REQUIRE_MESSAGE(r.status == 0, r.describe());
  CHECK(tree(host) == before);  // no t1, t2 made there; a/b not removed through /stub
  CHECK(builder::e2e::mounts_containing(host.string()).empty());
  // Inside, the symlinks led to the same path within the root, where the mounts were.
  CHECK(trimmed(out / "seen").find("t1") != std::string::npos);
  CHECK(fs::is_symlink(out / "stub"));
  CHECK(fs::is_directory(out / "moved/a"));

  // A mount source that is a symlink out of its stage resolves inside the stage.
  for (const char* kind : {"bind", "cache"}) {
    CAPTURE(kind);
    const fs::path out2 = root.work() / (std::string("out-") + kind);
    Result s = build(root, ctx, "Dockerfile.source-symlink", out2,
                     {"--build-arg", "HOSTDIR=" + host.string(), "--build-arg", std::string("KIND=") + kind});
    CHECK(s.status != 0);
    CHECK_MESSAGE(s.err.find("not found") != std::string::npos, s.err);
    CHECK(s.out.find("marker") == std::string::npos);
    CHECK(s.err.find("marker") == std::string::npos);
  }
  CHECK(tree(host) == before);
  root.check_no_mounts();
}

TEST_CASE("sandbox e2e: images whose /proc, /dev or /sys is a symlink are refused; a planted /dev/null is not used") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  const fs::path host = make_host_dir(root);
  const auto before = tree(host);
  for (const std::string point : {"proc", "dev", "sys"}) {
    CAPTURE(point);
    const std::string image = "evil-" + point;
    import_edited_busybox(root, image, [&](const fs::path& dir) {
      fs::remove_all(dir / point);
      fs::create_symlink(host, dir / point);
    });
    fs::path ctx = root.work() / ("ctx-" + point);
    builder::e2e::write_file(ctx / "Dockerfile", "FROM " + image + "\nRUN echo ran > /ran\n");
    Result r = root.builder({"build", "--progress=plain", ctx.string()});
    CHECK(r.status != 0);
    CHECK_MESSAGE(r.err.find("symlink or not a directory") != std::string::npos, r.err);
    CHECK(tree(host) == before);
    CHECK(builder::e2e::mounts_containing(host.string()).empty());
  }

  // /dev is always a fresh tmpfs: an image's /dev/null pointing at a kernel setting
  // is neither used to mask /proc files nor written through.
  const std::string core_pattern = slurp("/proc/sys/kernel/core_pattern");
  import_edited_busybox(root, "evil-null", [&](const fs::path& dir) {
    fs::create_directories(dir / "dev");
    fs::remove(dir / "dev/null");
    fs::create_symlink("/proc/sys/kernel/core_pattern", dir / "dev/null");
  });
  fs::path ctx = root.work() / "ctx-null";
  builder::e2e::write_file(ctx / "Dockerfile",
                           "FROM evil-null\nRUN echo '|/tmp/pwn' > /dev/null; cat /proc/timer_list | wc -c > /masked; "
                           "stat -c %t:%T /dev/null > /null\n");
  const fs::path out = root.work() / "out-null";
  Result r = root.builder({"build", "--progress=plain", "-o", "type=local,dest=" + out.string(), ctx.string()});
  REQUIRE_MESSAGE(r.status == 0, r.describe());
  CHECK(trimmed(out / "masked") == "0");
  CHECK(trimmed(out / "null") == "1:3");
  CHECK(slurp("/proc/sys/kernel/core_pattern") == core_pattern);
  root.check_no_mounts();
}

TEST_CASE("sandbox e2e: the host's abstract unix sockets are out of reach (CVE-2020-15257)") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  const fs::path ctx = make_context(root);
  const std::string name = "builder-e2e-abstract-" + std::to_string(::getpid());
  int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(s >= 0);
  struct sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path + 1, name.data(), name.size());
  auto len = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + 1 + name.size());
  REQUIRE(::bind(s, reinterpret_cast<sockaddr*>(&a), len) == 0);
  REQUIRE(::listen(s, 8) == 0);

  const fs::path out = root.work() / "out";
  Result r = build(root, ctx, "Dockerfile.net", out, {"--build-arg", "NAME=" + name});
  REQUIRE_MESSAGE(r.status == 0, r.describe());
  CHECK(trimmed(out / "abstract") == "abstract=ECONNREFUSED");
  // The control: with the host network (an explicit entitlement) it is reachable.
  const fs::path out_host = root.work() / "out-host";
  r = build(root, ctx, "Dockerfile.net-host", out_host, {"--build-arg", "NAME=" + name, "--allow", "network.host"});
  REQUIRE_MESSAGE(r.status == 0, r.describe());
  CHECK(trimmed(out_host / "abstract") == "abstract=ok");
  ::close(s);
}

TEST_CASE("sandbox e2e: RUN --mount options, networks and security modes") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  const fs::path ctx = make_context(root);
  const fs::path out = root.work() / "out";

  // --security=insecure is an entitlement.
  Result refused = build(root, ctx, "Dockerfile.mounts", out);
  CHECK(refused.status != 0);
  CHECK_MESSAGE(refused.err.find("security.insecure") != std::string::npos, refused.err);
  CHECK(refused.err.find("Dockerfile.mounts:") != std::string::npos);

  Result r = build(root, ctx, "Dockerfile.mounts", out, {"--allow", "security.insecure"});
  REQUIRE_MESSAGE(r.status == 0, r.describe());
  const fs::path o = out / "out";
  CHECK(trimmed(o / "fromimage") == "/img/busybox");
  CHECK(trimmed(o / "ctxsub") == "from the context");
  CHECK(trimmed(o / "cacheowner") == "750 1000 1001");
  CHECK(trimmed(o / "cacheprivate") == "p");
  CHECK(trimmed(o / "cachelocked") == "l");
  CHECK(trimmed(o / "cachero") == "readonly");
  std::string net = slurp(o / "netdefault");
  CHECK_MESSAGE(net.find("tap0 10.0.2.100/24") != std::string::npos, net);
  CHECK(net.find("lo 127.0.0.1/8") != std::string::npos);
  CHECK(trimmed(o / "resolvdefault").find("nameserver 10.0.2.3") != std::string::npos);
  CHECK(trimmed(o / "netnone") == "lo");
  std::string insecure = slurp(o / "insecure");
  CHECK(one(insecure, "Seccomp") == "0");
  CHECK(one(insecure, "CapEff") != "00000000a80425fb");
  std::string sandbox = slurp(o / "sandbox");
  CHECK(one(sandbox, "Seccomp") == "2");
  CHECK(one(sandbox, "CapEff") == "00000000a80425fb");
  // Nothing a mount held reached the image.
  CHECK(!fs::exists(out / "c"));
  CHECK(!fs::exists(out / "img"));
  CHECK(!fs::exists(out / "sub"));
  root.check_no_mounts();
}
