// tests/e2e/registry_util.h — registries for end-to-end tests: Debian's docker-registry
// (distribution v2.8) started on 127.0.0.1 with no auth, htpasswd basic auth or token auth
// (testdata/e2e/registry/token_server.py), and the adversarial fake registry
// (testdata/e2e/registry/fake_registry.py). Each owns a temp dir and its processes; the
// destructor kills them and removes the dir, so nothing is left on the host. Header-only,
// for any e2e test (registry, remote cache, exporters):
//
//   builder::e2e::TestRegistry reg(builder::e2e::RegistryAuth::Basic);
//   if (!reg.started()) return;              // skipped (tool missing) or failed (reported)
//   root.builder({"push", reg.ref("x/app:1")});
//
// Tests that use credentials should give builder its own DOCKER_CONFIG (DockerConfigDir,
// builder_env) so the host's ~/.docker is neither read nor written.
#pragma once

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <chrono>
#include <thread>

#include "e2e_util.h"

namespace builder::e2e {

/// A temp dir under /tmp (`builder-<tag>-XXXXXX`), removed with everything in it on destruction.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& tag) {
    std::string tmpl = "/tmp/builder-" + tag + "-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data())) path_ = buf.data();
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  ~ScratchDir() {
    if (path_.empty()) return;
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  bool ok() const { return !path_.empty(); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

/// A child process running in the background, its stdout and stderr appended to `log`.
/// It gets SIGKILL if the test process dies (PR_SET_PDEATHSIG), and is killed and reaped
/// by the destructor (or stop()).
class BackgroundProcess {
 public:
  BackgroundProcess() = default;
  BackgroundProcess(const BackgroundProcess&) = delete;
  BackgroundProcess& operator=(const BackgroundProcess&) = delete;
  ~BackgroundProcess() { stop(); }

  /// Starts argv (looked up in PATH when argv[0] has no slash). False if fork failed.
  bool start(const std::vector<std::string>& argv, const fs::path& log) {
    stop();
    std::vector<char*> cargv;
    for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
    cargv.push_back(nullptr);
    int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) return false;
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) _exit(125);  // the parent died before prctl
      int devnull = ::open("/dev/null", O_RDONLY);
      if (devnull >= 0) ::dup2(devnull, 0);
      ::dup2(log_fd, 1);
      ::dup2(log_fd, 2);
      ::execvp(cargv[0], cargv.data());
      _exit(127);
    }
    ::close(log_fd);
    if (pid < 0) return false;
    pid_ = pid;
    return true;
  }

  /// True while the child has not exited.
  bool alive() {
    if (pid_ <= 0) return false;
    int ws = 0;
    pid_t r = ::waitpid(pid_, &ws, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return false;
    }
    return r == 0;
  }

