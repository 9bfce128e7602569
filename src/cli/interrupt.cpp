// cli/interrupt.cpp — the signal watcher behind InterruptGuard.
#include "interrupt.h"

#include <pthread.h>
#include <unistd.h>

#include <cerrno>

#include "exec/sandbox.h"

namespace builder::cli {

InterruptGuard::InterruptGuard() {
  sigemptyset(&set_);
  sigaddset(&set_, SIGINT);
  sigaddset(&set_, SIGTERM);
  sigaddset(&set_, SIGHUP);
  sigaddset(&set_, SIGUSR2);  // our own wake-up, to stop the watcher
  ::pthread_sigmask(SIG_BLOCK, &set_, &old_);
  watcher_ = std::thread([this] { watch(); });
}

InterruptGuard::~InterruptGuard() {
  stop_.store(true);
  ::pthread_kill(watcher_.native_handle(), SIGUSR2);
  watcher_.join();
  // A signal that arrived after the watcher stopped is still pending: dropping it
  // silently would lose a Ctrl-C, so it is delivered (default action) when unblocked.
  ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
}

void InterruptGuard::watch() {
  for (;;) {
    int sig = 0;
    if (::sigwait(&set_, &sig) != 0) continue;
    if (stop_.load()) return;
    if (sig == SIGUSR2) continue;
    if (signal_.exchange(sig) != 0) _exit(128 + sig);  // a second signal: stop waiting
    exec::cancel_all();
  }
}

}  // namespace builder::cli
