#include "solver/solver.h"

#include <tbb/global_control.h>
#include <tbb/task_arena.h>
#include <tbb/task_group.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "base/digest.h"
#include "base/error.h"
#include "solver/graph/encode.h"

namespace builder::solver {

Solver::Solver(ops::Executor& executor, SolveOptions options) : executor_(executor), options_(options) {}

namespace {

constexpr int kMaxWorkers = 64;

struct Run {
  const graph::Definition& def;
  ops::Executor& exec;
  const ProgressFn& progress;
  const SolveOptions& opts;
  std::vector<bool> needed;
  std::vector<std::vector<int>> dependents;
  std::vector<std::atomic<int>> waiting;
  std::vector<std::string> keys;
  std::vector<ops::Result> results;
  std::vector<StepRecord> records;  // what each vertex's key was made of
  std::vector<char> solved;         // written by the vertex's own task only (not bits: threads)
  // What the backward lookup found: a hit (results[v] set), a miss (runs, so its
  // inputs are looked up too), or nothing (not looked up: no result needs it).
  enum class Found : uint8_t { Unknown, Hit, Miss };
  std::vector<Found> found;
  std::vector<double> lookup_secs;               // a hit's lookup time, for its Cached event
  std::vector<std::atomic<bool>> visited;        // claimed by one lookup task
  std::vector<std::atomic<int>> keys_waiting;    // inputs whose keys are not known yet
  std::mutex mu;  // guards progress calls, first_error, inflight
  std::exception_ptr first_error;
  std::atomic<bool> failed{false};
  // Single flight: vertices with equal keys run once; later ones wait for the first.
  std::map<std::string, std::shared_future<ops::Result>> inflight;

  Run(const graph::Definition& d, ops::Executor& e, const ProgressFn& p, const SolveOptions& o)
      : def(d), exec(e), progress(p), opts(o), needed(d.vertices.size()), dependents(d.vertices.size()),
        waiting(d.vertices.size()), keys(d.vertices.size()), results(d.vertices.size()), records(d.vertices.size()),
        solved(d.vertices.size()), found(d.vertices.size(), Found::Unknown), lookup_secs(d.vertices.size()),
        visited(d.vertices.size()), keys_waiting(d.vertices.size()) {}

  void emit(Event ev) {
    if (!progress) return;
    std::lock_guard lk(mu);
    progress(ev);
  }

  std::string key_of(int v) {
    const auto& vx = def.vertices[v];
    StepRecord& rec = records[v];
    if (static_cast<size_t>(v) < opts.step_ids.size()) rec.step_id = opts.step_ids[v];
    base::Sha256 h;
    h.update(kCacheKeyVersion);
    h.update("\n");
    h.update(graph::encode_op(vx.op));
    for (int in : vx.inputs) {
      h.update("\ninput:");
      h.update(keys[in]);
      rec.inputs.push_back(keys[in]);
    }
    // File lists only matter to explanations, so are only gathered for them.
    std::string content = exec.content_key(vx, opts.records ? &rec.files : nullptr);
    if (!content.empty()) {
      h.update("\ncontent:");
      h.update(content);
    }
    rec.fields = fields_of(vx.op);
    rec.key = h.finish().str();
    return rec.key;
  }

  std::string why_miss(int v) {
    if (opts.no_cache) return "--no-cache";
    if (!opts.records) return "not in the cache";
    ExplainInput in;
    in.now = &records[v];
    in.build_args = opts.build_args;
    for (int i : def.vertices[v].inputs) {
      in.inputs.push_back(&records[i]);
      in.input_names.push_back(static_cast<size_t>(i) < opts.names.size() ? opts.names[i] : std::string());
    }
    try {
      return explain_miss(in, *opts.records);
    } catch (const base::Error&) {
      return "not in the cache";  // the records are an aid; a damaged one must not fail the build
    }
  }

  bool uses_cache(int v) const {
    // Sources are served from what is at hand even with --no-cache.
    return !opts.no_cache || std::holds_alternative<graph::SourceOp>(def.vertices[v].op);
  }

