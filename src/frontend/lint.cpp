// The build-check rule set, its options and the checks over the AST alone. Names,
// messages and the order of the checks follow BuildKit's linter (ruleset.go, linter.go)
// and the places that run them (instructions/parse.go, dockerfile2llb validations.go).
#include "frontend/lint.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <regex>

#include "base/strings.h"
#include "frontend/lint_internal.h"
#include "frontend/outline.h"
#include "frontend/parse.h"

namespace builder::frontend {

namespace lint_rules {
const LintRule kStageNameCasing{"StageNameCasing", "Stage names should be lowercase",
                                "https://docs.docker.com/go/dockerfile/rule/stage-name-casing/", false};
const LintRule kFromAsCasing{"FromAsCasing", "The 'as' keyword should match the case of the 'from' keyword",
                             "https://docs.docker.com/go/dockerfile/rule/from-as-casing/", false};
const LintRule kNoEmptyContinuation{
    "NoEmptyContinuation", "Empty continuation lines will become errors in a future release",
    "https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/", false};
const LintRule kConsistentInstructionCasing{
    "ConsistentInstructionCasing",
    "All commands within the Dockerfile should use the same casing (either upper or lower)",
    "https://docs.docker.com/go/dockerfile/rule/consistent-instruction-casing/", false};
const LintRule kDuplicateStageName{"DuplicateStageName", "Stage names should be unique",
                                   "https://docs.docker.com/go/dockerfile/rule/duplicate-stage-name/", false};
const LintRule kReservedStageName{"ReservedStageName", "Reserved words should not be used as stage names",
                                  "https://docs.docker.com/go/dockerfile/rule/reserved-stage-name/", false};
const LintRule kJSONArgsRecommended{
    "JSONArgsRecommended",
    "JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals",
    "https://docs.docker.com/go/dockerfile/rule/json-args-recommended/", false};
const LintRule kMaintainerDeprecated{
    "MaintainerDeprecated",
    "The MAINTAINER instruction is deprecated, use a label instead to define an image author",
    "https://docs.docker.com/go/dockerfile/rule/maintainer-deprecated/", false};
const LintRule kUndefinedArgInFrom{"UndefinedArgInFrom", "FROM command must use declared ARGs",
                                   "https://docs.docker.com/go/dockerfile/rule/undefined-arg-in-from/",
                                   false};
const LintRule kWorkdirRelativePath{"WorkdirRelativePath",
                                    "Relative workdir without an absolute workdir declared within the build "
                                    "can have unexpected results if the base image changes",
                                    "https://docs.docker.com/go/dockerfile/rule/workdir-relative-path/",
                                    false};
const LintRule kUndefinedVar{"UndefinedVar", "Variables should be defined before their use",
                             "https://docs.docker.com/go/dockerfile/rule/undefined-var/", false};
const LintRule kMultipleInstructionsDisallowed{
    "MultipleInstructionsDisallowed",
    "Multiple instructions of the same type should not be used in the same stage",
    "https://docs.docker.com/go/dockerfile/rule/multiple-instructions-disallowed/", false};
const LintRule kLegacyKeyValueFormat{
    "LegacyKeyValueFormat", "Legacy key/value format with whitespace separator should not be used",
    "https://docs.docker.com/go/dockerfile/rule/legacy-key-value-format/", false};
const LintRule kInvalidBaseImagePlatform{
    "InvalidBaseImagePlatform", "Base image platform does not match expected target platform", "", false};
const LintRule kRedundantTargetPlatform{
    "RedundantTargetPlatform",
    "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior",
    "https://docs.docker.com/go/dockerfile/rule/redundant-target-platform/", false};
const LintRule kSecretsUsedInArgOrEnv{
    "SecretsUsedInArgOrEnv", "Sensitive data should not be used in the ARG or ENV commands",
    "https://docs.docker.com/go/dockerfile/rule/secrets-used-in-arg-or-env/", false};
const LintRule kInvalidDefaultArgInFrom{
    "InvalidDefaultArgInFrom", "Default value for global ARG results in an empty or invalid base image name",
    "https://docs.docker.com/go/dockerfile/rule/invalid-default-arg-in-from/", false};
const LintRule kFromPlatformFlagConstDisallowed{
    "FromPlatformFlagConstDisallowed", "FROM --platform flag should not use a constant value",
    "https://docs.docker.com/go/dockerfile/rule/from-platform-flag-const-disallowed/", false};
const LintRule kCopyIgnoredFile{"CopyIgnoredFile",
                                "Attempting to Copy file that is excluded by .dockerignore",
                                "https://docs.docker.com/go/dockerfile/rule/copy-ignored-file/", false};
const LintRule kInvalidDefinitionDescription{
    "InvalidDefinitionDescription",
    "Comment for build stage or argument should follow the format: `# <arg/stage name> <description>`. If "
    "this is not intended to be a description comment, add an empty line or comment between the instruction "
    "and the comment.",
    "https://docs.docker.com/go/dockerfile/rule/invalid-definition-description/", true};
const LintRule kExposeProtoCasing{"ExposeProtoCasing", "Protocol in EXPOSE instruction should be lowercase",
                                  "https://docs.docker.com/go/dockerfile/rule/expose-proto-casing/", false};
const LintRule kExposeInvalidFormat{"ExposeInvalidFormat",
                                    "IP address and host-port mapping should not be used in EXPOSE "
                                    "instruction. This will become an error in a future release",
                                    "https://docs.docker.com/go/dockerfile/rule/expose-invalid-format/",
                                    false};

const std::vector<const LintRule*>& all() {
  static const std::vector<const LintRule*> rules = {
      &kStageNameCasing,
      &kFromAsCasing,
      &kNoEmptyContinuation,
      &kConsistentInstructionCasing,
      &kDuplicateStageName,
      &kReservedStageName,
      &kJSONArgsRecommended,
      &kMaintainerDeprecated,
      &kUndefinedArgInFrom,
      &kWorkdirRelativePath,
      &kUndefinedVar,
      &kMultipleInstructionsDisallowed,
      &kLegacyKeyValueFormat,
      &kInvalidBaseImagePlatform,
      &kRedundantTargetPlatform,
      &kSecretsUsedInArgOrEnv,
      &kInvalidDefaultArgInFrom,
      &kFromPlatformFlagConstDisallowed,
      &kCopyIgnoredFile,
      &kInvalidDefinitionDescription,
      &kExposeProtoCasing,
      &kExposeInvalidFormat,
  };
  return rules;
}

}  // namespace lint_rules

namespace {

bool is_go_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }

std::string go_trim_space(std::string_view s) {
  while (!s.empty() && is_go_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_go_space(s.back())) s.remove_suffix(1);
  return std::string(s);
}

/// strings.Split(s, ",") with each element trimmed.
std::set<std::string> rule_list(const std::string& v) {
  std::set<std::string> out;
  for (const auto& r : base::split(v, ',')) out.insert(go_trim_space(r));
  return out;
}

std::optional<bool> go_parse_bool(const std::string& s) {
  if (s == "1" || s == "t" || s == "T" || s == "TRUE" || s == "true" || s == "True") return true;
  if (s == "0" || s == "f" || s == "F" || s == "FALSE" || s == "false" || s == "False") return false;
  return std::nullopt;
}

/// DirectiveParser.ParseLine on a comment with the `#` already removed: {name, value}
/// of a `check`, `syntax` or `escape` directive.
std::optional<std::pair<std::string, std::string>> comment_directive(std::string_view line) {
  auto re2_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r'; };
  while (!line.empty() && is_go_space(line.front())) line.remove_prefix(1);
  // ^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$
  size_t i = 0;
  if (line.empty() || !std::isalpha(static_cast<unsigned char>(line[0]))) return std::nullopt;
  while (i < line.size() && std::isalnum(static_cast<unsigned char>(line[i]))) ++i;
  std::string key = base::to_lower(line.substr(0, i));
  while (i < line.size() && re2_space(line[i])) ++i;
  if (i >= line.size() || line[i] != '=') return std::nullopt;
  ++i;
  while (i < line.size() && re2_space(line[i])) ++i;
  std::string_view v = line.substr(i);
  while (!v.empty() && re2_space(v.back())) v.remove_suffix(1);
  if (v.empty() || v.find('\n') != std::string_view::npos) return std::nullopt;
  if (key != "check" && key != "syntax" && key != "escape") return std::nullopt;
  return std::make_pair(key, std::string(v));
}

/// strings.Cut(v, " ") — a directive's value ends at its first space.
std::string first_word(const std::string& v) { return v.substr(0, v.find(' ')); }

bool is_lower(const std::string& s) { return s == base::to_lower(s); }
std::string to_upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}
bool is_upper(const std::string& s) { return s == to_upper(s); }

