// tests/e2e/registry_test.cpp — the registry client end to end: `builder push`, `pull`,
// `login`, `logout`, FROM pulling a missing image and `build --pull`, against Debian's
// docker-registry (no auth, htpasswd, token auth) started by registry_util.h, checked
// with skopeo; and against fake_registry.py, whose every misbehaviour must be refused
// with a clear error that leaves the store as it was.
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <regex>

#include "base/digest.h"
#include "base/json.h"
#include "registry_util.h"

using builder::e2e::builder_env;
using builder::e2e::DockerConfigDir;
using builder::e2e::FakeRegistry;
using builder::e2e::RegistryAuth;
using builder::e2e::Result;
using builder::e2e::run_process;
using builder::e2e::slurp;
using builder::e2e::TestRegistry;
using builder::e2e::TestRoot;
using builder::e2e::testdata;
namespace fs = std::filesystem;

namespace {

/// builder with its own DOCKER_CONFIG, so the host's ~/.docker is never read or written.
Result bx(const TestRoot& root, const DockerConfigDir& cfg, const std::vector<std::string>& args,
          const std::string& input = "") {
  return builder_env(root, {cfg.env()}, args, input);
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool contains_any(const std::string& text, const std::vector<std::string>& words) {
  std::string l = lower(text);
  return std::any_of(words.begin(), words.end(), [&](const std::string& w) { return l.find(w) != std::string::npos; });
}

/// A failure that is an error, not a crash: non-zero, not killed by a signal, a message.
void check_clean_failure(const Result& r) {
  CHECK_MESSAGE(r.status != 0, r.describe());
  CHECK_MESSAGE(r.status < 128, "killed by a signal? " << r.describe());
  CHECK_MESSAGE(!r.err.empty(), r.describe());
  CHECK_MESSAGE(r.err.find("terminate called") == std::string::npos, r.describe());
}

/// The "Digest" of `skopeo inspect` JSON output.
std::string skopeo_digest(const std::string& json) {
  static const std::regex re(R"re("Digest"\s*:\s*"(sha256:[0-9a-f]{64})")re");
  std::smatch m;
  return std::regex_search(json, m, re) ? std::string(m[1]) : std::string();
}

std::string image_id_of(const TestRoot& root, const DockerConfigDir& cfg, const std::string& ref) {
  Result r = bx(root, cfg, {"inspect", ref});
  CHECK_MESSAGE(r.status == 0, r.describe());
  return builder::e2e::image_id(r.out);
}

bool has_repository(const std::string& images_out, const std::string& repo) {
  auto repos = builder::e2e::image_repositories(images_out);
  return std::find(repos.begin(), repos.end(), repo) != repos.end();
}

/// `builder images` output without its CREATED and SIZE columns (CREATED is relative time):
/// "REPOSITORY TAG ID" per line.
std::string image_table(const Result& images) {
  std::string out;
  for (const auto& line : builder::e2e::lines_of(images.out)) {
    std::istringstream words(line);
    std::string repo, tag, id;
    words >> repo >> tag >> id;
    out += repo + " " + tag + " " + id + "\n";
  }
  return out;
}

/// Files left in the store's ingest dir (an interrupted or failed blob write).
std::vector<std::string> ingest_leftovers(const TestRoot& root) {
  std::vector<std::string> left;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root.store() / "content" / "ingest", ec))
    left.push_back(e.path().filename().string());
  return left;
}

/// Blobs of the store whose bytes do not hash to their name (a corrupted store).
std::vector<std::string> corrupt_blobs(const TestRoot& root) {
  std::vector<std::string> bad;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root.store() / "content" / "blobs" / "sha256", ec)) {
    if (!e.is_regular_file()) continue;
    std::string name = e.path().filename().string();
    if (builder::base::sha256_hex(slurp(e.path())) != name) bad.push_back(name);
  }
  return bad;
}

/// Occurrences of `needle` in the docker-registry log (its access log included).
size_t log_count(const TestRegistry& reg, const std::string& needle) {
  return builder::e2e::count(reg.registry_log(), needle);
}

}  // namespace

TEST_CASE("registry util: a test registry answers, then leaves no process or file behind") {
  fs::path storage;
  {
    TestRegistry reg;
    if (!reg.started()) return;
    storage = reg.storage();
    CHECK(fs::exists(storage));
    CHECK(reg.host().rfind("127.0.0.1:", 0) == 0);
    int port = std::atoi(reg.host().c_str() + 10);
    CHECK(builder::e2e::http_get_status(port, "/v2/") == 200);
  }
  CHECK_MESSAGE(!fs::exists(storage.parent_path()), storage.parent_path());
}


