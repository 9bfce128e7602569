#include "base/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <set>
#include <utility>
#include <vector>

#include "base/error.h"
#include "base/fd.h"
#include "base/strings.h"

namespace builder::base {

std::string read_file(const std::string& path) {
  Fd fd = open_fd(path, O_RDONLY);
  return read_all(fd.get());
}

void fsync_dir(const std::string& path) {
  Fd fd = open_fd(path, O_RDONLY | O_DIRECTORY);
  check_sys(::fsync(fd.get()), "fsync", path);
}

void write_file_atomic(const std::string& path, std::string_view data, int mode) {
  std::string tmp = path + ".tmp-" + random_hex(6);
  {
    Fd fd = open_fd(tmp, O_WRONLY | O_CREAT | O_EXCL, mode);
    try {
      write_all(fd.get(), data);
      check_sys(::fsync(fd.get()), "fsync", tmp);
    } catch (...) {
      ::unlink(tmp.c_str());
      throw;
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) < 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    throw SysError(e, "rename", path);
  }
  auto dir = std::filesystem::path(path).parent_path().string();
  fsync_dir(dir.empty() ? "." : dir);
}

void make_dirs(const std::string& path, int mode) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) throw SysError(ec.value(), "mkdir -p", path);
  (void)mode;
}

static void remove_at(int dirfd, const char* name, const std::string& shown) {
  if (::unlinkat(dirfd, name, 0) == 0 || errno == ENOENT) return;
  if (errno != EISDIR && errno != EPERM) throw SysError(errno, "unlink", shown);
  int fd = ::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return;
    throw SysError(errno, "open", shown);
  }
  ::fchmod(fd, 0700);  // a read-only directory from an image cannot be emptied otherwise
  Fd owner(fd);
  int dupfd = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (dupfd < 0) throw SysError(errno, "dup", shown);
  DIR* d = ::fdopendir(dupfd);
  if (!d) {
    ::close(dupfd);
    throw SysError(errno, "fdopendir", shown);
  }
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    remove_at(fd, n.c_str(), shown + "/" + n);
  }
  ::closedir(d);
  if (::unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT) throw SysError(errno, "rmdir", shown);
}

void remove_all(const std::string& path) {
  if (path.empty() || path == "/") throw Error("refusing to remove `" + path + "`");
  remove_at(AT_FDCWD, path.c_str(), path);
}

std::string read_link(const std::string& path) {
  std::string target(256, '\0');
  for (;;) {
    ssize_t n = ::readlink(path.c_str(), target.data(), target.size());
    if (n < 0) throw SysError(errno, "readlink", path);
    if (static_cast<size_t>(n) < target.size()) {
      target.resize(static_cast<size_t>(n));
      return target;
    }
    target.resize(target.size() * 2);
  }
}

std::string find_program(const std::string& name) {
  const char* env = std::getenv("PATH");
  std::string path = env && *env ? env : "/usr/local/bin:/usr/bin:/bin";
  for (const auto& dir : split(path, ':')) {
    std::string cand = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(cand.c_str(), X_OK) == 0) return cand;
  }
  return {};
}

bool path_exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

std::string random_hex(size_t nbytes) {
  std::string raw(nbytes, '\0');
  size_t got = 0;
  while (got < nbytes) {
    ssize_t n = ::getrandom(raw.data() + got, nbytes - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw SysError(errno, "getrandom");
    }
    got += static_cast<size_t>(n);
  }
  static const char* hexd = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out.push_back(hexd[c >> 4]);
    out.push_back(hexd[c & 15]);
  }
  return out;
}

std::string path_join(std::string_view a, std::string_view b) {
  std::string r(a);
  while (!r.empty() && r.back() == '/') r.pop_back();
  while (!b.empty() && b.front() == '/') b.remove_prefix(1);
  if (b.empty()) return r.empty() ? "/" : r;
  return r + "/" + std::string(b);
}

namespace {

void add_tree_size(int dirfd, const std::string& shown, bool tolerant, std::set<std::pair<dev_t, ino_t>>& seen,
                   int64_t& total) {
  auto fail = [&](int err, const char* what, const std::string& path) {
    if (!tolerant) throw SysError(err, what, path);
  };
  int dupfd = ::fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
  if (dupfd < 0) return fail(errno, "dup", shown);
  DIR* d = ::fdopendir(dupfd);
  if (!d) {
    int err = errno;
    ::close(dupfd);
    return fail(err, "fdopendir", shown);
  }
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  ::closedir(d);
  for (const auto& n : names) {
    struct stat st;
    if (::fstatat(dirfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
      fail(errno, "stat", shown + "/" + n);
      continue;
    }
    if (S_ISDIR(st.st_mode)) {
      int fd = ::openat(dirfd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) {
        fail(errno, "open", shown + "/" + n);
        continue;
      }
      Fd owner(fd);
      add_tree_size(fd, shown + "/" + n, tolerant, seen, total);
    } else if (st.st_nlink <= 1 || seen.insert({st.st_dev, st.st_ino}).second) {
      total += st.st_size;
    }
  }
}

}  // namespace

int64_t tree_size(const std::string& dir, bool tolerate_changes) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (tolerate_changes) return 0;
    throw SysError(errno, "open", dir);
  }
  Fd owner(fd);
  std::set<std::pair<dev_t, ino_t>> seen;
  int64_t total = 0;
  add_tree_size(fd, dir, tolerate_changes, seen, total);
  return total;
}

}  // namespace builder::base
