// registry/client.h — an OCI distribution-spec v1.1 client over libcurl: manifests,
// blobs, uploads, cross-repo mounts, token (Bearer) and basic auth, retries. Every
// byte received is verified against its digest and size while it streams. Knows the
// blob store (where pulled blobs go) but not images' meaning; pull.h assembles images.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/digest.h"
#include "cache/blob_store.h"
#include "image/store.h"
#include "registry/reference.h"

namespace builder::registry {

/// Manifests are read whole into memory; larger ones are refused (as containerd does).
inline constexpr uint64_t kMaxManifestSize = 4 << 20;

/// Media types a manifest GET accepts (sent in Accept).
inline constexpr const char* kDockerMediaTypeManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";

struct ClientOptions {
  /// --insecure-registry entries ("host[:port]", "host" for every port, or an IP
  /// network in CIDR form; see insecure.h): tried over https without certificate checks,
  /// then plain http when the https connection fails, as Docker does. Loopback hosts not
  /// listed use plain http; every other registry needs https with a trusted certificate.
  std::vector<std::string> insecure_registries;
  /// Path of config.json; "" -> $DOCKER_CONFIG/config.json or ~/.docker/config.json.
  std::string docker_config;
};

/// A manifest (or index) as the registry sent it, verified against `digest`.
struct Fetched {
  std::string media_type;
  base::Digest digest;
  std::string bytes;
};

/// One registry client for a command. Thread-safe: requests may run concurrently from
/// several threads (each uses its own curl handle); tokens are cached per
/// (registry, scope) and shared. Every method throws base::Error with a one-line message
/// naming the registry, the repository and what failed.
class Client {
 public:
  explicit Client(ClientOptions opts = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  /// GET the manifest by ref.digest if set, else ref.tag. Verified against ref.digest
  /// (when given) and against Docker-Content-Digest (when sent); at most
  /// kMaxManifestSize bytes. Returns whatever manifest type the registry sent.
  Fetched get_manifest(const Reference& ref);
  /// HEAD the manifest: its descriptor, or nullopt when the registry says 404.
  std::optional<image::Descriptor> head_manifest(const Reference& ref);
  /// Downloads a blob into `blobs` (skipped when already present), hashing while it
  /// streams: cut off as soon as more than d.size bytes arrive; a short body or a
  /// digest mismatch is an error and leaves nothing in the store. Redirects are
  /// followed without the Authorization header going to another host.
  void fetch_blob(const Reference& repo, const image::Descriptor& d, cache::BlobStore& blobs);
  /// Like fetch_blob, into memory; refuses d.size > max_size.
  std::string fetch_blob_bytes(const Reference& repo, const image::Descriptor& d, uint64_t max_size);
  /// HEAD the blob: true if the repository has it.
  bool blob_exists(const Reference& repo, const base::Digest& d);
  /// Makes `d` (present in `blobs`) exist in `repo`: nothing if it already does, a
  /// cross-repo mount from `mount_from_repo` (a repository path on the same registry,
  /// e.g. "library/busybox") if given and the registry agrees, else an upload.
  void push_blob(const Reference& repo, const image::Descriptor& d, cache::BlobStore& blobs,
                 const std::string& mount_from_repo = "");
  /// Uploads `bytes` as blob `d` (skipped when it exists).
  void push_blob_bytes(const Reference& repo, const base::Digest& d, const std::string& bytes);
  /// PUT the manifest under ref.tag (or ref.digest when no tag). Returns its digest
  /// (checked against the registry's Docker-Content-Digest when sent).
  base::Digest put_manifest(const Reference& ref, const std::string& media_type, const std::string& bytes);

  /// GET /v2/ on `domain` with the credentials in config.json (or `user`/`password`
  /// when given), through the same challenge handling as every request: throws
  /// base::Error when the registry refuses them. Used by `builder login`.
  void check_login(const std::string& domain, const std::string& user = "",
                   const std::string& password = "");

  /// "http" or "https" for a registry domain (insecure-listed: decided by one https
  /// probe, remembered by this client; loopback: http).
  std::string scheme_for(const std::string& domain) const;

  struct Impl;  ///< opaque; named here only so client.cpp's helpers can take it

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace builder::registry
