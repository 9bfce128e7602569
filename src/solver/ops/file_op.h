// solver/ops/file_op.h — FileOp actions (COPY, WORKDIR's mkdir) written directly into
// a new snapshot's directory on top of a layered target, so the directory is exactly
// the layer's change: parents that exist below are copied up with their metadata.
// COPY follows BuildKit's file op (tonistiigi/fsutil's copy) rule for rule; the source
// views come from cache::MergedFs, which the context checksum reads too.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cache/merged_fs.h"
#include "solver/graph/ops.h"

namespace builder::ops {

/// Bumped whenever a FileOp writes different bytes for the same op and inputs, so cache
/// entries written by an older version are not reused (part of every FileOp's key).
/// v2: COPY keeps a source's owner without --chown, hard links, xattrs, sockets as
/// empty files; the copied directory gets 0755 (or --chmod) and the source's mtime.
/// v3: include/exclude patterns, symbolic chmod, ADD's archive unpacking, mkfile.
/// v4: ADD's archives unpack in place as under Docker's chroot (symlinks at the
/// destination followed inside it; an explicit directory entry replaces a symlink).
inline constexpr const char* kFileOpVersion = "file-op-v4";

struct Owner {
  uint32_t uid = 0;
  uint32_t gid = 0;
};

/// Applies one action. `upper` is the new layer's directory; `target_layers` are the
/// target's layers top-most first (without upper); `sources[i]` is the view of the
/// vertex's input i (a local context's view, cache::MergedFs::context(), hides excluded
/// paths and owns everything by 0:0). `owner` is --chown resolved (resolve_owner());
/// without it a copy keeps each source entry's owner and creates directories as 0:0.
/// Throws base::Error ("COPY failed: ...").
void apply_file_action(const graph::FileAction& action, const std::string& upper,
                       const std::vector<std::string>& target_layers, const std::vector<cache::MergedFs>& sources,
                       const std::optional<Owner>& owner);

/// Resolves a --chown (or WORKDIR's user) value "user[:group]" in `target` as BuildKit's
/// file op does: a numeric user is uid and gid both; a name takes uid and gid from the
/// target's /etc/passwd; a numeric group sets the gid, a named one takes it from
/// /etc/group. A name that is not found (or a missing file) leaves 0, as in BuildKit.
/// nullopt for "". Throws base::Error if a file exists but cannot be read.
std::optional<Owner> resolve_owner(const std::string& chown, const cache::MergedFs& target);

}  // namespace builder::ops
