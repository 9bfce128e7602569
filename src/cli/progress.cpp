// cli/progress.cpp — progress mode selection and the renderer factory.
#include "progress.h"

#include <unistd.h>

#include "base/error.h"
#include "progress_json.h"
#include "progress_plain.h"
#include "progress_tty.h"

namespace builder::cli {

ProgressMode parse_progress_mode(const std::string& s) {
  if (s == "auto") return ProgressMode::Auto;
  if (s == "tty") return ProgressMode::Tty;
  if (s == "plain") return ProgressMode::Plain;
  if (s == "rawjson") return ProgressMode::RawJson;
  if (s == "quiet") return ProgressMode::Quiet;
  throw base::Error("unknown progress mode `" + s + "` (expected auto, tty, plain, rawjson or quiet)");
}

ProgressMode resolve_progress_mode(ProgressMode mode) {
  if (mode != ProgressMode::Auto) return mode;
  return ::isatty(STDERR_FILENO) ? ProgressMode::Tty : ProgressMode::Plain;
}

std::unique_ptr<Progress> make_progress(ProgressMode mode, const graph::Definition& def,
                                        const graph::SourceMap& source_map) {
  switch (mode) {
    case ProgressMode::Tty:
      return std::make_unique<TtyProgress>(def, source_map, TtyProgress::Options::for_stderr());
    case ProgressMode::RawJson:
      return std::make_unique<JsonProgress>(def, source_map);
    case ProgressMode::Quiet:
      return std::make_unique<PlainProgress>(source_map, true);
    case ProgressMode::Auto:
    case ProgressMode::Plain:
      break;
  }
  return std::make_unique<PlainProgress>(source_map, false);
}

std::string vertex_name(const graph::SourceMap& source_map, int vertex) {
  std::string name;
  if (vertex >= 0 && static_cast<size_t>(vertex) < source_map.size()) name = source_map[vertex].name;
  return name.empty() ? "vertex " + std::to_string(vertex) : name;
}

}  // namespace builder::cli
