// cli/cmd_history.cpp — `builder history ls|inspect|logs`: past builds of this root, their
// steps (cached, or why they ran), timings, errors and whole logs, read from
// cache::History. (`docker history IMAGE` is an image verb; here `history` is about builds.)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "base/error.h"
#include "base/json.h"
#include "base/strings.h"
#include "cache/history.h"
#include "cache/store.h"
#include "cli.h"
#include "progress_json.h"
#include "step_log.h"

namespace builder::cli {
namespace {

using cache::BuildRecord;
using cache::BuildStatus;
using cache::StepEntry;
using cache::StepState;

std::string seconds_text(double secs) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", secs);
  return buf;
}

/// What a step came to, for display: a step left running by a build that ended (failed
/// elsewhere, interrupted, killed) was canceled.
std::string step_result(const BuildRecord& b, const StepEntry& s) {
  switch (s.state) {
    case StepState::Cached: return "CACHED";
    case StepState::Done: return "DONE";
    case StepState::Error: return "ERROR";
    case StepState::Running: return b.status == BuildStatus::Running ? "RUNNING" : "CANCELED";
  }
  return "?";
}

/// The name `history ls` shows: the first tag, else the context directory's name.
std::string build_name(const BuildRecord& b) {
  std::string name = !b.tags.empty() ? b.tags.front() : std::filesystem::path(b.context).filename().string();
  if (name.empty()) name = b.context.empty() ? "-" : b.context;
  if (!b.target.empty()) name += " (" + b.target + ")";
  return name;
}

/// Seconds the build took: to its end, or so far while it runs; -1 when it has no end
/// (its process died).
double build_seconds(const BuildRecord& b) {
  if (b.finished_ns > 0) return static_cast<double>(b.finished_ns - b.started_ns) / 1e9;
  if (b.status == BuildStatus::Running) {
    auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    return static_cast<double>(now - b.started_ns) / 1e9;
  }
  return -1;
}

base::Json build_json(const BuildRecord& b, const std::vector<StepEntry>& steps) {
  base::Json j;
  j["id"] = b.id;
  j["name"] = build_name(b);
  j["status"] = cache::status_name(b.status);
  j["started"] = rfc3339_nano(b.started_ns);
  j["finished"] = b.finished_ns > 0 ? base::Json(rfc3339_nano(b.finished_ns)) : base::Json(nullptr);
  double secs = build_seconds(b);
  j["duration_seconds"] = secs >= 0 ? base::Json(secs) : base::Json(nullptr);
  j["pid"] = b.pid;
  j["context"] = b.context;
  j["dockerfile"] = b.dockerfile;
  j["target"] = b.target;
  j["tags"] = b.tags;
  j["image_id"] = b.image_id;
  j["error"] = b.error;
  int cached = 0;
  for (const auto& s : steps) cached += s.state == StepState::Cached;
  j["steps_total"] = steps.size();
  j["steps_cached"] = cached;
  return j;
}

std::string dump(const base::Json& j) { return j.dump(2, ' ', false, base::Json::error_handler_t::replace); }

int cmd_ls(const std::string& root, const std::string& format) {
  cache::Store store(root);
  cache::History history(store);
  auto builds = history.builds();
  if (format == "json") {
    base::Json out = base::Json::array();
    for (const auto& b : builds) out.push_back(build_json(b, history.steps(b.id)));
    std::printf("%s\n", dump(out).c_str());
    return 0;
  }
  std::vector<std::vector<std::string>> rows{{"BUILD ID", "NAME", "STATUS", "CREATED AT", "DURATION", "STEPS"}};
  for (const auto& b : builds) {
    auto steps = history.steps(b.id);
    int cached = 0;
    for (const auto& s : steps) cached += s.state == StepState::Cached;
    double secs = build_seconds(b);
    std::string created = rfc3339_nano(b.started_ns - b.started_ns % 1000000000);  // whole seconds
    rows.push_back({b.id, build_name(b), cache::status_name(b.status), created,
                    secs >= 0 ? seconds_text(secs) : "-",
                    std::to_string(steps.size()) + " (" + std::to_string(cached) + " cached)"});
  }
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i)
      line += i + 1 < r.size() ? r[i] + std::string(width[i] - r[i].size() + 3, ' ') : r[i];
    std::printf("%s\n", line.c_str());
  }
  return 0;
}

