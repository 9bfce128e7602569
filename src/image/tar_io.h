// image/tar_io.h — internal plumbing shared by layer.cpp, layer_extract.cpp, compress.cpp
// and archive.cpp: layer compression into a blob writer (multi-core gzip, zstd, none), a
// reader that undoes gzip or zstd (detected) and hashes the plain stream, libarchive
// handles and entry-path checks.
// Not a public contract: other modules use layer.h, store.h and archive.h.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <locale.h>
#include <zlib.h>
#include <zstd.h>

#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <string>
#include <string_view>
#include <vector>

#include "base/digest.h"
#include "cache/blob_store.h"
#include "image/compress.h"

namespace builder::image::detail {

/// The compression a blob's first bytes announce: gzip (1f 8b), zstd (28 b5 2f fd), else
/// none.
Compression sniff_compression(const void* data, size_t n);

/// Plain bytes are cut into chunks of this size, each compressed on its own into one
/// gzip member, so the members can be made on several cores and the output does not
/// depend on how many. Changing it changes gzip layer digests (never diff ids).
inline constexpr size_t kGzipChunk = 1u << 20;

/// Compresses a layer's plain tar stream into a blob writer as `type` at `level` (an
/// effective level: compress.h), hashing the plain bytes, which is the diff id.
/// gzip: independent members of kGzipChunk plain bytes each (libdeflate, header mtime 0,
/// OS byte 255), compressed by up to `threads` worker threads (0: one per CPU, at most
/// 8) while the caller keeps producing; at most 2 chunks per thread are in flight, so
/// memory stays bounded; members are written in order. zstd: libzstd's streaming API
/// with ZSTD_c_nbWorkers >= 1 (its output is the same for any worker count) and a
/// content checksum. Uncompressed: the bytes as they are. The output depends only on
/// the input, type and level. Not thread-safe; `out` must outlive it.
class LayerCompressor {
 public:
  LayerCompressor(cache::BlobStore::Writer& out, Compression type, int level, unsigned threads = 0);
  ~LayerCompressor();
  LayerCompressor(const LayerCompressor&) = delete;
  LayerCompressor& operator=(const LayerCompressor&) = delete;
  void write(const void* data, size_t n);
  /// Flushes everything; returns the sha256 of all bytes given to write(). Throws
  /// base::Error if compression failed.
  base::Digest finish();
  uint64_t plain_size() const { return plain_size_; }

 private:
  struct Job {
    std::vector<unsigned char> in, out;
    bool done = false;
    std::exception_ptr error;
  };
  void submit_chunk();
  void write_job(Job& j);
  /// Writes finished jobs out in order: all of them (`all`), else those done and, while
  /// more than 2 * threads are in flight, the oldest once done (bounded memory).
  void write_done_jobs(bool all);
  void worker();
  void compress_chunk(void* compressor, Job& j);
  void zstd_write(const void* data, size_t n, ZSTD_EndDirective end);

  cache::BlobStore::Writer& out_;
  Compression type_;
  int level_;
  unsigned threads_;
  base::Sha256 hash_;
  uint64_t plain_size_ = 0;
  bool finished_ = false;
  // gzip
  std::vector<unsigned char> cur_;  ///< the chunk being filled
  void* inline_compressor_ = nullptr;  ///< libdeflate_compressor for the calling thread
  std::deque<std::unique_ptr<Job>> pending_;  ///< submitted, in output order
  std::vector<std::vector<unsigned char>> spare_;  ///< recycled buffers
  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  std::deque<Job*> queue_;  ///< jobs no worker took yet
  std::vector<std::thread> workers_;
  bool stop_ = false;
  // zstd
  ZSTD_CCtx* zcctx_ = nullptr;
  std::vector<unsigned char> zout_;
};

/// Reads a layer from `fd`, undoing the compression its first bytes announce: gzip
/// (several members are read as one stream; bytes after the last member that do not
/// start another are ignored, as gzip(1) does) or zstd (several frames read as one);
/// hashes the plain bytes it returns. Throws base::Error on corrupt or truncated gzip
/// or zstd input.
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
  Compression compression() const { return type_; }
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
  size_t read_zstd(void* buf, size_t n);
  int fd_;
  Compression type_ = Compression::Uncompressed;
  bool gzip_ = false;
  ZSTD_DCtx* zd_ = nullptr;
  size_t zstd_pending_ = 0;  ///< last ZSTD_decompressStream hint: 0 at a frame boundary
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
