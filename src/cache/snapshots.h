// cache/snapshots.h — layer directories under root/snapshots/<id>/: `fs/` is the layer
// content (an overlayfs upper or lower dir), `work/` is overlayfs' work dir while the
// snapshot is being written. A snapshot is created "pending" (dir named
// `pending-<pid>-<rand>`), filled, then committed: renamed to `<id>` and recorded in
// the snapshots table; the row is the commit point. Ids are 12 hex chars so that
// overlay mount options stay short (lowerdirs are passed relative to snapshots/).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cache/db.h"

namespace builder::cache {

struct SnapshotInfo {
  std::string id;
  std::string parent;  ///< id of the snapshot below it, or empty
  int64_t created = 0;
  int64_t size = 0;
  std::string diff_id;      ///< sha256 of the uncompressed layer tar, once exported
  std::string blob_digest;  ///< compressed layer blob in the blob store, once exported
  int64_t blob_size = 0;
  std::string media_type;
};

/// Thread-safe.
class Snapshots {
 public:
  Snapshots(std::string root, Db& db);

  /// A snapshot being written. Destroying it without commit() removes its directory.
  class Pending {
   public:
    ~Pending();
    Pending(Pending&&) noexcept;
    Pending& operator=(Pending&&) = delete;
    /// The directory to fill (the overlay upper dir).
    const std::string& fs_dir() const { return fs_; }
    /// An empty directory on the same file system for overlayfs' workdir.
    const std::string& work_dir() const { return work_; }
    /// Removes work/, renames into place, inserts the row. Returns the new id.
    std::string commit(const std::string& parent);

   private:
    friend class Snapshots;
    Pending(Snapshots* owner, std::string dir);
    Snapshots* owner_;
    std::string dir_, fs_, work_;
    bool done_ = false;
  };

  Pending create();
  /// Absolute path of a committed snapshot's fs/ directory.
  std::string fs_path(const std::string& id) const;
  /// Directory that holds all snapshots (for relative overlay lowerdir options).
  std::string base_dir() const;
  /// Path of a snapshot's fs/ relative to base_dir(): "<id>/fs".
  static std::string relative_fs(const std::string& id);
  std::optional<SnapshotInfo> get(const std::string& id);
  std::vector<SnapshotInfo> list();
  /// Records the exported layer blob of a snapshot (diff id, compressed digest, size).
  void set_blob(const std::string& id, const std::string& diff_id, const std::string& blob_digest,
                int64_t blob_size, const std::string& media_type);
  /// Sets the creation time (unix seconds) of a committed snapshot: one unpacked from
  /// a remote cache takes the date its layer had where it was built (image history
  /// dates come from snapshot dates). Throws base::Error if there is no such snapshot.
  void set_created(const std::string& id, int64_t created);
  /// Removes row and directory.
  void remove(const std::string& id);
  /// Repair: removes directories with no row (and pending dirs of dead processes),
  /// and rows whose directory is missing.
  void repair();

 private:
  std::string root_;
  Db& db_;
};

}  // namespace builder::cache
