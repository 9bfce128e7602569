// tests/ops/cache_config_test.cpp — the remote cache's format (cache config, manifest,
// inline form) and an import/export round trip between two roots through an OCI
// layout directory.
#include <sys/stat.h>

#include <ctime>

#include "base/digest.h"
#include "base/error.h"
#include "base/fs.h"
#include "base/json.h"
#include "base/temp_dir.h"
#include "base/time.h"
#include "cache/store.h"
#include "image/layer.h"
#include "solver/ops/cache_config.h"
#include "solver/ops/remote_cache.h"
#include "test_util.h"

using namespace builder;
using ops::CacheConfig;
using ops::CacheLayer;

namespace {

base::Digest dg(const std::string& s) { return base::Digest::of(s); }

CacheLayer layer(const std::string& name, int64_t created = 1700000000) {
  return CacheLayer{image::Descriptor{image::kMediaTypeLayerGzip, dg("blob-" + name), 100 + name.size()},
                    dg("diff-" + name), -1, created};
}

/// Two records sharing a bottom layer, and a cache mount.
CacheConfig sample() {
  CacheConfig c;
  int base = c.add_chain({layer("a")});
  int run = c.add_chain({layer("a"), layer("b")});
  int other = c.add_chain({layer("a"), layer("c")});
  c.records.push_back({"sha256:" + std::string(64, '1'), base});
  c.records.push_back({"sha256:" + std::string(64, '2'), run});
  c.records.push_back({"sha256:" + std::string(64, '3'), other});
  c.mounts.push_back({"apt", c.add_chain({layer("m")})});
  return c;
}

}  // namespace

TEST_CASE("cache config: chains share layers with the same blob and parent") {
  CacheConfig c = sample();
  CHECK(c.layers.size() == 4);  // a, b on a, c on a, m
  CHECK(c.chain(c.records[1].layer) == std::vector<int>{0, 1});
  CHECK(c.chain(c.records[2].layer) == std::vector<int>{0, 2});
  CHECK(c.layers[1].parent == 0);
  CHECK(c.add_chain({layer("b")}) == 4);  // b without a below it is another layer
}

TEST_CASE("cache config: encode and decode round trip") {
  CacheConfig c = sample();
  std::string json = c.encode();
  CacheConfig d = CacheConfig::decode(json);
  REQUIRE(d.layers.size() == c.layers.size());
  for (size_t i = 0; i < c.layers.size(); ++i) {
    CHECK(d.layers[i].blob.digest == c.layers[i].blob.digest);
    CHECK(d.layers[i].blob.size == c.layers[i].blob.size);
    CHECK(d.layers[i].blob.media_type == c.layers[i].blob.media_type);
    CHECK(d.layers[i].diff_id == c.layers[i].diff_id);
    CHECK(d.layers[i].parent == c.layers[i].parent);
    CHECK(d.layers[i].created == 1700000000);
  }
  REQUIRE(d.records.size() == 3);
  CHECK(d.find("sha256:" + std::string(64, '2'))->layer == c.records[1].layer);
  CHECK(d.find("sha256:" + std::string(64, '9')) == nullptr);
  REQUIRE(d.mounts.size() == 1);
  CHECK(d.mounts[0].id == "apt");
  CHECK(d.encode() == json);  // deterministic
  // BuildKit's shape: layers with blob/parent/annotations, records with digest/layers.
  auto j = base::Json::parse(json);
  CHECK(j["layers"][1]["blob"] == dg("blob-b").str());
  CHECK(j["layers"][1]["annotations"]["diffID"] == dg("diff-b").str());
  CHECK(j["layers"][1]["annotations"]["createdAt"] == "2023-11-14T22:13:20Z");
  CHECK(j["records"][1]["layers"][0]["layer"] == 1);
  CHECK(j[ops::kCacheMountsField][0]["id"] == "apt");
}

TEST_CASE("cache config: BuildKit's omitted parent is 0, annotations come from descriptors") {
  // A config as BuildKit writes it: parent 0 omitted (omitempty), annotations on the
  // index's descriptors instead.
  std::string a = dg("blob-a").str(), b = dg("blob-b").str();
  std::string json = R"({"layers":[{"blob":")" + a + R"(","parent":-1},{"blob":")" + b +
                     R"("}],"records":[{"digest":"sha256:k1"},{"digest":"sha256:k2","layers":[{"layer":1}]}]})";
  std::vector<std::pair<image::Descriptor, base::Json>> descs;
  descs.push_back({image::Descriptor{image::kMediaTypeLayerGzip, dg("blob-a"), 10},
                   {{ops::kAnnotationUncompressed, dg("diff-a").str()}, {ops::kAnnotationCreatedAt, "2024-01-02T03:04:05Z"}}});
  descs.push_back({image::Descriptor{image::kMediaTypeLayerGzip, dg("blob-b"), 20},
                   {{ops::kAnnotationUncompressed, dg("diff-b").str()}}});
  CacheConfig c = CacheConfig::decode(json, descs);
  REQUIRE(c.layers.size() == 2);
  CHECK(c.layers[1].parent == 0);
  CHECK(c.layers[0].diff_id == dg("diff-a"));
  CHECK(c.layers[0].created == base::parse_rfc3339("2024-01-02T03:04:05Z"));
  CHECK(c.layers[1].blob.size == 20);
  REQUIRE(c.records.size() == 1);  // the record without a result is a link only
  CHECK(c.records[0].key == "sha256:k2");
  CHECK(c.chain(c.records[0].layer) == std::vector<int>{0, 1});
}

