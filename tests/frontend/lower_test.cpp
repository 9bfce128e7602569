// Lowering: AST -> graph with a fake ImageResolver. Checks ops, env/cwd/user, config
// edits, history strings, stage reachability and error messages verbatim.
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
  auto& cp = std::get<graph::CopyAction>(op_at<graph::FileOp>(r, 3).actions[0]);
  CHECK(cp.src_input == 1);
  CHECK(cp.src_paths == std::vector<std::string>{"a.txt", "b/"});
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
  auto& mc = std::get<graph::CopyAction>(op_at<graph::FileOp>(multi, 2).actions[0]);
  CHECK(mc.src_paths == std::vector<std::string>{"a", "b"});
  CHECK(mc.dest == "/c");
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
                       "EXPOSE [80/tcp 53/udp]", "VOLUME [/data]", "STOPSIGNAL SIGTERM",
                       "SHELL [/bin/bash -c]", "CMD [\"/bin/bash\" \"-c\" \"echo hi\"]",
                       "ENTRYPOINT [\"/e\"]",
                       "HEALTHCHECK {Test:[CMD-SHELL curl -f http://x/] Interval:30s Timeout:0s "
                       "StartPeriod:0s StartInterval:0s Retries:3}",
                       "MAINTAINER me"});
  // ENTRYPOINT resets an inherited CMD.
  auto r2 = lower_text("FROM busybox\nENTRYPOINT [\"/e\"]\n");
  CHECK(!r2.definition.image.config.contains("Cmd"));
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

TEST_CASE("lower: unsupported features fail with Dockerfile:line:col") {
  CHECK(error_of("FROM busybox\nRUN --mount=type=cache,target=/x echo\n") ==
        "Dockerfile:2:1: RUN --mount is not supported yet");
  CHECK(error_of("FROM busybox\n  RUN --network=host echo\n") ==
        "Dockerfile:2:3: RUN --network is not supported yet");
  CHECK(error_of("FROM busybox\nADD a /b\n") == "Dockerfile:2:1: ADD is not supported yet");
  CHECK(error_of("FROM busybox\nCOPY --link a /b\n") ==
        "Dockerfile:2:1: COPY --link is not supported yet");
  CHECK(error_of("FROM busybox\nCOPY <<EOF /b\nhi\nEOF\n") ==
        "Dockerfile:2:1: COPY with a heredoc is not supported yet");
  CHECK(error_of("FROM busybox\nFOO bar\n") == "Dockerfile:2:1: unknown instruction: FOO");
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
             m.find("could not be found") != std::string::npos ||
             // a Windows image copying several files into C:\\...\\ (no trailing '/')
             m.find("must be a directory and end with a /") != std::string::npos));
    }
  }
  MESSAGE("real Dockerfiles: " << ok << " lowered, " << unsupported << " hit unsupported features");
}
