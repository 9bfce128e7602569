// tests/e2e/layer_test.cpp — end-to-end: the layers RUN steps export are BuildKit's
// (one step per kind of change: deletions, a directory removed and made again, a renamed
// directory, hard and symbolic links, fifos and devices, setuid/sticky modes, big ids,
// an old mtime, a capability, long and non-ASCII names, no change at all), checked
// header by header in the OCI archive; and the layers unpack, with umoci and with our
// own load, to the tree the last RUN step saw.
// Context: testdata/e2e/layer plus tests/e2e/xattr_tool.c's static binary.
#include <sys/stat.h>

#include <ctime>
#include <map>

#include "base/json.h"
#include "e2e_util.h"
#include "tar_listing.h"

using builder::e2e::Result;
using builder::e2e::run_process;
using builder::e2e::testdata;
using builder::e2e::TestRoot;
namespace fs = std::filesystem;

namespace {

/// Lists every path below the directory $1 (sorted): type, mode, owner, mtime; for
/// non-directories size and link count, a file's md5 prefix, a link's target, a
/// device's numbers, and security.capability read with the xattr tool at $2.
const char* kListScript = R"sh(
cd "$1" || exit 1
find . | LC_ALL=C sort | while IFS= read -r f; do
  [ "$f" = . ] && continue
  if [ -d "$f" ] && [ ! -L "$f" ]; then line=$(stat -c '%F %a %u:%g %Y' "$f")
  else line=$(stat -c '%F %a %u:%g %Y %s %h' "$f"); fi
  case "$line" in
    regular*) line="$line $(md5sum < "$f" | cut -c1-8)";;
    symbolic*) line="$line -> $(readlink "$f")";;
    *special*) line="$line $(stat -c '%t,%T' "$f")";;
  esac
  c=$("$2" get "$f" security.capability 2>/dev/null) && line="$line cap=$c"
  echo "$f $line"
done
)sh";

/// Seconds in [from, to] (the build) become "now" so the listings can be exact.
struct Window {
  time_t from, to;
  std::string operator()(const std::string& secs, int base) const {
    long long t = std::stoll(secs, nullptr, base);
    return t >= from && t <= to ? "now" : secs;
  }
};

/// raw_headers() with each mtime field of the build window shown as "now".
std::vector<std::string> layer_headers(const std::string& tar, const Window& w) {
  auto lines = builder::test::raw_headers(tar);
  for (auto& l : lines) {
    size_t pos = 0;
    for (int i = 0; i < 5 && pos != std::string::npos; ++i) pos = l.find(' ', pos + 1);
    if (pos == std::string::npos) continue;
    size_t end = l.find(' ', pos + 1);
    std::string field = l.substr(pos + 1, end == std::string::npos ? std::string::npos : end - pos - 1);
    l = l.substr(0, pos + 1) + w(field, 8) + (end == std::string::npos ? "" : l.substr(end));
  }
  return lines;
}

/// kListScript's output with the mtimes of the build window as "now".
std::string normalize_listing(const std::string& listing, const Window& w) {
  std::istringstream in(listing);
  std::string out;
  for (std::string line; std::getline(in, line);) {
    // "<path> <type words...> <mode> <uid:gid> <mtime> ...": the mtime follows uid:gid.
    size_t colon = line.find(':', line.find(' '));
    size_t start = line.find(' ', colon) + 1;
    size_t end = line.find(' ', start);
    out += line.substr(0, start) + w(line.substr(start, end - start), 10) +
           (end == std::string::npos ? "" : line.substr(end)) + "\n";
  }
  return out;
}

const std::string kA(120, 'a'), kB(130, 'b');

}  // namespace

