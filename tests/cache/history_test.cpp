// tests/cache/history_test.cpp — the build history store: records and steps round trip,
// references (prefix, ^N), retention with its logs, interrupted builds of dead processes,
// repair of directories without a record, and step logs kept whole.
#include "cache/history.h"

#include <doctest/doctest.h>

#include <random>

#include "base/error.h"
#include "cache_test_util.h"

using namespace builder;

namespace {

cache::BuildRecord info(const std::string& context, std::vector<std::string> tags = {}) {
  cache::BuildRecord r;
  r.context = context;
  r.dockerfile = context + "/Dockerfile";
  r.tags = std::move(tags);
  return r;
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const base::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("history: a build and its steps round trip, newest build first") {
  base::TempDir tmp("/tmp", "cache-history-");
  cache::Store store(tmp.path());
  cache::History h(store);

  auto first = h.begin(info("/src/one", {"docker.io/library/one:latest"}));
  CHECK(first.id.size() == 12);
  CHECK(first.id.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(first.pid == ::getpid());
  CHECK(base::path_exists(h.build_dir(first.id)));

  cache::StepEntry cached;
  cached.number = 1;
  cached.vertex = 0;
  cached.name = "[1/2] FROM busybox";
  cached.state = cache::StepState::Cached;
  cached.duration_us = 1500;
  h.put_step(first.id, cached);
  cache::StepEntry ran;
  ran.number = 2;
  ran.vertex = 3;
  ran.name = "[2/2] RUN make";
  ran.miss_reason = "file \"app.py\" changed";
  h.put_step(first.id, ran);  // running: a row as soon as it misses
  ran.state = cache::StepState::Error;
  ran.error = "exit code: 2";
  ran.duration_us = 2'000'000;
  h.put_step(first.id, ran);  // replaced when it ends
  h.finish(first.id, cache::BuildStatus::Failed, "", "exit code: 2");

  auto second = h.begin(info("/src/two"));
  h.finish(second.id, cache::BuildStatus::Completed, "sha256:abc", "");

  auto all = h.builds();
  REQUIRE(all.size() == 2);
  CHECK(all[0].id == second.id);
  CHECK(all[1].id == first.id);
  CHECK(all[0].status == cache::BuildStatus::Completed);
  CHECK(all[0].image_id == "sha256:abc");
  CHECK(all[0].finished_ns >= all[0].started_ns);
  CHECK(all[1].status == cache::BuildStatus::Failed);
  CHECK(all[1].error == "exit code: 2");
  CHECK(all[1].tags == std::vector<std::string>{"docker.io/library/one:latest"});
  CHECK(all[1].dockerfile == "/src/one/Dockerfile");

  auto steps = h.steps(first.id);
  REQUIRE(steps.size() == 2);
  CHECK(steps[0].state == cache::StepState::Cached);
  CHECK(steps[0].miss_reason.empty());
  CHECK(steps[0].duration_us == 1500);
  CHECK(steps[1].name == "[2/2] RUN make");
  CHECK(steps[1].vertex == 3);
  CHECK(steps[1].state == cache::StepState::Error);
  CHECK(steps[1].miss_reason == "file \"app.py\" changed");
  CHECK(steps[1].error == "exit code: 2");
  CHECK(h.steps(second.id).empty());

  // References: the whole id, a unique prefix, ^N.
  CHECK(h.find(first.id).id == first.id);
  CHECK(h.find(second.id.substr(0, 12)).id == second.id);
  CHECK(h.find("^1").id == second.id);
  CHECK(h.find("^2").id == first.id);
  CHECK(error_of([&] { h.find("^3"); }) == "no build ^3 in the history: it holds 2 builds");
  CHECK(error_of([&] { h.find("^0"); }) == "invalid build reference `^0`: ^N counts from ^1, the newest build");
  CHECK(error_of([&] { h.find("zzz"); }) == "no build `zzz` in the history");
  CHECK(error_of([&] { h.find("../x"); }) == "no build `../x` in the history");
  // Two ids sharing a first character make that character ambiguous (forced here).
  store.db().exec("UPDATE history_builds SET id = 'aaaaaaaaaaa1' WHERE id = ?1", {first.id});
  store.db().exec("UPDATE history_builds SET id = 'aaaaaaaaaaa2' WHERE id = ?1", {second.id});
  CHECK(error_of([&] { h.find("aaa"); }) ==
        "build id prefix `aaa` is ambiguous: it matches aaaaaaaaaaa2, aaaaaaaaaaa1");
  CHECK(h.find("AAAAAAAAAAA1").id == "aaaaaaaaaaa1");
}

TEST_CASE("history: a step's output is kept whole, byte for byte (3 MiB)") {
  base::TempDir tmp("/tmp", "cache-history-");
  cache::Store store(tmp.path());
  cache::History h(store);
  auto b = h.begin(info("/src"));

  std::mt19937 rng(42);
  std::string expected;
  cache::LogWriter w = h.open_log(b.id, 1);
  int64_t t = 0;
  size_t chunks = 0;
  while (expected.size() < 3u * 1024 * 1024) {
    std::string chunk(1 + rng() % 20000, '\0');
    for (auto& c : chunk) c = static_cast<char>(rng());  // any byte, NULs and \r included
    w.append(chunk, t += 1000);
    expected += chunk;
    ++chunks;
  }
  CHECK(w.size() == expected.size());
  w = cache::LogWriter();  // closed
  cache::StepEntry s;
  s.number = 1;
  s.state = cache::StepState::Done;
  s.log_size = 10;  // the file, not the row, is the truth
  h.put_step(b.id, s);

  std::string got = h.read_log(b.id, 1);
  CHECK(got.size() == expected.size());
  CHECK(got == expected);
  CHECK(h.steps(b.id)[0].log_size == static_cast<int64_t>(expected.size()));
  auto index = h.log_chunks(b.id, 1);
  REQUIRE(index.size() == chunks);
  CHECK(index[0].offset == 0);
  CHECK(index[0].micros == 1000);
  for (size_t i = 1; i < index.size(); ++i) CHECK(index[i].offset > index[i - 1].offset);

  // Reopening appends after what is there (a step's log is one file).
  cache::LogWriter again = h.open_log(b.id, 1);
  CHECK(again.size() == expected.size());
  again.append("tail", t + 1);
  CHECK(h.read_log(b.id, 1) == expected + "tail");
  CHECK(h.read_log(b.id, 2).empty());  // a step that printed nothing
}

TEST_CASE("history: the newest builds are kept, older ones go with their logs") {
  base::TempDir tmp("/tmp", "cache-history-");
  cache::Store store(tmp.path());
  CHECK(cache::History::kKeepBuilds == 50);
  cache::History h(store, 3);
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    auto b = h.begin(info("/src/" + std::to_string(i)));
    h.open_log(b.id, 1).append("output " + std::to_string(i), 1);
    cache::StepEntry s;
    s.number = 1;
    h.put_step(b.id, s);
    h.finish(b.id, cache::BuildStatus::Completed, "", "");
    ids.push_back(b.id);
  }
  auto all = h.builds();
  REQUIRE(all.size() == 3);
  CHECK(all[0].id == ids[4]);
  CHECK(all[2].id == ids[2]);
  for (int i : {0, 1}) {
    CHECK_FALSE(base::path_exists(h.build_dir(ids[i])));
    CHECK(h.steps(ids[i]).empty());
  }
  CHECK(h.read_log(ids[2], 1) == "output 2");

  // A build still running in a live process is not dropped under it.
  auto live = h.begin(info("/src/live"));
  for (int i = 0; i < 3; ++i) h.finish(h.begin(info("/src/x")).id, cache::BuildStatus::Completed, "", "");
  auto now = h.builds();
  CHECK(now.size() == 4);
  CHECK(now.back().id == live.id);
  CHECK(base::path_exists(h.build_dir(live.id)));
  // Once it ended, the next build drops it.
  h.finish(live.id, cache::BuildStatus::Completed, "", "");
  h.begin(info("/src/y"));
  CHECK(h.builds().size() == 3);
  CHECK_FALSE(base::path_exists(h.build_dir(live.id)));
}

TEST_CASE("history: a running build of a dead process is interrupted") {
  base::TempDir tmp("/tmp", "cache-history-");
  cache::Store store(tmp.path());
  int dead = test::dead_pid();
  std::string id;
  {
    cache::History h(store);
    id = h.begin(info("/src")).id;
    CHECK(h.find(id).status == cache::BuildStatus::Running);  // ours: alive
    store.db().exec("UPDATE history_builds SET pid = ?1 WHERE id = ?2", {static_cast<long long>(dead), id});
    CHECK(h.find(id).status == cache::BuildStatus::Interrupted);
    CHECK(h.builds()[0].status == cache::BuildStatus::Interrupted);
  }
  // Opening the history again saves it as interrupted.
  cache::History again(store);
  auto rows = store.db().query("SELECT status FROM history_builds WHERE id = ?1", {id});
  REQUIRE(rows.size() == 1);
  CHECK(rows[0][0] == "interrupted");
}

TEST_CASE("history: opening removes build directories that have no record") {
  base::TempDir tmp("/tmp", "cache-history-");
  cache::Store store(tmp.path());
  std::string kept;
  {
    cache::History h(store);
    kept = h.begin(info("/src")).id;
    h.open_log(kept, 1).append("kept", 1);
  }
  // What a crash between dropping a build's row and its directory leaves behind.
  test::write(tmp.path() + "/history/0123456789ab/1.log", "orphan");
  cache::History h(store);
  CHECK_FALSE(base::path_exists(tmp.path() + "/history/0123456789ab"));
  CHECK(h.read_log(kept, 1) == "kept");
}
