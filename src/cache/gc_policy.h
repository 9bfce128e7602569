// cache/gc_policy.h — what the automatic GC keeps (BuildKit's keepDuration,
// reservedSpace, maxUsedSpace, minFreeSpace, read from <root>/config.json), and the
// docker size and Go duration syntaxes used by the config and `builder prune`.
#pragma once

#include <cstdint>
#include <string>

namespace builder::cache {

// ---------------------------------------------------------------- policy

/// Bytes, or a percentage of the root's file system (capped at cap_bytes if non-zero).
struct DiskSpace {
  int64_t bytes = 0;
  int percent = 0;
  int64_t cap_bytes = 0;
  bool set() const { return bytes > 0 || percent > 0; }
  int64_t resolve(int64_t fs_total) const;
};

/// BuildKit-like: keepDuration, reservedSpace, maxUsedSpace, minFreeSpace.
struct GcPolicy {
  bool enabled = true;
  int64_t keep_duration_ns = 0;  ///< 0: no age limit
  DiskSpace reserved, max_used, min_free;
};

/// The defaults of a root without config.json (as BuildKit's): keep 60 days,
/// reserve 10% (at most 10GB), use at most 80% (at most 100GB), keep 20% free.
GcPolicy default_policy();
/// Reads <root>/config.json's "gc" section over the defaults; no file: defaults.
/// Throws base::Error naming the file and the key on a bad value or unknown key.
GcPolicy load_policy(const std::string& root);
/// Parses the JSON text of a config file (`path` only names it in errors).
GcPolicy parse_policy(const std::string& text, const std::string& path);

struct GcStats {
  int64_t fs_total = 0, fs_free = 0;
};
/// The root's file system size and space available to it.
GcStats fs_stats(const std::string& root);

// ---------------------------------------------------------------- parsing

/// Docker's sizes (binary units, as `docker builder prune --keep-storage`): "1024",
/// "10GB", "512MiB", "1.5g", "100 kb". Throws base::Error on anything else.
int64_t parse_size(const std::string& text);
/// Go durations: "24h", "90m", "1h30m", "1.5h", "300ms". Returns nanoseconds. Throws.
int64_t parse_duration(const std::string& text);

}  // namespace builder::cache
