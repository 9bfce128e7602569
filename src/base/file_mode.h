// base/file_mode.h — symbolic file modes as chmod(1) writes them ("u+x,go-w", "a=rX"),
// for COPY/ADD --chmod. The frontend validates a spec; the file op applies it to each
// copied entry's own mode. Pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace builder::base {

/// Whether `spec` is a valid symbolic mode: comma-separated clauses of [ugoa]* then one
/// or more operators [+-=] each followed by [rwxXst]* or one of [ugo].
bool valid_symbolic_mode(const std::string& spec);

/// Applies `spec` to `mode` (permission bits incl. setuid/setgid/sticky) with a umask
/// of 0, as BuildKit's copy does; `is_dir` decides `X`. nullopt when `spec` is invalid.
std::optional<uint32_t> apply_symbolic_mode(const std::string& spec, uint32_t mode, bool is_dir);

}  // namespace builder::base
