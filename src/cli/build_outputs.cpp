// `--output` for `builder build`: buildx's syntax and BuildKit's exporter keys, checked
// before the build starts (a bad key writes nothing), then each exporter run on the
// result. Choices where BuildKit is silent or lossy are written beside the code.
#include "build_outputs.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <set>

#include "base/error.h"
#include "base/strings.h"
#include "image/export.h"
#include "registry/client.h"
#include "registry/pull.h"
#include "registry/reference.h"

namespace builder::cli {
namespace {

/// buildx reads --output as one CSV record: commas split fields, a double-quoted stretch
/// may hold commas, "" inside quotes is one quote.
std::vector<std::string> csv_fields(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '"') {
      if (quoted && i + 1 < s.size() && s[i + 1] == '"') {
        cur += '"';
        ++i;
      } else {
        quoted = !quoted;
      }
    } else if (c == ',' && !quoted) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (quoted) throw base::Error("invalid --output value `" + s + "`: unterminated quote");
  out.push_back(cur);
  return out;
}

bool parse_bool(const std::string& key, const std::string& v) {
  std::string l = base::to_lower(v);
  if (l == "true" || l == "1") return true;
  if (l == "false" || l == "0") return false;
  throw base::Error("--output " + key + "=" + v + ": expected true or false");
}

int parse_level(const std::string& v) {
  if (v.empty() || v.size() > 3 || v.find_first_not_of("0123456789") != std::string::npos)
    throw base::Error("--output compression-level=" + v + ": expected a number");
  return std::stoi(v);
}

/// The keys each type takes (BuildKit's, for the exporters builder has).
const std::set<std::string>& keys_of(const std::string& type) {
  static const std::set<std::string> image = {"name", "push", "compression", "compression-level", "force-compression",
                                              "oci-mediatypes", "rewrite-timestamp", "registry.insecure"};
  static const std::set<std::string> archive = {"dest", "tar", "name", "compression", "compression-level",
                                                "force-compression", "oci-mediatypes", "rewrite-timestamp"};
  static const std::set<std::string> docker = {"dest", "name", "compression", "compression-level",
                                               "force-compression", "oci-mediatypes", "rewrite-timestamp"};
  static const std::set<std::string> tree = {"dest"};
  if (type == "image" || type == "registry") return image;
  if (type == "oci") return archive;
  if (type == "docker") return docker;
  return tree;
}

const std::set<std::string> kAllKeys = {"type",   "dest",           "name",          "push",
                                        "tar",    "compression",    "compression-level",
                                        "force-compression", "oci-mediatypes", "rewrite-timestamp",
                                        "registry.insecure"};

}  // namespace

