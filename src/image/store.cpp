// Images in a root: references (Docker's grammar and normalisation), manifests and
// configs in the blob store, tags in the `images` table.
#include "image/store.h"

#include <cctype>
#include <ctime>
#include <map>
#include <set>

#include "base/error.h"
#include "base/fd.h"
#include "base/strings.h"
#include "image/tar_io.h"

namespace builder::image {

// ---------------------------------------------------------------- references

namespace {

constexpr const char* kDefaultDomain = "docker.io";
constexpr const char* kOfficialRepoPrefix = "library/";

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool is_alnum(char c) { return is_lower_alnum(c) || (c >= 'A' && c <= 'Z'); }
bool is_hex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return !s.empty();
}

/// [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*  (distribution/reference path-component)
bool valid_path_component(std::string_view c) {
  size_t i = 0, n = c.size();
  if (n == 0 || !is_lower_alnum(c[0])) return false;
  while (i < n) {
    while (i < n && is_lower_alnum(c[i])) ++i;
    if (i == n) return true;
    if (c[i] == '.') {
      ++i;
    } else if (c[i] == '_') {
      ++i;
      if (i < n && c[i] == '_') ++i;
    } else if (c[i] == '-') {
      while (i < n && c[i] == '-') ++i;
    } else {
      return false;
    }
    if (i == n || !is_lower_alnum(c[i])) return false;
  }
  return true;
}

/// host[:port] with host = dns labels ([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])
/// joined by '.', or a bracketed IPv6 address.
bool valid_domain(std::string_view d) {
  std::string_view host = d, port;
  if (!d.empty() && d.front() == '[') {
    auto close = d.find(']');
    if (close == std::string_view::npos || close < 2) return false;
    for (char c : d.substr(1, close - 1))
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':') return false;
    host = {};
    if (close + 1 < d.size()) {
      if (d[close + 1] != ':') return false;
      port = d.substr(close + 2);
      if (port.empty()) return false;
    }
  } else {
    auto colon = d.find(':');
    if (colon != std::string_view::npos) {
      host = d.substr(0, colon);
      port = d.substr(colon + 1);
      if (port.empty()) return false;
    }
    if (host.empty()) return false;
    for (const auto& label : base::split(host, '.')) {
      if (label.empty() || !is_alnum(label.front()) || !is_alnum(label.back())) return false;
      for (char c : label)
        if (!is_alnum(c) && c != '-') return false;
    }
  }
  for (char c : port)
    if (c < '0' || c > '9') return false;
  return true;
}

/// [\w][\w.-]{0,127}
bool valid_tag(std::string_view t) {
  if (t.empty() || t.size() > 128) return false;
  auto word = [](char c) { return is_alnum(c) || c == '_'; };
  if (!word(t[0])) return false;
  for (char c : t)
    if (!word(c) && c != '.' && c != '-') return false;
  return true;
}

struct ParsedRef {
  std::string domain;  // "docker.io" for Docker Hub
  std::string path;    // "library/busybox"
  std::string tag;
  std::string digest;
};

ParsedRef parse_ref(const std::string& ref) {
  auto bad = [&](const std::string& why) {
    return base::Error("invalid reference format: " + why + " (`" + ref + "`)");
  };
  if (ref.empty()) throw base::Error("invalid reference format: empty reference");
  ParsedRef r;
  std::string name = ref;
  if (auto at = name.find('@'); at != std::string::npos) {
    r.digest = name.substr(at + 1);
    name.resize(at);
    if (!base::Digest::valid(r.digest)) throw bad("invalid digest");
  }
  auto slash = name.rfind('/');
  auto colon = name.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    r.tag = name.substr(colon + 1);
    name.resize(colon);
    if (!valid_tag(r.tag)) throw bad("invalid tag");
  }
  if (name.empty()) throw bad("missing repository name");
  if (name.size() > 255) throw bad("repository name must not be more than 255 characters");

  auto first = name.find('/');
  std::string head = first == std::string::npos ? "" : name.substr(0, first);
  // The first component is a registry when it looks like a host (as Docker decides).
  if (first != std::string::npos && (head.find_first_of(".:") != std::string::npos || head == "localhost" ||
                                     base::to_lower(head) != head)) {
    r.domain = head;
    r.path = name.substr(first + 1);
    if (!valid_domain(r.domain)) throw bad("invalid registry host");
  } else {
    r.domain = kDefaultDomain;
    r.path = name;
  }
  if (r.domain == "index.docker.io") r.domain = kDefaultDomain;
  if (base::to_lower(r.path) != r.path) throw bad("repository name must be lowercase");
  for (const auto& c : base::split(r.path, '/'))
    if (!valid_path_component(c)) throw bad("invalid repository name");
  if (r.domain == kDefaultDomain && r.path.find('/') == std::string::npos) {
    if (r.path.size() == 64 && is_hex(r.path) && r.tag.empty() && r.digest.empty())
      throw bad("repository name cannot be a 64-byte hexadecimal string");
    r.path = kOfficialRepoPrefix + r.path;
  }
  if (r.tag.empty() && r.digest.empty()) r.tag = "latest";
  return r;
}

