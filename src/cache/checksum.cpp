#include "cache/checksum.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <memory>

#include "base/error.h"
#include "base/fd.h"

namespace builder::cache {
namespace {

// Record format v1, per selected entry, in depth-first order with siblings sorted by
// name: str(path) u8(type) u32(mode & 07777) u32(uid) u32(gid) u64(rdev)
// str(symlink target) 16 bytes XXH3-128(content). str = u64 length + bytes; integers
// little-endian. Changing it changes every context checksum (bump kChecksumVersion).
constexpr uint32_t kChecksumVersion = 1;

using Elems = std::vector<std::string>;

// Splits a cleaned relative path into elements ("" and "." -> none).
Elems split_clean(std::string_view p) {
  Elems out;
  size_t i = 0;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    std::string_view e = p.substr(i, j - i);
    if (e == "..") {
      if (!out.empty()) out.pop_back();  // cannot climb above the context root
    } else if (!e.empty() && e != ".") {
      out.emplace_back(e);
    }
    i = j + 1;
  }
  return out;
}

bool elem_match(const std::string& pat, const std::string& name) {
  return ::fnmatch(pat.c_str(), name.c_str(), 0) == 0;
}

// Whether pattern elements pat[pi..] match exactly path[qi..]; `**` matches any number
// of elements (zero included).
bool full_match(const Elems& pat, size_t pi, const Elems& path, size_t qi) {
  if (pi == pat.size()) return qi == path.size();
  if (pat[pi] == "**") {
    return full_match(pat, pi + 1, path, qi) ||
           (qi < path.size() && full_match(pat, pi, path, qi + 1));
  }
  return qi < path.size() && elem_match(pat[pi], path[qi]) && full_match(pat, pi + 1, path, qi + 1);
}

// Whether the pattern matches `path` or one of its parents: a matched directory takes
// its subtree along (for includes and, as in Docker, for .dockerignore excludes).
bool matches_prefix(const Elems& pat, const Elems& path) {
  Elems prefix;
  for (size_t k = 0; k <= path.size(); ++k) {
    if (k > 0) prefix.push_back(path[k - 1]);
    if (!(pat.empty() && k > 0) && full_match(pat, 0, prefix, 0)) return true;
  }
  return false;
}

// Whether some descendant of `path` could match the pattern.
bool can_extend(const Elems& pat, size_t pi, const Elems& path, size_t qi) {
  if (qi == path.size()) return pi < pat.size();
  if (pi == pat.size()) return false;
  if (pat[pi] == "**")
    return can_extend(pat, pi + 1, path, qi) || can_extend(pat, pi, path, qi + 1);
  return elem_match(pat[pi], path[qi]) && can_extend(pat, pi + 1, path, qi + 1);
}

struct ExcludePattern {
  Elems elems;
  bool negate = false;
};

class Selector {
 public:
  Selector(const std::vector<std::string>& include, const std::vector<std::string>& exclude) {
    for (const auto& p : include) include_.push_back(split_clean(p));
    if (include_.empty()) include_.push_back({});  // everything
    for (const auto& raw : exclude) {
      std::string_view p = raw;
      while (!p.empty() && (p.back() == ' ' || p.back() == '\t')) p.remove_suffix(1);
      ExcludePattern x;
      if (!p.empty() && p[0] == '!') {
        x.negate = true;
        p.remove_prefix(1);
        any_negate_ = true;
      }
      x.elems = split_clean(p);
      if (x.elems.empty()) continue;  // "", "." and "/" exclude nothing (Docker keeps the root)
      exclude_.push_back(std::move(x));
    }
  }

  bool included(const Elems& path) const {
    return std::any_of(include_.begin(), include_.end(),
                       [&](const Elems& p) { return matches_prefix(p, path); });
  }
  bool may_include_below(const Elems& path) const {
    return std::any_of(include_.begin(), include_.end(),
                       [&](const Elems& p) { return can_extend(p, 0, path, 0); });
  }
  /// .dockerignore semantics: the last matching pattern wins; `!` re-includes.
  bool excluded(const Elems& path) const {
    bool ex = false;
    for (const auto& x : exclude_) {
      if (x.negate != ex) continue;  // only a `!` can change an excluded verdict, and back
      if (matches_prefix(x.elems, path)) ex = !x.negate;
    }
    return ex;
  }
  /// An excluded directory can be skipped whole unless a `!` pattern may re-include
  /// something inside it.
  bool can_prune() const { return !any_negate_; }

 private:
  std::vector<Elems> include_;
  std::vector<ExcludePattern> exclude_;
  bool any_negate_ = false;
};

struct StateDeleter {
  void operator()(XXH3_state_t* s) const { XXH3_freeState(s); }
};
using State = std::unique_ptr<XXH3_state_t, StateDeleter>;

State new_state() {
  State s(XXH3_createState());
  if (!s || XXH3_128bits_reset(s.get()) == XXH_ERROR)
    throw base::Error("checksum: xxhash init failed");
  return s;
}

class Hasher {
 public:
  Hasher(const Selector& sel) : sel_(sel), state_(new_state()) { put_u32(kChecksumVersion); }

