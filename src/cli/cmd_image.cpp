// cli/cmd_image.cpp — image management as docker users know it: images, save, load,
// import, tag, rmi, image prune, and the `builder image <verb>` group (ls, inspect,
// history, save, load, import, tag, rm, prune). inspect and history live in
// cmd_image_inspect.cpp. Removing an image drops its names and record only; its blobs
// and unpacked layers are then build-cache garbage for `builder prune` and the GC.
#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <iostream>
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

// ---------------------------------------------------------------- images

struct ImagesOpts {
  std::string repository;
  bool quiet = false, digests = false, no_trunc = false, all = false;
  std::vector<std::string> filters;
};

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
    try {
      img = images.load(rec.manifest_digest);
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
    std::vector<std::string> cells{repo, tag};
    if (o.digests) cells.push_back(img.manifest_digest.str());
    cells.push_back(id);
    cells.push_back(base::human_duration(std::max<int64_t>(0, now - created)) + " ago");
    cells.push_back(base::human_size(image_size(img)));
    rows.push_back({created, rec.name, id, std::move(cells)});
  }
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    return a.created != b.created ? a.created > b.created : a.name < b.name;
  });
  if (o.quiet) {
    for (const auto& r : rows) std::printf("%s\n", r.id.c_str());
    std::fflush(stdout);
    return 0;
  }
  std::vector<std::string> header{"REPOSITORY", "TAG"};
  if (o.digests) header.push_back("DIGEST");
  for (const char* h : {"IMAGE ID", "CREATED", "SIZE"}) header.push_back(h);
  std::vector<std::vector<std::string>> table{header};
  for (auto& r : rows) table.push_back(std::move(r.cells));
  print_table(table, 10);
  std::fflush(stdout);
  return 0;
}

// ---------------------------------------------------------------- rmi

std::string first_container(const std::vector<ContainerRef>& cs, bool running) {
  for (const auto& c : cs)
    if (c.running == running) return c.id.substr(0, 12);
  return "";
}

/// `docker rmi`: a name loses that name, and the image goes with its last name (unless a
/// container uses it: then -f only untags). An image ID or digest loses all its names
/// (--force when there are several, or a stopped container uses it; never while a
/// running one does) and goes. Image data stays for the GC.
int cmd_rmi(const std::string& root, const std::vector<std::string>& refs, bool force) {
  cache::Store store(root);
  image::ImageStore images(store);
  auto containers = containers_by_image(root);
  int rc = 0;
  for (const auto& ref : refs) {
    auto normalized = try_normalize(ref);
    std::optional<image::Image> img;
    try {
      img = images.resolve(ref);
    } catch (const base::Error& e) {  // an ambiguous ID prefix
      print_error_line(e.what());
      rc = 1;
      continue;
    }
    if (!img) {
      print_no_such_image(normalized.value_or(ref));
      rc = 1;
      continue;
    }
    auto names = images.names_of(img->manifest_digest);
    const auto& users = containers[img->config_digest.str()];
    std::string iid = short_id(img->config_digest);
    bool by_name = normalized && std::find(names.begin(), names.end(), *normalized) != names.end();
    if (by_name) {
      if (names.size() > 1 || (!users.empty() && force)) {
        images.untag(*normalized);  // the image stays: other names, or a container's
        std::printf("Untagged: %s\n", normalized->c_str());
        continue;
      }
      if (!users.empty()) {
        std::string c = first_container(users, true);
        if (c.empty()) c = first_container(users, false);
        print_error_line("conflict: unable to remove repository reference \"" + *normalized +
                         "\" (must force) - container " + c + " is using its referenced image " + iid);
        rc = 1;
        continue;
      }
    } else {
      if (std::string c = first_container(users, true); !c.empty()) {
        print_error_line("conflict: unable to delete " + iid + " (cannot be forced) - image is being used by running container " + c);
        rc = 1;
        continue;
      }
      if (names.size() > 1 && !force) {
        print_error_line("conflict: unable to delete " + iid + " (must be forced) - image is referenced in multiple repositories");
        rc = 1;
        continue;
      }
      if (std::string c = first_container(users, false); !c.empty() && !force) {
        print_error_line("conflict: unable to delete " + iid + " (must be forced) - image is being used by stopped container " + c);
        rc = 1;
        continue;
      }
    }
    for (const auto& n : names) std::printf("Untagged: %s\n", n.c_str());
    images.remove_image(img->manifest_digest);
  }
  std::fflush(stdout);
  return rc;
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

/// `docker image prune`: images without a name (or, with -a, every image) that no
/// container uses lose their names and records. Their blobs then belong to no image; the
/// bytes they hold alone are reported as reclaimed and freed by the cache GC.
int cmd_image_prune(const std::string& root, bool all, bool force) {
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
  std::printf("Total reclaimed space: %s\n", base::human_size(reclaimed).c_str());
  std::fflush(stdout);
  return 0;
}

// ---------------------------------------------------------------- import --change

/// Words of a --change value: whitespace-separated, with "..." and '...' quoting and
/// backslash escapes, as a Dockerfile line is split.
std::vector<std::string> change_words(const std::string& s, const std::string& change) {
  std::vector<std::string> out;
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (quote) {
      if (c == quote) {
        quote = 0;
      } else if (c == '\\' && quote == '"' && i + 1 < s.size()) {
        cur += s[++i];
      } else {
        cur += c;
      }
    } else if (c == '"' || c == '\'') {
      quote = c;
      in_word = true;
    } else if (c == '\\' && i + 1 < s.size()) {
      cur += s[++i];
      in_word = true;
    } else if (c == ' ' || c == '\t') {
      if (in_word) out.push_back(cur);
      cur.clear();
      in_word = false;
    } else {
      cur += c;
      in_word = true;
    }
  }
  if (quote) throw base::Error("--change `" + change + "`: unterminated quote");
  if (in_word) out.push_back(cur);
  return out;
}

