// Shell-word expansion, a line-by-line port of BuildKit's shell/lex.go so that quirks
// (the shared words buffer, the order of checks in ${...}) match exactly.
#include "frontend/expand.h"

#include <map>

#include "base/error.h"
#include "frontend/parse.h"
#include "frontend/text.h"

namespace builder::frontend {
namespace {

constexpr char32_t kEof = 0xFFFFFFFF;

struct LexError {
  std::string message;
};

/// A `*`/`?`/literal pattern of ${v#p}, ${v%p} and ${v/p/r} (no bracket classes).
struct Pattern {
  enum class Kind { Star, Any, Lit };
  struct Tok {
    Kind kind;
    char32_t ch;
  };
  std::vector<Tok> toks;
  bool greedy = true;

  // Backtracking match with regexp priority (lazy stars try fewer first). Like Go's
  // regexp without (?s), `*` and `?` never match a newline.
  bool match_at(size_t ti, const std::u32string& v, size_t vi, size_t& end) const {
    if (ti == toks.size()) {
      end = vi;
      return true;
    }
    const Tok& t = toks[ti];
    switch (t.kind) {
      case Kind::Lit:
        return vi < v.size() && v[vi] == t.ch && match_at(ti + 1, v, vi + 1, end);
      case Kind::Any:
        return vi < v.size() && v[vi] != U'\n' && match_at(ti + 1, v, vi + 1, end);
      case Kind::Star: {
        size_t max = 0;
        while (vi + max < v.size() && v[vi + max] != U'\n') ++max;
        if (greedy) {
          for (size_t k = max + 1; k-- > 0;)
            if (match_at(ti + 1, v, vi + k, end)) return true;
        } else {
          for (size_t k = 0; k <= max; ++k)
            if (match_at(ti + 1, v, vi + k, end)) return true;
        }
        return false;
      }
    }
    return false;
  }
};

Pattern compile_pattern(const std::u32string& p, bool greedy) {
  Pattern out;
  out.greedy = greedy;
  for (size_t i = 0; i < p.size(); ++i) {
    char32_t c = p[i];
    if (c == U'*') {
      out.toks.push_back({Pattern::Kind::Star, 0});
    } else if (c == U'?') {
      out.toks.push_back({Pattern::Kind::Any, 0});
    } else if (c == U'\\') {
      // `\}` and `\/` stand for the delimiters; the escape is not part of the pattern.
      if (i + 1 < p.size() && (p[i + 1] == U'}' || p[i + 1] == U'/')) continue;
      if (i + 1 >= p.size())
        throw LexError{"invalid escape '\\%!c(int32=-1)'"};
      char32_t n = p[++i];
      if (n != U'*' && n != U'?' && n != U'\\')
        throw LexError{"invalid escape '\\" + text::encode_utf8(std::u32string(1, n)) + "'"};
      out.toks.push_back({Pattern::Kind::Lit, n});
    } else {
      out.toks.push_back({Pattern::Kind::Lit, c});
    }
  }
  return out;
}

std::u32string reverse_pattern(const std::u32string& p) {
  std::u32string out(p.size(), 0);
  size_t last = p.empty() ? 0 : p.size() - 1;
  for (size_t i = 0; i < p.size();) {
    size_t o = last - i;
    if (p[i] == U'\\' && i != last) {
      out[o - 1] = p[i];
      out[o] = p[i + 1];
      i += 2;
    } else {
      out[o] = p[i];
      ++i;
    }
  }
  return out;
}

std::u32string trim_prefix(const std::u32string& pat, const std::u32string& value, bool greedy) {
  Pattern p;
  try {
    p = compile_pattern(pat, greedy);
  } catch (const LexError& e) {
    throw LexError{"invalid pattern (" + text::encode_utf8(pat) + ") in substitution: " +
                   e.message};
  }
  size_t end = 0;
  if (p.match_at(0, value, 0, end)) return value.substr(end);
  return value;
}

std::u32string trim_suffix(const std::u32string& pat, const std::u32string& value, bool greedy) {
  std::u32string rv(value.rbegin(), value.rend());
  std::u32string r = trim_prefix(reverse_pattern(pat), rv, greedy);
  return std::u32string(r.rbegin(), r.rend());
}

class Lexer {
 public:
  Lexer(std::u32string src, const EnvLookup& env, const ShellOptions& o)
      : src_(std::move(src)), env_(env), opt_(o), raw_escapes_(o.raw_escapes) {}

