// cli/cmd_image.cpp — image management as docker users know it: images, save, load,
// tag, rmi, image prune, and the `builder image <verb>` group (ls, inspect, history,
// save, load, import, tag, rm, prune). inspect and history live in
// cmd_image_inspect.cpp, import in cmd_image_import.cpp. Removing an image drops its names and record only; its blobs
// and unpacked layers are then build-cache garbage for `builder prune` and the GC.
#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include "base/error.h"
#include "base/fd.h"
#include "base/fs.h"
#include "base/json.h"
#include "base/strings.h"
#include "base/temp_dir.h"
#include "base/time.h"
#include "cache/store.h"
#include "cli.h"
#include "cmd_image.h"
#include "cmd_prune.h"
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

void print_error_line(const std::string& msg) {
  std::fflush(stdout);
  std::fprintf(stderr, "Error: %s\n", msg.c_str());
  std::fflush(stderr);
}

// ---------------------------------------------------------------- images

struct ImagesOpts {
  std::string repository;
  bool quiet = false, digests = false, no_trunc = false, all = false;
  std::vector<std::string> filters;
  std::string format;
};

/// The header docker's `images --format "table ..."` prints for each field.
const base::Json& image_row_headers() {
  static const base::Json h = {{"Containers", "CONTAINERS"}, {"CreatedAt", "CREATED AT"},
                               {"CreatedSince", "CREATED"},  {"Digest", "DIGEST"},
                               {"ID", "IMAGE ID"},           {"Repository", "REPOSITORY"},
                               {"SharedSize", "SHARED SIZE"}, {"Size", "SIZE"},
                               {"Tag", "TAG"},               {"UniqueSize", "UNIQUE SIZE"},
                               {"VirtualSize", "VIRTUAL SIZE"}};
  return h;
}

struct ImagesFilter {
  std::optional<bool> dangling;
  std::vector<std::string> references;                         // glob patterns
  std::vector<std::pair<std::string, std::optional<std::string>>> labels;
};

ImagesFilter parse_images_filters(const std::vector<std::string>& filters) {
  ImagesFilter f;
  for (const auto& s : filters) {
    auto eq = s.find('=');
    if (eq == std::string::npos) throw base::Error("invalid filter `" + s + "`: expected KEY=VALUE");
    std::string key = s.substr(0, eq), value = s.substr(eq + 1);
    if (key == "dangling") {
      std::string v = base::to_lower(value);
      if (v != "true" && v != "false" && v != "1" && v != "0")
        throw base::Error("invalid filter `" + s + "`: dangling must be true or false");
      f.dangling = v == "true" || v == "1";
    } else if (key == "reference") {
      f.references.push_back(value);
    } else if (key == "label") {
      auto e = value.find('=');
      if (e == std::string::npos)
        f.labels.emplace_back(value, std::nullopt);
      else
        f.labels.emplace_back(value.substr(0, e), value.substr(e + 1));
    } else {
      throw base::Error("unsupported filter `" + key + "`: builder supports dangling=, reference= and label=");
    }
  }
  return f;
}

bool glob(const std::string& pattern, const std::string& s) { return ::fnmatch(pattern.c_str(), s.c_str(), 0) == 0; }

