// cache/path_filter.h — .dockerignore semantics (which paths of a local context are
// excluded from the build) and Go's filepath.Match for COPY source wildcards; each shared
// by the context checksum and the COPY, so the cache key covers exactly what the copy
// reads. Pure: no I/O, no knowledge of the file system beyond relative path strings.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace builder::cache {

/// Exclude patterns as BuildKit applies them (moby/patternmatcher behind fsutil):
/// - each pattern is trimmed; a leading `!` re-includes; the rest is cleaned like Go's
///   filepath.Clean and loses a leading `/`, so "/a/./b/" and "a/b" are one pattern;
/// - `*`, `?` and `[...]` (`[^...]` negates) match within one path element, `\` escapes;
///   `**` matches any number of elements, zero included; "dir/**" matches everything
///   below "dir" but not "dir" itself; "**" alone matches everything; as in BuildKit's
///   fast paths, an otherwise literal pattern starting with `**` tests a suffix
///   ("**.log" matches "a/b.log") and one ending with `**` a prefix ("a**" matches "ab/c");
/// - a path is excluded when the last pattern that matches it or one of its parents is
///   not a `!` pattern. Parents are decided first, as BuildKit's walk does: a pattern
///   that matched a parent keeps matching below it, and one skipped at the parent
///   (it could not change the verdict there) does not, so with "**/*.md" then "!docs",
///   docs/guide.md stays excluded, as with `docker build`.
/// An excluded directory whose subtree holds a path that is not excluded still enters the
/// build, with only those entries (see dir_may_hold_included()); callers apply that rule.
/// Immutable after construction; safe to share between threads.
class PathFilter {
 public:
  /// Excludes nothing.
  PathFilter() = default;
  /// Compiles `patterns` (.dockerignore lines without comments). Empty lines and lines
  /// that clean to "." exclude nothing. Throws base::Error on a malformed pattern, as
  /// BuildKit refuses them: "illegal exclusion pattern: \"!\"", or for what Go's
  /// filepath.Match rejects, "invalid exclude pattern `a[`: syntax error in pattern".
  explicit PathFilter(const std::vector<std::string>& patterns);

  bool empty() const { return patterns_.empty(); }

  /// Whether `rel` is excluded. `rel` is a clean path relative to the context root
  /// ("a/b", no "." or ".." elements, no leading or trailing '/'); "" (the root) never is.
  bool excluded(std::string_view rel) const;

  /// Whether a path strictly below the directory `rel` may be re-included by a `!`
  /// pattern. When false, everything below an excluded `rel` is excluded too, so a walk
  /// may skip it. May answer true for a subtree where nothing is re-included after all.
  bool dir_may_hold_included(std::string_view rel) const;

  // One element of a compiled pattern (public only so the matcher in the .cpp can see it).
  struct Token {
    enum class Kind {
      Char,        ///< the code point `c`
      Any,         ///< `?`: one code point but '/'
      Class,       ///< `[...]`: one code point in `ranges` (or not, if negated), never '/'
      Star,        ///< `*`: any run without '/'
      DirsOrNone,  ///< `**` followed by more pattern: "" or any string ending in '/'
      Rest,        ///< trailing `**`: anything
    };
    Kind kind = Kind::Char;
    char32_t c = 0;
    bool negated = false;
    std::vector<std::pair<char32_t, char32_t>> ranges;
  };
  struct Pattern {
    std::string text;  ///< cleaned, without the `!`
    bool negated = false;
    std::vector<Token> tokens;
  };

 private:
  std::vector<Pattern> patterns_;
  bool any_negated_ = false;
};

/// Go's filepath.Match on Linux, byte for byte: `*` is any run without '/', `?` one code
/// point but '/', `[...]` one code point in the class (`^` negates; `-` and `]` must be
/// escaped; a class may match '/'), `\` escapes the next character; anything
/// else matches itself. Returns nullopt where Go returns ErrBadPattern: for a malformed
/// pattern whatever `name` is (`a[`, `[]a]`, `[a-]`, `x\`). COPY sources match with it.
std::optional<bool> path_match(std::string_view pattern, std::string_view name);

/// Whether `path` holds a wildcard (`*`, `?`, `[`) not escaped by `\`, as BuildKit's
/// containsWildcards decides that a COPY source is a pattern: `a\*b` is a literal path.
bool has_wildcards(std::string_view path);

}  // namespace builder::cache
