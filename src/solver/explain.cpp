#include "solver/explain.h"

#include <sys/time.h>

#include <algorithm>
#include <ctime>

#include "base/digest.h"
#include "base/error.h"
#include "base/strings.h"
#include "solver/graph/encode.h"

namespace builder::solver {

using base::Json;

namespace {

/// Dumps without failing on bytes that are not UTF-8 (they are replaced; the record is
/// only ever compared with another record made the same way).
std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

std::string short_hash(const std::string& s) { return base::sha256_hex(s).substr(0, 32); }

const char* network_name(graph::NetworkMode m) {
  switch (m) {
    case graph::NetworkMode::Sandbox: return "default";
    case graph::NetworkMode::Host: return "host";
    case graph::NetworkMode::None: return "none";
  }
  return "?";
}

int64_t now_micros() {
  struct timeval tv;
  ::gettimeofday(&tv, nullptr);
  return static_cast<int64_t>(tv.tv_sec) * 1000000 + tv.tv_usec;
}

std::string quote(const std::string& s) { return "\"" + s + "\""; }

/// "a", "a and b", "a, b and 3 more".
std::string list_names(const std::vector<std::string>& names, size_t shown = 3) {
  std::string out;
  size_t n = std::min(shown, names.size());
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) out += (i + 1 == n && names.size() == n) ? " and " : ", ";
    out += names[i];
  }
  if (names.size() > n) out += " and " + std::to_string(names.size() - n) + " more";
  return out;
}

std::string env_reason(const Json& before, const Json& now, const std::set<std::string>& build_args) {
  std::vector<std::string> args, envs;
  auto note = [&](const std::string& name, const char* what) {
    (build_args.count(name) ? args : envs).push_back(name + what);
  };
  for (const auto& [name, value] : now.items()) {
    if (!before.contains(name)) note(name, " set");
    else if (before[name] != value) note(name, " changed");
  }
  for (const auto& [name, value] : before.items())
    if (!now.contains(name)) note(name, " unset");
  std::vector<std::string> parts;
  if (!args.empty()) parts.push_back((args.size() == 1 ? "build arg " : "build args ") + list_names(args));
  if (!envs.empty()) parts.push_back(std::string(envs.size() == 1 ? "ENV " : "ENV variables ") + list_names(envs));
  return base::join(parts, "; ");
}

std::string fields_reason(const Json& before, const Json& now, const std::set<std::string>& build_args) {
  std::string kind = now.value("kind", "");
  if (before.value("kind", "") != kind) return "the instruction changed";
  if (kind == "image") {
    std::string ref = now.value("ref", "");
    return "base image " + ref + " moved to " + now.value("digest", "") + " (was " + before.value("digest", "") + ")";
  }
  if (kind == "local") return "the paths it selects from the build context (or .dockerignore) changed";
  if (kind == "file") return "the instruction's sources, destination or options changed";
  if (kind != "exec") return "the instruction changed";
  std::vector<std::string> reasons;
  if (before.value("env", Json::object()) != now.value("env", Json::object())) {
    std::string r = env_reason(before.value("env", Json::object()), now.value("env", Json::object()), build_args);
    if (!r.empty()) reasons.push_back(r);
  }
  if (before["args"] != now["args"]) reasons.push_back("the command changed");
  if (before["cwd"] != now["cwd"])
    reasons.push_back("WORKDIR changed to " + now.value("cwd", "") + " (was " + before.value("cwd", "") + ")");
  if (before["user"] != now["user"]) reasons.push_back("USER changed");
  if (before["network"] != now["network"]) reasons.push_back("--network changed");
  if (before["insecure"] != now["insecure"]) reasons.push_back("--security changed");
  if (before["mounts"] != now["mounts"]) reasons.push_back("its --mount options changed");
  if (reasons.empty()) return "the instruction changed";
  return base::join(reasons, "; ");
}

