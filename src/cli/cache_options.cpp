// cli/cache_options.cpp — --cache-from / --cache-to parsing, the registry cache
// backend, and the wiring of one build's remote caches (see cache_options.h).
#include "cache_options.h"

#include <map>
#include <set>

#include "base/error.h"
#include "base/strings.h"
#include "registry/client.h"
#include "registry/reference.h"
#include "solver/ops/cache_config.h"

namespace builder::cli {
namespace {

/// A cache in a registry repository: the cache manifest under ref's tag, layer blobs in
/// the same repository (pushed once: existing blobs are skipped by the client).
class RegistryCache : public ops::CacheBackend {
 public:
  RegistryCache(registry::Client& c, registry::Reference ref) : c_(c), ref_(std::move(ref)) {}

  std::string describe() const override { return "registry cache " + ref_.str(); }

  std::optional<ops::CacheConfig> read() override {
    if (!c_.head_manifest(ref_)) return std::nullopt;
    registry::Fetched m = c_.get_manifest(ref_);
    ops::ManifestReader reader;
    reader.blob = [this](const image::Descriptor& d) { return c_.fetch_blob_bytes(ref_, d, ops::kMaxCacheConfigSize); };
    reader.manifest = [this](const image::Descriptor& d) {
      registry::Fetched f = c_.get_manifest(ref_.with_digest(d.digest.str()));
      return std::make_pair(f.media_type, f.bytes);
    };
    return ops::config_from_manifest(m.media_type, m.bytes, reader);
  }

  void fetch_blob(const image::Descriptor& d, cache::BlobStore& blobs) override { c_.fetch_blob(ref_, d, blobs); }

  void write(const ops::CacheConfig& config, cache::BlobStore& blobs) override {
    std::set<base::Digest> pushed;
    for (const auto& l : config.layers)
      if (pushed.insert(l.blob.digest).second) c_.push_blob(ref_, l.blob, blobs);
    std::string cfg = config.encode();
    c_.push_blob_bytes(ref_, base::Digest::of(cfg), cfg);
    c_.put_manifest(ref_, image::kMediaTypeManifest, config.manifest(cfg));
  }

