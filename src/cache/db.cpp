#include "cache/db.h"

#include <sqlite3.h>

#include <cstring>

#include "base/error.h"

namespace builder::cache {
namespace {

constexpr int kBusyTimeoutMs = 30000;

const char* const kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS snapshots(id TEXT PRIMARY KEY, parent TEXT, created INTEGER,
  size INTEGER, diff_id TEXT, blob_digest TEXT, blob_size INTEGER, media_type TEXT);
CREATE TABLE IF NOT EXISTS cache_index(key TEXT PRIMARY KEY, value TEXT NOT NULL,
  created INTEGER, last_used INTEGER);
CREATE TABLE IF NOT EXISTS images(name TEXT PRIMARY KEY, digest TEXT NOT NULL,
  created INTEGER);
)sql";

base::Error sql_error(sqlite3* db, const std::string& sql) {
  base::Error e(std::string("metadata db: ") + (db ? sqlite3_errmsg(db) : "out of memory"));
  if (!sql.empty()) e.add_context("while running `" + sql + "`");
  return e;
}

// Owns one prepared statement.
struct Stmt {
  sqlite3_stmt* s = nullptr;
  ~Stmt() { sqlite3_finalize(s); }
};

void bind_all(sqlite3* db, sqlite3_stmt* s, const std::vector<Value>& params,
              const std::string& sql) {
  int n = sqlite3_bind_parameter_count(s);
  if (static_cast<size_t>(n) != params.size()) {
    throw base::Error("metadata db: statement expects " + std::to_string(n) + " parameters, got " +
                      std::to_string(params.size()))
        .add_context("while running `" + sql + "`");
  }
  for (int i = 0; i < n; ++i) {
    const Value& v = params[static_cast<size_t>(i)];
    int rc;
    if (std::holds_alternative<std::nullptr_t>(v)) {
      rc = sqlite3_bind_null(s, i + 1);
    } else if (auto* ll = std::get_if<long long>(&v)) {
      rc = sqlite3_bind_int64(s, i + 1, *ll);
    } else {
      const auto& str = std::get<std::string>(v);
      rc = sqlite3_bind_text64(s, i + 1, str.data(), str.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
    }
    if (rc != SQLITE_OK) throw sql_error(db, sql);
  }
}

// Runs every statement in `sql`, binding `params` to those that take parameters.
// Returns the rows of all statements and the changes() of the last one.
std::vector<Row> run(sqlite3* db, const std::string& sql, const std::vector<Value>& params,
                     int* changes) {
  std::vector<Row> rows;
  const char* tail = sql.c_str();
  const char* end = sql.c_str() + sql.size();
  while (tail < end) {
    Stmt st;
    const char* next = nullptr;
    if (sqlite3_prepare_v2(db, tail, static_cast<int>(end - tail), &st.s, &next) != SQLITE_OK) {
      throw sql_error(db, sql);
    }
    tail = next;
    if (!st.s) continue;  // whitespace or a comment
    if (sqlite3_bind_parameter_count(st.s) > 0 || !params.empty()) bind_all(db, st.s, params, sql);
    for (;;) {
      int rc = sqlite3_step(st.s);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) throw sql_error(db, sql);
      int ncol = sqlite3_column_count(st.s);
      Row row;
      row.reserve(static_cast<size_t>(ncol));
      for (int c = 0; c < ncol; ++c) {
        if (sqlite3_column_type(st.s, c) == SQLITE_NULL) {
          row.emplace_back(std::nullopt);
        } else {
          auto* txt = reinterpret_cast<const char*>(sqlite3_column_text(st.s, c));
          row.emplace_back(std::string(txt, static_cast<size_t>(sqlite3_column_bytes(st.s, c))));
        }
      }
      rows.push_back(std::move(row));
    }
    if (changes) *changes = sqlite3_changes(db);
  }
  return rows;
}

}  // namespace

Db::Db(const std::string& path) {
  int rc =
      sqlite3_open_v2(path.c_str(), &db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    base::Error e = sql_error(db_, "");
    sqlite3_close(db_);
    db_ = nullptr;
    throw e.add_context("while opening `" + path + "`");
  }
  try {
    sqlite3_busy_timeout(db_, kBusyTimeoutMs);
    sqlite3_extended_result_codes(db_, 1);
    run(db_, "PRAGMA journal_mode=WAL", {}, nullptr);
    run(db_, "PRAGMA synchronous=FULL", {}, nullptr);
    transaction([&] {
      run(db_, kSchema, {}, nullptr);
      auto rows = run(db_, "SELECT value FROM meta WHERE key='schema_version'", {}, nullptr);
      if (rows.empty() || !rows[0][0]) {
        run(db_, "INSERT OR REPLACE INTO meta(key, value) VALUES('schema_version', ?1)",
            {std::to_string(kSchemaVersion)}, nullptr);
        return;
      }
      int have = std::atoi(rows[0][0]->c_str());
      if (have > kSchemaVersion) {
        throw base::Error("metadata db has schema version " + std::to_string(have) +
                          ", newer than this builder supports (" + std::to_string(kSchemaVersion) +
                          ")");
      }
      // TODO(cache): migrations once kSchemaVersion > 1.
    });
  } catch (base::Error& e) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw e.add_context("while opening `" + path + "`");
  }
}

Db::~Db() {
  if (db_) sqlite3_close(db_);  // statements are always finalized, so this succeeds
}

std::vector<Row> Db::query(const std::string& sql, const std::vector<Value>& params) {
  std::lock_guard lk(mu_);
  return run(db_, sql, params, nullptr);
}

int Db::exec(const std::string& sql, const std::vector<Value>& params) {
  std::lock_guard lk(mu_);
  int changes = 0;
  run(db_, sql, params, &changes);
  return changes;
}

void Db::transaction(const std::function<void()>& fn) {
  std::lock_guard lk(mu_);
  // The recursive mutex lets `fn` nest transactions; inner ones become savepoints so
  // an inner failure that the caller catches undoes only the inner work.
  if (!sqlite3_get_autocommit(db_)) {
    run(db_, "SAVEPOINT nested", {}, nullptr);
    try {
      fn();
    } catch (...) {
      sqlite3_exec(db_, "ROLLBACK TO nested; RELEASE nested", nullptr, nullptr, nullptr);
      throw;
    }
    run(db_, "RELEASE nested", {}, nullptr);
    return;
  }
  run(db_, "BEGIN IMMEDIATE", {}, nullptr);
  try {
    fn();
    run(db_, "COMMIT", {}, nullptr);
  } catch (...) {
    // After some errors SQLite has already rolled back; then ROLLBACK fails harmlessly.
    if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

}  // namespace builder::cache
