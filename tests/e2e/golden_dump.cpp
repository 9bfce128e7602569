// tests/e2e/golden_dump.cpp — prints an image archive as deterministic text, so an image
// built by Docker's BuildKit and one built by builder can be compared line by line
// (scripts/make-goldens writes testdata/golden/<case>/expected.txt with it; golden_test
// compares). Reads `docker save` archives and OCI layout archives, on its own: it must not
// share builder's image code, whose output it checks.
//
//   golden_dump [--base ARCHIVE]... ARCHIVE
//
// Output (format v1):
//   config: <key> <json>         image config fields that do not depend on time or host;
//                                Env one line per element, Labels/ExposedPorts/Volumes one
//                                per key; null, "", 0, false, [] and {} count as absent
//   history[i]: created_by=<json> [author=<json>] [comment=<json>] [empty_layer=true]
//   layer[i]: base               a layer whose diff id is one of a --base image's
//   layer[i]:                    then one line per tar entry, in archive order:
//     <path> dir|file|symlink|hardlink|char|block|fifo <mode> <uid>:<gid>
//            [<size> sha256:<hex>] [-> symlink target] [=> hard link target] [<maj>,<min>]
//     <path> whiteout | <dir> opaque      (.wh.<name> and .wh..wh..opq entries)
//       xattr <name>=<escaped value>      sorted by name
//       mtime <seconds>                   only when before kMtimeCutoff: such a time can
//                                         only come from the inputs (base image, context,
//                                         archives, touch -d), never from the build clock
// Paths are relative ("." is the root); bytes outside printable ASCII, space and '\'
// are written \xNN. Exit 1 with a message on stderr for an unreadable archive or a layer
// whose content does not hash to its diff id.
#include <archive.h>
#include <archive_entry.h>
#include <locale.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "base/digest.h"
#include "base/json.h"

namespace {

using Json = builder::base::Json;
using SortedJson = nlohmann::json;

/// 2015-01-01T00:00:00Z. Every golden build runs later than this, so an older mtime was
/// not written by the build clock and both engines must agree on it.
constexpr long long kMtimeCutoff = 1420070400;

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct ReadFree {
  void operator()(struct archive* a) const { archive_read_free(a); }
};
using Reader = std::unique_ptr<struct archive, ReadFree>;

void check(struct archive* a, int rc, const std::string& what) {
  if (rc < ARCHIVE_WARN) throw Failure(what + ": " + (archive_error_string(a) ? archive_error_string(a) : "error"));
}

std::string read_data(struct archive* a, const std::string& what) {
  std::string data;
  char buf[1 << 16];
  for (;;) {
    la_ssize_t n = archive_read_data(a, buf, sizeof buf);
    if (n < 0) check(a, static_cast<int>(n), what);
    if (n <= 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  return data;
}

/// Relative path without "./", leading or trailing '/'; "." for the root.
std::string clean(std::string p) {
  for (;;) {
    if (p.rfind("./", 0) == 0) p.erase(0, 2);
    else if (!p.empty() && p[0] == '/') p.erase(0, 1);
    else break;
  }
  while (!p.empty() && p.back() == '/') p.pop_back();
  return p.empty() || p == "." ? "." : p;
}

std::string escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c > 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      out += b;
    }
  }
  return out;
}

/// Every file of the outer archive (docker save or OCI layout, optionally compressed).
std::map<std::string, std::string> read_archive(const std::string& path) {
  Reader a(archive_read_new());
  archive_read_support_format_tar(a.get());
  archive_read_support_filter_all(a.get());
  check(a.get(), archive_read_open_filename(a.get(), path.c_str(), 1 << 16), "opening `" + path + "`");
  std::map<std::string, std::string> files;
  for (;;) {
    struct archive_entry* e = nullptr;
    int rc = archive_read_next_header(a.get(), &e);
    if (rc == ARCHIVE_EOF) break;
    check(a.get(), rc, "reading `" + path + "`");
    if (archive_entry_filetype(e) != AE_IFREG) continue;
    std::string name = clean(archive_entry_pathname(e));
    files[name] = read_data(a.get(), "reading `" + name + "` in `" + path + "`");
  }
  return files;
}

