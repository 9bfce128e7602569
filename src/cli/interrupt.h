// cli/interrupt.h — turns SIGINT, SIGTERM and SIGHUP during a build into a clean stop:
// the signals are blocked in the calling thread (and so in every thread it starts later,
// such as the solver's workers) and a watcher thread sigwait()s for them, then kills
// the running sandboxes (exec::cancel_all) so the build fails and unwinds through its
// owners: no scratch directory, pending snapshot or lock is left to repair.
#pragma once

#include <signal.h>

#include <atomic>
#include <thread>

namespace builder::cli {

/// Construct before any thread that must not receive the signals is started. A second
/// signal while the build unwinds exits at once (128+signal). Not copyable; one at a time.
class InterruptGuard {
 public:
  InterruptGuard();
  ~InterruptGuard();
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

  /// The signal that interrupted the build, or 0.
  int signal() const { return signal_.load(); }

 private:
  void watch();

  sigset_t set_;
  sigset_t old_;
  std::atomic<int> signal_{0};
  std::atomic<bool> stop_{false};
  std::thread watcher_;
};

}  // namespace builder::cli
