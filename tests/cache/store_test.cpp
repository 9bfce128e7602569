#include "cache/store.h"

#include <doctest/doctest.h>
#include <sys/file.h>

#include <csignal>
#include <thread>

#include "base/error.h"
#include "cache_test_util.h"

using namespace builder;
using builder::test::list;

namespace {

std::string own_lock(const std::string& root) {
  return root + "/run/" + std::to_string(::getpid()) + ".lock";
}

}  // namespace

TEST_CASE("store: opening a root creates its layout and a liveness lock") {
  base::TempDir tmp("/tmp", "cache-store-");
  std::string root = tmp.path() + "/root";
  {
    cache::Store s(root);
    CHECK(s.root() == root);
    for (const char* d :
         {"content/blobs/sha256", "content/ingest", "snapshots", "containers", "volumes", "run"}) {
      CHECK(base::path_exists(root + "/" + d));
    }
    CHECK(base::path_exists(root + "/metadata.db"));
    CHECK(base::path_exists(own_lock(root)));
    CHECK(cache::process_alive(root, ::getpid()));
    {
      cache::Store second(root);  // several Stores of one root in a process share the lock
      CHECK(second.index().all().empty());
    }
    CHECK(base::path_exists(own_lock(root)));
    auto rows = s.db().query("SELECT value FROM meta WHERE key='schema_version'");
    REQUIRE(rows.size() == 1);
    CHECK(rows[0][0] == std::to_string(cache::kSchemaVersion));
  }
  CHECK_FALSE(base::path_exists(own_lock(root)));
}

TEST_CASE("store: process_alive tells held locks from stale ones") {
  base::TempDir tmp("/tmp", "cache-store-");
  std::string root = tmp.path();
  base::make_dirs(root + "/run");
  int dead = test::dead_pid();
  CHECK_FALSE(cache::process_alive(root, dead));  // no lock file at all
  std::string stale = root + "/run/" + std::to_string(dead) + ".lock";
  test::write(stale, "");
  CHECK_FALSE(cache::process_alive(root, dead));
  CHECK_FALSE(base::path_exists(stale));

  int to_child[2], from_child[2];
  REQUIRE(::pipe(to_child) == 0);
  REQUIRE(::pipe(from_child) == 0);
  pid_t child = ::fork();
  if (child == 0) {
    ::close(to_child[1]);
    std::string lock = root + "/run/" + std::to_string(::getpid()) + ".lock";
    int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || ::flock(fd, LOCK_EX) < 0) ::_exit(1);
    char c = 'x';
    if (::write(from_child[1], &c, 1) != 1) ::_exit(1);
    (void)::read(to_child[0], &c, 1);
    ::_exit(0);
  }
  char c;
  REQUIRE(::read(from_child[0], &c, 1) == 1);
  CHECK(cache::process_alive(root, child));
  CHECK(base::path_exists(root + "/run/" + std::to_string(child) + ".lock"));
  ::close(to_child[1]);
  int st;
  ::waitpid(child, &st, 0);
  CHECK_FALSE(cache::process_alive(root, child));
  ::close(to_child[0]);
  ::close(from_child[0]);
  ::close(from_child[1]);
}

TEST_CASE("store: reopening repairs what a crash left behind") {
  base::TempDir tmp("/tmp", "cache-store-");
  std::string root = tmp.path();
  std::string kept, gone;
  base::Digest blob;
  {
    cache::Store s(root);
    kept = s.snapshots().create().commit("");
    gone = s.snapshots().create().commit("");
    blob = s.blobs().put("layer");
    s.index().put("k-kept", "[\"" + kept + "\"]");
    s.index().put("k-chain", "[\"" + kept + "\",\"" + gone + "\"]");
    s.index().put("k-gone", "[\"" + gone + "\"]");
    s.index().put("k-empty", "[]");
    s.index().put("k-opaque", "not json");
  }
  // The crash: a snapshot directory vanished, half-written files of a dead process.
  base::remove_all(root + "/snapshots/" + gone);
  int dead = test::dead_pid();
  std::string d = std::to_string(dead);
  test::write(root + "/content/ingest/" + d + "-0011aabb", "torn");
  test::write(root + "/run/" + d + ".lock", "");
  base::make_dirs(root + "/snapshots/pending-" + d + "-abcdef/fs");
  base::make_dirs(root + "/snapshots/pending-" + d + "-abcdef/work");
  base::make_dirs(root + "/snapshots/0123456789ab/fs");

  cache::Store s(root);
  CHECK(list(root + "/content/ingest").empty());
  CHECK(list(root + "/snapshots") == std::vector<std::string>{kept});
  CHECK_FALSE(base::path_exists(root + "/run/" + d + ".lock"));
  CHECK(s.snapshots().get(kept));
  CHECK_FALSE(s.snapshots().get(gone));
  std::vector<std::string> keys;
  for (const auto& [k, v] : s.index().all()) keys.push_back(k);
  CHECK(keys == std::vector<std::string>{"k-empty", "k-kept", "k-opaque"});
  CHECK(s.index().get("k-kept") == "[\"" + kept + "\"]");
  CHECK(s.blobs().read(blob) == "layer");
}

