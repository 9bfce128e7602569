// cli/progress.h — renders solver progress events BuildKit-style ("#3 [2/4] RUN make",
// "#3 0.512 output line", "#3 DONE 0.5s") on stderr. Knows events and the SourceMap only.
#pragma once

#include <chrono>
#include <map>
#include <string>

#include "solver/graph/ops.h"
#include "solver/solver.h"

namespace builder::cli {

enum class ProgressMode { Auto, Tty, Plain, Quiet };

/// Parses "auto|tty|plain|quiet"; throws base::Error naming an unknown mode.
ProgressMode parse_progress_mode(const std::string& s);

/// Plain progress writer. Not thread-safe by itself; the solver calls it serially.
/// TODO(cli): tty mode renders like plain for now (no in-place redraw yet).
class PlainProgress {
 public:
  PlainProgress(const graph::SourceMap& source_map, bool quiet);
  void operator()(const solver::Event& ev);
  /// Writes buffered partial lines (at the end of a build).
  void flush();

 private:
  int number_of(int vertex);
  void write_line(int n, const std::string& line);

  const graph::SourceMap& source_map_;
  bool quiet_;
  std::chrono::steady_clock::time_point start_;
  std::map<int, int> numbers_;           // vertex -> #N
  std::map<int, std::string> partial_;   // vertex -> unterminated output
  int next_ = 1;
};

}  // namespace builder::cli
