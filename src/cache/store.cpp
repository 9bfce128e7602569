#include "cache/store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <mutex>
#include <set>

#include "base/error.h"
#include "base/fs.h"
#include "base/json.h"
#include "base/log.h"
#include "cache/key_lock.h"

namespace builder::cache {
namespace {

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
  for (const auto& entry : std::filesystem::directory_iterator(run, ec)) {
    std::string name = entry.path().filename().string();
    // Scratch directories are `<what>-<pid>-<random>`; lock files are `<pid>.lock`.
    auto first = name.find('-');
    auto second = first == std::string::npos ? std::string::npos : name.find('-', first + 1);
    if (second == std::string::npos || second == first + 1) continue;
    std::string pid_text = name.substr(first + 1, second - first - 1);
    if (pid_text.find_first_not_of("0123456789") != std::string::npos || pid_text.size() > 9) continue;
    int pid = std::stoi(pid_text);
    if (process_alive(root_, pid)) continue;
    base::log_debug("store: repair removes scratch directory `" + name + "` of dead process " + pid_text);
    try {
      base::remove_all(entry.path().string());
    } catch (const base::Error& e) {
      base::log_warn(std::string("store: cannot remove stale scratch directory: ") + e.what());
    }
  }
}

void Store::repair() {
  blobs_.remove_stale_ingests();
  snapshots_->repair();
  remove_stale_scratch();
  KeyLocks(root_ + "/locks").remove_stale();  // single-flight locks of dead processes
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
