// SSH agent forwarding: the per-step relay socket and the per-build key agent.
#include "solver/ops/ssh_proxy.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <system_error>

#include "base/error.h"
#include "base/fs.h"
#include "base/log.h"
#include "base/pid.h"
#include "base/strings.h"

namespace builder::ops {
namespace {

// The agent protocol (draft-miller-ssh-agent): uint32 length, then a type byte and its
// payload. A client sends one request and waits for its one reply.
constexpr char kAgentFailure = 5;
constexpr unsigned char kRequestIdentities = 11;
constexpr unsigned char kSignRequest = 13;
constexpr uint32_t kMaxMessage = 256 * 1024;  // OpenSSH's own limit for both directions

sockaddr_un unix_address(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof a.sun_path)
    throw base::Error("unix socket path `" + path + "` is " + std::to_string(path.size()) +
                      " bytes long; at most " + std::to_string(sizeof a.sun_path - 1) +
                      " fit (use a shorter builder root)");
  std::memcpy(a.sun_path, path.data(), path.size());
  return a;
}

/// Waits until `fd` has `events` (or an error or hang-up the next call reports); false
/// once `stop` is closed.
bool wait_ready(int fd, short events, int stop) {
  pollfd p[2] = {{fd, events, 0}, {stop, POLLIN, 0}};
  for (;;) {
    int n = ::poll(p, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || p[1].revents) return false;
    if (p[0].revents) return true;
  }
}

/// Reads exactly `n` bytes; false on end of stream, an error or stop.
bool read_exact(int fd, char* buf, size_t n, int stop) {
  for (size_t got = 0; got < n;) {
    if (!wait_ready(fd, POLLIN, stop)) return false;
    ssize_t r = ::recv(fd, buf + got, n - got, MSG_DONTWAIT);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (r <= 0) return false;
    got += static_cast<size_t>(r);
  }
  return true;
}

bool write_exact(int fd, const std::string& data, int stop) {
  for (size_t sent = 0; sent < data.size();) {
    if (!wait_ready(fd, POLLOUT, stop)) return false;
    ssize_t w = ::send(fd, data.data() + sent, data.size() - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (w < 0) return false;
    sent += static_cast<size_t>(w);
  }
  return true;
}

/// One whole agent message, its length prefix included.
bool read_message(int fd, std::string& msg, int stop) {
  char head[4];
  if (!read_exact(fd, head, 4, stop)) return false;
  uint32_t len = 0;
  for (char c : head) len = (len << 8) | static_cast<unsigned char>(c);
  if (len == 0 || len > kMaxMessage) return false;
  msg.assign(head, 4);
  msg.resize(4 + len);
  return read_exact(fd, msg.data() + 4, len, stop);
}

/// `name` in $PATH, for execve.
std::string find_program(const std::string& name) {
  std::string p = base::find_program(name);
  if (p.empty())
    throw base::Error(name + " not found in PATH: --ssh with key files needs OpenSSH's ssh-agent and ssh-add");
  return p;
}

struct Child {
  pid_t pid = -1;
  base::Fd out;  ///< its stdout and stderr
};

/// Starts `argv` (argv[0] a path) with only `env`, stdin `in` (/dev/null if -1), stdout
/// and stderr into a pipe, in a new session: without a controlling terminal, ssh-add
/// cannot prompt for a passphrase. Everything the child needs is made before fork(),
/// which then calls only async-signal-safe functions (builder is multithreaded).
Child start(const std::vector<std::string>& argv, const std::vector<std::string>& env, int in) {
  std::vector<char*> av, ev;
  for (const auto& a : argv) av.push_back(const_cast<char*>(a.c_str()));
  av.push_back(nullptr);
  for (const auto& e : env) ev.push_back(const_cast<char*>(e.c_str()));
  ev.push_back(nullptr);
  base::Fd null = base::open_fd("/dev/null", O_RDONLY);
  int p[2];
  base::check_sys(::pipe2(p, O_CLOEXEC), "pipe2");
  base::Fd out_read(p[0]), out_write(p[1]);
  const int in_fd = in >= 0 ? in : null.get();
  pid_t pid = ::fork();
  if (pid < 0) throw base::SysError(errno, "fork", argv[0]);
  if (pid == 0) {
    // builder blocks SIGINT and SIGTERM for its signal thread (and may ignore SIGPIPE);
    // the program gets the defaults, or ssh-agent would never see our SIGTERM.
    base::reset_signals_for_exec();
    ::setsid();
    if (::dup2(in_fd, 0) < 0 || ::dup2(out_write.get(), 1) < 0 || ::dup2(out_write.get(), 2) < 0) ::_exit(126);
    ::execve(av[0], av.data(), ev.data());
    ::_exit(127);
  }
  return Child{pid, std::move(out_read)};
}

int wait_exit(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/// Whether `pid` is gone or a zombie (its parent, not us, reaps it).
bool process_ended(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return true;
  auto close = stat.rfind(')');
  return close == std::string::npos || close + 2 >= stat.size() || stat[close + 2] == 'Z';
}

}  // namespace

base::Fd connect_unix(const std::string& path) {
  sockaddr_un a = unix_address(path);
  base::Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) throw base::SysError(errno, "socket", path);
  while (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) < 0)
    if (errno != EINTR) throw base::SysError(errno, "connect", path);
  return fd;
}

