// cli/cmd_prune.h — the build cache commands (`builder du`, `builder prune`) and the
// automatic GC that `builder build` runs when it ends. The GC itself is cache/gc.h;
// this file supplies what tagged images hold and prints.
#pragma once

#include <functional>

#include "cache/gc.h"
#include "cache/store.h"

namespace builder::cli {

/// Blobs and layer chains of every tagged image in `store`, for the cache's GC. A broken
/// image keeps what its records still name.
cache::ImageRefs image_refs(cache::Store& store);

/// Applies the root's GC policy (<root>/config.json) when destroyed: at the end of a
/// build, whatever its outcome, after the build's own lease is gone. Prints what it
/// removed only when `verbose` (--progress=plain); a GC failure is a warning, never the
/// build's failure. Skipped when `skip()` says so (an interrupted build).
class GcAfterBuild {
 public:
  /// Reads the policy now, so a bad config fails the build before it starts (throws
  /// base::Error naming the file and key).
  GcAfterBuild(cache::Store& store, bool verbose, std::function<bool()> skip);
  ~GcAfterBuild();
  GcAfterBuild(const GcAfterBuild&) = delete;
  GcAfterBuild& operator=(const GcAfterBuild&) = delete;

 private:
  cache::Store& store_;
  cache::GcPolicy policy_;
  bool verbose_;
  std::function<bool()> skip_;
};

}  // namespace builder::cli
