#include "solver/ops/file_op.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/error.h"
#include "base/fd.h"
#include "base/fs.h"
#include "base/strings.h"

namespace builder::ops {

namespace {

bool has_wildcard(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

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
  ::utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW);
}

/// The writable view: the new layer on top of the target's layers.
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
  std::string host(const std::string& rel) const { return rel.empty() ? upper_ : upper_ + "/" + rel; }

  /// Makes `rel` a directory in the upper layer; parents that exist below are copied
  /// up with their metadata, new ones get `mode` and `owner`.
  void ensure_dir(const std::string& rel, mode_t mode, const Owner& owner,
                  const struct stat* meta = nullptr) {
    if (rel.empty()) return;
    ensure_dir(parent_of(rel), 0755, owner);
    std::string h = host(rel);
    struct stat st;
    if (::lstat(h.c_str(), &st) == 0) {
      if (S_ISDIR(st.st_mode)) return;
      base::remove_all(h);  // a file or whiteout in this layer is replaced
    }
    auto below = lower_.lookup(rel);
    base::check_sys(::mkdir(h.c_str(), 0700), "mkdir", h);
    if (below && S_ISDIR(below->st.st_mode)) {
      apply_meta(h, below->st.st_mode & 07777, below->st.st_uid, below->st.st_gid, &below->st);
    } else {
      if (below) ::lsetxattr(h.c_str(), "trusted.overlay.opaque", "y", 1, 0);  // hides what a file shadowed
      if (meta) apply_meta(h, meta->st_mode & 07777, owner.uid, owner.gid, meta);
      else apply_meta(h, mode, owner.uid, owner.gid, nullptr);
    }
  }

  static void apply_meta(const std::string& h, mode_t mode, uid_t uid, gid_t gid, const struct stat* times) {
    base::check_sys(::lchown(h.c_str(), uid, gid), "chown", h);
    base::check_sys(::chmod(h.c_str(), mode), "chmod", h);
    if (times) set_times(h, *times);
  }

  /// Clears whatever the upper layer holds at `rel` (a file being replaced).
  void clear(const std::string& rel) {
    std::string h = host(rel);
    struct stat st;
    if (::lstat(h.c_str(), &st) == 0) base::remove_all(h);
  }

 private:
  std::string upper_;
  MergedFs merged_;
  MergedFs lower_;
};

void copy_entry(const MergedFs& src, const std::string& src_rel, const MergedFs::Entry& e, Target& dst,
                const std::string& dst_rel, const graph::CopyAction& c, const Owner& owner);

void copy_tree(const MergedFs& src, const std::string& src_rel, const struct stat& dir_st, Target& dst,
               const std::string& dst_rel, const graph::CopyAction& c, const Owner& owner) {
  mode_t mode = c.chmod ? *c.chmod : (dir_st.st_mode & 07777);
  struct stat meta = dir_st;
  meta.st_mode = (meta.st_mode & ~07777) | mode;
  dst.ensure_dir(dst_rel, mode, owner, &meta);
  for (const auto& name : src.list(src_rel)) {
    std::string child = join_rel(src_rel, name);
    auto e = src.lookup(child);
    if (!e) continue;
    copy_entry(src, child, *e, dst, join_rel(dst_rel, name), c, owner);
  }
}

void copy_file_data(const std::string& from, const std::string& to, const struct stat& st) {
  base::Fd in = base::open_fd(from, O_RDONLY | O_NOFOLLOW);
  base::Fd out = base::open_fd(to, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
  off_t left = st.st_size;
  while (left > 0) {
    ssize_t n = ::copy_file_range(in.get(), nullptr, out.get(), nullptr, static_cast<size_t>(left), 0);
    if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL))
      n = ::sendfile(out.get(), in.get(), nullptr, static_cast<size_t>(left));
    if (n < 0) throw base::SysError(errno, "copy", from);
    if (n == 0) break;
    left -= n;
  }
}

