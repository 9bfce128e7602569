// solver/ops/merged_fs.h — read access to the merged view of layer directories (top
// first) without mounting: overlayfs whiteouts (0/0 char devices) hide lower entries,
// opaque directories (trusted.overlay.opaque=y) hide everything below them. Paths are
// container paths resolved inside the root: symlinks and ".." never leave it. A local
// context's view also hides what its .dockerignore excludes, as if it were never sent.
#pragma once

#include <sys/stat.h>

#include <optional>
#include <string>
#include <vector>

#include "cache/path_filter.h"

namespace builder::ops {

/// Read-only; safe to share between threads.
class MergedFs {
 public:
  /// `filter` hides paths as BuildKit's context transfer does: an excluded path is
  /// absent, except an excluded directory holding a path that is not excluded, which
  /// shows with only such entries. The same rule as cache::checksum_paths, so a COPY
  /// reads exactly what its cache key covers.
  explicit MergedFs(std::vector<std::string> layers_top_first, cache::PathFilter filter = {})
      : layers_(std::move(layers_top_first)), filter_(std::move(filter)) {}

  struct Entry {
    std::string host_path;
    struct stat st;
  };
  /// The top-most entry at the clean relative path `rel` ("" is the root), or nullopt
  /// (also for a path the filter hides). Does not follow symlinks in any component.
  std::optional<Entry> lookup(const std::string& rel) const;
  /// Resolves `path` (absolute or relative to the root) following symlinks inside the
  /// root; the last component is followed only if `follow_last`. Returns a clean
  /// relative path (which may not exist). Throws base::Error on a symlink loop.
  std::string resolve(const std::string& path, bool follow_last) const;
  /// Names in a directory (merged, sorted), without those the filter hides.
  std::vector<std::string> list(const std::string& rel) const;

 private:
  std::optional<Entry> lookup_unfiltered(const std::string& rel) const;
  std::vector<std::string> list_unfiltered(const std::string& rel) const;
  /// Whether the excluded `rel` still shows: a directory holding an entry that shows.
  bool holds_shown_entry(const std::string& rel, const struct stat& st) const;

  std::vector<std::string> layers_;
  cache::PathFilter filter_;
};

/// Lexically cleans `path` into a relative path without "." or "..", clamped at the
/// root: "/a/../../b/" -> "b".
std::string clean_rel(const std::string& path);

}  // namespace builder::ops