struct Image {
  Json config;
  std::vector<std::string> layers;  // the layer blobs as stored
};

Image find_image(const std::map<std::string, std::string>& files, const std::string& path) {
  auto get = [&](const std::string& name) -> const std::string& {
    auto it = files.find(name);
    if (it == files.end()) throw Failure("`" + path + "` has no `" + name + "`");
    return it->second;
  };
  auto blob = [&](const Json& desc) -> const std::string& {
    std::string digest = desc.at("digest").get<std::string>();
    if (digest.rfind("sha256:", 0) != 0) throw Failure("unsupported digest " + digest);
    return get("blobs/sha256/" + digest.substr(7));
  };
  Image img;
  if (files.count("index.json") && files.count("oci-layout")) {
    Json m = Json::parse(get("index.json")).at("manifests").at(0);
    Json manifest = Json::parse(blob(m));
    while (manifest.contains("manifests")) manifest = Json::parse(blob(manifest.at("manifests").at(0)));
    img.config = Json::parse(blob(manifest.at("config")));
    for (const auto& l : manifest.at("layers")) img.layers.push_back(blob(l));
  } else {
    Json m = Json::parse(get("manifest.json")).at(0);
    img.config = Json::parse(get(m.at("Config").get<std::string>()));
    for (const auto& l : m.at("Layers")) img.layers.push_back(get(clean(l.get<std::string>())));
  }
  return img;
}

/// The plain (decompressed) bytes of a layer blob.
std::string plain_layer(const std::string& blob) {
  Reader a(archive_read_new());
  archive_read_support_format_raw(a.get());
  archive_read_support_filter_all(a.get());
  check(a.get(), archive_read_open_memory(a.get(), blob.data(), blob.size()), "opening layer");
  struct archive_entry* e = nullptr;
  int rc = archive_read_next_header(a.get(), &e);
  if (rc == ARCHIVE_EOF) return {};
  check(a.get(), rc, "reading layer");
  return read_data(a.get(), "reading layer");
}

bool empty_value(const Json& v) {
  return v.is_null() || (v.is_boolean() && !v.get<bool>()) || (v.is_number() && v == 0) ||
         (v.is_string() && v.get<std::string>().empty()) || ((v.is_array() || v.is_object()) && v.empty());
}

/// `v` with empty members of objects dropped (recursively) and keys sorted.
SortedJson normalise(const Json& v) {
  if (v.is_object()) {
    SortedJson o = SortedJson::object();
    for (const auto& [k, x] : v.items())
      if (!empty_value(x)) o[k] = normalise(x);
    return o;
  }
  if (v.is_array()) {
    SortedJson a = SortedJson::array();
    for (const auto& x : v) a.push_back(normalise(x));
    return a;
  }
  return SortedJson::parse(v.dump());
}

