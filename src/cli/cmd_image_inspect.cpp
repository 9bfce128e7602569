// cli/cmd_image_inspect.cpp — `builder inspect IMAGE...` (docker's image inspect JSON,
// with a Go-template subset for --format) and `builder image history IMAGE` (docker's
// table: IMAGE CREATED CREATED BY SIZE COMMENT).
#include <algorithm>
#include <cstdio>
#include <ctime>

#include "base/error.h"
#include "base/json.h"
#include "base/strings.h"
#include "base/time.h"
#include "cache/store.h"
#include "cli.h"
#include "cmd_image.h"

namespace builder::cli {
namespace {

// ---------------------------------------------------------------- --format

/// A value as Go's fmt prints an interface{} decoded from JSON.
std::string go_print(const base::Json& v) {
  switch (v.type()) {
    case base::Json::value_t::null: return "<nil>";
    case base::Json::value_t::string: return v.get<std::string>();
    case base::Json::value_t::boolean: return v.get<bool>() ? "true" : "false";
    case base::Json::value_t::array: {
      std::string s = "[";
      for (size_t i = 0; i < v.size(); ++i) s += (i ? " " : "") + go_print(v[i]);
      return s + "]";
    }
    case base::Json::value_t::object: {
      std::vector<std::string> keys;  // Go prints maps sorted by key
      for (auto it = v.begin(); it != v.end(); ++it) keys.push_back(it.key());
      std::sort(keys.begin(), keys.end());
      std::string s = "map[";
      for (size_t i = 0; i < keys.size(); ++i) s += (i ? " " : "") + keys[i] + ":" + go_print(v[keys[i]]);
      return s + "]";
    }
    default: return v.dump();  // numbers
  }
}

/// ".A.B" (or ".") against `root`.
const base::Json& eval_path(const std::string& path, const base::Json& root) {
  if (path == ".") return root;
  if (path.empty() || path[0] != '.') throw base::Error("unsupported --format template term `" + path + "`");
  const base::Json* cur = &root;
  for (const auto& field : base::split(std::string_view(path).substr(1), '.')) {
    if (field.empty()) throw base::Error("unsupported --format template term `" + path + "`");
    if (!cur->is_object() || !cur->contains(field))
      throw base::Error("template: executing at <" + path + ">: map has no entry for key \"" + field + "\"");
    cur = &(*cur)[field];
  }
  return *cur;
}

std::vector<std::string> action_words(const std::string& action) {
  std::vector<std::string> words;
  size_t i = 0;
  while (i < action.size()) {
    if (action[i] == ' ' || action[i] == '\t') {
      ++i;
      continue;
    }
    if (action[i] == '"') {
      size_t end = action.find('"', i + 1);
      if (end == std::string::npos) throw base::Error("--format: unterminated string in `{{" + action + "}}`");
      words.push_back(action.substr(i, end - i + 1));
      i = end + 1;
      continue;
    }
    size_t end = action.find_first_of(" \t", i);
    if (end == std::string::npos) end = action.size();
    words.push_back(action.substr(i, end - i));
    i = end;
  }
  return words;
}

std::string eval_action(const std::string& action, const base::Json& root) {
  auto unsupported = [&] {
    return base::Error("unsupported --format template action `{{" + action +
                       "}}`: builder supports {{.Field}}, {{json .Field}} and {{index .Field \"key\"}}");
  };
  auto words = action_words(action);
  if (words.size() == 1 && words[0][0] == '.') return go_print(eval_path(words[0], root));
  if (words.size() == 2 && words[0] == "json" && words[1][0] == '.') return eval_path(words[1], root).dump();
  if (words.size() >= 3 && words[0] == "index" && words[1][0] == '.') {
    const base::Json* cur = &eval_path(words[1], root);
    for (size_t i = 2; i < words.size(); ++i) {
      if (words[i].size() < 2 || words[i][0] != '"') throw unsupported();
      std::string key = words[i].substr(1, words[i].size() - 2);
      if (!cur->is_object()) throw base::Error("template: index of a non-map value in `{{" + action + "}}`");
      if (!cur->contains(key)) return "<no value>";  // Go's index on a missing map key
      cur = &(*cur)[key];
    }
    return go_print(*cur);
  }
  throw unsupported();
}

/// The docker inspect object of one image.
base::Json inspect_json(image::ImageStore& images, const image::Image& img) {
  auto& store = images.store();
  base::Json j = base::Json::object();
  j["Id"] = img.config_digest.str();
  auto names = images.names_of(img.manifest_digest);
  j["RepoTags"] = names;
  // Each repository's name@digest resolves to this manifest (as after a pull or push).
  base::Json digests = base::Json::array();
  std::vector<std::string> repos;
  for (const auto& n : names) {
    std::string repo = image::split_ref(n).first;
    if (std::find(repos.begin(), repos.end(), repo) == repos.end()) repos.push_back(repo);
  }
  for (const auto& r : repos) digests.push_back(r + "@" + img.manifest_digest.str());
  j["RepoDigests"] = digests;
  j["Parent"] = "";
  j["Comment"] = img.config.value("comment", "");
  j["Created"] = img.config.value("created", "");
  j["DockerVersion"] = img.config.value("docker_version", "");
  j["Author"] = img.config.value("author", "");
  j["Config"] = img.config.contains("config") ? img.config["config"] : base::Json::object();
  j["Architecture"] = img.config.value("architecture", "");
  if (img.config.contains("variant")) j["Variant"] = img.config["variant"];
  j["Os"] = img.config.value("os", "");
  j["Size"] = images.image_size(img);  // uncompressed, as docker's
  base::Json layers = base::Json::array();
  for (const auto& d : img.diff_ids) layers.push_back(d.str());
  j["RootFS"] = {{"Type", "layers"}, {"Layers", layers}};
  int64_t last_tag = 0;
  for (const auto& rec : images.list())
    if (rec.manifest_digest == img.manifest_digest) last_tag = std::max(last_tag, rec.created);
  j["Metadata"] = {{"LastTagTime", last_tag > 0 ? base::rfc3339(static_cast<std::time_t>(last_tag))
                                                : std::string("0001-01-01T00:00:00Z")}};
  base::Json desc = base::Json::object();
  desc["mediaType"] = img.manifest.value("mediaType", image::kMediaTypeManifest);
  desc["digest"] = img.manifest_digest.str();
  uint64_t msize = 0;
  try {
    msize = store.blobs().size(img.manifest_digest);
  } catch (const base::Error&) {
  }
  desc["size"] = msize;
  j["Descriptor"] = desc;
  return j;
}

/// docker's stringutils.Ellipsis: at most `max` characters (runes), the last one "…".
std::string ellipsis(const std::string& s, size_t max) {
  std::vector<size_t> starts;  // byte offset of each UTF-8 character
  for (size_t i = 0; i < s.size(); ++i)
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) starts.push_back(i);
  if (starts.size() <= max) return s;
  return s.substr(0, starts[max - 1]) + "\xE2\x80\xA6";
}

}  // namespace