TEST_CASE("cache config: damaged configs are errors") {
  std::string a = dg("blob-a").str(), d = dg("diff-a").str();
  auto with = [&](const std::string& layers, const std::string& records = "[]") {
    return R"({"layers":)" + layers + R"(,"records":)" + records + "}";
  };
  std::string ann = R"("annotations":{"diffID":")" + d + R"(","size":1})";
  CHECK_THROWS_WITH_AS(CacheConfig::decode("not json"), "malformed cache config: not a JSON object", base::Error);
  CHECK_THROWS_WITH_AS(CacheConfig::decode(with(R"([{"blob":")" + a + R"(","parent":0,)" + ann + "}]")),
                       "malformed cache config: a layer is its own ancestor", base::Error);
  CHECK_THROWS_WITH_AS(CacheConfig::decode(with(R"([{"blob":")" + a + R"(","parent":5,)" + ann + "}]")),
                       "malformed cache config: layer index 5 out of range", base::Error);
  const std::string no_diff = "malformed cache config: layer " + a + " has no diff id";
  CHECK_THROWS_WITH_AS(CacheConfig::decode(with(R"([{"blob":")" + a + R"(","parent":-1}])")), no_diff.c_str(),
                       base::Error);
  CHECK_THROWS_WITH_AS(
      CacheConfig::decode(with(R"([{"blob":")" + a + R"(","parent":-1,)" + ann + "}]",
                               R"([{"digest":"sha256:k","layers":[{"layer":3}]}])")),
      "malformed cache config: layer index 3 out of range", base::Error);
  CHECK_THROWS_AS(CacheConfig::decode(with(R"([{"blob":"sha256:nothex","parent":-1}])")), base::Error);
}

TEST_CASE("cache config: the manifest lists each blob once with its diff id") {
  CacheConfig c = sample();
  std::string cfg = c.encode();
  auto m = base::Json::parse(c.manifest(cfg));
  CHECK(m["mediaType"] == image::kMediaTypeManifest);
  CHECK(m["config"]["mediaType"] == ops::kMediaTypeCacheConfig);
  CHECK(m["config"]["digest"] == base::Digest::of(cfg).str());
  REQUIRE(m["layers"].size() == 4);
  CHECK(m["layers"][0]["annotations"][ops::kAnnotationUncompressed] == dg("diff-a").str());
  // Read back through config_from_manifest, as a registry or layout reader does.
  ops::ManifestReader reader;
  reader.blob = [&](const image::Descriptor& d) {
    REQUIRE(d.digest == base::Digest::of(cfg));
    return cfg;
  };
  auto back = ops::config_from_manifest(image::kMediaTypeManifest, c.manifest(cfg), reader);
  REQUIRE(back);
  CHECK(back->encode() == cfg);
}

TEST_CASE("cache config: BuildKit's index form is read") {
  CacheConfig c = sample();
  std::string cfg = c.encode();
  base::Json index = {{"schemaVersion", 2}, {"mediaType", image::kMediaTypeIndex}, {"manifests", base::Json::array()}};
  index["manifests"].push_back({{"mediaType", image::kMediaTypeLayerGzip}, {"digest", dg("blob-a").str()}, {"size", 101}});
  index["manifests"].push_back(
      {{"mediaType", ops::kMediaTypeCacheConfig}, {"digest", base::Digest::of(cfg).str()}, {"size", cfg.size()}});
  ops::ManifestReader reader;
  reader.blob = [&](const image::Descriptor&) { return cfg; };
  auto back = ops::config_from_manifest(image::kMediaTypeIndex, index.dump(), reader);
  REQUIRE(back);
  CHECK(back->records.size() == 3);
}

