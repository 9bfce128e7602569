// cli/progress.cpp — BuildKit-style plain progress on stderr.
#include "progress.h"

#include <cstdio>

#include "base/error.h"

namespace builder::cli {

ProgressMode parse_progress_mode(const std::string& s) {
  if (s == "auto") return ProgressMode::Auto;
  if (s == "tty") return ProgressMode::Tty;
  if (s == "plain") return ProgressMode::Plain;
  if (s == "quiet") return ProgressMode::Quiet;
  throw base::Error("unknown progress mode `" + s + "` (expected auto, tty, plain or quiet)");
}

PlainProgress::PlainProgress(const graph::SourceMap& source_map, bool quiet)
    : source_map_(source_map), quiet_(quiet), start_(std::chrono::steady_clock::now()) {}

int PlainProgress::number_of(int vertex) {
  auto it = numbers_.find(vertex);
  if (it != numbers_.end()) return it->second;
  int n = next_++;
  numbers_[vertex] = n;
  return n;
}

void PlainProgress::write_line(int n, const std::string& line) {
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::fprintf(stderr, "#%d %.3f %s\n", n, secs, line.c_str());
}

void PlainProgress::operator()(const solver::Event& ev) {
  if (quiet_) return;
  int n = number_of(ev.vertex);
  switch (ev.kind) {
    case solver::Event::Kind::Start: {
      std::string name;
      if (ev.vertex >= 0 && static_cast<size_t>(ev.vertex) < source_map_.size()) name = source_map_[ev.vertex].name;
      if (name.empty()) name = "vertex " + std::to_string(ev.vertex);
      std::fprintf(stderr, "#%d %s\n", n, name.c_str());
      break;
    }
    case solver::Event::Kind::Log: {
      std::string& buf = partial_[ev.vertex];
      buf += ev.text;
      size_t pos;
      while ((pos = buf.find('\n')) != std::string::npos) {
        std::string line = buf.substr(0, pos);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        write_line(n, line);
        buf.erase(0, pos + 1);
      }
      break;
    }
    case solver::Event::Kind::Cached:
      std::fprintf(stderr, "#%d CACHED\n\n", n);
      break;
    case solver::Event::Kind::Done:
      if (auto it = partial_.find(ev.vertex); it != partial_.end() && !it->second.empty()) {
        write_line(n, it->second);
        it->second.clear();
      }
      std::fprintf(stderr, "#%d DONE %.1fs\n\n", n, ev.seconds);
      break;
    case solver::Event::Kind::Error:
      if (auto it = partial_.find(ev.vertex); it != partial_.end() && !it->second.empty()) {
        write_line(n, it->second);
        it->second.clear();
      }
      std::fprintf(stderr, "#%d ERROR: %s\n\n", n, ev.text.c_str());
      break;
  }
  std::fflush(stderr);
}

void PlainProgress::flush() {
  for (auto& [v, buf] : partial_)
    if (!buf.empty()) {
      write_line(number_of(v), buf);
      buf.clear();
    }
  std::fflush(stderr);
}

}  // namespace builder::cli
