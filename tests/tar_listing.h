// tests/tar_listing.h — tar streams as the test binaries compare them: every header
// block as stored (field bytes, pax records, checksum check), so a test can assert the
// exact encoding of a layer; and doctest printing of such listings.
#pragma once

#include <doctest/doctest.h>

#include <cstdio>
#include <string>
#include <vector>

/// Vectors of strings (tar listings) print one element per line when a check fails.
namespace doctest {
template <>
struct StringMaker<std::vector<std::string>> {
  static String convert(const std::vector<std::string>& v) {
    std::string s = "{\n";
    for (const auto& e : v) s += "  \"" + e + "\"\n";
    return String((s + "}").c_str());
  }
};
}  // namespace doctest

namespace builder::test {

/// The headers of a plain tar exactly as stored, one line per header block (a pax
/// extended header is a line of its own), then "end <total bytes>":
///   "<typeflag> <name> <mode> <uid>:<gid> <size> <mtime>[ -> <link>][ <magic>][ {records}]"
/// with each field as its bytes up to the first NUL; a ustar prefix is shown as
/// "<prefix>|<name>"; <magic> only when it is not "ustar\0" "00", device numbers only
/// where Go would not write them so (dev=<major>,<minor> always for devices); pax records as
/// key=value joined by ';', bytes outside printable ASCII as \xNN; " chksum=<field>" when
/// the checksum is not Go's ("%06o\0 " of the header's sum).
inline std::vector<std::string> raw_headers(const std::string& tar) {
  auto field = [&](size_t off, size_t len) {
    std::string f = tar.substr(off, len);
    return f.substr(0, f.find('\0'));
  };
  auto printable = [](const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
      if (c >= 0x20 && c < 0x7f) {
        out.push_back(static_cast<char>(c));
      } else {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\x%02x", c);
        out += buf;
      }
    }
    return out;
  };
  std::vector<std::string> out;
  size_t off = 0;
  while (off + 512 <= tar.size()) {
    if (tar.compare(off, 512, std::string(512, '\0')) == 0) {
      off += 512;
      continue;
    }
    char type = tar[off + 156];
    std::string name = field(off, 100), prefix = field(off + 345, 155);
    std::string size = field(off + 124, 12);
    std::string line = std::string(1, type) + " " + (prefix.empty() ? "" : prefix + "|") + printable(name) + " " +
                       field(off + 100, 8) + " " + field(off + 108, 8) + ":" + field(off + 116, 8) + " " + size + " " +
                       field(off + 136, 12);
    std::string link = field(off + 157, 100);
    if (!link.empty()) line += " -> " + printable(link);
    if (tar.compare(off + 257, 8, std::string("ustar") + '\0' + "00") != 0)
      line += " magic=" + printable(tar.substr(off + 257, 8));
    unsigned sum = 0;
    for (size_t i = 0; i < 512; ++i) sum += i >= 148 && i < 156 ? ' ' : static_cast<unsigned char>(tar[off + i]);
    char chk[9];
    std::snprintf(chk, sizeof chk, "%06o", sum);
    if (tar.compare(off + 148, 8, std::string(chk, 6) + std::string("\0 ", 2)) != 0)
      line += " chksum=" + printable(tar.substr(off + 148, 8));
    // Go writes device numbers on every entry but its pax extended headers.
    std::string dev = field(off + 329, 8) + "," + field(off + 337, 8);
    if (type == '3' || type == '4')
      line += " dev=" + dev;
    else if (dev != (type == 'x' ? "," : "0000000,0000000"))
      line += " dev=" + dev;
    size_t n = size.empty() ? 0 : std::stoull(size, nullptr, 8);
    bool data = type == '0' || type == 'x';
    if (type == 'x') {
      std::string recs, body = tar.substr(off + 512, n);
      for (size_t p = 0; p < body.size();) {
        size_t sp = body.find(' ', p);
        size_t len = std::stoull(body.substr(p, sp - p));
        recs += (recs.empty() ? "" : ";") + printable(body.substr(sp + 1, len - (sp - p) - 2));
        p += len;
      }
      line += " {" + recs + "}";
    }
    out.push_back(line);
    off += 512 + (data ? (n + 511) / 512 * 512 : 0);
  }
  out.push_back("end " + std::to_string(tar.size()));
  return out;
}

}  // namespace builder::test