TEST_CASE("cache config: inline form keeps the image's own chain") {
  CacheConfig c = sample();
  std::vector<base::Digest> image_diffs{dg("diff-a"), dg("diff-b")};
  auto value = ops::encode_inline(c, image_diffs);
  REQUIRE(value);
  // BuildKit's inline value: base64 of the JSON records.
  CHECK(value->find('{') == std::string::npos);

  image::Image img;
  img.layers = {image::Descriptor{image::kMediaTypeLayerGzip, dg("blob-a"), 101},
                image::Descriptor{image::kMediaTypeLayerGzip, dg("blob-b"), 101}};
  img.diff_ids = image_diffs;
  img.config = {{"rootfs", {{"type", "layers"}, {"diff_ids", {dg("diff-a").str(), dg("diff-b").str()}}}},
                {"history",
                 {{{"created", "2024-01-01T00:00:00Z"}},
                  {{"created", "2024-01-01T00:00:01Z"}, {"empty_layer", true}},
                  {{"created", "2024-01-02T00:00:00Z"}}}},
                {ops::kInlineCacheField, *value}};
  auto back = ops::decode_inline(img);
  REQUIRE(back);
  // Records 1 (a) and 2 (a, b) are prefixes of the image; 3 (a, c) is not.
  REQUIRE(back->records.size() == 2);
  CHECK(back->find("sha256:" + std::string(64, '3')) == nullptr);
  auto chain = back->chain(back->find("sha256:" + std::string(64, '2'))->layer);
  REQUIRE(chain.size() == 2);
  CHECK(back->layers[static_cast<size_t>(chain[1])].blob.digest == dg("blob-b"));
  CHECK(back->layers[static_cast<size_t>(chain[1])].created == base::parse_rfc3339("2024-01-02T00:00:00Z"));

  CHECK_FALSE(ops::encode_inline(c, {dg("diff-x")}));  // no record fits
  img.config.erase(ops::kInlineCacheField);
  CHECK_FALSE(ops::decode_inline(img));
  img.config[ops::kInlineCacheField] = "!!!";
  CHECK_THROWS_AS(ops::decode_inline(img), base::Error);
}

TEST_CASE("remote cache: a result exported from one root is imported by another") {
  if (!test::have_root()) return;  // snapshots carry trusted.* xattrs and owners
  base::TempDir tmp("/tmp", "cache-config-test-");
  std::string layout = tmp.path() + "/layout";
  const std::string key = "sha256:" + std::string(64, 'a');
  const int64_t created = 1600000000;
  base::Digest diff;
  {
    cache::Store a(tmp.path() + "/a");
    auto pending = a.snapshots().create();
    base::write_file_atomic(pending.fs_dir() + "/hello.txt", "hello from a\n");
    std::string id = pending.commit("");
    a.db().exec("UPDATE snapshots SET created=?1 WHERE id=?2", {static_cast<long long>(created), id});
    ops::RemoteCache rc(a, [](const std::string& w) { FAIL(w); });
    ops::Result r{{id}, {}, {}};
    rc.note(key, r);
    rc.note("sha256:" + std::string(64, 'l'), ops::Result{{}, "/ctx", {}});  // local results are never exported
    auto cfg = rc.make_config(r, ops::CacheMode::Min, false, [&](const ops::Result& res, size_t i) {
      auto blob = image::write_layer(a.snapshots().fs_path(res.layers[i]), {}, a.blobs());
      a.snapshots().set_blob(res.layers[i], blob.diff_id.str(), blob.digest.str(), static_cast<int64_t>(blob.size),
                             image::kMediaTypeLayerGzip);
      return blob;
    });
    REQUIRE(cfg.records.size() == 1);
    diff = cfg.layers[0].diff_id;
    ops::local_cache_dir(layout)->write(cfg, a.blobs());
  }
  CHECK(base::path_exists(layout + "/index.json"));
  CHECK(base::path_exists(layout + "/oci-layout"));

  cache::Store b(tmp.path() + "/b");
  std::vector<std::string> warnings;
  ops::RemoteCache rc(b, [&](const std::string& w) { warnings.push_back(w); });
  rc.add_import(ops::local_cache_dir(layout));
  CHECK(rc.has_imports());
  CHECK_FALSE(rc.import("sha256:" + std::string(64, 'b')));
  auto got = rc.import(key);
  REQUIRE(got);
  REQUIRE(got->layers.size() == 1);
  CHECK(base::read_file(b.snapshots().fs_path(got->layers[0]) + "/hello.txt") == "hello from a\n");
  auto info = b.snapshots().get(got->layers[0]);
  REQUIRE(info);
  CHECK(info->created == created);
  CHECK(info->diff_id == diff.str());
  CHECK(warnings.empty());

  // A missing cache and a damaged one are warnings, not errors.
  ops::RemoteCache rc2(b, [&](const std::string& w) { warnings.push_back(w); });
  rc2.add_import(ops::local_cache_dir(tmp.path() + "/nowhere"));
  base::write_file_atomic(layout + "/index.json", "{broken");
  rc2.add_import(ops::local_cache_dir(layout));
  CHECK_FALSE(rc2.has_imports());
  REQUIRE(warnings.size() == 2);
  CHECK(warnings[0] == "no cache found in local cache " + tmp.path() + "/nowhere");
  CHECK(warnings[1] == "failed to read local cache " + layout + ": " + layout + "/index.json: not an OCI image index");
}
