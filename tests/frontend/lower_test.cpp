// Lowering: AST -> graph with a fake ImageResolver. Checks ops, env/cwd/user, config
// edits, history strings, stage reachability and error messages verbatim.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "base/error.h"
#include "frontend/lower.h"
#include "frontend/parse.h"
#include "test_util.h"

using namespace builder;
using namespace builder::frontend;

namespace {

class FakeResolver : public ImageResolver {
 public:
  std::map<std::string, base::Json> configs;
  std::vector<std::string> asked;
  ResolvedImage resolve(const std::string& ref) override {
    asked.push_back(ref);
    std::string norm = ref.find(':') == std::string::npos ? ref + ":latest" : ref;
    ResolvedImage r;
    r.ref = norm;
    r.digest = "sha256:" + std::string(64, 'a');
    auto it = configs.find(norm);
    if (it != configs.end()) {
      r.config = it->second;
    } else {
      r.config = {{"architecture", "amd64"},
                  {"os", "linux"},
                  {"config", {{"Env", {"PATH=/usr/bin:/bin"}}, {"Cmd", {"sh"}}}},
                  {"history", {{{"created_by", "base layer"}, {"empty_layer", false}},
                               {{"created_by", "CMD [\"sh\"]"}, {"empty_layer", true}}}}};
    }
    if (norm == "missing:latest") throw base::Error("image not found: " + norm);
    return r;
  }
};

LowerResult lower_text(const std::string& df, LowerOptions opts = {}) {
  FakeResolver r;
  return lower(parse(df, "Dockerfile"), opts, r);
}

/// Lowers `df` with a base image `ref` whose image config is `image`.
LowerResult lower_on(const std::string& ref, const base::Json& image, const std::string& df,
                     LowerOptions opts = {}) {
  FakeResolver r;
  r.configs[ref] = image;
  return lower(parse(df, "Dockerfile"), opts, r);
}

std::vector<std::string> created_by(const LowerResult& r) {
  std::vector<std::string> out;
  for (const auto& h : r.definition.image.history) out.push_back(h.created_by);
  return out;
}

template <class T>
const T& op_at(const LowerResult& r, int i) {
  return std::get<T>(r.definition.vertices.at(i).op);
}

std::string error_of(const std::string& df, LowerOptions opts = {}) {
  try {
    lower_text(df, opts);
  } catch (const base::Error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("lower: RUN shell and exec form with env, cwd and user") {
  auto r = lower_text(
      "FROM busybox\nENV A=1\nWORKDIR /app\nUSER nobody\nARG V=x\nRUN echo $A\nRUN [\"ls\", \"-l\"]\n");
  auto& v = r.definition.vertices;
  REQUIRE(v.size() == 4);
  auto& src = op_at<graph::SourceOp>(r, 0);
  CHECK(src.kind == graph::SourceOp::Kind::Image);
  CHECK(src.ref == "busybox:latest");
  auto& mk = op_at<graph::FileOp>(r, 1);
  CHECK(std::get<graph::MkdirAction>(mk.actions[0]).path == "/app");
  auto& run = op_at<graph::ExecOp>(r, 2);
  CHECK(run.args == std::vector<std::string>{"/bin/sh", "-c", "echo $A"});
  CHECK(run.env == std::vector<std::string>{"PATH=/usr/bin:/bin", "A=1", "V=x"});
  CHECK(run.cwd == "/app");
  CHECK(run.user == "nobody");
  CHECK(v[2].inputs == std::vector<int>{1});
  auto& exec = op_at<graph::ExecOp>(r, 3);
  CHECK(exec.args == std::vector<std::string>{"ls", "-l"});
  CHECK(r.definition.result == 3);
  // ARG is not persisted in the config.
  CHECK(r.definition.image.config["Env"] == base::Json({"PATH=/usr/bin:/bin", "A=1"}));
  auto& h = r.definition.image.history;
  REQUIRE(h.size() == 2 + 6);
  CHECK(h[2].created_by == "ENV A=1");
  CHECK(h[2].empty_layer);
  CHECK(h[3].created_by == "WORKDIR /app");
  CHECK(!h[3].empty_layer);
  CHECK(h[4].created_by == "USER nobody");
  CHECK(h[5].created_by == "ARG V=x");
  CHECK(h[6].created_by == "RUN |1 V=x /bin/sh -c echo $A # buildkit");
  CHECK(!h[6].empty_layer);
  CHECK(h[6].comment == "buildkit.dockerfile.v0");
  CHECK(h[7].created_by == "RUN |1 V=x ls -l # buildkit");
  CHECK(r.source_map[0].name == "[1/4] FROM busybox:latest");
  CHECK(r.source_map[2].name == "[3/4] RUN echo 1");  // env expanded, as BuildKit
  CHECK(r.source_map[2].range.start_line == 6);
}

TEST_CASE("lower: scratch gets the default PATH; heredoc RUN runs the body") {
  auto r = lower_text("FROM scratch\nRUN <<EOF\necho hi\nEOF\n");
  CHECK(op_at<graph::SourceOp>(r, 0).kind == graph::SourceOp::Kind::Scratch);
  auto& run = op_at<graph::ExecOp>(r, 1);
  CHECK(run.args == std::vector<std::string>{"/bin/sh", "-c", "echo hi\n"});
  CHECK(run.env == std::vector<std::string>{
                       "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"});
}

TEST_CASE("lower: COPY makes a local source and a copy on top") {
  LowerOptions o;
  o.context_excludes = {"*.log"};
  auto r = lower_text("FROM busybox\nWORKDIR /w\nENV D=dst\nCOPY --chmod=644 --chown=1:2 a.txt b/ $D/\nCOPY . .\n", o);
  auto& v = r.definition.vertices;
  REQUIRE(v.size() == 6);
  auto& local = op_at<graph::SourceOp>(r, 2);
  CHECK(local.kind == graph::SourceOp::Kind::Local);
  CHECK(local.local_name == "context");
  CHECK(local.include_patterns == std::vector<std::string>{"a.txt", "b"});
  CHECK(local.exclude_patterns == std::vector<std::string>{"*.log"});
  CHECK(r.source_map[2].name == "[internal] load build context");
  // One copy action per source, in order (BuildKit's chained FileActions).
  REQUIRE(op_at<graph::FileOp>(r, 3).actions.size() == 2);
  auto& cp = std::get<graph::CopyAction>(op_at<graph::FileOp>(r, 3).actions[0]);
  CHECK(cp.src_input == 1);
  CHECK(cp.src_paths == std::vector<std::string>{"a.txt"});
  CHECK(std::get<graph::CopyAction>(op_at<graph::FileOp>(r, 3).actions[1]).src_paths ==
        std::vector<std::string>{"b/"});
  CHECK(cp.dest == "/w/dst/");
  CHECK(cp.chown == "1:2");
  CHECK(cp.chmod == 0644u);
  CHECK(v[3].inputs == std::vector<int>{1, 2});
  CHECK(op_at<graph::SourceOp>(r, 4).include_patterns.empty());
  CHECK(std::get<graph::CopyAction>(op_at<graph::FileOp>(r, 5).actions[0]).dest == "/w/");
  auto& h = r.definition.image.history;
  CHECK(h[h.size() - 2].created_by == "COPY --chown=1:2 --chmod=644 a.txt b/ dst/ # buildkit");
  CHECK(h.back().created_by == "COPY . . # buildkit");
  CHECK(r.source_map[3].name == "[3/4] COPY --chmod=644 --chown=1:2 a.txt b/ dst/");
  // As BuildKit: a wildcard matching nothing copies nothing, and several sources may go
  // to a destination without a trailing '/' (each is copied in turn; no error).
  CHECK(cp.allow_empty_wildcard);
  auto multi = lower_text("FROM busybox\nCOPY a b c\n");
  auto& mfile = op_at<graph::FileOp>(multi, 2);
  REQUIRE(mfile.actions.size() == 2);
  CHECK(std::get<graph::CopyAction>(mfile.actions[0]).src_paths == std::vector<std::string>{"a"});
  CHECK(std::get<graph::CopyAction>(mfile.actions[1]).src_paths == std::vector<std::string>{"b"});
  CHECK(std::get<graph::CopyAction>(mfile.actions[1]).dest == "/c");
}

TEST_CASE("lower: config instructions and history") {
  auto r = lower_text(
      "FROM busybox\nENV A=1 B=$A\nENV C 2\nLABEL x=y\nEXPOSE 80 53/udp\nVOLUME /data\n"
      "STOPSIGNAL SIGTERM\nSHELL [\"/bin/bash\", \"-c\"]\nCMD echo hi\nENTRYPOINT [\"/e\"]\n"
      "HEALTHCHECK --interval=30s --retries=3 CMD curl -f http://x/\nMAINTAINER me\nONBUILD RUN x\n");
  auto& c = r.definition.image.config;
  CHECK(c["Env"] == base::Json({"PATH=/usr/bin:/bin", "A=1", "B=", "C=2"}));
  CHECK(c["Labels"]["x"] == "y");
  CHECK(c["ExposedPorts"].contains("80/tcp"));
  CHECK(c["ExposedPorts"].contains("53/udp"));
  CHECK(c["Volumes"].contains("/data"));
  CHECK(c["StopSignal"] == "SIGTERM");
  CHECK(c["Shell"] == base::Json({"/bin/bash", "-c"}));
  CHECK(c["Cmd"] == base::Json({"/bin/bash", "-c", "echo hi"}));
  CHECK(c["Entrypoint"] == base::Json({"/e"}));
  CHECK(c["Healthcheck"]["Test"] == base::Json({"CMD-SHELL", "curl -f http://x/"}));
  CHECK(c["Healthcheck"]["Interval"] == 30000000000LL);
  CHECK(c["Healthcheck"]["Retries"] == 3);
  CHECK(c["OnBuild"] == base::Json({"RUN x"}));
  CHECK(r.definition.image.author == "me");
  std::vector<std::string> created;
  for (auto& h : r.definition.image.history) created.push_back(h.created_by);
  CHECK(created == std::vector<std::string>{
                       "base layer", "CMD [\"sh\"]", "ENV A=1 B=", "ENV C=2", "LABEL x=y",
                       "EXPOSE [53/udp 80/tcp]", "VOLUME [/data]", "STOPSIGNAL SIGTERM",
                       "SHELL [/bin/bash -c]", "CMD [\"/bin/bash\" \"-c\" \"echo hi\"]",
                       "ENTRYPOINT [\"/e\"]",
                       "HEALTHCHECK {Test:[CMD-SHELL curl -f http://x/] Interval:30s Timeout:0s "
                       "StartPeriod:0s StartInterval:0s Retries:3}",
                       "MAINTAINER me"});
  // ENTRYPOINT resets an inherited CMD.
  auto r2 = lower_text("FROM busybox\nENTRYPOINT [\"/e\"]\n");
  CHECK(!r2.definition.image.config.contains("Cmd"));
}

TEST_CASE("lower: scratch starts from BuildKit's empty image: WorkingDir / and the default PATH") {
  auto r = lower_text("FROM scratch\nENV A=1\n");
  CHECK(r.definition.image.config.dump() ==
        R"({"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","A=1"],)"
        R"("WorkingDir":"/"})");
  CHECK(created_by(r) == std::vector<std::string>{"ENV A=1"});
}

TEST_CASE("lower: CMD sets ArgsEscaped, ENTRYPOINT does not, and a base's ArgsEscaped stays") {
  CHECK(lower_text("FROM scratch\nCMD [\"a\"]\n").definition.image.config["ArgsEscaped"] == true);
  CHECK(lower_text("FROM scratch\nCMD a\n").definition.image.config["ArgsEscaped"] == true);
  CHECK(!lower_text("FROM scratch\nENTRYPOINT [\"a\"]\n").definition.image.config.contains("ArgsEscaped"));
  base::Json img = {{"config", {{"Env", {"PATH=/bin"}}, {"Cmd", {"sh"}}, {"ArgsEscaped", true}}}};
  CHECK(lower_on("esc:latest", img, "FROM esc\nENV A=1\n").definition.image.config["ArgsEscaped"] == true);
}

TEST_CASE("lower: the config is written as BuildKit marshals it: Go field order, no empty or unknown fields") {
  // A base written by the classic builder carries fields BuildKit's image type drops.
  base::Json img = {{"config",
                     {{"Hostname", ""},
                      {"Image", "sha256:0"},
                      {"OnBuild", nullptr},
                      {"Labels", {{"z", "1"}, {"a", "2"}}},
                      {"Env", {"PATH=/bin"}},
                      {"Cmd", {"sh"}},
                      {"User", ""}}}};
  auto r = lower_on("old:latest", img,
                    "FROM old\nEXPOSE 90 80\nENTRYPOINT []\nUSER u\nWORKDIR /w\nVOLUME /v\nSTOPSIGNAL 9\n"
                    "HEALTHCHECK NONE\nSHELL [\"/bin/sh\", \"-c\"]\nCMD []\nONBUILD RUN x\n");
  CHECK(r.definition.image.config.dump() ==
        R"({"User":"u","ExposedPorts":{"80/tcp":{},"90/tcp":{}},"Env":["PATH=/bin"],"Volumes":{"/v":{}},)"
        R"("WorkingDir":"/w","Labels":{"a":"2","z":"1"},"StopSignal":"9","ArgsEscaped":true,)"
        R"("Healthcheck":{"Test":["NONE"]},"OnBuild":["RUN x"],"Shell":["/bin/sh","-c"]})");
  auto h = created_by(r);
  CHECK(std::find(h.begin(), h.end(), "ENTRYPOINT []") != h.end());
  CHECK(std::find(h.begin(), h.end(), "CMD []") != h.end());
}

TEST_CASE("lower: ENTRYPOINT drops the base's CMD unless this stage set one") {
  CHECK(!lower_text("FROM busybox\nENTRYPOINT [\"/e\"]\n").definition.image.config.contains("Cmd"));
  auto kept = lower_text("FROM busybox\nCMD [\"c\"]\nENTRYPOINT [\"/e\"]\n").definition.image.config;
  CHECK(kept["Cmd"] == base::Json({"c"}));
  auto after = lower_text("FROM busybox\nENTRYPOINT [\"/e\"]\nCMD [\"c\"]\n").definition.image.config;
  CHECK(after["Cmd"] == base::Json({"c"}));
  // A stage built on another stage starts without a CMD of its own.
  auto stage = lower_text("FROM busybox AS a\nCMD [\"c\"]\nFROM a\nENTRYPOINT [\"/e\"]\n").definition.image.config;
  CHECK(!stage.contains("Cmd"));
  // Shell form wraps with the current SHELL.
  auto sh = lower_text("FROM busybox\nSHELL [\"/bin/ash\", \"-ec\"]\nENTRYPOINT exec top -b\n");
  CHECK(sh.definition.image.config["Entrypoint"] == base::Json({"/bin/ash", "-ec", "exec top -b"}));
  CHECK(created_by(sh).back() == "ENTRYPOINT [\"/bin/ash\" \"-ec\" \"exec top -b\"]");
}

TEST_CASE("lower: ONBUILD triggers of a base image run before the stage and leave the config") {
  base::Json img = {{"config", {{"Env", {"PATH=/bin"}}, {"OnBuild", {"RUN echo one", "ENV OB=1", "LABEL ob=$OB"}}}}};
  auto r = lower_on("trig:latest", img, "FROM trig\nRUN echo own\n");
  auto& v = r.definition.vertices;
  REQUIRE(v.size() == 3);
  CHECK(op_at<graph::ExecOp>(r, 1).args == std::vector<std::string>{"/bin/sh", "-c", "echo one"});
  CHECK(op_at<graph::ExecOp>(r, 2).env == std::vector<std::string>{"PATH=/bin", "OB=1"});
  // Progress counts every trigger, as BuildKit's cmdTotal does; FROM was named before.
  CHECK(r.source_map[0].name == "[1/2] FROM trig:latest");
  CHECK(r.source_map[1].name == "[2/5] ONBUILD RUN echo one");
  CHECK(r.source_map[1].range.start_line == 1);
  CHECK(r.source_map[2].name == "[3/5] RUN echo own");
  CHECK(r.definition.image.config.dump() == R"({"Env":["PATH=/bin","OB=1"],"Labels":{"ob":"1"}})");
  CHECK(created_by(r) == std::vector<std::string>{"RUN /bin/sh -c echo one # buildkit", "ENV OB=1",
                                                  "LABEL ob=1", "RUN /bin/sh -c echo own # buildkit"});
  base::Json bad = {{"config", {{"OnBuild", {"RUN a\nRUN b"}}}}};
  CHECK_THROWS_WITH(lower_on("bad:latest", bad, "FROM bad\n"),
                    "Dockerfile:1:1: onbuild trigger should be a single expression");
}

TEST_CASE("lower: a stage base passes on its own ONBUILD instructions, not the triggers it ran") {
  std::string df =
      "FROM busybox AS a\nONBUILD RUN echo a\n"
      "FROM a AS b\nONBUILD RUN echo b\n"
      "FROM b\nRUN echo c\n";
  auto r = lower_text(df);
  std::vector<std::string> names;
  for (auto& s : r.source_map) names.push_back(s.name);
  CHECK(names == std::vector<std::string>{"[a 1/1] FROM busybox:latest", "[b 1/1] ONBUILD RUN echo a",
                                          "[stage-2 1/2] ONBUILD RUN echo b", "[stage-2 2/2] RUN echo c"});
  CHECK(!r.definition.image.config.contains("OnBuild"));
  CHECK(created_by(r) == std::vector<std::string>{"base layer", "CMD [\"sh\"]",
                                                  "RUN /bin/sh -c echo a # buildkit",
                                                  "RUN /bin/sh -c echo b # buildkit",
                                                  "RUN /bin/sh -c echo c # buildkit"});
  LowerOptions o;
  o.target = "b";
  CHECK(lower_text(df, o).definition.image.config["OnBuild"] == base::Json({"RUN echo b"}));
  // The stored text is the line without ONBUILD, spacing kept.
  CHECK(lower_text("FROM busybox\n  onbuild   COPY  . /app\n").definition.image.config["OnBuild"] ==
        base::Json({"COPY  . /app"}));
}

TEST_CASE("lower: a stage inherits the build args of its base stage (BuildKit >= 0.15)") {
  auto r = lower_text("FROM busybox AS a\nARG V=1\nFROM a\nRUN echo $V\n");
  CHECK(created_by(r).back() == "RUN |1 V=1 /bin/sh -c echo $V # buildkit");
  CHECK(op_at<graph::ExecOp>(r, 1).env == std::vector<std::string>{"PATH=/usr/bin:/bin", "V=1"});
}

TEST_CASE("lower: WORKDIR keeps an absolute path as written, joins a relative one, \"\" is the current") {
  auto r = lower_text("FROM busybox\nWORKDIR /a/./b//\nWORKDIR c/../d\nWORKDIR $NONE\nRUN pwd\n");
  CHECK(r.definition.image.config["WorkingDir"] == "/a/b/d");
  auto h = created_by(r);
  CHECK(std::vector<std::string>(h.begin() + 2, h.end()) ==
        std::vector<std::string>{"WORKDIR /a/./b//", "WORKDIR /a/b/d", "WORKDIR /a/b/d",
                                 "RUN /bin/sh -c pwd # buildkit"});
  CHECK(std::get<graph::MkdirAction>(op_at<graph::FileOp>(r, 1).actions[0]).path == "/a/b");
  CHECK(op_at<graph::ExecOp>(r, 4).cwd == "/a/b/d");
  CHECK(lower_text("FROM busybox\nWORKDIR /x/./y/\n").definition.image.config["WorkingDir"] == "/x/./y/");
  // A base's relative WorkingDir goes through NormalizeWorkdir(wd, wd), as in BuildKit.
  base::Json img = {{"config", {{"Env", {"PATH=/bin"}}, {"WorkingDir", "rel"}}}};
  CHECK(lower_on("rel:latest", img, "FROM rel\n").definition.image.config["WorkingDir"] == "/rel/rel");
}

TEST_CASE("lower: EXPOSE sorts the words as written, expands them and parses each port spec") {
  auto r = lower_text(
      "FROM busybox\nENV P=9000\nEXPOSE 80 $P 443/tcp 53/UDP 8000-8002 127.0.0.1:8080:81/udp [::1]:82:82\n");
  CHECK(created_by(r).back() ==
        "EXPOSE [9000/tcp 81/udp 443/tcp 53/udp 80/tcp 8000/tcp 8001/tcp 8002/tcp 82/tcp]");
  CHECK(r.definition.image.config["ExposedPorts"].dump() ==
        R"({"443/tcp":{},"53/udp":{},"80/tcp":{},"8000/tcp":{},"8001/tcp":{},"8002/tcp":{},)"
        R"("81/udp":{},"82/tcp":{},"9000/tcp":{}})");
  CHECK(created_by(lower_text("FROM busybox\nEXPOSE 80 80/tcp\n")).back() == "EXPOSE [80/tcp 80/tcp]");
  CHECK(error_of("FROM busybox\nEXPOSE 80/foo\n") == "Dockerfile:2:1: invalid port: \"80/foo\": invalid proto: foo");
  CHECK(error_of("FROM busybox\nEXPOSE /tcp\n") == "Dockerfile:2:1: invalid port: \"/tcp\": no port specified");
  CHECK(error_of("FROM busybox\nEXPOSE 70000\n") == "Dockerfile:2:1: invalid containerPort: 70000");
  CHECK(error_of("FROM busybox\nEXPOSE 1.2.3:80:80\n") == "Dockerfile:2:1: invalid IP address: 1.2.3");
  CHECK(error_of("FROM busybox\nEXPOSE x:80\n") == "Dockerfile:2:1: invalid hostPort: x");
  CHECK(error_of("FROM busybox\nEXPOSE 8000-8001:80-82\n") ==
        "Dockerfile:2:1: invalid ranges specified for container and host Ports: 80-82 and 8000-8001");
}

TEST_CASE("lower: HEALTHCHECK flags, durations and errors as BuildKit's parseHealthcheck") {
  auto r = lower_text(
      "FROM busybox\nHEALTHCHECK --interval=1.5s --timeout=1h2m3s --start-period=500ms "
      "--start-interval=2s --retries=10 CMD [\"true\"]\n");
  CHECK(r.definition.image.config["Healthcheck"].dump() ==
        R"({"Test":["CMD","true"],"Interval":1500000000,"Timeout":3723000000000,"StartPeriod":500000000,)"
        R"("StartInterval":2000000000,"Retries":10})");
  CHECK(created_by(r).back() ==
        "HEALTHCHECK {Test:[CMD true] Interval:1.5s Timeout:1h2m3s StartPeriod:500ms StartInterval:2s "
        "Retries:10}");
  auto zero = lower_text("FROM busybox\nHEALTHCHECK --retries=0 --interval=0 CMD x y\n");
  CHECK(zero.definition.image.config["Healthcheck"].dump() == R"({"Test":["CMD-SHELL","x y"]})");
  // NONE reads no flags.
  auto none = lower_text("FROM busybox\nHEALTHCHECK --interval=5s NONE\n");
  CHECK(none.definition.image.config["Healthcheck"].dump() == R"({"Test":["NONE"]})");
  CHECK(created_by(none).back() ==
        "HEALTHCHECK {Test:[NONE] Interval:0s Timeout:0s StartPeriod:0s StartInterval:0s Retries:0}");
  auto err = [](const std::string& rest) { return error_of("FROM busybox\nHEALTHCHECK " + rest + "\n"); };
  CHECK(err("--interval=5 CMD x") == "Dockerfile:2:1: time: missing unit in duration \"5\"");
  CHECK(err("--interval=5x CMD x") == "Dockerfile:2:1: time: unknown unit \"x\" in duration \"5x\"");
  CHECK(err("--interval=abc CMD x") == "Dockerfile:2:1: time: invalid duration \"abc\"");
  CHECK(err("--timeout=10us CMD x") == "Dockerfile:2:1: Interval \"timeout\" cannot be less than 1ms");
  CHECK(err("--retries=-1 CMD x") == "Dockerfile:2:1: --retries cannot be negative (-1)");
  CHECK(err("--retries=x CMD x") == "Dockerfile:2:1: strconv.ParseInt: parsing \"x\": invalid syntax");
  CHECK(err("--foo=1 CMD x") == "Dockerfile:2:1: unknown flag: --foo");
  CHECK(err("--interval CMD x") == "Dockerfile:2:1: missing a value on flag: --interval");
  CHECK(err("--retries=1 --retries=2 CMD x") == "Dockerfile:2:1: duplicate flag specified: --retries");
  CHECK(err("foo x") == "Dockerfile:2:1: Unknown type \"FOO\" in HEALTHCHECK (try CMD)");
  CHECK(err("NONE x") == "Dockerfile:2:1: HEALTHCHECK NONE takes no arguments");
}

TEST_CASE("lower: STOPSIGNAL takes a signal name or number, kept as written") {
  for (const char* s : {"SIGKILL", "kill", "9", "SIGRTMIN+3", "rtmax-1"})
    CHECK(lower_text(std::string("FROM busybox\nSTOPSIGNAL ") + s + "\n").definition.image.config["StopSignal"] == s);
  CHECK(error_of("FROM busybox\nSTOPSIGNAL SIGFOO\n") == "Dockerfile:2:1: invalid signal: SIGFOO");
  CHECK(error_of("FROM busybox\nSTOPSIGNAL 0\n") == "Dockerfile:2:1: invalid signal: 0");
}

TEST_CASE("lower: VOLUME trims each JSON entry and refuses an empty one") {
  auto r = lower_text("FROM busybox\nVOLUME [\" /a \", \"/b\"]\n");
  CHECK(r.definition.image.config["Volumes"].dump() == R"({"/a":{},"/b":{}})");
  CHECK(created_by(r).back() == "VOLUME [/a /b]");
  CHECK(error_of("FROM busybox\nVOLUME [\" \"]\n") == "Dockerfile:2:1: VOLUME specified can not be an empty string");
}

TEST_CASE("lower: global ARG defaults see the built-in platform ARGs") {
  auto r = lower_text("ARG P=$TARGETPLATFORM\nARG S=$TARGETSTAGE\nFROM busybox\nARG P\nARG S\nRUN true\n");
  auto h = created_by(r);
  CHECK(std::vector<std::string>(h.begin() + 2, h.end()) ==
        std::vector<std::string>{"ARG P=linux/amd64", "ARG S=default",
                                 "RUN |2 P=linux/amd64 S=default /bin/sh -c true # buildkit"});
  LowerOptions o;
  o.build_args = {{"TARGETARCH", "arm64"}};
  CHECK(created_by(lower_text("ARG A=$TARGETARCH\nFROM busybox\nARG A\n", o)).back() == "ARG A=arm64");
}

TEST_CASE("lower: multi-stage, --target and COPY --from reach only needed stages") {
  std::string df =
      "ARG BASE=busybox\nFROM $BASE AS build\nRUN make\n"
      "FROM alpine AS unused\nRUN echo unused\n"
      "FROM build AS test\nRUN make test\n"
      "FROM scratch\nCOPY --from=build /out /out\n";
  auto r = lower_text(df);
  for (auto& s : r.source_map) CHECK(s.name.find("unused") == std::string::npos);
  auto& v = r.definition.vertices;
  // busybox, RUN make, scratch, COPY (from build)
  REQUIRE(v.size() == 4);
  CHECK(op_at<graph::SourceOp>(r, 0).ref == "busybox:latest");
  CHECK(r.source_map[1].name == "[build 2/2] RUN make");
  CHECK(op_at<graph::SourceOp>(r, 2).kind == graph::SourceOp::Kind::Scratch);
  CHECK(v[3].inputs == std::vector<int>{2, 1});
  CHECK(r.definition.image.history.size() == 1);

  LowerOptions o;
  o.target = "test";
  auto t = lower_text(df, o);
  REQUIRE(t.definition.vertices.size() == 3);
  CHECK(t.source_map[2].name == "[test 1/1] RUN make test");
  CHECK(t.definition.result == 2);
  CHECK(t.definition.image.history.size() == 4);

  o.target = "nope";
  CHECK(error_of(df, o) == "target stage \"nope\" could not be found");
  LowerOptions b;
  b.build_args = {{"BASE", "alpine"}};
  CHECK(op_at<graph::SourceOp>(lower_text(df, b), 0).ref == "alpine:latest");
}

TEST_CASE("lower: unsupported features and bad flags fail with Dockerfile:line:col") {
  CHECK(error_of("FROM busybox\nRUN --mount=type=secret echo\n") ==
        "Dockerfile:2:1: invalid secret mount. one of source, target required");
  CHECK(error_of("FROM busybox\nRUN --mount=type=ssh,src=/a echo\n") == "Dockerfile:2:1: ssh does not support source");
  CHECK(error_of("FROM busybox\n  RUN --network=host echo\n") ==
        "Dockerfile:2:3: RUN --network=host needs the entitlement network.host: pass --allow network.host");
  CHECK(error_of("FROM busybox\nRUN --security=insecure echo\n") ==
        "Dockerfile:2:1: RUN --security=insecure needs the entitlement security.insecure: pass --allow "
        "security.insecure");
  CHECK(error_of("FROM busybox\nRUN --network=bridge echo\n") == "Dockerfile:2:1: invalid network mode \"bridge\"");
  CHECK(error_of("FROM busybox\nRUN --mount=type=foo echo\n") == "Dockerfile:2:1: unsupported mount type \"foo\"");
  CHECK(error_of("FROM busybox\nRUN --mount=type=bind,mode=0755,target=/x echo\n") ==
        "Dockerfile:2:1: mode not allowed for \"bind\" type mounts");
  CHECK(error_of("FROM busybox\nRUN --mount=type=tmpfs,target=/ echo\n") ==
        "Dockerfile:2:1: invalid mount target \"/\"");
  CHECK(error_of("FROM busybox\nRUN --mount=target=/x,from=$X echo\n") ==
        "Dockerfile:2:1: 'from' doesn't support variable expansion, define alias stage instead");
  CHECK(error_of("FROM busybox\nADD --checksum=sha256:00 https://example.com/a.tgz /b\n") ==
        "Dockerfile:2:1: invalid checksum digest format: \"sha256:00\"");
  CHECK(error_of("FROM busybox\nCOPY https://example.com/a /b\n") == "Dockerfile:2:1: source can't be a URL for COPY");
  CHECK(error_of("FROM busybox\nCOPY --checksum=sha256:00 a /b\n") == "Dockerfile:2:1: unknown flag: --checksum");
  CHECK(error_of("FROM busybox\nADD --checksum=sha256:00 a /b\n") ==
        "Dockerfile:2:1: checksum requires HTTP(S) or Git sources");
  CHECK(error_of("FROM busybox\nCOPY --link=maybe a /b\n") ==
        "Dockerfile:2:1: expecting boolean value for flag --link, not: maybe");
  CHECK(error_of("FROM busybox\nCOPY --from a /b\n") == "Dockerfile:2:1: missing a value on flag: --from");
  CHECK(error_of("FROM busybox\nCOPY --chmod=u+q a /b\n") ==
        "Dockerfile:2:1: invalid chmod parameter: 'u+q'. it should be octal string and between 0 and 07777");
  CHECK(error_of("FROM busybox\nARG S=x\nCOPY --from=$S a /b\n") ==
        "Dockerfile:3:1: variable expansion is not supported for --from, define a new stage with FROM using ARG "
        "from global scope as a workaround");
  CHECK(error_of("FROM busybox\nCOPY a <<EOF\nhi\nEOF\n") == "Dockerfile:2:1: COPY cannot accept a heredoc as a destination");
  // Flags are checked in every stage, also one the target does not need.
  CHECK(error_of("FROM busybox AS unused\nCOPY --nope a /b\nFROM busybox\n") == "Dockerfile:2:1: unknown flag: --nope");
  CHECK(error_of("FROM busybox\nFOO bar\n") == "Dockerfile:2:1: unknown instruction: FOO");
  CHECK(error_of("FROM busybox\nCOPY --foo=1 a /b\n") == "Dockerfile:2:1: unknown flag: --foo");
  CHECK(error_of("FROM busybox\nUSER --foo=1 u\n") == "Dockerfile:2:1: unknown flag: --foo");
  CHECK(error_of("FROM missing\n") == "Dockerfile:1:1: image not found: missing:latest");
}

TEST_CASE("lower: real Dockerfiles lower or fail with a located, named error") {
  namespace fs = std::filesystem;
  auto root = fs::path(test::shared_dir()) / "conformance" / "real-dockerfiles";
  int ok = 0, unsupported = 0;
  for (auto& e : fs::directory_iterator(root)) {
    if (!e.is_directory()) continue;
    std::ifstream f(e.path() / "Dockerfile", std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    CAPTURE(e.path().filename().string());
    try {
      FakeResolver r;
      lower(parse(ss.str(), "Dockerfile"), {}, r);
      ++ok;
    } catch (const base::Error& err) {
      ++unsupported;
      std::string what = err.what();
      CAPTURE(what);
      CHECK(err.where().has_value());
      std::string m = err.message();
      CHECK((m.find("not supported yet") != std::string::npos ||
             m.find("entitlement") != std::string::npos ||
             m.find("could not be found") != std::string::npos ||
             // a Windows image copying several files into C:\\...\\ (no trailing '/')
             m.find("must be a directory and end with a /") != std::string::npos));
    }
  }
  MESSAGE("real Dockerfiles: " << ok << " lowered, " << unsupported << " hit unsupported features");
}
