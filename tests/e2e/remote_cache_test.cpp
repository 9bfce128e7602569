// tests/e2e/remote_cache_test.cpp — --cache-to / --cache-from end to end: a second,
// empty root built from the cache another root exported runs no RUN step (every RUN
// appends to a cache mount, which stays empty) and gets the same image; mode=min
// covers only the final chain, yet serves it without re-running the stage it copies
// from; a changed line misses from there on; cache mounts
// travel with cache-mounts=true; inline cache through a saved and loaded image;
// registry cache through docker-registry; bad caches are warnings; bad options errors.
#include <algorithm>
#include <regex>

#include "e2e_util.h"
#include "registry_util.h"

using builder::e2e::Result;
using builder::e2e::TestRoot;
using builder::e2e::testdata;
namespace fs = std::filesystem;

namespace {

/// A writable copy of testdata/e2e/remote_cache in the root's work dir.
fs::path context(const TestRoot& root) {
  fs::path dst = root.work() / "ctx";
  if (!fs::exists(dst)) fs::copy(testdata("e2e/remote_cache"), dst, fs::copy_options::recursive);
  return dst;
}

/// `builder build --progress=plain` of `ctx` with `extra` options; the image ID (stdout).
Result build(const TestRoot& root, const fs::path& ctx, std::vector<std::string> extra,
             const std::string& file = "Dockerfile") {
  std::vector<std::string> args{"build", "--progress=plain", "-f", (ctx / file).string()};
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back(ctx.string());
  return root.builder(args);
}

std::string image_id(const Result& r) {
  std::smatch m;
  static const std::regex id(R"(sha256:[0-9a-f]{64})");
  return std::regex_search(r.out, m, id) ? m[0].str() : std::string();
}

/// The RUN steps of the root, as they wrote to the `runs` cache mount (empty: none ran),
/// sorted: independent stages run at once.
std::string runs_log(const TestRoot& root) {
  std::vector<std::string> lines;
  fs::path mounts = root.store() / "cache-mounts";
  if (!fs::exists(mounts)) return {};
  for (const auto& e : fs::recursive_directory_iterator(mounts))
    if (e.is_regular_file() && e.path().filename() == "log")
      for (const auto& l : builder::e2e::lines_of(builder::e2e::slurp(e.path()))) lines.push_back(l);
  std::sort(lines.begin(), lines.end());
  return builder::e2e::join(lines);
}

/// RUN steps of a plain log: text -> CACHED.
std::map<std::string, bool> runs(const Result& r) { return builder::e2e::step_cache_states(r.err, "RUN"); }

/// `from`'s busybox:latest loaded into `to`, as an OCI archive (the same manifest).
bool copy_busybox(const TestRoot& from, const TestRoot& to) {
  fs::path tar = from.dir() / "busybox.tar";
  if (!fs::exists(tar)) {
    Result s = from.builder({"save", "--format", "oci", "-o", tar.string(), "busybox:latest"});
    REQUIRE_MESSAGE(s.status == 0, s.describe());
  }
  Result l = to.builder({"load", "-i", tar.string()});
  REQUIRE_MESSAGE(l.status == 0, l.describe());
  return true;
}

/// The same busybox:latest in every root: FROM's cache key names its manifest digest,
/// and an import dates the image, so it is imported once and copied.
bool busybox_in(std::initializer_list<const TestRoot*> roots) {
  const TestRoot* first = *roots.begin();
  if (!first->import_busybox()) return false;
  for (const TestRoot* r : roots)
    if (r != first && !copy_busybox(*first, *r)) return false;
  return true;
}

std::string cat(const TestRoot& root, const std::string& image, const std::string& path) {
  Result r = root.builder({"run", "--rm", image, "cat", path});
  CHECK_MESSAGE(r.status == 0, r.describe());
  return r.out;
}

}  // namespace

