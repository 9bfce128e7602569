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
#include "tar_listing.h"
#include "test_util.h"

namespace builder::test {

/// A fresh builder root in a temporary directory.
struct Root {
  base::TempDir dir{"/tmp", "image-test-"};
  cache::Store store{dir.path() + "/root"};
  std::string path(const std::string& rel) const { return dir.path() + "/" + rel; }
};

struct TarItem {
  std::string name;
  char type = 'f';  ///< f file, d dir, l symlink, h hardlink
  std::string data;  ///< content, or link target
  int mode = 0644;
};

/// Writes a plain pax tar with exactly these entries (no checks, so hostile names go in).
inline void make_tar(const std::string& path, const std::vector<TarItem>& items) {
  struct archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  REQUIRE(archive_write_open_filename(a, path.c_str()) == ARCHIVE_OK);
  for (const auto& it : items) {
    struct archive_entry* e = archive_entry_new();
    archive_entry_copy_pathname(e, it.name.c_str());
    archive_entry_set_perm(e, it.mode);
    archive_entry_set_mtime(e, 1700000000, 0);
    switch (it.type) {
      case 'd':
        archive_entry_set_filetype(e, AE_IFDIR);
        break;
      case 'l':
        archive_entry_set_filetype(e, AE_IFLNK);
        archive_entry_copy_symlink(e, it.data.c_str());
        break;
      case 'h':
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_copy_hardlink(e, it.data.c_str());
        archive_entry_set_size(e, 0);
        break;
      default:
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_size(e, static_cast<la_int64_t>(it.data.size()));
    }
    REQUIRE(archive_write_header(a, e) == ARCHIVE_OK);
    if (it.type == 'f' && !it.data.empty()) archive_write_data(a, it.data.data(), it.data.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
}

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
