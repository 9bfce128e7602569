// tests/e2e/tools_test.cpp — builder's images read by the tools people use: skopeo
// inspect (OCI and docker archives agree with builder's digests and config), skopeo copy
// + oci-image-tool validate (builder's archives and layouts are valid OCI), umoci unpack
// (the same tree as `--output type=local`), and Debian's docker.io (`docker load` +
// `docker run` on a dockerd of our own, stopped and removed afterwards). A tool that is
// missing, or a dockerd that cannot start, skips its part with a message.
#include <doctest/doctest.h>
#include <ftw.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <thread>

#include "base/digest.h"
#include "base/json.h"
#include "e2e_util.h"

namespace {

using builder::e2e::Result;
using builder::e2e::run_process;
using builder::e2e::slurp;
using builder::e2e::TestRoot;
using Json = builder::base::Json;
namespace fs = std::filesystem;

constexpr const char* kDockerfile = R"(FROM busybox AS build
RUN mkdir -p /out/sub && echo built > /out/msg && ln -s msg /out/link && chmod 4755 /out/msg \
 && echo deep > /out/sub/deep && chmod 0600 /out/sub/deep && mkdir -m 1777 /out/tmp

FROM busybox
COPY --from=build /out /app
COPY --chown=1000:1000 --chmod=0640 note.txt /app/note.txt
RUN mkdir -p /data && echo data > /data/f && ln /data/f /data/hard && chown 1000:1000 /data/f \
 && ln -s /nowhere /data/dangling && rm /bin/vi
ENV APP=tools
LABEL org.test.name=tools
EXPOSE 8080/tcp
WORKDIR /app
USER 1000:1000
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /app/msg && echo $APP && id -u"]
)";
constexpr const char* kExpectedRun = "built\ntools\n1000\n";

/// One line per entry of a tree: path, type, mode, owner, size, content hash, link target;
/// plus hard link groups (paths sharing an inode). Times are not compared.
struct Listing {
  std::vector<std::string> lines;
  std::set<std::vector<std::string>> hardlinks;
};

Listing list_tree(const fs::path& root) {
  static thread_local std::map<std::pair<dev_t, ino_t>, std::vector<std::string>>* inodes;
  static thread_local std::vector<std::string>* lines;
  static thread_local size_t prefix;
  std::map<std::pair<dev_t, ino_t>, std::vector<std::string>> in;
  std::vector<std::string> ls;
  inodes = &in;
  lines = &ls;
  prefix = root.string().size() + 1;  // and the '/' after it
  ::nftw(
      root.c_str(),
      [](const char* path, const struct stat* st, int, struct FTW*) -> int {
        if (std::string_view(path).size() < prefix) return 0;  // the root itself: its mode is the unpacker's
        std::string rel = std::string(path).substr(prefix);
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", st->st_mode & 07777);
        std::string line = rel + " " + mode + " " + std::to_string(st->st_uid) + ":" + std::to_string(st->st_gid);
        if (S_ISDIR(st->st_mode)) {
          line += " dir";
        } else if (S_ISLNK(st->st_mode)) {
          line += " symlink -> " + fs::read_symlink(path).string();
        } else if (S_ISREG(st->st_mode)) {
          line += " file " + std::to_string(st->st_size) + " " + builder::base::sha256_hex(slurp(path));
          if (st->st_nlink > 1) (*inodes)[{st->st_dev, st->st_ino}].push_back(rel);
        } else {
          line += " special " + std::to_string(st->st_rdev);
        }
        lines->push_back(line);
        return 0;
      },
      64, FTW_PHYS);
  std::sort(ls.begin(), ls.end());
  Listing out{ls, {}};
  for (auto& [ino, paths] : in) {
    std::sort(paths.begin(), paths.end());
    if (paths.size() > 1) out.hardlinks.insert(paths);
  }
  return out;
}

std::string lines_diff(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  std::set<std::string> sa(a.begin(), a.end()), sb(b.begin(), b.end());
  std::string d;
  for (const auto& l : sa)
    if (!sb.count(l)) d += "- " + l + "\n";
  for (const auto& l : sb)
    if (!sa.count(l)) d += "+ " + l + "\n";
  return d;
}