TEST_CASE("remote cache: an empty root built from a local mode=max cache runs no RUN step") {
  TestRoot one, two;
  if (!busybox_in({&one, &two})) return;
  fs::path cache = one.dir() / "cache";
  Result a = build(one, context(one), {"-t", "app", "--cache-to", "type=local,dest=" + cache.string() + ",mode=max"});
  REQUIRE_MESSAGE(a.status == 0, a.describe());
  CHECK(runs_log(one) == "build1\nbuild2\nfinal1\nfinal2\n");
  CHECK_MESSAGE(a.err.find("exported cache to local cache " + cache.string()) != std::string::npos, a.describe());
  CHECK(fs::exists(cache / "index.json"));
  CHECK(fs::exists(cache / "oci-layout"));

  Result b = build(two, context(two), {"-t", "app", "--cache-from", "type=local,src=" + cache.string()});
  REQUIRE_MESSAGE(b.status == 0, b.describe());
  auto states = runs(b);
  CHECK(states.size() == 4);
  for (const auto& [text, cached] : states) CHECK_MESSAGE(cached, text << "\n" << b.describe());
  CHECK_MESSAGE(runs_log(two).empty(), runs_log(two));
  CHECK(b.err.find("WARNING") == std::string::npos);
  CHECK(image_id(b) == image_id(a));
  CHECK_FALSE(image_id(a).empty());
  CHECK(cat(two, "app", "/app/stamp.txt") == cat(one, "app", "/app/stamp.txt"));

  // The imports were indexed: the next build on root two is served locally.
  Result c = build(two, context(two), {"-t", "app"});
  REQUIRE_MESSAGE(c.status == 0, c.describe());
  for (const auto& [text, cached] : runs(c)) CHECK_MESSAGE(cached, text << "\n" << c.describe());
  CHECK(image_id(c) == image_id(a));

  // A changed line misses from there on; what is above it stays cached.
  fs::path ctx3 = context(two);
  std::string df = builder::e2e::slurp(ctx3 / "Dockerfile");
  df.replace(df.find("echo final1 >>"), 14, "echo \"final1\" >>");
  builder::e2e::write_file(ctx3 / "Dockerfile.changed", df);
  TestRoot three;
  if (!copy_busybox(one, three)) return;
  fs::path ctx4 = context(three);
  builder::e2e::write_file(ctx4 / "Dockerfile.changed", df);
  Result d = build(three, ctx4, {"--cache-from", "type=local,src=" + cache.string()}, "Dockerfile.changed");
  REQUIRE_MESSAGE(d.status == 0, d.describe());
  CHECK_MESSAGE(runs_log(three) == "final1\nfinal2\n", runs_log(three) << d.describe());
  one.check_no_mounts();
  two.check_no_mounts();
}

TEST_CASE("remote cache: mode=min serves the final stage without re-running the stage it copies from") {
  TestRoot one, two;
  if (!busybox_in({&one, &two})) return;
  fs::path cache = one.dir() / "cache";
  Result a = build(one, context(one), {"-t", "app", "--cache-to", "type=local,dest=" + cache.string()});
  REQUIRE_MESSAGE(a.status == 0, a.describe());
  CHECK(runs_log(one) == "build1\nbuild2\nfinal1\nfinal2\n");
  Result b = build(two, context(two), {"-t", "app", "--cache-from", "type=local,src=" + cache.string()});
  REQUIRE_MESSAGE(b.status == 0, b.describe());
  // The final result is in the cache: the build stage it copies from is not needed, so
  // it neither runs (it is not in a min cache) nor is fetched, as with BuildKit.
  CHECK_MESSAGE(runs_log(two).empty(), runs_log(two) << b.describe());
  auto states = runs(b);
  CHECK(states.size() == 4);
  for (const auto& [text, cached] : states) CHECK_MESSAGE(cached, text << "\n" << b.describe());
  CHECK(b.err.find("WARNING") == std::string::npos);
  CHECK(image_id(b) == image_id(a));
  CHECK_FALSE(image_id(a).empty());
  CHECK(cat(two, "app", "/app/stamp.txt") == cat(one, "app", "/app/stamp.txt"));

  // Only the final chain was exported: a change in the final stage above the COPY
  // --from needs the build stage's result, which the cache does not have.
  TestRoot three;
  if (!copy_busybox(one, three)) return;
  fs::path ctx3 = context(three);
  std::string df = builder::e2e::slurp(ctx3 / "Dockerfile");
  df.replace(df.find("echo final1 >>"), 14, "echo \"final1\" >>");
  builder::e2e::write_file(ctx3 / "Dockerfile.changed", df);
  Result c = build(three, ctx3, {"--cache-from", "type=local,src=" + cache.string()}, "Dockerfile.changed");
  REQUIRE_MESSAGE(c.status == 0, c.describe());
  CHECK_MESSAGE(runs_log(three) == "build1\nbuild2\nfinal1\nfinal2\n", runs_log(three) << c.describe());
  two.check_no_mounts();
}

