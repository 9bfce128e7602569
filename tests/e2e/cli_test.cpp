// tests/e2e/cli_test.cpp — end-to-end: the `builder` command line as docker users meet
// it: option parsing, the report of a failing RUN, the tty progress display, and the
// image commands (images, inspect, tag, rmi, version).
#include <algorithm>
#include <chrono>
#include <regex>
#include <sstream>
#include <thread>

#include "e2e_util.h"

using builder::e2e::count;
using builder::e2e::lines_of;
using builder::e2e::Result;
using builder::e2e::testdata;
using builder::e2e::TestRoot;
namespace fs = std::filesystem;

namespace {

/// `text` without ANSI escape sequences and carriage returns: what the lines say.
std::string strip_ansi(const std::string& text) {
  static const std::regex csi("\x1b\\[[0-9;?]*[A-Za-z]");
  std::string out = std::regex_replace(text, csi, "");
  out.erase(std::remove(out.begin(), out.end(), '\r'), out.end());
  return out;
}

/// The last block the tty display drew: from the last "[+] Building" header on.
std::string last_frame(const std::string& err) {
  size_t pos = err.rfind("[+] Building");
  return pos == std::string::npos ? std::string() : err.substr(pos);
}

/// The image ID (sha256:...) `builder inspect NAME` reports, or "".
std::string inspect_id(const TestRoot& root, const std::string& name) {
  Result r = root.builder({"inspect", name});
  return r.status == 0 ? builder::e2e::image_id(r.out) : std::string();
}

/// The data rows of `builder images`, each split into its columns (runs of 2+ spaces).
std::vector<std::vector<std::string>> image_rows(const std::string& out) {
  static const std::regex gap(" {2,}");
  std::vector<std::vector<std::string>> rows;
  auto lines = lines_of(out);
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<std::string> cells;
    std::sregex_token_iterator it(lines[i].begin(), lines[i].end(), gap, -1), end;
    for (; it != end; ++it) cells.push_back(*it);
    rows.push_back(cells);
  }
  return rows;
}

bool has_row(const std::vector<std::vector<std::string>>& rows, const std::string& repo, const std::string& tag) {
  return std::any_of(rows.begin(), rows.end(),
                     [&](const auto& r) { return r.size() >= 2 && r[0] == repo && r[1] == tag; });
}

}  // namespace

