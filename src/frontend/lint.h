// frontend/lint.h — BuildKit's build checks (`builder build --check`): the rule set with
// its names, descriptions and documentation URLs, the options of the `# check=` directive
// (and of the BUILDKIT_DOCKERFILE_CHECK build arg), the Linter that applies them, and the
// checks that need only the AST. The checks that need ARG/ENV scope run inside lowering
// (lower_lint.cpp). Produces findings as values; knows nothing of how they are printed.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "frontend/ast.h"

namespace builder::frontend {

/// One rule of BuildKit's check set (frontend/dockerfile/linter/ruleset.go).
struct LintRule {
  std::string_view name;
  std::string_view description;
  std::string_view url;       ///< empty for a rule without a documentation page
  bool experimental = false;  ///< off unless `experimental=NAME|all` enables it
};

namespace lint_rules {
extern const LintRule kStageNameCasing;
extern const LintRule kFromAsCasing;
extern const LintRule kNoEmptyContinuation;
extern const LintRule kConsistentInstructionCasing;
extern const LintRule kDuplicateStageName;
extern const LintRule kReservedStageName;
extern const LintRule kJSONArgsRecommended;
extern const LintRule kMaintainerDeprecated;
extern const LintRule kUndefinedArgInFrom;
extern const LintRule kWorkdirRelativePath;
extern const LintRule kUndefinedVar;
extern const LintRule kMultipleInstructionsDisallowed;
extern const LintRule kLegacyKeyValueFormat;
extern const LintRule kInvalidBaseImagePlatform;
extern const LintRule kRedundantTargetPlatform;
extern const LintRule kSecretsUsedInArgOrEnv;
extern const LintRule kInvalidDefaultArgInFrom;
extern const LintRule kFromPlatformFlagConstDisallowed;
extern const LintRule kCopyIgnoredFile;
extern const LintRule kInvalidDefinitionDescription;
extern const LintRule kExposeProtoCasing;
extern const LintRule kExposeInvalidFormat;
/// Every rule, in BuildKit's order.
const std::vector<const LintRule*>& all();
}  // namespace lint_rules

/// One warning: the rule, its description and URL, the message for this occurrence
/// (BuildKit's "detail") and the instruction it is about.
struct LintFinding {
  std::string rule;
  std::string description;
  std::string url;
  std::string message;
  base::SourceRange range;
};

/// What `# check=skip=A,B;experimental=C;error=true` asks for.
struct LintConfig {
  bool skip_all = false;
  bool experimental_all = false;
  bool error = false;  ///< any finding fails the build ("lint violation found for rules: ...")
  std::set<std::string> skip;
  std::set<std::string> experimental;
};

/// BuildKit's ParseLintOptions: at most three `;`-separated `key=value` options, keys
/// skip, experimental (a comma list or `all`) and error (Go's ParseBool). Throws
/// base::Error("invalid check option \"x\"") and the like on anything else.
LintConfig parse_check_options(std::string_view text);

/// The options the build uses: the BUILDKIT_DOCKERFILE_CHECK build arg when given (it
/// replaces the directive), else the file's `# check=` directive up to its first space.
/// Throws base::Error("failed to parse check options: ...") on bad options.
LintConfig check_config(const ast::Directives& directives, const std::string* build_arg);

/// Applies a LintConfig (and the `# check=` comments directly above an instruction) to
/// the findings of the rules. Appends to the caller's vector when one is given, so the
/// findings made before an error survive it. Not thread-safe.
class Linter {
 public:
  explicit Linter(LintConfig config = {}, std::vector<LintFinding>* sink = nullptr);

  /// Records `message` for `rule` at `range` unless the rule is skipped (or experimental
  /// and not enabled) by the config merged with the first `check=` line of `comments`.
  void run(const LintRule& rule, const base::SourceRange& range, std::string message,
           const std::vector<std::string>& comments = {});

  const std::vector<LintFinding>& findings() const { return sink_ ? *sink_ : own_; }
  const LintConfig& config() const { return config_; }

  /// With error=true and at least one finding: "lint violation found for rules: A, B"
  /// (rule names sorted); nullopt otherwise.
  std::optional<std::string> violation() const;

 private:
  LintConfig config_;
  std::vector<LintFinding> own_;
  std::vector<LintFinding>* sink_;  ///< the caller's, or null for own_
  std::set<std::string> called_;
};

/// The checks BuildKit makes while parsing, before any stage is dispatched, over every
/// instruction of the file: NoEmptyContinuation, MaintainerDeprecated, StageNameCasing,
/// FromAsCasing, InvalidDefinitionDescription, then ReservedStageName,
/// DuplicateStageName and ConsistentInstructionCasing. As BuildKit, an unknown
/// instruction stops them there (the file does not parse); returns false in that case.
bool lint_syntax(const ast::File& file, Linter& linter);

}  // namespace builder::frontend
