// tests/make_tar.h — hand-made tars for tests: exactly the entries given, no checks,
// so hostile names and links go in.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace builder::test {

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

}  // namespace builder::test
