#include "cache/path_filter.h"

#include <algorithm>

#include "base/error.h"
#include "base/strings.h"

namespace builder::cache {
namespace {

using Token = PathFilter::Token;
using Kind = Token::Kind;

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
    // Go's filepath.Match accepts a reversed range (it just never matches), but
    // patternmatcher compiles patterns to regular expressions, which refuse it.
    if (hi < lo) return false;
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
    std::string_view p = base::trim(raw);
    if (p.empty()) continue;
    Pattern x;
    if (p[0] == '!') {
      x.negated = true;
      p = base::trim(p.substr(1));
      if (p.empty()) throw base::Error("illegal exclusion pattern: \"!\"");
    }
    x.text = base::clean_path(p);
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

namespace {

// Go's utf8.DecodeRuneInString: the code point at the start of `s` and its length; an
// invalid or truncated sequence (overlong, surrogate, > U+10FFFF) is U+FFFD of length 1.
std::pair<char32_t, size_t> decode_rune(std::string_view s) {
  constexpr char32_t kError = 0xfffd;
  if (s.empty()) return {kError, 0};
  auto b0 = static_cast<unsigned char>(s[0]);
  if (b0 < 0x80) return {b0, 1};
  size_t len = 0;
  unsigned char lo = 0x80, hi = 0xbf;  // accepted range of the second byte
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    len = 2;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    len = 3;
    if (b0 == 0xe0) lo = 0xa0;
    if (b0 == 0xed) hi = 0x9f;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    len = 4;
    if (b0 == 0xf0) lo = 0x90;
    if (b0 == 0xf4) hi = 0x8f;
  } else {
    return {kError, 1};
  }
  if (s.size() < len) return {kError, 1};
  char32_t cp = b0 & (0xff >> (len + 1));
  for (size_t k = 1; k < len; ++k) {
    auto c = static_cast<unsigned char>(s[k]);
    if (k == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xbf)) return {kError, 1};
    cp = (cp << 6) | (c & 0x3f);
  }
  return {cp, len};
}

// Go's getEsc: one possibly escaped character of a class; false for ErrBadPattern.
bool get_esc(std::string_view& chunk, char32_t& r) {
  if (chunk.empty() || chunk[0] == '-' || chunk[0] == ']') return false;
  if (chunk[0] == '\\') {
    chunk.remove_prefix(1);
    if (chunk.empty()) return false;
  }
  auto [cp, n] = decode_rune(chunk);
  r = cp;
  chunk.remove_prefix(n);
  return !(cp == 0xfffd && n == 1) && !chunk.empty();
}

// Go's scanChunk: strips leading stars, then takes up to the next `*` outside a class.
std::string_view scan_chunk(std::string_view& pattern, bool& star) {
  star = false;
  while (!pattern.empty() && pattern[0] == '*') {
    pattern.remove_prefix(1);
    star = true;
  }
  bool in_range = false;
  size_t i = 0;
  for (; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c == '\\') {
      if (i + 1 < pattern.size()) ++i;
    } else if (c == '[') {
      in_range = true;
    } else if (c == ']') {
      in_range = false;
    } else if (c == '*' && !in_range) {
      break;
    }
  }
  std::string_view chunk = pattern.substr(0, i);
  pattern.remove_prefix(i);
  return chunk;
}

enum class Chunk { Match, NoMatch, Bad };

// Go's matchChunk: whether `chunk` (no stars) matches a prefix of `s`; on Match, `s` is
// left at the rest. After a mismatch the chunk is still parsed, to report a bad pattern.
Chunk match_chunk(std::string_view chunk, std::string_view& s) {
  bool failed = false;
  while (!chunk.empty()) {
    if (!failed && s.empty()) failed = true;
    switch (chunk[0]) {
      case '[': {
        char32_t r = 0;
        if (!failed) {
          auto [cp, n] = decode_rune(s);
          r = cp;
          s.remove_prefix(n);
        }
        chunk.remove_prefix(1);
        bool negated = false;
        if (!chunk.empty() && chunk[0] == '^') {
          negated = true;
          chunk.remove_prefix(1);
        }
        bool match = false;
        int nrange = 0;
        for (;;) {
          if (!chunk.empty() && chunk[0] == ']' && nrange > 0) {
            chunk.remove_prefix(1);
            break;
          }
          char32_t lo = 0, hi = 0;
          if (!get_esc(chunk, lo)) return Chunk::Bad;
          hi = lo;
          if (chunk[0] == '-') {
            chunk.remove_prefix(1);
            if (!get_esc(chunk, hi)) return Chunk::Bad;
          }
          if (lo <= r && r <= hi) match = true;
          ++nrange;
        }
        if (match == negated) failed = true;
        break;
      }
      case '?':
        if (!failed) {
          if (s[0] == '/') failed = true;
          s.remove_prefix(decode_rune(s).second);
        }
        chunk.remove_prefix(1);
        break;
      case '\\':
        chunk.remove_prefix(1);
        if (chunk.empty()) return Chunk::Bad;
        [[fallthrough]];
      default:
        if (!failed) {
          if (chunk[0] != s[0]) failed = true;
          s.remove_prefix(1);
        }
        chunk.remove_prefix(1);
        break;
    }
  }
  return failed ? Chunk::NoMatch : Chunk::Match;
}

}  // namespace

std::optional<bool> path_match(std::string_view pattern, std::string_view name) {
  while (!pattern.empty()) {
    bool star = false;
    std::string_view chunk = scan_chunk(pattern, star);
    if (star && chunk.empty()) return name.find('/') == std::string_view::npos;  // trailing `*`
    std::string_view t = name;
    Chunk c = match_chunk(chunk, t);
    if (c == Chunk::Match && (t.empty() || !pattern.empty())) {
      name = t;
      continue;
    }
    if (c == Chunk::Bad) return std::nullopt;
    bool next = false;
    if (star) {
      // Let the star take one more byte, never a '/'.
      for (size_t i = 0; i < name.size() && name[i] != '/'; ++i) {
        t = name.substr(i + 1);
        c = match_chunk(chunk, t);
        if (c == Chunk::Match) {
          if (pattern.empty() && !t.empty()) continue;
          name = t;
          next = true;
          break;
        }
        if (c == Chunk::Bad) return std::nullopt;
      }
    }
    if (next) continue;
    // No match; the rest of the pattern must still be well formed.
    while (!pattern.empty()) {
      std::string_view rest = scan_chunk(pattern, star);
      std::string_view empty;
      if (match_chunk(rest, empty) == Chunk::Bad) return std::nullopt;
    }
    return false;
  }
  return name.empty();
}

bool has_wildcards(std::string_view path) {
  for (size_t i = 0; i < path.size(); ++i) {
    if (path[i] == '\\') ++i;
    else if (path[i] == '*' || path[i] == '?' || path[i] == '[') return true;
  }
  return false;
}

}  // namespace builder::cache
