// cli/cmd_image.cpp — image management: images, load, save, import, tag, rmi, inspect.
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <memory>
#include <optional>
#include <vector>

#include "base/error.h"
#include "base/json.h"
#include "base/strings.h"
#include "base/time.h"
#include "cache/store.h"
#include "cli.h"
#include "image/archive.h"
#include "image/store.h"

namespace builder::cli {
namespace {

/// The normalised name ("busybox" -> "busybox:latest"); nullopt when `ref` is no valid
/// name (then it names no image, though it may still be an image ID).
std::optional<std::string> try_normalize(const std::string& ref) {
  try {
    return image::normalize_ref(ref);
  } catch (const base::Error&) {
    return std::nullopt;
  }
}

/// A name as Docker's daemon echoes it in errors: normalised, or as typed.
std::string display_ref(const std::string& ref) { return try_normalize(ref).value_or(ref); }

/// "Error: No such image: X" on stderr, as docker prints it.
void print_no_such_image(const std::string& ref) {
  std::fflush(stdout);
  std::fprintf(stderr, "Error: No such image: %s\n", ref.c_str());
  std::fflush(stderr);
}

/// Unix seconds an image was created: its config's "created", else when it was tagged.
int64_t created_of(const image::Image& img, const image::ImageRecord& rec) {
  int64_t created = 0;
  if (img.config.contains("created") && img.config["created"].is_string())
    created = base::parse_rfc3339(img.config["created"].get<std::string>());
  return created != 0 ? created : rec.created;
}

/// `docker images [REPOSITORY[:TAG]]`: newest first, one row per name.
int cmd_images(const std::string& root, const std::string& filter) {
  cache::Store store(root);
  image::ImageStore images(store);
  std::string want_repo, want_tag;
  if (!filter.empty()) {
    // "busybox" matches every tag of the repository; "busybox:1" only that tag.
    auto [repo, tag] = image::split_ref(display_ref(filter));
    want_repo = repo;
    size_t slash = filter.rfind('/');
    std::string last = slash == std::string::npos ? filter : filter.substr(slash + 1);
    if (last.find(':') != std::string::npos) want_tag = tag;
  }
  struct Row {
    int64_t created;
    std::string name;
    std::vector<std::string> cells;
  };
  std::vector<Row> rows;
  int64_t now = std::time(nullptr);
  for (const auto& rec : images.list()) {
    auto [repo, tag] = image::split_ref(rec.name);
    if (!want_repo.empty() && (repo != want_repo || (!want_tag.empty() && tag != want_tag))) continue;
    auto img = images.load(rec.manifest_digest);
    int64_t created = created_of(img, rec);
    unsigned long long size = 0;
    for (const auto& l : img.layers) size += l.size;
    rows.push_back({created,
                    rec.name,
                    {repo, tag, std::string(img.config_digest.hex().substr(0, 12)),
                     base::human_duration(std::max<int64_t>(0, now - created)) + " ago", base::human_size(size)}});
  }
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    return a.created != b.created ? a.created > b.created : a.name < b.name;
  });
  std::vector<std::vector<std::string>> table{{"REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"}};
  for (auto& r : rows) table.push_back(std::move(r.cells));
  print_table(table, 10);
  return 0;
}

/// `docker rmi`: a name loses that name; an image ID or digest loses all its names,
/// which needs --force when there are several. Image data stays for the GC.
int cmd_rmi(const std::string& root, const std::vector<std::string>& refs, bool force) {
  cache::Store store(root);
  image::ImageStore images(store);
  int rc = 0;
  for (const auto& ref : refs) {
    auto normalized = try_normalize(ref);
    if (normalized && images.untag(*normalized)) {
      std::printf("Untagged: %s\n", normalized->c_str());
      continue;
    }
    std::string name = normalized.value_or(ref);
    std::optional<image::Image> img;
    try {
      img = images.resolve(ref);
    } catch (const base::Error& e) {  // an ambiguous ID prefix
      std::fflush(stdout);
      std::fprintf(stderr, "Error: %s\n", e.what());
      rc = 1;
      continue;
    }
    auto names = img ? images.names_of(img->manifest_digest) : std::vector<std::string>{};
    if (names.empty()) {
      print_no_such_image(name);
      rc = 1;
      continue;
    }
    if (names.size() > 1 && !force) {
      std::fflush(stdout);
      std::fprintf(stderr,
                   "Error: conflict: unable to delete %s (must be forced) - image is referenced in multiple "
                   "repositories\n",
                   std::string(img->config_digest.hex().substr(0, 12)).c_str());
      rc = 1;
      continue;
    }
    for (const auto& n : names)
      if (images.untag(n)) std::printf("Untagged: %s\n", n.c_str());
  }
  std::fflush(stdout);
  return rc;
}

