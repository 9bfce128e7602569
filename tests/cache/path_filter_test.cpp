#include "cache/path_filter.h"

#include <doctest/doctest.h>

#include "base/error.h"

using namespace builder;
using cache::PathFilter;

namespace {

/// The paths of `paths` that `patterns` exclude, in order.
std::vector<std::string> excluded(const std::vector<std::string>& patterns,
                                  const std::vector<std::string>& paths) {
  PathFilter f(patterns);
  std::vector<std::string> out;
  for (const auto& p : paths)
    if (f.excluded(p)) out.push_back(p);
  return out;
}

using Paths = std::vector<std::string>;

}  // namespace

TEST_CASE("path filter: a pattern excludes the path and everything below it") {
  Paths paths{"build", "build/out.o", "build/sub/x", "buildx", "src/build", "src/main.c"};
  CHECK(excluded({"build"}, paths) == Paths{"build", "build/out.o", "build/sub/x"});
  CHECK(excluded({"src/build"}, paths) == Paths{"src/build"});
  CHECK(excluded({"src"}, paths) == Paths{"src/build", "src/main.c"});
}

TEST_CASE("path filter: `*`, `?` and classes match within one path element") {
  Paths paths{"a.log", "b.log", ".hidden.log", "logs/c.log", "ab.txt", "x.txt", "y.txt", "-.txt"};
  CHECK(excluded({"*.log"}, paths) == Paths{"a.log", "b.log", ".hidden.log"});
  CHECK(excluded({"*/*.log"}, paths) == Paths{"logs/c.log"});
  CHECK(excluded({"?.txt"}, paths) == Paths{"x.txt", "y.txt", "-.txt"});
  CHECK(excluded({"[xa-b]*.txt"}, paths) == Paths{"ab.txt", "x.txt"});
  CHECK(excluded({"[^x].txt"}, paths) == Paths{"y.txt", "-.txt"});
  CHECK(excluded({"[\\-].txt"}, paths) == Paths{"-.txt"});
  // `?` is one character, not one byte; regexp metacharacters are literal.
  CHECK(excluded({"caf?"}, {"café", "cafe", "caf"}) == Paths{"café", "cafe"});
  CHECK(excluded({"a.c", "(x|y)+"}, {"a.c", "abc", "(x|y)+", "x"}) == Paths{"a.c", "(x|y)+"});
  CHECK(excluded({"\\*.txt"}, {"*.txt", "a.txt"}) == Paths{"*.txt"});
}

TEST_CASE("path filter: `**` matches any number of path elements") {
  Paths paths{"a.log", "x/a.log", "x/y/a.log", "x/a.txt"};
  CHECK(excluded({"**/*.log"}, paths) == Paths{"a.log", "x/a.log", "x/y/a.log"});
  CHECK(excluded({"a/**/b"}, {"a/b", "a/x/b", "a/x/y/b", "a/xb", "b"}) ==
        Paths{"a/b", "a/x/b", "a/x/y/b"});
  CHECK(excluded({"**"}, paths) == paths);
  // "dir/**" takes everything below dir, not dir itself (it stays, empty).
  CHECK(excluded({"dir/**"}, {"dir", "dir/x", "dir/x/y", "dirx"}) == Paths{"dir/x", "dir/x/y"});
  // BuildKit's fast paths: a literal pattern starting with `**` is a suffix test, one
  // ending with it a prefix test.
  CHECK(excluded({"**.log"}, paths) == Paths{"a.log", "x/a.log", "x/y/a.log"});
  CHECK(excluded({"x**"}, {"x", "xy", "x/a.txt", "y/x"}) == Paths{"x", "xy", "x/a.txt"});
}

TEST_CASE("path filter: patterns are trimmed and cleaned like Go's filepath.Clean") {
  Paths paths{"build", "build/out.o", "src/build", "keep"};
  for (const auto* p :
       {"/build", "build/", "./build", "/build/.", "x/../build", "/../build", "  build\t"}) {
    CAPTURE(p);
    CHECK(excluded({p}, paths) == Paths{"build", "build/out.o"});
  }
  CHECK(excluded({"*", "!  /keep/ "}, paths) == Paths{"build", "build/out.o", "src/build"});
  // A pattern leaving the context matches nothing.
  CHECK(excluded({"../build"}, paths).empty());
}

