// Build checks: every rule of BuildKit's check set on a Dockerfile that triggers it (rule,
// line, column and message verbatim, most cases taken from BuildKit's own check tests)
// and on one that must not; `# check=` options, per-instruction `# check=` comments,
// BUILDKIT_DOCKERFILE_CHECK, error=true; the outline and the target list.
#include "frontend/lint.h"

#include <algorithm>
#include <map>

#include "base/error.h"
#include "frontend/lint_internal.h"
#include "frontend/lower.h"
#include "frontend/outline.h"
#include "frontend/parse.h"
#include "test_util.h"

namespace doctest {
template <>
struct StringMaker<std::vector<std::string>> {
  static String convert(const std::vector<std::string>& v) {
    std::string s = "{";
    for (const auto& e : v) s += "\n  \"" + e + "\"";
    return (s + (v.empty() ? "}" : "\n}")).c_str();
  }
};
}  // namespace doctest

using namespace builder;
using namespace builder::frontend;

namespace {

/// Base images: linux/amd64 with PATH set, unless `configs` says otherwise.
class Images : public ImageResolver {
 public:
  std::map<std::string, base::Json> configs;
  ResolvedImage resolve(const std::string& ref) override {
    ResolvedImage r;
    r.ref = ref.find(':') == std::string::npos ? ref + ":latest" : ref;
    r.digest = "sha256:" + std::string(64, 'b');
    auto it = configs.find(r.ref);
    r.config = it != configs.end() ? it->second
                                   : base::Json{{"architecture", "amd64"},
                                                {"os", "linux"},
                                                {"config", {{"Env", {"PATH=/usr/bin:/bin"}}}}};
    return r;
  }
};

struct Checked {
  std::vector<std::string> warnings;  ///< "LINE:COL Rule: message", by line
  std::string error;                  ///< "Dockerfile:LINE:COL: message" or "message"
  LowerResult result;
};

Checked run_checks(const std::string& dockerfile, LowerOptions opts, Images& images) {
  Checked c;
  std::vector<LintFinding> findings;
  opts.lint = &findings;
  try {
    c.result = lower(parse(dockerfile, "Dockerfile"), opts, images);
  } catch (const base::Error& e) {
    c.error = e.where() ? e.where()->str() + ": " + e.message() : e.message();
  }
  std::stable_sort(findings.begin(), findings.end(),
                   [](const auto& a, const auto& b) { return a.range.start_line < b.range.start_line; });
  for (const auto& f : findings)
    c.warnings.push_back(std::to_string(f.range.start_line) + ":" + std::to_string(f.range.start_col) + " " +
                         f.rule + ": " + f.message);
  return c;
}

/// `--check`: every stage is checked.
Checked check(const std::string& dockerfile, LowerOptions opts = {}) {
  Images images;
  opts.all_stages = true;
  return run_checks(dockerfile, opts, images);
}

/// A normal build: only the stages the target reaches are lowered, and checked.
Checked build(const std::string& dockerfile, LowerOptions opts = {}) {
  Images images;
  return run_checks(dockerfile, opts, images);
}

using W = std::vector<std::string>;

}  // namespace

TEST_CASE("lint: every rule has BuildKit's name, and a documentation page unless BuildKit has none") {
  const auto& rules = lint_rules::all();
  REQUIRE(rules.size() == 22);
  for (const LintRule* r : rules) {
    CAPTURE(r->name);
    if (r->name == "InvalidBaseImagePlatform")
      CHECK(r->url.empty());
    else
      CHECK(r->url.rfind("https://docs.docker.com/go/dockerfile/rule/", 0) == 0);
    CHECK(r->experimental == (r->name == "InvalidDefinitionDescription"));
  }
  CHECK(lint_rules::kUndefinedVar.url == "https://docs.docker.com/go/dockerfile/rule/undefined-var/");
  CHECK(lint_rules::kExposeInvalidFormat.description ==
        "IP address and host-port mapping should not be used in EXPOSE instruction. This will become an "
        "error in a future release");
}