std::string files_reason(const std::vector<cache::FileSum>& before, const std::vector<cache::FileSum>& now) {
  std::map<std::string, const std::string*> old;
  for (const auto& f : before) old.emplace(f.path, &f.sum);
  std::vector<std::string> changed, added, removed;
  std::set<std::string> seen;
  for (const auto& f : now) {
    seen.insert(f.path);
    auto it = old.find(f.path);
    if (it == old.end()) added.push_back(quote(f.path));
    else if (*it->second != f.sum) changed.push_back(quote(f.path));
  }
  for (const auto& f : before)
    if (!seen.count(f.path)) removed.push_back(quote(f.path));
  std::vector<std::string> parts;
  auto add = [&](const std::vector<std::string>& names, const char* what) {
    if (names.empty()) return;
    parts.push_back(std::string(names.size() == 1 ? "file " : "files ") + list_names(names) + " " + what);
  };
  add(changed, "changed");
  add(added, "added");
  add(removed, "removed");
  if (parts.empty()) return "the files it reads from the build context changed";
  return base::join(parts, "; ");
}

Json encode_record(const StepRecord& r) {
  Json files = Json::array();
  for (const auto& f : r.files) files.push_back(Json::array({f.path, f.sum}));
  return Json{{"fields", r.fields}, {"inputs", r.inputs}, {"files", std::move(files)}};
}

std::optional<StepRecord> decode_record(const std::string& step_id, const std::string& key, const std::string& text) {
  try {
    Json j = Json::parse(text);
    StepRecord r;
    r.step_id = step_id;
    r.key = key;
    r.fields = j.at("fields");
    r.inputs = j.at("inputs").get<std::vector<std::string>>();
    for (const auto& f : j.at("files")) r.files.push_back({f.at(0).get<std::string>(), f.at(1).get<std::string>()});
    return r;
  } catch (const std::exception&) {
    return std::nullopt;  // a damaged record explains nothing
  }
}

}  // namespace

Json fields_of(const graph::Op& op) {
  if (const auto* s = std::get_if<graph::SourceOp>(&op)) {
    switch (s->kind) {
      case graph::SourceOp::Kind::Scratch: return Json{{"kind", "scratch"}};
      case graph::SourceOp::Kind::Image: return Json{{"kind", "image"}, {"ref", s->ref}, {"digest", s->digest}};
      case graph::SourceOp::Kind::Local:
        return Json{{"kind", "local"}, {"include", s->include_patterns}, {"exclude", s->exclude_patterns}};
      case graph::SourceOp::Kind::Http:
        return Json{{"kind", "http"}, {"url", s->url}, {"checksum", s->checksum}, {"filename", s->filename}};
      case graph::SourceOp::Kind::Git:
        return Json{{"kind", "git"},         {"url", s->url},       {"ref", s->git_ref},
                    {"commit", s->checksum}, {"subdir", s->subdir}, {"keep_git_dir", s->keep_git_dir}};
    }
  }
  if (const auto* e = std::get_if<graph::ExecOp>(&op)) {
    Json env = Json::object();
    for (const auto& kv : e->env) {
      auto eq = kv.find('=');
      env[kv.substr(0, eq)] = short_hash(eq == std::string::npos ? std::string() : kv.substr(eq + 1));
    }
    // The whole encoding covers the mounts; compare them as one digest.
    Json mounts = Json::array();
    for (const auto& m : e->mounts)
      mounts.push_back(Json{{"target", m.target}, {"kind", static_cast<int>(m.kind)}, {"id", m.cache_id},
                            {"source", m.source}, {"readonly", m.readonly}, {"input", m.input},
                            {"sharing", static_cast<int>(m.sharing)}, {"mode", m.mode ? Json(*m.mode) : Json()},
                            {"uid", m.uid ? Json(*m.uid) : Json()}, {"gid", m.gid ? Json(*m.gid) : Json()},
                            {"size", m.size}});
    return Json{{"kind", "exec"},          {"args", e->args},
                {"env", std::move(env)},   {"cwd", e->cwd},
                {"user", e->user},         {"network", network_name(e->network)},
                {"insecure", e->insecure}, {"mounts", short_hash(dump(mounts))}};
  }
  if (std::holds_alternative<graph::MergeOp>(op)) return Json{{"kind", "merge"}};
  std::string enc;
  try {
    enc = graph::encode_op(op);
  } catch (const std::exception&) {
    enc = graph::describe(op);
  }
  return Json{{"kind", "file"}, {"actions", short_hash(enc)}};
}

