// cli/build_contexts.cpp — --build-context values as buildx reads them: a path is a
// local directory; `docker-image://` an image reference the build's resolver finds
// (store or registry); `oci-layout://` a layout directory whose image is imported into
// the store (every blob verified) and then used by digest.
#include "build_contexts.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include "base/digest.h"
#include "base/error.h"
#include "base/fs.h"
#include "base/json.h"
#include "base/strings.h"
#include "cache/ignore_file.h"
#include "cache/store.h"
#include "image/layer.h"

namespace builder::cli {
namespace {

base::Json read_json(const std::string& path, const std::string& what) {
  if (!base::path_exists(path)) throw base::Error(what + ": " + path + " does not exist");
  base::Json j = base::Json::parse(base::read_file(path), nullptr, false);
  if (j.is_discarded()) throw base::Error(what + ": " + path + " is not valid JSON");
  return j;
}

/// Copies blob `d` of the layout into the store, verifying its bytes; `max` bounds
/// what is read for JSON documents.
void ingest_blob(cache::BlobStore& blobs, const std::string& dir, const base::Digest& d) {
  if (blobs.has(d)) return;
  std::string path = dir + "/blobs/sha256/" + std::string(d.hex());
  base::Fd fd = base::open_fd(path, O_RDONLY | O_NOFOLLOW);
  auto w = blobs.ingest();
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw base::SysError(errno, "read", path);
    if (n == 0) break;
    w.write(buf, static_cast<size_t>(n));
  }
  try {
    w.commit(d);
  } catch (const base::Error& e) {
    throw base::Error("blob " + path + " does not match its digest " + d.str());
  }
}

base::Digest digest_of(const base::Json& desc, const std::string& what) {
  if (!desc.is_object() || !desc.contains("digest") || !desc["digest"].is_string())
    throw base::Error(what + ": descriptor without a digest");
  return base::Digest::parse(desc["digest"].get<std::string>());
}

/// The image manifest a descriptor names: itself, or an index's linux/amd64 entry.
base::Digest pick_manifest(cache::BlobStore& blobs, const std::string& dir, const base::Digest& d, int depth = 0) {
  ingest_blob(blobs, dir, d);
  base::Json j = base::Json::parse(blobs.read(d), nullptr, false);
  if (!j.is_object()) throw base::Error("oci-layout " + dir + ": " + d.str() + " is not a JSON object");
  if (!j.contains("manifests")) return d;
  if (depth > 4) throw base::Error("oci-layout " + dir + ": indexes nest too deep");
  const auto& list = j["manifests"];
  if (!list.is_array() || list.empty()) throw base::Error("oci-layout " + dir + ": index " + d.str() + " is empty");
  for (const auto& m : list)
    if (m.contains("platform") && m["platform"].value("os", "") == "linux" &&
        m["platform"].value("architecture", "") == "amd64")
      return pick_manifest(blobs, dir, digest_of(m, "oci-layout " + dir), depth + 1);
  return pick_manifest(blobs, dir, digest_of(list[0], "oci-layout " + dir), depth + 1);
}

}  // namespace