TEST_CASE("lint: StageNameCasing and FromAsCasing") {
  auto c = check(
      "\n# warning: stage name should be lowercase\n#\nFROM scratch AS BadStageName\n\n"
      "# warning: 'as' should match 'FROM' cmd casing.\n#\nFROM scratch as base2\n\nFROM scratch AS base3\n");
  CHECK(c.warnings == W{"4:1 StageNameCasing: Stage name 'BadStageName' should be lowercase",
                        "8:1 FromAsCasing: 'as' and 'FROM' keywords' casing do not match"});
  c = check("from scratch AS base\n\nfrom scratch as base2\n");
  CHECK(c.warnings == W{"1:1 FromAsCasing: 'AS' and 'from' keywords' casing do not match"});
  // A keyword of mixed case is ConsistentInstructionCasing's business only.
  c = check("FROM scratch AS base\n  From scratch as b2\n");
  CHECK(c.warnings == W{"2:3 ConsistentInstructionCasing: Command 'From' should match the case of the "
                        "command majority (uppercase)"});
  CHECK(check("FROM scratch AS base\nFROM scratch AS lower_case\n").warnings.empty());
}

TEST_CASE("lint: NoEmptyContinuation points at the line the instruction ends on") {
  auto c = check(
      "\nFROM scratch\n# warning: empty continuation line\nCOPY Dockerfile \\\n\n.\nCOPY Dockerfile \\\n.\n");
  CHECK(c.warnings == W{"6:1 NoEmptyContinuation: Empty continuation line"});
  CHECK(check("FROM scratch\nCOPY a \\\n# a comment is not empty\n b\n").warnings.empty());
}

TEST_CASE("lint: ConsistentInstructionCasing follows the majority") {
  CHECK(check("FROM scratch\n# warning\ncopy Dockerfile /foo\nCOPY Dockerfile /bar\n").warnings ==
        W{"3:1 ConsistentInstructionCasing: Command 'copy' should match the case of the command majority "
          "(uppercase)"});
  CHECK(check("from scratch\nCOPY Dockerfile /foo\ncopy Dockerfile /bar\n").warnings ==
        W{"2:1 ConsistentInstructionCasing: Command 'COPY' should match the case of the command majority "
          "(lowercase)"});
  CHECK(check("frOM scratch as base\nfrom scratch as base2\n").warnings ==
        W{"1:1 ConsistentInstructionCasing: Command 'frOM' should match the case of the command majority "
          "(lowercase)"});
  CHECK(check("FROM scratch\ncopy a /a\ncopy b /b\ncopy c /c\n").warnings ==
        W{"1:1 ConsistentInstructionCasing: Command 'FROM' should match the case of the command majority "
          "(lowercase)"});
  // Global ARGs take no part; a tie goes to upper case.
  CHECK(check("arg x=1\nFROM scratch\ncopy a /a\n").warnings ==
        W{"3:1 ConsistentInstructionCasing: Command 'copy' should match the case of the command majority "
          "(uppercase)"});
  CHECK(check("from scratch\ncopy Dockerfile /foo\n").warnings.empty());
  CHECK(check("FROM scratch\nRUN <<'EOT'\nenv\nEOT\n").warnings.empty());
}

TEST_CASE("lint: DuplicateStageName and ReservedStageName") {
  auto c = check("FROM scratch AS b\nFROM scratch AS B2\nFROM scratch AS b\n");
  CHECK(c.warnings == W{"2:1 StageNameCasing: Stage name 'B2' should be lowercase",
                        "3:1 DuplicateStageName: Duplicate stage name \"b\", stage names should be unique"});
  // builder refuses the duplicate when it lowers; the warning made before survives.
  CHECK(c.error == "Dockerfile:3:1: duplicate stage name \"b\"");
  CHECK(check("FROM scratch AS scratch\nFROM scratch AS context\n").warnings ==
        W{"1:1 ReservedStageName: Stage name should not use the same name as reserved stage \"scratch\"",
          "2:1 ReservedStageName: Stage name should not use the same name as reserved stage \"context\""});
  CHECK(check("FROM scratch\nFROM scratch AS a\nFROM scratch AS b1\n").warnings.empty());
}

TEST_CASE("lint: JSONArgsRecommended unless a SHELL is set, in the stage or its base") {
  CHECK(check("FROM scratch\nCMD mycommand\n").warnings ==
        W{"2:1 JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior "
          "related to OS signals"});
  CHECK(check("FROM scratch\n\tentrypoint mycommand\n").warnings ==
        W{"2:2 ConsistentInstructionCasing: Command 'entrypoint' should match the case of the command "
          "majority (uppercase)",
          "2:2 JSONArgsRecommended: JSON arguments recommended for entrypoint to prevent unintended behavior "
          "related to OS signals"});
  CHECK(check("FROM scratch\nSHELL [\"/usr/bin/customshell\"]\nCMD mycommand\n").warnings.empty());
  CHECK(check("FROM scratch AS base\nSHELL [\"/usr/bin/customshell\"]\n\nFROM base\nENTRYPOINT mycommand\n")
            .warnings.empty());
  CHECK(check("FROM scratch\nCMD [\"mycommand\"]\nRUN no json needed\n").warnings.empty());
}

