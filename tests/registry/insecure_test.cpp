// --insecure-registry: the entries accepted, which registries get which transport, and
// which https failures fall back to plain http, with the transport's classification of
// real failures (a refused port, a plain-http server answering a TLS hello).
#include "registry/insecure.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include <doctest/doctest.h>

#include "base/error.h"
#include "registry/http.h"

using namespace builder;
using namespace builder::registry;

TEST_CASE("insecure registry: entries are host[:port] or an IP network, nothing else") {
  CHECK(normalize_insecure_entry("Registry.Example.com:5000") == "registry.example.com:5000");
  CHECK(normalize_insecure_entry("myreg") == "myreg");
  CHECK(normalize_insecure_entry("192.0.2.7") == "192.0.2.7");
  CHECK(normalize_insecure_entry("[fd00::2]:5000") == "[fd00::2]:5000");
  CHECK(normalize_insecure_entry("fd00::2") == "fd00::2");
  CHECK(normalize_insecure_entry("10.0.0.0/8") == "10.0.0.0/8");
  CHECK(normalize_insecure_entry("fd00::/8") == "fd00::/8");
  CHECK_THROWS_WITH(normalize_insecure_entry("http://r:5000"),
                    "--insecure-registry `http://r:5000`: give the registry as host[:port], without a scheme");
  CHECK_THROWS_WITH(normalize_insecure_entry("r:5000/v2"),
                    "--insecure-registry `r:5000/v2`: not host[:port] or an IP network (CIDR such as 10.0.0.0/8)");
  CHECK_THROWS_WITH(normalize_insecure_entry("10.0.0.0/33"), doctest::Contains("not host[:port] or an IP network"));
  CHECK_THROWS_WITH(normalize_insecure_entry("r:http"), "--insecure-registry `r:http`: bad port");
  CHECK_THROWS_WITH(normalize_insecure_entry("r:70000"), "--insecure-registry `r:70000`: bad port");
  CHECK_THROWS_WITH(normalize_insecure_entry(""), "--insecure-registry ``: empty value");
  CHECK_THROWS_WITH(normalize_insecure_entry("bad host"), doctest::Contains("not a host name or IP address"));
  CHECK_THROWS_WITH(normalize_insecure_entry("[r.io]:5000"), doctest::Contains("must be an IPv6 address"));
}

TEST_CASE("insecure registry: listed -> unverified https then http; loopback -> http; else https") {
  const std::vector<std::string> none;
  CHECK(transport_for("registry.example.com", none) == Transport::Https);
  CHECK(transport_for("192.0.2.7:5000", none) == Transport::Https);
  CHECK(transport_for("docker.io", none) == Transport::Https);
  CHECK(transport_for("127.0.0.1:5000", none) == Transport::Http);
  CHECK(transport_for("127.8.9.10:5000", none) == Transport::Http);
  CHECK(transport_for("localhost:5000", none) == Transport::Http);
  CHECK(transport_for("[::1]:5000", none) == Transport::Http);

  // An exact host:port, a host for every port, case-insensitively.
  const std::vector<std::string> hosts{"Reg.Example.com:5000", "other.example.com", "192.0.2.7"};
  CHECK(transport_for("reg.example.com:5000", hosts) == Transport::HttpsThenHttp);
  CHECK(transport_for("reg.example.com:5001", hosts) == Transport::Https);
  CHECK(transport_for("reg.example.com", hosts) == Transport::Https);
  CHECK(transport_for("other.example.com", hosts) == Transport::HttpsThenHttp);
  CHECK(transport_for("other.example.com:443", hosts) == Transport::HttpsThenHttp);
  CHECK(transport_for("192.0.2.7:5000", hosts) == Transport::HttpsThenHttp);
  CHECK(transport_for("192.0.2.70:5000", hosts) == Transport::Https);  // not a prefix match
  CHECK(transport_for("notother.example.com", hosts) == Transport::Https);

  // IP networks hold IP literals, never host names.
  const std::vector<std::string> nets{"10.0.0.0/8", "192.0.2.0/25", "fd00::/8"};
  CHECK(transport_for("10.1.2.3:5000", nets) == Transport::HttpsThenHttp);
  CHECK(transport_for("11.1.2.3:5000", nets) == Transport::Https);
  CHECK(transport_for("192.0.2.127", nets) == Transport::HttpsThenHttp);
  CHECK(transport_for("192.0.2.128", nets) == Transport::Https);
  CHECK(transport_for("[fd00::2]:5000", nets) == Transport::HttpsThenHttp);
  CHECK(transport_for("[fe80::2]:5000", nets) == Transport::Https);
  CHECK(transport_for("10.example.com", nets) == Transport::Https);

  // A listed loopback registry gets Docker's treatment too (https first).
  CHECK(transport_for("127.0.0.1:5000", {"127.0.0.1:5000"}) == Transport::HttpsThenHttp);
  CHECK(transport_for("127.0.0.1:5000", {"127.0.0.0/8"}) == Transport::HttpsThenHttp);
  CHECK(transport_for("[::1]:5000", {"::1"}) == Transport::HttpsThenHttp);
  // A malformed entry matches nothing.
  CHECK(transport_for("r.io", {"http://r.io"}) == Transport::Https);
}

TEST_CASE("insecure registry: TLS handshake failures and refused https fall back, nothing else") {
  CHECK(falls_back_to_http(http::Failure::Tls));
  CHECK(falls_back_to_http(http::Failure::Refused));
  CHECK_FALSE(falls_back_to_http(http::Failure::Certificate));
  CHECK_FALSE(falls_back_to_http(http::Failure::Other));
}

namespace {

/// A listening socket on 127.0.0.1 answering each connection with a plain-HTTP 400, as a
/// plain-http registry answers a TLS hello.
struct PlainHttpServer {
  int fd = -1;
  int port = 0;
  std::thread thread;
  PlainHttpServer() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd, 4) == 0);
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port = ntohs(a.sin_port);
    thread = std::thread([this] {
      int c = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      char buf[4096];
      (void)::read(c, buf, sizeof buf);
      const char reply[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      (void)::write(c, reply, sizeof reply - 1);
      ::close(c);
    });
  }
  ~PlainHttpServer() {
    ::shutdown(fd, SHUT_RDWR);
    ::close(fd);
    if (thread.joinable()) thread.join();
  }
};

int closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

http::Failure failure_of(const std::string& url) {
  http::Request r;
  r.url = url;
  r.verify_tls = false;
  r.attempts = 1;
  r.connect_timeout_s = 10;
  try {
    http::send(r);
  } catch (const http::TransportError& e) {
    return e.failure;
  }
  FAIL("no transport error for " << url);
  return http::Failure::Other;
}

}  // namespace

TEST_CASE("http: a plain-http server answering TLS is a TLS failure; a closed port is refused") {
  {
    PlainHttpServer s;
    CHECK(failure_of("https://127.0.0.1:" + std::to_string(s.port) + "/v2/") == http::Failure::Tls);
  }
  CHECK(failure_of("https://127.0.0.1:" + std::to_string(closed_port()) + "/v2/") == http::Failure::Refused);
}