TEST_CASE("path filter: the root is never excluded, and `.`, `/` and blanks exclude nothing") {
  CHECK(PathFilter().empty());
  CHECK(PathFilter({"", ".", "/", "./", "  "}).empty());
  CHECK_FALSE(PathFilter({"*"}).excluded(""));
  CHECK_FALSE(PathFilter({"**"}).excluded(""));
  CHECK(PathFilter({"**"}).excluded("a"));
}

TEST_CASE("path filter: the last matching pattern wins and `!` re-includes") {
  Paths paths{"README.md", "NOTES.md", "docs/guide.md"};
  CHECK(excluded({"*.md", "!README.md"}, paths) == Paths{"NOTES.md"});
  CHECK(excluded({"!README.md", "*.md"}, paths) == Paths{"README.md", "NOTES.md"});
  CHECK(excluded({"*.md", "!*.md", "NOTES.md"}, paths) == Paths{"NOTES.md"});
  CHECK(excluded({"docs", "!docs/guide.md"}, paths).empty());
  CHECK(excluded({"docs", "!**/*.md"}, paths).empty());
}

TEST_CASE("path filter: an excluded directory holds only what a `!` pattern re-includes") {
  PathFilter f({"build", "!build/keep", "logs", "!**/*.txt"});
  CHECK(f.excluded("build"));
  CHECK(f.excluded("build/out.o"));
  CHECK_FALSE(f.excluded("build/keep"));
  CHECK_FALSE(f.excluded("build/keep/deep"));
  CHECK(f.excluded("build/keeper"));
  CHECK(f.excluded("logs"));
  CHECK(f.excluded("logs/a.log"));
  CHECK_FALSE(f.excluded("logs/a.txt"));
  CHECK_FALSE(f.excluded("logs/x/a.txt"));

  CHECK(f.dir_may_hold_included("build"));
  CHECK(f.dir_may_hold_included("logs/x"));  // `**/*.txt` reaches anywhere

  PathFilter exact({"build", "!build/keep", "!src/keep"});
  CHECK(exact.dir_may_hold_included("build"));
  CHECK_FALSE(exact.dir_may_hold_included("build/keep"));  // only build/keep itself
  CHECK_FALSE(exact.dir_may_hold_included("other"));
  CHECK_FALSE(PathFilter({"build"}).dir_may_hold_included("build"));
}

TEST_CASE("path filter: patterns are applied level by level, as BuildKit's walk does") {
  // "!docs" cannot change the verdict on "docs" (not excluded yet), so it is not
  // recorded as matching "docs" and does not reach below it: docs/guide.md stays
  // excluded, as with `docker build`.
  CHECK(excluded({"**/*.md", "!docs"}, {"README.md", "docs", "docs/guide.md"}) ==
        Paths{"README.md", "docs/guide.md"});
  CHECK(excluded({"a/b", "!a"}, {"a", "a/b", "a/b/c", "a/c"}) == Paths{"a/b", "a/b/c"});
  // A pattern that matched a parent keeps matching below it.
  CHECK(excluded({"a", "!a/b", "a/b/c"}, {"a", "a/b", "a/b/c", "a/b/d"}) == Paths{"a", "a/b/c"});
}

TEST_CASE("path filter: malformed patterns are errors") {
  for (const auto* p : {"[", "a[", "[]", "[]a]", "[^]", "[a-]", "[-a]", "a\\"}) {
    CAPTURE(p);
    std::string message =
        "invalid exclude pattern `" + std::string(p) + "`: syntax error in pattern";
    CHECK_THROWS_WITH_AS(PathFilter({"ok", p}), message.c_str(), base::Error);
  }
  CHECK_THROWS_WITH_AS(PathFilter({"!"}), "illegal exclusion pattern: \"!\"", base::Error);
  CHECK_THROWS_WITH_AS(PathFilter({"! "}), "illegal exclusion pattern: \"!\"", base::Error);
  CHECK_NOTHROW(PathFilter({"]", "[\\]]", "[a\\-z]"}));
}