void copy_entry(const MergedFs& src, const std::string& src_rel, const MergedFs::Entry& e, Target& dst,
                const std::string& dst_rel, const graph::CopyAction& c, const Owner& owner) {
  const struct stat& st = e.st;
  if (S_ISDIR(st.st_mode)) {
    copy_tree(src, src_rel, st, dst, dst_rel, c, owner);
    return;
  }
  dst.ensure_dir(parent_of(dst_rel), 0755, owner);
  dst.clear(dst_rel);
  std::string h = dst.host(dst_rel);
  mode_t mode = c.chmod ? *c.chmod : (st.st_mode & 07777);
  if (S_ISREG(st.st_mode)) {
    copy_file_data(e.host_path, h, st);
  } else if (S_ISLNK(st.st_mode)) {
    char buf[4096];
    ssize_t n = ::readlink(e.host_path.c_str(), buf, sizeof buf);
    if (n < 0) throw base::SysError(errno, "readlink", e.host_path);
    base::check_sys(::symlink(std::string(buf, static_cast<size_t>(n)).c_str(), h.c_str()), "symlink", h);
    base::check_sys(::lchown(h.c_str(), owner.uid, owner.gid), "chown", h);
    set_times(h, st);
    return;
  } else if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
    base::check_sys(::mknod(h.c_str(), (st.st_mode & S_IFMT) | 0600, st.st_rdev), "mknod", h);
  } else {
    return;  // sockets are not copied, as in Docker
  }
  Target::apply_meta(h, mode, owner.uid, owner.gid, &st);
}

/// Expands wildcards element by element against the source view.
void glob(const MergedFs& src, const std::vector<std::string>& parts, size_t i, const std::string& prefix,
          std::vector<std::string>& out) {
  if (i == parts.size()) {
    out.push_back(prefix);
    return;
  }
  if (!has_wildcard(parts[i])) {
    std::string next = join_rel(prefix, parts[i]);
    if (i + 1 == parts.size() ? src.lookup(next).has_value() : true) glob(src, parts, i + 1, next, out);
    return;
  }
  for (const auto& name : src.list(prefix))
    if (::fnmatch(parts[i].c_str(), name.c_str(), FNM_PERIOD) == 0) glob(src, parts, i + 1, join_rel(prefix, name), out);
}

void do_copy(const graph::CopyAction& c, Target& dst, const MergedFs& src, const Owner& owner) {
  bool wildcard = false;
  std::vector<std::string> matches;
  for (const auto& p : c.src_paths) {
    std::string rel = clean_rel(p);
    if (c.allow_wildcard && has_wildcard(rel)) {
      wildcard = true;
      std::vector<std::string> found;
      glob(src, base::split(rel, '/'), 0, "", found);
      if (found.empty() && !c.allow_empty_wildcard)
        throw base::Error("COPY failed: no source files were specified matching `" + p + "`");
      matches.insert(matches.end(), found.begin(), found.end());
    } else {
      matches.push_back(rel);
    }
  }
  std::string dest_rel = clean_rel(c.dest);
  bool dest_slash = !c.dest.empty() && (c.dest.back() == '/' || c.dest == "." || c.dest.ends_with("/."));
  // A destination that already is a directory receives sources by name, as in Docker.
  std::string dest_resolved = dst.merged().resolve(dest_rel, true);
  auto dest_entry = dst.merged().lookup(dest_resolved);
  bool dest_is_dir = dest_slash || matches.size() > 1 || wildcard ||
                     (dest_entry && S_ISDIR(dest_entry->st.st_mode));
  for (const auto& m : matches) {
    std::string resolved = src.resolve(m, c.follow_symlinks);
    auto e = src.lookup(resolved);
    if (!e) throw base::Error("COPY failed: file not found in build context or excluded: stat " + m + ": not found");
    // Parents of the destination may be symlinks inside the target: resolve them there.
    std::string target;
    if (S_ISDIR(e->st.st_mode)) target = dest_resolved;
    else if (dest_is_dir) target = join_rel(dest_resolved, base_of(m.empty() ? resolved : m));
    else target = join_rel(dst.merged().resolve(parent_of(dest_rel), true), base_of(dest_rel));
    if (target.empty() && !S_ISDIR(e->st.st_mode)) throw base::Error("COPY failed: cannot copy a file to `/`");
    copy_entry(src, resolved, *e, dst, target, c, owner);
  }
}

}  // namespace

void apply_file_action(const graph::FileAction& action, const std::string& upper,
                       const std::vector<std::string>& target_layers, const std::vector<MergedFs>& sources,
                       const std::optional<Owner>& owner) {
  Target dst(upper, target_layers);
  Owner own = owner.value_or(Owner{});
  if (const auto* c = std::get_if<graph::CopyAction>(&action)) {
    do_copy(*c, dst, sources.at(static_cast<size_t>(c->src_input)), own);
    return;
  }
  const auto& m = std::get<graph::MkdirAction>(action);
  std::string rel = dst.merged().resolve(m.path, true);
  auto existing = dst.merged().lookup(rel);
  if (existing && S_ISDIR(existing->st.st_mode)) return;
  if (existing) throw base::Error("mkdir `" + m.path + "`: not a directory");
  dst.ensure_dir(rel, m.mode, own);
}

}  // namespace builder::ops
