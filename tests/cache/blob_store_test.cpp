#include "cache/blob_store.h"

#include <doctest/doctest.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "base/error.h"
#include "cache/store.h"
#include "cache_test_util.h"

using namespace builder;
using builder::test::list;

namespace {

struct Root {
  base::TempDir tmp{"/tmp", "cache-blob-"};
  std::string root = tmp.path();
  Root() {
    base::make_dirs(root + "/content/blobs/sha256");
    base::make_dirs(root + "/content/ingest");
    base::make_dirs(root + "/run");
  }
};

}  // namespace

TEST_CASE("blob store: put, read, size, verify; blobs are read-only") {
  Root r;
  cache::BlobStore bs(r.root);
  base::Digest d = bs.put("hello");
  CHECK(d.str() == "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
  CHECK(bs.has(d));
  CHECK(bs.read(d) == "hello");
  CHECK(bs.size(d) == 5);
  CHECK(bs.verify(d));
  CHECK(bs.path(d) == r.root + "/content/blobs/sha256/" + std::string(d.hex()));
  struct stat st;
  REQUIRE(::stat(bs.path(d).c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0444);
  CHECK(list(r.root + "/content/ingest").empty());
  CHECK(bs.put("hello") == d);  // idempotent
  bs.remove(d);
  CHECK_FALSE(bs.has(d));
  bs.remove(d);  // removing a missing blob is not an error
}

TEST_CASE("blob store: a torn ingest is never visible") {
  Root r;
  cache::BlobStore bs(r.root);
  base::Digest full = base::Digest::of("hello world");
  {
    auto w = bs.ingest();
    w.write("hello ");
    CHECK(w.size() == 6);
    CHECK(list(r.root + "/content/ingest").size() == 1);
    CHECK_FALSE(bs.has(full));
    CHECK(list(r.root + "/content/blobs/sha256").empty());
    // destroyed without commit: a writer that died mid-stream
  }
  CHECK(list(r.root + "/content/ingest").empty());
  CHECK(list(r.root + "/content/blobs/sha256").empty());

  auto w = bs.ingest();
  w.write("hello ");
  w.write(std::string("world"));
  CHECK_FALSE(bs.has(full));
  CHECK(w.commit(full) == full);
  CHECK(bs.read(full) == "hello world");
  CHECK(list(r.root + "/content/ingest").empty());
}

TEST_CASE("blob store: a digest mismatch is rejected and the data discarded") {
  Root r;
  cache::BlobStore bs(r.root);
  base::Digest wrong = base::Digest::of("something else");
  base::Digest actual = base::Digest::of("payload");
  auto w = bs.ingest();
  w.write("payload");
  try {
    w.commit(wrong);
    FAIL("commit must throw");
  } catch (const base::Error& e) {
    CHECK(e.message() == "digest mismatch: expected " + wrong.str() + ", got " + actual.str());
  }
  CHECK_FALSE(bs.has(wrong));
  CHECK_FALSE(bs.has(actual));
  CHECK(list(r.root + "/content/ingest").empty());
  CHECK_THROWS_AS(w.write("more"), base::Error);
}

TEST_CASE("blob store: a moved writer keeps the ingest alive") {
  Root r;
  cache::BlobStore bs(r.root);
  auto w = bs.ingest();
  w.write("ab");
  cache::BlobStore::Writer w2(std::move(w));
  w2.write("c");
  CHECK(w2.commit() == base::Digest::of("abc"));
  CHECK(bs.read(base::Digest::of("abc")) == "abc");
}

TEST_CASE("blob store: missing blobs and corruption") {
  Root r;
  cache::BlobStore bs(r.root);
  base::Digest d = base::Digest::of("nope");
  CHECK_FALSE(bs.has(d));
  CHECK_FALSE(bs.verify(d));
  try {
    bs.read(d);
    FAIL("read must throw");
  } catch (const base::Error& e) {
    CHECK(e.message() == "blob " + d.str() + " not found");
  }
  CHECK_THROWS_AS(bs.size(d), base::Error);

  base::Digest good = bs.put("original");
  ::chmod(bs.path(good).c_str(), 0644);
  test::write(bs.path(good), "tampered");
  CHECK_FALSE(bs.verify(good));
}

TEST_CASE("blob store: repair removes ingest files of dead processes only") {
  Root r;
  cache::BlobStore bs(r.root);
  std::string ingest = r.root + "/content/ingest";
  int dead = test::dead_pid();
  test::write(ingest + "/" + std::to_string(dead) + "-0123abcd", "half a layer");
  test::write(ingest + "/not-a-pid-name", "junk");

  // A live writer in another process: it holds its liveness lock.
  int to_child[2], from_child[2];
  REQUIRE(::pipe(to_child) == 0);
  REQUIRE(::pipe(from_child) == 0);
  pid_t child = ::fork();
  if (child == 0) {
    ::close(to_child[1]);
    std::string lock = r.root + "/run/" + std::to_string(::getpid()) + ".lock";
    int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || ::flock(fd, LOCK_EX) < 0) ::_exit(1);
    char c = 'x';
    if (::write(from_child[1], &c, 1) != 1) ::_exit(1);
    (void)::read(to_child[0], &c, 1);  // until the parent is done
    ::_exit(0);
  }
  char c;
  REQUIRE(::read(from_child[0], &c, 1) == 1);
  std::string live_file = std::to_string(child) + "-feedbeef";
  test::write(ingest + "/" + live_file, "being written");
  auto own = bs.ingest();
  own.write("mine");

  bs.remove_stale_ingests();
  auto left = list(ingest);
  CHECK(left.size() == 2);
  CHECK(std::find(left.begin(), left.end(), live_file) != left.end());
  CHECK(own.commit() == base::Digest::of("mine"));

  ::close(to_child[1]);
  int st;
  ::waitpid(child, &st, 0);
  ::close(to_child[0]);
  ::close(from_child[0]);
  ::close(from_child[1]);
  // The writer died: its ingest file and its stale lock file go.
  bs.remove_stale_ingests();
  CHECK(list(ingest).empty());
  CHECK_FALSE(base::path_exists(r.root + "/run/" + std::to_string(child) + ".lock"));
}