TEST_CASE("path match: follows Go's filepath.Match, bad patterns included") {
  // Go's own test table (path/filepath/match_test.go); nullopt is ErrBadPattern.
  struct Case {
    const char* pattern;
    const char* name;
    std::optional<bool> match;
  };
  const Case cases[] = {
      {"abc", "abc", true},         {"*", "abc", true},
      {"*c", "abc", true},          {"a*", "a", true},
      {"a*", "abc", true},          {"a*", "ab/c", false},
      {"a*/b", "abc/b", true},      {"a*/b", "a/c/b", false},
      {"a*b*c*d*e*/f", "axbxcxdxe/f", true},
      {"a*b*c*d*e*/f", "axbxcxdxexxx/f", true},
      {"a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false},
      {"a*b*c*d*e*/f", "axbxcxdxexxx/fff", false},
      {"a*b?c*x", "abxbbxdbxebxczzx", true},
      {"a*b?c*x", "abxbbxdbxebxczzy", false},
      {"ab[c]", "abc", true},       {"ab[b-d]", "abc", true},
      {"ab[e-g]", "abc", false},    {"ab[^c]", "abc", false},
      {"ab[^b-d]", "abc", false},   {"ab[^e-g]", "abc", true},
      {"a\\*b", "a*b", true},       {"a\\*b", "ab", false},
      {"a?b", "a\u263ab", true},    {"a[^a]b", "a\u263ab", true},
      {"a???b", "a\u263ab", false}, {"a[^a][^a][^a]b", "a\u263ab", false},
      {"[a-\u03b6]*", "\u03b1", true},
      {"*[a-\u03b6]", "A", false},  {"a?b", "a/b", false},
      {"a*b", "a/b", false},        {"[\\]a]", "]", true},
      {"[\\-]", "-", true},         {"[x\\-]", "x", true},
      {"[x\\-]", "-", true},        {"[x\\-]", "z", false},
      {"[\\-x]", "x", true},        {"[\\-x]", "-", true},
      {"[\\-x]", "a", false},       {"[]a]", "]", std::nullopt},
      {"[-]", "-", std::nullopt},   {"[x-]", "x", std::nullopt},
      {"[x-]", "-", std::nullopt},  {"[x-]", "z", std::nullopt},
      {"[-x]", "x", std::nullopt},  {"[-x]", "-", std::nullopt},
      {"[-x]", "a", std::nullopt},  {"\\", "a", std::nullopt},
      {"[a-b-c]", "a", std::nullopt},
      {"[", "a", std::nullopt},     {"[^", "a", std::nullopt},
      {"[^bc", "a", std::nullopt},  {"a[", "a", std::nullopt},
      {"a[", "ab", std::nullopt},   {"a[", "x", std::nullopt},
      {"a/b[", "x", std::nullopt},  {"*x", "xxx", true},
  };
  for (const auto& c : cases) {
    CAPTURE(c.pattern);
    CAPTURE(c.name);
    CHECK(cache::path_match(c.pattern, c.name) == c.match);
  }
}

TEST_CASE("path match: a leading dot is an ordinary character, `[!...]` is not a negation") {
  CHECK(cache::path_match("*.txt", ".a.txt") == true);
  CHECK(cache::path_match("*", ".hidden") == true);
  CHECK(cache::path_match("?a", ".a") == true);
  CHECK(cache::path_match("a[!x]", "a!") == true);
  CHECK(cache::path_match("a[!x]", "ab") == false);
  // POSIX classes do not exist: "[[:alpha:]]" is the class "[:alph" then a literal ']'.
  CHECK(cache::path_match("[[:alpha:]]", "a]") == true);
  CHECK(cache::path_match("[[:alpha:]]", "a") == false);
  // A class is the one operator that can match a '/'.
  CHECK(cache::path_match("a[^x]b", "a/b") == true);
}

TEST_CASE("path match: has_wildcards skips what a backslash escapes") {
  CHECK(cache::has_wildcards("*.txt"));
  CHECK(cache::has_wildcards("a?"));
  CHECK(cache::has_wildcards("x[1]"));
  CHECK(cache::has_wildcards("a\\*b*"));
  CHECK_FALSE(cache::has_wildcards("a\\*b"));
  CHECK_FALSE(cache::has_wildcards("x\\[1]"));
  CHECK_FALSE(cache::has_wildcards("plain/path.txt"));
}
