// BuildKit's per-instruction argument rules (parser/line_parsers.go), applied to the
// pieces the ANTLR parser split out of an instruction line. Each rule is a small
// function: JSON-or-string, JSON-or-list, whitespace list, name/value pairs, words,
// HEALTHCHECK and ONBUILD.
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/strings.h"
#include "frontend/parse.h"
#include "frontend/parse_internal.h"
#include "frontend/text.h"

namespace builder::frontend::detail {
namespace {

bool is_ws_byte(char c) { return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r'; }

struct Args {
  std::vector<std::string> nodes;
  bool json = false;
};

Args parse_maybe_json(std::string_view rest, bool grammar_json) {
  Args a;
  if (rest.empty()) return a;
  auto arr = parse_json_array(rest);
  if (arr && grammar_json) {
    a.nodes = std::move(*arr);
    a.json = true;
    return a;
  }
  if (arr) {  // valid JSON the grammar did not classify: trust Go's decoder
    a.nodes = std::move(*arr);
    a.json = true;
    return a;
  }
  a.nodes.emplace_back(rest);
  return a;
}

Args parse_maybe_json_to_list(std::string_view rest, bool grammar_json) {
  Args a;
  auto arr = parse_json_array(rest);
  if (arr) {
    (void)grammar_json;
    a.nodes = std::move(*arr);
    a.json = true;
    return a;
  }
  if (!rest.empty()) a.nodes = split_whitespace(rest);
  return a;
}

Args parse_name_val(std::string_view rest, const std::string& key, char escape) {
  Args a;
  auto words = parse_words(rest, escape);
  if (words.empty()) return a;
  if (words[0].find('=') == std::string::npos) {
    auto parts = split_whitespace(rest, 2);
    if (parts.size() < 2) throw base::Error(key + " must have two arguments");
    a.nodes = {parts[0], parts[1], ""};
    return a;
  }
  for (const auto& w : words) {
    auto eq = w.find('=');
    if (eq == std::string::npos)
      throw base::Error("Syntax error - can't find = in " + go_quote(w) +
                        ". Must be of the form: name=value");
    a.nodes.push_back(w.substr(0, eq));
    a.nodes.push_back(w.substr(eq + 1));
    a.nodes.push_back("=");
  }
  return a;
}

}  // namespace

std::vector<std::string> split_whitespace(std::string_view s, int max_parts) {
  std::vector<std::string> out;
  size_t i = 0;
  for (;;) {
    if (max_parts > 0 && static_cast<int>(out.size()) == max_parts - 1) {
      out.emplace_back(s.substr(i));
      return out;
    }
    size_t j = i;
    while (j < s.size() && !is_ws_byte(s[j])) ++j;
    if (j == s.size()) {
      out.emplace_back(s.substr(i));
      return out;
    }
    out.emplace_back(s.substr(i, j - i));
    while (j < s.size() && is_ws_byte(s[j])) ++j;
    i = j;
  }
}

std::vector<std::string> parse_words(std::string_view rest, char escape) {
  enum { kSpaces, kWord, kQuote } phase = kSpaces;
  std::vector<std::string> words;
  std::u32string r = text::decode_utf8(rest);
  std::u32string buf;
  char32_t quote = 0;
  bool blank_ok = false;
  const char32_t esc = static_cast<unsigned char>(escape);
  for (size_t pos = 0; pos <= r.size(); ++pos) {
    char32_t ch = pos < r.size() ? r[pos] : 0;
    if (phase == kSpaces) {
      if (pos == r.size()) break;
      if (text::is_space(ch)) continue;
      phase = kWord;
    }
    if ((phase == kWord || phase == kQuote) && pos == r.size()) {
      if (blank_ok || !buf.empty()) words.push_back(text::encode_utf8(buf));
      break;
    }
    if (phase == kWord) {
      if (text::is_space(ch)) {
        phase = kSpaces;
        if (blank_ok || !buf.empty()) words.push_back(text::encode_utf8(buf));
        buf.clear();
        blank_ok = false;
        continue;
      }
      if (ch == U'\'' || ch == U'"') {
        quote = ch;
        blank_ok = true;
        phase = kQuote;
      }
      if (ch == esc) {
        if (pos + 1 == r.size()) continue;
        buf.push_back(ch);
        ++pos;
        ch = r[pos];
      }
      buf.push_back(ch);
      continue;
    }
    if (phase == kQuote) {
      if (ch == quote) phase = kWord;
      if (ch == esc && quote != U'\'') {
        if (pos + 1 == r.size()) {
          phase = kWord;
          continue;
        }
        ++pos;
        buf.push_back(ch);
        ch = r[pos];
      }
      buf.push_back(ch);
    }
  }
  return words;
}

std::optional<std::vector<std::string>> parse_json_array(std::string_view text) {
  std::string_view t = text::trim_left_space(text);
  if (t.empty() || t[0] != '[') return std::nullopt;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(t.begin(), t.end());
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (!j.is_array()) return std::nullopt;
  std::vector<std::string> out;
  for (const auto& e : j) {
    if (!e.is_string())
      throw base::Error("when using JSON array syntax, arrays must be comprised of strings only");
    out.push_back(e.get<std::string>());
  }
  return out;
}

ast::Instruction node_from_line(std::string_view line, char escape) {
  std::string trimmed(text::trim_space(line));
  ast::Instruction ins;
  ins.original = std::string(line);
  LineParts parts;
  if (!trimmed.empty()) parts = split_line(trimmed, escape);
  ins.keyword = parts.keyword;
  ins.name = base::to_lower(parts.keyword);
  ins.flags = std::move(parts.flags);
  ins.rest = parts.rest;
  const std::string& n = ins.name;
  std::string_view rest = ins.rest;
  Args a;
  if (n == "add" || n == "copy" || n == "volume") {
    a = parse_maybe_json_to_list(rest, parts.json_candidate);
  } else if (n == "run" || n == "cmd" || n == "entrypoint" || n == "shell") {
    a = parse_maybe_json(rest, parts.json_candidate);
  } else if (n == "from" || n == "expose") {
    if (!rest.empty()) a.nodes = split_whitespace(rest);
  } else if (n == "maintainer" || n == "user" || n == "workdir" || n == "stopsignal") {
    if (!rest.empty()) a.nodes.emplace_back(rest);
  } else if (n == "env") {
    a = parse_name_val(rest, "ENV", escape);
  } else if (n == "label") {
    a = parse_name_val(rest, "LABEL", escape);
  } else if (n == "arg") {
    a.nodes = parse_words(rest, escape);
  } else if (n == "healthcheck") {
    size_t sep = 0;
    while (sep < rest.size() && !text::is_space(static_cast<unsigned char>(rest[sep]))) ++sep;
    size_t next = sep;
    while (next < rest.size() && text::is_space(static_cast<unsigned char>(rest[next]))) ++next;
    if (sep > 0) {
      Args cmd = parse_maybe_json(rest.substr(next), false);
      a.nodes.emplace_back(rest.substr(0, sep));
      for (auto& s : cmd.nodes) a.nodes.push_back(std::move(s));
      a.json = cmd.json;
    }
  } else if (n == "onbuild") {
    if (!rest.empty())
      ins.onbuild = std::make_unique<ast::Instruction>(node_from_line(rest, escape));
  } else {
    a.nodes.emplace_back("");
  }
  ins.args = std::move(a.nodes);
  ins.json_form = a.json;
  return ins;
}

}  // namespace builder::frontend::detail
