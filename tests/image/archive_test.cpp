#include "image/archive.h"

#include <sys/stat.h>

#include <optional>

#include "base/error.h"
#include "image/layer.h"
#include "image_test_util.h"

using namespace builder;
using test::Root;

namespace {

/// A two-layer image tagged `name` in `r`; returns its manifest digest.
base::Digest make_image(Root& r, image::ImageStore& images, const std::string& name) {
  std::string u1 = r.path("l1"), u2 = r.path("l2");
  base::make_dirs(u1 + "/etc");
  base::write_file_atomic(u1 + "/etc/os-release", "ID=test\n");
  base::make_dirs(u2 + "/app");
  base::write_file_atomic(u2 + "/app/run.sh", "#!/bin/sh\necho hi\n", 0755);
  auto l1 = image::write_dir_layer(u1, r.store.blobs());
  auto l2 = image::write_layer(u2, r.store.blobs());
  base::Json cfg = {{"created", "2024-01-01T00:00:00Z"},
                    {"architecture", "amd64"},
                    {"os", "linux"},
                    {"config", {{"Env", {"PATH=/usr/bin:/bin"}}, {"Cmd", {"/app/run.sh"}}}},
                    {"rootfs", {{"type", "layers"}, {"diff_ids", {l1.diff_id.str(), l2.diff_id.str()}}}},
                    {"history", {{{"created_by", "one"}}, {{"created_by", "two"}}}}};
  auto m = images.write_image(cfg, {l1, l2});
  images.tag(name, m);
  return m;
}

base::Json tar_json(const std::string& tar, const std::string& member, const std::string& tmp) {
  base::make_dirs(tmp);
  REQUIRE(test::run("tar -xf " + tar + " -C " + tmp + " " + member) == 0);
  return base::Json::parse(base::read_file(tmp + "/" + member));
}

}  // namespace

TEST_CASE("archive: OCI save then load into a fresh root keeps image ID, manifest and name") {
  Root a;
  image::ImageStore ia(a.store);
  auto m = make_image(a, ia, "myapp:1.0");
  auto img = ia.load(m);
  std::string out = a.path("out.tar");
  image::save_oci_archive(ia, {"myapp:1.0"}, out);

  auto names = test::tar_names(out);
  CHECK(std::find(names.begin(), names.end(), "oci-layout") != names.end());
  CHECK(std::find(names.begin(), names.end(), "blobs/sha256/" + std::string(m.hex())) != names.end());
  auto index = tar_json(out, "index.json", a.path("x"));
  CHECK(index["schemaVersion"] == 2);
  CHECK(index["mediaType"] == image::kMediaTypeIndex);
  CHECK(index["manifests"][0]["digest"] == m.str());
  CHECK(index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "1.0");
  CHECK(index["manifests"][0]["annotations"]["io.containerd.image.name"] == "docker.io/library/myapp:1.0");
  CHECK(tar_json(out, "oci-layout", a.path("y")) == base::Json::parse(R"({"imageLayoutVersion":"1.0.0"})"));

  Root b;
  image::ImageStore ib(b.store);
  CHECK(image::load_archive(ib, out) == std::vector<std::string>{"myapp:1.0"});
  auto got = ib.resolve("myapp:1.0");
  REQUIRE(got.has_value());
  CHECK(got->config_digest == img.config_digest);
  CHECK(got->manifest_digest == m);
  for (const auto& l : got->layers) CHECK(b.store.blobs().verify(l.digest));

  // External tools read it.
  CHECK(test::run("skopeo inspect oci-archive:" + out + ":1.0") == 0);
  std::string bundle = a.path("bundle");
  CHECK(test::run("cd " + a.dir.path() + " && mkdir -p layout && tar -xf out.tar -C layout && "
                                         "umoci unpack --image layout:1.0 " + bundle) == 0);
  CHECK(base::read_file(bundle + "/rootfs/app/run.sh") == "#!/bin/sh\necho hi\n");

  // What skopeo writes loads too (docker-archive with <hex>.tar layers, and OCI).
  std::string sk = a.path("skopeo-docker.tar");
  REQUIRE(test::run("skopeo copy oci-archive:" + out + ":1.0 docker-archive:" + sk + ":skopeo/img:1") == 0);
  Root c;
  image::ImageStore ic(c.store);
  CHECK(image::load_archive(ic, sk) == std::vector<std::string>{"skopeo/img:1"});
  CHECK(ic.resolve("skopeo/img:1")->config_digest == img.config_digest);
  std::string sko = a.path("skopeo-oci.tar");
  REQUIRE(test::run("skopeo copy oci-archive:" + out + ":1.0 oci-archive:" + sko + ":other/name:2") == 0);
  CHECK(image::load_archive(ic, sko) == std::vector<std::string>{"other/name:2"});
  CHECK(ic.resolve("other/name:2")->config_digest == img.config_digest);
}

