// exec/network.cpp — the shared sandbox network (a network namespace held by an fd,
// NATed by a slirp4netns child) and the hosts/resolv.conf files of a container.
//
// Why one namespace per process: a RUN step must not pay for network setup (60 steps
// stay far under BuildKit's time), so the namespace and slirp4netns are made once and
// each container only setns()es into it. Why slirp4netns: user-mode NAT needs no bridge,
// veth, route or iptables rule on the host, so nothing there changes or can be left over.
#include "exec/network.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <future>
#include <sstream>
#include <thread>
#include <vector>

#include "base/error.h"
#include "base/fs.h"
#include "base/log.h"
#include "base/strings.h"

namespace builder::exec {

namespace {

using namespace std::chrono_literals;

constexpr const char* kResolvConf = "/etc/resolv.conf";
/// What systemd-resolved's stub (127.0.0.53) forwards to; BuildKit reads it instead.
constexpr const char* kResolvedConf = "/run/systemd/resolve/resolv.conf";
constexpr const char* kSlirpDns = "10.0.2.3";
/// How long slirp4netns may take to configure tap0, and to exit once asked to.
constexpr auto kReadyTimeout = 10s;
constexpr auto kExitTimeout = 2s;
/// The fds slirp4netns gets (fixed, so its argv is built before fork()).
constexpr int kChildNetnsFd = 3, kChildReadyFd = 4, kChildExitFd = 5, kChildErrFd = 6;
/// At most this much of slirp4netns's stderr is kept for an error message.
constexpr size_t kMaxStderr = 4096;

std::string read_file_or_empty(const char* path) {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  base::Fd f(fd);
  try {
    return base::read_all(f.get());
  } catch (const base::Error&) {
    return {};
  }
}

struct ResolvConf {
  std::vector<std::string> nameservers;  // valid IP addresses, in order
  std::vector<std::string> search;       // the last search/domain line
  std::vector<std::string> options;      // accumulated
  std::vector<std::string> other;        // unrecognised lines, verbatim
};

std::vector<std::string> fields_of(std::string_view line) {
  std::vector<std::string> out;
  std::istringstream in{std::string(line)};
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

bool valid_ip(const std::string& s) {
  unsigned char buf[sizeof(struct in6_addr)];
  return ::inet_pton(AF_INET, s.c_str(), buf) == 1 || ::inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

/// 127.0.0.0/8, ::1 and their IPv4-mapped forms.
bool loopback_ip(const std::string& s) {
  struct in_addr a4;
  if (::inet_pton(AF_INET, s.c_str(), &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  struct in6_addr a6;
  if (::inet_pton(AF_INET6, s.c_str(), &a6) != 1) return false;
  if (IN6_IS_ADDR_LOOPBACK(&a6)) return true;
  return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
}

ResolvConf parse_resolv_conf(std::string_view content) {
  ResolvConf rc;
  for (const std::string& raw : base::split(content, '\n')) {
    std::string_view line = raw;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    auto f = fields_of(line);
    if (f.empty()) continue;
    if (f[0] == "nameserver") {
      // A zone suffix (fe80::1%eth0) or a word is no address a container can use.
      if (f.size() >= 2 && valid_ip(f[1])) rc.nameservers.push_back(f[1]);
    } else if (f[0] == "search" || f[0] == "domain") {
      if (f.size() >= 2) rc.search.assign(f.begin() + 1, f.end());
    } else if (f[0] == "options") {
      rc.options.insert(rc.options.end(), f.begin() + 1, f.end());
    } else {
      rc.other.emplace_back(line);
    }
  }
  return rc;
}

/// The host file a container's resolv.conf is derived from: /etc/resolv.conf, or
/// systemd-resolved's upstream list when the stub 127.0.0.53 is the only nameserver
/// (unreachable from another namespace), as BuildKit chooses.
std::string host_resolv_source(bool host_network) {
  std::string main = read_file_or_empty(kResolvConf);
  if (host_network) return main;
  auto ns = parse_resolv_conf(main).nameservers;
  if (ns.size() == 1 && ns[0] == "127.0.0.53") return read_file_or_empty(kResolvedConf);
  return main;
}

std::string search_and_options(const ResolvConf& rc) {
  std::string out;
  if (!rc.search.empty()) out += "search " + base::join(rc.search, " ") + "\n";
  if (!rc.options.empty()) out += "options " + base::join(rc.options, " ") + "\n";
  return out;
}

/// An fd numbered 10 or above (O_CLOEXEC), so that the child's dup2()s onto 0-6 never
/// find a source among their targets.
base::Fd high_fd(base::Fd fd) {
  int n = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 10);
  if (n < 0) throw base::SysError(errno, "network: fcntl(F_DUPFD_CLOEXEC)");
  return base::Fd(n);
}

std::pair<base::Fd, base::Fd> make_pipe(const char* what) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) < 0) throw base::SysError(errno, std::string("network: pipe for ") + what);
  base::Fd r(p[0]), w(p[1]);
  return {high_fd(std::move(r)), high_fd(std::move(w))};
}

/// Makes the network namespace: a short-lived thread unshares its own network
/// namespace (allowed in a multithreaded process, unlike a mount or user namespace),
/// brings lo up from inside and opens the namespace; the namespace outlives the thread
/// through the fd.
base::Fd make_netns() {
  int fd = -1, err = 0;
  const char* step = nullptr;
  std::thread t([&] {
    if (::unshare(CLONE_NEWNET) < 0) {
      err = errno, step = "unshare(CLONE_NEWNET)";
      return;
    }
    fd = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      err = errno, step = "open /proc/thread-self/ns/net";
      return;
    }
    int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
      err = errno, step = "socket (for lo)";
      return;
    }
    struct ifreq ifr{};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    if (::ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
      err = errno, step = "ioctl(SIOCGIFFLAGS) lo";
    } else {
      ifr.ifr_flags |= IFF_UP;
      if (::ioctl(s, SIOCSIFFLAGS, &ifr) < 0) err = errno, step = "ioctl(SIOCSIFFLAGS) lo up";
    }
    ::close(s);
  });
  t.join();
  base::Fd ns(fd);
  if (step) throw base::SysError(err, std::string("network: ") + step);
  return ns;
}

}  // namespace

