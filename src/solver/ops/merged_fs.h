// solver/ops/merged_fs.h — read access to the merged view of layer directories (top
// first) without mounting: overlayfs whiteouts (0/0 char devices) hide lower entries,
// opaque directories (trusted.overlay.opaque=y) hide everything below them. Paths are
// container paths resolved inside the root: symlinks and ".." never leave it.
#pragma once

#include <sys/stat.h>

#include <optional>
#include <string>
#include <vector>

namespace builder::ops {

class MergedFs {
 public:
  explicit MergedFs(std::vector<std::string> layers_top_first) : layers_(std::move(layers_top_first)) {}

  struct Entry {
    std::string host_path;
    struct stat st;
  };
  /// The top-most entry at the clean relative path `rel` ("" is the root), or nullopt.
  /// Does not follow symlinks in any component.
  std::optional<Entry> lookup(const std::string& rel) const;
  /// Resolves `path` (absolute or relative to the root) following symlinks inside the
  /// root; the last component is followed only if `follow_last`. Returns a clean
  /// relative path (which may not exist). Throws base::Error on a symlink loop.
  std::string resolve(const std::string& path, bool follow_last) const;
  /// Names in a directory (merged, sorted).
  std::vector<std::string> list(const std::string& rel) const;

 private:
  std::vector<std::string> layers_;
};

/// Lexically cleans `path` into a relative path without "." or "..", clamped at the
/// root: "/a/../../b/" -> "b".
std::string clean_rel(const std::string& path);

}  // namespace builder::ops
