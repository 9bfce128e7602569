// exec/user.cpp — LayerView lookups and resolve_user(): turns a USER string into
// uid/gid/groups/home from the image's own /etc/passwd and /etc/group, read from the
// layer directories before clone() (the child must not parse files or allocate).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <charconv>

#include "base/error.h"
#include "base/fd.h"
#include "base/fs.h"
#include "base/strings.h"
#include "exec/layers.h"
#include "exec/sandbox.h"

namespace builder::exec {

std::string resolve_layer_dir(const std::string& base, const std::string& dir) {
  if (dir.empty() || dir.front() == '/' || base.empty()) return dir;
  return base::path_join(base, dir);
}

LayerView::LayerView(const RunSpec& spec) {
  if (!spec.upper_dir.empty()) dirs_.push_back(resolve_layer_dir(spec.layers_base, spec.upper_dir));
  for (const auto& d : spec.lower_dirs) dirs_.push_back(resolve_layer_dir(spec.layers_base, d));
}

namespace {

bool is_whiteout(const struct stat& st) { return S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0); }

bool is_opaque(const std::string& dir) {
  char v = 0;
  ssize_t n = ::lgetxattr(dir.c_str(), "trusted.overlay.opaque", &v, 1);
  return n == 1 && v == 'y';
}

}  // namespace

std::optional<std::string> LayerView::find(std::string_view rel) const {
  std::vector<std::string> parts;
  for (auto& p : base::split(rel, '/'))
    if (!p.empty() && p != ".") parts.push_back(p);
  if (parts.empty()) return dirs_.empty() ? std::nullopt : std::optional(dirs_.front());

  for (const auto& layer : dirs_) {
    std::string path = layer;
    bool hidden_below = false;  // an opaque directory on the way hides lower layers
    bool missing = false;
    for (size_t i = 0; i < parts.size(); ++i) {
      path += "/" + parts[i];
      struct stat st;
      if (::lstat(path.c_str(), &st) < 0) {
        missing = true;
        break;
      }
      if (is_whiteout(st)) return std::nullopt;
      bool last = i + 1 == parts.size();
      if (last) return path;
      // A file (or symlink, which we do not follow) shadows everything below it.
      if (!S_ISDIR(st.st_mode)) return std::nullopt;
      if (is_opaque(path)) hidden_below = true;
    }
    if (missing && hidden_below) return std::nullopt;
  }
  return std::nullopt;
}

namespace {

std::optional<uint32_t> parse_id(std::string_view s) {
  if (s.empty()) return std::nullopt;
  uint32_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

/// Reads a file of the merged view; "" when absent. Refuses to follow a symlink out of
/// the layer (O_NOFOLLOW). Anything but a regular file counts as absent too: an image's
/// FIFO would block the open, and a device node (/dev/zero) would be read forever on
/// the host. O_NONBLOCK keeps the open of a FIFO from waiting for a writer.
std::string read_layer_file(const LayerView& view, std::string_view rel) {
  auto path = view.find(rel);
  if (!path) return {};
  int fd = ::open(path->c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    if (errno == ELOOP || errno == ENOENT) return {};
    throw base::SysError(errno, "open", *path);
  }
  base::Fd owner(fd);
  struct stat st;
  if (::fstat(fd, &st) < 0) throw base::SysError(errno, "stat", *path);
  if (!S_ISREG(st.st_mode)) return {};
  return base::read_all(fd);
}

struct PasswdEntry {
  std::string name;
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string home;
};

struct GroupEntry {
  std::string name;
  uint32_t gid = 0;
  std::vector<std::string> members;
};

std::vector<std::vector<std::string>> parse_colon_file(const std::string& text) {
  std::vector<std::vector<std::string>> out;
  for (auto& line : base::split(text, '\n')) {
    auto t = base::trim(line);
    if (t.empty() || t.front() == '#') continue;
    out.push_back(base::split(t, ':'));
  }
  return out;
}

std::vector<PasswdEntry> parse_passwd(const std::string& text) {
  std::vector<PasswdEntry> out;
  for (auto& f : parse_colon_file(text)) {
    if (f.size() < 4) continue;
    auto uid = parse_id(f[2]);
    auto gid = parse_id(f[3]);
    if (!uid || !gid) continue;
    out.push_back({f[0], *uid, *gid, f.size() > 5 ? f[5] : std::string()});
  }
  return out;
}

std::vector<GroupEntry> parse_group(const std::string& text) {
  std::vector<GroupEntry> out;
  for (auto& f : parse_colon_file(text)) {
    if (f.size() < 3) continue;
    auto gid = parse_id(f[2]);
    if (!gid) continue;
    GroupEntry g{f[0], *gid, {}};
    if (f.size() > 3)
      for (auto& m : base::split(f[3], ','))
        if (!base::trim(m).empty()) g.members.emplace_back(base::trim(m));
    out.push_back(std::move(g));
  }
  return out;
}

}  // namespace

// Follows runc's GetExecUser, which Docker and BuildKit use: a numeric uid need not
// exist in /etc/passwd (then gid 0, home "/"); a name must. Supplementary groups are
// the /etc/group entries listing the user, looked up only when no group was given.
Credentials resolve_user(const RunSpec& spec) {
  std::string user_part = spec.user;
  std::optional<std::string> group_part;
  if (auto colon = spec.user.find(':'); colon != std::string::npos) {
    user_part = spec.user.substr(0, colon);
    group_part = spec.user.substr(colon + 1);
  }
  if (user_part.empty()) user_part.assign(1, '0');  // "" and ":grp" mean root

  LayerView view(spec);
  auto passwd = parse_passwd(read_layer_file(view, "etc/passwd"));

  Credentials c;
  const PasswdEntry* entry = nullptr;
  if (auto uid = parse_id(user_part)) {
    for (const auto& e : passwd)
      if (e.uid == *uid) {
        entry = &e;
        break;
      }
    c.uid = *uid;
  } else {
    for (const auto& e : passwd)
      if (e.name == user_part) {
        entry = &e;
        break;
      }
    if (!entry) throw base::Error("unable to find user " + user_part + ": no matching entries in passwd file");
    c.uid = entry->uid;
  }
  if (entry) {
    c.gid = entry->gid;
    if (!entry->home.empty()) c.home = entry->home;
  }

  // /etc/group is read only when needed: a plain numeric uid[:gid] works in images
  // without one.
  bool need_groups = (group_part && !group_part->empty() && !parse_id(*group_part)) ||
                     (!group_part && entry);
  std::vector<GroupEntry> groups;
  if (need_groups) groups = parse_group(read_layer_file(view, "etc/group"));

  if (group_part && !group_part->empty()) {
    if (auto gid = parse_id(*group_part)) {
      c.gid = *gid;
    } else {
      const GroupEntry* g = nullptr;
      for (const auto& e : groups)
        if (e.name == *group_part) {
          g = &e;
          break;
        }
      if (!g) throw base::Error("unable to find group " + *group_part + ": no matching entries in group file");
      c.gid = g->gid;
    }
  } else if (entry) {
    for (const auto& g : groups)
      for (const auto& m : g.members)
        if (m == entry->name) {
          c.groups.push_back(g.gid);
          break;
        }
  }
  // Exactly these (CVE-2022-36109): builder's own groups are never kept, and as in
  // BuildKit the primary group is not repeated as a supplementary one.
  return c;
}

}  // namespace builder::exec
