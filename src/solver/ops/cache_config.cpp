// solver/ops/cache_config.cpp — encoding and decoding of the remote cache's config,
// manifest and inline form (see cache_config.h).
#include "solver/ops/cache_config.h"

#include <ctime>
#include <map>
#include <set>
#include <tuple>

#include "base/error.h"
#include "base/time.h"

namespace builder::ops {

namespace {

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding: how Go's encoding/json writes a []byte.
std::string base64_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += kB64[(v >> s) & 63];
  }
  if (size_t rest = in.size() - i) {
    uint32_t v = uint8_t(in[i]) << 16;
    if (rest == 2) v |= uint8_t(in[i + 1]) << 8;
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += rest == 2 ? kB64[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string base64_decode(std::string_view in) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    int v = val(c);
    if (v < 0) throw base::Error("malformed base64 in the inline cache");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

base::Digest digest_field(const base::Json& j, const char* what) {
  if (!j.is_string()) throw base::Error(std::string("malformed cache config: ") + what + " is not a digest");
  return base::Digest::parse(j.get<std::string>());
}

int int_field(const base::Json& j, const char* key, int dflt) {
  if (!j.contains(key)) return dflt;
  const auto& v = j[key];
  if (!v.is_number_integer()) throw base::Error(std::string("malformed cache config: `") + key + "` is not an integer");
  return v.get<int>();
}

std::string time_str(int64_t t) { return t > 0 ? base::rfc3339(static_cast<std::time_t>(t)) : std::string(); }

base::Json descriptor_json(const image::Descriptor& d) {
  return {{"mediaType", d.media_type}, {"digest", d.digest.str()}, {"size", d.size}};
}

image::Descriptor parse_descriptor(const base::Json& j) {
  if (!j.is_object() || !j.contains("digest")) throw base::Error("malformed cache manifest: a descriptor has no digest");
  image::Descriptor d;
  d.digest = digest_field(j["digest"], "a descriptor's digest");
  d.media_type = j.value("mediaType", std::string());
  if (j.contains("size")) {
    if (!j["size"].is_number_unsigned()) throw base::Error("malformed cache manifest: a descriptor's size");
    d.size = j["size"].get<uint64_t>();
  }
  return d;
}

base::Json parse_json(std::string_view bytes, const char* what) {
  auto j = base::Json::parse(bytes, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw base::Error(std::string("malformed ") + what + ": not a JSON object");
  return j;
}

}  // namespace

std::vector<int> CacheConfig::chain(int top) const {
  std::vector<int> out;
  for (int i = top; i != -1; i = layers[static_cast<size_t>(i)].parent) {
    if (i < 0 || static_cast<size_t>(i) >= layers.size())
      throw base::Error("malformed cache config: layer index " + std::to_string(i) + " out of range");
    if (out.size() >= layers.size()) throw base::Error("malformed cache config: a layer is its own ancestor");
    out.push_back(i);
  }
  return {out.rbegin(), out.rend()};
}

int CacheConfig::add_chain(const std::vector<CacheLayer>& chain) {
  int parent = -1;
  for (const auto& l : chain) {
    int found = -1;
    for (size_t i = 0; i < layers.size() && found < 0; ++i)
      if (layers[i].blob.digest == l.blob.digest && layers[i].parent == parent) found = static_cast<int>(i);
    if (found < 0) {
      CacheLayer copy = l;
      copy.parent = parent;
      layers.push_back(copy);
      found = static_cast<int>(layers.size() - 1);
    }
    parent = found;
  }
  return parent;
}

const CacheRecord* CacheConfig::find(std::string_view key) const {
  for (const auto& r : records)
    if (r.key == key) return &r;
  return nullptr;
}

std::string CacheConfig::encode() const {
  base::Json j = base::Json::object();
  base::Json ls = base::Json::array();
  for (const auto& l : layers) {
    base::Json a = {{"mediaType", l.blob.media_type}, {"diffID", l.diff_id.str()}, {"size", l.blob.size}};
    a["createdAt"] = time_str(l.created);
    ls.push_back({{"blob", l.blob.digest.str()}, {"parent", l.parent}, {"annotations", a}});
  }
  j["layers"] = ls;
  base::Json rs = base::Json::array();
  for (const auto& r : records) {
    base::Json rec = {{"digest", r.key}};
    if (r.layer >= 0) {
      std::string created = time_str(layers.at(static_cast<size_t>(r.layer)).created);
      rec["layers"] = base::Json::array({{{"layer", r.layer}, {"createdAt", created}}});
    }
    rs.push_back(rec);
  }
  j["records"] = rs;
  if (!mounts.empty()) {
    base::Json ms = base::Json::array();
    for (const auto& m : mounts) ms.push_back({{"id", m.id}, {"layer", m.layer}});
    j[kCacheMountsField] = ms;
  }
  return j.dump();
}

CacheConfig CacheConfig::decode(std::string_view json, const std::vector<std::pair<image::Descriptor, base::Json>>& descs) {
  base::Json j = parse_json(json, "cache config");
  CacheConfig c;
  const base::Json empty = base::Json::array();
  const base::Json& ls = j.contains("layers") ? j["layers"] : empty;
  if (!ls.is_array()) throw base::Error("malformed cache config: `layers` is not an array");
  for (const auto& l : ls) {
    if (!l.is_object()) throw base::Error("malformed cache config: a layer is not an object");
    CacheLayer layer;
    layer.blob.digest = digest_field(l.value("blob", base::Json()), "a layer's blob");
    // BuildKit omits a parent of 0 (Go's omitempty) and writes -1 for none.
    layer.parent = int_field(l, "parent", 0);
    base::Json a = l.contains("annotations") && l["annotations"].is_object() ? l["annotations"] : base::Json::object();
    for (const auto& [d, ann] : descs) {
      if (d.digest != layer.blob.digest) continue;
      if (!a.contains("mediaType")) a["mediaType"] = d.media_type;
      if (!a.contains("size")) a["size"] = d.size;
      if (!a.contains("diffID") && ann.contains(kAnnotationUncompressed)) a["diffID"] = ann[kAnnotationUncompressed];
      if (!a.contains("createdAt") && ann.contains(kAnnotationCreatedAt)) a["createdAt"] = ann[kAnnotationCreatedAt];
    }
    if (!a.contains("diffID"))
      throw base::Error("malformed cache config: layer " + layer.blob.digest.str() + " has no diff id");
    layer.diff_id = digest_field(a["diffID"], "a layer's diffID");
    layer.blob.media_type = a.value("mediaType", std::string(image::kMediaTypeLayerGzip));
    if (!a.contains("size") || !a["size"].is_number_unsigned())
      throw base::Error("malformed cache config: layer " + layer.blob.digest.str() + " has no size");
    layer.blob.size = a["size"].get<uint64_t>();
    if (a.contains("createdAt") && a["createdAt"].is_string())
      layer.created = base::parse_rfc3339(a["createdAt"].get<std::string>());
    c.layers.push_back(layer);
  }
  for (size_t i = 0; i < c.layers.size(); ++i) c.chain(static_cast<int>(i));  // ranges and cycles
  const base::Json& rs = j.contains("records") ? j["records"] : empty;
  if (!rs.is_array()) throw base::Error("malformed cache config: `records` is not an array");
  for (const auto& r : rs) {
    if (!r.is_object() || !r.contains("digest") || !r["digest"].is_string())
      throw base::Error("malformed cache config: a record has no digest");
    CacheRecord rec;
    rec.key = r["digest"].get<std::string>();
    // A record without layers is a link in BuildKit's key chains; ours carry their
    // inputs in the key itself, so only records with a result matter.
    if (!r.contains("layers") || !r["layers"].is_array() || r["layers"].empty()) continue;
    const auto& first = r["layers"][0];
    if (!first.is_object()) throw base::Error("malformed cache config: a record's layer is not an object");
    rec.layer = int_field(first, "layer", 0);
    c.chain(rec.layer);
    c.records.push_back(rec);
  }
  if (j.contains(kCacheMountsField)) {
    const auto& ms = j[kCacheMountsField];
    if (!ms.is_array()) throw base::Error(std::string("malformed cache config: `") + kCacheMountsField + "`");
    for (const auto& m : ms) {
      if (!m.is_object() || !m.contains("id") || !m["id"].is_string())
        throw base::Error("malformed cache config: a cache mount has no id");
      CacheMountRecord rec{m["id"].get<std::string>(), int_field(m, "layer", -1)};
      c.chain(rec.layer);
      c.mounts.push_back(rec);
    }
  }
  return c;
}

std::string CacheConfig::manifest(const std::string& config_blob) const {
  base::Json j;
  j["schemaVersion"] = 2;
  j["mediaType"] = image::kMediaTypeManifest;
  j["config"] = descriptor_json(
      image::Descriptor{kMediaTypeCacheConfig, base::Digest::of(config_blob), static_cast<uint64_t>(config_blob.size())});
  base::Json ls = base::Json::array();
  std::set<base::Digest> seen;
  for (const auto& l : layers) {
    if (!seen.insert(l.blob.digest).second) continue;
    base::Json d = descriptor_json(l.blob);
    d["annotations"] = {{kAnnotationUncompressed, l.diff_id.str()}};
    if (l.created > 0) d["annotations"][kAnnotationCreatedAt] = time_str(l.created);
    ls.push_back(d);
  }
  j["layers"] = ls;
  return j.dump();
}

std::optional<std::string> encode_inline(const CacheConfig& config, const std::vector<base::Digest>& diff_ids) {
  base::Json rs = base::Json::array();
  std::set<std::string> keys;
  for (const auto& r : config.records) {
    if (r.layer < 0 || keys.count(r.key)) continue;
    auto chain = config.chain(r.layer);
    if (chain.size() > diff_ids.size()) continue;
    bool prefix = true;
    for (size_t k = 0; k < chain.size() && prefix; ++k)
      prefix = config.layers[static_cast<size_t>(chain[k])].diff_id == diff_ids[k];
    if (!prefix) continue;
    keys.insert(r.key);
    rs.push_back({{"digest", r.key}, {"layers", base::Json::array({{{"layer", chain.size() - 1}}})}});
  }
  if (rs.empty()) return std::nullopt;
  return base64_encode(rs.dump());
}

std::optional<CacheConfig> decode_inline(const image::Image& img) {
  if (!img.config.is_object() || !img.config.contains(kInlineCacheField)) return std::nullopt;
  const auto& v = img.config[kInlineCacheField];
  if (!v.is_string()) throw base::Error("malformed inline cache: not a base64 string");
  auto records = base::Json::parse(base64_decode(v.get<std::string>()), nullptr, false);
  if (!records.is_array()) throw base::Error("malformed inline cache: not a JSON array of records");
  if (img.diff_ids.size() != img.layers.size())
    throw base::Error("malformed image: " + std::to_string(img.layers.size()) + " layers but " +
                      std::to_string(img.diff_ids.size()) + " diff ids");
  // Creation times come from the history entries that claim a layer, in order.
  std::vector<int64_t> created;
  if (img.config.contains("history") && img.config["history"].is_array())
    for (const auto& h : img.config["history"])
      if (h.is_object() && !h.value("empty_layer", false))
        created.push_back(h.contains("created") && h["created"].is_string()
                              ? base::parse_rfc3339(h["created"].get<std::string>())
                              : 0);
  base::Json layers = base::Json::array();
  for (size_t i = 0; i < img.layers.size(); ++i) {
    base::Json a = {{"mediaType", img.layers[i].media_type},
                    {"diffID", img.diff_ids[i].str()},
                    {"size", img.layers[i].size},
                    {"createdAt", time_str(i < created.size() ? created[i] : 0)}};
    layers.push_back({{"blob", img.layers[i].digest.str()}, {"parent", static_cast<int>(i) - 1}, {"annotations", a}});
  }
  base::Json j = {{"layers", layers}, {"records", records}};
  return CacheConfig::decode(j.dump());
}

std::optional<CacheConfig> config_from_manifest(const std::string& /*media_type*/, const std::string& bytes,
                                                const ManifestReader& read) {
  // What the JSON says it is decides, not the Content-Type a registry sent.
  base::Json j = parse_json(bytes, "cache manifest");
  auto read_config = [&](const image::Descriptor& d) {
    if (d.size > kMaxCacheConfigSize) throw base::Error("cache config " + d.digest.str() + " is too large");
    return read.blob(d);
  };
  if (j.contains("manifests")) {
    if (!j["manifests"].is_array()) throw base::Error("malformed cache index: `manifests` is not an array");
    std::vector<std::pair<image::Descriptor, base::Json>> descs;
    std::optional<image::Descriptor> config, platform_image;
    for (const auto& m : j["manifests"]) {
      image::Descriptor d = parse_descriptor(m);
      if (d.media_type == kMediaTypeCacheConfig) config = d;
      descs.emplace_back(d, m.value("annotations", base::Json::object()));
      const auto p = m.value("platform", base::Json::object());
      if (!platform_image && p.value("os", "") == "linux" && p.value("architecture", "") == "amd64") platform_image = d;
    }
    if (config) return CacheConfig::decode(read_config(*config), descs);
    if (platform_image && read.manifest) {
      auto [t, b] = read.manifest(*platform_image);
      return config_from_manifest(t, b, read);
    }
    return std::nullopt;
  }
  if (!j.contains("config")) throw base::Error("malformed cache manifest: neither an index nor a manifest");
  image::Descriptor cfg = parse_descriptor(j["config"]);
  std::vector<std::pair<image::Descriptor, base::Json>> descs;
  std::vector<image::Descriptor> layers;
  if (j.contains("layers")) {
    if (!j["layers"].is_array()) throw base::Error("malformed cache manifest: `layers` is not an array");
    for (const auto& l : j["layers"]) {
      layers.push_back(parse_descriptor(l));
      descs.emplace_back(layers.back(), l.value("annotations", base::Json::object()));
    }
  }
  if (cfg.media_type == kMediaTypeCacheConfig) return CacheConfig::decode(read_config(cfg), descs);
  // An image: its config may carry an inline cache.
  image::Image img;
  img.config = parse_json(read_config(cfg), "image config");
  img.layers = layers;
  if (img.config.contains("rootfs") && img.config["rootfs"].is_object() &&
      img.config["rootfs"].contains("diff_ids") && img.config["rootfs"]["diff_ids"].is_array())
    for (const auto& d : img.config["rootfs"]["diff_ids"]) img.diff_ids.push_back(digest_field(d, "a diff id"));
  return decode_inline(img);
}

}  // namespace builder::ops
