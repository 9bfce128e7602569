// tests/e2e/e2e_util.h — end-to-end helpers: run the real `builder` binary (and host tools
// such as skopeo/umoci) in a child process capturing stdout, stderr and the exit status;
// a fresh store root per test under /tmp/builder-test-XXXXXX, removed on destruction;
// the busybox base image built once from scripts/make-busybox-rootfs.
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.h"

namespace builder::e2e {

namespace fs = std::filesystem;

struct Result {
  int status = -1;  // exit code, or 128+signal
  std::string out;
  std::string err;
  /// Everything, for failure messages.
  std::string describe() const {
    return "exit " + std::to_string(status) + "\n--- stdout ---\n" + out + "\n--- stderr ---\n" + err;
  }
};

inline std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_file(const fs::path& p, const std::string& data) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << data;
}

/// Runs argv[0] (looked up in PATH when it has no slash) with `argv`, in `cwd` when not
/// empty, stdin from `stdin_path`. stdout and stderr go to temp files, read back after
/// the child exits.
inline Result run_process(const std::vector<std::string>& argv, const std::string& cwd = {},
                          const std::string& stdin_path = "/dev/null") {
  Result r;
  char out_tmpl[] = "/tmp/builder-e2e-out.XXXXXX";
  char err_tmpl[] = "/tmp/builder-e2e-err.XXXXXX";
  int out_fd = ::mkstemp(out_tmpl);
  int err_fd = ::mkstemp(err_tmpl);
  if (out_fd < 0 || err_fd < 0) {
    r.err = "mkstemp failed";
    return r;
  }
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);

  pid_t pid = ::fork();
  if (pid == 0) {
    int devnull = ::open(stdin_path.c_str(), O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(out_fd, 1);
    ::dup2(err_fd, 2);
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) _exit(126);
    ::execvp(cargv[0], cargv.data());
    _exit(127);
  }
  ::close(out_fd);
  ::close(err_fd);
  if (pid < 0) {
    r.err = "fork failed";
  } else {
    int ws = 0;
    while (::waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(ws)) r.status = WEXITSTATUS(ws);
    else if (WIFSIGNALED(ws)) r.status = 128 + WTERMSIG(ws);
    r.out = slurp(out_tmpl);
    r.err = slurp(err_tmpl);
  }
  ::unlink(out_tmpl);
  ::unlink(err_tmpl);
  return r;
}

/// True if `tool` is found in PATH.
inline bool have_tool(const std::string& tool) {
  return run_process({"sh", "-c", "command -v " + tool + " >/dev/null"}).status == 0;
}

/// True if `tool` is installed. A missing tool is a failure under CI (scripts/setup
/// installs them all), a skip with a message on a developer's machine.
inline bool require_tool(const std::string& tool) {
  if (have_tool(tool)) return true;
  if (std::getenv("CI")) FAIL_CHECK(tool << " is not installed, and CI must run this check");
  else MESSAGE(tool << " not installed: skipped");
  return false;
}

/// Lines of /proc/self/mounts that mention `needle`.
inline std::vector<std::string> mounts_containing(const std::string& needle) {
  std::vector<std::string> hits;
  std::ifstream in("/proc/self/mounts");
  for (std::string line; std::getline(in, line);)
    if (line.find(needle) != std::string::npos) hits.push_back(line);
  return hits;
}

inline std::string join(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

/// Counts (non-overlapping) occurrences of `needle` in `hay`.
inline size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = hay.find(needle); pos != std::string::npos; pos = hay.find(needle, pos + needle.size())) ++n;
  return n;
}

/// Lines of `text`.
inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

/// For each step of a --progress=plain log whose text starts with `kind` ("COPY"), its
/// text ("COPY . /app") and whether the step was CACHED.
inline std::map<std::string, bool> step_cache_states(const std::string& log, const std::string& kind) {
  const std::regex step("^#(\\d+) \\[[^\\]]*\\] (" + kind + " .*)$");
  static const std::regex cached(R"re(^#(\d+) CACHED\s*$)re");
  std::map<std::string, std::string> text_of;
  std::map<std::string, bool> out;
  for (const auto& line : lines_of(log)) {
    std::smatch m;
    if (std::regex_search(line, m, step)) {
      text_of[m[1]] = m[2];
      out[m[2]] = false;
    } else if (std::regex_search(line, m, cached) && text_of.count(m[1])) {
      out[text_of[m[1]]] = true;
    }
  }
  return out;
}

