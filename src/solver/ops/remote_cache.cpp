// solver/ops/remote_cache.cpp — remote cache import and export (see remote_cache.h),
// and its OCI-layout-directory and local-image backends.
#include "solver/ops/remote_cache.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <ctime>

#include "base/error.h"
#include "base/fd.h"
#include "base/fs.h"
#include "base/json.h"
#include "image/unpack.h"

namespace builder::ops {

namespace {

constexpr const char* kRefNameAnnotation = "org.opencontainers.image.ref.name";

/// Copies `in` to `out`, at most `limit` bytes (one more is an error); returns the count.
template <typename Sink>
uint64_t copy_fd(int in, const std::string& what, uint64_t limit, Sink&& sink) {
  char buf[1 << 16];
  uint64_t total = 0;
  for (;;) {
    ssize_t n = ::read(in, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw base::SysError(errno, "read", what);
    if (n == 0) return total;
    total += static_cast<uint64_t>(n);
    if (total > limit) throw base::Error(what + ": larger than its descriptor says");
    sink(buf, static_cast<size_t>(n));
  }
}

class LocalCacheDir : public CacheBackend {
 public:
  LocalCacheDir(std::string dir, std::string tag) : dir_(std::move(dir)), tag_(std::move(tag)) {}

  std::string describe() const override { return "local cache " + dir_; }

  std::optional<CacheConfig> read() override {
    std::string index_path = dir_ + "/index.json";
    if (!base::path_exists(index_path)) return std::nullopt;
    auto index = base::Json::parse(base::read_file(index_path), nullptr, false);
    if (!index.is_object() || !index.contains("manifests") || !index["manifests"].is_array())
      throw base::Error(index_path + ": not an OCI image index");
    const base::Json* pick = nullptr;
    for (const auto& m : index["manifests"])
      if (m.is_object() && m.value("annotations", base::Json::object()).value(kRefNameAnnotation, "") == tag_) pick = &m;
    if (!pick && index["manifests"].size() == 1) pick = &index["manifests"][0];
    if (!pick) return std::nullopt;
    image::Descriptor d;
    d.digest = base::Digest::parse(pick->value("digest", ""));
    d.size = pick->value("size", uint64_t{0});
    d.media_type = pick->value("mediaType", "");
    ManifestReader reader;
    reader.blob = [this](const image::Descriptor& b) { return read_blob(b); };
    reader.manifest = [this](const image::Descriptor& b) { return std::make_pair(b.media_type, read_blob(b)); };
    return config_from_manifest(d.media_type, read_blob(d), reader);
  }

  void fetch_blob(const image::Descriptor& d, cache::BlobStore& blobs) override {
    if (blobs.has(d.digest)) return;
    std::string path = blob_path(d.digest);
    base::Fd fd = base::open_fd(path, O_RDONLY | O_CLOEXEC);
    auto w = blobs.ingest();
    uint64_t n = copy_fd(fd.get(), path, d.size, [&](const char* p, size_t len) { w.write(p, len); });
    if (n != d.size) throw base::Error(path + ": " + std::to_string(n) + " bytes, its descriptor says " + std::to_string(d.size));
    w.commit(d.digest);
  }

  void write(const CacheConfig& config, cache::BlobStore& blobs) override {
    base::make_dirs(dir_ + "/blobs/sha256");
    if (!base::path_exists(dir_ + "/oci-layout"))
      base::write_file_atomic(dir_ + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
    for (const auto& l : config.layers) copy_in(l.blob.digest, blobs);
    std::string cfg = config.encode();
    put_bytes(cfg);
    std::string manifest = config.manifest(cfg);
    base::Digest md = put_bytes(manifest);
    // index.json is the commit point: replaced whole, keeping other tags' entries.
    base::Json index = {{"schemaVersion", 2}, {"mediaType", image::kMediaTypeIndex}, {"manifests", base::Json::array()}};
    if (base::path_exists(dir_ + "/index.json")) {
      auto old = base::Json::parse(base::read_file(dir_ + "/index.json"), nullptr, false);
      if (old.is_object() && old.contains("manifests") && old["manifests"].is_array())
        for (const auto& m : old["manifests"])
          if (m.is_object() && m.value("annotations", base::Json::object()).value(kRefNameAnnotation, "") != tag_)
            index["manifests"].push_back(m);
    }
    index["manifests"].push_back({{"mediaType", image::kMediaTypeManifest},
                                  {"digest", md.str()},
                                  {"size", manifest.size()},
                                  {"annotations", {{kRefNameAnnotation, tag_}}}});
    base::write_file_atomic(dir_ + "/index.json", index.dump());
  }

 private:
  std::string blob_path(const base::Digest& d) const {
    return dir_ + "/blobs/" + std::string(d.algorithm()) + "/" + std::string(d.hex());
  }

  std::string read_blob(const image::Descriptor& d) const {
    if (d.size > kMaxCacheConfigSize) throw base::Error("blob " + d.digest.str() + " is too large to read");
    std::string bytes = base::read_file(blob_path(d.digest));
    if (base::Digest::of(bytes) != d.digest || (d.size && bytes.size() != d.size))
      throw base::Error(blob_path(d.digest) + ": content does not match its digest");
    return bytes;
  }

  base::Digest put_bytes(const std::string& bytes) {
    base::Digest d = base::Digest::of(bytes);
    if (!base::path_exists(blob_path(d))) base::write_file_atomic(blob_path(d), bytes);
    return d;
  }

  /// A layer blob of the store into the layout: copied aside, fsynced, renamed.
  void copy_in(const base::Digest& d, cache::BlobStore& blobs) {
    std::string dest = blob_path(d);
    if (base::path_exists(dest)) return;
    std::string tmp = dest + ".tmp-" + base::random_hex(6);
    try {
      base::Fd in = blobs.open(d);
      base::Fd out = base::open_fd(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      copy_fd(in.get(), blobs.path(d), UINT64_MAX, [&](const char* p, size_t n) {
        while (n > 0) {
          ssize_t w = ::write(out.get(), p, n);
          if (w < 0 && errno == EINTR) continue;
          if (w < 0) throw base::SysError(errno, "write", tmp);
          p += w;
          n -= static_cast<size_t>(w);
        }
      });
      base::check_sys(::fsync(out.get()), "fsync", tmp);
      base::check_sys(::rename(tmp.c_str(), dest.c_str()), "rename", dest);
    } catch (...) {
      ::unlink(tmp.c_str());
      throw;
    }
  }

  std::string dir_, tag_;
};

class ImageInlineCache : public CacheBackend {
 public:
  ImageInlineCache(image::Image img, std::string name) : img_(std::move(img)), name_(std::move(name)) {}
  std::string describe() const override { return "inline cache of image " + name_; }
  std::optional<CacheConfig> read() override { return decode_inline(img_); }
  void fetch_blob(const image::Descriptor& d, cache::BlobStore& blobs) override {
    if (!blobs.has(d.digest)) throw base::Error("layer " + d.digest.str() + " of image " + name_ + " is missing");
  }
  void write(const CacheConfig&, cache::BlobStore&) override {
    throw base::Error("an image's inline cache is written with the image (--cache-to type=inline)");
  }

 private:
  image::Image img_;
  std::string name_;
};

bool is_prefix(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  return a.size() <= b.size() && std::equal(a.begin(), a.end(), b.begin());
}

}  // namespace

std::unique_ptr<CacheBackend> local_cache_dir(std::string dir, std::string tag) {
  return std::make_unique<LocalCacheDir>(std::move(dir), std::move(tag));
}

std::unique_ptr<CacheBackend> image_inline_cache(image::Image img, std::string name) {
  return std::make_unique<ImageInlineCache>(std::move(img), std::move(name));
}

RemoteCache::RemoteCache(cache::Store& store, std::function<void(const std::string&)> warn)
    : store_(store), lease_(store), warn_(std::move(warn)) {}

void RemoteCache::add_import(std::shared_ptr<CacheBackend> from) {
  std::optional<CacheConfig> cfg;
  try {
    cfg = from->read();
  } catch (const base::Error& e) {
    // As BuildKit: a cache that cannot be read costs speed, not the build.
    warn_("failed to read " + from->describe() + ": " + e.what());
    return;
  }
  if (!cfg) {
    warn_("no cache found in " + from->describe());
    return;
  }
  auto imp = std::make_unique<Import>();
  imp->backend = std::move(from);
  imp->config = std::move(*cfg);
  for (size_t i = 0; i < imp->config.records.size(); ++i) imp->by_key.emplace(imp->config.records[i].key, i);
  std::lock_guard lk(mu_);
  imports_.push_back(std::move(imp));
}

bool RemoteCache::has_imports() const {
  std::lock_guard lk(mu_);
  return !imports_.empty();
}

std::vector<std::string> RemoteCache::unpack_chain(Import& from, const std::vector<int>& chain) {
  image::Image img;
  // Leased before they are looked for: a blob found here (one an earlier import left,
  // which nothing else may name) stays until it is unpacked.
  std::vector<std::string> digests;
  for (int idx : chain) digests.push_back(from.config.layers[static_cast<size_t>(idx)].blob.digest.str());
  lease_.add_blobs(digests);
  for (int idx : chain) {
    const CacheLayer& l = from.config.layers[static_cast<size_t>(idx)];
    // Only blobs the store lacks travel; a layer already unpacked here (a base image's)
    // has its blob too and is shared below.
    if (!store_.blobs().has(l.blob.digest)) from.backend->fetch_blob(l.blob, store_.blobs());
    img.layers.push_back(l.blob);
    img.diff_ids.push_back(l.diff_id);
  }
  const int64_t start = static_cast<int64_t>(std::time(nullptr));
  std::vector<std::string> ids = image::unpack_image(store_, img);
  // A snapshot made just now takes the date its layer had where it was built: image
  // history dates come from snapshot dates, so the image ID is the same as there.
  for (size_t k = 0; k < ids.size(); ++k) {
    const CacheLayer& l = from.config.layers[static_cast<size_t>(chain[k])];
    auto info = store_.snapshots().get(ids[k]);
    if (l.created > 0 && info && info->created >= start)
      store_.snapshots().set_created(ids[k], l.created);
  }
  return ids;
}

std::optional<Result> RemoteCache::import(const std::string& key) {
  std::vector<Import*> imports;
  {
    std::lock_guard lk(mu_);
    for (auto& i : imports_) imports.push_back(i.get());
  }
  for (Import* imp : imports) {
    auto it = imp->by_key.find(key);
    if (it == imp->by_key.end()) continue;
    try {
      auto chain = imp->config.chain(imp->config.records[it->second].layer);
      return Result{unpack_chain(*imp, chain), {}, {}};
    } catch (const base::Error& e) {
      warn_("failed to import " + key + " from " + imp->backend->describe() + ": " + e.what());
    }
  }
  return std::nullopt;
}

bool RemoteCache::seed_cache_mount(const std::string& id, const std::string& dest) {
  std::vector<Import*> imports;
  {
    std::lock_guard lk(mu_);
    for (auto& i : imports_) imports.push_back(i.get());
  }
  for (Import* imp : imports) {
    for (const auto& m : imp->config.mounts) {
      if (m.id != id) continue;
      try {
        for (int idx : imp->config.chain(m.layer)) {
          const CacheLayer& l = imp->config.layers[static_cast<size_t>(idx)];
          lease_.add_blobs({l.blob.digest.str()});  // before it is looked for, as unpack_chain
          imp->backend->fetch_blob(l.blob, store_.blobs());
          base::Fd fd = store_.blobs().open(l.blob.digest);
          base::Digest diff = image::extract_layer(fd.get(), dest);
          if (diff != l.diff_id)
            throw base::Error("layer " + l.blob.digest.str() + " does not match its diff id " + l.diff_id.str());
        }
        return true;
      } catch (const base::Error& e) {
        warn_("failed to import cache mount `" + id + "` from " + imp->backend->describe() + ": " + e.what());
        // Whatever was extracted is dropped: the mount starts empty instead.
        base::remove_all(dest);
        base::make_dirs(dest);
      }
    }
  }
  return false;
}

void RemoteCache::note(const std::string& key, const Result& r) {
  if (!r.local_dir.empty() || r.layers.empty()) return;
  std::lock_guard lk(mu_);
  if (noted_index_.emplace(key, noted_.size()).second) noted_.emplace_back(key, r);
}

void RemoteCache::note_cache_mount(const std::string& id, const std::string& data_dir, const std::string& lock_file) {
  std::lock_guard lk(mu_);
  mounts_.emplace(id, MountUse{data_dir, lock_file});
}

CacheConfig RemoteCache::make_config(const Result& final, CacheMode mode, bool cache_mounts, const LayerBlobFn& blob) {
  std::vector<std::pair<std::string, Result>> noted;
  std::map<std::string, MountUse> mounts;
  {
    std::lock_guard lk(mu_);
    noted = noted_;
    mounts = mounts_;
  }
  CacheConfig cfg;
  for (const auto& [key, r] : noted) {
    if (mode == CacheMode::Min && !is_prefix(r.layers, final.layers)) continue;
    std::vector<CacheLayer> chain;
    for (size_t i = 0; i < r.layers.size(); ++i) {
      image::LayerBlob b = blob(r, i);
      auto info = store_.snapshots().get(r.layers[i]);
      if (!info) throw base::Error("snapshot " + r.layers[i] + " disappeared during cache export");
      std::string media_type = !b.media_type.empty() ? b.media_type
                               : !info->media_type.empty() ? info->media_type
                                                           : std::string(image::kMediaTypeLayerGzip);
      chain.push_back(CacheLayer{image::Descriptor{media_type, b.digest, b.size}, b.diff_id, -1, info->created});
    }
    cfg.records.push_back(CacheRecord{key, cfg.add_chain(chain)});
  }
  if (cache_mounts) {
    for (const auto& [id, use] : mounts) {
      // Shared with steps of concurrent builds that write it: they hold it exclusively
      // (locked/private) or shared, and a shared holder may still write; a torn file in
      // a package cache is what a cache tolerates.
      base::Fd lock = base::open_fd(use.lock_file, O_RDWR | O_CLOEXEC);
      base::check_sys(::flock(lock.get(), LOCK_SH), "flock", use.lock_file);
      image::LayerBlob b = image::write_dir_layer(use.data_dir, store_.blobs());
      // Nothing names it until the backend has stored it: leased, or a prune could
      // take it first (written just now, it is kept as fresh until this commits).
      lease_.add_blobs({b.digest.str()});
      std::string media_type = b.media_type.empty() ? std::string(image::kMediaTypeLayerGzip) : b.media_type;
      CacheLayer l{image::Descriptor{media_type, b.digest, b.size}, b.diff_id, -1,
                   static_cast<int64_t>(std::time(nullptr))};
      cfg.mounts.push_back(CacheMountRecord{id, cfg.add_chain({l})});
    }
  }
  return cfg;
}

}  // namespace builder::ops
