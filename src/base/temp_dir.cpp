#include "base/temp_dir.h"

#include <cstdlib>
#include <utility>
#include <vector>

#include "base/error.h"
#include "base/fs.h"
#include "base/log.h"

namespace builder::base {

TempDir::TempDir(const std::string& parent, const std::string& prefix) {
  make_dirs(parent);
  std::string tmpl = path_join(parent, prefix + "XXXXXX");
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data())) throw SysError(errno, "mkdtemp", tmpl);
  path_ = buf.data();
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  try {
    remove_all(path_);
  } catch (const std::exception& e) {
    log_warn(std::string("removing temporary directory: ") + e.what());
  }
}

TempDir::TempDir(TempDir&& o) noexcept : path_(std::exchange(o.path_, {})) {}

std::string TempDir::keep() { return std::exchange(path_, {}); }

}  // namespace builder::base