TEST_CASE("remote cache: cache-mounts=true carries RUN --mount=type=cache contents to another root") {
  TestRoot one, two;
  if (!busybox_in({&one, &two})) return;
  fs::path cache = one.dir() / "cache";
  Result a = build(one, context(one),
                   {"-t", "pkgs", "--cache-to", "type=local,dest=" + cache.string() + ",cache-mounts=true"},
                   "Dockerfile.mounts");
  REQUIRE_MESSAGE(a.status == 0, a.describe());
  CHECK(cat(one, "pkgs", "/result.txt") == "fresh\n");
  CHECK_MESSAGE(a.err.find("1 cache mounts") != std::string::npos, a.describe());

  // Another step (a different ARG) on an empty root: it misses, and finds the cache
  // mount seeded from the export.
  Result b = build(two, context(two),
                   {"-t", "pkgs", "--build-arg", "STEP=second", "--cache-from", "type=local,src=" + cache.string()},
                   "Dockerfile.mounts");
  REQUIRE_MESSAGE(b.status == 0, b.describe());
  CHECK(cat(two, "pkgs", "/result.txt") == "found: downloaded on download\n");

  // Without the opt-in no cache mount is exported, even one this build used: a third
  // root starts empty.
  fs::path plain = one.dir() / "plain-cache";
  Result c = build(one, context(one),
                   {"-t", "pkgs2", "--build-arg", "STEP=again", "--cache-to", "type=local,dest=" + plain.string()},
                   "Dockerfile.mounts");
  REQUIRE_MESSAGE(c.status == 0, c.describe());
  CHECK(cat(one, "pkgs2", "/result.txt") == "found: downloaded on download\n");
  CHECK_MESSAGE(c.err.find("cache mounts") == std::string::npos, c.describe());
  TestRoot three;
  if (!copy_busybox(one, three)) return;
  Result d = build(three, context(three),
                   {"-t", "pkgs", "--build-arg", "STEP=third", "--cache-from", "type=local,src=" + plain.string()},
                   "Dockerfile.mounts");
  REQUIRE_MESSAGE(d.status == 0, d.describe());
  CHECK(cat(three, "pkgs", "/result.txt") == "fresh\n");
}

TEST_CASE("remote cache: inline cache travels with a saved and loaded image") {
  TestRoot one, two;
  if (!busybox_in({&one, &two})) return;
  Result a = build(one, context(one), {"-t", "app:inline", "--cache-to", "type=inline"});
  REQUIRE_MESSAGE(a.status == 0, a.describe());
  Result inspect = one.builder({"inspect", "app:inline"});
  fs::path tar = one.dir() / "app.tar";
  Result s = one.builder({"save", "-o", tar.string(), "app:inline"});
  REQUIRE_MESSAGE(s.status == 0, s.describe());
  Result l = two.builder({"load", "-i", tar.string()});
  REQUIRE_MESSAGE(l.status == 0, l.describe());

  Result b = build(two, context(two), {"-t", "again", "--cache-from", "app:inline"});
  REQUIRE_MESSAGE(b.status == 0, b.describe());
  // Inline cache is min mode: the final stage is served, so the build stage it copies
  // from is not needed and does not run.
  CHECK_MESSAGE(runs_log(two).empty(), runs_log(two) << b.describe());
  CHECK(cat(two, "again", "/app/copied.txt") == cat(one, "app:inline", "/app/copied.txt"));
}

TEST_CASE("remote cache: a registry cache makes an empty root run no RUN step") {
  builder::e2e::TestRegistry reg;
  if (!reg.started()) return;
  TestRoot one, two;
  if (!busybox_in({&one, &two})) return;
  std::string ref = reg.ref("cache/app:buildcache");
  Result a = build(one, context(one), {"-t", "app", "--cache-to", "type=registry,ref=" + ref + ",mode=max"});
  REQUIRE_MESSAGE(a.status == 0, a.describe() << reg.log());
  Result b = build(two, context(two), {"-t", "app", "--cache-from", "type=registry,ref=" + ref});
  REQUIRE_MESSAGE(b.status == 0, b.describe() << reg.log());
  for (const auto& [text, cached] : runs(b)) CHECK_MESSAGE(cached, text << "\n" << b.describe());
  CHECK_MESSAGE(runs_log(two).empty(), runs_log(two));
  CHECK(image_id(b) == image_id(a));
  CHECK(b.err.find("WARNING") == std::string::npos);

  // A tag with no cache yet is a warning only.
  TestRoot three;
  if (!copy_busybox(one, three)) return;
  Result c = build(three, context(three), {"--cache-from", "type=registry,ref=" + reg.ref("cache/none:x")});
  REQUIRE_MESSAGE(c.status == 0, c.describe());
  CHECK_MESSAGE(c.err.find("WARNING: no cache found in registry cache " + reg.ref("cache/none:x")) != std::string::npos,
                c.describe());
  CHECK(runs_log(three) == "build1\nbuild2\nfinal1\nfinal2\n");
}

