// cli/step_log.cpp — per-vertex output lines for the tty display and error reports.
#include "step_log.h"

#include <cstdio>

namespace builder::cli {
namespace {

constexpr size_t kMaxLine = 16 * 1024;

}  // namespace

StepLog::StepLog(size_t keep) : keep_(keep) {}

void StepLog::push(Vertex& v, Line line) {
  if (!line.text.empty() && line.text.back() == '\r') line.text.pop_back();
  if (line.text.size() > kMaxLine) line.text.erase(0, line.text.size() - kMaxLine / 2);
  v.lines.push_back(std::move(line));
  while (v.lines.size() > keep_) v.lines.pop_front();
}

void StepLog::operator()(const solver::Event& ev) {
  Vertex& v = vertices_[ev.vertex];
  if (ev.kind == solver::Event::Kind::Start) {
    v.started = Clock::now();
    return;
  }
  if (ev.kind != solver::Event::Kind::Log) return;
  // A line is stamped when its first byte arrives, as BuildKit stamps each log chunk.
  double now = std::chrono::duration<double>(Clock::now() - v.started).count();
  size_t pos = 0;
  while (pos < ev.text.size()) {
    if (!v.has_partial) {
      v.partial = Line{now, {}};
      v.has_partial = true;
    }
    size_t nl = ev.text.find('\n', pos);
    if (nl == std::string::npos) {
      v.partial.text.append(ev.text, pos, std::string::npos);
      // A line that never ends (a progress bar redrawn with \r) keeps only its end.
      if (v.partial.text.size() > kMaxLine) v.partial.text.erase(0, v.partial.text.size() - kMaxLine / 2);
      break;
    }
    v.partial.text.append(ev.text, pos, nl - pos);
    push(v, std::move(v.partial));
    v.has_partial = false;
    pos = nl + 1;
  }
}

std::vector<StepLog::Line> StepLog::tail(int vertex, size_t n) const {
  std::vector<Line> out;
  auto it = vertices_.find(vertex);
  if (it == vertices_.end() || n == 0) return out;
  const Vertex& v = it->second;
  size_t total = v.lines.size() + (v.has_partial ? 1 : 0);
  size_t skip = total > n ? total - n : 0;
  for (size_t i = skip; i < v.lines.size(); ++i) out.push_back(v.lines[i]);
  if (v.has_partial) {
    out.push_back(v.partial);
    if (!out.back().text.empty() && out.back().text.back() == '\r') out.back().text.pop_back();
  }
  return out;
}

std::string format_log_line(const StepLog::Line& line) {
  int precision = line.seconds < 10 ? 3 : line.seconds < 100 ? 2 : 1;
  char stamp[32];
  std::snprintf(stamp, sizeof stamp, "%.*f ", precision, line.seconds);
  return stamp + line.text;
}

}  // namespace builder::cli
