// frontend/text.h — the few Unicode helpers BuildKit's Go code gets from its standard
// library: UTF-8 <-> code points (invalid bytes survive a round trip), unicode.IsSpace,
// IsLetter, IsDigit, and strconv.IsPrint approximations. Internal to the frontend.
#pragma once

#include <string>
#include <string_view>

namespace builder::frontend::text {

/// Decodes UTF-8; each invalid byte b becomes the code point 0x110000 + b.
std::u32string decode_utf8(std::string_view s);
/// Encodes code points; 0x110000 + b is written back as the raw byte b.
std::string encode_utf8(const std::u32string& s);

bool is_space(char32_t c);   ///< Go unicode.IsSpace
bool is_letter(char32_t c);  ///< Go unicode.IsLetter (approximate outside Latin-1)
bool is_digit(char32_t c);   ///< Go unicode.IsDigit (approximate outside ASCII)
bool is_print(char32_t c);   ///< Go strconv.IsPrint (approximate outside Latin-1)

/// Go strings.TrimSpace.
std::string_view trim_space(std::string_view s);
/// Go bytes.TrimLeftFunc(s, unicode.IsSpace).
std::string_view trim_left_space(std::string_view s);

}  // namespace builder::frontend::text