TEST_CASE("registry: build, push, pull on an empty root, run; skopeo agrees on the digest") {
  if (!builder::test::have_root()) return;
  TestRegistry reg;
  if (!reg.started()) return;
  DockerConfigDir cfg;
  TestRoot a;
  REQUIRE(a.import_busybox());
  const std::string ref = reg.ref("x/app:1");
  Result b = bx(a, cfg, {"build", "-t", "app", "-t", ref, testdata("e2e/registry/app")});
  REQUIRE_MESSAGE(b.status == 0, b.describe());
  const std::string app_id = image_id_of(a, cfg, "app");
  REQUIRE(!app_id.empty());

  Result push = bx(a, cfg, {"push", ref});
  REQUIRE_MESSAGE(push.status == 0, push.describe() << "\n" << reg.log());

  std::string digest;
  if (builder::e2e::require_tool("skopeo")) {
    Result s = run_process({"skopeo", "inspect", "--tls-verify=false", "docker://" + ref});
    REQUIRE_MESSAGE(s.status == 0, s.describe());
    digest = skopeo_digest(s.out);
    REQUIRE_MESSAGE(!digest.empty(), s.out);
    // docker push prints the digest the registry now serves; so must builder.
    CHECK_MESSAGE((push.out + push.err).find(digest) != std::string::npos,
                  "push does not print the manifest digest " << digest << "\n" << push.describe());
    // The config the registry holds is the local image's config (its id).
    Result c = run_process({"skopeo", "inspect", "--tls-verify=false", "--raw", "--config", "docker://" + ref});
    CHECK_MESSAGE(c.status == 0, c.describe());
    CHECK_MESSAGE("sha256:" + builder::base::sha256_hex(c.out) == app_id, c.out);
  }

  // A second push uploads no blob (they exist); a push to another repository of the same
  // registry mounts them instead of uploading (cross-repo mount).
  const size_t uploads = log_count(reg, "\"PATCH /v2/") + log_count(reg, "\"PUT /v2/x/app/blobs/");
  CHECK_MESSAGE(uploads > 0, "no upload seen in the registry's access log\n" << reg.log());
  Result again = bx(a, cfg, {"push", ref});
  CHECK_MESSAGE(again.status == 0, again.describe());
  CHECK_MESSAGE(log_count(reg, "\"PATCH /v2/") + log_count(reg, "\"PUT /v2/x/app/blobs/") == uploads,
                "a second push uploaded blobs again\n" << reg.log());
  const std::string other = reg.ref("y/other:1");
  REQUIRE(bx(a, cfg, {"tag", "app", other}).status == 0);
  Result push_other = bx(a, cfg, {"push", other});
  CHECK_MESSAGE(push_other.status == 0, push_other.describe());
  CHECK_MESSAGE(log_count(reg, "\"PATCH /v2/y/other/") + log_count(reg, "\"PUT /v2/y/other/blobs/") == 0,
                "blobs already in x/app were uploaded to y/other instead of mounted\n" << reg.log());
  CHECK_MESSAGE(log_count(reg, "mount=") > 0, "no cross-repo mount was tried\n" << reg.log());

  // An empty root pulls it: same image id, the manifest stored as is, and it runs.
  TestRoot b2;
  Result pull = bx(b2, cfg, {"pull", ref});
  REQUIRE_MESSAGE(pull.status == 0, pull.describe() << "\n" << reg.log());
  CHECK(image_id_of(b2, cfg, ref) == app_id);
  if (!digest.empty())
    CHECK_MESSAGE(fs::exists(b2.store() / "content" / "blobs" / "sha256" / digest.substr(7)),
                  "the pulled manifest is not stored under the registry's digest " << digest);
  Result images = bx(b2, cfg, {"images"});
  CHECK_MESSAGE(images.status == 0, images.describe());
  CHECK_MESSAGE(has_repository(images.out, reg.host() + "/x/app"), images.describe());
  Result run = bx(b2, cfg, {"run", "--rm", ref});
  CHECK_MESSAGE(run.status == 0, run.describe());
  CHECK_MESSAGE(run.out == "hello through a registry\nbuilt by a RUN step\n", run.describe());
  // A tag the registry does not have: a clear error, nothing tagged.
  Result missing = bx(b2, cfg, {"pull", reg.ref("x/app:no-such-tag")});
  check_clean_failure(missing);
  CHECK_MESSAGE(contains_any(missing.err, {"not found", "unknown", "404", "no such"}), missing.describe());
  CHECK(bx(b2, cfg, {"inspect", reg.ref("x/app:no-such-tag")}).status != 0);
  // Pulling by digest gives the same image (--insecure-registry: accepted, though loopback
  // is allowed plain http without it).
  if (!digest.empty()) {
    Result by_digest = bx(b2, cfg, {"pull", "--insecure-registry", reg.host(), reg.ref("x/app@" + digest)});
    CHECK_MESSAGE(by_digest.status == 0, by_digest.describe());
    CHECK(image_id_of(b2, cfg, reg.ref("x/app@" + digest)) == app_id);
  }
  CHECK(corrupt_blobs(b2).empty());
  CHECK(ingest_leftovers(b2).empty());
  b2.check_no_mounts();
}

