#include "base/strings.h"

#include <doctest/doctest.h>

using namespace builder;

TEST_CASE("strings: clean_path is Go's path.Clean") {
  CHECK(base::clean_path("") == ".");
  CHECK(base::clean_path("a//b/./c/..") == "a/b");
  CHECK(base::clean_path("/../a") == "/a");
  CHECK(base::clean_path("../a") == "../a");
  CHECK(base::clean_path("a/../..") == "..");
  CHECK(base::clean_path("/") == "/");
  CHECK(base::clean_path("docs/") == "docs");
  CHECK(base::clean_path("./") == ".");
}

TEST_CASE("strings: trim removes ASCII white space at both ends only") {
  CHECK(base::trim("  a b \t\r\n") == "a b");
  CHECK(base::trim(" \t ") == "");
}