std::string familiar_name(const ParsedRef& r) {
  if (r.domain != kDefaultDomain) return r.domain + "/" + r.path;
  std::string_view p = r.path;
  if (p.rfind(kOfficialRepoPrefix, 0) == 0 && p.find('/', 8) == std::string_view::npos)
    return std::string(p.substr(8));
  return r.path;
}

std::string with_suffix(std::string name, const ParsedRef& r) {
  if (!r.tag.empty()) name += ":" + r.tag;
  if (!r.digest.empty()) name += "@" + r.digest;
  return name;
}

}  // namespace

std::string normalize_ref(const std::string& ref) {
  auto r = parse_ref(ref);
  return with_suffix(familiar_name(r), r);
}

std::string full_ref(const std::string& ref) {
  auto r = parse_ref(ref);
  return with_suffix(r.domain + "/" + r.path, r);
}

std::pair<std::string, std::string> split_ref(const std::string& normalized) {
  std::string name = normalized;
  bool by_digest = false;
  if (auto at = name.find('@'); at != std::string::npos) {
    name.resize(at);
    by_digest = true;
  }
  auto slash = name.rfind('/');
  auto colon = name.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash))
    return {name.substr(0, colon), name.substr(colon + 1)};
  return {name, by_digest ? "<none>" : "latest"};
}

// ---------------------------------------------------------------- ImageStore

namespace {

base::Json descriptor_json(const Descriptor& d) {
  base::Json j = base::Json::object();
  j["mediaType"] = d.media_type;
  j["digest"] = d.digest.str();
  j["size"] = d.size;
  return j;
}

base::Json parse_json(const std::string& text, const std::string& what) {
  try {
    return base::Json::parse(text);
  } catch (const std::exception& e) {
    throw base::Error(what + " is not valid JSON: " + e.what());
  }
}

Descriptor parse_descriptor(const base::Json& j, const std::string& what) {
  if (!j.is_object() || !j.contains("digest") || !j["digest"].is_string())
    throw base::Error(what + ": descriptor without a digest");
  Descriptor d;
  d.digest = base::Digest::parse(j["digest"].get<std::string>());
  if (j.contains("mediaType") && j["mediaType"].is_string()) d.media_type = j["mediaType"].get<std::string>();
  if (j.contains("size") && j["size"].is_number_unsigned()) d.size = j["size"].get<uint64_t>();
  return d;
}

}  // namespace

ImageStore::ImageStore(cache::Store& store) : store_(store) {
  store_.db().exec("CREATE TABLE IF NOT EXISTS images(name TEXT PRIMARY KEY, digest TEXT NOT NULL, created INTEGER)");
  store_.db().exec("CREATE TABLE IF NOT EXISTS image_records(digest TEXT PRIMARY KEY, created INTEGER)");
  store_.db().exec(
      "CREATE TABLE IF NOT EXISTS image_indexes(digest TEXT PRIMARY KEY, manifest TEXT NOT NULL, created INTEGER)");
  store_.db().exec("CREATE TABLE IF NOT EXISTS layer_sizes(diff_id TEXT PRIMARY KEY, size INTEGER NOT NULL)");
}

void ImageStore::record_layer_size(const base::Digest& diff_id, uint64_t size) {
  store_.db().exec("INSERT OR IGNORE INTO layer_sizes(diff_id, size) VALUES(?1, ?2)",
                   {diff_id.str(), static_cast<long long>(size)});
}

