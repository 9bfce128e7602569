// tests/exec/network_test.cpp — the shared sandbox network (slirp4netns NAT) seen from
// inside: tap0, the default route, NAT to the host's external address but not to its
// loopback; its cleanup and restart; and the hosts/resolv.conf files. The network
// cases need root and slirp4netns (label `sandbox`).
#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/fd.h"
#include "base/fs.h"
#include "base/strings.h"
#include "base/temp_dir.h"
#include "exec/network.h"
#include "test_util.h"

namespace fs = std::filesystem;
using builder::base::Fd;
using builder::exec::SharedNetwork;

namespace {

/// The network cases need root and slirp4netns; on CI both must be there.
bool have_network_prereqs() {
  if (!builder::test::have_root()) return false;
  for (const auto& dir : builder::base::split(std::getenv("PATH") ? std::getenv("PATH") : "", ':'))
    if (!dir.empty() && ::access((dir + "/slirp4netns").c_str(), X_OK) == 0) return true;
  if (std::getenv("CI")) {
    FAIL("slirp4netns is not installed (scripts/setup installs it) and CI must run this test");
    return false;
  }
  MESSAGE("skipped: slirp4netns is not installed");
  return false;
}

/// A TCP listener on addr:<ephemeral port>.
struct Listener {
  Fd fd;
  uint16_t port = 0;
  explicit Listener(const char* addr) {
    fd = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(fd.valid());
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    REQUIRE(::inet_pton(AF_INET, addr, &sa.sin_addr) == 1);
    REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    REQUIRE(::listen(fd.get(), 8) == 0);
    socklen_t len = sizeof sa;
    REQUIRE(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&sa), &len) == 0);
    port = ntohs(sa.sin_port);
  }
  /// A connection waiting within `ms`, or an invalid Fd.
  Fd accept(int ms) {
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, ms) != 1) return Fd();
    return Fd(::accept4(fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
  }
};

/// The IPv4 address of the interface of the host's default route (or failing that, of
/// any non-loopback interface that is up): where a container should reach the host.
std::string host_external_ip() {
  std::string iface;
  for (const auto& line : builder::base::split(builder::base::read_file("/proc/net/route"), '\n')) {
    auto f = builder::base::split(line, '\t');
    if (f.size() > 2 && f[1] == "00000000") {
      iface = std::string(builder::base::trim(f[0]));
      break;
    }
  }
  ifaddrs* ifs = nullptr;
  REQUIRE(::getifaddrs(&ifs) == 0);
  std::string best, any;
  for (ifaddrs* i = ifs; i; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || (i->ifa_flags & IFF_LOOPBACK) ||
        !(i->ifa_flags & IFF_UP))
      continue;
    char buf[INET_ADDRSTRLEN];
    ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, buf, sizeof buf);
    if (iface == i->ifa_name && best.empty()) best = buf;
    if (any.empty()) any = buf;
  }
  ::freeifaddrs(ifs);
  return best.empty() ? any : best;
}

/// What a forked child sees after setns() into the shared network. Plain data: the
/// child only makes system calls.
struct Probe {
  int setns_err = -1;
  int64_t setns_ns = 0;       // the first setns()
  int64_t setns_loop_ns = 0;  // 2000 more, alternating with the original namespace
  int tap_err = -1;
  uint32_t tap_addr = 0;  // network order
  int tap_mtu = 0;
  int loopback_err = -1;  // connect to 10.0.2.2:<loopback port>
  int external_err = -1;  // connect to <host ip>:<external port>, then send "ping"
  char route[4096] = {};
  int route_len = 0;
};

int64_t now_ns() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

/// connect() with a 3 s limit; 0 or the errno (ETIMEDOUT).
int connect_to(in_addr_t addr, uint16_t port, bool send_ping) {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s < 0) return errno;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = addr;
  sa.sin_port = htons(port);
  int err = 0;
  if (::connect(s, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) {
    err = errno;
    if (err == EINPROGRESS) {
      pollfd p{s, POLLOUT, 0};
      if (::poll(&p, 1, 3000) != 1) {
        err = ETIMEDOUT;
      } else {
        socklen_t len = sizeof err;
        ::getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len);
      }
    }
  }
  if (err == 0 && send_ping) {
    int fl = ::fcntl(s, F_GETFL);
    ::fcntl(s, F_SETFL, fl & ~O_NONBLOCK);
    if (::write(s, "ping", 4) != 4) err = errno;
  }
  ::close(s);
  return err;
}