  /// SIGKILL and reap. Test servers hold nothing that needs a graceful shutdown.
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int ws = 0;
    while (::waitpid(pid_, &ws, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }

  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

/// A TCP port on 127.0.0.1 that was free a moment ago (bind to 0, read it, close).
inline int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

/// The status code of `GET path` on ip:port (IPv4) over plain HTTP/1.0, or -1 when nothing
/// answers. Enough to wait for a server to listen (a TLS server answers it with 400); tests
/// use builder or skopeo for real traffic.
inline int http_get_status(int port, const std::string& path, const std::string& ip = "127.0.0.1") {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  if (::inet_pton(AF_INET, ip.c_str(), &a.sin_addr) != 1) {
    ::close(fd);
    return -1;
  }
  a.sin_port = htons(static_cast<uint16_t>(port));
  int status = -1;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    std::string req = "GET " + path + " HTTP/1.0\r\nHost: " + ip + ":" + std::to_string(port) + "\r\n\r\n";
    if (::write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
      char buf[64] = {};
      ssize_t n = ::read(fd, buf, sizeof buf - 1);
      // "HTTP/1.1 200 OK"
      if (n >= 12 && std::string(buf, 5) == "HTTP/") status = std::atoi(buf + 9);
    }
  }
  ::close(fd);
  return status;
}

/// Polls `ready` every 20 ms until it is true, `proc` dies, or `timeout` passes.
template <class Pred>
bool wait_until(Pred ready, BackgroundProcess& proc, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (ready()) return true;
    if (!proc.alive()) return ready();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return ready();
}

/// The Python 3 that has Debian's python3-jwt and python3-cryptography (/usr/bin/python3:
/// a pyenv or venv python3 earlier in PATH usually lacks them). Empty if none has.
inline const std::string& python_with_jwt() {
  static const std::string py = [] {
    for (std::string cand : {"/usr/bin/python3", "python3"})
      if (run_process({cand, "-c", "import jwt, cryptography"}).status == 0) return cand;
    return std::string();
  }();
  return py;
}

/// A Python 3 for the standard-library-only scripts.
inline std::string python3() { return fs::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3"; }

/// Reads the port a server wrote to `port_file` once listening (0 if not there yet).
inline int read_port_file(const fs::path& port_file) {
  if (!fs::exists(port_file)) return 0;
  return std::atoi(slurp(port_file).c_str());
}

/// `template` with every `@KEY@` replaced by its value.
inline std::string fill_template(std::string text, const std::map<std::string, std::string>& vars) {
  for (const auto& [k, v] : vars) {
    std::string key = "@" + k + "@";
    for (size_t pos = text.find(key); pos != std::string::npos; pos = text.find(key, pos + v.size()))
      text.replace(pos, key.size(), v);
  }
  return text;
}

enum class RegistryAuth {
  None,   ///< anyone may pull and push
  Basic,  ///< htpasswd (bcrypt) basic auth: user() / password()
  Token,  ///< Bearer token auth through token_server.py, which checks user() / password()
};

/// The first non-loopback IPv4 address of this host ("" if it has none): a registry
/// there is not loopback to builder, so its --insecure-registry rules apply as to a
/// remote one, while the traffic stays on this machine.
inline std::string non_loopback_ipv4() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return {};
  std::string found;
  for (ifaddrs* i = list; i && found.empty(); i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || (i->ifa_flags & IFF_LOOPBACK) || !(i->ifa_flags & IFF_UP))
      continue;
    char buf[INET_ADDRSTRLEN] = {};
    if (::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, buf, sizeof buf)) found = buf;
  }
  ::freeifaddrs(list);
  return found;
}

/// Where a TestRegistry listens and how.
struct RegistryListen {
  std::string address = "127.0.0.1";  ///< an IPv4 address of this host
  bool tls = false;                   ///< https with a fresh self-signed certificate
};

/// Debian's docker-registry on 127.0.0.1:<free port> with its own storage, in a temp dir.
/// Construct it, then check started(): false means skipped (docker-registry, htpasswd,
/// openssl or python3-jwt missing: a MESSAGE, or a FAIL under CI) or failed to start (a
/// FAIL_CHECK with its log). Not copyable; the destructor kills the registry (and token
/// server) and removes the temp dir, storage included.
class TestRegistry {
 public:
  explicit TestRegistry(RegistryAuth auth = RegistryAuth::None, std::string user = "builder-user",
                        std::string password = "s3cret-Pass")
      : auth_(auth), user_(std::move(user)), password_(std::move(password)), dir_("registry") {
    if (!require_tool("docker-registry")) return;
    if (auth_ == RegistryAuth::Basic && !require_tool("htpasswd")) return;
    if (auth_ == RegistryAuth::Token) {
      if (!require_tool("openssl")) return;
      if (python_with_jwt().empty()) {
        if (std::getenv("CI")) FAIL_CHECK("python3-jwt/python3-cryptography missing, and CI must run this check");
        else MESSAGE("python3-jwt or python3-cryptography not installed: skipped");
        return;
      }
    }
    REQUIRE_MESSAGE(dir_.ok(), "mkdtemp failed");
    started_ = start();
  }
  /// A registry without auth at `listen` (an address and/or TLS with a self-signed
  /// certificate for that address, made by openssl).
  explicit TestRegistry(RegistryListen listen)
      : auth_(RegistryAuth::None), user_(), password_(), dir_("registry"), listen_(std::move(listen)) {
    if (!require_tool("docker-registry")) return;
    if (listen_.tls && !require_tool("openssl")) return;
    REQUIRE_MESSAGE(dir_.ok(), "mkdtemp failed");
    started_ = start();
  }
  TestRegistry(const TestRegistry&) = delete;
  TestRegistry& operator=(const TestRegistry&) = delete;
  ~TestRegistry() {
    registry_.stop();
    token_server_.stop();
  }

