// Writing layers the way BuildKit's overlayfs differ does (moby/buildkit
// util/overlay.Changes feeding containerd's archive.ChangeWriter): walk the upper dir in
// lexical order; a whiteout is a deletion if the layers below have the name; an entry
// the layers below hold unchanged is not written, but every directory above a written
// entry is; an opaque directory becomes the difference between its upper content and
// what the layers below had there. Headers are Go's (tar_writer.h), compressed into the
// blob store (tar_io.h's LayerCompressor, on other cores while the walk goes on) while
// the plain stream is hashed for the diff id.
#include "image/layer.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <vector>

#include "base/error.h"
#include "base/fd.h"
#include "base/fs.h"
#include "cache/merged_fs.h"
#include "image/tar_io.h"
#include "image/tar_writer.h"

namespace builder::image {

using detail::check_archive;

namespace {

constexpr const char* kWhiteoutPrefix = ".wh.";
constexpr const char* kOpaqueMarker = ".wh..wh..opq";
/// The only extended attribute a layer carries, as in containerd's ChangeWriter: others
/// (user.*, security.selinux, trusted.*) describe the host, not the image.
constexpr const char* kCapability = "security.capability";

/// An empty tar (two zero records) as Go's compress/gzip writes it: the 32-byte layer
/// sha256:4f4fb700ef54461cfa02571ae0db9a0dc1e0cdb5577484a6d75e68dc38e8acc1 that BuildKit
/// and Docker images carry for a step that changed nothing.
constexpr unsigned char kEmptyLayerGzip[32] = {0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x62,
                                               0x18, 0x05, 0xa3, 0x60, 0x14, 0x8c, 0x58, 0x00, 0x08, 0x00, 0x00,
                                               0xff, 0xff, 0x2e, 0xaf, 0xb5, 0xef, 0x00, 0x04, 0x00, 0x00};

struct CompressSink : detail::TarSink {
  explicit CompressSink(detail::LayerCompressor& c) : c_(c) {}
  void write(const void* data, size_t n) override { c_.write(data, n); }
  detail::LayerCompressor& c_;
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

/// The value of an xattr; empty when absent (Go's bytes.Equal makes both the same).
std::string get_xattr(const std::string& path, const char* name) {
  for (;;) {
    ssize_t n = ::lgetxattr(path.c_str(), name, nullptr, 0);
    if (n < 0) {
      if (errno == ENODATA || errno == ENOTSUP) return {};
      throw base::SysError(errno, std::string("lgetxattr ") + name, path);
    }
    std::string v(static_cast<size_t>(n), '\0');
    ssize_t m = ::lgetxattr(path.c_str(), name, v.data(), v.size());
    if (m < 0 && errno == ERANGE) continue;  // grew in between
    if (m < 0) throw base::SysError(errno, std::string("lgetxattr ") + name, path);
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
    if (n == 0) return {};
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
    return out;
  }
}

bool is_whiteout(const struct stat& st) { return S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0); }

/// What a layer needs from an entry's xattrs.
struct Attrs {
  std::string capability;
  bool opaque = false;  ///< an overlayfs opaque directory
};

/// One llistxattr for the common case of none. In an upper dir, a redirect or metacopy
/// xattr means the dir alone no longer describes the change (a renamed directory whose
/// content stayed below, a file whose data did): refused rather than written wrong.
Attrs read_attrs(const std::string& abs, const struct stat& st, bool overlay) {
  Attrs a;
  for (const auto& x : list_xattrs(abs)) {
    if (x == kCapability) {
      a.capability = get_xattr(abs, kCapability);
    } else if (overlay && (x == "trusted.overlay.opaque" || x == "user.overlay.opaque")) {
      a.opaque = S_ISDIR(st.st_mode) && get_xattr(abs, x.c_str()) == "y";
    } else if (overlay && (x == "trusted.overlay.redirect" || x == "trusted.overlay.metacopy" ||
                           x == "user.overlay.redirect" || x == "user.overlay.metacopy")) {
      throw base::Error("cannot export `" + abs + "` as a layer: it carries overlayfs " + x +
                        " (mount overlays with redirect_dir=off,metacopy=off)");
    }
  }
  return a;
}

bool same_content(const std::string& a, const std::string& b) {
  base::Fd fa = base::open_fd(a, O_RDONLY | O_NOFOLLOW);
  base::Fd fb = base::open_fd(b, O_RDONLY | O_NOFOLLOW);
  std::vector<char> ba(64 * 1024), bb(64 * 1024);
  auto fill = [](int fd, std::vector<char>& buf, const std::string& path) {
    size_t got = 0;
    while (got < buf.size()) {
      ssize_t n = ::read(fd, buf.data() + got, buf.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw base::SysError(errno, "read", path);
      if (n == 0) break;
      got += static_cast<size_t>(n);
    }
    return got;
  };
  for (;;) {
    size_t na = fill(fa.get(), ba, a), nb = fill(fb.get(), bb, b);
    if (na != nb || std::memcmp(ba.data(), bb.data(), na) != 0) return false;
    if (na < ba.size()) return true;
  }
}

/// Whether the upper entry `u` (at `abs`) leaves `below` as it was: continuity's
/// sameFile / BuildKit's sameDirent. Type, mode, owner, device and capability must match;
/// for non-directories also size and mtime, and where both mtimes lack nanoseconds (one
/// was unpacked from a tar) the symlink target or content. A directory's mtime is not
/// compared: a directory is written when something in it is.
bool same_entry(const cache::MergedFs::Entry& below, const std::string& abs, const struct stat& u,
                const std::string& capability) {
  const struct stat& b = below.st;
  if (b.st_mode != u.st_mode || b.st_uid != u.st_uid || b.st_gid != u.st_gid || b.st_rdev != u.st_rdev) return false;
  if (get_xattr(below.host_path, kCapability) != capability) return false;
  if (S_ISDIR(u.st_mode)) return true;
  if (b.st_size != u.st_size || b.st_mtim.tv_sec != u.st_mtim.tv_sec) return false;
  if (b.st_mtim.tv_nsec != 0 || u.st_mtim.tv_nsec != 0) return b.st_mtim.tv_nsec == u.st_mtim.tv_nsec;
  if (S_ISLNK(u.st_mode)) return base::read_link(below.host_path) == base::read_link(abs);
  if (u.st_size == 0 || !S_ISREG(u.st_mode)) return true;
  return same_content(below.host_path, abs);
}

/// Walks a directory into a tar writer.
class LayerWriter {
 public:
  /// `overlay`: `dir` is an overlayfs upper dir (whiteouts, opaque directories).
  /// `below`: the layers under it, or null when unknown: then every whiteout is
  /// written, opaque directories get a `.wh..wh..opq` marker and nothing is compared.
  LayerWriter(detail::TarWriter& tw, bool overlay, const cache::MergedFs* below)
      : tw_(tw), overlay_(overlay), below_(below) {}

  /// The upper dir `abs`, which is `rel` in the image ("" for the root).
  void walk(const std::string& abs, const std::string& rel) {
    for (const auto& name : sorted_names(abs)) {
      std::string child_abs = abs + "/" + name;
      std::string child_rel = rel.empty() ? name : rel + "/" + name;
      struct stat st;
      if (::lstat(child_abs.c_str(), &st) < 0) throw base::SysError(errno, "lstat", child_abs);
      if (overlay_ && is_whiteout(st)) {
        // A whiteout over nothing (the layers below lack the name) is not a change.
        if (!below_ || below_->lookup(child_rel)) whiteout(child_rel);
        continue;
      }
      Attrs attrs = read_attrs(child_abs, st, overlay_);
      std::optional<cache::MergedFs::Entry> old = below_ ? below_->lookup(child_rel) : std::nullopt;
      bool written = changed(old, child_abs, st, attrs.capability);
      if (written) add(child_abs, child_rel, st, attrs.capability);
      if (!S_ISDIR(st.st_mode)) continue;
      parents_.push_back(Parent{child_rel, st, attrs.capability, written});
      if (attrs.opaque && below_ && old) {
        // An opaque directory hides what was below it: write the difference, as a
        // whiteout for each name below that the upper dir lacks (BuildKit never writes
        // `.wh..wh..opq`).
        diff(child_abs, child_rel, S_ISDIR(old->st.st_mode));
      } else {
        if (attrs.opaque && !below_) opaque_marker(child_rel);
        walk(child_abs, child_rel);
      }
      parents_.pop_back();
    }
  }

 private:
  /// A directory on the way down to the entry being walked.
  struct Parent {
    std::string rel;
    struct stat st;
    std::string capability;
    bool written;
  };

  /// An entry is written unless the layers below hold it unchanged. One with other
  /// names in this layer (st_nlink > 1) always is, so the hard link survives.
  /// TODO(image): BuildKit skips such an unchanged first name and writes the next as a
  /// plain file, so `ln /old /new` loses the link there; we keep it on purpose.
  static bool changed(const std::optional<cache::MergedFs::Entry>& old, const std::string& abs, const struct stat& st,
                      const std::string& capability) {
    if (!old) return true;
    if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) return true;
    return !same_entry(*old, abs, st, capability);
  }

  /// Inside an opaque directory: the upper dir `abs` (whiteouts invisible, as in
  /// BuildKit's upper view) against what the layers below have at `rel` (nothing unless
  /// `below_is_dir`), merged in name order like continuity's double walk.
  void diff(const std::string& abs, const std::string& rel, bool below_is_dir) {
    std::vector<std::pair<std::string, struct stat>> upper;
    for (auto& name : sorted_names(abs)) {
      struct stat st;
      std::string p = abs + "/" + name;
      if (::lstat(p.c_str(), &st) < 0) throw base::SysError(errno, "lstat", p);
      if (!is_whiteout(st)) upper.emplace_back(std::move(name), st);
    }
    std::vector<std::pair<std::string, cache::MergedFs::Entry>> old;
    if (below_is_dir) old = below_->entries(rel);
    size_t i = 0, j = 0;
    while (i < upper.size() || j < old.size()) {
      int cmp = i == upper.size() ? 1 : j == old.size() ? -1 : upper[i].first.compare(old[j].first);
      const std::string& name = cmp <= 0 ? upper[i].first : old[j].first;
      std::string child_rel = rel + "/" + name;
      if (cmp > 0) {  // only below: deleted
        whiteout(child_rel);
        ++j;
        continue;
      }
      std::string child_abs = abs + "/" + name;
      const struct stat& st = upper[i].second;
      Attrs attrs = read_attrs(child_abs, st, overlay_);
      std::optional<cache::MergedFs::Entry> prev;
      if (cmp == 0) prev = old[j].second;
      bool written = changed(prev, child_abs, st, attrs.capability);
      if (written) add(child_abs, child_rel, st, attrs.capability);
      if (S_ISDIR(st.st_mode)) {
        parents_.push_back(Parent{child_rel, st, attrs.capability, written});
        diff(child_abs, child_rel, prev && S_ISDIR(prev->st.st_mode));
        parents_.pop_back();
      }
      ++i;
      if (cmp == 0) ++j;
    }
  }

  detail::TarHeader header(const std::string& rel, const struct stat& st, const std::string& capability) {
    detail::TarHeader h;
    h.name = S_ISDIR(st.st_mode) ? rel + "/" : rel;
    h.mode = st.st_mode & 07777;
    h.uid = st.st_uid;
    h.gid = st.st_gid;
    // Whole seconds (Go's Truncate: down, also before 1970), no atime or ctime.
    h.mtime = st.st_mtim.tv_sec;
    if (!capability.empty()) h.xattrs.emplace_back(kCapability, capability);
    return h;
  }

  /// Writes the directories above the next entry that are not written yet, as
  /// containerd's includeParents does.
  void write_parents() {
    for (auto& p : parents_) {
      if (p.written) continue;
      p.written = true;
      auto h = header(p.rel, p.st, p.capability);
      h.typeflag = '5';
      tw_.write_header(h);
    }
  }

  void add(const std::string& abs, const std::string& rel, const struct stat& st, const std::string& capability) {
    if (S_ISSOCK(st.st_mode)) return;  // not archivable; containerd skips them too
    auto h = header(rel, st, capability);
    switch (st.st_mode & S_IFMT) {
      case S_IFDIR: h.typeflag = '5'; break;
      case S_IFREG:
        h.typeflag = '0';
        h.size = st.st_size;
        break;
      case S_IFLNK:
        h.typeflag = '2';
        h.linkname = base::read_link(abs);
        break;
      case S_IFCHR: h.typeflag = '3'; break;
      case S_IFBLK: h.typeflag = '4'; break;
      case S_IFIFO: h.typeflag = '6'; break;
      default: return;
    }
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      h.devmajor = major(st.st_rdev);
      h.devminor = minor(st.st_rdev);
    }
    if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
      auto [it, first] = links_.emplace(std::make_pair(st.st_dev, st.st_ino), rel);
      if (!first) {
        h.typeflag = '1';
        h.linkname = it->second;
        h.size = 0;
      }
    }
    write_parents();
    tw_.write_header(h);
    if (h.typeflag == '0' && h.size > 0) copy_data(abs, h.size);
  }

