// solver/ops/file_op.h — FileOp actions (COPY, WORKDIR's mkdir) written directly into
// a new snapshot's directory on top of a layered target, so the directory is exactly
// the layer's change: parents that exist below are copied up with their metadata.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "solver/graph/ops.h"
#include "solver/ops/merged_fs.h"

namespace builder::ops {

struct Owner {
  uint32_t uid = 0;
  uint32_t gid = 0;
};

/// Applies one action. `upper` is the new layer's directory; `target_layers` are the
/// target's layers top-most first (without upper); `sources[i]` is the view of the
/// vertex's input i (a local context's view hides its excluded paths: a COPY neither
/// finds nor lists them). Throws base::Error ("COPY failed: ...").
void apply_file_action(const graph::FileAction& action, const std::string& upper,
                       const std::vector<std::string>& target_layers, const std::vector<MergedFs>& sources,
                       const std::optional<Owner>& owner);

}  // namespace builder::ops
