// The public .dockerignore vectors (moby/patternmatcher v0.6.1, as BuildKit vendors it)
// from ../shared/conformance/dockerignore, read at test time.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include "base/error.h"
#include "cache/ignore_file.h"
#include "cache/path_filter.h"
#include "test_util.h"

using namespace builder;

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot read " << path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t i = 0;
  for (;;) {
    size_t j = s.find(sep, i);
    out.push_back(s.substr(i, j == std::string::npos ? std::string::npos : j - i));
    if (j == std::string::npos) return out;
    i = j + 1;
  }
}

/// A vector path ("dir/file/", "./a") as the build walk presents it: clean, relative.
std::string clean_path(const std::string& p) {
  std::vector<std::string> parts;
  for (const auto& e : split(p, '/'))
    if (!e.empty() && e != ".") parts.push_back(e);
  std::string out;
  for (const auto& e : parts) out += (out.empty() ? "" : "/") + e;
  return out;
}

}  // namespace

TEST_CASE("dockerignore conformance: every patternmatcher vector") {
  std::string text = read_text(test::shared_dir() + "/conformance/dockerignore/cases.tsv");
  auto lines = split(text, '\n');
  REQUIRE(lines.size() > 1);
  CHECK(lines[0] == "patterns\tpath\texpected\tsource");
  int checked = 0, root_rows = 0;
  for (size_t n = 1; n < lines.size(); ++n) {
    if (lines[n].empty()) continue;
    auto f = split(lines[n], '\t');
    REQUIRE_MESSAGE(f.size() == 4, "malformed row " << n + 1);
    std::vector<std::string> patterns;
    if (!f[0].empty()) patterns = split(f[0], ' ');
    std::string path = clean_path(f[1]);
    CAPTURE(lines[n]);
    if (f[2] == "error") {
      bool threw = false;
      try {
        cache::PathFilter filter(patterns);
        (void)filter.excluded(path);
      } catch (const base::Error&) {
        threw = true;
      }
      CHECK_MESSAGE(threw, "patterns were accepted");
    } else if (path.empty()) {
      // The context root itself: the build never asks (it always enters the build), so
      // PathFilter defines it as never excluded. The vectors ask it only of `**` and
      // `*.go` ("/" and "."); check the pattern still excludes everything below.
      cache::PathFilter filter(patterns);
      CHECK_FALSE(filter.excluded(path));
      if (f[2] == "true") CHECK(filter.excluded("x/y"));
      ++root_rows;
    } else {
      cache::PathFilter filter(patterns);
      CHECK(filter.excluded(path) == (f[2] == "true"));
    }
    ++checked;
  }
  CHECK(checked == 97);
  CHECK(root_rows == 2);
}

TEST_CASE("dockerignore conformance: reading an ignore file") {
  std::string dir = test::shared_dir() + "/conformance/dockerignore/ignorefile/";
  auto got = cache::parse_ignore_file(read_text(dir + "dockerignore"));
  std::vector<std::string> want;
  for (const auto& l : split(read_text(dir + "expected"), '\n'))
    if (!l.empty()) want.push_back(l);
  CHECK(got == want);
}

TEST_CASE("ignore file: BOM, comments before trimming, cleaning") {
  using V = std::vector<std::string>;
  CHECK(cache::parse_ignore_file("\xEF\xBB\xBF" "a\n") == V{"a"});
  CHECK(cache::parse_ignore_file("#c\n  #not a comment\n") == V{"#not a comment"});
  CHECK(cache::parse_ignore_file("\r\n/a//b/./c/\r\n!  /d/../e\n..\n/\n") == V{"a/b/c", "!e", "..", "/"});
  CHECK(cache::parse_ignore_file("") == V{});
}
