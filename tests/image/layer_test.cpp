#include "image/layer.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/error.h"
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
  CHECK(xattr(d + "/cap", "user.note") == "hello");
  CHECK(xattr(d + "/cap", "trusted.overlay.origin") == "");

  // The applied dir is again an upper dir: writing it gives the same layer.
  auto again = image::write_layer(d, r.store.blobs());
  CHECK(again.diff_id == layer.diff_id);
  CHECK(again.digest == layer.digest);
}

TEST_CASE("layer: an empty dir is the empty layer (1024 zero bytes, as Docker's)") {
  Root r;
  base::make_dirs(r.path("empty"));
  auto layer = image::write_layer(r.path("empty"), r.store.blobs());
  CHECK(layer.empty);
  CHECK(layer.diff_id.str() == "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef");
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
