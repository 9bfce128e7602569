// solver/ops/cache_config.h — the remote cache's format, in BuildKit's shape: a cache
// config (`application/vnd.buildkit.cacheconfig.v0`: layers chained by parent index,
// records naming a cache key and the top layer of its result) carried by an OCI image
// manifest whose config blob is the cache config and whose layers are the layer
// blobs (BuildKit's `image-manifest=true` form; BuildKit's older image-index form is
// read too), or inline in an image config under `moby.buildkit.cache.v0`.
// Pure values and JSON: no store, no network.
//
// Records are keyed by OUR cache keys (solver::kCacheKeyVersion), so a builder cache
// and a BuildKit cache are not interchangeable: each reads the other's without error
// and finds no hit. Extension (ignored by BuildKit): `builder.cacheMounts`, the
// contents of `RUN --mount=type=cache` directories by cache id, one layer each.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/digest.h"
#include "base/json.h"
#include "image/store.h"

namespace builder::ops {

inline constexpr const char* kMediaTypeCacheConfig = "application/vnd.buildkit.cacheconfig.v0";
/// The image config field BuildKit's inline cache uses (base64 of the JSON records).
inline constexpr const char* kInlineCacheField = "moby.buildkit.cache.v0";
/// Layer descriptor annotations BuildKit writes (uncompressed digest, creation time).
inline constexpr const char* kAnnotationUncompressed = "containerd.io/uncompressed";
inline constexpr const char* kAnnotationCreatedAt = "buildkit/createdat";
/// Our extension of the cache config: cache mount contents.
inline constexpr const char* kCacheMountsField = "builder.cacheMounts";

struct CacheLayer {
  image::Descriptor blob;  ///< the compressed layer blob
  base::Digest diff_id;    ///< digest of the uncompressed tar
  int parent = -1;         ///< index of the layer below, -1 for a bottom layer
  int64_t created = 0;     ///< unix seconds its snapshot was made (keeps image IDs stable)
};

struct CacheRecord {
  std::string key;  ///< our cache key ("sha256:...")
  int layer = -1;   ///< top layer of the result; its chain of parents is the result
};

struct CacheMountRecord {
  std::string id;  ///< the cache id of `RUN --mount=type=cache`
  int layer = -1;  ///< a layer with no parent holding the directory's contents
};

/// Not thread-safe (a value).
struct CacheConfig {
  std::vector<CacheLayer> layers;
  std::vector<CacheRecord> records;
  std::vector<CacheMountRecord> mounts;

  /// The layers of `top`'s chain, bottom first. Throws base::Error on an index out of
  /// range or a parent cycle (a damaged or hostile config).
  std::vector<int> chain(int top) const;
  /// Appends `chain` (bottom first, each layer's parent ignored and set to the one
  /// below) sharing the layers already present with the same blob and parent; returns
  /// the index of the top layer, -1 for an empty chain.
  int add_chain(const std::vector<CacheLayer>& chain);
  /// The record for `key`, or nullptr.
  const CacheRecord* find(std::string_view key) const;

  /// The cache config JSON (deterministic for equal values).
  std::string encode() const;
  /// Parses cache config JSON. Layer annotations missing in the config (BuildKit's
  /// older form puts them on the index's descriptors) are taken from `descs` by blob
  /// digest. Throws base::Error on malformed JSON, bad digests, indexes out of range,
  /// cycles, or a layer without a diff id.
  static CacheConfig decode(std::string_view json, const std::vector<std::pair<image::Descriptor, base::Json>>& descs = {});

  /// An OCI image manifest for this config, its config blob being `config_blob`
  /// (the bytes of encode()): layers are the distinct layer blobs, annotated with
  /// their diff id and creation time.
  std::string manifest(const std::string& config_blob) const;
};

/// The inline form for an image whose rootfs holds `diff_ids` (bottom first): BuildKit's
/// `moby.buildkit.cache.v0` value, base64 of a JSON array of records whose `layer`
/// indexes the image's own layers. Only records whose chain is a prefix of the
/// image's layers are kept (inline cache is min mode). nullopt when none is.
std::optional<std::string> encode_inline(const CacheConfig& config, const std::vector<base::Digest>& diff_ids);
/// The cache config of an image config carrying an inline cache, or nullopt when it
/// carries none. Layers are the image's; creation times come from the history, as
/// BuildKit's importer takes them. Throws base::Error on a malformed value.
std::optional<CacheConfig> decode_inline(const image::Image& img);

/// How to read what a cache manifest points at: blob bytes (small, size-limited) and,
/// for indexes of images, a manifest by descriptor (may be null: not followed).
struct ManifestReader {
  std::function<std::string(const image::Descriptor&)> blob;
  std::function<std::pair<std::string, std::string>(const image::Descriptor&)> manifest;  ///< (media type, bytes)
};

/// The cache config behind a manifest as a registry or layout returns it: an image
/// manifest whose config is a cache config; an image index listing a cache config
/// (BuildKit's default); or an image (an index's linux/amd64 one) with an inline
/// cache. nullopt when it is none of these (an image without cache). Throws
/// base::Error on malformed content.
std::optional<CacheConfig> config_from_manifest(const std::string& media_type, const std::string& bytes,
                                                const ManifestReader& read);

/// Largest cache config or image config read into memory.
inline constexpr uint64_t kMaxCacheConfigSize = 64 << 20;

}  // namespace builder::ops
