// cli/step_log.h — the recent output lines of each build step, stamped with the seconds
// since the step started as BuildKit shows them ("0.013 line1"). Feeds the tty display
// and the log tail of a build error report. Knows solver events only.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "solver/solver.h"

namespace builder::cli {

/// Keeps the last few output lines of every vertex. Not thread-safe: callers serialise
/// (the solver calls its progress function serially).
class StepLog {
 public:
  struct Line {
    double seconds = 0.0;  ///< since the vertex started
    std::string text;      ///< without the newline (and a trailing '\r'); a longer line than
                           ///< 16 KiB keeps its last 8 KiB
  };

  /// Keeps at most `keep` lines per vertex.
  explicit StepLog(size_t keep);

  void operator()(const solver::Event& ev);

  /// The last (up to `n`) lines of `vertex`, oldest first; an unterminated last line is
  /// included. Empty for a vertex that printed nothing.
  std::vector<Line> tail(int vertex, size_t n) const;

 private:
  using Clock = std::chrono::steady_clock;
  struct Vertex {
    Clock::time_point started = Clock::now();
    std::deque<Line> lines;
    Line partial;
    bool has_partial = false;
  };

  void push(Vertex& v, Line line);

  size_t keep_;
  std::map<int, Vertex> vertices_;
};

/// "0.013 line1": BuildKit's stamp, 3 decimals under 10s, 2 under 100s, else 1.
std::string format_log_line(const StepLog::Line& line);

}  // namespace builder::cli
