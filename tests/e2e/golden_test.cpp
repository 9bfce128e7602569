// tests/e2e/golden_test.cpp — end-to-end: every case under testdata/golden is built with
// builder and its image, printed by golden_dump, must equal expected.txt, which
// scripts/make-goldens wrote from the same context built by Docker's own BuildKit. No
// Docker is needed here. Cases (folders: a context plus build-args, target, requires,
// secrets, prepare) are described in scripts/make-goldens; the context is copied and
// normalised by that script's --prepare-context, so both engines see the same bytes,
// modes and mtimes.
//
// <case>/known-differences lists where current BuildKit (which builder follows) writes
// otherwise than the docker 20.10 BuildKit that made expected.txt. Paragraphs, separated
// by blank lines:
//   # why: the change, citing the BuildKit source that made it (one or more lines)
//   - an exact line of expected.txt      (one or more; consecutive in expected.txt)
//   + the line current BuildKit writes   (zero or more; with none, each '-' line is a
//                                         deletion of its own and need not be adjacent)
//   - ... + ...                          (more replacements with the same reason)
// Every occurrence of a replacement's '-' lines is replaced by its '+' lines before
// comparing; one that matches nothing fails the case, so stale entries do not linger.
//
// BUILDER_GOLDEN_CASE=name[,name...] runs only those cases. BUILDER_TEST_ACCEPT does not
// apply here: only Docker writes these goldens (scripts/make-goldens).
#include <algorithm>
#include <set>
#include <sstream>

#include "e2e_util.h"

using builder::e2e::Result;
using builder::e2e::run_process;
using builder::e2e::TestRoot;
namespace fs = std::filesystem;

namespace {

const fs::path kGolden = fs::path(BUILDER_SOURCE_DIR) / "testdata" / "golden";

/// Non-empty lines not starting with '#' of an optional case file.
std::vector<std::string> entries(const fs::path& file) {
  std::vector<std::string> out;
  if (!fs::exists(file)) return out;
  for (auto& l : builder::e2e::lines_of(builder::e2e::slurp(file)))
    if (!l.empty() && l[0] != '#') out.push_back(l);
  return out;
}

std::vector<std::string> case_names() {
  std::set<std::string> only;
  if (const char* env = std::getenv("BUILDER_GOLDEN_CASE")) {
    std::stringstream ss(env);
    for (std::string n; std::getline(ss, n, ',');)
      if (!n.empty()) only.insert(n);
  }
  std::vector<std::string> names;
  for (const auto& d : fs::directory_iterator(kGolden))
    if (fs::exists(d.path() / "Dockerfile") && (only.empty() || only.count(d.path().filename().string())))
      names.push_back(d.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

struct KnownDifference {
  int line = 0;  // of its first '-' line in the file
  std::vector<std::string> minus, plus;
};

/// Parses <case>/known-differences; format errors are returned in `errors`.
std::vector<KnownDifference> known_differences(const fs::path& file, std::vector<std::string>& errors) {
  std::vector<KnownDifference> out;
  if (!fs::exists(file)) return out;
  bool reason = false;
  int n = 0, paragraph = 0;
  for (const auto& l : builder::e2e::lines_of(builder::e2e::slurp(file))) {
    ++n;
    if (l.empty()) {
      reason = false;
      paragraph = 0;
      continue;
    }
    if (paragraph == 0) paragraph = n;
    auto where = "known-differences:" + std::to_string(n) + ": ";
    if (l[0] == '#') {
      reason = true;
    } else if (l.rfind("- ", 0) == 0) {
      if (!reason) errors.push_back(where + "no '# ' reason above this line");
      if (out.empty() || out.back().line < paragraph || !out.back().plus.empty()) out.push_back({n, {}, {}});
      out.back().minus.push_back(l.substr(2));
    } else if ((l.rfind("+ ", 0) == 0 || l == "+") && !out.empty() && out.back().line >= paragraph) {
      out.back().plus.push_back(l.size() > 2 ? l.substr(2) : "");
    } else {
      errors.push_back(where + "expected '# ', '- ' or '+ ' (after '- '): " + l);
    }
  }
  // '-' lines without '+' lines are deletions, each of its own: they need not be adjacent.
  std::vector<KnownDifference> split;
  for (auto& d : out) {
    if (!d.plus.empty()) {
      split.push_back(std::move(d));
      continue;
    }
    for (size_t i = 0; i < d.minus.size(); ++i) split.push_back({d.line + static_cast<int>(i), {d.minus[i]}, {}});
  }
  return split;
}

/// `lines` with every occurrence of each block's '-' lines replaced by its '+' lines.
std::vector<std::string> apply(std::vector<std::string> lines, const std::vector<KnownDifference>& diffs,
                               std::vector<std::string>& errors) {
  for (const auto& d : diffs) {
    std::vector<std::string> out;
    size_t hits = 0;
    for (size_t i = 0; i < lines.size();) {
      if (i + d.minus.size() <= lines.size() && std::equal(d.minus.begin(), d.minus.end(), lines.begin() + i)) {
        out.insert(out.end(), d.plus.begin(), d.plus.end());
        i += d.minus.size();
        ++hits;
      } else {
        out.push_back(lines[i++]);
      }
    }
    if (hits == 0)
      errors.push_back("known-differences:" + std::to_string(d.line) +
                       ": matches no line of expected.txt: " + d.minus.front());
    lines = std::move(out);
  }
  return lines;
}

/// A line diff (longest common subsequence): "-" expected only, "+" actual only, with
/// two lines of context around each change.
std::string diff(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<unsigned>> lcs(n + 1, std::vector<unsigned>(m + 1, 0));
  for (size_t i = n; i-- > 0;)
    for (size_t j = m; j-- > 0;)
      lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
  std::vector<std::pair<char, std::string>> ops;
  size_t i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] == b[j]) {
      ops.emplace_back(' ', a[i++]);
      ++j;
    } else if (j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j])) {
      ops.emplace_back('+', b[j++]);
    } else {
      ops.emplace_back('-', a[i++]);
    }
  }
  std::string out;
  size_t last = 0;
  bool gap = false;
  for (size_t k = 0; k < ops.size(); ++k) {
    bool near = false;
    for (size_t c = (k >= 2 ? k - 2 : 0); c < std::min(ops.size(), k + 3) && !near; ++c) near = ops[c].first != ' ';
    if (!near) {
      gap = true;
      continue;
    }
    if (gap && last != 0) out += "@@\n";
    gap = false;
    out += std::string(1, ops[k].first) + " " + ops[k].second + "\n";
    last = k + 1;
  }
  return out;
}

