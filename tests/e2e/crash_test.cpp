// tests/e2e/crash_test.cpp — crash safety of a builder root. `builder` killed with
// SIGKILL at any instant (of a build, a `run`, a `save` or a `load`) leaves no process
// or mount behind, and the next command opens the root and repairs it by itself: no
// scratch, pending, ingest or lock file of the dead process stays, every row of the
// metadata database names something present and whole, and the root still builds,
// runs and prunes. Ctrl-C and SIGTERM stop a build cleanly, with nothing to repair.
#include <dirent.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <optional>
#include <set>
#include <thread>

#include "base/digest.h"
#include "base/json.h"
#include "e2e_util.h"

using builder::e2e::Result;
using builder::e2e::TestRoot;
using builder::e2e::testdata;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

/// Names in `dir` that start with `prefix`.
std::vector<std::string> entries_with_prefix(const fs::path& dir, const std::string& prefix) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) == 0) out.push_back(name);
  }
  return out;
}

/// Pids whose command line contains `needle` (from /proc/<pid>/cmdline).
std::vector<int> processes_with(const std::string& needle) {
  std::vector<int> pids;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmd = builder::e2e::slurp(e.path() / "cmdline");
    for (auto& c : cmd)
      if (c == '\0') c = ' ';
    if (cmd.find(needle) != std::string::npos) pids.push_back(std::stoi(name));
  }
  return pids;
}

/// Waits up to 5 s for every process whose command line names one of `needles` to
/// end; returns those still there.
std::vector<int> wait_processes_gone(const std::vector<std::string>& needles) {
  std::vector<int> left;
  for (int i = 0; i < 100; ++i) {
    left.clear();
    for (const auto& n : needles) {
      auto p = processes_with(n);
      left.insert(left.end(), p.begin(), p.end());
    }
    if (left.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return left;
}

/// A `builder` process started in the background, its stdout and stderr in `log`.
pid_t spawn_builder(const TestRoot& root, const std::vector<std::string>& args, const fs::path& log) {
  std::vector<std::string> argv{builder::test::builder_binary(), "--root", root.store().string()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int in = ::open("/dev/null", O_RDONLY);
    int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0 || ::chdir(root.work().c_str()) != 0) _exit(126);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(out, 2);
    ::execv(cargv[0], cargv.data());
    _exit(127);
  }
  return pid;
}

/// SIGKILLs `pid` (a no-op if it has already exited) and reaps it. True when the kill
/// ended it, false when it had finished by itself.
bool kill_and_reap(pid_t pid) {
  ::kill(pid, SIGKILL);
  int ws = 0;
  while (::waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
  }
  return WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL;
}

/// Reaps `pid` if it has exited; true then.
bool exited(pid_t pid) {
  int ws = 0;
  return ::waitpid(pid, &ws, WNOHANG) == pid;
}

/// sha256 of a file, "" if it cannot be read.
std::string file_sha256(const fs::path& p) {
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  builder::base::Sha256 h;
  std::vector<char> buf(1 << 20);
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    h.update(buf.data(), static_cast<size_t>(n));
  }
  ::close(fd);
  return std::string(h.finish().hex());
}

using Rows = std::vector<std::vector<std::string>>;

/// Runs `sql` on the root's metadata database (no builder may be running). NULL is "".
Rows query(const fs::path& store, const std::string& sql, std::vector<std::string>& problems) {
  Rows rows;
  sqlite3* db = nullptr;
  std::string path = (store / "metadata.db").string();
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    problems.push_back("cannot open " + path + ": " + (db ? sqlite3_errmsg(db) : "?"));
    sqlite3_close(db);
    return rows;
  }
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
    problems.push_back("`" + sql + "`: " + sqlite3_errmsg(db));
  } else {
    while (sqlite3_step(st) == SQLITE_ROW) {
      std::vector<std::string> row;
      for (int c = 0; c < sqlite3_column_count(st); ++c) {
        auto* t = reinterpret_cast<const char*>(sqlite3_column_text(st, c));
        row.emplace_back(t ? t : "");
      }
      rows.push_back(std::move(row));
    }
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return rows;
}

