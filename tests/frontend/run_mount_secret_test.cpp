// RUN --mount=type=secret and type=ssh lowered as BuildKit's dispatchSecret and
// dispatchSSH: ids, default targets, modes and owners, env-only secrets; errors verbatim
// with the instruction's location; and the graph encoding, which names the secret but
// can never hold its value (so a changed secret keeps the cache key).
#include <string>

#include "base/error.h"
#include "frontend/lower.h"
#include "frontend/parse.h"
#include "solver/graph/encode.h"
#include "test_util.h"

using namespace builder;
using namespace builder::frontend;

namespace {

class Resolver : public ImageResolver {
 public:
  ResolvedImage resolve(const std::string& ref) override {
    ResolvedImage r;
    r.ref = ref + ":latest";
    r.digest = "sha256:" + std::string(64, 'b');
    r.config = {{"architecture", "amd64"}, {"os", "linux"}, {"config", {{"Env", {"PATH=/bin"}}}}};
    return r;
  }
};

LowerResult lower_df(const std::string& df) {
  Resolver r;
  return lower(parse(df, "Dockerfile"), {}, r);
}

/// The ExecOp of the last vertex.
graph::ExecOp last_run(const std::string& df) {
  auto r = lower_df(df);
  return std::get<graph::ExecOp>(r.definition.vertices.at(r.definition.result).op);
}

/// The mounts of `RUN --mount=<spec> true` on busybox.
std::vector<graph::ExecMount> mounts_of(const std::string& spec, const std::string& before = "") {
  return last_run("FROM busybox\n" + before + "RUN --mount=" + spec + " true\n").mounts;
}

std::string error_of(const std::string& df) {
  try {
    lower_df(df);
  } catch (const base::Error& e) {
    return e.what();
  }
  return "no error";
}

std::string mount_error(const std::string& spec) { return error_of("FROM busybox\nRUN --mount=" + spec + " true\n"); }

}  // namespace

TEST_CASE("run mount: a secret's id, target, mode and owner default as BuildKit's") {
  auto m = mounts_of("type=secret,id=tok");
  REQUIRE(m.size() == 1);
  CHECK(m[0].kind == graph::ExecMount::Kind::Secret);
  CHECK(m[0].id == "tok");
  CHECK(m[0].target == "/run/secrets/tok");
  CHECK(m[0].mode == 0400u);
  CHECK(m[0].uid == 0u);
  CHECK(m[0].gid == 0u);
  CHECK_FALSE(m[0].required);
  CHECK_FALSE(m[0].env.has_value());
  CHECK(m[0].input == -1);

  // The id defaults to the target's base name; `source` is an id too.
  m = mounts_of("type=secret,target=/etc/app/cred.json");
  CHECK(m[0].id == "cred.json");
  CHECK(m[0].target == "/etc/app/cred.json");
  m = mounts_of("type=secret,src=abc,dst=/x");
  CHECK(m[0].id == "abc");
  CHECK(m[0].target == "/x");
  m = mounts_of("type=secret,source=abc");
  CHECK(m[0].target == "/run/secrets/abc");

  // A relative target is taken from the root, not the working directory.
  m = mounts_of("type=secret,id=a,destination=rel/x", "WORKDIR /w\n");
  CHECK(m[0].target == "/rel/x");

  m = mounts_of("type=secret,id=k,required,mode=0440,uid=1000,gid=1001");
  CHECK(m[0].required);
  CHECK(m[0].mode == 0440u);
  CHECK(m[0].uid == 1000u);
  CHECK(m[0].gid == 1001u);
  m = mounts_of("type=secret,id=k,required=false");
  CHECK_FALSE(m[0].required);

  // Values are expanded from the stage's ARGs.
  m = mounts_of("type=secret,id=$ID,target=/s/$ID", "ARG ID=npmrc\n");
  CHECK(m[0].id == "npmrc");
  CHECK(m[0].target == "/s/npmrc");
}

TEST_CASE("run mount: env= makes a secret an environment variable, a file only with a target") {
  auto m = mounts_of("type=secret,id=API,env=API_KEY");
  REQUIRE(m.size() == 1);
  CHECK(m[0].env == std::optional<std::string>("API_KEY"));
  CHECK(m[0].target.empty());
  m = mounts_of("type=secret,id=API,env=API_KEY,target=/k");
  CHECK(m[0].env == std::optional<std::string>("API_KEY"));
  CHECK(m[0].target == "/k");
  // The variable is not in the step's graph environment: only the executor sets it.
  auto op = last_run("FROM busybox\nRUN --mount=type=secret,id=API,env=API_KEY true\n");
  for (const auto& e : op.env) CHECK(e.rfind("API_KEY=", 0) != 0);
}

