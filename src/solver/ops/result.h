// solver/ops/result.h — what a solved vertex yields, and its encoding in the cache
// index. A result is a chain of snapshot ids (bottom layer first); a local source's
// result is a host directory plus the exclude patterns that hide parts of it instead,
// never encoded (local results are read in place, not stored). Encoding: a JSON array
// of snapshot ids, the form cache::Store's repair understands (rows naming a missing
// snapshot are dropped). The format version is part of every cache key
// (solver::kCacheKeyVersion).
#pragma once

#include <string>
#include <vector>

namespace builder::ops {

struct Result {
  std::vector<std::string> layers;  ///< snapshot ids, bottom first
  std::string local_dir;            ///< set only for local sources (the host directory)
  /// Local sources: .dockerignore patterns (cache::PathFilter) hiding paths of local_dir.
  std::vector<std::string> local_excludes;
};

std::string encode_result(const Result& r);
/// Throws base::Error on a malformed value.
Result decode_result(const std::string& s);

}  // namespace builder::ops
