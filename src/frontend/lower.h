// frontend/lower.h — Dockerfile AST -> build graph. All Dockerfile semantics end here:
// stages, ARG/ENV scoping and expansion, image config edits and history. The result is
// a graph::Definition plus a SourceMap; nothing here touches files, images or sandboxes:
// base images are resolved through the ImageResolver the caller provides.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/json.h"
#include "frontend/ast.h"
#include "frontend/lint.h"
#include "frontend/outline.h"
#include "solver/graph/ops.h"

namespace builder::frontend {

/// A base image as the store knows it.
struct ResolvedImage {
  std::string ref;     ///< normalised reference ("busybox:latest")
  std::string digest;  ///< manifest digest, pins the Source op
  base::Json config;   ///< the whole OCI image config (config, history, rootfs, os, ...)
};

/// Supplied by the caller (cli): looks up base images. `resolve` throws base::Error
/// when the image is unknown; the frontend adds the Dockerfile location.
class ImageResolver {
 public:
  virtual ~ImageResolver() = default;
  virtual ResolvedImage resolve(const std::string& ref) = 0;
};

/// A `--build-context NAME=VALUE`: it stands for the stage or image NAME wherever the
/// Dockerfile names it (FROM, COPY --from, RUN --mount from=), as in BuildKit.
struct NamedContext {
  enum class Kind { Local, Image };
  Kind kind = Kind::Local;
  std::string local_name;             ///< Local: the executor's name of the directory
  std::vector<std::string> excludes;  ///< Local: the directory's .dockerignore patterns
  std::string image_ref;              ///< Image: what the ImageResolver resolves
};

struct LowerOptions {
  std::map<std::string, std::string> build_args;  ///< --build-arg K=V
  std::string target;                             ///< --target; empty = last stage
  std::string context_name = "context";           ///< local source name of the context
  std::vector<std::string> context_excludes;      ///< .dockerignore patterns
  std::string os = "linux";
  std::string architecture = "amd64";
  /// Granted entitlements (`--allow`): "network.host", "security.insecure".
  std::vector<std::string> allow;
  /// Build checks (lint.h): findings are appended here as lowering goes, so the ones
  /// made before an error survive it. Null: still checked (`error=true` fails), not kept.
  std::vector<LintFinding>* lint = nullptr;
  /// Lower every stage, not only those the target reaches (`--call=check`, no --target).
  bool all_stages = false;
  /// Whether a context path ("a/b") is excluded by .dockerignore (CopyIgnoredFile).
  std::function<bool(const std::string&)> context_ignored;
  /// --build-context, by NAME as given (matched as BuildKit does: "alpine",
  /// "alpine:latest" and "docker.io/library/alpine" name the same context).
  std::map<std::string, NamedContext> named_contexts;
};

/// The form named contexts are matched by: "docker.io/library/x:latest" -> "x".
std::string named_context_key(const std::string& name);

struct LowerResult {
  graph::Definition definition;
  graph::SourceMap source_map;
  std::vector<std::string> warnings;  ///< "Dockerfile:3:1: ..." lines
  Outline outline;  ///< the target's build args, secrets and SSH (`--call=outline`)
};

/// Lowers a parsed Dockerfile. Throws base::Error carrying the SourceRange of the
/// offending instruction (unknown stage, unsupported instruction or flag, bad word).
LowerResult lower(const ast::File& file, const LowerOptions& options, ImageResolver& resolver);

}  // namespace builder::frontend