const std::set<std::string>& known_instructions() {
  static const std::set<std::string> names = {
      "add",   "arg",        "cmd",     "copy", "entrypoint", "env",        "expose", "from",   "healthcheck",
      "label", "maintainer", "onbuild", "run",  "shell",      "stopsignal", "user",   "volume", "workdir"};
  return names;
}

/// validateDefinitionDescription: the last comment above a FROM or ARG must start
/// with the name it describes.
void lint_description(Linter& linter, const ast::Instruction& ins, const std::string& instruction,
                      const std::vector<std::string>& keys) {
  if (ins.comments.empty() || keys.empty()) return;
  std::string first = base::split(ins.comments.back(), ' ')[0];
  if (std::find(keys.begin(), keys.end(), first) != keys.end()) return;
  std::string example = keys.size() > 1 ? "<arg_key>" : keys[0];
  linter.run(lint_rules::kInvalidDefinitionDescription, ins.range,
             "Comment for " + instruction + " should follow the format: `# " + example + " <description>`",
             ins.comments);
}

}  // namespace

LintConfig parse_check_options(std::string_view text) {
  LintConfig c;
  std::string s = go_trim_space(text);
  if (s.empty()) return c;
  // strings.SplitN(s, ";", 3)
  std::vector<std::string> parts;
  size_t start = 0;
  while (parts.size() < 2) {
    size_t semi = s.find(';', start);
    if (semi == std::string::npos) break;
    parts.push_back(s.substr(start, semi - start));
    start = semi + 1;
  }
  parts.push_back(s.substr(start));
  for (const auto& p : parts) {
    auto eq = p.find('=');
    if (eq == std::string::npos) throw base::Error("invalid check option " + go_quote(p));
    std::string k = go_trim_space(p.substr(0, eq));
    std::string v = go_trim_space(p.substr(eq + 1));
    if (k == "skip") {
      if (v == "all")
        c.skip_all = true;
      else
        c.skip = rule_list(v);
    } else if (k == "experimental") {
      if (v == "all")
        c.experimental_all = true;
      else
        c.experimental = rule_list(v);
    } else if (k == "error") {
      auto b = go_parse_bool(v);
      if (!b)
        throw base::Error("failed to parse check option " + go_quote(p) + ": strconv.ParseBool: parsing " +
                          go_quote(v) + ": invalid syntax");
      c.error = *b;
    } else {
      throw base::Error("invalid check option " + go_quote(k));
    }
  }
  return c;
}

