// cache/ignore_file.h — reading a .dockerignore file into the pattern list PathFilter
// takes, as Docker's CLI and BuildKit read it. Pure text processing, no I/O.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace builder::cache {

/// The patterns of a .dockerignore file's text: a UTF-8 BOM at the start is dropped,
/// lines starting with `#` are comments (tested before trimming, so "  # x" is a
/// pattern), lines are trimmed and empty ones skipped; after an optional `!` (trimmed
/// again) the pattern is cleaned as a path ("a//b/./c/" -> "a/b/c") and loses a leading
/// `/`. A bare `!` is kept as "!" for PathFilter to refuse. Never throws.
std::vector<std::string> parse_ignore_file(std::string_view text);

}  // namespace builder::cache
