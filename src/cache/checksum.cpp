#include "cache/checksum.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <ctime>
#include <map>
#include <memory>
#include <utility>

#include "base/error.h"
#include "base/fd.h"
#include "base/fs.h"
#include "cache/merged_fs.h"
#include "cache/path_filter.h"

namespace builder::cache {
namespace {

// Record format v3. Per include path in order, per path it selects (a wildcard's matches
// in walk order, else the path itself; nothing for a missing one): str(selected path),
// then the entry it resolves to and, for a directory, its subtree depth-first with
// siblings sorted by name. Entry: str(path relative to the resolved one, "." for itself)
// u8(type); for everything but that directory itself: u32(mode & 07777) u64(rdev)
// str(symlink target) u64(xattr count) {str(name) str(value)} str(first path of its hard
// link group or "") 16 bytes XXH3-128(content). str = u64 length + bytes; integers
// little-endian. Changing it changes every context checksum (bump kChecksumVersion).
// v2: exclude patterns follow PathFilter. v3: sources are followed through symlinks and
// select as the COPY does; owners and the copied directory's own mode left out, xattrs
// and hard links in.
constexpr uint32_t kChecksumVersion = 3;

struct StateDeleter {
  void operator()(XXH3_state_t* s) const { XXH3_freeState(s); }
};
using State = std::unique_ptr<XXH3_state_t, StateDeleter>;

State new_state() {
  State s(XXH3_createState());
  if (!s || XXH3_128bits_reset(s.get()) == XXH_ERROR) throw base::Error("checksum: xxhash init failed");
  return s;
}

bool is_overlay_xattr(const std::string& name) {
  return name.rfind("trusted.overlay.", 0) == 0 || name.rfind("user.overlay.", 0) == 0;
}

/// The xattrs a COPY carries over (overlayfs' own are never copied), sorted by name; of
/// the open `fd` if there is one (no second path walk), else of `path` itself.
std::vector<std::pair<std::string, std::string>> read_xattrs(const std::string& path, int fd) {
  auto list = [&](char* buf, size_t size) {
    return fd >= 0 ? ::flistxattr(fd, buf, size) : ::llistxattr(path.c_str(), buf, size);
  };
  auto get = [&](const std::string& name, void* buf, size_t size) {
    return fd >= 0 ? ::fgetxattr(fd, name.c_str(), buf, size) : ::lgetxattr(path.c_str(), name.c_str(), buf, size);
  };
  std::vector<std::pair<std::string, std::string>> out;
  ssize_t n = list(nullptr, 0);
  if (n <= 0) return out;
  std::string names(static_cast<size_t>(n), '\0');
  n = list(names.data(), names.size());
  if (n <= 0) return out;
  for (size_t i = 0; i < static_cast<size_t>(n);) {
    std::string name(names.c_str() + i);
    i += name.size() + 1;
    if (name.empty() || is_overlay_xattr(name)) continue;
    ssize_t m = get(name, nullptr, 0);
    if (m < 0) continue;
    std::string value(static_cast<size_t>(m), '\0');
    m = get(name, value.data(), value.size());
    if (m < 0) continue;
    value.resize(static_cast<size_t>(m));
    out.emplace_back(std::move(name), std::move(value));
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string hex128(const XXH128_hash_t& h) {
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, h);
  static const char* hexd = "0123456789abcdef";
  std::string out;
  for (unsigned char b : c.digest) {
    out.push_back(hexd[b >> 4]);
    out.push_back(hexd[b & 15]);
  }
  return out;
}

/// Files whose mtime or ctime is this close to now may still be changing within one
/// timestamp tick; their hashes are not remembered.
constexpr int64_t kRacySeconds = 2;

class Hasher {
 public:
  Hasher(const MergedFs& view, ChecksumMemo* memo, std::vector<FileSum>* files)
      : view_(view), memo_(memo), files_(files), state_(new_state()), entry_state_(files ? new_state() : nullptr),
        now_(::time(nullptr)) {
    put_u32(kChecksumVersion);
  }

  /// Hashes what copying the source `path` reads.
  void add_source(const std::string& path) {
    std::string clean = clean_rel(path);
    if (!has_wildcards(clean)) {
      add_selected(clean);
      return;
    }
    // A prefix that is missing, a symlink loop or a malformed pattern fail the COPY;
    // nothing to cover.
    MergedFs::Glob g;
    try {
      g = view_.glob(clean);
    } catch (const base::Error&) {
      return;
    }
    if (g.bad_pattern) return;
    for (const auto& m : g.matches) add_selected(m);
  }

  std::string finish() { return hex128(XXH3_128bits_digest(state_.get())); }

 private:
  // `selected` is copied as what it resolves to.
  void add_selected(const std::string& selected) {
    std::string resolved;
    try {
      resolved = view_.resolve(selected, true);
    } catch (const base::Error&) {
      return;  // a symlink loop fails the COPY
    }
    auto e = view_.lookup(resolved);
    if (!e) return;
    put_str(selected);
    links_.clear();
    selected_ = selected;
    if (S_ISDIR(e->st.st_mode)) {
      // The copy gives the directory itself only its mtime, which keys leave out.
      put_str(".");
      put_u8('d');
      walk(resolved, "");
    } else {
      put_entry(".", *e);
    }
  }

  void walk(const std::string& dir, const std::string& rel) {
    for (const auto& [name, e] : view_.entries(dir)) {
      std::string child = dir.empty() ? name : dir + "/" + name;
      std::string child_rel = rel.empty() ? name : rel + "/" + name;
      put_entry(child_rel, e);
      if (S_ISDIR(e.st.st_mode)) walk(child, child_rel);
    }
  }

  /// The content hash of a regular file: remembered, or read from `fd` (opened here
  /// if the caller has none yet).
  XXH128_hash_t content_of(const MergedFs::Entry& e, base::Fd& fd) {
    if (memo_) {
      if (auto h = memo_->get(e.st)) return XXH128_hash_t{h->low, h->high};
    }
    if (!fd) fd = open_file(e.host_path);
    XXH128_hash_t h = hash_content(fd.get(), e.host_path);
    // Re-check the identity after reading: a file written meanwhile is not remembered.
    struct stat after;
    if (memo_ && ::fstat(fd.get(), &after) == 0 && after.st_size == e.st.st_size &&
        after.st_mtim.tv_sec == e.st.st_mtim.tv_sec && after.st_mtim.tv_nsec == e.st.st_mtim.tv_nsec &&
        after.st_ctim.tv_sec == e.st.st_ctim.tv_sec && after.st_ctim.tv_nsec == e.st.st_ctim.tv_nsec &&
        now_ - std::max<int64_t>(after.st_mtim.tv_sec, after.st_ctim.tv_sec) >= kRacySeconds)
      memo_->put(e.st, ChecksumMemo::Hash{h.low64, h.high64});
    return h;
  }

  static base::Fd open_file(const std::string& path) {
    int f = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    if (f < 0) throw base::SysError(errno, "open", path);
    return base::Fd(f);
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

  void put_entry(const std::string& rel, const MergedFs::Entry& e) {
    const struct stat& st = e.st;
    if (entry_state_ && XXH3_128bits_reset(entry_state_.get()) == XXH_ERROR)
      throw base::Error("checksum: xxhash init failed");
    put_str(rel);
    put_u8(static_cast<uint8_t>(type_of(st.st_mode)));
    put_u32(st.st_mode & 07777);
    put_u64((S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) ? st.st_rdev : 0);
    put_str(S_ISLNK(st.st_mode) ? base::read_link(e.host_path) : std::string());
    // Without a memo the file is opened once for both its xattrs and its content; with
    // one, a remembered file is never opened.
    base::Fd fd;
    if (S_ISREG(st.st_mode) && !memo_) fd = open_file(e.host_path);
    XXH128_hash_t content{0, 0};
    if (S_ISREG(st.st_mode)) content = content_of(e, fd);
    auto xattrs = read_xattrs(e.host_path, fd.get());
    put_u64(xattrs.size());
    for (const auto& [k, v] : xattrs) {
      put_str(k);
      put_str(v);
    }
    // The copy links a file to the first copy of it when the source is hard linked.
    std::string link;
    if (S_ISREG(st.st_mode) && st.st_nlink > 1) {
      auto [it, fresh] = links_.emplace(std::make_pair(st.st_dev, st.st_ino), rel);
      if (!fresh) link = it->second;
    }
    put_str(link);
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, content);
    put(c.digest, sizeof c.digest);
    if (files_) {
      std::string path = rel == "." ? selected_ : selected_.empty() ? rel : selected_ + "/" + rel;
      files_->push_back({std::move(path), hex128(XXH3_128bits_digest(entry_state_.get()))});
    }
  }

  void put(const void* p, size_t n) {
    XXH3_128bits_update(state_.get(), p, n);
    if (entry_state_) XXH3_128bits_update(entry_state_.get(), p, n);
  }
  void put_u8(uint8_t v) { put(&v, 1); }
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

  static XXH128_hash_t hash_content(int fd, const std::string& path) {
    State s = new_state();
    std::unique_ptr<char[]> buf(new char[1 << 16]);
    for (;;) {
      ssize_t n = ::read(fd, buf.get(), 1 << 16);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw base::SysError(errno, "read", path);
      }
      if (n == 0) break;
      XXH3_128bits_update(s.get(), buf.get(), static_cast<size_t>(n));
    }
    return XXH3_128bits_digest(s.get());
  }

  const MergedFs& view_;
  ChecksumMemo* memo_;
  std::vector<FileSum>* files_;
  State state_;
  State entry_state_;  // the current entry's own record, for `files_`
  int64_t now_;
  std::string selected_;  // the source path being hashed
  std::map<std::pair<dev_t, ino_t>, std::string> links_;  // hard links within one source
};

// Memo file: magic "BMEMO1\n\0", then entries of 10 little-endian 64-bit words: dev,
// ino, size, mtime s, mtime ns, ctime s, ctime ns, hash low, hash high, last used.
constexpr char kMemoMagic[8] = {'B', 'M', 'E', 'M', 'O', '1', '\n', '\0'};
constexpr int64_t kMemoKeepSeconds = 7 * 24 * 3600;

}  // namespace

ChecksumMemo::ChecksumMemo(std::string path) : path_(std::move(path)) {
  std::string data;
  try {
    data = base::read_file(path_);
  } catch (const base::Error&) {
    return;  // no memo yet
  }
  constexpr size_t kWords = 10, kSize = kWords * 8;
  if (data.size() < sizeof kMemoMagic || data.compare(0, sizeof kMemoMagic, kMemoMagic, sizeof kMemoMagic) != 0 ||
      (data.size() - sizeof kMemoMagic) % kSize != 0)
    return;  // damaged: start empty
  for (size_t off = sizeof kMemoMagic; off < data.size(); off += kSize) {
    uint64_t w[kWords];
    for (size_t i = 0; i < kWords; ++i) {
      uint64_t v = 0;
      for (int b = 7; b >= 0; --b) v = (v << 8) | static_cast<unsigned char>(data[off + i * 8 + static_cast<size_t>(b)]);
      w[i] = v;
    }
    entries_[{w[0], w[1]}] = Entry{static_cast<int64_t>(w[2]), static_cast<int64_t>(w[3]), static_cast<int64_t>(w[4]),
                                   static_cast<int64_t>(w[5]), static_cast<int64_t>(w[6]), Hash{w[7], w[8]},
                                   static_cast<int64_t>(w[9])};
  }
}

bool ChecksumMemo::same(const Entry& e, const struct stat& st) {
  return e.size == st.st_size && e.mtime_s == st.st_mtim.tv_sec && e.mtime_ns == st.st_mtim.tv_nsec &&
         e.ctime_s == st.st_ctim.tv_sec && e.ctime_ns == st.st_ctim.tv_nsec;
}

std::optional<ChecksumMemo::Hash> ChecksumMemo::get(const struct stat& st) {
  std::lock_guard lk(mu_);
  auto it = entries_.find({static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)});
  if (it == entries_.end() || !same(it->second, st)) return std::nullopt;
  int64_t now = ::time(nullptr);
  // Refresh "last used" at most daily, so that a warm build does not rewrite the memo.
  if (now - it->second.used > 24 * 3600) {
    it->second.used = now;
    dirty_ = true;
  }
  return it->second.hash;
}

