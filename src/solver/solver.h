// solver/solver.h — solves a graph::Definition: derives each vertex's cache key from
// its op encoding, its inputs' keys and (for file-reading ops) a content checksum, then
// runs every vertex whose inputs are ready in parallel (oneTBB), serving hits from the
// cache index. Knows ops and cache keys, not Dockerfile syntax.
#pragma once

#include <functional>
#include <string>

#include "solver/graph/ops.h"
#include "solver/ops/executor.h"

namespace builder::solver {

inline constexpr const char* kCacheKeyVersion = "builder-cache-key-v1";

/// One progress event. Events of one vertex arrive in order: Start, Log*, then
/// Cached or Done or Error.
struct Event {
  enum class Kind { Start, Log, Cached, Done, Error };
  Kind kind;
  int vertex = -1;
  std::string text;      ///< Log: output bytes; Error: message
  double seconds = 0.0;  ///< Done/Error: duration
};
using ProgressFn = std::function<void(const Event&)>;

struct SolveOptions {
  bool no_cache = false;
  int parallelism = 0;  ///< 0 = number of cores
};

class Solver {
 public:
  Solver(ops::Executor& executor, SolveOptions options);
  /// Solves the vertices the result depends on (others are never touched) and returns
  /// the result's Result. `progress` is called serially (under a lock). Throws the
  /// first failure as base::Error with vertex() set to the failing vertex index.
  ops::Result build(const graph::Definition& def, const ProgressFn& progress);

 private:
  ops::Executor& executor_;
  SolveOptions options_;
};

}  // namespace builder::solver