  std::set<std::string> matched, unmatched;

  std::pair<std::u32string, std::vector<std::u32string>> process() {
    return process_stop_on(kEof, raw_escapes_);
  }

 private:
  struct Words {
    std::u32string* buf;
    std::vector<std::u32string> words;
    bool in_word = false;
    void add_char(char32_t c) {
      if (text::is_space(c) && in_word) {
        if (!buf->empty()) {
          words.push_back(*buf);
          buf->clear();
          in_word = false;
        }
      } else if (!text::is_space(c)) {
        add_raw_char(c);
      }
    }
    void add_raw_char(char32_t c) {
      buf->push_back(c);
      in_word = true;
    }
    void add_string(const std::u32string& s) {
      for (char32_t c : s) add_char(c);
    }
    void add_raw_string(const std::u32string& s) {
      *buf += s;
      in_word = true;
    }
    std::vector<std::u32string> get() {
      if (!buf->empty()) {
        words.push_back(*buf);
        buf->clear();
        in_word = false;
      }
      return words;
    }
  };

  char32_t peek() const { return pos_ < src_.size() ? src_[pos_] : kEof; }
  char32_t next() { return pos_ < src_.size() ? src_[pos_++] : kEof; }

  std::pair<std::u32string, std::vector<std::u32string>> process_stop_on(char32_t stop,
                                                                         bool raw_escapes) {
    std::u32string result;
    // BuildKit shares one words buffer between nested calls; keep that quirk.
    words_buffer_.clear();
    Words words{&words_buffer_, {}, false};
    bool saved = raw_escapes_;
    raw_escapes_ = raw_escapes;
    struct Restore {
      bool& r;
      bool v;
      ~Restore() { r = v; }
    } restore{raw_escapes_, saved};

    while (peek() != kEof) {
      char32_t ch = peek();
      if (stop != kEof && ch == stop) {
        next();
        return {result, words.get()};
      }
      bool special = ch == U'$' || ch == U'<' ||
                     (!opt_.skip_process_quotes && (ch == U'\'' || ch == U'"'));
      if (special) {
        std::u32string tmp;
        if (ch == U'$') tmp = process_dollar();
        else if (ch == U'<') tmp = process_possible_heredoc();
        else if (ch == U'\'') tmp = process_single_quote();
        else tmp = process_double_quote();
        result += tmp;
        if (ch == U'$') words.add_string(tmp);
        else words.add_raw_string(tmp);
      } else {
        ch = next();
        if (ch == static_cast<char32_t>(opt_.escape)) {
          if (raw_escapes_) {
            words.add_raw_char(ch);
            result.push_back(ch);
          }
          ch = next();
          if (ch == kEof) break;
          words.add_raw_char(ch);
        } else {
          words.add_char(ch);
        }
        result.push_back(ch);
      }
    }
    if (stop != kEof)
      throw LexError{"unexpected end of statement while looking for matching " +
                     text::encode_utf8(std::u32string(1, stop))};
    return {result, words.get()};
  }

  std::u32string process_single_quote() {
    std::u32string r;
    char32_t ch = next();
    if (opt_.raw_quotes) r.push_back(ch);
    for (;;) {
      ch = next();
      if (ch == kEof)
        throw LexError{"unexpected end of statement while looking for matching single-quote"};
      if (ch == U'\'') {
        if (opt_.raw_quotes) r.push_back(ch);
        return r;
      }
      r.push_back(ch);
    }
  }

