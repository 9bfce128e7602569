// cli/cmd_image_import.cpp — `builder import` / `builder image import`: a single-layer
// image from a root filesystem tar, with docker's --change instructions applied to its
// config.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/fd.h"
#include "base/fs.h"
#include "base/json.h"
#include "base/strings.h"
#include "base/temp_dir.h"
#include "cache/store.h"
#include "cli.h"
#include "cmd_image.h"
#include "image/archive.h"
#include "image/store.h"

namespace builder::cli {
namespace {

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

}  // namespace

void add_import(CLI::App& parent, Context& ctx) {
  auto* sub = parent.add_subcommand("import", "Create an image from a rootfs tarball (FILE or - for STDIN)");
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
}

}  // namespace builder::cli
