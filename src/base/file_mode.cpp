// Symbolic modes in the manner of BSD setmode(3), which BuildKit's mode package follows:
// who defaults to everything (umask 0), `s` and `t` are ignored for "o" alone.
#include "base/file_mode.h"

#include <sys/stat.h>

#include <string_view>

namespace builder::base {
namespace {

constexpr uint32_t kAll = 07777;

std::optional<uint32_t> apply(std::string_view spec, uint32_t mode, bool is_dir) {
  mode &= kAll;
  size_t i = 0;
  const size_t n = spec.size();
  if (n == 0) return std::nullopt;
  while (true) {
    uint32_t who = 0;
    for (; i < n; ++i) {
      char c = spec[i];
      if (c == 'u') who |= S_ISUID | S_IRWXU;
      else if (c == 'g') who |= S_ISGID | S_IRWXG;
      else if (c == 'o') who |= S_IRWXO;
      else if (c == 'a') who |= S_ISUID | S_ISGID | S_IRWXU | S_IRWXG | S_IRWXO;
      else break;
    }
    if (i >= n || (spec[i] != '+' && spec[i] != '-' && spec[i] != '=')) return std::nullopt;
    while (i < n && (spec[i] == '+' || spec[i] == '-' || spec[i] == '=')) {
      char op = spec[i++];
      uint32_t perm = 0;
      uint32_t mask = who ? who : (kAll & ~static_cast<uint32_t>(S_ISVTX));
      bool copied = false;
      for (; i < n && spec[i] != ','; ++i) {
        char c = spec[i];
        if (spec[i] == '+' || spec[i] == '-' || spec[i] == '=') break;
        if (copied) return std::nullopt;  // "g=u" takes nothing after the class
        switch (c) {
          case 'r': perm |= S_IRUSR | S_IRGRP | S_IROTH; break;
          case 'w': perm |= S_IWUSR | S_IWGRP | S_IWOTH; break;
          case 'x': perm |= S_IXUSR | S_IXGRP | S_IXOTH; break;
          case 'X':
            if (is_dir || (mode & (S_IXUSR | S_IXGRP | S_IXOTH))) perm |= S_IXUSR | S_IXGRP | S_IXOTH;
            break;
          case 's':
            if (!who || (who & ~static_cast<uint32_t>(S_IRWXO))) perm |= S_ISUID | S_ISGID;
            break;
          case 't':
            if (!who || (who & ~static_cast<uint32_t>(S_IRWXO))) {
              perm |= S_ISVTX;
              mask |= S_ISVTX;
            }
            break;
          case 'u':
          case 'g':
          case 'o': {
            if (perm) return std::nullopt;
            uint32_t bits = c == 'u' ? (mode >> 6) & 7 : c == 'g' ? (mode >> 3) & 7 : mode & 7;
            perm = bits << 6 | bits << 3 | bits;
            copied = true;
            break;
          }
          default: return std::nullopt;
        }
      }
      if (op == '+') mode |= perm & mask;
      else if (op == '-') mode &= ~(perm & mask);
      else {
        uint32_t clear = who ? who : kAll;
        mode = (mode & ~clear) | (perm & mask);
      }
    }
    if (i == n) return mode;
    if (spec[i] != ',') return std::nullopt;
    ++i;
    if (i == n) return std::nullopt;
  }
}

}  // namespace

bool valid_symbolic_mode(const std::string& spec) { return apply(spec, 0, false).has_value(); }

std::optional<uint32_t> apply_symbolic_mode(const std::string& spec, uint32_t mode, bool is_dir) {
  return apply(spec, mode, is_dir);
}

}  // namespace builder::base
