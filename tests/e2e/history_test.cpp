// tests/e2e/history_test.cpp — end-to-end: `builder history ls|inspect|logs` after real
// builds (whole logs past 2 MiB, cached vs run steps with their miss reasons, failed and
// killed builds), the rawjson progress stream, miss reasons in plain and tty progress,
// and quiet mode printing only the image ID.
#include <algorithm>
#include <map>
#include <regex>
#include <set>

#include "base/json.h"
#include "e2e_util.h"

using builder::e2e::lines_of;
using builder::e2e::Result;
using builder::e2e::testdata;
using builder::e2e::TestRoot;
using builder::base::Json;
namespace fs = std::filesystem;

namespace {

/// What `seq 1 N` prints.
std::string seq_output(int n) {
  std::string s;
  for (int i = 1; i <= n; ++i) s += std::to_string(i) + "\n";
  return s;
}

fs::path copy_context(const TestRoot& root, const std::string& name) {
  fs::path ctx = root.work() / name;
  fs::copy(testdata("e2e/" + name), ctx, fs::copy_options::recursive);
  return ctx;
}

Json json_of(const Result& r) {
  Json j = Json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  CHECK_MESSAGE(!j.is_discarded(), "not JSON: " << r.describe());
  return j;
}

/// The step of `inspect --format json` output whose name contains `needle`.
Json step_named(const Json& build, const std::string& needle) {
  if (build.contains("steps"))
    for (const auto& s : build["steps"])
      if (s["name"].get<std::string>().find(needle) != std::string::npos) return s;
  FAIL_CHECK("no step named like `" << needle << "` in " << build.dump(2));
  return Json::object();
}

std::string base64_decode(const std::string& in) {
  static const std::string kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    auto v = kAlphabet.find(c);
    if (v == std::string::npos) return "(bad base64)";
    acc = acc << 6 | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>(acc >> bits & 0xFF);
    }
  }
  return out;
}

/// `text` without ANSI escape sequences and carriage returns.
std::string strip_ansi(const std::string& text) {
  static const std::regex csi("\x1b\\[[0-9;?]*[A-Za-z]");
  std::string out = std::regex_replace(text, csi, "");
  out.erase(std::remove(out.begin(), out.end(), '\r'), out.end());
  return out;
}

}  // namespace

