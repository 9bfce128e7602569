// tests/e2e/export_test.cpp — `builder build --output`: every exporter type, several at
// once, each compression (media types and blobs that really decompress), Docker media
// types, OCI layout directories checked by oci-image-tool and umoci, tar streams on
// stdout, bad keys that write nothing, and SOURCE_DATE_EPOCH reproducibility across two
// empty roots.
#include <regex>
#include <set>
#include <thread>

#include "base/json.h"
#include "e2e_util.h"
#include "registry_util.h"

namespace {

using builder::base::Json;
using builder::e2e::Result;
using builder::e2e::run_process;
using builder::e2e::slurp;
using builder::e2e::TestRoot;
using builder::e2e::testdata;
namespace fs = std::filesystem;

const std::string kCtx = testdata("e2e/export");

/// Unpacks an archive into `dir` (created) with the host's tar.
void untar(const fs::path& tar, const fs::path& dir) {
  fs::create_directories(dir);
  Result x = run_process({"tar", "-C", dir.string(), "-xf", tar.string()});
  REQUIRE_MESSAGE(x.status == 0, x.describe());
}

Json read_json(const fs::path& p) {
  REQUIRE_MESSAGE(fs::exists(p), p);
  return Json::parse(slurp(p));
}

fs::path blob(const fs::path& layout, const std::string& digest) {
  return layout / "blobs" / "sha256" / digest.substr(7);
}

/// The manifest of the only image in an OCI layout directory.
Json layout_manifest(const fs::path& layout) {
  Json index = read_json(layout / "index.json");
  REQUIRE(index["manifests"].size() >= 1);
  return read_json(blob(layout, index["manifests"][0]["digest"].get<std::string>()));
}

/// Decompresses `file` with the host tool for `media_type` and lists it with tar:
/// proves the blob is what its media type says.
std::string list_layer(const fs::path& file, const std::string& media_type) {
  std::string cat = "cat";
  if (media_type.find("zstd") != std::string::npos) cat = "zstd -dc";
  else if (media_type.find("gzip") != std::string::npos) cat = "gzip -dc";
  Result r = run_process({"sh", "-c", cat + " < '" + file.string() + "' | tar -tf -"});
  CHECK_MESSAGE(r.status == 0, media_type << " " << file << "\n" << r.describe());
  return r.out;
}

std::string media_type_of(const Json& d) { return d["mediaType"].get<std::string>(); }

bool no_temps_in(const fs::path& dir) {
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(".tmp-") != std::string::npos) return false;
  return true;
}

}  // namespace

