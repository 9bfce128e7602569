// base/temp_dir.h — TempDir, an owned temporary directory removed on destruction.
#pragma once

#include <string>

namespace builder::base {

/// Creates `<parent>/<prefix>XXXXXX`; removes it recursively on destruction unless keep().
class TempDir {
 public:
  explicit TempDir(const std::string& parent, const std::string& prefix = "tmp-");
  ~TempDir();
  TempDir(TempDir&& o) noexcept;
  TempDir& operator=(TempDir&&) = delete;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  /// Stops owning the directory and returns its path.
  std::string keep();

 private:
  std::string path_;
};

}  // namespace builder::base