TEST_CASE("registry: skopeo pushes, builder pulls and builds FROM it; the base is pinned until --pull") {
  if (!builder::test::have_root()) return;
  if (!builder::e2e::require_tool("skopeo")) return;
  TestRegistry reg;
  if (!reg.started()) return;
  DockerConfigDir cfg;
  const std::string ref = reg.ref("sk/base:1");

  // Two versions of a base, saved as OCI archives; skopeo pushes them (one now, one later).
  TestRoot a;
  REQUIRE(a.import_busybox());
  for (std::string v : {"one", "two"}) {
    Result b = bx(a, cfg, {"build", "--build-arg", "V=" + v, "-t", "base:" + v, testdata("e2e/registry/base")});
    REQUIRE_MESSAGE(b.status == 0, b.describe());
    Result s = bx(a, cfg, {"save", "--format", "oci", "-o", (a.work() / (v + ".tar")).string(), "base:" + v});
    REQUIRE_MESSAGE(s.status == 0, s.describe());
  }
  auto skopeo_push = [&](const std::string& v) {
    Result c = run_process({"skopeo", "copy", "--dest-tls-verify=false",
                            "oci-archive:" + (a.work() / (v + ".tar")).string(), "docker://" + ref});
    REQUIRE_MESSAGE(c.status == 0, c.describe());
  };
  skopeo_push("one");

  // builder pulls what skopeo pushed, and runs it.
  TestRoot b;
  Result pull = bx(b, cfg, {"pull", ref});
  REQUIRE_MESSAGE(pull.status == 0, pull.describe() << "\n" << reg.log());
  Result cat = bx(b, cfg, {"run", "--rm", ref, "cat", "/base.txt"});
  CHECK_MESSAGE(cat.out == "one\n", cat.describe());

  // On an empty root, FROM pulls the base.
  TestRoot c;
  const std::vector<std::string> build{"build", "--progress=plain", "--build-arg", "BASE=" + ref, "-t", "consumer",
                                       testdata("e2e/registry/consumer")};
  Result first = bx(c, cfg, build);
  REQUIRE_MESSAGE(first.status == 0, first.describe() << "\n" << reg.log());
  Result r1 = bx(c, cfg, {"run", "--rm", "consumer"});
  CHECK_MESSAGE(r1.out == "one\n", r1.describe());

  // Another image under the same tag: a build without --pull keeps the local base (the
  // cache key is pinned to its digest, so the RUN step is cached) ...
  skopeo_push("two");
  Result second = bx(c, cfg, build);
  REQUIRE_MESSAGE(second.status == 0, second.describe());
  auto states = builder::e2e::step_cache_states(second.err, "RUN");
  REQUIRE_MESSAGE(states.size() == 1, second.describe());
  CHECK_MESSAGE(states.begin()->second, "RUN not cached without --pull\n" << second.describe());
  Result r2 = bx(c, cfg, {"run", "--rm", "consumer"});
  CHECK_MESSAGE(r2.out == "one\n", r2.describe());

  // ... and --pull picks the new one, so the RUN step runs again.
  std::vector<std::string> pull_build = build;
  pull_build.insert(pull_build.begin() + 1, "--pull");
  Result third = bx(c, cfg, pull_build);
  REQUIRE_MESSAGE(third.status == 0, third.describe() << "\n" << reg.log());
  states = builder::e2e::step_cache_states(third.err, "RUN");
  REQUIRE_MESSAGE(states.size() == 1, third.describe());
  CHECK_MESSAGE(!states.begin()->second, "RUN cached after --pull brought a new base\n" << third.describe());
  Result r3 = bx(c, cfg, {"run", "--rm", "consumer"});
  CHECK_MESSAGE(r3.out == "two\n", r3.describe());

  // `pull` always asks the registry: the first puller now gets the new image too.
  Result repull = bx(b, cfg, {"pull", ref});
  CHECK_MESSAGE(repull.status == 0, repull.describe());
  Result cat2 = bx(b, cfg, {"run", "--rm", ref, "cat", "/base.txt"});
  CHECK_MESSAGE(cat2.out == "two\n", cat2.describe());
  b.check_no_mounts();
  c.check_no_mounts();
}

TEST_CASE("registry: basic auth: push needs login; login, push, pull, logout") {
  if (!builder::test::have_root()) return;
  TestRegistry reg(RegistryAuth::Basic);
  if (!reg.started()) return;
  DockerConfigDir cfg;
  TestRoot a;
  REQUIRE(a.import_busybox());
  const std::string ref = reg.ref("auth/app:1");
  Result b = bx(a, cfg, {"build", "-t", ref, testdata("e2e/registry/app")});
  REQUIRE_MESSAGE(b.status == 0, b.describe());

  // Without credentials: a clear auth error, and nothing written to the config.
  Result anon = bx(a, cfg, {"push", ref});
  check_clean_failure(anon);
  CHECK_MESSAGE(contains_any(anon.err, {"auth", "401", "login"}), anon.describe());
  CHECK(!fs::exists(cfg.config_json()));

  // A wrong password fails and writes nothing.
  Result wrong = bx(a, cfg, {"login", "-u", reg.user(), "-p", "not-the-password", reg.host()});
  check_clean_failure(wrong);
  CHECK_MESSAGE(contains_any(wrong.err, {"auth", "401", "password", "credentials"}), wrong.describe());
  CHECK_MESSAGE(!fs::exists(cfg.config_json()), slurp(cfg.config_json()));

  // login writes config.json (0600) with an auths entry for the host.
  Result login = bx(a, cfg, {"login", "-u", reg.user(), "-p", reg.password(), reg.host()});
  REQUIRE_MESSAGE(login.status == 0, login.describe() << "\n" << reg.log());
  CHECK_MESSAGE((login.out + login.err).find(reg.password()) == std::string::npos, login.describe());
  REQUIRE(fs::exists(cfg.config_json()));
  struct stat st {};
  REQUIRE(::stat(cfg.config_json().c_str(), &st) == 0);
  CHECK_MESSAGE((st.st_mode & 07777) == 0600, "config.json mode " << std::oct << (st.st_mode & 07777));
  const std::string config = slurp(cfg.config_json());
  CHECK_MESSAGE(config.find("\"auths\"") != std::string::npos, config);
  CHECK_MESSAGE(config.find("\"" + reg.host() + "\"") != std::string::npos, config);
  // docker's format: "auth": base64("user:password").
  const std::string b64 = [&] {
    Result e = run_process({"sh", "-c", "printf %s '" + reg.user() + ":" + reg.password() + "' | base64 -w0"});
    return e.out;
  }();
  CHECK_MESSAGE(config.find(b64) != std::string::npos, config);

  Result push = bx(a, cfg, {"push", ref});
  REQUIRE_MESSAGE(push.status == 0, push.describe() << "\n" << reg.log());
  TestRoot b2;
  Result pull = bx(b2, cfg, {"pull", ref});
  REQUIRE_MESSAGE(pull.status == 0, pull.describe() << "\n" << reg.log());
  Result run = bx(b2, cfg, {"run", "--rm", ref});
  CHECK_MESSAGE(run.out == "hello through a registry\nbuilt by a RUN step\n", run.describe());

  // logout forgets the host; a pull on another empty root fails again, with an auth error.
  Result logout = bx(a, cfg, {"logout", reg.host()});
  CHECK_MESSAGE(logout.status == 0, logout.describe());
  CHECK_MESSAGE(slurp(cfg.config_json()).find("\"" + reg.host() + "\"") == std::string::npos,
                slurp(cfg.config_json()));
  TestRoot c;
  Result denied = bx(c, cfg, {"pull", ref});
  check_clean_failure(denied);
  CHECK_MESSAGE(contains_any(denied.err, {"auth", "401", "login"}), denied.describe());
  CHECK(bx(c, cfg, {"inspect", ref}).status != 0);

  // --password-stdin works the same.
  Result stdin_login =
      bx(a, cfg, {"login", "-u", reg.user(), "--password-stdin", reg.host()}, reg.password() + "\n");
  CHECK_MESSAGE(stdin_login.status == 0, stdin_login.describe());
  Result pull2 = bx(c, cfg, {"pull", ref});
  CHECK_MESSAGE(pull2.status == 0, pull2.describe());
  c.check_no_mounts();
  b2.check_no_mounts();
}

