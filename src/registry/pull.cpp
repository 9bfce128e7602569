// Whole-image pull and push: manifest selection (index -> linux/amd64), checks that
// the manifest and config agree, blobs transferred a few at a time, the store written
// in commit order (blobs, then manifest, then the tag).
#include "registry/pull.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <map>
#include <mutex>
#include <thread>

#include "base/error.h"
#include "base/fd.h"
#include "base/log.h"
#include "base/strings.h"
#include "image/tar_io.h"

namespace builder::registry {

namespace {

constexpr uint64_t kMaxConfigSize = 16 << 20;
constexpr size_t kParallelBlobs = 3;

bool is_index(const std::string& media_type) {
  return media_type == image::kMediaTypeIndex || media_type == kDockerMediaTypeManifestList;
}

bool is_layer_type(const std::string& t) {
  static const char* kTypes[] = {
      "application/vnd.oci.image.layer.v1.tar",
      "application/vnd.oci.image.layer.v1.tar+gzip",
      "application/vnd.oci.image.layer.v1.tar+zstd",
      "application/vnd.docker.image.rootfs.diff.tar.gzip",
      "application/vnd.docker.image.rootfs.diff.tar",
      "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
  };
  return std::find(std::begin(kTypes), std::end(kTypes), t) != std::end(kTypes);
}

image::Descriptor descriptor(const base::Json& j, const std::string& what) {
  if (!j.is_object() || !j.contains("digest") || !j["digest"].is_string() || !j.contains("size") ||
      !j["size"].is_number_unsigned())
    throw base::Error(what + ": a descriptor without digest or size");
  image::Descriptor d;
  d.digest = base::Digest::parse(j["digest"].get<std::string>());
  d.size = j["size"].get<uint64_t>();
  if (j.contains("mediaType") && j["mediaType"].is_string()) d.media_type = j["mediaType"].get<std::string>();
  return d;
}

base::Json parse(const std::string& bytes, const std::string& what) {
  try {
    auto j = base::Json::parse(bytes);
    if (!j.is_object()) throw base::Error(what + " is not a JSON object");
    return j;
  } catch (const base::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw base::Error(what + " is not valid JSON: " + e.what());
  }
}

/// Runs `fn(i)` for i in [0, n) on up to kParallelBlobs threads; rethrows the first error
/// after every thread has stopped.
void parallel_for(size_t n, const std::function<void(size_t)>& fn) {
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr first;
  std::mutex mu;
  auto worker = [&] {
    for (size_t i; !failed && (i = next++) < n;) {
      try {
        fn(i);
      } catch (...) {
        std::lock_guard lock(mu);
        if (!first) first = std::current_exception();
        failed = true;
      }
    }
  };
  std::vector<std::thread> threads;
  size_t count = std::min(n, kParallelBlobs);
  for (size_t t = 1; t < count; ++t) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  if (first) std::rethrow_exception(first);
}

std::string where(const Reference& r) { return "registry " + r.domain + ": repository " + r.path; }

}  // namespace

image::Descriptor select_platform(const base::Json& index, const std::string& what) {
  if (!index.contains("manifests") || !index["manifests"].is_array())
    throw base::Error(what + ": the index has no manifests");
  std::vector<std::string> seen;
  std::optional<image::Descriptor> best;
  int best_rank = -1;
  for (const auto& m : index["manifests"]) {
    if (!m.is_object() || !m.contains("platform") || !m["platform"].is_object()) continue;
    const auto& p = m["platform"];
    std::string os = p.value("os", ""), arch = p.value("architecture", ""), variant = p.value("variant", "");
    // BuildKit's attestations sit in the index as "unknown/unknown"; they are not images.
    if (os == "unknown") continue;
    std::string name = os + "/" + arch + (variant.empty() ? "" : "/" + variant);
    if (std::find(seen.begin(), seen.end(), name) == seen.end()) seen.push_back(name);
    if (os != "linux" || arch != "amd64") continue;
    // Prefer the plain amd64 entry over a micro-architecture variant (v2, v3).
    int rank = variant.empty() || variant == "v1" ? 2 : 1;
    if (rank > best_rank) {
      best = descriptor(m, what);
      best_rank = rank;
    }
  }
  if (!best) {
    std::string list = seen.empty() ? "no platforms" : "it has: " + base::join(seen, ", ");
    throw base::Error(what + " has no linux/amd64 image (" + list + ")");
  }
  return *best;
}

std::optional<image::Image> find_by_digest(image::ImageStore& images, const Reference& ref) {
  if (ref.digest.empty()) return std::nullopt;
  auto& blobs = images.store().blobs();
  auto d = base::Digest::parse(ref.digest);
  if (!blobs.has(d)) return std::nullopt;
  auto j = parse(blobs.read(d), "manifest " + d.str());
  std::string media = j.value("mediaType", "");
  if (is_index(media) || (media.empty() && j.contains("manifests"))) {
    auto m = select_platform(j, "image index " + d.str());
    if (!blobs.has(m.digest)) return std::nullopt;
    d = m.digest;
  }
  try {
    return images.load(d);
  } catch (const base::Error&) {
    return std::nullopt;  // a config or layer is missing: pull again
  }
}

image::Image pull_image(Client& c, image::ImageStore& images, const Reference& ref) {
  auto& blobs = images.store().blobs();
  const std::string what = where(ref) + ": " + ref.manifest_ref();
  Fetched top = c.get_manifest(ref);
  Fetched man = top;
  Reference mref = ref;
  if (is_index(top.media_type)) {
    auto index = parse(top.bytes, what + ": the image index");
    auto d = select_platform(index, what + ": the image index");
    mref = ref.with_digest(d.digest.str());
    man = c.get_manifest(mref);
    if (man.bytes.size() != d.size)
      throw base::Error(what + ": manifest " + d.digest.str() + " is " + std::to_string(man.bytes.size()) +
                        " bytes, the index says " + std::to_string(d.size));
    if (is_index(man.media_type)) throw base::Error(what + ": the index's linux/amd64 entry is another index");
  }
  const std::string mwhat = what + ": manifest " + man.digest.str();
  if (man.media_type != image::kMediaTypeManifest && man.media_type != image::kDockerMediaTypeManifest)
    throw base::Error(mwhat + ": unsupported media type `" + man.media_type + "`");
  auto m = parse(man.bytes, mwhat);
  if (!m.contains("schemaVersion") || m["schemaVersion"] != 2)
    throw base::Error(mwhat + ": schema 1 manifests are not supported");
  if (!m.contains("config") || !m.contains("layers") || !m["layers"].is_array())
    throw base::Error(mwhat + " has no config or layers");
  auto config = descriptor(m["config"], mwhat);
  if (config.media_type != image::kMediaTypeConfig && config.media_type != image::kDockerMediaTypeConfig)
    throw base::Error(mwhat + " is not a container image (config media type `" + config.media_type + "`)");
  std::vector<image::Descriptor> layers;
  for (const auto& l : m["layers"]) {
    layers.push_back(descriptor(l, mwhat));
    if (!is_layer_type(layers.back().media_type))
      throw base::Error(mwhat + ": unsupported layer media type `" + layers.back().media_type + "`");
  }

  // The config first: it must agree with the layers before any layer is downloaded.
  std::string config_bytes = c.fetch_blob_bytes(mref, config, kMaxConfigSize);
  auto cfg = parse(config_bytes, what + ": image config " + config.digest.str());
  if (!cfg.contains("rootfs") || !cfg["rootfs"].is_object() || !cfg["rootfs"].contains("diff_ids") ||
      !cfg["rootfs"]["diff_ids"].is_array())
    throw base::Error(what + ": image config " + config.digest.str() + " has no rootfs.diff_ids");
  if (cfg["rootfs"]["diff_ids"].size() != layers.size())
    throw base::Error(mwhat + " lists " + std::to_string(layers.size()) + " layers but its config has " +
                      std::to_string(cfg["rootfs"]["diff_ids"].size()) + " diff_ids");

  std::vector<base::Digest> diff_ids;
  for (const auto& id : cfg["rootfs"]["diff_ids"]) {
    if (!id.is_string() || !base::Digest::valid(id.get<std::string>()))
      throw base::Error(what + ": image config " + config.digest.str() + ": a diff_id is not a sha256 digest");
    diff_ids.push_back(base::Digest::parse(id.get<std::string>()));
  }

  parallel_for(layers.size(), [&](size_t i) {
    c.fetch_blob(mref, layers[i], blobs);
    // The layer must unpack to what the config says (its diff_id), or the image's
    // identity (the config digest) would not describe its content.
    base::Digest actual;
    try {
      base::Fd fd = blobs.open(layers[i].digest);
      image::detail::PlainReader reader(fd.get());
      std::vector<char> buf(1 << 16);
      while (reader.read(buf.data(), buf.size()) > 0) {
      }
      actual = reader.finish();
    } catch (const base::Error& e) {
      throw base::Error(mwhat + ": layer " + layers[i].digest.str() + " does not decompress: " + e.message());
    }
    if (actual != diff_ids[i])
      throw base::Error(mwhat + ": layer " + layers[i].digest.str() + " uncompresses to " + actual.str() +
                        ", not to the config's diff_id " + diff_ids[i].str());
  });

  // Commit order: blobs, then the manifest (and index), then the tag and the index's
  // record in one transaction (the commit point).
  blobs.put(config_bytes);
  blobs.put(man.bytes);
  if (top.digest != man.digest) blobs.put(top.bytes);
  image::Image img = images.load(man.digest);
  images.store().db().transaction([&] {
    if (!ref.tag.empty()) images.tag(image::normalize_ref(ref.repository() + ":" + ref.tag), man.digest);
    if (top.digest != man.digest) images.record_index(top.digest, man.digest);
  });
  return img;
}

image::Image ensure_image(Client& c, image::ImageStore& images, const Reference& ref) {
  if (auto img = find_by_digest(images, ref)) return *img;
  return pull_image(c, images, ref);
}

base::Digest push_image(Client& c, image::ImageStore& images, const image::Image& img, const Reference& dest) {
  auto& blobs = images.store().blobs();
  const std::string what = where(dest);

  // Where each layer could be mounted from: images of the store named on the same
  // registry (pulled from it, or pushed to it) in another repository.
  std::map<base::Digest, std::string> mount_from;
  for (const auto& rec : images.list()) {
    Reference r;
    try {
      r = Reference::parse(rec.name);
    } catch (const base::Error&) {
      continue;
    }
    if (r.domain != dest.domain || r.path == dest.path) continue;
    try {
      auto other = images.load(rec.manifest_digest);
      mount_from.emplace(other.config_digest, r.path);
      for (const auto& l : other.layers) mount_from.emplace(l.digest, r.path);
    } catch (const base::Error&) {
      // a broken record is not this push's business
    }
  }

  image::Descriptor config = descriptor(img.manifest["config"], what + ": manifest " + img.manifest_digest.str());
  auto config_from = mount_from.find(config.digest);
  c.push_blob(dest, config, blobs, config_from == mount_from.end() ? "" : config_from->second);
  parallel_for(img.layers.size(), [&](size_t i) {
    const auto& l = img.layers[i];
    auto it = mount_from.find(l.digest);
    c.push_blob(dest, l, blobs, it == mount_from.end() ? "" : it->second);
  });

  std::string bytes = blobs.read(img.manifest_digest);
  std::string media = img.manifest.contains("mediaType") && img.manifest["mediaType"].is_string()
                          ? img.manifest["mediaType"].get<std::string>()
                          : std::string(image::kMediaTypeManifest);
  Reference target = dest;
  if (target.tag.empty() && target.digest.empty()) target.tag = "latest";
  if (!target.digest.empty() && target.digest != img.manifest_digest.str()) {
    if (target.tag.empty())
      throw base::Error(what + ": cannot push " + img.manifest_digest.str() + " as " + target.digest);
    target.digest.clear();  // a tag wins: push by tag
  }
  return c.put_manifest(target, media, bytes);
}

}  // namespace builder::registry
