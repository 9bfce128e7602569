// cache/merged_fs.h — the merged view of layer directories (top first) without mounting:
// whiteouts and opaque directories as overlayfs has them, paths resolved inside the root.
// A build context is one too (.dockerignore applied, owned by 0:0): COPY and the context
// checksum read sources through this one view, so a cache key covers what a copy reads.
#pragma once

#include <sys/stat.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cache/path_filter.h"

namespace builder::cache {

/// Read-only; safe to share between threads.
class MergedFs {
 public:
  /// `filter` hides paths as BuildKit's context transfer does: an excluded path is
  /// absent, except an excluded directory holding a path that is not excluded, which
  /// shows with only such entries.
  explicit MergedFs(std::vector<std::string> layers_top_first, PathFilter filter = {})
      : layers_(std::move(layers_top_first)), filter_(std::move(filter)) {}

  /// A build context as the docker CLI and buildx send it: the host directory `dir`
  /// without what `filter` excludes, every entry owned by 0:0 (they reset uid and gid).
  static MergedFs context(std::string dir, PathFilter filter);

  struct Entry {
    std::string host_path;
    struct stat st;  ///< lstat of host_path; uid and gid are 0 in a context's view
  };
  /// The top-most entry at the clean relative path `rel` ("" is the root), or nullopt
  /// (also for a path the filter hides). Does not follow symlinks in any component.
  std::optional<Entry> lookup(const std::string& rel) const;
  /// Whether this is a build context view (owners reset to 0:0 on the way in, which, as
  /// a chown does, also clears file capabilities).
  bool is_context() const { return root_owned_; }
  /// Whether `rel` exists in the layers but the filter hides it (a .dockerignore rule).
  bool hidden_by_filter(const std::string& rel) const {
    return !filter_.empty() && lookup_unfiltered(rel) && !lookup(rel);
  }
  /// Resolves `path` (absolute or relative to the root) following symlinks inside the
  /// root, as containerd's fs.RootPath does: an absolute target restarts at the root and
  /// ".." stops there; the last component is followed only if `follow_last`. Returns a
  /// clean relative path (which may not exist). Throws base::Error on a symlink loop.
  std::string resolve(const std::string& path, bool follow_last) const;
  /// Names in a directory (merged, sorted), without those the filter hides.
  std::vector<std::string> list(const std::string& rel) const;
  /// What list() names in the directory `rel`, each as lookup() finds it, in that order;
  /// quicker than asking one by one (a walk of a whole context uses it).
  std::vector<std::pair<std::string, Entry>> entries(const std::string& rel) const;

  /// What a COPY source pattern selects, as BuildKit's copy.ResolveWildcards: the part
  /// before the first element with a wildcard is resolved following symlinks; below it,
  /// the walk (sorted, never into a symlink, never below a match) keeps every path whose
  /// remainder of the pattern matches under path_match(), the whole remainder against the
  /// whole relative path.
  struct Glob {
    std::vector<std::string> matches;  ///< clean relative paths, walk order
    bool prefix_missing = false;       ///< the part before the wildcard does not exist
    bool bad_pattern = false;          ///< malformed, found by testing an entry against it
  };
  /// `pattern` is a clean relative path with has_wildcards().
  Glob glob(const std::string& pattern) const;

 private:
  std::optional<Entry> lookup_unfiltered(const std::string& rel) const;
  std::vector<std::string> list_unfiltered(const std::string& rel) const;
  /// Whether the excluded `rel` still shows: a directory holding an entry that shows.
  bool holds_shown_entry(const std::string& rel, const struct stat& st) const;
  void walk_glob(const std::string& dir, const std::string& rel, const std::string& pattern, size_t depth_left,
                 Glob& out) const;

  std::vector<std::string> layers_;
  PathFilter filter_;
  bool root_owned_ = false;
};

/// Lexically cleans `path` into a relative path without "." or "..", clamped at the
/// root: "/a/../../b/" -> "b".
std::string clean_rel(const std::string& path);

}  // namespace builder::cache