LintConfig check_config(const ast::Directives& directives, const std::string* build_arg) {
  if (build_arg) {
    try {
      return parse_check_options(*build_arg);
    } catch (const base::Error& e) {
      throw base::Error("failed to parse build-arg:BUILDKIT_DOCKERFILE_CHECK: " + e.message());
    }
  }
  try {
    return parse_check_options(first_word(directives.check));
  } catch (const base::Error& e) {
    throw base::Error("failed to parse check options: " + e.message());
  }
}

Linter::Linter(LintConfig config, std::vector<LintFinding>* sink) : config_(std::move(config)), sink_(sink) {}

void Linter::run(const LintRule& rule, const base::SourceRange& range, std::string message,
                 const std::vector<std::string>& comments) {
  // WithMergedConfigFromComments: the first `check=` comment above the instruction adds
  // its skips and experiments for this instruction only (bad options: ignored).
  bool skip_all = config_.skip_all, experimental_all = config_.experimental_all;
  bool skipped = config_.skip.count(std::string(rule.name)) > 0;
  bool enabled = config_.experimental.count(std::string(rule.name)) > 0;
  for (const auto& comment : comments) {
    auto d = comment_directive(comment);
    if (!d || d->first != "check") continue;
    try {
      LintConfig more = parse_check_options(first_word(d->second));
      skip_all |= more.skip_all;
      experimental_all |= more.experimental_all;
      skipped |= more.skip.count(std::string(rule.name)) > 0;
      enabled |= more.experimental.count(std::string(rule.name)) > 0;
    } catch (const base::Error&) {
    }
    break;
  }
  if (rule.experimental) {
    if (!experimental_all && !enabled) return;
  } else if (skip_all || skipped) {
    return;
  }
  called_.insert(std::string(rule.name));
  LintFinding f;
  f.rule = rule.name;
  f.description = rule.description;
  f.url = rule.url;
  f.message = std::move(message);
  f.range = range;
  (sink_ ? *sink_ : own_).push_back(std::move(f));
}