bool is_hex(const std::string& s, size_t n) {
  return s.size() == n && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

/// The root's consistency, checked from outside: what the next command must have
/// repaired (no leftovers of dead processes) and what must always hold (every row
/// names something present; every blob is whole). `verified` remembers blob files
/// already hashed (path and inode: a blob file is immutable once renamed in). Returns
/// the problems found, empty when consistent.
std::vector<std::string> store_problems(const fs::path& store, std::set<std::string>& verified) {
  std::vector<std::string> problems;
  auto leftovers = [&](const fs::path& dir, const std::function<bool(const std::string&)>& bad,
                       const std::string& what) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      std::string name = e.path().filename().string();
      if (bad(name)) problems.push_back(what + ": " + e.path().string());
    }
  };
  auto any = [](const std::string&) { return true; };
  // Nothing of a dead process: no builder runs now, so run/, ingest/ and locks/ are empty.
  leftovers(store / "run", any, "scratch dir or liveness lock of a dead process");
  leftovers(store / "content" / "ingest", any, "ingest file left behind");
  leftovers(store / "locks", any, "single-flight lock file left behind");
  leftovers(store / "snapshots", [](const std::string& n) { return !is_hex(n, 12); },
            "pending or trashed snapshot left behind");
  std::error_code ec;
  for (const auto& h : fs::directory_iterator(store / "cache-mounts", ec)) {
    std::error_code ec2;
    for (const auto& inst : fs::directory_iterator(h.path(), ec2))
      leftovers(inst.path(), [](const std::string& n) { return n.rfind("new-", 0) == 0; },
                "half-made cache mount");
  }
  for (const auto& c : fs::directory_iterator(store / "containers", ec)) {
    auto rec = builder::base::Json::parse(builder::e2e::slurp(c.path() / "config.json"), nullptr, false);
    std::string status = rec.is_object() ? rec.value("status", std::string()) : "";
    if (status != "exited" && status != "failed")
      problems.push_back("container without a live run is `" + status + "`: " + c.path().string());
  }

  leftovers(store, [&](const std::string& n) {
    std::error_code e2;
    return n.find(".tmp-") != std::string::npos &&
           fs::file_time_type::clock::now() - fs::last_write_time(store / n, e2) > std::chrono::minutes(1);
  }, "stale temporary file");

  // Blobs: every file is named by its content.
  std::set<std::string> blobs;
  for (const auto& b : fs::directory_iterator(store / "content" / "blobs" / "sha256", ec)) {
    std::string hex = b.path().filename().string();
    blobs.insert(hex);
    struct stat st {};
    ::stat(b.path().c_str(), &st);
    std::string seen = b.path().string() + "@" + std::to_string(st.st_ino);
    if (verified.count(seen)) continue;
    std::string got = file_sha256(b.path());
    if (got != hex) problems.push_back("torn blob " + hex + " (content hashes to " + got + ")");
    else verified.insert(seen);
  }
  auto blob_present = [&](const std::string& digest, const std::string& who) {
    std::string hex = digest.rfind("sha256:", 0) == 0 ? digest.substr(7) : "";
    if (!is_hex(hex, 64) || !blobs.count(hex)) {
      problems.push_back(who + " names missing blob `" + digest + "`");
      return false;
    }
    return true;
  };

  // Snapshots: rows and directories agree; parents and layer blobs exist.
  std::set<std::string> rows;
  for (const auto& r : query(store, "SELECT id, parent, blob_digest FROM snapshots", problems)) {
    rows.insert(r[0]);
    if (!fs::is_directory(store / "snapshots" / r[0] / "fs"))
      problems.push_back("snapshot row " + r[0] + " has no directory");
  }
  for (const auto& r : query(store, "SELECT id, parent, blob_digest FROM snapshots", problems)) {
    if (!r[1].empty() && !rows.count(r[1])) problems.push_back("snapshot " + r[0] + " has no parent " + r[1]);
    if (!r[2].empty()) blob_present(r[2], "snapshot " + r[0]);
  }
  leftovers(store / "snapshots", [&](const std::string& n) { return is_hex(n, 12) && !rows.count(n); },
            "snapshot directory without a row");

  // The cache index names existing snapshots.
  for (const auto& r : query(store, "SELECT key, value FROM cache_index", problems)) {
    auto j = builder::base::Json::parse(r[1], nullptr, false);
    if (!j.is_array()) continue;
    for (const auto& id : j)
      if (id.is_string() && !rows.count(id.get<std::string>()))
        problems.push_back("cache record " + r[0] + " names missing snapshot " + id.get<std::string>());
  }

  // Image names: the manifest and everything it names are present.
  for (const auto& r : query(store, "SELECT name, digest FROM images", problems)) {
    if (!blob_present(r[1], "image " + r[0])) continue;
    auto m = builder::base::Json::parse(builder::e2e::slurp(store / "content/blobs/sha256" / r[1].substr(7)), nullptr,
                                        false);
    if (!m.is_object() || !m.contains("config") || !m.contains("layers")) {
      problems.push_back("image " + r[0] + ": manifest is not a manifest");
      continue;
    }
    blob_present(m["config"].value("digest", std::string()), "image " + r[0] + " config");
    for (const auto& l : m["layers"]) blob_present(l.value("digest", std::string()), "image " + r[0] + " layer");
  }
  return problems;
}

