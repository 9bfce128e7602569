// Unpacking layers: as an overlayfs layer (whiteouts become 0/0 char devices and
// opaque xattrs) or merged onto a tree (whiteouts delete); and ADD's archives, whose
// entries an ArchiveTarget places. libarchive's disk writer does the file creation;
// entry names are checked and given as absolute host paths here, because
// archive_write_disk resolves relative names against the process-wide cwd, which a
// multithreaded engine cannot chdir.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <set>
#include <utility>
#include <vector>

#include "base/error.h"
#include "base/fs.h"
#include "base/strings.h"
#include "image/layer.h"
#include "image/tar_io.h"

namespace builder::image {

using detail::check_archive;

namespace {

constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kWhiteoutMeta = ".wh..wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";

/// kOverlay: a layer into an empty overlayfs layer dir; kMerge: a layer flattened onto
/// a tree; kArchive: ADD's tar, whose `.wh.` names are ordinary files, as in Docker.
enum class Mode { kOverlay, kMerge, kArchive };

std::string canonical_dir(const std::string& p) {
  char* r = ::realpath(p.c_str(), nullptr);
  if (!r) throw base::SysError(errno, "realpath", p);
  std::string s(r);
  std::free(r);
  struct stat st;
  if (::stat(s.c_str(), &st) < 0) throw base::SysError(errno, "stat", s);
  if (!S_ISDIR(st.st_mode)) throw base::Error("cannot unpack a layer into `" + p + "`: not a directory");
  return s;
}

bool lstat_path(const std::string& p, struct stat& st) {
  if (::lstat(p.c_str(), &st) == 0) return true;
  if (errno == ENOENT) return false;
  throw base::SysError(errno, "lstat", p);
}

class Unpacker {
 public:
  Unpacker(const std::string& dest, Mode mode) : dest_(canonical_dir(dest)), mode_(mode) {}
  Unpacker(ArchiveTarget& target, const std::optional<ArchiveOwner>& chown)
      : mode_(Mode::kArchive), archive_(&target), chown_(chown) {}

  base::Digest run(int fd) {
    detail::PlainReader src(fd);
    detail::ArchiveReader in(archive_read_new());
    if (!in) throw base::Error("libarchive: out of memory");
    archive_read_support_format_tar(in.get());
    try {
      check_archive(in.get(),
                    archive_read_open(in.get(), &src, nullptr, detail::PlainReader::archive_read_cb, nullptr),
                    "reading layer");
      entries(in.get(), [&] { src.rethrow_if_failed(); });
    } catch (...) {
      src.rethrow_if_failed();
      throw;
    }
    return src.finish();
  }

  /// An archive in any compression libarchive reads (gzip, bzip2, xz, zstd, none).
  void run_archive(int fd) {
    detail::ArchiveReader in(archive_read_new());
    if (!in) throw base::Error("libarchive: out of memory");
    archive_read_support_format_tar(in.get());
    archive_read_support_filter_all(in.get());
    check_archive(in.get(), archive_read_open_fd(in.get(), fd, 1 << 16), "reading archive");
    entries(in.get(), [] {});
  }

 private:
  template <typename Check>
  void entries(struct archive* in, const Check& check_source) {
    detail::Utf8Locale locale;
    detail::ArchiveWriter out(archive_write_disk_new());
    if (!out) throw base::Error("libarchive: out of memory");
    // Names were checked and prefixed with dest_ already, so NOABSOLUTEPATHS cannot
    // be used; NODOTDOT and SYMLINKS still guard what libarchive itself resolves
    // (including hard link targets). No uname lookup: numeric ids are kept.
    archive_write_disk_set_options(out.get(), ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                                  ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_OWNER |
                                                  ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_XATTR);
    for (;;) {
      struct archive_entry* e = nullptr;
      int rc = archive_read_next_header(in, &e);
      if (rc == ARCHIVE_EOF) break;
      check_source();
      check_archive(in, rc, "reading layer");
      entry(in, out.get(), e);
    }
    // Applies deferred directory modes and times.
    check_archive(out.get(), archive_write_close(out.get()), "unpacking layer");
    // libarchive defers the times only of directories it made; an ADD entry for an
    // existing directory takes its times too, after its children (Docker sets every
    // directory entry's times last).
    for (const auto& [path, times] : dir_times_)
      base::check_sys(::utimensat(AT_FDCWD, path.c_str(), times.data(), AT_SYMLINK_NOFOLLOW), "utimensat", path);
  }

