// image/compress.h — layer compression: which compression a layer blob uses (gzip,
// zstd or none), its media type, and converting a stored layer between compressions
// (streaming, remembered in the cache index so each conversion happens once).
// The compressors themselves (multi-core libdeflate gzip, libzstd) are in tar_io.h.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/digest.h"

namespace builder::cache {
class Store;
class Lease;
}

namespace builder::image {

struct Descriptor;  // image/store.h
struct LayerBlob;   // image/layer.h

enum class Compression { Gzip, Zstd, Uncompressed };

/// How layers are written or exported (`--output ...,compression=,compression-level=,
/// force-compression=,oci-mediatypes=`).
///
/// Levels: gzip maps to libdeflate's levels 0..12 (0 stores without compressing, 1 is
/// fastest, 6 is zlib's default ratio, 10-12 are slow near-optimal ones); the default is
/// kGzipDefaultLevel. zstd takes libzstd's 1..22 (19-22 are very slow); the default is 3.
/// `uncompressed` takes no level.
struct CompressionSpec {
  Compression type = Compression::Gzip;
  int level = -1;               // -1: the type's default
  bool force = false;           // recompress layers already stored in another compression
  bool oci_media_types = true;  // false: Docker media types (gzip only; zstd requires OCI)
};

/// libdeflate level of the gzip layers we write by default. On a 256 MiB slice of /usr
/// (one core, CPU time): zlib level 1 (what builder used before) 86 MB/s to 37.9% of the
/// input; libdeflate 1: 195 MB/s, 37.1%; 2: 134 MB/s, 35.4%; 4: 111 MB/s, 34.8%; 6:
/// 74 MB/s, 33.8%. Level 4 is faster than zlib's 1 and 8% smaller, before the chunks are
/// spread over cores. Changing it changes layer digests, never diff ids.
inline constexpr int kGzipDefaultLevel = 4;
inline constexpr int kZstdDefaultLevel = 3;

/// "gzip" | "zstd" | "uncompressed"; throws base::Error naming the valid values.
Compression parse_compression(std::string_view name);
/// The inverse of parse_compression.
std::string_view compression_name(Compression c);
/// `spec.level`, or the type's default when it is -1 (0 for uncompressed).
int effective_level(const CompressionSpec& spec);
/// Throws base::Error for a spec that cannot be honoured: a level out of the type's range
/// (the message gives the range), a level with `uncompressed`, zstd with Docker media
/// types ("... requires oci-mediatypes=true").
void validate(const CompressionSpec& spec);

/// The layer media type for `spec`: OCI ...tar+gzip / ...tar+zstd / ...tar, or with
/// Docker media types ...rootfs.diff.tar.gzip (...rootfs.diff.tar for uncompressed).
/// Throws as validate().
std::string layer_media_type(const CompressionSpec& spec);
/// The compression a layer media type (OCI or Docker, including the non-distributable
/// variants) stands for; throws base::Error if `media_type` is not a layer type.
Compression compression_of_media_type(std::string_view media_type);

/// The layer blob for `diff_id` in `spec`'s compression: `src` itself when it already is
/// (and !force), else converted (streaming: decompress -> compress) into the blob store and
/// remembered in the cache index under "blob:<diff_id>:<type>:<level>" so it is done once.
/// The returned descriptor carries layer_media_type(spec) (a Docker or OCI name for the
/// same compression as `src`). The compression of `src` is taken from its bytes (magic),
/// not its media type. Throws base::Error when the decompressed stream's sha256 is not
/// `diff_id` (nothing is stored then), on corrupt input, or as validate(). Thread-safe.
///
/// With `lease`, the returned blob is leased before this returns. A remembered
/// conversion is leased atomically with the check that its blob still exists: nothing
/// but the index row (which does not keep it) names it, so a prune between the lookup
/// and the caller's use could otherwise remove it.
Descriptor convert_layer(cache::Store& store, const Descriptor& src, const base::Digest& diff_id,
                         const CompressionSpec& spec, cache::Lease* lease = nullptr);

/// rewrite-timestamp for a layer already stored: the layer `src` (diff id `diff_id`)
/// with every entry's mtime clamped to at most `max_mtime`, in `spec`'s compression.
/// Headers are re-encoded with TarWriter (Go's encoding, as write_layer writes them),
/// data is copied. When no entry is newer than `max_mtime` the layer is not rewritten:
/// the result is convert_layer(store, src, diff_id, spec) with the same diff id.
/// Otherwise the result has a new diff id (returned in LayerBlob::diff_id, with digest,
/// size and media_type) and is remembered in the cache index under
/// "blob-clamp:<diff_id>:<max_mtime>:<type>:<level>". Throws base::Error when the
/// source's diff id does not match, on corrupt input, or as validate(). Thread-safe.
/// `lease`: as convert_layer's.
LayerBlob clamp_layer_mtimes(cache::Store& store, const Descriptor& src, const base::Digest& diff_id,
                             int64_t max_mtime, const CompressionSpec& spec, cache::Lease* lease = nullptr);

}  // namespace builder::image