int cmd_images(const std::string& root, const ImagesOpts& o) {
  ImagesFilter filter = parse_images_filters(o.filters);
  // "table" alone is the default table; any other format is checked before any work.
  const bool custom_format = !o.format.empty() && o.format != "table";
  if (custom_format && !o.quiet) check_format(o.format, image_row_headers());
  cache::Store store(root);
  image::ImageStore images(store);
  std::string want_repo, want_tag;
  if (!o.repository.empty()) {
    // "busybox" matches every tag of the repository; "busybox:1" only that tag.
    auto [repo, tag] = image::split_ref(image::normalize_ref(o.repository));
    want_repo = repo;
    size_t slash = o.repository.rfind('/');
    std::string last = slash == std::string::npos ? o.repository : o.repository.substr(slash + 1);
    if (last.find(':') != std::string::npos) want_tag = tag;
  }
  struct Row {
    int64_t created;
    std::string name;
    std::string id;
    std::vector<std::string> cells;
    base::Json fields;  ///< docker's --format fields
  };
  std::vector<Row> rows;
  int64_t now = std::time(nullptr);
  for (const auto& rec : images.list_all()) {
    bool dangling = rec.name.empty();
    std::string repo = "<none>", tag = "<none>";
    if (!dangling) std::tie(repo, tag) = image::split_ref(rec.name);
    if (!want_repo.empty() && (dangling || repo != want_repo || (!want_tag.empty() && tag != want_tag))) continue;
    if (filter.dangling && *filter.dangling != dangling) continue;
    if (!filter.references.empty()) {
      if (dangling) continue;
      bool any = false;
      for (const auto& p : filter.references) any = any || glob(p, repo) || glob(p, rec.name);
      if (!any) continue;
    }
    image::Image img;
    uint64_t size = 0;
    try {
      img = images.load(rec.manifest_digest);
      size = images.image_size(img);
    } catch (const base::Error& e) {
      std::fprintf(stderr, "WARNING: skipping image %s: %s\n", rec.manifest_digest.str().c_str(), e.what());
      continue;
    }
    if (!filter.labels.empty()) {
      const base::Json* labels = nullptr;
      if (img.config.contains("config") && img.config["config"].is_object() && img.config["config"].contains("Labels") &&
          img.config["config"]["Labels"].is_object())
        labels = &img.config["config"]["Labels"];
      bool ok = true;
      for (const auto& [k, v] : filter.labels) {
        if (!labels || !labels->contains(k)) {
          ok = false;
        } else if (v) {
          const auto& have = (*labels)[k];
          ok = ok && have.is_string() && have.get<std::string>() == *v;
        }
      }
      if (!ok) continue;
    }
    int64_t created = image_created(img, rec.created);
    std::string id = short_id(img.config_digest, o.no_trunc);
    std::string since = base::human_duration(std::max<int64_t>(0, now - created)) + " ago";
    std::string size_text = docker_size(size);
    std::vector<std::string> cells{repo, tag};
    if (o.digests) cells.push_back(img.manifest_digest.str());
    cells.push_back(id);
    cells.push_back(since);
    cells.push_back(size_text);
    base::Json f = base::Json::object();
    f["Containers"] = "N/A";  // as docker images: only `docker system df` counts them
    f["CreatedAt"] = go_time(created);
    f["CreatedSince"] = since;
    f["Digest"] = img.manifest_digest.str();
    f["ID"] = id;
    f["Repository"] = repo;
    f["SharedSize"] = "N/A";
    f["Size"] = size_text;
    f["Tag"] = tag;
    f["UniqueSize"] = "N/A";
    f["VirtualSize"] = size_text;
    rows.push_back({created, rec.name, id, std::move(cells), std::move(f)});
  }
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    return a.created != b.created ? a.created > b.created : a.name < b.name;
  });
  if (o.quiet) {
    for (const auto& r : rows) std::printf("%s\n", r.id.c_str());
    std::fflush(stdout);
    return 0;
  }
  if (custom_format) {
    std::vector<base::Json> fields;
    for (auto& r : rows) fields.push_back(std::move(r.fields));
    print_formatted(o.format, fields, image_row_headers());
    return 0;
  }
  std::vector<std::string> header{"REPOSITORY", "TAG"};
  if (o.digests) header.push_back("DIGEST");
  for (const char* h : {"IMAGE ID", "CREATED", "SIZE"}) header.push_back(h);
  std::vector<std::vector<std::string>> table{header};
  for (auto& r : rows) table.push_back(std::move(r.cells));
  print_docker_table(table);
  std::fflush(stdout);
  return 0;
}

// ---------------------------------------------------------------- rmi

std::string first_container(const std::vector<ContainerRef>& cs, bool running) {
  for (const auto& c : cs)
    if (c.running == running) return c.id.substr(0, 12);
  return "";
}

