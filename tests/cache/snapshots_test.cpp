#include "cache/snapshots.h"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <ctime>

#include "base/error.h"
#include "cache/db.h"
#include "cache_test_util.h"

using namespace builder;
using builder::test::list;

namespace {

struct Fixture {
  base::TempDir tmp{"/tmp", "cache-snap-"};
  std::string root = tmp.path();
  std::unique_ptr<cache::Db> db;
  std::unique_ptr<cache::Snapshots> snaps;
  Fixture() {
    base::make_dirs(root + "/snapshots");
    base::make_dirs(root + "/run");
    db = std::make_unique<cache::Db>(root + "/metadata.db");
    snaps = std::make_unique<cache::Snapshots>(root, *db);
  }
};

bool is_id(const std::string& s) {
  return s.size() == 12 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

}  // namespace

TEST_CASE("snapshots: commit renames a pending snapshot into place and records it") {
  Fixture f;
  auto p = f.snaps->create();
  std::string pending_name = list(f.snaps->base_dir()).at(0);
  CHECK(pending_name.rfind("pending-" + std::to_string(::getpid()) + "-", 0) == 0);
  CHECK(base::path_exists(p.fs_dir()));
  CHECK(base::path_exists(p.work_dir()));
  test::write(p.fs_dir() + "/etc/hostname", "box\n");     // 4 bytes
  test::write(p.fs_dir() + "/bin/tool", "123456", 0755);  // 6 bytes
  // overlayfs leaves work/work with mode 000 behind
  base::make_dirs(p.work_dir() + "/work");
  ::chmod((p.work_dir() + "/work").c_str(), 0);

  std::string id = p.commit("");
  CHECK(is_id(id));
  CHECK(list(f.snaps->base_dir()) == std::vector<std::string>{id});
  CHECK(list(f.snaps->base_dir() + "/" + id) == std::vector<std::string>{"fs"});
  CHECK(f.snaps->fs_path(id) == f.root + "/snapshots/" + id + "/fs");
  CHECK(cache::Snapshots::relative_fs(id) == id + "/fs");
  CHECK(base::read_file(f.snaps->fs_path(id) + "/etc/hostname") == "box\n");

  auto info = f.snaps->get(id);
  REQUIRE(info);
  CHECK(info->id == id);
  CHECK(info->parent.empty());
  CHECK(info->size == 10);
  CHECK(std::abs(info->created - std::time(nullptr)) < 60);
  CHECK(info->diff_id.empty());
  CHECK_THROWS_AS(p.commit(""), base::Error);
}

TEST_CASE("snapshots: a pending snapshot dropped without commit leaves nothing") {
  Fixture f;
  {
    auto p = f.snaps->create();
    test::write(p.fs_dir() + "/x", "data");
    auto moved = std::move(p);  // the moved-from one must not remove anything
    CHECK(base::path_exists(moved.fs_dir() + "/x"));
  }
  CHECK(list(f.snaps->base_dir()).empty());
  CHECK(f.snaps->list().empty());
}

TEST_CASE("snapshots: parents, blobs, creation dates, list and remove") {
  Fixture f;
  std::string a = f.snaps->create().commit("");
  std::string b = f.snaps->create().commit(a);
  CHECK(f.snaps->get(b)->parent == a);

  // An unknown parent rolls the commit back; the pending directory goes with its owner.
  {
    auto p = f.snaps->create();
    try {
      p.commit("0123456789ab");
      FAIL("commit must throw");
    } catch (const base::Error& e) {
      CHECK(e.message() == "parent snapshot `0123456789ab` not found");
    }
  }
  CHECK(list(f.snaps->base_dir()).size() == 2);
  CHECK(f.snaps->list().size() == 2);

  f.snaps->set_blob(a, "sha256:aa", "sha256:bb", 42, "application/vnd.oci.image.layer.v1.tar+gzip");
  auto info = f.snaps->get(a);
  CHECK(info->diff_id == "sha256:aa");
  CHECK(info->blob_digest == "sha256:bb");
  CHECK(info->blob_size == 42);
  CHECK(info->media_type == "application/vnd.oci.image.layer.v1.tar+gzip");
  CHECK_THROWS_WITH_AS(f.snaps->set_blob("ffffffffffff", "", "", 0, ""),
                       "snapshot `ffffffffffff` not found", base::Error);

  // A snapshot unpacked from a remote cache takes its layer's original date.
  f.snaps->set_created(b, 1700000000);
  CHECK(f.snaps->get(b)->created == 1700000000);
  CHECK(f.snaps->get(a)->created != 1700000000);
  CHECK_THROWS_WITH_AS(f.snaps->set_created("ffffffffffff", 1), "snapshot `ffffffffffff` not found", base::Error);

  f.snaps->remove(a);
  CHECK_FALSE(f.snaps->get(a));
  CHECK(list(f.snaps->base_dir()) == std::vector<std::string>{b});
  CHECK_FALSE(f.snaps->get("nonexistent"));
  CHECK_THROWS_AS(f.snaps->fs_path("../../etc"), base::Error);
}

TEST_CASE("snapshots: repair removes orphans and rows without directories") {
  Fixture f;
  std::string kept = f.snaps->create().commit("");
  std::string lost = f.snaps->create().commit("");
  base::remove_all(f.snaps->base_dir() + "/" + lost);  // row without directory
  std::string base = f.snaps->base_dir();
  base::make_dirs(base + "/abcdefabcdef/fs");  // renamed into place, crashed before the row
  int dead = test::dead_pid();
  base::make_dirs(base + "/pending-" + std::to_string(dead) + "-00aa11/fs");
  base::make_dirs(base + "/trash-" + std::to_string(dead) + "-00aa11/fs");
  auto live = f.snaps->create();  // our own pending snapshot survives

  f.snaps->repair();
  auto names = list(base);
  CHECK(names.size() == 2);
  CHECK(std::find(names.begin(), names.end(), kept) != names.end());
  CHECK(base::path_exists(live.fs_dir()));
  CHECK(f.snaps->get(kept));
  CHECK_FALSE(f.snaps->get(lost));
  CHECK(f.snaps->list().size() == 1);
  CHECK(is_id(live.commit(kept)));
}
