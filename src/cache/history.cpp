// cache/history.cpp — build history rows in metadata.db and step logs under
// <root>/history/. See history.h for the schema and the crash-safety order.
#include "cache/history.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "base/error.h"
#include "base/fs.h"
#include "base/json.h"
#include "base/log.h"

namespace builder::cache {
namespace {

const char* const kTables = R"sql(
CREATE TABLE IF NOT EXISTS history_builds(id TEXT PRIMARY KEY, pid INTEGER, started INTEGER,
  finished INTEGER, status TEXT NOT NULL, context TEXT, dockerfile TEXT, target TEXT, tags TEXT,
  image_id TEXT, error TEXT);
CREATE INDEX IF NOT EXISTS history_builds_started ON history_builds(started);
CREATE TABLE IF NOT EXISTS history_steps(build TEXT NOT NULL, number INTEGER NOT NULL,
  vertex INTEGER, name TEXT, state TEXT NOT NULL, miss_reason TEXT, started INTEGER,
  duration_us INTEGER, error TEXT, log_size INTEGER, PRIMARY KEY(build, number));
)sql";

constexpr const char* kBuildColumns =
    "id, pid, started, finished, status, context, dockerfile, target, tags, image_id, error";

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t to_int(const std::optional<std::string>& s) { return s ? std::strtoll(s->c_str(), nullptr, 10) : 0; }

BuildStatus parse_status(const std::string& s) {
  if (s == "completed") return BuildStatus::Completed;
  if (s == "failed") return BuildStatus::Failed;
  if (s == "interrupted") return BuildStatus::Interrupted;
  return BuildStatus::Running;
}

StepState parse_state(const std::string& s) {
  if (s == "cached") return StepState::Cached;
  if (s == "done") return StepState::Done;
  if (s == "error") return StepState::Error;
  return StepState::Running;
}

BuildRecord build_of(const Row& r) {
  BuildRecord b;
  b.id = r[0].value_or("");
  b.pid = static_cast<int>(to_int(r[1]));
  b.started_ns = to_int(r[2]);
  b.finished_ns = to_int(r[3]);
  b.status = parse_status(r[4].value_or(""));
  b.context = r[5].value_or("");
  b.dockerfile = r[6].value_or("");
  b.target = r[7].value_or("");
  base::Json tags = base::Json::parse(r[8].value_or("[]"), nullptr, /*allow_exceptions=*/false);
  if (tags.is_array())
    for (const auto& t : tags)
      if (t.is_string()) b.tags.push_back(t.get<std::string>());
  b.image_id = r[9].value_or("");
  b.error = r[10].value_or("");
  return b;
}

bool valid_id(const std::string& id) {
  return !id.empty() && id.size() <= 64 && id.find_first_not_of("0123456789abcdef") == std::string::npos;
}

}  // namespace

std::string status_name(BuildStatus s) {
  switch (s) {
    case BuildStatus::Running: return "running";
    case BuildStatus::Completed: return "completed";
    case BuildStatus::Failed: return "failed";
    case BuildStatus::Interrupted: return "interrupted";
  }
  return "unknown";
}

std::string state_name(StepState s) {
  switch (s) {
    case StepState::Running: return "running";
    case StepState::Cached: return "cached";
    case StepState::Done: return "done";
    case StepState::Error: return "error";
  }
  return "unknown";
}

void LogWriter::append(std::string_view data, int64_t micros) {
  if (data.empty() || !log_) return;
  // The index line first names where the chunk starts; a crash between the two writes
  // leaves an index line past the end of the log, which readers skip.
  base::write_all(index_.get(), std::to_string(size_) + " " + std::to_string(micros) + "\n");
  base::write_all(log_.get(), data);
  size_ += data.size();
}

History::History(Store& store, int keep) : store_(store), db_(store.db()), keep_(keep) {
  db_.transaction([&] {
    auto rows = db_.query("SELECT value FROM meta WHERE key='history_schema_version'");
    if (!rows.empty() && rows[0][0] && std::atoi(rows[0][0]->c_str()) > kHistorySchemaVersion)
      throw base::Error("build history has schema version " + *rows[0][0] + ", newer than this builder supports (" +
                        std::to_string(kHistorySchemaVersion) + ")");
    db_.exec(kTables);
    if (rows.empty())
      db_.exec("INSERT OR REPLACE INTO meta(key, value) VALUES('history_schema_version', ?1)",
               {std::to_string(kHistorySchemaVersion)});
  });
  base::make_dirs(store_.root() + "/history");
  repair();
}

std::string History::build_dir(const std::string& build) const { return store_.root() + "/history/" + build; }

std::string History::log_path(const std::string& build, int number) const {
  return build_dir(build) + "/" + std::to_string(number) + ".log";
}

