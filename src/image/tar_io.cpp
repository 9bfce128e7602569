#include "image/tar_io.h"

#include <libdeflate.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "base/error.h"
#include "base/strings.h"

namespace builder::image::detail {

namespace {
constexpr size_t kChunk = 256 * 1024;
}

// ---------------------------------------------------------------- LayerCompressor

Compression sniff_compression(const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  if (n >= 2 && p[0] == 0x1f && p[1] == 0x8b) return Compression::Gzip;
  if (n >= 4 && p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd) return Compression::Zstd;
  return Compression::Uncompressed;
}

namespace {

unsigned default_threads() {
  cpu_set_t set;
  unsigned n = 0;
  if (::sched_getaffinity(0, sizeof set, &set) == 0) n = static_cast<unsigned>(CPU_COUNT(&set));
  if (n == 0) n = std::thread::hardware_concurrency();
  return std::clamp(n, 1u, 8u);
}

libdeflate_compressor* new_deflate(int level) {
  auto* c = libdeflate_alloc_compressor(level);
  if (!c) throw base::Error("gzip: cannot allocate a compressor at level " + std::to_string(level));
  return c;
}

}  // namespace

LayerCompressor::LayerCompressor(cache::BlobStore::Writer& out, Compression type, int level, unsigned threads)
    : out_(out), type_(type), level_(level), threads_(threads ? std::min(threads, 64u) : default_threads()) {
  if (type_ == Compression::Gzip) {
    if (level_ < 0 || level_ > 12) throw base::Error("gzip level " + std::to_string(level_) + " is not in 0..12");
    cur_.reserve(kGzipChunk);
  } else if (type_ == Compression::Zstd) {
    zcctx_ = ZSTD_createCCtx();
    if (!zcctx_) throw base::Error("zstd: cannot allocate a compression context");
    auto set = [&](ZSTD_cParameter p, int v, const char* what) {
      size_t rc = ZSTD_CCtx_setParameter(zcctx_, p, v);
      if (ZSTD_isError(rc)) {
        ZSTD_freeCCtx(zcctx_);
        zcctx_ = nullptr;
        throw base::Error(std::string("zstd: ") + what + ": " + ZSTD_getErrorName(rc));
      }
    };
    set(ZSTD_c_compressionLevel, level_, "compression level");
    set(ZSTD_c_checksumFlag, 1, "checksum");
    // nbWorkers >= 1 always: libzstd's multi-threaded format is the same for every
    // worker count, but differs from its single-threaded one (nbWorkers = 0).
    set(ZSTD_c_nbWorkers, static_cast<int>(threads_), "workers");
    zout_.resize(ZSTD_CStreamOutSize());
  }
}

LayerCompressor::~LayerCompressor() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : workers_) t.join();
  if (inline_compressor_) libdeflate_free_compressor(static_cast<libdeflate_compressor*>(inline_compressor_));
  if (zcctx_) ZSTD_freeCCtx(zcctx_);
}

void LayerCompressor::compress_chunk(void* compressor, Job& j) {
  auto* c = static_cast<libdeflate_compressor*>(compressor);
  j.out.resize(libdeflate_gzip_compress_bound(c, j.in.size()));
  size_t n = libdeflate_gzip_compress(c, j.in.data(), j.in.size(), j.out.data(), j.out.size());
  if (n == 0) throw base::Error("gzip: compression failed");
  j.out.resize(n);
}

void LayerCompressor::worker() {
  libdeflate_compressor* c = nullptr;
  std::exception_ptr alloc_error;
  try {
    c = new_deflate(level_);
  } catch (...) {
    alloc_error = std::current_exception();
  }
  for (;;) {
    Job* j = nullptr;
    {
      std::unique_lock lock(mu_);
      work_cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_) break;  // only after finish() or on an error: queued work is moot
      j = queue_.front();
      queue_.pop_front();
    }
    std::exception_ptr err = alloc_error;
    if (!err) {
      try {
        compress_chunk(c, *j);
      } catch (...) {
        err = std::current_exception();
      }
    }
    {
      std::lock_guard lock(mu_);
      j->error = err;
      j->done = true;
    }
    done_cv_.notify_all();
  }
  if (c) libdeflate_free_compressor(c);
}