uint64_t ImageStore::layer_size(const Descriptor& layer, const base::Digest& diff_id) {
  auto rows = store_.db().query("SELECT size FROM layer_sizes WHERE diff_id = ?1", {diff_id.str()});
  if (!rows.empty() && rows[0][0]) return std::stoull(*rows[0][0]);
  // Not recorded (a layer pulled, loaded or cached before sizes were recorded): count
  // the plain bytes once. The diff id check keeps a damaged blob from recording a
  // wrong size for a content address.
  if (!store_.blobs().has(layer.digest))
    throw base::Error("layer " + layer.digest.str() + " is not in the store");
  base::Fd fd = store_.blobs().open(layer.digest);
  detail::PlainReader reader(fd.get());
  std::vector<unsigned char> buf(1 << 16);
  uint64_t size = 0;
  for (size_t n; (n = reader.read(buf.data(), buf.size())) > 0;) size += n;
  base::Digest got = reader.finish();
  if (got != diff_id)
    throw base::Error("layer " + layer.digest.str() + " does not hold diff id " + diff_id.str() + " (it holds " +
                      got.str() + ")");
  record_layer_size(diff_id, size);
  return size;
}

uint64_t ImageStore::image_size(const Image& img) {
  uint64_t total = 0;
  for (size_t i = 0; i < img.layers.size() && i < img.diff_ids.size(); ++i)
    total += layer_size(img.layers[i], img.diff_ids[i]);
  return total;
}

void ImageStore::record_index(const base::Digest& index, const base::Digest& manifest) {
  if (!store_.blobs().has(index) || !store_.blobs().has(manifest))
    throw base::Error("cannot record image index " + index.str() + ": it or manifest " + manifest.str() +
                      " is not in the store");
  store_.db().exec("INSERT OR REPLACE INTO image_indexes(digest, manifest, created) VALUES(?1, ?2, ?3)",
                   {index.str(), manifest.str(), static_cast<long long>(std::time(nullptr))});
}

std::vector<base::Digest> ImageStore::indexes_of(const base::Digest& manifest) {
  std::vector<base::Digest> out;
  for (const auto& row :
       store_.db().query("SELECT digest FROM image_indexes WHERE manifest = ?1 ORDER BY digest", {manifest.str()}))
    if (row[0] && base::Digest::valid(*row[0])) out.push_back(base::Digest::parse(*row[0]));
  return out;
}

void ImageStore::add_image(const base::Digest& manifest) {
  if (!store_.blobs().has(manifest)) throw base::Error("cannot record image " + manifest.str() + ": manifest is not in the store");
  store_.db().exec("INSERT OR IGNORE INTO image_records(digest, created) VALUES(?1, ?2)",
                   {manifest.str(), static_cast<long long>(std::time(nullptr))});
}

bool ImageStore::remove_image(const base::Digest& manifest) {
  int n = 0;
  store_.db().transaction([&] {
    n += store_.db().exec("DELETE FROM images WHERE digest = ?1", {manifest.str()});
    n += store_.db().exec("DELETE FROM image_records WHERE digest = ?1", {manifest.str()});
    store_.db().exec("DELETE FROM image_indexes WHERE manifest = ?1", {manifest.str()});
  });
  return n > 0;
}

std::vector<ImageRecord> ImageStore::list_all() {
  auto out = list();
  // Recorded images no name points at: Docker's <none>:<none>.
  for (const auto& row : store_.db().query(
           "SELECT digest, created FROM image_records WHERE digest NOT IN (SELECT digest FROM images) ORDER BY digest")) {
    ImageRecord r;
    std::string digest = row[0].value_or("");
    // A record whose manifest is gone (damage: records follow their manifests) names
    // nothing usable; it goes, as Store::repair drops such names.
    if (!base::Digest::valid(digest) || !store_.blobs().has(base::Digest::parse(digest))) {
      store_.db().exec("DELETE FROM image_records WHERE digest = ?1", {digest});
      continue;
    }
    r.manifest_digest = base::Digest::parse(digest);
    r.created = row[1] ? std::stoll(*row[1]) : 0;
    out.push_back(std::move(r));
  }
  return out;
}

base::Digest ImageStore::write_manifest(const Descriptor& config, const std::vector<Descriptor>& layers) {
  base::Json m = base::Json::object();
  m["schemaVersion"] = 2;
  m["mediaType"] = kMediaTypeManifest;
  m["config"] = descriptor_json(config);
  m["layers"] = base::Json::array();
  for (const auto& l : layers) m["layers"].push_back(descriptor_json(l));
  return store_.blobs().put(m.dump());
}