std::string render_template(const std::string& tmpl, const base::Json& value) {
  std::string out;
  size_t pos = 0;
  while (pos < tmpl.size()) {
    size_t open = tmpl.find("{{", pos);
    if (open == std::string::npos) {
      out += tmpl.substr(pos);
      break;
    }
    out += tmpl.substr(pos, open - pos);
    size_t close = tmpl.find("}}", open + 2);
    if (close == std::string::npos) throw base::Error("--format: unclosed action `" + tmpl.substr(open) + "`");
    std::string action = std::string(base::trim(tmpl.substr(open + 2, close - open - 2)));
    out += eval_action(action, value);
    pos = close + 2;
  }
  return out;
}

namespace {

/// docker's formatter reads a typed `\t` and `\n` as a tab and a newline.
std::string unescape_format(const std::string& f) {
  std::string out;
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] == '\\' && i + 1 < f.size() && (f[i + 1] == 't' || f[i + 1] == 'n')) {
      out += f[i + 1] == 't' ? '\t' : '\n';
      ++i;
    } else {
      out += f[i];
    }
  }
  return out;
}

/// Characters (UTF-8 code points), as Go's tabwriter measures cells.
size_t text_width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

struct ParsedFormat {
  bool table = false;
  std::string body;  ///< the Go template
};

ParsedFormat parse_format(const std::string& format) {
  ParsedFormat p;
  if (format.rfind("table", 0) == 0) {
    p.table = true;
    p.body = unescape_format(std::string(base::trim(format.substr(5))));
    if (p.body.empty()) throw base::Error("--format table needs a template after `table`");
  } else {
    p.body = format == "json" ? "{{json .}}" : unescape_format(format);
  }
  return p;
}

}  // namespace

void check_format(const std::string& format, const base::Json& headers) {
  render_template(parse_format(format).body, headers);
}

void print_formatted(const std::string& format, const std::vector<base::Json>& values, const base::Json& headers) {
  ParsedFormat p = parse_format(format);
  std::vector<std::string> rendered;
  if (p.table) rendered.push_back(render_template(p.body, headers));
  for (const auto& v : values) rendered.push_back(render_template(p.body, v));
  if (!p.table) {
    std::string text;
    for (const auto& r : rendered) text += r + "\n";
    std::fputs(text.c_str(), stdout);
  } else {
    std::vector<std::vector<std::string>> rows;
    for (const auto& r : rendered)
      for (const auto& line : base::split(r, '\n')) rows.push_back(base::split(line, '\t'));
    print_docker_table(rows);
  }
  std::fflush(stdout);
}

