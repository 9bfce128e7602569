// Image archives: `save` as an OCI layout tar or a docker-save tar (both the OCI layout
// plus manifest.json, as Docker 25+ and BuildKit write them), `load` of
// either (including the legacy docker layout with <id>/layer.tar), and `import` of a
// rootfs tar.
#include "image/archive.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#include <map>
#include <set>

#include "base/error.h"
#include "base/time.h"
#include "base/fd.h"
#include "base/fs.h"
#include "base/strings.h"
#include "image/export.h"
#include "image/tar_io.h"

namespace builder::image {

using detail::check_archive;

namespace {

constexpr const char* kAnnotationRefName = "org.opencontainers.image.ref.name";
constexpr const char* kAnnotationImageName = "io.containerd.image.name";
/// Non-blob files of an archive (manifest.json, index.json, legacy <id>/json) are read
/// into memory; anything larger than this is not such a file.
constexpr size_t kMaxMetadataSize = 64u << 20;

// ---------------------------------------------------------------- writing

/// One archive entry per reference, named by it when it is one of the image's tags
/// (not when saved by ID or digest).
std::vector<NamedImage> resolve_all(ImageStore& images, const std::vector<std::string>& refs) {
  if (refs.empty()) throw base::Error("no images to save");
  std::vector<NamedImage> out;
  for (const auto& ref : refs) {
    auto img = images.resolve(ref);
    if (!img) throw base::Error("no such image: " + ref);
    NamedImage ni{std::move(*img), {}};
    try {
      std::string norm = normalize_ref(ref);
      auto names = images.names_of(ni.image.manifest_digest);
      if (norm.find('@') == std::string::npos && std::find(names.begin(), names.end(), norm) != names.end())
        ni.names.push_back(norm);
    } catch (const base::Error&) {
    }
    out.push_back(std::move(ni));
  }
  return out;
}

}  // namespace

// Both archives are an OCI image layout with a docker manifest.json beside it, as
// containerd's and BuildKit's exporters write them, so `docker load` (any version)
// reads the OCI one too; the docker one adds the legacy `repositories` file.
void save_oci_archive(ImageStore& images, const std::vector<std::string>& refs, const std::string& out_path) {
  write_image_archive(images, resolve_all(images, refs), ArchiveFormat::Oci, out_path);
}

void save_docker_archive(ImageStore& images, const std::vector<std::string>& refs, const std::string& out_path) {
  write_image_archive(images, resolve_all(images, refs), ArchiveFormat::Docker, out_path);
}

// ---------------------------------------------------------------- loading

namespace {

std::string parent_of(const std::string& p) {
  auto s = p.rfind('/');
  return s == std::string::npos ? "" : p.substr(0, s);
}

/// The archive path a relative symlink at `name` points to; refuses one leaving it.
std::string resolve_link(const std::string& name, const std::string& target) {
  std::vector<std::string> parts;
  for (auto& p : base::split(parent_of(name) + "/" + target, '/')) {
    if (p.empty() || p == ".") continue;
    if (p == "..") {
      if (parts.empty()) throw base::Error("refusing archive entry `" + name + "`: link to `" + target + "` leaves the archive");
      parts.pop_back();
      continue;
    }
    parts.push_back(std::move(p));
  }
  return base::join(parts, "/");
}

/// What an archive held, by path.
struct ArchiveContents {
  std::map<std::string, Descriptor> blobs;   // streamed into the blob store
  std::map<std::string, std::string> small;  // metadata files kept in memory
  std::map<std::string, std::string> links;  // symlink / hard link -> target path

