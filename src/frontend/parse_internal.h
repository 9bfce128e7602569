// frontend/parse_internal.h — pieces of the parser shared between parse.cpp (file
// pre-pass and ANTLR driver) and parse_args.cpp (BuildKit's per-instruction argument
// rules). Internal to the frontend.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "frontend/ast.h"

namespace builder::frontend::detail {

/// An instruction line split by the generated ANTLR parser.
struct LineParts {
  std::string keyword;
  std::vector<std::string> flags;  ///< quotes and escapes removed
  std::string rest;                ///< the text after the flags, trimmed
  bool json_candidate = false;     ///< the grammar matched a JSON string array
};

/// Runs the ANTLR lexer/parser over one assembled instruction line (already trimmed).
LineParts split_line(std::string_view line, char escape);

/// BuildKit's newNodeFromLine: keyword, flags and the per-instruction argument rules.
/// Throws base::Error (without location) on bad arguments.
ast::Instruction node_from_line(std::string_view line, char escape);

/// Decodes a JSON array of strings (Go encoding/json rules). nullopt when `text` is not
/// valid JSON; throws base::Error when it is valid JSON but not an array of strings.
std::optional<std::vector<std::string>> parse_json_array(std::string_view text);

/// BuildKit's parseWords (quote-aware split that keeps quotes and escapes).
std::vector<std::string> parse_words(std::string_view rest, char escape);

/// Splits on runs of [\t\v\f\r ] (BuildKit's reWhitespace).
std::vector<std::string> split_whitespace(std::string_view s, int max_parts = -1);

}  // namespace builder::frontend::detail