TEST_CASE("cli: repeatable options take one value each and leave the context alone") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  const std::string ctx = testdata("examples/hello");
  const fs::path work = root.work();

  // Repeated -t, --build-arg, and --output right before the context.
  Result b = root.builder({"build", "-t", "multi-a", "-t", "multi-b:v2", "--build-arg", "UNUSED=1", "--output",
                           "type=oci,dest=" + (work / "o.tar").string(), ctx});
  REQUIRE_MESSAGE(b.status == 0, b.describe());
  CHECK(fs::exists(work / "o.tar"));
  // The build arg arrived whole, as one K=V.
  CHECK_MESSAGE(b.err.find("[Warning] One or more build-args [UNUSED] were not consumed") != std::string::npos,
                b.describe());
  CHECK_MESSAGE(b.err.find("naming to multi-a:latest done") != std::string::npos, b.describe());
  CHECK_MESSAGE(b.err.find("naming to multi-b:v2 done") != std::string::npos, b.describe());

  Result images = root.builder({"images"});
  REQUIRE_MESSAGE(images.status == 0, images.describe());
  auto rows = image_rows(images.out);
  CHECK_MESSAGE(has_row(rows, "multi-a", "latest"), images.out);
  CHECK_MESSAGE(has_row(rows, "multi-b", "v2"), images.out);
  CHECK(inspect_id(root, "multi-a") == inspect_id(root, "multi-b:v2"));

  // One value per occurrence: a second word is a second positional, which docker
  // rejects too ("requires exactly 1 argument"), and nothing is built or tagged.
  for (const auto& flag : {"-t", "--build-arg", "--output"}) {
    Result extra = root.builder({"build", flag, "one=1", "two", ctx});
    CHECK_MESSAGE(extra.status == 1, flag << "\n" << extra.describe());
    CHECK_MESSAGE(extra.err.find("not expected") != std::string::npos, flag << "\n" << extra.describe());
    CHECK_MESSAGE(extra.err.find("#1 ") == std::string::npos, flag << "\n" << extra.describe());
  }

  // -o DIR (type=local) as the last option before the context.
  Result local = root.builder({"build", "-o", (work / "out").string(), ctx});
  REQUIRE_MESSAGE(local.status == 0, local.describe());
  CHECK(builder::e2e::slurp(work / "out" / "app" / "hello.txt") == builder::e2e::slurp(fs::path(ctx) / "hello.txt"));

  // -e twice, then IMAGE and a command whose flags belong to the command.
  Result env = root.builder({"run", "--rm", "-e", "A=1", "-e", "B=2", "busybox", "sh", "-c", "echo $A$B"});
  CHECK_MESSAGE(env.status == 0, env.describe());
  CHECK_MESSAGE(env.out == "12\n", env.describe());

  Result ls = root.builder({"run", "--rm", "busybox", "ls", "-la", "/"});
  CHECK_MESSAGE(ls.status == 0, ls.describe());
  CHECK_MESSAGE(ls.out.find(" bin\n") != std::string::npos, ls.describe());

  // Arguments after IMAGE that spell builder's own options reach the command untouched.
  Result args = root.builder({"run", "--rm", "busybox", "sh", "-c", "echo \"$@\"", "sh", "--rm", "-e", "X=1", "-t"});
  CHECK_MESSAGE(args.status == 0, args.describe());
  CHECK_MESSAGE(args.out == "--rm -e X=1 -t\n", args.describe());
  root.check_no_mounts();
}

TEST_CASE("cli: a failing RUN reports its log tail, then its Dockerfile lines, then the error") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  const std::string ctx = testdata("e2e/cli_fail");

  // The report as BuildKit prints it; the log lines carry the seconds since the step
  // started.
  static const std::regex report(
      "------\n"
      " > \\[3/4\\] RUN echo line1; echo line2 >&2; exit 3:\n"
      "[0-9]\\.[0-9]{3} line1\n"
      "[0-9]\\.[0-9]{3} line2\n"
      "------\n"
      "Dockerfile:4\n"
      "--------------------\n"
      "   2 \\|     FROM busybox\n"
      "   3 \\|     RUN echo before\n"
      "   4 \\| >>> RUN echo line1; echo line2 >&2; exit 3\n"
      "   5 \\|     RUN echo never-reached\n"
      "--------------------\n"
      "ERROR: failed to solve: process \"/bin/sh -c echo line1; echo line2 >&2; exit 3\" did not complete "
      "successfully: exit code: 3\n");

  SUBCASE("quiet: the report is all of stderr") {
    Result b = root.builder({"build", "-q", "-t", "clifail", ctx});
    CHECK_MESSAGE(b.status == 1, b.describe());
    CHECK_MESSAGE(std::regex_match(b.err, report), b.describe());
    CHECK_MESSAGE(b.out.empty(), b.describe());
  }

  SUBCASE("plain: the report follows the progress") {
    Result b = root.builder({"build", "--progress=plain", "-t", "clifail", ctx});
    CHECK_MESSAGE(b.status == 1, b.describe());
    size_t block = b.err.find("------\n > [3/4]");
    REQUIRE_MESSAGE(block != std::string::npos, b.describe());
    CHECK_MESSAGE(std::regex_match(b.err.substr(block), report), b.describe());
    // The step's output streamed before the report; the last step never started, so
    // it shows only in the source block.
    CHECK_MESSAGE(b.err.find(" line1\n") < block, b.describe());
    CHECK_MESSAGE(count(b.err, "never-reached") == 1, b.describe());
  }

  Result ins = root.builder({"inspect", "clifail"});
  CHECK_MESSAGE(ins.status == 1, ins.describe());
  root.check_no_mounts();
}