std::optional<std::string> Linter::violation() const {
  if (!config_.error || called_.empty()) return std::nullopt;
  std::vector<std::string> names(called_.begin(), called_.end());
  return "lint violation found for rules: " + base::join(names, ", ");
}

bool lint_syntax(const ast::File& file, Linter& linter) {
  // NoEmptyContinuation: the parser's warnings name the line the instruction ends on.
  const std::string prefix = file.filename + ":";
  for (const auto& w : file.warnings) {
    if (w.rfind(prefix, 0) != 0) continue;
    size_t i = prefix.size(), j = i;
    while (j < w.size() && std::isdigit(static_cast<unsigned char>(w[j]))) ++j;
    if (j == i || w.compare(j, 33, ": Empty continuation line found i") != 0) continue;
    base::SourceRange r;
    r.file = file.filename;
    r.start_line = r.end_line = std::stoi(w.substr(i, j - i));
    r.start_col = r.end_col = 1;
    linter.run(lint_rules::kNoEmptyContinuation, r, "Empty continuation line");
  }

  // instructions.Parse, instruction by instruction, stopping where the file stops parsing.
  static const std::regex kStageName("^[a-z][a-z0-9-_\\.]*$");
  for (const auto& ins : file.instructions) {
    if (!known_instructions().count(ins.name)) return false;
    if (ins.name == "maintainer") {
      linter.run(lint_rules::kMaintainerDeprecated, ins.range,
                 "Maintainer instruction is deprecated in favor of using label", ins.comments);
    } else if (ins.name == "from") {
      const auto& a = ins.args;
      if (a.size() == 3 && !is_lower(a[2]))
        linter.run(lint_rules::kStageNameCasing, ins.range, "Stage name '" + a[2] + "' should be lowercase",
                   ins.comments);
      if (a.size() >= 3 && (is_lower(ins.keyword) || is_upper(ins.keyword))) {
        bool match = is_lower(ins.keyword) ? is_lower(a[1]) : is_upper(a[1]);
        if (!match)
          linter.run(lint_rules::kFromAsCasing, ins.range,
                     "'" + a[1] + "' and '" + ins.keyword + "' keywords' casing do not match", ins.comments);
      }
      std::string name;
      if (a.size() == 3 && base::to_lower(a[1]) == "as") {
        name = base::to_lower(a[2]);
        if (!std::regex_match(name, kStageName)) return false;
      } else if (a.size() != 1) {
        return false;
      }
      if (!name.empty()) lint_description(linter, ins, "FROM", {name});
    } else if (ins.name == "arg") {
      if (ins.args.empty()) return false;
      std::vector<std::string> keys;
      for (const auto& w : ins.args) {
        std::string k = w.substr(0, w.find('='));
        if (k.empty()) return false;
        keys.push_back(k);
      }
      lint_description(linter, ins, "ARG", keys);
    }
  }

  // Stages: the FROM instruction and the ones after it; ARGs before the first FROM are
  // global and take no part in the casing vote.
  std::vector<std::vector<const ast::Instruction*>> stages;
  for (const auto& ins : file.instructions) {
    if (ins.name == "from") stages.emplace_back();
    if (!stages.empty()) stages.back().push_back(&ins);
  }

  // validateStageNames
  std::set<std::string> names;
  for (const auto& st : stages) {
    const ast::Instruction& from = *st.front();
    if (from.args.size() != 3) continue;
    std::string name = base::to_lower(from.args[2]);
    if (name == "context" || name == "scratch")
      linter.run(lint_rules::kReservedStageName, from.range,
                 "Stage name should not use the same name as reserved stage " + go_quote(name));
    if (!names.insert(name).second)
      linter.run(lint_rules::kDuplicateStageName, from.range,
                 "Duplicate stage name " + go_quote(name) + ", stage names should be unique");
  }

  // validateCommandCasing: the majority of self-consistent keywords decides.
  int lower = 0, upper = 0;
  for (const auto& st : stages)
    for (const ast::Instruction* ins : st) {
      if (is_lower(ins->keyword))
        ++lower;
      else if (is_upper(ins->keyword))
        ++upper;
    }
  bool majority_lower = lower > upper;
  for (const auto& st : stages)
    for (const ast::Instruction* ins : st) {
      std::string casing;
      if (majority_lower && !is_lower(ins->keyword))
        casing = "lowercase";
      else if (!majority_lower && !is_upper(ins->keyword))
        casing = "uppercase";
      if (!casing.empty())
        linter.run(
            lint_rules::kConsistentInstructionCasing, ins->range,
            "Command '" + ins->keyword + "' should match the case of the command majority (" + casing + ")");
    }
  return true;
}