  /// True when the registry answers on host(); false when skipped or failed (reported).
  bool started() const { return started_; }
  /// "127.0.0.1:PORT" (or the RegistryListen address).
  const std::string& host() const { return host_; }
  /// host() + "/" + repo_and_tag, e.g. ref("x/app:1") = "127.0.0.1:PORT/x/app:1".
  std::string ref(const std::string& repo_and_tag) const { return host_ + "/" + repo_and_tag; }
  const std::string& user() const { return user_; }
  const std::string& password() const { return password_; }
  RegistryAuth auth() const { return auth_; }
  /// The registry's log (and, with token auth, the token server's), for failure messages.
  std::string log() const {
    std::string s = "--- docker-registry log ---\n" + tail(dir_.path() / "registry.log");
    if (auth_ == RegistryAuth::Token)
      s += "--- token server log ---\n" + tail(dir_.path() / "token-server.log") + "--- tokens issued ---\n" +
           token_log();
    return s;
  }
  /// The registry's whole log: its access log lines (`"PATCH /v2/x/blobs/uploads/... HTTP/1.1" 202`)
  /// and its own messages, to count requests.
  std::string registry_log() const { return slurp(dir_.path() / "registry.log"); }
  /// Token auth: one line per token request, "GET|POST user=U|- scope=S status=N".
  std::string token_log() const { return slurp(dir_.path() / "tokens.log"); }
  /// The registry's storage root (blobs under docker/registry/v2/blobs).
  fs::path storage() const { return dir_.path() / "storage"; }

 private:
  static std::string tail(const fs::path& p) {
    std::string s = slurp(p);
    return s.size() > 12000 ? "...\n" + s.substr(s.size() - 12000) : s;
  }

  bool fail(const std::string& what) {
    FAIL_CHECK("test registry: " << what << "\n" << log());
    return false;
  }

  bool start() {
    const fs::path d = dir_.path();
    fs::create_directories(d / "storage");
    std::map<std::string, std::string> vars{{"STORAGE", (d / "storage").string()}};
    std::string tmpl = "config-none.yml";
    if (listen_.tls) {
      tmpl = "config-tls.yml";
      Result c = run_process({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                              "/CN=" + listen_.address, "-addext", "subjectAltName=IP:" + listen_.address, "-keyout",
                              (d / "tls.key").string(), "-out", (d / "tls.crt").string()});
      if (c.status != 0) return fail("openssl req failed: " + c.describe());
      vars["CERT"] = (d / "tls.crt").string();
      vars["KEY"] = (d / "tls.key").string();
    }
    if (auth_ == RegistryAuth::Basic) {
      tmpl = "config-htpasswd.yml";
      Result h = run_process({"htpasswd", "-Bbn", user_, password_});
      if (h.status != 0) return fail("htpasswd failed: " + h.describe());
      write_file(d / "htpasswd", h.out);
      vars["HTPASSWD"] = (d / "htpasswd").string();
    } else if (auth_ == RegistryAuth::Token) {
      tmpl = "config-token.yml";
      if (!start_token_server()) return false;
      vars["REALM"] = "http://127.0.0.1:" + std::to_string(token_port_) + "/token";
      vars["CERT"] = (d / "token.crt").string();
    }
    const std::string config_text = slurp(testdata("e2e/registry/" + tmpl));
    if (config_text.empty()) return fail("cannot read testdata/e2e/registry/" + tmpl);
    // The port is picked before the registry binds it; retry if another process took it.
    for (int attempt = 0; attempt < 3; ++attempt) {
      int port = free_port();
      if (port <= 0) return fail("no free port");
      host_ = listen_.address + ":" + std::to_string(port);
      vars["ADDR"] = host_;
      write_file(d / "config.yml", fill_template(config_text, vars));
      if (!registry_.start({"docker-registry", "serve", (d / "config.yml").string()}, d / "registry.log"))
        return fail("fork failed");
      // Any HTTP answer to /v2/ (200, or 401 with auth) means it is serving.
      bool up = wait_until([&] { return http_get_status(port, "/v2/", listen_.address) > 0; }, registry_,
                           std::chrono::seconds(15));
      if (up && registry_.alive()) return true;
      registry_.stop();
      if (slurp(d / "registry.log").find("address already in use") == std::string::npos)
        return fail("docker-registry did not start on " + host_);
    }
    return fail("docker-registry: no port could be bound");
  }

