// cli/cli.h — the `builder` command line: subcommand registration and the helpers the
// command files share. cli/ is the only module that prints (besides server/).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace builder::cli {

/// State shared by all subcommands: the global options and the action the parsed
/// subcommand selected. The action returns the process exit code.
struct Context {
  std::string root;
  std::function<int()> action;
};

void add_build_command(CLI::App& app, Context& ctx);
void add_image_commands(CLI::App& app, Context& ctx);  // images load save import tag rmi inspect, image <verb>
void add_run_command(CLI::App& app, Context& ctx);
void add_debug_command(CLI::App& app, Context& ctx);
void add_prune_commands(CLI::App& app, Context& ctx);  // du prune
void add_history_command(CLI::App& app, Context& ctx);  // history ls|inspect|logs
void add_registry_commands(CLI::App& app, Context& ctx);  // pull push login logout
/// Adds the repeatable --insecure-registry option (host[:port] or an IP network; each
/// value checked by registry::normalize_insecure_entry) to a command that talks to
/// registries: build, pull, push, login. Defined in cmd_registry.cpp.
CLI::Option* add_insecure_registry_option(CLI::App* cmd, std::vector<std::string>& into);

/// Rows on stdout as docker lays out its tables (Go's text/tabwriter): each column but
/// the last padded to its widest cell plus 3 spaces, and to at least `min_width`.
void print_table(const std::vector<std::vector<std::string>>& rows, size_t min_width = 0);

/// "builder: error: <msg>" on stderr.
void print_error(const std::string& msg);

/// Prints a frontend error that carries a location: "ERROR: file:line:col: msg", then
/// the offending line of `source` and a caret under the column.
void print_located_error(const std::string& source, const std::string& message, int line, int col,
                         const std::string& file);

}  // namespace builder::cli
