// solver/ops/executor_sources.cpp — LocalExecutor's remote sources (ADD of a URL or a
// git repository): how their cache keys are learnt and how their one-layer results are
// made. The fetching itself is sources.cpp.
//
// Keys: an http source with --checksum is keyed by its op alone (the checksum), so a
// cached result fetches nothing. Without one, the body is fetched when the key is
// computed (a conditional request when an ETag is remembered: a 304 costs no transfer)
// and the key is the body's digest: an unchanged URL hits the cache for the ADD and
// everything after it. A git source is keyed by the commit its ref names now.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/digest.h"
#include "base/error.h"
#include "base/fs.h"
#include "base/json.h"
#include "solver/graph/encode.h"
#include "solver/ops/executor.h"
#include "solver/ops/sources.h"

namespace builder::ops {
namespace {

/// Cache-index row remembering a URL's last ETag, digest and mtime (a JSON object, so
/// the store's repair, which checks arrays of snapshot ids, leaves it alone).
std::string etag_row(const std::string& url) { return "http-etag:" + base::sha256_hex(url); }

std::string http_key(const std::string& digest, const std::optional<int64_t>& mtime) {
  return digest + (mtime ? ";mtime=" + std::to_string(*mtime) : "");
}

}  // namespace

const std::string& LocalExecutor::remote_dir() {
  // Named after this process, so the store's repair removes it if builder is killed.
  if (!remote_dir_) remote_dir_.emplace(store_.scratch_dir(), "remote-" + std::to_string(::getpid()) + "-");
  return remote_dir_->path();
}

std::string LocalExecutor::remote_content_key(const graph::SourceOp& op) {
  const std::string id = graph::encode_op(graph::Op(op));
  {
    std::lock_guard lk(remote_mu_);
    auto it = remote_.find(id);
    if (it != remote_.end()) return it->second.key;
  }
  RemoteState st;
  if (op.kind == graph::SourceOp::Kind::Git) {
    GitOptions go;
    go.scratch_dir = store_.scratch_dir();
    st.commit = git_resolve(op.url, op.git_ref, go);
    if (!op.checksum.empty() && st.commit.rfind(op.checksum, 0) != 0)
      throw base::Error("expected checksum to match " + op.checksum + ", got " + st.commit + " for " + op.url +
                        (op.git_ref.empty() ? "" : "#" + op.git_ref));
    st.key = "commit:" + st.commit;
  } else if (!op.checksum.empty()) {
    st.key = "";  // the op's checksum is the key
  } else {
    // Unpinned: ask again, conditionally when a previous build saw an ETag.
    std::string row = etag_row(op.url);
    base::Json known = base::Json::object();
    if (auto v = store_.index().get(row)) known = base::Json::parse(*v, nullptr, false);
    std::string etag;
    if (known.is_object() && known.value("url", "") == op.url && known.contains("etag") && known["etag"].is_string())
      etag = known["etag"];
    std::string file;
    {
      std::lock_guard lk(remote_mu_);
      file = remote_dir() + "/" + base::random_hex(12);
    }
    HttpFetched got = http_fetch(op.url, file, etag);
    if (got.not_modified) {
      st.digest = known.value("digest", "");
      if (known.contains("mtime") && known["mtime"].is_number_integer()) st.mtime = known["mtime"].get<int64_t>();
      if (!base::Digest::valid(st.digest)) throw base::Error("failed to fetch " + op.url + ": 304 for an unknown body");
    } else {
      st.digest = got.digest.str();
      st.mtime = got.mtime;
      st.file = file;
      if (!got.etag.empty()) {
        base::Json j{{"url", op.url}, {"etag", got.etag}, {"digest", st.digest}};
        if (got.mtime) j["mtime"] = *got.mtime;
        store_.index().put(row, j.dump());
      } else {
        store_.index().remove(row);
      }
    }
    st.key = http_key(st.digest, st.mtime);
  }
  std::lock_guard lk(remote_mu_);
  auto [it, fresh] = remote_.emplace(id, std::move(st));
  return it->second.key;
}

Result LocalExecutor::run_remote_source(const graph::SourceOp& op) {
  const std::string id = graph::encode_op(graph::Op(op));
  RemoteState st;
  {
    std::lock_guard lk(remote_mu_);
    auto it = remote_.find(id);
    if (it != remote_.end()) st = it->second;
  }
  auto pending = store_.snapshots().create();
  if (op.kind == graph::SourceOp::Kind::Git) {
    GitOptions go;
    go.scratch_dir = store_.scratch_dir();
    if (st.commit.empty()) st.commit = git_resolve(op.url, op.git_ref, go);
    git_checkout(op.url, op.git_ref, st.commit, op.subdir, op.keep_git_dir, pending.fs_dir(), go);
    return Result{{pending.commit("")}, {}, {}};
  }

  if (op.filename.empty() || op.filename.find('/') != std::string::npos || op.filename == "." || op.filename == "..")
    throw base::Error("http source " + op.url + ": bad file name `" + op.filename + "`");
  const std::string target = pending.fs_dir() + "/" + op.filename;
  std::optional<int64_t> mtime = st.mtime;
  if (!st.file.empty() && base::path_exists(st.file)) {
    base::check_sys(::rename(st.file.c_str(), target.c_str()), "rename", target);
  } else {
    // Pinned by --checksum and not cached, or a 304 whose result was pruned since.
    HttpFetched got = http_fetch(op.url, target);
    mtime = got.mtime;
    if (!st.digest.empty() && got.digest.str() != st.digest)
      throw base::Error("failed to fetch " + op.url + ": the content changed during the build (" + got.digest.str() +
                        ", expected " + st.digest + ")");
    st.digest = got.digest.str();
  }
  // As BuildKit's validatePinnedChecksum.
  if (!op.checksum.empty() && st.digest != op.checksum)
    throw base::Error("digest mismatch for " + op.url + ": " + st.digest + " (expected: " + op.checksum + ")");
  base::check_sys(::chmod(target.c_str(), 0600), "chmod", target);
  if (mtime) {
    struct timespec ts[2] = {{static_cast<time_t>(*mtime), 0}, {static_cast<time_t>(*mtime), 0}};
    base::check_sys(::utimensat(AT_FDCWD, target.c_str(), ts, AT_SYMLINK_NOFOLLOW), "utimensat", target);
  }
  return Result{{pending.commit("")}, {}, {}};
}

}  // namespace builder::ops