base::Digest ImageStore::write_image(const base::Json& config, const std::vector<LayerBlob>& layers) {
  const base::Json* ids = nullptr;
  if (config.contains("rootfs") && config["rootfs"].is_object() && config["rootfs"].contains("diff_ids"))
    ids = &config["rootfs"]["diff_ids"];
  if (!ids || !ids->is_array() || ids->size() != layers.size())
    throw base::Error("image config rootfs.diff_ids does not match the " + std::to_string(layers.size()) + " layers");
  std::vector<Descriptor> descs;
  for (size_t i = 0; i < layers.size(); ++i) {
    if (!(*ids)[i].is_string() || (*ids)[i].get<std::string>() != layers[i].diff_id.str())
      throw base::Error("image config rootfs.diff_ids[" + std::to_string(i) + "] is not the diff id of layer " +
                        layers[i].digest.str());
    descs.push_back({kMediaTypeLayerGzip, layers[i].digest, layers[i].size});
    if (layers[i].plain_size > 0) record_layer_size(layers[i].diff_id, layers[i].plain_size);
  }
  std::string cfg = config.dump();
  Descriptor c{kMediaTypeConfig, store_.blobs().put(cfg), cfg.size()};
  return write_manifest(c, descs);
}

void ImageStore::tag(const std::string& name, const base::Digest& manifest) {
  std::string norm = normalize_ref(name);
  if (norm.find('@') != std::string::npos) throw base::Error("cannot tag an image as `" + name + "`: a digest is not a tag");
  if (!store_.blobs().has(manifest)) throw base::Error("cannot tag `" + norm + "`: manifest " + manifest.str() + " is not in the store");
  auto now = static_cast<long long>(std::time(nullptr));
  store_.db().transaction([&] {
    store_.db().exec("INSERT OR REPLACE INTO images(name, digest, created) VALUES(?1, ?2, ?3)", {norm, manifest.str(), now});
    store_.db().exec("INSERT OR IGNORE INTO image_records(digest, created) VALUES(?1, ?2)", {manifest.str(), now});
  });
}

bool ImageStore::untag(const std::string& name) {
  return store_.db().exec("DELETE FROM images WHERE name = ?1", {normalize_ref(name)}) > 0;
}