/// Runs statements on the root's metadata database (no builder may be running).
void exec_sql(const fs::path& store, const std::string& sql) {
  sqlite3* db = nullptr;
  std::string path = (store / "metadata.db").string();
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  std::string msg = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  REQUIRE_MESSAGE(rc == SQLITE_OK, sql << ": " << msg);
}

std::string join(const std::vector<std::string>& v) { return builder::e2e::join(v); }

/// The checks after a killed command: its processes and mounts are gone; the next
/// command opens the root and repairs it; the root is then consistent.
void check_recovered(const TestRoot& root, const std::vector<std::string>& markers, std::set<std::string>& verified) {
  std::vector<std::string> needles = markers;
  needles.push_back(root.store().string());  // any builder process of this root
  auto left = wait_processes_gone(needles);
  CHECK_MESSAGE(left.empty(), left.size() << " processes survived the killed builder");
  root.check_no_mounts();
  Result images = root.builder({"images"});
  CHECK_MESSAGE(images.status == 0, images.describe());
  auto problems = store_problems(root.store(), verified);
  CHECK_MESSAGE(problems.empty(), "after repair:\n" << join(problems));
}

/// A deterministic incompressible file: its layer takes a while to compress and hash.
void write_noise(const fs::path& p, size_t bytes) {
  std::string data(bytes, '\0');
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i + 8 <= bytes; i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::memcpy(&data[i], &x, 8);
  }
  builder::e2e::write_file(p, data);
}

/// The context of testdata/e2e/killed-many: its Dockerfile with `crashmark` made
/// unique to this root (so process checks see only our steps), 200 small files, a
/// 24 MiB big.bin and data.tar.
fs::path make_context(const TestRoot& root, const std::string& mark) {
  fs::path ctx = root.work() / "ctx";
  std::string df = builder::e2e::slurp(testdata("e2e/killed-many/Dockerfile"));
  for (size_t p = df.find("crashmark-"); p != std::string::npos; p = df.find("crashmark-", p + mark.size()))
    df.replace(p, 10, mark + "-");
  builder::e2e::write_file(ctx / "Dockerfile", df);
  for (int i = 0; i < 200; ++i)
    builder::e2e::write_file(ctx / "files" / ("f" + std::to_string(i)), "file " + std::to_string(i) + "\n");
  write_noise(ctx / "big.bin", 24u << 20);
  builder::e2e::write_file(root.work() / "tarsrc" / "hello.txt", "hello from a tar\n");
  Result tar = builder::e2e::run_process({"tar", "-C", (root.work() / "tarsrc").string(), "-cf",
                                          (ctx / "data.tar").string(), "hello.txt"});
  REQUIRE_MESSAGE(tar.status == 0, tar.describe());
  return ctx;
}

/// Whether any file in `dir` is at least `min_size` bytes.
bool has_file_of(const fs::path& dir, uintmax_t min_size, const std::string& prefix = "") {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::error_code ec2;
    if (e.path().filename().string().rfind(prefix, 0) != 0) continue;
    if (e.is_regular_file(ec2) && e.file_size(ec2) >= min_size) return true;
  }
  return false;
}

}  // namespace

