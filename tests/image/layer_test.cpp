#include "image/layer.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>

#include "base/error.h"
#include "image/tar_writer.h"
#include "image_test_util.h"

using namespace builder;
using test::Root;

namespace {

void put(const std::string& path, const std::string& data, int mode = 0644) {
  base::write_file_atomic(path, data, mode);
  ::chmod(path.c_str(), mode);
}

std::string xattr(const std::string& path, const char* name) {
  char buf[256];
  ssize_t n = ::lgetxattr(path.c_str(), name, buf, sizeof buf);
  return n < 0 ? "" : std::string(buf, static_cast<size_t>(n));
}

struct stat lst(const std::string& path) {
  struct stat st {};
  REQUIRE_MESSAGE(::lstat(path.c_str(), &st) == 0, path);
  return st;
}

void set_mtime(const std::string& path, time_t t) {
  struct timespec ts[2] = {{t, 0}, {t, 0}};
  REQUIRE(::utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW) == 0);
}

void set_mtime_ns(const std::string& path, time_t t, long ns) {
  struct timespec ts[2] = {{t, ns}, {t, ns}};
  REQUIRE(::utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW) == 0);
}

void whiteout(const std::string& path) { REQUIRE(::mknod(path.c_str(), S_IFCHR | 0, makedev(0, 0)) == 0); }

void set_xattr(const std::string& path, const char* name, const std::string& value) {
  REQUIRE(::lsetxattr(path.c_str(), name, value.data(), value.size(), 0) == 0);
}