void LayerCompressor::write_job(Job& j) {
  if (j.error) std::rethrow_exception(j.error);
  out_.write(j.out.data(), j.out.size());
  j.in.clear();
  spare_.push_back(std::move(j.in));
  spare_.push_back(std::move(j.out));
}

void LayerCompressor::submit_chunk() {
  auto job = std::make_unique<Job>();
  job->in = std::move(cur_);
  if (!spare_.empty()) {
    cur_ = std::move(spare_.back());
    spare_.pop_back();
    cur_.clear();
  } else {
    cur_ = {};
  }
  cur_.reserve(kGzipChunk);
  if (!spare_.empty()) {
    job->out = std::move(spare_.back());
    spare_.pop_back();
  }
  if (threads_ <= 1) {
    if (!inline_compressor_) inline_compressor_ = new_deflate(level_);
    compress_chunk(inline_compressor_, *job);
    write_job(*job);
    return;
  }
  if (workers_.empty())
    for (unsigned i = 0; i < threads_; ++i) workers_.emplace_back([this] { worker(); });
  {
    std::lock_guard lock(mu_);
    queue_.push_back(job.get());
  }
  pending_.push_back(std::move(job));
  work_cv_.notify_one();
  write_done_jobs(false);
}

void LayerCompressor::write_done_jobs(bool all) {
  std::unique_lock lock(mu_);
  while (!pending_.empty() && (all || pending_.front()->done || pending_.size() > 2 * threads_)) {
    done_cv_.wait(lock, [&] { return pending_.front()->done; });
    auto front = std::move(pending_.front());
    pending_.pop_front();
    lock.unlock();
    write_job(*front);
    lock.lock();
  }
}

void LayerCompressor::zstd_write(const void* data, size_t n, ZSTD_EndDirective end) {
  ZSTD_inBuffer in{data, n, 0};
  for (;;) {
    ZSTD_outBuffer o{zout_.data(), zout_.size(), 0};
    size_t rc = ZSTD_compressStream2(zcctx_, &o, &in, end);
    if (ZSTD_isError(rc)) throw base::Error(std::string("zstd: compression failed: ") + ZSTD_getErrorName(rc));
    if (o.pos) out_.write(zout_.data(), o.pos);
    if (end == ZSTD_e_end ? rc == 0 : in.pos == in.size) return;
  }
}

void LayerCompressor::write(const void* data, size_t n) {
  if (finished_) throw base::Error("layer compressor: write after finish");
  hash_.update(data, n);
  plain_size_ += n;
  switch (type_) {
    case Compression::Uncompressed: out_.write(data, n); break;
    case Compression::Zstd: zstd_write(data, n, ZSTD_e_continue); break;
    case Compression::Gzip: {
      const auto* p = static_cast<const unsigned char*>(data);
      while (n) {
        size_t take = std::min(n, kGzipChunk - cur_.size());
        cur_.insert(cur_.end(), p, p + take);
        p += take;
        n -= take;
        if (cur_.size() == kGzipChunk) submit_chunk();
      }
      break;
    }
  }
}

base::Digest LayerCompressor::finish() {
  if (finished_) throw base::Error("layer compressor: finished twice");
  finished_ = true;
  if (type_ == Compression::Zstd) {
    zstd_write(nullptr, 0, ZSTD_e_end);
  } else if (type_ == Compression::Gzip) {
    // The last, short chunk; an empty stream still gets one (empty) member.
    if (!cur_.empty() || plain_size_ == 0) {
      if (threads_ > 1 && workers_.empty()) threads_ = 1;  // a single chunk: no threads
      submit_chunk();
    }
    write_done_jobs(true);
  }
  return hash_.finish();
}

// ---------------------------------------------------------------- PlainReader