TEST_CASE("lint: MaintainerDeprecated") {
  CHECK(check("FROM scratch\nMAINTAINER me@example.org\n").warnings ==
        W{"2:1 MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label"});
  CHECK(check("FROM scratch\nLABEL org.opencontainers.image.authors=\"me@example.org\"\n").warnings.empty());
}

TEST_CASE("lint: warnings found before an error are kept") {
  auto c = check("\nFROM scratch AS BadStageName\nMAINTAINER me@example.org\nBADCMD\nFROM scratch as x\n");
  // As BuildKit, the unknown instruction ends the checks (line 5 is not looked at).
  CHECK(c.warnings ==
        W{"2:1 StageNameCasing: Stage name 'BadStageName' should be lowercase",
          "3:1 MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label"});
  CHECK(c.error == "Dockerfile:4:1: unknown instruction: BADCMD");
}

TEST_CASE("lint: UndefinedArgInFrom") {
  CHECK(check("ARG base=scratch\nFROM $base\nCOPY Dockerfile .\n").warnings.empty());
  CHECK(check("FROM --platform=$BUILDPLATFORM scratch\n").warnings.empty());
  CHECK(check("ARG DEBUG\nFROM scratch${DEBUG}\n").warnings.empty());
  CHECK(check("ARG DEBUG\nFROM scra${DEBUG:-tch}\n").warnings.empty());
  CHECK(check("ARG DEBUG=\"\"\nFROM scratch${DEBUG-@bogus}\n").warnings.empty());
  CHECK(check("FROM --platform=$BULIDPLATFORM scratch\n").warnings ==
        W{"1:1 UndefinedArgInFrom: FROM argument 'BULIDPLATFORM' is not declared (did you mean "
          "BUILDPLATFORM?)"});
  CHECK(check("ARG MY_OS=linux\nARG MY_ARCH=amd64\nFROM --platform=linux/${MYARCH} busybox\n").warnings ==
        W{"3:1 UndefinedArgInFrom: FROM argument 'MYARCH' is not declared (did you mean MY_ARCH?)"});
  CHECK(check("ARG tag=latest\nFROM busybox:${tag}${version} AS b\n").warnings ==
        W{"2:1 UndefinedArgInFrom: FROM argument 'version' is not declared"});
  // A `# check=` comment above the FROM skips it there only.
  // (At the top of the file it would be the file's directive.)
  CHECK(
      check("FROM scratch\n# check=skip=UndefinedArgInFrom\nFROM busybox${v}\nFROM busybox${w}\n").warnings ==
      W{"4:1 UndefinedArgInFrom: FROM argument 'w' is not declared"});
}

TEST_CASE("lint: InvalidDefaultArgInFrom judges the defaults, whatever --build-arg says") {
  LowerOptions o;
  o.build_args = {{"VERSION", "latest"}};
  CHECK(check("ARG VERSION\nFROM busybox:$VERSION\n", o).warnings ==
        W{"2:1 InvalidDefaultArgInFrom: Default value for ARG busybox:$VERSION results in empty or invalid "
          "base image name"});
  auto c = check("ARG IMAGE\nFROM $IMAGE\n");
  CHECK(c.warnings == W{"2:1 InvalidDefaultArgInFrom: Default value for ARG $IMAGE results in empty or "
                        "invalid base image name"});
  CHECK(c.error == "Dockerfile:2:1: base name ($IMAGE) should not be blank");
  o.build_args = {{"SFX", "box:latest"}};
  CHECK(check("ARG SFX=\"box:\"\nFROM busy${SFX}\n", o).warnings ==
        W{"2:1 InvalidDefaultArgInFrom: Default value for ARG busy${SFX} results in empty or invalid base "
          "image name"});
  CHECK(check("ARG VERSION=\"latest\"\nFROM busybox:${VERSION}\n").warnings.empty());
  CHECK(check("ARG BUSYBOX_VARIANT=\"\"\nFROM busybox:stable${BUSYBOX_VARIANT}\n").warnings.empty());
  CHECK(check("ARG V\nFROM busybox:stable${V}\n").warnings.empty());
  CHECK(check("ARG NAME=Busybox\nFROM ${NAME}\n").warnings ==
        W{"2:1 InvalidDefaultArgInFrom: Default value for ARG ${NAME} results in empty or invalid base image "
          "name"});
  CHECK(check("FROM registry.example.com:5000/team/app:1.0@sha256:" + std::string(64, 'a') + "\n")
            .warnings.empty());
}