namespace detail {

/// One slirp4netns process and the thread that is its parent. The thread exists because
/// PR_SET_PDEATHSIG fires when the *thread* that forked the child ends, and get() may
/// run on any pool thread: this one lives exactly as long as slirp4netns, reads its
/// stderr (kept for an error message, then logged at debug level) and reaps it.
class Slirp {
  struct ChildFds {
    int netns, ready, exit, err, exec, null;
  };

 public:
  /// Starts slirp4netns on `netns` and waits until tap0 is configured. Throws
  /// base::Error with the reason (and slirp4netns's stderr) if it does not get there.
  explicit Slirp(int netns) {
    std::string bin = base::find_program("slirp4netns");
    if (bin.empty())
      throw base::Error("slirp4netns not found in PATH (install the slirp4netns package)");

    // Everything the child needs, prepared before fork(): it may only make system calls.
    std::vector<std::string> args = {
        bin,
        "--configure",
        "--mtu=65520",
        "--disable-host-loopback",
        // Its own mount namespace with nothing but what it needs, all capabilities
        // but CAP_NET_BIND_SERVICE dropped, and a seccomp filter: it parses packets.
        "--enable-sandbox",
        "--enable-seccomp",
        "--netns-type=path",
        "--exit-fd=" + std::to_string(kChildExitFd),
        "--ready-fd=" + std::to_string(kChildReadyFd),
        "/proc/self/fd/" + std::to_string(kChildNetnsFd),
        "tap0",
    };
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    char env_path[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    char* envp[] = {env_path, nullptr};

    base::Fd netns_dup(::fcntl(netns, F_DUPFD_CLOEXEC, 10));
    if (!netns_dup) throw base::SysError(errno, "network: dup netns fd");
    auto [ready_r, ready_w] = make_pipe("ready");
    auto [exit_r, exit_w] = make_pipe("exit");
    auto [err_r, err_w] = make_pipe("stderr");
    auto [exec_r, exec_w] = make_pipe("exec status");
    base::Fd null_fd = high_fd(base::open_fd("/dev/null", O_RDWR));
    exit_w_ = std::move(exit_w);
    err_r_ = std::move(err_r);

    ChildFds cf{netns_dup.get(), ready_w.get(), exit_r.get(), err_w.get(), exec_w.get(), null_fd.get()};
    std::promise<int> started;  // 0, or the errno of fork() or execve()
    auto started_f = started.get_future();
    thread_ = std::thread([this, cf, argv = argv.data(), envp = &envp[0], started = std::move(started),
                           exec_r = std::move(exec_r), exec_w = std::move(exec_w)]() mutable {
      sigset_t all;
      sigfillset(&all);
      ::pthread_sigmask(SIG_SETMASK, &all, nullptr);  // signals are for other threads
      pid_t pid = ::fork();
      if (pid == 0) child(cf, argv, envp);
      if (pid < 0) {
        started.set_value(errno);
        return;
      }
      {
        std::lock_guard lk(mu_);
        pid_ = pid;
      }
      // The exec status pipe closes (CLOEXEC) on a successful execve, or carries errno.
      exec_w.reset();
      int exec_err = 0;
      ssize_t n;
      do n = ::read(exec_r.get(), &exec_err, sizeof exec_err);
      while (n < 0 && errno == EINTR);
      exec_r.reset();
      started.set_value(n == sizeof exec_err ? exec_err : 0);
      pump_and_reap();
    });
    // fork() is done once the result is in: the child has its copies of these.
    int start_err = started_f.get();
    ready_w.reset();
    exit_r.reset();
    err_w.reset();
    netns_dup.reset();
    null_fd.reset();
    if (start_err) {
      stop();
      throw base::SysError(start_err, "network: start slirp4netns", bin);
    }

    // Ready: slirp4netns writes "1" once tap0 is up and configured. EOF: it died.
    std::string why;
    struct pollfd pfd{ready_r.get(), POLLIN, 0};
    auto deadline = std::chrono::steady_clock::now() + kReadyTimeout;
    for (;;) {
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        why = "timed out after " + std::to_string(kReadyTimeout.count()) + " s waiting for it";
        break;
      }
      int r = ::poll(&pfd, 1, static_cast<int>(left.count()));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) {
        why = std::string("poll: ") + std::strerror(errno);
        break;
      }
      if (r == 0) continue;
      char c = 0;
      ssize_t n = ::read(ready_r.get(), &c, 1);
      if (n < 0 && errno == EINTR) continue;
      if (n == 1 && c == '1') break;
      why = "it exited before configuring tap0";
      break;
    }
    if (!why.empty()) {
      stop();
      std::string msg = "slirp4netns failed: " + why + " (" + describe_status() + ")";
      std::string text = stderr_text();
      if (!text.empty()) msg += ": " + std::string(base::trim(text));
      throw base::Error(msg);
    }
    std::lock_guard lk(mu_);
    ready_ = true;
  }

