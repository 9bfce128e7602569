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
#include "cache/path_filter.h"

namespace builder::cache {
namespace {

// Record format v2, per selected entry, in depth-first order with siblings sorted by
// name: str(path) u8(type) u32(mode & 07777) u32(uid) u32(gid) u64(rdev)
// str(symlink target) 16 bytes XXH3-128(content). str = u64 length + bytes; integers
// little-endian. Changing it changes every context checksum (bump kChecksumVersion).
// v2: exclude patterns follow PathFilter, and COPY honours them: a v1 checksum may name
// a cached COPY result that holds excluded files, so no v1 key may be reused.
constexpr uint32_t kChecksumVersion = 2;

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

// Whether the include pattern matches `path` or one of its parents: a selected
// directory takes its subtree along.
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

/// Which paths are hashed: those the include patterns select (a selected directory takes
/// its subtree along) that the exclude filter keeps.
class Selector {
 public:
  Selector(const std::vector<std::string>& include, const std::vector<std::string>& exclude)
      : filter_(exclude) {
    for (const auto& p : include) include_.push_back(split_clean(p));
    if (include_.empty()) include_.push_back({});  // everything
  }

  bool included(const Elems& path) const {
    return std::any_of(include_.begin(), include_.end(),
                       [&](const Elems& p) { return matches_prefix(p, path); });
  }
  bool may_include_below(const Elems& path) const {
    return std::any_of(include_.begin(), include_.end(),
                       [&](const Elems& p) { return can_extend(p, 0, path, 0); });
  }
  const PathFilter& filter() const { return filter_; }

 private:
  std::vector<Elems> include_;
  PathFilter filter_;
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

  // Hashes the selected, kept entries below `dirfd`. `rel` is `path` joined by '/'.
  void walk(int dirfd, const std::string& shown, Elems& path, std::string& rel, bool selected) {
    const PathFilter& filter = sel_.filter();
    for (const auto& name : read_names(dirfd, shown)) {
      path.push_back(name);
      size_t rel_size = rel.size();
      rel += (rel.empty() ? "" : "/") + name;
      std::string child = shown + "/" + name;
      struct stat st;
      if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
        throw base::SysError(errno, "stat", child);
      }
      bool sel = selected || sel_.included(path);
      bool ex = filter.excluded(rel);
      bool dir = S_ISDIR(st.st_mode);
      if (sel && !ex) add_entry(dirfd, name, child, rel, st);
      if (dir && (sel || sel_.may_include_below(path)) &&
          (!ex || filter.dir_may_hold_included(rel))) {
        // An excluded directory enters the build only if something below it does: its
        // record waits until then (what the COPY's view of the context shows).
        bool wait = sel && ex;
        if (wait) waiting_dirs_.push_back({rel, st});
        int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) throw base::SysError(errno, "open", child);
        base::Fd owner(fd);
        walk(fd, child, path, rel, sel);
        if (wait && !waiting_dirs_.empty() && waiting_dirs_.back().rel == rel)
          waiting_dirs_.pop_back();
      }
      rel.resize(rel_size);
      path.pop_back();
    }
  }

  void add_root(int fd, const std::string& shown) {
    struct stat st;
    if (::fstat(fd, &st) < 0) throw base::SysError(errno, "stat", shown);
    if (sel_.included({})) add_entry(fd, "", shown, "", st);
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

  // `name` is relative to `dirfd`; empty means `dirfd` itself (the context root). Writes
  // the records of the directories waiting above it first.
  void add_entry(int dirfd, const std::string& name, const std::string& shown,
                 const std::string& rel, const struct stat& st) {
    for (const auto& d : waiting_dirs_) put_record(d.rel, d.st, {}, XXH128_hash_t{0, 0});
    waiting_dirs_.clear();
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
    XXH128_hash_t content{0, 0};
    if (S_ISREG(st.st_mode)) content = hash_content(dirfd, name, shown);
    put_record(rel, st, target, content);
  }

  void put_record(const std::string& rel, const struct stat& st, std::string_view target,
                  XXH128_hash_t content) {
    put_str(rel.empty() ? "." : rel);
    char t = type_of(st.st_mode);
    put(&t, 1);
    put_u32(st.st_mode & 07777);
    put_u32(st.st_uid);
    put_u32(st.st_gid);
    put_u64((S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) ? st.st_rdev : 0);
    put_str(target);
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

  struct WaitingDir {
    std::string rel;
    struct stat st;
  };

  const Selector& sel_;
  State state_;
  std::vector<WaitingDir> waiting_dirs_;  // excluded directories, outermost first
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
    std::string rel;
    h.walk(fd.get(), dir, path, rel, sel.included(path));
    return h.finish();
  } catch (base::Error& e) {
    throw e.add_context("while checksumming `" + dir + "`");
  }
}

}  // namespace builder::cache