int cmd_inspect(const std::string& root, const std::vector<std::string>& names) {
  cache::Store store(root);
  image::ImageStore images(store);
  base::Json out = base::Json::array();
  std::vector<std::string> missing;
  for (const auto& n : names) {
    auto img = images.resolve(n);
    if (!img) {
      missing.push_back(n);
      continue;
    }
    base::Json j = base::Json::object();
    j["Id"] = img->config_digest.str();
    j["RepoTags"] = images.names_of(img->manifest_digest);
    j["RepoDigests"] = base::Json::array();
    j["Created"] = img->config.value("created", "");
    j["Author"] = img->config.value("author", "");
    j["Architecture"] = img->config.value("architecture", "");
    if (img->config.contains("variant")) j["Variant"] = img->config["variant"];
    j["Os"] = img->config.value("os", "");
    uint64_t size = 0;
    for (const auto& l : img->layers) size += l.size;
    j["Size"] = size;
    j["Config"] = img->config.contains("config") ? img->config["config"] : base::Json::object();
    base::Json layers = base::Json::array();
    for (const auto& d : img->diff_ids) layers.push_back(d.str());
    j["RootFS"] = {{"Type", "layers"}, {"Layers", layers}};
    base::Json desc = base::Json::object();
    desc["mediaType"] = img->manifest.value("mediaType", image::kMediaTypeManifest);
    desc["digest"] = img->manifest_digest.str();
    uint64_t msize = 0;
    try {
      msize = store.blobs().size(img->manifest_digest);
    } catch (const base::Error&) {
    }
    desc["size"] = msize;
    j["Descriptor"] = desc;
    out.push_back(j);
  }
  // As docker: the array of what was found, then one error line per missing name.
  std::printf("%s\n", out.dump(4).c_str());
  for (const auto& n : missing) print_no_such_image(n);
  return missing.empty() ? 0 : 1;
}

}  // namespace

void add_image_commands(CLI::App& app, Context& ctx) {
  auto images_filter = std::make_shared<std::string>();
  auto* images = app.add_subcommand("images", "List images");
  images->add_option("repository", *images_filter, "Only images of REPOSITORY[:TAG]");
  images->callback(
      [&ctx, images_filter] { ctx.action = [&ctx, images_filter] { return cmd_images(ctx.root, *images_filter); }; });

  auto load_file = std::make_shared<std::string>();
  auto* load = app.add_subcommand("load", "Load images from a tar archive (OCI or docker save)");
  load->add_option("-i,--input", *load_file, "Archive to read")->required();
  load->callback([&ctx, load_file] {
    ctx.action = [&ctx, load_file] {
      cache::Store store(ctx.root);
      image::ImageStore images(store);
      for (const auto& n : image::load_archive(images, *load_file)) {
        if (n.rfind("sha256:", 0) == 0)
          std::printf("Loaded image ID: %s\n", n.c_str());
        else
          std::printf("Loaded image: %s\n", n.c_str());
      }
      return 0;
    };
  });

  struct SaveOpts {
    std::string output;
    std::string format = "docker";
    std::vector<std::string> images;
  };
  auto so = std::make_shared<SaveOpts>();
  auto* save = app.add_subcommand("save", "Save images to a tar archive");
  save->add_option("-o,--output", so->output, "Archive to write")->required();
  save->add_option("--format", so->format, "docker (default) or oci");
  save->add_option("images", so->images, "Images to save")->required();
  save->callback([&ctx, so] {
    ctx.action = [&ctx, so] {
      if (so->format != "docker" && so->format != "oci")
        throw base::Error("unknown archive format `" + so->format + "` (expected docker or oci)");
      cache::Store store(ctx.root);
      image::ImageStore images(store);
      std::vector<std::string> refs;
      for (const auto& r : so->images) {
        if (!images.resolve(r)) {
          print_no_such_image(r);
          return 1;
        }
        refs.push_back(r);
      }
      if (so->format == "oci")
        image::save_oci_archive(images, refs, so->output);
      else
        image::save_docker_archive(images, refs, so->output);
      return 0;
    };
  });

  auto imp = std::make_shared<std::pair<std::string, std::string>>();
  auto* import = app.add_subcommand("import", "Create an image from a rootfs tarball");
  import->add_option("file", imp->first, "Rootfs tar (plain or gzip)")->required();
  import->add_option("name", imp->second, "Image name")->required();
  import->callback([&ctx, imp] {
    ctx.action = [&ctx, imp] {
      cache::Store store(ctx.root);
      image::ImageStore images(store);
      std::printf("%s\n", image::import_rootfs(images, imp->first, imp->second).c_str());
      return 0;
    };
  });

  auto tg = std::make_shared<std::pair<std::string, std::string>>();
  auto* tag = app.add_subcommand("tag", "Create a tag DST that refers to SRC");
  tag->add_option("source", tg->first, "Source image")->required();
  tag->add_option("target", tg->second, "New name")->required();
  tag->callback([&ctx, tg] {
    ctx.action = [&ctx, tg] {
      std::string target = image::normalize_ref(tg->second);  // a bad name fails before the lookup
      cache::Store store(ctx.root);
      image::ImageStore images(store);
      auto img = images.resolve(tg->first);
      if (!img) {
        print_no_such_image(display_ref(tg->first));
        return 1;
      }
      images.tag(target, img->manifest_digest);
      return 0;
    };
  });

  struct RmiOpts {
    bool force = false;
    std::vector<std::string> names;
  };
  auto ro = std::make_shared<RmiOpts>();
  auto* rmi = app.add_subcommand("rmi", "Remove image names");
  rmi->add_flag("-f,--force", ro->force, "Remove every name of an image given by ID");
  rmi->add_option("names", ro->names, "Images to untag (names or IDs)")->required();
  rmi->callback([&ctx, ro] { ctx.action = [&ctx, ro] { return cmd_rmi(ctx.root, ro->names, ro->force); }; });

  auto insp = std::make_shared<std::vector<std::string>>();
  auto* inspect = app.add_subcommand("inspect", "Show image details as JSON");
  inspect->add_option("names", *insp, "Images")->required();
  inspect->callback([&ctx, insp] { ctx.action = [&ctx, insp] { return cmd_inspect(ctx.root, *insp); }; });
}

}  // namespace builder::cli
