// tests/cache/gc_test.cpp — build cache GC: reference counting over shared snapshots,
// LRU order, keep-storage and until, image-held layers, unreferenced blobs, leases of
// live and dead processes, cache mounts, the policy and its config file.
#include "cache/gc.h"

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>

#include <chrono>
#include <ctime>
#include <thread>

#include "base/error.h"
#include "base/fd.h"
#include "base/json.h"
#include "cache_test_util.h"

using namespace builder;

namespace {

constexpr int64_t kS = 1000000000;

/// A committed snapshot holding one file of `bytes` bytes.
std::string make_snapshot(cache::Store& s, const std::string& parent, size_t bytes) {
  auto p = s.snapshots().create();
  test::write(p.fs_dir() + "/f", std::string(bytes, 'x'));
  return p.commit(parent);
}

/// Sets `created` of a snapshot and last_used of an entry: the tests choose the clock.
void age_snapshot(cache::Store& s, const std::string& id, int64_t created) {
  s.db().exec("UPDATE snapshots SET created=?1 WHERE id=?2", {static_cast<long long>(created), id});
}
void put_entry(cache::Store& s, const std::string& key, const std::vector<std::string>& layers, int64_t last_used) {
  s.index().put(key, base::Json(layers).dump());
  s.db().exec("UPDATE cache_index SET last_used=?1 WHERE key=?2", {static_cast<long long>(last_used), key});
}

bool has_snapshot(cache::Store& s, const std::string& id) {
  return s.snapshots().get(id).has_value() && base::path_exists(s.snapshots().base_dir() + "/" + id);
}
bool has_entry(cache::Store& s, const std::string& key) {
  return !s.db().query("SELECT 1 FROM cache_index WHERE key=?1", {key}).empty();
}

const int64_t kNow = static_cast<int64_t>(std::time(nullptr));
const int64_t kOld = kNow - 10 * 24 * 3600;

cache::ImageRefsFn no_images() {
  return [] { return cache::ImageRefs{}; };
}

int64_t du_total(cache::Store& s, const cache::ImageRefsFn& images = {}) {
  return cache::disk_usage(s, images ? images : no_images()).total;
}

}  // namespace

TEST_CASE("gc: sizes and durations parse like docker's and Go's") {
  CHECK(cache::parse_size("1024") == 1024);
  CHECK(cache::parse_size("10GB") == int64_t{10} << 30);
  CHECK(cache::parse_size("512MiB") == int64_t{512} << 20);
  CHECK(cache::parse_size("1.5g") == int64_t{3} << 29);
  CHECK(cache::parse_size("100 kb") == 102400);
  CHECK(cache::parse_size("7b") == 7);
  for (const char* bad : {"", "GB", "10XB", "-5MB", "1.MB", "10 GB extra", "1e9"}) {
    CHECK_THROWS_WITH_AS(cache::parse_size(bad), doctest::Contains("invalid size"), base::Error);
  }
  CHECK(cache::parse_duration("24h") == 24 * 3600 * kS);
  CHECK(cache::parse_duration("90m") == 90 * 60 * kS);
  CHECK(cache::parse_duration("1h30m") == 90 * 60 * kS);
  CHECK(cache::parse_duration("1.5h") == 90 * 60 * kS);
  CHECK(cache::parse_duration("300ms") == 300000000);
  CHECK(cache::parse_duration("0") == 0);
  for (const char* bad : {"", "10", "5d", "h", "1..5h", "abc"}) {
    CHECK_THROWS_WITH_AS(cache::parse_duration(bad), doctest::Contains("invalid duration"), base::Error);
  }
}

TEST_CASE("gc: a snapshot another entry still names is kept, and counted once") {
  base::TempDir tmp("/tmp", "cache-gc-");
  cache::Store s(tmp.path());
  std::string base_layer = make_snapshot(s, "", 4000);
  std::string top = make_snapshot(s, base_layer, 1000);
  age_snapshot(s, base_layer, kOld);
  age_snapshot(s, top, kOld);
  put_entry(s, "step1", {base_layer}, kNow);         // recent
  put_entry(s, "step2", {base_layer, top}, kOld);   // old
  CHECK(du_total(s) == 5000);  // the shared base once

  cache::PruneOptions o;
  o.all = true;
  o.until_ns = 3600 * kS;
  auto r = cache::prune(s, no_images(), o);
  CHECK(r.reclaimed == 1000);
  REQUIRE(r.removed.size() == 1);
  CHECK(r.removed[0].id == top);
  CHECK_FALSE(has_entry(s, "step2"));
  CHECK_FALSE(has_snapshot(s, top));
  CHECK(has_entry(s, "step1"));
  CHECK(has_snapshot(s, base_layer));
  CHECK(du_total(s) == 4000);

  // Without the filter everything goes; the base last (a layer before its parent).
  r = cache::prune(s, no_images(), cache::PruneOptions{true, std::nullopt, std::nullopt});
  CHECK(r.reclaimed == 4000);
  CHECK_FALSE(has_snapshot(s, base_layer));
  CHECK(s.index().all().empty());
  CHECK(du_total(s) == 0);
}

