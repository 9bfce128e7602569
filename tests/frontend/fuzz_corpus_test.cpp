// The fuzzer's corpus as a regression test under the normal build: every input kept in
// testdata/fuzz/corpus (scripts/fuzz) and every fixed crash in testdata/fuzz/regressions
// goes through the fuzzer's own harness (fuzz/harness.h), where only base::Error may be
// thrown (and is swallowed); anything else escaping fails the case.
#include <algorithm>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "harness.h"
#include "test_util.h"

namespace fs = std::filesystem;
using builder::fuzz::Outcome;
using builder::fuzz::run_frontend;

namespace {

std::vector<fs::path> files_in(const std::string& rel) {
  std::vector<fs::path> out;
  fs::path dir = fs::path(builder::test::source_dir()) / rel;
  if (!fs::is_directory(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename().string()[0] != '.') out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Runs every file through the harness; returns how many reached each outcome.
std::map<Outcome, int> run_all(const std::vector<fs::path>& files) {
  std::map<Outcome, int> seen;
  for (const auto& f : files) {
    std::string name = f.filename().string();
    CAPTURE(name);
    try {
      ++seen[run_frontend(slurp(f))];
    } catch (const std::exception& e) {
      FAIL_CHECK("non-base::Error escaped the frontend: " << e.what());
    } catch (...) {
      FAIL_CHECK("non-std exception escaped the frontend");
    }
  }
  return seen;
}

}  // namespace

TEST_CASE("fuzz corpus: every kept input is parsed, expanded and lowered or cleanly rejected") {
  auto files = files_in("testdata/fuzz/corpus");
  REQUIRE(files.size() > 50);
  auto seen = run_all(files);
  // A corpus that no longer reaches lowering would test little: keep all three kinds.
  CHECK(seen[Outcome::kParseRejected] > 0);
  CHECK(seen[Outcome::kLowerRejected] > 0);
  CHECK(seen[Outcome::kLowered] > 0);
}

TEST_CASE("fuzz regressions: the crashes the fuzzer found stay fixed") {
  run_all(files_in("testdata/fuzz/regressions"));
}