base::Digest import_oci_layout(image::ImageStore& images, const std::string& dir, const std::string& tag,
                               const std::string& digest) {
  const std::string what = "oci-layout " + dir;
  base::Json layout = read_json(dir + "/oci-layout", what);
  if (!layout.is_object() || layout.value("imageLayoutVersion", "").rfind("1.", 0) != 0)
    throw base::Error(what + ": unsupported or missing imageLayoutVersion");
  base::Json index = read_json(dir + "/index.json", what);
  if (!index.is_object() || !index.contains("manifests") || !index["manifests"].is_array())
    throw base::Error(what + ": index.json lists no manifests");
  auto& blobs = images.store().blobs();
  base::Digest chosen;
  if (!digest.empty()) {
    chosen = base::Digest::parse(digest);
  } else {
    const std::string want = tag.empty() ? "latest" : tag;
    std::vector<std::string> seen;
    for (const auto& m : index["manifests"]) {
      std::string name;
      if (m.contains("annotations") && m["annotations"].is_object())
        name = m["annotations"].value("org.opencontainers.image.ref.name", "");
      if (!name.empty()) seen.push_back(name);
      if (name == want) chosen = digest_of(m, what);
    }
    if (chosen.empty() && tag.empty() && index["manifests"].size() == 1)
      chosen = digest_of(index["manifests"][0], what);
    if (chosen.empty())
      throw base::Error(what + ": no image tagged \"" + want + "\"" +
                        (seen.empty() ? std::string() : " (tags: " + base::join(seen, ", ") + ")"));
  }
  base::Digest manifest = pick_manifest(blobs, dir, chosen);
  base::Json m = base::Json::parse(blobs.read(manifest), nullptr, false);
  if (!m.is_object() || !m.contains("config") || !m.contains("layers") || !m["layers"].is_array())
    throw base::Error(what + ": " + manifest.str() + " is not an image manifest");
  ingest_blob(blobs, dir, digest_of(m["config"], what));
  for (const auto& l : m["layers"]) ingest_blob(blobs, dir, digest_of(l, what));
  images.load(manifest);  // its config and layers agree
  images.add_image(manifest);
  return manifest;
}

BuildContexts prepare_build_contexts(const std::vector<std::string>& specs, image::ImageStore& images) {
  BuildContexts out;
  std::set<std::string> names;
  for (const auto& spec : specs) {
    auto eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size())
      throw base::Error("--build-context " + spec + ": expected NAME=VALUE");
    std::string name = spec.substr(0, eq), value = spec.substr(eq + 1);
    if (!names.insert(frontend::named_context_key(name)).second)
      throw base::Error("--build-context " + spec + ": context \"" + name + "\" is given twice");
    frontend::NamedContext nc;
    auto scheme_end = value.find("://");
    std::string scheme = scheme_end == std::string::npos ? "" : value.substr(0, scheme_end);
    if (scheme == "docker-image") {
      nc.kind = frontend::NamedContext::Kind::Image;
      nc.image_ref = value.substr(scheme_end + 3);
      if (nc.image_ref.empty()) throw base::Error("--build-context " + spec + ": docker-image:// needs a reference");
    } else if (scheme == "oci-layout") {
      std::string rest = value.substr(scheme_end + 3), digest, tag;
      auto at = rest.rfind('@');
      if (at != std::string::npos) {
        digest = rest.substr(at + 1);
        rest = rest.substr(0, at);
        if (!base::Digest::valid(digest))
          throw base::Error("--build-context " + spec + ": \"" + digest + "\" is not a sha256 digest");
      }
      auto colon = rest.rfind(':');
      if (colon != std::string::npos && rest.find('/', colon) == std::string::npos) {
        tag = rest.substr(colon + 1);
        rest = rest.substr(0, colon);
      }
      std::error_code ec;
      auto dir = std::filesystem::canonical(rest, ec);
      if (ec || !std::filesystem::is_directory(dir))
        throw base::Error("--build-context " + spec + ": " + rest + " is not a directory");
      try {
        nc.image_ref = import_oci_layout(images, dir.string(), tag, digest).str();
      } catch (const base::Error& e) {
        throw base::Error("--build-context " + name + ": " + e.message());
      }
      nc.kind = frontend::NamedContext::Kind::Image;
    } else if (!scheme.empty() || value.rfind("git@", 0) == 0) {
      throw base::Error("--build-context " + spec + ": unsupported context source \"" +
                        (scheme.empty() ? value : scheme + "://") +
                        "\" (a directory, docker-image://REF or oci-layout://PATH)");
    } else {
      std::error_code ec;
      auto dir = std::filesystem::canonical(value, ec);
      if (ec || !std::filesystem::is_directory(dir))
        throw base::Error("--build-context " + spec + ": " + value + " is not a directory");
      nc.kind = frontend::NamedContext::Kind::Local;
      nc.local_name = "context:" + name;
      std::string ignore = dir.string() + "/.dockerignore";
      if (base::path_exists(ignore)) nc.excludes = cache::parse_ignore_file(base::read_file(ignore));
      out.locals[nc.local_name] = dir.string();
    }
    out.named[name] = std::move(nc);
  }
  return out;
}

}  // namespace builder::cli