TEST_CASE("e2e: RUN layers are BuildKit's and unpack to the tree the step saw") {
  if (!builder::test::have_root()) return;
  TestRoot root;
  REQUIRE(root.import_busybox());
  const fs::path ctx = root.work() / "ctx";
  fs::copy(testdata("e2e/layer"), ctx, fs::copy_options::recursive);
  fs::copy_file(BUILDER_XATTR_TOOL, ctx / "xattr-tool");
  const fs::path out = root.work() / "out.tar";

  Window w{std::time(nullptr) - 2, 0};
  Result b = root.builder({"build", "-t", "layers", "--output", "type=oci,dest=" + out.string(), ctx.string()});
  w.to = std::time(nullptr) + 2;
  REQUIRE_MESSAGE(b.status == 0, b.describe());

  const fs::path layout = root.work() / "layout";
  fs::create_directories(layout);
  Result x = run_process({"tar", "-C", layout.string(), "-xf", out.string()});
  REQUIRE_MESSAGE(x.status == 0, x.describe());
  auto blob = [&](const std::string& digest) { return layout / "blobs" / "sha256" / digest.substr(7); };
  auto index = builder::base::Json::parse(builder::e2e::slurp(layout / "index.json"));
  auto manifest = builder::base::Json::parse(builder::e2e::slurp(blob(index["manifests"][0]["digest"])));
  auto config = builder::base::Json::parse(builder::e2e::slurp(blob(manifest["config"]["digest"])));

  // Each RUN's layer, in order. A step that changed nothing has the 32-byte empty layer,
  // or (should empty layers be dropped) no layer and an empty_layer history entry.
  std::vector<std::vector<std::string>> runs;
  size_t next = 0;
  for (const auto& h : config["history"]) {
    bool is_run = h["created_by"].get<std::string>().rfind("RUN ", 0) == 0;
    if (h.value("empty_layer", false)) {
      if (is_run) runs.push_back({"end 1024"});
      continue;
    }
    REQUIRE(next < manifest["layers"].size());
    std::string digest = manifest["layers"][next++]["digest"];
    if (!is_run) continue;
    Result z = run_process({"gzip", "-dc", blob(digest).string()});
    REQUIRE_MESSAGE(z.status == 0, z.describe());
    runs.push_back(layer_headers(z.out, w));
    if (runs.back() == std::vector<std::string>{"end 1024"})
      CHECK(digest == "sha256:4f4fb700ef54461cfa02571ae0db9a0dc1e0cdb5577484a6d75e68dc38e8acc1");
  }
  CHECK(next == manifest["layers"].size());

  const std::string d = " 0000755 0000000:0000000 00000000000 now";           // a directory of the build
  const std::string wh = " 0000000 0000000:0000000 00000000000 00000000000";  // a whiteout
  auto file = [](const std::string& name, const char* size) {
    return "0 " + name + " 0000644 0000000:0000000 " + size + " now";
  };
  const std::vector<std::vector<std::string>> expected = {
      // mkdir and files
      {"5 x/" + d,
       "5 x/a/" + d,
       file("x/a/f", "00000000002"),
       "5 x/a/sub/" + d,
       file("x/a/sub/g", "00000000002"),
       "5 x/b/" + d,
       file("x/b/k2", "00000000003"),
       "5 x/b/keep/" + d,
       file("x/b/keep/k", "00000000002"),
       file("x/cap", "00000000003"),
       file("x/chm", "00000000002"),
       file("x/hl", "00000000002"),
       "5 x/mv/" + d,
       "5 x/mv/src/" + d,
       "5 x/mv/src/deep/" + d,
       file("x/mv/src/deep/h", "00000000002"),
       "5 x/noop/" + d,
       "0 x/noop/f 0000644 0000000:0000000 00000000000 07346545000",
       file("x/old", "00000000002"),
       file("x/own", "00000000002"),
       file("x/rmme", "00000000002"),
       "5 x/t/" + d,
       "end 17920"},
      // rm /x/rmme
      {"5 x/" + d, "0 x/.wh.rmme" + wh, "end 2048"},
      // rm -rf /x/a/sub
      {"5 x/" + d, "5 x/a/" + d, "0 x/a/.wh.sub" + wh, "end 2560"},
      // rm -rf /x/b && mkdir /x/b: what was in it is whited out one by one (no opaque marker)
      {"5 x/" + d, "5 x/b/" + d, "0 x/b/.wh.k2" + wh, "0 x/b/.wh.keep" + wh, file("x/b/n", "00000000004"), "end 4096"},
      // mv of a directory: copied, the old name whited out
      {"5 x/" + d, "5 x/mv/" + d, "5 x/mv/dst/" + d, "5 x/mv/dst/deep/" + d, file("x/mv/dst/deep/h", "00000000002"),
       "0 x/mv/.wh.src" + wh, "end 4608"},
      // hard links
      {"5 x/" + d, file("x/hl", "00000000002"), "1 x/hl2 0000644 0000000:0000000 00000000000 now -> x/hl",
       file("x/new1", "00000000002"), "1 x/new2 0000644 0000000:0000000 00000000000 now -> x/new1", "end 4608"},
      // symbolic links
      {"5 x/" + d, "2 x/sym 0000777 0000000:0000000 00000000000 now -> /x/a/f", "5 x/t/" + d,
       "2 x/t/dangling 0000777 0000000:0000000 00000000000 now -> ../nowhere", "end 3072"},
      // fifo and devices
      {"5 x/" + d, "4 x/bdev 0000644 0000000:0000000 00000000000 now dev=0000007,0000000",
       "3 x/cdev 0000644 0000000:0000000 00000000000 now dev=0000001,0000003",
       "6 x/fifo 0000644 0000000:0000000 00000000000 now", "end 3072"},
      // setuid, setgid, sticky
      {"5 x/" + d, "0 x/chm 0004755 0000000:0000000 00000000002 now", "5 x/sg/ 0002775 0000000:0000000 00000000000 now",
       "5 x/t/ 0001777 0000000:0000000 00000000000 now", "end 3584"},
      // ids beyond 7 octal digits
      {"5 x/" + d, "x x/PaxHeaders.0/own 0000000 0000000:0000000 00000000040 00000000000 {gid=87654321;uid=12345678}",
       "0 x/own 0000644 0000000:0000000 00000000002 now", "end 3584"},
      // touch -d: an old mtime, kept
      {"5 x/" + d, "0 x/old 0000644 0000000:0000000 00000000002 07236701562", "end 2560"},
      // a capability; user.* xattrs are not written
      {"5 x/" + d,
       "x x/PaxHeaders.0/cap 0000000 0000000:0000000 00000000071 00000000000 "
       "{SCHILY.xattr.security.capability=\\x01\\x00\\x00\\x02\\x00 "
       "\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00}",
       file("x/cap", "00000000003"), "end 3584"},
      // names and a link target past 100 bytes
      {"5 x/" + d, "5 x/long/" + d,
       "x x/long/" + kA.substr(0, 93) + " 0000000 0000000:0000000 00000000212 00000000000 {path=x/long/" + kA + "/}",
       "5 x/long/" + kA.substr(0, 93) + d,
       "x x/long/" + kA.substr(0, 93) + " 0000000 0000000:0000000 00000000414 00000000000 {path=x/long/" + kA + "/" +
           kB + "}",
       "0 x/long/" + kA.substr(0, 93) + " 0000644 0000000:0000000 00000000002 now",
       "x x/PaxHeaders.0/longlink 0000000 0000000:0000000 00000000421 00000000000 {linkpath=/x/long/" + kA + "/" + kB +
           "}",
       "2 x/longlink 0000777 0000000:0000000 00000000000 now -> /x/long/" + kA.substr(0, 92), "end 7168"},
      // names that are not ASCII (the second not even UTF-8)
      {"5 x/" + d, "x x/PaxHeaders.0/raw 0000000 0000000:0000000 00000000017 00000000000 {path=x/raw\\xff}",
       "0 x/raw 0000644 0000000:0000000 00000000004 now",
       "x x/PaxHeaders.0/ncd 0000000 0000000:0000000 00000000026 00000000000 "
       "{path=x/\\xc3\\xbcn\\xc3\\xafc\\xc3\\xb8d\\xc3\\xa9}",
       "0 x/ncd 0000644 0000000:0000000 00000000002 now", "end 5632"},
      // true: no change
      {"end 1024"},
      // chown to the same owner: copied up unchanged, so no change either
      {"end 1024"},
      // a file deleted, another made and deleted
      {"5 x/" + d, "5 x/noop/" + d, "0 x/noop/.wh.f" + wh, "end 2560"},
      // a changed file and a sparse one
      {"5 x/" + d, "5 x/a/" + d, file("x/a/f", "00000000003"), file("x/sparse", "00014000000"),
       "end " + std::to_string(512 * 5 + 3 * 1024 * 1024 + 1024)},
      // rm -rf /x/a && mkdir /x/a
      {"5 x/" + d, "5 x/a/" + d, "0 x/a/.wh.f" + wh, "end 2560"},
  };
  REQUIRE(runs.size() == expected.size());
  for (size_t i = 0; i < runs.size(); ++i) {
    CAPTURE(i);
    CHECK(runs[i] == expected[i]);
  }

  // The tree the last step saw, through `builder run`.
  Result seen = root.builder({"run", "--rm", "layers", "sh", "-c", kListScript, "sh", "/x", "/usr/bin/xattr-tool"});
  REQUIRE_MESSAGE(seen.status == 0, seen.describe());
  CHECK(normalize_listing(seen.out, w) ==
        "./a directory 755 0:0 now\n"
        "./b directory 755 0:0 now\n"
        "./b/n regular file 644 0:0 now 4 1 9cd599a3\n"
        "./bdev block special file 644 0:0 now 0 1 7,0\n"
        "./cap regular file 644 0:0 now 3 1 31d30eea cap=0100000200200000000000000000000000000000\n"
        "./cdev character special file 644 0:0 now 0 1 1,3\n"
        "./chm regular file 4755 0:0 now 2 1 84bc3da1\n"
        "./fifo fifo 644 0:0 now 0 1\n"
        "./hl regular file 644 0:0 now 2 2 1dcca233\n"
        "./hl2 regular file 644 0:0 now 2 2 1dcca233\n"
        "./long directory 755 0:0 now\n"
        "./long/" +
            kA +
            " directory 755 0:0 now\n"
            "./long/" +
            kA + "/" + kB +
            " regular file 644 0:0 now 2 1 12f54a96\n"
            "./longlink symbolic link 777 0:0 now 259 1 -> /x/long/" +
            kA + "/" + kB +
            "\n"
            "./mv directory 755 0:0 now\n"
            "./mv/dst directory 755 0:0 now\n"
            "./mv/dst/deep directory 755 0:0 now\n"
            "./mv/dst/deep/h regular file 644 0:0 now 2 1 48a24b70\n"
            "./new1 regular file 644 0:0 now 2 2 401b30e3\n"
            "./new2 regular file 644 0:0 now 2 2 401b30e3\n"
            "./noop directory 755 0:0 now\n"
            "./old regular file 644 0:0 981173106 2 1 7c5aba41\n"
            "./own regular file 644 12345678:87654321 now 2 1 c30f7472\n"
            "./raw\xff regular file 644 0:0 now 4 1 2306b437\n"
            "./sg directory 2775 0:0 now\n"
            "./sparse regular file 644 0:0 now 3145728 1 d1dd210d\n"
            "./sym symbolic link 777 0:0 now 6 1 -> /x/a/f\n"
            "./t directory 1777 0:0 now\n"
            "./t/dangling symbolic link 777 0:0 now 10 1 -> ../nowhere\n"
            "./\xc3\xbcn\xc3\xaf"
            "c\xc3\xb8"
            "d\xc3\xa9 regular file 644 0:0 now 2 1 e85dde33\n");

  // umoci applies the layers to the same tree, to the second.
  if (builder::e2e::require_tool("umoci")) {
    Result u =
        run_process({"umoci", "unpack", "--image", layout.string() + ":latest", (root.work() / "bundle").string()});
    REQUIRE_MESSAGE(u.status == 0, u.describe());
    Result l = run_process(
        {"busybox", "sh", "-c", kListScript, "sh", (root.work() / "bundle/rootfs/x").string(), BUILDER_XATTR_TOOL});
    REQUIRE_MESSAGE(l.status == 0, l.describe());
    CHECK(l.out == seen.out);
  }

  // So does our own load into a fresh store.
  TestRoot other;
  Result load = other.builder({"load", "-i", out.string()});
  REQUIRE_MESSAGE(load.status == 0, load.describe());
  Result again = other.builder({"run", "--rm", "layers", "sh", "-c", kListScript, "sh", "/x", "/usr/bin/xattr-tool"});
  REQUIRE_MESSAGE(again.status == 0, again.describe());
  CHECK(again.out == seen.out);
  root.check_no_mounts();
  other.check_no_mounts();
}