TEST_CASE("lint: WorkdirRelativePath only for the first WORKDIR of a stage line") {
  CHECK(check("FROM scratch\nWORKDIR app/\nWORKDIR more/\n").warnings ==
        W{"2:1 WorkdirRelativePath: Relative workdir \"app/\" can have unexpected results if the base image "
          "changes"});
  CHECK(check("FROM scratch AS a\nWORKDIR /app\n\nFROM a AS b\nWORKDIR subdir/\n").warnings.empty());
  CHECK(check("FROM scratch\nARG D=/abs\nWORKDIR $D\n").warnings.empty());
  CHECK(check("FROM scratch\n# check=skip=WorkdirRelativePath\nWORKDIR app/\n").warnings.empty());
}

TEST_CASE("lint: UndefinedVar, with BuildKit's suggestions") {
  CHECK(check("FROM scratch\nARG foo\nCOPY Dockerfile${foo} .\n").warnings.empty());
  CHECK(check("FROM busybox AS base\nARG foo=Dockerfile\n\nFROM base\nCOPY $foo .\n").warnings.empty());
  CHECK(check("FROM busybox\nRUN echo $PATH $nothing\n").warnings.empty());
  CHECK(check("FROM busybox\nCOPY $foo .\nARG foo=bar\nRUN echo $foo\n").warnings ==
        W{"2:1 UndefinedVar: Usage of undefined variable '$foo'"});
  CHECK(check("FROM busybox\nARG DIR_BINARIES=binaries/\nARG DIR_ASSETS=assets/\nARG DIR_CONFIG=config/\n"
              "COPY $DIR_ASSET .\n")
            .warnings ==
        W{"5:1 UndefinedVar: Usage of undefined variable '$DIR_ASSET' (did you mean $DIR_ASSETS?)"});
  CHECK(check("FROM busybox\nENV PATH=$PAHT:/tmp/bin\n").warnings ==
        W{"2:1 UndefinedVar: Usage of undefined variable '$PAHT' (did you mean $PATH?)"});
  // ARG defaults, USER, VOLUME, WORKDIR, LABEL keys and COPY flags expand too; each
  // undefined name is reported once per instruction.
  CHECK(check("FROM scratch\nARG A=$X B=$A\nUSER $U:$U\nLABEL $K=v\nCOPY --chown=$O a /a\n").warnings ==
        W{"2:1 UndefinedVar: Usage of undefined variable '$X'",
          "3:1 UndefinedVar: Usage of undefined variable '$U' (did you mean $A?)",
          "4:1 UndefinedVar: Usage of undefined variable '$K' (did you mean $A?)",
          "5:1 UndefinedVar: Usage of undefined variable '$O' (did you mean $A?)"});
  // Only in the stages a build reaches; --check looks at all of them.
  const std::string df = "FROM scratch AS first\nCOPY $foo .\n\nFROM scratch AS second\nCOPY $bar .\n";
  CHECK(build(df).warnings == W{"5:1 UndefinedVar: Usage of undefined variable '$bar'"});
  CHECK(check(df).warnings == W{"2:1 UndefinedVar: Usage of undefined variable '$foo'",
                                "5:1 UndefinedVar: Usage of undefined variable '$bar'"});
}

TEST_CASE("lint: MultipleInstructionsDisallowed reports the instruction without effect") {
  auto w = [](const std::string& ins, int line) {
    return std::to_string(line) + ":1 MultipleInstructionsDisallowed: Multiple " + ins +
           " instructions should not be used in the same stage because only the last one will be used";
  };
  CHECK(check("FROM scratch\nENTRYPOINT [\"/myapp\"]\nENTRYPOINT [\"/myotherapp\"]\nCMD [\"/myapp\"]\n"
              "CMD [\"/myotherapp\"]\nHEALTHCHECK CMD [\"/myapp\"]\nHEALTHCHECK CMD [\"/myotherapp\"]\n")
            .warnings == W{w("ENTRYPOINT", 2), w("CMD", 4), w("HEALTHCHECK", 6)});
  CHECK(check("FROM scratch AS a\nENTRYPOINT [\"/myapp\"]\nCMD [\"/myapp\"]\nHEALTHCHECK CMD [\"/myapp\"]\n\n"
              "FROM a AS b\nENTRYPOINT [\"/x\"]\nCMD [\"/x\"]\nHEALTHCHECK CMD [\"/x\"]\n")
            .warnings.empty());
}

