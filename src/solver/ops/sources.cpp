// solver/ops/sources.cpp — ADD's remote sources: HTTP(S) over libcurl (limits on time,
// size and redirects; no credentials, no protocols but http and https), and git through
// the `git` CLI run in a private HOME with prompts off, each command under a timeout.
#include "solver/ops/sources.h"

#include <curl/curl.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "base/error.h"
#include "base/fd.h"
#include "base/fs.h"
#include "base/pid.h"
#include "base/strings.h"
#include "base/temp_dir.h"
#include "exec/sandbox.h"

namespace builder::ops {
namespace {

// ---------------------------------------------------------------- HTTP

void curl_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Transfer {
  int fd = -1;
  base::Sha256 hash;
  uint64_t size = 0;
  uint64_t max_size = 0;
  bool too_big = false;
  std::string write_error;
  // Headers of the last response only: a redirect's headers are dropped when the next
  // status line arrives.
  std::string status_line, etag, last_modified;
};

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string line(data, size * n);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  if (line.rfind("HTTP/", 0) == 0) {
    t->status_line = line;
    t->etag.clear();
    t->last_modified.clear();
    return size * n;
  }
  auto colon = line.find(':');
  if (colon == std::string::npos) return size * n;
  std::string name = base::to_lower(line.substr(0, colon));
  std::string value(base::trim(line.substr(colon + 1)));
  if (name == "etag") t->etag = value;
  if (name == "last-modified") t->last_modified = value;
  return size * n;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  // Only a 2xx answer's body is the file; a redirect's, a 304's or an error page's is
  // dropped (the status line is known before the first body byte).
  auto sp = t->status_line.find(' ');
  if (sp == std::string::npos || t->status_line.compare(sp + 1, 1, "2") != 0) return len;
  if (t->size + len > t->max_size) {
    t->too_big = true;
    return 0;  // aborts the transfer
  }
  t->hash.update(data, len);
  t->size += len;
  for (size_t done = 0; done < len;) {
    ssize_t w = ::write(t->fd, data + done, len - done);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      t->write_error = std::strerror(errno);
      return 0;
    }
    done += static_cast<size_t>(w);
  }
  return len;
}

int on_progress(void*, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return exec::cancelled() ? 1 : 0;  // Ctrl-C stops a download too
}

/// The reason phrase of "HTTP/1.1 404 Not Found" ("Not Found"), or "".
std::string reason_of(const std::string& status_line) {
  auto sp = status_line.find(' ');
  if (sp == std::string::npos) return {};
  auto sp2 = status_line.find(' ', sp + 1);
  return sp2 == std::string::npos ? std::string() : std::string(base::trim(status_line.substr(sp2 + 1)));
}

}  // namespace