TEST_CASE("cli: --progress=tty draws a block in place and ends with the final state") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());

  SUBCASE("a build that succeeds") {
    auto t0 = std::chrono::steady_clock::now();
    Result b = root.builder({"build", "--progress=tty", "-t", "ttyimg", testdata("e2e/cli_tty")});
    double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    REQUIRE_MESSAGE(b.status == 0, b.describe());

    // Not plain: no "#N" step lines.
    for (const auto& line : lines_of(strip_ansi(b.err)))
      CHECK_MESSAGE(!std::regex_search(line, std::regex("^#[0-9]+ ")), line);
    // Redrawn in place: the cursor goes back up over the previous block, and the
    // running step's output showed under it while it slept.
    CHECK_MESSAGE(b.err.find("\x1b[") != std::string::npos, b.err);
    CHECK_MESSAGE(std::regex_search(b.err, std::regex("\x1b\\[[0-9]+A")), b.err);
    CHECK_MESSAGE(b.err.find(" => => # tty-step-one") != std::string::npos, b.err);
    // At most ~10 redraws a second (plus the final one).
    size_t frames = count(b.err, "[+] Building");
    CHECK_MESSAGE(frames >= 2, b.err);
    CHECK_MESSAGE(frames <= static_cast<size_t>(took * 10) + 2, frames << " frames in " << took << "s");

    // The final state: every step, finished, and no output lines.
    std::string last = strip_ansi(last_frame(b.err));
    auto lines = lines_of(last);
    REQUIRE_MESSAGE(lines.size() >= 4, b.err);
    CHECK_MESSAGE(std::regex_match(lines[0], std::regex(R"(\[\+\] Building [0-9]+\.[0-9]s \(3/3\) FINISHED)")),
                  lines[0]);
    CHECK_MESSAGE(std::regex_match(lines[1], std::regex(R"( => (CACHED )?\[1/3\] FROM busybox\S*( \(.*)? +[0-9]+\.[0-9]s)")),
                  lines[1]);
    CHECK_MESSAGE(
        std::regex_match(lines[2], std::regex(R"( => \[2/3\] RUN echo tty-step-one && sleep 0\.6 \(no earlier.* +[0-9]+\.[0-9]s)")),
        lines[2]);
    CHECK_MESSAGE(
        std::regex_match(lines[3], std::regex(R"( => \[3/3\] RUN echo tty-step-two > /two\.txt \(.* +[0-9]+\.[0-9]s)")),
        lines[3]);
    CHECK_MESSAGE(last.find(" => => # ") == std::string::npos, last);
    // Steps that ran say why, dimmed after their name (truncated to fit the width).
    // Lines fit the 80 columns assumed when stderr is no terminal.
    for (const auto& line : lines_of(strip_ansi(b.err))) CHECK_MESSAGE(line.size() < 80, line);
    CHECK_MESSAGE(last.find("naming to ttyimg:latest done") != std::string::npos, last);

    // A rebuild: every step cached.
    Result again = root.builder({"build", "--progress=tty", "-t", "ttyimg", testdata("e2e/cli_tty")});
    REQUIRE_MESSAGE(again.status == 0, again.describe());
    std::string cached = strip_ansi(last_frame(again.err));
    CHECK_MESSAGE(cached.find(" => CACHED [2/3] RUN echo tty-step-one") != std::string::npos, cached);
    CHECK_MESSAGE(cached.find(" => CACHED [3/3] RUN echo tty-step-two") != std::string::npos, cached);
  }

  SUBCASE("a build that fails shows the failed step's output, then the report") {
    Result b = root.builder({"build", "--progress=tty", testdata("e2e/cli_fail")});
    CHECK_MESSAGE(b.status == 1, b.describe());
    std::string last = strip_ansi(last_frame(b.err));
    auto lines = lines_of(last);
    REQUIRE_MESSAGE(lines.size() >= 6, b.err);
    CHECK_MESSAGE(std::regex_match(lines[0], std::regex(R"(\[\+\] Building [0-9]+\.[0-9]s \(3/4\) FINISHED)")),
                  lines[0]);
    CHECK_MESSAGE(std::regex_match(lines[2], std::regex(R"( => \[2/4\] RUN echo before \(.* +[0-9]+\.[0-9]s)")), lines[2]);
    CHECK_MESSAGE(std::regex_match(lines[3], std::regex(R"( => ERROR \[3/4\] RUN echo line1; .* +[0-9]+\.[0-9]s)")),
                  lines[3]);
    CHECK(lines[4] == " => => # line1");
    CHECK(lines[5] == " => => # line2");
    CHECK_MESSAGE(lines[6] == "------", last);
    CHECK_MESSAGE(last.find("Dockerfile:4\n") > last.find(" > [3/4] RUN echo line1"), last);
    CHECK_MESSAGE(last.find("never-reached") == last.rfind("never-reached"), last);  // only in the source block
  }
  root.check_no_mounts();
}