TEST_CASE("registry: token auth: login, push, pull through a token server") {
  if (!builder::test::have_root()) return;
  TestRegistry reg(RegistryAuth::Token);
  if (!reg.started()) return;
  DockerConfigDir cfg;
  TestRoot a;
  REQUIRE(a.import_busybox());
  const std::string ref = reg.ref("tok/app:1");
  Result b = bx(a, cfg, {"build", "-t", ref, testdata("e2e/registry/app")});
  REQUIRE_MESSAGE(b.status == 0, b.describe());

  Result anon = bx(a, cfg, {"push", ref});
  check_clean_failure(anon);
  CHECK_MESSAGE(contains_any(anon.err, {"auth", "401", "denied", "login"}), anon.describe());

  Result wrong = bx(a, cfg, {"login", "-u", reg.user(), "-p", "not-the-password", reg.host()});
  check_clean_failure(wrong);
  CHECK(!fs::exists(cfg.config_json()));

  Result login = bx(a, cfg, {"login", "-u", reg.user(), "-p", reg.password(), reg.host()});
  REQUIRE_MESSAGE(login.status == 0, login.describe() << "\n" << reg.log());
  Result push = bx(a, cfg, {"push", ref});
  REQUIRE_MESSAGE(push.status == 0, push.describe() << "\n" << reg.log());
  // The push went through a token with push rights for the user.
  const std::string tokens = reg.token_log();
  CHECK_MESSAGE(tokens.find("user=" + reg.user() + " scope=repository:tok/app:") != std::string::npos, tokens);
  CHECK_MESSAGE(std::regex_search(tokens, std::regex("scope=repository:tok/app:[a-z,]*push[^\\n]*status=200")),
                tokens);

  TestRoot b2;
  Result pull = bx(b2, cfg, {"pull", ref});
  REQUIRE_MESSAGE(pull.status == 0, pull.describe() << "\n" << reg.log());
  Result run = bx(b2, cfg, {"run", "--rm", ref});
  CHECK_MESSAGE(run.out == "hello through a registry\nbuilt by a RUN step\n", run.describe());

  // Without the credentials (another DOCKER_CONFIG) the pull is refused.
  DockerConfigDir empty_cfg;
  TestRoot c;
  Result denied = bx(c, empty_cfg, {"pull", ref});
  check_clean_failure(denied);
  CHECK_MESSAGE(contains_any(denied.err, {"auth", "401", "denied", "login"}), denied.describe());
  b2.check_no_mounts();
}

