#include "image/store.h"

#include <map>

#include "base/error.h"
#include "image_test_util.h"

using namespace builder;
using test::Root;

TEST_CASE("store: normalize_ref follows Docker's reference rules") {
  std::vector<std::pair<std::string, std::string>> ok = {
      {"busybox", "busybox:latest"},
      {"busybox:1.36", "busybox:1.36"},
      {"library/busybox", "busybox:latest"},
      {"docker.io/library/busybox:1", "busybox:1"},
      {"docker.io/busybox", "busybox:latest"},
      {"index.docker.io/library/alpine:3", "alpine:3"},
      {"index.docker.io/user/app", "user/app:latest"},
      {"docker.io/user/app:v2", "user/app:v2"},
      {"user/app", "user/app:latest"},
      {"ghcr.io/org/app", "ghcr.io/org/app:latest"},
      {"localhost/app", "localhost/app:latest"},
      {"localhost:5000/a/b:t_1.x-y", "localhost:5000/a/b:t_1.x-y"},
      {"registry.example.com:443/x", "registry.example.com:443/x:latest"},
      {"my-reg/x", "my-reg/x:latest"},
      {"a__b/c.d-e", "a__b/c.d-e:latest"},
      {"alpine@sha256:" + std::string(64, 'a'), "alpine@sha256:" + std::string(64, 'a')},
      {"alpine:3@sha256:" + std::string(64, 'b'), "alpine:3@sha256:" + std::string(64, 'b')},
  };
  for (const auto& [in, want] : ok) {
    CAPTURE(in);
    CHECK(image::normalize_ref(in) == want);
  }
  CHECK(image::full_ref("busybox") == "docker.io/library/busybox:latest");
  CHECK(image::full_ref("user/app:1") == "docker.io/user/app:1");
  CHECK(image::full_ref("localhost:5000/x") == "localhost:5000/x:latest");

  std::vector<std::pair<std::string, std::string>> bad = {
      {"", "invalid reference format: empty reference"},
      {"Busybox", "invalid reference format: repository name must be lowercase (`Busybox`)"},
      {"user/App", "invalid reference format: repository name must be lowercase (`user/App`)"},
      {"a:b:c", "invalid reference format: invalid repository name (`a:b:c`)"},
      {"x:", "invalid reference format: invalid tag (`x:`)"},
      {"x:-tag", "invalid reference format: invalid tag (`x:-tag`)"},
      {"x@sha256:123", "invalid reference format: invalid digest (`x@sha256:123`)"},
      {"-x", "invalid reference format: invalid repository name (`-x`)"},
      {"a//b", "invalid reference format: invalid repository name (`a//b`)"},
      {"a_-b", "invalid reference format: invalid repository name (`a_-b`)"},
      {"host:port/x", "invalid reference format: invalid registry host (`host:port/x`)"},
      {std::string(64, 'a'),
       "invalid reference format: repository name cannot be a 64-byte hexadecimal string (`" + std::string(64, 'a') +
           "`)"},
  };
  for (const auto& [in, msg] : bad) {
    CAPTURE(in);
    try {
      image::normalize_ref(in);
      FAIL("accepted");
    } catch (const base::Error& e) {
      CHECK(e.message() == msg);
    }
  }
}

TEST_CASE("store: split_ref") {
  CHECK(image::split_ref("busybox:1") == std::pair<std::string, std::string>{"busybox", "1"});
  CHECK(image::split_ref("localhost:5000/x:t") == std::pair<std::string, std::string>{"localhost:5000/x", "t"});
  CHECK(image::split_ref("x@sha256:" + std::string(64, 'a')) == std::pair<std::string, std::string>{"x", "<none>"});
}

namespace {

/// A one-layer image whose config differs by `label`.
base::Digest make_image(image::ImageStore& images, const std::string& label) {
  image::LayerBlob layer;
  std::string tar(1024, '\0');
  layer.diff_id = base::Digest::of(tar);
  layer.digest = images.store().blobs().put(label + "-layer");  // content is not read here
  layer.size = label.size() + 6;
  base::Json cfg = {{"architecture", "amd64"},
                    {"os", "linux"},
                    {"config", {{"Labels", {{"l", label}}}}},
                    {"rootfs", {{"type", "layers"}, {"diff_ids", {layer.diff_id.str()}}}}};
  return images.write_image(cfg, {layer});
}

}  // namespace

