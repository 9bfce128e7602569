// tests/e2e/image_verbs_test.cpp — the image verbs as docker users know them: images
// (untagged <none> rows, -q, --digests, --no-trunc, filters), inspect (JSON, --format),
// image history, save/load through files and pipes, import (stdin, --change), tag,
// rmi against containers, image prune (and that its blobs become the GC's).
#include <doctest/doctest.h>

#include <regex>

#include "base/json.h"
#include "e2e_util.h"

namespace {

using builder::e2e::lines_of;
using builder::e2e::Result;
using builder::e2e::TestRoot;
namespace fs = std::filesystem;

/// The rows of a docker-style table (header skipped), split on runs of 3+ spaces.
std::vector<std::vector<std::string>> table_rows(const std::string& out) {
  std::vector<std::vector<std::string>> rows;
  auto lines = lines_of(out);
  static const std::regex sep(" {3,}");
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<std::string> cells;
    std::sregex_token_iterator it(lines[i].begin(), lines[i].end(), sep, -1), end;
    for (; it != end; ++it) cells.push_back(*it);
    rows.push_back(cells);
  }
  return rows;
}

std::string inspect_format(const TestRoot& root, const std::string& ref, const std::string& fmt) {
  Result r = root.builder({"inspect", "--format", fmt, ref});
  REQUIRE_MESSAGE(r.status == 0, r.describe());
  return r.out;
}

/// A two-layer image `name` whose content depends on `value`.
void build_app(const TestRoot& root, const std::string& name, const std::string& value) {
  fs::path ctx = root.work() / "ctx";
  builder::e2e::write_file(ctx / "Dockerfile",
                           "FROM busybox\n"
                           "ARG V\n"
                           "RUN echo $V > /v\n"
                           "LABEL a=b\n"
                           "ENV GREETING=hi\n"
                           "COPY Dockerfile /df\n"
                           "CMD [\"cat\", \"/v\"]\n");
  Result b = root.builder({"build", "-q", "--build-arg", "V=" + value, "-t", name, ctx.string()});
  REQUIRE_MESSAGE(b.status == 0, b.describe());
}

std::string id_of(const TestRoot& root, const std::string& ref) {
  return builder::e2e::image_id(root.builder({"inspect", ref}).out);
}

}  // namespace

TEST_CASE("image verbs: images lists untagged images as <none>; -q, --digests, --no-trunc, filters") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  build_app(root, "app", "one");
  std::string old_id = id_of(root, "app");
  build_app(root, "app", "two");  // the name moves on; the first image stays, untagged
  std::string new_id = id_of(root, "app");
  REQUIRE(old_id != new_id);

  Result images = root.builder({"images"});
  REQUIRE_MESSAGE(images.status == 0, images.describe());
  auto rows = table_rows(images.out);
  REQUIRE_MESSAGE(rows.size() == 3, images.out);
  std::map<std::string, std::string> by_id;
  for (const auto& r : rows) by_id[r[2]] = r[0] + ":" + r[1];
  CHECK(by_id[old_id.substr(7, 12)] == "<none>:<none>");
  CHECK(by_id[new_id.substr(7, 12)] == "app:latest");

  // The untagged image is still an image: found by ID, runnable.
  Result run = root.builder({"run", "--rm", old_id.substr(7, 12)});
  CHECK_MESSAGE(run.out == "one\n", run.describe());

  Result q = root.builder({"images", "-q"});
  CHECK(lines_of(q.out).size() == 3);
  for (const auto& l : lines_of(q.out)) CHECK_MESSAGE(std::regex_match(l, std::regex("[0-9a-f]{12}")), l);
  Result full = root.builder({"images", "-q", "--no-trunc", "app"});
  CHECK(full.out == new_id + "\n");

  Result dig = root.builder({"images", "--digests", "app"});
  CHECK(std::regex_match(lines_of(dig.out)[0], std::regex("REPOSITORY +TAG +DIGEST +IMAGE ID +CREATED +SIZE")));
  auto drows = table_rows(dig.out);
  REQUIRE(drows.size() == 1);
  std::string manifest = inspect_format(root, "app", "{{.Descriptor.digest}}");
  CHECK(drows[0][2] + "\n" == manifest);
  // name@digest resolves to the same image.
  CHECK(id_of(root, "app@" + drows[0][2]) == new_id);

  CHECK(root.builder({"images", "-q", "--filter", "dangling=true"}).out == old_id.substr(7, 12) + "\n");
  CHECK(lines_of(root.builder({"images", "-q", "--filter", "dangling=false"}).out).size() == 2);
  CHECK(root.builder({"images", "-q", "--filter", "reference=ap*"}).out == new_id.substr(7, 12) + "\n");
  CHECK(lines_of(root.builder({"images", "-q", "-f", "label=a=b"}).out).size() == 2);
  CHECK(root.builder({"images", "-q", "-f", "label=a=c"}).out.empty());
  CHECK(root.builder({"image", "ls", "-q", "busybox"}).out == id_of(root, "busybox").substr(7, 12) + "\n");
  CHECK(root.builder({"image", "list", "-q", "app"}).out == new_id.substr(7, 12) + "\n");

  Result bad = root.builder({"images", "--filter", "since=app"});
  CHECK(bad.status == 1);
  CHECK(bad.err == "builder: error: unsupported filter `since`: builder supports dangling=, reference= and label=\n");
  Result badname = root.builder({"images", "UPPER"});
  CHECK(badname.status == 1);
  CHECK(badname.err.find("invalid reference format") != std::string::npos);
}

