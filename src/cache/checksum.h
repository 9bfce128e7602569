// cache/checksum.h — content checksums of what a COPY reads from a host directory (the
// build context), for cache keys. Reads the context through cache::MergedFs::context(),
// the view the COPY itself reads, and selects with the same rules (wildcards, symlinks
// followed inside the context), so a key changes exactly when the copy's input does.
// Never covers mtimes or owners (a context is sent owned by 0:0). Uses xxHash (XXH3-128).
#pragma once

#include <string>
#include <vector>

namespace builder::cache {

/// Checksum of what copying each of `include` (COPY source paths, relative to `dir`;
/// empty = the whole directory) reads from `dir` as .dockerignore's `exclude` patterns
/// leave it (cache::PathFilter). A source with wildcards (cache::has_wildcards) selects
/// as MergedFs::glob(); each selected path is followed through symlinks inside `dir` and
/// what it leads to is hashed: a file's content, mode, xattrs; a directory's whole subtree
/// (symlinks in it are not followed) with hard links. A source that selects nothing adds
/// nothing (the COPY reports it). Returns 32 hex chars. Throws base::Error if `dir` is
/// unreadable or an exclude pattern is malformed.
std::string checksum_paths(const std::string& dir, const std::vector<std::string>& include,
                           const std::vector<std::string>& exclude);

}  // namespace builder::cache