SshProxy::SshProxy(const std::string& upstream, const std::string& scratch_dir, uint32_t mode, uint32_t uid,
                   uint32_t gid)
    : upstream_(upstream), dir_(scratch_dir, "ssh-" + std::to_string(::getpid()) + "-") {
  path_ = dir_.path() + "/agent.sock";
  sockaddr_un a = unix_address(path_);
  listener_ = base::Fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!listener_) throw base::SysError(errno, "socket", path_);
  base::check_sys(::bind(listener_.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a), "bind", path_);
  // The socket itself carries the mount's owner and mode: the step binds this very inode.
  base::check_sys(::chown(path_.c_str(), uid, gid), "chown", path_);
  base::check_sys(::chmod(path_.c_str(), mode & 07777), "chmod", path_);
  base::check_sys(::listen(listener_.get(), 16), "listen", path_);
  int p[2];
  base::check_sys(::pipe2(p, O_CLOEXEC), "pipe2");
  stop_read_ = base::Fd(p[0]);
  stop_write_ = base::Fd(p[1]);
  acceptor_ = std::thread([this] { accept_loop(); });
}

SshProxy::~SshProxy() {
  stop_write_.reset();  // every poll() of our threads sees the hang-up and returns
  if (acceptor_.joinable()) acceptor_.join();
  for (auto& c : conns_)
    if (c.thread.joinable()) c.thread.join();
}

void SshProxy::accept_loop() {
  const int stop = stop_read_.get();
  while (wait_ready(listener_.get(), POLLIN, stop)) {
    int c = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (c < 0) {
      if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));  // EMFILE and the like: try again
      continue;
    }
    base::Fd client(c);
    std::lock_guard lk(mu_);
    for (auto it = conns_.begin(); it != conns_.end();) {
      if (it->done) {
        it->thread.join();
        it = conns_.erase(it);
      } else {
        ++it;
      }
    }
    Conn& conn = conns_.emplace_back();
    try {
      conn.thread = std::thread([this, &conn, fd = std::move(client)]() mutable {
        relay(std::move(fd));
        conn.done = true;
      });
    } catch (const std::system_error&) {  // no thread: this connection is closed
      conns_.pop_back();
    }
  }
}

void SshProxy::relay(base::Fd client) {
  base::Fd agent;
  try {
    agent = connect_unix(upstream_);
  } catch (const base::Error& e) {
    base::log_warn("ssh forwarding: cannot reach the agent: " + e.message());
    return;
  }
  const int stop = stop_read_.get();
  static const std::string kFailure{0, 0, 0, 1, kAgentFailure};
  std::string request, reply;
  while (read_message(client.get(), request, stop)) {
    // Read-only, as BuildKit's agent: listing keys and signing pass; adding, removing,
    // locking and extensions get a failure reply and never reach the agent.
    const auto type = static_cast<unsigned char>(request[4]);
    if (type == kRequestIdentities || type == kSignRequest) {
      if (!write_exact(agent.get(), request, stop) || !read_message(agent.get(), reply, stop) ||
          !write_exact(client.get(), reply, stop))
        return;
    } else if (!write_exact(client.get(), kFailure, stop)) {
      return;
    }
  }
}