TEST_CASE("registry: a misbehaving registry is refused with a clear error and changes nothing") {
  if (!builder::test::have_root()) return;
  FakeRegistry fake;
  REQUIRE(fake.started());
  DockerConfigDir cfg;

  // Control: the image itself is valid, so each failure below is the misbehaviour's.
  {
    TestRoot root;
    Result good = bx(root, cfg, {"pull", fake.ref("good/app:1")});
    REQUIRE_MESSAGE(good.status == 0, good.describe() << "\n" << fake.log());
    CHECK(bx(root, cfg, {"inspect", fake.ref("good/app:1")}).status == 0);
  }

  struct Case {
    std::string ref;
    std::vector<std::string> words;  // the error names the problem with one of these
  };
  const std::vector<std::string> too_big{"size", "large", "exceed", "limit", "bytes"};
  const std::vector<Case> cases{
      {"bad/digest:1", {"digest", "mismatch"}},
      {"bad/short:1", {"short", "eof", "incomplete", "size", "partial", "truncated", "closed", "length"}},
      {"bad/endless:1", too_big},
      {"bad/endless-manifest:1", too_big},
      {"bad/schema1:1", {"schema1", "schema 1", "schemaversion", "schema version", "v1+prettyjws", "manifest.v1"}},
      {"bad/layer-count:1", {"diff_id", "diffid", "diff id", "layers"}},
      {"bad/diffid:1", {"diff_id", "diffid", "diff id", "uncompressed", "digest"}},
      {"bad/huge-manifest:1", too_big},
      {"bad/manifest-digest@" + builder::base::Digest::of("not this manifest").str(), {"digest", "mismatch"}},
      {"no/such-repo:1", {"not found", "unknown", "404", "no such"}},
  };
  for (const auto& c : cases) {
    CAPTURE(c.ref);
    TestRoot root;
    REQUIRE(root.import_busybox());
    Result before = bx(root, cfg, {"images"});
    REQUIRE(before.status == 0);
    const auto start = std::chrono::steady_clock::now();
    Result pull = bx(root, cfg, {"pull", fake.ref(c.ref)});
    const auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    check_clean_failure(pull);
    CHECK_MESSAGE(contains_any(pull.err, c.words), pull.describe());
    CHECK_MESSAGE(secs < 20, "pull took " << secs << " s");
    // Nothing tagged, the image list unchanged, no ingest file left, no corrupt blob.
    CHECK(bx(root, cfg, {"inspect", fake.ref(c.ref)}).status != 0);
    Result after = bx(root, cfg, {"images"});
    CHECK_MESSAGE(image_table(after) == image_table(before), before.out << "\n---\n" << after.out);
    auto left = ingest_leftovers(root);
    CHECK_MESSAGE(left.empty(), builder::e2e::join(left));
    auto corrupt = corrupt_blobs(root);
    CHECK_MESSAGE(corrupt.empty(), builder::e2e::join(corrupt));
    // The store is still sound: the next command works.
    CHECK(bx(root, cfg, {"inspect", "busybox"}).status == 0);
  }

  // The endless bodies were cut off early, not read to the server's 1 GiB bound.
  static const std::regex endless(R"re(endless (\S+) (\d+))re");
  const std::string record = fake.record();
  size_t endless_seen = 0;
  for (std::sregex_iterator it(record.begin(), record.end(), endless), end; it != end; ++it) {
    ++endless_seen;
    CHECK_MESSAGE(std::stoll((*it)[2]) < (64ll << 20), "read " << (*it)[2] << " bytes of " << (*it)[1]);
  }
  CHECK_MESSAGE(endless_seen >= 2, record);

  // 503 twice, then the answer: retried, and the pull succeeds.
  {
    TestRoot root;
    Result flaky = bx(root, cfg, {"pull", fake.ref("flaky/app:1")});
    CHECK_MESSAGE(flaky.status == 0, flaky.describe() << "\n" << fake.record());
    CHECK(bx(root, cfg, {"inspect", fake.ref("flaky/app:1")}).status == 0);
    CHECK_MESSAGE(builder::e2e::count(fake.record(), "/v2/flaky/app/manifests/1 ") >= 3, fake.record());
  }
}

TEST_CASE("registry: credentials are never sent to the host a blob is redirected to") {
  if (!builder::test::have_root()) return;
  FakeRegistry fake("fake-user", "fake-pass");
  REQUIRE(fake.started());
  DockerConfigDir cfg;
  TestRoot root;

  // Without credentials: refused with an auth error.
  Result anon = bx(root, cfg, {"pull", fake.ref("redirect/app:1")});
  check_clean_failure(anon);
  CHECK_MESSAGE(contains_any(anon.err, {"auth", "401", "login"}), anon.describe());

  Result login = bx(root, cfg, {"login", "-u", fake.user(), "-p", fake.password(), fake.host()});
  REQUIRE_MESSAGE(login.status == 0, login.describe() << "\n" << fake.log());
  Result pull = bx(root, cfg, {"pull", fake.ref("redirect/app:1")});
  CHECK_MESSAGE(pull.status == 0, pull.describe() << "\n" << fake.record());
  CHECK(bx(root, cfg, {"inspect", fake.ref("redirect/app:1")}).status == 0);

  const std::string record = fake.record();
  // The registry got the credentials for the blobs; the other host served them without.
  CHECK_MESSAGE(std::regex_search(record, std::regex("main GET /v2/redirect/app/blobs/\\S+ auth=yes")), record);
  CHECK_MESSAGE(std::regex_search(record, std::regex("redirect GET /storage/\\S+ auth=no")), record);
  CHECK_MESSAGE(!std::regex_search(record, std::regex("redirect \\S+ \\S+ auth=yes")), record);
}

namespace {

/// A temp dir of docker-credential-<name> copies of testdata's credential-helper.sh (see
/// the script: -broken fails, others keep credentials under store-<name>/), and the PATH
/// that puts it first.
class CredentialHelpers {
 public:
  explicit CredentialHelpers(std::initializer_list<std::string> names) : dir_("cred-helpers") {
    REQUIRE(dir_.ok());
    for (const auto& n : names) {
      const fs::path p = dir_.path() / ("docker-credential-" + n);
      fs::copy_file(testdata("e2e/registry/credential-helper.sh"), p);
      fs::permissions(p, fs::perms(0755));
    }
  }
  std::string path_env() const {
    const char* old = std::getenv("PATH");
    return "PATH=" + dir_.path().string() + ":" + (old ? old : "/usr/bin:/bin");
  }
  /// What helper `name` holds for `server` (its stored JSON), "" if nothing.
  std::string stored(const std::string& name, const std::string& server) const {
    std::string key;
    for (char c : server) key += std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' ? c : '_';
    return slurp(dir_.path() / ("store-" + name) / key);
  }
  std::string calls(const std::string& name) const { return slurp(dir_.path() / ("store-" + name) / "calls.log"); }

 private:
  builder::e2e::ScratchDir dir_;
};

}  // namespace