TEST_CASE("gc: keep-storage removes least recently used first, children before parents") {
  base::TempDir tmp("/tmp", "cache-gc-");
  cache::Store s(tmp.path());
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    ids.push_back(make_snapshot(s, "", 1000));
    age_snapshot(s, ids.back(), kOld);
    put_entry(s, "e" + std::to_string(i), {ids.back()}, kOld + 100 * (i + 1));
  }
  // A chain whose parent is used by its child's entry only.
  std::string p = make_snapshot(s, "", 500), c = make_snapshot(s, p, 500);
  age_snapshot(s, p, kOld);
  age_snapshot(s, c, kOld);
  put_entry(s, "chain", {p, c}, kOld + 50);
  CHECK(du_total(s) == 4000);

  cache::PruneOptions o;
  o.all = true;
  o.target_bytes = 2000;
  auto r = cache::prune(s, no_images(), o);
  // The chain (used at +50) goes first: child, then the parent it left unreferenced;
  // then e0 (+100). e1 and e2 stay.
  REQUIRE(r.removed.size() == 3);
  CHECK(r.removed[0].id == c);
  CHECK(r.removed[1].id == p);
  CHECK(r.removed[2].id == ids[0]);
  CHECK(r.total_after == 2000);
  CHECK(has_snapshot(s, ids[1]));
  CHECK(has_snapshot(s, ids[2]));
  CHECK(du_total(s) == 2000);
}

TEST_CASE("gc: prune without -a keeps layers of tagged images; -a keeps only the images' blobs") {
  base::TempDir tmp("/tmp", "cache-gc-");
  cache::Store s(tmp.path());
  std::string l1 = make_snapshot(s, "", 2000), l2 = make_snapshot(s, l1, 1000), other = make_snapshot(s, l1, 700);
  for (const auto& id : {l1, l2, other}) age_snapshot(s, id, kOld);
  auto b1 = s.blobs().put("layer one"), b2 = s.blobs().put("layer two"), manifest = s.blobs().put("manifest");
  auto b3 = s.blobs().put("an exported layer nobody tags");
  auto stray = s.blobs().put("left by a removed image");
  s.snapshots().set_blob(l1, "sha256:d1", b1.str(), 9, "gzip");
  s.snapshots().set_blob(l2, "sha256:d2", b2.str(), 9, "gzip");
  s.snapshots().set_blob(other, "sha256:d3", b3.str(), 29, "gzip");
  put_entry(s, "layer:1", {l1}, kOld);
  put_entry(s, "build", {l1, l2}, kOld);
  put_entry(s, "other", {l1, other}, kOld);
  cache::ImageRefsFn images = [&] {
    cache::ImageRefs r;
    r.blobs = {manifest.str(), b1.str(), b2.str()};
    r.chains = {{b1.str(), b2.str()}};
    return r;
  };
  auto u = cache::disk_usage(s, images);
  // Snapshots, plus the blobs no image holds (b3 with its snapshot, the stray one).
  CHECK(u.total == 2000 + 1000 + 700 + 29 + 23);
  CHECK(u.shared == 3000);

  auto r = cache::prune(s, images, cache::PruneOptions{});
  CHECK(has_entry(s, "build"));
  CHECK(has_entry(s, "layer:1"));
  CHECK(has_snapshot(s, l1));
  CHECK(has_snapshot(s, l2));
  CHECK_FALSE(has_entry(s, "other"));
  CHECK_FALSE(has_snapshot(s, other));
  CHECK_FALSE(s.blobs().has(b3));
  CHECK_FALSE(s.blobs().has(stray));
  CHECK(r.reclaimed == 700 + 29 + 23);

  r = cache::prune(s, images, cache::PruneOptions{true, std::nullopt, std::nullopt});
  CHECK(r.reclaimed == 3000);
  CHECK(s.snapshots().list().empty());
  CHECK(s.index().all().empty());
  for (const auto& d : {b1, b2, manifest}) CHECK(s.blobs().has(d));  // images keep their blobs
  CHECK(du_total(s, images) == 0);
}