TEST_CASE("export: six outputs at once, each in its own format") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  const fs::path w = root.work();
  Result b = root.builder({"build", "--progress=plain", "-t", "exp:one",
                           "-o", "type=image,name=exp:plain,compression=uncompressed",
                           "-o", "type=oci,dest=" + (w / "img.tar").string() + ",compression=zstd",
                           "-o", "type=docker,dest=" + (w / "docker.tar").string(),
                           "-o", "type=oci,tar=false,dest=" + (w / "layout").string(),
                           "-o", "type=local,dest=" + (w / "tree").string(),
                           "-o", "type=tar,dest=" + (w / "tree.tar").string(), kCtx});
  REQUIRE_MESSAGE(b.status == 0, b.describe());
  CHECK(no_temps_in(w));

  // type=image: the store has the uncompressed image under name=, and -t is not used
  // for it (name= wins); the image runs.
  Result ins = root.builder({"inspect", "exp:plain"});
  CHECK_MESSAGE(ins.status == 0, ins.describe());
  Result run = root.builder({"run", "--rm", "exp:plain"});
  CHECK_MESSAGE(run.out == "hello from the context\n", run.describe());

  // type=oci with zstd: every layer this build made is zstd and decompresses with zstd;
  // the base image's layer stays gzip (no force-compression).
  untar(w / "img.tar", w / "img");
  Json m = layout_manifest(w / "img");
  CHECK(media_type_of(m) == "application/vnd.oci.image.manifest.v1+json");
  CHECK(m["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json");
  REQUIRE(m["layers"].size() == 4);
  CHECK(media_type_of(m["layers"][0]) == "application/vnd.oci.image.layer.v1.tar+gzip");
  for (size_t i = 1; i < 4; ++i) CHECK(media_type_of(m["layers"][i]) == "application/vnd.oci.image.layer.v1.tar+zstd");
  std::string listed;
  for (const auto& l : m["layers"]) listed += list_layer(blob(w / "img", l["digest"]), media_type_of(l));
  CHECK(listed.find("app/hello.txt") != std::string::npos);
  CHECK(listed.find("app/sub/step2.txt") != std::string::npos);
  // The archive's names: -t (no name= on this output).
  Json idx = read_json(w / "img" / "index.json");
  CHECK(idx["manifests"][0]["annotations"]["io.containerd.image.name"] == "docker.io/library/exp:one");

  // type=docker: Docker media types throughout, manifest.json for docker load.
  untar(w / "docker.tar", w / "docker");
  Json dm = layout_manifest(w / "docker");
  CHECK(media_type_of(dm) == "application/vnd.docker.distribution.manifest.v2+json");
  CHECK(dm["config"]["mediaType"] == "application/vnd.docker.container.image.v1+json");
  for (const auto& l : dm["layers"]) {
    CHECK(media_type_of(l) == "application/vnd.docker.image.rootfs.diff.tar.gzip");
    list_layer(blob(w / "docker", l["digest"]), media_type_of(l));
  }
  Json dj = read_json(w / "docker" / "manifest.json");
  CHECK(dj[0]["RepoTags"][0] == "exp:one");
  CHECK(fs::exists(w / "docker" / "repositories"));

  // type=oci,tar=false: an OCI layout directory the image-spec's validator and umoci read.
  CHECK(fs::exists(w / "layout" / "oci-layout"));
  Json lm = layout_manifest(w / "layout");
  CHECK(lm["layers"].size() == 4);
  if (builder::e2e::require_tool("oci-image-tool")) {
    Result v = run_process({"oci-image-tool", "validate", "--type", "image", (w / "layout").string()});
    CHECK_MESSAGE(v.status == 0, v.describe());
    CHECK_MESSAGE(v.out.find("Validation succeeded") != std::string::npos, v.describe());
  }
  if (builder::e2e::require_tool("umoci")) {
    Result u = run_process({"umoci", "unpack", "--image", (w / "layout").string() + ":one", (w / "bundle").string()});
    CHECK_MESSAGE(u.status == 0, u.describe());
    CHECK(slurp(w / "bundle" / "rootfs" / "app" / "hello.txt") == "hello from the context\n");
  }

  // type=local: the final tree, links kept.
  CHECK(slurp(w / "tree" / "app" / "hello.txt") == "hello from the context\n");
  CHECK(slurp(w / "tree" / "app" / "sub" / "step2.txt") == "step2\n");
  CHECK(fs::is_symlink(w / "tree" / "app" / "hello.sym"));
  CHECK(fs::hard_link_count(w / "tree" / "app" / "built.txt") == 2);
  CHECK(fs::exists(w / "tree" / "bin" / "busybox"));

  // type=tar: the same tree as one stream.
  Result t = run_process({"tar", "-tvf", (w / "tree.tar").string()});
  REQUIRE_MESSAGE(t.status == 0, t.describe());
  for (const auto& p : {"app/", "app/hello.txt", "app/sub/deep.txt", "app/sub/step2.txt", "bin/busybox"})
    CHECK_MESSAGE(t.out.find(std::string(" ") + p + "\n") != std::string::npos, p << "\n" << t.out);
  CHECK_MESSAGE(t.out.find("app/hello.sym -> hello.txt") != std::string::npos, t.out);
  CHECK_MESSAGE(t.out.find("link to app/built") != std::string::npos, t.out);
  root.check_no_mounts();
}