TEST_CASE("archive: docker archive round trip, readable by skopeo") {
  Root a;
  image::ImageStore ia(a.store);
  auto m = make_image(a, ia, "user/web:v2");
  ia.tag("web-alias", m);
  auto img = ia.load(m);
  std::string out = a.path("docker.tar");
  image::save_docker_archive(ia, {"user/web:v2", "web-alias"}, out);

  auto manifest = tar_json(out, "manifest.json", a.path("x"));
  REQUIRE(manifest.size() == 1);
  CHECK(manifest[0]["Config"] == "blobs/sha256/" + std::string(img.config_digest.hex()));
  CHECK(manifest[0]["RepoTags"] == base::Json({"user/web:v2", "web-alias:latest"}));
  CHECK(manifest[0]["Layers"].size() == 2);
  CHECK(manifest[0]["Layers"][1] == "blobs/sha256/" + std::string(img.layers[1].digest.hex()));
  auto repos = tar_json(out, "repositories", a.path("y"));
  CHECK(repos["user/web"]["v2"] == std::string(img.layers[1].digest.hex()));

  CHECK(test::run("skopeo inspect docker-archive:" + out) == 0);
  // A copy re-reads every layer and checks it against the config's diff ids.
  CHECK(test::run("skopeo copy docker-archive:" + out + " oci:" + a.path("copy") + ":v2") == 0);

  Root b;
  image::ImageStore ib(b.store);
  CHECK(image::load_archive(ib, out) == std::vector<std::string>{"user/web:v2", "web-alias:latest"});
  auto got = ib.resolve("user/web:v2");
  REQUIRE(got.has_value());
  CHECK(got->config_digest == img.config_digest);
  CHECK(got->manifest_digest == m);  // same OCI manifest rebuilt from the same blobs
}

TEST_CASE("archive: legacy docker-save layout (<id>/layer.tar, <id>.json) loads") {
  Root r;
  image::ImageStore images(r.store);
  std::string layer_tar = r.path("layer.tar");
  test::make_tar(layer_tar, {{"hello", 'f', "world"}});
  std::string layer = base::read_file(layer_tar);
  auto diff_id = base::Digest::of(layer);
  std::string cfg = R"({"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[")" +
                    diff_id.str() + R"("]}})";
  std::string id(base::Digest::of(cfg).hex());
  std::string manifest = R"([{"Config":")" + id + R"(.json","RepoTags":["old:1"],"Layers":["abc/layer.tar","def/layer.tar"]}])";
  // def/layer.tar is a symlink to abc's, as old Docker wrote repeated layers
  std::string cfg2 = R"({"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[")" +
                     diff_id.str() + R"(",")" + diff_id.str() + R"("]}})";
  std::string id2(base::Digest::of(cfg2).hex());
  manifest = R"([{"Config":")" + id2 + R"(.json","RepoTags":["old:1"],"Layers":["abc/layer.tar","def/layer.tar"]}])";
  std::string tar = r.path("legacy.tar");
  test::make_tar(tar, {{"abc/", 'd', "", 0755},
                       {"abc/VERSION", 'f', "1.0"},
                       {"abc/json", 'f', "{}"},
                       {"abc/layer.tar", 'f', layer},
                       {"def/", 'd', "", 0755},
                       {"def/layer.tar", 'l', "../abc/layer.tar"},
                       {id2 + ".json", 'f', cfg2},
                       {"manifest.json", 'f', manifest},
                       {"repositories", 'f', R"({"old":{"1":"def"}})"}});
  CHECK(image::load_archive(images, tar) == std::vector<std::string>{"old:1"});
  auto img = images.resolve("old:1");
  REQUIRE(img.has_value());
  CHECK(img->config_digest.hex() == id2);
  REQUIRE(img->layers.size() == 2);
  CHECK(img->layers[0].digest == diff_id);  // stored as the plain tar it was
  CHECK(img->layers[0].media_type == image::kMediaTypeLayerTar);
  base::Fd fd = r.store.blobs().open(img->layers[0].digest);
  std::string dest = r.path("dest");
  base::make_dirs(dest);
  CHECK(image::apply_layer(fd.get(), dest) == diff_id);
  CHECK(base::read_file(dest + "/hello") == "world");
}

