// Writing layers: a directory walk (sorted, depth first, like Go's filepath.Walk that
// Docker and BuildKit use) into a pax tar, gzip-compressed into the blob store while
// the uncompressed stream is hashed for the diff id.
#include "image/layer.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <vector>

#include "base/error.h"
#include "base/fd.h"
#include "image/tar_io.h"

namespace builder::image {

using detail::check_archive;

namespace {

constexpr const char* kWhiteoutPrefix = ".wh.";
constexpr const char* kOpaqueMarker = ".wh..wh..opq";

struct GzipSink : detail::TarSink {
  explicit GzipSink(detail::GzipWriter& gz) : gz_(gz) {}
  void write(const void* data, size_t n) override { gz_.write(data, n); }
  detail::GzipWriter& gz_;
};

std::vector<std::string> sorted_names(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) throw base::SysError(errno, "opendir", dir);
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  int err = errno;
  ::closedir(d);
  if (err) throw base::SysError(err, "readdir", dir);
  std::sort(names.begin(), names.end());  // bytewise, as Go sorts names
  return names;
}

std::string get_xattr(const std::string& path, const std::string& name) {
  for (;;) {
    ssize_t n = ::lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
    if (n < 0) {
      if (errno == ENODATA) return {};
      throw base::SysError(errno, "lgetxattr " + name, path);
    }
    std::string v(static_cast<size_t>(n), '\0');
    ssize_t m = ::lgetxattr(path.c_str(), name.c_str(), v.data(), v.size());
    if (m < 0 && errno == ERANGE) continue;  // grew in between
    if (m < 0) throw base::SysError(errno, "lgetxattr " + name, path);
    v.resize(static_cast<size_t>(m));
    return v;
  }
}

std::vector<std::string> list_xattrs(const std::string& path) {
  for (;;) {
    ssize_t n = ::llistxattr(path.c_str(), nullptr, 0);
    if (n < 0) {
      if (errno == ENOTSUP) return {};
      throw base::SysError(errno, "llistxattr", path);
    }
    std::string buf(static_cast<size_t>(n), '\0');
    ssize_t m = ::llistxattr(path.c_str(), buf.data(), buf.size());
    if (m < 0 && errno == ERANGE) continue;
    if (m < 0) throw base::SysError(errno, "llistxattr", path);
    std::vector<std::string> out;
    for (size_t i = 0; i < static_cast<size_t>(m);) {
      std::string name(buf.c_str() + i);
      i += name.size() + 1;
      if (!name.empty()) out.push_back(std::move(name));
    }
    std::sort(out.begin(), out.end());
    return out;
  }
}

bool is_overlay_xattr(const std::string& name) {
  return name.rfind("trusted.overlay.", 0) == 0 || name.rfind("user.overlay.", 0) == 0;
}

/// Walks a directory into a tar writer.
class TreeWriter {
 public:
  TreeWriter(struct archive* a, bool overlay) : a_(a), overlay_(overlay) {}

  void walk(const std::string& abs, const std::string& rel) {
    for (const auto& name : sorted_names(abs)) {
      std::string child_abs = abs + "/" + name;
      std::string child_rel = rel.empty() ? name : rel + "/" + name;
      struct stat st;
      if (::lstat(child_abs.c_str(), &st) < 0) throw base::SysError(errno, "lstat", child_abs);
      add(child_abs, child_rel, name, st);
      if (S_ISDIR(st.st_mode)) walk(child_abs, child_rel);
    }
  }

  bool wrote_any() const { return any_; }

 private:
  detail::Entry base_entry(const std::string& rel, const struct stat& st) {
    detail::Entry e(archive_entry_new());
    if (!e) throw base::Error("libarchive: out of memory");
    archive_entry_copy_pathname(e.get(), rel.c_str());
    archive_entry_set_uid(e.get(), st.st_uid);
    archive_entry_set_gid(e.get(), st.st_gid);
    archive_entry_set_perm(e.get(), st.st_mode & 07777);
    // Whole seconds and no atime/ctime, as Docker writes layers: reproducible and
    // no pax header just for sub-second times.
    archive_entry_set_mtime(e.get(), st.st_mtim.tv_sec, 0);
    return e;
  }

