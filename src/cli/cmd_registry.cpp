// cli/cmd_registry.cpp — the registry verbs: pull, push, login, logout. The protocol
// lives in registry/; this file parses flags, opens the store and prints as docker does.
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/strings.h"
#include "cache/store.h"
#include "cli.h"
#include "image/store.h"
#include "registry/client.h"
#include "registry/docker_config.h"
#include "registry/insecure.h"
#include "registry/pull.h"
#include "registry/reference.h"

namespace builder::cli {
namespace {

struct PullOpts {
  std::vector<std::string> insecure;
  bool quiet = false;
  std::string ref;
};

struct PushOpts {
  std::vector<std::string> insecure;
  bool quiet = false;
  std::string ref;
};

struct LoginOpts {
  std::string user, password, server;
  bool password_stdin = false;
  std::vector<std::string> insecure;
};

int run_pull(const std::string& root, const PullOpts& o) {
  auto ref = registry::Reference::parse(o.ref);
  cache::Store store(root);
  image::ImageStore images(store);
  registry::Client client(registry::ClientOptions{o.insecure, ""});
  std::optional<base::Digest> before;
  std::string name = ref.tag.empty() ? "" : image::normalize_ref(ref.repository() + ":" + ref.tag);
  if (!name.empty())
    if (auto old = images.resolve(name)) before = old->manifest_digest;
  auto img = registry::pull_image(client, images, ref);
  if (o.quiet) {
    std::printf("%s\n", ref.str().c_str());
    return 0;
  }
  std::printf("Digest: %s\n", img.manifest_digest.str().c_str());
  const std::string shown = name.empty() ? image::normalize_ref(ref.str()) : name;
  if (before && *before == img.manifest_digest)
    std::printf("Status: Image is up to date for %s\n", shown.c_str());
  else
    std::printf("Status: Downloaded newer image for %s\n", shown.c_str());
  std::printf("%s\n", ref.str().c_str());
  return 0;
}

int run_push(const std::string& root, const PushOpts& o) {
  auto ref = registry::Reference::parse(o.ref);
  cache::Store store(root);
  image::ImageStore images(store);
  auto img = images.resolve(o.ref);
  if (!img)
    throw base::Error("push " + ref.str() + ": no image named `" + o.ref +
                      "` in the store (name it first: builder tag IMAGE " + o.ref + ")");
  registry::Client client(registry::ClientOptions{o.insecure, ""});
  auto digest = registry::push_image(client, images, *img, ref);
  auto size = store.blobs().size(img->manifest_digest);
  if (o.quiet)
    std::printf("%s\n", digest.str().c_str());
  else
    std::printf("%s: digest: %s size: %llu\n", ref.tag.empty() ? ref.digest.c_str() : ref.tag.c_str(),
                digest.str().c_str(), static_cast<unsigned long long>(size));
  return 0;
}

/// A line from the terminal, without echo when `secret`.
std::string prompt(const std::string& label, bool secret) {
  std::fprintf(stderr, "%s", label.c_str());
  std::fflush(stderr);
  termios old{};
  bool restore = false;
  if (secret && ::tcgetattr(STDIN_FILENO, &old) == 0) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    restore = ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
  }
  std::string line;
  std::getline(std::cin, line);
  if (restore) {
    ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    std::fprintf(stderr, "\n");
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

/// "https://127.0.0.1:5000/v2/" -> "127.0.0.1:5000"; Docker Hub's spellings -> "docker.io".
std::string server_domain(const std::string& server) {
  std::string key = registry::config_key(server);
  return key == registry::config_key("docker.io") ? "docker.io" : key;
}

int run_login(const LoginOpts& o) {
  const std::string domain = server_domain(o.server);
  if (domain.empty()) throw base::Error("login: no server given");
  std::string user = o.user, password = o.password;
  if (o.password_stdin) {
    if (!password.empty()) throw base::Error("login: --password and --password-stdin are mutually exclusive");
    if (user.empty()) throw base::Error("login: --password-stdin needs --username");
    std::string all((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    while (!all.empty() && (all.back() == '\n' || all.back() == '\r')) all.pop_back();
    password = all;
  } else if (!password.empty()) {
    std::fprintf(stderr, "WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n");
  }
  if (user.empty()) {
    if (!::isatty(STDIN_FILENO)) throw base::Error("login: no username (use --username, or run in a terminal)");
    user = prompt("Username: ", false);
  }
  if (password.empty()) {
    if (!::isatty(STDIN_FILENO))
      throw base::Error("login: no password (use --password-stdin, or run in a terminal)");
    password = prompt("Password: ", true);
  }
  if (user.empty()) throw base::Error("login: the username is empty");
  if (password.empty()) throw base::Error("login: the password is empty");

  registry::Client client(registry::ClientOptions{o.insecure, ""});
  client.check_login(domain, user, password);
  const std::string path = registry::default_docker_config_path();
  const std::string helper = registry::store_credentials(path, domain, registry::Credentials{user, password, {}});
  if (helper.empty())
    std::fprintf(stderr, "WARNING! Your password will be stored unencrypted in %s.\n", path.c_str());
  std::printf("Login Succeeded\n");
  return 0;
}

int run_logout(const std::string& server) {
  const std::string domain = server_domain(server);
  if (registry::remove_credentials(registry::default_docker_config_path(), domain))
    std::printf("Removing login credentials for %s\n", registry::config_key(domain).c_str());
  else
    std::printf("Not logged in to %s\n", registry::config_key(domain).c_str());
  return 0;
}

}  // namespace

CLI::Option* add_insecure_registry_option(CLI::App* cmd, std::vector<std::string>& into) {
  return cmd
      ->add_option("--insecure-registry", into,
                   "Registry (host[:port] or IP network) reached without TLS verification: https with the "
                   "certificate unchecked, else plain http; repeatable")
      ->allow_extra_args(false)
      ->check([](const std::string& v) {
        try {
          registry::normalize_insecure_entry(v);
          return std::string();
        } catch (const base::Error& e) {
          // CLI11 names the option itself: "--insecure-registry: `X`: why".
          std::string msg = e.message();
          const std::string prefix = "--insecure-registry ";
          return msg.rfind(prefix, 0) == 0 ? msg.substr(prefix.size()) : msg;
        }
      });
}

void add_registry_commands(CLI::App& app, Context& ctx) {
  {
    auto o = std::make_shared<PullOpts>();
    auto* cmd = app.add_subcommand("pull", "Download an image from a registry");
    add_insecure_registry_option(cmd, o->insecure);
    cmd->add_flag("-q,--quiet", o->quiet, "Print only the image reference");
    cmd->add_option("REF", o->ref, "Image reference (name[:tag] or name@digest)")->required();
    cmd->callback([&ctx, o] { ctx.action = [&ctx, o] { return run_pull(ctx.root, *o); }; });
  }
  {
    auto o = std::make_shared<PushOpts>();
    auto* cmd = app.add_subcommand("push", "Upload an image of the store to a registry");
    add_insecure_registry_option(cmd, o->insecure);
    cmd->add_flag("-q,--quiet", o->quiet, "Print only the manifest digest");
    cmd->add_option("REF", o->ref, "Image name in the store, which says where to push (registry/repo[:tag])")->required();
    cmd->callback([&ctx, o] { ctx.action = [&ctx, o] { return run_push(ctx.root, *o); }; });
  }
  {
    auto o = std::make_shared<LoginOpts>();
    auto* cmd = app.add_subcommand("login", "Log in to a registry (stores credentials in the docker config)");
    cmd->add_option("-u,--username", o->user, "Username");
    cmd->add_option("-p,--password", o->password, "Password");
    cmd->add_flag("--password-stdin", o->password_stdin, "Read the password from stdin");
    add_insecure_registry_option(cmd, o->insecure);
    o->server = "docker.io";
    cmd->add_option("SERVER", o->server, "Registry (default: Docker Hub)");
    cmd->callback([&ctx, o] { ctx.action = [o] { return run_login(*o); }; });
  }
  {
    auto server = std::make_shared<std::string>("docker.io");
    auto* cmd = app.add_subcommand("logout", "Remove a registry's credentials from the docker config");
    cmd->add_option("SERVER", *server, "Registry (default: Docker Hub)");
    cmd->callback([&ctx, server] { ctx.action = [server] { return run_logout(*server); }; });
  }
}

}  // namespace builder::cli