void dump_config(const Json& cfg) {
  // Time- or host-dependent, or dumped elsewhere (history, rootfs via the layers).
  static const std::set<std::string> top_dropped = {
      "created", "container", "container_config", "docker_version",
      "history", "rootfs",    "config",           "moby.buildkit.buildinfo.v1"};
  // Fields of a container create request that a build never sets meaningfully.
  static const std::set<std::string> config_dropped = {
      "Hostname",  "Domainname", "AttachStdin", "AttachStdout",    "AttachStderr", "Tty",
      "OpenStdin", "StdinOnce",  "Image",       "NetworkDisabled", "MacAddress"};
  static const std::vector<std::string> top_order = {"architecture", "os",      "os.version",
                                                     "os.features",  "variant", "author"};
  static const std::vector<std::string> config_order = {
      "User",   "ExposedPorts", "Env",         "Entrypoint",  "Cmd",     "Volumes", "WorkingDir",
      "Labels", "StopSignal",   "ArgsEscaped", "Healthcheck", "OnBuild", "Shell"};
  auto ordered_keys = [](const Json& obj, const std::vector<std::string>& order, const std::set<std::string>& drop) {
    std::vector<std::string> keys;
    for (const auto& k : order)
      if (obj.contains(k)) keys.push_back(k);
    std::vector<std::string> rest;
    for (const auto& [k, v] : obj.items())
      if (!drop.count(k) && std::find(order.begin(), order.end(), k) == order.end()) rest.push_back(k);
    std::sort(rest.begin(), rest.end());
    keys.insert(keys.end(), rest.begin(), rest.end());
    return keys;
  };
  for (const auto& k : ordered_keys(cfg, top_order, top_dropped))
    if (!empty_value(cfg[k])) std::cout << "config: " << k << " " << normalise(cfg[k]).dump() << "\n";
  if (!cfg.contains("config") || !cfg["config"].is_object()) return;
  const Json& c = cfg["config"];
  for (const auto& k : ordered_keys(c, config_order, config_dropped)) {
    const Json& v = c[k];
    if (empty_value(v)) continue;
    if (k == "Env" && v.is_array()) {
      for (const auto& e : v) std::cout << "config: Env " << SortedJson(e).dump() << "\n";
    } else if (k == "Labels" && v.is_object()) {
      std::map<std::string, std::string> sorted;
      for (const auto& [lk, lv] : v.items()) sorted[lk] = lv.dump();
      for (const auto& [lk, lv] : sorted) std::cout << "config: Labels " << SortedJson(lk).dump() << "=" << lv << "\n";
    } else if ((k == "ExposedPorts" || k == "Volumes") && v.is_object()) {
      std::set<std::string> sorted;
      for (const auto& [pk, pv] : v.items()) sorted.insert(pk);
      for (const auto& pk : sorted) std::cout << "config: " << k << " " << SortedJson(pk).dump() << "\n";
    } else {
      std::cout << "config: " << k << " " << normalise(v).dump() << "\n";
    }
  }
}

/// Prints the history; returns how many entries have a layer.
size_t dump_history(const Json& cfg) {
  size_t with_layer = 0, i = 0;
  if (!cfg.contains("history")) return 0;
  for (const auto& h : cfg["history"]) {
    std::cout << "history[" << i++ << "]: created_by=" << SortedJson(h.value("created_by", "")).dump();
    for (const char* k : {"author", "comment"})
      if (h.contains(k) && !empty_value(h[k])) std::cout << " " << k << "=" << normalise(h[k]).dump();
    bool empty = h.value("empty_layer", false);
    if (empty) std::cout << " empty_layer=true";
    else ++with_layer;
    for (const auto& [k, v] : h.items())
      if (k != "created" && k != "created_by" && k != "author" && k != "comment" && k != "empty_layer" &&
          !empty_value(v))
        std::cout << " " << k << "=" << normalise(v).dump();
    std::cout << "\n";
  }
  return with_layer;
}

/// An xattr value: printable ASCII as is, other bytes \xNN.
std::string xattr_value(const void* data, size_t n) { return escape(std::string(static_cast<const char*>(data), n)); }

