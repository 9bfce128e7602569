#include "cache/path_filter.h"

#include <algorithm>

#include "base/error.h"

namespace builder::cache {
namespace {

using Token = PathFilter::Token;
using Kind = Token::Kind;

std::string_view trim_space(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r\n\v\f";
  size_t b = s.find_first_not_of(kSpace);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(kSpace) - b + 1);
}

// Go's path.Clean: "" -> ".", "a//b/./c/.." -> "a/b", "/../a" -> "/a", "../a" stays.
std::string go_clean(std::string_view p) {
  bool rooted = !p.empty() && p[0] == '/';
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    std::string_view e = p.substr(i, j - i);
    if (e == "..") {
      if (!out.empty() && out.back() != "..")
        out.pop_back();
      else if (!rooted)
        out.push_back(e);
    } else if (!e.empty() && e != ".") {
      out.push_back(e);
    }
    i = j + 1;
  }
  std::string r = rooted ? "/" : "";
  for (size_t k = 0; k < out.size(); ++k) {
    if (k) r += '/';
    r += out[k];
  }
  return r.empty() ? "." : r;
}

// UTF-8 to code points, as Go's scanner reads patterns (and `?` matches one code point).
// A byte that starts no valid sequence becomes U+DC80+byte, so it matches only itself.
std::u32string decode(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    auto b = static_cast<unsigned char>(s[i]);
    size_t len = 0;
    char32_t cp = 0;
    if (b < 0x80)
      len = 1, cp = b;
    else if ((b >> 5) == 0x6)
      len = 2, cp = b & 0x1f;
    else if ((b >> 4) == 0xe)
      len = 3, cp = b & 0x0f;
    else if ((b >> 3) == 0x1e)
      len = 4, cp = b & 0x07;
    bool ok = len > 0 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) {
      auto c = static_cast<unsigned char>(s[i + k]);
      if ((c >> 6) != 0x2)
        ok = false;
      else
        cp = (cp << 6) | (c & 0x3f);
    }
    if (!ok) len = 1, cp = 0xdc00 | b;
    out.push_back(cp);
    i += len;
  }
  return out;
}

[[noreturn]] void bad_pattern(const std::string& raw) {
  throw base::Error("invalid exclude pattern `" + raw + "`: syntax error in pattern");
}

// One element of a character class, as Go's filepath.Match reads it (getEsc): `-` and `]`
// must be escaped, and the class must not end here.
bool class_char(const std::u32string& s, size_t& i, char32_t& out) {
  if (i >= s.size() || s[i] == '-' || s[i] == ']') return false;
  if (s[i] == '\\' && ++i >= s.size()) return false;
  out = s[i++];
  return i < s.size();
}

// Reads `[...]` after its '['; false if malformed (unclosed, empty, dangling range).
bool read_class(const std::u32string& s, size_t& i, Token& t) {
  t.kind = Kind::Class;
  if (i < s.size() && s[i] == '^') {
    t.negated = true;
    ++i;
  }
  for (;;) {
    if (i < s.size() && s[i] == ']' && !t.ranges.empty()) {
      ++i;
      return true;
    }
    char32_t lo = 0;
    if (!class_char(s, i, lo)) return false;
    char32_t hi = lo;
    if (s[i] == '-' && !class_char(s, ++i, hi)) return false;
    t.ranges.emplace_back(lo, hi);
  }
}

Token char_token(char32_t c) {
  Token t;
  t.c = c;
  return t;
}

Token kind_token(Kind k) {
  Token t;
  t.kind = k;
  return t;
}

// Compiles a cleaned pattern the way moby/patternmatcher translates it into a regexp,
// including its fast paths: a pattern with no wildcard but a trailing `**` is a prefix
// test ("a**" matches "ab/c"), one starting with `**` and otherwise literal is a suffix
// test ("**.log" matches "a/b.log"). Classes follow filepath.Match ("[*]" is a class).
std::vector<Token> compile(const std::string& text, const std::string& raw) {
  enum class Type { Exact, Prefix, Suffix, Regexp };
  Type type = Type::Exact;
  std::u32string s = decode(text);
  std::vector<Token> out;
  size_t i = 0;
  for (size_t step = 0; i < s.size(); ++step) {
    char32_t ch = s[i++];
    if (ch == '*') {
      if (i < s.size() && s[i] == '*') {
        ++i;
        if (i < s.size() && s[i] == '/') ++i;  // "**/" is "**"
        if (i == s.size()) {
          if (type == Type::Exact) {
            type = Type::Prefix;
          } else {
            out.push_back(kind_token(Kind::Rest));
            type = Type::Regexp;
          }
        } else {
          out.push_back(kind_token(Kind::DirsOrNone));
          type = Type::Regexp;
        }
        if (step == 0) type = Type::Suffix;
      } else {
        out.push_back(kind_token(Kind::Star));
        type = Type::Regexp;
      }
    } else if (ch == '?') {
      out.push_back(kind_token(Kind::Any));
      type = Type::Regexp;
    } else if (ch == '\\') {
      if (i == s.size()) bad_pattern(raw);
      out.push_back(char_token(s[i++]));
      type = Type::Regexp;
    } else if (ch == '[') {
      Token t;
      if (!read_class(s, i, t)) bad_pattern(raw);
      out.push_back(std::move(t));
      type = Type::Regexp;
    } else {
      if (ch == ']') type = Type::Regexp;
      out.push_back(char_token(ch));
    }
  }
  if (type == Type::Prefix) {
    out.push_back(kind_token(Kind::Rest));
  } else if (type == Type::Suffix) {
    // HasSuffix(path, text[2:]), or for "**/x" also path == "x": "(.*/)?x".
    std::u32string suffix = s.substr(2);
    out.clear();
    if (!suffix.empty() && suffix[0] == '/') {
      out.push_back(kind_token(Kind::DirsOrNone));
      suffix.erase(0, 1);
    } else {
      out.push_back(kind_token(Kind::Rest));
    }
    for (char32_t c : suffix) out.push_back(char_token(c));
  }
  return out;
}

