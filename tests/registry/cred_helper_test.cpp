// Docker credential helpers: the helper protocol (get / store / erase, "<token>"
// identity tokens, "credentials not found"), failures named clearly (missing, failing,
// hanging, garbage), and config.json choosing the helper (credHelpers over credsStore).
// The helper is testdata/e2e/registry/credential-helper.sh copied under the names needed.
#include "registry/cred_helper.h"

#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>

#include <doctest/doctest.h>

#include "base/error.h"
#include "base/fs.h"
#include "base/json.h"
#include "base/temp_dir.h"
#include "registry/docker_config.h"

using namespace builder;
using namespace builder::registry;
namespace fs = std::filesystem;

namespace {

/// A temp dir holding docker-credential-<name> copies of the test helper, first in PATH
/// while it lives.
class HelperDir {
 public:
  explicit HelperDir(std::initializer_list<std::string> names) : dir_("/tmp", "cred-helper-test-") {
    const fs::path script = fs::path(BUILDER_SOURCE_DIR) / "testdata/e2e/registry/credential-helper.sh";
    REQUIRE(fs::exists(script));
    for (const auto& n : names) {
      const fs::path p = fs::path(dir_.path()) / ("docker-credential-" + n);
      fs::copy_file(script, p);
      fs::permissions(p, fs::perms(0755));
    }
    const char* old = std::getenv("PATH");
    old_path_ = old ? old : "";
    ::setenv("PATH", (dir_.path() + ":" + old_path_).c_str(), 1);
  }
  ~HelperDir() { ::setenv("PATH", old_path_.c_str(), 1); }
  std::string path() const { return dir_.path(); }
  /// The file where helper `name` keeps the credentials of `server`, "" if none.
  std::string stored(const std::string& name, const std::string& server_file) const {
    fs::path p = fs::path(dir_.path()) / ("store-" + name) / server_file;
    return fs::exists(p) ? base::read_file(p.string()) : std::string();
  }
  std::string calls(const std::string& name) const {
    fs::path p = fs::path(dir_.path()) / ("store-" + name) / "calls.log";
    return fs::exists(p) ? base::read_file(p.string()) : std::string();
  }

 private:
  base::TempDir dir_;
  std::string old_path_;
};

}  // namespace

TEST_CASE("credential helper: store, get, erase; not found is no credentials") {
  HelperDir dir({"test"});
  CredentialHelper h("test", "a test");
  CHECK(h.program() == "docker-credential-test");
  CHECK_FALSE(h.get("127.0.0.1:5000"));
  h.store("127.0.0.1:5000", HelperCredentials{"alice", "pa ss\"word", {}});
  auto stored = base::Json::parse(dir.stored("test", "127.0.0.1_5000"));
  CHECK(stored["ServerURL"] == "127.0.0.1:5000");
  CHECK(stored["Username"] == "alice");
  CHECK(stored["Secret"] == "pa ss\"word");
  auto c = h.get("127.0.0.1:5000");
  REQUIRE(c);
  CHECK(c->username == "alice");
  CHECK(c->secret == "pa ss\"word");
  CHECK(c->identity_token.empty());
  CHECK_FALSE(h.get("127.0.0.1:5001"));
  CHECK(h.erase("127.0.0.1:5000"));
  CHECK_FALSE(h.get("127.0.0.1:5000"));
  CHECK_FALSE(h.erase("127.0.0.1:5000"));
  CHECK(dir.calls("test") == "get\nstore\nget\nget\nerase\nget\nerase\n");
}

TEST_CASE("credential helper: Username <token> carries an identity token, both ways") {
  HelperDir dir({"test"});
  CredentialHelper h("test", "a test");
  h.store("https://index.docker.io/v1/", HelperCredentials{"", "", "refresh-me"});
  auto stored = base::Json::parse(dir.stored("test", "https___index.docker.io_v1_"));
  CHECK(stored["Username"] == "<token>");
  CHECK(stored["Secret"] == "refresh-me");
  auto c = h.get("https://index.docker.io/v1/");
  REQUIRE(c);
  CHECK(c->identity_token == "refresh-me");
  CHECK(c->username.empty());
  CHECK(c->secret.empty());
}

TEST_CASE("credential helper: a missing, failing or garbled helper is an error naming it") {
  HelperDir dir({"x-broken", "x-garbage"});
  CHECK_THROWS_WITH(CredentialHelper("nosuch", "credsStore in `c.json`").get("r.io"),
                    "credential helper docker-credential-nosuch (credsStore in `c.json`): "
                    "`docker-credential-nosuch` not found in PATH");
  CHECK_THROWS_WITH(CredentialHelper("x-broken", "a test").get("r.io"),
                    "credential helper docker-credential-x-broken (a test): `get` for r.io failed (exit status 3): "
                    "helper failure: the keychain is locked; the keychain is locked");
  CHECK_THROWS_WITH(CredentialHelper("x-broken", "a test").store("r.io", {"u", "p", {}}),
                    doctest::Contains("`store` for r.io failed (exit status 3)"));
  CHECK_THROWS_WITH(CredentialHelper("x-broken", "a test").erase("r.io"),
                    doctest::Contains("`erase` for r.io failed (exit status 3)"));
  CHECK_THROWS_WITH(CredentialHelper("x-garbage", "a test").get("r.io"),
                    "credential helper docker-credential-x-garbage (a test): `get` for r.io: the answer is not "
                    "JSON: this is not json");
  CHECK_THROWS_WITH(CredentialHelper("../x", "a test"), doctest::Contains("not a valid helper name"));
}

