// Compression choices of layer blobs: names, levels, media types, and converting a
// stored layer from one compression to another (decompress -> compress, streaming).
#include "image/compress.h"

#include <unistd.h>

#include "base/error.h"
#include "base/json.h"
#include "cache/gc.h"
#include "cache/store.h"
#include "image/layer.h"
#include "image/store.h"
#include "image/tar_io.h"
#include "image/tar_writer.h"

namespace builder::image {

Compression parse_compression(std::string_view name) {
  if (name == "gzip") return Compression::Gzip;
  if (name == "zstd") return Compression::Zstd;
  if (name == "uncompressed") return Compression::Uncompressed;
  throw base::Error("unknown compression `" + std::string(name) + "` (valid: gzip, zstd, uncompressed)");
}

std::string_view compression_name(Compression c) {
  switch (c) {
    case Compression::Gzip: return "gzip";
    case Compression::Zstd: return "zstd";
    case Compression::Uncompressed: return "uncompressed";
  }
  return "?";
}

int effective_level(const CompressionSpec& spec) {
  if (spec.level != -1) return spec.level;
  switch (spec.type) {
    case Compression::Gzip: return kGzipDefaultLevel;
    case Compression::Zstd: return kZstdDefaultLevel;
    case Compression::Uncompressed: return 0;
  }
  return 0;
}

void validate(const CompressionSpec& spec) {
  switch (spec.type) {
    case Compression::Gzip:
      if (spec.level != -1 && (spec.level < 0 || spec.level > 12))
        throw base::Error("compression-level=" + std::to_string(spec.level) + " is out of range for gzip (0..12)");
      break;
    case Compression::Zstd:
      if (spec.level != -1 && (spec.level < 1 || spec.level > 22))
        throw base::Error("compression-level=" + std::to_string(spec.level) + " is out of range for zstd (1..22)");
      if (!spec.oci_media_types)
        throw base::Error("compression=zstd requires oci-mediatypes=true (Docker media types have no zstd layer)");
      break;
    case Compression::Uncompressed:
      if (spec.level != -1)
        throw base::Error("compression-level=" + std::to_string(spec.level) +
                          " cannot be used with compression=uncompressed");
      break;
  }
}

std::string layer_media_type(const CompressionSpec& spec) {
  validate(spec);
  switch (spec.type) {
    case Compression::Gzip: return spec.oci_media_types ? kMediaTypeLayerGzip : kDockerMediaTypeLayer;
    case Compression::Zstd: return kMediaTypeLayerTarZstd;
    case Compression::Uncompressed: return spec.oci_media_types ? kMediaTypeLayerTar : kDockerMediaTypeLayerTar;
  }
  return {};
}

Compression compression_of_media_type(std::string_view mt) {
  static constexpr std::string_view kOci = "application/vnd.oci.image.layer.";
  static constexpr std::string_view kDocker = "application/vnd.docker.image.rootfs.";
  if (mt.starts_with(kOci)) {
    std::string_view rest = mt.substr(kOci.size());
    // v1.tar, v1.tar+gzip, v1.tar+zstd, and the nondistributable.v1.* forms.
    if (rest.starts_with("nondistributable.")) rest.remove_prefix(std::string_view("nondistributable.").size());
    if (rest == "v1.tar") return Compression::Uncompressed;
    if (rest == "v1.tar+gzip") return Compression::Gzip;
    if (rest == "v1.tar+zstd") return Compression::Zstd;
  } else if (mt.starts_with(kDocker)) {
    std::string_view rest = mt.substr(kDocker.size());
    if (rest == "diff.tar.gzip" || rest == "foreign.diff.tar.gzip") return Compression::Gzip;
    if (rest == "diff.tar" || rest == "foreign.diff.tar") return Compression::Uncompressed;
    if (rest == "diff.tar.zstd") return Compression::Zstd;
  }
  throw base::Error("`" + std::string(mt) + "` is not a layer media type");
}

namespace {

/// Cache index values of conversions: {"digest","size","diff_id"} (an object, which the
/// cache GC and repair leave alone; a blob the GC removed since just means converting
/// again). Keys: "blob:<diff_id>:<type>:<level>" and
/// "blob-clamp:<diff_id>:<max_mtime>:<type>:<level>"; a change to either shape must
/// change the key prefix.
std::string remembered_value(const base::Digest& digest, uint64_t size, const base::Digest& diff_id) {
  base::Json j = {{"digest", digest.str()}, {"size", size}, {"diff_id", diff_id.str()}};
  return j.dump();
}

/// A remembered conversion whose blob is still in the store; with `lease`, leased
/// atomically with that check.
std::optional<LayerBlob> recall(cache::Store& store, const std::string& key, cache::Lease* lease) {
  auto v = store.index().get(key);
  if (!v) return std::nullopt;
  base::Json j = base::Json::parse(*v, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("digest") || !j["digest"].is_string() || !j.contains("size") ||
      !j["size"].is_number_unsigned() || !j.contains("diff_id") || !j["diff_id"].is_string())
    return std::nullopt;
  auto ds = j["digest"].get<std::string>(), is = j["diff_id"].get<std::string>();
  if (!base::Digest::valid(ds) || !base::Digest::valid(is)) return std::nullopt;
  LayerBlob b;
  b.digest = base::Digest::parse(ds);
  b.diff_id = base::Digest::parse(is);
  b.size = j["size"].get<uint64_t>();
  // The GC may have removed the blob since (nothing but this row named it).
  if (lease ? !lease->add_present_blobs({b.digest}) : !store.blobs().has(b.digest)) return std::nullopt;
  if (store.blobs().size(b.digest) != b.size) return std::nullopt;
  return b;
}

/// Leases `d` when there is a lease (a blob this call wrote or was given).
void keep(cache::Lease* lease, const base::Digest& d) {
  if (lease) lease->add_blobs({d.str()});
}

std::string key_suffix(const CompressionSpec& spec) {
  return std::string(compression_name(spec.type)) + ":" + std::to_string(effective_level(spec));
}

Compression stored_compression(cache::BlobStore& blobs, const base::Digest& d) {
  base::Fd fd = blobs.open(d);
  unsigned char m[4] = {};
  size_t got = 0;
  while (got < sizeof m) {
    ssize_t n = ::read(fd.get(), m + got, sizeof m - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw base::SysError(errno, "read", blobs.path(d));
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  return detail::sniff_compression(m, got);
}

void check_diff_id(const base::Digest& got, const base::Digest& want, const Descriptor& src) {
  if (got != want)
    throw base::Error("layer " + src.digest.str() + " uncompresses to " + got.str() + ", not its diff id " + want.str());
}

}  // namespace

Descriptor convert_layer(cache::Store& store, const Descriptor& src, const base::Digest& diff_id,
                         const CompressionSpec& spec, cache::Lease* lease) {
  std::string media_type = layer_media_type(spec);  // validates
  auto& blobs = store.blobs();
  if (!spec.force && stored_compression(blobs, src.digest) == spec.type) {
    keep(lease, src.digest);
    return Descriptor{media_type, src.digest, src.size};
  }
  std::string key = "blob:" + diff_id.str() + ":" + key_suffix(spec);
  if (auto b = recall(store, key, lease)) return Descriptor{media_type, b->digest, b->size};

  base::Fd fd = blobs.open(src.digest);
  detail::PlainReader in(fd.get());
  auto writer = blobs.ingest();
  detail::LayerCompressor out(writer, spec.type, effective_level(spec));
  std::vector<unsigned char> buf(1 << 20);
  while (size_t n = in.read(buf.data(), buf.size())) out.write(buf.data(), n);
  check_diff_id(out.finish(), diff_id, src);
  uint64_t size = writer.size();
  base::Digest digest = writer.commit();
  // Written after the caller's lease began, so a prune keeps it until it is leased.
  keep(lease, digest);
  store.index().put(key, remembered_value(digest, size, diff_id));
  return Descriptor{media_type, digest, size};
}

LayerBlob clamp_layer_mtimes(cache::Store& store, const Descriptor& src, const base::Digest& diff_id,
                             int64_t max_mtime, const CompressionSpec& spec, cache::Lease* lease) {
  std::string media_type = layer_media_type(spec);  // validates
  auto& blobs = store.blobs();
  static const base::Digest kEmptyTar = base::Digest::of(std::string(1024, '\0'));
  auto unchanged = [&] {
    Descriptor d = convert_layer(store, src, diff_id, spec, lease);
    LayerBlob b;
    b.diff_id = diff_id;
    b.digest = d.digest;
    b.size = d.size;
    b.media_type = media_type;
    b.empty = diff_id == kEmptyTar;
    return b;
  };
  std::string key = "blob-clamp:" + diff_id.str() + ":" + std::to_string(max_mtime) + ":" + key_suffix(spec);
  if (auto b = recall(store, key, lease)) {
    if (b->diff_id == diff_id) return unchanged();  // remembered: nothing newer than max_mtime
    b->media_type = media_type;
    b->empty = false;
    return *b;
  }

  base::Fd fd = blobs.open(src.digest);
  detail::PlainReader in(fd.get());
  auto writer = blobs.ingest();
  detail::LayerCompressor out(writer, spec.type, effective_level(spec));
  struct Sink : detail::TarSink {
    explicit Sink(detail::LayerCompressor& c) : c_(c) {}
    void write(const void* data, size_t n) override { c_.write(data, n); }
    detail::LayerCompressor& c_;
  } sink(out);
  detail::TarWriter tw(sink);
  tw.set_max_mtime(max_mtime);
  detail::reencode_tar(in, tw);
  tw.close();
  check_diff_id(in.finish(), diff_id, src);
  if (!tw.clamped_any()) {
    // Nothing to clamp: keep the layer (and its diff id) as it is; the rewritten copy is
    // dropped with `writer`.
    store.index().put(key, remembered_value(src.digest, src.size, diff_id));
    return unchanged();
  }
  LayerBlob b;
  b.diff_id = out.finish();
  b.size = writer.size();
  b.digest = writer.commit();
  b.media_type = media_type;
  keep(lease, b.digest);
  store.index().put(key, remembered_value(b.digest, b.size, b.diff_id));
  return b;
}

}  // namespace builder::image