  /// containerd's whiteout: a ustar regular file, mode 0, owner 0:0, mtime 0.
  void write_marker(const std::string& name) {
    write_parents();
    detail::TarHeader h;
    h.name = name;
    h.format = detail::TarHeader::Format::kAuto;
    tw_.write_header(h);
  }

  void whiteout(const std::string& rel) {
    auto slash = rel.rfind('/');
    std::string dir = slash == std::string::npos ? "" : rel.substr(0, slash + 1);
    write_marker(dir + kWhiteoutPrefix + rel.substr(dir.size()));
  }

  void opaque_marker(const std::string& rel_dir) { write_marker(rel_dir + "/" + kOpaqueMarker); }

  void copy_data(const std::string& abs, int64_t size) {
    base::Fd fd = base::open_fd(abs, O_RDONLY | O_NOFOLLOW);
    std::vector<char> buf(256 * 1024);
    int64_t left = size;
    while (left > 0) {
      ssize_t n = ::read(fd.get(), buf.data(), static_cast<size_t>(std::min<int64_t>(left, buf.size())));
      if (n < 0) {
        if (errno == EINTR) continue;
        throw base::SysError(errno, "read", abs);
      }
      if (n == 0) throw base::Error("cannot export `" + abs + "` as a layer: it shrank while being read");
      tw_.write_data(buf.data(), static_cast<size_t>(n));
      left -= n;
    }
  }

