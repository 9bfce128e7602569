// frontend/lint_internal.h — what the build checks share between lint.cpp (the rules
// over the AST) and lower_lint.cpp (the rules that need ARG/ENV scope, and the outline
// capture): BuildKit's helper algorithms and the per-stage state lowering keeps for
// them. Internal to the frontend.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "frontend/ast.h"
#include "frontend/outline.h"

namespace builder::frontend::detail {

/// BuildKit's suggest.Search (case-sensitive): the option closest to `value` by
/// Levenshtein distance, if below 3; "" when none is, or when `value` is itself an
/// option. Options are tried in order; the first of equally close ones wins.
std::string suggest(const std::string& value, const std::vector<std::string>& options);

/// containerd's platforms.Parse, as far as the checks need it.
struct Platform {
  std::string os, architecture, variant;
};
/// nullopt where containerd refuses the specifier.
std::optional<Platform> parse_platform(std::string_view specifier);

/// Whether distribution's reference.ParseNormalizedNamed accepts `ref`.
bool valid_image_reference(std::string_view ref);

/// The fields of one RUN --mount value (CSV, `key=value` or a bare key), keys lower-cased.
std::vector<std::pair<std::string, std::optional<std::string>>> mount_fields(const std::string& value);

/// A build arg as the outline reports it.
struct ArgInfo {
  std::string key;
  std::string value;
  std::string description;
  std::set<std::string> deps;  ///< global args its default refers to
  base::SourceRange range;
};

/// Per-stage state of the checks, next to the lowering state of the stage.
struct StageLint {
  bool started = false;              ///< the first instruction has been seen
  int base = -1;                     ///< index of the stage this one is FROM, or -1
  std::string base_name;             ///< the FROM image after expansion
  std::optional<Platform> platform;  ///< FROM --platform, parsed
  bool workdir_set = false;          ///< an absolute WORKDIR was set (BuildKit: workdirSet)
  const ast::Instruction* last_cmd = nullptr;
  const ast::Instruction* last_entrypoint = nullptr;
  const ast::Instruction* last_healthcheck = nullptr;
  // Outline capture, as BuildKit's outlineCapture of the stage.
  std::set<std::string> used_args;
  std::map<std::string, ArgInfo> args;  ///< ARGs declared in the stage
  std::set<int> deps;                   ///< stages it copies or mounts from
  std::map<std::string, OutlineMount> secrets, ssh;
};

}  // namespace builder::frontend::detail
