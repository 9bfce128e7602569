// base/fd.h — Fd, the move-only owner of a file descriptor, and small fd helpers.
#pragma once

#include <string>
#include <string_view>
#include <utility>

namespace builder::base {

/// Owns one file descriptor; closes it on destruction unless release()d.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) reset(o.release());
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  explicit operator bool() const { return valid(); }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

/// open(2) with O_CLOEXEC; throws SysError.
Fd open_fd(const std::string& path, int flags, int mode = 0644);
/// Writes all of `data`; throws SysError.
void write_all(int fd, std::string_view data);
/// Reads until EOF.
std::string read_all(int fd);

}  // namespace builder::base