TEST_CASE("history: whole logs past 2 MiB, cached and run steps with their reasons and timings") {
  TestRoot root;
  if (!root.import_busybox()) return;
  fs::path ctx = copy_context(root, "history");
  const std::string big = seq_output(400000);
  REQUIRE(big.size() > 2u * 1024 * 1024);

  // First build: every step runs, and plain progress says why right after its header.
  Result first = root.builder({"build", "--progress=plain", "-t", "hist:1", ctx.string()});
  REQUIRE_MESSAGE(first.status == 0, first.describe());
  auto lines = lines_of(first.err);
  static const std::regex header(R"re(^#(\d+) \[\d+/\d+\] RUN seq 1 400000$)re");
  bool seen = false;
  for (size_t i = 0; i + 1 < lines.size(); ++i) {
    std::smatch m;
    if (!std::regex_match(lines[i], m, header)) continue;
    seen = true;
    CHECK_MESSAGE(lines[i + 1].rfind("#" + m[1].str() + " cache miss: ", 0) == 0, lines[i + 1]);
    CHECK(lines[i + 1].size() > ("#" + m[1].str() + " cache miss: ").size());
  }
  CHECK_MESSAGE(seen, first.err.substr(0, 2000));

  Result ls = root.builder({"history", "ls", "--format", "json"});
  REQUIRE_MESSAGE(ls.status == 0, ls.describe());
  Json builds = json_of(ls);
  REQUIRE(builds.size() == 1);
  const std::string id1 = builds[0]["id"];
  CHECK(builds[0]["status"] == "completed");
  CHECK(builds[0]["tags"] == Json::array({"hist:1"}));
  CHECK(builds[0]["image_id"] == first.out.substr(0, first.out.find('\n')));
  CHECK(builds[0]["duration_seconds"].get<double>() > 0);

  Result insp = root.builder({"history", "inspect", id1, "--format", "json"});
  REQUIRE_MESSAGE(insp.status == 0, insp.describe());
  Json b1 = json_of(insp);
  Json seq = step_named(b1, "RUN seq 1 400000");
  CHECK(seq["cached"] == false);
  CHECK(seq["result"] == "DONE");
  CHECK_FALSE(seq["miss_reason"].get<std::string>().empty());
  CHECK(seq["log_size"] == big.size());
  CHECK(seq["duration_seconds"].get<double>() > 0);

  // The whole output, byte for byte, however long.
  Result one = root.builder({"history", "logs", id1.substr(0, 6), std::to_string(seq["number"].get<int>())});
  REQUIRE_MESSAGE(one.status == 0, one.err);
  CHECK(one.out.size() == big.size());
  CHECK(one.out == big);
  // All steps in plain layout: every line of it, stamped, under the step's number.
  Result all = root.builder({"history", "logs", "^1"});
  REQUIRE_MESSAGE(all.status == 0, all.err);
  const std::string n = std::to_string(seq["number"].get<int>());
  CHECK(all.out.find("#" + n + " cache miss: ") != std::string::npos);
  static const std::regex last_line("\n#" + n + R"re( [0-9.]+ 400000\n#)re" + n + R"re( DONE [0-9.]+s\n)re");
  CHECK(std::regex_search(all.out, last_line));
  CHECK(builder::e2e::count(all.out, "\n#" + n + " ") >= 400000);

  // Second build, nothing changed: every step cached, no reasons.
  Result second = root.builder({"build", "--progress=plain", ctx.string()});
  REQUIRE_MESSAGE(second.status == 0, second.describe());
  CHECK(second.err.find("cache miss:") == std::string::npos);
  // Third: app.txt changed, so COPY and the step after it run; the seq step stays cached.
  builder::e2e::write_file(ctx / "app.txt", "version 2\n");
  Result third = root.builder({"build", "--progress=plain", ctx.string()});
  REQUIRE_MESSAGE(third.status == 0, third.describe());

  builds = json_of(root.builder({"history", "ls", "--format", "json"}));
  REQUIRE(builds.size() == 3);
  CHECK(builds[2]["id"] == id1);  // newest first
  Json b2 = json_of(root.builder({"history", "inspect", builds[1]["id"], "--format", "json"}));
  for (const auto& s : b2["steps"]) {
    CHECK_MESSAGE(s["cached"] == true, s.dump());
    CHECK(s["miss_reason"] == "");
  }
  Json b3 = json_of(root.builder({"history", "inspect", "^1", "--format", "json"}));
  CHECK(b3["id"] == builds[0]["id"]);
  CHECK(step_named(b3, "RUN seq")["cached"] == true);
  Json copy = step_named(b3, "COPY app.txt");
  CHECK(copy["cached"] == false);
  const std::string why = copy["miss_reason"];
  CHECK_MESSAGE(why.find("app.txt") != std::string::npos, why);
  CHECK(step_named(b3, "RUN cat /app.txt")["cached"] == false);
  CHECK(b3["steps_cached"].get<int>() + 2 == b3["steps_total"].get<int>());
  CHECK(third.err.find(" cache miss: " + why + "\n") != std::string::npos);
  // The same reason in history's plain logs.
  Result logs3 = root.builder({"history", "logs", "^1"});
  CHECK(logs3.out.find(" cache miss: " + why + "\n") != std::string::npos);
  CHECK(logs3.out.find(" version 2\n") != std::string::npos);

  // The table form: cached steps say CACHED, run ones their reason, with timings.
  Result table = root.builder({"history", "inspect", "^1"});
  REQUIRE_MESSAGE(table.status == 0, table.describe());
  static const std::regex cached_row(R"re(\n#\d+ +CACHED +[0-9.]+s  \[\d+/\d+\] RUN seq 1 400000\n)re");
  static const std::regex ran_row(R"re(\n#\d+ +DONE +[0-9.]+s  \[\d+/\d+\] COPY app.txt /app.txt\n +cache miss: )re");
  CHECK_MESSAGE(std::regex_search(table.out, cached_row), table.out);
  CHECK_MESSAGE(std::regex_search(table.out, ran_row), table.out);
  CHECK(table.out.find("Status:     completed\n") != std::string::npos);
  Result table_ls = root.builder({"history", "ls"});
  auto ls_lines = lines_of(table_ls.out);
  REQUIRE(ls_lines.size() == 4);
  CHECK(ls_lines[0].rfind("BUILD ID", 0) == 0);
  CHECK(ls_lines[1].rfind(builds[0]["id"].get<std::string>(), 0) == 0);
  CHECK(ls_lines[3].find("hist:1") != std::string::npos);

  // tty progress shows the reason beside a step that ran, never beside a cached one.
  builder::e2e::write_file(ctx / "app.txt", "version 3\n");
  Result tty = root.builder({"build", "--progress=tty", ctx.string()});
  REQUIRE_MESSAGE(tty.status == 0, tty.describe());
  std::string frame = strip_ansi(tty.err.substr(tty.err.rfind("[+] Building")));
  Json b4 = json_of(root.builder({"history", "inspect", "^1", "--format", "json"}));
  std::string why4 = step_named(b4, "COPY app.txt")["miss_reason"];
  CHECK_MESSAGE(frame.find("COPY app.txt /app.txt (" + why4.substr(0, 20)) != std::string::npos, frame);
  static const std::regex cached_reason(R"re(CACHED [^\n]*\()re");
  CHECK_FALSE(std::regex_search(frame, cached_reason));
  root.check_no_mounts();
}

