// cli/sandbox_config.cpp — see sandbox_config.h.
#include "sandbox_config.h"

#include "base/error.h"
#include "base/fs.h"
#include "base/json.h"
#include "cache/gc_policy.h"

namespace builder::cli {

namespace {

int64_t memory_value(const base::Json& v, const std::string& where) {
  if (v.is_number_integer() && v.get<int64_t>() >= 0) return v.get<int64_t>();
  if (v.is_string()) {
    try {
      return cache::parse_size(v.get<std::string>());
    } catch (base::Error& e) {
      throw e.add_context(where);
    }
  }
  throw base::Error(where + ": expected a size in bytes or a string such as \"512MiB\"");
}

}  // namespace

SandboxLimits sandbox_limits(const std::string& root, int64_t pids_flag, const std::string& memory_flag) {
  SandboxLimits limits;
  const std::string path = base::path_join(root, "config.json");
  if (base::path_exists(path)) {
    const std::string file = "config file `" + path + "`";
    base::Json j = base::Json::parse(base::read_file(path), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) throw base::Error(file + " is not a valid JSON object");
    if (j.contains("sandbox")) {
      const auto& s = j["sandbox"];
      if (!s.is_object()) throw base::Error(file + ": `sandbox` must be an object");
      for (const auto& [key, value] : s.items()) {
        std::string where = file + ": sandbox." + key;
        if (key == "pidsLimit") {
          if (!value.is_number_integer() || value.get<int64_t>() < 0)
            throw base::Error(where + ": expected a number of tasks (0: no limit)");
          limits.pids = value.get<int64_t>();
        } else if (key == "memoryLimit") {
          limits.memory = memory_value(value, where);
        } else {
          throw base::Error(file + ": unknown key `sandbox." + key + "` (known: pidsLimit, memoryLimit)");
        }
      }
    }
  }
  if (pids_flag >= 0) limits.pids = pids_flag;
  if (!memory_flag.empty()) {
    try {
      limits.memory = cache::parse_size(memory_flag);
    } catch (base::Error& e) {
      throw e.add_context("--memory");
    }
  }
  return limits;
}

}  // namespace builder::cli