TEST_CASE("image verbs: inspect JSON and --format") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  build_app(root, "app", "x");
  Result r = root.builder({"image", "inspect", "app"});
  REQUIRE_MESSAGE(r.status == 0, r.describe());
  auto j = builder::base::Json::parse(r.out);
  REQUIRE(j.is_array());
  REQUIRE(j.size() == 1);
  const auto& img = j[0];
  CHECK(img["Id"].get<std::string>().rfind("sha256:", 0) == 0);
  CHECK(img["RepoTags"] == builder::base::Json::array({"app:latest"}));
  CHECK(img["RepoDigests"][0].get<std::string>() == "app@" + img["Descriptor"]["digest"].get<std::string>());
  CHECK(img["Config"]["Cmd"] == builder::base::Json::array({"cat", "/v"}));
  CHECK(img["Config"]["Labels"]["a"] == "b");
  CHECK(img["RootFS"]["Type"] == "layers");
  CHECK(img["RootFS"]["Layers"].size() == 3);  // busybox, RUN, COPY
  CHECK(img["Size"].get<uint64_t>() > 0);
  CHECK(img["Os"] == "linux");
  CHECK(!img["Created"].get<std::string>().empty());

  CHECK(inspect_format(root, "app", "{{.Id}}") == img["Id"].get<std::string>() + "\n");
  CHECK(inspect_format(root, "app", "id={{.Id}} os={{ .Os }}") ==
        "id=" + img["Id"].get<std::string>() + " os=linux\n");
  CHECK(inspect_format(root, "app", "{{json .Config.Cmd}}") == "[\"cat\",\"/v\"]\n");
  CHECK(inspect_format(root, "app", "{{.Config.Cmd}}") == "[cat /v]\n");
  CHECK(inspect_format(root, "app", "{{.Config.Labels}}") == "map[a:b]\n");
  CHECK(inspect_format(root, "app", "{{index .Config.Labels \"a\"}}") == "b\n");
  CHECK(inspect_format(root, "app", "{{index .Config.Labels \"zz\"}}") == "<no value>\n");
  Result unsupported = root.builder({"inspect", "--format", "{{len .RootFS.Layers}}", "app"});
  CHECK(unsupported.status == 1);
  CHECK(unsupported.out.empty());
  CHECK(unsupported.err ==
        "builder: error: unsupported --format template action `{{len .RootFS.Layers}}`: builder supports "
        "{{.Field}}, {{json .Field}} and {{index .Field \"key\"}}\n");
  Result no_key = root.builder({"inspect", "-f", "{{.Nope}}", "app"});
  CHECK(no_key.status == 1);
  CHECK(no_key.err == "builder: error: template: executing at <.Nope>: map has no entry for key \"Nope\"\n");
}