TEST_CASE("lint: LegacyKeyValueFormat, per pair") {
  CHECK(check("FROM scratch\nENV testkey value\nLABEL key value\n").warnings ==
        W{"2:1 LegacyKeyValueFormat: \"ENV key=value\" should be used instead of legacy \"ENV key value\" "
          "format",
          "3:1 LegacyKeyValueFormat: \"LABEL key=value\" should be used instead of legacy \"LABEL key "
          "value\" format"});
  CHECK(check("FROM scratch\nENV testkey=value\nLABEL key=value\n").warnings.empty());
  CHECK(check("FROM scratch\n# check=skip=LegacyKeyValueFormat\nENV testkey value\n"
              "# check=skip=LegacyKeyValueFormat\nLABEL key value\n")
            .warnings.empty());
  // An unreachable stage is checked by --check only.
  const std::string df = "FROM scratch AS a\n\nFROM a AS b\nENV testkey value\n\nFROM a AS c\n";
  CHECK(build(df).warnings.empty());
  CHECK(check(df).warnings.size() == 1);
}

TEST_CASE("lint: RedundantTargetPlatform and FromPlatformFlagConstDisallowed") {
  CHECK(check("FROM --platform=$TARGETPLATFORM scratch\n").warnings ==
        W{"1:1 RedundantTargetPlatform: Setting platform to predefined $TARGETPLATFORM in FROM is redundant "
          "as this is the default behavior"});
  CHECK(check("FROM --platform=${TARGETPLATFORM} scratch\n").warnings ==
        W{"1:1 RedundantTargetPlatform: Setting platform to predefined ${TARGETPLATFORM} in FROM is "
          "redundant as this is the default behavior"});
  CHECK(check("# check=skip=RedundantTargetPlatform\nFROM --platform=$TARGETPLATFORM scratch\n")
            .warnings.empty());
  CHECK(check("FROM --platform=$BUILDPLATFORM scratch\n").warnings.empty());
  CHECK(check("FROM --platform=linux/amd64 scratch\n").warnings ==
        W{"1:1 FromPlatformFlagConstDisallowed: FROM --platform flag should not use constant value "
          "\"linux/amd64\""});
  CHECK(check("FROM --platform=linux/amd64 scratch AS my_amd64_stage\n").warnings.empty());
  CHECK(check("FROM --platform=linux/amd64 scratch AS linux\n").warnings.empty());
}

TEST_CASE("lint: SecretsUsedInArgOrEnv") {
  auto c = check(
      "# check=skip=InvalidDefinitionDescription\n\nFROM scratch\nARG SECRET_PASSPHRASE\nENV "
      "SUPER_Secret=foo\n"
      "ENV password=bar secret=baz\nARG super_duper_secret_token=foo auth=bar\nENV apikey=bar sunflower=foo\n"
      "ENV git_key=\nENV PUBLIC_KEY=\nARG public_token\nARG SECRET_PASSPHRASE_FILE\n"
      "ENV password_file=bar secret_File=baz\nARG AUTH_MODULE_VERSION\n"
      "# check=skip=SecretsUsedInArgOrEnv // allow secret in environment\nENV password=bar\n"
      "# check=skip=SecretsUsedInArgOrEnv // allow secret in arg\nARG password\n"
      "# check=skip=all // is local to only this instruction\nENV alternate_password=bar\n");
  auto s = [](int line, const std::string& what) {
    return std::to_string(line) +
           ":1 SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (" + what + ")";
  };
  CHECK(c.warnings == W{s(4, "ARG \"SECRET_PASSPHRASE\""), s(5, "ENV \"SUPER_Secret\""),
                        s(6, "ENV \"password\""), s(6, "ENV \"secret\""),
                        s(7, "ARG \"super_duper_secret_token\""), s(7, "ARG \"auth\""),
                        s(8, "ENV \"apikey\""), s(9, "ENV \"git_key\"")});
}

