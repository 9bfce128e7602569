// cache/index.h — the cache index: an opaque cache key -> an opaque result value
// (ops/ stores a JSON list of snapshot ids). Knows nothing of how keys are derived.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cache/db.h"

namespace builder::cache {

/// Thread-safe.
class Index {
 public:
  explicit Index(Db& db);
  /// The result for `key`, or nullopt on a miss (a miss is not an error). Touches last_used.
  std::optional<std::string> get(const std::string& key);
  /// Records (or replaces) the result for `key`.
  void put(const std::string& key, const std::string& value);
  void remove(const std::string& key);
  /// All (key, value) pairs, for repair and GC.
  std::vector<std::pair<std::string, std::string>> all();

 private:
  Db& db_;
};

}  // namespace builder::cache