TEST_CASE("image verbs: image history") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  build_app(root, "app", "x");
  std::string id = id_of(root, "app");
  Result h = root.builder({"image", "history", "app"});
  REQUIRE_MESSAGE(h.status == 0, h.describe());
  auto lines = lines_of(h.out);
  CHECK(std::regex_match(lines[0], std::regex("IMAGE +CREATED +CREATED BY +SIZE +COMMENT")));
  auto rows = table_rows(h.out);
  // busybox import (1) + ARG RUN LABEL ENV COPY CMD (6), newest first.
  REQUIRE_MESSAGE(rows.size() == 7, h.out);
  CHECK(rows[0][0] == id.substr(7, 12));
  for (size_t i = 1; i < rows.size(); ++i) CHECK(rows[i][0] == "<missing>");
  CHECK(rows[0][2].find("CMD [\"cat\" \"/v\"]") != std::string::npos);
  CHECK(rows[0][3] == "0B");  // an empty layer
  CHECK(rows[1][3] != "0B");  // COPY
  CHECK(rows[6][4] == "Imported from rootfs.tar");
  // CREATED BY is cut to 45 characters with an ellipsis; --no-trunc keeps it whole.
  for (const auto& r : rows) CHECK(r[2].size() <= 47);  // "…" is 3 bytes
  Result nt = root.builder({"image", "history", "--no-trunc", "app"});
  CHECK(nt.out.find(id) != std::string::npos);
  CHECK(nt.out.find("RUN |1 V=x /bin/sh -c echo $V > /v # buildkit") != std::string::npos);
  Result q = root.builder({"image", "history", "-q", "app"});
  CHECK(lines_of(q.out).size() == 7);
  CHECK(lines_of(q.out)[0] == id.substr(7, 12));

  Result missing = root.builder({"image", "history", "nope"});
  CHECK(missing.status == 1);
  CHECK(missing.err == "Error: No such image: nope:latest\n");
}

TEST_CASE("image verbs: save to stdout and load from stdin, several images, docker and oci") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  build_app(root, "app", "saved");
  std::string app_id = id_of(root, "app"), bb_id = id_of(root, "busybox");
  for (std::string format : {"docker", "oci"}) {
    CAPTURE(format);
    Result s = root.builder({"save", "--format", format, "app", "busybox"});
    REQUIRE_MESSAGE(s.status == 0, s.err);
    REQUIRE(s.out.size() > 1000);
    TestRoot other;
    Result l = other.builder_with_input({"image", "load"}, s.out);
    REQUIRE_MESSAGE(l.status == 0, l.describe());
    CHECK(l.out == "Loaded image: app:latest\nLoaded image: busybox:latest\n");
    CHECK(id_of(other, "app") == app_id);
    CHECK(id_of(other, "busybox") == bb_id);
    Result run = other.builder({"run", "--rm", "app"});
    CHECK(run.out == "saved\n");
    // The same through a file with -o / -i, and --quiet.
    fs::path tar = root.work() / ("out-" + format + ".tar");
    REQUIRE(root.builder({"image", "save", "--format", format, "-o", tar.string(), app_id}).status == 0);
    TestRoot third;
    Result li = third.builder({"load", "-q", "-i", tar.string()});
    CHECK_MESSAGE(li.status == 0, li.describe());
    CHECK(li.out.empty());
    // Saved by ID: the image has no name in the archive, and loads as <none>.
    auto rows = table_rows(third.builder({"images"}).out);
    REQUIRE(rows.size() == 1);
    CHECK(rows[0][0] == "<none>");
    CHECK(rows[0][2] == app_id.substr(7, 12));
  }
  Result bad = root.builder({"save", "--format", "tar", "app"});
  CHECK(bad.status == 1);
  CHECK(bad.err == "builder: error: unknown archive format `tar` (expected docker or oci)\n");
  Result missing = root.builder({"save", "-o", "x.tar", "app", "nope"});
  CHECK(missing.status == 1);
  CHECK(missing.err == "Error: No such image: nope:latest\n");
  CHECK(!fs::exists(root.work() / "x.tar"));
  Result empty = root.builder_with_input({"load"}, "");
  CHECK(empty.status == 1);
  CHECK(empty.err.find("builder: error: ") == 0);
  Result garbage = root.builder_with_input({"load"}, std::string(4096, 'x'));
  CHECK(garbage.status == 1);
  CHECK(lines_of(root.builder({"images", "-q"}).out).size() == 2);  // nothing changed
}