HttpFetched http_fetch(const std::string& url, const std::string& dest, const std::string& if_none_match,
                       const HttpLimits& limits) {
  curl_init_once();
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) throw base::Error("failed to fetch " + url + ": libcurl: out of memory");
  Transfer t;
  t.max_size = limits.max_size;
  base::Fd file(::open(dest.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!file) throw base::SysError(errno, "open", dest);
  t.fd = file.get();
  bool keep = false;
  struct RemoveUnlessKept {
    const std::string& path;
    const bool& keep;
    ~RemoveUnlessKept() {
      if (!keep) ::unlink(path.c_str());
    }
  } cleanup{dest, keep};

  std::unique_ptr<curl_slist, void (*)(curl_slist*)> headers(nullptr, curl_slist_free_all);
  if (!if_none_match.empty()) {
    std::string h = "If-None-Match: " + if_none_match;
    headers.reset(curl_slist_append(nullptr, h.c_str()));
  }
  char errbuf[CURL_ERROR_SIZE] = {0};
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, static_cast<long>(limits.max_redirects));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, limits.connect_timeout_s);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, limits.total_timeout_s);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, limits.low_speed_time_s);
  curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(limits.max_size));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM for DNS timeouts
  curl_easy_setopt(c, CURLOPT_NETRC, static_cast<long>(CURL_NETRC_IGNORED));
  curl_easy_setopt(c, CURLOPT_USERAGENT, "builder");
  // As Go's client (BuildKit's): a gzip Content-Encoding is not undone, the bytes are
  // the file. Asking for identity keeps servers from compressing on the fly.
  curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, nullptr);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_FILETIME, 1L);

  CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (t.too_big || rc == CURLE_FILESIZE_EXCEEDED)
    throw base::Error("failed to fetch " + url + ": the body is larger than the limit of " +
                      std::to_string(limits.max_size) + " bytes");
  if (!t.write_error.empty()) throw base::Error("failed to fetch " + url + ": writing " + dest + ": " + t.write_error);
  if (rc == CURLE_ABORTED_BY_CALLBACK && exec::cancelled()) throw base::Error("failed to fetch " + url + ": cancelled");
  if (rc == CURLE_TOO_MANY_REDIRECTS)
    throw base::Error("failed to fetch " + url + ": stopped after " + std::to_string(limits.max_redirects) +
                      " redirects");
  if (rc != CURLE_OK)
    throw base::Error("failed to fetch " + url + ": " + (errbuf[0] ? std::string(errbuf) : curl_easy_strerror(rc)));
  HttpFetched out;
  out.etag = t.etag;
  if (status == 304 && !if_none_match.empty()) {
    out.not_modified = true;
    if (out.etag.empty()) out.etag = if_none_match;
    return out;
  }
  if (status < 200 || status >= 300) {
    std::string reason = reason_of(t.status_line);
    throw base::Error("failed to fetch " + url + ": invalid response status " + std::to_string(status) +
                      (reason.empty() ? "" : " " + reason));
  }
  if (!t.last_modified.empty()) {
    curl_off_t ft = -1;
    if (curl_easy_getinfo(c, CURLINFO_FILETIME_T, &ft) == CURLE_OK && ft >= 0) out.mtime = static_cast<int64_t>(ft);
  }
  base::check_sys(::fsync(file.get()), "fsync", dest);
  out.digest = t.hash.finish();
  out.size = t.size;
  keep = true;
  return out;
}

// ---------------------------------------------------------------- git

namespace {

struct GitEnv {
  base::TempDir home;
  std::vector<std::string> env;
  std::string git;  ///< absolute path of the git binary