/// security.capability for cap_net_raw+ep (vfs_cap_data revision 2).
const std::string kCapNetRaw("\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 20);

/// The raw headers (test::raw_headers) of a layer blob.
std::vector<std::string> headers(Root& r, const image::LayerBlob& layer) {
  return test::raw_headers(test::gunzip(r.store.blobs().path(layer.digest)));
}

/// A tar stream from TarWriter, as a string.
struct StringSink : image::detail::TarSink {
  void write(const void* data, size_t n) override { out.append(static_cast<const char*>(data), n); }
  std::string out;
};

/// An overlay upper dir with one of everything.
void make_upper(const std::string& u) {
  base::make_dirs(u + "/bin");
  put(u + "/bin/sh", "#!echo\n", 0755);
  REQUIRE(::chown((u + "/bin/sh").c_str(), 1000, 1001) == 0);
  set_mtime(u + "/bin/sh", 1600000000);
  REQUIRE(::link((u + "/bin/sh").c_str(), (u + "/bin/sh2").c_str()) == 0);
  REQUIRE(::symlink("usr/lib", (u + "/lib").c_str()) == 0);
  base::make_dirs(u + "/dev");
  REQUIRE(::mknod((u + "/dev/null").c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0);
  REQUIRE(::mknod((u + "/dev/loop0").c_str(), S_IFBLK | 0660, makedev(7, 0)) == 0);
  REQUIRE(::mkfifo((u + "/dev/fifo").c_str(), 0600) == 0);
  REQUIRE(::mknod((u + "/gone").c_str(), S_IFCHR | 0, makedev(0, 0)) == 0);
  base::make_dirs(u + "/opq");
  REQUIRE(::setxattr((u + "/opq").c_str(), "trusted.overlay.opaque", "y", 1, 0) == 0);
  put(u + "/opq/new", "new");
  put(u + "/cap", "x");
  REQUIRE(::setxattr((u + "/cap").c_str(), "user.note", "hello", 5, 0) == 0);
  REQUIRE(::setxattr((u + "/cap").c_str(), "trusted.overlay.origin", "zz", 2, 0) == 0);
}

}  // namespace

TEST_CASE("layer: an upper dir becomes a sorted tar with OCI whiteouts, and applies back") {
  if (!test::have_root()) return;
  Root r;
  std::string u = r.path("upper");
  make_upper(u);

  auto layer = image::write_layer(u, r.store.blobs());
  CHECK_FALSE(layer.empty);
  REQUIRE(r.store.blobs().has(layer.digest));
  CHECK(layer.size == r.store.blobs().size(layer.digest));
  // diff id = sha256 of the uncompressed tar
  std::string plain = test::gunzip(r.store.blobs().path(layer.digest));
  CHECK(base::Digest::of(plain) == layer.diff_id);
  CHECK(plain.size() % 512 == 0);

  CHECK(test::tar_names(r.store.blobs().path(layer.digest)) ==
        std::vector<std::string>{"bin/", "bin/sh", "bin/sh2 => bin/sh", "cap", "dev/", "dev/fifo", "dev/loop0",
                                 "dev/null", ".wh.gone", "lib", "opq/", "opq/.wh..wh..opq", "opq/new"});

  std::string d = r.path("applied");
  base::make_dirs(d);
  base::Fd fd = r.store.blobs().open(layer.digest);
  CHECK(image::apply_layer(fd.get(), d) == layer.diff_id);

  auto sh = lst(d + "/bin/sh");
  CHECK((sh.st_mode & 07777) == 0755);
  CHECK(sh.st_uid == 1000);
  CHECK(sh.st_gid == 1001);
  CHECK(sh.st_mtim.tv_sec == 1600000000);
  CHECK(base::read_file(d + "/bin/sh") == "#!echo\n");
  CHECK(lst(d + "/bin/sh2").st_ino == sh.st_ino);
  char target[64] = {};
  REQUIRE(::readlink((d + "/lib").c_str(), target, sizeof target) > 0);
  CHECK(std::string(target) == "usr/lib");
  auto null = lst(d + "/dev/null");
  CHECK(S_ISCHR(null.st_mode));
  CHECK(null.st_rdev == makedev(1, 3));
  CHECK(S_ISBLK(lst(d + "/dev/loop0").st_mode));
  CHECK(S_ISFIFO(lst(d + "/dev/fifo").st_mode));
  auto gone = lst(d + "/gone");
  CHECK(S_ISCHR(gone.st_mode));
  CHECK(gone.st_rdev == makedev(0, 0));
  CHECK_FALSE(base::path_exists(d + "/.wh.gone"));
  CHECK(xattr(d + "/opq", "trusted.overlay.opaque") == "y");
  CHECK_FALSE(base::path_exists(d + "/opq/.wh..wh..opq"));
  CHECK(base::read_file(d + "/opq/new") == "new");
  CHECK(xattr(d + "/cap", "user.note") == "");  // only security.capability travels
  CHECK(xattr(d + "/cap", "trusted.overlay.origin") == "");

  // The applied dir is again an upper dir: writing it gives the same layer.
  auto again = image::write_layer(d, r.store.blobs());
  CHECK(again.diff_id == layer.diff_id);
  CHECK(again.digest == layer.digest);
}

TEST_CASE("layer: no change is BuildKit's 32-byte empty layer (1024 zero bytes, Go's gzip)") {
  Root r;
  base::make_dirs(r.path("empty"));
  for (const auto& layer : {image::write_layer(r.path("empty"), r.store.blobs()),
                            image::write_layer(r.path("empty"), {r.path("empty")}, r.store.blobs()),
                            image::write_dir_layer(r.path("empty"), r.store.blobs())}) {
    CHECK(layer.empty);
    CHECK(layer.diff_id.str() == "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef");
    CHECK(layer.digest.str() == "sha256:4f4fb700ef54461cfa02571ae0db9a0dc1e0cdb5577484a6d75e68dc38e8acc1");
    CHECK(layer.size == 32);
    CHECK(test::gunzip(r.store.blobs().path(layer.digest)) == std::string(1024, '\0'));
  }
}

TEST_CASE("layer: write_dir_layer keeps 0/0 char devices as devices") {
  if (!test::have_root()) return;
  Root r;
  std::string u = r.path("rootfs");
  base::make_dirs(u);
  REQUIRE(::mknod((u + "/c").c_str(), S_IFCHR | 0600, makedev(0, 0)) == 0);
  auto layer = image::write_dir_layer(u, r.store.blobs());
  CHECK(test::tar_names(r.store.blobs().path(layer.digest)) == std::vector<std::string>{"c"});
}

TEST_CASE("layer: a plain tar applies and its diff id is the file's sha256") {
  Root r;
  std::string tar = r.path("plain.tar");
  test::make_tar(tar, {{"./etc/", 'd', "", 0755}, {"./etc/hostname", 'f', "box\n"}});
  std::string dest = r.path("dest");
  base::make_dirs(dest);
  base::Fd fd = base::open_fd(tar, O_RDONLY);
  CHECK(image::apply_layer(fd.get(), dest) == base::Digest::of(base::read_file(tar)));
  CHECK(base::read_file(dest + "/etc/hostname") == "box\n");

  fd = base::open_fd(tar, O_RDONLY);
  auto blob = image::ingest_layer(fd.get(), r.store.blobs());
  CHECK(blob.diff_id == base::Digest::of(base::read_file(tar)));
  CHECK(test::gunzip(r.store.blobs().path(blob.digest)) == base::read_file(tar));
}

TEST_CASE("layer: entries escaping the destination are refused") {
  Root r;
  struct Case {
    std::vector<test::TarItem> items;
    std::string error;
  };
  std::vector<Case> cases = {
      {{{"../evil", 'f', "x"}}, "refusing tar entry `../evil`: path escapes the destination"},
      {{{"a/../../evil", 'f', "x"}}, "refusing tar entry `a/../../evil`: path escapes the destination"},
      {{{"/abs", 'f', "x"}}, "refusing tar entry `/abs`: absolute path"},
      {{{"ok", 'f', "x"}, {"hl", 'h', "../outside"}}, "refusing tar entry `../outside`: path escapes the destination"},
      {{{"esc", 'l', "/"}, {"esc/evil", 'f', "x"}}, "refusing tar entry `esc/evil`: `esc` is a symbolic link"},
      {{{"esc", 'l', ".."}, {"esc/.wh.x", 'f', ""}}, "refusing tar entry `esc/.wh.x`: `esc` is a symbolic link"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.error);
    std::string tar = r.path("bad.tar");
    ::unlink(tar.c_str());
    test::make_tar(tar, c.items);
    for (bool merge : {false, true}) {
      base::TempDir dest(r.dir.path(), "dest-");
      base::Fd fd = base::open_fd(tar, O_RDONLY);
      try {
        merge ? image::extract_layer(fd.get(), dest.path()) : image::apply_layer(fd.get(), dest.path());
        FAIL("no error");
      } catch (const base::Error& e) {
        CHECK(e.message() == c.error);
      }
      CHECK_FALSE(base::path_exists(r.dir.path() + "/evil"));
    }
  }
}

TEST_CASE("layer: extract_layer merges: whiteouts delete, opaque dirs lose earlier content only") {
  if (!test::have_root()) return;
  Root r;
  std::string dest = r.path("tree");
  base::make_dirs(dest + "/etc/old");
  put(dest + "/etc/old/f", "1");
  put(dest + "/etc/keep", "2");
  base::make_dirs(dest + "/opq/sub");
  put(dest + "/opq/sub/old", "3");
  put(dest + "/opq/old", "4");
  put(dest + "/file", "5");

  std::string u = r.path("upper");
  base::make_dirs(u + "/etc");
  REQUIRE(::mknod((u + "/etc/old").c_str(), S_IFCHR, makedev(0, 0)) == 0);
  base::make_dirs(u + "/opq/sub");
  REQUIRE(::setxattr((u + "/opq").c_str(), "trusted.overlay.opaque", "y", 1, 0) == 0);
  put(u + "/opq/sub/new", "6");
  base::make_dirs(u + "/file");  // a file replaced by a directory
  auto layer = image::write_layer(u, r.store.blobs());

  base::Fd fd = r.store.blobs().open(layer.digest);
  CHECK(image::extract_layer(fd.get(), dest) == layer.diff_id);
  CHECK_FALSE(base::path_exists(dest + "/etc/old"));
  CHECK(base::read_file(dest + "/etc/keep") == "2");
  CHECK_FALSE(base::path_exists(dest + "/opq/old"));
  CHECK_FALSE(base::path_exists(dest + "/opq/sub/old"));
  CHECK(base::read_file(dest + "/opq/sub/new") == "6");
  CHECK_FALSE(base::path_exists(dest + "/opq/.wh..wh..opq"));
  CHECK(S_ISDIR(lst(dest + "/file").st_mode));
  CHECK(xattr(dest + "/opq", "trusted.overlay.opaque") == "");

  // A marker after entries of the same layer (other producers sort it anywhere).
  std::string tar = r.path("late-marker.tar");
  test::make_tar(tar, {{"opq/", 'd', "", 0755}, {"opq/-first", 'f', "7"}, {"opq/.wh..wh..opq", 'f', ""}});
  fd = base::open_fd(tar, O_RDONLY);
  image::extract_layer(fd.get(), dest);
  CHECK(base::read_file(dest + "/opq/-first") == "7");
  CHECK_FALSE(base::path_exists(dest + "/opq/sub"));
}

TEST_CASE("layer: gzip from other tools (several members) applies") {
  Root r;
  std::string tar = r.path("x.tar");
  test::make_tar(tar, {{"a", 'f', std::string(100000, 'a')}, {"b", 'f', "b"}});
  std::string plain = base::read_file(tar);
  // two gzip members, split mid-stream
  std::string gz = r.path("x.tar.gz");
  {
    gzFile f = gzopen(gz.c_str(), "wb9");
    gzwrite(f, plain.data(), 70000);
    gzclose(f);
    f = gzopen(gz.c_str(), "ab9");
    gzwrite(f, plain.data() + 70000, static_cast<unsigned>(plain.size() - 70000));
    gzclose(f);
  }
  std::string dest = r.path("dest");
  base::make_dirs(dest);
  base::Fd fd = base::open_fd(gz, O_RDONLY);
  CHECK(image::apply_layer(fd.get(), dest) == base::Digest::of(plain));
  CHECK(base::read_file(dest + "/b") == "b");
}

TEST_CASE("layer: non-ASCII names survive write and apply") {
  Root r;
  std::string u = r.path("upper");
  base::make_dirs(u);
  std::string name = "NetLock_Arany_=Class_Gold=_F\xc5\x91tan\xc3\xbas\xc3\xadtv\xc3\xa1ny.crt";
  put(u + "/" + name, "pem");
  put(u + "/raw\xff", "raw");  // not UTF-8 at all
  auto layer = image::write_layer(u, r.store.blobs());
  std::string d = r.path("d");
  base::make_dirs(d);
  base::Fd fd = r.store.blobs().open(layer.digest);
  image::apply_layer(fd.get(), d);
  CHECK(base::read_file(d + "/" + name) == "pem");
  CHECK(base::read_file(d + "/raw\xff") == "raw");
}

TEST_CASE("layer: headers are Go archive/tar's pax format: ustar fields, PaxHeaders.0 records") {
  using image::detail::TarHeader;
  auto tar = [](std::vector<TarHeader> hs) {
    StringSink sink;
    image::detail::TarWriter w(sink);
    for (const auto& h : hs) {
      w.write_header(h);
      if (h.typeflag == '0' && h.size < 100)
        w.write_data(std::string(static_cast<size_t>(h.size), 'x').data(), static_cast<size_t>(h.size));
    }
    w.close();
    return sink.out;
  };
  auto file = [](std::string name, int64_t size = 2) {
    TarHeader h;
    h.name = std::move(name);
    h.mode = 0644;
    h.size = size;
    h.mtime = 1600000000;
    return h;
  };

  // Field formats: octal zero-padded with a NUL; magic "ustar\0" "00"; no user names;
  // device numbers written as zeros; then the data, padded, and two zero records.
  std::string one = tar({file("a/f")});
  CHECK(one.size() == 512 + 512 + 1024);
  CHECK(one.substr(100, 8) == std::string("0000644\0", 8));
  CHECK(one.substr(124, 24) == std::string("00000000002") + '\0' + "13727410000" + '\0');
  CHECK(one.substr(257, 80) ==
        std::string("ustar") + '\0' + "00" + std::string(64, '\0') + std::string("0000000\0", 8));
  CHECK(test::raw_headers(one) ==
        std::vector<std::string>{"0 a/f 0000644 0000000:0000000 00000000002 13727410000", "end 2048"});

  auto own = file("own", 0);
  own.uid = 12345678;
  own.gid = 87654321;
  auto big = file("big", 9663676416);
  auto sub = file("dir/sub", 0);
  sub.typeflag = '5';
  sub.name = "d/" + std::string(120, 'a') + "/";
  TarHeader lnk = file("longlink", 0);
  lnk.typeflag = '2';
  lnk.mode = 0777;
  lnk.linkname = "/" + std::string(110, 'b');
  auto utf8 = file("\xc3\xbcn\xc3\xaf", 0);
  auto raw = file("raw\xff", 0);
  auto cap = file("cap", 0);
  cap.mode = 04755;
  cap.xattrs = {{"security.capability", kCapNetRaw}};
  auto old = file("old", 0);
  old.mtime = -1;
  TarHeader dev = file("dev/null", 0);
  dev.typeflag = '3';
  dev.devmajor = 1;
  dev.devminor = 3;
  CHECK(test::raw_headers(tar({own, sub, lnk, utf8, raw, cap, old, dev})) ==
        std::vector<std::string>{
            "x PaxHeaders.0/own 0000000 0000000:0000000 00000000040 00000000000 {gid=87654321;uid=12345678}",
            "0 own 0000644 0000000:0000000 00000000000 13727410000",
            // Name cut at 100 ASCII bytes, the whole name in a pax record, never the ustar prefix.
            "x d/" + std::string(98, 'a') + " 0000000 0000000:0000000 00000000205 00000000000 {path=d/" +
                std::string(120, 'a') + "/}",
            "5 d/" + std::string(98, 'a') + " 0000644 0000000:0000000 00000000000 13727410000",
            "x PaxHeaders.0/longlink 0000000 0000000:0000000 00000000175 00000000000 {linkpath=/" +
                std::string(110, 'b') + "}",
            "2 longlink 0000777 0000000:0000000 00000000000 13727410000 -> /" + std::string(99, 'b'),
            // Non-ASCII names: ASCII bytes only in the field, the bytes as they are in the
            // record (no hdrcharset, even when they are not UTF-8).
            "x PaxHeaders.0/n 0000000 0000000:0000000 00000000016 00000000000 {path=\\xc3\\xbcn\\xc3\\xaf}",
            "0 n 0000644 0000000:0000000 00000000000 13727410000",
            "x PaxHeaders.0/raw 0000000 0000000:0000000 00000000015 00000000000 {path=raw\\xff}",
            "0 raw 0000644 0000000:0000000 00000000000 13727410000",
            "x PaxHeaders.0/cap 0000000 0000000:0000000 00000000071 00000000000 "
            "{SCHILY.xattr.security.capability=\\x01\\x00\\x00\\x02\\x00 "
            "\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00}",
            "0 cap 0004755 0000000:0000000 00000000000 13727410000",
            "x PaxHeaders.0/old 0000000 0000000:0000000 00000000014 00000000000 {mtime=-1}",
            "0 old 0000644 0000000:0000000 00000000000 00000000000",
            "3 dev/null 0000644 0000000:0000000 00000000000 13727410000 dev=0000001,0000003", "end 12288"});

  // 8 GiB and more: a size record, the field zero (only the header here).
  CHECK(test::raw_headers(image::detail::encode_tar_header(big)) ==
        std::vector<std::string>{"x PaxHeaders.0/big 0000000 0000000:0000000 00000000023 00000000000 {size=9663676416}",
                                 "0 big 0000644 0000000:0000000 00000000000 13727410000", "end 1536"});

  // A whiteout (Go's unspecified format): plain ustar, a long name split into prefix.
  TarHeader wh;
  wh.format = TarHeader::Format::kAuto;
  wh.name = std::string(60, 'd') + "/.wh." + std::string(60, 'f');
  CHECK(test::raw_headers(tar({wh})) ==
        std::vector<std::string>{"0 " + std::string(60, 'd') + "|.wh." + std::string(60, 'f') +
                                     " 0000000 0000000:0000000 00000000000 00000000000",
                                 "end 1536"});
  wh.name = "\xc3\xbc/.wh.x";  // only pax can hold it
  CHECK(test::raw_headers(tar({wh})) ==
        std::vector<std::string>{"x /PaxHeaders.0/.wh.x 0000000 0000000:0000000 00000000021 00000000000 "
                                 "{path=\\xc3\\xbc/.wh.x}",
                                 "0 /.wh.x 0000000 0000000:0000000 00000000000 00000000000", "end 2560"});

  TarHeader bad = file("f/");
  try {
    image::detail::encode_tar_header(bad);
    FAIL("no error");
  } catch (const base::Error& e) {
    CHECK(e.message() == "cannot write tar entry `f/`: a file name may not end in '/'");
  }
}

TEST_CASE("layer: a whiteout is a ustar file of mode 0, owner 0:0, mtime 0, written when a layer below has the name") {
  if (!test::have_root()) return;
  Root r;
  std::string lower = r.path("lower"), u = r.path("upper");
  const std::string longdir(60, 'd'), longname(60, 'f');
  base::make_dirs(lower + "/dir");
  base::make_dirs(lower + "/" + longdir);
  put(lower + "/a", "a");
  put(lower + "/dir/x", "x");
  put(lower + "/" + longdir + "/" + longname, "l");
  base::make_dirs(u + "/dir");
  base::make_dirs(u + "/" + longdir);
  whiteout(u + "/a");
  whiteout(u + "/b");  // nothing below: no change
  whiteout(u + "/dir/x");
  whiteout(u + "/dir/y");
  whiteout(u + "/" + longdir + "/" + longname);
  REQUIRE(::chown((u + "/dir").c_str(), 7, 8) == 0);
  for (const auto& d : {u + "/dir", u + "/" + longdir, lower + "/dir", lower + "/" + longdir}) set_mtime(d, 1600000000);

  auto layer = image::write_layer(u, {lower}, r.store.blobs());
  CHECK(
      headers(r, layer) ==
      std::vector<std::string>{"0 .wh.a 0000000 0000000:0000000 00000000000 00000000000",
                               "5 " + longdir + "/ 0000755 0000000:0000000 00000000000 13727410000",
                               "0 " + longdir + "|.wh." + longname + " 0000000 0000000:0000000 00000000000 00000000000",
                               "5 dir/ 0000755 0000007:0000010 00000000000 13727410000",
                               "0 dir/.wh.x 0000000 0000000:0000000 00000000000 00000000000", "end 3584"});

  // Without the layers below, every whiteout is kept.
  CHECK(test::tar_names(r.store.blobs().path(image::write_layer(u, r.store.blobs()).digest)) ==
        std::vector<std::string>{".wh.a", ".wh.b", longdir + "/", longdir + "/.wh." + longname, "dir/", "dir/.wh.x",
                                 "dir/.wh.y"});
}

TEST_CASE("layer: an opaque directory becomes whiteouts for what the layers below had in it") {
  if (!test::have_root()) return;
  Root r;
  std::string lower = r.path("lower"), u = r.path("upper");
  // Below: d/{f2d, gone/x, keep, sub/{old, same}}.
  base::make_dirs(lower + "/d/gone");
  base::make_dirs(lower + "/d/sub");
  put(lower + "/d/f2d", "file");
  put(lower + "/d/gone/x", "x");
  put(lower + "/d/keep", "k");
  put(lower + "/d/sub/old", "o");
  put(lower + "/d/sub/same", "s");
  set_mtime(lower + "/d/sub/same", 1600000000);
  // `rm -rf /d && mkdir -p /d/sub /d/f2d && ...`: the upper d is opaque; whiteouts in it
  // are invisible (d/keep here), a name below is gone unless the upper dir has it.
  base::make_dirs(u + "/d/sub");
  base::make_dirs(u + "/d/f2d");
  set_xattr(u + "/d", "trusted.overlay.opaque", "y");
  whiteout(u + "/d/keep");
  put(u + "/d/f2d/in", "in");
  put(u + "/d/new", "n");
  put(u + "/d/sub/added", "a");
  put(u + "/d/sub/same", "s");
  set_mtime(u + "/d/sub/same", 1600000000);
  for (const auto& p : {"/d/f2d/in", "/d/new", "/d/sub/added", "/d/sub", "/d/f2d", "/d"}) set_mtime(u + p, 1600000000);

  auto layer = image::write_layer(u, {lower}, r.store.blobs());
  CHECK(headers(r, layer) ==
        std::vector<std::string>{"5 d/ 0000755 0000000:0000000 00000000000 13727410000",
                                 "5 d/f2d/ 0000755 0000000:0000000 00000000000 13727410000",  // a file below
                                 "0 d/f2d/in 0000644 0000000:0000000 00000000002 13727410000",
                                 "0 d/.wh.gone 0000000 0000000:0000000 00000000000 00000000000",
                                 "0 d/.wh.keep 0000000 0000000:0000000 00000000000 00000000000",
                                 "0 d/new 0000644 0000000:0000000 00000000001 13727410000",
                                 "5 d/sub/ 0000755 0000000:0000000 00000000000 13727410000",
                                 "0 d/sub/added 0000644 0000000:0000000 00000000001 13727410000",
                                 "0 d/sub/.wh.old 0000000 0000000:0000000 00000000000 00000000000", "end 7168"});

  // Applied over the layer below, it leaves exactly the upper view.
  std::string tree = r.path("tree");
  base::make_dirs(tree);
  for (const auto& l : {image::write_dir_layer(lower, r.store.blobs()), layer}) {
    base::Fd fd = r.store.blobs().open(l.digest);
    image::extract_layer(fd.get(), tree);
  }
  CHECK(test::tar_names(r.store.blobs().path(image::write_dir_layer(tree, r.store.blobs()).digest)) ==
        std::vector<std::string>{"d/", "d/f2d/", "d/f2d/in", "d/new", "d/sub/", "d/sub/added", "d/sub/same"});

  // Not opaque where nothing was below: a plain new directory.
  std::string bare = r.path("bare");
  base::make_dirs(bare);
  CHECK(test::tar_names(r.store.blobs().path(image::write_layer(u, {bare}, r.store.blobs()).digest)) ==
        std::vector<std::string>{"d/", "d/f2d/", "d/f2d/in", "d/new", "d/sub/", "d/sub/added", "d/sub/same"});
  // Layers below unknown: the `.wh..wh..opq` marker, as Docker's graph drivers write it.
  CHECK(test::tar_names(r.store.blobs().path(image::write_layer(u, r.store.blobs()).digest)) ==
        std::vector<std::string>{"d/", "d/.wh..wh..opq", "d/f2d/", "d/f2d/in", "d/.wh.keep", "d/new", "d/sub/",
                                 "d/sub/added", "d/sub/same"});
}

TEST_CASE("layer: what the layers below hold unchanged is left out; directories only above a written entry") {
  if (!test::have_root()) return;
  Root r;
  std::string lower = r.path("lower"), u = r.path("upper");
  for (const auto& root : {lower, u}) {
    base::make_dirs(root + "/etc");
    base::make_dirs(root + "/bin");
    base::make_dirs(root + "/usr/share");
    base::make_dirs(root + "/var");
    base::make_dirs(root + "/run");
    REQUIRE(::symlink("busybox", (root + "/bin/sh").c_str()) == 0);
    put(root + "/etc/passwd", "root");
    put(root + "/usr/share/f", "f");
  }
  put(lower + "/etc/shadow", "root");
  put(u + "/etc/shadow", "roo1");  // same size and mtime, other content
  put(lower + "/etc/hostname", "box");
  put(u + "/etc/hostname", "box");
  ::chmod((u + "/usr/share/f").c_str(), 0600);  // `chmod 600`: metadata only
  // A socket is never written, so it does not bring its directory in either.
  int sock = ::socket(AF_UNIX, SOCK_STREAM, 0);
  REQUIRE(sock >= 0);
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  std::string sock_path = u + "/run/sock";
  std::strncpy(addr.sun_path, sock_path.c_str(), sizeof addr.sun_path - 1);
  REQUIRE(::bind(sock, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) == 0);
  ::close(sock);
  for (const auto& root : {lower, u}) {
    // Unpacked from a tar below and copied up unchanged (`chown -R root /`): whole
    // seconds both, so contents are compared.
    for (const auto& p : {"/etc/passwd", "/etc/shadow", "/bin/sh", "/usr/share/f"}) set_mtime(root + p, 1600000000);
    for (const auto& p : {"/etc", "/bin", "/usr/share", "/usr", "/var", "/run"})
      set_mtime(root + p, root == u ? 1700000000 : 1600000000);  // directory mtimes are not compared
  }
  set_mtime_ns(lower + "/etc/hostname", 1600000000, 500);
  set_mtime_ns(u + "/etc/hostname", 1600000000, 600);  // same second, other nanoseconds

  auto layer = image::write_layer(u, {lower}, r.store.blobs());
  CHECK(headers(r, layer) == std::vector<std::string>{"5 etc/ 0000755 0000000:0000000 00000000000 14524770400",
                                                      "0 etc/hostname 0000644 0000000:0000000 00000000003 13727410000",
                                                      "0 etc/shadow 0000644 0000000:0000000 00000000004 13727410000",
                                                      "5 usr/ 0000755 0000000:0000000 00000000000 14524770400",
                                                      "5 usr/share/ 0000755 0000000:0000000 00000000000 14524770400",
                                                      "0 usr/share/f 0000600 0000000:0000000 00000000001 13727410000",
                                                      "end 5632"});

  // Everything unchanged: the empty layer.
  std::string same = r.path("same");
  base::make_dirs(same + "/etc");
  put(same + "/etc/passwd", "root");
  set_mtime(same + "/etc/passwd", 1600000000);
  auto empty = image::write_layer(same, {lower}, r.store.blobs());
  CHECK(empty.empty);
  CHECK(empty.digest.str() == "sha256:4f4fb700ef54461cfa02571ae0db9a0dc1e0cdb5577484a6d75e68dc38e8acc1");
}

TEST_CASE("layer: a file replaced by a directory and a directory by a file are written whole") {
  if (!test::have_root()) return;
  Root r;
  std::string lower = r.path("lower"), u = r.path("upper");
  base::make_dirs(lower + "/d2f/sub");
  put(lower + "/d2f/sub/x", "x");
  put(lower + "/f2d", "file");
  base::make_dirs(u + "/f2d");
  set_xattr(u + "/f2d", "trusted.overlay.opaque", "y");  // overlayfs marks a dir made over a whiteout
  put(u + "/f2d/in", "in");
  put(u + "/d2f", "now a file");
  for (const auto& p : {"/f2d/in", "/f2d", "/d2f"}) set_mtime(u + p, 1600000000);
  auto layer = image::write_layer(u, {lower}, r.store.blobs());
  CHECK(headers(r, layer) == std::vector<std::string>{"0 d2f 0000644 0000000:0000000 00000000012 13727410000",
                                                      "5 f2d/ 0000755 0000000:0000000 00000000000 13727410000",
                                                      "0 f2d/in 0000644 0000000:0000000 00000000002 13727410000",
                                                      "end 3584"});
}

TEST_CASE("layer: hard links are link entries to the first name, also when that name is unchanged") {
  if (!test::have_root()) return;
  Root r;
  std::string lower = r.path("lower"), u = r.path("upper");
  base::make_dirs(lower);
  base::make_dirs(u);
  put(lower + "/hl", "5");
  set_mtime(lower + "/hl", 1600000000);
  // `ln /hl /hl2` copies /hl up unchanged and links it; `ln /new1 /new2` links a new file.
  put(u + "/hl", "5");
  set_mtime(u + "/hl", 1600000000);
  REQUIRE(::link((u + "/hl").c_str(), (u + "/hl2").c_str()) == 0);
  put(u + "/new1", "x");
  set_mtime(u + "/new1", 1600000000);
  REQUIRE(::link((u + "/new1").c_str(), (u + "/new2").c_str()) == 0);
  auto layer = image::write_layer(u, {lower}, r.store.blobs());
  CHECK(headers(r, layer) == std::vector<std::string>{"0 hl 0000644 0000000:0000000 00000000001 13727410000",
                                                      "1 hl2 0000644 0000000:0000000 00000000000 13727410000 -> hl",
                                                      "0 new1 0000644 0000000:0000000 00000000001 13727410000",
                                                      "1 new2 0000644 0000000:0000000 00000000000 13727410000 -> new1",
                                                      "end 4096"});
  std::string d = r.path("applied");
  base::make_dirs(d);
  base::Fd fd = r.store.blobs().open(layer.digest);
  image::apply_layer(fd.get(), d);
  CHECK(lst(d + "/hl2").st_ino == lst(d + "/hl").st_ino);
  CHECK(lst(d + "/new2").st_ino == lst(d + "/new1").st_ino);
}

TEST_CASE("layer: security.capability is the only xattr written, and it applies back") {
  if (!test::have_root()) return;
  Root r;
  std::string u = r.path("upper");
  base::make_dirs(u);
  put(u + "/ping", "elf", 04755);
  set_mtime(u + "/ping", 1600000000);
  set_xattr(u + "/ping", "security.capability", kCapNetRaw);  // `setcap cap_net_raw+ep`
  set_xattr(u + "/ping", "user.note", "host");
  set_xattr(u + "/ping", "trusted.overlay.origin", "zz");
  auto layer = image::write_layer(u, {}, r.store.blobs());
  CHECK(headers(r, layer) ==
        std::vector<std::string>{"x PaxHeaders.0/ping 0000000 0000000:0000000 00000000071 00000000000 "
                                 "{SCHILY.xattr.security.capability=\\x01\\x00\\x00\\x02\\x00 "
                                 "\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00}",
                                 "0 ping 0004755 0000000:0000000 00000000003 13727410000", "end 3072"});
  std::string d = r.path("applied");
  base::make_dirs(d);
  base::Fd fd = r.store.blobs().open(layer.digest);
  image::apply_layer(fd.get(), d);
  CHECK(xattr(d + "/ping", "security.capability") == kCapNetRaw);
  CHECK((lst(d + "/ping").st_mode & 07777) == 04755);
}

TEST_CASE("layer: an upper dir with overlayfs redirect or metacopy xattrs is refused") {
  if (!test::have_root()) return;
  Root r;
  for (const char* x : {"trusted.overlay.redirect", "trusted.overlay.metacopy"}) {
    CAPTURE(x);
    base::TempDir u(r.dir.path(), "upper-");
    std::string entry = u.path() + (std::string(x).find("redirect") != std::string::npos ? "/moved" : "/file");
    if (entry.back() == 'd')
      base::make_dirs(entry);
    else
      put(entry, "");
    set_xattr(entry, x, x[16] == 'r' ? "/src" : "");
    try {
      image::write_layer(u.path(), {}, r.store.blobs());
      FAIL("no error");
    } catch (const base::Error& e) {
      CHECK(e.message() == "cannot export `" + entry + "` as a layer: it carries overlayfs " + x +
                               " (mount overlays with redirect_dir=off,metacopy=off)");
    }
  }
}
