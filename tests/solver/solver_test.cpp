#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include "base/error.h"
#include "solver/solver.h"
#include "test_util.h"

using namespace builder;

namespace {

/// Records executions; results are one fake layer per executed vertex.
class FakeExecutor : public ops::Executor {
 public:
  std::atomic<int> executions{0};
  std::map<std::string, ops::Result> cache;
  std::mutex mu;
  std::string content = "";
  int sleep_ms = 0;
  std::string fail_on;  // exec arg that fails

  std::string content_key(const graph::Vertex& v) override {
    auto* s = std::get_if<graph::SourceOp>(&v.op);
    return s && s->kind == graph::SourceOp::Kind::Local ? content : "";
  }
  std::optional<ops::Result> lookup(const graph::Vertex&, const std::string& key) override {
    std::lock_guard lk(mu);
    auto it = cache.find(key);
    if (it == cache.end()) return std::nullopt;
    return it->second;
  }
  ops::Result execute(const graph::Vertex& v, const std::vector<ops::Result>& inputs, const std::string& key,
                      const ops::OutputFn& out) override {
    ++executions;
    if (sleep_ms) std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
    if (auto* e = std::get_if<graph::ExecOp>(&v.op)) {
      if (!e->args.empty() && e->args.back() == fail_on) throw base::Error("boom");
      out("ran " + e->args.back() + "\n");
    }
    ops::Result r = inputs.empty() ? ops::Result{} : inputs[0];
    r.layers.push_back(key.substr(7, 12));
    std::lock_guard lk(mu);
    cache[key] = r;
    return r;
  }
};

graph::Vertex src() { return {graph::SourceOp{graph::SourceOp::Kind::Local, "", "", "context", {}, {}}, {}}; }
graph::Vertex run(const std::string& cmd, int input) {
  graph::ExecOp e;
  e.args = {"/bin/sh", "-c", cmd};
  return {e, {input}};
}

}  // namespace

TEST_CASE("solver: a second build with nothing changed executes nothing") {
  FakeExecutor fx;
  graph::Definition def;
  def.vertices = {src(), run("a", 0), run("b", 1)};
  def.result = 2;
  solver::Solver s(fx, {});
  auto r1 = s.build(def, {});
  CHECK(fx.executions == 3);
  int cached = 0;
  auto r2 = s.build(def, [&](const solver::Event& e) { cached += e.kind == solver::Event::Kind::Cached; });
  CHECK(fx.executions == 3);
  CHECK(cached == 3);
  CHECK(r1.layers == r2.layers);
}

TEST_CASE("solver: changed content re-runs the dependents; --no-cache runs everything") {
  FakeExecutor fx;
  graph::Definition def;
  def.vertices = {src(), run("a", 0)};
  def.result = 1;
  solver::Solver(fx, {}).build(def, {});
  fx.content = "changed";
  solver::Solver(fx, {}).build(def, {});
  CHECK(fx.executions == 4);
  solver::Solver(fx, {true, 0}).build(def, {});
  CHECK(fx.executions == 5);  // sources are still served from what is at hand
}

TEST_CASE("solver: vertices with the same key run once, unused vertices never") {
  FakeExecutor fx;
  graph::Definition def;
  def.vertices = {src(), run("same", 0), run("same", 0), run("unused", 0), run("join", 1)};
  def.vertices[4].inputs = {1, 2};
  def.result = 4;
  solver::Solver(fx, {}).build(def, {});
  // src, one of the two "same", join; never "unused".
  CHECK(fx.executions == 3);
}

TEST_CASE("solver: independent vertices run in parallel") {
  FakeExecutor fx;
  fx.sleep_ms = 300;
  graph::Definition def;
  def.vertices = {src()};
  for (int i = 0; i < 4; ++i) def.vertices.push_back(run("p" + std::to_string(i), 0));
  def.vertices.push_back(run("join", 1));
  def.vertices.back().inputs = {1, 2, 3, 4};
  def.result = 5;
  std::atomic<int> running{0}, peak{0};
  solver::Solver(fx, {false, 4}).build(def, [&](const solver::Event& e) {
    if (e.kind == solver::Event::Kind::Start) peak = std::max(peak.load(), ++running);
    if (e.kind == solver::Event::Kind::Done) --running;
  });
  CHECK(peak >= 2);
}

TEST_CASE("solver: a failure names its vertex and stops the build") {
  FakeExecutor fx;
  fx.fail_on = "bad";
  graph::Definition def;
  def.vertices = {src(), run("bad", 0), run("after", 1)};
  def.result = 2;
  try {
    solver::Solver(fx, {}).build(def, {});
    FAIL("expected an error");
  } catch (const base::Error& e) {
    CHECK(e.vertex() == "1");
    CHECK(e.message() == "boom");
  }
  CHECK(fx.executions == 2);
}
