#include "solver/ops/file_op.h"

#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <set>

#include "base/error.h"
#include "base/fd.h"
#include "base/file_mode.h"
#include "base/fs.h"
#include "base/strings.h"
#include "base/temp_dir.h"
#include "cache/path_filter.h"
#include "image/layer.h"

namespace builder::ops {

using cache::clean_rel;
using cache::MergedFs;

namespace {

std::string parent_of(const std::string& rel) {
  auto p = rel.rfind('/');
  return p == std::string::npos ? std::string() : rel.substr(0, p);
}
std::string base_of(const std::string& rel) {
  auto p = rel.rfind('/');
  return p == std::string::npos ? rel : rel.substr(p + 1);
}
std::string join_rel(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  return a + "/" + b;
}

void set_times(const std::string& path, const struct stat& st) {
  struct timespec ts[2] = {st.st_atim, st.st_mtim};
  base::check_sys(::utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW), "utimensat", path);
}

bool is_overlay_xattr(const std::string& name) {
  return name.rfind("trusted.overlay.", 0) == 0 || name.rfind("user.overlay.", 0) == 0;
}

/// Copies extended attributes but overlayfs' own. Like BuildKit, a failure to read or set
/// one (a file system without user xattrs, a symlink) is not an error.
/// `drop_caps`: leave security.capability behind, as a chown would clear it.
void copy_xattrs(const std::string& from, const std::string& to, bool drop_caps = false) {
  ssize_t n = ::llistxattr(from.c_str(), nullptr, 0);
  if (n <= 0) return;
  std::string names(static_cast<size_t>(n), '\0');
  n = ::llistxattr(from.c_str(), names.data(), names.size());
  if (n <= 0) return;
  for (size_t i = 0; i < static_cast<size_t>(n);) {
    std::string name(names.c_str() + i);
    i += name.size() + 1;
    if (name.empty() || is_overlay_xattr(name)) continue;
    if (drop_caps && name == "security.capability") continue;
    ssize_t m = ::lgetxattr(from.c_str(), name.c_str(), nullptr, 0);
    if (m < 0) continue;
    std::string value(static_cast<size_t>(m), '\0');
    m = ::lgetxattr(from.c_str(), name.c_str(), value.data(), value.size());
    if (m < 0) continue;
    ::lsetxattr(to.c_str(), name.c_str(), value.data(), static_cast<size_t>(m), 0);
  }
}

void copy_file_data(const std::string& from, const std::string& to, const struct stat& st) {
  base::Fd in = base::open_fd(from, O_RDONLY | O_NOFOLLOW);
  base::Fd out = base::open_fd(to, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
  off_t left = st.st_size;
  while (left > 0) {
    ssize_t n = ::copy_file_range(in.get(), nullptr, out.get(), nullptr, static_cast<size_t>(left), 0);
    if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP || errno == EPERM))
      n = ::sendfile(out.get(), in.get(), nullptr, static_cast<size_t>(left));
    if (n < 0) throw base::SysError(errno, "copy", from);
    if (n == 0) break;
    left -= n;
  }
}

/// The writable view: the new layer on top of the target's layers. Every change goes to
/// the upper layer; what it changes below is copied up first, as overlayfs would.
class Target {
 public:
  Target(std::string upper, const std::vector<std::string>& lowers)
      : upper_(std::move(upper)), merged_([&] {
          std::vector<std::string> l{upper_};
          l.insert(l.end(), lowers.begin(), lowers.end());
          return l;
        }()),
        lower_(lowers) {}

  const MergedFs& merged() const { return merged_; }
  std::optional<MergedFs::Entry> lookup(const std::string& rel) const { return merged_.lookup(rel); }
  std::string host(const std::string& rel) const { return rel.empty() ? upper_ : upper_ + "/" + rel; }

