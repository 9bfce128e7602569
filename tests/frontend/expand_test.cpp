// Shell-word expansion against BuildKit's envVarTest, wordsTest and the lex_test.go
// tables (expansion-cases.jsonl), read at test time from ../shared/conformance/shell.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/fs.h"
#include "base/strings.h"
#include "frontend/expand.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace builder;
using namespace builder::frontend;

namespace {

std::string read_file(const fs::path& p) { return base::read_file(p.string()); }

fs::path shell_dir() { return fs::path(test::shared_dir()) / "conformance" / "shell"; }

}  // namespace

TEST_CASE("expand: envVarTest (A and U lines)") {
  auto env = env_from_list({"PWD=/home", "SHELL=bash", "KOREAN=한국어", "NULL="});
  std::istringstream in(read_file(shell_dir() / "envVarTest"));
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] == '#') continue;
    std::string t(base::trim(line));
    if (t.empty()) continue;
    auto f = base::split(t, '|');
    REQUIRE(f.size() == 3);
    std::string plat(base::trim(f[0])), input(base::trim(f[1])), expected(base::trim(f[2]));
    if (plat == "W") continue;
    CAPTURE(input);
    ++n;
    if (expected == "error") {
      CHECK_THROWS_AS(process_word(input, env), base::Error);
    } else {
      std::string got;
      try {
        got = process_word(input, env);
      } catch (const std::exception& e) {
        got = std::string("ERROR ") + e.what();
      }
      CHECK(got == expected);
    }
  }
  CHECK(n == 228);
}

TEST_CASE("expand: wordsTest") {
  std::vector<std::string> envs;
  std::istringstream in(read_file(shell_dir() / "wordsTest"));
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] == '#') continue;
    if (line.rfind("ENV ", 0) == 0) {
      std::string def = line.substr(3);
      def.erase(0, def.find_first_not_of(' '));
      envs.push_back(def);
      continue;
    }
    auto bar = line.find('|');
    REQUIRE(bar != std::string::npos);
    std::string input(base::trim(line.substr(0, bar)));
    std::string right = line.substr(bar + 1);
    right.erase(0, right.find_first_not_of(' '));
    auto expected = base::split(right, ',');
    CAPTURE(input);
    ++n;
    std::vector<std::string> got;
    try {
      got = process_words(input, env_from_list(envs));
    } catch (const base::Error&) {
      got = {"error"};
    }
    CHECK(got == expected);
  }
  CHECK(n == 24);
}

TEST_CASE("expand: expansion-cases.jsonl") {
  std::istringstream in(read_file(shell_dir() / "expansion-cases.jsonl"));
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto c = nlohmann::json::parse(line);
    std::string id = c["id"];
    CAPTURE(id);
    std::vector<std::string> env;
    for (auto& [k, v] : c["env"].items()) env.push_back(k + "=" + v.get<std::string>());
    ++n;
    std::string input = c["input"];
    if (c.value("error", false)) {
      try {
        expand(input, env_from_list(env));
        FAIL("no error");
      } catch (const base::Error& e) {
        if (c.contains("error_contains"))
          CHECK(std::string(e.what()).find(c["error_contains"].get<std::string>()) != std::string::npos);
      }
      continue;
    }
    ExpandResult r;
    try {
      r = expand(input, env_from_list(env));
    } catch (const std::exception& e) {
      FAIL(e.what());
      continue;
    }
    CHECK(r.result == c["expected"].get<std::string>());
    if (c.contains("matched"))
      CHECK(std::vector<std::string>(r.matched.begin(), r.matched.end()) ==
            c["matched"].get<std::vector<std::string>>());
    if (c.contains("unmatched"))
      CHECK(std::vector<std::string>(r.unmatched.begin(), r.unmatched.end()) ==
            c["unmatched"].get<std::vector<std::string>>());
  }
  CHECK(n == 39);
}