TEST_CASE("store: write, tag, list, resolve and untag") {
  Root r;
  image::ImageStore images(r.store);
  auto m = make_image(images, "one");
  auto img = images.load(m);
  CHECK(img.manifest["schemaVersion"] == 2);
  CHECK(img.manifest["mediaType"] == image::kMediaTypeManifest);
  CHECK(img.manifest["config"]["mediaType"] == image::kMediaTypeConfig);
  CHECK(img.manifest["layers"][0]["mediaType"] == image::kMediaTypeLayerGzip);
  CHECK(img.layers.size() == 1);
  CHECK(img.diff_ids.size() == 1);
  CHECK(img.config["config"]["Labels"]["l"] == "one");
  CHECK(img.config_digest == base::Digest::of(img.config.dump()));

  images.tag("docker.io/library/app", m);
  images.tag("app:v1", m);
  auto list = images.list();
  REQUIRE(list.size() == 2);
  CHECK(list[0].name == "app:latest");
  CHECK(list[1].name == "app:v1");
  CHECK(list[0].manifest_digest == m);
  CHECK(list[0].created > 0);
  CHECK(images.names_of(m) == std::vector<std::string>{"app:latest", "app:v1"});

  std::string id = img.config_digest.str();
  for (std::string ref : {std::string("app"), std::string("app:latest"), std::string("docker.io/library/app:v1"),
                          "app@" + m.str(), m.str(), id, id.substr(7), id.substr(7, 4), id.substr(0, 12)}) {
    CAPTURE(ref);
    auto got = images.resolve(ref);
    REQUIRE(got.has_value());
    CHECK(got->manifest_digest == m);
  }
  CHECK_FALSE(images.resolve("app:nope").has_value());
  CHECK_FALSE(images.resolve("other").has_value());
  CHECK_FALSE(images.resolve(id.substr(7, 3)).has_value());  // too short for a prefix
  CHECK_FALSE(images.resolve(img.layers[0].digest.str()).has_value());

  CHECK(images.untag("app:v1"));
  CHECK_FALSE(images.untag("app:v1"));
  CHECK(images.names_of(m) == std::vector<std::string>{"app:latest"});
}

TEST_CASE("store: an ambiguous image ID prefix is an error, a name wins over a prefix") {
  Root r;
  image::ImageStore images(r.store);
  // Find two labels whose image IDs share four hex digits (hashing only), then store them.
  auto config_of = [](const std::string& label) {
    std::string tar(1024, '\0');
    base::Json cfg = {{"architecture", "amd64"},
                      {"os", "linux"},
                      {"config", {{"Labels", {{"l", label}}}}},
                      {"rootfs", {{"type", "layers"}, {"diff_ids", {base::Digest::of(tar).str()}}}}};
    return std::string(base::Digest::of(cfg.dump()).hex());
  };
  std::map<std::string, std::string> seen;  // prefix -> label
  std::string la, lb, prefix;
  for (int i = 0; prefix.empty(); ++i) {
    std::string label = "img" + std::to_string(i);
    auto p = config_of(label).substr(0, 4);
    if (auto it = seen.find(p); it != seen.end()) {
      la = it->second;
      lb = label;
      prefix = p;
    }
    seen.emplace(p, label);
  }
  auto ma = make_image(images, la);
  auto mb = make_image(images, lb);
  images.tag("a", ma);
  images.tag("b", mb);
  REQUIRE(images.load(ma).config_digest.hex().substr(0, 4) == prefix);
  CHECK_THROWS_WITH_AS(images.resolve(prefix), ("image ID prefix `" + prefix + "` is ambiguous").c_str(), base::Error);
  // a longer prefix is unique again
  auto ida = std::string(images.load(ma).config_digest.hex());
  auto idb = std::string(images.load(mb).config_digest.hex());
  size_t common = 0;
  while (ida[common] == idb[common]) ++common;
  CHECK(images.resolve(ida.substr(0, common + 1))->manifest_digest == ma);
  // a repository named like the prefix wins, as in Docker
  images.tag(prefix, mb);
  CHECK(images.resolve(prefix)->manifest_digest == mb);
}

TEST_CASE("store: load refuses schema 1, indexes and mismatched layer counts; accepts Docker schema 2") {
  Root r;
  image::ImageStore images(r.store);
  auto& blobs = r.store.blobs();

  auto s1 = blobs.put(R"({"schemaVersion":1,"name":"x","tag":"latest","fsLayers":[]})");
  try {
    images.load(s1);
    FAIL("loaded");
  } catch (const base::Error& e) {
    CHECK(e.message() == "manifest " + s1.str() +
                             " is a Docker schema 1 manifest, which is not supported (re-push the image with a "
                             "current Docker)");
  }

  auto idx = blobs.put(R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]})");
  CHECK_THROWS_WITH_AS(images.load(idx), ("manifest " + idx.str() + " is an image index, not an image manifest").c_str(),
                       base::Error);

  std::string cfg = R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}})";
  auto c = blobs.put(cfg);
  auto l = blobs.put("layer");
  base::Json m = {{"schemaVersion", 2},
                  {"mediaType", image::kDockerMediaTypeManifest},
                  {"config", {{"mediaType", image::kDockerMediaTypeConfig}, {"digest", c.str()}, {"size", cfg.size()}}},
                  {"layers", {{{"mediaType", image::kDockerMediaTypeLayer}, {"digest", l.str()}, {"size", 5}}}}};
  auto bad = blobs.put(m.dump());
  CHECK_THROWS_WITH_AS(images.load(bad),
                       ("manifest " + bad.str() + " lists 1 layers but its config has 0 diff ids").c_str(), base::Error);

  m["layers"] = base::Json::array();
  auto good = blobs.put(m.dump());
  auto img = images.load(good);
  CHECK(img.config_digest == c);
  CHECK(img.layers.empty());

  CHECK_THROWS_AS(images.write_image(base::Json::parse(cfg), {image::LayerBlob{}}), base::Error);
  CHECK_THROWS_AS(images.tag("x", base::Digest::of("missing")), base::Error);
}
