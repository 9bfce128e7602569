#include "base/log.h"

#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace builder::base {

static std::mutex g_log_mu;

bool debug_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("BUILDER_DEBUG");
    return v && *v && std::string(v) != "0";
  }();
  return on;
}

void log_debug(const std::string& msg) {
  if (!debug_enabled()) return;
  std::lock_guard lk(g_log_mu);
  std::fprintf(stderr, "debug: %s\n", msg.c_str());
}

void log_warn(const std::string& msg) {
  std::lock_guard lk(g_log_mu);
  std::fprintf(stderr, "warning: %s\n", msg.c_str());
}

}  // namespace builder::base