/// `docker rmi`, one ref at a time (as the daemon is asked once per ref): a name loses
/// that name, and the image goes with its last name (unless a container uses it: then
/// only -f untags it, and the image stays). An image ID or digest loses all its names
/// when they are at most one (or with -f) and goes, unless a running container uses it
/// (never) or a stopped one does (only with -f). Prints docker's "Untagged: name" and
/// "Deleted: <image ID>" lines as it goes; the errors come after them on stderr, as the
/// docker CLI joins them. With -f an unknown image is reported but not a failure (as
/// `docker rmi -f`); any other error is. Image data stays for the GC.
int cmd_rmi(const std::string& root, const std::vector<std::string>& refs, bool force) {
  cache::Store store(root);
  image::ImageStore images(store);
  auto containers = containers_by_image(root);
  std::vector<std::string> errors;
  bool fatal = false;
  auto fail = [&](const std::string& msg, bool not_found = false) {
    errors.push_back(msg);
    fatal = fatal || !not_found;
  };
  for (const auto& ref : refs) {
    auto normalized = try_normalize(ref);
    std::optional<image::Image> img;
    try {
      img = images.resolve(ref);
    } catch (const base::Error& e) {  // an ambiguous ID prefix
      fail(e.what());
      continue;
    }
    if (!img) {
      fail("No such image: " + normalized.value_or(ref), true);
      continue;
    }
    auto names = images.names_of(img->manifest_digest);
    const auto& users = containers[img->config_digest.str()];
    std::string iid = short_id(img->config_digest);
    bool by_name = normalized && std::find(names.begin(), names.end(), *normalized) != names.end();
    if (by_name) {
      if (names.size() == 1 && !users.empty() && !force) {
        std::string c = first_container(users, true);
        if (c.empty()) c = first_container(users, false);
        fail("conflict: unable to remove repository reference \"" + *normalized + "\" (must force) - container " + c +
             " is using its referenced image " + iid);
        continue;
      }
      images.untag(*normalized);
      std::printf("Untagged: %s\n", normalized->c_str());
      // The image stays while it has other names, or (forced) for its containers.
      if (names.size() > 1 || !users.empty()) continue;
      names.clear();
    } else {
      if (std::string c = first_container(users, true); !c.empty()) {
        fail("conflict: unable to delete " + iid + " (cannot be forced) - image is being used by running container " + c);
        continue;
      }
      if (names.size() > 1 && !force) {
        fail("conflict: unable to delete " + iid + " (must be forced) - image is referenced in multiple repositories");
        continue;
      }
      if (std::string c = first_container(users, false); !c.empty() && !force) {
        fail("conflict: unable to delete " + iid + " (must be forced) - image is being used by stopped container " + c);
        continue;
      }
    }
    images.remove_image(img->manifest_digest);  // its names and record, in one transaction
    for (const auto& n : names) std::printf("Untagged: %s\n", n.c_str());
    std::printf("Deleted: %s\n", img->config_digest.str().c_str());
  }
  std::fflush(stdout);
  for (const auto& e : errors) print_error_line(e);
  if (errors.empty() || (force && !fatal)) return 0;
  return 1;
}

// ---------------------------------------------------------------- image prune

bool confirm(const std::string& warning) {
  if (!::isatty(STDIN_FILENO))
    throw base::Error("image prune needs confirmation, and stdin is not a terminal: use -f/--force");
  std::printf("%s\nAre you sure you want to continue? [y/N] ", warning.c_str());
  std::fflush(stdout);
  std::string answer;
  if (!std::getline(std::cin, answer)) return false;
  answer = base::to_lower(base::trim(answer));
  return answer == "y" || answer == "yes";
}

/// `image prune --filter`: docker's until= and label= / label!= (the image config's labels).
struct PruneFilter {
  std::optional<int64_t> until;  ///< only images created before this (unix seconds)
  std::vector<std::pair<std::string, std::optional<std::string>>> labels, not_labels;
};

