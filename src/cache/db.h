// cache/db.h — the SQLite (WAL) metadata database of a root: one connection per
// process, serialised by a mutex. Owns the schema (below) and its version; other
// modules (image/) add their own tables through exec()/query helpers.
//
// Schema v1:
//   meta(key TEXT PRIMARY KEY, value TEXT)                 -- schema_version
//   snapshots(id TEXT PRIMARY KEY, parent TEXT, created INTEGER, size INTEGER,
//             diff_id TEXT, blob_digest TEXT, blob_size INTEGER, media_type TEXT)
//   cache_index(key TEXT PRIMARY KEY, value TEXT NOT NULL, created INTEGER,
//               last_used INTEGER)
//   images(name TEXT PRIMARY KEY, digest TEXT NOT NULL, created INTEGER)
#pragma once

#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

struct sqlite3;

namespace builder::cache {

inline constexpr int kSchemaVersion = 1;

/// A bound value for a statement parameter (?1, ?2 ...).
using Value = std::variant<std::nullptr_t, long long, std::string>;
/// One result row: each column as text (NULL -> nullopt).
using Row = std::vector<std::optional<std::string>>;

/// Thread-safe; every call takes the connection mutex. busy_timeout handles other
/// processes on the same root. Throws base::Error on SQL errors.
class Db {
 public:
  /// Opens (creating if needed) `path`, sets WAL + synchronous=FULL, creates the schema.
  explicit Db(const std::string& path);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  /// Runs a statement with parameters; returns the rows it produced.
  std::vector<Row> query(const std::string& sql, const std::vector<Value>& params = {});
  /// Runs a statement; returns sqlite3_changes().
  int exec(const std::string& sql, const std::vector<Value>& params = {});
  /// Runs `fn` inside BEGIN IMMEDIATE ... COMMIT (ROLLBACK on exception). `fn` may call
  /// query/exec (the mutex is recursive).
  void transaction(const std::function<void()>& fn);

 private:
  sqlite3* db_ = nullptr;
  std::recursive_mutex mu_;
};

}  // namespace builder::cache
