// exec/layers.h — read-only lookups in the merged view of a RunSpec's layer
// directories (upper first, then lower dirs top-most first), following overlayfs
// rules for whiteouts (0/0 character devices) and opaque directories, without
// mounting anything. Used to resolve users before clone() and to find mount-point
// stubs the sandbox created. Knows nothing of images or snapshots.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "exec/sandbox.h"

namespace builder::exec {

class LayerView {
 public:
  /// Relative lower/upper dirs are resolved against spec.layers_base.
  explicit LayerView(const RunSpec& spec);

  /// Host path of `rel` (a container path; a leading '/' is ignored) in the top-most
  /// layer that provides it, or nullopt when absent or whited out. Symlinks inside the
  /// image are not followed (an intermediate symlink counts as "absent").
  std::optional<std::string> find(std::string_view rel) const;

  /// The absolute layer directories, top-most first (upper_dir first when set).
  const std::vector<std::string>& dirs() const { return dirs_; }

 private:
  std::vector<std::string> dirs_;
};

/// `dir` resolved against `base` when relative (and base is set).
std::string resolve_layer_dir(const std::string& base, const std::string& dir);

}  // namespace builder::exec
