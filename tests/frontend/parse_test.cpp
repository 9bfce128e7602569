// Parser conformance: BuildKit's testfiles dump byte for byte, negative cases fail,
// line numbers, heredocs, and every real Dockerfile parses. Data is read at test time
// from ../shared/conformance.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/fs.h"
#include "frontend/parse.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace builder;

namespace {

std::string read_file(const fs::path& p) { return base::read_file(p.string()); }

fs::path conformance() { return fs::path(test::shared_dir()) / "conformance"; }

std::vector<fs::path> subdirs(const fs::path& p) {
  std::vector<fs::path> out;
  for (auto& e : fs::directory_iterator(p))
    if (e.is_directory()) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("parse: every BuildKit testfile dumps byte-identical to its result") {
  auto dirs = subdirs(conformance() / "parser" / "testfiles");
  REQUIRE(dirs.size() >= 20);
  for (const auto& d : dirs) {
    CAPTURE(d.filename().string());
    std::string got;
    try {
      got = frontend::dump_ast(frontend::parse(read_file(d / "Dockerfile"), "Dockerfile"));
    } catch (const std::exception& e) {
      got = std::string("ERROR: ") + e.what();
    }
    CHECK(got == read_file(d / "result"));
  }
}

TEST_CASE("parse: every BuildKit negative testfile fails") {
  auto dirs = subdirs(conformance() / "parser" / "testfiles-negative");
  REQUIRE(dirs.size() == 4);
  for (const auto& d : dirs) {
    CAPTURE(d.filename().string());
    CHECK_THROWS_AS(frontend::parse(read_file(d / "Dockerfile"), "Dockerfile"), base::Error);
  }
}

TEST_CASE("parse: instruction line ranges match BuildKit") {
  auto dir = conformance() / "parser" / "line-numbers";
  auto file = frontend::parse(read_file(dir / "Dockerfile"), "Dockerfile");
  std::istringstream tsv(read_file(dir / "expected.tsv"));
  std::string line;
  std::getline(tsv, line);  // header
  int rows = 0;
  while (std::getline(tsv, line)) {
    if (line.empty()) continue;
    std::string node;
    int start = 0, end = 0;
    std::istringstream ls(line);
    ls >> node >> start >> end;
    CAPTURE(node);
    if (node == "root") {
      REQUIRE(!file.instructions.empty());
      CHECK(file.instructions.front().range.start_line == start);
      CHECK(file.instructions.back().range.end_line == end);
    } else {
      size_t i = std::stoul(node) - 1;
      REQUIRE(i < file.instructions.size());
      CHECK(file.instructions[i].range.start_line == start);
      CHECK(file.instructions[i].range.end_line == end);
    }
    ++rows;
  }
  CHECK(rows == 4);
  CHECK(file.instructions.size() == 3);
}

TEST_CASE("parse: heredoc cases") {
  std::istringstream in(read_file(conformance() / "parser" / "heredoc" / "cases.jsonl"));
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto c = nlohmann::json::parse(line);
    std::string id = c["id"];
    CAPTURE(id);
    std::string kind = c["kind"];
    ++n;
    if (kind == "parse") {
      auto file = frontend::parse(c["dockerfile"].get<std::string>(), "Dockerfile");
      auto& expect = c["expect"];
      REQUIRE(file.instructions.size() == expect.size());
      for (size_t i = 0; i < expect.size(); ++i) {
        auto& docs = file.instructions[i].heredocs;
        REQUIRE(docs.size() == expect[i].size());
        for (size_t k = 0; k < docs.size(); ++k) {
          auto& e = expect[i][k];
          CHECK(docs[k].name == e["name"].get<std::string>());
          CHECK(docs[k].content == e["content"].get<std::string>());
          CHECK(docs[k].expand == e["expand"].get<bool>());
          CHECK(docs[k].chomp == e["chomp"].get<bool>());
          CHECK(docs[k].fd == e["fd"].get<unsigned>());
        }
      }
    } else if (kind == "word") {
      std::string input = c["input"];
      if (c["error"].get<bool>()) {
        CHECK_THROWS_AS(frontend::parse_heredoc_word(input), base::Error);
      } else {
        auto h = frontend::parse_heredoc_word(input);
        if (c["name"].is_null()) {
          CHECK(!h.has_value());
        } else {
          REQUIRE(h.has_value());
          CHECK(h->name == c["name"].get<std::string>());
        }
      }
    } else if (kind == "line") {
      auto docs = frontend::heredocs_from_line(c["input"].get<std::string>());
      std::vector<std::string> names;
      for (auto& d : docs) names.push_back(d.name);
      CHECK(names == c["names"].get<std::vector<std::string>>());
    }
  }
  CHECK(n == 39);
}

TEST_CASE("parse: every real Dockerfile parses") {
  auto dirs = subdirs(conformance() / "real-dockerfiles");
  CHECK(dirs.size() == 40);
  for (const auto& d : dirs) {
    CAPTURE(d.filename().string());
    CHECK_NOTHROW(frontend::parse(read_file(d / "Dockerfile"), "Dockerfile"));
  }
}

TEST_CASE("parse: flags, ONBUILD nesting and quirks dump as BuildKit") {
  auto dump = [](const std::string& s) { return frontend::dump_ast(frontend::parse(s, "Dockerfile")); };
  CHECK(dump("COPY --a=\"x y\" --b=\\\" --c= -- --d e\n") ==
        "(copy [\"--a=x y\" \"--b=\\\"\" \"--c=\"] \"--d\" \"e\")\n");
  CHECK(dump("COPY a --from=x b\n") == "(copy \"a\" \"--from=x\" \"b\")\n");
  CHECK(dump("ONBUILD --f=1 RUN --mount=x echo hi\n") ==
        "(onbuild [\"--f=1\"] (run [\"--mount=x\"] \"echo hi\"))\n");
  CHECK(dump("ONBUILD\n") == "(onbuild)\n");
  CHECK(dump("INVALID\n") == "(invalid \"\")\n");
  CHECK(dump("CMD [\"a\"] x\n") == "(cmd \"[\\\"a\\\"] x\")\n");
  CHECK(dump("RUN [\"a\", \"\\u00e9\\u0007\\u200b\\ud83d\\ude00\\u007f\"]\n") ==
        "(run \"a\" \"é\\a\\u200b😀\\x7f\")\n");
  CHECK(dump("HEALTHCHECK CMD [\"a\", \"b\"]\nHEALTHCHECK NONE\nHEALTHCHECK\n") ==
        "(healthcheck \"CMD\" \"a\" \"b\")\n(healthcheck \"NONE\")\n(healthcheck)\n");
  CHECK(dump("FROM\n") == "(from)\n");
  CHECK(dump("COPY \"a b\" c\n") == "(copy \"\\\"a\" \"b\\\"\" \"c\")\n");
  CHECK(dump("COPY --from=é a b\n") == "(copy [\"--from=Ã©\"] \"a\" \"b\")\n");
  CHECK(dump("LABEL a=b=c\n") == "(label \"a\" \"b=c\" \"=\")\n");
  CHECK(dump("RUN <<EOF\necho hi\nEOF\nCOPY <<A <<B /dst\na\nA\nb\nB\n") ==
        "(run \"<<EOF\")\n(copy \"<<A\" \"<<B\" \"/dst\")\n");
}

TEST_CASE("parse: errors carry file and line") {
  try {
    frontend::parse("FROM busybox\n\nENV PATH\n", "Dockerfile");
    FAIL("no error");
  } catch (const base::Error& e) {
    CHECK(std::string(e.what()) == "Dockerfile:3:1: ENV must have two arguments");
  }
  CHECK_THROWS_WITH(frontend::parse("FROM a\nRUN <<EOF\nhi\n", "Dockerfile"),
                    "Dockerfile:2:1: unterminated heredoc");
  CHECK_THROWS(frontend::parse("# escape=x\nFROM a\n", "Dockerfile"));
  CHECK_THROWS(frontend::parse("# escape=\\\n# escape=`\nFROM a\n", "Dockerfile"));
  CHECK_THROWS(frontend::parse("CMD [\"a\", 1]\n", "Dockerfile"));
}

TEST_CASE("parse: an empty Dockerfile is an error located at line 1") {
  for (const char* text : {"", "# only a comment\n", "\n"}) {
    CAPTURE(text);
    try {
      frontend::parse(text, "Dockerfile");
      FAIL("parsed an empty Dockerfile");
    } catch (const base::Error& e) {
      CHECK(e.message() == "file with no instructions");
      REQUIRE(e.where());
      CHECK(e.where()->valid());
      CHECK(e.where()->start_line == 1);
    }
  }
}
