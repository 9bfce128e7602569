// Lowering of ADD's remote sources (URL, git) and of --build-context named contexts:
// which Source ops are made, what the copy takes from them, BuildKit's git ref parsing,
// and the errors, verbatim.
#include <map>

#include "base/error.h"
#include "frontend/lower.h"
#include "frontend/parse.h"
#include "frontend/source_ref.h"
#include "test_util.h"

using namespace builder;
using namespace builder::frontend;

namespace {

class Resolver : public ImageResolver {
 public:
  std::vector<std::string> asked;
  ResolvedImage resolve(const std::string& ref) override {
    asked.push_back(ref);
    if (ref.rfind("missing", 0) == 0) throw base::Error("image not found: " + ref);
    ResolvedImage r;
    r.ref = ref.find(':') == std::string::npos ? ref + ":latest" : ref;
    r.digest = "sha256:" + std::string(64, ref.size() % 2 ? 'a' : 'b');
    r.config = {{"architecture", "amd64"}, {"os", "linux"}, {"config", {{"Env", {"PATH=/bin"}}, {"User", "img"}}}};
    return r;
  }
};

LowerResult lower_text(const std::string& df, LowerOptions opts = {}, Resolver* res = nullptr) {
  Resolver own;
  return lower(parse(df, "Dockerfile"), opts, res ? *res : own);
}

std::string error_of(const std::string& df, LowerOptions opts = {}) {
  try {
    lower_text(df, opts);
  } catch (const base::Error& e) {
    return e.what();
  }
  return "no error";
}

std::vector<const graph::SourceOp*> sources_of(const LowerResult& r, graph::SourceOp::Kind kind) {
  std::vector<const graph::SourceOp*> out;
  for (const auto& v : r.definition.vertices)
    if (const auto* s = std::get_if<graph::SourceOp>(&v.op))
      if (s->kind == kind) out.push_back(s);
  return out;
}

const graph::FileOp& last_file_op(const LowerResult& r) {
  for (auto it = r.definition.vertices.rbegin(); it != r.definition.vertices.rend(); ++it)
    if (const auto* f = std::get_if<graph::FileOp>(&it->op)) return *f;
  throw base::Error("no file op");
}

}  // namespace

TEST_CASE("source ref: BuildKit's git URL forms") {
  auto g = parse_git_ref("https://github.com/x/y.git#v1");
  REQUIRE(g);
  CHECK(g->remote == "https://github.com/x/y.git");
  CHECK(g->ref == "v1");
  CHECK(g->subdir.empty());
  g = parse_git_ref("https://host/r.git#main:a/../b/c/");
  REQUIRE(g);
  CHECK(g->ref == "main");
  CHECK(g->subdir == "b/c");
  g = parse_git_ref("git@github.com:x/y.git#dev");
  REQUIRE(g);
  CHECK(g->remote == "git@github.com:x/y.git");
  CHECK(g->ref == "dev");
  g = parse_git_ref("git://host/r#:sub");
  REQUIRE(g);
  CHECK(g->remote == "git://host/r");
  CHECK(g->ref.empty());
  CHECK(g->subdir == "sub");
  g = parse_git_ref("ssh://git@host:22/r.git");
  REQUIRE(g);
  CHECK(g->remote == "ssh://git@host:22/r.git");
  g = parse_git_ref("https://host/r.git?tag=v2&subdir=d&keep-git-dir=true");
  REQUIRE(g);
  CHECK(g->remote == "https://host/r.git");
  CHECK(g->ref == "refs/tags/v2");
  CHECK(g->subdir == "d");
  CHECK(g->keep_git_dir == true);
  // Not git: plain URLs, paths, github.com/x/y (a path for ADD), unknown schemes.
  CHECK(!parse_git_ref("https://example.com/file.tar.gz"));
  CHECK(!parse_git_ref("https://example.com/r.git/file"));
  CHECK(!parse_git_ref("github.com/x/y"));
  CHECK(!parse_git_ref("./a.git"));
  CHECK(!parse_git_ref("file:///srv/r.git"));
  CHECK(!parse_git_ref("dir/file"));
  CHECK_THROWS_WITH(parse_git_ref("https://h/r.git?foo=1"), "unexpected query \"foo\"");
  CHECK_THROWS_WITH(parse_git_ref("https://h/r.git?tag=a&branch=b"), "branch conflicts with tag");
  CHECK(url_file_name("https://h/a/b.tar.gz?x=1#f") == "b.tar.gz");
  CHECK(url_file_name("https://h/") == "__unnamed__");
  CHECK(url_file_name("https://h") == "__unnamed__");
  CHECK(url_file_name("https://h/dir/") == "dir");
  CHECK(url_file_name("https://h/a%20b") == "a b");
}

