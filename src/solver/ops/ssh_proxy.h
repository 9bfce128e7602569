// solver/ops/ssh_proxy.h — SSH agent forwarding for `RUN --mount=type=ssh`: SshProxy is
// the socket a step sees, in builder's scratch space, relaying each connection to the
// agent `--ssh` named and passing only the requests that use keys (list, sign), as
// BuildKit's read-only agent does; SshKeyAgent is an ssh-agent holding the key files of
// `--ssh ID=KEY[,KEY]` for one build. Neither knows graphs or Dockerfiles.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/fd.h"
#include "base/temp_dir.h"

namespace builder::ops {

/// One forwarded agent socket for the lifetime of one step. Thread-safe to destroy from
/// the thread that made it; its own threads never throw.
class SshProxy {
 public:
  /// Listens on a new socket in a private directory below `scratch_dir`, owned by
  /// uid:gid with `mode` (what the step's process sees through a bind mount of it).
  /// Each connection is relayed to the agent socket `upstream`. Throws base::Error.
  SshProxy(const std::string& upstream, const std::string& scratch_dir, uint32_t mode, uint32_t uid, uint32_t gid);
  /// Stops accepting, ends every relayed connection, joins the threads and removes the
  /// socket. Never throws.
  ~SshProxy();
  SshProxy(const SshProxy&) = delete;
  SshProxy& operator=(const SshProxy&) = delete;

  /// The host path of the listening socket.
  const std::string& socket_path() const { return path_; }

 private:
  struct Conn {
    std::thread thread;
    std::atomic<bool> done{false};
  };
  void accept_loop();
  void relay(base::Fd client);

  std::string upstream_;
  base::TempDir dir_;
  std::string path_;
  base::Fd listener_;
  base::Fd stop_read_, stop_write_;  ///< closing stop_write_ wakes every poll()
  std::mutex mu_;
  std::list<Conn> conns_;
  std::thread acceptor_;
};

/// An ssh-agent (OpenSSH's, found in PATH) holding `keys` (private key files without a
/// passphrase), listening in a private directory below `scratch_dir`. It ends with this
/// object, and on its own within seconds if builder dies. Throws base::Error when the
/// agent cannot start or a key cannot be added (the message names the key file).
class SshKeyAgent {
 public:
  SshKeyAgent(const std::string& scratch_dir, const std::vector<std::string>& keys);
  ~SshKeyAgent();
  SshKeyAgent(const SshKeyAgent&) = delete;
  SshKeyAgent& operator=(const SshKeyAgent&) = delete;

  const std::string& socket_path() const { return path_; }

 private:
  /// Reads the agent's pid, which its shell prints on `out` once the socket listens.
  void wait_agent(int out);
  void stop() noexcept;

  base::TempDir dir_;
  std::string path_;
  pid_t child_ = -1;  ///< our child: the command ssh-agent runs beside itself (a shell)
  pid_t agent_ = -1;  ///< the agent itself (the shell's parent process had forked it)
  base::Fd hold_;     ///< the shell's stdin: closing it (or dying) ends the shell
};

/// Connects a SOCK_STREAM unix socket to `path`. Throws base::SysError.
base::Fd connect_unix(const std::string& path);

}  // namespace builder::ops
