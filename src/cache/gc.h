// cache/gc.h — build cache garbage collection: disk usage records (`builder du`),
// prune, the automatic GC policy of <root>/config.json, and leases that keep what a
// running build uses. Knows the cache's own tables (snapshots, cache_index) and the
// cache-mount directories; what images hold comes from the caller (ImageRefs), since
// image formats live above cache/.
//
// Tables (created on first use; kGcSchemaVersion):
//   leases(id TEXT PRIMARY KEY, pid INTEGER NOT NULL, created INTEGER NOT NULL)  -- unix ns
//   lease_resources(lease TEXT NOT NULL, kind TEXT NOT NULL, ref TEXT NOT NULL,
//                   PRIMARY KEY(lease, kind, ref))   -- kind: "snapshot" or "blob"
//   cache_mount_sizes(path TEXT PRIMARY KEY, size INTEGER NOT NULL, stamp TEXT NOT NULL)
//
// What is build cache: snapshots (their bytes, plus their exported layer blob unless an
// image holds it), cache-mount directories, and blobs nothing references. Image blobs
// (manifests, configs, layers of tagged images) are not build cache: never counted,
// never removed; an image whose snapshots were pruned is unpacked again on demand.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cache/gc_policy.h"
#include "cache/store.h"

namespace builder::cache {

inline constexpr int kGcSchemaVersion = 1;

// ---------------------------------------------------------------- leases

/// Keeps snapshots and blobs from prune and GC in any process while it lives. A lease
/// also covers every snapshot and blob written after it was taken (a step's result is
/// committed before it can be named in the lease). A lease whose process died is void;
/// prune, du and new leases delete such rows. Thread-safe. Throws base::Error on db errors.
class Lease {
 public:
  explicit Lease(Store& store);
  ~Lease();  ///< releases; never throws (logs)
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

  /// Leases `ids` if every one of them still exists, atomically with that check; false
  /// (and nothing leased) when one is gone, e.g. a prune removed it first.
  bool add_snapshots(const std::vector<std::string>& ids);
  /// Leases blobs (digest strings) whether or not they exist.
  void add_blobs(const std::vector<std::string>& digests);
  /// Leases blobs if every one of them is in the blob store, atomically with that check
  /// (prune removes blobs inside its transaction); false (and nothing leased) when one is
  /// gone. For a blob found through a row that does not keep it (a remembered
  /// conversion): once this returns true, no prune can take it.
  bool add_present_blobs(const std::vector<base::Digest>& digests);
  const std::string& id() const { return id_; }

 private:
  Store& store_;
  std::string id_;
};

/// Deletes leases (and their resources) whose process is dead. Returns how many.
int remove_dead_leases(Store& store);

/// A cache mount's lock file was just taken by a build: stamps its mtime, which is the
/// mount's last-used time for GC and invalidates its remembered size.
void note_cache_mount_use(int lock_fd);

// ---------------------------------------------------------------- usage

/// What tagged images hold, supplied by the caller (image/ knows the formats).
struct ImageRefs {
  std::set<std::string> blobs;                  ///< manifests, configs, layers: never pruned
  std::vector<std::vector<std::string>> chains;  ///< each image's layer blob digests, bottom first
};
using ImageRefsFn = std::function<ImageRefs()>;

enum class RecordKind { Snapshot, CacheMount, Blob };

struct UsageRecord {
  RecordKind kind = RecordKind::Snapshot;
  std::string id;        ///< snapshot id, "<cache id hash>/<instance>", or blob digest
  std::string parent;    ///< snapshots: the snapshot below, if any
  int64_t size = 0;      ///< bytes; a snapshot includes its exported blob unless shared
  bool shared = false;   ///< a tagged image uses this layer (prune without -a keeps it)
  bool in_use = false;   ///< leased by a live build, or a cache mount locked now
  int64_t created = 0;   ///< unix seconds
  int64_t last_used = 0; ///< unix seconds (0 = never)
  int usage_count = 0;   ///< snapshots: cache entries naming it
  std::string description;
};

struct Usage {
  std::vector<UsageRecord> records;  ///< least recently used first
  int64_t shared = 0, private_bytes = 0, reclaimable = 0, total = 0;
};

/// Disk usage of the build cache. Also removes dead leases.
Usage disk_usage(Store& store, const ImageRefsFn& images);

// ---------------------------------------------------------------- prune

struct PruneOptions {
  /// false: keep cache entries whose layers a tagged image uses (its build steps and
  /// its unpacked layers); true: all build cache. Leased items stay either way.
  bool all = false;
  /// Keep items used within this many nanoseconds (docker's --filter until=).
  std::optional<int64_t> until_ns;
  /// Stop once the cache is at most this many bytes (--keep-storage); nullopt: remove
  /// every candidate.
  std::optional<int64_t> target_bytes;
};

struct PruneReport {
  std::vector<UsageRecord> removed;
  int64_t reclaimed = 0;
  int64_t total_before = 0, total_after = 0;
};

/// Removes cache entries, snapshots, cache-mount directories and unreferenced blobs in
/// least-recently-used order (a layer before the layers below it), never one a
/// remaining entry, an image or a live lease needs; shared bytes are counted once.
/// Safe against concurrent builds and prunes. Throws base::Error.
PruneReport prune(Store& store, const ImageRefsFn& images, const PruneOptions& opts);

/// Applies `policy`: first items unused for longer than keepDuration (never going
/// below reservedSpace), then least recently used items until the cache fits
/// maxUsedSpace and the file system has minFreeSpace free (never below reservedSpace).
/// Returns what went. `stats` overrides the file system's numbers (tests).
PruneReport run_gc(Store& store, const ImageRefsFn& images, const GcPolicy& policy,
                   std::optional<GcStats> stats = std::nullopt);

}  // namespace builder::cache