  ~Slirp() { stop(); }
  Slirp(const Slirp&) = delete;
  Slirp& operator=(const Slirp&) = delete;

  pid_t pid() {
    std::lock_guard lk(mu_);
    return reaped_ ? -1 : pid_;
  }
  bool exited() {
    std::lock_guard lk(mu_);
    return reaped_;
  }
  std::string describe_status() {
    std::lock_guard lk(mu_);
    if (!reaped_) return "running";
    if (WIFEXITED(status_)) return "exit status " + std::to_string(WEXITSTATUS(status_));
    if (WIFSIGNALED(status_)) return std::string("killed by signal ") + ::strsignal(WTERMSIG(status_));
    return "status " + std::to_string(status_);
  }

  /// Asks slirp4netns to exit (its exit fd reads EOF), SIGKILLs it if it does not within
  /// kExitTimeout, and waits for the thread that reaps it. Never throws.
  void stop() noexcept {
    std::unique_lock lk(mu_);
    stopping_ = true;
    exit_w_.reset();
    if (!cv_.wait_for(lk, kExitTimeout, [&] { return reaped_ || pid_ < 0; })) {
      // Still a child of ours (unreaped, even if a zombie): its pid cannot be reused.
      ::kill(pid_, SIGKILL);
    }
    lk.unlock();
    if (thread_.joinable()) thread_.join();
  }

  std::string stderr_text() {
    std::lock_guard lk(mu_);
    return stderr_;
  }