DbStepRecords::DbStepRecords(cache::Db& db) : db_(db) {
  db_.exec(
      "CREATE TABLE IF NOT EXISTS step_records(step_id TEXT NOT NULL, key TEXT NOT NULL, record TEXT NOT NULL, "
      "updated INTEGER NOT NULL, PRIMARY KEY(step_id, key))");
  db_.exec("CREATE INDEX IF NOT EXISTS step_records_by_use ON step_records(step_id, updated)");
}

std::optional<StepRecord> DbStepRecords::latest(const std::string& step_id) {
  auto rows = db_.query("SELECT key, record FROM step_records WHERE step_id = ?1 ORDER BY updated DESC LIMIT 1",
                        {step_id});
  if (rows.empty() || !rows[0][0] || !rows[0][1]) return std::nullopt;
  return decode_record(step_id, *rows[0][0], *rows[0][1]);
}

std::optional<StepRecord> DbStepRecords::find(const std::string& step_id, const std::string& key) {
  auto rows = db_.query("SELECT record FROM step_records WHERE step_id = ?1 AND key = ?2", {step_id, key});
  if (rows.empty() || !rows[0][0]) return std::nullopt;
  return decode_record(step_id, key, *rows[0][0]);
}

void DbStepRecords::save(const std::vector<StepRecord>& records) {
  if (records.empty()) return;
  const long long now = now_micros();
  db_.transaction([&] {
    for (const auto& r : records) {
      if (r.step_id.empty()) continue;
      if (db_.exec("UPDATE step_records SET updated = ?1 WHERE step_id = ?2 AND key = ?3", {now, r.step_id, r.key}) ==
          0)
        db_.exec("INSERT INTO step_records(step_id, key, record, updated) VALUES(?1, ?2, ?3, ?4)",
                 {r.step_id, r.key, dump(encode_record(r)), now});
      db_.exec(
          "DELETE FROM step_records WHERE step_id = ?1 AND key NOT IN "
          "(SELECT key FROM step_records WHERE step_id = ?1 ORDER BY updated DESC LIMIT ?2)",
          {r.step_id, static_cast<long long>(kKeep)});
    }
    db_.exec("DELETE FROM step_records WHERE updated < ?1", {now - 30LL * 24 * 3600 * 1000000});
  });
}

std::string explain_miss(const ExplainInput& in, StepRecords& records) {
  const StepRecord& now = *in.now;
  if (now.step_id.empty()) return "not in the cache";
  auto prev = records.latest(now.step_id);
  if (!prev) return "no earlier result for this step";
  if (prev->key == now.key) return "its earlier result is no longer in the cache (pruned)";
  if (prev->fields != now.fields) return fields_reason(prev->fields, now.fields, in.build_args);
  if (prev->inputs.size() != now.inputs.size()) return "its inputs changed";
  for (size_t j = 0; j < now.inputs.size(); ++j) {
    if (prev->inputs[j] == now.inputs[j]) continue;
    const StepRecord* cur = j < in.inputs.size() ? in.inputs[j] : nullptr;
    std::string name = j < in.input_names.size() ? in.input_names[j] : std::string();
    if (cur) {
      std::string kind = cur->fields.value("kind", "");
      auto old = (kind == "local" || kind == "image") ? records.find(cur->step_id, prev->inputs[j]) : std::nullopt;
      if (kind == "local") {
        if (old && old->fields != cur->fields) return fields_reason(old->fields, cur->fields, in.build_args);
        return old ? files_reason(old->files, cur->files) : "the files it reads from the build context changed";
      }
      if (kind == "image") {
        if (old) return fields_reason(old->fields, cur->fields, in.build_args);
        return "base image " + cur->fields.value("ref", "") + " changed";
      }
    }
    return name.empty() ? "an input step re-ran" : "input step re-ran: " + name;
  }
  return "its cache key changed (a new version of builder's file operations)";
}

}  // namespace builder::solver