TEST_CASE("run mount: ssh ids, numbered default sockets, mode and owner") {
  auto m = mounts_of("type=ssh");
  REQUIRE(m.size() == 1);
  CHECK(m[0].kind == graph::ExecMount::Kind::Ssh);
  CHECK(m[0].id == "default");
  CHECK(m[0].target == "/run/buildkit/ssh_agent.0");
  CHECK(m[0].mode == 0600u);
  CHECK(m[0].uid == 0u);
  auto op = last_run(
      "FROM busybox\nRUN --mount=type=ssh,id=gh,target=/a.sock,required,mode=0666,uid=5,gid=6 "
      "--mount=type=ssh,id=gl true\n");
  REQUIRE(op.mounts.size() == 2);
  CHECK(op.mounts[0].id == "gh");
  CHECK(op.mounts[0].target == "/a.sock");
  CHECK(op.mounts[0].required);
  CHECK(op.mounts[0].mode == 0666u);
  CHECK(op.mounts[0].uid == 5u);
  CHECK(op.mounts[0].gid == 6u);
  CHECK(op.mounts[1].id == "gl");
  CHECK(op.mounts[1].target == "/run/buildkit/ssh_agent.1");  // N counts the step's ssh mounts
}

TEST_CASE("run mount: bad secret and ssh mounts fail at the instruction") {
  CHECK(mount_error("type=secret") == "Dockerfile:2:1: invalid secret mount. one of source, target required");
  CHECK(mount_error("type=secret,id=a,foo=1") ==
        "Dockerfile:2:1: unexpected key 'foo' in 'foo=1' (known keys: type, from, source, target, readonly, id, "
        "sharing, required, size, mode, uid, gid, src, dst, destination, ro, rw, readwrite, env)");
  CHECK(mount_error("type=secret,id=a,source=b") == "Dockerfile:2:1: both source and id can't be set");
  CHECK(mount_error("type=secret,id=a,from=x") == "Dockerfile:2:1: secret mount should not have a from");
  CHECK(mount_error("type=secret,id=a,sharing=locked") == "Dockerfile:2:1: secret mount should not define sharing");
  CHECK(mount_error("type=secret,id=a,size=1m") == "Dockerfile:2:1: unexpected key 'size' for mount type 'secret'");
  CHECK(mount_error("type=secret,id=a,mode=9") == "Dockerfile:2:1: invalid value 9 for mode");
  CHECK(mount_error("type=secret,id=a,uid=x") == "Dockerfile:2:1: invalid value x for uid");
  CHECK(mount_error("type=secret,id=a,required=maybe") == "Dockerfile:2:1: invalid value for required: maybe");
  CHECK(mount_error("type=secret,id=a,env=") ==
        "Dockerfile:2:1: invalid value for env: the variable name is empty");
  CHECK(mount_error("type=secret,id=a,target=/") == "Dockerfile:2:1: invalid mount target \"/\"");
  CHECK(mount_error("required,type=secret,id=a") == "Dockerfile:2:1: unexpected key 'required' for mount type 'bind'");
  CHECK(mount_error("type=ssh,src=/a") == "Dockerfile:2:1: ssh does not support source");
  CHECK(mount_error("type=ssh,from=stage") == "Dockerfile:2:1: ssh mount should not have a from");
  CHECK(mount_error("type=ssh,env=X") == "Dockerfile:2:1: unexpected key 'env' for mount type 'ssh'");
  CHECK(mount_error("type=bind,env=X,target=/x") == "Dockerfile:2:1: unexpected key 'env' for mount type 'bind'");
  CHECK(mount_error("type=ssh,size=1") == "Dockerfile:2:1: unexpected key 'size' for mount type 'ssh'");
}

TEST_CASE("run mount: the encoding names a secret's id and options, which change the key") {
  auto enc = [](const std::string& spec) {
    auto r = lower_df("FROM busybox\nRUN --mount=" + spec + " true\n");
    return graph::encode_op(r.definition.vertices.at(r.definition.result).op);
  };
  const std::string base = enc("type=secret,id=tok");
  CHECK(base.find("\"type\":\"secret\"") != std::string::npos);
  CHECK(base.find("\"id\":\"tok\"") != std::string::npos);
  CHECK(base.find("\"target\":\"/run/secrets/tok\"") != std::string::npos);
  CHECK(base == enc("type=secret,id=tok"));
  CHECK(base != enc("type=secret,id=tok2"));
  CHECK(base != enc("type=secret,id=tok,required"));
  CHECK(base != enc("type=secret,id=tok,mode=0444"));
  CHECK(base != enc("type=secret,id=tok,uid=1"));
  CHECK(base != enc("type=secret,id=tok,gid=1"));
  CHECK(base != enc("type=secret,id=tok,target=/t"));
  CHECK(base != enc("type=secret,id=tok,env=T"));
  const std::string ssh = enc("type=ssh");
  CHECK(ssh.find("\"type\":\"ssh\"") != std::string::npos);
  CHECK(ssh.find("\"id\":\"default\"") != std::string::npos);
  CHECK(ssh != enc("type=ssh,id=other"));
  CHECK(ssh != enc("type=ssh,mode=0666"));
}
