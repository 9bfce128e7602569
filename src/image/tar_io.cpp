#include "image/tar_io.h"

#include <unistd.h>

#include <cstring>

#include "base/error.h"
#include "base/strings.h"

namespace builder::image::detail {

namespace {
constexpr size_t kChunk = 256 * 1024;
}

// ---------------------------------------------------------------- GzipWriter

GzipWriter::GzipWriter(cache::BlobStore::Writer& out, int level) : out_(out), buf_(kChunk) {
  // windowBits 15 + 16: gzip wrapper with a zeroed header (no name, mtime 0).
  if (deflateInit2(&zs_, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw base::Error("gzip: deflateInit2 failed");
}

GzipWriter::~GzipWriter() { deflateEnd(&zs_); }

void GzipWriter::deflate_some(int flush) {
  for (;;) {
    zs_.next_out = buf_.data();
    zs_.avail_out = static_cast<uInt>(buf_.size());
    int rc = deflate(&zs_, flush);
    if (rc == Z_STREAM_ERROR) throw base::Error("gzip: deflate failed");
    size_t produced = buf_.size() - zs_.avail_out;
    if (produced) out_.write(buf_.data(), produced);
    if (flush == Z_FINISH) {
      if (rc == Z_STREAM_END) return;
    } else if (zs_.avail_in == 0 && zs_.avail_out != 0) {
      return;
    }
  }
}

void GzipWriter::write(const void* data, size_t n) {
  if (finished_) throw base::Error("gzip: write after finish");
  hash_.update(data, n);
  plain_size_ += n;
  const auto* p = static_cast<const unsigned char*>(data);
  while (n) {
    size_t take = std::min<size_t>(n, 1u << 30);
    zs_.next_in = const_cast<unsigned char*>(p);
    zs_.avail_in = static_cast<uInt>(take);
    deflate_some(Z_NO_FLUSH);
    p += take;
    n -= take;
  }
}

base::Digest GzipWriter::finish() {
  zs_.next_in = nullptr;
  zs_.avail_in = 0;
  deflate_some(Z_FINISH);
  finished_ = true;
  return hash_.finish();
}

// ---------------------------------------------------------------- PlainReader

PlainReader::PlainReader(int fd) : fd_(fd), raw_(kChunk), out_(kChunk) {
  fill_raw();
  const unsigned char* p = raw_.data();
  if (raw_len_ >= 2 && p[0] == 0x1f && p[1] == 0x8b) {
    gzip_ = true;
    if (inflateInit2(&zs_, 15 + 16) != Z_OK) throw base::Error("gzip: inflateInit2 failed");
    zs_init_ = true;
    zs_.next_in = raw_.data();
    zs_.avail_in = static_cast<uInt>(raw_len_);
  } else if (raw_len_ >= 4 && p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd) {
    // TODO(image): zstd layers need libzstd linked into builder_image.
    throw base::Error("zstd-compressed layers are not supported yet");
  }
}

PlainReader::~PlainReader() {
  if (zs_init_) inflateEnd(&zs_);
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
  if (!gzip_) {
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