TEST_CASE("cli: images, inspect, tag and rmi behave as docker's") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  const std::string busybox_id = inspect_id(root, "busybox");
  REQUIRE(busybox_id.rfind("sha256:", 0) == 0);
  const std::string short_id = busybox_id.substr(7, 12);

  // An image created a second later is listed first.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  Result b = root.builder({"build", "-t", "hello", testdata("examples/hello")});
  REQUIRE_MESSAGE(b.status == 0, b.describe());

  Result images = root.builder({"images"});
  REQUIRE_MESSAGE(images.status == 0, images.describe());
  auto lines = lines_of(images.out);
  REQUIRE(lines.size() == 3);
  // docker's tabwriter: columns at least 10 wide, 3 spaces apart.
  CHECK(lines[0].rfind("REPOSITORY   TAG       IMAGE ID       CREATED", 0) == 0);
  CHECK(std::regex_match(lines[0], std::regex("REPOSITORY +TAG +IMAGE ID +CREATED +SIZE")));
  auto rows = image_rows(images.out);
  REQUIRE(rows.size() == 2);
  CHECK(rows[0][0] == "hello");
  REQUIRE_MESSAGE(rows[1].size() == 5, images.out);
  CHECK(rows[1][0] == "busybox");
  CHECK(rows[1][1] == "latest");
  CHECK(rows[1][2] == short_id);
  CHECK_MESSAGE(std::regex_match(rows[1][3], std::regex(".+ ago")), rows[1][3]);
  CHECK_MESSAGE(std::regex_match(rows[1][4], std::regex("[0-9.]+[kMG]?B")), rows[1][4]);

  // tag: silent, and the new name shares the ID.
  Result tag = root.builder({"tag", "busybox", "mybox:v1"});
  CHECK_MESSAGE(tag.status == 0, tag.describe());
  CHECK(tag.out.empty());
  CHECK(inspect_id(root, "mybox:v1") == busybox_id);
  Result only = root.builder({"images", "mybox"});
  auto only_rows = image_rows(only.out);
  REQUIRE_MESSAGE(only_rows.size() == 1, only.out);
  CHECK(only_rows[0][0] == "mybox");
  CHECK(only_rows[0][2] == short_id);

  Result tag_missing = root.builder({"tag", "missing", "x"});
  CHECK(tag_missing.status == 1);
  CHECK(tag_missing.err == "Error: No such image: missing:latest\n");

  // inspect: [] and one error line per missing name.
  Result ins_missing = root.builder({"inspect", "MISSING"});
  CHECK(ins_missing.status == 1);
  CHECK(ins_missing.out == "[]\n");
  CHECK(ins_missing.err == "Error: No such image: MISSING\n");
  Result ins_some = root.builder({"inspect", "busybox", "nope"});
  CHECK(ins_some.status == 1);
  CHECK(builder::e2e::image_id(ins_some.out) == busybox_id);
  CHECK(ins_some.err == "Error: No such image: nope\n");

  // rmi: a missing name, an ID with two names (needs -f), a name, then an ID.
  Result rmi_missing = root.builder({"rmi", "MISSING"});
  CHECK(rmi_missing.status == 1);
  CHECK(rmi_missing.err == "Error: No such image: MISSING\n");

  Result rmi_conflict = root.builder({"rmi", short_id});
  CHECK(rmi_conflict.status == 1);
  CHECK(rmi_conflict.err == "Error: conflict: unable to delete " + short_id +
                                " (must be forced) - image is referenced in multiple repositories\n");
  CHECK(inspect_id(root, "mybox:v1") == busybox_id);

  Result rmi_name = root.builder({"rmi", "mybox:v1"});
  CHECK(rmi_name.status == 0);
  CHECK(rmi_name.out == "Untagged: mybox:v1\n");
  CHECK(inspect_id(root, "mybox:v1").empty());
  CHECK(inspect_id(root, "busybox") == busybox_id);

  Result rmi_id = root.builder({"rmi", short_id});
  CHECK_MESSAGE(rmi_id.status == 0, rmi_id.describe());
  CHECK(rmi_id.out == "Untagged: busybox:latest\nDeleted: " + busybox_id + "\n");
  CHECK(inspect_id(root, "busybox").empty());

  // Several names: each is handled, and one failure fails the command.
  Result rmi_mixed = root.builder({"rmi", "hello", "nope"});
  CHECK(rmi_mixed.status == 1);
  CHECK(rmi_mixed.out.rfind("Untagged: hello:latest\nDeleted: sha256:", 0) == 0);
  CHECK(rmi_mixed.err == "Error: No such image: nope:latest\n");
  Result empty = root.builder({"images"});
  CHECK(lines_of(empty.out).size() == 1);
}

