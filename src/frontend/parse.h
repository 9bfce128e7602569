// frontend/parse.h — Dockerfile bytes -> ast::File, with BuildKit's parsing rules
// (directives, escape token, continuation lines, JSON form, heredocs). The instruction
// structure comes from the ANTLR parser generated from grammar/Dockerfile.g4; this
// module knows nothing of stages, expansion or graphs.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "frontend/ast.h"

namespace builder::frontend {

/// Parses a whole Dockerfile. Throws base::Error with the SourceRange (file:line) of the
/// offending instruction on parse errors (no instructions, bad directive, ENV without
/// value, JSON array of non-strings, unterminated heredoc, line too long).
ast::File parse(std::string_view bytes, const std::string& filename);

/// BuildKit's AST dump (`buildctl debug dump` / parser dumper): one `(keyword ...)` line
/// per instruction, each ending in '\n'.
std::string dump_ast(const ast::File& file);

/// Go's strconv.Quote, as the dump uses it.
std::string go_quote(std::string_view s);

/// BuildKit's ParseHeredoc on one word: nullopt when the word is not a heredoc. Throws
/// base::Error on unbalanced quotes in the terminator.
std::optional<ast::Heredoc> parse_heredoc_word(std::string_view word);

/// BuildKit's heredocsFromLine: the heredocs named on an instruction line, in order.
std::vector<ast::Heredoc> heredocs_from_line(std::string_view line);

}  // namespace builder::frontend