  /// Phase 1: the key of `v`, once its inputs' keys are known. Keys are made of op
  /// encodings, input keys and content checksums of files the op reads from the host
  /// (never of an input's result), so every key is known before anything runs.
  void key_task(tbb::task_group& tg, int v) {
    tg.run([this, &tg, v] {
      if (failed) return;
      auto t0 = std::chrono::steady_clock::now();
      try {
        keys[v] = key_of(v);
      } catch (...) {
        emit({Event::Kind::Start, v, {}, 0});
        fail(v, std::current_exception(),
             std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        return;
      }
      for (int d : dependents[v])
        if (keys_waiting[d].fetch_sub(1) == 1) key_task(tg, d);
    });
  }

  /// Phase 2: looks `v` up; on a miss its inputs are needed, so they are looked up
  /// too. Starting from the result, a hit ends the walk down its branch: what lies
  /// below it is neither made nor fetched (BuildKit's behaviour with an imported
  /// cache, where only the final stage's steps may be recorded).
  void lookup_task(tbb::task_group& tg, int v) {
    tg.run([this, &tg, v] {
      if (failed) return;
      auto t0 = std::chrono::steady_clock::now();
      auto secs = [&] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      };
      try {
        if (uses_cache(v)) {
          if (auto hit = exec.lookup(def.vertices[v], keys[v])) {
            results[v] = std::move(*hit);
            lookup_secs[v] = secs();
            found[v] = Found::Hit;
            return;
          }
        }
      } catch (...) {
        emit({Event::Kind::Start, v, {}, 0});
        fail(v, std::current_exception(), secs());
        return;
      }
      found[v] = Found::Miss;
      for (int in : def.vertices[v].inputs)
        if (!visited[in].exchange(true)) lookup_task(tg, in);
    });
  }

