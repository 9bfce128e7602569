// cache/store.h — one builder root opened: the layout, the metadata database, blobs,
// snapshots and the cache index. Opening a root repairs what a crash left behind.
#pragma once

#include <memory>
#include <string>

#include "base/fd.h"
#include "cache/blob_store.h"
#include "cache/db.h"
#include "cache/index.h"
#include "cache/snapshots.h"

namespace builder::cache {

/// Scratch space for a process's short-lived directories is `run/` (scratch_dir()):
/// name them `<what>-<pid>-<random>` so repair can remove those a killed process left.
///
/// Thread-safe. Holds a shared lock on root/lock for its lifetime and a per-process
/// liveness lock (root/run/<pid>.lock) that repair uses to tell dead writers from live ones.
class Store {
 public:
  /// Creates root/{content/blobs/sha256,content/ingest,snapshots,containers,volumes,run},
  /// opens metadata.db, then repairs (stale ingests, pending snapshots of dead
  /// processes, snapshot dirs with no row, index rows pointing at missing snapshots,
  /// scratch dirs `run/<what>-<pid>-<random>` of dead processes).
  explicit Store(std::string root);
  ~Store();

  const std::string& root() const { return root_; }
  std::string scratch_dir() const { return root_ + "/run"; }
  Db& db() { return *db_; }
  BlobStore& blobs() { return blobs_; }
  Snapshots& snapshots() { return *snapshots_; }
  Index& index() { return *index_; }

 private:
  void repair();
  void remove_stale_scratch();

  std::string root_;
  std::string live_key_;  ///< canonical root, the key of the process-wide liveness lock
  base::Fd root_lock_;  ///< LOCK_SH on root/lock
  base::Fd live_lock_;  ///< a dup of the process-wide LOCK_EX fd on root/run/<pid>.lock
  std::unique_ptr<Db> db_;
  BlobStore blobs_;
  std::unique_ptr<Snapshots> snapshots_;
  std::unique_ptr<Index> index_;
};

/// True when the process that owns `pid`'s liveness lock under `root` is alive. The
/// calling process is always alive. A lock file nobody holds is stale and is removed.
bool process_alive(const std::string& root, int pid);

}  // namespace builder::cache