std::vector<ImageRecord> ImageStore::list() {
  std::vector<ImageRecord> out;
  for (const auto& row : store_.db().query("SELECT name, digest, created FROM images ORDER BY name")) {
    ImageRecord r;
    r.name = row[0].value_or("");
    r.manifest_digest = base::Digest::parse(row[1].value_or(""));
    r.created = row[2] ? std::stoll(*row[2]) : 0;
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<std::string> ImageStore::names_of(const base::Digest& manifest) {
  std::vector<std::string> out;
  for (const auto& row : store_.db().query("SELECT name FROM images WHERE digest = ?1 ORDER BY name", {manifest.str()}))
    out.push_back(row[0].value_or(""));
  return out;
}

Image ImageStore::load(const base::Digest& manifest) {
  const std::string what = "manifest " + manifest.str();
  Image img;
  img.manifest_digest = manifest;
  img.manifest = parse_json(store_.blobs().read(manifest), what);
  const auto& m = img.manifest;
  if (!m.is_object()) throw base::Error(what + " is not a JSON object");
  int version = m.contains("schemaVersion") && m["schemaVersion"].is_number_integer() ? m["schemaVersion"].get<int>() : 0;
  if (version == 1)
    throw base::Error(what + " is a Docker schema 1 manifest, which is not supported (re-push the image with a current Docker)");
  if (version != 2) throw base::Error(what + ": unsupported schemaVersion");
  std::string media = m.contains("mediaType") && m["mediaType"].is_string() ? m["mediaType"].get<std::string>() : "";
  if (media == kMediaTypeIndex || media == "application/vnd.docker.distribution.manifest.list.v2+json" ||
      (media.empty() && m.contains("manifests")))
    throw base::Error(what + " is an image index, not an image manifest");
  if (!media.empty() && media != kMediaTypeManifest && media != kDockerMediaTypeManifest)
    throw base::Error(what + ": unsupported media type `" + media + "`");
  if (!m.contains("config") || !m.contains("layers") || !m["layers"].is_array())
    throw base::Error(what + " has no config or layers");

  Descriptor config = parse_descriptor(m["config"], what);
  img.config_digest = config.digest;
  img.config = parse_json(store_.blobs().read(config.digest), "image config " + config.digest.str());
  for (const auto& l : m["layers"]) img.layers.push_back(parse_descriptor(l, what));

  const auto& cfg = img.config;
  if (!cfg.is_object() || !cfg.contains("rootfs") || !cfg["rootfs"].is_object() ||
      !cfg["rootfs"].contains("diff_ids") || !cfg["rootfs"]["diff_ids"].is_array())
    throw base::Error("image config " + config.digest.str() + " has no rootfs.diff_ids");
  for (const auto& id : cfg["rootfs"]["diff_ids"]) {
    if (!id.is_string()) throw base::Error("image config " + config.digest.str() + ": bad diff id");
    img.diff_ids.push_back(base::Digest::parse(id.get<std::string>()));
  }
  if (img.diff_ids.size() != img.layers.size())
    throw base::Error(what + " lists " + std::to_string(img.layers.size()) + " layers but its config has " +
                      std::to_string(img.diff_ids.size()) + " diff ids");
  return img;
}

std::optional<Image> ImageStore::resolve(const std::string& ref) {
  // Tagged manifests with their config digests (image IDs), for ID lookups.
  auto tagged = [&] {
    std::map<base::Digest, base::Digest> by_config;  // image ID -> manifest
    for (const auto& rec : list_all()) {
      try {
        auto m = base::Json::parse(store_.blobs().read(rec.manifest_digest));
        by_config.emplace(base::Digest::parse(m.at("config").at("digest").get<std::string>()), rec.manifest_digest);
      } catch (const std::exception&) {
        // a broken record is not this lookup's business; load() reports it when named
      }
    }
    return by_config;
  };
  // An index digest recorded at pull time stands for the manifest it selected.
  auto recorded_index = [&](const base::Digest& d) -> std::optional<base::Digest> {
    auto rows = store_.db().query("SELECT manifest FROM image_indexes WHERE digest = ?1", {d.str()});
    if (rows.empty() || !rows[0][0] || !base::Digest::valid(*rows[0][0])) return std::nullopt;
    auto m = base::Digest::parse(*rows[0][0]);
    if (!store_.blobs().has(m)) return std::nullopt;
    return m;
  };
  auto load_manifest = [&](const base::Digest& d) -> std::optional<Image> {
    if (auto m = recorded_index(d)) return load(*m);
    if (!store_.blobs().has(d)) return std::nullopt;
    return load(d);
  };

  if (base::Digest::valid(ref)) {
    auto d = base::Digest::parse(ref);
    if (auto m = recorded_index(d)) return load(*m);
    auto ids = tagged();
    if (auto it = ids.find(d); it != ids.end()) return load(it->second);
    if (!store_.db().query("SELECT name FROM images WHERE digest = ?1 LIMIT 1", {d.str()}).empty()) return load(d);
    if (!store_.blobs().has(d)) return std::nullopt;
    try {
      return load(d);
    } catch (const base::Error&) {
      return std::nullopt;  // some other blob (a layer, a config of an untagged image)
    }
  }

  // A name first, then an ID prefix, as Docker looks them up.
  std::optional<std::string> norm;
  try {
    norm = normalize_ref(ref);
  } catch (const base::Error&) {
  }
  if (norm) {
    if (auto at = norm->find('@'); at != std::string::npos) return load_manifest(base::Digest::parse(norm->substr(at + 1)));
    auto rows = store_.db().query("SELECT digest FROM images WHERE name = ?1", {*norm});
    if (!rows.empty() && rows[0][0]) return load(base::Digest::parse(*rows[0][0]));
  }

  std::string_view prefix = ref;
  if (prefix.rfind("sha256:", 0) == 0) prefix.remove_prefix(7);
  if (prefix.size() < 4 || prefix.size() > 64 || !is_hex(prefix)) return std::nullopt;
  std::vector<base::Digest> matches;
  for (const auto& [id, manifest] : tagged())
    if (id.hex().substr(0, prefix.size()) == prefix) matches.push_back(manifest);
  if (matches.empty()) return std::nullopt;
  if (matches.size() > 1) throw base::Error("image ID prefix `" + std::string(prefix) + "` is ambiguous");
  return load(matches[0]);
}

}  // namespace builder::image