  /// Phase 3, once `v`'s inputs are done: reports a hit or a step no result needs,
  /// or runs a miss.
  void solve_one(int v) {
    auto t0 = std::chrono::steady_clock::now();
    auto secs = [&] {
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    const auto& vx = def.vertices[v];
    emit({Event::Kind::Start, v, {}, 0});
    if (found[v] == Found::Hit) {
      solved[v] = true;
      emit({Event::Kind::Cached, v, {}, lookup_secs[v]});
      return;
    }
    if (found[v] == Found::Unknown) {
      // A later step's result was found: this one is covered by it, as in BuildKit.
      exec.skipped(vx, keys[v]);
      solved[v] = true;
      emit({Event::Kind::Cached, v, {}, secs()});
      return;
    }
    const bool use_cache = uses_cache(v);
    std::promise<ops::Result> promise;
    std::shared_future<ops::Result> theirs;
    {
      std::lock_guard lk(mu);
      auto it = inflight.find(keys[v]);
      if (it != inflight.end()) theirs = it->second;
      else inflight.emplace(keys[v], promise.get_future().share());
    }
    if (theirs.valid()) {
      results[v] = theirs.get();  // rethrows the first run's failure
      solved[v] = true;
      emit({Event::Kind::Cached, v, {}, secs()});
      return;
    }
    try {
      // Another process on the same root may be running this very key: wait for it,
      // then take its result from the cache instead of running the step again.
      cache::KeyLocks::Held hold = exec.lock_key(keys[v]);
      if (use_cache) {
        if (auto hit = exec.lookup(vx, keys[v])) {
          results[v] = std::move(*hit);
          promise.set_value(results[v]);
          solved[v] = true;
          emit({Event::Kind::Cached, v, {}, secs()});
          return;
        }
      }
      emit({Event::Kind::Miss, v, why_miss(v), 0});
      std::vector<ops::Result> inputs;
      for (int in : vx.inputs) inputs.push_back(results[in]);
      results[v] = exec.execute(vx, inputs, keys[v], [&](std::string_view s) {
        emit({Event::Kind::Log, v, std::string(s), 0});
      });
      promise.set_value(results[v]);
    } catch (...) {
      promise.set_exception(std::current_exception());
      throw;
    }
    solved[v] = true;
    emit({Event::Kind::Done, v, {}, secs()});
  }

  /// Records what every solved vertex was made of, for the next build's explanations.
  void save_records() {
    if (!opts.records) return;
    std::vector<StepRecord> done;
    for (size_t v = 0; v < records.size(); ++v)
      if (solved[v] && !records[v].step_id.empty()) done.push_back(std::move(records[v]));
    try {
      opts.records->save(done);
    } catch (const base::Error&) {
      // Losing records loses explanations, not results.
    }
  }

  void fail(int v, std::exception_ptr ep, double secs) {
    std::string msg;
    try {
      std::rethrow_exception(ep);
    } catch (base::Error& e) {
      e.set_vertex(std::to_string(v));
      msg = e.message();
      ep = std::make_exception_ptr(e);
    } catch (const std::exception& e) {
      base::Error err(e.what());
      err.set_vertex(std::to_string(v));
      msg = e.what();
      ep = std::make_exception_ptr(err);
    }
    emit({Event::Kind::Error, v, msg, secs});
    std::lock_guard lk(mu);
    if (!first_error) first_error = ep;
    failed = true;
  }

  void schedule(tbb::task_group& tg, int v) {
    tg.run([this, &tg, v] {
      if (failed) return;
      auto t0 = std::chrono::steady_clock::now();
      try {
        solve_one(v);
      } catch (...) {
        fail(v, std::current_exception(),
             std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        return;
      }
      for (int d : dependents[v])
        if (waiting[d].fetch_sub(1) == 1) schedule(tg, d);
    });
  }
};

}  // namespace

ops::Result Solver::build(const graph::Definition& def, const ProgressFn& progress) {
  graph::validate(def);
  Run run(def, executor_, progress, options_);
  // Only what the result depends on is solved: unused stages are never touched.
  std::vector<int> stack{def.result};
  while (!stack.empty()) {
    int v = stack.back();
    stack.pop_back();
    if (run.needed[v]) continue;
    run.needed[v] = true;
    for (int in : def.vertices[v].inputs) stack.push_back(in);
  }
  const int n = static_cast<int>(def.vertices.size());
  std::vector<int> ready;
  for (int v = 0; v < n; ++v) {
    if (!run.needed[v]) continue;
    // An input listed twice counts twice, and is decremented twice.
    run.waiting[v] = static_cast<int>(def.vertices[v].inputs.size());
    run.keys_waiting[v] = static_cast<int>(def.vertices[v].inputs.size());
    for (int in : def.vertices[v].inputs) run.dependents[in].push_back(v);
    if (def.vertices[v].inputs.empty()) ready.push_back(v);
  }
  // One worker per step that may run at once: a worker stays with its step while the
  // step's process runs or while it waits for another build running the same key.
  int needed_count = static_cast<int>(std::count(run.needed.begin(), run.needed.end(), true));
  const int workers = options_.parallelism > 0 ? options_.parallelism : std::clamp(needed_count, 2, kMaxWorkers);
  tbb::global_control allow(tbb::global_control::max_allowed_parallelism, static_cast<size_t>(workers));
  tbb::task_arena arena(workers);
  arena.execute([&] {
    // Every key first, then the lookups from the result backwards, then the steps
    // in dependency order: a step runs only when it missed and a result needs it.
    {
      tbb::task_group tg;
      for (int v : ready) run.key_task(tg, v);
      tg.wait();
    }
    if (run.failed) return;
    {
      tbb::task_group tg;
      run.visited[def.result] = true;
      run.lookup_task(tg, def.result);
      tg.wait();
    }
    if (run.failed) return;
    tbb::task_group tg;
    for (int v : ready) run.schedule(tg, v);
    tg.wait();
  });
  run.save_records();
  if (run.first_error) std::rethrow_exception(run.first_error);
  return run.results[def.result];
}

}  // namespace builder::solver
