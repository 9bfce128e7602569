// cli/progress_plain.cpp — BuildKit-style plain progress on stderr.
#include "progress_plain.h"

#include <cstdio>

namespace builder::cli {

PlainProgress::PlainProgress(const graph::SourceMap& source_map, bool quiet)
    : source_map_(source_map), quiet_(quiet), start_(std::chrono::steady_clock::now()) {}

int PlainProgress::number_of(int vertex) {
  auto it = numbers_.find(vertex);
  if (it != numbers_.end()) return it->second;
  int n = next_++;
  numbers_[vertex] = n;
  return n;
}

// As BuildKit's: an output line is stamped with the seconds since its step started.
void PlainProgress::write_line(int vertex, int n, const std::string& line) {
  auto it = started_.find(vertex);
  auto since = it == started_.end() ? start_ : it->second;
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
  std::fprintf(stderr, "#%d %.3f %s\n", n, secs, line.c_str());
}

void PlainProgress::operator()(const solver::Event& ev) {
  if (quiet_) return;
  int n = number_of(ev.vertex);
  switch (ev.kind) {
    case solver::Event::Kind::Start:
      started_[ev.vertex] = std::chrono::steady_clock::now();
      std::fprintf(stderr, "#%d %s\n", n, vertex_name(source_map_, ev.vertex).c_str());
      break;
    case solver::Event::Kind::Log: {
      std::string& buf = partial_[ev.vertex];
      buf += ev.text;
      size_t pos;
      while ((pos = buf.find('\n')) != std::string::npos) {
        std::string line = buf.substr(0, pos);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        write_line(ev.vertex, n, line);
        buf.erase(0, pos + 1);
      }
      break;
    }
    case solver::Event::Kind::Cached:
      std::fprintf(stderr, "#%d CACHED\n\n", n);
      break;
    case solver::Event::Kind::Miss:
      // Why the step runs, before anything it prints.
      std::fprintf(stderr, "#%d cache miss: %s\n", n, ev.text.c_str());
      break;
    case solver::Event::Kind::Done:
      if (auto it = partial_.find(ev.vertex); it != partial_.end() && !it->second.empty()) {
        write_line(ev.vertex, n, it->second);
        it->second.clear();
      }
      std::fprintf(stderr, "#%d DONE %.1fs\n\n", n, ev.seconds);
      break;
    case solver::Event::Kind::Error:
      if (auto it = partial_.find(ev.vertex); it != partial_.end() && !it->second.empty()) {
        write_line(ev.vertex, n, it->second);
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
      write_line(v, number_of(v), buf);
      buf.clear();
    }
  std::fflush(stderr);
}

}  // namespace builder::cli