SshKeyAgent::SshKeyAgent(const std::string& scratch_dir, const std::vector<std::string>& keys)
    : dir_(scratch_dir, "ssh-agent-" + std::to_string(::getpid()) + "-") {
  path_ = dir_.path() + "/agent.sock";
  unix_address(path_);  // throws if too long, before anything starts
  const std::string agent = find_program("ssh-agent");
  const std::string add = find_program("ssh-add");
  // Read here, as BuildKit reads them (at most 100 KiB), and given to ssh-add on its
  // stdin: it would refuse a key file others may read, which BuildKit accepts.
  std::vector<std::string> key_data;
  for (const auto& k : keys) {
    base::Fd fd = base::open_fd(k, O_RDONLY);
    std::string data = base::read_all(fd.get());
    if (data.size() > 100 * 1024) throw base::Error("--ssh: " + k + " is too big for a private key");
    key_data.push_back(std::move(data));
  }
  // ssh-agent runs a command beside itself and exits when that command is gone (it
  // checks every 10 seconds). The command, a shell, prints the agent's pid and waits for
  // the end of its stdin, whose other end only we hold: a builder that dies, even by
  // SIGKILL, takes the agent with it. (ssh-agent is setgid on Debian, so a parent-death
  // signal would not survive its execve.)
  int p[2];
  base::check_sys(::pipe2(p, O_CLOEXEC), "pipe2");
  base::Fd in_read(p[0]);
  hold_ = base::Fd(p[1]);
  Child c = start({agent, "-a", path_, "/bin/sh", "-c", "echo \"$SSH_AGENT_PID\"; read _"},
                  {"PATH=/usr/local/bin:/usr/bin:/bin"}, in_read.get());
  child_ = c.pid;
  in_read.reset();
  try {
    wait_agent(c.out.get());
    for (size_t i = 0; i < keys.size(); ++i) {
      int kp[2];
      base::check_sys(::pipe2(kp, O_CLOEXEC), "pipe2");
      base::Fd key_read(kp[0]), key_write(kp[1]);
      ::fcntl(key_write.get(), F_SETPIPE_SZ, 128 * 1024);  // the whole key fits: no deadlock
      Child a = start({add, "-q", "-"}, {"SSH_AUTH_SOCK=" + path_, "SSH_ASKPASS_REQUIRE=never"}, key_read.get());
      key_read.reset();
      try {
        base::write_all(key_write.get(), key_data[i]);
      } catch (const base::Error&) {  // ssh-add exited early: its output says why
      }
      key_write.reset();
      std::string out = base::read_all(a.out.get());
      if (int rc = wait_exit(a.pid); rc != 0)
        throw base::Error("--ssh: cannot add the key " + keys[i] + " (a private key without a passphrase): " +
                          std::string(base::trim(out)));
    }
  } catch (...) {
    stop();
    throw;
  }
}

void SshKeyAgent::wait_agent(int out) {
  // Lines before the pid are the agent's own messages; the end of output without one
  // means it did not start (they say why).
  std::string said, line;
  char ch;
  for (;;) {
    ssize_t r = ::read(out, &ch, 1);
    if (r < 0 && errno == EINTR) continue;
    if (r > 0 && ch != '\n') {
      line += ch;
      continue;
    }
    char* end = nullptr;
    long pid = std::strtol(line.c_str(), &end, 10);
    if (!line.empty() && end && *end == '\0' && pid > 0) {
      agent_ = static_cast<pid_t>(pid);
      return;
    }
    said += line + "\n";
    line.clear();
    if (r <= 0) throw base::Error("--ssh: ssh-agent did not start: " + std::string(base::trim(said)));
  }
}

SshKeyAgent::~SshKeyAgent() { stop(); }

void SshKeyAgent::stop() noexcept {
  if (agent_ > 0) ::kill(agent_, SIGTERM);  // it removes its socket and exits
  hold_.reset();                             // the shell reads the end of its input
  if (child_ > 0) wait_exit(child_);
  child_ = -1;
  if (agent_ > 0) {
    for (int i = 0; i < 200 && !process_ended(agent_); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    agent_ = -1;
  }
}

}  // namespace builder::ops