  bool start_token_server() {
    const fs::path d = dir_.path();
    // A fresh RSA key and self-signed certificate per registry: the registry trusts the
    // certificate (rootcertbundle); each token carries it in its x5c header.
    Result c = run_process({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                            "/CN=builder-e2e-token-issuer", "-keyout", (d / "token.key").string(), "-out",
                            (d / "token.crt").string()});
    if (c.status != 0) return fail("openssl req failed: " + c.describe());
    const fs::path port_file = d / "token.port";
    if (!token_server_.start({python_with_jwt(), testdata("e2e/registry/token_server.py"), "--port-file",
                              port_file.string(), "--key", (d / "token.key").string(), "--cert",
                              (d / "token.crt").string(), "--issuer", "builder-e2e-token-issuer", "--user",
                              user_, "--password", password_, "--log", (d / "tokens.log").string()},
                             d / "token-server.log"))
      return fail("fork failed");
    if (!wait_until([&] { return read_port_file(port_file) > 0; }, token_server_, std::chrono::seconds(15)))
      return fail("token server did not start");
    token_port_ = read_port_file(port_file);
    return true;
  }

  RegistryAuth auth_;
  std::string user_, password_;
  ScratchDir dir_;
  BackgroundProcess registry_, token_server_;
  RegistryListen listen_;
  std::string host_;
  int token_port_ = 0;
  bool started_ = false;
};

/// testdata/e2e/registry/fake_registry.py on 127.0.0.1:<port>, redirecting blobs of
/// `redirect/app` to a second listener on `redirect_host` (see the script for the
/// repository names and what each does wrong). With a user, every request needs basic auth.
class FakeRegistry {
 public:
  explicit FakeRegistry(std::string user = "", std::string password = "",
                        std::string redirect_host = "127.0.0.2")
      : user_(std::move(user)), password_(std::move(password)), dir_("fake-registry") {
    REQUIRE_MESSAGE(dir_.ok(), "mkdtemp failed");
    const fs::path d = dir_.path();
    std::vector<std::string> argv{python3(), testdata("e2e/registry/fake_registry.py"), "--port-file",
                                  (d / "port").string(), "--record", (d / "record.log").string(),
                                  "--redirect-host", redirect_host};
    if (!user_.empty()) {
      argv.insert(argv.end(), {"--user", user_, "--password", password_});
    }
    if (!proc_.start(argv, d / "server.log")) {
      FAIL_CHECK("fake registry: fork failed");
      return;
    }
    if (!wait_until([&] { return read_port_file(d / "port") > 0; }, proc_, std::chrono::seconds(15))) {
      FAIL_CHECK("fake registry did not start:\n" << slurp(d / "server.log"));
      return;
    }
    host_ = "127.0.0.1:" + std::to_string(read_port_file(d / "port"));
  }
  FakeRegistry(const FakeRegistry&) = delete;
  FakeRegistry& operator=(const FakeRegistry&) = delete;
  ~FakeRegistry() { proc_.stop(); }

  bool started() const { return !host_.empty(); }
  const std::string& host() const { return host_; }
  std::string ref(const std::string& repo_and_tag) const { return host_ + "/" + repo_and_tag; }
  const std::string& user() const { return user_; }
  const std::string& password() const { return password_; }
  /// The event record: "main|redirect METHOD PATH auth=yes|no" and "endless PATH BYTES" lines.
  std::string record() const { return slurp(dir_.path() / "record.log"); }
  /// The server's access log.
  std::string log() const { return slurp(dir_.path() / "server.log"); }

 private:
  std::string user_, password_;
  ScratchDir dir_;
  BackgroundProcess proc_;
  std::string host_;
};

/// A DOCKER_CONFIG directory of its own (config.json lives in it), removed on destruction.
class DockerConfigDir {
 public:
  DockerConfigDir() : dir_("docker-config") { REQUIRE_MESSAGE(dir_.ok(), "mkdtemp failed"); }
  const fs::path& path() const { return dir_.path(); }
  fs::path config_json() const { return dir_.path() / "config.json"; }
  /// "DOCKER_CONFIG=<dir>", for builder_env.
  std::string env() const { return "DOCKER_CONFIG=" + dir_.path().string(); }

 private:
  ScratchDir dir_;
};

/// `builder --root <root> args...` with extra environment entries ("K=V", through env(1)),
/// in root.work(), with `input` on stdin.
inline Result builder_env(const TestRoot& root, const std::vector<std::string>& env,
                          const std::vector<std::string>& args, const std::string& input = "") {
  std::vector<std::string> argv{"env"};
  argv.insert(argv.end(), env.begin(), env.end());
  argv.insert(argv.end(), {test::builder_binary(), "--root", root.store().string()});
  argv.insert(argv.end(), args.begin(), args.end());
  fs::path in = root.dir() / "stdin";
  write_file(in, input);
  return run_process(argv, root.work().string(), in.string());
}

}  // namespace builder::e2e
