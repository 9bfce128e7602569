// runtime/container.cpp — `builder run`: image -> snapshots -> container dir -> exec::run.
#include "runtime/container.h"

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <ctime>
#include <sys/types.h>
#include <unistd.h>

#include "base/error.h"
#include "base/time.h"
#include "base/fs.h"
#include "base/json.h"
#include "base/scope_exit.h"
#include "cache/gc.h"
#include "exec/sandbox.h"
#include "image/unpack.h"

namespace builder::runtime {
namespace {

// The running container's init pid, for the signal handler (0: none). A plain global
// because a signal handler can reach nothing else.
std::atomic<int> g_container_pid{0};

extern "C" void forward_signal(int sig) {
  int pid = g_container_pid.load();
  if (pid > 0) ::kill(pid, sig);
}

std::vector<std::string> json_strings(const base::Json& j) {
  std::vector<std::string> out;
  if (j.is_array())
    for (const auto& s : j)
      if (s.is_string()) out.push_back(s.get<std::string>());
  return out;
}


const base::Json& inner_config(const base::Json& image_config) {
  static const base::Json empty = base::Json::object();
  auto it = image_config.find("config");
  return (it != image_config.end() && it->is_object()) ? *it : empty;
}

}  // namespace

std::vector<std::string> container_args(const base::Json& image_config, const RunOptions& opts) {
  const auto& cfg = inner_config(image_config);
  std::vector<std::string> args;
  if (opts.entrypoint) {
    args = *opts.entrypoint;
    // Docker: --entrypoint resets the image's Cmd.
    args.insert(args.end(), opts.command.begin(), opts.command.end());
    return args;
  }
  if (cfg.contains("Entrypoint")) args = json_strings(cfg["Entrypoint"]);
  if (!opts.command.empty())
    args.insert(args.end(), opts.command.begin(), opts.command.end());
  else if (cfg.contains("Cmd")) {
    auto cmd = json_strings(cfg["Cmd"]);
    args.insert(args.end(), cmd.begin(), cmd.end());
  }
  return args;
}

std::vector<std::string> container_env(const base::Json& image_config, const std::vector<std::string>& overrides) {
  const auto& cfg = inner_config(image_config);
  std::vector<std::string> env = cfg.contains("Env") ? json_strings(cfg["Env"]) : std::vector<std::string>{};
  auto set = [&env](const std::string& kv) {
    auto key = kv.substr(0, kv.find('='));
    for (auto& e : env)
      if (e.substr(0, e.find('=')) == key) {
        e = kv;
        return;
      }
    env.push_back(kv);
  };
  for (const auto& o : overrides) {
    if (o.empty()) continue;
    if (o.find('=') != std::string::npos) {
      set(o);
    } else if (const char* v = std::getenv(o.c_str())) {
      set(o + "=" + v);
    }  // KEY alone and unset on the host: Docker leaves it out.
  }
  return env;
}

int run_container(cache::Store& store, image::ImageStore& images, const RunOptions& opts) {
  auto img = images.resolve(opts.image);
  if (!img) throw base::Error("Unable to find image '" + opts.image + "' locally");

  auto args = container_args(img->config, opts);
  if (args.empty()) throw base::Error("no command specified");
  const auto& cfg = inner_config(img->config);

  // The container's layers stay leased while it runs, so that a prune in another
  // process cannot remove them; one pruned between unpacking and leasing is unpacked again.
  cache::Lease lease(store);
  auto snaps = image::unpack_image(store, *img);
  for (int attempt = 0; !lease.add_snapshots(snaps); ++attempt) {
    if (attempt == 2) throw base::Error("the layers of " + opts.image + " keep being pruned while it starts");
    snaps = image::unpack_image(store, *img);
  }

  std::string id = base::random_hex(32);
  std::string dir = base::path_join(base::path_join(store.root(), "containers"), id);
  // Owns the directory before anything creates it, so a failing make_dirs leaves nothing.
  base::ScopeExit cleanup([&] {
    // Destructors never throw: a leftover dir is garbage, not a failure.
    if (opts.remove) try {
        base::remove_all(dir);
      } catch (...) {
      }
  });
  // Made whole under a scratch name (repair removes it if we die first) and renamed into
  // place, so every containers/<id>/ has its record. The record names this process: a
  // later store open finds a "running" container whose `builder run` was killed
  // (cache::Store::repair) and removes it (--rm) or marks it exited.
  std::string staging = store.scratch_dir() + "/container-" + std::to_string(::getpid()) + "-" + base::random_hex(6);
  base::ScopeExit drop_staging([&] {
    try {
      if (base::path_exists(staging)) base::remove_all(staging);
    } catch (...) {
    }
  });
  base::make_dirs(base::path_join(staging, "upper"));
  base::make_dirs(base::path_join(staging, "work"));

  base::Json record = base::Json::object();
  record["id"] = id;
  record["image"] = opts.image;
  record["image_id"] = img->config_digest.str();
  record["command"] = args;
  record["created"] = base::rfc3339_now();
  record["status"] = "created";
  record["owner_pid"] = static_cast<int>(::getpid());
  record["remove"] = opts.remove;
  base::write_file_atomic(base::path_join(staging, "config.json"), record.dump(2) + "\n");
  base::check_sys(::rename(staging.c_str(), dir.c_str()), "rename", dir);
  std::string record_path = base::path_join(dir, "config.json");

  exec::RunSpec spec;
  for (auto it = snaps.rbegin(); it != snaps.rend(); ++it) spec.lower_dirs.push_back(cache::Snapshots::relative_fs(*it));
  spec.layers_base = store.snapshots().base_dir();
  spec.upper_dir = base::path_join(dir, "upper");
  spec.work_dir = base::path_join(dir, "work");
  spec.scratch_dir = store.scratch_dir();
  spec.args = std::move(args);
  spec.env = container_env(img->config, opts.env);
  std::string image_workdir = cfg.value("WorkingDir", std::string());
  spec.cwd = !opts.workdir.empty() ? opts.workdir : !image_workdir.empty() ? image_workdir : std::string("/");
  if (!opts.user.empty())
    spec.user = opts.user;
  else if (cfg.contains("User") && cfg["User"].is_string())
    spec.user = cfg["User"].get<std::string>();
  spec.stdin_fd = -1;
  spec.stdout_fd = 1;
  spec.stderr_fd = 2;
  spec.on_start = [](int pid) { g_container_pid.store(pid); };
  spec.network = opts.network;
  spec.privileged = opts.privileged;
  spec.pids_limit = opts.pids_limit;
  spec.memory_limit = opts.memory_limit;

  struct sigaction sa {}, old_int{}, old_term{};
  sa.sa_handler = forward_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGINT, &sa, &old_int);
  ::sigaction(SIGTERM, &sa, &old_term);
  base::ScopeExit restore([&] {
    g_container_pid.store(0);
    ::sigaction(SIGINT, &old_int, nullptr);
    ::sigaction(SIGTERM, &old_term, nullptr);
  });

  record["status"] = "running";
  base::write_file_atomic(record_path, record.dump(2) + "\n");
  exec::RunResult res;
  try {
    res = exec::run(spec);
  } catch (...) {
    record["status"] = "failed";
    if (!opts.remove) base::write_file_atomic(record_path, record.dump(2) + "\n");
    throw;
  }
  record["status"] = "exited";
  record["exit_code"] = res.exit_code;
  if (res.signal) record["signal"] = res.signal;
  record["finished"] = base::rfc3339_now();
  if (!opts.remove) base::write_file_atomic(record_path, record.dump(2) + "\n");
  return res.exit_code;
}

}  // namespace builder::runtime