/// Starts `builder build` of testdata/e2e/killed with its output in `log`, waits until
/// its RUN step runs, sends `sig` and returns the wait status.
int build_and_signal(const TestRoot& root, const fs::path& log, int sig) {
  std::string cmd = "exec '" + builder::test::builder_binary() + "' --root '" + root.store().string() +
                    "' build --progress=plain -t killed '" + testdata("e2e/killed") + "' >'" + log.string() +
                    "' 2>&1";
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  bool running = false;
  for (int i = 0; i < 300 && !running; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    // The step's own output line ("#2 0.012 step-running"), not its header, which
    // names the command before the sandbox exists.
    running = builder::e2e::slurp(log).find(" step-running\n") != std::string::npos;
  }
  CHECK_MESSAGE(running, "the RUN step never started:\n" << builder::e2e::slurp(log));
  CHECK(!entries_with_prefix(root.store() / "run", "sandbox-").empty());
  ::kill(pid, sig);
  int ws = 0;
  ::waitpid(pid, &ws, 0);
  return ws;
}

TEST_CASE("e2e: Ctrl-C or SIGTERM stops a build cleanly, with nothing left to repair") {
  if (!builder::test::have_root()) return;
  for (int sig : {SIGINT, SIGTERM}) {
    CAPTURE(sig);
    TestRoot root;
    REQUIRE(root.import_busybox());
    fs::path log = root.work() / "build.log";
    int ws = build_and_signal(root, log, sig);
    std::string out = builder::e2e::slurp(log);
    CHECK_MESSAGE((WIFEXITED(ws) && WEXITSTATUS(ws) == 128 + sig), out);
    CHECK_MESSAGE(out.find(std::string("ERROR: build interrupted by SIG") + sigabbrev_np(sig) +
                           "; nothing was tagged") != std::string::npos,
                  out);
    CHECK(processes_with("sleep 1000").empty());
    root.check_no_mounts();
    // Cleaned on the way out, before any other command could repair.
    CHECK(entries_with_prefix(root.store() / "run", "sandbox-").empty());
    CHECK(entries_with_prefix(root.store() / "snapshots", "pending-").empty());
    Result images = root.builder({"images"});
    CHECK(builder::e2e::image_repositories(images.out) == std::vector<std::string>{"busybox"});
  }
}

