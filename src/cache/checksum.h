// cache/checksum.h — content checksums of selected files in a host directory (the
// build context), for cache keys. Covers content, mode, uid/gid and symlink targets of
// exactly the selected paths, never mtimes, so touching an unselected file or a file's
// mtime changes nothing. Uses xxHash (XXH3-128).
#pragma once

#include <string>
#include <vector>

namespace builder::cache {

/// Checksum of the files under `dir` selected by `include` (paths relative to `dir`,
/// `*`, `?` and `[...]` wildcards per path element; empty = everything) minus those
/// `exclude` removes (.dockerignore patterns, applied by cache::PathFilter exactly as the
/// COPY's view of the context applies them: an excluded directory counts, with its own
/// metadata, only when an entry below it is kept). Directories selected are hashed
/// recursively. Returns 32 hex chars. Throws base::Error if `dir` is unreadable or an
/// exclude pattern is malformed.
std::string checksum_paths(const std::string& dir, const std::vector<std::string>& include,
                           const std::vector<std::string>& exclude);

}  // namespace builder::cache
