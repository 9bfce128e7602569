// cache/blob_store.h — the content store: immutable blobs addressed by sha256 under
// root/content/blobs/sha256/<hex>. Writes go to root/content/ingest/, are hashed while
// streaming, verified, fsynced and renamed into place, so no torn blob is ever visible
// under its digest. Knows nothing of what the blobs mean (layers, manifests).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/digest.h"
#include "base/fd.h"

namespace builder::cache {

/// Thread-safe.
class BlobStore {
 public:
  explicit BlobStore(std::string root);  ///< `root` is the builder root

  /// An in-progress blob. Destroying it without commit() removes the ingest file.
  class Writer {
   public:
    ~Writer();
    Writer(Writer&&) noexcept;
    Writer& operator=(Writer&&) = delete;
    void write(const void* data, size_t n);
    void write(std::string_view s) { write(s.data(), s.size()); }
    uint64_t size() const { return size_; }
    /// Verifies against `expected` (if given; throws base::Error "digest mismatch"
    /// and discards the data), fsyncs and renames into place. Returns the digest.
    base::Digest commit(const std::optional<base::Digest>& expected = std::nullopt);

   private:
    friend class BlobStore;
    Writer(BlobStore* store, std::string path, base::Fd fd);
    BlobStore* store_;
    std::string path_;
    base::Fd fd_;
    base::Sha256 hash_;
    uint64_t size_ = 0;
    bool done_ = false;
  };

  Writer ingest();
  /// Writes a whole blob; returns its digest.
  base::Digest put(std::string_view data);
  bool has(const base::Digest& d) const;
  /// Path of a committed blob (whether or not it exists).
  std::string path(const base::Digest& d) const;
  /// Whole content; throws base::Error if missing.
  std::string read(const base::Digest& d) const;
  base::Fd open(const base::Digest& d) const;
  /// Size in bytes; throws if missing.
  uint64_t size(const base::Digest& d) const;
  /// Re-hashes a blob; false if its bytes do not match its name.
  bool verify(const base::Digest& d) const;
  void remove(const base::Digest& d);
  /// Removes ingest files not written by a live process of this root (repair).
  void remove_stale_ingests();

 private:
  std::string root_;
};

}  // namespace builder::cache
