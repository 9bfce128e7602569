// frontend/source_ref.h — what an ADD source string is: a git repository (BuildKit's
// ParseGitRef: URL forms, the #ref:subdir fragment and the ?ref=&subdir= query), an
// HTTP(S) URL, or else a path of the context. Pure string parsing, no I/O.
#pragma once

#include <optional>
#include <string>

namespace builder::frontend {

struct GitRef {
  std::string remote;    ///< what git is given: the URL without fragment and query
  std::string ref;       ///< branch, tag, refs/..., or commit; "" = the remote's HEAD
  std::string subdir;    ///< cleaned, no leading '/'; "" = the whole repository
  std::string checksum;  ///< ?checksum= / ?commit=: the commit the ref must name
  std::optional<bool> keep_git_dir;  ///< ?keep-git-dir=
};

/// nullopt when `s` is not a git source (a path, a plain URL, `github.com/x/y`, which
/// BuildKit takes for a path in ADD). Recognised as BuildKit does: http(s)://...path.git,
/// git://, ssh://, and scp-like user@host:path. Throws base::Error for a git source it
/// cannot use (a bad query, a query option builder does not support).
std::optional<GitRef> parse_git_ref(const std::string& s);

/// http:// or https:// (case-insensitive scheme), as BuildKit's isHTTPSource.
bool is_http_url(const std::string& s);

/// The file name an ADD of `url` gets in its source (BuildKit: path.Base of the URL's
/// path; "__unnamed__" when there is none).
std::string url_file_name(const std::string& url);

}  // namespace builder::frontend
