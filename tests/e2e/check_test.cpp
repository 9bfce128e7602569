// tests/e2e/check_test.cpp — end-to-end: BuildKit's build checks and evaluation calls
// through the real binary: `build --check` (text and JSON, exit codes, nothing built),
// the warnings summary of a normal build, `# check=error=true` and
// BUILDKIT_DOCKERFILE_CHECK failing a build before anything runs, `--call=outline` and
// `--call=targets`. Contexts: testdata/e2e/check, check-build, check-clean.
#include <nlohmann/json.hpp>

#include "e2e_util.h"

using builder::e2e::Result;
using builder::e2e::testdata;
using builder::e2e::TestRoot;

namespace {

const std::string kCheckReport = R"(Check complete, 6 warnings have been found!

WARNING: FromAsCasing - https://docs.docker.com/go/dockerfile/rule/from-as-casing/
'as' and 'FROM' keywords' casing do not match
Dockerfile:7:1
--------------------
   5 |     
   6 |     # base holds the files
   7 | >>> FROM ${BASE} as base
   8 |     MAINTAINER someone
   9 |     COPY hello.txt secret.key /
--------------------

WARNING: CopyIgnoredFile - https://docs.docker.com/go/dockerfile/rule/copy-ignored-file/
Attempting to Copy file "secret.key" that is excluded by .dockerignore
Dockerfile:9:1
--------------------
   7 |     FROM ${BASE} as base
   8 |     MAINTAINER someone
   9 | >>> COPY hello.txt secret.key /
  10 |     ENV greeting hello
  11 |     WORKDIR app
--------------------

WARNING: LegacyKeyValueFormat - https://docs.docker.com/go/dockerfile/rule/legacy-key-value-format/
"ENV key=value" should be used instead of legacy "ENV key value" format
Dockerfile:10:1
--------------------
   8 |     MAINTAINER someone
   9 |     COPY hello.txt secret.key /
  10 | >>> ENV greeting hello
  11 |     WORKDIR app
  12 |     
--------------------

WARNING: WorkdirRelativePath - https://docs.docker.com/go/dockerfile/rule/workdir-relative-path/
Relative workdir "app" can have unexpected results if the base image changes
Dockerfile:11:1
--------------------
   9 |     COPY hello.txt secret.key /
  10 |     ENV greeting hello
  11 | >>> WORKDIR app
  12 |     
  13 |     # release is what ships
--------------------

WARNING: UndefinedVar - https://docs.docker.com/go/dockerfile/rule/undefined-var/
Usage of undefined variable '$RELEASE'
Dockerfile:16:1
--------------------
  14 |     FROM base AS release
  15 |     ARG VERSION
  16 | >>> LABEL version=$VERSION release=$RELEASE
  17 |     CMD /hello
  18 |     
--------------------

WARNING: JSONArgsRecommended - https://docs.docker.com/go/dockerfile/rule/json-args-recommended/
JSON arguments recommended for CMD to prevent unintended behavior related to OS signals
Dockerfile:17:1
--------------------
  15 |     ARG VERSION
  16 |     LABEL version=$VERSION release=$RELEASE
  17 | >>> CMD /hello
  18 |     
--------------------
)";

// The reachable stages only: the `unused` stage's legacy ENV is not checked.
const std::string kBuildSummary = R"(
 3 warnings found:
 - Dockerfile:4:1: FromAsCasing: 'as' and 'FROM' keywords' casing do not match
 - Dockerfile:6:1: LegacyKeyValueFormat: "ENV key=value" should be used instead of legacy "ENV key value" format
 - Dockerfile:7:1: JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals
)";

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

TEST_CASE("check: --check prints BuildKit's report, builds nothing and exits 1 on warnings") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  const std::string ctx = testdata("e2e/check");

  Result r = root.builder({"build", "--check", "-t", "checked", ctx});
  CHECK_MESSAGE(r.status == 1, r.describe());
  CHECK(r.out == kCheckReport);
  CHECK_MESSAGE(r.err.empty(), r.describe());
  // --call=check is the same call; ignorestatus keeps the report and exits 0.
  Result same = root.builder({"build", "--call=check", ctx});
  CHECK(same.status == 1);
  CHECK(same.out == kCheckReport);
  Result ignored = root.builder({"build", "--call=check,ignorestatus=true", ctx});
  CHECK_MESSAGE(ignored.status == 0, ignored.describe());
  CHECK(ignored.out == kCheckReport);
  // Nothing was built or tagged.
  Result images = root.builder({"images"});
  CHECK_MESSAGE(images.out.find("checked") == std::string::npos, images.describe());

  // The build arg replaces the file's `# check=` directive.
  Result skipped =
      root.builder({"build", "--check", "--build-arg", "BUILDKIT_DOCKERFILE_CHECK=skip=all", ctx});
  CHECK_MESSAGE(skipped.status == 0, skipped.describe());
  CHECK(skipped.out == "Check complete, no warnings found.\n");
  CHECK_MESSAGE(skipped.err.empty(), skipped.describe());

  Result clean = root.builder({"build", "--check", testdata("e2e/check-clean")});
  CHECK_MESSAGE(clean.status == 0, clean.describe());
  CHECK(clean.out == "Check complete, no warnings found.\n");
}

