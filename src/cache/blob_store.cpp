#include "cache/blob_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "base/error.h"
#include "base/fs.h"
#include "base/log.h"
#include "cache/store.h"

namespace builder::cache {
namespace {

std::string ingest_dir(const std::string& root) { return root + "/content/ingest"; }
std::string blobs_dir(const std::string& root) { return root + "/content/blobs/sha256"; }

const base::Digest& checked(const base::Digest& d) {
  if (d.empty()) throw base::Error("blob store: empty digest");
  return d;
}

}  // namespace

BlobStore::BlobStore(std::string root) : root_(std::move(root)) {}

BlobStore::Writer::Writer(BlobStore* store, std::string path, base::Fd fd)
    : store_(store), path_(std::move(path)), fd_(std::move(fd)) {}

BlobStore::Writer::Writer(Writer&& o) noexcept
    : store_(o.store_),
      path_(std::move(o.path_)),
      fd_(std::move(o.fd_)),
      hash_(std::move(o.hash_)),
      size_(o.size_),
      done_(o.done_) {
  o.done_ = true;
}

BlobStore::Writer::~Writer() {
  if (done_) return;
  fd_.reset();
  if (::unlink(path_.c_str()) < 0 && errno != ENOENT) {
    base::log_warn("blob store: cannot remove ingest file `" + path_ +
                   "`: " + std::strerror(errno));
  }
}

void BlobStore::Writer::write(const void* data, size_t n) {
  if (done_) throw base::Error("blob store: write after commit to `" + path_ + "`");
  try {
    base::write_all(fd_.get(), std::string_view(static_cast<const char*>(data), n));
  } catch (base::Error& e) {
    throw e.add_context("while writing ingest file `" + path_ + "`");
  }
  hash_.update(data, n);
  size_ += n;
}

base::Digest BlobStore::Writer::commit(const std::optional<base::Digest>& expected) {
  if (done_) throw base::Error("blob store: commit twice of `" + path_ + "`");
  base::Digest got = hash_.finish();
  if (expected && *expected != got) {
    fd_.reset();
    ::unlink(path_.c_str());
    done_ = true;
    throw base::Error("digest mismatch: expected " + expected->str() + ", got " + got.str());
  }
  // Durable content and read-only mode before the name makes it visible.
  base::check_sys(::fchmod(fd_.get(), 0444), "fchmod", path_);
  base::check_sys(::fsync(fd_.get()), "fsync", path_);
  fd_.reset();
  std::string dest = store_->path(got);
  if (::rename(path_.c_str(), dest.c_str()) < 0) {
    // The destructor removes the ingest file.
    throw base::SysError(errno, "rename", dest).add_context("while committing a blob");
  }
  done_ = true;
  base::fsync_dir(blobs_dir(store_->root_));
  return got;
}

BlobStore::Writer BlobStore::ingest() {
  std::string path =
      ingest_dir(root_) + "/" + std::to_string(::getpid()) + "-" + base::random_hex(8);
  base::Fd fd = base::open_fd(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
  return Writer(this, std::move(path), std::move(fd));
}

base::Digest BlobStore::put(std::string_view data) {
  // Skip the write when the blob exists: blobs are immutable and named by content.
  base::Digest d = base::Digest::of(data);
  // An existing blob's times are refreshed, which makes it fresh data that a concurrent
  // prune keeps (cache/gc.h): it may be unreferenced until our caller records it.
  if (has(d) && ::utimensat(AT_FDCWD, path(d).c_str(), nullptr, 0) == 0) return d;
  Writer w = ingest();
  w.write(data);
  return w.commit(d);
}

bool BlobStore::has(const base::Digest& d) const {
  struct stat st;
  return ::stat(path(d).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string BlobStore::path(const base::Digest& d) const {
  return blobs_dir(root_) + "/" + std::string(checked(d).hex());
}

std::string BlobStore::read(const base::Digest& d) const {
  base::Fd fd = open(d);
  return base::read_all(fd.get());
}

base::Fd BlobStore::open(const base::Digest& d) const {
  std::string p = path(d);
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) throw base::Error("blob " + d.str() + " not found");
    throw base::SysError(errno, "open", p);
  }
  return base::Fd(fd);
}

uint64_t BlobStore::size(const base::Digest& d) const {
  std::string p = path(d);
  struct stat st;
  if (::stat(p.c_str(), &st) < 0) {
    if (errno == ENOENT) throw base::Error("blob " + d.str() + " not found");
    throw base::SysError(errno, "stat", p);
  }
  return static_cast<uint64_t>(st.st_size);
}

bool BlobStore::verify(const base::Digest& d) const {
  // A missing blob does not match its name either.
  if (!has(d)) return false;
  base::Fd fd = open(d);
  base::Sha256 h;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw base::SysError(errno, "read", path(d));
    }
    if (n == 0) break;
    h.update(buf, static_cast<size_t>(n));
  }
  return h.finish() == d;
}

void BlobStore::remove(const base::Digest& d) {
  std::string p = path(d);
  if (::unlink(p.c_str()) < 0 && errno != ENOENT) throw base::SysError(errno, "unlink", p);
}

void BlobStore::remove_stale_ingests() {
  // Ingest files are named <pid>-<rand>; a file whose writer's liveness lock is not
  // held is garbage from a crash. Unparsable names are garbage too.
  std::string dir = ingest_dir(root_);
  DIR* d = ::opendir(dir.c_str());
  if (!d) {
    if (errno == ENOENT) return;
    throw base::SysError(errno, "opendir", dir);
  }
  std::vector<std::string> stale;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    char* end = nullptr;
    long pid = std::strtol(name.c_str(), &end, 10);
    bool parsed = end != name.c_str() && *end == '-' && pid > 0;
    if (!parsed || !process_alive(root_, static_cast<int>(pid))) stale.push_back(dir + "/" + name);
  }
  ::closedir(d);
  for (const auto& p : stale) {
    base::log_debug("blob store: removing stale ingest file `" + p + "`");
    base::remove_all(p);
  }
}

}  // namespace builder::cache