PlainReader::PlainReader(int fd) : fd_(fd), raw_(kChunk), out_(kChunk) {
  // The magic may straddle short reads (a pipe): read until 4 bytes or the end.
  fill_raw();
  while (raw_len_ < 4 && !raw_eof_) {
    ssize_t n = ::read(fd_, raw_.data() + raw_len_, raw_.size() - raw_len_);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw base::SysError(errno, "read layer");
    }
    if (n == 0) raw_eof_ = true;
    raw_len_ += static_cast<size_t>(n);
  }
  type_ = sniff_compression(raw_.data(), raw_len_);
  if (type_ == Compression::Gzip) {
    gzip_ = true;
    if (inflateInit2(&zs_, 15 + 16) != Z_OK) throw base::Error("gzip: inflateInit2 failed");
    zs_init_ = true;
    zs_.next_in = raw_.data();
    zs_.avail_in = static_cast<uInt>(raw_len_);
  } else if (type_ == Compression::Zstd) {
    zd_ = ZSTD_createDCtx();
    if (!zd_) throw base::Error("zstd: cannot allocate a decompression context");
    // Frames may use windows up to 2 GiB (--long); anything larger is refused.
    ZSTD_DCtx_setParameter(zd_, ZSTD_d_windowLogMax, 31);
  }
}

PlainReader::~PlainReader() {
  if (zs_init_) inflateEnd(&zs_);
  if (zd_) ZSTD_freeDCtx(zd_);
}

size_t PlainReader::read_zstd(void* buf, size_t n) {
  ZSTD_outBuffer out{buf, n, 0};
  while (out.pos == 0) {
    bool eof = raw_pos_ == raw_len_ && !fill_raw();
    if (eof && zstd_pending_ == 0) return 0;  // the last frame was complete and flushed
    // At the end of the input this still flushes what the decoder holds.
    ZSTD_inBuffer in{raw_.data(), raw_len_, raw_pos_};
    size_t rc = ZSTD_decompressStream(zd_, &out, &in);
    raw_pos_ = in.pos;
    if (ZSTD_isError(rc)) throw base::Error(std::string("zstd: corrupt layer stream: ") + ZSTD_getErrorName(rc));
    zstd_pending_ = rc;
    if (eof && out.pos == 0 && rc != 0) throw base::Error("zstd: unexpected end of compressed layer");
  }
  return out.pos;
}

bool PlainReader::fill_raw() {
  if (raw_eof_) return false;
  for (;;) {
    ssize_t n = ::read(fd_, raw_.data(), raw_.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw base::SysError(errno, "read layer");
    }
    raw_pos_ = 0;
    raw_len_ = static_cast<size_t>(n);
    if (n == 0) raw_eof_ = true;
    return n > 0;
  }
}

size_t PlainReader::read(void* buf, size_t n) {
  size_t got = 0;
  if (type_ == Compression::Zstd) {
    got = read_zstd(buf, n);
  } else if (!gzip_) {
    if (raw_pos_ == raw_len_) fill_raw();
    got = std::min(n, raw_len_ - raw_pos_);
    std::memcpy(buf, raw_.data() + raw_pos_, got);
    raw_pos_ += got;
  } else {
    zs_.next_out = static_cast<unsigned char*>(buf);
    zs_.avail_out = static_cast<uInt>(n);
    while (!stream_end_ && zs_.avail_out == n) {
      if (zs_.avail_in == 0) {
        if (!fill_raw()) throw base::Error("gzip: unexpected end of compressed layer");
        zs_.next_in = raw_.data();
        zs_.avail_in = static_cast<uInt>(raw_len_);
      }
      int rc = inflate(&zs_, Z_NO_FLUSH);
      if (rc == Z_STREAM_END) {
        // Another gzip member may follow (pigz, concatenated streams): read on.
        if (zs_.avail_in == 0 && fill_raw()) {
          zs_.next_in = raw_.data();
          zs_.avail_in = static_cast<uInt>(raw_len_);
        }
        if (zs_.avail_in > 0 && zs_.next_in[0] == 0x1f) {
          inflateReset(&zs_);
        } else {
          stream_end_ = true;  // trailing garbage after the last member is ignored
        }
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        throw base::Error(std::string("gzip: corrupt layer stream: ") + (zs_.msg ? zs_.msg : "inflate failed"));
      }
    }
    got = n - zs_.avail_out;
  }
  if (got) {
    hash_.update(buf, got);
    if (tee_) tee_(tee_ctx_, buf, got);
  }
  return got;
}