TEST_CASE("gc: a live lease keeps what it holds; a dead process's lease is void") {
  base::TempDir tmp("/tmp", "cache-gc-");
  std::string root = tmp.path();
  std::string a, b;
  {
    cache::Store s(root);
    a = make_snapshot(s, "", 100);
    b = make_snapshot(s, "", 200);
    age_snapshot(s, a, kOld);
    age_snapshot(s, b, kOld);
    put_entry(s, "a", {a}, kOld);
    put_entry(s, "b", {b}, kOld);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // past the clock slack
  // Another process holds a lease on `a`. It forks while this process has no Store of
  // the root open, so that it takes a liveness lock of its own.
  int to_child[2], from_child[2];
  REQUIRE(::pipe(to_child) == 0);
  REQUIRE(::pipe(from_child) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    try {
      cache::Store cs(root);
      cache::Lease lease(cs);
      bool ok = lease.add_snapshots({a});
      char c = ok ? 'y' : 'n';
      (void)!::write(from_child[1], &c, 1);
      (void)!::read(to_child[0], &c, 1);  // until the parent says so (or kills us)
    } catch (...) {
      _exit(2);
    }
    _exit(0);
  }
  char c = 0;
  REQUIRE(::read(from_child[0], &c, 1) == 1);
  CHECK(c == 'y');
  cache::Store s(root);
  // Leases are recorded, not just held in memory: the row is there.
  CHECK(s.db().query("SELECT 1 FROM leases WHERE pid=?1", {static_cast<long long>(pid)}).size() == 1);
  auto u = cache::disk_usage(s, no_images());
  int in_use = 0;
  for (const auto& r : u.records) in_use += r.in_use ? 1 : 0;
  CHECK(in_use == 1);
  CHECK(u.reclaimable == 200);

  auto r = cache::prune(s, no_images(), cache::PruneOptions{true, std::nullopt, std::nullopt});
  CHECK(r.reclaimed == 200);
  CHECK(has_snapshot(s, a));
  CHECK_FALSE(has_snapshot(s, b));

  // The child dies without releasing: its lease no longer counts, and goes.
  ::kill(pid, SIGKILL);
  int st = 0;
  ::waitpid(pid, &st, 0);
  ::close(to_child[0]);
  ::close(to_child[1]);
  ::close(from_child[0]);
  ::close(from_child[1]);
  r = cache::prune(s, no_images(), cache::PruneOptions{true, std::nullopt, std::nullopt});
  CHECK(r.reclaimed == 100);
  CHECK_FALSE(has_snapshot(s, a));
  CHECK(s.db().query("SELECT 1 FROM leases").empty());
  CHECK(s.db().query("SELECT 1 FROM lease_resources").empty());
}

TEST_CASE("gc: a lease in this process; what a build writes after its lease began is kept") {
  base::TempDir tmp("/tmp", "cache-gc-");
  cache::Store s(tmp.path());
  std::string old_snap = make_snapshot(s, "", 100);
  age_snapshot(s, old_snap, kOld);
  // Past the clock slack: committed before the lease, not "while" it.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  {
    cache::Lease lease(s);
    // Committed after the lease began and named by nothing yet (a step between its
    // commit and its cache record): still not garbage.
    std::string fresh = make_snapshot(s, "", 50);
    auto r = cache::prune(s, no_images(), cache::PruneOptions{true, std::nullopt, std::nullopt});
    CHECK(r.reclaimed == 100);
    CHECK(has_snapshot(s, fresh));
    CHECK_FALSE(lease.add_snapshots({fresh, old_snap}));  // one is gone: nothing leased
    CHECK(lease.add_snapshots({fresh}));
  }
  auto r = cache::prune(s, no_images(), cache::PruneOptions{true, std::nullopt, std::nullopt});
  CHECK(r.reclaimed == 50);
  CHECK(s.snapshots().list().empty());
}

