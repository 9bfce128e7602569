#include "cache/store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>

#include "base/error.h"
#include "base/fs.h"
#include "base/json.h"
#include "base/log.h"
#include "base/time.h"
#include "cache/key_lock.h"

namespace builder::cache {
namespace {

// A pid written in decimal (as in scratch names and lock files); 0 if `s` is not one.
int digits_pid(const std::string& s) {
  if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos) return 0;
  return std::stoi(s);
}

std::string lock_path(const std::string& root, int pid) {
  return root + "/run/" + std::to_string(pid) + ".lock";
}

bool same_file(int fd, const std::string& path) {
  struct stat a, b;
  return ::fstat(fd, &a) == 0 && ::stat(path.c_str(), &b) == 0 && a.st_dev == b.st_dev &&
         a.st_ino == b.st_ino;
}

// flock(2) locks belong to an open file description, so a second Store of the same root
// in this process cannot take the liveness lock again: the process holds one lock per
// root, shared by refcount, and every Store keeps a dup of it.
struct LiveLock {
  base::Fd fd;
  std::string path;
  int refs = 0;
};
std::mutex g_live_mu;
std::map<std::string, LiveLock>& live_locks() {
  static std::map<std::string, LiveLock> m;
  return m;
}

base::Fd acquire_live(const std::string& key, const std::string& root) {
  std::lock_guard lk(g_live_mu);
  auto& locks = live_locks();
  auto it = locks.find(key);
  if (it == locks.end()) {
    std::string path = lock_path(root, ::getpid());
    base::Fd fd;
    for (;;) {
      fd = base::open_fd(path, O_RDWR | O_CREAT, 0644);
      if (::flock(fd.get(), LOCK_EX | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK) {
          throw base::Error("liveness lock `" + path +
                            "` is held by another process with this pid (another pid namespace "
                            "sharing the root?)");
        }
        throw base::SysError(errno, "flock", path);
      }
      // Another process's process_alive() may have found the file unlocked between our
      // open and flock and unlinked it; then we hold a lock on a dead inode: retry.
      if (same_file(fd.get(), path)) break;
    }
    it = locks.emplace(key, LiveLock{std::move(fd), path, 0}).first;
  }
  // Close-on-exec from the start: another thread may be starting a process right now.
  int d = ::fcntl(it->second.fd.get(), F_DUPFD_CLOEXEC, 0);
  if (d < 0) throw base::SysError(errno, "dup", it->second.path);
  ++it->second.refs;
  return base::Fd(d);
}

void release_live(const std::string& key) {
  std::lock_guard lk(g_live_mu);
  auto& locks = live_locks();
  auto it = locks.find(key);
  if (it == locks.end() || --it->second.refs > 0) return;
  // Unlink while still holding the lock so nobody mistakes the file for a dead owner's.
  if (::unlink(it->second.path.c_str()) < 0 && errno != ENOENT) {
    base::log_warn("store: cannot remove liveness lock `" + it->second.path + "`");
  }
  locks.erase(it);
}

}  // namespace

bool process_alive(const std::string& root, int pid) {
  if (pid == ::getpid()) return true;
  std::string path = lock_path(root, pid);
  for (int attempt = 0; attempt < 3; ++attempt) {
    int raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (raw < 0) return errno != ENOENT;  // unreadable: assume alive, never delete live data
    base::Fd fd(raw);
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) < 0) return true;  // held (or unknown): alive
    if (same_file(fd.get(), path)) {
      // Nobody holds it: its owner died. Remove the stale file while we hold the lock.
      ::unlink(path.c_str());
      return false;
    }
    // The file was replaced (pid reuse) after we opened it: look again.
  }
  return true;
}

namespace {
// Absolute and clean: sandbox mounts and scratch paths are built from it, and must not
// depend on the working directory of whoever opened the store.
std::string absolute_root(const std::string& root) {
  if (root.empty()) throw base::Error("builder root must not be empty");
  std::string r = std::filesystem::absolute(root).lexically_normal().string();
  while (r.size() > 1 && r.back() == '/') r.pop_back();
  return r;
}
}  // namespace