TEST_CASE("check: --call=check,format=json prints BuildKit's lint result document") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  Result r = root.builder({"build", "--call=check,format=json", testdata("e2e/check-build")});
  CHECK_MESSAGE(r.status == 1, r.describe());
  auto j = nlohmann::json::parse(r.out);
  std::vector<std::string> got;
  for (const auto& w : j["warnings"])
    got.push_back(w["ruleName"].get<std::string>() + "@" +
                  std::to_string(w["location"]["ranges"][0]["start"]["line"].get<int>()) + ": " +
                  w["detail"].get<std::string>());
  // --check looks at every stage, reachable or not.
  CHECK(got == std::vector<std::string>{"LegacyKeyValueFormat@2: \"ENV key=value\" should be used instead of "
                                        "legacy \"ENV key value\" format",
                                        "FromAsCasing@4: 'as' and 'FROM' keywords' casing do not match",
                                        "LegacyKeyValueFormat@6: \"ENV key=value\" should be used instead of "
                                        "legacy \"ENV key value\" format",
                                        "JSONArgsRecommended@7: JSON arguments recommended for CMD to "
                                        "prevent unintended behavior related to OS signals"});
  CHECK(j["warnings"][1]["url"] == "https://docs.docker.com/go/dockerfile/rule/from-as-casing/");
  CHECK(j["sources"][0]["filename"] == "Dockerfile");
  CHECK(j["sources"][0]["language"] == "Dockerfile");
  CHECK(!j.contains("buildError"));
}

TEST_CASE("check: a build prints the warnings of the stages it builds at its end") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  const std::string ctx = testdata("e2e/check-build");

  Result r = root.builder({"build", "--progress=plain", "-t", "warned", ctx});
  CHECK_MESSAGE(r.status == 0, r.describe());
  CHECK_MESSAGE(ends_with(r.err, "naming to warned:latest done\n" + kBuildSummary), r.describe());
  // -q prints the image ID only.
  Result q = root.builder({"build", "-q", ctx});
  CHECK_MESSAGE(q.status == 0, q.describe());
  CHECK_MESSAGE(q.err.empty(), q.describe());

  // error=true fails the build before any step runs, naming the rules.
  Result e = root.builder({"build", "--progress=plain", "-t", "refused", "--build-arg",
                           "BUILDKIT_DOCKERFILE_CHECK=error=true", ctx});
  CHECK_MESSAGE(e.status == 1, e.describe());
  CHECK(e.err ==
        kBuildSummary +
            "ERROR: failed to solve: lint violation found for rules: FromAsCasing, JSONArgsRecommended, "
            "LegacyKeyValueFormat\n");
  CHECK(e.out.empty());
  Result images = root.builder({"images"});
  CHECK_MESSAGE(images.out.find("refused") == std::string::npos, images.describe());

  // The same from the file's own directive, and through --check.
  builder::e2e::write_file(root.work() / "ctx" / "Dockerfile", "# check=error=true\nFROM scratch\nCMD /x\n");
  e = root.builder({"build", "-q", (root.work() / "ctx").string()});
  CHECK(e.status == 1);
  CHECK(e.err == "ERROR: failed to solve: lint violation found for rules: JSONArgsRecommended\n");
  e = root.builder({"build", "--check", (root.work() / "ctx").string()});
  CHECK(e.status == 1);
  CHECK(e.out.rfind("Check complete, 1 warning has been found!\n\nWARNING: JSONArgsRecommended", 0) == 0);
  CHECK(ends_with(e.out, "--------------------\n\n"));
  CHECK(e.err == "ERROR: failed to solve: lint violation found for rules: JSONArgsRecommended\n");
}

TEST_CASE("check: --call=outline and --call=targets") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  const std::string ctx = testdata("e2e/check");

  Result t = root.builder({"build", "--call=targets", ctx});
  CHECK_MESSAGE(t.status == 0, t.describe());
  CHECK(t.out ==
        "TARGET            DESCRIPTION\n"
        "base              holds the files\n"
        "release (default) is what ships\n");

  Result o = root.builder({"build", "--call=outline", "-q", ctx});
  CHECK_MESSAGE(o.status == 0, o.describe());
  CHECK(o.out ==
        "TARGET:      release\n"
        "DESCRIPTION: is what ships\n"
        "\n"
        "BUILD ARG   VALUE     DESCRIPTION\n"
        "VERSION     1.0       the version to ship\n"
        "BASE        scratch   \n"
        "\n");
  CHECK(o.err.empty());

  o = root.builder({"build", "--call=outline", "-q", "--target", "base", "--build-arg", "VERSION=2", ctx});
  CHECK_MESSAGE(o.status == 0, o.describe());
  // The base stage declares no ARG; only BASE, which its FROM uses.
  CHECK(o.out ==
        "TARGET:      base\n"
        "DESCRIPTION: holds the files\n"
        "\n"
        "BUILD ARG   VALUE     DESCRIPTION\n"
        "BASE        scratch   \n"
        "\n");

  Result j = root.builder({"build", "--call=outline,format=json", "-q", "--build-arg", "VERSION=2", ctx});
  REQUIRE_MESSAGE(j.status == 0, j.describe());
  auto doc = nlohmann::json::parse(j.out);
  CHECK(doc["name"] == "release");
  CHECK(doc["description"] == "is what ships");
  REQUIRE(doc["args"].size() == 2);
  CHECK(doc["args"][0]["name"] == "BASE");
  CHECK(doc["args"][0]["value"] == "scratch");
  CHECK(doc["args"][0]["location"]["ranges"][0]["start"]["line"] == 4);
  // As BuildKit: given a value, the stage's `ARG VERSION` (line 15) is the one
  // reported, without the global one's description.
  CHECK(doc["args"][1]["name"] == "VERSION");
  CHECK(doc["args"][1]["value"] == "2");
  CHECK(!doc["args"][1].contains("description"));
  CHECK(doc["args"][1]["location"]["ranges"][0]["start"]["line"] == 15);

  Result bad = root.builder({"build", "--call=bogus", ctx});
  CHECK(bad.status != 0);
  CHECK_MESSAGE(
      bad.err.find("unknown --call `bogus` (expected build, check, outline or targets)") != std::string::npos,
      bad.describe());
}
