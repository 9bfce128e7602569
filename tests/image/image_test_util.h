// tests/image/image_test_util.h — helpers for the image tests: a scratch root with an
// opened cache::Store, hand-made tars (to feed hostile entries) and tar listings.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <memory>
#include <string>
#include <vector>

#include "base/digest.h"
#include "base/fd.h"
#include "base/fs.h"
#include "base/temp_dir.h"
#include "cache/store.h"
#include "make_tar.h"
#include "tar_listing.h"
#include "test_util.h"

namespace builder::test {

/// A fresh builder root in a temporary directory.
struct Root {
  base::TempDir dir{"/tmp", "image-test-"};
  cache::Store store{dir.path() + "/root"};
  std::string path(const std::string& rel) const { return dir.path() + "/" + rel; }
};

/// Names of the entries of a tar (any compression), in order.
inline std::vector<std::string> tar_names(const std::string& path) {
  struct archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  archive_read_support_filter_gzip(a);
  REQUIRE(archive_read_open_filename(a, path.c_str(), 65536) == ARCHIVE_OK);
  std::vector<std::string> out;
  struct archive_entry* e;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    std::string n = archive_entry_pathname(e);
    if (archive_entry_hardlink(e)) n += " => " + std::string(archive_entry_hardlink(e));
    out.push_back(n);
  }
  archive_read_free(a);
  return out;
}

/// Uncompressed bytes of a gzip file.
inline std::string gunzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  REQUIRE(f != nullptr);
  std::string out;
  char buf[65536];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  gzclose(f);
  return out;
}

inline int run(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

}  // namespace builder::test
