// tests/cache/cache_test_util.h — helpers for the cache tests: a temporary root and
// small file-system shorthands.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "base/fs.h"
#include "base/temp_dir.h"

namespace builder::test {

inline void write(const std::string& path, const std::string& data, int mode = 0644) {
  auto slash = path.rfind('/');
  if (slash != std::string::npos) base::make_dirs(path.substr(0, slash));
  base::write_file_atomic(path, data, mode);
  ::chmod(path.c_str(), static_cast<mode_t>(mode));
}

inline std::vector<std::string> list(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) out.push_back(e.path().filename());
  std::sort(out.begin(), out.end());
  return out;
}

/// A pid that no longer runs (a reaped child): its liveness lock is never held.
inline int dead_pid() {
  pid_t p = ::fork();
  if (p == 0) ::_exit(0);
  int st;
  ::waitpid(p, &st, 0);
  return p;
}

}  // namespace builder::test
