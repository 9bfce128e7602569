// Tar headers as Go's archive/tar (Writer.WriteHeader) encodes them: the field
// formats of its `formatter`, the pax records of `Header.allowedFormats`, the
// `PaxHeaders.0` extended header of `writePAXHeader`/`writeRawFile`.
#include "image/tar_writer.h"

#include <algorithm>
#include <cstring>
#include <map>

#include "base/error.h"

namespace builder::image::detail {

namespace {

constexpr size_t kBlock = 512;
constexpr size_t kNameSize = 100;
constexpr size_t kPrefixSize = 155;
constexpr size_t kMaxPaxData = 1 << 20;  // Go's maxSpecialFileSize

// Field offsets of a ustar header.
constexpr size_t kName = 0, kMode = 100, kUid = 108, kGid = 116, kSize = 124, kMtime = 136, kChksum = 148, kType = 156,
                 kLink = 157, kMagic = 257, kVersion = 263, kDevMajor = 329, kDevMinor = 337, kPrefix = 345;

bool is_ascii(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c != 0 && static_cast<unsigned char>(c) < 0x80; });
}

/// Go's toASCII: drops every byte that is not 7-bit (or is NUL).
std::string to_ascii(const std::string& s) {
  std::string out;
  for (char c : s)
    if (c != 0 && static_cast<unsigned char>(c) < 0x80) out.push_back(c);
  return out;
}

bool fits_octal(size_t width, int64_t x) {
  // Go's fitsInOctal: width-1 digits and a NUL (fields of 22 bytes or more hold any value).
  return x >= 0 && (width >= 22 || x < (int64_t{1} << (3 * (width - 1))));
}

/// Go's formatter.formatString: copies, NUL-terminates if there is room; a name cut in
/// the middle does not end in '/' (readers would take a file for a directory).
void put_string(char* field, size_t width, const std::string& s) {
  std::memcpy(field, s.data(), std::min(width, s.size()));
  if (s.size() < width) field[s.size()] = '\0';
  if (s.size() > width && field[width - 1] == '/') {
    size_t n = width - 1;
    while (n > 0 && s[n - 1] == '/') --n;
    field[n] = '\0';
  }
}

/// Go's formatter.formatOctal: zero-padded to width-1 digits plus a NUL; a value that
/// does not fit is written as 0 (a pax record carries it).
void put_octal(char* field, size_t width, int64_t x) {
  if (!fits_octal(width, x)) x = 0;
  std::string digits;
  for (uint64_t v = static_cast<uint64_t>(x); v; v >>= 3)
    digits.insert(digits.begin(), static_cast<char>('0' + (v & 7)));
  if (digits.empty()) digits = "0";
  if (digits.size() + 1 < width) digits.insert(0, width - 1 - digits.size(), '0');
  put_string(field, width, digits);
}

void finish_block(char* b) {
  std::memcpy(b + kMagic, "ustar\0", 6);
  std::memcpy(b + kVersion, "00", 2);
  std::memset(b + kChksum, ' ', 8);
  unsigned sum = 0;
  for (size_t i = 0; i < kBlock; ++i) sum += static_cast<unsigned char>(b[i]);
  put_octal(b + kChksum, 7, sum);
  b[kChksum + 7] = ' ';
}

/// Go's formatPAXRecord: "<len> <key>=<value>\n", len counting itself.
std::string pax_record(const std::string& key, const std::string& value) {
  size_t size = key.size() + value.size() + 3;
  size += std::to_string(size).size();
  std::string rec = std::to_string(size) + " " + key + "=" + value + "\n";
  if (rec.size() != size) rec = std::to_string(rec.size()) + " " + key + "=" + value + "\n";
  return rec;
}

/// Go's splitUSTARPath: a long ASCII name split at a '/' into prefix (<= 155) and
/// name (<= 100).
bool split_ustar_path(const std::string& name, std::string& prefix, std::string& rest) {
  size_t length = name.size();
  if (length <= kNameSize || !is_ascii(name)) return false;
  if (length > kPrefixSize + 1)
    length = kPrefixSize + 1;
  else if (name[length - 1] == '/')
    --length;
  size_t i = name.rfind('/', length - 1);
  if (i == std::string::npos || i == 0) return false;
  size_t nlen = name.size() - i - 1;
  if (nlen > kNameSize || nlen == 0 || i > kPrefixSize) return false;
  prefix = name.substr(0, i);
  rest = name.substr(i + 1);
  return true;
}