TEST_CASE("history: rawjson progress is one JSON object per line, shaped like BuildKit's") {
  TestRoot root;
  if (!root.import_busybox()) return;
  fs::path ctx = copy_context(root, "history");
  for (int round = 0; round < 2; ++round) {
    Result r = root.builder({"build", "--progress=rawjson", ctx.string()});
    REQUIRE_MESSAGE(r.status == 0, r.describe().substr(0, 3000));
    std::map<std::string, std::string> names;        // digest -> name
    std::map<std::string, Json> final_state;         // digest -> last vertex object
    std::map<std::string, std::string> output;       // digest -> log bytes
    std::map<std::string, std::string> missed;       // digest -> cacheMiss reason
    for (const auto& line : lines_of(r.err)) {
      Json j = Json::parse(line, nullptr, false);
      REQUIRE_MESSAGE(j.is_object(), "not a JSON object: " << line.substr(0, 200));
      REQUIRE_MESSAGE((j.contains("vertexes") || j.contains("logs")), line);
      for (const auto& v : j.value("vertexes", Json::array())) {
        CHECK(v["digest"].get<std::string>().rfind("sha256:", 0) == 0);
        CHECK(v.contains("started"));
        names[v["digest"]] = v["name"];
        if (v.contains("cacheMiss")) missed[v["digest"]] = v["cacheMiss"];
        final_state[v["digest"]] = v;
      }
      for (const auto& l : j.value("logs", Json::array())) {
        CHECK(names.count(l["vertex"]));
        CHECK(l.contains("timestamp"));
        output[l["vertex"]] += base64_decode(l["data"]);
      }
    }
    std::set<std::string> got;
    for (const auto& [d, n] : names) got.insert(n);
    CHECK(got == std::set<std::string>{"[1/4] FROM busybox:latest", "[2/4] RUN seq 1 400000",
                                       "[internal] load build context", "[3/4] COPY app.txt /app.txt",
                                       "[4/4] RUN cat /app.txt"});
    static const std::regex nano(R"re(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$)re");
    for (const auto& [d, v] : final_state) {
      INFO(v.dump());
      CHECK(std::regex_match(v["completed"].get<std::string>(), nano));
      CHECK(std::regex_match(v["started"].get<std::string>(), nano));
      // The context source is never run (it is checksummed); every other step runs
      // the first time and is cached the second.
      if (v["name"] != "[internal] load build context") CHECK(v.value("cached", false) == (round == 1));
      if (v["name"] != "[internal] load build context") CHECK(missed.count(d) == (round == 0 ? 1u : 0u));
      CHECK_FALSE(v.contains("error"));
    }
    for (const auto& [d, n] : names) {
      if (n == "[2/4] RUN seq 1 400000") CHECK((round == 1 ? output[d].empty() : output[d] == seq_output(400000)));
      if (n == "[4/4] RUN cat /app.txt") CHECK(output[d] == (round == 1 ? "" : "version 1\n"));
      if (n == "[4/4] RUN cat /app.txt" && round == 0) {
        // Inputs name vertexes of the stream.
        REQUIRE(final_state[d].contains("inputs"));
        CHECK(names.count(final_state[d]["inputs"][0]));
      }
    }
  }
}

