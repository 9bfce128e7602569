// registry/reference.h — image references as a registry sees them: docker's
// normalisation ("busybox" -> docker.io/library/busybox:latest), parsing and validation.
// Pure values; knows nothing of HTTP or the image store.
#pragma once

#include <string>
#include <string_view>

namespace builder::registry {

/// A parsed, normalised image reference.
struct Reference {
  std::string domain;  ///< "docker.io", "127.0.0.1:5000", "localhost", "[::1]:5000"
  std::string path;    ///< "library/busybox"
  std::string tag;     ///< "" when only a digest was given
  std::string digest;  ///< "sha256:..." or ""

  /// Parses `s` with docker's rules: no domain -> docker.io; a one-component path on
  /// docker.io gets "library/"; no tag and no digest -> "latest"; "index.docker.io" ->
  /// "docker.io". The first component is a domain when it contains '.' or ':' or is
  /// "localhost" (or is an uppercase-free bracketed IPv6 literal). Throws base::Error
  /// ("invalid reference `X`: ...") on a malformed reference (uppercase in the path,
  /// empty components, bad tag, bad digest, a bare digest "sha256:...").
  static Reference parse(std::string_view s);

  /// domain + "/" + path: "docker.io/library/busybox".
  std::string repository() const;
  /// The full form: repository, then ":tag" if any, then "@digest" if any.
  std::string str() const;
  /// The tag or, when a digest was given, the digest: what the manifest URL names.
  /// The digest wins when both are set (as docker does).
  std::string manifest_ref() const;
  /// The same repository with another tag/digest.
  Reference with_digest(const std::string& digest) const;
};

/// The host a registry domain is reached at: "docker.io" -> "registry-1.docker.io";
/// everything else unchanged.
std::string registry_host(const std::string& domain);

/// True for loopback hosts: "localhost", 127.0.0.0/8, "::1" (with or without brackets
/// and a ":port").
bool is_loopback(std::string_view host);

}  // namespace builder::registry