  detail::TarWriter& tw_;
  bool overlay_;
  const cache::MergedFs* below_;
  std::vector<Parent> parents_;  // directories from the root down to the entry being walked
  std::map<std::pair<dev_t, ino_t>, std::string> links_;
};

LayerBlob write_tree(const std::string& dir, const std::vector<std::string>* lower_dirs, cache::BlobStore& blobs,
                     bool overlay, const LayerOptions& opts) {
  std::string media_type = layer_media_type(opts.compression);  // validates the spec
  struct stat st;
  if (::stat(dir.c_str(), &st) < 0) throw base::SysError(errno, "stat", dir);
  if (!S_ISDIR(st.st_mode)) throw base::Error("cannot export `" + dir + "` as a layer: not a directory");
  std::optional<cache::MergedFs> below;
  if (lower_dirs) below.emplace(*lower_dirs);

  auto writer = blobs.ingest();
  detail::LayerCompressor comp(writer, opts.compression.type, effective_level(opts.compression));
  CompressSink sink(comp);
  detail::TarWriter tw(sink);
  tw.set_max_mtime(opts.max_mtime);
  LayerWriter(tw, overlay, below ? &*below : nullptr).walk(dir, "");
  LayerBlob out;
  out.media_type = media_type;
  out.empty = !tw.wrote_any();
  if (out.empty && opts.compression.type == Compression::Gzip) {
    // Nothing reached the compressor yet: store the well-known empty layer instead of
    // libdeflate's rendering of the same 1024 zero bytes.
    writer.write(kEmptyLayerGzip, sizeof kEmptyLayerGzip);
    out.diff_id = base::Digest::of(std::string(1024, '\0'));
  } else {
    tw.close();
    out.diff_id = comp.finish();
  }
  out.plain_size = out.empty && opts.compression.type == Compression::Gzip ? 1024 : comp.plain_size();
  out.size = writer.size();
  out.digest = writer.commit();
  return out;
}

}  // namespace