  void write_header(struct archive_entry* e, const std::string& rel) {
    check_archive(a_, archive_write_header(a_, e), "writing layer entry `" + rel + "`");
    any_ = true;
  }

  void add(const std::string& abs, const std::string& rel, const std::string& name, const struct stat& st) {
    if (S_ISSOCK(st.st_mode)) return;  // sockets are not archivable (Docker skips them too)

    if (overlay_ && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {
      // overlayfs whiteout -> OCI whiteout file. Never hardlink-tracked: overlayfs
      // shares one whiteout inode among many names.
      std::string dir = rel.substr(0, rel.size() - name.size());
      std::string wh = dir + kWhiteoutPrefix + name;
      auto e = base_entry(wh, st);
      archive_entry_set_filetype(e.get(), AE_IFREG);
      archive_entry_set_perm(e.get(), 0600);
      archive_entry_set_size(e.get(), 0);
      write_header(e.get(), wh);
      return;
    }

    bool dir = S_ISDIR(st.st_mode);
    auto e = base_entry(dir ? rel + "/" : rel, st);
    bool opaque = false;
    for (const auto& x : list_xattrs(abs)) {
      if (is_overlay_xattr(x)) {
        if (!overlay_) continue;
        if (x == "trusted.overlay.opaque" || x == "user.overlay.opaque") {
          opaque = dir && get_xattr(abs, x) == "y";
        } else if (x == "trusted.overlay.redirect" || x == "trusted.overlay.metacopy" ||
                   x == "user.overlay.redirect" || x == "user.overlay.metacopy") {
          // The upper dir alone no longer describes the change; refuse rather than
          // write a wrong layer. Mount with redirect_dir=off,metacopy=off.
          throw base::Error("cannot export `" + abs + "` as a layer: it carries overlayfs " + x +
                            " (mount overlays with redirect_dir=off,metacopy=off)");
        }
        continue;
      }
      std::string v = get_xattr(abs, x);
      archive_entry_xattr_add_entry(e.get(), x.c_str(), v.data(), v.size());
    }

    bool data = false;
    if (!dir && st.st_nlink > 1) {
      auto key = std::make_pair(st.st_dev, st.st_ino);
      auto it = links_.find(key);
      if (it != links_.end()) {
        archive_entry_set_filetype(e.get(), AE_IFREG);
        archive_entry_copy_hardlink(e.get(), it->second.c_str());
        archive_entry_set_size(e.get(), 0);
        write_header(e.get(), rel);
        return;
      }
      links_.emplace(key, rel);
    }

    switch (st.st_mode & S_IFMT) {
      case S_IFDIR:
        archive_entry_set_filetype(e.get(), AE_IFDIR);
        break;
      case S_IFREG:
        archive_entry_set_filetype(e.get(), AE_IFREG);
        archive_entry_set_size(e.get(), st.st_size);
        data = st.st_size > 0;
        break;
      case S_IFLNK: {
        std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
        ssize_t n = ::readlink(abs.c_str(), target.data(), target.size());
        if (n < 0) throw base::SysError(errno, "readlink", abs);
        target.resize(static_cast<size_t>(n));
        archive_entry_set_filetype(e.get(), AE_IFLNK);
        archive_entry_copy_symlink(e.get(), target.c_str());
        break;
      }
      case S_IFCHR:
      case S_IFBLK:
        archive_entry_set_filetype(e.get(), S_ISCHR(st.st_mode) ? AE_IFCHR : AE_IFBLK);
        archive_entry_set_rdevmajor(e.get(), major(st.st_rdev));
        archive_entry_set_rdevminor(e.get(), minor(st.st_rdev));
        break;
      case S_IFIFO:
        archive_entry_set_filetype(e.get(), AE_IFIFO);
        break;
      default:
        return;
    }
    write_header(e.get(), rel);
    if (data) copy_data(abs, st.st_size);

    if (opaque) {
      std::string marker = rel + "/" + kOpaqueMarker;
      auto o = base_entry(marker, st);
      archive_entry_set_filetype(o.get(), AE_IFREG);
      archive_entry_set_perm(o.get(), st.st_mode & 0777);
      archive_entry_set_size(o.get(), 0);
      write_header(o.get(), marker);
    }
  }

  void copy_data(const std::string& abs, off_t size) {
    base::Fd fd = base::open_fd(abs, O_RDONLY | O_NOFOLLOW);
    std::vector<char> buf(256 * 1024);
    off_t left = size;
    while (left > 0) {
      ssize_t n = ::read(fd.get(), buf.data(), std::min<size_t>(buf.size(), static_cast<size_t>(left)));
      if (n < 0) {
        if (errno == EINTR) continue;
        throw base::SysError(errno, "read", abs);
      }
      if (n == 0) break;  // shrank while reading: libarchive pads the entry with zeros
      la_ssize_t w = archive_write_data(a_, buf.data(), static_cast<size_t>(n));
      if (w < 0) check_archive(a_, static_cast<int>(w), "writing layer data of `" + abs + "`");
      left -= n;
    }
  }

  struct archive* a_;
  bool overlay_;
  bool any_ = false;
  std::map<std::pair<dev_t, ino_t>, std::string> links_;
};

LayerBlob write_tree(const std::string& dir, cache::BlobStore& blobs, bool overlay) {
  detail::Utf8Locale locale;
  struct stat st;
  if (::stat(dir.c_str(), &st) < 0) throw base::SysError(errno, "stat", dir);
  if (!S_ISDIR(st.st_mode)) throw base::Error("cannot export `" + dir + "` as a layer: not a directory");

  auto writer = blobs.ingest();
  detail::GzipWriter gz(writer);
  GzipSink sink(gz);
  LayerBlob out;
  try {
    auto a = detail::new_tar_writer(sink);
    TreeWriter tree(a.get(), overlay);
    tree.walk(dir, "");
    check_archive(a.get(), archive_write_close(a.get()), "writing layer");
    sink.rethrow_if_failed();
    out.empty = !tree.wrote_any();
  } catch (...) {
    sink.rethrow_if_failed();  // the blob store's error explains a libarchive one
    throw;
  }
  out.diff_id = gz.finish();
  out.size = writer.size();
  out.digest = writer.commit();
  return out;
}

}  // namespace

LayerBlob write_layer(const std::string& upper_dir, cache::BlobStore& blobs) {
  return write_tree(upper_dir, blobs, true);
}

LayerBlob write_dir_layer(const std::string& dir, cache::BlobStore& blobs) {
  return write_tree(dir, blobs, false);
}

namespace {
void tee_to_gzip(void* ctx, const void* data, size_t n) { static_cast<detail::GzipWriter*>(ctx)->write(data, n); }
}  // namespace

LayerBlob ingest_layer(int fd, cache::BlobStore& blobs) {
  detail::Utf8Locale locale;
  auto writer = blobs.ingest();
  detail::GzipWriter gz(writer);
  detail::PlainReader src(fd);
  src.set_tee(tee_to_gzip, &gz);

  // Read it as a tar (headers only) so that a file that is no tar is refused here
  // rather than when a container first unpacks it.
  detail::ArchiveReader a(archive_read_new());
  archive_read_support_format_tar(a.get());
  bool any = false;
  try {
    check_archive(a.get(), archive_read_open(a.get(), &src, nullptr, detail::PlainReader::archive_read_cb, nullptr),
                  "reading layer");
    for (;;) {
      struct archive_entry* e = nullptr;
      int rc = archive_read_next_header(a.get(), &e);
      if (rc == ARCHIVE_EOF) break;
      src.rethrow_if_failed();
      check_archive(a.get(), rc, "reading layer");
      detail::clean_entry_path(detail::entry_path(e));
      any = true;
      check_archive(a.get(), archive_read_data_skip(a.get()), "reading layer");
    }
  } catch (...) {
    src.rethrow_if_failed();
    throw;
  }
  LayerBlob out;
  out.diff_id = src.finish();
  gz.finish();
  out.empty = !any;
  out.size = writer.size();
  out.digest = writer.commit();
  return out;
}

}  // namespace builder::image