TEST_CASE("cli: version") {
  TestRoot root;
  static const std::regex version(R"(builder version [0-9]+\.[0-9]+\.[0-9]+\n)");
  Result v = root.builder({"version"});
  CHECK(v.status == 0);
  CHECK_MESSAGE(std::regex_match(v.out, version), v.out);
  Result flag = root.builder({"--version"});
  CHECK(flag.status == 0);
  CHECK(flag.out == v.out);
}

TEST_CASE("cli: the Dockerfile can come from stdin (`-` context, `-f -`)") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());

  Result b = root.builder_with_input({"build", "-q", "-t", "stdin", "-"},
                                     "FROM busybox\nRUN echo built > /b\nCMD [\"cat\", \"/b\"]\n");
  REQUIRE_MESSAGE(b.status == 0, b.describe());
  Result r = root.builder({"run", "--rm", "stdin"});
  CHECK_MESSAGE(r.out == "built\n", r.describe());
  // The empty context is gone with the build.
  for (const auto& e : fs::directory_iterator(root.store() / "run"))
    CHECK_MESSAGE(e.path().filename().string().rfind("context-", 0) != 0, e.path());

  // With an empty context, COPY finds nothing.
  Result c = root.builder_with_input({"build", "-q", "-"}, "FROM busybox\nCOPY x /\n");
  CHECK(c.status == 1);
  CHECK_MESSAGE(c.err.find("Dockerfile:2") != std::string::npos, c.describe());

  // -f - with a real context.
  builder::e2e::write_file(root.work() / "ctx" / "msg.txt", "from the context\n");
  Result f = root.builder_with_input({"build", "-q", "-f", "-", "-t", "stdin2", (root.work() / "ctx").string()},
                                     "FROM busybox\nCOPY msg.txt /\n");
  REQUIRE_MESSAGE(f.status == 0, f.describe());
  Result m = root.builder({"run", "--rm", "stdin2", "cat", "/msg.txt"});
  CHECK_MESSAGE(m.out == "from the context\n", m.describe());

  // A tar on stdin is a context archive: refused, clearly.
  std::string tar(512, '\0');
  tar.replace(257, 5, "ustar");
  Result t = root.builder_with_input({"build", "-"}, tar);
  CHECK(t.status == 1);
  CHECK_MESSAGE(t.err.find("a context archive on stdin is not supported yet") != std::string::npos, t.describe());
  root.check_no_mounts();
}