TEST_CASE("e2e: a build killed during RUN leaves nothing behind and the store recovers") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());

  fs::path log = root.work() / "build.log";
  int ws = build_and_signal(root, log, SIGKILL);
  CHECK(WIFSIGNALED(ws));

  // The step's processes die with the builder (the pid namespace's init is killed).
  std::vector<int> left;
  for (int i = 0; i < 100; ++i) {
    left = processes_with("sleep 1000");
    if (left.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK_MESSAGE(left.empty(), left.size() << " step processes survived the builder");
  // Mounts lived in the step's own mount namespace.
  root.check_no_mounts();

  // The next command repairs: the scratch directory and the half-written snapshot go.
  Result images = root.builder({"images"});
  CHECK_MESSAGE(images.status == 0, images.describe());
  CHECK(builder::e2e::image_repositories(images.out) == std::vector<std::string>{"busybox"});
  CHECK(entries_with_prefix(root.store() / "run", "sandbox-").empty());
  CHECK(entries_with_prefix(root.store() / "snapshots", "pending-").empty());
  CHECK(entries_with_prefix(root.store() / "content" / "ingest", "").empty());
  std::set<std::string> verified;
  auto problems = store_problems(root.store(), verified);
  CHECK_MESSAGE(problems.empty(), join(problems));

  // And the store still builds.
  builder::e2e::write_file(root.work() / "ctx" / "Dockerfile", "FROM busybox\nRUN echo ok > /ok\n");
  Result b = root.builder({"build", "-t", "after", (root.work() / "ctx").string()});
  CHECK_MESSAGE(b.status == 0, b.describe());
  Result r = root.builder({"run", "--rm", "after", "cat", "/ok"});
  CHECK_MESSAGE(r.out == "ok\n", r.describe());
  root.check_no_mounts();
}

TEST_CASE("e2e: a build killed at 20+ instants of its run always leaves a root that builds, runs and prunes") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  const std::string mark = "crashmark_" + root.dir().filename().string().substr(13);  // builder-test-XXXXXX
  fs::path ctx = make_context(root, mark);
  fs::path oci = root.work() / "out.tar";
  const std::vector<std::string> build_args{"build", "--progress=plain", "-t", "killed-many",
                                            "-o", "type=oci,dest=" + oci.string(), ctx.string()};
  const std::string expected = "200\n301\nhello from a tar\nbig.bin: OK\n";
  std::set<std::string> verified;
  fs::path log = root.work() / "build.log";

  // An uninterrupted build from an empty cache measures the span to spread the kills
  // over. The second one is measured: the first also fills the checksum memo, which
  // makes every later build faster.
  Clock::duration full{};
  for (int i = 0; i < 2; ++i) {
    auto t0 = Clock::now();
    Result first = root.builder(build_args);
    full = Clock::now() - t0;
    REQUIRE_MESSAGE(first.status == 0, first.describe());
    Result p0 = root.builder({"prune", "-a", "-f"});
    REQUIRE_MESSAGE(p0.status == 0, p0.describe());
  }
  MESSAGE("uninterrupted build: " << std::chrono::duration_cast<std::chrono::milliseconds>(full).count() << " ms");

  // When to kill: at even fractions of the full build, and at phases seen in the plain
  // progress output or on disk (a step's sandbox, a half-written snapshot, a layer or
  // the OCI archive being written), some of them a little after the phase begins.
  struct Instant {
    std::string what;
    std::function<bool(Clock::duration since_start)> now;
  };
  std::vector<Instant> instants;
  constexpr int kTimed = 14;
  for (int i = 0; i < kTimed; ++i) {
    auto at = full * i / kTimed;
    instants.push_back({"at " + std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(at).count()) +
                            " ms",
                        [at](Clock::duration t) { return t >= at; }});
  }
  auto in_log = [&](const std::string& needle, int delay_ms) {
    return Instant{"when the log shows `" + needle + "` (+" + std::to_string(delay_ms) + " ms)",
                   [&log, needle, delay_ms, seen = std::optional<Clock::time_point>()](Clock::duration) mutable {
                     if (!seen && builder::e2e::slurp(log).find(needle) != std::string::npos) seen = Clock::now();
                     return seen && Clock::now() - *seen >= std::chrono::milliseconds(delay_ms);
                   }};
  };
  auto on_disk = [&](const std::string& what, std::function<bool()> seen) {
    return Instant{"when " + what, [seen](Clock::duration) { return seen(); }};
  };
  const fs::path store = root.store();
  instants.push_back(in_log(mark + "-gen", 0));
  instants.push_back(in_log(mark + "-cache", 0));
  instants.push_back(in_log(mark + "-big", 0));
  instants.push_back(in_log(mark + "-final", 50));
  instants.push_back(in_log("COPY files/ /files/", 5));
  instants.push_back(in_log("ADD data.tar", 0));
  instants.push_back(on_disk("a step's sandbox exists",
                             [store] { return !entries_with_prefix(store / "run", "sandbox-").empty(); }));
  instants.push_back(on_disk("a pending snapshot exists",
                             [store] { return !entries_with_prefix(store / "snapshots", "pending-").empty(); }));
  instants.push_back(on_disk("a big layer is half ingested",
                             [store] { return has_file_of(store / "content" / "ingest", 4u << 20); }));
  instants.push_back(on_disk("the OCI archive is being written",
                             [oci] { return has_file_of(oci.parent_path(), 1, "out.tar.tmp-"); }));

  int killed = 0;
  for (size_t i = 0; i < instants.size(); ++i) {
    const auto& inst = instants[i];
    CAPTURE(inst.what);
    std::error_code ec;
    fs::remove(oci, ec);
    auto start = Clock::now();
    pid_t pid = spawn_builder(root, build_args, log);
    bool done = false;
    while (!done && Clock::now() - start < full * 3 + std::chrono::seconds(10)) {
      if (inst.now(Clock::now() - start)) break;
      if (exited(pid)) {
        done = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    bool hit = !done && kill_and_reap(pid);
    killed += hit;
    MESSAGE("kill " << inst.what << ": " << std::string(hit ? "killed mid-way" : "the build had finished"));
    check_recovered(root, {mark}, verified);
    // Each build starts from the same empty cache, so the instants mean the same thing;
    // the last kill's leftovers are what the final build resumes from.
    if (i + 1 < instants.size()) {
      Result p = root.builder({"prune", "-a", "-f"});
      CHECK_MESSAGE(p.status == 0, p.describe());
      auto problems = store_problems(root.store(), verified);
      CHECK_MESSAGE(problems.empty(), "after prune:\n" << join(problems));
    }
  }
  CHECK_MESSAGE(killed >= 20, "only " << killed << " of " << instants.size() << " kills hit a running build");

  // The root still builds (the output is right), runs and prunes.
  std::error_code ec;
  fs::remove(oci, ec);
  Result b = root.builder(build_args);
  REQUIRE_MESSAGE(b.status == 0, b.describe());
  Result run = root.builder({"run", "--rm", "killed-many"});
  CHECK_MESSAGE(run.out == expected, run.describe());
  Result listing = builder::e2e::run_process({"tar", "-tf", oci.string()});
  CHECK_MESSAGE(listing.out.find("index.json") != std::string::npos, listing.describe());
  Result prune = root.builder({"prune", "-a", "-f"});
  CHECK_MESSAGE(prune.status == 0, prune.describe());
  auto problems = store_problems(root.store(), verified);
  CHECK_MESSAGE(problems.empty(), "after the final prune:\n" << join(problems));
  // Pruning the build cache keeps the image: it unpacks again and runs.
  Result again = root.builder({"run", "--rm", "killed-many"});
  CHECK_MESSAGE(again.out == expected, again.describe());
  root.check_no_mounts();
  CHECK(wait_processes_gone({mark, root.store().string()}).empty());
}

TEST_CASE("e2e: a killed `builder run` leaves a root the next command repairs") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  std::set<std::string> verified;
  const std::string mark = "crashrun_" + root.dir().filename().string().substr(13);
  auto containers = [&] {
    std::vector<builder::base::Json> out;
    std::error_code ec;
    for (const auto& c : fs::directory_iterator(root.store() / "containers", ec))
      out.push_back(builder::base::Json::parse(builder::e2e::slurp(c.path() / "config.json"), nullptr, false));
    return out;
  };
  for (bool remove : {true, false}) {
    CAPTURE(remove);
    fs::path log = root.work() / "run.log";
    std::vector<std::string> args{"run"};
    if (remove) args.push_back("--rm");
    for (const std::string& a :
         std::vector<std::string>{"busybox", "sh", "-c", "echo " + mark + "; touch /written; sleep 1000"})
      args.push_back(a);
    pid_t pid = spawn_builder(root, args, log);
    bool running = false;
    for (int i = 0; i < 300 && !running; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      running = builder::e2e::slurp(log).find(mark + "\n") != std::string::npos;
    }
    CHECK_MESSAGE(running, builder::e2e::slurp(log));
    auto before = containers();
    REQUIRE(before.size() == 1u);
    CHECK(before[0].value("status", std::string()) == "running");
    CHECK(kill_and_reap(pid));
    check_recovered(root, {mark}, verified);
    auto after = containers();
    if (remove) {
      CHECK_MESSAGE(after.empty(), "the --rm container stayed");
    } else {
      REQUIRE(after.size() == 1u);
      CHECK(after[0].value("status", std::string()) == "exited");
      CHECK(after[0].value("exit_code", 0) == 137);
    }
  }
  Result ok = root.builder({"run", "--rm", "busybox", "echo", "ok"});
  CHECK_MESSAGE(ok.out == "ok\n", ok.describe());
  Result prune = root.builder({"prune", "-a", "-f"});
  CHECK_MESSAGE(prune.status == 0, prune.describe());
  auto problems = store_problems(root.store(), verified);
  CHECK_MESSAGE(problems.empty(), join(problems));
}