base::Digest PlainReader::finish() {
  std::vector<unsigned char> scratch(kChunk);
  while (read(scratch.data(), scratch.size()) > 0) {
  }
  return hash_.finish();
}

la_ssize_t PlainReader::archive_read_cb(struct archive* a, void* client, const void** buf) {
  auto* r = static_cast<PlainReader*>(client);
  try {
    size_t n = r->read(r->out_.data(), r->out_.size());
    *buf = r->out_.data();
    return static_cast<la_ssize_t>(n);
  } catch (...) {
    r->error_ = std::current_exception();
    archive_set_error(a, EIO, "reading the layer stream failed");
    return -1;
  }
}

void PlainReader::rethrow_if_failed() {
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

// ---------------------------------------------------------------- Utf8Locale

Utf8Locale::Utf8Locale() {
  loc_ = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(0));
  if (loc_) old_ = uselocale(loc_);
}

Utf8Locale::~Utf8Locale() {
  if (loc_) {
    uselocale(old_);
    freelocale(loc_);
  }
}

// ---------------------------------------------------------------- tar writer

namespace {
la_ssize_t sink_write_cb(struct archive* a, void* client, const void* data, size_t n) {
  auto* sink = static_cast<TarSink*>(client);
  try {
    sink->write(data, n);
    return static_cast<la_ssize_t>(n);
  } catch (...) {
    sink->error = std::current_exception();
    archive_set_error(a, EIO, "writing the tar stream failed");
    return -1;
  }
}
}  // namespace

void TarSink::rethrow_if_failed() {
  if (error) std::rethrow_exception(std::exchange(error, nullptr));
}

ArchiveWriter new_tar_writer(TarSink& sink) {
  ArchiveWriter a(archive_write_new());
  if (!a) throw base::Error("libarchive: out of memory");
  check_archive(a.get(), archive_write_set_format_pax_restricted(a.get()), "tar writer");
  // xattrs as SCHILY.xattr.* records only, as Go's archive/tar writes them.
  check_archive(a.get(), archive_write_set_options(a.get(), "xattrheader=SCHILY"), "tar writer");
  // Names are bytes on Linux. Under Utf8Locale, names that are not UTF-8 make
  // libarchive fall back to a pax header with hdrcharset=BINARY for that entry alone.
  // No blocking: the stream is the 512-byte records plus two zero records, as Go's
  // archive/tar (Docker, BuildKit) writes it.
  check_archive(a.get(), archive_write_set_bytes_per_block(a.get(), 0), "tar writer");
  check_archive(a.get(), archive_write_open2(a.get(), &sink, nullptr, sink_write_cb, nullptr, nullptr),
                "tar writer");
  return a;
}

void check_archive(struct archive* a, int rc, const std::string& what) {
  if (rc >= ARCHIVE_WARN) return;
  const char* msg = archive_error_string(a);
  throw base::Error(what + ": " + (msg ? msg : "libarchive error"));
}

// ---------------------------------------------------------------- paths

std::string clean_entry_path(std::string_view name) {
  if (!name.empty() && name.front() == '/')
    throw base::Error("refusing tar entry `" + std::string(name) + "`: absolute path");
  std::vector<std::string> parts;
  for (auto& p : base::split(name, '/')) {
    if (p.empty() || p == ".") continue;
    if (p == "..") throw base::Error("refusing tar entry `" + std::string(name) + "`: path escapes the destination");
    parts.push_back(std::move(p));
  }
  return base::join(parts, "/");
}

std::string entry_path(struct archive_entry* e) {
  if (const char* u = archive_entry_pathname_utf8(e)) return u;
  if (const char* m = archive_entry_pathname(e)) return m;
  return {};
}

std::string entry_hardlink(struct archive_entry* e) {
  if (const char* u = archive_entry_hardlink_utf8(e)) return u;
  if (const char* m = archive_entry_hardlink(e)) return m;
  return {};
}

}  // namespace builder::image::detail