TEST_CASE("image verbs: import from stdin with --change, and without a name") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  const std::string& tar = builder::e2e::busybox_rootfs();
  REQUIRE(!tar.empty());
  std::string data = builder::e2e::slurp(tar);
  Result r = root.builder_with_input({"image", "import", "-c", "CMD [\"echo\", \"hi there\"]", "-c",
                                      "ENV A=1 B=\"two words\"", "--change", "LABEL k=v", "-c", "EXPOSE 80 53/udp",
                                      "-c", "WORKDIR /tmp", "-c", "USER 1:1", "-", "imp:1"},
                                     data);
  REQUIRE_MESSAGE(r.status == 0, r.describe());
  CHECK(std::regex_match(r.out, std::regex("sha256:[0-9a-f]{64}\n")));
  auto cfg = builder::base::Json::parse(inspect_format(root, "imp:1", "{{json .Config}}"));
  CHECK(cfg["Cmd"] == builder::base::Json::array({"echo", "hi there"}));
  CHECK(cfg["Env"] == builder::base::Json::array({"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                                  "A=1", "B=two words"}));
  CHECK(cfg["Labels"]["k"] == "v");
  CHECK(cfg["ExposedPorts"].contains("80/tcp"));
  CHECK(cfg["ExposedPorts"].contains("53/udp"));
  CHECK(cfg["WorkingDir"] == "/tmp");
  CHECK(cfg["User"] == "1:1");
  CHECK(root.builder({"image", "history", "imp:1"}).out.find("Imported from -") != std::string::npos);
  Result run = root.builder({"run", "--rm", "-u", "0", "imp:1"});
  CHECK(run.out == "hi there\n");

  Result unnamed = root.builder({"import", tar});
  REQUIRE(unnamed.status == 0);
  auto rows = table_rows(root.builder({"images", "--filter", "dangling=true"}).out);
  REQUIRE(rows.size() == 1);
  CHECK("sha256:" + rows[0][2] == unnamed.out.substr(0, 19));

  Result hc = root.builder({"import", "-c", "HEALTHCHECK NONE", tar, "x"});
  CHECK(hc.status == 1);
  CHECK(hc.err ==
        "builder: error: --change `HEALTHCHECK NONE`: builder import supports CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, "
        "USER, VOLUME, WORKDIR and STOPSIGNAL\n");
  Result url = root.builder({"import", "http://example.com/x.tar", "x"});
  CHECK(url.status == 1);
  CHECK(url.err.find("import from a URL is not supported") != std::string::npos);
  Result msg = root.builder({"import", "-m", "note", tar, "x"});
  CHECK(msg.status == 1);  // an unknown flag is an error, not ignored
  CHECK(lines_of(root.builder({"images", "-q"}).out).size() == 2);
}

TEST_CASE("image verbs: rmi respects containers; image prune removes dangling images and frees their blobs") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  build_app(root, "app", "one");
  std::string one = id_of(root, "app");
  build_app(root, "app", "two");
  std::string two = id_of(root, "app");
  REQUIRE(root.builder({"tag", "app", "other:1"}).status == 0);

  // A stopped container of app:latest.
  Result run = root.builder({"run", "app"});
  REQUIRE_MESSAGE(run.status == 0, run.describe());
  Result rmi_other = root.builder({"rmi", "other:1"});  // not the last name: just untagged
  CHECK(rmi_other.out == "Untagged: other:1\n");
  Result refused = root.builder({"rmi", "app"});
  CHECK(refused.status == 1);
  CHECK_MESSAGE(std::regex_match(refused.err,
                                 std::regex("Error: conflict: unable to remove repository reference \"app:latest\" "
                                            "\\(must force\\) - container [0-9a-f]{12} is using its referenced image " +
                                            two.substr(7, 12) + "\n")),
                refused.err);
  Result by_id = root.builder({"rmi", two.substr(7, 12)});
  CHECK(by_id.status == 1);
  CHECK(by_id.err.find("(must be forced) - image is being used by stopped container") != std::string::npos);
  Result forced = root.builder({"rmi", "-f", "app"});
  CHECK(forced.status == 0);
  CHECK(forced.out == "Untagged: app:latest\n");
  CHECK(id_of(root, two.substr(7, 12)) == two);  // kept for its container, now untagged

  // Prune without -f and without a terminal refuses; with -f, removes the dangling image
  // no container uses.
  Result ask = root.builder({"image", "prune"});
  CHECK(ask.status == 1);
  CHECK(ask.err == "builder: error: image prune needs confirmation, and stdin is not a terminal: use -f/--force\n");
  fs::path one_config = root.store() / "content/blobs/sha256" / one.substr(7);
  REQUIRE(fs::exists(one_config));
  Result pr = root.builder({"image", "prune", "-f"});
  REQUIRE_MESSAGE(pr.status == 0, pr.describe());
  CHECK_MESSAGE(pr.out.find("Deleted Images:\ndeleted: " + one + "\n\nTotal reclaimed space: ") == 0, pr.out);
  CHECK(pr.out.find("Total reclaimed space: 0B") == std::string::npos);
  CHECK(pr.out.find(two) == std::string::npos);
  CHECK(id_of(root, one.substr(7, 12)).empty());
  CHECK(!id_of(root, two.substr(7, 12)).empty());
  // The cache GC now collects the removed image's blobs.
  Result gc = root.builder({"prune", "-a", "-f"});
  CHECK_MESSAGE(gc.status == 0, gc.describe());
  CHECK(!fs::exists(one_config));
  CHECK(fs::exists(root.store() / "content/blobs/sha256" / two.substr(7)));

  Result again = root.builder({"image", "prune", "-f"});
  CHECK(again.out == "Total reclaimed space: 0B\n");
  // -a: every image no container uses goes (busybox), the container's stays.
  std::string bb = id_of(root, "busybox");
  Result all = root.builder({"image", "prune", "-a", "-f"});
  CHECK_MESSAGE(all.out.find("Deleted Images:\nuntagged: busybox:latest\ndeleted: " + bb + "\n\n") == 0, all.out);
  auto rows = table_rows(root.builder({"images"}).out);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0][2] == two.substr(7, 12));
  // The built image still runs after its base was removed (its own layers suffice).
  Result still = root.builder({"run", "--rm", two.substr(7, 12)});
  CHECK(still.out == "two\n");

  Result missing = root.builder({"image", "rm", "nope"});
  CHECK(missing.status == 1);
  CHECK(missing.err == "Error: No such image: nope:latest\n");
  Result group = root.builder({"image"});
  CHECK(group.status == 1);
  root.check_no_mounts();
}

