// Registry auth text formats: WWW-Authenticate challenges, token answers, base64, and
// Docker's config.json (read, write keeping other keys, remove).
#include "registry/auth.h"

#include <sys/stat.h>

#include <doctest/doctest.h>

#include "base/error.h"
#include "base/fs.h"
#include "base/json.h"
#include "base/temp_dir.h"
#include "registry/docker_config.h"

using namespace builder;
using namespace builder::registry;

TEST_CASE("auth: a Bearer challenge with quoted parameters") {
  auto cs = parse_www_authenticate(
      R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull")");
  REQUIRE(cs.size() == 1);
  CHECK(cs[0].scheme == "bearer");
  CHECK(cs[0].param("realm") == "https://auth.docker.io/token");
  CHECK(cs[0].param("service") == "registry.docker.io");
  CHECK(cs[0].param("scope") == "repository:library/busybox:pull");
  CHECK(cs[0].param("missing").empty());
}

TEST_CASE("auth: Basic, several challenges, escapes, odd spacing and case") {
  auto basic = parse_www_authenticate(R"(Basic realm="Registry Realm")");
  REQUIRE(basic.size() == 1);
  CHECK(basic[0].scheme == "basic");
  CHECK(basic[0].param("realm") == "Registry Realm");

  auto two = parse_www_authenticate(R"(BASIC realm="a, b", BEARER  Realm = "http://127.0.0.1:1/t" , error=invalid_token)");
  REQUIRE(two.size() == 2);
  CHECK(two[0].scheme == "basic");
  CHECK(two[0].param("realm") == "a, b");
  CHECK(two[1].scheme == "bearer");
  CHECK(two[1].param("realm") == "http://127.0.0.1:1/t");
  CHECK(two[1].param("error") == "invalid_token");

  auto esc = parse_www_authenticate(R"(Bearer realm="x\"y\\z")");
  REQUIRE(esc.size() == 1);
  CHECK(esc[0].param("realm") == "x\"y\\z");

  CHECK(parse_www_authenticate("").empty());
  CHECK(parse_www_authenticate("  ,, ").empty());
  // Unterminated quote: the value runs to the end, no crash.
  auto broken = parse_www_authenticate(R"(Bearer realm="abc)");
  REQUIRE(broken.size() == 1);
  CHECK(broken[0].param("realm") == "abc");
}

TEST_CASE("auth: token server answers") {
  CHECK(parse_token_response(R"({"token":"abc","expires_in":300})").token == "abc");
  CHECK(parse_token_response(R"({"token":"abc","expires_in":300})").expires_in == 300);
  CHECK(parse_token_response(R"({"access_token":"xyz"})").token == "xyz");
  CHECK(parse_token_response(R"({"token":"t","expires_in":5})").expires_in == 60);  // the spec's minimum
  CHECK_THROWS_WITH(parse_token_response(R"({"nothing":1})"), doctest::Contains("has no token"));
  CHECK_THROWS_WITH(parse_token_response("<html>"), doctest::Contains("not JSON"));
}

TEST_CASE("auth: base64") {
  CHECK(base64_encode("") == "");
  CHECK(base64_encode("user:pass") == "dXNlcjpwYXNz");
  CHECK(base64_encode("a") == "YQ==");
  CHECK(base64_decode("dXNlcjpwYXNz") == "user:pass");
  CHECK(base64_decode("YQ==") == "a");
  CHECK(base64_decode("YWI=") == "ab");
  CHECK_THROWS_AS(base64_decode("abc"), base::Error);
  CHECK_THROWS_AS(base64_decode("!!!!"), base::Error);
}

TEST_CASE("docker config: keys, read, write keeping other keys, remove") {
  base::TempDir dir("/tmp", "registry-test-");
  const std::string path = dir.path() + "/sub/config.json";

  CHECK(config_key("docker.io") == "https://index.docker.io/v1/");
  CHECK(config_key("index.docker.io") == "https://index.docker.io/v1/");
  CHECK(config_key("https://index.docker.io/v1/") == "https://index.docker.io/v1/");
  CHECK(config_key("http://127.0.0.1:5000/v2/") == "127.0.0.1:5000");
  CHECK(config_key("Registry.Example.com") == "registry.example.com");

  CHECK_FALSE(read_credentials(path, "127.0.0.1:5000"));  // no file
  CHECK_FALSE(remove_credentials(path, "127.0.0.1:5000"));

  store_credentials(path, "127.0.0.1:5000", Credentials{"alice", "s3:cret", {}});
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto c = read_credentials(path, "127.0.0.1:5000");
  REQUIRE(c);
  CHECK(c->username == "alice");
  CHECK(c->password == "s3:cret");  // only the first ':' splits
  CHECK_FALSE(read_credentials(path, "127.0.0.1:5001"));

  // Other keys and entries survive a write; Docker Hub entries are found from "docker.io".
  base::write_file_atomic(path, R"({"auths":{"https://index.docker.io/v1/":{"auth":"aHViOmh1YnB3"},
    "http://other:5000":{"auth":"bzpw"}},"credsStore":"","proxies":{"default":{"httpProxy":"x"}}})", 0600);
  auto hub = read_credentials(path, "docker.io");
  REQUIRE(hub);
  CHECK(hub->username == "hub");
  CHECK(hub->password == "hubpw");
  store_credentials(path, "other:5000", Credentials{"bob", "pw2", {}});
  auto j = base::Json::parse(base::read_file(path));
  CHECK(j["proxies"]["default"]["httpProxy"] == "x");
  CHECK(j["auths"].contains("https://index.docker.io/v1/"));
  CHECK_FALSE(j["auths"].contains("http://other:5000"));  // the old spelling is replaced
  CHECK(j["auths"]["other:5000"]["auth"] == "Ym9iOnB3Mg==");
  CHECK(read_credentials(path, "other:5000")->username == "bob");

  CHECK(remove_credentials(path, "other:5000"));
  CHECK_FALSE(read_credentials(path, "other:5000"));
  CHECK_FALSE(remove_credentials(path, "other:5000"));
  CHECK(read_credentials(path, "docker.io"));
  CHECK(base::Json::parse(base::read_file(path))["proxies"]["default"]["httpProxy"] == "x");

  // identitytoken alone is a credential; a broken auth is an error naming the file.
  base::write_file_atomic(path, R"({"auths":{"r.io":{"identitytoken":"refresh"},"bad.io":{"auth":"bm9jb2xvbg=="}}})");
  auto idt = read_credentials(path, "r.io");
  REQUIRE(idt);
  CHECK(idt->identity_token == "refresh");
  CHECK_THROWS_WITH(read_credentials(path, "bad.io"), doctest::Contains("is not user:password"));
  base::write_file_atomic(path, "{not json");
  CHECK_THROWS_WITH(read_credentials(path, "r.io"), doctest::Contains("is not valid JSON"));
}
