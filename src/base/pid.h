// base/pid.h — Pid, the owner of a child process: SIGKILLs and reaps it on
// destruction unless it was waited for. Containers are created only by exec::run (the
// one place that clones), which owns each child through a Pid; host helper programs
// (git, ssh-agent, credential helpers) are forked by their callers, whose children call
// reset_signals_for_exec() before execve.
#pragma once

#include <sys/types.h>

#include <utility>

namespace builder::base {

/// In a forked child, before execve: an empty signal mask and default dispositions for
/// the signals builder blocks or ignores (SIGINT, SIGTERM for its signal thread; SIGPIPE,
/// SIGHUP), which an exec would otherwise pass on. Async-signal-safe.
void reset_signals_for_exec() noexcept;

class Pid {
 public:
  Pid() = default;
  explicit Pid(pid_t pid) : pid_(pid) {}
  ~Pid() { kill_and_reap(); }
  Pid(Pid&& o) noexcept : pid_(std::exchange(o.pid_, -1)) {}
  Pid& operator=(Pid&& o) noexcept {
    if (this != &o) {
      kill_and_reap();
      pid_ = std::exchange(o.pid_, -1);
    }
    return *this;
  }
  Pid(const Pid&) = delete;
  Pid& operator=(const Pid&) = delete;

  pid_t get() const { return pid_; }
  bool valid() const { return pid_ > 0; }

  /// waitpid() until the child exits (retrying EINTR); returns the raw wait status
  /// and stops owning the pid. Throws SysError.
  int wait();

 private:
  /// Never throws: SIGKILL (the PID namespace dies with its init) and blocking reap.
  void kill_and_reap() noexcept;
  pid_t pid_ = -1;
};

}  // namespace builder::base
