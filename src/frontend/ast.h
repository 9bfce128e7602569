// frontend/ast.h — the Dockerfile AST: one node per instruction, as BuildKit's parser
// produces it (keyword as written, flags, argument strings, JSON form, heredocs), plus
// the file's directives. Plain values; knows nothing of stages, graphs or expansion.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"

namespace builder::frontend::ast {

/// A heredoc attached to RUN, COPY or ADD (`<<EOF` ... `EOF`).
struct Heredoc {
  std::string name;     ///< terminator, quotes removed
  std::string content;  ///< raw body, every newline kept, leading tabs not removed
  bool expand = true;   ///< false when any part of the terminator word was quoted
  bool chomp = false;   ///< `<<-`: leading tabs are removed when the body is used
  unsigned fd = 0;      ///< the digits of `3<<EOF`, or 0
};

/// Parser directives from the top of the file (`# syntax=`, `# escape=`, `# check=`).
struct Directives {
  char escape = '\\';  ///< line-continuation and escape token: '\\' or '`'
  std::string syntax;
  std::string check;
};

/// One instruction. `args` are the argument nodes exactly as BuildKit's dump shows them:
///  - RUN/CMD/ENTRYPOINT/SHELL shell form: one string; JSON form: the decoded strings;
///  - ENV/LABEL: triples key, value, separator ("=" or "" for the legacy `K V` form);
///  - HEALTHCHECK: the type word (CMD/NONE) followed by the CMD arguments;
///  - ONBUILD: empty, the wrapped instruction is in `onbuild`;
///  - unknown instructions: one empty string.
struct Instruction {
  std::string keyword;             ///< as written ("RuN")
  std::string name;                ///< lower-cased ("run")
  std::vector<std::string> flags;  ///< raw "--x=y", quotes and escapes removed
  std::vector<std::string> args;
  bool json_form = false;
  std::vector<Heredoc> heredocs;
  std::string original;  ///< the assembled instruction line (continuations joined)
  std::string rest;      ///< the argument text after the flags, trimmed
  base::SourceRange range;
  std::unique_ptr<Instruction> onbuild;  ///< ONBUILD's wrapped instruction
  /// The comment lines directly above (BuildKit's PrevComment): text after `#`, trimmed;
  /// a bare `#` clears them, blank lines do not, directives are not comments.
  std::vector<std::string> comments;

  Instruction() = default;
  Instruction(Instruction&&) noexcept = default;
  Instruction& operator=(Instruction&&) noexcept = default;
  Instruction(const Instruction& o) { *this = o; }
  Instruction& operator=(const Instruction& o) {
    if (this == &o) return *this;
    keyword = o.keyword;
    name = o.name;
    flags = o.flags;
    args = o.args;
    json_form = o.json_form;
    heredocs = o.heredocs;
    original = o.original;
    rest = o.rest;
    range = o.range;
    onbuild = o.onbuild ? std::make_unique<Instruction>(*o.onbuild) : nullptr;
    comments = o.comments;
    return *this;
  }
};

struct File {
  Directives directives;
  std::vector<Instruction> instructions;
  std::string filename;
  /// Parser warnings ("Dockerfile:12: empty continuation line"), in order.
  std::vector<std::string> warnings;
};

}  // namespace builder::frontend::ast
