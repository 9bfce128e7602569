// cache/store.h — one builder root opened: the layout, the metadata database, blobs,
// snapshots and the cache index. Opening a root repairs what a crash left behind.
//
// Crash safety. A process may be killed (SIGKILL, power loss) at any instant; these
// invariants make whatever it leaves either committed and whole, or garbage:
// - A row (metadata.db, WAL, synchronous=FULL) is the commit point, and a row never
//   points at something missing or torn: content is written, fsynced and renamed into
//   place (directory fsynced) before the row that names it is committed.
//   blobs:      content/ingest/<pid>-<rand> -> fsync -> rename to blobs/sha256/<hex>.
//   snapshots:  snapshots/pending-<pid>-<rand> -> syncfs -> (row + rename, one txn).
//   layer blob: the blob is committed before snapshots.blob_digest names it.
//   cache index, images: written only after the snapshots / manifest they name.
//   containers: made as run/container-<pid>-<rand> with their record, then renamed.
// - Anything without a row, or named after a dead process, is garbage that repair()
//   removes on the next open: ingest files, pending and trash snapshot dirs, snapshot
//   dirs with no row, scratch dirs run/<what>-<pid>-<rand>, liveness locks
//   run/<pid>.lock, single-flight locks locks/<key>.lock, half-made cache mounts
//   cache-mounts/<h>/<n>/new-*, and "running" containers of a dead `builder run`.
// - Locks are flock(2) locks, which die with their holder; no lock of a dead process
//   ever blocks, and repair removes the lock files a dead process left.
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
  /// image names whose manifest is missing, scratch dirs `run/<what>-<pid>-<random>`
  /// and lock files of dead processes, half-made cache mounts, containers of a killed
  /// `builder run`).
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
  void remove_stale_cache_mount_dirs();
  void repair_containers();
  void remove_stale_temp_files();
  void drop_dangling_rows();

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
