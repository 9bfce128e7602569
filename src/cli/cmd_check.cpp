// `builder build --check` / `--call=check|outline|targets`: the frontend evaluates the
// Dockerfile (lowering every stage for a check, the target's for an outline, nothing for
// the target list) and this file prints what buildx prints for BuildKit's lint, outline
// and targets subrequests: the same text (Go tabwriter tables, source blocks), or with
// `format=json` the same JSON documents. One deliberate difference: a check's source
// block is headed `Dockerfile:LINE:COL`, so every warning is located to the column.
#include "cmd_check.h"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <optional>

#include "base/error.h"
#include "base/json.h"
#include "base/strings.h"
#include "frontend/outline.h"

namespace builder::cli {
namespace {

/// Stable by line: BuildKit prints check results sorted by line, in the order found.
std::vector<frontend::LintFinding> by_line(std::vector<frontend::LintFinding> f) {
  std::stable_sort(f.begin(), f.end(),
                   [](const auto& a, const auto& b) { return a.range.start_line < b.range.start_line; });
  return f;
}

std::string file_of(const base::SourceRange& r, const std::string& display) {
  std::string file = std::filesystem::path(r.file).filename().string();
  return file.empty() ? display : file;
}

std::string located(const base::SourceRange& r, const std::string& display) {
  return file_of(r, display) + ":" + std::to_string(r.start_line) + ":" +
         std::to_string(r.start_col > 0 ? r.start_col : 1);
}

/// errdefs.Source.Print: the range marked `>>>`, with two lines of context around a
/// single line and one around several (the text's final empty line counts as a line).
void print_source(const std::string& source, const base::SourceRange& r, const std::string& display) {
  std::vector<std::string> lines = base::split(source, '\n');
  int n = static_cast<int>(lines.size());
  int start = r.start_line, end = std::max(r.end_line, r.start_line);
  if (start < 1 || start > n) return;
  end = std::min(end, n);
  const int marked_from = start, marked_to = end;
  int pad = end == start ? 4 : 2;
  for (int p = 0; p < pad;) {
    if (start > 1) {
      --start;
      ++p;
    }
    if (end != n) {
      ++end;
      ++p;
    }
    ++p;
  }
  std::printf("%s\n--------------------\n", located(r, display).c_str());
  for (int i = start; i <= end; ++i)
    std::printf(" %3d | %s %s\n", i, i >= marked_from && i <= marked_to ? ">>>" : "   ",
                lines[i - 1].c_str());
  std::printf("--------------------\n");
}

size_t runes(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

/// Go's text/tabwriter (minwidth 0, padchar ' ', no flags) over rows whose cells but the
/// last are tab-terminated: each such column as wide as its widest cell plus `padding`.
std::string tabwrite(const std::vector<std::vector<std::string>>& rows, size_t padding) {
  std::vector<size_t> widths;
  for (const auto& row : rows)
    for (size_t j = 0; j + 1 < row.size(); ++j) {
      if (widths.size() <= j) widths.resize(j + 1, 0);
      widths[j] = std::max(widths[j], runes(row[j]) + padding);
    }
  std::string out;
  for (const auto& row : rows) {
    for (size_t j = 0; j < row.size(); ++j) {
      out += row[j];
      if (j + 1 < row.size()) out += std::string(widths[j] - runes(row[j]), ' ');
    }
    out += "\n";
  }
  return out;
}

std::string base64(std::string_view in) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                 static_cast<unsigned char>(in[i + 2]);
    for (int s : {18, 12, 6, 0}) out += kAlphabet[(v >> s) & 63];
  }
  if (i < in.size()) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

/// A pb.Location as encoding/json writes it (zero fields left out); the column goes in
/// `character`, 0-based, as BuildKit's ranges would carry it.
base::Json location_json(const base::SourceRange& r) {
  base::Json start = {{"line", r.start_line}};
  if (r.start_col > 1) start["character"] = r.start_col - 1;
  base::Json end = {{"line", std::max(r.end_line, r.start_line)}};
  return {{"ranges", base::Json::array({{{"start", start}, {"end", end}}})}};
}

/// json.MarshalIndent's output: two-space indent, and <, > and & escaped as Go does.
void print_json(const base::Json& j) {
  std::string s = j.dump(2);
  std::string out;
  for (char c : s) {
    if (c == '<')
      out += "\\u003c";
    else if (c == '>')
      out += "\\u003e";
    else if (c == '&')
      out += "\\u0026";
    else
      out += c;
  }
  std::printf("%s\n", out.c_str());
}

int run_targets(const CallSpec& call, const frontend::ast::File& file, const std::string& source) {
  auto targets = frontend::list_targets(file);
  if (call.format == "json") {
    base::Json list = base::Json::array();
    for (const auto& t : targets) {
      base::Json j = base::Json::object();
      if (!t.name.empty()) j["name"] = t.name;
      if (t.is_default) j["default"] = true;
      if (!t.description.empty()) j["description"] = t.description;
      if (!t.base.empty()) j["base"] = t.base;
      if (!t.platform.empty()) j["platform"] = t.platform;
      j["location"] = location_json(t.range);
      list.push_back(j);
    }
    print_json({{"targets", list}, {"sources", base::Json::array({base64(source)})}});
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {{"TARGET", "DESCRIPTION"}};
  for (const auto& t : targets) {
    std::string name = t.name;
    if (name.empty() && t.is_default)
      name = "(default)";
    else if (t.is_default)
      name += " (default)";
    rows.push_back({name, t.description});
  }
  std::printf("%s", tabwrite(rows, 1).c_str());
  return 0;
}

void print_outline(const CallSpec& call, const frontend::Outline& o, const std::string& source) {
  if (call.format == "json") {
    base::Json j = base::Json::object();
    if (!o.name.empty()) j["name"] = o.name;
    if (!o.description.empty()) j["description"] = o.description;
    if (!o.args.empty()) {
      j["args"] = base::Json::array();
      for (const auto& a : o.args) {
        base::Json e = {{"name", a.name}};
        if (!a.description.empty()) e["description"] = a.description;
        if (!a.value.empty()) e["value"] = a.value;
        e["location"] = location_json(a.range);
        j["args"].push_back(e);
      }
    }
    for (const auto& [key, mounts] : {std::pair{"secrets", &o.secrets}, std::pair{"ssh", &o.ssh}}) {
      if (mounts->empty()) continue;
      j[key] = base::Json::array();
      for (const auto& m : *mounts) {
        base::Json e = {{"name", m.name}};
        if (m.required) e["required"] = true;
        e["location"] = location_json(m.range);
        j[key].push_back(e);
      }
    }
    j["sources"] = base::Json::array({base64(source)});
    print_json(j);
    return;
  }
  std::string out;
  if (!o.name.empty() || !o.description.empty()) {
    std::vector<std::vector<std::string>> rows = {{"TARGET:", o.name.empty() ? "(default)" : o.name}};
    if (!o.description.empty()) rows.push_back({"DESCRIPTION:", o.description});
    out += tabwrite(rows, 1) + "\n";
  }
  if (!o.args.empty()) {
    std::vector<std::vector<std::string>> rows = {{"BUILD ARG", "VALUE", "DESCRIPTION"}};
    for (const auto& a : o.args) rows.push_back({a.name, a.value, a.description});
    out += tabwrite(rows, 3) + "\n";
  }
  for (const auto& [title, mounts] : {std::pair{"SECRET", &o.secrets}, std::pair{"SSH", &o.ssh}}) {
    if (mounts->empty()) continue;
    std::vector<std::vector<std::string>> rows = {{title, "REQUIRED"}};
    for (const auto& m : *mounts) rows.push_back({m.name, m.required ? "true" : ""});
    out += tabwrite(rows, 3) + "\n";
  }
  std::printf("%s", out.c_str());
}

int run_lint(const CallSpec& call, const frontend::ast::File& file, const std::string& source,
             const std::string& display, frontend::LowerOptions lo, frontend::ImageResolver& resolver) {
  std::vector<frontend::LintFinding> findings;
  lo.lint = &findings;
  // BuildKit checks every stage unless a target is named.
  lo.all_stages = lo.target.empty();
  std::exception_ptr error;
  std::optional<base::Error> build_error;
  try {
    frontend::lower(file, lo, resolver);
  } catch (const base::Error& e) {
    error = std::current_exception();
    build_error = e;
  }
  auto sorted = by_line(findings);
  int status = (!sorted.empty() || error) && !call.ignore_status ? 1 : 0;

  if (call.format == "json") {
    base::Json warnings = sorted.empty() ? base::Json(nullptr) : base::Json::array();
    for (const auto& f : sorted) {
      base::Json w = {{"ruleName", f.rule}};
      if (!f.description.empty()) w["description"] = f.description;
      if (!f.url.empty()) w["url"] = f.url;
      if (!f.message.empty()) w["detail"] = f.message;
      w["location"] = location_json(f.range);
      warnings.push_back(w);
    }
    base::Json j = {
        {"warnings", warnings},
        {"sources",
         base::Json::array({{{"filename", display}, {"data", base64(source)}, {"language", "Dockerfile"}}})}};
    if (build_error) {
      base::Json loc = base::Json::object();
      if (build_error->where() && build_error->where()->valid()) loc = location_json(*build_error->where());
      j["buildError"] = {{"message", build_error->message()}, {"location", loc}};
    }
    print_json(j);
    std::fflush(stdout);
    if (error) std::rethrow_exception(error);
    return status;
  }

  if (!sorted.empty()) {
    if (sorted.size() == 1)
      std::printf("Check complete, 1 warning has been found!\n");
    else
      std::printf("Check complete, %zu warnings have been found!\n", sorted.size());
  }
  for (const auto& f : sorted) {
    std::printf("\nWARNING: %s", f.rule.c_str());
    if (!f.url.empty()) std::printf(" - %s", f.url.c_str());
    std::printf("\n%s\n", f.message.c_str());
    print_source(source, f.range, display);
  }
  if (error) {
    if (!sorted.empty()) std::printf("\n");
    std::fflush(stdout);
    std::rethrow_exception(error);
  }
  if (sorted.empty()) std::printf("Check complete, no warnings found.\n");
  std::fflush(stdout);
  return status;
}

}  // namespace

CallSpec parse_call(const std::string& value) {
  CallSpec c;
  bool named = false;
  for (const auto& field : base::split(value, ',')) {
    auto eq = field.find('=');
    if (eq != std::string::npos) {
      std::string k = field.substr(0, eq), v = field.substr(eq + 1);
      if (k == "format") {
        if (v != "json" && v != "text" && !v.empty())
          throw base::Error("unknown --call format `" + v + "` (expected json or text)");
        c.format = v == "json" ? "json" : "";
      } else if (k == "ignorestatus") {
        if (v == "1" || v == "t" || v == "T" || v == "true" || v == "TRUE" || v == "True")
          c.ignore_status = true;
        else if (v == "0" || v == "f" || v == "F" || v == "false" || v == "FALSE" || v == "False")
          c.ignore_status = false;
        else
          throw base::Error("invalid ignorestatus print value: " + v);
      } else {
        throw base::Error("invalid print field: " + field);
      }
      continue;
    }
    if (named) throw base::Error("invalid print value: " + value);
    named = true;
    c.name = field;
  }
  if (c.name == "check") c.name = "lint";  // buildx: "check" is the lint subrequest
  if (c.name.empty()) c.name = "build";
  if (c.name != "build" && c.name != "lint" && c.name != "outline" && c.name != "targets")
    throw base::Error("unknown --call `" + c.name + "` (expected build, check, outline or targets)");
  return c;
}

int run_call(const CallSpec& call, const frontend::ast::File& file, const std::string& source,
             const std::string& display, frontend::LowerOptions lo, frontend::ImageResolver& resolver,
             bool quiet) {
  if (call.name == "targets") return run_targets(call, file, source);
  if (call.name == "lint") return run_lint(call, file, source, display, std::move(lo), resolver);
  // outline: the target is lowered as for a build; its warnings go to stderr, as a
  // build's do.
  std::vector<frontend::LintFinding> findings;
  lo.lint = &findings;
  frontend::LowerResult r;
  try {
    r = frontend::lower(file, lo, resolver);
  } catch (const base::Error&) {
    if (!quiet) print_lint_summary(findings, display);
    throw;
  }
  print_outline(call, r.outline, source);
  std::fflush(stdout);
  if (!quiet) print_lint_summary(findings, display);
  return 0;
}

void print_lint_summary(const std::vector<frontend::LintFinding>& findings, const std::string& display) {
  if (findings.empty()) return;
  auto sorted = by_line(findings);
  if (sorted.size() == 1)
    std::fprintf(stderr, "\n 1 warning found:\n");
  else
    std::fprintf(stderr, "\n %zu warnings found:\n", sorted.size());
  for (const auto& f : sorted)
    std::fprintf(stderr, " - %s: %s: %s\n", located(f.range, display).c_str(), f.rule.c_str(),
                 f.message.c_str());
  std::fflush(stderr);
}

}  // namespace builder::cli