/// path.Join(dir, "PaxHeaders.0", file) of path.Split(name), as Go names the extended
/// header; then writeRawFile's cut to 100 ASCII bytes without trailing '/'.
std::string pax_header_name(const std::string& name) {
  size_t slash = name.rfind('/');
  std::string dir = slash == std::string::npos ? "" : name.substr(0, slash);
  std::string file = slash == std::string::npos ? name : name.substr(slash + 1);
  while (!dir.empty() && dir.back() == '/') dir.pop_back();
  std::string out = dir.empty() ? "PaxHeaders.0" : dir + "/PaxHeaders.0";
  if (!file.empty()) out += "/" + file;
  out = to_ascii(out);
  if (out.size() > kNameSize) out.resize(kNameSize);
  while (!out.empty() && out.back() == '/') out.pop_back();
  return out;
}

std::string pad_to_block(std::string s) {
  s.resize((s.size() + kBlock - 1) / kBlock * kBlock, '\0');
  return s;
}

}  // namespace

std::string encode_tar_header(const TarHeader& h) {
  const std::string what = "cannot write tar entry `" + h.name + "`: ";
  if (h.name.find('\0') != std::string::npos || h.linkname.find('\0') != std::string::npos)
    throw base::Error(what + "NUL in a name");
  if ((h.typeflag == '0' || h.typeflag == '3' || h.typeflag == '4' || h.typeflag == '6') && !h.name.empty() &&
      h.name.back() == '/')
    throw base::Error(what + "a file name may not end in '/'");
  if (!fits_octal(8, h.mode) || !fits_octal(8, h.devmajor) || !fits_octal(8, h.devminor))
    throw base::Error(what + "mode or device number out of range");

  // Header.allowedFormats: what the ustar fields cannot hold goes to pax records.
  std::map<std::string, std::string> pax;  // sorted by key, as Go sorts them
  bool ustar = true;
  auto long_string = [&](const std::string& s, const char* key, bool splittable) {
    if (is_ascii(s) && s.size() <= kNameSize) return;
    std::string p, r;
    if (!splittable || !split_ustar_path(s, p, r)) ustar = false;
    pax[key] = s;
  };
  long_string(h.name, "path", true);
  long_string(h.linkname, "linkpath", false);
  auto number = [&](int64_t v, size_t width, const char* key) {
    if (fits_octal(width, v)) return;
    ustar = false;
    pax[key] = std::to_string(v);
  };
  number(h.uid, 8, "uid");
  number(h.gid, 8, "gid");
  number(h.size, 12, "size");
  number(h.mtime, 12, "mtime");
  for (const auto& [k, v] : h.xattrs) {
    pax["SCHILY.xattr." + k] = v;
    ustar = false;
  }
  const bool use_ustar = h.format == TarHeader::Format::kAuto && ustar;

  std::string out;
  if (!use_ustar && !pax.empty()) {
    std::string data;
    for (const auto& [k, v] : pax) data += pax_record(k, v);
    if (data.size() > kMaxPaxData) throw base::Error(what + "pax header too large");
    char x[kBlock] = {};
    put_string(x + kName, kNameSize, pax_header_name(h.name));
    put_octal(x + kMode, 8, 0);
    put_octal(x + kUid, 8, 0);
    put_octal(x + kGid, 8, 0);
    put_octal(x + kSize, 12, static_cast<int64_t>(data.size()));
    put_octal(x + kMtime, 12, 0);
    x[kType] = 'x';
    finish_block(x);
    out.append(x, kBlock);
    out += pad_to_block(std::move(data));
  }

  char b[kBlock] = {};
  std::string name = h.name, prefix;
  if (use_ustar) {
    std::string p, r;
    if (split_ustar_path(h.name, p, r)) {
      prefix = std::move(p);
      name = std::move(r);
    }
  } else {
    name = to_ascii(name);
  }
  put_string(b + kName, kNameSize, name);
  put_string(b + kLink, kNameSize, use_ustar ? h.linkname : to_ascii(h.linkname));
  put_octal(b + kMode, 8, h.mode);
  put_octal(b + kUid, 8, h.uid);
  put_octal(b + kGid, 8, h.gid);
  put_octal(b + kSize, 12, h.size);
  put_octal(b + kMtime, 12, h.mtime);
  b[kType] = h.typeflag;
  put_octal(b + kDevMajor, 8, h.devmajor);
  put_octal(b + kDevMinor, 8, h.devminor);
  if (!prefix.empty()) put_string(b + kPrefix, kPrefixSize, prefix);
  finish_block(b);
  out.append(b, kBlock);
  return out;
}

void TarWriter::finish_entry() {
  if (left_ > 0) throw base::Error("tar writer: entry short of " + std::to_string(left_) + " bytes of data");
  static const char zeros[kBlock] = {};
  if (pad_) sink_.write(zeros, static_cast<size_t>(pad_));
  pad_ = 0;
}