  /// Refuses `rel` when one of its first `n` components (all but the last by default)
  /// is a symlink or a non-directory in dest_: following it could leave dest_.
  void check_parents(const std::string& rel, bool include_last = false, const std::string& shown = {}) {
    const std::string& name = shown.empty() ? rel : shown;
    auto parts = base::split(rel, '/');
    size_t n = include_last ? parts.size() : parts.size() - 1;
    std::string cur = dest_;
    for (size_t i = 0; i < n; ++i) {
      cur += "/" + parts[i];
      struct stat st;
      if (!lstat_path(cur, st)) return;
      if (S_ISLNK(st.st_mode))
        throw base::Error("refusing tar entry `" + name + "`: `" + cur.substr(dest_.size() + 1) + "` is a symbolic link");
      if (!S_ISDIR(st.st_mode))
        throw base::Error("refusing tar entry `" + name + "`: `" + cur.substr(dest_.size() + 1) + "` is not a directory");
    }
  }

  std::string abs(const std::string& rel) const { return rel.empty() ? dest_ : dest_ + "/" + rel; }

  void mark_written(const std::string& rel) {
    if (mode_ != Mode::kMerge) return;
    std::string p = rel;
    while (!p.empty() && written_.insert(p).second) {
      auto s = p.rfind('/');
      p = s == std::string::npos ? "" : p.substr(0, s);
    }
  }

  void entry(struct archive* in, struct archive* out, struct archive_entry* e) {
    std::string rel = detail::clean_entry_path(detail::entry_path(e));
    if (rel.empty()) {
      // The root itself ("./"): dest_ exists already and keeps its own attributes.
      check_archive(in, archive_read_data_skip(in), "reading layer");
      return;
    }
    auto slash = rel.rfind('/');
    std::string parent = slash == std::string::npos ? "" : rel.substr(0, slash);
    std::string base = slash == std::string::npos ? rel : rel.substr(slash + 1);
    if (mode_ == Mode::kArchive && rel.rfind(kWhiteoutMeta, 0) == 0) {
      check_archive(in, archive_read_data_skip(in), "reading layer");  // aufs metadata, as Docker skips it
      return;
    }
    if (mode_ != Mode::kArchive && base.rfind(kWhiteoutPrefix, 0) == 0) {
      whiteout(rel, parent, base, e);
      check_archive(in, archive_read_data_skip(in), "reading layer");
      return;
    }

    bool is_dir = archive_entry_filetype(e) == AE_IFDIR;
    std::string link = detail::entry_hardlink(e);
    std::string link_target;
    if (!link.empty()) {
      std::string target = detail::clean_entry_path(link);
      if (target.empty() || target == rel) throw base::Error("refusing tar entry `" + rel + "`: bad hard link target");
      if (mode_ == Mode::kArchive) {
        link_target = archive_->link_target(target);
      } else {
        check_parents(target, false, rel);
        link_target = abs(target);
      }
      is_dir = false;
    }
    std::string full;
    if (mode_ == Mode::kArchive) {
      full = archive_->prepare(rel, is_dir);
      if (chown_) {
        archive_entry_set_uid(e, chown_->uid);
        archive_entry_set_gid(e, chown_->gid);
      }
    } else {
      // A layer is applied strictly: a well-formed layer never writes through a link.
      check_parents(rel);
      full = abs(rel);
      // An existing path is replaced, unless both are directories (then merged), the
      // way Docker applies layers. Removing first also keeps a write from going through
      // an old hard link into another file.
      struct stat st;
      if (lstat_path(full, st) && !(is_dir && S_ISDIR(st.st_mode))) base::remove_all(full);
    }
    if (!link_target.empty()) {
      if (link_target == full) throw base::Error("refusing tar entry `" + rel + "`: bad hard link target");
      archive_entry_copy_hardlink(e, link_target.c_str());
    }

    archive_entry_copy_pathname(e, full.c_str());
    if (mode_ == Mode::kArchive && is_dir)
      dir_times_.emplace_back(
          full, std::array<struct timespec, 2>{
                    archive_entry_atime_is_set(e) ? timespec{archive_entry_atime(e), archive_entry_atime_nsec(e)}
                                                  : timespec{0, UTIME_OMIT},
                    timespec{archive_entry_mtime(e), archive_entry_mtime_nsec(e)}});
    drop_overlay_xattrs(e);
    int rc = archive_write_header(out, e);
    check_archive(out, rc, "unpacking `" + rel + "`");
    if (rc >= ARCHIVE_WARN && archive_entry_size(e) > 0) {
      const void* buf;
      size_t size;
      la_int64_t offset;
      for (;;) {
        int r = archive_read_data_block(in, &buf, &size, &offset);
        if (r == ARCHIVE_EOF) break;
        check_archive(in, r, "reading layer entry `" + rel + "`");
        la_ssize_t w = archive_write_data_block(out, buf, size, offset);
        if (w < ARCHIVE_WARN) check_archive(out, static_cast<int>(w), "unpacking `" + rel + "`");
      }
    }
    check_archive(out, archive_write_finish_entry(out), "unpacking `" + rel + "`");
    mark_written(rel);
  }

