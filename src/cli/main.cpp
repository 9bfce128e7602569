// cli/main.cpp — `builder [--root DIR] COMMAND`: global options, subcommand dispatch and
// the last-resort error handler (every failure becomes "builder: error: ..." and a
// non-zero exit, never a crash).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "base/error.h"
#include "cli.h"

namespace builder::cli {

void print_table(const std::vector<std::vector<std::string>>& rows, size_t min_width) {
  constexpr size_t kPadding = 3;
  std::vector<size_t> widths;
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) {
      if (widths.size() <= i) widths.push_back(min_width);
      widths[i] = std::max(widths[i], r[i].size() + kPadding);
    }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(widths[i] - r[i].size(), ' ');
    }
    std::printf("%s\n", line.c_str());
  }
}

void print_error(const std::string& msg) {
  std::fprintf(stderr, "builder: error: %s\n", msg.c_str());
  std::fflush(stderr);
}

void print_located_error(const std::string& source, const std::string& message, int line, int col,
                         const std::string& file) {
  std::fprintf(stderr, "ERROR: %s:%d:%d: %s\n", file.c_str(), line, col, message.c_str());
  // The offending line and a caret under the column.
  int cur = 1;
  size_t pos = 0;
  while (cur < line && pos < source.size()) {
    size_t nl = source.find('\n', pos);
    if (nl == std::string::npos) {
      pos = source.size();
      break;
    }
    pos = nl + 1;
    ++cur;
  }
  if (cur == line && pos <= source.size()) {
    size_t end = source.find('\n', pos);
    std::string text = source.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    if (!text.empty() && text.back() == '\r') text.pop_back();
    std::fprintf(stderr, "%s\n", text.c_str());
    std::fprintf(stderr, "%s^\n", std::string(col > 1 ? col - 1 : 0, ' ').c_str());
  }
  std::fflush(stderr);
}

}  // namespace builder::cli

int main(int argc, char** argv) {
  using namespace builder;
  try {
    CLI::App app{"builder: a Dockerfile build engine"};
    app.name("builder");
    app.require_subcommand(1);
    cli::Context ctx;
    const char* env_root = std::getenv("BUILDER_ROOT");
    ctx.root = (env_root && *env_root) ? env_root : "/var/lib/builder";
    app.add_option("--root", ctx.root, "Root directory of builder state (env BUILDER_ROOT)");
    app.set_version_flag("--version", std::string("builder version ") + BUILDER_VERSION);

    auto* version = app.add_subcommand("version", "Show the builder version");
    version->callback([&ctx] {
      ctx.action = [] {
        std::printf("builder version %s\n", BUILDER_VERSION);
        return 0;
      };
    });
    cli::add_build_command(app, ctx);
    cli::add_history_command(app, ctx);
    cli::add_image_commands(app, ctx);
    cli::add_run_command(app, ctx);
    cli::add_debug_command(app, ctx);
    cli::add_prune_commands(app, ctx);
    cli::add_registry_commands(app, ctx);

    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      if (e.get_exit_code() == 0) return app.exit(e);  // --help
      cli::print_error(e.what());
      return 1;
    }
    if (!ctx.action) return 0;
    return ctx.action();
  } catch (const base::Error& e) {
    cli::print_error(e.what());
    // An error that carries an exit code (a container command that could not start:
    // 126/127, as docker run) passes it on.
    return e.exit_code() > 0 ? e.exit_code() : 1;
  } catch (const std::exception& e) {
    cli::print_error(e.what());
    return 1;
  } catch (...) {
    cli::print_error("unknown failure");
    return 1;
  }
}