void dump_layer(const std::string& plain) {
  Reader a(archive_read_new());
  archive_read_support_format_tar(a.get());
  check(a.get(), archive_read_open_memory(a.get(), plain.data(), plain.size()), "opening layer tar");
  std::vector<std::string> lines;
  for (;;) {
    struct archive_entry* e = nullptr;
    int rc = archive_read_next_header(a.get(), &e);
    if (rc == ARCHIVE_EOF) break;
    check(a.get(), rc, "reading layer tar");
    std::string path = clean(archive_entry_pathname(e));
    size_t slash = path.rfind('/');
    std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
    std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
    if (base == ".wh..wh..opq") {
      lines.push_back("  " + escape(dir) + " opaque");
      continue;
    }
    if (base.rfind(".wh.", 0) == 0) {
      lines.push_back("  " + escape(dir == "." ? base.substr(4) : dir + "/" + base.substr(4)) + " whiteout");
      continue;
    }
    std::string line = "  " + escape(path) + " ";
    const char* hardlink = archive_entry_hardlink(e);
    mode_t type = archive_entry_filetype(e);
    if (hardlink) line += "hardlink";
    else if (type == AE_IFDIR) line += "dir";
    else if (type == AE_IFREG) line += "file";
    else if (type == AE_IFLNK) line += "symlink";
    else if (type == AE_IFCHR) line += "char";
    else if (type == AE_IFBLK) line += "block";
    else if (type == AE_IFIFO) line += "fifo";
    else line += "type?" + std::to_string(type);
    char mode[16];
    std::snprintf(mode, sizeof mode, " %04o", static_cast<unsigned>(archive_entry_mode(e) & 07777));
    line += mode;
    line += " " + std::to_string(archive_entry_uid(e)) + ":" + std::to_string(archive_entry_gid(e));
    if (hardlink) {
      line += " => " + escape(clean(hardlink));
    } else if (type == AE_IFREG) {
      builder::base::Sha256 h;
      std::string data = read_data(a.get(), "reading `" + path + "`");
      h.update(data);
      line += " " + std::to_string(data.size()) + " " + h.finish().str();
    } else if (type == AE_IFLNK) {
      line += " -> " + escape(archive_entry_symlink(e) ? archive_entry_symlink(e) : "");
    } else if (type == AE_IFCHR || type == AE_IFBLK) {
      line += " " + std::to_string(archive_entry_rdevmajor(e)) + "," + std::to_string(archive_entry_rdevminor(e));
    }
    lines.push_back(line);
    std::vector<std::string> xattrs;
    archive_entry_xattr_reset(e);
    const char* name = nullptr;
    const void* value = nullptr;
    size_t size = 0;
    while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK)
      xattrs.push_back("    xattr " + escape(name) + "=" + xattr_value(value, size));
    std::sort(xattrs.begin(), xattrs.end());
    lines.insert(lines.end(), xattrs.begin(), xattrs.end());
    if (!hardlink && archive_entry_mtime_is_set(e) && archive_entry_mtime(e) < kMtimeCutoff)
      lines.push_back("    mtime " + std::to_string(static_cast<long long>(archive_entry_mtime(e))));
  }
  std::cout << "\n";
  for (const auto& l : lines) std::cout << l << "\n";
}

/// The diff ids (rootfs.diff_ids) of every image in `path`.
std::set<std::string> base_diff_ids(const std::string& path) {
  Image img = find_image(read_archive(path), path);
  std::set<std::string> ids;
  for (const auto& d : img.config.at("rootfs").at("diff_ids")) ids.insert(d.get<std::string>());
  return ids;
}

int run(int argc, char** argv) {
  std::set<std::string> base;
  std::string path;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--base" && i + 1 < argc) {
      auto ids = base_diff_ids(argv[++i]);
      base.insert(ids.begin(), ids.end());
    } else if (path.empty() && !arg.empty() && arg[0] != '-') {
      path = arg;
    } else {
      std::cerr << "usage: golden_dump [--base ARCHIVE]... ARCHIVE\n";
      return 2;
    }
  }
  if (path.empty()) {
    std::cerr << "usage: golden_dump [--base ARCHIVE]... ARCHIVE\n";
    return 2;
  }
  Image img = find_image(read_archive(path), path);
  std::cout << "golden-dump v1\n";
  dump_config(img.config);
  size_t with_layer = dump_history(img.config);
  Json diff_ids = img.config.contains("rootfs") ? img.config["rootfs"].value("diff_ids", Json::array()) : Json::array();
  if (diff_ids.size() != img.layers.size())
    std::cout << "note: " << diff_ids.size() << " diff ids for " << img.layers.size() << " layers\n";
  if (with_layer != img.layers.size())
    std::cout << "note: " << with_layer << " history entries with a layer for " << img.layers.size() << " layers\n";
  for (size_t i = 0; i < img.layers.size(); ++i) {
    std::string plain = plain_layer(img.layers[i]);
    std::string digest = builder::base::Digest::of(plain).str();
    if (i < diff_ids.size() && diff_ids[i] != digest)
      throw Failure("layer " + std::to_string(i) + " hashes to " + digest + ", its diff id is " +
                    diff_ids[i].get<std::string>());
    std::cout << "layer[" << i << "]:";
    if (base.count(digest)) {
      std::cout << " base\n";
      continue;
    }
    dump_layer(plain);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // libarchive converts UTF-8 pax names through the locale's character set.
  setlocale(LC_CTYPE, "C.UTF-8");
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cout.flush();
    std::cerr << "golden_dump: " << e.what() << "\n";
    return 1;
  }
}
