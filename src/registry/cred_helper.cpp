// Running docker-credential-<name>: fork + execve (no shell), stdin/stdout/stderr on
// pipes polled together with a deadline, so neither a chatty nor a hanging helper can
// hold builder. Everything the child needs is made before fork(), which then makes only
// async-signal-safe calls (builder is multithreaded).
#include "registry/cred_helper.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "base/error.h"
#include "base/fd.h"
#include "base/fs.h"
#include "base/json.h"
#include "base/pid.h"
#include "base/strings.h"

extern char** environ;

namespace builder::registry {

namespace {

constexpr const char* kTokenUsername = "<token>";

std::pair<base::Fd, base::Fd> make_pipe() {
  int p[2];
  base::check_sys(::pipe2(p, O_CLOEXEC), "pipe2");
  return {base::Fd(p[0]), base::Fd(p[1])};
}

/// The first line of a helper's message, for errors.
std::string first_line(const std::string& s) {
  std::string_view t = base::trim(s);
  t = t.substr(0, std::min(t.find('\n'), size_t{300}));
  return std::string(t);
}

/// SIGPIPE blocked on this thread while we write to a helper that may have exited; a
/// pending one is consumed before the mask is restored, so it never kills builder.
class BlockSigpipe {
 public:
  BlockSigpipe() {
    sigset_t s;
    ::sigemptyset(&s);
    ::sigaddset(&s, SIGPIPE);
    sigset_t pending;
    ::sigpending(&pending);
    already_pending_ = ::sigismember(&pending, SIGPIPE) == 1;
    ::pthread_sigmask(SIG_BLOCK, &s, &old_);
  }
  ~BlockSigpipe() {
    if (!already_pending_) {
      sigset_t s;
      ::sigemptyset(&s);
      ::sigaddset(&s, SIGPIPE);
      timespec zero{0, 0};
      while (::sigtimedwait(&s, nullptr, &zero) == SIGPIPE) {
      }
    }
    ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }

 private:
  sigset_t old_{};
  bool already_pending_ = false;
};

}  // namespace

bool is_credentials_not_found(const std::string& output) {
  return base::trim(output) == "credentials not found" ||
         base::to_lower(output).find("credentials not found in native keychain") != std::string::npos;
}

CredentialHelper::CredentialHelper(std::string name, std::string origin, std::chrono::milliseconds timeout)
    : name_(std::move(name)), origin_(std::move(origin)), timeout_(timeout) {
  if (name_.empty() || name_.find('/') != std::string::npos || name_.find('\0') != std::string::npos)
    throw base::Error("credential helper `" + name_ + "` (" + origin_ + "): not a valid helper name");
}

std::string CredentialHelper::describe() const { return "credential helper " + program() + " (" + origin_ + ")"; }

CredentialHelper::Run CredentialHelper::run(const std::string& action, const std::string& input) const {
  const std::string path = base::find_program(program());
  if (path.empty()) throw base::Error(describe() + ": `" + program() + "` not found in PATH");

  std::vector<std::string> argv{path, action};
  std::vector<char*> av;
  for (auto& a : argv) av.push_back(a.data());
  av.push_back(nullptr);
  // The helper gets builder's environment: keychains need HOME, DBUS_SESSION_BUS_ADDRESS,
  // GPG_TTY, PASSWORD_STORE_DIR and the like.
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) env.emplace_back(*e);
  std::vector<char*> ev;
  for (auto& e : env) ev.push_back(e.data());
  ev.push_back(nullptr);

