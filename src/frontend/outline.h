// frontend/outline.h — what `builder build --call=outline|targets` reports, as BuildKit's
// outline and targets subrequests do: the build stages with the descriptions written in
// the comment above their FROM, and for the target the build args (value, description),
// secrets and SSH sockets it uses. Plain values; the outline itself is filled in by
// lowering (lower_lint.cpp), which knows which stages the target reaches.
#pragma once

#include <string>
#include <vector>

#include "base/error.h"
#include "frontend/ast.h"

namespace builder::frontend {

struct OutlineArg {
  std::string name;
  std::string value;        ///< the default, or the --build-arg value
  std::string description;  ///< from a `# NAME description` comment above the ARG
  base::SourceRange range;  ///< the ARG instruction
};

/// A secret or SSH socket a RUN --mount uses.
struct OutlineMount {
  std::string name;  ///< secret id, or ssh id ("default")
  bool required = false;
  base::SourceRange range;  ///< the first RUN that mounts it
};

/// BuildKit's outline of the target stage.
struct Outline {
  std::string name;              ///< the target stage's name (lower case), empty if unnamed
  std::string description;       ///< from a `# NAME description` comment above its FROM
  std::vector<OutlineArg> args;  ///< sorted by line
  std::vector<OutlineMount> secrets;
  std::vector<OutlineMount> ssh;
};

/// One stage as `--call=targets` lists it.
struct TargetInfo {
  std::string name;         ///< lower case, empty if unnamed
  std::string description;  ///< from a `# NAME description` comment above its FROM
  std::string base;         ///< the FROM image or stage as written
  std::string platform;     ///< the --platform value as written
  bool is_default = false;  ///< the last stage
  base::SourceRange range;
};

/// BuildKit's getDocComment: the rest of the first comment line that starts with
/// `name` and a space; empty when `name` is empty or no line does.
std::string doc_comment(const std::vector<std::string>& comments, const std::string& name);

/// BuildKit's ListTargets: every stage of the file, in order. Throws base::Error at the
/// FROM for a malformed one ("FROM requires either one or three arguments").
std::vector<TargetInfo> list_targets(const ast::File& file);

}  // namespace builder::frontend
