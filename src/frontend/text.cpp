#include "frontend/text.h"

namespace builder::frontend::text {

std::u32string decode_utf8(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    int len = 0;
    char32_t cp = 0;
    if (c < 0x80) { out.push_back(c); ++i; continue; }
    if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
    bool ok = len > 0 && i + len <= s.size();
    for (int k = 1; ok && k < len; ++k) {
      unsigned char d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) ok = false;
      else cp = (cp << 6) | (d & 0x3F);
    }
    if (ok) {
      // Reject overlong forms, surrogates and out-of-range values like Go does.
      if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
          (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
        ok = false;
    }
    if (!ok) { out.push_back(0x110000 + c); ++i; continue; }
    out.push_back(cp);
    i += len;
  }
  return out;
}

std::string encode_utf8(const std::u32string& s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) {
    if (c >= 0x110000 && c < 0x110100) out.push_back(static_cast<char>(c - 0x110000));
    else if (c < 0x80) out.push_back(static_cast<char>(c));
    else if (c < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (c >> 6)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (c >> 12)));
      out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else if (c <= 0x10FFFF) {
      out.push_back(static_cast<char>(0xF0 | (c >> 18)));
      out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else {
      out += "\xEF\xBF\xBD";
    }
  }
  return out;
}

bool is_space(char32_t c) {
  switch (c) {
    case U'\t': case U'\n': case U'\v': case U'\f': case U'\r': case U' ':
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F:
    case 0x205F: case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

bool is_digit(char32_t c) {
  if (c < 0x80) return c >= U'0' && c <= U'9';
  // A few common Nd blocks (Arabic-Indic, Devanagari, fullwidth).
  return (c >= 0x660 && c <= 0x669) || (c >= 0x6F0 && c <= 0x6F9) ||
         (c >= 0x966 && c <= 0x96F) || (c >= 0xFF10 && c <= 0xFF19);
}

bool is_letter(char32_t c) {
  if (c < 0x80) return (c >= U'a' && c <= U'z') || (c >= U'A' && c <= U'Z');
  if (c >= 0x110000) return false;
  if (c < 0x100) return c == 0xAA || c == 0xB5 || c == 0xBA || (c >= 0xC0 && c != 0xD7 && c != 0xF7);
  if (is_space(c) || is_digit(c)) return false;
  // Punctuation, symbols, marks and other non-letter blocks.
  if ((c >= 0x2000 && c <= 0x2BFF) || (c >= 0x3000 && c <= 0x303F) ||
      (c >= 0xD800 && c <= 0xF8FF) || (c >= 0xFE00 && c <= 0xFE0F) ||
      (c >= 0xFF00 && c <= 0xFF20) || (c >= 0x300 && c <= 0x36F) || c == 0xFEFF ||
      (c >= 0x1F000 && c <= 0x1FAFF))
    return false;
  return true;
}

bool is_print(char32_t c) {
  if (c < 0x20 || c == 0x7F) return false;
  if (c < 0x7F) return true;
  if (c >= 0x80 && c <= 0xA0) return false;
  if (c == 0xAD) return false;
  if (c >= 0x110000) return false;
  if (c >= 0x2000 && c <= 0x200F) return false;
  if (c >= 0x2028 && c <= 0x202F) return false;
  if (c >= 0x205F && c <= 0x206F) return false;
  if (c == 0x1680 || c == 0x3000 || c == 0xFEFF || c == 0x061C || c == 0x180E) return false;
  if (c >= 0xD800 && c <= 0xF8FF) return false;    // surrogates, private use
  if (c >= 0xFFF0 && c <= 0xFFFB) return false;
  if ((c & 0xFFFE) == 0xFFFE) return false;           // noncharacters
  if (c >= 0xF0000) return false;                   // private use planes
  if (c >= 0xE0000 && c <= 0xE0FFF) return false;   // tags, variation selectors supplement
  return true;
}

std::string_view trim_left_space(std::string_view s) {
  std::u32string u = decode_utf8(s);
  size_t bytes = 0;
  for (char32_t c : u) {
    if (!is_space(c)) break;
    bytes += encode_utf8(std::u32string(1, c)).size();
  }
  return s.substr(bytes);
}

std::string_view trim_space(std::string_view s) {
  s = trim_left_space(s);
  // Trailing: check ASCII and the multi-byte spaces by decoding from the end.
  for (;;) {
    if (s.empty()) return s;
    unsigned char c = static_cast<unsigned char>(s.back());
    if (c < 0x80) {
      if (is_space(c)) { s.remove_suffix(1); continue; }
      return s;
    }
    size_t start = s.size() - 1;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80 && s.size() - start < 4) --start;
    std::u32string u = decode_utf8(s.substr(start));
    if (u.size() == 1 && is_space(u[0])) { s.remove_suffix(s.size() - start); continue; }
    return s;
  }
}

}  // namespace builder::frontend::text
