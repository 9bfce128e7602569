// cli/history_recorder.h — turns one build's solver events into its cache::History record:
// step rows (cached, or missed with the reason, and how each ended) and each step's
// output appended whole to its log. Rows are written in batches: a fully cached build
// of 50 steps costs one disk sync, not 50. History is a record, not the build: a
// failure to write it warns once and never fails the build.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cache/history.h"
#include "cache/store.h"
#include "solver/graph/ops.h"
#include "solver/solver.h"

namespace builder::cli {

/// Not thread-safe: fed serially, as the solver calls progress functions.
class HistoryRecorder {
 public:
  struct Info {
    std::string context;     ///< "-" for a context from stdin
    std::string dockerfile;  ///< "-" for a Dockerfile from stdin
    std::string target;
    std::vector<std::string> tags;
  };

  /// Records the build as running. `store` must outlive the recorder.
  HistoryRecorder(cache::Store& store, const Info& info);
  /// A build that was never finished (an exception other than base::Error) is recorded
  /// as failed. Never throws.
  ~HistoryRecorder();
  HistoryRecorder(const HistoryRecorder&) = delete;
  HistoryRecorder& operator=(const HistoryRecorder&) = delete;

  /// Step names come from the SourceMap, known once the Dockerfile is lowered; it must
  /// outlive the recorder's use of operator().
  void name_steps(const graph::SourceMap& source_map) { source_map_ = &source_map; }
  void operator()(const solver::Event& ev);

  void completed(const std::string& image_id);
  void failed(const std::string& error);
  void interrupted(const std::string& error);

  /// The build's id ("" when history could not be written).
  const std::string& id() const { return id_; }

 private:
  using Clock = std::chrono::steady_clock;
  struct Step {
    cache::StepEntry entry;
    Clock::time_point started;
    cache::LogWriter log;
    bool written = false;  ///< has a row
    bool dirty = false;    ///< changed since its row was written
    bool ended = false;
  };

  void finish(cache::BuildStatus status, const std::string& image_id, const std::string& error);
  /// Marks `s` for writing; writes every marked step now when `now` is set or the
  /// last write is older than kFlushEvery.
  void put(Step& s, bool now);
  void flush();
  void disable(const std::exception& e);

  std::optional<cache::History> history_;
  std::string id_;
  const graph::SourceMap* source_map_ = nullptr;
  std::map<int, Step> steps_;  // by vertex
  int next_ = 1;
  Clock::time_point last_flush_ = Clock::now();
  bool finished_ = false;
  bool warned_ = false;
};

}  // namespace builder::cli
