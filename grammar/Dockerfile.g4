// grammar/Dockerfile.g4 — one Dockerfile instruction line, as BuildKit sees it after
// the pre-pass in frontend/parse.cpp has read the directives, joined continuation
// lines (dropping comments inside them) and set the escape token. The parser gives the
// instruction's structure: keyword, leading --flags, an optional `--` end marker, and
// the arguments, either a JSON string array or raw text (with heredoc markers). The
// per-instruction rules (ENV pairs, HEALTHCHECK, ONBUILD) live in the AST builder.
//
// The input stream is fed byte by byte (each byte one code point), so token offsets
// are byte offsets into the line and invalid UTF-8 cannot stop the lexer.
grammar Dockerfile;

@lexer::members {
 public:
  /// The escape token of the file: '\\' or '`' (from `# escape=`).
  size_t escape_ = '\\';

 private:
  bool at_escape() { return _input->LA(1) == escape_; }
  bool at_eof() { return _input->LA(1) == antlr4::IntStream::EOF; }
  bool at_word_end() {
    size_t c = _input->LA(1);
    return c == antlr4::IntStream::EOF || c == ' ' || c == '\t' || c == '\f' || c == '\v' ||
           c == '\r';
  }
}

// ---------------------------------------------------------------- parser rules

instructionLine
  : WS? keyword (WS flag)* (WS endOfFlags)? (WS arguments)? WS? EOF
  ;

keyword
  : word
  ;

flag
  : FLAG
  ;

endOfFlags
  : DASHDASH
  ;

arguments
  : jsonArray WS?                 # jsonArguments
  | rawToken (WS? rawToken)* WS?  # rawArguments
  ;

jsonArray
  : LBRACK WS? (jsonString WS? (COMMA WS? jsonString WS?)*)? RBRACK
  ;

jsonString
  : JSON_STRING
  ;

rawToken
  : heredocMarker
  | TEXT
  | FLAG
  | DASHDASH
  | LBRACK
  | RBRACK
  | COMMA
  | JSON_STRING
  | DQUOTE
  | LT
  ;

// `<<EOF`, `<<-EOF`, `3<<EOF`: a possible heredoc. Whether it is one (it may sit inside
// quotes) is decided by BuildKit's shell-word rules in the AST builder.
heredocMarker
  : HEREDOC
  ;

word
  : (TEXT | FLAG | DASHDASH | LBRACK | RBRACK | COMMA | JSON_STRING | DQUOTE | LT | HEREDOC)+
  ;

// ---------------------------------------------------------------- lexer rules

WS : [ \t\f\u000B\r]+ ;

// `--` alone ends the flags; listed before FLAG so it wins on equal length.
DASHDASH : '--' { at_word_end() }? ;

// A flag runs to the first whitespace outside quotes; the escape token protects the
// next byte, inside quotes too. Quotes may stay open to the end of the line.
FLAG : '--' FLAG_CHAR* ;

HEREDOC : [0-9]* '<<' '-'? ;

LBRACK : '[' ;
RBRACK : ']' ;
COMMA : ',' ;
LT : '<' ;

JSON_STRING : '"' ( ~["\\\u0000-\u001F] | '\\' ( ["\\/bfnrt] | 'u' HEX HEX HEX HEX ) )* '"' ;

DQUOTE : '"' ;

TEXT : ~[ \t\f\u000B\r[\],"<]+ ;

fragment FLAG_CHAR
  : ESCAPED
  | '"' ( ESCAPED | { !at_escape() }? ~["] )* ( '"' | { at_eof() }? )
  | '\'' ( ESCAPED | { !at_escape() }? ~['] )* ( '\'' | { at_eof() }? )
  | { !at_escape() }? ~[ \t\f\u000B\r"']
  ;

fragment ESCAPED : { at_escape() }? . ( . | { at_eof() }? ) ;

fragment HEX : [0-9a-fA-F] ;