TEST_CASE("archive: a corrupt blob or a `..` entry loads nothing") {
  Root a;
  image::ImageStore ia(a.store);
  make_image(a, ia, "good:1");
  std::string out = a.path("oci.tar");
  image::save_oci_archive(ia, {"good:1"}, out);

  // Flip the content of one layer blob (same size, so the tar stays well formed).
  std::string dir = a.path("unpacked");
  base::make_dirs(dir);
  REQUIRE(test::run("tar -xf " + out + " -C " + dir) == 0);
  auto img = ia.resolve("good:1");
  std::string victim = dir + "/blobs/sha256/" + std::string(img->config_digest.hex());
  std::string data = base::read_file(victim);
  data[data.size() / 2] ^= 1;
  base::write_file_atomic(victim, data);
  std::string bad = a.path("bad.tar");
  REQUIRE(test::run("tar -cf " + bad + " -C " + dir + " .") == 0);

  Root b;
  image::ImageStore ib(b.store);
  try {
    image::load_archive(ib, bad);
    FAIL("loaded");
  } catch (const base::Error& e) {
    CHECK(std::string(e.what()).find("digest mismatch") != std::string::npos);
  }
  CHECK(ib.list().empty());

  std::string evil = a.path("evil.tar");
  test::make_tar(evil, {{"../escape", 'f', "x"}});
  CHECK_THROWS_WITH_AS(image::load_archive(ib, evil),
                       doctest::Contains("refusing tar entry `../escape`: path escapes the destination"), base::Error);
  CHECK_FALSE(base::path_exists(b.dir.path() + "/escape"));

  std::string junk = a.path("junk.tar");
  test::make_tar(junk, {{"hello", 'f', "x"}});
  CHECK_THROWS_WITH_AS(image::load_archive(ib, junk),
                       doctest::Contains("not an image archive: no manifest.json, nor index.json with oci-layout"),
                       base::Error);
}

TEST_CASE("archive: import makes a one-layer image from a rootfs tar") {
  Root r;
  image::ImageStore images(r.store);
  std::string tar = r.path("rootfs.tar");
  test::make_tar(tar, {{"./", 'd', "", 0755}, {"./bin/", 'd', "", 0755}, {"./bin/true", 'f', "", 0755}});
  std::string gz = tar + ".gz";
  REQUIRE(test::run("gzip -k " + tar) == 0);

  auto id = image::import_rootfs(images, gz, "imported:v1", {{"Env", {"PATH=/x", "A=1"}}, {"Cmd", {"/bin/true"}}});
  auto img = images.resolve("imported:v1");
  REQUIRE(img.has_value());
  CHECK(img->config_digest.str() == id);
  CHECK(images.resolve(id)->manifest_digest == img->manifest_digest);
  const auto& c = img->config;
  CHECK(c["architecture"] == "amd64");
  CHECK(c["os"] == "linux");
  CHECK(c["config"]["Env"] == base::Json({"PATH=/x", "A=1"}));
  CHECK(c["config"]["Cmd"] == base::Json({"/bin/true"}));
  CHECK(c["rootfs"]["type"] == "layers");
  CHECK(c["rootfs"]["diff_ids"] == base::Json({base::Digest::of(base::read_file(tar)).str()}));
  CHECK(c["history"][0]["created_by"] == "builder import");
  CHECK(c["created"].get<std::string>().size() == 20);
  CHECK(img->layers[0].media_type == image::kMediaTypeLayerGzip);

  auto plain = image::import_rootfs(images, tar, "imported:plain");
  CHECK(images.resolve("imported:plain")->diff_ids == img->diff_ids);
  CHECK(images.resolve("imported:plain")->config["config"]["Env"] ==
        base::Json({"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}));

  std::string notatar = r.path("not.tar");
  base::write_file_atomic(notatar, std::string(3000, 'z'));
  CHECK_THROWS_AS(image::import_rootfs(images, notatar, "x"), base::Error);
  CHECK_FALSE(images.resolve("x").has_value());
}