TEST_CASE("credential helper: a hanging helper is killed at the timeout") {
  HelperDir dir({"x-hang"});
  auto start = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH(CredentialHelper("x-hang", "a test", std::chrono::milliseconds(500)).get("r.io"),
                    "credential helper docker-credential-x-hang (a test): `get` timed out after 500 ms (killed)");
  auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(secs < 5);
  // The helper (a sleep by then) is gone, not left running.
  const fs::path pid_file = fs::path(dir.path()) / "store-x-hang" / "hang.pid";
  REQUIRE(fs::exists(pid_file));
  pid_t pid = std::atoi(base::read_file(pid_file.string()).c_str());
  REQUIRE(pid > 0);
  CHECK(::kill(pid, 0) != 0);
}

TEST_CASE("docker config: credsStore and credHelpers hold the secrets, credHelpers first") {
  HelperDir dir({"test", "other", "x-broken"});
  base::TempDir cfg("/tmp", "registry-test-");
  const std::string path = cfg.path() + "/config.json";

  // credsStore: login stores through it; config.json keeps an empty entry and no secret.
  base::write_file_atomic(path, R"({"credsStore":"test","proxies":{"default":{"httpProxy":"x"}}})", 0600);
  REQUIRE(credential_helper(path, "127.0.0.1:5000"));
  CHECK(credential_helper(path, "127.0.0.1:5000")->program() == "docker-credential-test");
  CHECK_FALSE(read_credentials(path, "127.0.0.1:5000"));
  CHECK(store_credentials(path, "127.0.0.1:5000", Credentials{"alice", "pw", {}}) == "docker-credential-test");
  const std::string text = base::read_file(path);
  CHECK(text.find("pw") == std::string::npos);
  auto j = base::Json::parse(text);
  CHECK(j["auths"]["127.0.0.1:5000"] == base::Json::object());
  CHECK(j["proxies"]["default"]["httpProxy"] == "x");
  CHECK(base::Json::parse(dir.stored("test", "127.0.0.1_5000"))["Secret"] == "pw");
  auto c = read_credentials(path, "127.0.0.1:5000");
  REQUIRE(c);
  CHECK(c->username == "alice");
  CHECK(c->password == "pw");
  // Docker Hub is the helper's "https://index.docker.io/v1/".
  store_credentials(path, "docker.io", Credentials{"hubby", "hubpw", {}});
  CHECK(base::Json::parse(dir.stored("test", "https___index.docker.io_v1_"))["ServerURL"] ==
        "https://index.docker.io/v1/");
  CHECK(read_credentials(path, "docker.io")->username == "hubby");

  // credHelpers wins over credsStore for its registry (any spelling of the key), and
  // only the helper counts: an inline auths entry for that registry is not read.
  base::write_file_atomic(path, R"({"credsStore":"test","credHelpers":{"https://127.0.0.1:5000":"other"},
    "auths":{"127.0.0.1:5000":{"auth":"aW5saW5lOmlubGluZQ=="}}})", 0600);
  CHECK(credential_helper(path, "127.0.0.1:5000")->program() == "docker-credential-other");
  CHECK(credential_helper(path, "127.0.0.1:5001")->program() == "docker-credential-test");
  CHECK_FALSE(read_credentials(path, "127.0.0.1:5000"));  // "other" has nothing yet
  CHECK(store_credentials(path, "127.0.0.1:5000", Credentials{"bob", "pw2", {}}) == "docker-credential-other");
  CHECK(read_credentials(path, "127.0.0.1:5000")->username == "bob");
  CHECK(base::Json::parse(base::read_file(path))["auths"]["127.0.0.1:5000"] == base::Json::object());
  // The credsStore helper still has alice: untouched.
  CHECK(base::Json::parse(dir.stored("test", "127.0.0.1_5000"))["Username"] == "alice");

  // logout: erase through the helper and drop the auths entry; twice is "not logged in".
  CHECK(remove_credentials(path, "127.0.0.1:5000"));
  CHECK(dir.stored("other", "127.0.0.1_5000").empty());
  CHECK_FALSE(base::Json::parse(base::read_file(path))["auths"].contains("127.0.0.1:5000"));
  CHECK_FALSE(remove_credentials(path, "127.0.0.1:5000"));

  // A failing helper is an error, not anonymous access; a non-string name is refused.
  base::write_file_atomic(path, R"({"credsStore":"x-broken"})", 0600);
  const std::string broken_msg = "docker-credential-x-broken (credsStore in `" + path + "`): `get` for r.io failed";
  CHECK_THROWS_WITH(read_credentials(path, "r.io"), doctest::Contains(broken_msg.c_str()));
  base::write_file_atomic(path, R"({"credHelpers":{"r.io":7}})", 0600);
  CHECK_THROWS_WITH(read_credentials(path, "r.io"), doctest::Contains("credHelpers[\"r.io\"] is not a string"));
  // An empty credsStore is none (Docker's reading): auths are used.
  base::write_file_atomic(path, R"({"credsStore":"","auths":{"r.io":{"auth":"dTpw"}}})", 0600);
  CHECK_FALSE(credential_helper(path, "r.io"));
  CHECK(read_credentials(path, "r.io")->username == "u");
}
