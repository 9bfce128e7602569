// Layer compression: gzip (multi-core libdeflate members), zstd and plain layers written,
// read back and converted; determinism whatever the thread count; corrupt input is an
// error; rewrite-timestamp (max_mtime) at write time and on stored layers.
#include "image/compress.h"

#include <sys/stat.h>
#include <sys/time.h>
#include <zstd.h>

#include <chrono>
#include <map>
#include <random>
#include <thread>

#include "base/error.h"
#include "cache/gc.h"
#include "image/layer.h"
#include "image/store.h"
#include "image/tar_io.h"
#include "image_test_util.h"

using namespace builder;
using image::Compression;
using image::CompressionSpec;
using test::Root;

namespace {

void put(const std::string& path, const std::string& data, time_t mtime = 1700000000) {
  base::write_file_atomic(path, data, 0644);
  ::chmod(path.c_str(), 0644);
  struct timespec ts[2] = {{mtime, 0}, {mtime, 0}};
  REQUIRE(::utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW) == 0);
}

void set_dir_mtime(const std::string& path, time_t t) {
  struct timespec ts[2] = {{t, 0}, {t, 0}};
  REQUIRE(::utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW) == 0);
}

/// Bytes that do not compress (a fixed seed: the same every run).
std::string noise(size_t n, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint64_t v = rng();
    std::memcpy(&s[i], &v, 8);
  }
  return s;
}

/// A tree of about 3.5 MiB, half noise, half repetitive text: several gzip chunks.
std::string make_tree(Root& r, const std::string& name) {
  std::string d = r.path(name);
  base::make_dirs(d + "/sub");
  put(d + "/random.bin", noise(1800 * 1024, 7));
  std::string text;
  while (text.size() < 1700 * 1024) text += "line " + std::to_string(text.size() % 977) + " of repetitive text\n";
  put(d + "/sub/text.txt", text);
  put(d + "/small", "hello\n");
  set_dir_mtime(d + "/sub", 1700000000);
  set_dir_mtime(d, 1700000000);
  return d;
}

/// name -> (mtime, content) of every entry of a layer blob (any compression).
std::map<std::string, std::pair<int64_t, std::string>> entries(const std::string& blob_path) {
  struct archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  archive_read_support_filter_all(a);
  REQUIRE(archive_read_open_filename(a, blob_path.c_str(), 65536) == ARCHIVE_OK);
  std::map<std::string, std::pair<int64_t, std::string>> out;
  struct archive_entry* e;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    std::string data;
    char buf[65536];
    la_ssize_t n;
    while ((n = archive_read_data(a, buf, sizeof buf)) > 0) data.append(buf, static_cast<size_t>(n));
    out[archive_entry_pathname(e)] = {archive_entry_mtime(e), data};
  }
  archive_read_free(a);
  return out;
}

image::LayerOptions with(Compression c, int level = -1, std::optional<int64_t> max_mtime = std::nullopt) {
  image::LayerOptions o;
  o.compression.type = c;
  o.compression.level = level;
  o.max_mtime = max_mtime;
  return o;
}

/// Compresses `plain` with LayerCompressor into the store; returns the blob digest.
base::Digest compress(Root& r, const std::string& plain, Compression c, int level, unsigned threads,
                      size_t piece = 100003) {
  auto w = r.store.blobs().ingest();
  image::detail::LayerCompressor comp(w, c, level, threads);
  for (size_t i = 0; i < plain.size(); i += piece) comp.write(plain.data() + i, std::min(piece, plain.size() - i));
  CHECK(comp.finish() == base::Digest::of(plain));
  return w.commit();
}

