// solver/solver.h — solves a graph::Definition: derives every vertex's cache key from
// its op encoding, its inputs' keys and (for ops reading host files) a content
// checksum, before anything runs; looks the keys up from the result backwards, so a
// hit's inputs are never made or fetched; then runs the misses whose inputs are ready
// in parallel (oneTBB). Knows ops and cache keys, not Dockerfile syntax.
#pragma once

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "solver/explain.h"
#include "solver/graph/ops.h"
#include "solver/ops/executor.h"

namespace builder::solver {

inline constexpr const char* kCacheKeyVersion = "builder-cache-key-v1";

/// One progress event. Events of one vertex arrive in order: Start, then either Cached,
/// or Miss, Log*, and Done or Error. (Error may also follow Start directly, when the
/// cache key itself cannot be computed or looked up.) A vertex whose result no step
/// needs, because a step above it was a hit, is reported Cached as well.
struct Event {
  enum class Kind { Start, Log, Cached, Miss, Done, Error };
  Kind kind;
  int vertex = -1;
  /// Log: output bytes; Miss: why the step runs, one line of plain text ("file
  /// \"app.py\" changed", "--no-cache"); Error: message.
  std::string text;
  double seconds = 0.0;  ///< Cached/Done/Error: duration
};
using ProgressFn = std::function<void(const Event&)>;

struct SolveOptions {
  bool no_cache = false;
  /// How many steps run at once; 0 = as many as are ready (steps mostly wait on their
  /// processes, so the default does not stop at the number of cores).
  int parallelism = 0;
  /// Explaining misses: a stable id per vertex (same instruction of the same Dockerfile
  /// and stage across builds; empty strings or an empty vector: not explained), the
  /// vertices' progress names, and the names declared with ARG. Records are read from
  /// and written to `records` (none: misses say only "not in the cache").
  std::vector<std::string> step_ids;
  std::vector<std::string> names;
  std::set<std::string> build_args;
  StepRecords* records = nullptr;
};

class Solver {
 public:
  Solver(ops::Executor& executor, SolveOptions options);
  /// Solves the vertices the result depends on (others are never touched) and returns
  /// the result's Result. Only misses that a result needs run: below a hit nothing is
  /// made, looked up or imported (Executor::skipped is told). `progress` is called serially (under a lock). Throws the
  /// first failure as base::Error with vertex() set to the failing vertex index.
  ops::Result build(const graph::Definition& def, const ProgressFn& progress);

 private:
  ops::Executor& executor_;
  SolveOptions options_;
};

}  // namespace builder::solver