TEST_CASE("lint: CopyIgnoredFile asks the .dockerignore, unless it has `!` patterns") {
  LowerOptions o;
  o.context_excludes = {"Dockerfile"};
  o.context_ignored = [](const std::string& p) {
    return p == "Dockerfile" || p.rfind("Dockerfile/", 0) == 0;
  };
  CHECK(check("FROM scratch\nCOPY Dockerfile .\nCOPY ./Dockerfile other /x/\n", o).warnings ==
        W{"2:1 CopyIgnoredFile: Attempting to Copy file \"Dockerfile\" that is excluded by .dockerignore",
          "3:1 CopyIgnoredFile: Attempting to Copy file \"Dockerfile\" that is excluded by .dockerignore"});
  CHECK(check("# check=skip=CopyIgnoredFile\n\nFROM scratch\nCOPY Dockerfile .\n", o).warnings.empty());
  CHECK(check("FROM scratch AS base\nCOPY other /foobar\n\nFROM base\nCOPY --from=base /Dockerfile /x\n", o)
            .warnings.empty());
  o.context_excludes = {"**", "!Dockerfile"};
  CHECK(check("FROM scratch\nCOPY ./Dockerfile .\n", o).warnings.empty());
  // The context root: only patterns that exclude everything at the top count.
  o.context_excludes = {".*"};
  o.context_ignored = [](const std::string& p) { return !p.empty() && p[0] == '.'; };
  CHECK(check("FROM scratch\nCOPY . .\n", o).warnings.empty());
  o.context_excludes = {"*"};
  o.context_ignored = [](const std::string&) { return true; };
  CHECK(check("FROM scratch\nCOPY . .\n", o).warnings ==
        W{"2:1 CopyIgnoredFile: Attempting to Copy file \".\" that is excluded by .dockerignore"});
}

TEST_CASE("lint: InvalidDefinitionDescription is experimental") {
  CHECK(
      check(
          "# check=skip=all;experimental=InvalidDefinitionDescription\n# foo this is the foo\nARG foo=bar\n\n"
          "# base this is the base image\nFROM scratch AS base\n\n# version this is the version number\n"
          "ARG version=latest\n\n# baz this is the baz\nARG foo=baz bar=qux baz=quux\n#\nARG bit=bat\n\n"
          "# comment for something other than ARG or FROM\nCOPY Dockerfile .\n")
          .warnings.empty());
  const std::string df =
      "# check=experimental=InvalidDefinitionDescription\n# bar this is the bar\nARG foo=bar\n"
      "# BasE this is the BasE image\nFROM scratch AS base\n# definitely a bad comment\nARG version=latest\n"
      "# definitely a bad comment\nARG foo=baz bar=qux baz=quux\n";
  auto d = [](int line, const std::string& ins, const std::string& key) {
    return std::to_string(line) + ":1 InvalidDefinitionDescription: Comment for " + ins +
           " should follow the format: `# " + key + " <description>`";
  };
  CHECK(check(df).warnings ==
        W{d(3, "ARG", "foo"), d(5, "FROM", "base"), d(7, "ARG", "version"), d(9, "ARG", "<arg_key>")});
  CHECK(check(df.substr(df.find('\n') + 1)).warnings.empty());
}

TEST_CASE("lint: ExposeProtoCasing and ExposeInvalidFormat") {
  CHECK(check("FROM scratch\nEXPOSE 80/TcP 8080/TCP 8080/udp\n").warnings ==
        W{"2:1 ExposeProtoCasing: Defined protocol '80/TcP' in EXPOSE instruction should be lowercase",
          "2:1 ExposeProtoCasing: Defined protocol '8080/TCP' in EXPOSE instruction should be lowercase"});
  CHECK(check("FROM scratch\nEXPOSE 127.0.0.1:80:80 [::1]:8080:8080 5000:5000 8000\n").warnings ==
        W{"2:1 ExposeInvalidFormat: EXPOSE instruction should not define an IP address or host-port mapping, "
          "found '127.0.0.1:80:80'",
          "2:1 ExposeInvalidFormat: EXPOSE instruction should not define an IP address or host-port mapping, "
          "found '5000:5000'",
          "2:1 ExposeInvalidFormat: EXPOSE instruction should not define an IP address or host-port mapping, "
          "found '[::1]:8080:8080'"});
  CHECK(check("FROM scratch\nEXPOSE 80 443/tcp 53/udp\n").warnings.empty());
}

TEST_CASE("lint: InvalidBaseImagePlatform when the base image is for another platform") {
  Images images;
  images.configs["arm:latest"] = {
      {"architecture", "arm64"}, {"os", "linux"}, {"config", base::Json::object()}};
  LowerOptions o;
  o.all_stages = true;
  CHECK(run_checks("FROM arm\n", o, images).warnings ==
        W{"1:1 InvalidBaseImagePlatform: Base image arm was pulled with platform \"linux/arm64\", expected "
          "\"linux/amd64\" for current build"});
  CHECK(run_checks("FROM busybox\n", o, images).warnings.empty());
}