void ChecksumMemo::put(const struct stat& st, Hash h) {
  std::lock_guard lk(mu_);
  entries_[{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)}] =
      Entry{st.st_size, st.st_mtim.tv_sec, st.st_mtim.tv_nsec, st.st_ctim.tv_sec, st.st_ctim.tv_nsec, h, ::time(nullptr)};
  dirty_ = true;
}

size_t ChecksumMemo::size() const {
  std::lock_guard lk(mu_);
  return entries_.size();
}

void ChecksumMemo::save() {
  std::lock_guard lk(mu_);
  if (!dirty_) return;
  int64_t now = ::time(nullptr);
  std::string data(kMemoMagic, sizeof kMemoMagic);
  data.reserve(sizeof kMemoMagic + entries_.size() * 80);
  for (auto it = entries_.begin(); it != entries_.end();) {
    const Entry& e = it->second;
    if (now - e.used > kMemoKeepSeconds) {
      it = entries_.erase(it);
      continue;
    }
    uint64_t w[10] = {it->first.first, it->first.second, static_cast<uint64_t>(e.size),
                      static_cast<uint64_t>(e.mtime_s), static_cast<uint64_t>(e.mtime_ns),
                      static_cast<uint64_t>(e.ctime_s), static_cast<uint64_t>(e.ctime_ns), e.hash.low, e.hash.high,
                      static_cast<uint64_t>(e.used)};
    for (uint64_t v : w)
      for (int b = 0; b < 8; ++b) data.push_back(static_cast<char>(v >> (8 * b)));
    ++it;
  }
  try {
    base::write_file_atomic(path_, data);
    dirty_ = false;
  } catch (const base::Error&) {
    // Not remembering only costs the next build a re-read.
  }
}

std::string checksum_paths(const std::string& dir, const std::vector<std::string>& include,
                           const std::vector<std::string>& exclude, ChecksumMemo* memo, std::vector<FileSum>* files) {
  try {
    struct stat st;
    if (::stat(dir.c_str(), &st) < 0) throw base::SysError(errno, "stat", dir);
    if (!S_ISDIR(st.st_mode)) throw base::SysError(ENOTDIR, "open", dir);
    MergedFs view = MergedFs::context(dir, PathFilter(exclude));
    Hasher h(view, memo, files);
    if (include.empty()) h.add_source("");
    for (const auto& p : include) h.add_source(p);
    return h.finish();
  } catch (base::Error& e) {
    throw e.add_context("while checksumming `" + dir + "`");
  }
}

}  // namespace builder::cache