TEST_CASE("lower: ADD of a URL is an http Source copied by its file name, never unpacked unless asked") {
  auto r = lower_text("FROM busybox\nADD --chmod=640 https://example.com/x/app.tgz /opt/\n");
  auto http = sources_of(r, graph::SourceOp::Kind::Http);
  REQUIRE(http.size() == 1);
  CHECK(http[0]->url == "https://example.com/x/app.tgz");
  CHECK(http[0]->filename == "app.tgz");
  CHECK(http[0]->checksum.empty());
  const auto& cp = std::get<graph::CopyAction>(last_file_op(r).actions.at(0));
  CHECK(cp.src_paths == std::vector<std::string>{"app.tgz"});
  CHECK(cp.dest == "/opt/");
  CHECK(cp.chmod == 0640u);
  CHECK(!cp.unpack_archives);
  CHECK(!cp.allow_wildcard);
  CHECK(r.definition.image.history.back().created_by ==
        "ADD --chmod=640 https://example.com/x/app.tgz /opt/ # buildkit");

  r = lower_text("FROM busybox\nADD --unpack=true https://example.com/a.tgz /opt/\n");
  CHECK(std::get<graph::CopyAction>(last_file_op(r).actions.at(0)).unpack_archives);

  const std::string sum = "sha256:" + std::string(64, 'c');
  r = lower_text("FROM busybox\nADD --checksum=" + sum + " https://example.com/a /a\n");
  CHECK(sources_of(r, graph::SourceOp::Kind::Http).at(0)->checksum == sum);

  // A URL and a context path in one ADD: each from its own input.
  r = lower_text("FROM busybox\nADD local.txt https://example.com/b.txt /d/\n");
  const auto& f = last_file_op(r);
  REQUIRE(f.actions.size() == 2);
  const auto& a0 = std::get<graph::CopyAction>(f.actions[0]);
  const auto& a1 = std::get<graph::CopyAction>(f.actions[1]);
  CHECK(a0.src_paths == std::vector<std::string>{"local.txt"});
  CHECK(a0.src_input == 1);
  CHECK(a0.unpack_archives);
  CHECK(a1.src_paths == std::vector<std::string>{"b.txt"});
  CHECK(a1.src_input == 2);
}

TEST_CASE("lower: ADD of a git repository is a git Source copied whole into DEST") {
  auto r = lower_text("FROM busybox\nADD --keep-git-dir=true https://github.com/x/y.git#v1:sub /src\n");
  auto git = sources_of(r, graph::SourceOp::Kind::Git);
  REQUIRE(git.size() == 1);
  CHECK(git[0]->url == "https://github.com/x/y.git");
  CHECK(git[0]->git_ref == "v1");
  CHECK(git[0]->subdir == "sub");
  CHECK(git[0]->keep_git_dir);
  const auto& cp = std::get<graph::CopyAction>(last_file_op(r).actions.at(0));
  CHECK(cp.src_paths == std::vector<std::string>{"/"});
  CHECK(cp.dest == "/src");
  CHECK(!cp.unpack_archives);

  r = lower_text("FROM busybox\nADD git@github.com:x/y.git /src\n");
  git = sources_of(r, graph::SourceOp::Kind::Git);
  REQUIRE(git.size() == 1);
  CHECK(git[0]->url == "git@github.com:x/y.git");
  CHECK(git[0]->git_ref.empty());
  CHECK(!git[0]->keep_git_dir);

  r = lower_text("FROM busybox\nADD --checksum=0123456789abcdef https://h/r.git#main /src\n");
  CHECK(sources_of(r, graph::SourceOp::Kind::Git).at(0)->checksum == "0123456789abcdef");
}