void History::repair() {
  // Directories first, rows second: a directory made after our listing has its row
  // committed before it (begin()), so every listed directory's row, if any, is seen.
  std::vector<std::string> dirs;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(store_.root() + "/history", ec))
    dirs.push_back(e.path().filename().string());
  std::set<std::string> known;
  for (const auto& r : db_.query("SELECT id FROM history_builds")) known.insert(r[0].value_or(""));
  for (const auto& d : dirs) {
    if (known.count(d)) continue;
    base::log_debug("history: repair removes `" + d + "`, a build directory with no record");
    try {
      base::remove_all(build_dir(d));
    } catch (const base::Error& e) {
      base::log_warn(std::string("history: cannot remove stale build directory: ") + e.what());
    }
  }
  for (const auto& r : db_.query("SELECT id, pid FROM history_builds WHERE status = 'running'")) {
    int pid = static_cast<int>(to_int(r[1]));
    if (process_alive(store_.root(), pid)) continue;
    db_.exec("UPDATE history_builds SET status = 'interrupted' WHERE id = ?1 AND status = 'running'",
             {r[0].value_or("")});
  }
}

BuildRecord History::begin(BuildRecord info) {
  info.pid = ::getpid();
  info.started_ns = now_ns();
  info.finished_ns = 0;
  info.status = BuildStatus::Running;
  base::Json tags = base::Json::array();
  for (const auto& t : info.tags) tags.push_back(t);
  for (int attempt = 0;; ++attempt) {
    info.id = base::random_hex(6);
    try {
      // The row is the commit point; the directory follows it (see repair()).
      db_.exec("INSERT INTO history_builds(" + std::string(kBuildColumns) +
                   ") VALUES(?1, ?2, ?3, NULL, 'running', ?4, ?5, ?6, ?7, NULL, NULL)",
               {info.id, static_cast<long long>(info.pid), static_cast<long long>(info.started_ns), info.context,
                info.dockerfile, info.target, tags.dump()});
      break;
    } catch (const base::Error&) {
      if (attempt >= 3) throw;  // not an id clash after all
    }
  }
  base::make_dirs(build_dir(info.id));
  retain();
  return info;
}

void History::retain() {
  // Rows go in one transaction, then the directories: a crash in between leaves
  // directories without rows, which repair() removes.
  auto count = db_.query("SELECT count(*) FROM history_builds");
  if (count.empty() || to_int(count[0][0]) <= keep_) return;  // the usual case: no write
  std::vector<std::string> drop;
  db_.transaction([&] {
    auto rows = db_.query("SELECT id, pid, status FROM history_builds ORDER BY started DESC, rowid DESC");
    for (size_t i = static_cast<size_t>(std::max(keep_, 0)); i < rows.size(); ++i) {
      std::string id = rows[i][0].value_or("");
      // A build still writing its logs stays until it ends; a later build drops it.
      if (rows[i][2].value_or("") == "running" && process_alive(store_.root(), static_cast<int>(to_int(rows[i][1]))))
        continue;
      db_.exec("DELETE FROM history_steps WHERE build = ?1", {id});
      db_.exec("DELETE FROM history_builds WHERE id = ?1", {id});
      drop.push_back(id);
    }
  });
  for (const auto& id : drop) {
    if (!valid_id(id)) continue;  // never a path outside history/
    try {
      base::remove_all(build_dir(id));
    } catch (const base::Error& e) {
      base::log_warn(std::string("history: cannot remove an old build's logs: ") + e.what());
    }
  }
}

void History::finish(const std::string& id, BuildStatus status, const std::string& image_id,
                     const std::string& error) {
  db_.exec("UPDATE history_builds SET status = ?1, finished = ?2, image_id = ?3, error = ?4 WHERE id = ?5",
           {status_name(status), static_cast<long long>(now_ns()), image_id.empty() ? Value(nullptr) : Value(image_id),
            error.empty() ? Value(nullptr) : Value(error), id});
}

void History::put_step(const std::string& build, const StepEntry& s) {
  db_.exec(
      "INSERT OR REPLACE INTO history_steps(build, number, vertex, name, state, miss_reason, started, duration_us, "
      "error, log_size) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
      {build, static_cast<long long>(s.number), static_cast<long long>(s.vertex), s.name, state_name(s.state),
       s.miss_reason.empty() ? Value(nullptr) : Value(s.miss_reason), static_cast<long long>(s.started_ns),
       static_cast<long long>(s.duration_us), s.error.empty() ? Value(nullptr) : Value(s.error),
       static_cast<long long>(s.log_size)});
}