  explicit GitEnv(const std::string& scratch) : home(scratch, "git-home-" + std::to_string(::getpid()) + "-") {
    const char* path = std::getenv("PATH");
    std::string p = path && *path ? path : "/usr/local/bin:/usr/bin:/bin";
    git = base::find_program("git");
    if (git.empty()) throw base::Error("git not found in PATH: ADD of a git repository needs git (apt-get install git)");
    // The host's git config, credentials and prompts stay out: a HOME of our own, no
    // system or global config, no terminal or askpass prompt, ssh without a passphrase
    // prompt. Proxies from the environment still apply.
    env = {"PATH=" + p,
           "HOME=" + home.path(),
           "GIT_CONFIG_NOSYSTEM=1",
           "GIT_CONFIG_GLOBAL=/dev/null",
           "GIT_TERMINAL_PROMPT=0",
           "GIT_ASKPASS=/bin/true",
           "SSH_ASKPASS=/bin/true",
           "GIT_SSH_COMMAND=ssh -o BatchMode=yes",
           "LC_ALL=C"};
    for (const char* k : {"http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"})
      if (const char* v = std::getenv(k)) env.push_back(std::string(k) + "=" + v);
  }
};

struct GitRun {
  int status = -1;
  std::string out;  ///< stdout and stderr together
};

/// Runs git with `args` in `cwd` under `timeout_s`; Ctrl-C kills it too. Everything the
/// child needs is made before fork(), which then makes only async-signal-safe calls.
GitRun run_git(const GitEnv& ge, const std::vector<std::string>& args, const std::string& cwd, long timeout_s) {
  std::vector<std::string> argv{ge.git, "-c", "protocol.file.allow=never", "-c", "protocol.ext.allow=never",
                                "-c", "core.hooksPath=/dev/null"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> av, ev;
  for (auto& a : argv) av.push_back(a.data());
  av.push_back(nullptr);
  std::vector<std::string> env = ge.env;
  for (auto& e : env) ev.push_back(e.data());
  ev.push_back(nullptr);
  base::Fd null = base::open_fd("/dev/null", O_RDONLY);
  int p[2];
  base::check_sys(::pipe2(p, O_CLOEXEC), "pipe2");
  base::Fd rd(p[0]), wr(p[1]);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) throw base::SysError(errno, "fork", "git");
  if (pid == 0) {
    base::reset_signals_for_exec();
    ::setpgid(0, 0);  // its own group: a timeout kills git's helpers too
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    if (::dup2(null.get(), 0) < 0 || ::dup2(wr.get(), 1) < 0 || ::dup2(wr.get(), 2) < 0) ::_exit(126);
    if (!cwd.empty() && ::chdir(cwd.c_str()) < 0) ::_exit(126);
    ::execve(av[0], av.data(), ev.data());
    ::_exit(127);
  }
  wr = base::Fd();
  GitRun r;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  bool timed_out = false, cancelled = false;
  for (;;) {
    struct pollfd pfd{rd.get(), POLLIN, 0};
    int n = ::poll(&pfd, 1, 200);
    if (n > 0) {
      char buf[8192];
      ssize_t got = ::read(rd.get(), buf, sizeof buf);
      if (got > 0) {
        if (r.out.size() < (1 << 20)) r.out.append(buf, static_cast<size_t>(got));
        continue;
      }
      if (got == 0) break;
      if (errno != EINTR && errno != EAGAIN) break;
    }
    if (exec::cancelled()) cancelled = true;
    if (std::chrono::steady_clock::now() > deadline) timed_out = true;
    if (timed_out || cancelled) {
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      break;
    }
  }
  int ws = 0;
  while (::waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) throw base::Error("git " + args[0] + ": timed out after " + std::to_string(timeout_s) + "s");
  if (cancelled) throw base::Error("git " + args[0] + ": cancelled");
  r.status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
  return r;
}

std::string last_lines(const std::string& s) {
  auto lines = base::split(std::string(base::trim(s)), '\n');
  size_t from = lines.size() > 4 ? lines.size() - 4 : 0;
  std::vector<std::string> tail(lines.begin() + static_cast<long>(from), lines.end());
  return base::join(tail, "; ");
}

/// git output, or an error naming what was asked for and git's own last words.
std::string git_ok(const GitEnv& ge, const std::vector<std::string>& args, const std::string& cwd, long timeout_s,
                   const std::string& what) {
  GitRun r = run_git(ge, args, cwd, timeout_s);
  if (r.status != 0) throw base::Error(what + ": git " + args[0] + " failed: " + last_lines(r.out));
  return r.out;
}

bool is_commit_hex(const std::string& s) {
  return (s.size() == 40 || s.size() == 64) && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

}  // namespace

std::string git_resolve(const std::string& remote, const std::string& ref, const GitOptions& opts) {
  if (is_commit_hex(ref)) return ref;
  GitEnv ge(opts.scratch_dir);
  const std::string what = "failed to resolve " + remote + (ref.empty() ? "" : "#" + ref);
  // "--" so that a remote or ref starting with '-' is never an option.
  std::vector<std::string> args{"ls-remote", "--", remote};
  if (!ref.empty()) args.push_back(ref);
  else args.push_back("HEAD");
  std::string out = git_ok(ge, args, "", opts.timeout_s, what);
  std::map<std::string, std::string> refs;  // name -> commit
  for (const auto& line : base::split(out, '\n')) {
    auto tab = line.find('\t');
    if (tab == std::string::npos) continue;
    refs[std::string(base::trim(line.substr(tab + 1)))] = line.substr(0, tab);
  }
  std::vector<std::string> order;
  if (ref.empty()) {
    order = {"HEAD"};
  } else if (ref.rfind("refs/", 0) == 0) {
    order = {ref + "^{}", ref};
  } else {
    order = {"refs/tags/" + ref + "^{}", "refs/tags/" + ref, "refs/heads/" + ref, ref};
  }
  for (const auto& name : order) {
    auto it = refs.find(name);
    if (it != refs.end() && is_commit_hex(it->second)) return it->second;
  }
  throw base::Error(what + ": repository does not contain ref " + (ref.empty() ? "HEAD" : ref));
}

void git_checkout(const std::string& remote, const std::string& ref, const std::string& commit,
                  const std::string& subdir, bool keep_git_dir, const std::string& dest, const GitOptions& opts) {
  GitEnv ge(opts.scratch_dir);
  const std::string what = "failed to fetch " + remote + (ref.empty() ? "" : "#" + ref);
  base::TempDir work(opts.scratch_dir, "git-" + std::to_string(::getpid()) + "-");
  const std::string repo = work.path() + "/repo";
  base::make_dirs(repo);
  const long t = opts.timeout_s;
  git_ok(ge, {"init", "-q"}, repo, t, what);
  git_ok(ge, {"remote", "add", "origin", remote}, repo, t, what);
  // Shallow first: the ref by name (any server), or the commit itself (servers that
  // allow fetching a reachable commit). A dumb-http server or an old one refuses
  // shallow fetches: then everything is fetched and the commit checked out.
  std::vector<std::string> tries;
  if (!ref.empty() && !is_commit_hex(ref)) tries.push_back(ref);
  tries.push_back(commit);
  bool have = false;
  for (const auto& want : tries) {
    GitRun r = run_git(ge, {"fetch", "-q", "--depth", "1", "--no-tags", "origin", "--", want}, repo, t);
    if (r.status != 0) continue;
    // The ref may have moved since it was resolved: only that very commit will do.
    GitRun check = run_git(ge, {"cat-file", "-e", commit + "^{commit}"}, repo, t);
    if (check.status == 0) {
      have = true;
      break;
    }
  }
  if (!have) {
    git_ok(ge, {"fetch", "-q", "--tags", "origin", "--", "+refs/heads/*:refs/remotes/origin/*"}, repo, t, what);
    GitRun check = run_git(ge, {"cat-file", "-e", commit + "^{commit}"}, repo, t);
    if (check.status != 0) throw base::Error(what + ": commit " + commit + " is not in the repository");
  }
  git_ok(ge, {"-c", "advice.detachedHead=false", "checkout", "-q", "--detach", commit}, repo, t, what);
  if (base::path_exists(repo + "/.gitmodules"))
    git_ok(ge, {"submodule", "update", "-q", "--init", "--recursive", "--depth", "1"}, repo, t, what + " (submodules)");
  if (keep_git_dir && !ref.empty() && !is_commit_hex(ref) && ref.rfind("refs/tags/", 0) != 0) {
    // As BuildKit: with the .git directory kept, the branch is checked out by name.
    std::string branch = ref.rfind("refs/heads/", 0) == 0 ? ref.substr(11) : ref;
    run_git(ge, {"checkout", "-q", "-B", branch, commit}, repo, t);
  }
  if (!keep_git_dir) base::remove_all(repo + "/.git");

  std::string from = repo;
  if (!subdir.empty()) {
    // The subdirectory must be a real directory inside the checkout: a symlink there
    // could point anywhere on the host.
    std::string cur = repo;
    for (const auto& part : base::split(subdir, '/')) {
      if (part.empty() || part == ".") continue;
      if (part == "..") throw base::Error(what + ": subdirectory " + subdir + " leaves the repository");
      cur += "/" + part;
      struct stat st;
      if (::lstat(cur.c_str(), &st) < 0)
        throw base::Error(what + ": subdirectory " + subdir + " does not exist in the repository");
      if (!S_ISDIR(st.st_mode)) throw base::Error(what + ": " + subdir + " is not a directory in the repository");
    }
    from = cur;
  }
  // dest is empty and on the same file system (both in the store): move the entries.
  DIR* d = ::opendir(from.c_str());
  if (!d) throw base::SysError(errno, "opendir", from);
  std::vector<std::string> names;
  while (struct dirent* de = ::readdir(d)) {
    std::string n = de->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  ::closedir(d);
  for (const auto& n : names) {
    std::string a = from + "/" + n, b = dest + "/" + n;
    base::check_sys(::rename(a.c_str(), b.c_str()), "rename", b);
  }
}

}  // namespace builder::ops