  void walk(int dirfd, const std::string& shown, Elems& path, bool selected) {
    for (const auto& name : read_names(dirfd, shown)) {
      path.push_back(name);
      std::string child = shown + "/" + name;
      struct stat st;
      if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
        throw base::SysError(errno, "stat", child);
      }
      bool sel = selected || sel_.included(path);
      bool ex = sel_.excluded(path);
      if (sel && !ex) add_entry(dirfd, name, child, path, st);
      if (S_ISDIR(st.st_mode) && (sel || sel_.may_include_below(path)) &&
          !(ex && sel_.can_prune())) {
        int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) throw base::SysError(errno, "open", child);
        base::Fd owner(fd);
        walk(fd, child, path, sel);
      }
      path.pop_back();
    }
  }

  void add_root(int fd, const std::string& shown) {
    struct stat st;
    if (::fstat(fd, &st) < 0) throw base::SysError(errno, "stat", shown);
    Elems root;
    if (sel_.included(root)) add_entry(fd, "", shown, root, st);
  }

  std::string finish() {
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits_digest(state_.get()));
    static const char* hexd = "0123456789abcdef";
    std::string out;
    for (unsigned char b : c.digest) {
      out.push_back(hexd[b >> 4]);
      out.push_back(hexd[b & 15]);
    }
    return out;
  }

 private:
  static std::vector<std::string> read_names(int dirfd, const std::string& shown) {
    int dupfd = ::dup(dirfd);
    if (dupfd < 0) throw base::SysError(errno, "dup", shown);
    DIR* d = ::fdopendir(dupfd);
    if (!d) {
      ::close(dupfd);
      throw base::SysError(errno, "fdopendir", shown);
    }
    ::rewinddir(d);
    std::vector<std::string> names;
    errno = 0;
    while (struct dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(std::move(n));
    }
    int err = errno;
    ::closedir(d);
    if (err) throw base::SysError(err, "readdir", shown);
    std::sort(names.begin(), names.end());
    return names;
  }

  void put(const void* p, size_t n) { XXH3_128bits_update(state_.get(), p, n); }
  void put_u32(uint32_t v) {
    unsigned char b[4];
    for (int i = 0; i < 4; ++i) b[i] = static_cast<unsigned char>(v >> (8 * i));
    put(b, 4);
  }
  void put_u64(uint64_t v) {
    unsigned char b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<unsigned char>(v >> (8 * i));
    put(b, 8);
  }
  void put_str(std::string_view s) {
    put_u64(s.size());
    put(s.data(), s.size());
  }

  static char type_of(mode_t m) {
    if (S_ISREG(m)) return 'f';
    if (S_ISDIR(m)) return 'd';
    if (S_ISLNK(m)) return 'l';
    if (S_ISCHR(m)) return 'c';
    if (S_ISBLK(m)) return 'b';
    if (S_ISFIFO(m)) return 'p';
    return 's';
  }

  // `name` is relative to `dirfd`; empty means `dirfd` itself (the context root).
  void add_entry(int dirfd, const std::string& name, const std::string& shown, const Elems& path,
                 const struct stat& st) {
    std::string rel;
    for (const auto& e : path) rel += (rel.empty() ? "" : "/") + e;
    put_str(rel.empty() ? "." : rel);
    char t = type_of(st.st_mode);
    put(&t, 1);
    put_u32(st.st_mode & 07777);
    put_u32(st.st_uid);
    put_u32(st.st_gid);
    put_u64((S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) ? st.st_rdev : 0);
    std::string target;
    if (S_ISLNK(st.st_mode)) {
      target.resize(static_cast<size_t>(st.st_size) + 1);
      for (;;) {
        ssize_t n = ::readlinkat(dirfd, name.c_str(), target.data(), target.size());
        if (n < 0) throw base::SysError(errno, "readlink", shown);
        if (static_cast<size_t>(n) < target.size()) {
          target.resize(static_cast<size_t>(n));
          break;
        }
        target.resize(target.size() * 2);
      }
    }
    put_str(target);
    XXH128_hash_t content{0, 0};
    if (S_ISREG(st.st_mode)) content = hash_content(dirfd, name, shown);
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, content);
    put(c.digest, sizeof c.digest);
  }

  static XXH128_hash_t hash_content(int dirfd, const std::string& name, const std::string& shown) {
    int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) throw base::SysError(errno, "open", shown);
    base::Fd owner(fd);
    State s = new_state();
    std::unique_ptr<char[]> buf(new char[1 << 16]);
    for (;;) {
      ssize_t n = ::read(fd, buf.get(), 1 << 16);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw base::SysError(errno, "read", shown);
      }
      if (n == 0) break;
      XXH3_128bits_update(s.get(), buf.get(), static_cast<size_t>(n));
    }
    return XXH3_128bits_digest(s.get());
  }

  const Selector& sel_;
  State state_;
};

}  // namespace

std::string checksum_paths(const std::string& dir, const std::vector<std::string>& include,
                           const std::vector<std::string>& exclude) {
  try {
    base::Fd fd = base::open_fd(dir, O_RDONLY | O_DIRECTORY);
    Selector sel(include, exclude);
    Hasher h(sel);
    h.add_root(fd.get(), dir);
    Elems path;
    h.walk(fd.get(), dir, path, sel.included(path));
    return h.finish();
  } catch (base::Error& e) {
    throw e.add_context("while checksumming `" + dir + "`");
  }
}

}  // namespace builder::cache
