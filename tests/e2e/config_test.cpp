// tests/e2e/config_test.cpp — end-to-end: the image config and history a build writes
// match BuildKit's, field by field: a base image built first (testdata/e2e/config-base)
// with ONBUILD triggers, an image using every config instruction on top of it
// (testdata/e2e/config), and a child of that image whose ENTRYPOINT drops the CMD.
// Expected strings follow current BuildKit (dockerfile2llb); docker 20.10's older
// BuildKit writes the same except the EXPOSE, HEALTHCHECK, ARG and COPY --chown texts.
#include <string>
#include <utility>
#include <vector>

#include "base/json.h"
#include "e2e_util.h"

using builder::e2e::Result;
using builder::e2e::testdata;
using builder::e2e::TestRoot;
namespace fs = std::filesystem;
using Json = builder::base::Json;

namespace {

/// The image config blob of `name`, read from `builder save` (an OCI archive).
Json saved_config(const TestRoot& root, const std::string& name) {
  const fs::path tar = root.work() / (name + ".tar");
  const fs::path dir = root.work() / (name + ".x");
  Result s = root.builder({"save", "-o", tar.string(), name});
  REQUIRE_MESSAGE(s.status == 0, s.describe());
  fs::create_directories(dir);
  Result x = builder::e2e::run_process({"tar", "-xf", tar.string(), "-C", dir.string()});
  REQUIRE_MESSAGE(x.status == 0, x.describe());
  auto blob = [&](const std::string& digest) {
    return Json::parse(builder::e2e::slurp(dir / "blobs" / "sha256" / digest.substr(7)));
  };
  Json index = Json::parse(builder::e2e::slurp(dir / "index.json"));
  Json manifest = blob(index["manifests"][0]["digest"].get<std::string>());
  return blob(manifest["config"]["digest"].get<std::string>());
}

/// (created_by, empty_layer) of each history entry whose comment is BuildKit's; the
/// comment of every other entry is returned as "other: <created_by>".
std::vector<std::pair<std::string, bool>> history_of(const Json& config) {
  std::vector<std::pair<std::string, bool>> out;
  for (const auto& h : config["history"]) {
    std::string by = h.value("created_by", "");
    if (h.value("comment", "") != "buildkit.dockerfile.v0") by = "other: " + by;
    out.emplace_back(by, h.value("empty_layer", false));
  }
  return out;
}

// sha256 of an empty tar (two zero records): the layer of a step that changed nothing.
constexpr const char* kEmptyLayerDiffId = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

}  // namespace

