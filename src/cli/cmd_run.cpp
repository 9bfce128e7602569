// cli/cmd_run.cpp — `builder run` (a container from a stored image, in the foreground)
// and `builder debug ast` (the parser's AST dump).
#include <cstdio>
#include <filesystem>
#include <memory>

#include "base/error.h"
#include "base/fs.h"
#include "cache/store.h"
#include "cli.h"
#include "sandbox_config.h"
#include "frontend/parse.h"
#include "image/store.h"
#include "runtime/container.h"

namespace builder::cli {

void add_run_command(CLI::App& app, Context& ctx) {
  struct Opts {
    bool rm = false;
    std::vector<std::string> env;
    std::string workdir, user;
    std::optional<std::string> entrypoint;
    std::string image;
    std::string network = "default";
    bool privileged = false;
    int64_t pids_limit = -1;
    std::string memory;
  };
  auto o = std::make_shared<Opts>();
  auto* run = app.add_subcommand("run", "Run a command in a new container");
  run->add_flag("--rm", o->rm, "Remove the container when it exits");
  // One value per -e: a greedy vector option would swallow IMAGE and the command.
  run->add_option("-e,--env", o->env, "Set environment variables (K=V, or K to take the host's)")
      ->allow_extra_args(false);
  run->add_option("-w,--workdir", o->workdir, "Working directory inside the container");
  run->add_option("-u,--user", o->user, "User name or uid[:gid]");
  run->add_option("--entrypoint", o->entrypoint, "Overwrite the image's ENTRYPOINT");
  run->add_option("--network", o->network, "Network: default (NAT), none (loopback only), host")
      ->check(CLI::IsMember({"default", "none", "host"}));
  run->add_flag("--privileged", o->privileged, "Every capability, no seccomp filter, nothing masked");
  run->add_option("--pids-limit", o->pids_limit, "Tasks the container may have (default 2048; 0: no limit)")
      ->check(CLI::NonNegativeNumber);
  run->add_option("-m,--memory", o->memory, "Memory limit (e.g. 512MiB; default: none)");
  run->add_option("image", o->image, "Image")->required();
  // Everything after IMAGE is the container's command, options included.
  run->prefix_command();
  run->callback([&ctx, o, run] {
    std::vector<std::string> command = run->remaining();
    ctx.action = [&ctx, o, command] {
      runtime::RunOptions ro;
      ro.image = o->image;
      ro.command = command;
      if (!ro.command.empty() && ro.command.front() == "--") ro.command.erase(ro.command.begin());
      if (o->entrypoint) {
        // As docker: the value is one argv element; "" clears the entrypoint.
        ro.entrypoint = o->entrypoint->empty() ? std::vector<std::string>{} : std::vector<std::string>{*o->entrypoint};
      }
      ro.env = o->env;
      ro.workdir = o->workdir;
      ro.user = o->user;
      ro.remove = o->rm;
      ro.network = o->network == "host"   ? exec::Network::Host
                   : o->network == "none" ? exec::Network::None
                                          : exec::Network::Default;
      ro.privileged = o->privileged;
      SandboxLimits limits = sandbox_limits(ctx.root, o->pids_limit, o->memory);
      ro.pids_limit = limits.pids;
      ro.memory_limit = limits.memory;
      cache::Store store(ctx.root);
      image::ImageStore images(store);
      std::fflush(stdout);
      return runtime::run_container(store, images, ro);
    };
  });
}

void add_debug_command(CLI::App& app, Context& ctx) {
  auto* debug = app.add_subcommand("debug", "Debugging tools");
  debug->require_subcommand(1);
  auto file = std::make_shared<std::string>();
  auto* ast = debug->add_subcommand("ast", "Print the parsed Dockerfile as BuildKit's AST dump");
  ast->add_option("-f,--file", *file, "Dockerfile")->required();
  ast->callback([&ctx, file] {
    ctx.action = [file] {
      std::string source = base::read_file(*file);
      std::string display = std::filesystem::path(*file).filename().string();
      try {
        auto parsed = frontend::parse(source, display);
        std::fputs(frontend::dump_ast(parsed).c_str(), stdout);
        std::fflush(stdout);
      } catch (const base::Error& e) {
        if (e.where() && e.where()->valid()) {
          const auto& w = *e.where();
          std::string f = std::filesystem::path(w.file).filename().string();
          print_located_error(source, e.message(), w.start_line, w.start_col > 0 ? w.start_col : 1,
                              f.empty() ? display : f);
          return 1;
        }
        throw;
      }
      return 0;
    };
  });
}

}  // namespace builder::cli
