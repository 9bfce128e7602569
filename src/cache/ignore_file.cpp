#include "cache/ignore_file.h"

#include "base/strings.h"

namespace builder::cache {

std::vector<std::string> parse_ignore_file(std::string_view text) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  std::vector<std::string> out;
  size_t i = 0;
  while (i < text.size()) {
    size_t j = text.find('\n', i);
    if (j == std::string_view::npos) j = text.size();
    std::string_view line = text.substr(i, j - i);
    i = j + 1;
    if (!line.empty() && line[0] == '#') continue;
    line = base::trim(line);
    if (line.empty()) continue;
    bool invert = line[0] == '!';
    if (invert) line = base::trim(line.substr(1));
    std::string pattern;
    if (!line.empty()) {
      pattern = base::clean_path(line);
      if (pattern.size() > 1 && pattern[0] == '/') pattern.erase(0, 1);
    }
    out.push_back(invert ? "!" + pattern : pattern);
  }
  return out;
}

}  // namespace builder::cache
