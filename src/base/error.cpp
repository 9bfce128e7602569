#include "base/error.h"

#include <cstring>

namespace builder::base {

std::string SourceRange::str() const {
  std::string s = file.empty() ? std::string("<input>") : file;
  if (start_line > 0) {
    s += ":" + std::to_string(start_line);
    if (start_col > 0) s += ":" + std::to_string(start_col);
  }
  return s;
}

Error::Error(std::string message, std::optional<SourceRange> where)
    : std::runtime_error(message), message_(std::move(message)), where_(std::move(where)) {
  rebuild();
}

Error& Error::add_context(std::string line) {
  context_.push_back(std::move(line));
  rebuild();
  return *this;
}

Error& Error::set_where(SourceRange r) {
  where_ = std::move(r);
  rebuild();
  return *this;
}

void Error::rebuild() {
  full_.clear();
  if (where_ && where_->valid()) full_ = where_->str() + ": ";
  full_ += message_;
  for (const auto& c : context_) full_ += "\n  " + c;
}

static const char* errno_name(int err) {
  switch (err) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case EEXIST: return "EEXIST";
    case EINVAL: return "EINVAL";
    case EBUSY: return "EBUSY";
    case ENOSPC: return "ENOSPC";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case ELOOP: return "ELOOP";
    case EXDEV: return "EXDEV";
    case ENOSYS: return "ENOSYS";
    case EAGAIN: return "EAGAIN";
    case EIO: return "EIO";
    default: return nullptr;
  }
}

static std::string sys_message(int err, const std::string& call, const std::string& path) {
  std::string m = call;
  if (!path.empty()) m += " `" + path + "`";
  m += ": ";
  if (const char* n = errno_name(err)) m += std::string(n) + " (" + std::strerror(err) + ")";
  else m += std::strerror(err);
  return m;
}

SysError::SysError(int err, std::string call, std::string path)
    : Error(sys_message(err, call, path)), err_(err) {}

long check_sys(long rc, const char* call, const std::string& path) {
  if (rc < 0) throw SysError(errno, call, path);
  return rc;
}

}  // namespace builder::base