namespace {

/// A FROM scratch image holding /big: `bytes` bytes of 'a' (compresses to almost
/// nothing, so compressed and uncompressed sizes differ by orders of magnitude).
fs::path big_file_context(const TestRoot& root, size_t bytes) {
  fs::path ctx = root.work() / "bigctx";
  builder::e2e::write_file(ctx / "Dockerfile", "FROM scratch\nCOPY big /big\n");
  builder::e2e::write_file(ctx / "big", std::string(bytes, 'a'));
  return ctx;
}

/// The uncompressed length of the image's only layer, read from the store with gzip(1).
size_t plain_layer_size(const TestRoot& root, const std::string& ref) {
  std::string manifest = inspect_format(root, ref, "{{.Descriptor.digest}}");
  auto m = builder::base::Json::parse(
      builder::e2e::slurp(root.store() / "content/blobs/sha256" / manifest.substr(7, 64)));
  REQUIRE(m["layers"].size() == 1);
  std::string blob = m["layers"][0]["digest"].get<std::string>().substr(7);
  fs::path path = root.store() / "content/blobs/sha256" / blob;
  CHECK(fs::file_size(path) < 20000);  // compressed: the case below tells the two apart
  Result z = builder::e2e::run_process({"gzip", "-dc", path.string()});
  REQUIRE_MESSAGE(z.status == 0, z.describe());
  return z.out.size();
}

}  // namespace