TEST_CASE("e2e: image config and history match BuildKit for every config instruction") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  Result base = root.builder({"build", "--progress=plain", "-t", "cfgbase", testdata("e2e/config-base")});
  REQUIRE_MESSAGE(base.status == 0, base.describe());
  Result app = root.builder({"build", "--progress=plain", "-t", "cfgapp", testdata("e2e/config")});
  REQUIRE_MESSAGE(app.status == 0, app.describe());
  // The base's triggers run first, named as BuildKit names them.
  CHECK_MESSAGE(app.err.find("] ONBUILD RUN echo triggered > /onbuild.txt\n") != std::string::npos, app.err);

  Json cfg = saved_config(root, "cfgapp");
  // Go's field order, empty fields left out, map keys sorted; the base's OnBuild is
  // consumed, its labels and environment inherited; CMD sets ArgsEscaped.
  CHECK(cfg["config"].dump() ==
        R"({"User":"1000:1000",)"
        R"("ExposedPorts":{"443/tcp":{},"53/udp":{},"80/tcp":{},"8000/tcp":{},"8001/tcp":{},"8002/tcp":{}},)"
        R"("Env":["PATH=/opt/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","BASEVAR=base",)"
        R"("FROM_TRIGGER=1","APP_HOME=/app","LEGACY=value with spaces"],)"
        R"("Entrypoint":["/bin/sh","-c"],"Cmd":["/bin/sh","-ec","echo $APP_HOME"],)"
        R"("Volumes":{"/cache":{},"/data":{},"/logs":{}},"WorkingDir":"/app/src",)"
        R"("Labels":{"multi":"line one line two","org.example.base":"yes","shared":"override","version":"1.0"},)"
        R"("StopSignal":"SIGTERM","ArgsEscaped":true,)"
        R"("Healthcheck":{"Test":["CMD-SHELL","wget -q -O- http://localhost/ || exit 1"],)"
        R"("Interval":30000000000,"Timeout":5000000000,"StartPeriod":60000000000,"StartInterval":2000000000,)"
        R"("Retries":3},)"
        R"("OnBuild":["COPY . /app/src"],"Shell":["/bin/sh","-ec"]})");
  CHECK(cfg["author"] == "Jane Doe <jane@example.com>");
  CHECK(cfg["os"] == "linux");
  CHECK(cfg["architecture"] == "amd64");
  using H = std::vector<std::pair<std::string, bool>>;
  CHECK(history_of(cfg) ==
        H{{"other: builder import", false},
          {"ENV BASEVAR=base", true},
          {"LABEL org.example.base=yes shared=base", true},
          {"CMD [\"sh\"]", true},
          {"RUN /bin/sh -c echo triggered > /onbuild.txt # buildkit", false},
          {"ENV FROM_TRIGGER=1", true},
          {"ARG VERSION=1.0", true},
          {"MAINTAINER Jane Doe <jane@example.com>", true},
          {"ENV APP_HOME=/app PATH=/opt/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", true},
          {"ENV LEGACY=value with spaces", true},
          {"LABEL shared=override multi=line one line two version=1.0", true},
          {"WORKDIR /app", false},
          {"WORKDIR /app/src", false},
          {"USER 1000:1000", true},
          {"EXPOSE [443/tcp 53/udp 80/tcp 8000/tcp 8001/tcp 8002/tcp]", true},
          {"VOLUME [/data]", true},
          {"VOLUME [/cache /logs]", true},
          {"STOPSIGNAL SIGTERM", true},
          {"SHELL [/bin/sh -ec]", true},
          {"RUN |1 VERSION=1.0 /bin/sh -ec echo hi > /tmp/hi # buildkit", false},
          {"RUN |1 VERSION=1.0 /bin/sh -ec true # buildkit", false},
          {"HEALTHCHECK {Test:[CMD-SHELL wget -q -O- http://localhost/ || exit 1] Interval:30s Timeout:5s "
           "StartPeriod:1m0s StartInterval:2s Retries:3}",
           true},
          {"ENTRYPOINT [\"/bin/sh\" \"-c\"]", true},
          {"CMD [\"/bin/sh\" \"-ec\" \"echo $APP_HOME\"]", true},
          {"COPY --chown=1000:1000 hello.txt ./ # buildkit", false}});
  // One layer per entry without empty_layer; `RUN true` keeps its (empty) layer.
  const Json& diff_ids = cfg["rootfs"]["diff_ids"];
  REQUIRE(diff_ids.size() == 7);
  CHECK(diff_ids[5] == kEmptyLayerDiffId);
  for (int i = 0; i < 5; ++i) CHECK(diff_ids[i] != kEmptyLayerDiffId);

  // `builder inspect` shows the same config.
  Result ins = root.builder({"inspect", "cfgapp"});
  REQUIRE_MESSAGE(ins.status == 0, ins.describe());
  CHECK(Json::parse(ins.out)[0]["Config"] == cfg["config"]);

  // A child: the app's ONBUILD COPY runs, its CMD goes with the new ENTRYPOINT and its
  // triggers are not passed on.
  const fs::path child = root.work() / "child";
  builder::e2e::write_file(child / "Dockerfile", "FROM cfgapp\nENTRYPOINT [\"/bin/sh\"]\n");
  builder::e2e::write_file(child / "note.txt", "note\n");
  Result c = root.builder({"build", "--progress=plain", "-t", "cfgchild", child.string()});
  REQUIRE_MESSAGE(c.status == 0, c.describe());
  Json child_cfg = saved_config(root, "cfgchild");
  CHECK(child_cfg["config"]["Entrypoint"] == Json({"/bin/sh"}));
  CHECK_FALSE(child_cfg["config"].contains("Cmd"));
  CHECK_FALSE(child_cfg["config"].contains("OnBuild"));
  CHECK(child_cfg["config"]["ArgsEscaped"] == true);
  auto h = history_of(child_cfg);
  REQUIRE(h.size() == 27);
  CHECK(H(h.end() - 2, h.end()) == H{{"COPY . /app/src # buildkit", false}, {"ENTRYPOINT [\"/bin/sh\"]", true}});
  root.check_no_mounts();
}