struct CaseRun {
  const TestRoot& root;
  std::set<std::string> built;

  /// Builds `name` (after the cases it requires, tagged <case>:latest); with `out`, also
  /// writes a docker archive there. Failures are reported and return false.
  bool build(const std::string& name, const fs::path& out = {}) {
    if (out.empty() && built.count(name)) return true;
    const fs::path dir = kGolden / name;
    for (const auto& dep : entries(dir / "requires"))
      if (!build(dep)) return false;
    const fs::path ctx = root.work() / ("ctx-" + name);
    Result p = run_process({"env", std::string("XATTR_TOOL=") + BUILDER_XATTR_TOOL, "bash",
                            builder::test::source_dir() + "/scripts/make-goldens", "--prepare-context", dir.string(),
                            ctx.string()});
    if (p.status != 0) {
      FAIL_CHECK(name << ": preparing the context failed: " << p.describe());
      return false;
    }
    std::vector<std::string> args{"build", "--progress=plain", "-t", name + ":latest"};
    for (const auto& a : entries(dir / "build-args")) args.insert(args.end(), {"--build-arg", a});
    auto target = entries(dir / "target");
    if (!target.empty()) args.insert(args.end(), {"--target", target.front()});
    for (const auto& s : entries(dir / "secrets")) {
      const std::string id = s.substr(0, s.find('='));
      const fs::path file = root.work() / ("secret-" + name + "-" + id);
      builder::e2e::write_file(file, s.substr(s.find('=') + 1));
      args.insert(args.end(), {"--secret", "id=" + id + ",src=" + file.string()});
    }
    if (!out.empty()) args.insert(args.end(), {"-o", "type=docker,dest=" + out.string()});
    args.push_back(ctx.string());
    Result b = root.builder(args);
    if (b.status != 0) {
      FAIL_CHECK(name << ": builder build failed: " << b.describe());
      return false;
    }
    built.insert(name);
    return true;
  }
};

/// Builds one case and compares; returns a one-line verdict for the summary.
std::string check_case(const std::string& name) {
  TestRoot root;
  if (!root.import_busybox()) return "FAIL (import)";
  const fs::path base = root.work() / "busybox.tar";
  Result s = root.builder({"save", "--format", "docker", "-o", base.string(), "busybox:latest"});
  if (s.status != 0) {
    FAIL_CHECK(name << ": saving busybox failed: " << s.describe());
    return "FAIL (save base)";
  }
  CaseRun run{root, {}};
  const fs::path out = root.work() / (name + ".tar");
  if (!run.build(name, out)) return "FAIL (build)";
  Result d = run_process({BUILDER_GOLDEN_DUMP, "--base", base.string(), out.string()});
  if (d.status != 0) {
    FAIL_CHECK(name << ": golden_dump failed: " << d.describe());
    return "FAIL (dump)";
  }
  const fs::path dir = kGolden / name;
  if (!fs::exists(dir / "expected.txt")) {
    FAIL_CHECK(name << ": no expected.txt; run scripts/make-goldens " << name << " (needs docker.io)");
    return "FAIL (no golden)";
  }
  std::vector<std::string> errors;
  auto kd = known_differences(dir / "known-differences", errors);
  auto expected = apply(builder::e2e::lines_of(builder::e2e::slurp(dir / "expected.txt")), kd, errors);
  auto actual = builder::e2e::lines_of(d.out);
  for (const auto& e : errors) FAIL_CHECK(name << ": " << e);
  if (expected != actual) {
    FAIL_CHECK(name << ": the image differs from Docker's (- expected, + builder):\n" << diff(expected, actual));
    return "FAIL (differs)";
  }
  root.check_no_mounts();
  return errors.empty() ? "ok" : "FAIL (known-differences)";
}

}  // namespace

TEST_CASE("e2e: images match the goldens Docker's BuildKit produced (testdata/golden)") {
  if (!builder::test::have_root()) return;
  std::string summary;
  for (const auto& name : case_names()) {
    CAPTURE(name);
    summary += "  " + name + ": " + check_case(name) + "\n";
  }
  MESSAGE("golden cases:\n" << summary);
}
