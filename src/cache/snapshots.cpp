#include "cache/snapshots.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <set>
#include <utility>

#include "base/error.h"
#include "base/fd.h"
#include "base/fs.h"
#include "base/log.h"
#include "cache/store.h"

namespace builder::cache {
namespace {

constexpr size_t kIdChars = 12;

bool is_id(std::string_view s) {
  if (s.size() != kIdChars) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool is_hex64(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

const std::string& checked_id(const std::string& id) {
  if (!is_id(id)) throw base::Error("invalid snapshot id `" + id + "`");
  return id;
}

// Parses the pid of "<prefix><pid>-<rand>"; 0 if the name does not have that shape.
int owner_pid(std::string_view name, std::string_view prefix) {
  if (name.substr(0, prefix.size()) != prefix) return 0;
  std::string rest(name.substr(prefix.size()));
  char* end = nullptr;
  long pid = std::strtol(rest.c_str(), &end, 10);
  if (end == rest.c_str() || *end != '-' || pid <= 0) return 0;
  return static_cast<int>(pid);
}

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (!d) throw base::SysError(errno, "opendir", dir);
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  ::closedir(d);
  return names;
}


std::string opt(const std::optional<std::string>& v) { return v.value_or(""); }
int64_t opt_int(const std::optional<std::string>& v) { return v ? std::atoll(v->c_str()) : 0; }

SnapshotInfo to_info(const Row& r) {
  SnapshotInfo s;
  s.id = opt(r[0]);
  s.parent = opt(r[1]);
  s.created = opt_int(r[2]);
  s.size = opt_int(r[3]);
  s.diff_id = opt(r[4]);
  s.blob_digest = opt(r[5]);
  s.blob_size = opt_int(r[6]);
  s.media_type = opt(r[7]);
  return s;
}

constexpr const char* kColumns =
    "SELECT id, parent, created, size, diff_id, blob_digest, blob_size, media_type FROM snapshots";

// Directories are moved to a "trash-<pid>-<rand>" name inside a transaction (a fast,
// atomic rename that cannot race a commit) and deleted after it, outside the db lock.
std::string trash_name(const std::string& base) {
  return base + "/trash-" + std::to_string(::getpid()) + "-" + base::random_hex(6);
}

// Renames `from` into the trash; returns the trash path, or empty if `from` vanished.
std::string move_to_trash(const std::string& base, const std::string& from) {
  std::string to = trash_name(base);
  if (::rename(from.c_str(), to.c_str()) < 0) {
    if (errno == ENOENT) return {};
    throw base::SysError(errno, "rename", from);
  }
  return to;
}

void empty_trash(const std::vector<std::string>& trash) {
  for (const auto& t : trash) {
    try {
      base::remove_all(t);
    } catch (const std::exception& e) {
      base::log_warn(std::string("snapshots: cannot remove `") + t + "`: " + e.what());
    }
  }
}

}  // namespace

Snapshots::Snapshots(std::string root, Db& db) : root_(std::move(root)), db_(db) {}

Snapshots::Pending::Pending(Snapshots* owner, std::string dir)
    : owner_(owner), dir_(std::move(dir)), fs_(dir_ + "/fs"), work_(dir_ + "/work") {}

Snapshots::Pending::Pending(Pending&& o) noexcept
    : owner_(o.owner_),
      dir_(std::move(o.dir_)),
      fs_(std::move(o.fs_)),
      work_(std::move(o.work_)),
      done_(o.done_) {
  o.done_ = true;
}

Snapshots::Pending::~Pending() {
  if (done_) return;
  try {
    base::remove_all(dir_);
  } catch (const std::exception& e) {
    base::log_warn(std::string("snapshots: cannot remove pending snapshot: ") + e.what());
  }
}

std::string Snapshots::Pending::commit(const std::string& parent) {
  if (done_) throw base::Error("snapshots: commit of a finished pending snapshot");
  try {
    base::remove_all(work_);
    int64_t size = base::tree_size(fs_);
    // The row must never point at content that a power loss could still lose.
    {
      base::Fd fd = base::open_fd(dir_, O_RDONLY | O_DIRECTORY);
      base::check_sys(::syncfs(fd.get()), "syncfs", dir_);
    }
    std::string base = owner_->base_dir();
    std::string id;
    // The rename happens inside the transaction: a concurrent repair (which also runs
    // in one) never sees the directory without its row.
    owner_->db_.transaction([&] {
      if (!parent.empty() &&
          owner_->db_.query("SELECT 1 FROM snapshots WHERE id=?1", {checked_id(parent)}).empty()) {
        throw base::Error("parent snapshot `" + parent + "` not found");
      }
      for (;;) {
        id = base::random_hex(kIdChars / 2);
        if (!base::path_exists(base + "/" + id) &&
            owner_->db_.query("SELECT 1 FROM snapshots WHERE id=?1", {id}).empty()) {
          break;
        }
      }
      owner_->db_.exec("INSERT INTO snapshots(id, parent, created, size) VALUES(?1, ?2, ?3, ?4)",
                       {id, parent.empty() ? Value(nullptr) : Value(parent),
                        static_cast<long long>(std::time(nullptr)), static_cast<long long>(size)});
      std::string dest = base + "/" + id;
      base::check_sys(::rename(dir_.c_str(), dest.c_str()), "rename", dest);
      base::fsync_dir(base);
    });
    done_ = true;
    return id;
  } catch (base::Error& e) {
    throw e.add_context("while committing snapshot `" + dir_ + "`");
  }
}

Snapshots::Pending Snapshots::create() {
  std::string dir =
      base_dir() + "/pending-" + std::to_string(::getpid()) + "-" + base::random_hex(6);
  base::check_sys(::mkdir(dir.c_str(), 0700), "mkdir", dir);
  Pending p(this, dir);  // owns the directory from here on
  base::check_sys(::mkdir(p.fs_.c_str(), 0755), "mkdir", p.fs_);
  base::check_sys(::mkdir(p.work_.c_str(), 0700), "mkdir", p.work_);
  return p;
}

std::string Snapshots::fs_path(const std::string& id) const {
  return base_dir() + "/" + relative_fs(id);
}

std::string Snapshots::base_dir() const { return root_ + "/snapshots"; }

std::string Snapshots::relative_fs(const std::string& id) { return checked_id(id) + "/fs"; }

std::optional<SnapshotInfo> Snapshots::get(const std::string& id) {
  auto rows = db_.query(std::string(kColumns) + " WHERE id=?1", {id});
  if (rows.empty()) return std::nullopt;
  return to_info(rows[0]);
}

std::vector<SnapshotInfo> Snapshots::list() {
  std::vector<SnapshotInfo> out;
  for (const auto& r : db_.query(std::string(kColumns) + " ORDER BY created, id"))
    out.push_back(to_info(r));
  return out;
}

void Snapshots::set_blob(const std::string& id, const std::string& diff_id,
                         const std::string& blob_digest, int64_t blob_size,
                         const std::string& media_type) {
  int n = db_.exec(
      "UPDATE snapshots SET diff_id=?1, blob_digest=?2, blob_size=?3, media_type=?4 WHERE id=?5",
      {diff_id, blob_digest, static_cast<long long>(blob_size), media_type, id});
  if (n == 0) throw base::Error("snapshot `" + id + "` not found");
}

void Snapshots::set_created(const std::string& id, int64_t created) {
  int n = db_.exec("UPDATE snapshots SET created=?1 WHERE id=?2", {static_cast<long long>(created), id});
  if (n == 0) throw base::Error("snapshot `" + id + "` not found");
}

void Snapshots::remove(const std::string& id) {
  checked_id(id);
  std::string trash;
  db_.transaction([&] {
    db_.exec("DELETE FROM snapshots WHERE id=?1", {id});
    trash = move_to_trash(base_dir(), base_dir() + "/" + id);
  });
  if (!trash.empty()) empty_trash({trash});
}

void Snapshots::repair() {
  std::string base = base_dir();
  std::vector<std::string> trash;
  db_.transaction([&] {
    std::set<std::string> rows;
    for (const auto& r : db_.query("SELECT id FROM snapshots")) rows.insert(opt(r[0]));
    std::set<std::string> dirs;
    for (const auto& name : list_dir(base)) {
      bool garbage = false;
      if (is_id(name)) {
        dirs.insert(name);
        garbage = !rows.count(name);  // renamed into place, crashed before the row
      } else if (int pid = owner_pid(name, "pending-")) {
        garbage = !process_alive(root_, pid);
      } else if (int pid = owner_pid(name, "trash-")) {
        garbage = !process_alive(root_, pid);  // a remove() interrupted by a crash
      } else {
        base::log_warn("snapshots: leaving unknown entry `" + base + "/" + name + "`");
      }
      if (!garbage) continue;
      base::log_debug("snapshots: repair removes `" + base + "/" + name + "`");
      std::string t = move_to_trash(base, base + "/" + name);
      if (!t.empty()) trash.push_back(std::move(t));
    }
    std::set<std::string> gone;
    for (const auto& id : rows) {
      if (dirs.count(id)) continue;
      base::log_debug("snapshots: repair drops row of missing snapshot `" + id + "`");
      db_.exec("DELETE FROM snapshots WHERE id=?1", {id});
      gone.insert(id);
    }
    // A layer is only meaningful on top of its parent: a snapshot whose parent is gone
    // goes too, down the chain. (Commits check the parent in the same transaction, and
    // GC removes children first, so only a damaged root gets here.)
    for (bool more = !gone.empty(); more;) {
      more = false;
      for (const auto& r : db_.query("SELECT id, parent FROM snapshots WHERE parent IS NOT NULL AND parent != ''")) {
        std::string id = opt(r[0]), parent = opt(r[1]);
        if (!gone.count(parent) && rows.count(parent)) continue;
        base::log_debug("snapshots: repair drops snapshot `" + id + "`, whose parent `" + parent + "` is gone");
        db_.exec("DELETE FROM snapshots WHERE id=?1", {id});
        std::string t = move_to_trash(base, base + "/" + id);
        if (!t.empty()) trash.push_back(std::move(t));
        gone.insert(id);
        more = true;
      }
    }
    // The recorded layer blob is only a memo (exporters write it again when it is
    // missing), but a row must not name a blob that is not there.
    for (const auto& r :
         db_.query("SELECT id, blob_digest FROM snapshots WHERE blob_digest IS NOT NULL AND blob_digest != ''")) {
      std::string digest = opt(r[1]);
      auto colon = digest.find(':');
      std::string hex = colon == std::string::npos ? std::string() : digest.substr(colon + 1);
      struct stat st;
      bool ok = digest.rfind("sha256:", 0) == 0 && is_hex64(hex) &&
                ::stat((root_ + "/content/blobs/sha256/" + hex).c_str(), &st) == 0 && S_ISREG(st.st_mode);
      if (ok) continue;
      base::log_debug("snapshots: repair forgets missing layer blob " + digest + " of `" + opt(r[0]) + "`");
      db_.exec("UPDATE snapshots SET diff_id=NULL, blob_digest=NULL, blob_size=NULL, media_type=NULL WHERE id=?1",
               {opt(r[0])});
    }
  });
  empty_trash(trash);
}

}  // namespace builder::cache