TEST_CASE("image verbs: a build without -t leaves a <none> image that rmi and image prune remove") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  fs::path ctx = big_file_context(root, 1000);
  Result b = root.builder({"build", ctx.string()});
  REQUIRE_MESSAGE(b.status == 0, b.describe());
  REQUIRE(std::regex_match(b.out, std::regex("sha256:[0-9a-f]{64}\n")));
  std::string id = b.out.substr(0, 71);
  // docker's exporter line: the image ID, and no name.
  CHECK_MESSAGE(b.err.find("writing image " + id + " done\n") != std::string::npos, b.err);
  CHECK(b.err.find("naming to") == std::string::npos);

  for (std::vector<std::string> args : {std::vector<std::string>{"images"}, {"images", "-a"}, {"image", "ls"}}) {
    Result images = root.builder(args);
    REQUIRE_MESSAGE(images.status == 0, images.describe());
    auto rows = table_rows(images.out);
    REQUIRE_MESSAGE(rows.size() == 1, images.out);
    CHECK(rows[0][0] == "<none>");
    CHECK(rows[0][1] == "<none>");
    CHECK(rows[0][2] == id.substr(7, 12));
  }
  CHECK(root.builder({"images", "-q", "--filter", "dangling=true"}).out == id.substr(7, 12) + "\n");

  Result rmi = root.builder({"rmi", id.substr(7, 12)});
  CHECK_MESSAGE(rmi.status == 0, rmi.describe());
  CHECK(rmi.out == "Deleted: " + id + "\n");
  CHECK(rmi.err.empty());
  CHECK(table_rows(root.builder({"images"}).out).empty());
  CHECK(root.builder({"rmi", id.substr(7, 12)}).err == "Error: No such image: " + id.substr(7, 12) + ":latest\n");

  // The same build again (all cached) records the image again; prune removes it.
  Result again = root.builder({"build", "-q", ctx.string()});
  REQUIRE_MESSAGE(again.status == 0, again.describe());
  CHECK(again.out == id + "\n");
  CHECK(root.builder({"images", "-q"}).out == id.substr(7, 12) + "\n");
  Result pr = root.builder({"image", "prune", "-f"});
  REQUIRE_MESSAGE(pr.status == 0, pr.describe());
  CHECK_MESSAGE(std::regex_match(pr.out, std::regex("Deleted Images:\ndeleted: " + id +
                                                    "\n\nTotal reclaimed space: [0-9.]+(B|kB)\n")),
                pr.out);
  CHECK(root.builder({"images", "-q"}).out.empty());
  root.check_no_mounts();
}

TEST_CASE("image verbs: a re-tag leaves the old image <none>; rmi prints Untagged and Deleted per ref") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  fs::path ctx = big_file_context(root, 10);
  Result one = root.builder({"build", "-q", "-t", "app", ctx.string()});
  REQUIRE_MESSAGE(one.status == 0, one.describe());
  builder::e2e::write_file(ctx / "big", "changed");
  Result two = root.builder({"build", "-t", "app", ctx.string()});
  REQUIRE_MESSAGE(two.status == 0, two.describe());
  CHECK_MESSAGE(two.err.find("writing image " + two.out.substr(0, 71) + " done\nnaming to app:latest done\n") !=
                    std::string::npos,
                two.err);
  std::string old_id = one.out.substr(0, 71), new_id = two.out.substr(0, 71);
  REQUIRE(old_id != new_id);
  auto rows = table_rows(root.builder({"images"}).out);
  REQUIRE(rows.size() == 2);
  std::map<std::string, std::string> by_id;
  for (const auto& r : rows) by_id[r[2]] = r[0] + ":" + r[1];
  CHECK(by_id[old_id.substr(7, 12)] == "<none>:<none>");
  CHECK(by_id[new_id.substr(7, 12)] == "app:latest");

  REQUIRE(root.builder({"tag", "app", "other:1"}).status == 0);
  REQUIRE(root.builder({"tag", "app", "third"}).status == 0);
  // Several refs, one unknown: the others are processed, the error comes last, exit 1.
  Result r = root.builder({"rmi", "other:1", "nope", "third"});
  CHECK(r.status == 1);
  CHECK(r.out == "Untagged: other:1\nUntagged: third:latest\n");  // app still names the image
  CHECK(r.err == "Error: No such image: nope:latest\n");
  // By ID with two names: refused without -f, both names and the image go with it.
  REQUIRE(root.builder({"tag", "app", "other:2"}).status == 0);
  Result refused = root.builder({"rmi", new_id.substr(7, 12)});
  CHECK(refused.status == 1);
  CHECK(refused.out.empty());
  CHECK(refused.err == "Error: conflict: unable to delete " + new_id.substr(7, 12) +
                           " (must be forced) - image is referenced in multiple repositories\n");
  // -f: an unknown ref is reported but is no failure (as docker rmi -f).
  Result forced = root.builder({"rmi", "-f", new_id.substr(7, 12), "gone:1"});
  CHECK_MESSAGE(forced.status == 0, forced.describe());
  CHECK(forced.out == "Untagged: app:latest\nUntagged: other:2\nDeleted: " + new_id + "\n");
  CHECK(forced.err == "Error: No such image: gone:1\n");
  // A last name goes with its image; a dangling image by ID is just deleted.
  REQUIRE(root.builder({"tag", old_id.substr(7, 12), "back:1"}).status == 0);
  CHECK(root.builder({"image", "remove", "back:1"}).out == "Untagged: back:1\nDeleted: " + old_id + "\n");
  CHECK(table_rows(root.builder({"images"}).out).empty());
  Result none = root.builder({"rmi", "--no-prune", "nope"});
  CHECK(none.status == 1);
}