  std::u32string process_double_quote() {
    std::u32string r;
    char32_t ch = next();
    if (opt_.raw_quotes) r.push_back(ch);
    for (;;) {
      char32_t p = peek();
      if (p == kEof)
        throw LexError{"unexpected end of statement while looking for matching double-quote"};
      if (p == U'"') {
        ch = next();
        if (opt_.raw_quotes) r.push_back(ch);
        return r;
      }
      if (p == U'$') {
        r += process_dollar();
        continue;
      }
      ch = next();
      if (ch == static_cast<char32_t>(opt_.escape)) {
        if (raw_escapes_) r.push_back(ch);
        char32_t q = peek();
        if (q == kEof) continue;
        if (q == U'"' || q == U'$' || q == static_cast<char32_t>(opt_.escape)) ch = next();
      }
      r.push_back(ch);
    }
  }

  std::optional<std::string> get_env(const std::string& name) {
    auto v = env_ ? env_(name) : std::nullopt;
    if (v) matched.insert(name);
    else unmatched.insert(name);
    return v;
  }

  static bool is_special_param(char32_t c) {
    switch (c) {
      case U'@': case U'*': case U'#': case U'?': case U'-': case U'$': case U'!': case U'0':
        return true;
      default:
        return false;
    }
  }

  std::string process_name() {
    std::u32string name;
    while (peek() != kEof) {
      char32_t ch = peek();
      if (name.empty() && text::is_digit(ch)) {
        while (peek() != kEof && text::is_digit(peek())) name.push_back(next());
        return text::encode_utf8(name);
      }
      if (name.empty() && is_special_param(ch)) {
        next();
        return text::encode_utf8(std::u32string(1, ch));
      }
      if (!text::is_letter(ch) && !text::is_digit(ch) && ch != U'_') break;
      name.push_back(next());
    }
    return text::encode_utf8(name);
  }

  static std::u32string u32(const std::string& s) { return text::decode_utf8(s); }

  std::u32string process_dollar() {
    next();
    if (peek() != U'{') {
      std::string name = process_name();
      if (name.empty()) return U"$";
      auto v = get_env(name);
      if (!v && opt_.skip_unset_env) return u32("$" + name);
      return u32(v.value_or(""));
    }
    next();
    char32_t p = peek();
    if (p == kEof) throw LexError{"syntax error: missing '}'"};
    if (p == U'{' || p == U'}' || p == U':') throw LexError{"syntax error: bad substitution"};
    std::string name = process_name();
    char32_t ch = next();
    std::u32string chs(1, ch == kEof ? U'\uFFFD' : ch);
    bool null_is_unset = false;

    auto unsupported = [&]() {
      return LexError{"unsupported modifier (" + text::encode_utf8(chs) + ") in substitution"};
    };

    if (ch == U'}') {
      auto v = get_env(name);
      if (!v && opt_.skip_unset_env) return u32("${" + name + "}");
      return u32(v.value_or(""));
    }
    if (ch == U':') {
      null_is_unset = true;
      ch = next();
      chs.push_back(ch == kEof ? U'\uFFFD' : ch);
    }
    if (null_is_unset || ch == U'+' || ch == U'-' || ch == U'?' || ch == U'#' || ch == U'%') {
      bool raw = ch == U'#' || ch == U'%';
      if (null_is_unset && raw) throw unsupported();
      std::u32string word;
      try {
        word = process_stop_on(U'}', raw).first;
      } catch (const LexError&) {
        if (peek() == kEof) throw LexError{"syntax error: missing '}'"};
        throw;
      }
      auto v = get_env(name);
      if (opt_.skip_unset_env && !v)
        return u32("${" + name) + chs + word + U"}";
      bool set = v.has_value();
      std::u32string value = u32(v.value_or(""));
      switch (ch) {
        case U'-':
          if (!set || (null_is_unset && value.empty())) return word;
          return value;
        case U'+':
          if (!set || (null_is_unset && value.empty())) return U"";
          return word;
        case U'?':
          if (!set) {
            std::string msg = word.empty() ? "is not allowed to be unset" : text::encode_utf8(word);
            throw LexError{name + ": " + msg};
          }
          if (null_is_unset && value.empty()) {
            std::string msg = word.empty() ? "is not allowed to be empty" : text::encode_utf8(word);
            throw LexError{name + ": " + msg};
          }
          return value;
        case U'%':
        case U'#': {
          bool greedy = false;
          if (!word.empty() && word[0] == ch) {
            greedy = true;
            word = word.substr(1);
          }
          if (ch == U'%') return trim_suffix(word, value, greedy);
          return trim_prefix(word, value, greedy);
        }
        default:
          throw unsupported();
      }
    }
    if (ch == U'/') {
      bool all = peek() == U'/';
      if (all) next();
      std::u32string pattern, repl;
      try {
        pattern = process_stop_on(U'/', true).first;
      } catch (const LexError&) {
        if (peek() == kEof) throw LexError{"syntax error: missing '/' in ${}"};
        throw;
      }
      try {
        repl = process_stop_on(U'}', true).first;
      } catch (const LexError&) {
        if (peek() == kEof) throw LexError{"syntax error: missing '}'"};
        throw;
      }
      auto v = get_env(name);
      if (opt_.skip_unset_env && !v) return u32("${" + name + "/") + pattern + U"/" + repl + U"}";
      std::u32string value = u32(v.value_or(""));
      Pattern re;
      try {
        re = compile_pattern(pattern, true);
      } catch (const LexError& e) {
        throw LexError{"invalid pattern (" + text::encode_utf8(pattern) + ") in substitution: " +
                       e.message};
      }
      return replace(re, value, repl, all);
    }
    throw unsupported();
  }