TEST_CASE("gc: cache mounts are counted and pruned, unless a build holds their lock") {
  base::TempDir tmp("/tmp", "cache-gc-");
  cache::Store s(tmp.path());
  std::string dir = tmp.path() + "/cache-mounts/0123abcd/0";
  test::write(dir + "/data/pkg/a", std::string(3000, 'a'));
  test::write(dir + "/data/b", std::string(500, 'b'));
  ::link((dir + "/data/b").c_str(), (dir + "/data/b2").c_str());  // counted once
  auto u = cache::disk_usage(s, no_images());
  REQUIRE(u.records.size() == 1);
  CHECK(u.records[0].kind == cache::RecordKind::CacheMount);
  CHECK(u.records[0].id == "0123abcd/0");
  CHECK(u.total == 3500);
  CHECK_FALSE(u.records[0].in_use);

  {
    base::Fd lock = base::open_fd(dir + ".lock", O_RDWR | O_CREAT, 0600);
    REQUIRE(::flock(lock.get(), LOCK_SH) == 0);  // a build using the cache
    cache::note_cache_mount_use(lock.get());
    CHECK(cache::disk_usage(s, no_images()).records.at(0).in_use);
    auto r = cache::prune(s, no_images(), cache::PruneOptions{});
    CHECK(r.reclaimed == 0);
    CHECK(base::path_exists(dir + "/data/pkg/a"));
  }
  auto r = cache::prune(s, no_images(), cache::PruneOptions{});
  CHECK(r.reclaimed == 3500);
  CHECK_FALSE(base::path_exists(dir + "/data"));
  CHECK(base::path_exists(dir + ".lock"));  // the lock stays: waiters keep agreeing on it
  CHECK(test::list(tmp.path() + "/run").size() == 1);  // only our liveness lock; no trash left
  CHECK(du_total(s) == 0);
}

TEST_CASE("gc: the policy keeps the cache under maxUsedSpace, never below reservedSpace") {
  base::TempDir tmp("/tmp", "cache-gc-");
  cache::Store s(tmp.path());
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(make_snapshot(s, "", 1000));
    age_snapshot(s, ids.back(), kNow - 100);
    put_entry(s, "e" + std::to_string(i), {ids.back()}, kNow - 100 + i);
  }
  cache::GcPolicy p;
  p.keep_duration_ns = 0;
  p.max_used.bytes = 2500;
  cache::GcStats st{int64_t{1} << 40, int64_t{1} << 39};
  auto r = cache::run_gc(s, no_images(), p, st);
  CHECK(r.total_before == 5000);
  CHECK(r.total_after == 2000);
  CHECK(du_total(s) == 2000);
  CHECK(has_snapshot(s, ids[3]));
  CHECK(has_snapshot(s, ids[4]));

  // Too little free space: the cache shrinks by the shortfall, but not below reserved.
  p.max_used = {};
  p.min_free.bytes = 10000;
  p.reserved.bytes = 1000;
  r = cache::run_gc(s, no_images(), p, cache::GcStats{100000, 9000});
  CHECK(r.total_after == 1000);
  CHECK(has_snapshot(s, ids[4]));

  // Old items go by age alone, but reservedSpace stays.
  age_snapshot(s, ids[4], kOld);
  s.db().exec("UPDATE cache_index SET last_used=?1", {static_cast<long long>(kOld)});
  std::string recent = make_snapshot(s, "", 300);
  put_entry(s, "recent", {recent}, kNow);
  cache::GcPolicy age;
  age.keep_duration_ns = 24 * 3600 * kS;
  age.reserved.bytes = 1300;
  r = cache::run_gc(s, no_images(), age, cache::GcStats{100000, 90000});
  CHECK(r.reclaimed == 0);  // 1300 bytes: at the reserve
  age.reserved.bytes = 0;
  r = cache::run_gc(s, no_images(), age, cache::GcStats{100000, 90000});
  CHECK(r.reclaimed == 1000);
  CHECK(has_snapshot(s, recent));

  age.enabled = false;
  s.db().exec("UPDATE cache_index SET last_used=?1", {static_cast<long long>(kOld)});
  CHECK(cache::run_gc(s, no_images(), age, cache::GcStats{100000, 90000}).removed.empty());
}

