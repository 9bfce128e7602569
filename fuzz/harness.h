// fuzz/harness.h — the one frontend pass that the libFuzzer target (fuzz_frontend.cpp)
// and the corpus regression test (tests/frontend/fuzz_corpus_test.cpp) share: arbitrary
// bytes through parse, the AST dump, the syntax checks, the shell-word expander and
// lowering. Knows nothing of libFuzzer or doctest.
#pragma once

#include <string_view>

namespace builder::fuzz {

/// How far one input got.
enum class Outcome {
  kParseRejected,  ///< parse threw base::Error
  kLowerRejected,  ///< parsed, but the default lowering threw base::Error
  kLowered,        ///< lowered to a graph that passes graph::validate
};

/// Runs `bytes` as a Dockerfile through parse, dump_ast, list_targets, lint_syntax,
/// process_word/process_words on every argument and flag (two ShellOptions variants),
/// and lower (default options, then every stage with build args and lint findings kept)
/// against a fake ImageResolver. base::Error from any of them is an expected rejection
/// and is swallowed. Anything else escapes: another exception type is a bug, and so is
/// a lowered graph that graph::validate refuses (thrown as std::logic_error).
/// Deterministic and stateless.
Outcome run_frontend(std::string_view bytes);

}  // namespace builder::fuzz