void TarWriter::write_header(const TarHeader& h) {
  if (closed_) throw base::Error("tar writer: header after close");
  finish_entry();
  std::string blocks;
  if (max_mtime_ && h.mtime > *max_mtime_) {
    TarHeader clamped = h;
    clamped.mtime = *max_mtime_;
    clamped_ = true;
    blocks = encode_tar_header(clamped);
  } else {
    blocks = encode_tar_header(h);
  }
  sink_.write(blocks.data(), blocks.size());
  any_ = true;
  // Links, directories, devices and fifos never carry data, whatever their size says.
  bool data = h.typeflag == '0' || h.typeflag == '7';
  left_ = data ? h.size : 0;
  pad_ =
      data ? (static_cast<int64_t>(kBlock) - h.size % static_cast<int64_t>(kBlock)) % static_cast<int64_t>(kBlock) : 0;
}

void TarWriter::write_data(const void* data, size_t n) {
  if (static_cast<int64_t>(n) > left_) throw base::Error("tar writer: data beyond the entry's size");
  sink_.write(data, n);
  left_ -= static_cast<int64_t>(n);
}

void TarWriter::close() {
  if (closed_) return;
  finish_entry();
  static const char zeros[2 * kBlock] = {};
  sink_.write(zeros, sizeof zeros);
  closed_ = true;
}

// ---------------------------------------------------------------- re-encoding

bool reencode_tar(PlainReader& src, TarWriter& out) {
  Utf8Locale locale;
  ArchiveReader a(archive_read_new());
  if (!a) throw base::Error("libarchive: out of memory");
  archive_read_support_format_tar(a.get());
  bool any = false;
  std::vector<char> buf(256 * 1024);
  try {
    check_archive(a.get(), archive_read_open(a.get(), &src, nullptr, PlainReader::archive_read_cb, nullptr),
                  "reading layer");
    for (;;) {
      struct archive_entry* e = nullptr;
      int rc = archive_read_next_header(a.get(), &e);
      if (rc == ARCHIVE_EOF) break;
      src.rethrow_if_failed();
      check_archive(a.get(), rc, "reading layer");
      any = true;
      TarHeader h;
      h.name = entry_path(e);
      clean_entry_path(h.name);
      std::string base = h.name.substr(h.name.rfind('/') + 1);
      if (base.starts_with(".wh.")) h.format = TarHeader::Format::kAuto;
      h.mode = archive_entry_perm(e) & 07777;
      h.uid = archive_entry_uid(e);
      h.gid = archive_entry_gid(e);
      h.mtime = archive_entry_mtime(e);
      std::string hardlink = entry_hardlink(e);
      if (!hardlink.empty()) {
        clean_entry_path(hardlink);
        h.typeflag = '1';
        h.linkname = hardlink;
      } else {
        switch (archive_entry_filetype(e)) {
          case AE_IFREG:
            h.typeflag = '0';
            h.size = archive_entry_size(e);
            break;
          case AE_IFDIR: h.typeflag = '5'; break;
          case AE_IFLNK:
            h.typeflag = '2';
            if (const char* u = archive_entry_symlink_utf8(e))
              h.linkname = u;
            else if (const char* m = archive_entry_symlink(e))
              h.linkname = m;
            break;
          case AE_IFCHR: h.typeflag = '3'; break;
          case AE_IFBLK: h.typeflag = '4'; break;
          case AE_IFIFO: h.typeflag = '6'; break;
          default: throw base::Error("layer entry `" + h.name + "` has a type a layer cannot hold");
        }
      }
      if (h.typeflag == '3' || h.typeflag == '4') {
        h.devmajor = archive_entry_rdevmajor(e);
        h.devminor = archive_entry_rdevminor(e);
      }
      const char* xname = nullptr;
      const void* xvalue = nullptr;
      size_t xsize = 0;
      archive_entry_xattr_reset(e);
      while (archive_entry_xattr_next(e, &xname, &xvalue, &xsize) == ARCHIVE_OK)
        h.xattrs.emplace_back(xname, std::string(static_cast<const char*>(xvalue), xsize));
      out.write_header(h);
      if (h.typeflag != '0') continue;
      for (;;) {
        la_ssize_t n = archive_read_data(a.get(), buf.data(), buf.size());
        src.rethrow_if_failed();
        if (n < 0) check_archive(a.get(), static_cast<int>(n), "reading layer `" + h.name + "`");
        if (n <= 0) break;
        out.write_data(buf.data(), static_cast<size_t>(n));
      }
    }
  } catch (...) {
    src.rethrow_if_failed();
    throw;
  }
  return any;
}

}  // namespace builder::image::detail
