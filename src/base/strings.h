// base/strings.h — small string helpers shared by all modules.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace builder::base {

std::vector<std::string> split(std::string_view s, char sep);
std::string join(const std::vector<std::string>& parts, std::string_view sep);
std::string_view trim(std::string_view s);
/// Go's path.Clean, lexically: "" -> ".", "a//b/./c/.." -> "a/b", "/../a" -> "/a",
/// "../a" stays (nothing above a relative path is known), a trailing '/' goes.
std::string clean_path(std::string_view p);
std::string to_lower(std::string_view s);
/// Shell-style quoting for display: `a b` -> 'a b'.
std::string shell_quote(std::string_view s);
/// Human size: 1.5MB (decimal units, as docker prints).
std::string human_size(unsigned long long bytes);

}  // namespace builder::base