Json parse_json(const std::string& s, const std::string& what) {
  Json j = Json::parse(s, nullptr, false);
  if (j.is_discarded()) FAIL_CHECK(what << " is not JSON: " << s);
  return j;
}

/// Debian's dockerd with a data root, exec root, socket and pid file of its own (as
/// scripts/make-goldens starts it), so a dockerd already on the machine is left alone.
/// Stopped and its state removed on destruction.
class OwnDockerd {
 public:
  OwnDockerd() {
    char tmpl[] = "/tmp/builder-dockerd-XXXXXX";
    if (!::mkdtemp(tmpl)) return;
    state_ = tmpl;
    host_ = "unix://" + state_ + "/docker.sock";
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setpgid(0, 0);
      std::string log = state_ + "/dockerd.log";
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      ::execlp("dockerd", "dockerd", "--data-root", (state_ + "/data").c_str(), "--exec-root", (state_ + "/exec").c_str(),
               "--host", host_.c_str(), "--pidfile", (state_ + "/docker.pid").c_str(), "--bridge=none",
               "--iptables=false", "--ip-masq=false", static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 100; ++i) {
      if (docker({"version"}).status == 0) {
        ready_ = true;
        return;
      }
      int ws;
      if (::waitpid(pid_, &ws, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
    why_ = slurp(state_ + "/dockerd.log");
  }
  ~OwnDockerd() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int ws;
      bool gone = false;
      for (int i = 0; i < 200 && !gone; ++i) {
        gone = ::waitpid(pid_, &ws, WNOHANG) == pid_;
        if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      if (!gone) {
        ::kill(-pid_, SIGKILL);  // its process group: dockerd and the containerd it started
        ::waitpid(pid_, &ws, 0);
      }
    }
    if (state_.empty()) return;
    // Mounts dockerd left (overlay, netns, shm): deepest first.
    auto mounts = builder::e2e::mounts_containing(state_);
    std::sort(mounts.rbegin(), mounts.rend());
    for (const auto& m : mounts) {
      std::istringstream in(m);
      std::string src, target;
      in >> src >> target;
      run_process({"umount", "-l", target});
    }
    std::error_code ec;
    fs::remove_all(state_, ec);
  }
  bool ready() const { return ready_; }
  const std::string& why() const { return why_; }
  Result docker(std::vector<std::string> args) const {
    args.insert(args.begin(), {"/usr/bin/docker", "--host", host_});
    return run_process(args);
  }

 private:
  std::string state_, host_, why_;
  pid_t pid_ = -1;
  bool ready_ = false;
};

/// One check of the file's single build (doctest SUBCASEs would rebuild for each).
void part(const char* name, const std::function<void()>& fn) {
  std::string what = name;
  INFO(what);
  fn();
}

}  // namespace

TEST_CASE("tools: skopeo, oci-image-tool, umoci and docker read builder's images") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  fs::path ctx = root.work() / "ctx";
  builder::e2e::write_file(ctx / "Dockerfile", kDockerfile);
  builder::e2e::write_file(ctx / "note.txt", "note\n");
  fs::path oci_tar = root.work() / "img-oci.tar", docker_tar = root.work() / "img-docker.tar";
  fs::path local = root.work() / "local", layout = root.work() / "layout";
  // The image in the store and its tree; archives by `builder save` (the exporters' own
  // archives are loaded into docker below).
  Result b = root.builder({"build", "-q", "-t", "tools:1", "--output", "type=image", "--output",
                           "type=local,dest=" + local.string(), ctx.string()});
  REQUIRE_MESSAGE(b.status == 0, b.describe());
  REQUIRE(root.builder({"save", "--format", "oci", "-o", oci_tar.string(), "tools:1"}).status == 0);
  REQUIRE(root.builder({"save", "--format", "docker", "-o", docker_tar.string(), "tools:1"}).status == 0);
  Json ins = parse_json(root.builder({"inspect", "tools:1"}).out, "inspect")[0];
  const std::string id = ins["Id"], manifest = ins["Descriptor"]["digest"];
  const size_t nlayers = ins["RootFS"]["Layers"].size();
  REQUIRE(nlayers >= 4);  // busybox, the two COPYs, RUN (and WORKDIR's mkdir)

