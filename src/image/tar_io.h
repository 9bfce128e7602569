// image/tar_io.h — internal plumbing shared by layer.cpp, layer_extract.cpp and
// archive.cpp: gzip compression into a blob writer, a reader that undoes gzip (when
// present) and hashes the plain stream, libarchive handles and entry-path checks.
// Not a public contract: other modules use layer.h, store.h and archive.h.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <locale.h>
#include <zlib.h>

#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/digest.h"
#include "cache/blob_store.h"

namespace builder::image::detail {

/// gzip level of the layers we write. 1 (Z_BEST_SPEED) keeps layer export cheap on
/// large trees; the size cost against level 6 is typically 10-15%. Changing it
/// changes layer digests (not diff ids).
inline constexpr int kGzipLevel = 1;

/// Deflates (gzip wrapper, mtime 0, so output is reproducible) into a blob writer and
/// hashes the uncompressed input, which is the layer's diff id.
class GzipWriter {
 public:
  explicit GzipWriter(cache::BlobStore::Writer& out, int level = kGzipLevel);
  ~GzipWriter();
  GzipWriter(const GzipWriter&) = delete;
  GzipWriter& operator=(const GzipWriter&) = delete;
  void write(const void* data, size_t n);
  /// Flushes the gzip trailer; returns the sha256 of all bytes given to write().
  base::Digest finish();
  uint64_t plain_size() const { return plain_size_; }

 private:
  void deflate_some(int flush);
  cache::BlobStore::Writer& out_;
  z_stream zs_{};
  base::Sha256 hash_;
  uint64_t plain_size_ = 0;
  std::vector<unsigned char> buf_;
  bool finished_ = false;
};

/// Reads a layer from `fd`, inflating it when it starts with the gzip magic (several
/// gzip members are read as one stream), and hashes the plain bytes it returns.
/// Throws base::Error on zstd (not supported yet) and on corrupt gzip.
class PlainReader {
 public:
  explicit PlainReader(int fd);
  ~PlainReader();
  PlainReader(const PlainReader&) = delete;
  PlainReader& operator=(const PlainReader&) = delete;
  /// Up to `n` plain bytes into `buf`; 0 at the end of the stream.
  size_t read(void* buf, size_t n);
  /// Reads (and hashes) whatever libarchive left unread, such as the zero blocks
  /// after the end-of-archive marker; returns the sha256 of the plain stream.
  base::Digest finish();
  bool gzipped() const { return gzip_; }
  /// Called with each plain chunk returned (e.g. to recompress while reading).
  void set_tee(void (*fn)(void* ctx, const void* data, size_t n), void* ctx) {
    tee_ = fn;
    tee_ctx_ = ctx;
  }

  /// libarchive read callback adapter; `client` is a PlainReader*. Exceptions are kept
  /// in `error` and rethrown by rethrow_if_failed().
  static la_ssize_t archive_read_cb(struct archive* a, void* client, const void** buf);
  void rethrow_if_failed();

 private:
  bool fill_raw();
  int fd_;
  bool gzip_ = false;
  bool raw_eof_ = false;
  bool stream_end_ = false;
  z_stream zs_{};
  bool zs_init_ = false;
  std::vector<unsigned char> raw_;
  size_t raw_pos_ = 0, raw_len_ = 0;
  std::vector<unsigned char> out_;
  base::Sha256 hash_;
  void (*tee_)(void*, const void*, size_t) = nullptr;
  void* tee_ctx_ = nullptr;
  std::exception_ptr error_;
};

/// Switches this thread to the C.UTF-8 ctype locale while alive, so libarchive
/// converts UTF-8 pax path names (e.g. ca-certificates' non-ASCII file names)
/// without loss. Per-thread (uselocale), so safe in a multithreaded process.
class Utf8Locale {
 public:
  Utf8Locale();
  ~Utf8Locale();
  Utf8Locale(const Utf8Locale&) = delete;
  Utf8Locale& operator=(const Utf8Locale&) = delete;

 private:
  locale_t loc_ = nullptr;
  locale_t old_ = nullptr;
};

struct ArchiveReadFree {
  void operator()(struct archive* a) const { archive_read_free(a); }
};
struct ArchiveWriteFree {
  void operator()(struct archive* a) const { archive_write_free(a); }
};
struct EntryFree {
  void operator()(struct archive_entry* e) const { archive_entry_free(e); }
};
using ArchiveReader = std::unique_ptr<struct archive, ArchiveReadFree>;
using ArchiveWriter = std::unique_ptr<struct archive, ArchiveWriteFree>;
using Entry = std::unique_ptr<struct archive_entry, EntryFree>;

/// Where a tar writer's bytes go. Exceptions thrown by write() are kept in `error`
/// (libarchive is C) and rethrown by rethrow_if_failed().
struct TarSink {
  virtual ~TarSink() = default;
  virtual void write(const void* data, size_t n) = 0;
  void rethrow_if_failed();
  std::exception_ptr error;
};

/// A tar writer (pax restricted, like Docker's, raw byte names, no block padding: the
/// stream ends with the two zero records) writing into `sink`, which must outlive it.
ArchiveWriter new_tar_writer(TarSink& sink);
/// Throws base::Error("<what>: <libarchive message>") when rc is below ARCHIVE_WARN.
void check_archive(struct archive* a, int rc, const std::string& what);

/// Normalises a tar entry name to a relative path without "./", "//" or a trailing
/// '/'; "" means the root itself. Throws base::Error("invalid path in layer ...") for
/// absolute paths and any ".." component.
std::string clean_entry_path(std::string_view name);
/// Entry path as UTF-8 when libarchive has it so, else the raw bytes.
std::string entry_path(struct archive_entry* e);
std::string entry_hardlink(struct archive_entry* e);

}  // namespace builder::image::detail
