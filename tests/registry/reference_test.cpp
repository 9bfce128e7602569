// Registry references: Docker's normalisation, malformed references, loopback hosts.
#include "registry/reference.h"

#include <doctest/doctest.h>

#include "base/error.h"
#include "registry/client.h"
#include "registry/pull.h"

using namespace builder;
using registry::Reference;

TEST_CASE("reference: docker's normalisation") {
  auto r = Reference::parse("busybox");
  CHECK(r.domain == "docker.io");
  CHECK(r.path == "library/busybox");
  CHECK(r.tag == "latest");
  CHECK(r.digest.empty());
  CHECK(r.repository() == "docker.io/library/busybox");
  CHECK(r.str() == "docker.io/library/busybox:latest");
  CHECK(r.manifest_ref() == "latest");

  CHECK(Reference::parse("user/app:1.0").str() == "docker.io/user/app:1.0");
  CHECK(Reference::parse("index.docker.io/library/alpine").str() == "docker.io/library/alpine:latest");
  CHECK(Reference::parse("docker.io/alpine:3").str() == "docker.io/library/alpine:3");
  CHECK(Reference::parse("localhost/app").domain == "localhost");
  CHECK(Reference::parse("localhost/app").path == "app");
  CHECK(Reference::parse("localhost:5000/a/b/c:t").str() == "localhost:5000/a/b/c:t");
  CHECK(Reference::parse("127.0.0.1:5000/app").str() == "127.0.0.1:5000/app:latest");
  CHECK(Reference::parse("ghcr.io/o/r:v1").domain == "ghcr.io");
  // A first component without '.', ':' and not "localhost" is a path, not a host.
  CHECK(Reference::parse("myhost/app").str() == "docker.io/myhost/app:latest");
  CHECK(Reference::parse("[::1]:5000/app").domain == "[::1]:5000");
  // An uppercase first component is a host (docker >= 20.10), so the path may be lowercase.
  CHECK(Reference::parse("UPPER/app").domain == "UPPER");

  const std::string d = "sha256:" + std::string(64, 'a');
  auto by_digest = Reference::parse("127.0.0.1:5000/app@" + d);
  CHECK(by_digest.tag.empty());
  CHECK(by_digest.digest == d);
  CHECK(by_digest.manifest_ref() == d);
  CHECK(by_digest.str() == "127.0.0.1:5000/app@" + d);
  auto both = Reference::parse("app:1@" + d);
  CHECK(both.tag == "1");
  CHECK(both.manifest_ref() == d);  // the digest wins
  CHECK(both.str() == "docker.io/library/app:1@" + d);
  auto pinned = Reference::parse("app:1").with_digest(d);
  CHECK(pinned.str() == "docker.io/library/app@" + d);
}

TEST_CASE("reference: malformed references are errors") {
  for (std::string bad : {"", "docker.io/Upper", "app:", "app:bad tag", "app@sha256:123",
                          "app@md5:0123", "/app", "app/", "a//b", "-app", "app:-x", ":tag",
                          "host:port/app", "a b"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(Reference::parse(bad), base::Error);
  }
  CHECK_THROWS_WITH(Reference::parse("Busybox"),
                    doctest::Contains("repository name must be lowercase"));
  CHECK_THROWS_WITH(Reference::parse(std::string(64, 'a')), doctest::Contains("64-byte hexadecimal"));
}

TEST_CASE("reference: registry host and loopback detection") {
  CHECK(registry::registry_host("docker.io") == "registry-1.docker.io");
  CHECK(registry::registry_host("127.0.0.1:5000") == "127.0.0.1:5000");
  for (const char* h : {"localhost", "localhost:5000", "127.0.0.1", "127.0.0.1:5000", "127.1.2.3:80", "::1",
                        "[::1]", "[::1]:5000"}) {
    CAPTURE(h);
    CHECK(registry::is_loopback(h));
  }
  for (const char* h : {"example.com", "128.0.0.1", "127.0.0", "127.0.0.1.example.com", "localhost.example.com",
                        "127.0.0.256", "[::2]:5000", "10.0.0.1:5000", "docker.io"}) {
    CAPTURE(h);
    CHECK_FALSE(registry::is_loopback(h));
  }
}
