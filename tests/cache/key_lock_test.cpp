// Single flight across processes: a key held by another process makes acquire() wait,
// a holder that dies leaves no lock behind, and a wait can be cancelled.
#include "cache/key_lock.h"

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "base/error.h"
#include "cache_test_util.h"

using namespace builder;

namespace {

/// Forks a child that takes `key`, writes a byte to `ready`, sleeps `ms` and exits
/// (releasing, or with _exit before release when `die` is set).
pid_t hold_in_child(const std::string& dir, const std::string& key, int ms, bool die, int ready) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    try {
      cache::KeyLocks locks(dir);
      auto held = locks.acquire(key);
      (void)!::write(ready, "x", 1);
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
      if (die) ::kill(::getpid(), SIGKILL);
    } catch (...) {
      _exit(2);
    }
    _exit(0);
  }
  return pid;
}

void wait_ready(int fd) {
  char c;
  REQUIRE(::read(fd, &c, 1) == 1);
}

}  // namespace

TEST_CASE("key locks: a second process waits for the holder, then holds the key alone") {
  base::TempDir tmp("/tmp", "keylock-");
  std::string dir = tmp.path() + "/locks";
  int p[2];
  REQUIRE(::pipe(p) == 0);
  pid_t child = hold_in_child(dir, "k1", 400, false, p[1]);
  wait_ready(p[0]);
  cache::KeyLocks locks(dir);
  {
    auto held = locks.acquire("k1");
    CHECK(held.waited());
    int status = 0;
    // The child has released (and exited) before we got the lock.
    CHECK(::waitpid(child, &status, WNOHANG) == child);
    CHECK(WIFEXITED(status));
    CHECK(base::path_exists(dir + "/k1.lock"));
  }
  CHECK_FALSE(base::path_exists(dir + "/k1.lock"));  // released: the file is gone
  // A free key is taken without waiting.
  auto other = locks.acquire("k2");
  CHECK_FALSE(other.waited());
  ::close(p[0]);
  ::close(p[1]);
}

TEST_CASE("key locks: a holder killed with SIGKILL blocks no one, and repair removes its file") {
  base::TempDir tmp("/tmp", "keylock-");
  std::string dir = tmp.path() + "/locks";
  int p[2];
  REQUIRE(::pipe(p) == 0);
  pid_t child = hold_in_child(dir, "dead", 0, true, p[1]);
  wait_ready(p[0]);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFSIGNALED(status));
  CHECK(base::path_exists(dir + "/dead.lock"));  // left behind by the killed holder
  cache::KeyLocks locks(dir);
  locks.remove_stale();
  CHECK_FALSE(base::path_exists(dir + "/dead.lock"));
  auto held = locks.acquire("dead");
  CHECK_FALSE(held.waited());
  ::close(p[0]);
  ::close(p[1]);
}

TEST_CASE("key locks: repair leaves a held lock alone; a wait can be cancelled") {
  base::TempDir tmp("/tmp", "keylock-");
  std::string dir = tmp.path() + "/locks";
  int p[2];
  REQUIRE(::pipe(p) == 0);
  pid_t child = hold_in_child(dir, "busy", 1500, false, p[1]);
  wait_ready(p[0]);
  cache::KeyLocks locks(dir);
  locks.remove_stale();
  CHECK(base::path_exists(dir + "/busy.lock"));
  std::atomic<int> polls{0};
  CHECK_THROWS_AS(locks.acquire("busy", [&] { return ++polls > 3; }), base::Error);
  CHECK_THROWS_AS(locks.acquire("bad/key"), base::Error);
  int status = 0;
  ::waitpid(child, &status, 0);
  ::close(p[0]);
  ::close(p[1]);
}