TEST_CASE("e2e: `builder save` and `builder load` killed mid-way leave roots the next command repairs") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  std::set<std::string> verified;
  write_noise(root.work() / "ctx" / "big.bin", 16u << 20);
  builder::e2e::write_file(root.work() / "ctx" / "Dockerfile", "FROM busybox\nCOPY big.bin /big.bin\n");
  Result b = root.builder({"build", "-t", "big", (root.work() / "ctx").string()});
  REQUIRE_MESSAGE(b.status == 0, b.describe());
  const std::string want = file_sha256(root.work() / "ctx" / "big.bin");

  fs::path full = root.work() / "full.tar";
  auto t0 = Clock::now();
  Result saved = root.builder({"save", "-o", full.string(), "big"});
  auto save_time = Clock::now() - t0;
  REQUIRE_MESSAGE(saved.status == 0, saved.describe());
  const std::string full_sum = file_sha256(full);

  constexpr int kKills = 5;
  int killed = 0;
  for (int i = 0; i < kKills; ++i) {
    fs::path out = root.work() / ("out-" + std::to_string(i) + ".tar");
    auto start = Clock::now();
    pid_t pid = spawn_builder(root, {"save", "-o", out.string(), "big"}, root.work() / "save.log");
    while (Clock::now() - start < save_time * i / kKills && !exited(pid))
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    killed += kill_and_reap(pid);
    check_recovered(root, {}, verified);
    // The archive appears whole or not at all (it is renamed into place).
    if (fs::exists(out)) CHECK(file_sha256(out) == full_sum);
  }
  MESSAGE(killed << " of " << kKills << " saves killed mid-way");

  TestRoot other;
  auto t1 = Clock::now();
  Result loaded = other.builder({"load", "-i", full.string()});
  auto load_time = Clock::now() - t1;
  REQUIRE_MESSAGE(loaded.status == 0, loaded.describe());
  killed = 0;
  for (int i = 0; i < kKills; ++i) {
    TestRoot target;
    auto start = Clock::now();
    pid_t pid = spawn_builder(target, {"load", "-i", full.string()}, target.work() / "load.log");
    while (Clock::now() - start < load_time * i / kKills && !exited(pid))
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    killed += kill_and_reap(pid);
    check_recovered(target, {}, verified);
    // Loading again over whatever the killed load committed works.
    Result again = target.builder({"load", "-i", full.string()});
    CHECK_MESSAGE(again.status == 0, again.describe());
    Result sum = target.builder({"run", "--rm", "big", "sha256sum", "/big.bin"});
    CHECK_MESSAGE(sum.out.rfind(want, 0) == 0, sum.describe());
    Result prune = target.builder({"prune", "-a", "-f"});
    CHECK_MESSAGE(prune.status == 0, prune.describe());
    auto problems = store_problems(target.store(), verified);
    CHECK_MESSAGE(problems.empty(), join(problems));
  }
  MESSAGE(killed << " of " << kKills << " loads killed mid-way");
}