int cmd_inspect(const std::string& root, const std::string& ref, const std::string& format) {
  cache::Store store(root);
  cache::History history(store);
  BuildRecord b = history.find(ref);
  auto steps = history.steps(b.id);
  if (format == "json") {
    base::Json j = build_json(b, steps);
    base::Json arr = base::Json::array();
    for (const auto& s : steps) {
      base::Json sj;
      sj["number"] = s.number;
      sj["vertex"] = s.vertex;
      sj["name"] = s.name;
      sj["result"] = step_result(b, s);
      sj["cached"] = s.state == StepState::Cached;
      sj["miss_reason"] = s.miss_reason;
      sj["started"] = rfc3339_nano(s.started_ns);
      sj["duration_seconds"] = static_cast<double>(s.duration_us) / 1e6;
      sj["error"] = s.error;
      sj["log_size"] = s.log_size;
      arr.push_back(sj);
    }
    j["steps"] = arr;
    std::printf("%s\n", dump(j).c_str());
    return 0;
  }
  auto field = [](const char* k, const std::string& v) {
    if (!v.empty()) std::printf("%-12s%s\n", k, v.c_str());
  };
  int cached = 0;
  for (const auto& s : steps) cached += s.state == StepState::Cached;
  double secs = build_seconds(b);
  field("Build:", b.id);
  field("Status:", cache::status_name(b.status));
  field("Context:", b.context);
  field("Dockerfile:", b.dockerfile);
  field("Target:", b.target);
  field("Tags:", base::join(b.tags, ", "));
  field("Image:", b.image_id);
  field("Started:", rfc3339_nano(b.started_ns));
  field("Duration:", secs >= 0 ? seconds_text(secs) : "-");
  field("Steps:", std::to_string(steps.size()) + " (" + std::to_string(cached) + " cached, " +
                      std::to_string(steps.size() - static_cast<size_t>(cached)) + " ran)");
  field("Error:", b.error);
  if (steps.empty()) return 0;
  std::printf("\n");
  for (const auto& s : steps) {
    std::string result = step_result(b, s);
    std::string dur = s.state == StepState::Running ? "-" : seconds_text(static_cast<double>(s.duration_us) / 1e6);
    std::printf("#%-4d %-9s %7s  %s\n", s.number, result.c_str(), dur.c_str(), s.name.c_str());
    if (!s.miss_reason.empty()) std::printf("      cache miss: %s\n", s.miss_reason.c_str());
    if (!s.error.empty()) std::printf("      error: %s\n", s.error.c_str());
    if (s.log_size > 0)
      std::printf("      log: %s (builder history logs %s %d)\n",
                  base::human_size(static_cast<unsigned long long>(s.log_size)).c_str(), b.id.c_str(), s.number);
  }
  return 0;
}

/// One step's output in plain-progress layout: "#N 0.012 line", each line stamped with
/// the time its first byte came, as the live plain progress stamps it.
void print_step_lines(cache::History& history, const std::string& build, const StepEntry& s) {
  std::string log = history.read_log(build, s.number);
  if (log.empty()) return;
  auto chunks = history.log_chunks(build, s.number);
  size_t c = 0;
  size_t pos = 0;
  while (pos < log.size()) {
    while (c + 1 < chunks.size() && chunks[c + 1].offset <= pos) ++c;
    double secs = chunks.empty() ? 0.0 : static_cast<double>(chunks[c].micros) / 1e6;
    size_t nl = log.find('\n', pos);
    size_t end = nl == std::string::npos ? log.size() : nl;
    std::string line = log.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::string text = "#" + std::to_string(s.number) + " " + format_log_line(StepLog::Line{secs, line}) + "\n";
    std::fwrite(text.data(), 1, text.size(), stdout);
    pos = end + 1;
  }
}

