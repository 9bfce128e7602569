// solver/ops/executor.h — the only adapter between the graph and the machinery: turns
// a graph op into snapshot, sandbox and image-store calls. The solver sees only the
// Executor interface (so tests can count executions with a fake); LocalExecutor is the
// real one over one builder root.
#pragma once

#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/fd.h"
#include "base/temp_dir.h"
#include "cache/checksum.h"
#include "cache/key_lock.h"
#include "cache/gc.h"
#include "cache/store.h"
#include "exec/sandbox.h"
#include "image/compress.h"
#include "image/layer.h"
#include "image/store.h"
#include "solver/graph/ops.h"
#include "solver/ops/remote_cache.h"
#include "solver/ops/result.h"
#include "solver/ops/ssh_proxy.h"

namespace builder::ops {

using OutputFn = std::function<void(std::string_view)>;

/// Thread-safe: the solver calls it from several threads at once.
class Executor {
 public:
  virtual ~Executor() = default;
  /// Key material beyond the op's encoding: a content checksum of the selected files
  /// for local sources (each file's own sum listed in `files`, if given), the
  /// implementation's version for file ops; empty for others.
  virtual std::string content_key(const graph::Vertex& v, std::vector<cache::FileSum>* files = nullptr) = 0;
  /// Single flight across processes: blocks while another process holds `key`, then
  /// holds it until the returned lock is destroyed. Executors with no shared store
  /// return an empty lock.
  virtual cache::KeyLocks::Held lock_key(const std::string& key) = 0;
  /// The cached result for `key`, or nullopt (a miss is not an error). Results whose
  /// snapshots are gone are misses.
  virtual std::optional<Result> lookup(const graph::Vertex& v, const std::string& key) = 0;
  /// A vertex no result of this build needs, because a step above it was found in the
  /// cache: it is neither made nor fetched. An executor may still take note of a result
  /// it holds at hand for `key` (a cache export records every step). Default: nothing.
  virtual void skipped(const graph::Vertex& v, const std::string& key) {
    (void)v;
    (void)key;
  }
  /// Runs the op on its inputs' results and records `key` -> result. Step output goes
  /// to `out`. Throws base::Error (exit_code set for a failed process).
  virtual Result execute(const graph::Vertex& v, const std::vector<Result>& inputs, const std::string& key,
                         const OutputFn& out) = 0;
};

struct ExportedImage {
  base::Digest manifest;
  base::Digest config;  ///< the image ID
};

/// How export_image writes the image (`--output` keys and SOURCE_DATE_EPOCH).
struct ExportOptions {
  /// Layers this build made are converted to it; a base image's layers stay as stored
  /// unless `force` (only their media type names follow oci_media_types).
  image::CompressionSpec compression;
  /// SOURCE_DATE_EPOCH: the config's `created` and the history entries this build
  /// added are clamped to it (a base image's entries are kept, as BuildKit does).
  std::optional<int64_t> source_date_epoch;
  /// rewrite-timestamp: the layers this build made get every mtime clamped to
  /// source_date_epoch (which must be set).
  bool rewrite_timestamp = false;
};

class LocalExecutor : public Executor {
 public:
  /// `locals` maps local source names ("context") to host directories.
  LocalExecutor(cache::Store& store, image::ImageStore& images, std::map<std::string, std::string> locals);

  ~LocalExecutor() override;
  std::string content_key(const graph::Vertex& v, std::vector<cache::FileSum>* files = nullptr) override;
  cache::KeyLocks::Held lock_key(const std::string& key) override;
  std::optional<Result> lookup(const graph::Vertex& v, const std::string& key) override;
  /// A result this root holds for `key` is touched (GC's last use), leased and noted
  /// for a cache export; nothing is imported or made.
  void skipped(const graph::Vertex& v, const std::string& key) override;
  Result execute(const graph::Vertex& v, const std::vector<Result>& inputs, const std::string& key,
                 const OutputFn& out) override;

  /// Writes the image for `result` (layers exported to blobs once, then reused) with
  /// the config and history of `spec`; empty layers are dropped and their history
  /// entries marked empty_layer, as BuildKit does. Does not tag.
  ExportedImage export_image(const Result& result, const graph::ImageSpec& spec, const ExportOptions& opts = {});
  /// Materialises `result` as a plain directory tree at `dest` (--output type=local):
  /// built beside it, then renamed in or merged into an existing directory; with
  /// `epoch` every mtime is set to it (BuildKit's local exporter).
  void export_local(const Result& result, const std::string& dest, std::optional<int64_t> epoch = std::nullopt);
  /// The same tree as one tar at `dest` ("-": stdout) (--output type=tar).
  void export_tar(const Result& result, const std::string& dest, std::optional<int64_t> epoch = std::nullopt);

  /// What `--secret` provides: each secret's bytes by id, read when the build started.
  /// Held in memory only; a step gets them as a file on a tmpfs inside its container
  /// or as an environment variable, never in a layer, a cache key or a log.
  void set_secrets(std::map<std::string, std::string> secrets) { secrets_ = std::move(secrets); }
  /// What `--ssh` provides: the host path of each agent's socket by id.
  void set_ssh_agents(std::map<std::string, std::string> sockets) { ssh_agents_ = std::move(sockets); }

