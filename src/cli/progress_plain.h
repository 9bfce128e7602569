// cli/progress_plain.h — BuildKit's plain progress ("#3 [2/4] RUN make", "#3 0.512 output
// line", "#3 DONE 0.5s") on stderr, for logs and pipes. Knows events and the SourceMap only.
#pragma once

#include <chrono>
#include <map>
#include <string>

#include "progress.h"

namespace builder::cli {

/// Plain progress writer. Not thread-safe by itself; the solver calls it serially.
class PlainProgress : public Progress {
 public:
  PlainProgress(const graph::SourceMap& source_map, bool quiet);
  void operator()(const solver::Event& ev) override;
  /// Writes buffered partial lines (at the end of a build).
  void flush();
  void finish() override { flush(); }

 private:
  int number_of(int vertex);
  void write_line(int vertex, int n, const std::string& line);

  const graph::SourceMap& source_map_;
  bool quiet_;
  std::chrono::steady_clock::time_point start_;
  std::map<int, int> numbers_;          // vertex -> #N
  std::map<int, std::chrono::steady_clock::time_point> started_;  // vertex -> Start event
  std::map<int, std::string> partial_;  // vertex -> unterminated output
  int next_ = 1;
};

}  // namespace builder::cli