TEST_CASE("remote cache: a missing or corrupt cache is a warning and the build succeeds") {
  TestRoot one, two;
  if (!busybox_in({&one, &two})) return;
  fs::path cache = one.dir() / "cache";
  Result a = build(one, context(one), {"--cache-to", "type=local,dest=" + cache.string() + ",mode=max"});
  REQUIRE_MESSAGE(a.status == 0, a.describe());

  // Missing.
  Result m = build(two, context(two), {"--cache-from", "type=local,src=" + (one.dir() / "nowhere").string()});
  CHECK_MESSAGE(m.status == 0, m.describe());
  CHECK_MESSAGE(m.err.find("WARNING: no cache found in local cache " + (one.dir() / "nowhere").string()) !=
                    std::string::npos,
                m.describe());

  // Every layer blob truncated: each hit fails to import, warns, and the step runs.
  TestRoot three, four;
  if (!copy_busybox(one, three) || !copy_busybox(one, four)) return;
  fs::path broken = one.dir() / "broken";
  fs::copy(cache, broken, fs::copy_options::recursive);
  {
    auto index = builder::e2e::slurp(broken / "index.json");
    std::smatch mm;
    REQUIRE(std::regex_search(index, mm, std::regex(R"re("digest":"sha256:([0-9a-f]{64})")re")));
    auto manifest = builder::e2e::slurp(broken / "blobs/sha256" / mm[1].str());
    const std::string layers = manifest.substr(manifest.find("\"layers\""));
    static const std::regex digest(R"re("digest":"sha256:([0-9a-f]{64})")re");
    for (std::sregex_iterator it(layers.begin(), layers.end(), digest), end; it != end; ++it) {
      builder::e2e::write_file(broken / "blobs/sha256" / (*it)[1].str(), "not a layer");
    }
  }
  Result c = build(three, context(three), {"--cache-from", "type=local,src=" + broken.string()});
  CHECK_MESSAGE(c.status == 0, c.describe());
  CHECK_MESSAGE(c.err.find("WARNING: failed to import sha256:") != std::string::npos, c.describe());
  CHECK(runs_log(three) == "build1\nbuild2\nfinal1\nfinal2\n");

  // A damaged index.json.
  builder::e2e::write_file(broken / "index.json", "{");
  Result d = build(four, context(four), {"--cache-from", "type=local,src=" + broken.string()});
  CHECK_MESSAGE(d.status == 0, d.describe());
  CHECK_MESSAGE(d.err.find("WARNING: failed to read local cache " + broken.string()) != std::string::npos, d.describe());

  // A registry that does not answer.
  Result e = build(four, context(four), {"--cache-from", "type=registry,ref=127.0.0.1:9/nothing/here:x"});
  CHECK_MESSAGE(e.status == 0, e.describe());
  CHECK_MESSAGE(e.err.find("WARNING: failed to read registry cache 127.0.0.1:9/nothing/here:x") != std::string::npos,
                e.describe());
  three.check_no_mounts();
}

TEST_CASE("remote cache: bad --cache-to and --cache-from values are clear errors") {
  TestRoot root;
  if (!root.import_busybox()) return;
  fs::path ctx = context(root);
  auto err = [&](std::vector<std::string> extra) {
    Result r = build(root, ctx, extra);
    CHECK_MESSAGE(r.status != 0, r.describe());
    return r.err;
  };
  CHECK(err({"--cache-to", "type=s3,bucket=x"}).find("--cache-to type=s3,bucket=x: cache type `s3` is not supported") !=
        std::string::npos);
  CHECK(err({"--cache-to", "type=floppy"}).find("unknown cache type `floppy` (inline, local, registry)") !=
        std::string::npos);
  CHECK(err({"--cache-to", "type=local"}).find("type=local needs dest=DIRECTORY") != std::string::npos);
  CHECK(err({"--cache-to", "type=local,dest=/tmp/x,colour=red"}).find("unknown key `colour` for type=local") !=
        std::string::npos);
  CHECK(err({"--cache-to", "type=local,dest=/tmp/x,mode=huge"}).find("invalid mode `huge` (min or max)") !=
        std::string::npos);
  CHECK(err({"--cache-to", "type=inline,mode=max"}).find("mode=max needs type=registry or type=local") !=
        std::string::npos);
  CHECK(err({"--cache-to", "type=inline,cache-mounts=true"}).find("unknown key `cache-mounts` for type=inline") !=
        std::string::npos);
  CHECK(err({"--cache-to", "type=registry"}).find("type=registry needs ref=REFERENCE") != std::string::npos);
  CHECK(err({"--cache-from", "type=local,dest=/x"}).find("unknown key `dest` for type=local (known: src, type)") !=
        std::string::npos);
  CHECK(err({"--cache-from", "type=registry,ref=example.com/Upper"})
            .find("--cache-from type=registry,ref=example.com/Upper: invalid reference format: repository name must be lowercase") != std::string::npos);
  // Nothing was built: the options are checked first.
  CHECK(runs_log(root).empty());
}
