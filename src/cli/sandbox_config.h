// cli/sandbox_config.h — the per-container cgroup limits of `build` and `run`: the
// `sandbox` section of <root>/config.json, overridden by --pids-limit and --memory.
#pragma once

#include <cstdint>
#include <string>

namespace builder::cli {

struct SandboxLimits {
  int64_t pids = 2048;  ///< tasks per container (Docker's and BuildKit's default); 0 = none
  int64_t memory = 0;   ///< bytes per container; 0 = none
};

/// Reads {"sandbox": {"pidsLimit": N, "memoryLimit": N | "512MiB"}} from
/// <root>/config.json (missing file or section: the defaults), then applies the flags
/// (`pids_flag` < 0 and an empty `memory_flag` mean "not given"). Throws base::Error
/// naming the file or flag on a bad value.
SandboxLimits sandbox_limits(const std::string& root, int64_t pids_flag, const std::string& memory_flag);

}  // namespace builder::cli
