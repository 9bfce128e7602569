// image/tar_writer.h — the tar stream of the layers we write, byte for byte as Go's
// archive/tar writes it for containerd's archive.ChangeWriter (BuildKit's differ): so a
// tree gives the same diff id here as there. libarchive cannot produce that encoding
// (its octal fields, `PaxHeader/` names, base-256 ids, `././@LongSymLink`), so the
// headers are built here; reading stays with libarchive. Internal to image/.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "image/tar_io.h"

namespace builder::image::detail {

/// One tar entry, as containerd fills tar.Header: numeric ids, no user or group names,
/// whole-second mtime, no atime/ctime.
struct TarHeader {
  enum class Format {
    kPax,   ///< Go's FormatPAX (what ChangeWriter sets on every file entry): a pax
            ///< record for whatever the ustar fields cannot hold, never the ustar prefix
    kAuto,  ///< Go's unspecified format (ChangeWriter's whiteouts): plain ustar
            ///< (name split into prefix when long) unless only pax can encode it
  };
  std::string name;  ///< relative, '/'-terminated for directories
  char typeflag = '0';
  int64_t mode = 0;  ///< permission bits with setuid, setgid, sticky (07777)
  int64_t uid = 0;
  int64_t gid = 0;
  int64_t size = 0;   ///< bytes of data that follow (regular files only)
  int64_t mtime = 0;  ///< seconds since the epoch
  std::string linkname;
  int64_t devmajor = 0;
  int64_t devminor = 0;
  /// SCHILY.xattr.<name> records, values binary.
  std::vector<std::pair<std::string, std::string>> xattrs;
  Format format = Format::kPax;
};

/// The header blocks of `h` (a pax extended header first when needed), as Go writes
/// them. Throws base::Error for what Go refuses too (device numbers beyond 7 octal
/// digits, a NUL in a name, a trailing '/' on a file).
std::string encode_tar_header(const TarHeader& h);

/// Writes tar entries into `sink`: header, exactly `size` bytes of data, the padding to
/// 512 bytes; close() adds the two zero records and nothing more (no 10 KiB blocking),
/// as Go's tar.Writer. Not thread-safe; `sink` must outlive it.
class TarWriter {
 public:
  explicit TarWriter(TarSink& sink) : sink_(sink) {}
  void write_header(const TarHeader& h);
  /// Data of the current entry; throws base::Error past its size.
  void write_data(const void* data, size_t n);
  /// Ends the stream; throws base::Error if the current entry is short of data.
  void close();
  /// Whether any header was written.
  bool wrote_any() const { return any_; }
  /// rewrite-timestamp: every later header's mtime is clamped to at most `t`.
  void set_max_mtime(std::optional<int64_t> t) { max_mtime_ = t; }
  /// Whether a header's mtime was clamped.
  bool clamped_any() const { return clamped_; }

 private:
  void finish_entry();
  TarSink& sink_;
  int64_t left_ = 0;  ///< data still owed to the current entry
  int64_t pad_ = 0;   ///< zeros after it
  bool any_ = false;
  bool closed_ = false;
  std::optional<int64_t> max_mtime_;
  bool clamped_ = false;
};

/// Re-encodes the tar read from `src` entry by entry into `out` (whose max mtime, if
/// set, clamps the times), data copied: what rewrite-timestamp does to a stored layer.
/// Headers become TarHeaders (name, type, mode, ids, size, mtime, link, device, all
/// xattrs; user/group names, atime and ctime are dropped); `.wh.` whiteouts are plain
/// ustar as containerd writes them, every other entry pax, so a layer builder wrote
/// comes out byte for byte the same when nothing is clamped. Entry names must stay in
/// the root (base::Error otherwise). Returns whether the stream had any entry. Does
/// not close `out`.
bool reencode_tar(PlainReader& src, TarWriter& out);

}  // namespace builder::image::detail