Probe probe(int netns_fd, uint16_t loopback_port, const std::string& external_ip, uint16_t external_port) {
  in_addr ext{}, gw{};
  REQUIRE(::inet_pton(AF_INET, external_ip.c_str(), &ext) == 1);
  REQUIRE(::inet_pton(AF_INET, "10.0.2.2", &gw) == 1);
  int p[2];
  REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
  Fd rd(p[0]), wr(p[1]);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    Probe r;
    int orig = ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    int64_t t0 = now_ns();
    r.setns_err = ::setns(netns_fd, CLONE_NEWNET) == 0 ? 0 : errno;
    r.setns_ns = now_ns() - t0;
    if (r.setns_err == 0) {
      t0 = now_ns();
      for (int i = 0; i < 1000; ++i) {
        ::setns(orig, CLONE_NEWNET);
        ::setns(netns_fd, CLONE_NEWNET);
      }
      r.setns_loop_ns = now_ns() - t0;
      int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      ifreq ifr{};
      std::strncpy(ifr.ifr_name, "tap0", IFNAMSIZ - 1);
      r.tap_err = ::ioctl(s, SIOCGIFADDR, &ifr) == 0 ? 0 : errno;
      if (r.tap_err == 0) r.tap_addr = reinterpret_cast<sockaddr_in*>(&ifr.ifr_addr)->sin_addr.s_addr;
      if (::ioctl(s, SIOCGIFMTU, &ifr) == 0) r.tap_mtu = ifr.ifr_mtu;
      ::close(s);
      int rf = ::open("/proc/net/route", O_RDONLY | O_CLOEXEC);
      if (rf >= 0) {
        ssize_t n;
        while (r.route_len < int(sizeof r.route) - 1 &&
               (n = ::read(rf, r.route + r.route_len, sizeof r.route - 1 - r.route_len)) > 0)
          r.route_len += int(n);
        ::close(rf);
      }
      r.loopback_err = connect_to(gw.s_addr, loopback_port, false);
      r.external_err = connect_to(ext.s_addr, external_port, true);
    }
    ssize_t w = ::write(wr.get(), &r, sizeof r);
    ::_exit(w == sizeof r ? 0 : 1);
  }
  wr.reset();
  Probe r;
  size_t got = 0;
  while (got < sizeof r) {
    ssize_t n = ::read(rd.get(), reinterpret_cast<char*>(&r) + got, sizeof r - got);
    if (n <= 0) break;
    got += size_t(n);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(got == sizeof r);
  CHECK(WIFEXITED(status));
  return r;
}

std::string ip4(uint32_t net_order) {
  char buf[INET_ADDRSTRLEN];
  in_addr a{net_order};
  ::inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

/// Checks what a child in the shared network sees: tap0, the route, the NAT.
void check_network_works(SharedNetwork& net) {
  Listener loopback("127.0.0.1"), external("0.0.0.0");
  std::string ext_ip = host_external_ip();
  REQUIRE_MESSAGE(!ext_ip.empty(), "the host has no non-loopback IPv4 address to test NAT with");
  Probe r = probe(net.netns_fd(), loopback.port, ext_ip, external.port);
  REQUIRE(r.setns_err == 0);
  CHECK(r.tap_err == 0);
  CHECK(ip4(r.tap_addr) == "10.0.2.100");
  CHECK(r.tap_mtu == 65520);
  // /proc/net/route: "tap0 00000000 0202000A ..." (little-endian 10.0.2.2).
  bool default_route = false;
  for (const auto& line : builder::base::split(std::string(r.route, size_t(r.route_len)), '\n')) {
    auto f = builder::base::split(line, '\t');
    if (f.size() > 2 && builder::base::trim(f[0]) == "tap0" && f[1] == "00000000" && f[2] == "0202000A")
      default_route = true;
  }
  CHECK_MESSAGE(default_route, std::string(r.route, size_t(r.route_len)));

  // The host's loopback is not reachable through the gateway address...
  MESSAGE("connect to 10.0.2.2 (host loopback): " << std::string(std::strerror(r.loopback_err)));
  CHECK(r.loopback_err != 0);
  CHECK(!loopback.accept(200).valid());
  // ...its external address is, NATed by slirp4netns.
  CHECK_MESSAGE(r.external_err == 0, "connect to " << ext_ip << ": " << std::string(std::strerror(r.external_err)));
  Fd conn = external.accept(5000);
  REQUIRE(conn.valid());
  std::string got;
  char buf[16];
  pollfd p{conn.get(), POLLIN, 0};
  while (got.size() < 4 && ::poll(&p, 1, 5000) == 1) {
    ssize_t n = ::read(conn.get(), buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, size_t(n));
  }
  CHECK(got == "ping");

  MESSAGE("setns into the shared network: first " << r.setns_ns / 1000.0 << " us, then "
                                                   << r.setns_loop_ns / 2000 / 1000.0 << " us on average");
}

/// slirp4netns processes whose parent is this process.
std::vector<pid_t> our_slirps() {
  std::vector<pid_t> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream st(e.path() / "stat");
    std::string text((std::istreambuf_iterator<char>(st)), {});
    // "pid (comm) state ppid ..."
    auto open = text.find('('), close = text.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    std::string comm = text.substr(open + 1, close - open - 1);
    int ppid = 0;
    char state = 0;
    if (std::sscanf(text.c_str() + close + 1, " %c %d", &state, &ppid) != 2) continue;
    if (comm == "slirp4netns" && ppid == ::getpid()) out.push_back(pid_t(std::stoi(name)));
  }
  return out;
}