TEST_CASE("export: compressions, force-compression and Docker media types") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  const fs::path w = root.work();
  struct Case {
    std::string opts;
    std::string layer_type;       // every layer's, or this build's with the base kept
    std::string base_layer_type;  // the base image's layer
    std::string manifest_type;
  };
  const std::string oci = "application/vnd.oci.image.manifest.v1+json";
  const std::string docker = "application/vnd.docker.distribution.manifest.v2+json";
  const std::vector<Case> cases = {
      {"compression=gzip", "application/vnd.oci.image.layer.v1.tar+gzip", "application/vnd.oci.image.layer.v1.tar+gzip", oci},
      {"compression=gzip,compression-level=9", "application/vnd.oci.image.layer.v1.tar+gzip",
       "application/vnd.oci.image.layer.v1.tar+gzip", oci},
      {"compression=zstd,compression-level=19", "application/vnd.oci.image.layer.v1.tar+zstd",
       "application/vnd.oci.image.layer.v1.tar+gzip", oci},
      {"compression=zstd,force-compression=true", "application/vnd.oci.image.layer.v1.tar+zstd",
       "application/vnd.oci.image.layer.v1.tar+zstd", oci},
      {"compression=uncompressed", "application/vnd.oci.image.layer.v1.tar", "application/vnd.oci.image.layer.v1.tar+gzip", oci},
      {"compression=uncompressed,force-compression=true", "application/vnd.oci.image.layer.v1.tar",
       "application/vnd.oci.image.layer.v1.tar", oci},
      {"oci-mediatypes=false", "application/vnd.docker.image.rootfs.diff.tar.gzip",
       "application/vnd.docker.image.rootfs.diff.tar.gzip", docker},
      {"oci-mediatypes=false,compression=uncompressed,force-compression=true",
       "application/vnd.docker.image.rootfs.diff.tar", "application/vnd.docker.image.rootfs.diff.tar", docker},
  };
  std::set<std::string> digests;
  int n = 0;
  for (const auto& c : cases) {
    CAPTURE(c.opts);
    const fs::path dir = w / ("layout" + std::to_string(n++));
    Result b = root.builder({"build", "-o", "type=oci,tar=false,dest=" + dir.string() + "," + c.opts, kCtx});
    REQUIRE_MESSAGE(b.status == 0, b.describe());
    Json m = layout_manifest(dir);
    CHECK(media_type_of(m) == c.manifest_type);
    CHECK(m["config"]["mediaType"] == (c.manifest_type == oci ? "application/vnd.oci.image.config.v1+json"
                                                              : "application/vnd.docker.container.image.v1+json"));
    REQUIRE(m["layers"].size() == 4);
    CHECK(media_type_of(m["layers"][0]) == c.base_layer_type);
    std::string listed;
    for (size_t i = 0; i < 4; ++i) {
      if (i > 0) CHECK(media_type_of(m["layers"][i]) == c.layer_type);
      listed += list_layer(blob(dir, m["layers"][i]["digest"]), media_type_of(m["layers"][i]));
    }
    CHECK(listed.find("bin/busybox") != std::string::npos);
    CHECK(listed.find("app/sub/step2.txt") != std::string::npos);
    // The diff ids are the same whatever the compression: one config per case here.
    Json cfg = read_json(blob(dir, m["config"]["digest"]));
    CHECK(cfg["rootfs"]["diff_ids"].size() == 4);
    digests.insert(m["layers"][1]["digest"].get<std::string>() + media_type_of(m["layers"][1]));
  }
  // gzip at another level and zstd give other blobs than the default gzip.
  CHECK(digests.size() >= 5);
  // zstd with Docker media types cannot be honoured: an error, not a silent change.
  Result bad = root.builder({"build", "-o", "type=oci,dest=" + (w / "z.tar").string() + ",compression=zstd,oci-mediatypes=false", kCtx});
  CHECK(bad.status != 0);
  CHECK_MESSAGE(bad.err.find("oci-mediatypes") != std::string::npos, bad.describe());
  CHECK(!fs::exists(w / "z.tar"));
}