TEST_CASE("lint: check options: skip, error, experimental, BUILDKIT_DOCKERFILE_CHECK") {
  const std::string body = "FROM scratch as base\ncopy Dockerfile .\n";
  CHECK(check("#check=skip=all\n" + body).warnings.empty());
  CHECK(check("#check=skip=all;error=true\n" + body).error.empty());
  CHECK(check("#check=skip=ConsistentInstructionCasing,FromAsCasing;error=true\n" + body).error.empty());
  auto c = check("#check=skip=ConsistentInstructionCasing\n" + body);
  CHECK(c.warnings == W{"2:1 FromAsCasing: 'as' and 'FROM' keywords' casing do not match"});
  CHECK(c.error.empty());
  c = check("#check=skip=ConsistentInstructionCasing;error=true\n" + body);
  CHECK(c.warnings == W{"2:1 FromAsCasing: 'as' and 'FROM' keywords' casing do not match"});
  CHECK(c.error == "lint violation found for rules: FromAsCasing");
  c = check("#check=error=true\n" + body);
  CHECK(c.error == "lint violation found for rules: ConsistentInstructionCasing, FromAsCasing");
  // The build arg replaces the directive.
  LowerOptions o;
  o.build_args = {{"BUILDKIT_DOCKERFILE_CHECK", "skip=ConsistentInstructionCasing;error=true"}};
  c = check("#check=skip=all\n" + body, o);
  CHECK(c.warnings == W{"2:1 FromAsCasing: 'as' and 'FROM' keywords' casing do not match"});
  CHECK(c.error == "lint violation found for rules: FromAsCasing");
  o.build_args = {{"BUILDKIT_DOCKERFILE_CHECK", "skip=all"}};
  CHECK(check("#check=error=true\n" + body, o).error.empty());
  // A directive's value ends at its first space.
  CHECK(check("# check=skip=all this is ignored\n" + body).warnings.empty());
  // A normal build fails on error=true too, before anything runs.
  CHECK(build("#check=error=true\nFROM scratch\nCMD x\n").error ==
        "lint violation found for rules: JSONArgsRecommended");

  CHECK(check("# check=skip\n" + body).error ==
        "failed to parse check options: invalid check option \"skip\"");
  CHECK(check("# check=error=maybe\n" + body).error ==
        "failed to parse check options: failed to parse check option \"error=maybe\": strconv.ParseBool: "
        "parsing \"maybe\": invalid syntax");
  CHECK(check("# check=bogus=1\n" + body).error ==
        "failed to parse check options: invalid check option \"bogus\"");
  o.build_args = {{"BUILDKIT_DOCKERFILE_CHECK", "x"}};
  CHECK(check(body, o).error ==
        "failed to parse build-arg:BUILDKIT_DOCKERFILE_CHECK: invalid check option \"x\"");

  auto cfg = parse_check_options(" skip = A , B ; experimental=all;error=1");
  CHECK(cfg.skip == std::set<std::string>{"A", "B"});
  CHECK(cfg.experimental_all);
  CHECK(cfg.error);
}

TEST_CASE("lint: a `# check=` comment applies to the instruction below it only") {
  CHECK(check("FROM scratch\n# check=skip=JSONArgsRecommended\nCMD mycommand\nENTRYPOINT mycommand\n")
            .warnings == W{"4:1 JSONArgsRecommended: JSON arguments recommended for ENTRYPOINT to prevent "
                           "unintended behavior related to OS signals"});
  CHECK(
      check("FROM scratch\n# check=skip=MaintainerDeprecated\nMAINTAINER me@example.org\n").warnings.empty());
  // Blank lines do not separate a comment from the instruction; an empty `#` does.
  CHECK(check("FROM scratch\n# check=skip=all\n\nCMD mycommand\n").warnings.empty());
  CHECK(check("FROM scratch\n# check=skip=all\n#\nCMD mycommand\n").warnings.size() == 1);
}

TEST_CASE("parse: each instruction keeps the comments above it, directives excluded") {
  auto f = parse(
      "# syntax=docker/dockerfile:1\n# check=skip=all\n# first\n\n  # second\n#\n# third\nFROM a\n"
      "RUN x \\\n# inside\n y\n# after\nCMD z\n",
      "Dockerfile");
  REQUIRE(f.instructions.size() == 3);
  CHECK(f.instructions[0].comments == std::vector<std::string>{"third"});
  CHECK(f.instructions[1].comments.empty());
  CHECK(f.instructions[2].comments == std::vector<std::string>{"after"});
  f = parse("# one\n\n  # two\nFROM a\n", "Dockerfile");
  // BuildKit trims the line after its first byte: the indented comment keeps its `#`.
  CHECK(f.instructions[0].comments == std::vector<std::string>{"one", "# two"});
}