/// What PlainReader makes of a file: the plain bytes, or the error message.
std::string read_plain(const std::string& path) {
  base::Fd fd = base::open_fd(path, O_RDONLY);
  image::detail::PlainReader rd(fd.get());
  std::string out;
  char buf[65536];
  while (size_t n = rd.read(buf, sizeof buf)) out.append(buf, n);
  return out;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const base::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("compress: gzip, zstd and uncompressed layers of one tree have one diff id and apply back") {
  Root r;
  std::string tree = make_tree(r, "tree");
  std::map<Compression, image::LayerBlob> got;
  for (auto c : {Compression::Gzip, Compression::Zstd, Compression::Uncompressed})
    got[c] = image::write_dir_layer(tree, r.store.blobs(), with(c));
  CHECK(got[Compression::Gzip].media_type == image::kMediaTypeLayerGzip);
  CHECK(got[Compression::Zstd].media_type == "application/vnd.oci.image.layer.v1.tar+zstd");
  CHECK(got[Compression::Uncompressed].media_type == image::kMediaTypeLayerTar);
  const auto& plain = got[Compression::Uncompressed];
  CHECK(got[Compression::Gzip].diff_id == plain.diff_id);
  CHECK(got[Compression::Zstd].diff_id == plain.diff_id);
  CHECK(plain.digest == plain.diff_id);  // a plain layer is its own tar
  CHECK(got[Compression::Gzip].size < plain.size * 8 / 10);
  CHECK(got[Compression::Zstd].size < plain.size * 8 / 10);
  // The default gzip is the same as asking for gzip at kGzipDefaultLevel.
  CHECK(image::write_dir_layer(tree, r.store.blobs(), with(Compression::Gzip, image::kGzipDefaultLevel)).digest ==
        got[Compression::Gzip].digest);
  CHECK(image::write_dir_layer(tree, r.store.blobs()).digest == got[Compression::Gzip].digest);

  for (auto& [c, layer] : got) {
    CAPTURE(image::compression_name(c));
    std::string blob = r.store.blobs().path(layer.digest);
    CHECK(base::Digest::of(read_plain(blob)) == layer.diff_id);
    std::string dest = r.path("dest-" + std::string(image::compression_name(c)));
    base::make_dirs(dest);
    base::Fd fd = base::open_fd(blob, O_RDONLY);
    CHECK(image::apply_layer(fd.get(), dest) == layer.diff_id);
    CHECK(base::read_file(dest + "/sub/text.txt") == base::read_file(tree + "/sub/text.txt"));
    CHECK(base::read_file(dest + "/random.bin") == base::read_file(tree + "/random.bin"));
    // ingest_layer reads it back too, into any compression, same diff id.
    fd = base::open_fd(blob, O_RDONLY);
    auto again = image::ingest_layer(fd.get(), r.store.blobs(), with(Compression::Zstd, 5));
    CHECK(again.diff_id == layer.diff_id);
    CHECK(again.media_type == "application/vnd.oci.image.layer.v1.tar+zstd");
  }
  // gzip is independent members of 1 MiB plain bytes each, header mtime 0 and OS 255.
  std::string gz = base::read_file(r.store.blobs().path(got[Compression::Gzip].digest));
  REQUIRE(gz.size() > 10);
  CHECK(gz.substr(0, 3) == std::string("\x1f\x8b\x08", 3));
  CHECK(gz.substr(4, 4) == std::string(4, '\0'));
  CHECK(static_cast<unsigned char>(gz[9]) == 255);
  z_stream zs{};
  REQUIRE(inflateInit2(&zs, 15 + 16) == Z_OK);
  std::string first(2 << 20, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(gz.data());
  zs.avail_in = static_cast<uInt>(gz.size());
  zs.next_out = reinterpret_cast<Bytef*>(first.data());
  zs.avail_out = static_cast<uInt>(first.size());
  CHECK(inflate(&zs, Z_FINISH) == Z_STREAM_END);  // the first member ends...
  CHECK(zs.total_out == image::detail::kGzipChunk);  // ...after exactly one chunk
  CHECK(zs.avail_in > 0);                            // and more members follow
  inflateEnd(&zs);
}

TEST_CASE("compress: output depends only on the input, never on the thread count or the run") {
  Root r;
  std::string plain = noise(2500 * 1024, 3);
  for (size_t i = 0; i < 3000 * 1024; i += 64) plain += "abcdefghijklmnopqrstuvwxyz0123456789 repeated block of text____\n";
  for (auto c : {Compression::Gzip, Compression::Zstd}) {
    int level = c == Compression::Gzip ? 6 : 3;
    CAPTURE(image::compression_name(c));
    base::Digest one = compress(r, plain, c, level, 1);
    for (unsigned threads : {2u, 3u, 4u, 8u}) {
      CAPTURE(threads);
      CHECK(compress(r, plain, c, level, threads) == one);
      CHECK(compress(r, plain, c, level, threads, 1 << 20) == one);  // whatever the write sizes
    }
    CHECK(compress(r, plain, c, level, 0, 7) == one);
    CHECK(base::Digest::of(read_plain(r.store.blobs().path(one))) == base::Digest::of(plain));
    // Another level is another blob.
    CHECK(compress(r, plain, c, 1, 2) != one);
  }
  // An empty stream is still a valid stream.
  for (auto c : {Compression::Gzip, Compression::Zstd, Compression::Uncompressed})
    CHECK(read_plain(r.store.blobs().path(compress(r, "", c, image::effective_level({c}), 2))).empty());
}

TEST_CASE("compress: multi-member gzip and multi-frame zstd from other tools are read as one stream") {
  Root r;
  std::string tar = r.path("x.tar");
  test::make_tar(tar, {{"a", 'f', std::string(300000, 'a')}, {"b", 'f', "b"}});
  std::string plain = base::read_file(tar);
  // zstd: two frames, split mid-entry, the first with a checksum.
  std::string zst;
  for (auto [off, len] : {std::pair<size_t, size_t>{0, 123456}, {123456, plain.size() - 123456}}) {
    std::string out(ZSTD_compressBound(len), '\0');
    size_t n = ZSTD_compress(out.data(), out.size(), plain.data() + off, len, 19);
    REQUIRE_FALSE(ZSTD_isError(n));
    zst += out.substr(0, n);
  }
  base::write_file_atomic(r.path("x.tar.zst"), zst, 0644);
  CHECK(read_plain(r.path("x.tar.zst")) == plain);
  std::string dest = r.path("dest");
  base::make_dirs(dest);
  base::Fd fd = base::open_fd(r.path("x.tar.zst"), O_RDONLY);
  CHECK(image::apply_layer(fd.get(), dest) == base::Digest::of(plain));
  CHECK(base::read_file(dest + "/b") == "b");

  // gzip: two members from zlib.
  std::string gz;
  for (auto [off, len] : {std::pair<size_t, size_t>{0, 200000}, {200000, plain.size() - 200000}}) {
    gzFile f = gzopen(r.path("part.gz").c_str(), "wb6");
    gzwrite(f, plain.data() + off, static_cast<unsigned>(len));
    gzclose(f);
    gz += base::read_file(r.path("part.gz"));
  }
  base::write_file_atomic(r.path("x.tar.gz"), gz, 0644);
  fd = base::open_fd(r.path("x.tar.gz"), O_RDONLY);
  auto blob = image::ingest_layer(fd.get(), r.store.blobs());
  CHECK(blob.diff_id == base::Digest::of(plain));
  CHECK(blob.media_type == image::kMediaTypeLayerGzip);
}

TEST_CASE("compress: corrupt or truncated gzip and zstd layers are errors, never a crash") {
  Root r;
  std::string tree = make_tree(r, "tree");
  for (auto c : {Compression::Gzip, Compression::Zstd}) {
    CAPTURE(image::compression_name(c));
    auto layer = image::write_dir_layer(tree, r.store.blobs(), with(c));
    std::string good = base::read_file(r.store.blobs().path(layer.digest));
    std::string name = std::string(image::compression_name(c));
    std::map<std::string, std::string> bad = {
        {"truncated", good.substr(0, good.size() / 2)},
        {"cut-at-end", good.substr(0, good.size() - 3)},
        {"magic-only", good.substr(0, 4)},
    };
    std::string flipped = good;
    flipped[good.size() / 3] ^= 0x55;
    bad["corrupt"] = flipped;
    std::string garbage = good.substr(0, 20) + noise(5000, 1);
    bad["garbage"] = garbage;
    for (auto& [what, bytes] : bad) {
      CAPTURE(what);
      std::string p = r.path(name + "-" + what);
      base::write_file_atomic(p, bytes, 0644);
      std::string msg = error_of([&] { read_plain(p); });
      CHECK(msg.starts_with(name + ": "));
      std::string dest = r.path("dest-" + name + "-" + what);
      base::make_dirs(dest);
      base::Fd fd = base::open_fd(p, O_RDONLY);
      CHECK_THROWS_AS(image::apply_layer(fd.get(), dest), base::Error);
      fd = base::open_fd(p, O_RDONLY);
      CHECK_THROWS_AS(image::ingest_layer(fd.get(), r.store.blobs()), base::Error);
      fd = base::open_fd(p, O_RDONLY);
      CHECK_THROWS_AS(image::extract_layer(fd.get(), dest), base::Error);
    }
    if (c == Compression::Gzip) CHECK(error_of([&] { read_plain(r.path("gzip-truncated")); }) ==
                                      "gzip: unexpected end of compressed layer");
    else
      CHECK(error_of([&] { read_plain(r.path("zstd-truncated")); }) == "zstd: unexpected end of compressed layer");
  }
}

TEST_CASE("compress: convert_layer keeps the diff id, is done once, and checks the diff id") {
  Root r;
  std::string tree = make_tree(r, "tree");
  auto gz = image::write_dir_layer(tree, r.store.blobs());
  image::Descriptor src{gz.media_type, gz.digest, gz.size};

  // Already in the asked compression: the blob itself, under the asked media type.
  CompressionSpec docker;
  docker.oci_media_types = false;
  auto same = image::convert_layer(r.store, src, gz.diff_id, docker);
  CHECK(same.digest == gz.digest);
  CHECK(same.media_type == image::kDockerMediaTypeLayer);
  CHECK(image::convert_layer(r.store, src, gz.diff_id, CompressionSpec{Compression::Gzip, 9}).digest == gz.digest);

  CompressionSpec zstd{Compression::Zstd};
  auto z = image::convert_layer(r.store, src, gz.diff_id, zstd);
  CHECK(z.media_type == "application/vnd.oci.image.layer.v1.tar+zstd");
  CHECK(z.digest != gz.digest);
  CHECK(z.size == r.store.blobs().size(z.digest));
  CHECK(base::Digest::of(read_plain(r.store.blobs().path(z.digest))) == gz.diff_id);
  // The same as writing the tree as zstd directly.
  CHECK(image::write_dir_layer(tree, r.store.blobs(), with(Compression::Zstd)).digest == z.digest);
  auto remembered = r.store.index().get("blob:" + gz.diff_id.str() + ":zstd:3");
  REQUIRE(remembered);
  CHECK(remembered->find(z.digest.str()) != std::string::npos);

  // Converting back: zstd -> uncompressed is the tar itself.
  auto plain = image::convert_layer(r.store, z, gz.diff_id, CompressionSpec{Compression::Uncompressed});
  CHECK(plain.digest == gz.diff_id);
  CHECK(plain.media_type == image::kMediaTypeLayerTar);

  // force: recompressed even though it is gzip already, at the asked level.
  CompressionSpec forced{Compression::Gzip, 9, true};
  auto g9 = image::convert_layer(r.store, src, gz.diff_id, forced);
  CHECK(g9.digest != gz.digest);
  CHECK(g9.digest == image::write_dir_layer(tree, r.store.blobs(), with(Compression::Gzip, 9)).digest);

  // Done once: with the source's content gone (only its magic left), the remembered
  // conversions are still answered; a new one fails on the broken source.
  std::string src_path = r.store.blobs().path(gz.digest);
  std::string head = base::read_file(src_path).substr(0, 16);
  ::chmod(src_path.c_str(), 0644);
  base::write_file_atomic(src_path, head, 0444);
  CHECK(image::convert_layer(r.store, src, gz.diff_id, zstd).digest == z.digest);
  CHECK(image::convert_layer(r.store, src, gz.diff_id, forced).digest == g9.digest);
  CHECK_THROWS_AS(image::convert_layer(r.store, src, gz.diff_id, CompressionSpec{Compression::Zstd, 7}), base::Error);
  CHECK_FALSE(r.store.index().get("blob:" + gz.diff_id.str() + ":zstd:7"));

  // A diff id that is not the content's: an error, nothing remembered.
  base::Digest wrong = base::Digest::of("nope");
  std::string msg = error_of([&] { image::convert_layer(r.store, z, wrong, CompressionSpec{Compression::Gzip}); });
  CHECK(msg == "layer " + z.digest.str() + " uncompresses to " + gz.diff_id.str() + ", not its diff id " + wrong.str());
  CHECK_FALSE(r.store.index().get("blob:" + wrong.str() + ":gzip:" + std::to_string(image::kGzipDefaultLevel)));

  // zstd with Docker media types is refused, naming the option.
  CompressionSpec docker_zstd{Compression::Zstd, -1, false, false};
  CHECK(error_of([&] { image::convert_layer(r.store, z, gz.diff_id, docker_zstd); }) ==
        "compression=zstd requires oci-mediatypes=true (Docker media types have no zstd layer)");
}

TEST_CASE("compress: names, levels and media types") {
  CHECK(image::parse_compression("gzip") == Compression::Gzip);
  CHECK(image::parse_compression("zstd") == Compression::Zstd);
  CHECK(image::parse_compression("uncompressed") == Compression::Uncompressed);
  CHECK(error_of([] { image::parse_compression("lz4"); }) ==
        "unknown compression `lz4` (valid: gzip, zstd, uncompressed)");
  CHECK(error_of([] { image::validate({Compression::Gzip, 13}); }) ==
        "compression-level=13 is out of range for gzip (0..12)");
  CHECK(error_of([] { image::validate({Compression::Zstd, 0}); }) ==
        "compression-level=0 is out of range for zstd (1..22)");
  CHECK(error_of([] { image::validate({Compression::Uncompressed, 1}); }) ==
        "compression-level=1 cannot be used with compression=uncompressed");
  CHECK(image::effective_level({Compression::Gzip}) == image::kGzipDefaultLevel);
  CHECK(image::effective_level({Compression::Zstd}) == 3);
  CHECK(image::layer_media_type({Compression::Uncompressed, -1, false, false}) ==
        "application/vnd.docker.image.rootfs.diff.tar");
  CHECK(image::compression_of_media_type("application/vnd.docker.image.rootfs.diff.tar.gzip") == Compression::Gzip);
  CHECK(image::compression_of_media_type("application/vnd.oci.image.layer.v1.tar+zstd") == Compression::Zstd);
  CHECK(image::compression_of_media_type("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip") ==
        Compression::Gzip);
  CHECK(image::compression_of_media_type("application/vnd.oci.image.layer.v1.tar") == Compression::Uncompressed);
  CHECK(error_of([] { image::compression_of_media_type("application/vnd.oci.image.config.v1+json"); }) ==
        "`application/vnd.oci.image.config.v1+json` is not a layer media type");
  // Level 0 gzip stores: a valid stream, bigger than its input.
  Root r;
  std::string plain = noise(3 << 20, 9);
  auto d = compress(r, plain, Compression::Gzip, 0, 2);
  CHECK(r.store.blobs().size(d) > plain.size());
  CHECK(read_plain(r.store.blobs().path(d)) == plain);
}

TEST_CASE("compress: max_mtime clamps entry times when writing, ingesting and on stored layers") {
  Root r;
  std::string tree = make_tree(r, "tree");
  put(tree + "/old", "old", 1000);
  set_dir_mtime(tree, 1700000000);
  const int64_t epoch = 1600000000;

  auto clamped = image::write_dir_layer(tree, r.store.blobs(), with(Compression::Gzip, -1, epoch));
  auto plain = image::write_dir_layer(tree, r.store.blobs());
  CHECK(clamped.diff_id != plain.diff_id);
  auto e = entries(r.store.blobs().path(clamped.digest));
  CHECK(e["small"].first == epoch);
  CHECK(e["sub/"].first == epoch);
  CHECK(e["old"].first == 1000);  // older times stay
  CHECK(e["sub/text.txt"].second == base::read_file(tree + "/sub/text.txt"));
  CHECK(entries(r.store.blobs().path(plain.digest))["small"].first == 1700000000);

  // A stored layer rewritten: the same bytes as writing it clamped in the first place.
  image::Descriptor src{plain.media_type, plain.digest, plain.size};
  auto rewritten = image::clamp_layer_mtimes(r.store, src, plain.diff_id, epoch, CompressionSpec{});
  CHECK(rewritten.diff_id == clamped.diff_id);
  CHECK(rewritten.digest == clamped.digest);
  CHECK(rewritten.media_type == image::kMediaTypeLayerGzip);
  CHECK(r.store.index().get("blob-clamp:" + plain.diff_id.str() + ":1600000000:gzip:" +
                            std::to_string(image::kGzipDefaultLevel)));
  // ... into zstd, same diff id.
  auto rz = image::clamp_layer_mtimes(r.store, src, plain.diff_id, epoch, CompressionSpec{Compression::Zstd});
  CHECK(rz.diff_id == clamped.diff_id);
  CHECK(rz.media_type == "application/vnd.oci.image.layer.v1.tar+zstd");
  // Nothing newer than the epoch: the layer as it was (same diff id, same blob).
  auto kept = image::clamp_layer_mtimes(r.store, src, plain.diff_id, 1800000000, CompressionSpec{});
  CHECK(kept.diff_id == plain.diff_id);
  CHECK(kept.digest == plain.digest);
  // Remembered: asked again, the same answers.
  CHECK(image::clamp_layer_mtimes(r.store, src, plain.diff_id, epoch, CompressionSpec{}).digest == clamped.digest);
  CHECK(image::clamp_layer_mtimes(r.store, src, plain.diff_id, 1800000000, CompressionSpec{}).digest ==
        plain.digest);
  // A wrong diff id is an error.
  CHECK_THROWS_AS(image::clamp_layer_mtimes(r.store, src, base::Digest::of("x"), 5, CompressionSpec{}), base::Error);

  // ingest_layer with max_mtime re-encodes the same way.
  base::Fd fd = r.store.blobs().open(plain.digest);
  auto ingested = image::ingest_layer(fd.get(), r.store.blobs(), with(Compression::Gzip, -1, epoch));
  CHECK(ingested.diff_id == clamped.diff_id);
  CHECK(ingested.digest == clamped.digest);
}

TEST_CASE("compress: a remembered conversion is leased as it is looked up, so a prune before its use keeps it") {
  Root r;
  std::string tree = make_tree(r, "tree");
  auto gz = image::write_dir_layer(tree, r.store.blobs());
  image::Descriptor src{gz.media_type, gz.digest, gz.size};
  // The source is an image's layer (never pruned); its zstd copy is only remembered.
  cache::ImageRefsFn images = [&] { return cache::ImageRefs{{gz.digest.str()}, {}}; };
  const cache::PruneOptions all{true, std::nullopt, std::nullopt};
  CompressionSpec zstd{Compression::Zstd};
  auto remember = [&] {
    auto z = image::convert_layer(r.store, src, gz.diff_id, zstd);
    // Past GC's clock slack: written before any lease below, so not kept as fresh.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    return z;
  };

  // Without a lease, a prune between the lookup and the use takes the blob it found.
  auto z = remember();
  CHECK(image::convert_layer(r.store, src, gz.diff_id, zstd).digest == z.digest);
  cache::prune(r.store, images, all);
  CHECK_FALSE(r.store.blobs().has(z.digest));
  CHECK(r.store.blobs().has(gz.digest));

  // With one, the lookup leases it: the prune keeps it, until the lease ends.
  z = remember();
  {
    cache::Lease lease(r.store);
    auto found = image::convert_layer(r.store, src, gz.diff_id, zstd, &lease);
    CHECK(found.digest == z.digest);
    cache::prune(r.store, images, all);
    CHECK(r.store.blobs().has(z.digest));
    CHECK(base::Digest::of(read_plain(r.store.blobs().path(z.digest))) == gz.diff_id);
  }
  cache::prune(r.store, images, all);
  CHECK_FALSE(r.store.blobs().has(z.digest));

  // The row outlives its blob: a leased lookup then converts again, and leases that.
  {
    cache::Lease lease(r.store);
    auto again = image::convert_layer(r.store, src, gz.diff_id, zstd, &lease);
    CHECK(again.digest == z.digest);
    CHECK(r.store.blobs().has(z.digest));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    cache::prune(r.store, images, all);
    CHECK(r.store.blobs().has(z.digest));
  }

  // rewrite-timestamp's remembered rewrites are leased the same way.
  const int64_t epoch = 1600000000;
  auto clamped = image::clamp_layer_mtimes(r.store, src, gz.diff_id, epoch, CompressionSpec{});
  REQUIRE(clamped.digest != gz.digest);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  {
    cache::Lease lease(r.store);
    CHECK(image::clamp_layer_mtimes(r.store, src, gz.diff_id, epoch, CompressionSpec{}, &lease).digest ==
          clamped.digest);
    cache::prune(r.store, images, all);
    CHECK(r.store.blobs().has(clamped.digest));
  }
  cache::prune(r.store, images, all);
  CHECK_FALSE(r.store.blobs().has(clamped.digest));
}