OutputSpec parse_output(const std::string& value) {
  OutputSpec out;
  // docker's shorthands: `-o DIR` is type=local,dest=DIR; `-o -` a tar on stdout.
  if (!value.empty() && value.find('=') == std::string::npos && value.find(',') == std::string::npos) {
    out.type = value == "-" ? "tar" : "local";
    out.dest = value;
    return out;
  }
  std::map<std::string, std::string> kv;
  std::vector<std::string> order;
  std::vector<std::string> names;
  for (const auto& field : csv_fields(value)) {
    if (field.empty()) continue;
    auto eq = field.find('=');
    if (eq == std::string::npos) throw base::Error("invalid --output field `" + field + "`: expected key=value");
    std::string key = base::to_lower(std::string(base::trim(field.substr(0, eq)))), v = field.substr(eq + 1);
    if (!kAllKeys.count(key)) throw base::Error("unknown --output key `" + key + "`");
    if (key == "name") {
      // BuildKit takes one name= (comma-separated names inside quotes) and a repeated
      // key overwrites; builder keeps every name= given, as a user means both.
      for (const auto& n : base::split(v, ','))
        if (!base::trim(n).empty()) names.push_back(std::string(base::trim(n)));
      kv[key] = v;
      continue;
    }
    if (kv.count(key)) throw base::Error("--output key `" + key + "` given twice");
    kv[key] = v;
    order.push_back(key);
  }
  if (kv.count("type")) out.type = kv["type"];
  static const std::set<std::string> kTypes = {"image", "registry", "oci", "docker", "local", "tar"};
  if (!kTypes.count(out.type))
    throw base::Error("unknown output type `" + out.type + "` (expected image, registry, oci, docker, local or tar)");
  const auto& allowed = keys_of(out.type);
  for (const auto& [key, v] : kv)
    if (key != "type" && !allowed.count(key))
      throw base::Error("--output key `" + key + "` does not apply to type=" + out.type);

  if (kv.count("dest")) out.dest = kv["dest"];
  for (const auto& n : names) {
    try {
      out.names.push_back(image::normalize_ref(n));
    } catch (const base::Error& e) {
      throw base::Error("--output name=" + n + ": " + e.message());
    }
    if (out.names.back().find('@') != std::string::npos)
      throw base::Error("--output name=" + n + ": a name cannot carry a digest");
  }
  if (kv.count("push")) out.push = parse_bool("push", kv["push"]);
  if (out.type == "registry") {
    if (kv.count("push") && !out.push) throw base::Error("--output type=registry always pushes: push=false contradicts it");
    out.push = true;
  }
  if (kv.count("registry.insecure")) out.insecure = parse_bool("registry.insecure", kv["registry.insecure"]);
  if (kv.count("tar")) out.tar = parse_bool("tar", kv["tar"]);
  // Docker archives default to Docker media types (what `docker load` has always read).
  if (out.type == "docker") out.compression.oci_media_types = false;
  if (kv.count("oci-mediatypes")) out.compression.oci_media_types = parse_bool("oci-mediatypes", kv["oci-mediatypes"]);
  if (kv.count("compression")) {
    try {
      out.compression.type = image::parse_compression(kv["compression"]);
    } catch (const base::Error& e) {
      throw base::Error("--output compression=" + kv["compression"] + ": " + e.message());
    }
  }
  if (kv.count("compression-level")) out.compression.level = parse_level(kv["compression-level"]);
  if (kv.count("force-compression")) out.compression.force = parse_bool("force-compression", kv["force-compression"]);
  if (kv.count("rewrite-timestamp")) out.rewrite_timestamp = parse_bool("rewrite-timestamp", kv["rewrite-timestamp"]);
  if (out.type == "docker" && out.compression.type == image::Compression::Zstd)
    throw base::Error("--output type=docker cannot hold zstd layers (docker load reads gzip or uncompressed): use type=oci");
  try {
    image::validate(out.compression);
  } catch (const base::Error& e) {
    throw base::Error("--output " + value + ": " + e.message());
  }

  const bool file_type = out.type == "oci" || out.type == "docker" || out.type == "local" || out.type == "tar";
  if (file_type && out.dest.empty()) throw base::Error("--output type=" + out.type + " needs dest=PATH");
  if (out.dest == "-" && (out.type == "local" || (out.type == "oci" && !out.tar)))
    throw base::Error("--output type=" + out.type + (out.type == "oci" ? ",tar=false" : "") +
                      " writes a directory: dest=- (stdout) is for tar streams");
  return out;
}

std::vector<OutputSpec> parse_outputs(const std::vector<std::string>& values) {
  std::vector<OutputSpec> outs;
  for (const auto& v : values) outs.push_back(parse_output(v));
  if (outs.empty()) outs.push_back(OutputSpec{});
  std::set<std::string> dests;
  int to_stdout = 0;
  for (const auto& o : outs) {
    if (o.dest.empty()) continue;
    if (o.dest == "-") {
      if (++to_stdout > 1) throw base::Error("only one --output may write to stdout (dest=-)");
      continue;
    }
    std::string d = o.dest;
    while (d.size() > 1 && d.back() == '/') d.pop_back();
    if (!dests.insert(d).second) throw base::Error("two --output write to the same dest `" + o.dest + "`");
  }
  return outs;
}

std::optional<int64_t> source_date_epoch(const std::map<std::string, std::string>& build_args) {
  std::string v;
  auto it = build_args.find("SOURCE_DATE_EPOCH");
  if (it != build_args.end()) {
    v = it->second;
  } else if (const char* env = std::getenv("SOURCE_DATE_EPOCH")) {
    v = env;
  }
  if (v.empty()) return std::nullopt;
  if (v.size() > 18 || v.find_first_not_of("0123456789") != std::string::npos)
    throw base::Error("invalid SOURCE_DATE_EPOCH: `" + v + "` (expected unix seconds)");
  return std::stoll(v);
}

void check_outputs(const std::vector<OutputSpec>& outputs, std::optional<int64_t> epoch,
                   const std::vector<std::string>& tags) {
  for (const auto& o : outputs) {
    if (o.rewrite_timestamp && !epoch)
      throw base::Error("--output rewrite-timestamp=true needs SOURCE_DATE_EPOCH (--build-arg or the environment)");
    if (o.push && o.names.empty() && tags.empty())
      throw base::Error("--output push=true needs a name: name=REF or -t REF");
    if (o.push)
      for (const auto& n : o.names.empty() ? tags : o.names) registry::Reference::parse(n);  // throws on a bad one
  }
}

