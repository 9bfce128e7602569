// The ANTLR driver: one instruction line -> LineParts. The grammar gives the structure
// (keyword, flag words, `--`, JSON array or raw arguments); this visitor turns the flag
// tokens into BuildKit's flag strings and cuts the raw argument text by byte offsets.
#include <memory>

#include "base/error.h"
#include "frontend/gen/DockerfileBaseVisitor.h"
#include "frontend/gen/DockerfileLexer.h"
#include "frontend/gen/DockerfileParser.h"
#include "frontend/parse_internal.h"
#include "frontend/text.h"

namespace builder::frontend::detail {
namespace {

using gen::DockerfileLexer;
using gen::DockerfileParser;

/// Feeds bytes as code points 0..255 so token offsets are byte offsets and invalid
/// UTF-8 never stops the lexer.
class ByteStream : public antlr4::ANTLRInputStream {
 public:
  explicit ByteStream(std::string_view s) {
    _data.clear();
    _data.reserve(s.size());
    for (unsigned char c : s) _data.push_back(c);
    p = 0;
  }
};

class ThrowingErrors : public antlr4::BaseErrorListener {
 public:
  void syntaxError(antlr4::Recognizer*, antlr4::Token*, size_t, size_t col, const std::string& msg,
                   std::exception_ptr) override {
    throw base::Error("syntax error at column " + std::to_string(col + 1) + ": " + msg);
  }
};

/// BuildKit's extractBuilderFlags for one word: quotes dropped, the escape token makes
/// the next byte literal, each byte becomes one code point (Latin-1, as upstream does).
std::string flag_word(std::string_view w, char escape) {
  std::u32string out;
  char quote = 0;
  bool in_quote = false;
  for (size_t i = 0; i < w.size(); ++i) {
    char c = w[i];
    if (!in_quote) {
      if (c == '\'' || c == '"') {
        quote = c;
        in_quote = true;
        continue;
      }
      if (c == escape) {
        if (i + 1 == w.size()) continue;
        c = w[++i];
      }
      out.push_back(static_cast<unsigned char>(c));
    } else {
      if (c == quote) {
        in_quote = false;
        continue;
      }
      if (c == escape) {
        if (i + 1 == w.size()) {
          in_quote = false;
          continue;
        }
        c = w[++i];
      }
      out.push_back(static_cast<unsigned char>(c));
    }
  }
  return text::encode_utf8(out);
}

class LineVisitor : public gen::DockerfileBaseVisitor {
 public:
  LineVisitor(std::string_view line, char escape) : line_(line), escape_(escape) {}
  LineParts parts;

  antlrcpp::Any visitInstructionLine(DockerfileParser::InstructionLineContext* ctx) override {
    auto* kw = ctx->keyword();
    parts.keyword = slice(kw->getStart(), kw->getStop());
    size_t rest_from = kw->getStop()->getStopIndex() + 1;
    bool ended = false;
    for (auto* f : ctx->flag()) {
      auto* tok = f->FLAG()->getSymbol();
      if (ended) break;
      std::string w = flag_word(slice(tok, tok), escape_);
      rest_from = tok->getStopIndex() + 1;
      if (w == "--") {
        ended = true;
        break;
      }
      parts.flags.push_back(std::move(w));
    }
    if (!ended && ctx->endOfFlags()) rest_from = ctx->endOfFlags()->getStop()->getStopIndex() + 1;
    if (auto* args = ctx->arguments()) {
      if (dynamic_cast<DockerfileParser::JsonArgumentsContext*>(args) && !ended) {
        parts.json_candidate = true;
      } else if (ended) {
        parts.json_candidate = false;
      }
      if (!ended) rest_from = std::min<size_t>(rest_from, args->getStart()->getStartIndex());
    }
    if (rest_from > line_.size()) rest_from = line_.size();
    parts.rest = std::string(text::trim_space(line_.substr(rest_from)));
    if (ended && !parts.rest.empty() && parts.rest[0] == '[') parts.json_candidate = true;
    return nullptr;
  }

 private:
  std::string slice(antlr4::Token* a, antlr4::Token* b) const {
    size_t s = a->getStartIndex(), e = b->getStopIndex();
    if (s >= line_.size() || e < s) return {};
    return std::string(line_.substr(s, e - s + 1));
  }
  std::string_view line_;
  char escape_;
};

}  // namespace

LineParts split_line(std::string_view line, char escape) {
  ByteStream input(line);
  DockerfileLexer lexer(&input);
  lexer.escape_ = static_cast<unsigned char>(escape);
  ThrowingErrors errors;
  lexer.removeErrorListeners();
  lexer.addErrorListener(&errors);
  antlr4::CommonTokenStream tokens(&lexer);
  DockerfileParser parser(&tokens);
  parser.removeErrorListeners();
  parser.addErrorListener(&errors);
  auto* tree = parser.instructionLine();
  LineVisitor v(line, escape);
  v.visit(tree);
  return std::move(v.parts);
}

}  // namespace builder::frontend::detail
