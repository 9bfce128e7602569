#include "solver/ops/merged_fs.h"

#include <dirent.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "base/error.h"
#include "base/strings.h"

namespace builder::ops {

namespace {

bool is_whiteout(const struct stat& st) { return S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0); }

bool is_opaque(const std::string& dir) {
  char v[2] = {0, 0};
  ssize_t n = ::lgetxattr(dir.c_str(), "trusted.overlay.opaque", v, sizeof v);
  return n == 1 && v[0] == 'y';
}

std::vector<std::string> components(const std::string& rel) {
  std::vector<std::string> out;
  for (auto& c : base::split(rel, '/'))
    if (!c.empty()) out.push_back(c);
  return out;
}

enum class State { Found, Missing, Hidden };

// Looks `parts` up in one layer: Found (st filled), Missing (lower layers may have it,
// unless *stop is set by an opaque prefix), Hidden (a whiteout or a non-directory on
// the way hides it from every lower layer).
State lookup_in_layer(const std::string& layer, const std::vector<std::string>& parts, struct stat& st,
                      bool& stop) {
  std::string p = layer;
  if (parts.empty()) {
    if (::lstat(p.c_str(), &st) < 0) return State::Missing;
    return State::Found;
  }
  for (size_t i = 0; i < parts.size(); ++i) {
    p += "/" + parts[i];
    if (::lstat(p.c_str(), &st) < 0) return State::Missing;
    if (is_whiteout(st)) return State::Hidden;
    if (i + 1 < parts.size()) {
      if (!S_ISDIR(st.st_mode)) return State::Hidden;
      if (is_opaque(p)) stop = true;
    }
  }
  return State::Found;
}

}  // namespace

std::string clean_rel(const std::string& path) {
  std::vector<std::string> out;
  for (auto& c : base::split(path, '/')) {
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      if (!out.empty()) out.pop_back();
      continue;
    }
    out.push_back(c);
  }
  return base::join(out, "/");
}

std::optional<MergedFs::Entry> MergedFs::lookup(const std::string& rel) const {
  auto e = lookup_unfiltered(rel);
  if (!e || filter_.empty()) return e;
  std::string clean = clean_rel(rel);
  if (filter_.excluded(clean) && !holds_shown_entry(clean, e->st)) return std::nullopt;
  return e;
}

bool MergedFs::holds_shown_entry(const std::string& rel, const struct stat& st) const {
  if (!S_ISDIR(st.st_mode) || !filter_.dir_may_hold_included(rel)) return false;
  for (const auto& name : list_unfiltered(rel))
    if (lookup(rel + "/" + name)) return true;
  return false;
}

std::optional<MergedFs::Entry> MergedFs::lookup_unfiltered(const std::string& rel) const {
  auto parts = components(rel);
  for (const auto& layer : layers_) {
    struct stat st;
    bool stop = false;
    switch (lookup_in_layer(layer, parts, st, stop)) {
      case State::Found: return Entry{parts.empty() ? layer : layer + "/" + base::join(parts, "/"), st};
      case State::Hidden: return std::nullopt;
      case State::Missing:
        if (stop) return std::nullopt;
        break;
    }
  }
  return std::nullopt;
}

std::string MergedFs::resolve(const std::string& path, bool follow_last) const {
  std::vector<std::string> todo = components(path);
  std::vector<std::string> done;
  int hops = 0;
  // Process components front to back; a symlink splices its target in front of the rest.
  std::reverse(todo.begin(), todo.end());
  while (!todo.empty()) {
    std::string c = todo.back();
    todo.pop_back();
    if (c == ".") continue;
    if (c == "..") {
      if (!done.empty()) done.pop_back();
      continue;
    }
    done.push_back(c);
    bool last = todo.empty();
    if (last && !follow_last) break;
    auto e = lookup(base::join(done, "/"));
    if (!e || !S_ISLNK(e->st.st_mode)) continue;
    if (++hops > 40) throw base::Error("too many levels of symbolic links resolving `" + path + "`");
    char buf[4096];
    ssize_t n = ::readlink(e->host_path.c_str(), buf, sizeof buf);
    if (n < 0) throw base::SysError(errno, "readlink", e->host_path);
    std::string target(buf, static_cast<size_t>(n));
    done.pop_back();
    if (!target.empty() && target[0] == '/') done.clear();
    auto tparts = components(target);
    for (auto it = tparts.rbegin(); it != tparts.rend(); ++it) todo.push_back(*it);
  }
  return base::join(done, "/");
}

std::vector<std::string> MergedFs::list(const std::string& rel) const {
  auto names = list_unfiltered(rel);
  if (filter_.empty()) return names;
  std::string dir = clean_rel(rel);
  std::erase_if(names, [&](const std::string& n) {
    std::string child = dir.empty() ? n : dir + "/" + n;
    return filter_.excluded(child) && !lookup(child);
  });
  return names;
}

std::vector<std::string> MergedFs::list_unfiltered(const std::string& rel) const {
  auto parts = components(rel);
  std::set<std::string> seen, names;
  for (const auto& layer : layers_) {
    struct stat st;
    bool stop = false;
    State s = lookup_in_layer(layer, parts, st, stop);
    if (s == State::Hidden) break;
    if (s == State::Found) {
      if (!S_ISDIR(st.st_mode)) break;
      std::string dir = parts.empty() ? layer : layer + "/" + base::join(parts, "/");
      if (DIR* d = ::opendir(dir.c_str())) {
        while (struct dirent* de = ::readdir(d)) {
          std::string n = de->d_name;
          if (n == "." || n == ".." || seen.count(n)) continue;
          seen.insert(n);
          struct stat cst;
          if (::lstat((dir + "/" + n).c_str(), &cst) == 0 && is_whiteout(cst)) continue;
          names.insert(n);
        }
        ::closedir(d);
      }
      if (is_opaque(dir)) break;
    }
    if (stop) break;
  }
  return {names.begin(), names.end()};
}

}  // namespace builder::ops