TEST_CASE("registry: credential helpers: login stores through credsStore, push and pull use it, logout erases") {
  if (!builder::test::have_root()) return;
  TestRegistry reg(RegistryAuth::Basic);
  if (!reg.started()) return;
  DockerConfigDir cfg;
  CredentialHelpers helpers({"test", "other", "x-broken"});
  const std::vector<std::string> env{cfg.env(), helpers.path_env()};
  builder::e2e::write_file(cfg.config_json(), R"({"credsStore": "test"})");
  TestRoot a;
  REQUIRE(a.import_busybox());
  const std::string ref = reg.ref("helper/app:1");
  Result b = builder_env(a, env, {"build", "-t", ref, testdata("e2e/registry/app")});
  REQUIRE_MESSAGE(b.status == 0, b.describe());

  // The helper has nothing yet: anonymous, refused by the registry.
  Result anon = builder_env(a, env, {"push", ref});
  check_clean_failure(anon);
  CHECK_MESSAGE(contains_any(anon.err, {"401", "login"}), anon.describe());

  // login: the secret goes to the helper (Docker's JSON on its stdin); config.json gets
  // an empty entry for the registry and no secret.
  Result login = builder_env(a, env, {"login", "-u", reg.user(), "--password-stdin", reg.host()}, reg.password());
  REQUIRE_MESSAGE(login.status == 0, login.describe() << "\n" << reg.log());
  CHECK_MESSAGE(login.err.find("unencrypted") == std::string::npos, login.describe());
  const std::string stored = helpers.stored("test", reg.host());
  REQUIRE_MESSAGE(!stored.empty(), helpers.calls("test"));
  auto j = builder::base::Json::parse(stored);
  CHECK(j["ServerURL"] == reg.host());
  CHECK(j["Username"] == reg.user());
  CHECK(j["Secret"] == reg.password());
  const std::string config = slurp(cfg.config_json());
  CHECK_MESSAGE(config.find(reg.password()) == std::string::npos, config);
  CHECK_MESSAGE(config.find("\"auth\"") == std::string::npos, config);
  auto cj = builder::base::Json::parse(config);
  CHECK(cj["credsStore"] == "test");
  CHECK(cj["auths"][reg.host()] == builder::base::Json::object());

  // push and pull authenticate with what the helper gives.
  Result push = builder_env(a, env, {"push", ref});
  REQUIRE_MESSAGE(push.status == 0, push.describe() << "\n" << reg.log());
  TestRoot b2;
  Result pull = builder_env(b2, env, {"pull", ref});
  REQUIRE_MESSAGE(pull.status == 0, pull.describe() << "\n" << reg.log());
  Result run = builder_env(b2, env, {"run", "--rm", ref});
  CHECK_MESSAGE(run.out == "hello through a registry\nbuilt by a RUN step\n", run.describe());
  CHECK_MESSAGE(helpers.calls("test").find("get") != std::string::npos, helpers.calls("test"));

  // logout erases through the helper and drops the auths entry; pulls are refused again.
  Result logout = builder_env(a, env, {"logout", reg.host()});
  CHECK_MESSAGE(logout.status == 0, logout.describe());
  CHECK_MESSAGE(logout.out.find("Removing login credentials for " + reg.host()) != std::string::npos,
                logout.describe());
  CHECK(helpers.stored("test", reg.host()).empty());
  CHECK(helpers.calls("test").find("erase") != std::string::npos);
  CHECK_FALSE(builder::base::Json::parse(slurp(cfg.config_json()))["auths"].contains(reg.host()));
  TestRoot c;
  Result denied = builder_env(c, env, {"pull", ref});
  check_clean_failure(denied);
  CHECK_MESSAGE(contains_any(denied.err, {"401", "login"}), denied.describe());

  // credHelpers beats credsStore: with a broken credsStore, the registry's own helper is
  // the one asked (login stores there, pull works), the broken one never runs.
  builder::e2e::write_file(cfg.config_json(),
                           R"({"credsStore": "x-broken", "credHelpers": {")" + reg.host() + R"(": "other"}})");
  Result login2 = builder_env(a, env, {"login", "-u", reg.user(), "--password-stdin", reg.host()}, reg.password());
  REQUIRE_MESSAGE(login2.status == 0, login2.describe());
  CHECK(builder::base::Json::parse(helpers.stored("other", reg.host()))["Secret"] == reg.password());
  Result pull2 = builder_env(c, env, {"pull", ref});
  CHECK_MESSAGE(pull2.status == 0, pull2.describe());
  CHECK_MESSAGE(helpers.calls("x-broken").empty(), helpers.calls("x-broken"));

  // A failing helper is an error naming it and its message, not anonymous access.
  builder::e2e::write_file(cfg.config_json(), R"({"credsStore": "x-broken"})");
  TestRoot d;
  Result broken = builder_env(d, env, {"pull", ref});
  check_clean_failure(broken);
  CHECK_MESSAGE(broken.err.find("docker-credential-x-broken") != std::string::npos, broken.describe());
  CHECK_MESSAGE(broken.err.find("the keychain is locked") != std::string::npos, broken.describe());
  CHECK(builder_env(d, env, {"inspect", ref}).status != 0);
  // A helper that is not installed: the same, saying so.
  builder::e2e::write_file(cfg.config_json(), R"({"credsStore": "not-installed"})");
  Result missing = builder_env(d, env, {"login", "-u", reg.user(), "--password-stdin", reg.host()}, reg.password());
  check_clean_failure(missing);
  CHECK_MESSAGE(missing.err.find("docker-credential-not-installed` not found in PATH") != std::string::npos,
                missing.describe());
  d.check_no_mounts();
  b2.check_no_mounts();
}