TEST_CASE("gc: the config file is read over the defaults; bad values name the file and key") {
  auto d = cache::default_policy();
  CHECK(d.enabled);
  CHECK(d.keep_duration_ns == int64_t{60} * 24 * 3600 * kS);
  CHECK(d.min_free.percent == 20);
  CHECK(d.reserved.resolve(int64_t{50} * 1000 * 1000 * 1000) == int64_t{5} * 1000 * 1000 * 1000);
  CHECK(d.reserved.resolve(int64_t{1000} * 1000 * 1000 * 1000) == int64_t{10} * 1000 * 1000 * 1000);

  auto p = cache::parse_policy(
      R"({"gc": {"enabled": true, "keepDuration": "48h", "reservedSpace": "1GB", "maxUsedSpace": 4096,
                 "minFreeSpace": "20%"}})",
      "/r/config.json");
  CHECK(p.keep_duration_ns == 48 * 3600 * kS);
  CHECK(p.reserved.bytes == int64_t{1} << 30);
  CHECK(p.max_used.bytes == 4096);
  CHECK(p.min_free.percent == 20);
  CHECK(p.min_free.resolve(1000) == 200);
  CHECK(cache::parse_policy(R"({"gc": {"keepDuration": 3600}})", "c").keep_duration_ns == 3600 * kS);
  CHECK_FALSE(cache::parse_policy(R"({"gc": {"enabled": false}})", "c").enabled);

  auto err = [](const std::string& text) {
    try {
      cache::parse_policy(text, "/r/config.json");
    } catch (const base::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(err(R"({"gc": {"maxUsedSpace": "10XB"}})") ==
        "config file `/r/config.json`: gc.maxUsedSpace: invalid size `10XB`: expected bytes with an optional "
        "unit (e.g. 512MiB, 10GB, 1.5g)");
  CHECK(err(R"({"gc": {"keepDuration": "2d"}})") ==
        "config file `/r/config.json`: gc.keepDuration: invalid duration `2d`: unknown unit `d` (expected e.g. "
        "24h, 90m, 1h30m)");
  CHECK(err(R"({"gc": {"minFreeSpace": "120%"}})") ==
        "config file `/r/config.json`: gc.minFreeSpace: invalid percentage `120%`: more than 100%");
  CHECK(err(R"({"gc": {"maxUsed": "1GB"}})") ==
        "config file `/r/config.json`: gc.maxUsed: unknown key (known: enabled, keepDuration, reservedSpace, "
        "maxUsedSpace, minFreeSpace)");
  CHECK(err(R"({"gc": {"enabled": "yes"}})") == "config file `/r/config.json`: gc.enabled: expected true or false");
  CHECK(err(R"({"cg": {}})") == "config file `/r/config.json`: unknown key `cg` (known: gc, sandbox)");
  CHECK(err("{not json") == "config file `/r/config.json` is not valid JSON");

  base::TempDir tmp("/tmp", "cache-gc-");
  CHECK(cache::load_policy(tmp.path()).keep_duration_ns == d.keep_duration_ns);  // no file: defaults
  test::write(tmp.path() + "/config.json", R"({"gc": {"maxUsedSpace": "3MiB"}})");
  CHECK(cache::load_policy(tmp.path()).max_used.bytes == 3 << 20);
}

TEST_CASE("gc: a layer goes only with the layers above it (single-layer entries of unpacked images)") {
  base::TempDir tmp("/tmp", "cache-gc-");
  cache::Store s(tmp.path());
  // As image/unpack records them: one entry per layer, naming only that layer.
  std::string l1 = make_snapshot(s, "", 1000), l2 = make_snapshot(s, l1, 300);
  age_snapshot(s, l1, kOld);
  age_snapshot(s, l2, kOld);
  put_entry(s, "layer:1", {l1}, kOld);        // used long ago
  put_entry(s, "layer:2", {l2}, kNow);        // used now: keeps l1 too
  cache::PruneOptions o{true, 3600 * kS, std::nullopt};
  auto r = cache::prune(s, no_images(), o);
  CHECK(r.reclaimed == 0);
  CHECK(has_snapshot(s, l1));
  CHECK(has_entry(s, "layer:1"));

  // keep-storage below both: l2 goes before l1, and l1 never without l2.
  r = cache::prune(s, no_images(), cache::PruneOptions{true, std::nullopt, 500});
  REQUIRE(r.removed.size() == 2);
  CHECK(r.removed[0].id == l2);
  CHECK(r.removed[1].id == l1);

  // A lease on the upper layer keeps the lower one.
  std::string a = make_snapshot(s, "", 100), b = make_snapshot(s, a, 50);
  age_snapshot(s, a, kOld);
  age_snapshot(s, b, kOld);
  put_entry(s, "layer:a", {a}, kOld);
  put_entry(s, "layer:b", {b}, kOld);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // past the clock slack
  cache::Lease lease(s);
  REQUIRE(lease.add_snapshots({b}));
  r = cache::prune(s, no_images(), cache::PruneOptions{true, std::nullopt, std::nullopt});
  CHECK(r.reclaimed == 0);
  CHECK(has_snapshot(s, a));
  CHECK(has_snapshot(s, b));
}
