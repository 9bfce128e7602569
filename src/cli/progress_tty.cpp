// cli/progress_tty.cpp — the in-place redrawn progress block. ANSI only: cursor up
// (CSI n A), clear to end of line (CSI K), and SGR colours that NO_COLOR turns off.
#include "progress_tty.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string_view>

namespace builder::cli {
namespace {

constexpr auto kTick = std::chrono::milliseconds(100);
constexpr size_t kLogLines = 6;  // output lines shown under a running or failed step
constexpr const char* kDim = "\x1b[2m";
constexpr const char* kBlue = "\x1b[34m";
constexpr const char* kRed = "\x1b[31m";
constexpr const char* kReset = "\x1b[0m";

/// Vertices the result depends on, as the solver walks them.
int count_needed(const graph::Definition& def) {
  if (def.result < 0 || static_cast<size_t>(def.result) >= def.vertices.size()) return 0;
  std::vector<bool> seen(def.vertices.size());
  std::vector<int> stack{def.result};
  int n = 0;
  while (!stack.empty()) {
    int v = stack.back();
    stack.pop_back();
    if (seen[v]) continue;
    seen[v] = true;
    ++n;
    for (int in : def.vertices[v].inputs) stack.push_back(in);
  }
  return n;
}

/// What a terminal would leave of one output line: the text after its last carriage
/// return, tabs as spaces, other control characters dropped (an escape sequence from a
/// step would break the redraw).
std::string printable(std::string_view s) {
  while (!s.empty() && s.back() == '\r') s.remove_suffix(1);
  if (auto cr = s.rfind('\r'); cr != std::string_view::npos) s.remove_prefix(cr + 1);
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == '\t')
      out += "    ";
    else if (u >= 0x20 && u != 0x7f)
      out += c;
  }
  return out;
}

/// Columns `s` takes, one per UTF-8 code point (continuation bytes are free).
int columns(const std::string& s) {
  int n = 0;
  for (char c : s)
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  return n;
}

/// `s` cut to at most `width` columns, never inside a UTF-8 sequence.
std::string cut(const std::string& s, int width) {
  if (width <= 0) return {};
  int n = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) continue;
    if (n == width) return s.substr(0, i);
    ++n;
  }
  return s;
}

std::string seconds_text(double secs) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", secs);
  return buf;
}

}  // namespace

TtyProgress::Options TtyProgress::Options::for_stderr() {
  Options o;
  winsize ws{};
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
    o.width = ws.ws_col;
    o.height = ws.ws_row;
  }
  const char* no_color = std::getenv("NO_COLOR");
  o.color = !(no_color && *no_color);
  return o;
}

TtyProgress::TtyProgress(const graph::Definition& def, const graph::SourceMap& source_map, Options options)
    : source_map_(source_map),
      options_(options),
      total_(count_needed(def)),
      start_(Clock::now()),
      logs_(kLogLines),
      ticker_([this] { tick(); }) {}

TtyProgress::~TtyProgress() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (ticker_.joinable()) ticker_.join();
}

TtyProgress::Step& TtyProgress::step_of(int vertex) {
  auto [it, added] = index_.emplace(vertex, steps_.size());
  if (added) steps_.push_back(Step{vertex, State::Running, Clock::now(), 0.0, {}});
  return steps_[it->second];
}

void TtyProgress::operator()(const solver::Event& ev) {
  std::lock_guard lk(mu_);
  if (finished_) return;
  Step& step = step_of(ev.vertex);
  switch (ev.kind) {
    case solver::Event::Kind::Start:
      step.started = Clock::now();
      break;
    case solver::Event::Kind::Log:
      break;
    case solver::Event::Kind::Miss:
      step.reason = ev.text;
      break;
    case solver::Event::Kind::Cached:
      step.state = State::Cached;
      step.seconds = ev.seconds;
      break;
    case solver::Event::Kind::Done:
      step.state = State::Done;
      step.seconds = ev.seconds;
      break;
    case solver::Event::Kind::Error:
      step.state = State::Error;
      step.seconds = ev.seconds;
      break;
  }
  logs_(ev);
  dirty_ = true;
}

void TtyProgress::tick() {
  std::unique_lock lk(mu_);
  for (;;) {
    // Events only mark the block dirty; drawing here caps redraws at one per tick.
    wake_.wait_for(lk, kTick, [this] { return stop_; });
    if (stop_) return;
    bool running = std::any_of(steps_.begin(), steps_.end(), [](const Step& s) { return s.state == State::Running; });
    if (dirty_ || running) draw(false);  // a running step's timer moves
  }
}