 private:
  registry::Client& c_;
  registry::Reference ref_;
};

bool parse_bool(const std::string& opt, const std::string& key, const std::string& value) {
  std::string v = base::to_lower(value);
  if (v == "true" || v == "1") return true;
  if (v == "false" || v == "0") return false;
  throw base::Error(opt + ": invalid value `" + value + "` for " + key + " (true or false)");
}

/// key=value fields; an empty map and `bare` set for a value without '='.
std::map<std::string, std::string> fields(const std::string& opt, const std::string& s, std::string& bare) {
  std::map<std::string, std::string> out;
  if (s.find('=') == std::string::npos && s.find(',') == std::string::npos) {
    bare = s;
    return out;
  }
  for (const auto& part : base::split(s, ',')) {
    if (part.empty()) continue;
    auto eq = part.find('=');
    if (eq == std::string::npos) throw base::Error(opt + ": invalid field `" + part + "`: expected key=value");
    std::string key = base::to_lower(part.substr(0, eq));
    if (out.count(key)) throw base::Error(opt + ": `" + key + "` given twice");
    out[key] = part.substr(eq + 1);
  }
  return out;
}

void check_type(const std::string& opt, const std::string& type, const std::set<std::string>& known) {
  if (known.count(type)) return;
  static const std::set<std::string> kOthers = {"gha", "s3", "azblob"};
  std::string list = base::join(std::vector<std::string>(known.begin(), known.end()), ", ");
  if (kOthers.count(type)) throw base::Error(opt + ": cache type `" + type + "` is not supported (" + list + ")");
  throw base::Error(opt + ": unknown cache type `" + type + "` (" + list + ")");
}

/// Every key of `f` is one `type` knows.
void check_keys(const std::string& opt, const std::string& type, const std::map<std::string, std::string>& f,
                const std::set<std::string>& keys) {
  for (const auto& [k, v] : f)
    if (!keys.count(k))
      throw base::Error(opt + ": unknown key `" + k + "` for type=" + type + " (known: " +
                        base::join(std::vector<std::string>(keys.begin(), keys.end()), ", ") + ")");
}

void check_ref(const std::string& opt, const std::string& ref) {
  try {
    registry::Reference::parse(ref);
  } catch (const base::Error& e) {
    throw base::Error(opt + ": " + e.what());
  }
}

}  // namespace

CacheExportSpec parse_cache_to(const std::string& s) {
  const std::string opt = "--cache-to " + s;
  std::string bare;
  auto f = fields(opt, s, bare);
  CacheExportSpec spec;
  if (!bare.empty()) {
    check_ref(opt, bare);
    spec.type = "registry";
    spec.ref = bare;
    return spec;
  }
  if (!f.count("type") && !f.count("ref")) throw base::Error(opt + ": missing type (registry, local or inline)");
  spec.type = f.count("type") ? f["type"] : "registry";
  check_type(opt, spec.type, {"registry", "local", "inline"});
  static const std::map<std::string, std::set<std::string>> kKeys = {
      {"registry", {"type", "ref", "mode", "cache-mounts", "ignore-error"}},
      {"local", {"type", "dest", "mode", "cache-mounts", "ignore-error"}},
      {"inline", {"type", "mode", "ignore-error"}}};
  check_keys(opt, spec.type, f, kKeys.at(spec.type));
  if (f.count("mode")) {
    if (f["mode"] == "max") spec.mode = ops::CacheMode::Max;
    else if (f["mode"] != "min") throw base::Error(opt + ": invalid mode `" + f["mode"] + "` (min or max)");
  }
  if (spec.type == "inline" && spec.mode == ops::CacheMode::Max)
    throw base::Error(opt + ": an inline cache holds only the image's own chain: mode=max needs type=registry or type=local");
  if (f.count("cache-mounts")) spec.cache_mounts = parse_bool(opt, "cache-mounts", f["cache-mounts"]);
  if (f.count("ignore-error")) spec.ignore_error = parse_bool(opt, "ignore-error", f["ignore-error"]);
  if (spec.type == "registry") {
    if (f["ref"].empty()) throw base::Error(opt + ": type=registry needs ref=REFERENCE");
    spec.ref = f["ref"];
    check_ref(opt, spec.ref);
  } else if (spec.type == "local") {
    if (f["dest"].empty()) throw base::Error(opt + ": type=local needs dest=DIRECTORY");
    spec.dest = f["dest"];
  }
  return spec;
}

CacheImportSpec parse_cache_from(const std::string& s) {
  const std::string opt = "--cache-from " + s;
  std::string bare;
  auto f = fields(opt, s, bare);
  CacheImportSpec spec;
  if (!bare.empty()) {
    check_ref(opt, bare);
    spec.type = "image";
    spec.ref = bare;
    return spec;
  }
  if (!f.count("type") && !f.count("ref")) throw base::Error(opt + ": missing type (registry or local)");
  spec.type = f.count("type") ? f["type"] : "registry";
  check_type(opt, spec.type, {"registry", "local"});
  static const std::map<std::string, std::set<std::string>> kKeys = {{"registry", {"type", "ref"}},
                                                                     {"local", {"type", "src"}}};
  check_keys(opt, spec.type, f, kKeys.at(spec.type));
  if (spec.type == "registry") {
    if (f["ref"].empty()) throw base::Error(opt + ": type=registry needs ref=REFERENCE");
    spec.ref = f["ref"];
    check_ref(opt, spec.ref);
  } else {
    if (f["src"].empty()) throw base::Error(opt + ": type=local needs src=DIRECTORY");
    spec.src = f["src"];
  }
  return spec;
}

BuildCache::BuildCache(cache::Store& store, image::ImageStore& images, std::vector<CacheImportSpec> from,
                       std::vector<CacheExportSpec> to, std::function<void(const std::string&)> warn,
                       registry::ClientOptions registry_opts)
    : store_(store),
      images_(images),
      from_(std::move(from)),
      to_(std::move(to)),
      warn_(std::move(warn)),
      registry_opts_(std::move(registry_opts)) {}

BuildCache::~BuildCache() = default;

registry::Client& BuildCache::client() {
  if (!client_) client_ = std::make_unique<registry::Client>(registry_opts_);
  return *client_;
}

void BuildCache::attach(ops::LocalExecutor& executor) {
  if (from_.empty() && to_.empty()) return;
  remote_ = std::make_unique<ops::RemoteCache>(store_, warn_);
  for (const auto& f : from_) {
    std::shared_ptr<ops::CacheBackend> backend;
    try {
      if (f.type == "local") {
        backend = ops::local_cache_dir(f.src);
      } else if (f.type == "image") {
        // A plain reference: an image of that name here, else the registry.
        if (auto img = images_.resolve(f.ref)) backend = ops::image_inline_cache(std::move(*img), f.ref);
      }
      if (!backend) backend = std::make_shared<RegistryCache>(client(), registry::Reference::parse(f.ref));
    } catch (const base::Error& e) {
      warn_("cache " + (f.ref.empty() ? f.src : f.ref) + ": " + e.what());
      continue;
    }
    remote_->add_import(std::move(backend));
  }
  executor.set_remote_cache(remote_.get());
  bool inline_cache = false;
  for (const auto& t : to_) inline_cache = inline_cache || t.type == "inline";
  if (inline_cache) {
    executor.set_image_config_hook([this, &executor](const ops::Result& result, base::Json& config) {
      try {
        ops::CacheConfig cfg = remote_->make_config(result, ops::CacheMode::Min, false,
                                                    [&](const ops::Result& r, size_t i) { return executor.snapshot_blob(r, i); });
        std::vector<base::Digest> diff_ids;
        for (const auto& d : config["rootfs"]["diff_ids"]) diff_ids.push_back(base::Digest::parse(d.get<std::string>()));
        if (auto value = ops::encode_inline(cfg, diff_ids)) config[ops::kInlineCacheField] = *value;
      } catch (const base::Error& e) {
        bool ignore = false;
        for (const auto& t : to_) ignore = ignore || (t.type == "inline" && t.ignore_error);
        if (!ignore) throw base::Error(std::string("exporting the inline cache: ") + e.what());
        warn_(std::string("exporting the inline cache: ") + e.what());
      }
    });
  }
}

std::vector<std::string> BuildCache::export_caches(ops::LocalExecutor& executor, const ops::Result& final) {
  std::vector<std::string> done;
  if (!remote_) return done;
  for (const auto& t : to_) {
    if (t.type == "inline") continue;
    std::string where = t.type == "local" ? "local cache " + t.dest : "registry cache " + t.ref;
    try {
      ops::CacheConfig cfg = remote_->make_config(final, t.mode, t.cache_mounts, [&](const ops::Result& r, size_t i) {
        return executor.snapshot_blob(r, i);
      });
      std::unique_ptr<ops::CacheBackend> backend;
      if (t.type == "local")
        backend = ops::local_cache_dir(t.dest);
      else
        backend = std::make_unique<RegistryCache>(client(), registry::Reference::parse(t.ref));
      backend->write(cfg, store_.blobs());
      done.push_back("exported cache to " + where + ": " + std::to_string(cfg.records.size()) + " records, " +
                     std::to_string(cfg.layers.size()) + " layers" +
                     (cfg.mounts.empty() ? std::string() : ", " + std::to_string(cfg.mounts.size()) + " cache mounts"));
    } catch (const base::Error& e) {
      if (!t.ignore_error) throw base::Error("exporting the cache to " + where + ": " + e.what());
      warn_("exporting the cache to " + where + ": " + e.what());
    }
  }
  return done;
}

}  // namespace builder::cli