TEST_CASE("registry: --insecure-registry: a plain-http registry on a non-loopback address needs it") {
  if (!builder::test::have_root()) return;
  const std::string ip = builder::e2e::non_loopback_ipv4();
  if (ip.empty()) {
    MESSAGE("this host has no non-loopback IPv4 address: skipped");
    return;
  }
  TestRegistry reg(builder::e2e::RegistryListen{ip, false});
  if (!reg.started()) return;
  DockerConfigDir cfg;
  // No proxy from the environment may see this address.
  const std::vector<std::string> env{cfg.env(), "no_proxy=" + ip, "NO_PROXY=" + ip};
  TestRoot a;
  REQUIRE(a.import_busybox());
  const std::string ref = reg.ref("insecure/app:1");
  Result b = builder_env(a, env, {"build", "-t", ref, testdata("e2e/registry/app")});
  REQUIRE_MESSAGE(b.status == 0, b.describe());

  // Not listed: https only, which a plain-http server cannot speak; the error says what to do.
  Result refused = builder_env(a, env, {"push", ref});
  check_clean_failure(refused);
  CHECK_MESSAGE(refused.err.find("--insecure-registry " + reg.host()) != std::string::npos, refused.describe());
  CHECK_MESSAGE(contains_any(refused.err, {"tls", "ssl"}), refused.describe());

  // Listed: https is tried, fails, and plain http is used.
  Result push = builder_env(a, env, {"push", "--insecure-registry", reg.host(), ref});
  REQUIRE_MESSAGE(push.status == 0, push.describe() << "\n" << reg.log());
  // An IP network lists it too; an empty root pulls and runs it.
  TestRoot b2;
  Result pull = builder_env(b2, env, {"pull", "--insecure-registry", ip + "/32", ref});
  REQUIRE_MESSAGE(pull.status == 0, pull.describe() << "\n" << reg.log());
  Result run = builder_env(b2, env, {"run", "--rm", ref});
  CHECK_MESSAGE(run.out == "hello through a registry\nbuilt by a RUN step\n", run.describe());
  // build takes the same option for FROM pulls.
  const std::string base_ref = reg.ref("insecure/base:1");
  Result base = builder_env(a, env, {"build", "--build-arg", "V=insecure", "-t", base_ref, testdata("e2e/registry/base")});
  REQUIRE_MESSAGE(base.status == 0, base.describe());
  REQUIRE(builder_env(a, env, {"push", "--insecure-registry", reg.host(), base_ref}).status == 0);
  TestRoot c;
  const std::vector<std::string> consumer{"--build-arg", "BASE=" + base_ref, "-t", "consumer",
                                          testdata("e2e/registry/consumer")};
  std::vector<std::string> build{"build", "--insecure-registry", reg.host()};
  build.insert(build.end(), consumer.begin(), consumer.end());
  Result from = builder_env(c, env, build);
  CHECK_MESSAGE(from.status == 0, from.describe() << "\n" << reg.log());
  Result seen = builder_env(c, env, {"run", "--rm", "consumer"});
  CHECK_MESSAGE(seen.out == "insecure\n", seen.describe());
  std::vector<std::string> unlisted{"build", "--pull"};
  unlisted.insert(unlisted.end(), consumer.begin(), consumer.end());
  Result from_refused = builder_env(c, env, unlisted);
  check_clean_failure(from_refused);
  CHECK_MESSAGE(from_refused.err.find("--insecure-registry " + reg.host()) != std::string::npos,
                from_refused.describe());

  // Malformed values are refused by every verb, before anything runs.
  for (const auto& verb : {"pull", "push", "build", "login"}) {
    CAPTURE(verb);
    Result bad = builder_env(a, env, {verb, "--insecure-registry", "http://" + reg.host(), ref});
    check_clean_failure(bad);
    CHECK_MESSAGE(bad.err.find("without a scheme") != std::string::npos, bad.describe());
  }
  b2.check_no_mounts();
  c.check_no_mounts();
}

TEST_CASE("registry: --insecure-registry: a self-signed https registry is refused without it, used with it") {
  if (!builder::test::have_root()) return;
  const std::string ip = builder::e2e::non_loopback_ipv4();
  if (ip.empty()) {
    MESSAGE("this host has no non-loopback IPv4 address: skipped");
    return;
  }
  TestRegistry reg(builder::e2e::RegistryListen{ip, true});
  if (!reg.started()) return;
  DockerConfigDir cfg;
  const std::vector<std::string> env{cfg.env(), "no_proxy=" + ip, "NO_PROXY=" + ip};
  TestRoot a;
  REQUIRE(a.import_busybox());
  const std::string ref = reg.ref("tls/app:1");
  Result b = builder_env(a, env, {"build", "-t", ref, testdata("e2e/registry/app")});
  REQUIRE_MESSAGE(b.status == 0, b.describe());

  const auto start = std::chrono::steady_clock::now();
  Result refused = builder_env(a, env, {"push", ref});
  const auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  check_clean_failure(refused);
  CHECK_MESSAGE(lower(refused.err).find("certificate") != std::string::npos, refused.describe());
  CHECK_MESSAGE(refused.err.find("--insecure-registry " + reg.host()) != std::string::npos, refused.describe());
  CHECK_MESSAGE(secs < 2, "an untrusted certificate was retried: " << secs << " s");

  // Listed: https without verification (plain http would get the TLS server's 400).
  Result push = builder_env(a, env, {"push", "--insecure-registry", reg.host(), ref});
  REQUIRE_MESSAGE(push.status == 0, push.describe() << "\n" << reg.log());
  TestRoot b2;
  Result pull_refused = builder_env(b2, env, {"pull", ref});
  check_clean_failure(pull_refused);
  CHECK_MESSAGE(lower(pull_refused.err).find("certificate") != std::string::npos, pull_refused.describe());
  Result pull = builder_env(b2, env, {"pull", "--insecure-registry", ip, ref});
  REQUIRE_MESSAGE(pull.status == 0, pull.describe() << "\n" << reg.log());
  Result run = builder_env(b2, env, {"run", "--rm", ref});
  CHECK_MESSAGE(run.out == "hello through a registry\nbuilt by a RUN step\n", run.describe());
  b2.check_no_mounts();
}

