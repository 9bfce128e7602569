// The file-level pre-pass of the parser, a port of BuildKit's parser.Parse loop:
// physical lines, directives, the escape token, continuation joining (comments and
// blank lines inside continuations dropped) and heredoc body collection. Each
// assembled instruction line goes to the ANTLR parser (parse_line.cpp) through
// node_from_line (parse_args.cpp).
#include "frontend/parse.h"

#include <set>

#include "base/error.h"
#include "base/strings.h"
#include "frontend/parse_internal.h"
#include "frontend/text.h"

namespace builder::frontend {
namespace {

constexpr size_t kMaxLine = 65535;

std::string_view trim_newline(std::string_view s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
  return s;
}

bool is_comment(std::string_view line) {
  line = text::trim_left_space(line);
  return !line.empty() && line[0] == '#';
}

bool is_go_regex_space(char c) {  // RE2 \s
  return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}

/// BuildKit's DirectiveParser: only lines at the very top can be directives.
class DirectiveParser {
 public:
  /// Returns {name, value} when `line` (leading whitespace already removed) is a directive.
  std::optional<std::pair<std::string, std::string>> parse_line(std::string_view line) {
    if (done_) return std::nullopt;
    if (line.empty() || line[0] != '#') return finish();
    line.remove_prefix(1);
    line = text::trim_left_space(line);
    // ^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$
    size_t i = 0;
    if (i >= line.size() || !std::isalpha(static_cast<unsigned char>(line[i]))) return finish();
    while (i < line.size() && std::isalnum(static_cast<unsigned char>(line[i]))) ++i;
    std::string key(line.substr(0, i));
    while (i < line.size() && is_go_regex_space(line[i])) ++i;
    if (i >= line.size() || line[i] != '=') return finish();
    ++i;
    while (i < line.size() && is_go_regex_space(line[i])) ++i;
    std::string_view v = line.substr(i);
    while (!v.empty() && is_go_regex_space(v.back())) v.remove_suffix(1);
    if (v.empty() || v.find('\n') != std::string_view::npos) return finish();
    std::string k = base::to_lower(key);
    if (k != "syntax" && k != "escape" && k != "check") return finish();
    if (!seen_.insert(k).second) throw base::Error("only one " + k + " parser directive can be used");
    return std::make_pair(k, std::string(v));
  }

