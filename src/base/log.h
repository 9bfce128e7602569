// base/log.h — leveled diagnostics on stderr. Inner layers log only for debugging
// (BUILDER_DEBUG=1) and for failures in destructors; user-facing output is cli's job.
#pragma once

#include <string>

namespace builder::base {

bool debug_enabled();
void log_debug(const std::string& msg);
void log_warn(const std::string& msg);

}  // namespace builder::base