/// A Go duration ("24h", "1h30m", "90s", "1.5h"): seconds, or nullopt if `s` is none.
std::optional<double> parse_go_duration(const std::string& s) {
  static const std::map<std::string, double> kUnits = {{"ns", 1e-9}, {"us", 1e-6}, {"µs", 1e-6}, {"ms", 1e-3},
                                                       {"s", 1},     {"m", 60},    {"h", 3600}};
  if (s.empty()) return std::nullopt;
  double total = 0;
  size_t i = 0;
  while (i < s.size()) {
    size_t start = i;
    while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) ++i;
    if (i == start) return std::nullopt;
    double n = std::strtod(s.substr(start, i - start).c_str(), nullptr);
    size_t ustart = i;
    while (i < s.size() && !((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) ++i;
    auto u = kUnits.find(s.substr(ustart, i - ustart));
    if (u == kUnits.end()) return std::nullopt;
    total += n * u->second;
  }
  return total;
}

/// until=: a Go duration before now, unix seconds, an RFC 3339 time or a date, as docker.
int64_t parse_until(const std::string& v, int64_t now) {
  if (auto d = parse_go_duration(v)) return now - static_cast<int64_t>(*d);
  if (!v.empty() && v.find_first_not_of("0123456789.") == std::string::npos)
    return static_cast<int64_t>(std::strtod(v.c_str(), nullptr));
  if (int64_t t = base::parse_rfc3339(v.find('T') == std::string::npos ? v + "T00:00:00Z" : v); t != 0) return t;
  throw base::Error("invalid filter `until=" + v +
                    "`: expected a duration (24h), unix seconds or a time (2006-01-02T15:04:05Z)");
}

PruneFilter parse_prune_filters(const std::vector<std::string>& filters) {
  PruneFilter f;
  int64_t now = std::time(nullptr);
  for (const auto& s : filters) {
    auto eq = s.find('=');
    if (eq == std::string::npos) throw base::Error("invalid filter `" + s + "`: expected KEY=VALUE");
    std::string key = s.substr(0, eq), value = s.substr(eq + 1);
    bool negate = !key.empty() && key.back() == '!';
    if (negate) key.pop_back();
    if (key == "until" && !negate) {
      f.until = parse_until(value, now);
    } else if (key == "label") {
      auto e = value.find('=');
      auto& into = negate ? f.not_labels : f.labels;
      if (e == std::string::npos)
        into.emplace_back(value, std::nullopt);
      else
        into.emplace_back(value.substr(0, e), value.substr(e + 1));
    } else {
      throw base::Error("unsupported filter `" + s.substr(0, eq) +
                        "`: image prune supports until=, label= and label!=");
    }
  }
  return f;
}

bool has_label(const image::Image& img, const std::string& key, const std::optional<std::string>& value) {
  const auto& c = img.config;
  if (!c.contains("config") || !c["config"].is_object() || !c["config"].contains("Labels") ||
      !c["config"]["Labels"].is_object() || !c["config"]["Labels"].contains(key))
    return false;
  const auto& have = c["config"]["Labels"][key];
  return !value || (have.is_string() && have.get<std::string>() == *value);
}

/// `docker image prune`: images without a name (or, with -a, every image) that no
/// container uses lose their names and records. Their blobs then belong to no image; the
/// bytes they hold alone are reported as reclaimed and freed by the cache GC.
int cmd_image_prune(const std::string& root, bool all, bool force, const std::vector<std::string>& filters) {
  PruneFilter filter = parse_prune_filters(filters);  // a bad filter fails before the prompt
  if (!force && !confirm(all ? "WARNING! This will remove all images without at least one container associated to them."
                             : "WARNING! This will remove all dangling images."))
    return 0;
  cache::Store store(root);
  image::ImageStore images(store);
  auto containers = containers_by_image(root);
  struct Victim {
    base::Digest manifest;
    std::vector<std::string> names;
  };
  std::vector<Victim> victims;
  std::set<base::Digest> seen;
  for (const auto& rec : images.list_all()) {
    if (!seen.insert(rec.manifest_digest).second) continue;
    bool dangling = rec.name.empty();
    if (!dangling && !all) continue;
    victims.push_back({rec.manifest_digest, images.names_of(rec.manifest_digest)});
  }
  std::set<std::string> candidate_blobs;
  std::vector<std::string> lines;
  for (const auto& v : victims) {
    std::optional<image::Image> img;
    try {
      img = images.load(v.manifest);
    } catch (const base::Error&) {
      // unreadable: still an image record to drop
    }
    if (img && !containers[img->config_digest.str()].empty()) continue;  // a container uses it
    if (!filter.labels.empty() || !filter.not_labels.empty() || filter.until) {
      if (!img) continue;  // nothing to match a filter against: left alone
      if (filter.until && image_created(*img, 0) >= *filter.until) continue;
      bool ok = true;
      for (const auto& [k, v] : filter.labels) ok = ok && has_label(*img, k, v);
      for (const auto& [k, v] : filter.not_labels) ok = ok && !has_label(*img, k, v);
      if (!ok) continue;
    }
    if (!images.remove_image(v.manifest)) continue;  // someone else removed it meanwhile
    for (const auto& n : v.names) lines.push_back("untagged: " + n);
    candidate_blobs.insert(v.manifest.str());
    if (img) {
      lines.push_back("deleted: " + img->config_digest.str());
      candidate_blobs.insert(img->config_digest.str());
      for (const auto& l : img->layers) candidate_blobs.insert(l.digest.str());
    } else {
      lines.push_back("deleted: " + v.manifest.str());
    }
  }
  // What remaining images still hold is not reclaimed.
  auto kept = image_refs(store).blobs;
  uint64_t reclaimed = 0;
  for (const auto& b : candidate_blobs) {
    if (kept.count(b)) continue;
    try {
      reclaimed += store.blobs().size(base::Digest::parse(b));
    } catch (const base::Error&) {
    }
  }
  if (!lines.empty()) {
    std::printf("Deleted Images:\n");
    for (const auto& l : lines) std::printf("%s\n", l.c_str());
    std::printf("\n");
  }
  std::printf("Total reclaimed space: %s\n", docker_size(reclaimed, 4).c_str());
  std::fflush(stdout);
  return 0;
}

// ---------------------------------------------------------------- registration

/// Registers `verb` (and its `aliases`) on `parent`; `add` fills in the subcommand.
template <typename Fn>
void verb(CLI::App& parent, const std::string& name, const std::string& help, std::vector<std::string> aliases,
          Fn add) {
  auto* sub = parent.add_subcommand(name, help);
  for (const auto& a : aliases) sub->alias(a);
  add(sub);
}

void add_images(CLI::App& parent, Context& ctx, const std::string& name, std::vector<std::string> aliases) {
  verb(parent, name, "List images", std::move(aliases), [&ctx](CLI::App* sub) {
    auto o = std::make_shared<ImagesOpts>();
    sub->add_option("repository", o->repository, "Only images of REPOSITORY[:TAG]");
    sub->add_flag("-q,--quiet", o->quiet, "Only show image IDs");
    sub->add_flag("--digests", o->digests, "Show digests");
    sub->add_flag("--no-trunc", o->no_trunc, "Don't truncate output");
    sub->add_flag("-a,--all", o->all, "Show all images (builder keeps no intermediate images to hide)");
    sub->add_option("-f,--filter", o->filters, "Filter: dangling=true|false, reference=PATTERN, label=KEY[=VALUE]")
        ->allow_extra_args(false);
    sub->add_option("--format", o->format,
                    "table TEMPLATE, json, or a Go template: {{.ID}} {{.Repository}} {{.Tag}} {{.Digest}} "
                    "{{.CreatedSince}} {{.CreatedAt}} {{.Size}} {{.Containers}}");
    sub->callback([&ctx, o] { ctx.action = [&ctx, o] { return cmd_images(ctx.root, *o); }; });
  });
}

void add_inspect(CLI::App& parent, Context& ctx) {
  verb(parent, "inspect", "Show image details as JSON", {}, [&ctx](CLI::App* sub) {
    struct Opts {
      std::vector<std::string> names;
      std::string format;
    };
    auto o = std::make_shared<Opts>();
    sub->add_option("-f,--format", o->format, "Go template: {{.Field}}, {{json .Field}}, {{index .Field \"key\"}}");
    sub->add_option("names", o->names, "Images")->required();
    sub->callback([&ctx, o] { ctx.action = [&ctx, o] { return cmd_inspect(ctx.root, o->names, o->format); }; });
  });
}

void add_load(CLI::App& parent, Context& ctx) {
  verb(parent, "load", "Load images from a tar archive (OCI or docker save) or STDIN", {}, [&ctx](CLI::App* sub) {
    struct Opts {
      std::string input;
      bool quiet = false;
    };
    auto o = std::make_shared<Opts>();
    sub->add_option("-i,--input", o->input, "Archive to read instead of STDIN");
    sub->add_flag("-q,--quiet", o->quiet, "Suppress the load output");
    sub->callback([&ctx, o] {
      ctx.action = [&ctx, o] {
        cache::Store store(ctx.root);
        image::ImageStore images(store);
        std::optional<base::TempDir> tmp;
        std::string path = o->input;
        if (path.empty()) {
          if (::isatty(STDIN_FILENO))
            throw base::Error("requested load from stdin, but stdin is empty: use -i FILE or redirect an archive");
          tmp.emplace(stream_dir(store, "load"));
          path = base::path_join(tmp->path(), "stdin.tar");
          base::Fd out = base::open_fd(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
          copy_fd(STDIN_FILENO, out.get(), "stdin");
        }
        auto loaded = image::load_archive(images, path);
        if (!o->quiet)
          for (const auto& n : loaded) {
            if (n.rfind("sha256:", 0) == 0)
              std::printf("Loaded image ID: %s\n", n.c_str());
            else
              std::printf("Loaded image: %s\n", n.c_str());
          }
        std::fflush(stdout);
        return 0;
      };
    });
  });
}

void add_save(CLI::App& parent, Context& ctx) {
  verb(parent, "save", "Save images to a tar archive (to STDOUT by default)", {}, [&ctx](CLI::App* sub) {
    struct Opts {
      std::string output;
      std::string format = "docker";
      std::vector<std::string> images;
    };
    auto o = std::make_shared<Opts>();
    sub->add_option("-o,--output", o->output, "Archive to write instead of STDOUT");
    sub->add_option("--format", o->format, "docker (default: docker load reads it) or oci");
    sub->add_option("images", o->images, "Images to save")->required();
    sub->callback([&ctx, o] {
      ctx.action = [&ctx, o] {
        if (o->format != "docker" && o->format != "oci")
          throw base::Error("unknown archive format `" + o->format + "` (expected docker or oci)");
        if (o->output.empty() && ::isatty(STDOUT_FILENO))
          throw base::Error("cowardly refusing to save to a terminal. Use the -o flag or redirect");
        cache::Store store(ctx.root);
        image::ImageStore images(store);
        for (const auto& r : o->images) {
          if (!images.resolve(r)) {
            print_no_such_image(display_ref(r));
            return 1;
          }
        }
        std::optional<base::TempDir> tmp;
        std::string path = o->output;
        if (path.empty()) {
          tmp.emplace(stream_dir(store, "save"));
          path = base::path_join(tmp->path(), "out.tar");
        }
        if (o->format == "oci")
          image::save_oci_archive(images, o->images, path);
        else
          image::save_docker_archive(images, o->images, path);
        if (tmp) {
          base::Fd in = base::open_fd(path, O_RDONLY | O_CLOEXEC);
          copy_fd(in.get(), STDOUT_FILENO, path);
        }
        return 0;
      };
    });
  });
}

void add_tag(CLI::App& parent, Context& ctx) {
  verb(parent, "tag", "Create a tag TARGET that refers to SOURCE", {}, [&ctx](CLI::App* sub) {
    auto tg = std::make_shared<std::pair<std::string, std::string>>();
    sub->add_option("source", tg->first, "Source image")->required();
    sub->add_option("target", tg->second, "New name")->required();
    sub->callback([&ctx, tg] {
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
  });
}

void add_rmi(CLI::App& parent, Context& ctx, const std::string& name, std::vector<std::string> aliases) {
  verb(parent, name, "Remove images (names or IDs)", std::move(aliases), [&ctx](CLI::App* sub) {
    struct Opts {
      bool force = false, no_prune = false;
      std::vector<std::string> names;
    };
    auto o = std::make_shared<Opts>();
    sub->add_flag("-f,--force", o->force, "Remove every name of an image given by ID; untag an image a container uses");
    // Docker's --no-prune keeps the untagged parent images of a removed one; builder's
    // images have no parent images (their layers are build cache), so there is never
    // anything to keep: the flag is accepted and is what builder always does.
    sub->add_flag("--no-prune", o->no_prune, "Do not delete untagged parents (builder images have none)");
    sub->add_option("names", o->names, "Images (names or IDs)")->required();
    sub->callback([&ctx, o] { ctx.action = [&ctx, o] { return cmd_rmi(ctx.root, o->names, o->force); }; });
  });
}

}  // namespace

// ---------------------------------------------------------------- shared helpers

/// A scratch directory for a stream (stdin, stdout) that the archive code wants as a
/// file; named so that Store::repair removes it if we are killed.
base::TempDir stream_dir(cache::Store& store, const std::string& what) {
  return base::TempDir(store.scratch_dir(), what + "-" + std::to_string(::getpid()) + "-");
}

void copy_fd(int from, int to, const std::string& what) {
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(from, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw base::SysError(errno, "read", what);
    if (n == 0) return;
    base::write_all(to, std::string_view(buf, static_cast<size_t>(n)));
  }
}

void print_no_such_image(const std::string& ref) {
  std::fflush(stdout);
  std::fprintf(stderr, "Error: No such image: %s\n", ref.c_str());
  std::fflush(stderr);
}

std::string display_ref(const std::string& ref) { return try_normalize(ref).value_or(ref); }

int64_t image_created(const image::Image& img, int64_t fallback) {
  int64_t created = 0;
  if (img.config.contains("created") && img.config["created"].is_string())
    created = base::parse_rfc3339(img.config["created"].get<std::string>());
  return created != 0 ? created : fallback;
}

std::string docker_size(uint64_t bytes, int precision) {
  static const char* const kUnits[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
  double v = static_cast<double>(bytes);
  size_t u = 0;
  while (v >= 1000.0 && u + 1 < std::size(kUnits)) {
    v /= 1000.0;
    ++u;
  }
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*g%s", precision, v, kUnits[u]);  // Go's %.*g prints the same
  return buf;
}

std::string short_id(const base::Digest& d, bool no_trunc) {
  return no_trunc ? d.str() : std::string(d.hex().substr(0, 12));
}

std::map<std::string, std::vector<ContainerRef>> containers_by_image(const std::string& root) {
  std::map<std::string, std::vector<ContainerRef>> out;
  std::string dir = base::path_join(root, "containers");
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  std::unique_ptr<DIR, int (*)(DIR*)> guard(d, ::closedir);
  while (auto* e = ::readdir(d)) {
    std::string id = e->d_name;
    if (id == "." || id == "..") continue;
    std::string cfg = base::path_join(base::path_join(dir, id), "config.json");
    if (!base::path_exists(cfg)) continue;
    base::Json rec = base::Json::parse(base::read_file(cfg), nullptr, false);
    if (!rec.is_object() || !rec.contains("image_id") || !rec["image_id"].is_string()) continue;
    ContainerRef c;
    c.id = rec.value("id", id);
    // "running" is only true while its `builder run` lives; a killed one is repaired later.
    int owner = rec.contains("owner_pid") && rec["owner_pid"].is_number_integer() ? rec["owner_pid"].get<int>() : 0;
    c.running = rec.value("status", "") == "running" && owner > 0 && ::kill(owner, 0) == 0;
    out[rec["image_id"].get<std::string>()].push_back(std::move(c));
  }
  return out;
}

void add_image_commands(CLI::App& app, Context& ctx) {
  // docker's top-level verbs. (`builder history` is the build history; the image
  // history is `builder image history`.)
  add_images(app, ctx, "images", {});
  add_inspect(app, ctx);
  add_load(app, ctx);
  add_save(app, ctx);
  add_import(app, ctx);
  add_tag(app, ctx);
  add_rmi(app, ctx, "rmi", {});

  // `builder image <verb>`, as `docker image <verb>`.
  auto* group = app.add_subcommand("image", "Manage images");
  group->require_subcommand(1);
  add_images(*group, ctx, "ls", {"list"});
  add_inspect(*group, ctx);
  add_load(*group, ctx);
  add_save(*group, ctx);
  add_import(*group, ctx);
  add_tag(*group, ctx);
  add_rmi(*group, ctx, "rm", {"rmi", "remove"});
  verb(*group, "history", "Show the history of an image", {}, [&ctx](CLI::App* sub) {
    struct Opts {
      std::string image, format;
      bool no_trunc = false, quiet = false;
    };
    auto o = std::make_shared<Opts>();
    sub->add_option("--format", o->format,
                    "table TEMPLATE, json, or a Go template: {{.ID}} {{.CreatedSince}} {{.CreatedAt}} {{.CreatedBy}} "
                    "{{.Size}} {{.Comment}}");
    sub->add_flag("--no-trunc", o->no_trunc, "Don't truncate output");
    sub->add_flag("-q,--quiet", o->quiet, "Only show image IDs");
    sub->add_option("image", o->image, "Image")->required();
    sub->callback([&ctx, o] {
      ctx.action = [&ctx, o] { return cmd_image_history(ctx.root, o->image, o->no_trunc, o->quiet, o->format); };
    });
  });
  verb(*group, "prune", "Remove unused images", {}, [&ctx](CLI::App* sub) {
    struct Opts {
      bool all = false, force = false;
      std::vector<std::string> filters;
    };
    auto o = std::make_shared<Opts>();
    sub->add_flag("-a,--all", o->all, "Remove all images no container uses, not just dangling ones");
    sub->add_flag("-f,--force", o->force, "Do not prompt for confirmation");
    sub->add_option("--filter", o->filters, "until=DURATION|TIME, label=KEY[=VALUE], label!=KEY[=VALUE]")
        ->allow_extra_args(false);
    sub->callback([&ctx, o] {
      ctx.action = [&ctx, o] { return cmd_image_prune(ctx.root, o->all, o->force, o->filters); };
    });
  });
}

}  // namespace builder::cli