TEST_CASE("e2e: the next command repairs each kind of leftover of a dead process, and the checker sees them") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  builder::e2e::write_file(root.work() / "ctx" / "Dockerfile", "FROM busybox\nRUN echo one > /one\n");
  Result b = root.builder({"build", "-t", "small", (root.work() / "ctx").string()});
  REQUIRE_MESSAGE(b.status == 0, b.describe());
  std::set<std::string> verified;
  const fs::path s = root.store();
  REQUIRE(store_problems(s, verified).empty());

  // What a process killed at various instants leaves; 99999999 is above any pid_max,
  // so nobody holds its liveness lock.
  const std::string dead = "99999999";
  builder::e2e::write_file(s / "run" / (dead + ".lock"), "");
  builder::e2e::write_file(s / "run" / ("mount-rw-" + dead + "-AbC123") / "upper" / "f", "x");
  builder::e2e::write_file(s / "run" / ("sandbox-" + dead + "-XyZ789") / "hosts", "x");
  builder::e2e::write_file(s / "content" / "ingest" / (dead + "-0011aabb"), "half a blob");
  builder::e2e::write_file(s / "snapshots" / ("pending-" + dead + "-00aa11") / "fs" / "f", "x");
  builder::e2e::write_file(s / "snapshots" / ("trash-" + dead + "-00aa11") / "fs" / "f", "x");
  builder::e2e::write_file(s / "snapshots" / "0123456789ab" / "fs" / "f", "renamed in, row never committed");
  builder::e2e::write_file(s / "locks" / "somekey.lock", "");
  builder::e2e::write_file(s / "cache-mounts" / "0123abcd" / "0.lock", "");
  builder::e2e::write_file(s / "cache-mounts" / "0123abcd" / "0" / "new-Q1w2E3" / "data" / "f", "x");
  builder::e2e::write_file(s / "checksum-memo.tmp-a1b2c3", "x");
  fs::last_write_time(s / "checksum-memo.tmp-a1b2c3", fs::file_time_type::clock::now() - std::chrono::minutes(5));
  const std::string rm_id(64, 'a'), keep_id(64, 'b');
  for (const auto& [id, remove] : {std::pair{rm_id, true}, std::pair{keep_id, false}}) {
    builder::e2e::write_file(s / "containers" / id / "config.json",
                             "{\"id\":\"" + id + "\",\"status\":\"running\",\"owner_pid\":" + dead +
                                 ",\"remove\":" + (remove ? "true" : "false") + "}\n");
    builder::e2e::write_file(s / "containers" / id / "upper" / "f", "x");
  }
  // Rows naming what is not there (only damage, never a crash, makes these; repair
  // copes anyway): a snapshot chain whose parent is gone, a row without its directory,
  // a cache record naming it, a layer blob and an image manifest that are missing.
  builder::e2e::write_file(s / "snapshots" / "aaaaaaaaaaaa" / "fs" / "f", "x");
  builder::e2e::write_file(s / "snapshots" / "dddddddddddd" / "fs" / "f", "x");
  const std::string missing = "sha256:" + std::string(64, 'e');
  exec_sql(s, "INSERT INTO snapshots(id, parent, created, size) VALUES('aaaaaaaaaaaa', 'bbbbbbbbbbbb', 1, 1);"
              "INSERT INTO snapshots(id, parent, created, size) VALUES('dddddddddddd', 'aaaaaaaaaaaa', 1, 1);"
              "INSERT INTO snapshots(id, parent, created, size) VALUES('cccccccccccc', NULL, 1, 1);"
              "INSERT INTO cache_index(key, value, created, last_used) VALUES('k', '[\"cccccccccccc\"]', 1, 1);"
              "INSERT INTO images(name, digest, created) VALUES('ghost:latest', '" + missing + "', 1);"
              "UPDATE snapshots SET blob_digest='" + missing + "', diff_id='" + missing +
              "' WHERE id = (SELECT id FROM snapshots"
              " WHERE id NOT IN ('aaaaaaaaaaaa','dddddddddddd','cccccccccccc') LIMIT 1);");

  auto before = store_problems(s, verified);
  CHECK_MESSAGE(before.size() >= 16, "the checker missed leftovers:\n" << join(before));

  Result images = root.builder({"images"});
  CHECK_MESSAGE(images.status == 0, images.describe());
  auto repos = builder::e2e::image_repositories(images.out);
  CHECK_MESSAGE((std::set<std::string>(repos.begin(), repos.end()) == std::set<std::string>{"busybox", "small"}),
                images.describe());
  auto after = store_problems(s, verified);
  CHECK_MESSAGE(after.empty(), join(after));
  CHECK(!fs::exists(s / "containers" / rm_id));
  auto kept =
      builder::base::Json::parse(builder::e2e::slurp(s / "containers" / keep_id / "config.json"), nullptr, false);
  CHECK(kept.value("status", std::string()) == "exited");
  CHECK(!fs::exists(s / "checksum-memo.tmp-a1b2c3"));
  std::vector<std::string> problems;
  CHECK(query(s, "SELECT id FROM snapshots WHERE id IN ('aaaaaaaaaaaa','dddddddddddd','cccccccccccc')", problems)
            .empty());
  CHECK(query(s, "SELECT 1 FROM snapshots WHERE blob_digest = '" + missing + "'", problems).empty());
  CHECK(problems.empty());

  // And the root still builds (the layer whose blob was forgotten is exported again) and runs.
  builder::e2e::write_file(root.work() / "ctx" / "Dockerfile",
                           "FROM busybox\nRUN echo one > /one\nRUN echo two > /two\n");
  Result b2 = root.builder({"build", "-t", "small2", (root.work() / "ctx").string()});
  CHECK_MESSAGE(b2.status == 0, b2.describe());
  Result r = root.builder({"run", "--rm", "small2", "cat", "/one", "/two"});
  CHECK_MESSAGE(r.out == "one\ntwo\n", r.describe());
  CHECK(store_problems(s, verified).empty());
}
