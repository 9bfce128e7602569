// cache/history.h — the build history of a root: one record per build (who ran it, when,
// how it ended, what it produced) and per step (cached or why it ran, timing, error),
// with each step's whole output on disk. Storage only: it knows neither the solver's
// events nor the command line; cli/ feeds it and prints it.
//
// Schema (history v1, tables added beside cache/db.h's):
//   history_builds(id TEXT PRIMARY KEY, pid INTEGER, started INTEGER, finished INTEGER,
//                  status TEXT, context TEXT, dockerfile TEXT, target TEXT,
//                  tags TEXT (JSON array), image_id TEXT, error TEXT)
//   history_steps(build TEXT, number INTEGER, vertex INTEGER, name TEXT, state TEXT,
//                 miss_reason TEXT, started INTEGER, duration_us INTEGER, error TEXT,
//                 log_size INTEGER, PRIMARY KEY(build, number))
//   meta('history_schema_version') = kHistorySchemaVersion
// Times are Unix nanoseconds. Step output lives in <root>/history/<build>/<n>.log,
// byte for byte, beside <n>.idx: one "offset microseconds\n" line per chunk written
// (where the chunk starts in the log, and when it came, counted from the step's start).
//
// Crash safety: a build's row is committed before its directory is made, and removed
// before its directory is; so a directory without a row is garbage, removed on open.
// A build still `running` whose process is dead is interrupted (and saved as such).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/fd.h"
#include "cache/store.h"

namespace builder::cache {

inline constexpr int kHistorySchemaVersion = 1;

enum class BuildStatus { Running, Completed, Failed, Interrupted };
enum class StepState { Running, Cached, Done, Error };

/// "running", "completed", "failed", "interrupted".
std::string status_name(BuildStatus s);
/// "running", "cached", "done", "error".
std::string state_name(StepState s);

struct BuildRecord {
  std::string id;  ///< 12 lowercase hex characters
  int pid = 0;
  int64_t started_ns = 0;
  int64_t finished_ns = 0;  ///< 0 while running (or when the process died)
  BuildStatus status = BuildStatus::Running;
  std::string context;
  std::string dockerfile;
  std::string target;
  std::vector<std::string> tags;
  std::string image_id;
  std::string error;
};

struct StepEntry {
  int number = 0;  ///< 1-based, in the order the build started its steps
  int vertex = -1;
  std::string name;
  StepState state = StepState::Running;
  std::string miss_reason;  ///< why it ran; empty for cached steps
  int64_t started_ns = 0;
  int64_t duration_us = 0;  ///< once finished
  std::string error;
  int64_t log_size = 0;  ///< bytes of output kept (the log file's size when it exists)
};

/// One chunk of a step's output as it arrived: its offset in the log and the time since
/// the step started.
struct LogChunk {
  uint64_t offset = 0;
  int64_t micros = 0;
};

/// Appends one step's output to its log. Move-only; closes on destruction. Not
/// thread-safe. No fsync per chunk: a crash may lose the last chunks, never order.
class LogWriter {
 public:
  LogWriter() = default;
  LogWriter(base::Fd log, base::Fd index, uint64_t size)
      : log_(std::move(log)), index_(std::move(index)), size_(size) {}
  /// Appends `data`, which arrived `micros` after the step started. Throws SysError.
  void append(std::string_view data, int64_t micros);
  uint64_t size() const { return size_; }
  bool open() const { return log_.valid(); }

 private:
  base::Fd log_;
  base::Fd index_;
  uint64_t size_ = 0;
};

/// The history of one root. Thread-safe as far as the Db is; one LogWriter per step.
class History {
 public:
  static constexpr int kKeepBuilds = 50;

  /// Creates the tables if needed and repairs: directories without a row are removed,
  /// running builds of dead processes become interrupted. Keeps the newest `keep` builds.
  explicit History(Store& store, int keep = kKeepBuilds);

  /// Records a new running build of this process (id, pid, started and status are set
  /// here; the rest comes from `info`) and makes its log directory. Then drops the
  /// oldest builds beyond the limit, except ones still running in a live process.
  BuildRecord begin(BuildRecord info);
  /// Ends a build: its status (not Running), image id and error text.
  void finish(const std::string& id, BuildStatus status, const std::string& image_id, const std::string& error);

  /// Inserts or replaces one step of `build`.
  void put_step(const std::string& build, const StepEntry& step);
  /// put_step() for several steps in one transaction (one disk sync for all).
  void put_steps(const std::string& build, const std::vector<StepEntry>& steps);
  /// A writer appending to the log of step `number` of `build` (created if missing).
  LogWriter open_log(const std::string& build, int number);

  /// Every build, newest first.
  std::vector<BuildRecord> builds();
  /// The build named by its id, a unique prefix of it, or `^N` (the Nth newest, ^1 the
  /// last one). Throws base::Error for none or an ambiguous prefix.
  BuildRecord find(const std::string& ref);
  /// The steps of `build` in number order.
  std::vector<StepEntry> steps(const std::string& build);
  /// The whole output of one step ("" when it printed nothing).
  std::string read_log(const std::string& build, int number) const;
  /// When each chunk of that output came.
  std::vector<LogChunk> log_chunks(const std::string& build, int number) const;

  std::string build_dir(const std::string& build) const;
  std::string log_path(const std::string& build, int number) const;

 private:
  void repair();
  void retain();
  BuildRecord resolve_status(BuildRecord r);

  Store& store_;
  Db& db_;
  int keep_;
};

}  // namespace builder::cache
