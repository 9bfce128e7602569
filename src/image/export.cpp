// Exporters behind `--output`: image manifests in OCI or Docker media types, OCI layout
// archives / directories, `docker load` archives, and the final filesystem as a
// directory or a tar. Files appear whole or not at all: everything is written under
// `<dest>.tmp-<pid>-<hex>` beside the destination and renamed into place, and leftovers
// of a killed builder (their pid gone) are removed by the next export to that dest.
#include "image/export.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>

#include "base/error.h"
#include "base/fd.h"
#include "base/fs.h"
#include "base/strings.h"
#include "base/temp_dir.h"
#include "image/layer.h"
#include "image/tar_io.h"

namespace builder::image {

namespace {

constexpr const char* kOciLayout = R"({"imageLayoutVersion":"1.0.0"})";
constexpr const char* kAnnotationRefName = "org.opencontainers.image.ref.name";
constexpr const char* kAnnotationImageName = "io.containerd.image.name";

std::string blob_path(const base::Digest& d) { return "blobs/sha256/" + std::string(d.hex()); }

std::string strip_trailing_slashes(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

std::string parent_of(const std::string& p) {
  auto s = p.rfind('/');
  if (s == std::string::npos) return ".";
  return s == 0 ? "/" : p.substr(0, s);
}

std::string base_name(const std::string& p) {
  auto s = p.rfind('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

/// The prefix of every temporary name this process uses beside `dest`.
std::string temp_prefix(const std::string& dest) { return base_name(dest) + ".tmp-" + std::to_string(::getpid()) + "-"; }

bool is_dir(const std::string& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// ---------------------------------------------------------------- tar output

struct FdSink : detail::TarSink {
  explicit FdSink(int fd) : fd(fd) {}
  void write(const void* data, size_t n) override {
    base::write_all(fd, std::string_view(static_cast<const char*>(data), n));
  }
  int fd;
};

/// A tar going to a file (temporary name, renamed by commit()) or to stdout ("-").
class TarOut {
 public:
  explicit TarOut(const std::string& dest) : dest_(dest) {
    if (dest_ == "-") {
      if (::isatty(STDOUT_FILENO)) throw base::Error("refusing to write a tar archive to a terminal: redirect stdout or set dest=FILE");
      sink_.fd = STDOUT_FILENO;
    } else {
      if (is_dir(dest_)) throw base::Error("cannot write an archive to `" + dest_ + "`: it is a directory");
      remove_stale_export_temps(dest_);
      base::make_dirs(parent_of(dest_));
      tmp_ = base::path_join(parent_of(dest_), temp_prefix(dest_) + base::random_hex(6));
      fd_ = base::open_fd(tmp_, O_WRONLY | O_CREAT | O_EXCL, 0644);
      sink_.fd = fd_.get();
    }
    try {
      a_ = detail::new_tar_writer(sink_);
    } catch (...) {
      if (!tmp_.empty()) ::unlink(tmp_.c_str());
      throw;
    }
  }
  ~TarOut() {
    if (!committed_ && !tmp_.empty()) ::unlink(tmp_.c_str());
  }
  TarOut(const TarOut&) = delete;
  TarOut& operator=(const TarOut&) = delete;

  struct archive* archive() { return a_.get(); }

  void dir(const std::string& name) { header(name + "/", AE_IFDIR, 0755, 0); }

  void file(const std::string& name, std::string_view data) {
    header(name, AE_IFREG, 0644, data.size());
    write(data.data(), data.size());
  }

  /// Copies a blob once (images share layers).
  void blob(cache::BlobStore& blobs, const base::Digest& d) {
    if (!written_.insert(d).second) return;
    base::Fd in = blobs.open(d);
    struct stat st;
    base::check_sys(::fstat(in.get(), &st), "fstat", blobs.path(d));
    header(blob_path(d), AE_IFREG, 0644, static_cast<uint64_t>(st.st_size));
    copy_fd(in.get(), blobs.path(d));
  }

  void copy_fd(int fd, const std::string& what) {
    std::vector<char> buf(256 * 1024);
    for (;;) {
      ssize_t n = ::read(fd, buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw base::SysError(errno, "read", what);
      if (n == 0) break;
      write(buf.data(), static_cast<size_t>(n));
    }
  }

  void write_entry(struct archive_entry* e) { check(archive_write_header(a_.get(), e)); }

  void write(const void* data, size_t n) {
    la_ssize_t w = archive_write_data(a_.get(), data, n);
    if (w < 0) check(static_cast<int>(w));
  }

  void commit() {
    check(archive_write_close(a_.get()));
    if (tmp_.empty()) return;
    base::check_sys(::fsync(fd_.get()), "fsync", tmp_);
    fd_.reset();
    base::check_sys(::rename(tmp_.c_str(), dest_.c_str()), "rename", dest_);
    committed_ = true;
    base::fsync_dir(parent_of(dest_));
  }

 private:
  void check(int rc) {
    sink_.rethrow_if_failed();
    detail::check_archive(a_.get(), rc, "writing `" + dest_ + "`");
  }

  void header(const std::string& name, unsigned type, int perm, uint64_t size) {
    detail::Entry e(archive_entry_new());
    archive_entry_copy_pathname(e.get(), name.c_str());
    archive_entry_set_filetype(e.get(), type);
    archive_entry_set_perm(e.get(), perm);
    archive_entry_set_size(e.get(), static_cast<la_int64_t>(size));
    archive_entry_set_mtime(e.get(), 0, 0);  // reproducible archives
    write_entry(e.get());
  }

  std::string dest_, tmp_;
  base::Fd fd_;
  FdSink sink_{-1};
  detail::ArchiveWriter a_;
  std::set<base::Digest> written_;
  bool committed_ = false;
};

// ---------------------------------------------------------------- layouts

std::string manifest_media_type(const Image& img) {
  const auto& m = img.manifest;
  if (m.contains("mediaType") && m["mediaType"].is_string()) return m["mediaType"].get<std::string>();
  return kMediaTypeManifest;
}

/// index.json: one descriptor per name (annotated as BuildKit and Docker 25 write them:
/// the full name for containerd/docker, the tag alone for OCI tools), or one bare
/// descriptor for an image without names.
std::string index_json(ImageStore& images, const std::vector<NamedImage>& imgs) {
  base::Json index = base::Json::object();
  index["schemaVersion"] = 2;
  index["mediaType"] = kMediaTypeIndex;
  index["manifests"] = base::Json::array();
  for (const auto& ni : imgs) {
    base::Json d = base::Json::object();
    d["mediaType"] = manifest_media_type(ni.image);
    d["digest"] = ni.image.manifest_digest.str();
    d["size"] = images.store().blobs().size(ni.image.manifest_digest);
    if (ni.names.empty()) index["manifests"].push_back(d);
    for (const auto& name : ni.names) {
      base::Json n = d;
      n["annotations"] = {{kAnnotationImageName, full_ref(name)}, {kAnnotationRefName, split_ref(name).second}};
      index["manifests"].push_back(std::move(n));
    }
  }
  return index.dump();
}

/// manifest.json (what `docker load` reads) and, for the docker format, `repositories`.
std::pair<std::string, std::string> docker_manifest_json(const std::vector<NamedImage>& imgs) {
  base::Json manifest = base::Json::array();
  base::Json repositories = base::Json::object();
  std::map<base::Digest, size_t> entry_of;
  for (const auto& ni : imgs) {
    auto [it, fresh] = entry_of.emplace(ni.image.config_digest, manifest.size());
    if (fresh) {
      base::Json e = base::Json::object();
      e["Config"] = blob_path(ni.image.config_digest);
      e["RepoTags"] = base::Json::array();
      e["Layers"] = base::Json::array();
      for (const auto& l : ni.image.layers) e["Layers"].push_back(blob_path(l.digest));
      manifest.push_back(std::move(e));
    }
    auto& tags = manifest[it->second]["RepoTags"];
    for (const auto& name : ni.names) {
      if (std::find(tags.begin(), tags.end(), name) == tags.end()) tags.push_back(name);
      if (!ni.image.layers.empty()) {
        auto [repo, tag] = split_ref(name);
        repositories[repo][tag] = std::string(ni.image.layers.back().digest.hex());
      }
    }
  }
  return {manifest.dump(), repositories.empty() ? std::string() : repositories.dump()};
}

std::vector<base::Digest> blobs_of(const Image& img) {
  std::vector<base::Digest> out;
  for (const auto& l : img.layers) out.push_back(l.digest);
  out.push_back(img.config_digest);
  out.push_back(img.manifest_digest);
  return out;
}

// ---------------------------------------------------------------- directories

/// Moves the tree `src` into `dst` (an existing directory): entries `dst` lacks are
/// renamed in, a directory on both sides is merged, anything else replaces what `dst`
/// has (a file by rename, so readers never see half of it). Directories take `src`'s
/// mode, owner and times.
void merge_into(const std::string& src, const std::string& dst) {
  std::vector<std::string> names;
  {
    DIR* d = ::opendir(src.c_str());
    if (!d) throw base::SysError(errno, "opendir", src);
    while (auto* ent = ::readdir(d)) {
      std::string n = ent->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    ::closedir(d);
  }
  std::sort(names.begin(), names.end());
  for (const auto& n : names) {
    std::string s = src + "/" + n, t = dst + "/" + n;
    struct stat ss, ts;
    base::check_sys(::lstat(s.c_str(), &ss), "lstat", s);
    bool exists = ::lstat(t.c_str(), &ts) == 0;
    if (exists && S_ISDIR(ss.st_mode) && S_ISDIR(ts.st_mode)) {
      merge_into(s, t);
      continue;
    }
    if (exists && S_ISDIR(ts.st_mode)) base::remove_all(t);  // rename cannot replace a directory by a file
    if (exists && !S_ISDIR(ts.st_mode) && S_ISDIR(ss.st_mode)) base::check_sys(::unlink(t.c_str()), "unlink", t);
    base::check_sys(::rename(s.c_str(), t.c_str()), "rename", t);
  }
  struct stat ss;
  base::check_sys(::lstat(src.c_str(), &ss), "lstat", src);
  if (::lchown(dst.c_str(), ss.st_uid, ss.st_gid) < 0 && errno != EPERM) throw base::SysError(errno, "lchown", dst);
  base::check_sys(::chmod(dst.c_str(), ss.st_mode & 07777), "chmod", dst);
  struct timespec times[2] = {ss.st_atim, ss.st_mtim};
  base::check_sys(::utimensat(AT_FDCWD, dst.c_str(), times, AT_SYMLINK_NOFOLLOW), "utimensat", dst);
}

/// Puts the finished tree `tmp` (beside `dest`) at `dest`: a rename when `dest` does not
/// exist, else a merge. `tmp` is gone afterwards either way.
void move_into_place(const std::string& tmp, const std::string& dest) {
  struct stat st;
  if (::lstat(dest.c_str(), &st) < 0) {
    if (errno != ENOENT) throw base::SysError(errno, "lstat", dest);
    base::check_sys(::rename(tmp.c_str(), dest.c_str()), "rename", dest);
  } else {
    if (!S_ISDIR(st.st_mode)) throw base::Error("cannot export a directory to `" + dest + "`: it exists and is not a directory");
    merge_into(tmp, dest);
    base::remove_all(tmp);
  }
  base::fsync_dir(parent_of(dest));
}

/// Sets the mtime (and atime) of every entry under `dir` (itself included) to `t`.
void set_tree_times(const std::string& dir, int64_t t) {
  struct timespec times[2] = {{static_cast<time_t>(t), 0}, {static_cast<time_t>(t), 0}};
  std::vector<std::string> dirs;
  // Children first: changing a child never touches its directory's mtime, but walking
  // in that order keeps this independent of it.
  std::function<void(const std::string&)> walk = [&](const std::string& d) {
    DIR* h = ::opendir(d.c_str());
    if (!h) throw base::SysError(errno, "opendir", d);
    std::vector<std::pair<std::string, bool>> ents;
    while (auto* ent = ::readdir(h)) {
      std::string n = ent->d_name;
      if (n == "." || n == "..") continue;
      ents.push_back({d + "/" + n, ent->d_type == DT_DIR});
    }
    ::closedir(h);
    for (const auto& [p, sub] : ents) {
      if (sub) walk(p);
      base::check_sys(::utimensat(AT_FDCWD, p.c_str(), times, AT_SYMLINK_NOFOLLOW), "utimensat", p);
    }
  };
  walk(dir);
  base::check_sys(::utimensat(AT_FDCWD, dir.c_str(), times, AT_SYMLINK_NOFOLLOW), "utimensat", dir);
}

void flatten(ImageStore& images, const std::vector<Descriptor>& layers, const std::string& dir) {
  for (const auto& l : layers) {
    base::Fd fd = images.store().blobs().open(l.digest);
    try {
      extract_layer(fd.get(), dir);
    } catch (base::Error& e) {
      throw e.add_context("while unpacking layer " + l.digest.str());
    }
  }
}

/// One tar entry for `path` (named `name` in the archive) from lstat: numeric owners,
/// the mode's permission bits with setuid/setgid/sticky, whole-second mtime (or `epoch`),
/// every xattr, a hard link to the first name of an inode seen before.
void write_tree_entry(TarOut& out, const std::string& path, const std::string& name, std::optional<int64_t> epoch,
                      std::map<std::pair<dev_t, ino_t>, std::string>& links) {
  struct stat st;
  base::check_sys(::lstat(path.c_str(), &st), "lstat", path);
  detail::Entry e(archive_entry_new());
  archive_entry_copy_pathname(e.get(), (S_ISDIR(st.st_mode) ? name + "/" : name).c_str());
  archive_entry_set_perm(e.get(), st.st_mode & 07777);
  archive_entry_set_uid(e.get(), st.st_uid);
  archive_entry_set_gid(e.get(), st.st_gid);
  archive_entry_set_mtime(e.get(), epoch ? *epoch : st.st_mtim.tv_sec, 0);
  bool data = false;
  if (S_ISREG(st.st_mode) && st.st_nlink > 1) {
    auto [it, fresh] = links.emplace(std::make_pair(st.st_dev, st.st_ino), name);
    if (!fresh) {
      archive_entry_set_filetype(e.get(), AE_IFREG);
      archive_entry_copy_hardlink(e.get(), it->second.c_str());
      archive_entry_set_size(e.get(), 0);
      out.write_entry(e.get());
      return;
    }
  }
  if (S_ISREG(st.st_mode)) {
    archive_entry_set_filetype(e.get(), AE_IFREG);
    archive_entry_set_size(e.get(), st.st_size);
    data = true;
  } else if (S_ISDIR(st.st_mode)) {
    archive_entry_set_filetype(e.get(), AE_IFDIR);
  } else if (S_ISLNK(st.st_mode)) {
    archive_entry_set_filetype(e.get(), AE_IFLNK);
    archive_entry_copy_symlink(e.get(), base::read_link(path).c_str());
  } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
    archive_entry_set_filetype(e.get(), S_ISCHR(st.st_mode) ? AE_IFCHR : AE_IFBLK);
    archive_entry_set_rdevmajor(e.get(), major(st.st_rdev));
    archive_entry_set_rdevminor(e.get(), minor(st.st_rdev));
  } else if (S_ISFIFO(st.st_mode)) {
    archive_entry_set_filetype(e.get(), AE_IFIFO);
  } else {
    return;  // sockets: not in images either
  }
  // xattrs, sorted by name so the stream is deterministic.
  ssize_t len = ::llistxattr(path.c_str(), nullptr, 0);
  if (len > 0) {
    std::string list(static_cast<size_t>(len), '\0');
    len = ::llistxattr(path.c_str(), list.data(), list.size());
    std::vector<std::string> names;
    for (size_t i = 0; len > 0 && i < static_cast<size_t>(len);) {
      std::string n(list.c_str() + i);
      i += n.size() + 1;
      if (!n.empty()) names.push_back(n);
    }
    std::sort(names.begin(), names.end());
    for (const auto& n : names) {
      ssize_t vlen = ::lgetxattr(path.c_str(), n.c_str(), nullptr, 0);
      if (vlen < 0) continue;
      std::string v(static_cast<size_t>(vlen), '\0');
      vlen = ::lgetxattr(path.c_str(), n.c_str(), v.data(), v.size());
      if (vlen < 0) continue;
      archive_entry_xattr_add_entry(e.get(), n.c_str(), v.data(), static_cast<size_t>(vlen));
    }
  }
  out.write_entry(e.get());
  if (data) {
    base::Fd fd = base::open_fd(path, O_RDONLY);
    out.copy_fd(fd.get(), path);
  }
}

void write_tree(TarOut& out, const std::string& root, const std::string& rel, std::optional<int64_t> epoch,
                std::map<std::pair<dev_t, ino_t>, std::string>& links) {
  std::string dir = rel.empty() ? root : root + "/" + rel;
  std::vector<std::string> names;
  DIR* h = ::opendir(dir.c_str());
  if (!h) throw base::SysError(errno, "opendir", dir);
  while (auto* ent = ::readdir(h)) {
    std::string n = ent->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  ::closedir(h);
  std::sort(names.begin(), names.end());
  for (const auto& n : names) {
    std::string r = rel.empty() ? n : rel + "/" + n;
    write_tree_entry(out, root + "/" + r, r, epoch, links);
    if (is_dir(root + "/" + r)) write_tree(out, root, r, epoch, links);
  }
}

}  // namespace

Image write_image_manifest(ImageStore& images, const base::Json& config, const std::vector<Descriptor>& layers,
                           bool oci_media_types) {
  auto& blobs = images.store().blobs();
  std::string cfg = config.dump();
  Descriptor c{oci_media_types ? kMediaTypeConfig : kDockerMediaTypeConfig, blobs.put(cfg), cfg.size()};
  base::Digest manifest;
  if (oci_media_types) {
    manifest = images.write_manifest(c, layers);
  } else {
    auto desc = [](const Descriptor& d) {
      base::Json j = base::Json::object();
      j["mediaType"] = d.media_type;
      j["size"] = d.size;
      j["digest"] = d.digest.str();
      return j;
    };
    // Docker's own key order (distribution's schema2 struct).
    base::Json m = base::Json::object();
    m["schemaVersion"] = 2;
    m["mediaType"] = kDockerMediaTypeManifest;
    m["config"] = desc(c);
    m["layers"] = base::Json::array();
    for (const auto& l : layers) m["layers"].push_back(desc(l));
    manifest = blobs.put(m.dump());
  }
  return images.load(manifest);
}

void write_image_archive(ImageStore& images, const std::vector<NamedImage>& imgs, ArchiveFormat format,
                         const std::string& dest) {
  if (imgs.empty()) throw base::Error("no images to export");
  auto& blobs = images.store().blobs();
  TarOut out(dest == "-" ? dest : strip_trailing_slashes(dest));
  out.dir("blobs");
  out.dir("blobs/sha256");
  for (const auto& ni : imgs)
    for (const auto& d : blobs_of(ni.image)) out.blob(blobs, d);
  out.file("oci-layout", kOciLayout);
  out.file("index.json", index_json(images, imgs));
  auto [manifest, repositories] = docker_manifest_json(imgs);
  out.file("manifest.json", manifest);
  if (format == ArchiveFormat::Docker && !repositories.empty()) out.file("repositories", repositories);
  out.commit();
}

void write_oci_layout_dir(ImageStore& images, const std::vector<NamedImage>& imgs, const std::string& dir_in) {
  if (imgs.empty()) throw base::Error("no images to export");
  std::string dir = strip_trailing_slashes(dir_in);
  struct stat st;
  if (::lstat(dir.c_str(), &st) == 0 && !S_ISDIR(st.st_mode))
    throw base::Error("cannot write an OCI layout to `" + dir + "`: it exists and is not a directory");
  remove_stale_export_temps(dir);
  base::make_dirs(parent_of(dir));
  base::TempDir tmp(parent_of(dir), temp_prefix(dir));
  auto& blobs = images.store().blobs();
  base::make_dirs(tmp.path() + "/blobs/sha256");
  std::set<base::Digest> done;
  for (const auto& ni : imgs)
    for (const auto& d : blobs_of(ni.image)) {
      if (!done.insert(d).second) continue;
      std::string to = tmp.path() + "/" + blob_path(d);
      // A hard link costs nothing when the root is on the same filesystem; else a copy.
      if (::link(blobs.path(d).c_str(), to.c_str()) == 0) continue;
      base::Fd in = blobs.open(d);
      base::Fd o = base::open_fd(to, O_WRONLY | O_CREAT | O_EXCL, 0644);
      std::vector<char> buf(256 * 1024);
      for (;;) {
        ssize_t n = ::read(in.get(), buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw base::SysError(errno, "read", blobs.path(d));
        if (n == 0) break;
        base::write_all(o.get(), std::string_view(buf.data(), static_cast<size_t>(n)));
      }
      base::check_sys(::fsync(o.get()), "fsync", to);
    }
  base::write_file_atomic(tmp.path() + "/oci-layout", kOciLayout);
  base::write_file_atomic(tmp.path() + "/index.json", index_json(images, imgs));
  move_into_place(tmp.path(), dir);
}

void export_rootfs_dir(ImageStore& images, const std::vector<Descriptor>& layers, const std::string& dest_in,
                       std::optional<int64_t> epoch, const std::string& /*scratch_dir*/) {
  std::string dest = strip_trailing_slashes(dest_in);
  struct stat st;
  if (::lstat(dest.c_str(), &st) == 0 && !S_ISDIR(st.st_mode))
    throw base::Error("cannot export a directory to `" + dest + "`: it exists and is not a directory");
  remove_stale_export_temps(dest);
  base::make_dirs(parent_of(dest));
  // Beside dest, so the final step is a rename on one filesystem.
  base::TempDir tmp(parent_of(dest), temp_prefix(dest));
  base::check_sys(::chmod(tmp.path().c_str(), 0755), "chmod", tmp.path());
  flatten(images, layers, tmp.path());
  if (epoch) set_tree_times(tmp.path(), *epoch);
  move_into_place(tmp.path(), dest);
}

void export_rootfs_tar(ImageStore& images, const std::vector<Descriptor>& layers, const std::string& dest,
                       std::optional<int64_t> epoch, const std::string& scratch_dir) {
  // The output is opened first: a bad dest fails before any unpacking.
  TarOut out(dest == "-" ? dest : strip_trailing_slashes(dest));
  base::TempDir tree(scratch_dir, "export-tar-");
  flatten(images, layers, tree.path());
  std::map<std::pair<dev_t, ino_t>, std::string> links;
  detail::Utf8Locale locale;
  write_tree(out, tree.path(), "", epoch, links);
  out.commit();
}

void remove_stale_export_temps(const std::string& dest_in) {
  std::string dest = strip_trailing_slashes(dest_in);
  std::string dir = parent_of(dest), prefix = base_name(dest) + ".tmp-";
  DIR* h = ::opendir(dir.c_str());
  if (!h) return;
  std::vector<std::string> stale;
  while (auto* ent = ::readdir(h)) {
    std::string n = ent->d_name;
    if (n.compare(0, prefix.size(), prefix) != 0) continue;
    // <dest>.tmp-<pid>-<suffix>: only a pid that no longer runs is a leftover.
    std::string rest = n.substr(prefix.size());
    auto dash = rest.find('-');
    if (dash == std::string::npos || dash == 0) continue;
    std::string pid_text = rest.substr(0, dash);
    if (!std::all_of(pid_text.begin(), pid_text.end(), [](char c) { return c >= '0' && c <= '9'; })) continue;
    pid_t pid = static_cast<pid_t>(std::stol(pid_text));
    if (pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH) continue;
    stale.push_back(dir + "/" + n);
  }
  ::closedir(h);
  for (const auto& p : stale) {
    try {
      base::remove_all(p);
    } catch (const base::Error&) {  // someone else's, or busy: left alone
    }
  }
}

}  // namespace builder::image