TEST_CASE("index: miss, put, replace, remove") {
  base::TempDir tmp("/tmp", "cache-store-");
  cache::Store s(tmp.path());
  auto& ix = s.index();
  CHECK_FALSE(ix.get("k"));
  ix.put("k", "v1");
  CHECK(ix.get("k") == "v1");
  ix.put("k", "v2");
  CHECK(ix.get("k") == "v2");
  CHECK(ix.all().size() == 1);
  auto rows = s.db().query("SELECT created, last_used FROM cache_index WHERE key='k'");
  CHECK(rows.at(0)[0].has_value());
  CHECK(rows.at(0)[1].has_value());
  ix.remove("k");
  CHECK_FALSE(ix.get("k"));
  ix.remove("k");
}

TEST_CASE("db: transactions commit, roll back and nest") {
  base::TempDir tmp("/tmp", "cache-db-");
  cache::Db db(tmp.path() + "/metadata.db");
  db.exec("CREATE TABLE t(a INTEGER, b TEXT)");
  db.transaction([&] { db.exec("INSERT INTO t VALUES(?1, ?2)", {1LL, std::string("one")}); });
  CHECK_THROWS_WITH_AS(db.transaction([&] {
    db.exec("INSERT INTO t VALUES(?1, ?2)", {2LL, std::string("two")});
    throw base::Error("boom");
  }),
                       "boom", base::Error);
  db.transaction([&] {
    db.exec("INSERT INTO t VALUES(3, NULL)");
    try {
      db.transaction([&] {
        db.exec("INSERT INTO t VALUES(4, 'four')");
        throw base::Error("inner");
      });
    } catch (const base::Error&) {
    }
  });
  auto rows = db.query("SELECT a, b FROM t ORDER BY a");
  REQUIRE(rows.size() == 2);
  CHECK(rows[0][0] == "1");
  CHECK(rows[0][1] == "one");
  CHECK(rows[1][0] == "3");
  CHECK_FALSE(rows[1][1].has_value());
  CHECK(db.exec("UPDATE t SET b='x'") == 2);
  CHECK(db.query("PRAGMA journal_mode").at(0)[0] == "wal");

  try {
    db.query("SELECT nope FROM t");
    FAIL("must throw");
  } catch (const base::Error& e) {
    CHECK(std::string(e.what()) ==
          "metadata db: no such column: nope\n  while running `SELECT nope FROM t`");
  }
  CHECK_THROWS_AS(db.query("SELECT ?1, ?2", {1LL}), base::Error);
}

TEST_CASE("db: a newer schema version is refused") {
  base::TempDir tmp("/tmp", "cache-db-");
  std::string path = tmp.path() + "/metadata.db";
  {
    cache::Db db(path);
    db.exec("UPDATE meta SET value='99' WHERE key='schema_version'");
  }
  try {
    cache::Db db(path);
    FAIL("must throw");
  } catch (const base::Error& e) {
    CHECK(e.message() == "metadata db has schema version 99, newer than this builder supports (1)");
  }
}

TEST_CASE("store: a writer killed mid-way leaves nothing visible after reopen") {
  base::TempDir tmp("/tmp", "cache-store-");
  std::string root = tmp.path();
  { cache::Store s(root); }
  pid_t child = ::fork();
  if (child == 0) {
    try {
      cache::Store s(root);
      auto w = s.blobs().ingest();
      w.write("half of a layer");
      auto p = s.snapshots().create();
      test::write(p.fs_dir() + "/file", "content");
      ::kill(::getpid(), SIGKILL);  // no destructor runs
    } catch (...) {
    }
    ::_exit(1);
  }
  int st;
  REQUIRE(::waitpid(child, &st, 0) == child);
  REQUIRE(WIFSIGNALED(st));
  std::string c = std::to_string(child);
  CHECK(list(root + "/content/ingest").size() == 1);
  CHECK(list(root + "/snapshots").size() == 1);
  CHECK(base::path_exists(root + "/run/" + c + ".lock"));

  cache::Store s(root);
  CHECK(list(root + "/content/ingest").empty());
  CHECK(list(root + "/snapshots").empty());
  CHECK(list(root + "/run") == std::vector<std::string>{std::to_string(::getpid()) + ".lock"});
}

TEST_CASE("store: concurrent writers on one store") {
  base::TempDir tmp("/tmp", "cache-store-");
  cache::Store s(tmp.path());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        std::string v = std::to_string(t) + "-" + std::to_string(i);
        s.blobs().put(v);
        auto p = s.snapshots().create();
        test::write(p.fs_dir() + "/f", v);
        s.index().put("key-" + v, "[\"" + p.commit("") + "\"]");
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(s.snapshots().list().size() == 40);
  CHECK(s.index().all().size() == 40);
  CHECK(list(tmp.path() + "/content/blobs/sha256").size() == 40);
  CHECK(list(tmp.path() + "/content/ingest").empty());
}
