#include "base/fd.h"

#include <fcntl.h>
#include <unistd.h>

#include "base/error.h"
#include "base/log.h"

namespace builder::base {

void Fd::reset(int fd) {
  if (fd_ >= 0 && ::close(fd_) < 0 && errno != EINTR) log_warn("close fd " + std::to_string(fd_) + " failed");
  fd_ = fd;
}

Fd open_fd(const std::string& path, int flags, int mode) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) throw SysError(errno, "open", path);
  return Fd(fd);
}

void write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw SysError(errno, "write");
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
}

std::string read_all(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw SysError(errno, "read");
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

}  // namespace builder::base
