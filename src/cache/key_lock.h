// cache/key_lock.h — single flight across processes: before a step runs, the process
// takes an exclusive flock on <root>/locks/<key>.lock, so that two `builder` processes
// on one root never run the same cache key at once; the second waits, then finds the
// first one's result in the index. A lock dies with its process (flock), and a lock
// file is removed by whoever holds it when done, so no lock outlives a crash.
#pragma once

#include <functional>
#include <string>

#include "base/fd.h"

namespace builder::cache {

class KeyLocks {
 public:
  explicit KeyLocks(std::string dir);  ///< created if missing

  /// An exclusive lock on one key; releasing removes the lock file.
  class Held {
   public:
    Held() = default;
    Held(Held&&) noexcept = default;
    Held& operator=(Held&&) noexcept;
    ~Held();
    /// Whether another holder had the lock when it was asked for (this one waited).
    bool waited() const { return waited_; }

   private:
    friend class KeyLocks;
    std::string path_;
    base::Fd fd_;
    bool waited_ = false;
    void release() noexcept;
  };

  /// Blocks until this process holds `key`'s lock. `cancelled` is polled while waiting;
  /// when it returns true, throws base::Error("cancelled while waiting ..."). Thread-safe
  /// across processes only: callers in one process must not ask for the same key twice
  /// at once (the solver's in-process single flight sees to that).
  Held acquire(const std::string& key, const std::function<bool()>& cancelled = {});

  /// Repair: removes lock files that no live process holds.
  void remove_stale();

 private:
  std::string dir_;
};

}  // namespace builder::cache
