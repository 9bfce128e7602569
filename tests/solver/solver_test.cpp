#include <atomic>
#include <set>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include "base/error.h"
#include "base/temp_dir.h"
#include "cache/db.h"
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

  std::map<std::string, std::string> files;  // path -> sum, listed for explanations
  std::atomic<int> running{0}, peak{0};     // executions at once
  std::atomic<int> lookups{0};
  std::set<std::string> skipped_keys;        // told by the solver: not needed

  std::string content_key(const graph::Vertex& v, std::vector<cache::FileSum>* listed) override {
    auto* s = std::get_if<graph::SourceOp>(&v.op);
    if (!s || s->kind != graph::SourceOp::Kind::Local) return "";
    std::string key = content;
    for (const auto& [path, sum] : files) {
      key += path + "=" + sum + ";";
      if (listed) listed->push_back({path, sum});
    }
    return key;
  }
  cache::KeyLocks::Held lock_key(const std::string&) override { return {}; }
  void skipped(const graph::Vertex&, const std::string& key) override {
    std::lock_guard lk(mu);
    skipped_keys.insert(key);
  }
  std::optional<ops::Result> lookup(const graph::Vertex&, const std::string& key) override {
    ++lookups;
    std::lock_guard lk(mu);
    auto it = cache.find(key);
    if (it == cache.end()) return std::nullopt;
    return it->second;
  }
  ops::Result execute(const graph::Vertex& v, const std::vector<ops::Result>& inputs, const std::string& key,
                      const ops::OutputFn& out) override {
    ++executions;
    int now = ++running;
    for (int p = peak.load(); now > p && !peak.compare_exchange_weak(p, now);) {
    }
    if (sleep_ms) std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
    --running;
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

graph::Vertex src() {
  graph::SourceOp s;
  s.kind = graph::SourceOp::Kind::Local;
  s.local_name = "context";
  return {s, {}};
}
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

TEST_CASE("solver: a hit is looked up before its inputs, which are then neither run nor looked up") {
  graph::Definition def;
  // Two stages: 0 context, 1-2 stage a, 3 the final stage's step reading 2 and 0, 4 on 3.
  def.vertices = {src(), run("a1", 0), run("a2", 1), run("copy", 2), run("final", 3)};
  def.vertices[3].inputs = {2, 0};
  def.result = 4;
  FakeExecutor warm;
  solver::Solver(warm, {}).build(def, {});
  REQUIRE(warm.executions == 5);

  // Only the final result is known (a mode=min cache): nothing runs and the only
  // lookup is the result's; the others are reported cached and told they were skipped.
  FakeExecutor fx;
  std::string final_key;
  for (const auto& [k, r] : warm.cache)
    if (r.layers.size() == 5) final_key = k;  // context, a1, a2, copy, final (one fake layer each)
  REQUIRE_FALSE(final_key.empty());
  fx.cache[final_key] = warm.cache[final_key];
  std::map<int, std::vector<solver::Event::Kind>> events;
  auto r = solver::Solver(fx, {}).build(def, [&](const solver::Event& e) { events[e.vertex].push_back(e.kind); });
  CHECK(fx.executions == 0);
  CHECK(fx.lookups == 1);
  CHECK(r.layers == warm.cache[final_key].layers);
  CHECK(fx.skipped_keys.size() == 4);
  CHECK(fx.skipped_keys.count(final_key) == 0);
  using K = solver::Event::Kind;
  for (int v = 0; v < 5; ++v) CHECK_MESSAGE((events[v] == std::vector<K>{K::Start, K::Cached}), "vertex " << v);

  // A hit in the middle: what is above it runs on its result, what is below is skipped.
  FakeExecutor mid;
  for (const auto& [k, res] : warm.cache)
    if (res.layers.size() == 3) mid.cache[k] = res;  // a2's result only
  REQUIRE(mid.cache.size() == 1);
  auto r2 = solver::Solver(mid, {}).build(def, {});
  CHECK(mid.executions == 3);  // the context (copy reads it: a fake miss), copy and final
  CHECK(mid.skipped_keys.size() == 1);  // a1
  CHECK(r2.layers == r.layers);
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
  solver::SolveOptions no_cache;
  no_cache.no_cache = true;
  solver::Solver(fx, no_cache).build(def, {});
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
  solver::SolveOptions four;
  four.parallelism = 4;
  solver::Solver(fx, four).build(def, [&](const solver::Event& e) {
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

TEST_CASE("solver: --parallelism bounds the steps that run at once; the default runs every ready step") {
  graph::Definition def;
  def.vertices = {src()};
  for (int i = 0; i < 6; ++i) def.vertices.push_back(run("p" + std::to_string(i), 0));
  def.vertices.push_back(run("join", 1));
  def.vertices.back().inputs = {1, 2, 3, 4, 5, 6};
  def.result = 7;
  {
    FakeExecutor fx;
    fx.sleep_ms = 200;
    solver::SolveOptions o;
    o.parallelism = 2;
    solver::Solver(fx, o).build(def, {});
    CHECK(fx.executions == 8);
    CHECK(fx.peak == 2);
  }
  {
    FakeExecutor fx;
    fx.sleep_ms = 200;
    solver::Solver(fx, {}).build(def, {});
    CHECK(fx.peak == 6);  // six ready steps on a two-core machine, all at once
  }
}

namespace {

/// Builds `def` with explanations kept in `db`; returns vertex -> miss reason.
std::map<int, std::string> misses(FakeExecutor& fx, const graph::Definition& def, cache::Db& db, bool no_cache = false,
                                  std::set<std::string> args = {}) {
  solver::DbStepRecords records(db);
  solver::SolveOptions o;
  o.no_cache = no_cache;
  o.records = &records;
  o.build_args = std::move(args);
  for (size_t i = 0; i < def.vertices.size(); ++i) {
    o.step_ids.push_back("step" + std::to_string(i));
    o.names.push_back("[" + std::to_string(i) + "] name");
  }
  std::map<int, std::string> out;
  solver::Solver(fx, o).build(def, [&](const solver::Event& e) {
    if (e.kind == solver::Event::Kind::Miss) out[e.vertex] = e.text;
  });
  return out;
}

graph::Vertex run_env(const std::string& cmd, int input, std::vector<std::string> env) {
  auto v = run(cmd, input);
  std::get<graph::ExecOp>(v.op).env = std::move(env);
  return v;
}

graph::Vertex image_src(const std::string& digest) {
  graph::SourceOp s;
  s.kind = graph::SourceOp::Kind::Image;
  s.ref = "docker.io/library/busybox:latest";
  s.digest = digest;
  return {s, {}};
}

}  // namespace

TEST_CASE("solver: every miss says why") {
  base::TempDir tmp("/tmp", "solver-explain-");
  cache::Db db(tmp.path() + "/metadata.db");
  FakeExecutor fx;
  fx.files = {{"a.txt", "1"}, {"b.txt", "1"}};
  graph::Definition def;
  // 0 context, 1 base image, 2 RUN on the image with env, 3 COPY-like step reading the
  // context (an exec with two inputs stands in for it), 4 RUN after it.
  def.vertices = {src(), image_src("sha256:aaa"), run_env("setup", 1, {"PATH=/bin", "VERSION=1"}), run("copy", 2),
                  run("make", 3)};
  def.vertices[3].inputs = {2, 0};
  def.result = 4;

  auto m = misses(fx, def, db);
  CHECK(m[2] == "no earlier result for this step");
  CHECK(m[4] == "no earlier result for this step");

  CHECK(misses(fx, def, db, false, {"VERSION"}).empty());  // all cached: nothing to explain

  // A file the step reads changes: the copy names it, the step after names the copy.
  fx.files["b.txt"] = "2";
  m = misses(fx, def, db);
  CHECK(m.count(2) == 0);
  CHECK(m[3] == "file \"b.txt\" changed");
  CHECK(m[4] == "input step re-ran: [3] name");

  fx.files["c.txt"] = "1";
  fx.files.erase("a.txt");
  m = misses(fx, def, db);
  CHECK(m[3] == "file \"c.txt\" added; file \"a.txt\" removed");

  // A build arg (declared with ARG) and an ENV value.
  std::get<graph::ExecOp>(def.vertices[2].op).env = {"PATH=/bin", "VERSION=2"};
  m = misses(fx, def, db, false, {"VERSION"});
  CHECK(m[2] == "build arg VERSION changed");
  CHECK(m[3] == "input step re-ran: [2] name");
  std::get<graph::ExecOp>(def.vertices[2].op).env = {"PATH=/usr/bin", "VERSION=2"};
  m = misses(fx, def, db, false, {"VERSION"});
  CHECK(m[2] == "ENV PATH changed");

  // The base image moves to another digest.
  def.vertices[1] = image_src("sha256:bbb");
  m = misses(fx, def, db, false, {"VERSION"});
  CHECK(m[1] == "base image docker.io/library/busybox:latest moved to sha256:bbb (was sha256:aaa)");
  CHECK(m[2] == "base image docker.io/library/busybox:latest moved to sha256:bbb (was sha256:aaa)");

  // --no-cache says so; a result that was removed from the cache says so.
  m = misses(fx, def, db, true, {"VERSION"});
  CHECK(m[2] == "--no-cache");
  fx.cache.clear();
  m = misses(fx, def, db, false, {"VERSION"});
  CHECK(m[4] == "its earlier result is no longer in the cache (pruned)");

  // Going back to an earlier variant compares with the most recently used one.
  std::get<graph::ExecOp>(def.vertices[4].op).args.back() = "make all";
  m = misses(fx, def, db, false, {"VERSION"});
  CHECK(m[4] == "the command changed");
}
