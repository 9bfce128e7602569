// cli/progress.h — how a build shows its progress on stderr: the mode the user picked
// (--progress auto|tty|plain|rawjson|quiet) and the renderer interface cmd_build feeds the
// solver's events into. Knows events, the Definition and the SourceMap only.
#pragma once

#include <memory>
#include <string>

#include "solver/graph/ops.h"
#include "solver/solver.h"

namespace builder::cli {

enum class ProgressMode { Auto, Tty, Plain, RawJson, Quiet };

/// Parses "auto|tty|plain|rawjson|quiet"; throws base::Error naming an unknown mode.
ProgressMode parse_progress_mode(const std::string& s);

/// Auto becomes Tty when stderr is a terminal and Plain otherwise; an explicit mode is
/// kept (`--progress=tty` into a pipe still draws, as BuildKit does).
ProgressMode resolve_progress_mode(ProgressMode mode);

/// A progress renderer. The solver calls operator() serially; implementations that run
/// their own threads lock internally.
class Progress {
 public:
  virtual ~Progress() = default;
  virtual void operator()(const solver::Event& ev) = 0;
  /// Ends the display once the build finished or failed: writes what is still buffered
  /// or the final state. No events may follow.
  virtual void finish() = 0;
};

/// The renderer for `mode` (Auto must be resolved first). `def` and `source_map` must
/// outlive it.
std::unique_ptr<Progress> make_progress(ProgressMode mode, const graph::Definition& def,
                                        const graph::SourceMap& source_map);

/// Name of a vertex for progress and error reports: its SourceMap name, or
/// "vertex N" when it has none.
std::string vertex_name(const graph::SourceMap& source_map, int vertex);

}  // namespace builder::cli