 private:
  std::nullopt_t finish() {
    done_ = true;
    return std::nullopt;
  }
  bool done_ = false;
  std::set<std::string> seen_;
};

/// `([^E])E[ \t]*$|^E[ \t]*$`: strips a trailing continuation token. Returns true when
/// the line ends the instruction (no continuation).
bool trim_continuation(std::string& line, char esc) {
  size_t end = line.size();
  while (end > 0 && (line[end - 1] == ' ' || line[end - 1] == '\t')) --end;
  if (end == 0 || line[end - 1] != esc) return true;
  if (end >= 2 && line[end - 2] == esc) return true;
  line.resize(end - 1);
  return false;
}

bool can_contain_heredoc(const ast::Instruction& ins) {
  const ast::Instruction* n = &ins;
  if (ins.name == "onbuild" && ins.onbuild) n = ins.onbuild.get();
  if (n->name != "add" && n->name != "copy" && n->name != "run") return false;
  return !n->json_form;
}

base::SourceRange make_range(const std::string& file, int start, int end,
                             const std::vector<std::string_view>& lines) {
  base::SourceRange r;
  r.file = file;
  r.start_line = start;
  r.end_line = end;
  r.start_col = 1;
  if (start >= 1 && static_cast<size_t>(start) <= lines.size()) {
    std::string_view l = trim_newline(lines[start - 1]);
    r.start_col = static_cast<int>(l.size() - text::trim_left_space(l).size()) + 1;
  }
  r.end_col = 1;
  if (end >= 1 && static_cast<size_t>(end) <= lines.size())
    r.end_col = std::max<int>(1, static_cast<int>(trim_newline(lines[end - 1]).size()));
  return r;
}

}  // namespace

ast::File parse(std::string_view bytes, const std::string& filename) {
  ast::File file;
  file.filename = filename;
  // Physical lines, each keeping its '\n'.
  std::vector<std::string_view> lines;
  for (size_t i = 0; i < bytes.size();) {
    size_t nl = bytes.find('\n', i);
    size_t end = nl == std::string_view::npos ? bytes.size() : nl + 1;
    lines.push_back(bytes.substr(i, end - i));
    i = end;
  }
  if (!lines.empty() && lines[0].substr(0, 3) == "\xEF\xBB\xBF") lines[0].remove_prefix(3);

  auto error_at = [&](const std::string& msg, int start, int end) {
    base::SourceRange r = make_range(filename, start, end, lines);
    return base::Error(msg, r);
  };

  DirectiveParser directives;
  char esc = '\\';
  std::vector<std::string> comments;  // BuildKit's PrevComment of the next instruction
  bool directive_line = false;        // the last line process_line saw was a directive
  int current = 0;
  size_t idx = 0;
  auto process_line = [&](std::string_view raw, bool strip_left) -> std::string {
    if (raw.size() > kMaxLine + 1 || (raw.size() == kMaxLine + 1 && raw.back() != '\n'))
      throw error_at("dockerfile line greater than max allowed size of 65535", current + 1, 0);
    std::string_view t = trim_newline(raw);
    if (strip_left) t = text::trim_left_space(t);
    std::optional<std::pair<std::string, std::string>> d;
    try {
      d = directives.parse_line(t);
    } catch (base::Error& e) {
      throw error_at(e.message(), current + 1, current + 1);
    }
    directive_line = d.has_value();
    if (d) {
      if (d->first == "escape") {
        if (d->second != "`" && d->second != "\\")
          throw error_at("invalid escape token '" + d->second + "' does not match ` or \\",
                         current + 1, current + 1);
        esc = d->second[0];
        file.directives.escape = esc;
      } else if (d->first == "syntax") {
        file.directives.syntax = d->second;
      } else {
        file.directives.check = d->second;
      }
    }
    if (is_comment(t)) return {};
    return std::string(t);
  };

  while (idx < lines.size()) {
    // Comments are collected as BuildKit does: the raw line minus its first byte, trimmed.
    if (is_comment(lines[idx])) {
      std::string c(base::trim(lines[idx].substr(1)));
      if (c.empty()) comments.clear();
      else comments.push_back(std::move(c));
    }
    std::string line = process_line(lines[idx++], true);
    if (directive_line && !comments.empty()) comments.pop_back();
    ++current;
    int start_line = current;
    bool eol = trim_continuation(line, esc);
    if (eol && line.empty()) continue;
    std::string buf = line;
    bool empty_cont = false;
    while (!eol && idx < lines.size()) {
      std::string_view raw = lines[idx++];
      std::string next = process_line(raw, false);
      ++current;
      if (is_comment(raw)) continue;
      if (text::trim_left_space(trim_newline(next)).empty()) {
        empty_cont = true;
        continue;
      }
      eol = trim_continuation(next, esc);
      buf += next;
    }
    if (empty_cont)
      file.warnings.push_back(filename + ":" + std::to_string(current) +
                              ": Empty continuation line found in: " + buf);

    ast::Instruction ins;
    try {
      ins = detail::node_from_line(buf, esc);
    } catch (base::Error& e) {
      throw error_at(e.message(), start_line, current);
    }

    if (can_contain_heredoc(ins) && buf.find("<<") != std::string::npos) {
      std::vector<ast::Heredoc> docs;
      try {
        docs = heredocs_from_line(buf);
      } catch (base::Error& e) {
        throw error_at(e.message(), start_line, current);
      }
      for (auto& h : docs) {
        bool terminated = false;
        std::string content = h.content;
        while (idx < lines.size()) {
          std::string_view raw = lines[idx++];
          ++current;
          std::string_view term = trim_newline(raw);
          if (h.chomp)
            while (!term.empty() && term.front() == '\t') term.remove_prefix(1);
          if (term == h.name) {
            terminated = true;
            break;
          }
          content += raw;
        }
        if (!terminated) throw error_at("unterminated heredoc", start_line, current);
        h.content = std::move(content);
        ins.heredocs.push_back(std::move(h));
      }
      if (ins.name == "onbuild" && ins.onbuild) ins.onbuild->heredocs = ins.heredocs;
    }
    ins.range = make_range(filename, start_line, current, lines);
    if (ins.onbuild) ins.onbuild->range = ins.range;
    ins.comments = std::move(comments);
    comments.clear();
    file.instructions.push_back(std::move(ins));
  }
  if (file.instructions.empty()) throw error_at("file with no instructions", std::max(current, 1), 0);
  return file;
}

}  // namespace builder::frontend
