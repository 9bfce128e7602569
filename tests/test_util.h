// tests/test_util.h — helpers shared by the test binaries: paths to the source tree,
// shared conformance data and the builder binary; root detection for `sandbox` tests.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <string>

#include <doctest/doctest.h>

namespace builder::test {

inline std::string source_dir() { return BUILDER_SOURCE_DIR; }
inline std::string shared_dir() { return BUILDER_SHARED_DIR; }
inline std::string builder_binary() { return BUILDER_BINARY; }

/// Sandbox tests need root. On CI (CI set) they must run: without root they fail.
/// On an unprivileged local run they are skipped with a message. Returns true when the
/// test may proceed.
inline bool have_root() {
  if (::geteuid() == 0) return true;
  if (std::getenv("CI")) {
    FAIL("this test needs root and CI must run it");
    return false;
  }
  MESSAGE("skipped: needs root");
  return false;
}

}  // namespace builder::test