void print_docker_table(const std::vector<std::vector<std::string>>& rows) {
  constexpr size_t kMinWidth = 10, kPadding = 3;
  std::vector<size_t> widths;
  for (const auto& r : rows)
    for (size_t i = 0; i + 1 < r.size(); ++i) {  // a line's last cell ends no column
      if (widths.size() <= i) widths.push_back(kMinWidth);
      widths[i] = std::max(widths[i], text_width(r[i]) + kPadding);
    }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(widths[i] - text_width(r[i]), ' ');
    }
    std::printf("%s\n", line.c_str());
  }
}

std::string go_time(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  struct tm tm {};
  ::localtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S %z %Z", &tm);
  return buf;
}

int cmd_inspect(const std::string& root, const std::vector<std::string>& names, const std::string& format) {
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
    out.push_back(inspect_json(images, *img));
  }
  if (format.empty()) {
    // As docker: the array of what was found, then one error line per missing name.
    std::printf("%s\n", out.dump(4).c_str());
  } else {
    std::string text;  // all rendered first: a template error prints nothing
    for (const auto& j : out) text += render_template(format, j) + "\n";
    std::fputs(text.c_str(), stdout);
  }
  std::fflush(stdout);
  for (const auto& n : missing) print_no_such_image(n);
  return missing.empty() ? 0 : 1;
}

int cmd_image_history(const std::string& root, const std::string& ref, bool no_trunc, bool quiet,
                      const std::string& format) {
  static const base::Json kHeaders = {{"ID", "IMAGE"},          {"CreatedSince", "CREATED"}, {"CreatedAt", "CREATED AT"},
                                      {"CreatedBy", "CREATED BY"}, {"Size", "SIZE"},          {"Comment", "COMMENT"}};
  const bool custom_format = !format.empty() && format != "table";  // "table" alone: the default
  if (custom_format && !quiet) check_format(format, kHeaders);
  cache::Store store(root);
  image::ImageStore images(store);
  auto img = images.resolve(ref);
  if (!img) {
    print_no_such_image(display_ref(ref));
    return 1;
  }
  struct Entry {
    int64_t created = 0;
    std::string created_by, comment;
    uint64_t size = 0;
  };
  // Each layer's size is its uncompressed size, as docker shows it.
  auto layer_size = [&](size_t i) { return images.layer_size(img->layers[i], img->diff_ids[i]); };
  std::vector<Entry> entries;
  size_t layer = 0;
  const auto& h = img->config.contains("history") && img->config["history"].is_array() ? img->config["history"]
                                                                                        : base::Json::array();
  for (const auto& e : h) {
    Entry en;
    if (e.contains("created") && e["created"].is_string()) en.created = base::parse_rfc3339(e["created"].get<std::string>());
    en.created_by = e.value("created_by", "");
    en.comment = e.value("comment", "");
    bool empty = e.value("empty_layer", false);
    if (!empty && layer < img->layers.size()) en.size = layer_size(layer++);
    entries.push_back(std::move(en));
  }
  // An image without history (e.g. made by another tool): one row per layer, as docker.
  if (entries.empty())
    for (size_t i = 0; i < img->layers.size(); ++i) entries.push_back({0, "", "", layer_size(i)});
  std::reverse(entries.begin(), entries.end());  // newest first

  int64_t now = std::time(nullptr);
  std::vector<std::vector<std::string>> rows;
  std::vector<base::Json> values;
  if (!quiet) rows.push_back({"IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"});
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    // Only the top entry is an image of this store; docker shows <missing> for the rest.
    std::string id = i == 0 ? short_id(img->config_digest, no_trunc) : "<missing>";
    if (quiet) {
      std::printf("%s\n", id.c_str());
      continue;
    }
    std::string by = e.created_by;
    std::replace(by.begin(), by.end(), '\t', ' ');
    if (!no_trunc) by = ellipsis(by, 45);
    std::string created =
        e.created > 0 ? base::human_duration(std::max<int64_t>(0, now - e.created)) + " ago" : std::string("N/A");
    rows.push_back({id, created, by, docker_size(e.size), e.comment});
    base::Json v = base::Json::object();
    v["ID"] = id;
    v["CreatedSince"] = created;
    v["CreatedAt"] = e.created > 0 ? base::rfc3339(static_cast<std::time_t>(e.created)) : std::string("N/A");
    v["CreatedBy"] = by;
    v["Size"] = rows.back()[3];
    v["Comment"] = e.comment;
    values.push_back(std::move(v));
  }
  if (!quiet && custom_format) {
    print_formatted(format, values, kHeaders);
    return 0;
  }
  if (!quiet) print_docker_table(rows);
  std::fflush(stdout);
  return 0;
}

}  // namespace builder::cli