TEST_CASE("export: bad --output values are clear errors and write nothing") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  const fs::path w = root.work();
  const std::string d = (w / "out").string();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"type=oci,dest=" + d + ",colour=red", "unknown --output key `colour`"},
      {"type=local,dest=" + d + ",compression=zstd", "--output key `compression` does not apply to type=local"},
      {"type=tar,dest=" + d + ",name=x", "--output key `name` does not apply to type=tar"},
      {"type=image,dest=" + d, "--output key `dest` does not apply to type=image"},
      {"type=docker,dest=" + d + ",compression=zstd", "type=docker cannot hold zstd"},
      {"type=docker,dest=" + d + ",tar=false", "--output key `tar` does not apply to type=docker"},
      {"type=oci,dest=" + d + ",compression=brotli", "compression=brotli"},
      {"type=oci,dest=" + d + ",compression-level=abc", "compression-level=abc: expected a number"},
      {"type=oci,dest=" + d + ",compression=uncompressed,compression-level=3", "level"},
      {"type=oci,dest=" + d + ",tar=maybe", "tar=maybe: expected true or false"},
      {"type=oci", "type=oci needs dest=PATH"},
      {"type=floppy,dest=" + d, "unknown output type `floppy`"},
      {"type=local,dest=-", "dest=- (stdout) is for tar streams"},
      {"type=registry,push=false,name=x", "push=false contradicts it"},
      {"type=image,push=true", "push=true needs a name"},
      {"type=oci,dest=" + d + ",rewrite-timestamp=true", "rewrite-timestamp=true needs SOURCE_DATE_EPOCH"},
  };
  for (const auto& [value, message] : cases) {
    CAPTURE(value);
    Result r = root.builder({"build", "--progress=plain", "-o", value, kCtx});
    CHECK(r.status != 0);
    CHECK_MESSAGE(r.err.find(message) != std::string::npos, r.describe());
    // Refused before the build: no step ran, nothing written.
    CHECK_MESSAGE(r.err.find("[2/4]") == std::string::npos, r.describe());
    CHECK(!fs::exists(d));
  }
  // Two outputs to one place, and a bad SOURCE_DATE_EPOCH.
  Result twice = root.builder({"build", "-o", "type=oci,dest=" + d, "-o", "type=docker,dest=" + d, kCtx});
  CHECK(twice.status != 0);
  CHECK_MESSAGE(twice.err.find("same dest") != std::string::npos, twice.describe());
  Result epoch = root.builder({"build", "--build-arg", "SOURCE_DATE_EPOCH=yesterday", "-o", "type=oci,dest=" + d, kCtx});
  CHECK(epoch.status != 0);
  CHECK_MESSAGE(epoch.err.find("invalid SOURCE_DATE_EPOCH") != std::string::npos, epoch.describe());
  CHECK(!fs::exists(d));
  CHECK(no_temps_in(w));
}

TEST_CASE("export: dest=- streams the tar on stdout, progress stays on stderr") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  const fs::path w = root.work();
  for (const std::string& out : {"type=tar,dest=-", "-", "type=oci,dest=-", "type=docker,dest=-"}) {
    CAPTURE(out);
    Result r = root.builder({"build", "--progress=plain", "-o", out, kCtx});
    REQUIRE_MESSAGE(r.status == 0, r.err);
    CHECK(r.err.find("#1 ") != std::string::npos);  // the progress went to stderr
    builder::e2e::write_file(w / "stream.tar", r.out);
    Result t = run_process({"tar", "-tf", (w / "stream.tar").string()});
    CHECK_MESSAGE(t.status == 0, t.describe());
    if (out.find("oci") != std::string::npos || out.find("docker") != std::string::npos) {
      CHECK(t.out.find("index.json\n") != std::string::npos);
      CHECK(t.out.find("manifest.json\n") != std::string::npos);
    } else {
      CHECK(t.out.find("app/hello.txt\n") != std::string::npos);
      CHECK(t.out.find("bin/busybox\n") != std::string::npos);
    }
  }
}