TEST_CASE("history: quiet prints only the image ID; a failed build is recorded with its error") {
  TestRoot root;
  if (!root.import_busybox()) return;
  Result q = root.builder({"build", "-q", copy_context(root, "history").string()});
  REQUIRE_MESSAGE(q.status == 0, q.describe().substr(0, 2000));
  CHECK(q.err == "");
  CHECK(std::regex_match(q.out, std::regex("sha256:[0-9a-f]{64}\n")));
  Result q2 = root.builder({"build", "--progress=quiet", copy_context(root, "history-fail").string()});
  CHECK(q2.status == 1);
  CHECK(q2.out == "");

  Json b = json_of(root.builder({"history", "inspect", "^1", "--format", "json"}));
  CHECK(b["status"] == "failed");
  CHECK_MESSAGE(b["error"].get<std::string>().find("exit code: 3") != std::string::npos, b.dump(2));
  Json s = step_named(b, "RUN echo about to fail");
  CHECK(s["result"] == "ERROR");
  CHECK(s["error"].get<std::string>().find("exit code: 3") != std::string::npos);
  Result logs = root.builder({"history", "logs", "^1"});
  CHECK(logs.status == 0);
  CHECK(std::regex_search(logs.out, std::regex(R"re(\n#\d+ [0-9.]+ about to fail\n#\d+ ERROR: [^\n]*exit code: 3)re")));
  CHECK(root.builder({"history", "logs", "^1", std::to_string(s["number"].get<int>())}).out == "about to fail\n");
  CHECK(json_of(root.builder({"history", "inspect", "^2", "--format", "json"}))["status"] == "completed");
}

TEST_CASE("history: a build killed outright shows as interrupted, its running step canceled") {
  TestRoot root;
  if (!root.import_busybox()) return;
  fs::path ctx = copy_context(root, "history-killed");
  std::string log = (root.work() / "build.log").string();
  std::string script = builder::test::builder_binary() + " --root " + root.store().string() +
                       " build --progress=plain " + ctx.string() + " 2>" + log +
                       " & p=$!; for i in $(seq 200); do grep -q ' started$' " + log +
                       " && break; sleep 0.05; done; kill -9 $p; wait $p; exit 0";
  Result k = builder::e2e::run_process({"sh", "-c", script});
  REQUIRE_MESSAGE(builder::e2e::slurp(log).find(" started\n") != std::string::npos, builder::e2e::slurp(log));

  Json builds = json_of(root.builder({"history", "ls", "--format", "json"}));
  REQUIRE(builds.size() == 1);
  CHECK(builds[0]["status"] == "interrupted");
  Json b = json_of(root.builder({"history", "inspect", "^1", "--format", "json"}));
  Json s = step_named(b, "RUN echo started");
  CHECK(s["result"] == "CANCELED");
  Result logs = root.builder({"history", "logs", "^1", std::to_string(s["number"].get<int>())});
  CHECK(logs.out == "started\n");
  Result all = root.builder({"history", "logs", "^1"});
  CHECK(all.out.find("CANCELED\n") != std::string::npos);
  root.check_no_mounts();
}

TEST_CASE("history: bad references and words are clear errors") {
  TestRoot root;
  if (!root.import_busybox()) return;
  Result none = root.builder({"history", "inspect", "abc"});
  CHECK(none.status == 1);
  CHECK(none.err == "builder: error: no build `abc` in the history\n");
  CHECK(root.builder({"history", "logs", "^1"}).err ==
        "builder: error: no build ^1 in the history: it holds 0 builds\n");
  Result built = root.builder({"build", "-q", copy_context(root, "history-fail").string()});
  CHECK(built.status == 1);
  Json b = json_of(root.builder({"history", "ls", "--format", "json"}));
  REQUIRE(b.size() == 1);
  const std::string id = b[0]["id"];
  Result step = root.builder({"history", "logs", id, "99"});
  CHECK(step.status == 1);
  size_t steps = json_of(root.builder({"history", "inspect", id, "--format", "json"}))["steps"].size();
  CHECK(step.err == "builder: error: build " + id + " has no step 99 (it has " + std::to_string(steps) + " steps)\n");
  Result bad_step = root.builder({"history", "logs", id, "x"});
  CHECK(bad_step.status == 1);
  CHECK(bad_step.err.find("invalid step `x`") != std::string::npos);
  Result image = root.builder({"history", "busybox"});
  CHECK(image.status == 1);
  CHECK_MESSAGE(image.err.find("`builder image history IMAGE`") != std::string::npos, image.err);
  Result bare = root.builder({"history"});
  CHECK(bare.status == 1);
  CHECK(bare.err == "builder: error: `builder history` needs a subcommand: ls, inspect BUILD or logs BUILD [STEP]\n");
  Result fmt = root.builder({"history", "ls", "--format", "yaml"});
  CHECK(fmt.status == 1);
  CHECK(fmt.err == "builder: error: unknown --format `yaml` (expected table or json)\n");
  Result mode = root.builder({"build", "--progress=fancy", "."});
  CHECK(mode.status == 1);
  CHECK(mode.err.find("unknown progress mode `fancy` (expected auto, tty, plain, rawjson or quiet)") !=
        std::string::npos);
}
