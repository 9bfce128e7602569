// solver/ops/sources.h — remote sources of ADD: an HTTP(S) download (libcurl) and a
// git checkout (Debian's `git` CLI). Plain fetch functions over host paths: they know
// nothing of cache keys, snapshots or the graph; the executor decides when to call them
// and what the result is keyed by. No credentials are ever sent or looked up.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "base/digest.h"

namespace builder::ops {

struct HttpLimits {
  long connect_timeout_s = 30;
  /// The whole transfer; a body that keeps trickling past this fails.
  long total_timeout_s = 600;
  /// Transfers slower than 1 KiB/s for this long fail (a stalled server).
  long low_speed_time_s = 60;
  int max_redirects = 10;
  uint64_t max_size = uint64_t{8} << 30;  ///< bytes; a longer body fails
};

struct HttpFetched {
  /// 304 to `if_none_match`: nothing was written; `etag` is the one that matched.
  bool not_modified = false;
  base::Digest digest;  ///< sha256 of the body written
  uint64_t size = 0;
  std::string etag;                 ///< the response's ETag, verbatim ("" if none)
  std::optional<int64_t> mtime;     ///< Last-Modified, seconds since the epoch
};

/// GETs `url` (http or https only, also after redirects) into the new file `dest`
/// (mode 0600), hashing it as it streams. With `if_none_match` set, asks the server
/// for a 304 when its ETag still matches. Throws base::Error naming the URL on a
/// transport error, an HTTP status >= 400 ("... : 404 Not Found"), too many redirects,
/// a timeout or a body over the size limit; `dest` is then removed.
HttpFetched http_fetch(const std::string& url, const std::string& dest, const std::string& if_none_match = {},
                       const HttpLimits& limits = {});

struct GitOptions {
  long timeout_s = 600;      ///< each git command
  std::string scratch_dir;   ///< where HOME and the clone are made (removed after)
};

/// The commit `ref` names on `remote` (`git ls-remote`): a full hex commit is taken as
/// is; else refs/tags/REF (peeled), refs/heads/REF, REF itself, or HEAD when `ref` is
/// empty. Throws base::Error when the remote cannot be read or has no such ref.
std::string git_resolve(const std::string& remote, const std::string& ref, const GitOptions& opts);

/// Checks out `commit` (which `ref` resolved to) of `remote` into the empty directory
/// `dest`: shallow when the server allows it, else a full fetch; submodules included;
/// `.git` kept only with `keep_git_dir`. With `subdir`, only that directory of the
/// repository ends up in `dest`. Throws base::Error.
void git_checkout(const std::string& remote, const std::string& ref, const std::string& commit,
                  const std::string& subdir, bool keep_git_dir, const std::string& dest, const GitOptions& opts);

}  // namespace builder::ops