  /// The remote caches of this build (--cache-from / --cache-to): asked on a local
  /// miss (a hit is unpacked and indexed here), told every result used or made, and
  /// asked to seed a cache mount made new. Not owned; null (the default): none.
  void set_remote_cache(RemoteCache* rc) { remote_cache_ = rc; }
  /// Called by export_image with the finished image config just before it is written
  /// (the inline cache adds its field there).
  void set_image_config_hook(std::function<void(const Result&, base::Json&)> hook) {
    image_config_hook_ = std::move(hook);
  }
  /// The stored layer blob of layer `i` of `r` (written once per snapshot, as
  /// export_image does), kept from prune until the build ends.
  image::LayerBlob snapshot_blob(const Result& r, size_t i);

  /// Cgroup limits of every RUN step (0: none): tasks, and memory in bytes.
  void set_step_limits(int64_t pids, int64_t memory) {
    pids_limit_ = pids;
    memory_limit_ = memory;
  }

 private:
  Result run_source(const graph::SourceOp& op);
  /// ADD's remote sources (executor_sources.cpp). What content_key learnt about a
  /// source (the body's digest and a downloaded copy, the commit a git ref names), so
  /// that run_source fetches nothing twice in one build.
  struct RemoteState {
    std::string key;        ///< what content_key returned
    std::string digest;     ///< http: sha256 of the body
    std::optional<int64_t> mtime;  ///< http: Last-Modified
    std::string file;       ///< http: the downloaded copy in remote_dir_, or ""
    std::string commit;     ///< git: the resolved commit
  };
  std::string remote_content_key(const graph::SourceOp& op);
  Result run_remote_source(const graph::SourceOp& op);
  const std::string& remote_dir();
  Result run_exec(const graph::ExecOp& op, const std::vector<Result>& inputs, const OutputFn& out);
  Result run_file(const graph::FileOp& op, const std::vector<Result>& inputs);
  Result run_merge(const std::vector<Result>& inputs);
  /// What a RUN step's mounts hold while it runs: temporary directories, cache locks,
  /// SSH agent relays.
  struct MountResources {
    std::list<base::TempDir> dirs;
    std::vector<base::Fd> locks;
    std::list<SshProxy> ssh;
  };
  /// The sandbox mount for `m`, or nullopt when there is none (a secret only in the
  /// environment, an optional secret or agent the build was not given). Secret and SSH
  /// mounts may add variables to `env`.
  std::optional<exec::BindMount> prepare_mount(const graph::ExecMount& m, const std::vector<Result>& inputs,
                                               MountResources& held, std::vector<std::string>& env);
  std::optional<exec::BindMount> secret_mount(const graph::ExecMount& m, std::vector<std::string>& env);
  std::optional<exec::BindMount> ssh_mount(const graph::ExecMount& m, MountResources& held,
                                           std::vector<std::string>& env);
  /// The host directory of a cache mount, locked as its sharing mode says.
  std::string cache_mount_dir(const graph::ExecMount& m, const std::vector<Result>& inputs, MountResources& held);
  std::string local_dir(const std::string& name) const;
  std::vector<std::string> lower_paths(const Result& r, size_t i) const;
  image::LayerBlob layer_blob(const Result& r, size_t i, const cache::SnapshotInfo& info);
  /// The stored layer blobs of `r`, bottom first, kept from prune until the build ends.
  std::vector<image::Descriptor> layer_descriptors(const Result& r);
  cache::SnapshotInfo layer_snapshot(const Result& r, size_t i);
  /// The result this root holds for `key`, leased and noted for a cache export; nullopt
  /// on a miss. Local sources and scratch are always at hand.
  std::optional<Result> lookup_local(const graph::Vertex& v, const std::string& key);
  /// A local miss served by the remote cache: leased and indexed; nullopt when not.
  std::optional<Result> import_remote(const std::string& key);

  cache::Store& store_;
  image::ImageStore& images_;
  std::map<std::string, std::string> locals_;
  cache::ChecksumMemo memo_;  ///< context files' content hashes, saved on destruction
  cache::KeyLocks key_locks_;
  cache::Lease lease_;  ///< what this build looked up, made or exported: kept from prune/GC
  int64_t pids_limit_ = 2048;
  int64_t memory_limit_ = 0;
  std::map<std::string, std::string> secrets_;     ///< id -> bytes
  std::map<std::string, std::string> ssh_agents_;  ///< id -> agent socket
  RemoteCache* remote_cache_ = nullptr;
  std::function<void(const Result&, base::Json&)> image_config_hook_;
  std::mutex remote_mu_;                           ///< guards remote_ and remote_dir_
  std::map<std::string, RemoteState> remote_;      ///< by the source op's encoding
  std::optional<base::TempDir> remote_dir_;        ///< downloads of this build
};

/// Host paths of a result's layers, top-most first (as overlayfs lowerdir wants).
std::vector<std::string> layer_paths_top_first(cache::Store& store, const Result& r);

}  // namespace builder::ops