TEST_CASE("image verbs: SIZE is the uncompressed layer size in images, history and inspect") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  fs::path ctx = big_file_context(root, 1234567);
  Result b = root.builder({"build", "-q", "-t", "big", ctx.string()});
  REQUIRE_MESSAGE(b.status == 0, b.describe());
  size_t plain = plain_layer_size(root, "big");
  CHECK(plain > 1234567);
  CHECK(plain < 1240000);  // one file's header, padding and the end-of-archive blocks
  CHECK(inspect_format(root, "big", "{{.Size}}") == std::to_string(plain) + "\n");
  auto rows = table_rows(root.builder({"images"}).out);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0][4] == "1.24MB");  // docker's 3 significant digits, decimal units
  auto hist = table_rows(root.builder({"image", "history", "big"}).out);
  REQUIRE(hist.size() == 1);
  CHECK(hist[0][3] == "1.24MB");

  // A store that only loaded the image (no size recorded) computes the same size.
  Result s = root.builder({"save", "big"});
  REQUIRE(s.status == 0);
  TestRoot other;
  REQUIRE(other.builder_with_input({"load"}, s.out).status == 0);
  CHECK(inspect_format(other, "big", "{{.Size}}") == std::to_string(plain) + "\n");
  CHECK(table_rows(other.builder({"images"}).out)[0][4] == "1.24MB");
}

TEST_CASE("image verbs: images and image history --format; image prune --filter") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  build_app(root, "app", "x");
  std::string id = id_of(root, "app");
  Result plain = root.builder({"images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}", "app"});
  CHECK_MESSAGE(plain.out == "app:latest " + id.substr(7, 12) + "\n", plain.describe());
  // A typed \t is a tab, and "table" lays the columns out under a header.
  Result table = root.builder({"images", "--format", "table {{.Repository}}\\t{{.Size}}", "app"});
  auto lines = lines_of(table.out);
  REQUIRE_MESSAGE(lines.size() == 2, table.describe());
  CHECK(lines[0] == "REPOSITORY   SIZE");
  CHECK(std::regex_match(lines[1], std::regex("app          [0-9.]+MB")));
  Result json = root.builder({"images", "--format", "json", "app"});
  auto j = builder::base::Json::parse(json.out);
  CHECK(j["Repository"] == "app");
  CHECK(j["Tag"] == "latest");
  CHECK(j["ID"] == id.substr(7, 12));
  CHECK(j["Containers"] == "N/A");  // as docker images (only docker system df counts them)
  CHECK(std::regex_match(j["CreatedAt"].get<std::string>(),
                         std::regex("[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} [+-][0-9]{4} .+")));
  Result bad = root.builder({"images", "--format", "{{.Nope}}"});
  CHECK(bad.status == 1);
  CHECK(bad.out.empty());
  Result hist = root.builder({"image", "history", "--format", "{{.ID}}|{{.Size}}", "app"});
  REQUIRE_MESSAGE(hist.status == 0, hist.describe());
  CHECK(lines_of(hist.out).size() == 7);
  CHECK(lines_of(hist.out)[0] == id.substr(7, 12) + "|0B");

  // prune -a with a label filter takes only the labelled image (app has a=b).
  Result badf = root.builder({"image", "prune", "-f", "--filter", "dangling=true"});
  CHECK(badf.status == 1);
  CHECK(badf.err == "builder: error: unsupported filter `dangling`: image prune supports until=, label= and label!=\n");
  Result keep = root.builder({"image", "prune", "-a", "-f", "--filter", "until=1h"});  // all newer than 1h ago
  CHECK(keep.out == "Total reclaimed space: 0B\n");
  Result pr = root.builder({"image", "prune", "-a", "-f", "--filter", "label=a=b"});
  CHECK_MESSAGE(pr.out.find("Deleted Images:\nuntagged: app:latest\ndeleted: " + id + "\n\n") == 0, pr.out);
  CHECK(root.builder({"images", "--format", "{{.Repository}}"}).out == "busybox\n");
}