bool writes_stdout(const std::vector<OutputSpec>& outputs) {
  for (const auto& o : outputs)
    if (o.dest == "-") return true;
  return false;
}

OutputsDone run_outputs(ops::LocalExecutor& executor, image::ImageStore& images, const ops::Result& result,
                        const graph::ImageSpec& spec, const std::vector<OutputSpec>& outputs,
                        const std::vector<std::string>& tags, std::optional<int64_t> epoch,
                        const std::function<void(const std::string&)>& note) {
  OutputsDone done;
  bool have_image = false;
  // Outputs with the same image options share one image (converted once).
  std::map<std::string, ops::ExportedImage> made;
  auto image_for = [&](const OutputSpec& o) {
    ops::ExportOptions eo;
    eo.compression = o.compression;
    eo.source_date_epoch = epoch;
    eo.rewrite_timestamp = o.rewrite_timestamp;
    std::string key = std::string(image::compression_name(eo.compression.type)) + "/" +
                      std::to_string(eo.compression.level) + "/" + (eo.compression.force ? "f" : "") +
                      (eo.compression.oci_media_types ? "oci" : "docker") + (eo.rewrite_timestamp ? "/rt" : "");
    auto it = made.find(key);
    if (it == made.end()) it = made.emplace(key, executor.export_image(result, spec, eo)).first;
    if (!have_image) {
      done.image = it->second;
      have_image = true;
    }
    return it->second;
  };

  bool has_image_output = std::any_of(outputs.begin(), outputs.end(),
                                      [](const OutputSpec& o) { return o.type == "image" || o.type == "registry"; });
  for (const auto& o : outputs) {
    const std::vector<std::string>& names = o.names.empty() ? tags : o.names;
    if (o.type == "image" || o.type == "registry") {
      auto exported = image_for(o);
      if (o.push && names.empty()) throw base::Error("--output push=true needs a name: name=REF or -t REF");
      if (names.empty()) images.add_image(exported.manifest);
      for (const auto& n : names) {
        images.tag(n, exported.manifest);
        if (std::find(done.named.begin(), done.named.end(), n) == done.named.end()) done.named.push_back(n);
      }
      if (o.push) {
        registry::ClientOptions co;
        std::vector<registry::Reference> refs;
        for (const auto& n : names) {
          refs.push_back(registry::Reference::parse(n));
          if (o.insecure) co.insecure_registries.push_back(refs.back().domain);
        }
        registry::Client client(co);
        image::Image img = images.load(exported.manifest);
        for (const auto& ref : refs) {
          note("pushing " + ref.str());
          base::Digest d = registry::push_image(client, images, img, ref);
          done.pushed.push_back(ref.str() + "@" + d.str());
          note("pushed " + ref.str() + "@" + d.str());
        }
      }
    } else if (o.type == "oci" || o.type == "docker") {
      auto exported = image_for(o);
      // As before this issue (and as `docker build -t x -o type=oci` users expect): the
      // -t names of an archive output are set in the local store too, unless a
      // type=image output (or an earlier archive) names the store's image already: an
      // archive's Docker-media-type variant must not take the name from it.
      if (o.names.empty() && !has_image_output)
        for (const auto& t : tags) {
          if (std::find(done.named.begin(), done.named.end(), t) != done.named.end()) continue;
          images.tag(t, exported.manifest);
          done.named.push_back(t);
        }
      image::NamedImage ni{images.load(exported.manifest), names};
      if (o.type == "oci" && !o.tar) {
        image::write_oci_layout_dir(images, {ni}, o.dest);
      } else {
        image::write_image_archive(images, {ni},
                                   o.type == "oci" ? image::ArchiveFormat::Oci : image::ArchiveFormat::Docker, o.dest);
      }
    } else if (o.type == "local") {
      executor.export_local(result, o.dest, epoch);
    } else if (o.type == "tar") {
      executor.export_tar(result, o.dest, epoch);
    }
  }
  // Only trees were asked for: the image is still made (default options) so the build
  // has an ID to print and record, as before; nothing is tagged.
  if (!have_image) done.image = executor.export_image(result, spec, ops::ExportOptions{{}, epoch, false});
  return done;
}

}  // namespace builder::cli