/// The busybox rootfs tar, built once per test process by scripts/make-busybox-rootfs.
/// Empty on failure (a FAIL is reported by the caller).
inline const std::string& busybox_rootfs() {
  static std::string path;
  static std::once_flag once;
  std::call_once(once, [] {
    char tmpl[] = "/tmp/builder-e2e-rootfs.XXXXXX";
    if (!::mkdtemp(tmpl)) return;
    std::string out = std::string(tmpl) + "/rootfs.tar";
    Result r = run_process({"bash", test::source_dir() + "/scripts/make-busybox-rootfs", out});
    if (r.status != 0) {
      MESSAGE("make-busybox-rootfs failed: " << r.describe());
      return;
    }
    path = out;
    // Removed at process exit.
    static struct Cleanup {
      std::string dir;
      ~Cleanup() {
        std::error_code ec;
        fs::remove_all(dir, ec);
      }
    } cleanup{tmpl};
  });
  return path;
}

/// A fresh builder store root plus a scratch directory, under /tmp/builder-test-XXXXXX.
/// Removed on destruction unless something is still mounted under it (then it is left
/// for inspection, and the mount check tests report it).
class TestRoot {
 public:
  TestRoot() {
    char tmpl[] = "/tmp/builder-test-XXXXXX";
    if (::mkdtemp(tmpl)) dir_ = tmpl;
    REQUIRE_MESSAGE(!dir_.empty(), "mkdtemp failed");
    fs::create_directories(dir_ / "root");
    fs::create_directories(dir_ / "work");
  }
  TestRoot(const TestRoot&) = delete;
  TestRoot& operator=(const TestRoot&) = delete;
  ~TestRoot() {
    if (dir_.empty()) return;
    if (!mounts_containing(dir_.string()).empty()) return;
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  const fs::path& dir() const { return dir_; }
  fs::path store() const { return dir_ / "root"; }
  /// Scratch directory for outputs (tars, unpacked layouts).
  fs::path work() const { return dir_ / "work"; }

  /// `builder --root <store> args...`, run in work().
  Result builder(const std::vector<std::string>& args) const {
    std::vector<std::string> argv{test::builder_binary(), "--root", store().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv, work().string());
  }

  /// `builder --root <store> args...` with `input` on stdin.
  Result builder_with_input(const std::vector<std::string>& args, const std::string& input) const {
    fs::path in = dir_ / "stdin";
    write_file(in, input);
    std::vector<std::string> argv{test::builder_binary(), "--root", store().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv, work().string(), in.string());
  }

  /// Imports the busybox rootfs as busybox:latest. Returns false (after reporting) on failure.
  bool import_busybox() const {
    const std::string& tar = busybox_rootfs();
    if (tar.empty()) {
      FAIL_CHECK("could not build the busybox rootfs");
      return false;
    }
    Result r = builder({"import", tar, "busybox:latest"});
    CHECK_MESSAGE(r.status == 0, "import failed: " << r.describe());
    return r.status == 0;
  }

  /// Checks that nothing is mounted under this root.
  void check_no_mounts() const {
    auto hits = mounts_containing(dir_.string());
    CHECK_MESSAGE(hits.empty(), "mounts left under " << dir_ << ":\n" << join(hits));
  }

 private:
  fs::path dir_;
};

/// Absolute path of testdata/<rel>.
inline std::string testdata(const std::string& rel) { return test::source_dir() + "/testdata/" + rel; }

/// The image Id from `builder inspect` output: a JSON "Id" field if present, else an
/// `Id:` line, else the first sha256 digest.
inline std::string image_id(const std::string& inspect_out) {
  std::smatch m;
  static const std::regex json_id(R"re("Id"\s*:\s*"([^"]+)")re", std::regex::icase);
  static const std::regex line_id(R"re((?:^|\n)\s*Id\s*:\s*(\S+))re", std::regex::icase);
  static const std::regex digest(R"re(sha256:[0-9a-f]{64})re");
  if (std::regex_search(inspect_out, m, json_id)) return m[1];
  if (std::regex_search(inspect_out, m, line_id)) return m[1];
  if (std::regex_search(inspect_out, m, digest)) return m[0];
  return {};
}

/// The REPOSITORY column of `builder images` output (header skipped).
inline std::vector<std::string> image_repositories(const std::string& images_out) {
  std::vector<std::string> repos;
  std::istringstream in(images_out);
  std::string line;
  bool first = true;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string repo;
    if (!(words >> repo)) continue;
    if (first) {
      first = false;
      if (repo == "REPOSITORY") continue;
    }
    repos.push_back(repo);
  }
  return repos;
}

}  // namespace builder::e2e