bool in_class(const Token& t, char32_t c) {
  bool in = std::any_of(t.ranges.begin(), t.ranges.end(),
                        [c](const auto& r) { return r.first <= c && c <= r.second; });
  return in != t.negated;
}

// A pattern run as a small NFA over the code points of a path. at_[i]: about to match
// token i (at_[n] accepts); inside_[i]: within the ".*" of the `**` at token i, which
// must end with a '/'. Every edge points forward, so one pass computes the closure.
class Run {
 public:
  explicit Run(const std::vector<Token>& t)
      : t_(t),
        at_(t.size() + 1),
        inside_(t.size()),
        next_at_(at_.size()),
        next_inside_(inside_.size()) {
    at_[0] = 1;
    close();
  }

  void step(char32_t c) {
    std::vector<char>& at = next_at_;
    std::vector<char>& inside = next_inside_;
    std::fill(at.begin(), at.end(), 0);
    std::fill(inside.begin(), inside.end(), 0);
    for (size_t i = 0; i < t_.size(); ++i) {
      if (inside_[i]) {
        inside[i] = 1;
        if (c == '/') at[i + 1] = 1;
      }
      if (!at_[i]) continue;
      const Token& t = t_[i];
      switch (t.kind) {
        case Kind::Char:
          at[i + 1] |= c == t.c;
          break;
        case Kind::Any:
          at[i + 1] |= c != '/';
          break;
        case Kind::Class:
          at[i + 1] |= in_class(t, c);
          break;
        case Kind::Star:
          at[i] |= c != '/';
          break;
        case Kind::Rest:
          at[i] = 1;
          break;
        case Kind::DirsOrNone:
          break;  // consumes through inside_
      }
    }
    at_.swap(at);
    inside_.swap(inside);
    close();
  }

  bool accepts() const { return at_.back(); }
  bool alive() const {
    return std::find(at_.begin(), at_.end(), 1) != at_.end() ||
           std::find(inside_.begin(), inside_.end(), 1) != inside_.end();
  }

 private:
  void close() {
    for (size_t i = 0; i < t_.size(); ++i) {
      if (!at_[i]) continue;
      Kind k = t_[i].kind;
      if (k == Kind::Star || k == Kind::Rest) at_[i + 1] = 1;
      if (k == Kind::DirsOrNone) at_[i + 1] = inside_[i] = 1;
    }
  }

  const std::vector<Token>& t_;
  std::vector<char> at_, inside_;
  std::vector<char> next_at_, next_inside_;  // scratch for step(), kept to avoid allocations
};

}  // namespace

PathFilter::PathFilter(const std::vector<std::string>& patterns) {
  for (const auto& raw : patterns) {
    // The normalisation of moby/patternmatcher/ignorefile.ReadAll, then of New().
    std::string_view p = trim_space(raw);
    if (p.empty()) continue;
    Pattern x;
    if (p[0] == '!') {
      x.negated = true;
      p = trim_space(p.substr(1));
      if (p.empty()) throw base::Error("illegal exclusion pattern: \"!\"");
    }
    x.text = go_clean(p);
    if (x.text.size() > 1 && x.text[0] == '/') x.text.erase(0, 1);
    if (x.text == "." || x.text == "/") continue;  // never matches a path below the root
    x.tokens = compile(x.text, raw);
    any_negated_ = any_negated_ || x.negated;
    patterns_.push_back(std::move(x));
  }
}

bool PathFilter::excluded(std::string_view rel) const {
  if (rel.empty() || patterns_.empty()) return false;
  std::u32string path = decode(rel);
  size_t levels = static_cast<size_t>(std::count(path.begin(), path.end(), U'/')) + 1;
  // hits[p * levels + k]: pattern p matches the first k+1 elements of `rel` exactly.
  std::vector<char> hits(patterns_.size() * levels);
  for (size_t p = 0; p < patterns_.size(); ++p) {
    Run run(patterns_[p].tokens);
    size_t k = 0;
    for (char32_t c : path) {
      if (c == '/') hits[p * levels + k++] = run.accepts();
      run.step(c);
      if (!run.alive()) break;
    }
    if (k == levels - 1) hits[p * levels + k] = run.accepts();
  }
  // fsutil's walk: each level starts from the patterns that matched its parent
  // (MatchesUsingParentResults). A pattern skipped because it could not change the
  // verdict is not recorded as matched, so the order of patterns matters per level.
  std::vector<char> parent(patterns_.size()), matched_here(patterns_.size());
  bool verdict = false;
  for (size_t k = 0; k < levels; ++k) {
    verdict = false;
    for (size_t p = 0; p < patterns_.size(); ++p) {
      bool match = parent[p];
      if (!match) {
        if (patterns_[p].negated != verdict) {
          matched_here[p] = 0;
          continue;
        }
        match = hits[p * levels + k];
      }
      matched_here[p] = match;
      if (match) verdict = !patterns_[p].negated;
    }
    parent.swap(matched_here);
  }
  return verdict;
}

bool PathFilter::dir_may_hold_included(std::string_view rel) const {
  if (!any_negated_) return false;
  std::u32string prefix = decode(rel);
  if (!prefix.empty()) prefix.push_back('/');
  for (const auto& x : patterns_) {
    if (!x.negated) continue;
    Run run(x.tokens);
    for (char32_t c : prefix) {
      run.step(c);
      if (!run.alive()) break;
    }
    if (run.alive()) return true;
  }
  return false;
}

}  // namespace builder::cache
