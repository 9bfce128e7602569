// BuildKit's AST dump (parser.Node.Dump) and Go's strconv.Quote, byte for byte.
#include <cstdio>

#include "base/strings.h"
#include "frontend/parse.h"
#include "frontend/text.h"

namespace builder::frontend {
namespace {

std::string lower_unicode(std::string_view s) {
  // Go strings.ToLower; keywords are ASCII in practice, so ASCII plus Latin-1 suffices.
  std::u32string u = text::decode_utf8(s);
  for (auto& c : u) {
    if (c >= U'A' && c <= U'Z') c = c - U'A' + U'a';
    else if (c >= 0xC0 && c <= 0xDE && c != 0xD7) c += 0x20;
  }
  return text::encode_utf8(u);
}

std::string trim_go_space(const std::string& s) { return std::string(text::trim_space(s)); }

std::string dump_instruction(const ast::Instruction& ins) {
  std::string s = lower_unicode(ins.keyword);
  if (!ins.flags.empty()) {
    s += " [";
    for (size_t i = 0; i < ins.flags.size(); ++i) {
      if (i) s += " ";
      s += go_quote(ins.flags[i]);
    }
    s += "]";
  }
  if (ins.onbuild) {
    s += " (" + dump_instruction(*ins.onbuild) + ")";
  } else {
    for (const auto& a : ins.args) s += " " + go_quote(a);
  }
  return trim_go_space(s);
}

}  // namespace

std::string go_quote(std::string_view in) {
  static const char* hex = "0123456789abcdef";
  std::string out = "\"";
  std::u32string u = text::decode_utf8(in);
  for (char32_t c : u) {
    if (c >= 0x110000) {
      unsigned b = c - 0x110000;
      out += "\\x";
      out += hex[b >> 4];
      out += hex[b & 15];
      continue;
    }
    if (c == U'"' || c == U'\\') {
      out += '\\';
      out += static_cast<char>(c);
      continue;
    }
    if (text::is_print(c)) {
      out += text::encode_utf8(std::u32string(1, c));
      continue;
    }
    switch (c) {
      case 0x07: out += "\\a"; continue;
      case 0x08: out += "\\b"; continue;
      case 0x0C: out += "\\f"; continue;
      case 0x0A: out += "\\n"; continue;
      case 0x0D: out += "\\r"; continue;
      case 0x09: out += "\\t"; continue;
      case 0x0B: out += "\\v"; continue;
      default: break;
    }
    char buf[16];
    if (c < 0x20 || c == 0x7F) std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(c));
    else if (c < 0x10000) std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
    else std::snprintf(buf, sizeof buf, "\\U%08x", static_cast<unsigned>(c));
    out += buf;
  }
  out += "\"";
  return out;
}

std::string dump_ast(const ast::File& file) {
  // The root node: each child prints as "(" + dump + ")\n", then the whole is trimmed;
  // the dumper then adds one newline.
  std::string s;
  for (const auto& ins : file.instructions) s += "(" + dump_instruction(ins) + ")\n";
  return trim_go_space(s) + "\n";
}

}  // namespace builder::frontend
