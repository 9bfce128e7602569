// cli/cmd_check.h — `builder build --check` and `--call=check|outline|targets`: evaluate
// the Dockerfile without building it and print what buildx prints (check results with
// source context, the outline table, the target list, or their JSON), plus the warnings
// summary a normal build prints at its end. Used by cmd_build.cpp.
#pragma once

#include <string>
#include <vector>

#include "frontend/ast.h"
#include "frontend/lint.h"
#include "frontend/lower.h"

namespace builder::cli {

/// A `--call` value as buildx parses it: NAME[,format=json][,ignorestatus=BOOL].
struct CallSpec {
  std::string name = "build";  ///< build, lint (`check`), outline or targets
  std::string format;          ///< "" (text) or "json"
  bool ignore_status = false;  ///< exit 0 even when the check found something
};

/// Throws base::Error on an unknown name, field or format.
CallSpec parse_call(const std::string& value);

/// Runs a non-build call on the parsed `file` (`source` is its text, `display` its name)
/// and prints the result on stdout. Returns the exit code: for `check`, 1 when anything
/// was found (unless ignorestatus). Lowering errors are rethrown after the findings made
/// before them are printed; the caller reports them.
int run_call(const CallSpec& call, const frontend::ast::File& file, const std::string& source,
             const std::string& display, frontend::LowerOptions lo, frontend::ImageResolver& resolver,
             bool quiet);

/// The end of a normal build: "N warnings found:" and one located line per finding, on
/// stderr. Prints nothing when there are none.
void print_lint_summary(const std::vector<frontend::LintFinding>& findings, const std::string& display);

}  // namespace builder::cli