void TtyProgress::finish() {
  {
    std::lock_guard lk(mu_);
    if (finished_) return;
    finished_ = true;
    stop_ = true;
  }
  wake_.notify_all();
  if (ticker_.joinable()) ticker_.join();
  std::lock_guard lk(mu_);
  draw(true);
}

std::vector<std::string> TtyProgress::frame(bool final, Clock::time_point now) const {
  // The last column stays empty: a full line leaves some terminals in their pending
  // wrap state, and the cursor-up count would be off by one.
  const int width = std::max(options_.width - 1, 1);
  auto paint = [this](const char* color, const std::string& line) {
    return options_.color && color ? color + line + kReset : line;
  };

  int completed = 0;
  for (const auto& s : steps_) completed += s.state != State::Running;
  std::string header = "[+] Building " + seconds_text(std::chrono::duration<double>(now - start_).count()) + " (" +
                       std::to_string(completed) + "/" +
                       std::to_string(std::max(total_, static_cast<int>(steps_.size()))) + ")";
  if (final) header += " FINISHED";

  // One block per step: its line, then the output lines shown under it.
  std::vector<std::vector<std::string>> blocks;
  for (const auto& s : steps_) {
    std::vector<std::string> block;
    std::string label = " => ";
    if (s.state == State::Cached) label += "CACHED ";
    if (s.state == State::Error) label += "ERROR ";
    label += printable(vertex_name(source_map_, s.vertex));  // a heredoc RUN has newlines
    const size_t name_end = label.size();
    // A step that ran says why, dimmed; a cached one has nothing to explain.
    if (!s.reason.empty() && s.state != State::Cached) label += " (" + printable(s.reason) + ")";
    double secs = s.state == State::Running ? std::chrono::duration<double>(now - s.started).count() : s.seconds;
    std::string timer = seconds_text(secs);
    int room = width - static_cast<int>(timer.size()) - 1;
    label = cut(label, room);
    std::string line = label + std::string(std::max(room - columns(label), 0) + 1, ' ') + timer;
    const char* color = s.state == State::Error ? kRed : s.state == State::Running ? nullptr : kBlue;
    if (options_.color && label.size() > name_end && columns(line) <= width) {
      std::string pad(static_cast<size_t>(std::max(room - columns(label), 0) + 1), ' ');
      block.push_back(paint(color, label.substr(0, name_end)) + paint(kDim, label.substr(name_end)) +
                      paint(color, pad + timer));
    } else {
      block.push_back(paint(color, cut(line, width)));
    }
    bool show_output = s.state == State::Error || (s.state == State::Running && !final);
    if (show_output)
      for (const auto& l : logs_.tail(s.vertex, kLogLines))
        block.push_back(paint(kDim, cut(" => => # " + printable(l.text), width)));
    blocks.push_back(std::move(block));
  }

  // The live block must fit on the screen, or the cursor-up cannot reach its top:
  // finished steps leave first (oldest first), then output lines, then running steps.
  size_t lines = 1;
  for (const auto& b : blocks) lines += b.size();
  const size_t limit = options_.height > 1 ? static_cast<size_t>(options_.height - 1) : 0;
  if (!final && limit > 0) {
    for (size_t i = 0; i < blocks.size() && lines > limit; ++i) {
      if (steps_[i].state == State::Running) continue;
      lines -= blocks[i].size();
      blocks[i].clear();
    }
    for (auto& b : blocks)
      while (lines > limit && b.size() > 1) {
        b.erase(b.begin() + 1);
        --lines;
      }
  }
  std::vector<std::string> out{cut(header, width)};
  for (const auto& b : blocks) out.insert(out.end(), b.begin(), b.end());
  if (!final && limit > 0 && out.size() > limit) out.erase(out.begin() + 1, out.end() - (limit - 1));
  return out;
}

void TtyProgress::draw(bool final) {
  std::vector<std::string> lines = frame(final, Clock::now());
  std::string buf;
  // Back to the top of the block drawn last, then overwrite it line by line.
  if (drawn_lines_ > 0) buf += "\x1b[" + std::to_string(drawn_lines_) + "A";
  for (const auto& l : lines) buf += "\r\x1b[K" + l + "\n";
  // A shorter block: blank the rest of the old one and come back up.
  int extra = drawn_lines_ - static_cast<int>(lines.size());
  if (extra > 0) {
    for (int i = 0; i < extra; ++i) buf += "\r\x1b[K\n";
    buf += "\x1b[" + std::to_string(extra) + "A";
  }
  drawn_lines_ = static_cast<int>(lines.size());
  dirty_ = false;
  std::fwrite(buf.data(), 1, buf.size(), options_.out);
  std::fflush(options_.out);
}

}  // namespace builder::cli
