// solver/ops/remote_cache.h — `--cache-from` / `--cache-to`: the build's results beyond
// this root. Import: a cache config read once when the build starts; on a local miss
// for key K the record for K (if any) has its layer blobs fetched (only then, only the
// missing ones), unpacked into snapshots shared with image unpacks, and recorded in
// the local index, so the step is a hit. Export: the results this build used or made
// (mode=min: those of the final result's chain; max: all) as layer blobs plus a cache
// config. Backends say where a cache lives (an OCI layout directory here, a registry
// in cli/). Knows nothing of the CLI or of HTTP.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cache/gc.h"
#include "cache/store.h"
#include "image/layer.h"
#include "image/store.h"
#include "solver/ops/cache_config.h"
#include "solver/ops/result.h"

namespace builder::ops {

/// Where a cache lives. Thread-safe: fetch_blob may be called from several steps at once.
class CacheBackend {
 public:
  virtual ~CacheBackend() = default;
  /// For messages: "local cache /dir", "registry cache r/x:cache".
  virtual std::string describe() const = 0;
  /// The cache config, or nullopt when there is no cache there (yet). Throws
  /// base::Error when it exists but cannot be read.
  virtual std::optional<CacheConfig> read() = 0;
  /// Makes blob `d` present in `blobs`, verified against its digest and size.
  virtual void fetch_blob(const image::Descriptor& d, cache::BlobStore& blobs) = 0;
  /// Stores the cache: every layer blob of `config` (present in `blobs`), the config,
  /// then (the commit point) what points at it. Throws base::Error.
  virtual void write(const CacheConfig& config, cache::BlobStore& blobs) = 0;
};

/// An OCI image layout directory (`type=local,dest=DIR` / `src=DIR`): blobs under
/// blobs/sha256/, index.json naming the cache manifest with ref name `tag`. Writes
/// add blobs (each written aside and renamed) and replace index.json atomically, so a
/// killed export leaves the previous cache readable.
std::unique_ptr<CacheBackend> local_cache_dir(std::string dir, std::string tag = "latest");

/// The inline cache of `img`, an image in the local store (read only: its layer blobs
/// are already present).
std::unique_ptr<CacheBackend> image_inline_cache(image::Image img, std::string name);

enum class CacheMode { Min, Max };

/// One build's remote caches. Thread-safe (the solver's threads call import/note).
/// Holds a lease (cache/gc.h) on the blobs it fetches or packs, taken before a fetched
/// blob is looked for and as soon as a packed one is written, until it is destroyed.
class RemoteCache {
 public:
  /// `warn` receives one line per problem that does not fail the build.
  RemoteCache(cache::Store& store, std::function<void(const std::string&)> warn);

  /// Reads `from`'s config now; a missing or unreadable cache is a warning.
  void add_import(std::shared_ptr<CacheBackend> from);
  /// The imported result for `key`, its snapshots unpacked, or nullopt (no record, or
  /// its layers could not be fetched: a warning). The caller leases and indexes it.
  std::optional<Result> import(const std::string& key);
  /// Fills the new, empty directory `dest` with the imported contents of cache mount
  /// `id`; false when no import has them (or they failed: a warning).
  bool seed_cache_mount(const std::string& id, const std::string& dest);

  /// Records a result this build used or made under `key` (for export).
  void note(const std::string& key, const Result& r);
  /// Records a cache mount this build used: its data directory and the lock file
  /// that guards it (taken shared while its contents are packed).
  void note_cache_mount(const std::string& id, const std::string& data_dir, const std::string& lock_file);

  /// The layer blob of layer `i` of a result (the exporter's: one per snapshot).
  using LayerBlobFn = std::function<image::LayerBlob(const Result&, size_t)>;
  /// The config for the results noted: with Min those whose layers are a prefix of
  /// `final`'s, with Max all; with `cache_mounts` also every cache mount noted,
  /// packed into a layer now (and leased). Layer blobs are made with `blob`, which
  /// must keep them from prune itself.
  CacheConfig make_config(const Result& final, CacheMode mode, bool cache_mounts, const LayerBlobFn& blob);

  /// Whether any import was read successfully (for messages and tests).
  bool has_imports() const;

 private:
  struct Import {
    std::shared_ptr<CacheBackend> backend;
    CacheConfig config;
    std::map<std::string, size_t, std::less<>> by_key;
  };
  std::vector<std::string> unpack_chain(Import& from, const std::vector<int>& chain);

  cache::Store& store_;
  cache::Lease lease_;  ///< blobs fetched for imports and cache mounts packed for export
  std::function<void(const std::string&)> warn_;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Import>> imports_;
  std::vector<std::pair<std::string, Result>> noted_;  ///< in the order first seen
  std::map<std::string, size_t> noted_index_;
  struct MountUse {
    std::string data_dir, lock_file;
  };
  std::map<std::string, MountUse> mounts_;
};

}  // namespace builder::ops
