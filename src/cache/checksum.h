// cache/checksum.h — content checksums of what a COPY reads from a host directory (the
// build context), for cache keys. Reads the context through cache::MergedFs::context(),
// the view the COPY itself reads, and selects with the same rules (wildcards, symlinks
// followed inside the context), so a key changes exactly when the copy's input does.
// Never covers mtimes or owners (a context is sent owned by 0:0). Uses xxHash (XXH3-128).
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace builder::cache {

/// Content hashes of files remembered by file identity (device, inode, size, mtime,
/// ctime), so that a checksum of an unchanged context reads no file content. Any write
/// to a file changes its mtime and ctime, and a chmod, chown or xattr change its ctime,
/// so an entry whose identity still matches has the content it was hashed with. Files
/// changed in the last few seconds are not remembered: a coarse timestamp cannot tell
/// two writes within one clock tick apart (git's "racy clean" problem).
///
/// Persisted in one file (atomically replaced by save()); a missing or damaged file is
/// an empty memo. Thread-safe. Entries not used for a week are dropped on save.
class ChecksumMemo {
 public:
  struct Hash {
    uint64_t low = 0, high = 0;
  };
  explicit ChecksumMemo(std::string path);
  std::optional<Hash> get(const struct stat& st);
  void put(const struct stat& st, Hash h);
  /// Writes the memo if it changed; errors are ignored (a memo is only an optimisation).
  void save();
  size_t size() const;

 private:
  using Id = std::pair<uint64_t, uint64_t>;  // device, inode
  struct Entry {
    int64_t size, mtime_s, mtime_ns, ctime_s, ctime_ns;
    Hash hash;
    int64_t used;  // seconds since the epoch
  };
  static bool same(const Entry& e, const struct stat& st);
  std::string path_;
  mutable std::mutex mu_;
  std::map<Id, Entry> entries_;
  bool dirty_ = false;
};

/// One selected path of a checksum and the digest of everything recorded for it
/// (type, mode, link target, xattrs, hard link, content), for explaining what changed.
struct FileSum {
  std::string path;  ///< the COPY source path joined with the path below it
  std::string sum;   ///< 32 hex chars
};

/// Checksum of what copying each of `include` (COPY source paths, relative to `dir`;
/// empty = the whole directory) reads from `dir` as .dockerignore's `exclude` patterns
/// leave it (cache::PathFilter). A source with wildcards (cache::has_wildcards) selects
/// as MergedFs::glob(); each selected path is followed through symlinks inside `dir` and
/// what it leads to is hashed: a file's content, mode, xattrs; a directory's whole subtree
/// (symlinks in it are not followed) with hard links. A source that selects nothing adds
/// nothing (the COPY reports it). Returns 32 hex chars. Throws base::Error if `dir` is
/// unreadable or an exclude pattern is malformed. With a `memo`, file contents it knows
/// are not read; with `files`, each hashed entry is listed there in walk order.
std::string checksum_paths(const std::string& dir, const std::vector<std::string>& include,
                           const std::vector<std::string>& exclude, ChecksumMemo* memo = nullptr,
                           std::vector<FileSum>* files = nullptr);

}  // namespace builder::cache