LayerBlob write_layer(const std::string& upper_dir, const std::vector<std::string>& lower_dirs,
                      cache::BlobStore& blobs, const LayerOptions& opts) {
  return write_tree(upper_dir, &lower_dirs, blobs, true, opts);
}

LayerBlob write_layer(const std::string& upper_dir, cache::BlobStore& blobs, const LayerOptions& opts) {
  return write_tree(upper_dir, nullptr, blobs, true, opts);
}

LayerBlob write_dir_layer(const std::string& dir, cache::BlobStore& blobs, const LayerOptions& opts) {
  return write_tree(dir, nullptr, blobs, false, opts);
}

namespace {
void tee_to_compressor(void* ctx, const void* data, size_t n) {
  static_cast<detail::LayerCompressor*>(ctx)->write(data, n);
}
}  // namespace

LayerBlob ingest_layer(int fd, cache::BlobStore& blobs, const LayerOptions& opts) {
  detail::Utf8Locale locale;
  std::string media_type = layer_media_type(opts.compression);  // validates the spec
  auto writer = blobs.ingest();
  detail::LayerCompressor comp(writer, opts.compression.type, effective_level(opts.compression));
  detail::PlainReader src(fd);
  LayerBlob out;
  out.media_type = media_type;
  if (opts.max_mtime) {
    // rewrite-timestamp: the headers are re-encoded with the times clamped.
    CompressSink sink(comp);
    detail::TarWriter tw(sink);
    tw.set_max_mtime(opts.max_mtime);
    out.empty = !detail::reencode_tar(src, tw);
    tw.close();
    src.finish();
    out.diff_id = comp.finish();
    out.plain_size = comp.plain_size();
    out.size = writer.size();
    out.digest = writer.commit();
    return out;
  }
  src.set_tee(tee_to_compressor, &comp);

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
  out.diff_id = src.finish();
  comp.finish();
  out.plain_size = comp.plain_size();
  out.empty = !any;
  out.size = writer.size();
  out.digest = writer.commit();
  return out;
}

}  // namespace builder::image
