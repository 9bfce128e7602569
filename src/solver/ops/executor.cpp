#include "solver/ops/executor.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <ctime>

#include "base/error.h"
#include "base/digest.h"
#include "base/fd.h"
#include "base/fs.h"
#include "base/temp_dir.h"
#include "base/strings.h"
#include "base/time.h"
#include "cache/checksum.h"
#include "cache/path_filter.h"
#include "exec/sandbox.h"
#include "image/compress.h"
#include "image/export.h"
#include "image/layer.h"
#include "image/unpack.h"
#include "solver/ops/file_op.h"

namespace builder::ops {

std::vector<std::string> layer_paths_top_first(cache::Store& store, const Result& r) {
  if (!r.local_dir.empty()) return {r.local_dir};
  std::vector<std::string> out;
  for (auto it = r.layers.rbegin(); it != r.layers.rend(); ++it) out.push_back(store.snapshots().fs_path(*it));
  return out;
}

LocalExecutor::LocalExecutor(cache::Store& store, image::ImageStore& images,
                             std::map<std::string, std::string> locals)
    : store_(store), images_(images), locals_(std::move(locals)), memo_(store.root() + "/checksum-memo"),
      key_locks_(store.root() + "/locks"), lease_(store) {}

LocalExecutor::~LocalExecutor() { memo_.save(); }

cache::KeyLocks::Held LocalExecutor::lock_key(const std::string& key) {
  return key_locks_.acquire(key, [] { return exec::cancelled(); });
}

std::string LocalExecutor::local_dir(const std::string& name) const {
  auto it = locals_.find(name);
  if (it == locals_.end()) throw base::Error("no local directory named `" + name + "`");
  return it->second;
}

std::string LocalExecutor::content_key(const graph::Vertex& v, std::vector<cache::FileSum>* files) {
  // What a file op writes depends on this code as well as on the op and its inputs.
  if (std::holds_alternative<graph::FileOp>(v.op)) return kFileOpVersion;
  const auto* s = std::get_if<graph::SourceOp>(&v.op);
  if (s && (s->kind == graph::SourceOp::Kind::Http || s->kind == graph::SourceOp::Kind::Git))
    return remote_content_key(*s);
  if (!s || s->kind != graph::SourceOp::Kind::Local) return {};
  return cache::checksum_paths(local_dir(s->local_name), s->include_patterns, s->exclude_patterns, &memo_, files);
}

std::optional<Result> LocalExecutor::lookup(const graph::Vertex& v, const std::string& key) {
  if (auto r = lookup_local(v, key)) return r;
  return import_remote(key);
}

void LocalExecutor::skipped(const graph::Vertex& v, const std::string& key) {
  // What this root holds for it counts as used (GC's LRU order sees the whole chain
  // of a warm build, as when every step was looked up) and a cache export in mode=max
  // records it; nothing is imported.
  lookup_local(v, key);
}

std::optional<Result> LocalExecutor::lookup_local(const graph::Vertex& v, const std::string& key) {
  if (const auto* s = std::get_if<graph::SourceOp>(&v.op)) {
    // Local sources are read in place; scratch has no layers. Both are free.
    if (s->kind == graph::SourceOp::Kind::Local) return Result{{}, local_dir(s->local_name), s->exclude_patterns};
    if (s->kind == graph::SourceOp::Kind::Scratch) return Result{};
  }
  auto value = store_.index().get(key);
  if (!value) return std::nullopt;
  Result r;
  try {
    r = decode_result(*value);
  } catch (const base::Error&) {
    return std::nullopt;
  }
  // Leased together with the check that the layers exist, so a concurrent prune can
  // no longer take them; a layer already gone makes this a miss.
  if (!lease_.add_snapshots(r.layers)) return std::nullopt;
  if (remote_cache_) remote_cache_->note(key, r);
  return r;
}

std::optional<Result> LocalExecutor::import_remote(const std::string& key) {
  if (!remote_cache_) return std::nullopt;
  auto r = remote_cache_->import(key);
  if (!r || !lease_.add_snapshots(r->layers)) return std::nullopt;
  store_.index().put(key, encode_result(*r));
  remote_cache_->note(key, *r);
  return r;
}

Result LocalExecutor::execute(const graph::Vertex& v, const std::vector<Result>& inputs, const std::string& key,
                              const OutputFn& out) {
  auto run = [&] {
    return std::visit(
        [&](const auto& op) -> Result {
          using T = std::decay_t<decltype(op)>;
          if constexpr (std::is_same_v<T, graph::SourceOp>) return run_source(op);
          else if constexpr (std::is_same_v<T, graph::ExecOp>) return run_exec(op, inputs, out);
          else if constexpr (std::is_same_v<T, graph::MergeOp>) return run_merge(inputs);
          else return run_file(op, inputs);
        },
        v.op);
  };
  Result r = run();
  // Leased before it is recorded. New layers are covered by the lease already; an
  // image's layers found unpacked may be pruned between unpack and here: unpack again.
  for (int attempt = 0; r.local_dir.empty() && !lease_.add_snapshots(r.layers); ++attempt) {
    if (attempt == 2) throw base::Error("the layers of this step keep being removed by a concurrent prune");
    r = run();
  }
  if (r.local_dir.empty()) store_.index().put(key, encode_result(r));
  if (remote_cache_) remote_cache_->note(key, r);
  return r;
}

Result LocalExecutor::run_source(const graph::SourceOp& op) {
  switch (op.kind) {
    case graph::SourceOp::Kind::Scratch: return Result{};
    case graph::SourceOp::Kind::Local:
      return Result{{}, local_dir(op.local_name), op.exclude_patterns};
    case graph::SourceOp::Kind::Image: {
      auto digest = base::Digest::parse(op.digest);
      image::Image img = images_.load(digest);
      return Result{image::unpack_image(store_, img), {}, {}};
    }
    case graph::SourceOp::Kind::Http:
    case graph::SourceOp::Kind::Git: return run_remote_source(op);
  }
  return Result{};
}

namespace {

/// Whether `path` is a directory marked opaque in its overlayfs layer.
bool is_dir(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool opaque_dir(const std::string& path) {
  char v = 0;
  return ::lgetxattr(path.c_str(), "trusted.overlay.opaque", &v, 1) == 1 && v == 'y';
}

}  // namespace

namespace {

/// Sets `key` in a "K=V" list, replacing an earlier value.
void set_env(std::vector<std::string>& env, const std::string& key, const std::string& value) {
  for (auto& e : env)
    if (e.compare(0, key.size() + 1, key + "=") == 0) {
      e = key + "=" + value;
      return;
    }
  env.push_back(key + "=" + value);
}

}  // namespace

std::optional<exec::BindMount> LocalExecutor::secret_mount(const graph::ExecMount& m, std::vector<std::string>& env) {
  auto it = secrets_.find(m.id);
  if (it == secrets_.end() && m.required)
    throw base::Error("secret " + m.id + ": not found: this step requires it (pass --secret id=" + m.id +
                      ",src=FILE or ,env=VAR)");
  // As BuildKit: a missing optional secret leaves the variable empty and makes no file.
  if (m.env) set_env(env, *m.env, it == secrets_.end() ? std::string() : it->second);
  if (it == secrets_.end() || m.target.empty()) return std::nullopt;
  exec::BindMount b;
  b.target = m.target;
  b.readonly = true;
  b.file_data = it->second;
  b.file_mode = m.mode.value_or(0400) & 0777;
  b.file_uid = m.uid.value_or(0);
  b.file_gid = m.gid.value_or(0);
  return b;
}

std::optional<exec::BindMount> LocalExecutor::ssh_mount(const graph::ExecMount& m, MountResources& held,
                                                        std::vector<std::string>& env) {
  // The first agent socket is SSH_AUTH_SOCK unless the step's environment sets it, as
  // BuildKit's LLB does; also when the agent is missing and optional.
  bool has_sock = false;
  for (const auto& e : env) has_sock = has_sock || e.rfind("SSH_AUTH_SOCK=", 0) == 0;
  if (!has_sock) env.push_back("SSH_AUTH_SOCK=" + m.target);
  auto it = ssh_agents_.find(m.id);
  if (it == ssh_agents_.end()) {
    if (!m.required) return std::nullopt;
    throw base::Error("no SSH key \"" + m.id + "\" forwarded from the client: this step requires it (pass --ssh " +
                      m.id + (m.id == "default" ? "" : "=SOCKET|KEY") + ")");
  }
  const SshProxy& proxy =
      held.ssh.emplace_back(it->second, store_.scratch_dir(), m.mode.value_or(0600), m.uid.value_or(0), m.gid.value_or(0));
  exec::BindMount b;
  b.source = proxy.socket_path();
  b.target = m.target;
  b.readonly = true;  // connecting needs no write access to the mount
  return b;
}

std::optional<exec::BindMount> LocalExecutor::prepare_mount(const graph::ExecMount& m,
                                                            const std::vector<Result>& inputs, MountResources& held,
                                                            std::vector<std::string>& env) {
  if (m.kind == graph::ExecMount::Kind::Secret) return secret_mount(m, env);
  if (m.kind == graph::ExecMount::Kind::Ssh) return ssh_mount(m, held, env);
  exec::BindMount b;
  b.target = m.target;
  b.readonly = m.readonly;
  auto temp = [&](const std::string& what) -> const std::string& {
    held.dirs.emplace_back(store_.scratch_dir(), what + "-" + std::to_string(::getpid()) + "-");
    return held.dirs.back().path();
  };
  if (m.kind == graph::ExecMount::Kind::Tmpfs) {
    b.tmpfs = true;
    b.tmpfs_size = m.size;
    return b;
  }
  if (m.kind == graph::ExecMount::Kind::Cache) {
    b.source = cache_mount_dir(m, inputs, held);
    return b;
  }
  const Result& in = inputs.at(static_cast<size_t>(m.input));
  if (!in.local_dir.empty()) {
    // The context: only what .dockerignore lets in, so a filtered context is copied.
    auto view = cache::MergedFs::context(in.local_dir, cache::PathFilter(in.local_excludes));
    std::string rel = view.resolve(m.source, true);
    if (!view.lookup(rel)) throw base::Error("mount source \"" + m.source + "\" not found in the build context");
    if (in.local_excludes.empty()) {
      b.source = rel.empty() ? in.local_dir : in.local_dir + "/" + rel;
    } else {
      const std::string& dir = temp("mount");
      graph::CopyAction cp;
      cp.src_input = 0;
      cp.src_paths = {rel.empty() ? "/" : rel};
      cp.dest = "/m";
      cp.allow_wildcard = false;
      apply_file_action(cp, dir, {}, {view}, std::nullopt);
      b.source = dir + "/m";
    }
  } else {
    std::vector<std::string> layers = layer_paths_top_first(store_, in);
    cache::MergedFs view(layers);
    std::string rel = view.resolve(m.source, true);
    auto e = view.lookup(rel);
    if (!e) throw base::Error("mount source \"" + m.source + "\" not found");
    if (!S_ISDIR(e->st.st_mode)) {
      b.source = e->host_path;
    } else {
      // The layers that hold the directory, down to one that hides what is below it.
      for (const auto& l : layers) {
        std::string p = rel.empty() ? l : l + "/" + rel;
        struct stat st;
        if (::lstat(p.c_str(), &st) < 0) continue;
        if (!S_ISDIR(st.st_mode)) break;  // a whiteout or a file hides the lower layers
        b.overlay_lowers.push_back(p);
        if (opaque_dir(p)) break;
      }
      if (b.overlay_lowers.size() == 1 && m.readonly) {
        b.source = b.overlay_lowers[0];
        b.overlay_lowers.clear();
      } else if (b.overlay_lowers.size() == 1) {
        b.overlay_lowers.push_back(temp("mount-empty"));  // overlayfs wants two lowers
      }
    }
    if (layers.empty()) b.source = temp("mount-empty");
  }
  if (!m.readonly) {
    // Writes are thrown away: an overlay whose upper layer is a temporary directory.
    if (b.overlay_lowers.empty()) {
      if (!b.source.empty() && is_dir(b.source)) b.overlay_lowers = {b.source, temp("mount-empty")};
    }
    if (!b.overlay_lowers.empty()) {
      const std::string& dir = temp("mount-rw");
      base::make_dirs(dir + "/upper");
      base::make_dirs(dir + "/work");
      b.overlay_upper = dir + "/upper";
      b.overlay_work = dir + "/work";
      b.source.clear();
    }
  }
  return b;
}

std::string LocalExecutor::cache_mount_dir(const graph::ExecMount& m, const std::vector<Result>& inputs,
                                           MountResources& held) {
  std::string base_dir = store_.root() + "/cache-mounts/" + base::sha256_hex(m.cache_id).substr(0, 32);
  base::make_dirs(base_dir);
  // Instance 0 is the shared cache; `private` takes the first instance no other step
  // holds, `locked` waits for instance 0.
  for (int i = 0;; ++i) {
    std::string dir = base_dir + "/" + std::to_string(i);
    base::make_dirs(dir);
    base::Fd lock = base::open_fd(dir + ".lock", O_RDWR | O_CREAT, 0600);
    int how = m.sharing == graph::ExecMount::Sharing::Shared ? LOCK_SH : LOCK_EX;
    if (m.sharing != graph::ExecMount::Sharing::Locked) how |= LOCK_NB;
    if (::flock(lock.get(), how) < 0) {
      if (errno == EWOULDBLOCK && m.sharing == graph::ExecMount::Sharing::Private) continue;
      if (errno == EWOULDBLOCK) {  // shared while a private user holds it: wait
        base::check_sys(::flock(lock.get(), LOCK_SH), "flock", dir);
      } else {
        throw base::SysError(errno, "flock", dir);
      }
    }
    cache::note_cache_mount_use(lock.get());  // GC's last-used time for this cache
    held.locks.push_back(std::move(lock));
    std::string data = dir + "/data";
    if (!is_dir(data)) {
      // A new cache: seeded from `from` (its `source`), else an empty directory with
      // the mount's mode and owner; made aside and renamed, so it is whole or absent.
      base::TempDir fresh(dir, "new-");
      std::string root = fresh.path() + "/data";
      if (m.input >= 0) {
        const Result& in = inputs.at(static_cast<size_t>(m.input));
        std::vector<cache::MergedFs> views;
        if (!in.local_dir.empty())
          views.push_back(cache::MergedFs::context(in.local_dir, cache::PathFilter(in.local_excludes)));
        else
          views.emplace_back(layer_paths_top_first(store_, in));
        graph::CopyAction cp;
        cp.src_input = 0;
        cp.src_paths = {m.source};
        cp.dest = "/data";
        cp.allow_wildcard = false;
        apply_file_action(cp, fresh.path(), {}, views, std::nullopt);
      } else {
        base::make_dirs(root);
        // --cache-from may carry this cache's contents (cache-mounts=true).
        if (remote_cache_) remote_cache_->seed_cache_mount(m.cache_id, root);
        base::check_sys(::chmod(root.c_str(), m.mode.value_or(0755)), "chmod", root);
        base::check_sys(::lchown(root.c_str(), m.uid.value_or(0), m.gid.value_or(0)), "chown", root);
      }
      base::check_sys(::rename(root.c_str(), data.c_str()), "rename", data);
    }
    if (remote_cache_) remote_cache_->note_cache_mount(m.cache_id, data, dir + ".lock");
    return data;
  }
}

Result LocalExecutor::run_exec(const graph::ExecOp& op, const std::vector<Result>& inputs, const OutputFn& out) {
  const Result& root = inputs.at(0);
  auto pending = store_.snapshots().create();
  exec::RunSpec spec;
  for (auto it = root.layers.rbegin(); it != root.layers.rend(); ++it)
    spec.lower_dirs.push_back(cache::Snapshots::relative_fs(*it));
  spec.layers_base = store_.snapshots().base_dir();
  spec.upper_dir = pending.fs_dir();
  spec.work_dir = pending.work_dir();
  spec.scratch_dir = store_.scratch_dir();
  spec.args = op.args;
  spec.env = op.env;
  spec.cwd = op.cwd.empty() ? "/" : op.cwd;
  spec.user = op.user;
  spec.network = op.network == graph::NetworkMode::Host   ? exec::Network::Host
                 : op.network == graph::NetworkMode::None ? exec::Network::None
                                                          : exec::Network::Default;
  spec.privileged = op.insecure;
  spec.pids_limit = pids_limit_;
  spec.memory_limit = memory_limit_;
  MountResources held;
  for (const auto& m : op.mounts)
    if (auto b = prepare_mount(m, inputs, held, spec.env)) spec.mounts.push_back(std::move(*b));
  spec.on_output = out;
  // Keep the last output for the error message; the full log streams to `out`.
  std::string tail;
  spec.on_output = [&](std::string_view s) {
    out(s);
    tail.append(s);
    if (tail.size() > 8192) tail.erase(0, tail.size() - 4096);
  };
  exec::RunResult rr = exec::run(spec);
  if (rr.exit_code != 0) {
    std::string cmd;
    for (size_t i = 0; i < op.args.size(); ++i) cmd += (i ? " " : "") + op.args[i];
    std::string how = "did not complete successfully";
    if (rr.oom_killed)
      how = "was killed by the kernel's OOM killer (out of memory" +
            (memory_limit_ > 0 ? ": the step's limit is " + std::to_string(memory_limit_) + " bytes)" : std::string(")"));
    base::Error e("process \"" + cmd + "\" " + how + ": exit code: " + std::to_string(rr.exit_code));
    e.set_exit_code(rr.exit_code);
    e.set_detail(tail);
    throw e;
  }
  Result r = root;
  r.layers.push_back(pending.commit(root.layers.empty() ? std::string() : root.layers.back()));
  return r;
}

Result LocalExecutor::run_file(const graph::FileOp& op, const std::vector<Result>& inputs) {
  const Result& target = inputs.at(0);
  auto pending = store_.snapshots().create();
  std::vector<std::string> target_layers = layer_paths_top_first(store_, target);
  std::vector<cache::MergedFs> sources;
  for (const auto& in : inputs) {
    if (!in.local_dir.empty())
      sources.push_back(cache::MergedFs::context(in.local_dir, cache::PathFilter(in.local_excludes)));
    else
      sources.emplace_back(layer_paths_top_first(store_, in));
  }
  std::vector<std::string> with_upper{pending.fs_dir()};
  with_upper.insert(with_upper.end(), target_layers.begin(), target_layers.end());
  for (const auto& action : op.actions) {
    const std::string& chown = std::visit([](const auto& a) -> const std::string& { return a.chown; }, action);
    apply_file_action(action, pending.fs_dir(), target_layers, sources,
                      resolve_owner(chown, cache::MergedFs(with_upper)));
  }
  Result r = target;
  r.layers.push_back(pending.commit(target.layers.empty() ? std::string() : target.layers.back()));
  return r;
}

Result LocalExecutor::run_merge(const std::vector<Result>& inputs) {
  Result r;
  for (const auto& in : inputs) {
    if (!in.local_dir.empty()) throw base::Error("merge: a local source cannot be merged");
    r.layers.insert(r.layers.end(), in.layers.begin(), in.layers.end());
  }
  return r;
}

/// The snapshot directories below layer `i` of `r`, top-most first: what that layer's
/// changes are computed against when it is written as a tar.
std::vector<std::string> LocalExecutor::lower_paths(const Result& r, size_t i) const {
  std::vector<std::string> out;
  for (size_t k = i; k-- > 0;) out.push_back(store_.snapshots().fs_path(r.layers[k]));
  return out;
}

/// Layer `i` of `r` (whose snapshot is `info`) as a blob: the one recorded for the
/// snapshot, else written now and recorded, so each snapshot is walked and compressed once.
image::LayerBlob LocalExecutor::layer_blob(const Result& r, size_t i, const cache::SnapshotInfo& info) {
  if (!info.blob_digest.empty() && store_.blobs().has(base::Digest::parse(info.blob_digest))) {
    image::LayerBlob blob;
    blob.diff_id = base::Digest::parse(info.diff_id);
    blob.digest = base::Digest::parse(info.blob_digest);
    blob.size = static_cast<uint64_t>(info.blob_size);
    return blob;
  }
  auto blob = image::write_layer(store_.snapshots().fs_path(info.id), lower_paths(r, i), store_.blobs());
  store_.snapshots().set_blob(info.id, blob.diff_id.str(), blob.digest.str(), static_cast<int64_t>(blob.size),
                              image::kMediaTypeLayerGzip);
  images_.record_layer_size(blob.diff_id, blob.plain_size);  // the SIZE `builder images` shows
  return blob;
}

image::LayerBlob LocalExecutor::snapshot_blob(const Result& r, size_t i) {
  image::LayerBlob blob = layer_blob(r, i, layer_snapshot(r, i));
  lease_.add_blobs({blob.digest.str()});
  return blob;
}

/// The snapshot of layer `i` of `r`; throws if it vanished.
cache::SnapshotInfo LocalExecutor::layer_snapshot(const Result& r, size_t i) {
  auto info = store_.snapshots().get(r.layers[i]);
  if (!info) throw base::Error("snapshot " + r.layers[i] + " disappeared during export");
  return *info;
}

ExportedImage LocalExecutor::export_image(const Result& result, const graph::ImageSpec& spec,
                                          const ExportOptions& opts) {
  image::validate(opts.compression);
  if (opts.rewrite_timestamp && !opts.source_date_epoch)
    throw base::Error("rewrite-timestamp=true needs SOURCE_DATE_EPOCH (a build arg or the environment)");
  std::vector<image::LayerBlob> layers;
  std::vector<std::string> layer_media;  // as the snapshot records the blob
  std::vector<int64_t> layer_created;  // when each layer's snapshot was committed
  for (size_t i = 0; i < result.layers.size(); ++i) {
    auto info = layer_snapshot(result, i);
    layer_created.push_back(info.created);
    layers.push_back(layer_blob(result, i, info));
    layer_media.push_back(info.media_type.empty() ? std::string(image::kMediaTypeLayerGzip) : info.media_type);
  }
  // Map history entries that claim a layer onto the layers, in order. A step that
  // changed nothing still has its layer (an empty tar), as in BuildKit: its image lists
  // the 32-byte empty layer for such a RUN or WORKDIR and keeps empty_layer unset.
  //
  // Timestamps come from the cache, not the clock: a step's entry is dated when its
  // snapshot was committed, a config-only entry inherits the date of the entry before
  // it, and the image is dated by its last entry. So a rebuild served wholly from the
  // cache yields the same config and the same image ID.
  //
  // A base image's history may not describe its layers one to one (tools that write
  // none, or too many): as BuildKit does, surplus entries become empty_layer from the
  // bottom, and missing ones are added, undated and unnamed, below everything.
  std::vector<graph::History> entries = spec.history;
  size_t claimed = 0;
  for (const auto& h : entries) claimed += h.empty_layer ? 0 : 1;
  for (auto it = entries.begin(); it != entries.end() && claimed > layers.size(); ++it)
    if (!it->empty_layer) {
      it->empty_layer = true;
      --claimed;
    }
  const size_t added = layers.size() - claimed;
  entries.insert(entries.begin(), added, graph::History{});
  // The base image's part: the entries before the first one this build added (the
  // frontend leaves `created` empty on those, a base image's entries carry theirs).
  // As BuildKit, SOURCE_DATE_EPOCH keeps the base part's dates and layers as they are.
  size_t first_new = entries.size();
  for (size_t k = added; k < entries.size(); ++k)
    if (entries[k].created.empty()) {
      first_new = k;
      break;
    }
  const std::optional<int64_t>& epoch = opts.source_date_epoch;
  auto clamp = [&epoch](const std::string& t) {
    if (!epoch) return t;
    int64_t v = t.empty() ? 0 : base::parse_rfc3339(t);
    return t.empty() || v > *epoch ? base::rfc3339(static_cast<std::time_t>(*epoch)) : t;
  };

  std::string last_created;
  base::Json history = base::Json::array();
  std::vector<image::LayerBlob> kept;
  std::vector<std::string> kept_media;
  std::vector<bool> kept_base;  // a base image's layer (claimed by its history)
  size_t next = 0;
  for (size_t k = 0; k < entries.size(); ++k) {
    const graph::History& h = entries[k];
    const bool base_part = k < first_new;
    if (k < added) {  // an added entry: only claims its layer
      history.push_back(base::Json::object());
      kept_media.push_back(layer_media[next]);
      kept_base.push_back(true);
      kept.push_back(layers[next++]);
      continue;
    }
    std::string created = h.created;
    if (created.empty() && !h.empty_layer && next < layer_created.size() && layer_created[next] > 0)
      created = base::rfc3339(static_cast<std::time_t>(layer_created[next]));
    if (created.empty()) created = last_created.empty() ? base::rfc3339_now() : last_created;
    if (!base_part) created = clamp(created);
    last_created = created;
    base::Json e;
    e["created"] = created;
    if (!h.author.empty()) e["author"] = h.author;
    e["created_by"] = h.created_by;
    if (!h.comment.empty()) e["comment"] = h.comment;
    if (!h.empty_layer) {
      kept_media.push_back(layer_media[next]);
      kept_base.push_back(base_part);
      kept.push_back(layers[next]);
      ++next;
    } else {
      e["empty_layer"] = true;
    }
    history.push_back(std::move(e));
  }
  base::Json config;
  config["architecture"] = spec.architecture;
  if (!spec.author.empty()) config["author"] = spec.author;
  config["config"] = spec.config;
  config["created"] = clamp(last_created.empty() ? base::rfc3339_now() : last_created);
  config["history"] = history;
  config["os"] = spec.os;
  // Each layer in the requested compression (converted once, remembered by compress.h);
  // rewrite-timestamp rewrites this build's layers, which changes their diff ids.
  std::vector<image::Descriptor> descs;
  base::Json diff_ids = base::Json::array();
  for (size_t i = 0; i < kept.size(); ++i) {
    image::Descriptor src{kept_media[i], kept[i].digest, kept[i].size};
    base::Digest diff_id = kept[i].diff_id;
    image::Descriptor d;
    if (!kept_base[i] && opts.rewrite_timestamp) {
      auto lb = image::clamp_layer_mtimes(store_, src, diff_id, *epoch, opts.compression, &lease_);
      d = image::Descriptor{lb.media_type, lb.digest, lb.size};
      diff_id = lb.diff_id;
    } else if (!kept_base[i] || opts.compression.force) {
      d = image::convert_layer(store_, src, diff_id, opts.compression, &lease_);
    } else {
      // A base layer stays in its own compression; only the media type's family
      // (OCI or Docker) follows the output. Throws for zstd with Docker types.
      image::CompressionSpec own = opts.compression;
      own.type = image::compression_of_media_type(src.media_type);
      own.level = -1;
      d = src;
      d.media_type = image::layer_media_type(own);
    }
    descs.push_back(d);
    diff_ids.push_back(diff_id.str());
  }
  config["rootfs"] = {{"type", "layers"}, {"diff_ids", diff_ids}};
  if (!spec.variant.empty()) config["variant"] = spec.variant;
  if (image_config_hook_) image_config_hook_(result, config);
  image::Image img = image::write_image_manifest(images_, config, descs, opts.compression.oci_media_types);
  base::Digest manifest = img.manifest_digest;
  // Kept from prune until the build ends: tagging comes after this returns.
  std::vector<std::string> exported{manifest.str(), img.config_digest.str()};
  for (const auto& l : img.layers) exported.push_back(l.digest.str());
  lease_.add_blobs(exported);
  return ExportedImage{manifest, img.config_digest};
}

std::vector<image::Descriptor> LocalExecutor::layer_descriptors(const Result& r) {
  std::vector<image::Descriptor> out;
  std::vector<std::string> digests;
  for (size_t i = 0; i < r.layers.size(); ++i) {
    auto info = layer_snapshot(r, i);
    auto blob = layer_blob(r, i, info);
    out.push_back({info.media_type.empty() ? std::string(image::kMediaTypeLayerGzip) : info.media_type, blob.digest,
                   blob.size});
    digests.push_back(blob.digest.str());
  }
  lease_.add_blobs(digests);
  return out;
}

void LocalExecutor::export_local(const Result& result, const std::string& dest, std::optional<int64_t> epoch) {
  image::export_rootfs_dir(images_, layer_descriptors(result), dest, epoch, store_.scratch_dir());
}

void LocalExecutor::export_tar(const Result& result, const std::string& dest, std::optional<int64_t> epoch) {
  image::export_rootfs_tar(images_, layer_descriptors(result), dest, epoch, store_.scratch_dir());
}

}  // namespace builder::ops