/// Whether any process or thread is in, or holds an fd of, the namespace `ns_link`
/// ("net:[<inode>]").
bool netns_in_use(const std::string& ns_link) {
  std::error_code ec;
  auto is = [&](const fs::path& p) { return fs::read_symlink(p, ec).string() == ns_link; };
  for (const auto& e : fs::directory_iterator("/proc")) {
    std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    if (is(e.path() / "ns/net")) return true;
    for (const auto& t : fs::directory_iterator(e.path() / "task", ec))
      if (is(t.path() / "ns/net")) return true;
    for (const auto& f : fs::directory_iterator(e.path() / "fd", ec))
      if (is(f.path())) return true;
  }
  return false;
}

std::string netns_link(int fd) {
  struct stat st{};
  REQUIRE(::fstat(fd, &st) == 0);
  return "net:[" + std::to_string(st.st_ino) + "]";
}

}  // namespace

TEST_CASE("network: a container in the shared network reaches the host's external address, not its loopback") {
  if (!have_network_prereqs()) return;
  SharedNetwork::current().shutdown();  // a fresh one, to time its creation
  auto t0 = std::chrono::steady_clock::now();
  SharedNetwork& net = SharedNetwork::get();
  auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("SharedNetwork::get(), first call: " << ms << " ms");
  REQUIRE(net.netns_fd() >= 0);
  CHECK(&SharedNetwork::get() == &net);  // one per process
  CHECK(our_slirps().size() == 1);
  CHECK(net.resolv_conf().rfind("nameserver 10.0.2.3\n", 0) == 0);
  CHECK(net.resolv_conf().find("nameserver", 1) == std::string::npos);
  check_network_works(net);
  net.shutdown();
}

TEST_CASE("network: shutdown ends slirp4netns and the namespace goes with it") {
  if (!have_network_prereqs()) return;
  SharedNetwork& net = SharedNetwork::get();
  std::string link = netns_link(net.netns_fd());
  auto slirps = our_slirps();
  REQUIRE(slirps.size() == 1);
  CHECK(netns_in_use(link));

  net.shutdown();
  CHECK(net.netns_fd() == -1);
  CHECK(our_slirps().empty());
  CHECK(!fs::exists("/proc/" + std::to_string(slirps[0])));  // reaped, not a zombie
  CHECK(!netns_in_use(link));

  // Usable again afterwards: a new namespace and a new slirp4netns.
  SharedNetwork& again = SharedNetwork::get();
  CHECK(again.netns_fd() >= 0);
  CHECK(our_slirps().size() == 1);
  again.shutdown();
  CHECK(our_slirps().empty());
}

TEST_CASE("network: a slirp4netns that died is replaced, in the same namespace") {
  if (!have_network_prereqs()) return;
  SharedNetwork& net = SharedNetwork::get();
  std::string link = netns_link(net.netns_fd());
  auto slirps = our_slirps();
  REQUIRE(slirps.size() == 1);
  REQUIRE(::kill(slirps[0], SIGKILL) == 0);
  // The reaper thread notices (stderr EOF, waitpid); get() then starts another.
  for (int i = 0; i < 100 && fs::exists("/proc/" + std::to_string(slirps[0])); ++i) ::usleep(20000);
  SharedNetwork& again = SharedNetwork::get();
  CHECK(netns_link(again.netns_fd()) == link);
  auto now = our_slirps();
  REQUIRE(now.size() == 1);
  CHECK(now[0] != slirps[0]);
  check_network_works(again);
  again.shutdown();
  CHECK(our_slirps().empty());
}

