#include "solver/ops/executor.h"

#include <unistd.h>

#include <ctime>

#include "base/error.h"
#include "base/fs.h"
#include "base/strings.h"
#include "base/time.h"
#include "cache/checksum.h"
#include "cache/path_filter.h"
#include "exec/sandbox.h"
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
    : store_(store), images_(images), locals_(std::move(locals)) {}

std::string LocalExecutor::local_dir(const std::string& name) const {
  auto it = locals_.find(name);
  if (it == locals_.end()) throw base::Error("no local directory named `" + name + "`");
  return it->second;
}

std::string LocalExecutor::content_key(const graph::Vertex& v) {
  // What a file op writes depends on this code as well as on the op and its inputs.
  if (std::holds_alternative<graph::FileOp>(v.op)) return kFileOpVersion;
  const auto* s = std::get_if<graph::SourceOp>(&v.op);
  if (!s || s->kind != graph::SourceOp::Kind::Local) return {};
  return cache::checksum_paths(local_dir(s->local_name), s->include_patterns, s->exclude_patterns);
}

std::optional<Result> LocalExecutor::lookup(const graph::Vertex& v, const std::string& key) {
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
  for (const auto& id : r.layers)
    if (!store_.snapshots().get(id)) return std::nullopt;
  return r;
}

Result LocalExecutor::execute(const graph::Vertex& v, const std::vector<Result>& inputs, const std::string& key,
                              const OutputFn& out) {
  Result r = std::visit(
      [&](const auto& op) -> Result {
        using T = std::decay_t<decltype(op)>;
        if constexpr (std::is_same_v<T, graph::SourceOp>) return run_source(op);
        else if constexpr (std::is_same_v<T, graph::ExecOp>) return run_exec(op, inputs, out);
        else return run_file(op, inputs);
      },
      v.op);
  if (r.local_dir.empty()) store_.index().put(key, encode_result(r));
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
  }
  return Result{};
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
  spec.host_network = op.network == graph::NetworkMode::Host;
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
    base::Error e("process \"" + cmd + "\" did not complete successfully: exit code: " +
                  std::to_string(rr.exit_code));
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
  return blob;
}

/// The snapshot of layer `i` of `r`; throws if it vanished.
cache::SnapshotInfo LocalExecutor::layer_snapshot(const Result& r, size_t i) {
  auto info = store_.snapshots().get(r.layers[i]);
  if (!info) throw base::Error("snapshot " + r.layers[i] + " disappeared during export");
  return *info;
}

ExportedImage LocalExecutor::export_image(const Result& result, const graph::ImageSpec& spec) {
  std::vector<image::LayerBlob> layers;
  std::vector<int64_t> layer_created;  // when each layer's snapshot was committed
  for (size_t i = 0; i < result.layers.size(); ++i) {
    auto info = layer_snapshot(result, i);
    layer_created.push_back(info.created);
    layers.push_back(layer_blob(result, i, info));
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

  std::string last_created;
  base::Json history = base::Json::array();
  std::vector<image::LayerBlob> kept;
  size_t next = 0;
  for (size_t k = 0; k < entries.size(); ++k) {
    const graph::History& h = entries[k];
    if (k < added) {  // an added entry: only claims its layer
      history.push_back(base::Json::object());
      kept.push_back(layers[next++]);
      continue;
    }
    std::string created = h.created;
    if (created.empty() && !h.empty_layer && next < layer_created.size() && layer_created[next] > 0)
      created = base::rfc3339(static_cast<std::time_t>(layer_created[next]));
    if (created.empty()) created = last_created.empty() ? base::rfc3339_now() : last_created;
    last_created = created;
    base::Json e;
    e["created"] = created;
    if (!h.author.empty()) e["author"] = h.author;
    e["created_by"] = h.created_by;
    if (!h.comment.empty()) e["comment"] = h.comment;
    if (!h.empty_layer) {
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
  config["created"] = last_created.empty() ? base::rfc3339_now() : last_created;
  config["history"] = history;
  config["os"] = spec.os;
  base::Json diff_ids = base::Json::array();
  for (const auto& l : kept) diff_ids.push_back(l.diff_id.str());
  config["rootfs"] = {{"type", "layers"}, {"diff_ids", diff_ids}};
  if (!spec.variant.empty()) config["variant"] = spec.variant;
  base::Digest manifest = images_.write_image(config, kept);
  image::Image img = images_.load(manifest);
  return ExportedImage{manifest, img.config_digest};
}

void LocalExecutor::export_local(const Result& result, const std::string& dest) {
  base::make_dirs(dest);
  for (size_t i = 0; i < result.layers.size(); ++i) {
    base::Fd fd = store_.blobs().open(layer_blob(result, i, layer_snapshot(result, i)).digest);
    image::extract_layer(fd.get(), dest);
  }
}

}  // namespace builder::ops