TEST_CASE("export: exports are atomic and a killed export's leftovers are removed") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  const fs::path w = root.work();
  // A leftover of a killed export (its pid is gone) and one of a live process.
  fs::create_directories(w / "tree.tmp-999999-abc123");
  builder::e2e::write_file(w / "tree.tmp-999999-abc123" / "half", "x");
  builder::e2e::write_file(w / ("img.tar.tmp-" + std::to_string(::getpid()) + "-abc"), "live");
  builder::e2e::write_file(w / "img.tar.tmp-999998-def", "dead");
  // An existing dest directory is merged into (BuildKit's local exporter): the user's
  // files stay, the image's files replace theirs.
  builder::e2e::write_file(w / "tree" / "mine.txt", "keep me");
  builder::e2e::write_file(w / "tree" / "app" / "hello.txt", "old");
  Result b = root.builder({"build", "-o", "type=local,dest=" + (w / "tree").string(), "-o",
                           "type=oci,dest=" + (w / "img.tar").string(), kCtx});
  REQUIRE_MESSAGE(b.status == 0, b.describe());
  CHECK(!fs::exists(w / "tree.tmp-999999-abc123"));
  CHECK(!fs::exists(w / "img.tar.tmp-999998-def"));
  CHECK(fs::exists(w / ("img.tar.tmp-" + std::to_string(::getpid()) + "-abc")));
  CHECK(slurp(w / "tree" / "mine.txt") == "keep me");
  CHECK(slurp(w / "tree" / "app" / "hello.txt") == "hello from the context\n");

  // A failing export leaves nothing: an archive dest that is a directory, a tree dest
  // that is a file.
  fs::create_directories(w / "adir");
  Result f1 = root.builder({"build", "-o", "type=oci,dest=" + (w / "adir").string(), kCtx});
  CHECK(f1.status != 0);
  CHECK_MESSAGE(f1.err.find("is a directory") != std::string::npos, f1.describe());
  builder::e2e::write_file(w / "afile", "x");
  Result f2 = root.builder({"build", "-o", "type=local,dest=" + (w / "afile").string(), kCtx});
  CHECK(f2.status != 0);
  CHECK(slurp(w / "afile") == "x");
  for (const auto& e : fs::directory_iterator(w)) {
    std::string n = e.path().filename().string();
    if (n.find(".tmp-") != std::string::npos) CHECK(n == "img.tar.tmp-" + std::to_string(::getpid()) + "-abc");
  }
}

