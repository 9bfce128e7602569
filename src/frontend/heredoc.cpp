// Heredoc detection exactly as BuildKit's parser: the line is lexed into shell words
// (quotes and escapes kept raw); a word matching ^(\d*)<<(-?)\s*([^<]*)$ names a
// heredoc whose terminator is that word after quote removal.
#include "base/error.h"
#include "frontend/expand.h"
#include "frontend/parse.h"

namespace builder::frontend {

std::optional<ast::Heredoc> parse_heredoc_word(std::string_view src) {
  size_t i = 0;
  while (i < src.size() && src[i] >= '0' && src[i] <= '9') ++i;
  std::string digits(src.substr(0, i));
  if (src.substr(i, 2) != "<<") return std::nullopt;
  i += 2;
  bool chomp = false;
  if (i < src.size() && src[i] == '-') {
    chomp = true;
    ++i;
  }
  while (i < src.size() && (src[i] == ' ' || src[i] == '\t' || src[i] == '\n' || src[i] == '\f' ||
                            src[i] == '\r'))
    ++i;
  std::string_view rest = src.substr(i);
  if (rest.find('<') != std::string_view::npos) return std::nullopt;
  if (rest.empty()) return std::nullopt;

  EnvLookup none = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
  ShellOptions o;
  o.skip_unset_env = true;
  auto words = process_words(rest, none, o);
  if (words.size() != 1) return std::nullopt;
  o.raw_quotes = true;
  auto raw = process_words(rest, none, o);
  if (raw.size() != words.size())
    throw base::Error("internal lexing of heredoc produced inconsistent results: " +
                      std::string(rest));
  auto quotes = [](const std::string& s) {
    size_t n = 0;
    for (char c : s) n += (c == '\'' || c == '"');
    return n;
  };
  ast::Heredoc h;
  h.name = words[0];
  h.expand = quotes(words[0]) == quotes(raw[0]);
  h.chomp = chomp;
  h.fd = digits.empty() ? 0 : static_cast<unsigned>(std::stoul(digits));
  return h;
}

std::vector<ast::Heredoc> heredocs_from_line(std::string_view line) {
  EnvLookup none = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
  ShellOptions o;
  o.raw_quotes = true;
  o.raw_escapes = true;
  o.skip_unset_env = true;
  std::vector<std::string> words;
  try {
    words = process_words(line, none, o);
  } catch (const base::Error&) {
    words.clear();  // BuildKit ignores lexing errors here
  }
  std::vector<ast::Heredoc> docs;
  for (const auto& w : words)
    if (auto h = parse_heredoc_word(w)) docs.push_back(std::move(*h));
  return docs;
}

}  // namespace builder::frontend