 private:
  /// In the forked child: only async-signal-safe system calls until execve.
  [[noreturn]] static void child(const ChildFds& cf, char** argv, char** envp) {
    // Dies with the thread that forked it (which lives as long as builder wants it).
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) fail(cf.exec);
    // Its own session: a Ctrl-C at the terminal is for builder, which then shuts it down.
    ::setsid();
    struct sigaction dfl{};
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; ++s) ::sigaction(s, &dfl, nullptr);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (::dup2(cf.null, 0) < 0 || ::dup2(cf.err, 1) < 0 || ::dup2(cf.err, 2) < 0 ||
        ::dup2(cf.netns, kChildNetnsFd) < 0 || ::dup2(cf.ready, kChildReadyFd) < 0 ||
        ::dup2(cf.exit, kChildExitFd) < 0 || ::dup3(cf.exec, kChildErrFd, O_CLOEXEC) < 0)
      fail(cf.exec);
    // Nothing else of builder's (another thread's pipe without O_CLOEXEC would keep a
    // container's output open forever).
    if (::syscall(SYS_close_range, kChildErrFd + 1, ~0U, 0) < 0)
      for (int fd = kChildErrFd + 1; fd < 4096; ++fd) ::close(fd);
    ::execve(argv[0], argv, envp);
    fail(kChildErrFd);
  }
  [[noreturn]] static void fail(int exec_fd) {
    int e = errno;
    ssize_t unused = ::write(exec_fd, &e, sizeof e);
    (void)unused;
    ::_exit(127);
  }

  /// On the parent thread: collect stderr until slirp4netns closes it (it exited), then
  /// reap it. An unexpected exit is logged; get() starts a new one.
  void pump_and_reap() {
    char buf[1024];
    for (;;) {
      ssize_t n = ::read(err_r_.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      std::lock_guard lk(mu_);
      if (!ready_) {
        size_t room = kMaxStderr - std::min(kMaxStderr, stderr_.size());
        stderr_.append(buf, std::min(static_cast<size_t>(n), room));
      } else if (base::debug_enabled()) {
        base::log_debug("slirp4netns: " + std::string(base::trim(std::string_view(buf, n))));
      }
    }
    // Wait without reaping first: while it is an unreaped zombie stop() may still
    // kill() its pid safely.
    siginfo_t info{};
    while (::waitid(P_PID, pid_, &info, WEXITED | WNOWAIT) < 0 && errno == EINTR) {
    }
    int status = 0;
    bool expected;
    {
      std::lock_guard lk(mu_);
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      status_ = status;
      reaped_ = true;
      expected = stopping_ || !ready_;
    }
    cv_.notify_all();
    if (!expected) base::log_warn("slirp4netns (the sandbox network) ended: " + describe_status());
  }

  std::thread thread_;
  base::Fd exit_w_;  // closing it ends slirp4netns
  base::Fd err_r_;
  std::mutex mu_;
  std::condition_variable cv_;
  pid_t pid_ = -1;
  bool ready_ = false;
  bool stopping_ = false;
  bool reaped_ = false;
  int status_ = 0;
  std::string stderr_;
};

}  // namespace detail

SharedNetwork& SharedNetwork::current() noexcept {
  static SharedNetwork net;
  return net;
}

SharedNetwork& SharedNetwork::get() {
  SharedNetwork& net = current();
  std::lock_guard lk(net.mu_);
  if (net.failure_) throw base::Error(*net.failure_);
  if (!net.slirp_ || net.slirp_->exited()) {
    try {
      net.start();
    } catch (const std::exception& e) {
      // Not only base::Error (std::thread may throw): the caller falls back on Error.
      auto* err = dynamic_cast<const base::Error*>(&e);
      net.failure_ = err ? err->message() : std::string("sandbox network: ") + e.what();
      net.slirp_.reset();
      net.netns_.reset();
      throw base::Error(*net.failure_);
    }
  }
  return net;
}

void SharedNetwork::start() {
  if (slirp_) {
    // It died (the reaper logged why): tap0 went with it; a new one makes it again in
    // the same namespace, so containers already in it get their network back.
    slirp_.reset();
  }
  if (!netns_) {
    // Once per namespace: containers may be reading it while a dead slirp4netns is
    // replaced.
    auto host = parse_resolv_conf(host_resolv_source(false));
    resolv_conf_ = std::string("nameserver ") + kSlirpDns + "\n" + search_and_options(host);
    netns_ = make_netns();
  }
  owner_pid_ = ::getpid();
  slirp_ = std::make_unique<detail::Slirp>(netns_.get());
}

void SharedNetwork::shutdown() noexcept {
  // A forked child that runs exit() (and so this, from the static destructor) must not
  // close, kill or wait for what belongs to its parent.
  if (owner_pid_ && ::getpid() != owner_pid_) return;
  std::lock_guard lk(mu_);
  slirp_.reset();
  netns_.reset();
  failure_.reset();
}

SharedNetwork::~SharedNetwork() { shutdown(); }

std::string hosts_file(const std::string& hostname) {
  for (unsigned char c : hostname)
    if (c <= ' ' || c == 0x7f || c == '#')
      throw base::Error("hostname `" + hostname +
                        "` cannot be written to /etc/hosts (whitespace, control or '#')");
  std::string h = hostname.empty() || hostname == "localhost" ? "" : " " + hostname;
  return "127.0.0.1\tlocalhost" + h + "\n::1\tlocalhost ip6-localhost ip6-loopback\n";
}

std::string resolv_conf_for(std::string_view host_content, bool host_network) {
  ResolvConf rc = parse_resolv_conf(host_content);
  if (!host_network) std::erase_if(rc.nameservers, loopback_ip);
  if (rc.nameservers.empty())
    rc.nameservers = {"8.8.8.8", "8.8.4.4", "2001:4860:4860::8888", "2001:4860:4860::8844"};
  std::string out;
  for (const auto& ns : rc.nameservers) out += "nameserver " + ns + "\n";
  out += search_and_options(rc);
  for (const auto& o : rc.other) out += o + "\n";
  return out;
}

std::string host_resolv_conf(bool host_network) {
  return resolv_conf_for(host_resolv_source(host_network), host_network);
}

}  // namespace builder::exec