TEST_CASE("export: SOURCE_DATE_EPOCH and rewrite-timestamp make two empty roots agree byte for byte") {
  if (!builder::test::have_root()) return;
  // One base image archive, loaded into both roots: the same base everywhere.
  TestRoot seed;
  REQUIRE(seed.import_busybox());
  const fs::path base = seed.work() / "busybox-oci.tar";
  Result s = seed.builder({"save", "--format", "oci", "-o", base.string(), "busybox:latest"});
  REQUIRE_MESSAGE(s.status == 0, s.describe());

  const std::string epoch = "1700000000";  // 2023-11-14T22:13:20Z
  struct Built {
    std::string manifest, archive, config;
  };
  auto build = [&](const std::vector<std::string>& extra) {
    TestRoot root;
    Result l = root.builder({"load", "-i", base.string()});
    REQUIRE_MESSAGE(l.status == 0, l.describe());
    const fs::path w = root.work();
    std::vector<std::string> args{"build", "-o", "type=oci,tar=false,dest=" + (w / "layout").string(), "-o",
                                  "type=oci,dest=" + (w / "img.tar").string()};
    for (auto& e : extra) args.push_back(e);
    args.push_back(kCtx);
    Result b = root.builder(args);
    REQUIRE_MESSAGE(b.status == 0, b.describe());
    Json index = read_json(w / "layout" / "index.json");
    Built out;
    out.manifest = index["manifests"][0]["digest"];
    out.archive = slurp(w / "img.tar");
    Json m = read_json(blob(w / "layout", out.manifest));
    out.config = slurp(blob(w / "layout", m["config"]["digest"]));
    return out;
  };
  // rewrite-timestamp is a key of each output: both carry it.
  auto build_rt = [&] {
    TestRoot root;
    Result l = root.builder({"load", "-i", base.string()});
    REQUIRE_MESSAGE(l.status == 0, l.describe());
    const fs::path w = root.work();
    Result b = root.builder({"build", "--build-arg", "SOURCE_DATE_EPOCH=" + epoch, "-o",
                             "type=oci,tar=false,rewrite-timestamp=true,dest=" + (w / "layout").string(), "-o",
                             "type=oci,rewrite-timestamp=true,dest=" + (w / "img.tar").string(), kCtx});
    REQUIRE_MESSAGE(b.status == 0, b.describe());
    Json index = read_json(w / "layout" / "index.json");
    Built out;
    out.manifest = index["manifests"][0]["digest"];
    out.archive = slurp(w / "img.tar");
    Json m = read_json(blob(w / "layout", out.manifest));
    out.config = slurp(blob(w / "layout", m["config"]["digest"]));
    // Every file this build wrote is clamped to the epoch in the layers.
    std::string listed;
    for (size_t i = 1; i < m["layers"].size(); ++i) {
      Result t = run_process({"sh", "-c", "TZ=UTC0 gzip -dc < '" + blob(w / "layout", m["layers"][i]["digest"]).string() +
                                              "' | TZ=UTC0 tar --full-time -tvf -"});
      listed += t.out;
    }
    CHECK_MESSAGE(listed.find("app/sub/step2.txt") != std::string::npos, listed);
    for (const auto& line : builder::e2e::lines_of(listed)) {
      // The date column is at most the epoch (2023-11-14 22:13:20 UTC).
      static const std::regex date(R"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)");
      std::smatch when;
      REQUIRE_MESSAGE(std::regex_search(line, when, date), line);
      CHECK_MESSAGE(when.str() <= "2023-11-14 22:13:20", line);
    }
    return out;
  };
  Built a = build_rt();
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  Built b = build_rt();
  CHECK(a.manifest == b.manifest);
  CHECK(a.config == b.config);
  CHECK_MESSAGE(a.archive == b.archive, "the OCI archives differ");
  Json cfg = Json::parse(a.config);
  CHECK(cfg["created"] == "2023-11-14T22:13:20Z");
  // The base image's history entry keeps its own date; this build's are clamped.
  const auto& h = cfg["history"];
  REQUIRE(h.size() >= 4);
  for (size_t i = 1; i < h.size(); ++i) CHECK_MESSAGE(h[i]["created"] == "2023-11-14T22:13:20Z", h.dump());

  // Without them the two builds disagree (their created times differ).
  Built c = build({});
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  Built d = build({});
  CHECK(c.manifest != d.manifest);
  CHECK(Json::parse(c.config)["created"] != Json::parse(d.config)["created"]);
  // SOURCE_DATE_EPOCH from the environment works as the build arg does (history and
  // created clamped, here without rewrite-timestamp).
  TestRoot env_root;
  REQUIRE(env_root.builder({"load", "-i", base.string()}).status == 0);
  Result e = run_process({"env", "SOURCE_DATE_EPOCH=" + epoch, builder::test::builder_binary(), "--root",
                          env_root.store().string(), "build", "-o",
                          "type=oci,tar=false,dest=" + (env_root.work() / "layout").string(), kCtx});
  REQUIRE_MESSAGE(e.status == 0, e.describe());
  Json em = read_json(blob(env_root.work() / "layout",
                           read_json(env_root.work() / "layout" / "index.json")["manifests"][0]["digest"]));
  Json ec = read_json(blob(env_root.work() / "layout", em["config"]["digest"]));
  CHECK(ec["created"] == "2023-11-14T22:13:20Z");
}

TEST_CASE("export: push=true and type=registry push what the output made; an empty root pulls and runs it") {
  if (!builder::test::have_root()) return;
  builder::e2e::TestRegistry reg;
  if (!reg.started()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  const std::string zref = reg.ref("exp/app:zstd"), gref = reg.ref("exp/app:gzip");
  Result b = root.builder({"build", "--progress=plain", "-t", gref, "-o", "type=image,push=true",
                           "-o", "type=registry,\"name=" + zref + "\",compression=zstd,force-compression=true", kCtx});
  REQUIRE_MESSAGE(b.status == 0, b.describe() << reg.log());
  CHECK_MESSAGE(b.err.find("pushed " + gref + "@sha256:") != std::string::npos, b.describe());
  CHECK_MESSAGE(b.err.find("pushed " + zref + "@sha256:") != std::string::npos, b.describe());
  for (const auto& ref : {gref, zref}) {
    CAPTURE(ref);
    TestRoot empty;
    Result p = empty.builder({"pull", ref});
    REQUIRE_MESSAGE(p.status == 0, p.describe() << reg.log());
    Result run = empty.builder({"run", "--rm", ref});
    CHECK_MESSAGE(run.out == "hello from the context\n", run.describe());
    Result ins = empty.builder({"inspect", ref});
    CHECK(ins.status == 0);
  }
}