  /// Makes `rel`, a directory of the merged view, a directory of the upper layer, copied
  /// up with its metadata (and its parents with theirs).
  void copy_up(const std::string& rel) {
    if (rel.empty()) return;
    std::string h = host(rel);
    struct stat st;
    if (::lstat(h.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return;
    copy_up(parent_of(rel));
    auto below = lower_.lookup(rel);
    if (!below || !S_ISDIR(below->st.st_mode)) throw base::Error("copy up `/" + rel + "`: not a directory below");
    base::check_sys(::mkdir(h.c_str(), 0700), "mkdir", h);
    base::check_sys(::lchown(h.c_str(), below->st.st_uid, below->st.st_gid), "chown", h);
    base::check_sys(::chmod(h.c_str(), below->st.st_mode & 07777), "chmod", h);
    copy_xattrs(below->host_path, h);
    set_times(h, below->st);
  }

  /// Creates `rel`, absent from the merged view, as a new directory in the upper layer.
  void make_dir(const std::string& rel, mode_t mode, uid_t uid, gid_t gid) {
    copy_up(parent_of(rel));
    std::string h = host(rel);
    struct stat st;
    if (::lstat(h.c_str(), &st) == 0) base::remove_all(h);  // a whiteout in this layer
    base::check_sys(::mkdir(h.c_str(), 0700), "mkdir", h);
    // Whatever the upper layer hid at `rel` stays hidden under the new directory.
    if (lower_.lookup(rel)) ::lsetxattr(h.c_str(), "trusted.overlay.opaque", "y", 1, 0);
    base::check_sys(::lchown(h.c_str(), uid, gid), "chown", h);
    base::check_sys(::chmod(h.c_str(), mode), "chmod", h);
  }

  /// `mkdir -p` of the resolved path `rel` (os.MkdirAll in fsutil): missing directories
  /// get `mode` and the owner. Returns the first existing non-directory on the way (and
  /// creates nothing below it), or nullopt.
  std::optional<std::string> make_dirs(const std::string& rel, mode_t mode, uid_t uid, gid_t gid) {
    std::string cur;
    for (const auto& part : base::split(rel, '/')) {
      if (part.empty()) continue;
      cur = join_rel(cur, part);
      auto e = lookup(cur);
      if (!e) make_dir(cur, mode, uid, gid);
      else if (!S_ISDIR(e->st.st_mode)) return cur;
    }
    return std::nullopt;
  }

  /// Makes room in the upper layer for a new non-directory at `rel`.
  void prepare_entry(const std::string& rel) {
    copy_up(parent_of(rel));
    std::string h = host(rel);
    struct stat st;
    if (::lstat(h.c_str(), &st) == 0) base::remove_all(h);
  }

  /// Makes the non-directory `rel` of the merged view an entry of the upper layer (what
  /// overlayfs does before a hard link to it): content, owner, mode, xattrs and times.
  void copy_up_entry(const std::string& rel) {
    std::string h = host(rel);
    struct stat st;
    if (::lstat(h.c_str(), &st) == 0) return;
    auto below = lower_.lookup(rel);
    if (!below || S_ISDIR(below->st.st_mode)) throw base::Error("copy up `/" + rel + "`: not a file below");
    copy_up(parent_of(rel));
    const struct stat& bs = below->st;
    if (S_ISREG(bs.st_mode)) {
      copy_file_data(below->host_path, h, bs);
    } else if (S_ISLNK(bs.st_mode)) {
      base::check_sys(::symlink(base::read_link(below->host_path).c_str(), h.c_str()), "symlink", h);
    } else {
      base::check_sys(::mknod(h.c_str(), (bs.st_mode & S_IFMT) | 0600, bs.st_rdev), "mknod", h);
    }
    base::check_sys(::lchown(h.c_str(), bs.st_uid, bs.st_gid), "chown", h);
    if (!S_ISLNK(bs.st_mode)) base::check_sys(::chmod(h.c_str(), bs.st_mode & 07777), "chmod", h);
    copy_xattrs(below->host_path, h);
    set_times(h, bs);
  }

 private:
  std::string upper_;
  MergedFs merged_;
  MergedFs lower_;
};

/// One COPY source, as fsutil's copy.Copy: what `src_rel` leads to goes to `dst_rel`.
/// Hard links among the copied files are kept (within this source, as in BuildKit).
/// Below the source, include patterns select what is copied (a directory that does not
/// match is created only when something below it is copied) and exclude patterns skip.
class Copier {
 public:
  Copier(const graph::CopyAction& c, const MergedFs& src, Target& dst, const std::optional<Owner>& owner)
      : c_(c), src_(src), dst_(dst), owner_(owner) {
    if (!c.include_patterns.empty()) include_.emplace(c.include_patterns);
    if (!c.exclude_patterns.empty()) exclude_.emplace(c.exclude_patterns);
  }

  /// `top` is false below the copied directory: there existing directories take the
  /// source's metadata; the destination itself keeps its own, but takes the mtime.
  void copy(const std::string& src_rel, const MergedFs::Entry& e, const std::string& dst_rel, bool top) {
    copy_entry(src_rel, e, dst_rel, top, "");
  }

 private:
  struct PendingDir {
    std::string dst_rel;
    bool made = false;
  };

  void copy_entry(const std::string& src_rel, const MergedFs::Entry& e, const std::string& dst_rel, bool top,
                  const std::string& rel) {
    const struct stat& st = e.st;
    bool include = true;
    if (!rel.empty()) {
      if (include_) include = include_->excluded(rel);  // "excluded" there means "matched"
      if (exclude_ && exclude_->excluded(rel)) include = false;
      bool may_hold = include_ || (exclude_ && exclude_->dir_may_hold_included(rel));
      if (!include && (!S_ISDIR(st.st_mode) || !may_hold)) return;
    }
    if (S_ISDIR(st.st_mode)) {
      pending_.push_back(PendingDir{dst_rel});
      if (include) make_pending();
      for (const auto& [name, ce] : src_.entries(src_rel))
        copy_entry(join_rel(src_rel, name), ce, join_rel(dst_rel, name), false, join_rel(rel, name));
      bool made = pending_.back().made;
      bool created = made && created_.count(dst_rel);
      pending_.pop_back();
      // After the children, which touched its mtime.
      if (!made) return;
      std::string h = dst_.host(dst_rel);
      if (created || !top) apply_meta(h, e);
      else set_times(h, st);
      return;
    }
    make_pending();
    std::string h = dst_.host(dst_rel);
    if (created_.count(parent_of(dst_rel))) {
      // A directory this copy created hides everything below it: only the upper layer
      // can hold `dst_rel` (an earlier source of this copy wrote it), no merged lookup.
      struct stat ts;
      if (::lstat(h.c_str(), &ts) == 0) {
        if (S_ISDIR(ts.st_mode))
          throw base::Error("COPY failed: cannot replace to directory /" + dst_rel + " with file");
        base::remove_all(h);
      }
    } else {
      auto t = dst_.lookup(dst_rel);
      if (t && S_ISDIR(t->st.st_mode))
        throw base::Error("COPY failed: cannot replace to directory /" + dst_rel + " with file");
      dst_.prepare_entry(dst_rel);
    }
    switch (st.st_mode & S_IFMT) {
      case S_IFREG: {
        if (st.st_nlink > 1) {
          auto [it, fresh] = links_.emplace(std::make_pair(st.st_dev, st.st_ino), dst_rel);
          // Linked to its first copy, unless that is gone (overwritten by this copy).
          if (!fresh && ::link(dst_.host(it->second).c_str(), h.c_str()) == 0) break;
          it->second = dst_rel;
        }
        copy_file_data(e.host_path, h, st);
        break;
      }
      case S_IFLNK: {
        std::string target = base::read_link(e.host_path);
        base::check_sys(::symlink(target.c_str(), h.c_str()), "symlink", h);
        break;
      }
      case S_IFIFO:
      case S_IFCHR:
      case S_IFBLK:
        base::check_sys(::mknod(h.c_str(), (st.st_mode & S_IFMT) | 0600, st.st_rdev), "mknod", h);
        break;
      default: {
        // A socket becomes an empty file with its permissions, as fsutil copies one.
        base::Fd fd = base::open_fd(h, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
        break;
      }
    }
    apply_meta(h, e);
  }

  /// Creates (or copies up) the directories on the pending stack not made yet: those
  /// leading to something copied.
  void make_pending() {
    for (auto& p : pending_) {
      if (p.made) continue;
      auto t = dst_.lookup(p.dst_rel);
      if (!t) {
        dst_.make_dir(p.dst_rel, 0700, 0, 0);
        created_.insert(p.dst_rel);
      } else if (!S_ISDIR(t->st.st_mode)) {
        throw base::Error("COPY failed: cannot copy to non-directory: /" + p.dst_rel);
      } else {
        dst_.copy_up(p.dst_rel);
      }
      p.made = true;
    }
  }

  /// fsutil's copyFileInfo: owner (--chown or the source's), mode (--chmod or the
  /// source's; never on a symlink), xattrs, then the source's times.
  void apply_meta(const std::string& h, const MergedFs::Entry& e) {
    const struct stat& st = e.st;
    uid_t uid = owner_ ? owner_->uid : st.st_uid;
    gid_t gid = owner_ ? owner_->gid : st.st_gid;
    base::check_sys(::lchown(h.c_str(), uid, gid), "chown", h);
    if (!S_ISLNK(st.st_mode)) {
      mode_t mode = st.st_mode & 07777;
      if (c_.chmod) {
        mode = static_cast<mode_t>(*c_.chmod & 07777);
      } else if (!c_.chmod_symbolic.empty()) {
        auto m = base::apply_symbolic_mode(c_.chmod_symbolic, mode, S_ISDIR(st.st_mode));
        if (!m) throw base::Error("COPY failed: invalid chmod `" + c_.chmod_symbolic + "`");
        mode = static_cast<mode_t>(*m);
      }
      base::check_sys(::chmod(h.c_str(), mode), "chmod", h);
    }
    // The context arrives the way BuildKit receives it: xattrs are set, then the owner,
    // and that chown clears file capabilities.
    copy_xattrs(e.host_path, h, src_.is_context());
    set_times(h, st);
  }

  const graph::CopyAction& c_;
  const MergedFs& src_;
  Target& dst_;
  const std::optional<Owner>& owner_;
  std::optional<cache::PathFilter> include_, exclude_;
  std::vector<PendingDir> pending_;
  std::set<std::string> created_;
  std::map<std::pair<dev_t, ino_t>, std::string> links_;
};

std::string not_found(const std::string& path) {
  return "COPY failed: file not found in build context or excluded: stat " + path + ": not found";
}

/// The path elements before the first one with a wildcard.
std::string wildcard_prefix(const std::string& clean) {
  std::vector<std::string> prefix;
  for (const auto& part : base::split(clean, '/')) {
    if (cache::has_wildcards(part)) break;
    prefix.push_back(part);
  }
  return base::join(prefix, "/");
}

/// ADD's archive entries written into the target as BuildKit's unpack does (Docker's
/// archive.Unpack chrooted at the destination): paths resolve inside the destination,
/// following symlinks there (an absolute target restarts at the destination, `..` stops
/// there); missing parents of an entry are made 0755 0:0; a symlink that leads to a
/// missing path or a file is an error, as the open() under Docker's chroot fails.
class ArchiveInto : public image::ArchiveTarget {
 public:
  ArchiveInto(Target& dst, std::string dest_rel) : dst_(dst), dest_(std::move(dest_rel)) {
    // libarchive refuses to write through any symlink on the way, also one above the
    // store (a root reached through a link): its host paths are given canonical.
    char* real = ::realpath(dst_.host("").c_str(), nullptr);
    if (!real) throw base::SysError(errno, "realpath", dst_.host(""));
    upper_ = real;
    std::free(real);
  }

  std::string prepare(const std::string& rel, bool is_dir) override {
    std::string full = join_rel(resolve_parent(parent_of(rel), rel, true), base_of(rel));
    auto e = dst_.lookup(full);
    if (is_dir && e && S_ISDIR(e->st.st_mode)) {
      dst_.copy_up(full);  // merged; the entry's metadata then applies to it
    } else if (is_dir) {
      dst_.make_dir(full, 0700, 0, 0);
    } else {
      dst_.prepare_entry(full);
    }
    return host(full);
  }

  std::string link_target(const std::string& rel) override {
    std::string full = join_rel(resolve_parent(parent_of(rel), rel, false), base_of(rel));
    auto e = dst_.lookup(full);
    if (!e) throw base::Error("hard link target `" + rel + "` does not exist");
    if (S_ISDIR(e->st.st_mode)) throw base::Error("hard link target `" + rel + "` is a directory");
    dst_.copy_up_entry(full);
    return host(full);
  }

 private:
  /// The directory `parent` (below the destination) as a path of the image, every
  /// existing component a real directory. With `create`, components missing from the
  /// entry's own path are made; missing ones a symlink leads to are an error.
  std::string resolve_parent(const std::string& parent, const std::string& shown, bool create) {
    std::vector<std::string> todo;  // components left, next at the back
    size_t from_link = 0;           // how many of todo's last entries a link target put there
    auto push = [&](const std::string& path) {
      auto parts = base::split(path, '/');
      size_t n = 0;
      for (auto it = parts.rbegin(); it != parts.rend(); ++it)
        if (!it->empty() && *it != ".") todo.push_back(*it), ++n;
      return n;
    };
    push(parent);
    std::vector<std::string> done;
    int hops = 0;
    auto here = [&] { return join_rel(dest_, base::join(done, "/")); };
    while (!todo.empty()) {
      std::string part = std::move(todo.back());
      todo.pop_back();
      bool linked = from_link > 0;
      if (linked) --from_link;
      if (part == "..") {
        if (!done.empty()) done.pop_back();
        continue;
      }
      std::string cur = join_rel(here(), part);
      auto e = dst_.lookup(cur);
      if (!e) {
        if (linked || !create)
          throw base::Error("refusing tar entry `" + shown + "`: `/" + cur + "` does not exist");
        done.push_back(part);
        dst_.make_dir(cur, 0755, 0, 0);
        continue;
      }
      if (S_ISDIR(e->st.st_mode)) {
        done.push_back(part);
        continue;
      }
      if (!S_ISLNK(e->st.st_mode))
        throw base::Error("refusing tar entry `" + shown + "`: `/" + cur + "` is not a directory");
      if (++hops > 255) throw base::Error("refusing tar entry `" + shown + "`: too many levels of symbolic links");
      std::string target = base::read_link(e->host_path);
      if (!target.empty() && target.front() == '/') done.clear();
      from_link += push(target);
    }
    return here();
  }

  std::string host(const std::string& rel) const { return rel.empty() ? upper_ : upper_ + "/" + rel; }

  Target& dst_;
  std::string dest_;
  std::string upper_;  // canonical host path of the new layer
};

/// ADD of a local archive, as BuildKit's unpack: the destination directory is made
/// (0755, --chown's owner) and the archive's entries land in it with their own owners
/// (or --chown's), modes and times; --chmod does not apply.
void unpack(const MergedFs::Entry& archive, Target& dst, const std::optional<Owner>& owner,
            const std::string& dest_rel) {
  Owner own = owner.value_or(Owner{});
  if (auto file = dst.make_dirs(dest_rel, 0755, own.uid, own.gid))
    throw base::Error("ADD failed: mkdir /" + *file + ": not a directory");
  auto to = dst.lookup(dest_rel);
  if (!to || !S_ISDIR(to->st.st_mode)) throw base::Error("ADD failed: /" + dest_rel + " is not a directory");
  ArchiveInto into(dst, dest_rel);
  std::optional<image::ArchiveOwner> chown;
  if (owner) chown = image::ArchiveOwner{owner->uid, owner->gid};
  try {
    image::unpack_archive(archive.host_path, into, chown);
  } catch (const base::Error& e) {
    throw base::Error("ADD failed: " + e.message());
  }
}

/// BuildKit's docopy, for each source in order (each its own copy action there).
void do_copy(const graph::CopyAction& c, Target& dst, const MergedFs& src, const std::optional<Owner>& owner) {
  // The destination: a trailing '/' (or "/.") names a directory to copy into.
  std::string dest = clean_rel(c.dest);
  bool into_dir = c.dest.empty() || c.dest.back() == '/' || c.dest == "." || c.dest.ends_with("/.");
  std::string ensure = into_dir ? dest : parent_of(dest);
  // Directories the copy creates: --chmod's permission bits (or 0755), --chown's owner.
  mode_t dir_mode = c.chmod ? static_cast<mode_t>(*c.chmod & 0777) : 0755;
  uid_t dir_uid = owner ? owner->uid : 0;
  gid_t dir_gid = owner ? owner->gid : 0;

  // Symlink loops, in a source or the destination.
  auto resolve = [](const MergedFs& fs, const std::string& path) {
    try {
      return fs.resolve(path, true);
    } catch (const base::Error& e) {
      throw base::Error("COPY failed: " + e.message());
    }
  };
  auto copy_one = [&](const std::string& m) {
    std::string src_rel = resolve(src, m);
    auto e = src.lookup(src_rel);
    if (!e && src.hidden_by_filter(src_rel)) {
      if (src_rel != clean_rel(m))
        throw base::Error("COPY failed: \"" + m + "\" leads to \"" + src_rel + "\", which is excluded by .dockerignore");
      throw base::Error("COPY failed: \"" + m + "\" is excluded by .dockerignore (it exists in the build context)");
    }
    if (!e) throw base::Error(not_found(m));
    auto make_dirs = [&](const std::string& rel) {
      if (auto file = dst.make_dirs(rel, dir_mode, dir_uid, dir_gid))
        throw base::Error("COPY failed: mkdir /" + *file + ": not a directory");
    };
    make_dirs(resolve(dst.merged(), ensure));
    if (c.unpack_archives && S_ISREG(e->st.st_mode) && image::is_tar_archive(e->host_path)) {
      unpack(*e, dst, owner, resolve(dst.merged(), dest));
      return;
    }
    std::string to = resolve(dst.merged(), dest);
    auto existing = dst.lookup(to);
    bool src_dir = S_ISDIR(e->st.st_mode);
    // A file into an existing directory keeps the name it was selected by.
    if (!src_dir && existing && S_ISDIR(existing->st.st_mode)) to = join_rel(to, base_of(m));
    make_dirs(src_dir && !existing ? to : parent_of(to));
    Copier(c, src, dst, owner).copy(src_rel, *e, to, true);
  };

  for (const auto& p : c.required_paths) {
    std::string rel = resolve(src, p);
    if (!src.lookup(rel)) throw base::Error(not_found(p));
  }
  for (const auto& p : c.src_paths) {
    std::string rel = clean_rel(p);
    if (!c.allow_wildcard || !cache::has_wildcards(rel)) {
      copy_one(rel);
      continue;
    }
    MergedFs::Glob g;
    try {
      g = src.glob(rel);
    } catch (const base::Error& e) {
      throw base::Error("COPY failed: " + e.message());
    }
    if (g.prefix_missing) throw base::Error(not_found(wildcard_prefix(rel)));
    if (g.bad_pattern) throw base::Error("COPY failed: syntax error in pattern `" + p + "`");
    if (g.matches.empty() && !c.allow_empty_wildcard)
      throw base::Error("COPY failed: no source files were specified matching `" + p + "`");
    for (const auto& m : g.matches) copy_one(m);
  }
}

/// Go's strconv.ParseInt(s, 10, 32), as BuildKit's parseUID reads a numeric id.
std::optional<uint32_t> parse_id(const std::string& s) {
  if (s == "root") return 0;
  std::string_view v = s;
  bool negative = false;
  if (!v.empty() && (v[0] == '+' || v[0] == '-')) {
    negative = v[0] == '-';
    v.remove_prefix(1);
  }
  if (v.empty() || v.find_first_not_of("0123456789") != std::string_view::npos) return std::nullopt;
  int64_t n = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || ptr != v.data() + v.size()) return std::nullopt;
  if (negative) n = -n;
  if (n < INT32_MIN || n > INT32_MAX) return std::nullopt;
  return static_cast<uint32_t>(static_cast<int32_t>(n));
}

/// Field `field` (0-based) of the first line of /etc/<file> in `target` whose first field
/// is `name`, parsed as Go's strconv.Atoi does in moby/sys/user (0 if not a number).
std::optional<uint32_t> lookup_id(const MergedFs& target, const std::string& file, const std::string& name,
                                  size_t field) {
  auto e = target.lookup(target.resolve(file, true));
  if (!e) return std::nullopt;
  if (!S_ISREG(e->st.st_mode)) throw base::Error("/" + file + " is not a regular file");
  for (const auto& raw : base::split(base::read_file(e->host_path), '\n')) {
    std::string_view line = base::trim(raw);
    if (line.empty()) continue;
    auto fields = base::split(line, ':');
    if (fields[0] != name) continue;
    if (fields.size() <= field) return 0;
    int64_t n = 0;
    const std::string& f = fields[field];
    auto [ptr, ec] = std::from_chars(f.data(), f.data() + f.size(), n);
    if (ec != std::errc() || ptr != f.data() + f.size() || n < 0 || n > UINT32_MAX) return 0;
    return static_cast<uint32_t>(n);
  }
  return std::nullopt;
}

}  // namespace

std::optional<Owner> resolve_owner(const std::string& chown, const MergedFs& target) {
  if (chown.empty()) return std::nullopt;
  auto colon = chown.find(':');
  std::string user = chown.substr(0, colon);
  Owner o;
  if (auto id = parse_id(user)) {
    o.uid = o.gid = *id;
  } else {
    if (auto uid = lookup_id(target, "etc/passwd", user, 2)) o.uid = *uid;
    if (auto gid = lookup_id(target, "etc/passwd", user, 3)) o.gid = *gid;
  }
  if (colon != std::string::npos) {
    std::string group = chown.substr(colon + 1);
    if (auto id = parse_id(group)) o.gid = *id;
    else if (auto gid = lookup_id(target, "etc/group", group, 2)) o.gid = *gid;
  }
  return o;
}

void apply_file_action(const graph::FileAction& action, const std::string& upper,
                       const std::vector<std::string>& target_layers, const std::vector<MergedFs>& sources,
                       const std::optional<Owner>& owner) {
  Target dst(upper, target_layers);
  if (const auto* c = std::get_if<graph::CopyAction>(&action)) {
    do_copy(*c, dst, sources.at(static_cast<size_t>(c->src_input)), owner);
    return;
  }
  if (const auto* f = std::get_if<graph::MkfileAction>(&action)) {
    Owner own = owner.value_or(Owner{});
    std::string rel = dst.merged().resolve(f->path, false);
    auto parent = dst.lookup(parent_of(rel));
    if (!parent || !S_ISDIR(parent->st.st_mode)) throw base::Error("mkfile `" + f->path + "`: parent is not a directory");
    auto existing = dst.lookup(rel);
    if (existing && S_ISDIR(existing->st.st_mode)) throw base::Error("mkfile `" + f->path + "`: is a directory");
    dst.prepare_entry(rel);
    std::string h = dst.host(rel);
    {
      base::Fd fd = base::open_fd(h, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
      base::write_all(fd.get(), f->data);
    }
    base::check_sys(::lchown(h.c_str(), own.uid, own.gid), "chown", h);
    base::check_sys(::chmod(h.c_str(), f->mode & 07777), "chmod", h);
    return;
  }
  const auto& m = std::get<graph::MkdirAction>(action);
  Owner own = owner.value_or(Owner{});
  std::string rel = dst.merged().resolve(m.path, true);
  auto existing = dst.lookup(rel);
  if (existing && S_ISDIR(existing->st.st_mode)) return;
  if (existing || dst.make_dirs(rel, m.mode, own.uid, own.gid))
    throw base::Error("mkdir `" + m.path + "`: not a directory");
}

}  // namespace builder::ops