  auto [in_r, in_w] = make_pipe();
  auto [out_r, out_w] = make_pipe();
  auto [err_r, err_w] = make_pipe();
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) throw base::SysError(errno, "fork", path);
  if (pid == 0) {
    base::reset_signals_for_exec();
    // Same process group as builder (no setpgid): a helper asking for a passphrase on the
    // terminal (pass + pinentry-tty) must not be stopped as a background job.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    if (::dup2(in_r.get(), 0) < 0 || ::dup2(out_w.get(), 1) < 0 || ::dup2(err_w.get(), 2) < 0) ::_exit(126);
    ::execve(av[0], av.data(), ev.data());
    ::_exit(127);
  }
  in_r = base::Fd();
  out_w = base::Fd();
  err_w = base::Fd();
  ::fcntl(in_w.get(), F_SETFL, ::fcntl(in_w.get(), F_GETFL) | O_NONBLOCK);

  Run r;
  BlockSigpipe no_sigpipe;
  size_t written = 0;
  if (input.empty()) in_w = base::Fd();
  const pid_t child = pid;
  bool reaped = false;
  int ws = 0;
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  std::optional<std::chrono::steady_clock::time_point> exited_at;
  std::string failure;
  for (;;) {
    auto now = std::chrono::steady_clock::now();
    if (!reaped && ::waitpid(child, &ws, WNOHANG) == child) {
      reaped = true;
      exited_at = now;
    }
    if (reaped && !out_r.valid() && !err_r.valid()) break;
    // The helper has exited but something it started holds its stdout: stop waiting.
    if (exited_at && now - *exited_at > std::chrono::seconds(2)) break;
    if (now >= deadline) {
      auto ms = timeout_.count();
      failure = "timed out after " + (ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms") +
                " (killed)";
      break;
    }
    pollfd fds[3];
    int n = 0;
    int idx_in = -1, idx_out = -1, idx_err = -1;
    if (in_w.valid()) fds[idx_in = n++] = {in_w.get(), POLLOUT, 0};
    if (out_r.valid()) fds[idx_out = n++] = {out_r.get(), POLLIN, 0};
    if (err_r.valid()) fds[idx_err = n++] = {err_r.get(), POLLIN, 0};
    int rc = ::poll(fds, static_cast<nfds_t>(n), n == 0 ? 20 : 100);
    if (rc < 0 && errno != EINTR) {
      failure = std::string("poll: ") + std::strerror(errno);
      break;
    }
    if (rc <= 0) continue;
    if (idx_in >= 0 && fds[idx_in].revents) {
      ssize_t w = ::write(in_w.get(), input.data() + written, input.size() - written);
      if (w > 0) written += static_cast<size_t>(w);
      // Done, or the helper closed its stdin (EPIPE): it has what it will read.
      if (written == input.size() || (w < 0 && errno != EAGAIN && errno != EINTR)) in_w = base::Fd();
    }
    auto drain = [&](int idx, base::Fd& fd, std::string& into) {
      if (idx < 0 || !fds[idx].revents) return;
      char buf[8192];
      ssize_t got = ::read(fd.get(), buf, sizeof buf);
      if (got > 0) {
        if (into.size() + static_cast<size_t>(got) > kMaxOutput) {
          failure = "wrote more than " + std::to_string(kMaxOutput) + " bytes (killed)";
          return;
        }
        into.append(buf, static_cast<size_t>(got));
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        fd = base::Fd();
      }
    };
    drain(idx_out, out_r, r.out);
    drain(idx_err, err_r, r.err);
    if (!failure.empty()) break;
  }
  // A helper still running (timed out, or too talkative) is killed and reaped. What it
  // started itself (an agent such as gpg-agent) is its business, as with docker.
  if (!reaped) {
    ::kill(child, SIGKILL);
    while (::waitpid(child, &ws, 0) < 0 && errno == EINTR) {
    }
  }
  if (!failure.empty()) throw base::Error(describe() + ": `" + action + "` " + failure);
  if (WIFEXITED(ws) && WEXITSTATUS(ws) == 127 && r.err.empty() && r.out.empty())
    throw base::Error(describe() + ": cannot run `" + path + "`");
  r.status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
  return r;
}

std::optional<HelperCredentials> CredentialHelper::get(const std::string& server) const {
  Run r = run("get", server);
  if (r.status != 0) {
    if (is_credentials_not_found(r.out) || is_credentials_not_found(r.err)) return std::nullopt;
    std::string msg = first_line(r.out.empty() ? r.err : r.out);
    if (!r.out.empty() && !r.err.empty()) msg += "; " + first_line(r.err);
    throw base::Error(describe() + ": `get` for " + server + " failed (exit status " + std::to_string(r.status) +
                      ")" + (msg.empty() ? "" : ": " + msg));
  }
  base::Json j;
  try {
    j = base::Json::parse(r.out);
  } catch (const std::exception&) {
    throw base::Error(describe() + ": `get` for " + server + ": the answer is not JSON: " + first_line(r.out));
  }
  if (!j.is_object() || !j.contains("Secret") || !j["Secret"].is_string() ||
      (j.contains("Username") && !j["Username"].is_string()))
    throw base::Error(describe() + ": `get` for " + server +
                      ": the answer is not {\"ServerURL\", \"Username\", \"Secret\"}");
  HelperCredentials c;
  std::string user = j.value("Username", "");
  if (user == kTokenUsername) {
    c.identity_token = j["Secret"].get<std::string>();
  } else {
    c.username = user;
    c.secret = j["Secret"].get<std::string>();
  }
  if (c.username.empty() && c.secret.empty() && c.identity_token.empty()) return std::nullopt;
  return c;
}

void CredentialHelper::store(const std::string& server, const HelperCredentials& c) const {
  base::Json j = base::Json::object();
  j["ServerURL"] = server;
  if (!c.identity_token.empty()) {
    j["Username"] = kTokenUsername;
    j["Secret"] = c.identity_token;
  } else {
    j["Username"] = c.username;
    j["Secret"] = c.secret;
  }
  Run r = run("store", j.dump());
  if (r.status != 0) {
    std::string msg = first_line(r.out.empty() ? r.err : r.out);
    throw base::Error(describe() + ": `store` for " + server + " failed (exit status " + std::to_string(r.status) +
                      ")" + (msg.empty() ? "" : ": " + msg));
  }
}

bool CredentialHelper::erase(const std::string& server) const {
  Run r = run("erase", server);
  if (r.status == 0) return true;
  if (is_credentials_not_found(r.out) || is_credentials_not_found(r.err)) return false;
  std::string msg = first_line(r.out.empty() ? r.err : r.out);
  throw base::Error(describe() + ": `erase` for " + server + " failed (exit status " + std::to_string(r.status) + ")" +
                    (msg.empty() ? "" : ": " + msg));
}

}  // namespace builder::registry