namespace detail {

std::string suggest(const std::string& value, const std::vector<std::string>& options) {
  auto distance = [](const std::string& a, const std::string& b) {
    std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
      cur[0] = i;
      for (size_t j = 1; j <= b.size(); ++j)
        cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      std::swap(prev, cur);
    }
    return prev[b.size()];
  };
  std::string match;
  size_t min = 3;
  for (const auto& o : options) {
    if (o == value) return "";
    size_t d = distance(value, o);
    if (d < min) {
      match = o;
      min = d;
    }
  }
  return match;
}

std::optional<Platform> parse_platform(std::string_view spec) {
  static const std::set<std::string> kOS = {"aix",     "android", "darwin",  "dragonfly", "freebsd", "hurd",
                                            "illumos", "ios",     "js",      "linux",     "nacl",    "netbsd",
                                            "openbsd", "plan9",   "solaris", "wasip1",    "windows", "zos"};
  static const std::set<std::string> kArch = {
      "386",     "amd64",  "amd64p32", "arm",      "armbe",     "arm64",       "arm64be", "loong64",
      "mips",    "mipsle", "mips64",   "mips64le", "mips64p32", "mips64p32le", "ppc",     "ppc64",
      "ppc64le", "riscv",  "riscv64",  "s390",     "s390x",     "sparc",       "sparc64", "wasm"};
  static const std::regex kOsPart("^([A-Za-z0-9_-]+)(?:\\(([A-Za-z0-9_.-]*)\\))?$");
  static const std::regex kPart("^[A-Za-z0-9_.-]+$");
  if (spec.find('*') != std::string_view::npos) return std::nullopt;
  std::vector<std::string> parts;
  std::string s(spec);
  for (size_t start = 0;;) {
    size_t slash = parts.size() < 3 ? s.find('/', start) : std::string::npos;
    parts.push_back(s.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  Platform p;
  std::smatch m;
  if (!std::regex_match(parts[0], m, kOsPart)) return std::nullopt;
  p.os = base::to_lower(m[1].str());
  if (p.os == "macos") p.os = "darwin";
  for (size_t i = 1; i < parts.size(); ++i)
    if (!std::regex_match(parts[i], kPart)) return std::nullopt;
  auto normalize_arch = [](std::string arch, std::string variant) {
    arch = base::to_lower(arch);
    variant = base::to_lower(variant);
    if (arch == "i386") {
      arch = "386";
      variant.clear();
    } else if (arch == "x86_64" || arch == "x86-64" || arch == "amd64") {
      arch = "amd64";
      if (variant == "v1") variant.clear();
    } else if (arch == "aarch64" || arch == "arm64") {
      arch = "arm64";
      if (variant == "8" || variant == "v8" || variant == "v8.0")
        variant = "v8";
      else if (variant == "9" || variant == "v9" || variant == "9.0" || variant == "v9.0")
        variant = "v9";
    } else if (arch == "armhf") {
      arch = "arm";
      variant = "v7";
    } else if (arch == "armel") {
      arch = "arm";
      variant = "v6";
    } else if (arch == "arm") {
      if (variant.empty() || variant == "7")
        variant = "v7";
      else if (variant == "5" || variant == "6" || variant == "8")
        variant = "v" + variant;
    }
    return std::make_pair(arch, variant);
  };
  switch (parts.size()) {
    case 1: {
      if (kOS.count(p.os)) {
        p.architecture = "amd64";  // the host's; checks only compare names
        return p;
      }
      auto [arch, variant] = normalize_arch(parts[0], "");
      if (!kArch.count(arch)) return std::nullopt;
      p.os = "linux";
      p.architecture = arch;
      p.variant = arch == "arm" && variant == "v7" ? "" : variant;
      return p;
    }
    case 2:
    case 3: {
      auto [arch, variant] = normalize_arch(parts[1], parts.size() == 3 ? parts[2] : "");
      p.architecture = arch;
      p.variant = arch == "arm64" && variant.empty() ? "v8" : variant;
      return p;
    }
    default:
      return std::nullopt;
  }
}

bool valid_image_reference(std::string_view ref_view) {
  // distribution/reference's grammar (regexp.go) and ParseNormalizedNamed.
  static const std::string kAlnum = "[a-z0-9]+";
  static const std::string kSep = "(?:[._]|__|[-]+)";
  static const std::string kPathComponent = kAlnum + "(?:" + kSep + kAlnum + ")*";
  static const std::string kDomainComponent = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
  static const std::string kHost =
      "(?:" + kDomainComponent + "(?:\\." + kDomainComponent + ")*|\\[(?:[a-fA-F0-9:]+)\\])";
  static const std::string kName =
      "(?:" + kHost + "(?::[0-9]+)?/)?" + kPathComponent + "(?:/" + kPathComponent + ")*";
  static const std::regex kReference(
      "^(" + kName + ")(?::([\\w][\\w.-]{0,127}))?" +
      "(?:@([A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?$");
  static const std::regex kHex64("^[a-f0-9]{64}$");
  std::string ref(ref_view);
  if (std::regex_match(ref, kHex64)) return false;
  // splitDockerDomain
  std::string domain = "docker.io", remainder = ref;
  auto slash = ref.find('/');
  if (slash != std::string::npos) {
    std::string first = ref.substr(0, slash);
    bool is_domain =
        first.find_first_of(".:") != std::string::npos || first == "localhost" || !is_lower(first);
    if (is_domain) {
      domain = first;
      remainder = ref.substr(slash + 1);
    }
  }
  if (domain == "index.docker.io") domain = "docker.io";
  if (domain == "docker.io" && remainder.find('/') == std::string::npos) remainder = "library/" + remainder;
  std::string remote = remainder.substr(0, remainder.find(':'));
  if (!is_lower(remote)) return false;
  std::string full = domain + "/" + remainder;
  std::smatch m;
  if (!std::regex_match(full, m, kReference)) return false;
  if (m[1].length() > 255) return false;
  if (m[3].matched) {
    // digest.Parse: a known algorithm with its exact length of lower-case hex.
    std::string d = m[3].str();
    auto colon = d.find(':');
    std::string alg = d.substr(0, colon), hex = d.substr(colon + 1);
    size_t len = alg == "sha256" ? 64 : alg == "sha384" ? 96 : alg == "sha512" ? 128 : 0;
    if (len == 0 || hex.size() != len || hex.find_first_not_of("0123456789abcdef") != std::string::npos)
      return false;
  }
  return true;
}

std::vector<std::pair<std::string, std::optional<std::string>>> mount_fields(const std::string& value) {
  // One CSV record (Go's encoding/csv): fields split on ',', a field that starts with
  // '"' runs to its closing quote with "" for a quote.
  std::vector<std::string> fields;
  size_t i = 0;
  while (i <= value.size()) {
    std::string f;
    if (i < value.size() && value[i] == '"') {
      ++i;
      while (i < value.size()) {
        if (value[i] == '"') {
          if (i + 1 < value.size() && value[i + 1] == '"') {
            f += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        f += value[i++];
      }
      while (i < value.size() && value[i] != ',') f += value[i++];
    } else {
      while (i < value.size() && value[i] != ',') f += value[i++];
    }
    fields.push_back(f);
    ++i;  // the ','
  }
  std::vector<std::pair<std::string, std::optional<std::string>>> out;
  for (const auto& f : fields) {
    auto eq = f.find('=');
    if (eq == std::string::npos)
      out.emplace_back(base::to_lower(f), std::nullopt);
    else
      out.emplace_back(base::to_lower(f.substr(0, eq)), f.substr(eq + 1));
  }
  return out;
}

}  // namespace detail
}  // namespace builder::frontend