  std::string follow(std::string p) const {
    for (int i = 0; i < 16; ++i) {
      auto it = links.find(p);
      if (it == links.end()) return p;
      p = it->second;
    }
    throw base::Error("archive entry `" + p + "`: too many levels of links");
  }
};

bool is_metadata_name(const std::string& p) {
  static const std::set<std::string> top = {"manifest.json", "index.json", "oci-layout", "repositories"};
  if (top.count(p)) return true;
  auto base = p.substr(p.rfind('/') + 1);
  // legacy layout: <id>.json configs, <id>/json, <id>/VERSION
  return base == "json" || base == "VERSION" ||
         (p.find('/') == std::string::npos && p.size() > 5 && p.substr(p.size() - 5) == ".json");
}

ArchiveContents read_archive(cache::BlobStore& blobs, const std::string& path) {
  detail::Utf8Locale locale;
  base::Fd fd = base::open_fd(path, O_RDONLY);
  detail::ArchiveReader a(archive_read_new());
  archive_read_support_format_tar(a.get());
  archive_read_support_filter_gzip(a.get());  // `docker save | gzip`
  check_archive(a.get(), archive_read_open_fd(a.get(), fd.get(), 256 * 1024), "reading `" + path + "`");

  ArchiveContents c;
  std::vector<char> buf(256 * 1024);
  for (;;) {
    struct archive_entry* e = nullptr;
    int rc = archive_read_next_header(a.get(), &e);
    if (rc == ARCHIVE_EOF) break;
    check_archive(a.get(), rc, "reading `" + path + "`");
    std::string name = detail::clean_entry_path(detail::entry_path(e));
    std::string hardlink = detail::entry_hardlink(e);
    auto type = archive_entry_filetype(e);
    if (!hardlink.empty()) {
      c.links[name] = detail::clean_entry_path(hardlink);
      continue;
    }
    if (type == AE_IFLNK) {
      const char* t = archive_entry_symlink(e);
      std::string target = t ? t : "";
      if (target.empty() || target.front() == '/')
        throw base::Error("refusing archive entry `" + name + "`: link to `" + target + "`");
      c.links[name] = resolve_link(name, target);
      continue;
    }
    if (type != AE_IFREG || name.empty()) continue;

    auto read_into = [&](auto&& sink) {
      for (;;) {
        la_ssize_t n = archive_read_data(a.get(), buf.data(), buf.size());
        if (n < 0) check_archive(a.get(), static_cast<int>(n), "reading `" + name + "` in `" + path + "`");
        if (n <= 0) return;
        sink(buf.data(), static_cast<size_t>(n));
      }
    };

    if (name.rfind("blobs/", 0) == 0 || !is_metadata_name(name)) {
      std::optional<base::Digest> expected;
      if (name.rfind("blobs/", 0) == 0) {
        if (name.rfind("blobs/sha256/", 0) != 0) throw base::Error("archive blob `" + name + "`: only sha256 is supported");
        expected = base::Digest::from_hex(name.substr(13));
      }
      auto w = blobs.ingest();
      read_into([&](const char* p, size_t n) { w.write(p, n); });
      Descriptor d;
      d.size = w.size();
      try {
        d.digest = w.commit(expected);
      } catch (base::Error& err) {
        throw err.add_context("while loading `" + name + "` from `" + path + "`");
      }
      c.blobs[name] = d;
    } else {
      if (archive_entry_size(e) > static_cast<la_int64_t>(kMaxMetadataSize))
        throw base::Error("archive entry `" + name + "` is too large");
      std::string data;
      read_into([&](const char* p, size_t n) { data.append(p, n); });
      c.small[name] = std::move(data);
    }
  }
  return c;
}

base::Json parse_json(const std::string& text, const std::string& what) {
  try {
    return base::Json::parse(text);
  } catch (const std::exception& e) {
    throw base::Error(what + " is not valid JSON: " + e.what());
  }
}

std::string sniff_layer_media_type(cache::BlobStore& blobs, const base::Digest& d) {
  base::Fd fd = blobs.open(d);
  unsigned char m[4] = {};
  ssize_t n = ::read(fd.get(), m, sizeof m);
  if (n >= 2 && m[0] == 0x1f && m[1] == 0x8b) return kMediaTypeLayerGzip;
  if (n >= 4 && m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd) return kMediaTypeLayerTarZstd;
  return kMediaTypeLayerTar;
}

/// A file of the archive as a blob in the store (metadata files are put on demand).
Descriptor archive_blob(cache::BlobStore& blobs, const ArchiveContents& c, const std::string& ref) {
  std::string p = c.follow(detail::clean_entry_path(ref));
  if (auto it = c.blobs.find(p); it != c.blobs.end()) return it->second;
  if (auto it = c.small.find(p); it != c.small.end()) {
    Descriptor d{"", blobs.put(it->second), it->second.size()};
    // A legacy config is named after its digest (the image ID): hold it to that.
    std::string base = p.substr(p.rfind('/') + 1);
    if (base.size() == 69 && base.substr(64) == ".json" && d.digest.hex() != base.substr(0, 64))
      throw base::Error("archive entry `" + p + "` does not match its digest");
    return d;
  }
  throw base::Error("archive has no `" + p + "`");
}

using Loaded = std::vector<std::pair<std::vector<std::string>, base::Digest>>;  // names, manifest

Loaded load_docker(ImageStore& images, const ArchiveContents& c) {
  auto& blobs = images.store().blobs();
  auto manifest = parse_json(c.small.at("manifest.json"), "manifest.json");
  if (!manifest.is_array()) throw base::Error("manifest.json is not a list");
  Loaded out;
  for (const auto& item : manifest) {
    if (!item.is_object() || !item.contains("Config") || !item["Config"].is_string() || !item.contains("Layers") ||
        !item["Layers"].is_array())
      throw base::Error("manifest.json: entry without Config or Layers");
    Descriptor config = archive_blob(blobs, c, item["Config"].get<std::string>());
    config.media_type = kMediaTypeConfig;
    std::vector<Descriptor> layers;
    for (const auto& l : item["Layers"]) {
      if (!l.is_string()) throw base::Error("manifest.json: bad layer path");
      Descriptor d = archive_blob(blobs, c, l.get<std::string>());
      d.media_type = sniff_layer_media_type(blobs, d.digest);
      layers.push_back(d);
    }
    base::Digest m = images.write_manifest(config, layers);
    images.load(m);  // layer count against diff ids, config shape
    std::vector<std::string> names;
    if (item.contains("RepoTags") && item["RepoTags"].is_array())
      for (const auto& t : item["RepoTags"])
        if (t.is_string()) names.push_back(normalize_ref(t.get<std::string>()));
    out.emplace_back(std::move(names), m);
  }
  return out;
}

/// The image manifest behind an index entry: itself, or for a nested index the entry
/// for this host's platform (else the first).
base::Digest pick_manifest(cache::BlobStore& blobs, const base::Json& desc, int depth = 0) {
  auto d = base::Digest::parse(desc.at("digest").get<std::string>());
  std::string media = desc.value("mediaType", "");
  if (media != kMediaTypeIndex && media != "application/vnd.docker.distribution.manifest.list.v2+json") return d;
  if (depth > 4) throw base::Error("index " + d.str() + " nests too deep");
  if (!blobs.has(d)) throw base::Error("archive lacks index " + d.str());
  auto index = parse_json(blobs.read(d), "index " + d.str());
  const auto& list = index.at("manifests");
  if (!list.is_array() || list.empty()) throw base::Error("index " + d.str() + " lists no manifests");
#if defined(__aarch64__)
  const char* arch = "arm64";
#else
  const char* arch = "amd64";
#endif
  for (const auto& m : list) {
    if (m.contains("platform") && m["platform"].value("os", "") == "linux" &&
        m["platform"].value("architecture", "") == arch)
      return pick_manifest(blobs, m, depth + 1);
  }
  return pick_manifest(blobs, list[0], depth + 1);
}

Loaded load_oci(ImageStore& images, const ArchiveContents& c) {
  auto& blobs = images.store().blobs();
  auto layout = parse_json(c.small.at("oci-layout"), "oci-layout");
  if (layout.value("imageLayoutVersion", "").rfind("1.", 0) != 0)
    throw base::Error("oci-layout: unsupported imageLayoutVersion");
  auto index = parse_json(c.small.at("index.json"), "index.json");
  if (!index.is_object() || !index.contains("manifests") || !index["manifests"].is_array())
    throw base::Error("index.json lists no manifests");
  Loaded out;
  for (const auto& desc : index["manifests"]) {
    base::Digest m = pick_manifest(blobs, desc);
    if (!blobs.has(m)) throw base::Error("archive lacks manifest " + m.str());
    Image img = images.load(m);
    for (const auto& l : img.layers)
      if (!blobs.has(l.digest)) throw base::Error("archive lacks layer " + l.digest.str() + " of manifest " + m.str());
    std::vector<std::string> names;
    if (desc.contains("annotations") && desc["annotations"].is_object()) {
      const auto& ann = desc["annotations"];
      std::string full = ann.value(kAnnotationImageName, "");
      std::string ref = ann.value(kAnnotationRefName, "");
      // ref.name may be a whole reference (podman, skopeo with a name) or just a tag
      // (BuildKit, umoci), which names no repository: then the image stays unnamed.
      if (!full.empty())
        names.push_back(normalize_ref(full));
      else if (ref.find_first_of(":/") != std::string::npos)
        names.push_back(normalize_ref(ref));
    }
    out.emplace_back(std::move(names), m);
  }
  return out;
}

}  // namespace

std::vector<std::string> load_archive(ImageStore& images, const std::string& path) {
  try {
    auto c = read_archive(images.store().blobs(), path);
    Loaded loaded;
    // The OCI index keeps the exact manifests (and so the digests); manifest.json is
    // for archives without one (docker before 25, legacy layouts).
    if (c.small.count("index.json") && c.small.count("oci-layout"))
      loaded = load_oci(images, c);
    else if (c.small.count("manifest.json"))
      loaded = load_docker(images, c);
    else
      throw base::Error("not an image archive: no manifest.json, nor index.json with oci-layout");

    // Every blob is in and verified; only now do names change, all at once.
    std::vector<std::string> result;
    images.store().db().transaction([&] {
      for (const auto& [names, manifest] : loaded) {
        for (const auto& n : names) images.tag(n, manifest);
        if (names.empty()) {
          images.add_image(manifest);  // kept as an untagged image, as docker load does
          result.push_back(images.load(manifest).config_digest.str());
        } else {
          result.insert(result.end(), names.begin(), names.end());
        }
      }
    });
    return result;
  } catch (base::Error& e) {
    throw e.add_context("while loading `" + path + "`");
  }
}

// ---------------------------------------------------------------- import

namespace {


const char* host_arch() {
#if defined(__x86_64__)
  return "amd64";
#elif defined(__aarch64__)
  return "arm64";
#elif defined(__arm__)
  return "arm";
#elif defined(__powerpc64__)
  return "ppc64le";
#elif defined(__s390x__)
  return "s390x";
#elif defined(__riscv)
  return "riscv64";
#else
  return "amd64";
#endif
}

/// `extra` (a runtime config: Env, Cmd, Entrypoint, ...) over `base`; Env merges by
/// variable name, every other key is replaced.
void merge_runtime_config(base::Json& cfg, const base::Json& extra) {
  if (!extra.is_object()) throw base::Error("import: config must be a JSON object");
  for (auto it = extra.begin(); it != extra.end(); ++it) {
    if (it.key() != "Env" || !it.value().is_array()) {
      cfg[it.key()] = it.value();
      continue;
    }
    auto& env = cfg["Env"];
    for (const auto& kv : it.value()) {
      std::string s = kv.get<std::string>();
      std::string key = s.substr(0, s.find('='));
      bool replaced = false;
      for (auto& old : env) {
        std::string o = old.get<std::string>();
        if (o.substr(0, o.find('=')) == key) {
          old = s;
          replaced = true;
        }
      }
      if (!replaced) env.push_back(s);
    }
  }
}

}  // namespace

std::string import_rootfs(ImageStore& images, const std::string& tar_path, const std::string& name,
                          const base::Json& config) {
  try {
    std::string norm = name.empty() ? "" : normalize_ref(name);  // refuse a bad name before the work
    base::Fd fd = base::open_fd(tar_path, O_RDONLY);
    LayerBlob layer = ingest_layer(fd.get(), images.store().blobs());

    base::Json runtime = base::Json::object();
    runtime["Env"] = base::Json::array({"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"});
    merge_runtime_config(runtime, config);

    std::string now = base::rfc3339_now();
    base::Json cfg = base::Json::object();
    cfg["created"] = now;
    cfg["architecture"] = host_arch();
    cfg["os"] = "linux";
    cfg["config"] = runtime;
    cfg["rootfs"] = {{"type", "layers"}, {"diff_ids", base::Json::array({layer.diff_id.str()})}};
    std::string base_name = tar_path.substr(tar_path.rfind('/') + 1);
    cfg["history"] = base::Json::array(
        {{{"created", now}, {"created_by", "builder import"}, {"comment", "Imported from " + base_name}}});

    base::Digest manifest = images.write_image(cfg, {layer});
    if (!norm.empty())
      images.tag(norm, manifest);
    else
      images.add_image(manifest);  // an untagged image, as docker import without a name
    return images.load(manifest).config_digest.str();
  } catch (base::Error& e) {
    throw e.add_context("while importing `" + tar_path + "`");
  }
}

}  // namespace builder::image