int cmd_logs(const std::string& root, const std::string& ref, const std::string& step) {
  cache::Store store(root);
  cache::History history(store);
  BuildRecord b = history.find(ref);
  auto steps = history.steps(b.id);
  if (!step.empty()) {
    // One step: its output exactly as the step printed it, for a pipe or a diff.
    std::string n = step[0] == '#' ? step.substr(1) : step;
    if (n.empty() || n.size() > 9 || n.find_first_not_of("0123456789") != std::string::npos)
      throw base::Error("invalid step `" + step + "`: give its number as `builder history inspect " + b.id +
                        "` shows it");
    int number = std::stoi(n);
    auto it = std::find_if(steps.begin(), steps.end(), [&](const StepEntry& s) { return s.number == number; });
    if (it == steps.end())
      throw base::Error("build " + b.id + " has no step " + n + " (it has " + std::to_string(steps.size()) + " step" +
                        (steps.size() == 1 ? "" : "s") + ")");
    std::string log = history.read_log(b.id, number);
    std::fwrite(log.data(), 1, log.size(), stdout);
    std::fflush(stdout);
    return 0;
  }
  for (const auto& s : steps) {
    std::printf("#%d %s\n", s.number, s.name.c_str());
    if (s.state == StepState::Cached) {
      std::printf("#%d CACHED\n\n", s.number);
      continue;
    }
    if (!s.miss_reason.empty()) std::printf("#%d cache miss: %s\n", s.number, s.miss_reason.c_str());
    std::fflush(stdout);
    print_step_lines(history, b.id, s);
    double secs = static_cast<double>(s.duration_us) / 1e6;
    if (s.state == StepState::Done)
      std::printf("#%d DONE %.1fs\n\n", s.number, secs);
    else if (s.state == StepState::Error)
      std::printf("#%d ERROR: %s\n\n", s.number, s.error.c_str());
    else if (b.status != BuildStatus::Running)
      std::printf("#%d CANCELED\n\n", s.number);
    else
      std::printf("\n");
  }
  if (!b.error.empty()) std::printf("ERROR: %s\n", b.error.c_str());
  std::fflush(stdout);
  return 0;
}

void check_format(const std::string& format) {
  if (format != "table" && format != "json")
    throw base::Error("unknown --format `" + format + "` (expected table or json)");
}

}  // namespace

void add_history_command(CLI::App& app, Context& ctx) {
  auto* hist = app.add_subcommand("history", "Past builds: their steps, timings, cache hits and full logs");
  // A first word that is not a subcommand lands here, so that `builder history IMAGE`
  // (docker's image verb) gets a clear answer instead of a parse error.
  auto stray = std::make_shared<std::vector<std::string>>();
  hist->add_option("args", *stray, "ls, inspect BUILD or logs BUILD [STEP]");

  auto ls_format = std::make_shared<std::string>("table");
  auto* ls = hist->add_subcommand("ls", "List past builds, newest first");
  ls->add_option("--format", *ls_format, "table or json");
  ls->callback([&ctx, ls_format] {
    check_format(*ls_format);
    ctx.action = [&ctx, ls_format] { return cmd_ls(ctx.root, *ls_format); };
  });

  auto inspect_ref = std::make_shared<std::string>();
  auto inspect_format = std::make_shared<std::string>("table");
  auto* inspect = hist->add_subcommand("inspect", "Show a build and each of its steps");
  inspect->add_option("build", *inspect_ref, "Build id, a unique prefix of one, or ^N (^1: the newest)")
      ->required();
  inspect->add_option("--format", *inspect_format, "table or json");
  inspect->callback([&ctx, inspect_ref, inspect_format] {
    check_format(*inspect_format);
    ctx.action = [&ctx, inspect_ref, inspect_format] { return cmd_inspect(ctx.root, *inspect_ref, *inspect_format); };
  });

  auto logs_ref = std::make_shared<std::string>();
  auto logs_step = std::make_shared<std::string>();
  auto* logs = hist->add_subcommand(
      "logs", "Print a build's full logs (plain progress layout), or one step's output as it printed it");
  logs->add_option("build", *logs_ref, "Build id, a unique prefix of one, or ^N (^1: the newest)")->required();
  logs->add_option("step", *logs_step, "Step number, as `history inspect` shows it");
  logs->callback([&ctx, logs_ref, logs_step] {
    ctx.action = [&ctx, logs_ref, logs_step] { return cmd_logs(ctx.root, *logs_ref, *logs_step); };
  });

  // Runs after the chosen subcommand's callback.
  hist->callback([hist, stray] {
    if (!stray->empty())
      throw base::Error("`builder history` shows past builds: ls, inspect BUILD, logs BUILD [STEP]; `" +
                        stray->front() + "` is none of these (the history of an image is `builder image history " +
                        "IMAGE`, not built yet)");
    if (!hist->get_subcommands().empty()) return;
    throw base::Error("`builder history` needs a subcommand: ls, inspect BUILD or logs BUILD [STEP]");
  });
}

}  // namespace builder::cli
