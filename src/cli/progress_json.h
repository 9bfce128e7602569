// cli/progress_json.h — `--progress=rawjson`: every solver event as one JSON object on its
// own line of stderr, shaped like BuildKit's SolveStatus (as `buildctl --progress=rawjson`
// prints it): {"vertexes":[{digest,inputs,name,started,completed,cached,error}]} and
// {"logs":[{vertex,stream,data (base64),timestamp}]}. One addition: a vertex that runs
// carries "cacheMiss", the reason it missed the cache. Knows events, the Definition and
// the SourceMap only.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "progress.h"

namespace builder::cli {

/// Unix nanoseconds as Go's time.RFC3339Nano in UTC: "2024-01-02T03:04:05.1234Z"
/// (trailing zeros of the fraction dropped, no fraction when it is zero).
std::string rfc3339_nano(int64_t unix_ns);
/// Standard base64 with padding, as Go's encoding/json writes []byte.
std::string base64(std::string_view data);

class JsonProgress : public Progress {
 public:
  /// `def` and `source_map` must outlive it. Writes to `out` (stderr by default).
  JsonProgress(const graph::Definition& def, const graph::SourceMap& source_map, std::FILE* out = stderr);
  void operator()(const solver::Event& ev) override;
  void finish() override;

  /// The id a vertex has in the stream: "sha256:" over its op's encoding and its
  /// inputs' ids, as BuildKit names vertexes by their LLB digest.
  const std::string& digest(int vertex) const;

 private:
  void write(const std::string& line);

  const graph::Definition& def_;
  const graph::SourceMap& source_map_;
  std::FILE* out_;
  std::vector<std::string> digests_;
  std::map<int, int64_t> started_;  // vertex -> Start time, Unix ns
};

}  // namespace builder::cli