  // An OCI layout directory written by the exporter (tar=false), else the archive unpacked.
  Result lb = root.builder({"build", "-q", "--output", "type=oci,tar=false,dest=" + layout.string(), ctx.string()});
  if (lb.status != 0) {
    MESSAGE("type=oci,tar=false not available (" << lb.err << "); validating the unpacked archive instead");
    fs::create_directories(layout);
    REQUIRE(run_process({"tar", "-xf", oci_tar.string(), "-C", layout.string()}).status == 0);
  }
  const std::string layout_manifest = parse_json(slurp(layout / "index.json"), "index.json")["manifests"][0]["digest"];

  part("skopeo inspect agrees with builder on digests and config", [&] {
    if (!builder::e2e::require_tool("skopeo")) return;
    for (const std::string& transport : {"oci-archive:" + oci_tar.string(), "docker-archive:" + docker_tar.string(),
                                         "oci:" + layout.string()}) {
      CAPTURE(transport);
      Result raw_cfg = run_process({"skopeo", "inspect", "--config", "--raw", transport});
      REQUIRE_MESSAGE(raw_cfg.status == 0, raw_cfg.describe());
      CHECK(builder::base::Digest::of(raw_cfg.out).str() == id);  // the config, byte for byte
      Json cfg = parse_json(raw_cfg.out, "config");
      CHECK(cfg["config"] == ins["Config"]);
      CHECK(cfg["rootfs"]["diff_ids"] == ins["RootFS"]["Layers"]);
      Result info = run_process({"skopeo", "inspect", transport});
      REQUIRE_MESSAGE(info.status == 0, info.describe());
      Json j = parse_json(info.out, "skopeo inspect");
      CHECK(j["Labels"]["org.test.name"] == "tools");
      CHECK(j["Env"] == ins["Config"]["Env"]);
      CHECK(j["Layers"].size() == nlayers);
      CHECK(j["Architecture"] == ins["Architecture"]);
      if (transport.rfind("docker-archive:", 0) != 0) {
        // OCI archives and layouts keep builder's manifest: same digest, same bytes.
        std::string want = transport.rfind("oci:", 0) == 0 ? layout_manifest : manifest;
        CHECK(j["Digest"] == want);
        Result raw = run_process({"skopeo", "inspect", "--raw", transport});
        CHECK(builder::base::Digest::of(raw.out).str() == want);
      }
    }
  });

  part("skopeo copy to an OCI layout; oci-image-tool validates it and builder's own", [&] {
    if (!builder::e2e::require_tool("skopeo") || !builder::e2e::require_tool("oci-image-tool")) return;
    fs::path copied = root.work() / "copied";
    Result cp = run_process({"skopeo", "copy", "oci-archive:" + oci_tar.string(), "oci:" + copied.string() + ":tools"});
    REQUIRE_MESSAGE(cp.status == 0, cp.describe());
    for (const fs::path& dir : {copied, layout}) {
      CAPTURE(dir);
      Result v = run_process({"oci-image-tool", "validate", "--type", "image", dir.string()});
      CHECK_MESSAGE(v.status == 0, v.describe());
    }
    // The copy keeps builder's manifest: the layout's index names the same digest.
    Json index = parse_json(slurp(copied / "index.json"), "index.json");
    CHECK(index["manifests"][0]["digest"] == manifest);
    // A broken layout fails: the validator is really checking.
    fs::path broken = root.work() / "broken";
    fs::copy(copied, broken, fs::copy_options::recursive);
    fs::path cfg_blob = broken / "blobs/sha256" / id.substr(7);
    fs::remove(cfg_blob);
    builder::e2e::write_file(cfg_blob, "{}");
    CHECK(run_process({"oci-image-tool", "validate", "--type", "image", broken.string()}).status != 0);
  });

