// tests/e2e/base_history_test.cpp — base images whose history does not describe their
// layers one to one (tools that write no history at all) still build, as with BuildKit:
// the missing entries are added below everything.
#include "base/digest.h"
#include "base/json.h"
#include "e2e_util.h"

using builder::e2e::Result;
using builder::e2e::TestRoot;
namespace fs = std::filesystem;

namespace {

std::string blob_path(const fs::path& layout, const std::string& digest) {
  return (layout / "blobs" / "sha256" / digest.substr(digest.find(':') + 1)).string();
}

/// Writes `data` as a blob of the layout and returns its descriptor fields.
builder::base::Json put_blob(const fs::path& layout, const std::string& data, const std::string& media_type) {
  std::string digest = builder::base::Digest::of(data).str();
  builder::e2e::write_file(blob_path(layout, digest), data);
  return {{"mediaType", media_type}, {"digest", digest}, {"size", data.size()}};
}

/// The config of the image an OCI layout's index names first.
builder::base::Json first_config(const fs::path& layout) {
  using builder::base::Json;
  Json index = Json::parse(builder::e2e::slurp(layout / "index.json"));
  Json manifest = Json::parse(builder::e2e::slurp(blob_path(layout, index["manifests"][0]["digest"])));
  return Json::parse(builder::e2e::slurp(blob_path(layout, manifest["config"]["digest"])));
}

}  // namespace

TEST_CASE("e2e: a base image without history builds, its layers get empty entries") {
  if (!builder::test::have_root()) return;
  using builder::base::Json;
  TestRoot root;
  REQUIRE(root.import_busybox());

  // busybox as an OCI layout, then rewritten without "history" under the name nohist.
  fs::path layout = root.work() / "layout";
  fs::create_directories(layout);
  Result s = root.builder({"save", "--format", "oci", "-o", "busybox.tar", "busybox"});
  REQUIRE_MESSAGE(s.status == 0, s.describe());
  REQUIRE(builder::e2e::run_process({"tar", "-xf", "busybox.tar", "-C", layout.string()}, root.work().string())
              .status == 0);
  Json index = Json::parse(builder::e2e::slurp(layout / "index.json"));
  Json manifest = Json::parse(builder::e2e::slurp(blob_path(layout, index["manifests"][0]["digest"])));
  Json config = Json::parse(builder::e2e::slurp(blob_path(layout, manifest["config"]["digest"])));
  REQUIRE(config.contains("history"));
  size_t base_layers = config["rootfs"]["diff_ids"].size();
  config.erase("history");
  manifest["config"] = put_blob(layout, config.dump(), manifest["config"]["mediaType"]);
  Json desc = put_blob(layout, manifest.dump(), manifest["mediaType"]);
  desc["annotations"] = {{"io.containerd.image.name", "docker.io/library/nohist:latest"},
                         {"org.opencontainers.image.ref.name", "latest"}};
  index["manifests"] = Json::array({desc});
  builder::e2e::write_file(layout / "index.json", index.dump());
  fs::remove(layout / "manifest.json");
  REQUIRE(builder::e2e::run_process({"tar", "-cf", "../nohist.tar", "."}, layout.string()).status == 0);
  Result l = root.builder({"load", "-i", "nohist.tar"});
  REQUIRE_MESSAGE(l.status == 0, l.describe());

  builder::e2e::write_file(root.work() / "ctx" / "Dockerfile", "FROM nohist\nRUN echo child > /child\n");
  Result b = root.builder({"build", "-q", "-t", "child", (root.work() / "ctx").string()});
  REQUIRE_MESSAGE(b.status == 0, b.describe());
  Result r = root.builder({"run", "--rm", "child", "cat", "/child"});
  CHECK_MESSAGE(r.out == "child\n", r.describe());

  // The child's history: one undated, unnamed entry per base layer, then the RUN.
  fs::path out = root.work() / "child";
  fs::create_directories(out);
  REQUIRE(root.builder({"save", "--format", "oci", "-o", "child.tar", "child"}).status == 0);
  REQUIRE(builder::e2e::run_process({"tar", "-xf", "child.tar", "-C", out.string()}, root.work().string()).status ==
          0);
  Json child = first_config(out);
  REQUIRE(child["history"].size() == base_layers + 1);
  for (size_t i = 0; i < base_layers; ++i) CHECK(child["history"][i] == Json::object());
  CHECK(child["history"][base_layers]["created_by"] == "RUN /bin/sh -c echo child > /child # buildkit");
  CHECK(child["rootfs"]["diff_ids"].size() == base_layers + 1);
  root.check_no_mounts();
}