TEST_CASE("outline: the target's build args, with values and descriptions") {
  const std::string df =
      "# GO_VERSION sets the Go version\nARG GO_VERSION=1.22\nARG UNUSED=1\nARG REG=docker.io\nARG "
      "IMG=${REG}/busybox\n\n"
      "# base is the common base stage\nFROM ${IMG} AS base\n# VERSION the release version\nARG VERSION=dev\n"
      "ARG TARGETARCH\n\n# build compiles the binary\nFROM base AS build\nARG GO_VERSION\nARG LDFLAGS=\"-s "
      "-w\"\n\n"
      "FROM scratch AS release\nCOPY --from=build /x /y\n";
  LowerOptions o;
  o.build_args = {{"VERSION", "1.0"}};
  auto c = build(df, o);
  REQUIRE(c.error.empty());
  const Outline& out = c.result.outline;
  CHECK(out.name == "release");
  CHECK(out.description.empty());
  std::vector<std::string> args;
  for (const auto& a : out.args)
    args.push_back(a.name + "=" + a.value + " (" + a.description + ") @" +
                   std::to_string(a.range.start_line));
  // IMG is used by a FROM and brings REG; TARGETARCH is built in; UNUSED is not used.
  CHECK(args == std::vector<std::string>{"GO_VERSION=1.22 (sets the Go version) @2", "REG=docker.io () @4",
                                         "IMG=docker.io/busybox () @5",
                                         "VERSION=1.0 (the release version) @10", "LDFLAGS=-s -w () @16"});
  o.target = "build";
  c = build(df, o);
  CHECK(c.result.outline.name == "build");
  CHECK(c.result.outline.description == "compiles the binary");
}

TEST_CASE("targets: every stage, its description and the default") {
  auto targets =
      list_targets(parse("# base is the base\nFROM busybox AS Base\n# not a description\n"
                         "FROM --platform=$BUILDPLATFORM base\n# out the result\nFROM scratch AS out\n",
                         "Dockerfile"));
  REQUIRE(targets.size() == 3);
  CHECK(targets[0].name == "base");
  CHECK(targets[0].description == "is the base");
  CHECK(targets[0].base == "busybox");
  CHECK(!targets[0].is_default);
  CHECK(targets[1].name.empty());
  CHECK(targets[1].description.empty());
  CHECK(targets[1].platform == "$BUILDPLATFORM");
  CHECK(targets[2].name == "out");
  CHECK(targets[2].description == "the result");
  CHECK(targets[2].is_default);
  CHECK(targets[2].range.start_line == 6);
}

TEST_CASE("lint helpers: suggestions, platforms, image references, mount fields") {
  using namespace builder::frontend::detail;
  CHECK(suggest("BULIDPLATFORM", {"TARGETPLATFORM", "BUILDPLATFORM"}) == "BUILDPLATFORM");
  CHECK(suggest("A", {"B", "C"}) == "B");  // equally close: the first
  CHECK(suggest("PATH", {"PATH", "PAHT"}).empty());
  CHECK(suggest("RELEASE", {"VERSION", "PATH"}).empty());

  auto p = parse_platform("linux/arm64");
  REQUIRE(p);
  CHECK(p->architecture == "arm64");
  CHECK(p->variant == "v8");
  CHECK(parse_platform("Linux/x86_64")->architecture == "amd64");
  CHECK(parse_platform("aarch64")->os == "linux");
  CHECK(!parse_platform("linux/"));
  CHECK(!parse_platform("bogus"));
  CHECK(!parse_platform("linux/*"));

  for (const char* ok : {"scratch", "busybox:latest", "docker.io/library/busybox", "localhost:5000/a/b:tag",
                         "Registry.Example.com/team/app", "[::1]:5000/app"})
    CHECK_MESSAGE(valid_image_reference(ok), ok);
  for (const char* bad : {"", "busybox:", "Busybox", "a//b", ":tag", "busybox@sha256:abc",
                          "0123456789012345678901234567890123456789012345678901234567890123"})
    CHECK_MESSAGE(!valid_image_reference(bad), bad);

  auto f = mount_fields("type=secret,ID=tok,\"target=/a,b\",required");
  REQUIRE(f.size() == 4);
  CHECK(f[0] == std::make_pair(std::string("type"), std::optional<std::string>("secret")));
  CHECK(f[1] == std::make_pair(std::string("id"), std::optional<std::string>("tok")));
  CHECK(f[2] == std::make_pair(std::string("target"), std::optional<std::string>("/a,b")));
  CHECK(f[3] == std::make_pair(std::string("required"), std::optional<std::string>()));
}