  /// trusted.overlay.* in a layer would steer the overlay mount (redirects, origin);
  /// only we set those, from whiteout markers.
  static void drop_overlay_xattrs(struct archive_entry* e) {
    if (archive_entry_xattr_reset(e) == 0) return;
    std::vector<std::pair<std::string, std::string>> keep;
    bool dropped = false;
    const char* name;
    const void* value;
    size_t size;
    while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
      std::string n = name;
      if (n.rfind("trusted.overlay.", 0) == 0 || n.rfind("user.overlay.", 0) == 0) {
        dropped = true;
        continue;
      }
      keep.emplace_back(n, std::string(static_cast<const char*>(value), size));
    }
    if (!dropped) return;
    archive_entry_xattr_clear(e);
    for (auto& [n, v] : keep) archive_entry_xattr_add_entry(e, n.c_str(), v.data(), v.size());
  }

  void whiteout(const std::string& rel, const std::string& parent, const std::string& base,
                struct archive_entry* e) {
    if (!parent.empty()) check_parents(parent, /*include_last=*/true, rel);
    std::string dir = abs(parent);
    if (base == kOpaqueMarker) {
      if (mode_ == Mode::kOverlay) {
        base::make_dirs(dir);
        if (::lsetxattr(dir.c_str(), "trusted.overlay.opaque", "y", 1, 0) < 0)
          throw base::SysError(errno, "setxattr trusted.overlay.opaque", dir);
      } else {
        clear_opaque(parent);
      }
      return;
    }
    if (base.rfind(kWhiteoutMeta, 0) == 0) return;  // aufs metadata (.wh..wh.plnk ...), as Docker skips it
    std::string name = base.substr(kWhiteoutPrefix.size());
    if (name.empty() || name == "." || name == "..")
      throw base::Error("refusing tar entry `" + rel + "`: bad whiteout name");
    std::string target = dir + "/" + name;
    if (mode_ == Mode::kMerge) {
      base::remove_all(target);
      return;
    }
    base::make_dirs(dir);
    struct stat st;
    if (lstat_path(target, st)) base::remove_all(target);
    if (::mknod(target.c_str(), S_IFCHR | 0, makedev(0, 0)) < 0) throw base::SysError(errno, "mknod whiteout", target);
    if (::lchown(target.c_str(), archive_entry_uid(e), archive_entry_gid(e)) < 0)
      throw base::SysError(errno, "lchown", target);
  }

  /// Opaque directory while merging: what earlier layers put in it goes; what this
  /// layer wrote so far (tars need not put the marker first) stays.
  void clear_opaque(const std::string& rel_dir) {
    std::string dir = abs(rel_dir);
    struct stat st;
    if (!lstat_path(dir, st) || !S_ISDIR(st.st_mode)) return;
    DIR* d = ::opendir(dir.c_str());
    if (!d) throw base::SysError(errno, "opendir", dir);
    std::vector<std::string> names;
    while (struct dirent* de = ::readdir(d)) {
      std::string n = de->d_name;
      if (n != "." && n != "..") names.push_back(std::move(n));
    }
    ::closedir(d);
    for (const auto& n : names) {
      std::string child = rel_dir.empty() ? n : rel_dir + "/" + n;
      if (!written_.count(child)) {
        base::remove_all(dir + "/" + n);
      } else if (lstat_path(dir + "/" + n, st) && S_ISDIR(st.st_mode)) {
        clear_opaque(child);
      }
    }
  }

  std::string dest_;  // kOverlay and kMerge
  Mode mode_;
  ArchiveTarget* archive_ = nullptr;  // kArchive
  std::optional<ArchiveOwner> chown_;
  std::vector<std::pair<std::string, std::array<struct timespec, 2>>> dir_times_;  // kArchive: set last
  std::set<std::string> written_;  // merge mode: paths (and their parents) from this layer
};

}  // namespace

base::Digest apply_layer(int fd, const std::string& dest) { return Unpacker(dest, Mode::kOverlay).run(fd); }

base::Digest extract_layer(int fd, const std::string& dest) { return Unpacker(dest, Mode::kMerge).run(fd); }

bool is_tar_archive(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) < 0 || !S_ISREG(st.st_mode)) return false;
  base::Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.get() < 0) return false;
  detail::ArchiveReader in(archive_read_new());
  if (!in) throw base::Error("libarchive: out of memory");
  archive_read_support_format_tar(in.get());
  archive_read_support_filter_all(in.get());
  if (archive_read_open_fd(in.get(), fd.get(), 1 << 16) != ARCHIVE_OK) return false;
  struct archive_entry* e = nullptr;
  return archive_read_next_header(in.get(), &e) == ARCHIVE_OK;
}

void unpack_archive(const std::string& path, ArchiveTarget& target, const std::optional<ArchiveOwner>& chown) {
  base::Fd fd = base::open_fd(path, O_RDONLY | O_NOFOLLOW);
  Unpacker(target, chown).run_archive(fd.get());
}

}  // namespace builder::image
