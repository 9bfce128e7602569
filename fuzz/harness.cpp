// The shared fuzz pass: every frontend entry point over one input. Each stage catches
// base::Error on its own so a rejection in one (say, a bad word for the expander) does
// not hide the others from the fuzzer.
#include "harness.h"

#include <stdexcept>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/json.h"
#include "frontend/expand.h"
#include "frontend/lint.h"
#include "frontend/lower.h"
#include "frontend/outline.h"
#include "frontend/parse.h"
#include "solver/graph/encode.h"

namespace builder::fuzz {
namespace {

using frontend::ImageResolver;
using frontend::ResolvedImage;

/// Any reference resolves to one of two fixed images, except those naming "missing",
/// which are unknown (the store's base::Error). "onbuild" images carry ONBUILD triggers,
/// so the trigger parser and lowering of triggers are reached too.
class FakeResolver : public ImageResolver {
 public:
  ResolvedImage resolve(const std::string& ref) override {
    if (ref.find("missing") != std::string::npos)
      throw base::Error("image `" + ref + "` could not be found");
    ResolvedImage r;
    r.ref = ref.find(':') == std::string::npos ? ref + ":latest" : ref;
    r.digest = "sha256:" + std::string(64, 'a');
    r.config = {
        {"architecture", "amd64"},
        {"os", "linux"},
        {"config",
         {{"Env", {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/root", "EMPTY=", "NOEQ"}},
          {"Cmd", {"sh"}},
          {"Entrypoint", {"/entry.sh"}},
          {"WorkingDir", "srv/../app"},
          {"User", "app"},
          {"Labels", {{"org.example", "base"}}},
          {"ExposedPorts", {{"80/tcp", base::Json::object()}}},
          {"Volumes", {{"/data", base::Json::object()}}},
          {"Shell", {"/bin/sh", "-c"}},
          {"StopSignal", "SIGTERM"},
          {"Healthcheck",
           {{"Test", {"CMD-SHELL", "true"}}, {"Interval", 30000000000LL}, {"Retries", 3}}}}},
        {"rootfs", {{"type", "layers"}, {"diff_ids", base::Json::array()}}},
        {"history",
         {{{"created_by", "base layer"}, {"empty_layer", false}},
          {{"created_by", "CMD [\"sh\"]"}, {"empty_layer", true}}}}};
    if (ref.find("onbuild") != std::string::npos)
      r.config["config"]["OnBuild"] = {"RUN echo triggered", "ENV TRIGGERED=1",
                                       "COPY --chown=app . /app/", "ONBUILD RUN nested"};
    return r;
  }
};

/// The environment every word is expanded in: set, empty, spaced and glob-like values.
const std::vector<std::string> kEnv = {"A=a",        "B=b c",   "EMPTY=", "PATH=/usr/bin:/bin",
                                       "HOME=/root", "X=*?[x]", "Q='\"",  "D=$A"};

void expand_everything(const frontend::ast::File& file) {
  frontend::EnvLookup env = frontend::env_from_list(kEnv);
  frontend::ShellOptions plain;
  plain.escape = file.directives.escape;
  frontend::ShellOptions raw = plain;
  raw.raw_quotes = true;
  raw.raw_escapes = true;
  raw.skip_unset_env = true;
  frontend::ShellOptions unquoted = plain;
  unquoted.skip_process_quotes = true;

  // expand() is what process_word and process_words wrap: it yields both results.
  auto words = [&](const std::string& w) {
    for (const auto* o : {&plain, &raw, &unquoted}) {
      try {
        frontend::expand(w, env, *o);
      } catch (const base::Error&) {
      }
    }
  };
  auto instruction = [&](const frontend::ast::Instruction& ins) {
    for (const auto& a : ins.args) words(a);
    for (const auto& f : ins.flags) words(f);
    frontend::heredocs_from_line(ins.original);
  };
  for (const auto& ins : file.instructions) {
    instruction(ins);
    if (ins.onbuild) instruction(*ins.onbuild);
  }
}

/// A definition the frontend returned must be one the solver accepts; anything else is a
/// frontend bug, reported as a non-base::Error so the fuzzer stops on it.
void check_definition(const frontend::LowerResult& r) {
  try {
    graph::validate(r.definition);
  } catch (const base::Error& e) {
    throw std::logic_error(std::string("lower produced an invalid graph: ") + e.what());
  }
  if (r.source_map.size() != r.definition.vertices.size())
    throw std::logic_error("lower produced a source map unlike its graph");
  for (const auto& v : r.definition.vertices) graph::describe(v.op);
  try {
    graph::definition_digest(r.definition);
  } catch (const base::Json::type_error& e) {
    // TODO(fuzz): the canonical encoding (solver/graph/encode.cpp) is JSON and refuses
    // strings that are not UTF-8, which the frontend passes through from the Dockerfile
    // bytes as BuildKit does (testdata/fuzz/regressions/invalid-utf8-*). Skipped here
    // until the encoding takes arbitrary bytes; any other JSON error still fails.
    if (e.id != 316) throw;
  }
}

}  // namespace

Outcome run_frontend(std::string_view bytes) {
  frontend::ast::File file;
  try {
    file = frontend::parse(bytes, "Dockerfile");
  } catch (const base::Error&) {
    return Outcome::kParseRejected;
  }
  std::vector<frontend::TargetInfo> targets;
  try {
    frontend::dump_ast(file);
  } catch (const base::Error&) {
  }
  try {
    targets = frontend::list_targets(file);
  } catch (const base::Error&) {
  }
  try {
    frontend::Linter linter;
    frontend::lint_syntax(file, linter);
  } catch (const base::Error&) {
  }
  expand_everything(file);

  FakeResolver resolver;
  Outcome outcome = Outcome::kLowerRejected;
  try {
    frontend::LowerOptions opts;
    check_definition(frontend::lower(file, opts, resolver));
    outcome = Outcome::kLowered;
  } catch (const base::Error&) {
  }
  // Every stage, with build args and the findings kept, for the first named stage (or
  // the default one) as target: reaches the stages the default target skips.
  try {
    std::vector<frontend::LintFinding> findings;
    frontend::LowerOptions opts;
    opts.all_stages = true;
    opts.lint = &findings;
    opts.build_args = {
        {"A", "from-build-arg"}, {"TARGETARCH", "arm64"}, {"HTTP_PROXY", "http://p"}};
    opts.allow = {"network.host", "security.insecure"};
    opts.context_excludes = {"*.tmp", "!keep.tmp"};
    opts.context_ignored = [](const std::string& p) {
      return p.find("ignored") != std::string::npos;
    };
    for (const auto& t : targets)
      if (!t.name.empty()) {
        opts.target = t.name;
        break;
      }
    check_definition(frontend::lower(file, opts, resolver));
  } catch (const base::Error&) {
  }
  return outcome;
}

}  // namespace builder::fuzz