/// Applies one `--change "INSTRUCTION args"` (docker import's Dockerfile subset) to a
/// runtime config.
void apply_change(base::Json& cfg, const std::string& change) {
  std::string_view line = base::trim(change);
  auto sp = line.find_first_of(" \t");
  std::string kw = base::to_lower(line.substr(0, sp));
  std::string rest = sp == std::string_view::npos ? "" : std::string(base::trim(line.substr(sp)));
  auto bad = [&](const std::string& why) { return base::Error("--change `" + change + "`: " + why); };
  if (kw.empty()) throw bad("empty instruction");
  if (rest.empty()) throw bad(base::to_lower(kw) + " needs an argument");
  auto command = [&] {
    // JSON form, else shell form as the Dockerfile's default shell runs it.
    if (!rest.empty() && rest[0] == '[') {
      base::Json j = base::Json::parse(rest, nullptr, false);
      if (j.is_array() && std::all_of(j.begin(), j.end(), [](const base::Json& e) { return e.is_string(); })) return j;
    }
    return base::Json::array({"/bin/sh", "-c", rest});
  };
  auto key_values = [&](const std::string& what) {
    std::vector<std::pair<std::string, std::string>> kv;
    auto words = change_words(rest, change);
    if (words.size() >= 1 && words[0].find('=') == std::string::npos) {
      // the legacy "KEY value with spaces" form
      auto space = rest.find_first_of(" \t");
      if (space == std::string::npos) throw bad(what + " needs KEY=VALUE");
      kv.emplace_back(words[0], std::string(base::trim(rest.substr(space))));
      return kv;
    }
    for (const auto& w : words) {
      auto eq = w.find('=');
      if (eq == std::string::npos || eq == 0) throw bad(what + " needs KEY=VALUE, got `" + w + "`");
      kv.emplace_back(w.substr(0, eq), w.substr(eq + 1));
    }
    return kv;
  };
  if (kw == "cmd") {
    cfg["Cmd"] = command();
  } else if (kw == "entrypoint") {
    cfg["Entrypoint"] = command();
  } else if (kw == "env") {
    if (!cfg.contains("Env")) cfg["Env"] = base::Json::array();
    for (const auto& [k, v] : key_values("ENV")) {
      bool replaced = false;
      for (auto& e : cfg["Env"]) {
        std::string s = e.get<std::string>();
        if (s.substr(0, s.find('=')) == k) {
          e = k + "=" + v;
          replaced = true;
        }
      }
      if (!replaced) cfg["Env"].push_back(k + "=" + v);
    }
  } else if (kw == "label") {
    for (const auto& [k, v] : key_values("LABEL")) cfg["Labels"][k] = v;
  } else if (kw == "expose") {
    for (auto p : change_words(rest, change)) {
      if (p.find('/') == std::string::npos) p += "/tcp";
      cfg["ExposedPorts"][p] = base::Json::object();
    }
  } else if (kw == "volume") {
    base::Json j = base::Json::parse(rest, nullptr, false);
    std::vector<std::string> vols;
    if (j.is_array())
      for (const auto& v : j) vols.push_back(v.is_string() ? v.get<std::string>() : v.dump());
    else
      vols = change_words(rest, change);
    for (const auto& v : vols) cfg["Volumes"][v] = base::Json::object();
  } else if (kw == "user") {
    cfg["User"] = rest;
  } else if (kw == "workdir") {
    cfg["WorkingDir"] = rest;
  } else if (kw == "stopsignal") {
    cfg["StopSignal"] = rest;
  } else {
    throw bad("builder import supports CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR and STOPSIGNAL");
  }
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

void add_import(CLI::App& parent, Context& ctx) {
  verb(parent, "import", "Create an image from a rootfs tarball (FILE or - for STDIN)", {}, [&ctx](CLI::App* sub) {
    struct Opts {
      std::string file, name;
      std::vector<std::string> changes;
    };
    auto o = std::make_shared<Opts>();
    sub->add_option("-c,--change", o->changes, "Apply a Dockerfile instruction (CMD ENTRYPOINT ENV EXPOSE LABEL USER VOLUME WORKDIR STOPSIGNAL)")
        ->allow_extra_args(false);
    sub->add_option("file", o->file, "Rootfs tar (plain or compressed), or - for STDIN")->required();
    sub->add_option("name", o->name, "REPOSITORY[:TAG] (none: an untagged image)");
    sub->callback([&ctx, o] {
      ctx.action = [&ctx, o] {
        base::Json config = base::Json::object();
        for (const auto& c : o->changes) apply_change(config, c);
        if (!o->name.empty()) image::normalize_ref(o->name);  // a bad name fails before reading
        if (o->file.find("://") != std::string::npos)
          throw base::Error("import from a URL is not supported: download `" + o->file + "` and import the file");
        cache::Store store(ctx.root);
        image::ImageStore images(store);
        std::optional<base::TempDir> tmp;
        std::string path = o->file;
        if (path == "-") {
          tmp.emplace(stream_dir(store, "import"));
          path = base::path_join(tmp->path(), "-");  // history says "Imported from -", as docker
          base::Fd out = base::open_fd(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
          copy_fd(STDIN_FILENO, out.get(), "stdin");
        }
        std::printf("%s\n", image::import_rootfs(images, path, o->name, config).c_str());
        std::fflush(stdout);
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
      bool force = false;
      std::vector<std::string> names;
    };
    auto o = std::make_shared<Opts>();
    sub->add_flag("-f,--force", o->force, "Remove every name of an image given by ID; untag an image a container uses");
    sub->add_option("names", o->names, "Images (names or IDs)")->required();
    sub->callback([&ctx, o] { ctx.action = [&ctx, o] { return cmd_rmi(ctx.root, o->names, o->force); }; });
  });
}

}  // namespace

// ---------------------------------------------------------------- shared helpers

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

uint64_t image_size(const image::Image& img) {
  uint64_t size = 0;
  for (const auto& l : img.layers) size += l.size;
  return size;
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
  add_rmi(*group, ctx, "rm", {"rmi"});
  verb(*group, "history", "Show the history of an image", {}, [&ctx](CLI::App* sub) {
    struct Opts {
      std::string image;
      bool no_trunc = false, quiet = false;
    };
    auto o = std::make_shared<Opts>();
    sub->add_flag("--no-trunc", o->no_trunc, "Don't truncate output");
    sub->add_flag("-q,--quiet", o->quiet, "Only show image IDs");
    sub->add_option("image", o->image, "Image")->required();
    sub->callback([&ctx, o] {
      ctx.action = [&ctx, o] { return cmd_image_history(ctx.root, o->image, o->no_trunc, o->quiet); };
    });
  });
  verb(*group, "prune", "Remove unused images", {}, [&ctx](CLI::App* sub) {
    struct Opts {
      bool all = false, force = false;
    };
    auto o = std::make_shared<Opts>();
    sub->add_flag("-a,--all", o->all, "Remove all images no container uses, not just dangling ones");
    sub->add_flag("-f,--force", o->force, "Do not prompt for confirmation");
    sub->callback([&ctx, o] { ctx.action = [&ctx, o] { return cmd_image_prune(ctx.root, o->all, o->force); }; });
  });
}

}  // namespace builder::cli
