#include "base/pid.h"

#include <signal.h>
#include <sys/wait.h>

#include <cerrno>
#include <string>

#include "base/error.h"

namespace builder::base {

void reset_signals_for_exec() noexcept {
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &dfl, nullptr);
}

int Pid::wait() {
  int status = 0;
  for (;;) {
    pid_t r = ::waitpid(pid_, &status, 0);
    if (r == pid_) break;
    if (r < 0 && errno == EINTR) continue;
    throw SysError(errno, "waitpid", std::to_string(pid_));
  }
  pid_ = -1;
  return status;
}

void Pid::kill_and_reap() noexcept {
  if (pid_ <= 0) return;
  // Killing the init of the container's PID namespace kills everything in it; the
  // kernel lets waitpid() return only after all of them are gone.
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

}  // namespace builder::base
