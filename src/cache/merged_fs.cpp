#include "cache/merged_fs.h"

#include <dirent.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "base/error.h"
#include "base/fs.h"
#include "base/strings.h"

namespace builder::cache {

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

std::string join_rel(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  return a + "/" + b;
}

enum class State { Found, Missing, Hidden };

// Looks `parts` up in one layer: Found (st filled), Missing (lower layers may have it,
// unless *stop is set by an opaque prefix), Hidden (a whiteout or a non-directory on
// the way hides it from every lower layer). Opaque marks matter only above another
// layer, so the bottom one skips reading them.
State lookup_in_layer(const std::string& layer, const std::vector<std::string>& parts, bool bottom,
                      struct stat& st, bool& stop) {
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
      if (!bottom && is_opaque(p)) stop = true;
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

MergedFs MergedFs::context(std::string dir, PathFilter filter) {
  MergedFs fs({std::move(dir)}, std::move(filter));
  fs.root_owned_ = true;
  return fs;
}

std::optional<MergedFs::Entry> MergedFs::lookup(const std::string& rel) const {
  auto e = lookup_unfiltered(rel);
  if (!e) return e;
  if (root_owned_) e->st.st_uid = e->st.st_gid = 0;
  if (filter_.empty()) return e;
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
  for (size_t i = 0; i < layers_.size(); ++i) {
    const std::string& layer = layers_[i];
    struct stat st;
    bool stop = false;
    switch (lookup_in_layer(layer, parts, i + 1 == layers_.size(), st, stop)) {
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
    if (++hops > 255) throw base::Error("too many levels of symbolic links resolving `" + path + "`");
    std::string target = base::read_link(e->host_path);
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

std::vector<std::pair<std::string, MergedFs::Entry>> MergedFs::entries(const std::string& rel) const {
  std::vector<std::pair<std::string, Entry>> out;
  std::string dir = clean_rel(rel);
  if (layers_.size() != 1) {
    for (auto& name : list(dir))
      if (auto e = lookup(join_rel(dir, name))) out.emplace_back(std::move(name), std::move(*e));
    return out;
  }
  // One layer: once `dir` is known to be a directory of the view, each child is one
  // lstat away (what lookup() would find walking every component again).
  auto d = lookup_unfiltered(dir);
  if (!d || !S_ISDIR(d->st.st_mode)) return out;
  std::vector<std::string> names;
  if (DIR* h = ::opendir(d->host_path.c_str())) {
    while (struct dirent* de = ::readdir(h)) {
      std::string n = de->d_name;
      if (n != "." && n != "..") names.push_back(std::move(n));
    }
    ::closedir(h);
  }
  std::sort(names.begin(), names.end());
  for (auto& name : names) {
    Entry e{d->host_path + "/" + name, {}};
    if (::lstat(e.host_path.c_str(), &e.st) < 0 || is_whiteout(e.st)) continue;
    if (!filter_.empty()) {
      std::string child = join_rel(dir, name);
      if (filter_.excluded(child) && !holds_shown_entry(child, e.st)) continue;
    }
    if (root_owned_) e.st.st_uid = e.st.st_gid = 0;
    out.emplace_back(std::move(name), std::move(e));
  }
  return out;
}

std::vector<std::string> MergedFs::list_unfiltered(const std::string& rel) const {
  auto parts = components(rel);
  std::set<std::string> seen, names;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const std::string& layer = layers_[i];
    bool bottom = i + 1 == layers_.size();
    struct stat st;
    bool stop = false;
    State s = lookup_in_layer(layer, parts, bottom, st, stop);
    if (s == State::Hidden) break;
    if (s == State::Found) {
      if (!S_ISDIR(st.st_mode)) break;
      std::string dir = parts.empty() ? layer : layer + "/" + base::join(parts, "/");
      if (DIR* d = ::opendir(dir.c_str())) {
        while (struct dirent* de = ::readdir(d)) {
          std::string n = de->d_name;
          if (n == "." || n == ".." || seen.count(n)) continue;
          seen.insert(n);
          // Only a character device can be a whiteout.
          if (de->d_type == DT_CHR || de->d_type == DT_UNKNOWN) {
            struct stat cst;
            if (::lstat((dir + "/" + n).c_str(), &cst) == 0 && is_whiteout(cst)) continue;
          }
          names.insert(n);
        }
        ::closedir(d);
      }
      if (!bottom && is_opaque(dir)) break;
    }
    if (stop) break;
  }
  return {names.begin(), names.end()};
}

MergedFs::Glob MergedFs::glob(const std::string& pattern) const {
  Glob out;
  auto parts = components(pattern);
  size_t first = 0;
  while (first < parts.size() && !has_wildcards(parts[first])) ++first;
  std::vector<std::string> prefix_parts(parts.begin(), parts.begin() + static_cast<long>(first));
  std::vector<std::string> rest_parts(parts.begin() + static_cast<long>(first), parts.end());
  std::string prefix = resolve(base::join(prefix_parts, "/"), true);
  std::string rest = base::join(rest_parts, "/");
  auto dir = lookup(prefix);
  if (!dir) {
    out.prefix_missing = true;
    return out;
  }
  if (!S_ISDIR(dir->st.st_mode) || rest.empty()) return out;
  // A match has as many elements as the pattern, or more where a class matched a '/'.
  size_t depth = rest_parts.size() + static_cast<size_t>(std::count(rest.begin(), rest.end(), '['));
  walk_glob(prefix, "", rest, depth, out);
  return out;
}

void MergedFs::walk_glob(const std::string& dir, const std::string& rel, const std::string& pattern,
                         size_t depth_left, Glob& out) const {
  for (const auto& [name, e] : entries(dir)) {
    std::string child = join_rel(dir, name);
    std::string child_rel = join_rel(rel, name);
    auto match = path_match(pattern, child_rel);
    if (!match) {
      out.bad_pattern = true;
      return;
    }
    if (*match) {
      out.matches.push_back(child);
      continue;  // a matched directory is copied whole, not searched
    }
    if (depth_left > 1 && S_ISDIR(e.st.st_mode)) {
      walk_glob(child, child_rel, pattern, depth_left - 1, out);
      if (out.bad_pattern) return;
    }
  }
}

}  // namespace builder::cache
