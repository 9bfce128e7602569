// runtime/container.h — `builder run`: one container from a stored image. Unpacks the
// image's layers as shared snapshots, keeps the container's writable layer and record
// under root/containers/<id>/, runs the process through exec::run. Knows nothing of
// builds or Dockerfiles.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cache/store.h"
#include "exec/sandbox.h"
#include "image/store.h"

namespace builder::runtime {

struct RunOptions {
  std::string image;
  std::vector<std::string> command;                      ///< empty: the image's Cmd
  std::optional<std::vector<std::string>> entrypoint;    ///< set: replaces Entrypoint and resets Cmd
  std::vector<std::string> env;                          ///< -e: "K=V" or "K" (host value)
  std::string workdir;                                   ///< -w; empty: image WorkingDir or "/"
  std::string user;                                      ///< -u; empty: image User
  bool remove = false;                                   ///< --rm
  exec::Network network = exec::Network::Default;        ///< --network
  bool privileged = false;                               ///< --privileged
  int64_t pids_limit = 2048;                             ///< --pids-limit; 0: none
  int64_t memory_limit = 0;                              ///< --memory; 0: none
};

/// The argv Docker would run: entrypoint (override or image's) + command (given, or the
/// image Cmd unless the entrypoint was overridden). Exposed for tests.
std::vector<std::string> container_args(const base::Json& image_config, const RunOptions& opts);
/// Image Env with -e overrides applied. Exposed for tests.
std::vector<std::string> container_env(const base::Json& image_config, const std::vector<std::string>& overrides);

/// Runs the container in the foreground with builder's stdout/stderr; SIGINT/SIGTERM
/// are forwarded to it. Returns its exit code (128+signal when killed). Throws
/// base::Error when the image is unknown or no command is specified,
/// exec::CommandNotRunnable (exit_code() 127 or 126, as docker run) when the command
/// cannot be started, base::SysError when the sandbox cannot be set up. Records the exit
/// status in the container's config.json; with remove, deletes the container directory
/// afterwards.
int run_container(cache::Store& store, image::ImageStore& images, const RunOptions& opts);

}  // namespace builder::runtime