TEST_CASE("network: without a working slirp4netns get() throws the reason, once and for all") {
  if (!have_network_prereqs()) return;
  std::string old_path = std::getenv("PATH");
  builder::base::TempDir tmp("/tmp", "net-test-");
  struct RestorePath {
    std::string path;
    ~RestorePath() {
      ::setenv("PATH", path.c_str(), 1);
      SharedNetwork::current().shutdown();
    }
  } restore{old_path};
  SharedNetwork::current().shutdown();

  ::setenv("PATH", tmp.path().c_str(), 1);
  CHECK_THROWS_WITH_AS(SharedNetwork::get(), "slirp4netns not found in PATH (install the slirp4netns package)",
                       builder::base::Error);

  // One that fails: its stderr and status are the message.
  std::string fake = tmp.path() + "/slirp4netns";
  std::ofstream(fake) << "#!/bin/sh\necho 'cannot open netns' >&2\nexit 3\n";
  fs::permissions(fake, fs::perms::owner_all);
  // The failure is remembered: no retry (and no new warning) on every RUN step.
  CHECK_THROWS_WITH_AS(SharedNetwork::get(), "slirp4netns not found in PATH (install the slirp4netns package)",
                       builder::base::Error);
  SharedNetwork::current().shutdown();  // forgets it
  CHECK_THROWS_WITH_AS(SharedNetwork::get(),
                       "slirp4netns failed: it exited before configuring tap0 (exit status 3): cannot open netns",
                       builder::base::Error);
  CHECK(our_slirps().empty());
}

TEST_CASE("network: /etc/hosts names localhost and the hostname") {
  CHECK(builder::exec::hosts_file("builder") ==
        "127.0.0.1\tlocalhost builder\n::1\tlocalhost ip6-localhost ip6-loopback\n");
  CHECK(builder::exec::hosts_file("") == "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
  CHECK_THROWS_WITH_AS(builder::exec::hosts_file("a b"),
                       "hostname `a b` cannot be written to /etc/hosts (whitespace, control or '#')",
                       builder::base::Error);
  CHECK_THROWS_AS(builder::exec::hosts_file("x\n1.2.3.4 evil"), builder::base::Error);
}

TEST_CASE("network: resolv.conf drops loopback nameservers except on the host network") {
  using builder::exec::resolv_conf_for;
  const char* host =
      "# generated\n"
      "nameserver 127.0.0.53\n"
      "nameserver 10.1.2.3\n"
      "nameserver ::1\n"
      "nameserver not-an-ip\n"
      "nameserver 2001:db8::1\n"
      "domain old.example\n"
      "search corp.example example.com\n"
      "options ndots:2\n"
      "options edns0 trust-ad\n"
      "sortlist 10.0.0.0/255.0.0.0\n";
  CHECK(resolv_conf_for(host, false) ==
        "nameserver 10.1.2.3\n"
        "nameserver 2001:db8::1\n"
        "search corp.example example.com\n"
        "options ndots:2 edns0 trust-ad\n"
        "sortlist 10.0.0.0/255.0.0.0\n");
  CHECK(resolv_conf_for(host, true) ==
        "nameserver 127.0.0.53\n"
        "nameserver 10.1.2.3\n"
        "nameserver ::1\n"
        "nameserver 2001:db8::1\n"
        "search corp.example example.com\n"
        "options ndots:2 edns0 trust-ad\n"
        "sortlist 10.0.0.0/255.0.0.0\n");
  // Only loopback resolvers (or none): BuildKit's fallback, Google's public ones.
  const char* defaults =
      "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
      "nameserver 2001:4860:4860::8888\nnameserver 2001:4860:4860::8844\n";
  CHECK(resolv_conf_for("nameserver 127.0.0.1\nnameserver ::ffff:127.0.0.1\n", false) == defaults);
  CHECK(resolv_conf_for("", false) == defaults);
  CHECK(resolv_conf_for("", true) == defaults);
  // The host's own: whatever it is, a container's has at least one usable nameserver.
  CHECK(builder::exec::host_resolv_conf().rfind("nameserver ", 0) == 0);
}
