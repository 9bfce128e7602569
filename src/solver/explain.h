// solver/explain.h — why a step runs. For every step of a build the solver records what
// its cache key was made of (the op's fields, its inputs' keys, the files a local source
// selected), under a step id the caller gives (stable across builds of one Dockerfile:
// the same instruction of the same stage). When a step misses the cache, its last record
// is compared with what the step is now, and the first difference becomes a one-line
// reason: a file that changed, a build arg or ENV, the base image's digest, an input step
// that re-ran, --no-cache, or no earlier result.
//
// Records are kept in the root's metadata database (table step_records); values of
// environment variables are stored as hashes, never as text.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/json.h"
#include "cache/checksum.h"
#include "cache/db.h"
#include "solver/graph/ops.h"

namespace builder::solver {

/// What a cache key was made of, for one step.
struct StepRecord {
  std::string step_id;
  std::string key;
  base::Json fields;                  ///< the op, comparable field by field (fields_of)
  std::vector<std::string> inputs;    ///< the inputs' keys, in order
  std::vector<cache::FileSum> files;  ///< local sources: the selected files
};

/// The comparable fields of an op: env as NAME -> hash(value), everything else as is
/// (file actions and mounts as a digest each).
base::Json fields_of(const graph::Op& op);

/// Storage of step records. Thread-safe.
class StepRecords {
 public:
  virtual ~StepRecords() = default;
  /// The most recently used record of `step_id`, if any.
  virtual std::optional<StepRecord> latest(const std::string& step_id) = 0;
  /// The record of `step_id` made with cache key `key`, if kept.
  virtual std::optional<StepRecord> find(const std::string& step_id, const std::string& key) = 0;
  /// Records (or marks as just used) every record of one build, in one transaction.
  virtual void save(const std::vector<StepRecord>& records) = 0;
};

/// StepRecords in a root's metadata database. Keeps the last kKeep records of each
/// step id, and drops records unused for 30 days.
class DbStepRecords : public StepRecords {
 public:
  static constexpr int kKeep = 3;
  explicit DbStepRecords(cache::Db& db);
  std::optional<StepRecord> latest(const std::string& step_id) override;
  std::optional<StepRecord> find(const std::string& step_id, const std::string& key) override;
  void save(const std::vector<StepRecord>& records) override;

 private:
  cache::Db& db_;
};

/// What the explanation of one vertex may consult besides the records.
struct ExplainInput {
  const StepRecord* now = nullptr;          ///< the vertex as it is in this build
  std::vector<const StepRecord*> inputs;    ///< each input as it is in this build
  std::vector<std::string> input_names;     ///< progress names of the inputs ("" if none)
  std::set<std::string> build_args;         ///< names declared with ARG (else: ENV)
};

/// The reason the vertex misses, given its previous record (nullopt: none) and, for
/// each input whose key changed, its record under the old key (looked up by the
/// caller through `records`).
std::string explain_miss(const ExplainInput& in, StepRecords& records);

}  // namespace builder::solver