Store::Store(std::string root) : root_(absolute_root(root)), blobs_(root_) {
  std::string& key = live_key_;
  try {
    for (const char* sub :
         {"content/blobs/sha256", "content/ingest", "snapshots", "containers", "volumes", "run"}) {
      base::make_dirs(root_ + "/" + sub);
    }
    // Shared for the Store's life; whoever must be alone on the root (a future offline
    // fsck or migration) takes it exclusively.
    root_lock_ = base::open_fd(root_ + "/lock", O_RDWR | O_CREAT, 0644);
    while (::flock(root_lock_.get(), LOCK_SH) < 0) {
      if (errno != EINTR) throw base::SysError(errno, "flock", root_ + "/lock");
    }
    key = std::filesystem::canonical(root_).string();
    live_lock_ = acquire_live(key, root_);
  } catch (base::Error& e) {
    throw e.add_context("while opening builder root `" + root_ + "`");
  } catch (const std::filesystem::filesystem_error& e) {
    throw base::Error(std::string("open builder root: ") + e.what());
  }
  try {
    db_ = std::make_unique<Db>(root_ + "/metadata.db");
    snapshots_ = std::make_unique<Snapshots>(root_, *db_);
    index_ = std::make_unique<Index>(*db_);
    repair();
  } catch (base::Error& e) {
    index_.reset();
    snapshots_.reset();
    db_.reset();
    release_live(key);
    throw e.add_context("while opening builder root `" + root_ + "`");
  }
}

Store::~Store() {
  index_.reset();
  snapshots_.reset();
  db_.reset();
  try {
    release_live(live_key_);
  } catch (const std::exception& e) {
    base::log_warn(std::string("store: releasing liveness lock: ") + e.what());
  }
}

void Store::remove_stale_scratch() {
  std::string run = root_ + "/run";
  std::error_code ec;
  std::vector<std::filesystem::path> entries;
  for (const auto& entry : std::filesystem::directory_iterator(run, ec)) entries.push_back(entry.path());
  for (const auto& path : entries) {
    std::string name = path.filename().string();
    // A liveness lock whose owner died: process_alive() removes it while it holds it.
    if (name.size() > 5 && name.compare(name.size() - 5, 5, ".lock") == 0) {
      if (int pid = digits_pid(name.substr(0, name.size() - 5))) process_alive(root_, pid);
      continue;
    }
    // Scratch directories are `<what>-<pid>-<random>`, and `<what>` may itself hold
    // dashes ("mount-rw"); the random tail never does, so the pid is the next-to-last part.
    auto last = name.rfind('-');
    if (last == std::string::npos || last == 0) continue;
    auto prev = name.rfind('-', last - 1);
    if (prev == std::string::npos) continue;
    std::string pid_text = name.substr(prev + 1, last - prev - 1);
    int pid = digits_pid(pid_text);
    if (pid == 0 || process_alive(root_, pid)) continue;
    base::log_debug("store: repair removes scratch directory `" + name + "` of dead process " + pid_text);
    try {
      base::remove_all(path.string());
    } catch (const base::Error& e) {
      base::log_warn(std::string("store: cannot remove stale scratch directory: ") + e.what());
    }
  }
}

void Store::remove_stale_cache_mount_dirs() {
  // ops/ LocalExecutor::cache_mount_dir makes a new cache as <n>/new-XXXXXX/data and
  // renames it to <n>/data, holding <n>.lock (shared or exclusive) throughout. Whoever
  // takes that lock exclusively without waiting knows nobody is making one now, so the
  // new-* dirs it then sees were left by a crash.
  std::string base = root_ + "/cache-mounts";
  std::error_code ec;
  for (const auto& hash : std::filesystem::directory_iterator(base, ec)) {
    std::error_code ec2;
    if (!hash.is_directory(ec2)) continue;
    for (const auto& inst : std::filesystem::directory_iterator(hash.path(), ec2)) {
      std::string name = inst.path().filename().string();
      std::error_code ec3;
      if (digits_pid(name) == 0 && name != "0") continue;
      if (!inst.is_directory(ec3)) continue;
      base::Fd lock;
      std::string lock_file = inst.path().string() + ".lock";
      int fd = ::open(lock_file.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
      if (fd >= 0) {
        lock = base::Fd(fd);
        if (::flock(lock.get(), LOCK_EX | LOCK_NB) < 0) continue;  // in use
      } else if (errno != ENOENT) {
        continue;  // unreadable: leave it
      }
      for (const auto& e : std::filesystem::directory_iterator(inst.path(), ec3)) {
        if (e.path().filename().string().rfind("new-", 0) != 0) continue;
        base::log_debug("store: repair removes half-made cache mount `" + e.path().string() + "`");
        try {
          base::remove_all(e.path().string());
        } catch (const base::Error& err) {
          base::log_warn(std::string("store: cannot remove a half-made cache mount: ") + err.what());
        }
      }
    }
  }
}

void Store::repair_containers() {
  // runtime/ records a container with the pid of its `builder run` (owner_pid). One
  // still "created" or "running" whose owner is dead was killed with it (its process
  // died too: PR_SET_PDEATHSIG and its pid namespace): a --rm container goes, any other
  // is recorded as exited, as Docker marks the containers of a daemon that died.
  std::string base = root_ + "/containers";
  std::error_code ec;
  std::vector<std::filesystem::path> dirs;
  for (const auto& e : std::filesystem::directory_iterator(base, ec)) dirs.push_back(e.path());
  for (const auto& dir : dirs) {
    std::string record_path = dir.string() + "/config.json";
    base::Json record;
    try {
      record = base::Json::parse(base::read_file(record_path), nullptr, /*allow_exceptions=*/false);
    } catch (const base::Error&) {
      continue;  // no record: not made by runtime/ (it renames dirs in with one)
    }
    if (!record.is_object()) continue;
    std::string status = record.value("status", std::string());
    if (status != "created" && status != "running") continue;
    auto owner = record.find("owner_pid");
    if (owner == record.end() || !owner->is_number_integer()) continue;
    int pid = owner->get<int>();
    if (pid <= 0 || process_alive(root_, pid)) continue;
    try {
      if (record.value("remove", false)) {
        base::log_debug("store: repair removes container `" + dir.filename().string() + "` of a killed run");
        // Out of containers/ in one rename first: a crash while deleting leaves a
        // scratch dir of a dead process, not half a container.
        std::string to = scratch_dir() + "/container-" + std::to_string(::getpid()) + "-" + base::random_hex(6);
        if (::rename(dir.c_str(), to.c_str()) < 0) {
          if (errno == ENOENT) continue;  // another process repaired it first
          throw base::SysError(errno, "rename", dir.string());
        }
        base::remove_all(to);
        continue;
      }
      base::log_debug("store: repair marks container `" + dir.filename().string() + "` of a killed run exited");
      record["status"] = "exited";
      record["exit_code"] = 137;
      record["error"] = "its builder process was killed";
      record["finished"] = base::rfc3339_now();
      // Temporary records its owner was writing when it died.
      for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
        if (e.path().filename().string().rfind("config.json.tmp-", 0) == 0) ::unlink(e.path().c_str());
      }
      base::write_file_atomic(record_path, record.dump(2) + "\n");
    } catch (const base::Error& e) {
      base::log_warn(std::string("store: cannot repair container `") + dir.string() + "`: " + e.what());
    }
  }
}

