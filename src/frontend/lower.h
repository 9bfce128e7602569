// frontend/lower.h — Dockerfile AST -> build graph. All Dockerfile semantics end here:
// stages, ARG/ENV scoping and expansion, image config edits and history. The result is
// a graph::Definition plus a SourceMap; nothing here touches files, images or sandboxes:
// base images are resolved through the ImageResolver the caller provides.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/json.h"
#include "frontend/ast.h"
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

struct LowerOptions {
  std::map<std::string, std::string> build_args;  ///< --build-arg K=V
  std::string target;                             ///< --target; empty = last stage
  std::string context_name = "context";           ///< local source name of the context
  std::vector<std::string> context_excludes;      ///< .dockerignore patterns
  std::string os = "linux";
  std::string architecture = "amd64";
};

struct LowerResult {
  graph::Definition definition;
  graph::SourceMap source_map;
  std::vector<std::string> warnings;  ///< "Dockerfile:3:1: ..." lines
};

/// Lowers a parsed Dockerfile. Throws base::Error carrying the SourceRange of the
/// offending instruction (unknown stage, unsupported instruction or flag, bad word).
LowerResult lower(const ast::File& file, const LowerOptions& options, ImageResolver& resolver);

}  // namespace builder::frontend