  part("umoci unpack gives the tree of --output type=local", [&] {
    if (!builder::e2e::require_tool("umoci") || !builder::e2e::require_tool("skopeo")) return;
    fs::path copied = root.work() / "umoci-layout", bundle = root.work() / "bundle";
    REQUIRE(run_process({"skopeo", "copy", "oci-archive:" + oci_tar.string(), "oci:" + copied.string() + ":tools"})
                .status == 0);
    Result u = run_process({"umoci", "unpack", "--image", copied.string() + ":tools", bundle.string()});
    REQUIRE_MESSAGE(u.status == 0, u.describe());
    Listing want = list_tree(local), got = list_tree(bundle / "rootfs");
    CHECK_MESSAGE(want.lines == got.lines, "local export (-) vs umoci (+):\n" << lines_diff(want.lines, got.lines));
    CHECK(want.hardlinks == got.hardlinks);
    CHECK(want.hardlinks.count({"data/f", "data/hard"}) == 1);
    // Spot checks that the comparison sees what matters.
    auto has = [&](const std::string& prefix) {
      return std::any_of(got.lines.begin(), got.lines.end(), [&](const auto& l) { return l.rfind(prefix, 0) == 0; });
    };
    CHECK(has("app/msg 4755 0:0 file"));
    CHECK(has("app/tmp 1777 0:0 dir"));
    CHECK(has("app/note.txt 0640 1000:1000 file"));
    CHECK(has("data/dangling 0777 0:0 symlink -> /nowhere"));
    CHECK(!has("bin/vi "));
  });

  part("docker load + docker run on our own dockerd", [&] {
    if (!fs::exists("/usr/bin/docker") || !builder::e2e::have_tool("dockerd")) {
      MESSAGE("SKIP: Debian's docker.io (dockerd, /usr/bin/docker) is not installed");
      return;
    }
    OwnDockerd d;
    if (!d.ready()) {
      MESSAGE("SKIP: dockerd could not start here:\n" << d.why());
      return;
    }
    Result load = d.docker({"load", "-i", docker_tar.string()});
    REQUIRE_MESSAGE(load.status == 0, load.describe());
    CHECK(load.out.find("Loaded image: tools:1") != std::string::npos);
    Result did = d.docker({"image", "inspect", "--format", "{{.Id}}", "tools:1"});
    CHECK(did.out == id + "\n");
    Result run = d.docker({"run", "--rm", "--network", "none", "tools:1"});
    CHECK_MESSAGE(run.out == kExpectedRun, run.describe());
    // builder save's archive loads too, and an image docker saved loads into builder.
    fs::path saved = root.work() / "saved.tar";
    REQUIRE(root.builder({"save", "-o", saved.string(), "tools:1"}).status == 0);
    CHECK(d.docker({"load", "-i", saved.string()}).status == 0);
    fs::path from_docker = root.work() / "from-docker.tar";
    REQUIRE(d.docker({"save", "-o", from_docker.string(), "tools:1"}).status == 0);
    TestRoot other;
    Result back = other.builder({"load", "-i", from_docker.string()});
    CHECK_MESSAGE(back.status == 0, back.describe());
    CHECK(builder::e2e::image_id(other.builder({"inspect", "tools:1"}).out) == id);
    Result brun = other.builder({"run", "--rm", "tools:1"});
    CHECK_MESSAGE(brun.out == kExpectedRun, brun.describe());

    // The docker exporter's own archives, with its compression variants when offered.
    for (const std::string& opts : {"compression=gzip", "compression=uncompressed",
                                    "compression=gzip,compression-level=9,force-compression=true"}) {
      CAPTURE(opts);
      fs::path tar = root.work() / ("variant-" + std::to_string(std::hash<std::string>{}(opts)) + ".tar");
      Result vb = root.builder({"build", "-q", "--output", "type=docker,name=variant:1,dest=" + tar.string() + "," + opts,
                                ctx.string()});
      if (vb.status != 0) {
        MESSAGE("SKIP variant " << opts << ": " << vb.err);
        continue;
      }
      Result vl = d.docker({"load", "-i", tar.string()});
      CHECK_MESSAGE(vl.status == 0, vl.describe());
      Result vr = d.docker({"run", "--rm", "--network", "none", "variant:1"});
      CHECK_MESSAGE(vr.out == kExpectedRun, vr.describe());
      CHECK(d.docker({"rmi", "variant:1"}).status == 0);
    }
  });
  root.check_no_mounts();
}
