// frontend/expand.h — shell-word expansion exactly as BuildKit's shell lexer
// (frontend/dockerfile/shell/lex.go): quotes, escapes, $v, ${v}, ${v:-w}, ${v:+w},
// ${v-w}, ${v+w}, ${v?m}, ${v#p}, ${v##p}, ${v%p}, ${v%%p}, ${v/p/r}, ${v//p/r}.
// Pure functions over strings; knows nothing of instructions or stages.
#pragma once

#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace builder::frontend {

/// Looks a variable up: nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

/// An EnvLookup over "KEY=value" entries (a later entry wins).
EnvLookup env_from_list(const std::vector<std::string>& entries);

struct ShellOptions {
  char escape = '\\';
  bool raw_quotes = false;           ///< keep quote characters in the result
  bool raw_escapes = false;          ///< keep escape characters in the result
  bool skip_process_quotes = false;  ///< quotes are ordinary characters
  bool skip_unset_env = false;       ///< leave `$unset` references as written
};

struct ExpandResult {
  std::string result;               ///< the word, expanded (ProcessWord)
  std::vector<std::string> words;   ///< the expansion split into words (ProcessWords)
  std::set<std::string> matched;    ///< names looked up and found set
  std::set<std::string> unmatched;  ///< names looked up and found unset
};

/// Expands `word`. Throws base::Error("failed to process \"word\": ...") on bad syntax,
/// unterminated quotes, or `${v?msg}` with v unset.
ExpandResult expand(std::string_view word, const EnvLookup& env, const ShellOptions& opts = {});

/// ProcessWord: one word in, one string out (quotes removed, whitespace kept).
std::string process_word(std::string_view word, const EnvLookup& env,
                         const ShellOptions& opts = {});

/// ProcessWords: expands, then splits on unquoted whitespace; empty words dropped.
std::vector<std::string> process_words(std::string_view word, const EnvLookup& env,
                                       const ShellOptions& opts = {});

}  // namespace builder::frontend
