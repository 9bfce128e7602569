// image/store.h — images in a root: OCI manifests and configs as blobs in the content
// store, names (tags) in the metadata database's `images` table. The image ID is the
// config digest, as Docker shows it. Knows nothing of builds.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/digest.h"
#include "base/json.h"
#include "cache/store.h"
#include "image/layer.h"

namespace builder::image {

inline constexpr const char* kMediaTypeManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr const char* kMediaTypeIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr const char* kMediaTypeConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr const char* kDockerMediaTypeManifest = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr const char* kDockerMediaTypeConfig = "application/vnd.docker.container.image.v1+json";

struct Descriptor {
  std::string media_type;
  base::Digest digest;
  uint64_t size = 0;
};

/// A resolved image: its manifest, config and layers, all present in the blob store.
struct Image {
  base::Digest manifest_digest;
  base::Json manifest;
  base::Digest config_digest;  ///< the image ID
  base::Json config;           ///< the whole OCI image config (architecture, os, config, rootfs, history)
  std::vector<Descriptor> layers;
  std::vector<base::Digest> diff_ids;
};

struct ImageRecord {
  std::string name;  ///< normalised "repo:tag"
  base::Digest manifest_digest;
  int64_t created = 0;  ///< unix seconds the tag was set
};

/// "busybox" -> "busybox:latest"; "docker.io/library/x:1" -> "x:1"; keeps "@sha256:".
/// Throws base::Error on a malformed reference.
std::string normalize_ref(const std::string& ref);
/// The fully qualified form containerd and BuildKit record: "busybox" ->
/// "docker.io/library/busybox:latest", "r:5000/x" -> "r:5000/x:latest". Throws like
/// normalize_ref.
std::string full_ref(const std::string& ref);
/// Splits a normalised reference into repository and tag ("<none>" if by digest).
std::pair<std::string, std::string> split_ref(const std::string& normalized);

/// Thread-safe.
class ImageStore {
 public:
  explicit ImageStore(cache::Store& store);

  /// Writes `config` (a complete OCI image config; rootfs.diff_ids must match `layers`)
  /// and an OCI manifest referencing `layers` (already in the blob store). Returns the
  /// manifest digest. Does not tag.
  base::Digest write_image(const base::Json& config, const std::vector<LayerBlob>& layers);
  /// Writes an OCI manifest for a config and layers already in the blob store (any
  /// layer media types, e.g. from an archive). Returns its digest. Does not tag.
  base::Digest write_manifest(const Descriptor& config, const std::vector<Descriptor>& layers);
  /// Sets `name` (normalised) to point at `manifest`; the manifest must be present.
  /// Also records the image (see add_image); an image the name leaves stays in the
  /// store as an untagged ("dangling", <none>) image, as in Docker.
  void tag(const std::string& name, const base::Digest& manifest);
  /// Removes a name; false if it did not exist. The image stays recorded.
  bool untag(const std::string& name);
  /// Records an image without naming it (a build without -t, an archive image without a
  /// name): `list_all` shows it as <none> and its blobs are kept until it is removed.
  /// Table image_records(digest TEXT PRIMARY KEY, created INTEGER) -- unix seconds.
  void add_image(const base::Digest& manifest);
  /// Records that the image index (OCI index or Docker manifest list) `index`, pulled
  /// from a registry, selected `manifest` for this host (linux/amd64), so that
  /// `name@<index digest>` and the index digest alone resolve to the image, as Docker
  /// finds an image by the digest it was pulled by. Both blobs must be present. Call it
  /// in the same transaction as the tag (a crash leaves neither or both).
  /// Table image_indexes(digest TEXT PRIMARY KEY, manifest TEXT NOT NULL, created INTEGER);
  /// created on first use, so older stores just have no rows (their index digests are
  /// recorded by the next pull).
  void record_index(const base::Digest& index, const base::Digest& manifest);
  /// The index digests recorded for `manifest` (kept from GC with the image's blobs).
  std::vector<base::Digest> indexes_of(const base::Digest& manifest);
  /// Removes an image: every name of it and its record, in one transaction. Its blobs
  /// and unpacked snapshots become garbage for the cache GC (`builder prune`). False
  /// when it was neither named nor recorded.
  bool remove_image(const base::Digest& manifest);
  /// Every image of the store: one record per name (as list()), then one with an empty
  /// name per recorded image that has no name (dangling).
  std::vector<ImageRecord> list_all();
  /// Resolves a name, "name@sha256:..", a full image or manifest digest, or an image ID
  /// prefix (at least 4 hex chars, unique). nullopt when nothing matches. A name is
  /// tried before an ID prefix (as Docker does); an ambiguous prefix throws base::Error.
  /// A digest (alone or after "name@") may also be an index digest record_index() kept.
  /// Only images of list_all() (named or recorded) are found by image ID.
  std::optional<Image> resolve(const std::string& ref);
  /// Loads the image behind a manifest digest (OCI or Docker schema 2 manifest).
  Image load(const base::Digest& manifest);
  std::vector<ImageRecord> list();
  /// Names pointing at a manifest.
  std::vector<std::string> names_of(const base::Digest& manifest);

  /// Uncompressed sizes: the byte length of a layer's plain tar (the stream its diff
  /// id hashes), which is what Docker shows as an image's SIZE, not the compressed blob.
  /// Table layer_sizes(diff_id TEXT PRIMARY KEY, size INTEGER NOT NULL), created on
  /// first use: a size belongs to the diff id alone, so a row is never stale and
  /// stores older than the table simply compute their sizes on the first lookup.
  /// Records the plain size of `diff_id` (known when the layer was written).
  void record_layer_size(const base::Digest& diff_id, uint64_t size);
  /// The plain size of `layer` (a blob of the store) whose diff id is `diff_id`: the
  /// recorded one, else computed by decompressing the blob (gzip, zstd or plain),
  /// checked against `diff_id`, and recorded so that this happens once per layer.
  /// Throws base::Error when the blob is missing, corrupt or not `diff_id`.
  uint64_t layer_size(const Descriptor& layer, const base::Digest& diff_id);
  /// Sum of layer_size() over an image's layers (Docker's image Size). Throws like it.
  uint64_t image_size(const Image& img);

  cache::Store& store() { return store_; }

 private:
  cache::Store& store_;
};

}  // namespace builder::image
