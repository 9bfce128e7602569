// cli/history_recorder.cpp — solver events -> build history rows and step logs.
#include "history_recorder.h"

#include <cstdio>

#include "base/error.h"
#include "progress.h"

namespace builder::cli {
namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t micros(double seconds) { return static_cast<int64_t>(seconds * 1e6 + 0.5); }

// Cached steps wait at most this long for a batch to be written with.
constexpr auto kFlushEvery = std::chrono::seconds(1);

}  // namespace

HistoryRecorder::HistoryRecorder(cache::Store& store, const Info& info) {
  try {
    history_.emplace(store);
    cache::BuildRecord r;
    r.context = info.context;
    r.dockerfile = info.dockerfile;
    r.target = info.target;
    r.tags = info.tags;
    id_ = history_->begin(std::move(r)).id;
  } catch (const std::exception& e) {
    disable(e);
  }
}

HistoryRecorder::~HistoryRecorder() {
  if (finished_ || !history_) return;
  try {
    finish(cache::BuildStatus::Failed, {}, "the build stopped without a result");
  } catch (...) {  // destructors never throw; finish() already warned
  }
}

void HistoryRecorder::disable(const std::exception& e) {
  if (!warned_) {
    std::fprintf(stderr, "WARNING: build history is not recorded: %s\n", e.what());
    std::fflush(stderr);
    warned_ = true;
  }
  history_.reset();
  steps_.clear();  // closes the logs
}

void HistoryRecorder::put(Step& s, bool now) {
  if (s.log.open()) s.entry.log_size = static_cast<int64_t>(s.log.size());
  s.dirty = true;
  if (now || Clock::now() - last_flush_ >= kFlushEvery) flush();
}

void HistoryRecorder::flush() {
  std::vector<cache::StepEntry> rows;
  for (auto& [v, s] : steps_)
    if (s.dirty) rows.push_back(s.entry);
  history_->put_steps(id_, rows);
  for (auto& [v, s] : steps_)
    if (s.dirty) {
      s.dirty = false;
      s.written = true;
    }
  last_flush_ = Clock::now();
}

void HistoryRecorder::operator()(const solver::Event& ev) {
  if (!history_ || finished_) return;
  try {
    auto it = steps_.find(ev.vertex);
    if (it == steps_.end()) {
      // Numbered in the order steps first appear, as plain progress numbers them, so
      // `history logs BUILD 3` is the step shown as #3.
      Step s;
      s.entry.number = next_++;
      s.entry.vertex = ev.vertex;
      s.entry.name = source_map_ ? vertex_name(*source_map_, ev.vertex) : "vertex " + std::to_string(ev.vertex);
      s.entry.started_ns = now_ns();
      s.started = Clock::now();
      it = steps_.emplace(ev.vertex, std::move(s)).first;
    }
    Step& s = it->second;
    switch (ev.kind) {
      case solver::Event::Kind::Start:
        // No row yet: most steps are cached, and one write when that is known is enough.
        break;
      case solver::Event::Kind::Cached:
        s.entry.state = cache::StepState::Cached;
        s.entry.duration_us = micros(ev.seconds);
        s.ended = true;
        put(s, false);
        break;
      case solver::Event::Kind::Miss:
        s.entry.miss_reason = ev.text;
        put(s, true);  // a running step is visible from here on
        break;
      case solver::Event::Kind::Log: {
        if (!s.log.open()) s.log = history_->open_log(id_, s.entry.number);
        auto since = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - s.started).count();
        s.log.append(ev.text, since);
        break;
      }
      case solver::Event::Kind::Done:
      case solver::Event::Kind::Error:
        s.entry.state = ev.kind == solver::Event::Kind::Done ? cache::StepState::Done : cache::StepState::Error;
        s.entry.duration_us = micros(ev.seconds);
        if (ev.kind == solver::Event::Kind::Error) s.entry.error = ev.text;
        s.ended = true;
        put(s, true);
        s.log = cache::LogWriter();  // closes it
        break;
    }
  } catch (const std::exception& e) {
    disable(e);
  }
}

void HistoryRecorder::finish(cache::BuildStatus status, const std::string& image_id, const std::string& error) {
  if (finished_) return;
  finished_ = true;
  if (!history_) return;
  try {
    // Steps that started but never got a row (stopped while their cache key was being
    // computed) are kept as running; a finished build shows them as canceled.
    for (auto& [v, s] : steps_)
      if (!s.written || s.dirty || (!s.ended && s.log.open())) put(s, false);
    flush();
    steps_.clear();
    history_->finish(id_, status, image_id, error);
  } catch (const std::exception& e) {
    disable(e);
  }
}

void HistoryRecorder::completed(const std::string& image_id) { finish(cache::BuildStatus::Completed, image_id, {}); }
void HistoryRecorder::failed(const std::string& error) { finish(cache::BuildStatus::Failed, {}, error); }
void HistoryRecorder::interrupted(const std::string& error) { finish(cache::BuildStatus::Interrupted, {}, error); }

}  // namespace builder::cli
