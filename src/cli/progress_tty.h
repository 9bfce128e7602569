// cli/progress_tty.h — BuildKit's tty progress on a terminal: a block redrawn in place
// ("[+] Building 3.2s (5/7)", one " => [2/4] RUN make   1.2s" line per started step, the
// last output lines of running steps dimmed beneath), then the final state once.
// Knows events, the Definition and the SourceMap only.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "progress.h"
#include "step_log.h"

namespace builder::cli {

class TtyProgress : public Progress {
 public:
  struct Options {
    std::FILE* out = stderr;
    int width = 80;  ///< columns; every line is cut to fit
    int height = 0;  ///< rows; the live block keeps under it (0: unknown, no limit)
    bool color = true;
    /// stderr's size from TIOCGWINSZ (80 columns, no height, when it is not a
    /// terminal); colour unless NO_COLOR is set.
    static Options for_stderr();
  };

  /// Starts the ticker thread that redraws the block, at most 10 times a second.
  TtyProgress(const graph::Definition& def, const graph::SourceMap& source_map, Options options);
  /// Stops and joins the ticker. Prints nothing more: finish() prints the final state.
  ~TtyProgress() override;
  TtyProgress(const TtyProgress&) = delete;
  TtyProgress& operator=(const TtyProgress&) = delete;

  /// Thread-safe; only records the event, the ticker draws.
  void operator()(const solver::Event& ev) override;
  /// Stops the ticker and draws the final state: every started step, output lines only
  /// under a failed one. Thread-safe; later calls do nothing.
  void finish() override;

 private:
  using Clock = std::chrono::steady_clock;
  enum class State { Running, Done, Cached, Error };
  struct Step {
    int vertex = -1;
    State state = State::Running;
    Clock::time_point started;
    double seconds = 0.0;  ///< once finished: as the solver measured it
    std::string reason;    ///< why it runs (a cache miss), shown dimmed beside its name
  };

  void tick();
  Step& step_of(int vertex);
  /// The block's lines, cut to the width and coloured. Needs mu_.
  std::vector<std::string> frame(bool final, Clock::time_point now) const;
  /// Replaces the block drawn last with frame(). Needs mu_.
  void draw(bool final);

  const graph::SourceMap& source_map_;
  const Options options_;
  const int total_;  ///< vertices the result depends on: the solver starts no others
  const Clock::time_point start_;

  std::mutex mu_;  // guards everything below, and writes to options_.out
  std::condition_variable wake_;
  std::vector<Step> steps_;      // in start order
  std::map<int, size_t> index_;  // vertex -> steps_ position
  StepLog logs_;
  int drawn_lines_ = 0;  ///< height of the block on screen, for the cursor-up
  bool dirty_ = false;
  bool stop_ = false;
  bool finished_ = false;
  std::thread ticker_;  // last: starts once everything above is constructed
};

}  // namespace builder::cli
