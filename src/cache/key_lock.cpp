#include "cache/key_lock.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <thread>

#include "base/error.h"
#include "base/fs.h"

namespace builder::cache {
namespace {

/// Whether `fd` is still the file at `path`: a holder may have removed the file after
/// we opened it, and a lock on a removed file excludes no one.
bool still_linked(int fd, const std::string& path) {
  struct stat a, b;
  if (::fstat(fd, &a) < 0 || ::stat(path.c_str(), &b) < 0) return false;
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

}  // namespace

KeyLocks::KeyLocks(std::string dir) : dir_(std::move(dir)) { base::make_dirs(dir_); }

KeyLocks::Held& KeyLocks::Held::operator=(Held&& o) noexcept {
  if (this != &o) {
    release();
    path_ = std::move(o.path_);
    fd_ = std::move(o.fd_);
    waited_ = o.waited_;
  }
  return *this;
}

KeyLocks::Held::~Held() { release(); }

void KeyLocks::Held::release() noexcept {
  if (!fd_) return;
  // Unlink while still holding: a waiter that then locks the old file sees it is no
  // longer linked and opens the path again.
  ::unlink(path_.c_str());
  fd_.reset();
}

KeyLocks::Held KeyLocks::acquire(const std::string& key, const std::function<bool()>& cancelled) {
  if (key.empty() || key.find('/') != std::string::npos) throw base::Error("key lock: bad key `" + key + "`");
  Held held;
  held.path_ = dir_ + "/" + key + ".lock";
  for (;;) {
    int fd = ::open(held.path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) throw base::SysError(errno, "open", held.path_);
    base::Fd f(fd);
    // Poll rather than block, so that Ctrl-C can end the wait.
    for (;;) {
      if (::flock(f.get(), LOCK_EX | LOCK_NB) == 0) break;
      if (errno != EWOULDBLOCK && errno != EINTR) throw base::SysError(errno, "flock", held.path_);
      held.waited_ = true;
      if (cancelled && cancelled()) throw base::Error("cancelled while waiting for another build running the same step");
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (still_linked(f.get(), held.path_)) {
      held.fd_ = std::move(f);
      return held;
    }
  }
}

void KeyLocks::remove_stale() {
  DIR* d = ::opendir(dir_.c_str());
  if (!d) return;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.size() < 6 || name.compare(name.size() - 5, 5, ".lock") != 0) continue;
    std::string path = dir_ + "/" + name;
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) continue;
    base::Fd f(fd);
    // Held by nobody: its holder died. Unlinking under our lock is safe for the same
    // reason as in release().
    if (::flock(f.get(), LOCK_EX | LOCK_NB) == 0 && still_linked(f.get(), path)) ::unlink(path.c_str());
  }
  ::closedir(d);
}

}  // namespace builder::cache