TEST_CASE("registry: an image pulled through an index is found by the index digest in every verb") {
  if (!builder::test::have_root()) return;
  if (!builder::e2e::require_tool("curl")) return;
  TestRegistry reg;
  if (!reg.started()) return;
  DockerConfigDir cfg;
  TestRoot a;
  REQUIRE(a.import_busybox());
  // Two images in one repository: the app (for linux/amd64) and a base (for linux/arm64).
  const std::string amd = reg.ref("multi/app:amd64"), arm = reg.ref("multi/app:arm64");
  REQUIRE(bx(a, cfg, {"build", "-t", amd, testdata("e2e/registry/app")}).status == 0);
  REQUIRE(bx(a, cfg, {"build", "--build-arg", "V=arm", "-t", arm, testdata("e2e/registry/base")}).status == 0);
  const std::string app_id = image_id_of(a, cfg, amd);
  auto pushed = [&](const std::string& ref) {
    Result p = bx(a, cfg, {"push", ref});
    REQUIRE_MESSAGE(p.status == 0, p.describe());
    static const std::regex re(R"re(digest: (sha256:[0-9a-f]{64}) size: (\d+))re");
    std::smatch m;
    REQUIRE_MESSAGE(std::regex_search(p.out, m, re), p.out);
    return std::make_pair(std::string(m[1]), std::stoull(m[2]));
  };
  auto [amd_digest, amd_size] = pushed(amd);
  auto [arm_digest, arm_size] = pushed(arm);

  // An OCI index listing arm64 first, PUT under the tag `1`.
  builder::base::Json index = {
      {"schemaVersion", 2},
      {"mediaType", "application/vnd.oci.image.index.v1+json"},
      {"manifests",
       {{{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
         {"digest", arm_digest},
         {"size", arm_size},
         {"platform", {{"architecture", "arm64"}, {"os", "linux"}}}},
        {{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
         {"digest", amd_digest},
         {"size", amd_size},
         {"platform", {{"architecture", "amd64"}, {"os", "linux"}}}}}}};
  const std::string index_bytes = index.dump();
  const std::string index_digest = builder::base::Digest::of(index_bytes).str();
  builder::e2e::write_file(a.work() / "index.json", index_bytes);
  Result put = run_process({"curl", "-fsS", "-X", "PUT", "-H", "Content-Type: application/vnd.oci.image.index.v1+json",
                            "--data-binary", "@" + (a.work() / "index.json").string(),
                            "http://" + reg.host() + "/v2/multi/app/manifests/1"});
  REQUIRE_MESSAGE(put.status == 0, put.describe() << "\n" << reg.log());

  // An empty root pulls the tag: the index selects the amd64 image.
  TestRoot b2;
  Result pull = bx(b2, cfg, {"pull", reg.ref("multi/app:1")});
  REQUIRE_MESSAGE(pull.status == 0, pull.describe() << "\n" << reg.log());
  CHECK(image_id_of(b2, cfg, reg.ref("multi/app:1")) == app_id);

  // Every verb takes name@<index digest> and the bare index digest.
  const std::string by_index = reg.ref("multi/app@" + index_digest);
  CHECK(image_id_of(b2, cfg, by_index) == app_id);
  CHECK(image_id_of(b2, cfg, index_digest) == app_id);
  Result run = bx(b2, cfg, {"run", "--rm", by_index});
  CHECK_MESSAGE(run.status == 0, run.describe());
  CHECK_MESSAGE(run.out == "hello through a registry\nbuilt by a RUN step\n", run.describe());
  Result tag = bx(b2, cfg, {"tag", by_index, "local/by-index:1"});
  CHECK_MESSAGE(tag.status == 0, tag.describe());
  CHECK(image_id_of(b2, cfg, "local/by-index:1") == app_id);
  // The platform manifest's own digest still works, and an unknown digest is not found.
  CHECK(image_id_of(b2, cfg, reg.ref("multi/app@" + amd_digest)) == app_id);
  Result unknown = bx(b2, cfg, {"inspect", reg.ref("multi/app@" + builder::base::Digest::of("nothing").str())});
  check_clean_failure(unknown);

  // Pruning the build cache keeps the index with the image.
  Result prune = bx(b2, cfg, {"prune", "-a", "-f"});
  CHECK_MESSAGE(prune.status == 0, prune.describe());
  CHECK(fs::exists(b2.store() / "content" / "blobs" / "sha256" / index_digest.substr(7)));
  CHECK(image_id_of(b2, cfg, by_index) == app_id);

  // Removing the image forgets its index digest too.
  Result rmi = bx(b2, cfg, {"rmi", "-f", app_id});
  CHECK_MESSAGE(rmi.status == 0, rmi.describe());
  CHECK(bx(b2, cfg, {"inspect", by_index}).status != 0);
  b2.check_no_mounts();
}