void Store::remove_stale_temp_files() {
  // base::write_file_atomic's `<file>.tmp-<rand>` beside root-level files (checksum-memo).
  // It lives for the milliseconds of one write, so one a minute old was left by a crash.
  // (Removing a live one would only fail that write, which its writer tolerates.)
  std::error_code ec;
  auto now = std::filesystem::file_time_type::clock::now();
  for (const auto& e : std::filesystem::directory_iterator(root_, ec)) {
    std::string name = e.path().filename().string();
    if (name.find(".tmp-") == std::string::npos) continue;
    std::error_code ec2;
    if (!e.is_regular_file(ec2)) continue;
    auto t = e.last_write_time(ec2);
    if (ec2 || now - t < std::chrono::minutes(1)) continue;
    base::log_debug("store: repair removes stale temporary file `" + name + "`");
    ::unlink(e.path().c_str());
  }
}

void Store::repair() {
  blobs_.remove_stale_ingests();
  snapshots_->repair();
  remove_stale_scratch();
  KeyLocks(root_ + "/locks").remove_stale();  // single-flight locks of dead processes
  remove_stale_cache_mount_dirs();
  repair_containers();
  remove_stale_temp_files();
  drop_dangling_rows();
}

void Store::drop_dangling_rows() {
  // An image name whose manifest blob is gone resolves to nothing usable. Commits never
  // leave one (the manifest is durable before its name), so this is damage: say so.
  for (const auto& r : db_->query("SELECT name, digest FROM images")) {
    std::string name = r[0].value_or(""), digest = r[1].value_or("");
    bool present = false;
    try {
      present = blobs_.has(base::Digest::parse(digest));
    } catch (const base::Error&) {
    }
    if (present) continue;
    base::log_warn("store: image `" + name + "` names manifest " + digest + ", which is missing; removing the name");
    db_->exec("DELETE FROM images WHERE name=?1 AND digest=?2", {name, digest});
  }
  // Index values are JSON arrays of snapshot ids (ops/ writes them); a row naming a
  // snapshot that is gone would hand out a missing layer, so it goes. Values that are
  // not such arrays are opaque to us and kept.
  db_->transaction([&] {
    std::set<std::string> known;
    for (const auto& r : db_->query("SELECT id FROM snapshots")) known.insert(r[0].value_or(""));
    for (const auto& [key, value] : index_->all()) {
      base::Json j = base::Json::parse(value, nullptr, /*allow_exceptions=*/false);
      if (!j.is_array()) continue;
      for (const auto& el : j) {
        if (el.is_string() && !el.get<std::string>().empty() &&
            !known.count(el.get<std::string>())) {
          base::log_debug("store: repair drops cache record `" + key + "` (snapshot " +
                          el.get<std::string>() + " is missing)");
          index_->remove(key);
          break;
        }
      }
    }
  });
}

}  // namespace builder::cache