  // Go's Regexp.ReplaceAllString / first-match replacement.
  static std::u32string replace(const Pattern& re, const std::u32string& src,
                                const std::u32string& repl, bool all) {
    auto find = [&](size_t from, size_t& a, size_t& b) {
      for (size_t s = from; s <= src.size(); ++s) {
        size_t e;
        if (re.match_at(0, src, s, e)) {
          a = s;
          b = e;
          return true;
        }
      }
      return false;
    };
    if (!all) {
      size_t a, b;
      if (find(0, a, b)) return src.substr(0, a) + repl + src.substr(b);
      return src;
    }
    std::u32string out;
    size_t last_end = 0, search = 0;
    while (search <= src.size()) {
      size_t a, b;
      if (!find(search, a, b)) break;
      out += src.substr(last_end, a - last_end);
      if (b > last_end || a == 0) out += repl;
      last_end = b;
      if (search + 1 > b) ++search;
      else search = b;
    }
    if (last_end < src.size()) out += src.substr(last_end);
    return out;
  }

  std::u32string process_possible_heredoc() {
    next();
    if (peek() != U'<') return U"<";
    next();
    std::u32string r = U"<<";
    while (peek() == U'\t' || peek() == U'\r' || peek() == U' ') r.push_back(next());
    return r;
  }

  std::u32string src_;
  size_t pos_ = 0;
  const EnvLookup& env_;
  const ShellOptions& opt_;
  bool raw_escapes_;
  std::u32string words_buffer_;
};

}  // namespace

EnvLookup env_from_list(const std::vector<std::string>& entries) {
  std::map<std::string, std::string> m;
  for (const auto& e : entries) {
    auto eq = e.find('=');
    if (eq == std::string::npos) m[e] = "";
    else m[e.substr(0, eq)] = e.substr(eq + 1);
  }
  return [m = std::move(m)](const std::string& k) -> std::optional<std::string> {
    auto it = m.find(k);
    if (it == m.end()) return std::nullopt;
    return it->second;
  };
}

ExpandResult expand(std::string_view word, const EnvLookup& env, const ShellOptions& opts) {
  Lexer lx(text::decode_utf8(word), env, opts);
  ExpandResult r;
  try {
    auto [res, words] = lx.process();
    r.result = text::encode_utf8(res);
    for (auto& w : words) r.words.push_back(text::encode_utf8(w));
  } catch (const LexError& e) {
    throw base::Error("failed to process " + go_quote(word) + ": " + e.message);
  }
  r.matched = std::move(lx.matched);
  r.unmatched = std::move(lx.unmatched);
  return r;
}

std::string process_word(std::string_view word, const EnvLookup& env, const ShellOptions& opts) {
  return expand(word, env, opts).result;
}

std::vector<std::string> process_words(std::string_view word, const EnvLookup& env,
                                       const ShellOptions& opts) {
  return expand(word, env, opts).words;
}

}  // namespace builder::frontend