TEST_CASE("lower: ADD remote source errors") {
  CHECK(error_of("FROM busybox\nCOPY https://github.com/x/y.git /b\n") ==
        "Dockerfile:2:1: source can't be a git ref for COPY");
  CHECK(error_of("FROM busybox\nADD --checksum=sha512:00 https://h/a /b\n") ==
        "Dockerfile:2:1: unsupported checksum algorithm \"sha512\" (only sha256)");
  CHECK(error_of("FROM busybox\nADD --checksum=nothex https://h/r.git /b\n") ==
        "Dockerfile:2:1: invalid git checksum \"nothex\": expected a commit hash (7 to 64 hex digits)");
  CHECK(error_of("FROM busybox\nADD --checksum=sha256:" + std::string(64, 'a') + " https://h/a https://h/b /d/\n") ==
        "Dockerfile:2:1: checksum can't be specified for multiple sources");
  CHECK(error_of("FROM busybox\nADD --keep-git-dir=false https://h/r.git?keep-git-dir=true /b\n") ==
        "Dockerfile:2:1: inconsistent keep-git-dir configuration");
  CHECK(error_of("FROM busybox\nADD https://h/r.git?mtime=commit /b\n") ==
        "Dockerfile:2:1: git query \"mtime\" is not supported yet");
}

TEST_CASE("lower: --build-context directory serves COPY --from, RUN --mount from= and FROM") {
  LowerOptions o;
  NamedContext dir;
  dir.kind = NamedContext::Kind::Local;
  dir.local_name = "context:extra";
  dir.excludes = {"*.tmp"};
  o.named_contexts["extra"] = dir;
  auto r = lower_text("FROM busybox\nCOPY --from=extra a.txt /a\nRUN --mount=from=extra,target=/m true\n", o);
  auto locals = sources_of(r, graph::SourceOp::Kind::Local);
  REQUIRE(locals.size() == 2);
  for (const auto* s : locals) {
    CHECK(s->local_name == "context:extra");
    CHECK(s->exclude_patterns == std::vector<std::string>{"*.tmp"});
  }

  // FROM a directory: its files copied onto scratch; the stage's config is empty.
  r = lower_text("FROM extra\nRUN true\n", o);
  CHECK(sources_of(r, graph::SourceOp::Kind::Scratch).size() == 1);
  CHECK(sources_of(r, graph::SourceOp::Kind::Local).at(0)->local_name == "context:extra");
  CHECK(sources_of(r, graph::SourceOp::Kind::Image).empty());
  const auto& exec = std::get<graph::ExecOp>(r.definition.vertices.back().op);
  CHECK(exec.user.empty());

  // A stage of the same name is replaced: its RUN is not in the graph.
  r = lower_text("FROM busybox AS extra\nRUN echo never\nFROM busybox\nCOPY --from=extra / /e\n", o);
  for (const auto& v : r.definition.vertices)
    if (const auto* e = std::get_if<graph::ExecOp>(&v.op)) CHECK(e->args.back() != "echo never");
  CHECK(sources_of(r, graph::SourceOp::Kind::Local).size() == 1);
}

TEST_CASE("lower: --build-context image stands for the image of its name, however it is written") {
  LowerOptions o;
  NamedContext img;
  img.kind = NamedContext::Kind::Image;
  img.image_ref = "mybox:1";
  o.named_contexts["alpine"] = img;
  for (const std::string from : {"alpine", "alpine:latest", "docker.io/library/alpine"}) {
    Resolver res;
    auto r = lower_text("FROM " + from + "\n", o, &res);
    CHECK(res.asked == std::vector<std::string>{"mybox:1"});
    CHECK(sources_of(r, graph::SourceOp::Kind::Image).at(0)->ref == "mybox:1");
    CHECK(r.definition.image.config["User"] == "img");
  }
  Resolver res;
  lower_text("FROM busybox\nCOPY --from=alpine /x /x\n", o, &res);
  CHECK(res.asked == std::vector<std::string>{"busybox", "mybox:1"});
  // alpine:3 is another image: not the context.
  res.asked.clear();
  lower_text("FROM alpine:3\n", o, &res);
  CHECK(res.asked == std::vector<std::string>{"alpine:3"});

  img.image_ref = "missing:1";
  o.named_contexts["alpine"] = img;
  CHECK(error_of("FROM alpine\n", o) == "Dockerfile:1:1: build context \"alpine\": image not found: missing:1");
}