void History::put_steps(const std::string& build, const std::vector<StepEntry>& steps) {
  if (steps.empty()) return;
  db_.transaction([&] {
    for (const auto& s : steps) put_step(build, s);
  });
}

LogWriter History::open_log(const std::string& build, int number) {
  std::string path = log_path(build, number);
  base::Fd log = base::open_fd(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
  base::Fd index = base::open_fd(build_dir(build) + "/" + std::to_string(number) + ".idx",
                                 O_WRONLY | O_CREAT | O_APPEND, 0644);
  struct stat st {};
  if (::fstat(log.get(), &st) < 0) throw base::SysError(errno, "fstat", path);
  return LogWriter(std::move(log), std::move(index), static_cast<uint64_t>(st.st_size));
}

BuildRecord History::resolve_status(BuildRecord r) {
  if (r.status == BuildStatus::Running && !process_alive(store_.root(), r.pid)) r.status = BuildStatus::Interrupted;
  return r;
}

std::vector<BuildRecord> History::builds() {
  std::vector<BuildRecord> out;
  for (const auto& r :
       db_.query("SELECT " + std::string(kBuildColumns) + " FROM history_builds ORDER BY started DESC, rowid DESC"))
    out.push_back(resolve_status(build_of(r)));
  return out;
}

BuildRecord History::find(const std::string& ref) {
  if (ref.empty()) throw base::Error("no build named: give a build id, a prefix of one, or ^N");
  if (ref[0] == '^') {
    std::string n = ref.substr(1);
    if (n.empty() || n.size() > 6 || n.find_first_not_of("0123456789") != std::string::npos || std::stoi(n) < 1)
      throw base::Error("invalid build reference `" + ref + "`: ^N counts from ^1, the newest build");
    auto all = builds();
    size_t i = static_cast<size_t>(std::stoi(n));
    if (i > all.size())
      throw base::Error("no build " + ref + " in the history: it holds " + std::to_string(all.size()) + " build" +
                        (all.size() == 1 ? "" : "s"));
    return all[i - 1];
  }
  std::string lower = ref;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (!valid_id(lower)) throw base::Error("no build `" + ref + "` in the history");
  auto rows = db_.query("SELECT " + std::string(kBuildColumns) +
                            " FROM history_builds WHERE substr(id, 1, ?1) = ?2 ORDER BY started DESC LIMIT 10",
                        {static_cast<long long>(lower.size()), lower});
  if (rows.empty()) throw base::Error("no build `" + ref + "` in the history");
  if (rows.size() > 1) {
    std::vector<std::string> ids;
    for (const auto& r : rows) ids.push_back(r[0].value_or(""));
    std::string list;
    for (const auto& id : ids) list += (list.empty() ? "" : ", ") + id;
    throw base::Error("build id prefix `" + ref + "` is ambiguous: it matches " + list);
  }
  return resolve_status(build_of(rows[0]));
}

std::vector<StepEntry> History::steps(const std::string& build) {
  std::vector<StepEntry> out;
  for (const auto& r : db_.query("SELECT number, vertex, name, state, miss_reason, started, duration_us, error, "
                                 "log_size FROM history_steps WHERE build = ?1 ORDER BY number",
                                 {build})) {
    StepEntry s;
    s.number = static_cast<int>(to_int(r[0]));
    s.vertex = static_cast<int>(to_int(r[1]));
    s.name = r[2].value_or("");
    s.state = parse_state(r[3].value_or(""));
    s.miss_reason = r[4].value_or("");
    s.started_ns = to_int(r[5]);
    s.duration_us = to_int(r[6]);
    s.error = r[7].value_or("");
    s.log_size = to_int(r[8]);
    // The file is the truth: a step that never finished has output its row does not count.
    struct stat st {};
    if (::stat(log_path(build, s.number).c_str(), &st) == 0) s.log_size = st.st_size;
    out.push_back(std::move(s));
  }
  return out;
}

std::string History::read_log(const std::string& build, int number) const {
  std::string path = log_path(build, number);
  if (!base::path_exists(path)) return {};
  return base::read_file(path);
}

std::vector<LogChunk> History::log_chunks(const std::string& build, int number) const {
  std::string path = build_dir(build) + "/" + std::to_string(number) + ".idx";
  std::vector<LogChunk> out;
  if (!base::path_exists(path)) return out;
  std::string text = base::read_file(path);
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) break;  // a torn last line
    std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    auto sp = line.find(' ');
    if (sp == std::string::npos) continue;
    LogChunk c;
    c.offset = std::strtoull(line.c_str(), nullptr, 10);
    c.micros = std::strtoll(line.c_str() + sp + 1, nullptr, 10);
    out.push_back(c);
  }
  return out;
}

}  // namespace builder::cache
