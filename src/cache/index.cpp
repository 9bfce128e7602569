#include "cache/index.h"

#include <ctime>

namespace builder::cache {

Index::Index(Db& db) : db_(db) {}

std::optional<std::string> Index::get(const std::string& key) {
  auto rows = db_.query("SELECT value FROM cache_index WHERE key=?1", {key});
  if (rows.empty() || !rows[0][0]) return std::nullopt;
  // last_used feeds GC's LRU order; a lost update only makes GC slightly less precise.
  db_.exec("UPDATE cache_index SET last_used=?1 WHERE key=?2",
           {static_cast<long long>(std::time(nullptr)), key});
  return rows[0][0];
}

void Index::put(const std::string& key, const std::string& value) {
  long long now = static_cast<long long>(std::time(nullptr));
  db_.exec(
      "INSERT INTO cache_index(key, value, created, last_used) VALUES(?1, ?2, ?3, ?3) "
      "ON CONFLICT(key) DO UPDATE SET value=excluded.value, last_used=excluded.last_used",
      {key, value, now});
}

void Index::remove(const std::string& key) {
  db_.exec("DELETE FROM cache_index WHERE key=?1", {key});
}

std::vector<std::pair<std::string, std::string>> Index::all() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& r : db_.query("SELECT key, value FROM cache_index ORDER BY key")) {
    out.emplace_back(r[0].value_or(""), r[1].value_or(""));
  }
  return out;
}

}  // namespace builder::cache
