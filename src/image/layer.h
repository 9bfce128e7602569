// image/layer.h — layers as tar streams: the change an overlayfs upper directory makes
// over the layers below it becomes an OCI layer as BuildKit writes it, compressed
// (gzip, zstd or none: compress.h) into the blob store; a layer blob is unpacked into a directory as an overlayfs lower
// layer. Entries that would escape the destination (`..`, absolute links) are refused.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/digest.h"
#include "cache/blob_store.h"
#include "image/compress.h"

namespace builder::image {

inline constexpr const char* kMediaTypeLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr const char* kMediaTypeLayerTar = "application/vnd.oci.image.layer.v1.tar";
inline constexpr const char* kMediaTypeLayerTarZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr const char* kDockerMediaTypeLayer = "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr const char* kDockerMediaTypeLayerTar = "application/vnd.docker.image.rootfs.diff.tar";

/// How a layer is written: its compression (compress.h) and, for rewrite-timestamp, the
/// newest mtime an entry may carry (every later one is clamped to it; whiteouts keep 0).
struct LayerOptions {
  CompressionSpec compression;
  std::optional<int64_t> max_mtime;
};

struct LayerBlob {
  base::Digest diff_id;  ///< sha256 of the uncompressed tar
  base::Digest digest;     ///< sha256 of the (compressed) blob in the store
  uint64_t size = 0;       ///< blob size
  bool empty = false;      ///< no entry (gzip: the 32-byte empty layer sha256:4f4fb700...)
  std::string media_type;  ///< layer_media_type() of the options it was written with
  uint64_t plain_size = 0; ///< bytes of the uncompressed tar when the writer knows them, else 0
};

/// Writes what the overlayfs upper dir `upper_dir` changes over `lower_dirs` (the layers
/// below it, top-most first) as a tar layer into `blobs`, compressed as `opts` says, the way BuildKit's
/// overlayfs differ does (see layer.cpp): entries in lexical walk order; a 0/0 char
/// device is a `.wh.<name>` whiteout (ustar, mode 0, 0:0, mtime 0) when a layer below
/// has the name; an entry the layers below hold unchanged is left out, every directory
/// above a written entry is written; an opaque directory (trusted.overlay.opaque=y)
/// becomes whiteouts for what was below it and not in it. Headers are Go's archive/tar
/// pax format: numeric uid/gid, mode with setuid/setgid/sticky, whole-second mtime,
/// pax records for long or non-ASCII names, big ids and sizes of 8 GiB or more; the
/// only xattr kept is security.capability; sockets are skipped; hard links within the
/// layer are link entries to the first name. `empty` is set when nothing changed.
/// Throws base::Error for an upper dir with overlayfs redirect or metacopy xattrs, and
/// as validate() for `opts.compression`.
LayerBlob write_layer(const std::string& upper_dir, const std::vector<std::string>& lower_dirs,
                      cache::BlobStore& blobs, const LayerOptions& opts = {});

/// As above with the layers below unknown: every whiteout is written, an opaque
/// directory gets a `.wh..wh..opq` marker, no entry is compared.
LayerBlob write_layer(const std::string& upper_dir, cache::BlobStore& blobs, const LayerOptions& opts = {});

/// Unpacks a layer (gzip, possibly multi-member, zstd or plain tar, detected by magic)
/// read from `fd` into the empty directory `dest` as an overlayfs layer: `.wh.x` becomes
/// a 0/0 char device `x`, `.wh..wh..opq` sets trusted.overlay.opaque=y on its directory. Returns the diff id
/// (sha256 of the uncompressed stream). Throws base::Error on entries escaping `dest`
/// and on corrupt or truncated compressed input.
base::Digest apply_layer(int fd, const std::string& dest);

/// Unpacks a layer on top of an existing tree `dest` the way a container runtime
/// flattens layers: whiteouts delete what they name, opaque markers empty their
/// directory. Used for `--output type=local`. Returns the diff id.
base::Digest extract_layer(int fd, const std::string& dest);

/// Whether `path` is a regular file holding a tar archive, plain or compressed (gzip,
/// bzip2, xz, zstd): what ADD unpacks instead of copying.
bool is_tar_archive(const std::string& path);

/// Where ADD's archive entries land. Docker unpacks in a chroot at the destination, so
/// symlinks already there, and those the archive makes, are followed inside it; the
/// solver's file op implements this over its layered view of the image.
class ArchiveTarget {
 public:
  virtual ~ArchiveTarget() = default;
  /// Makes room for the entry `rel` (a clean path below the destination): its parents
  /// resolved and made, an existing path removed unless both are directories. Returns
  /// the host path to create the entry at (a path without symlinks).
  virtual std::string prepare(const std::string& rel, bool is_dir) = 0;
  /// The host path of the existing entry `rel` that a hard link entry names.
  virtual std::string link_target(const std::string& rel) = 0;
};

struct ArchiveOwner {
  uint32_t uid = 0;
  uint32_t gid = 0;
};

/// Unpacks the archive at `path` (plain, gzip, bzip2, xz or zstd) as Docker's ADD does:
/// existing directories are merged and take the entry's metadata, other existing paths
/// are replaced, owners (or `chown`'s), modes, times and xattrs kept, `.wh.` names are
/// ordinary files. Throws base::Error on entries or hard links with `..` leaving the
/// destination or absolute names, and on what `target` refuses.
void unpack_archive(const std::string& path, ArchiveTarget& target, const std::optional<ArchiveOwner>& chown);

/// Packs a plain directory tree (a rootfs) as a layer: every entry, as write_layer
/// writes it, 0/0 char devices kept as devices.
LayerBlob write_dir_layer(const std::string& dir, cache::BlobStore& blobs, const LayerOptions& opts = {});

/// Stores a layer tar (plain, gzip or zstd, detected) read from `fd` as a layer blob
/// compressed as `opts.compression` says, computing its diff id. The tar bytes are kept
/// as they are unless `opts.max_mtime` is set: then the headers are re-encoded with the
/// times clamped (detail::reencode_tar) and the diff id is the new stream's.
/// The stream must be a readable tar whose entry names stay inside the root (base::Error
/// otherwise; corrupt or truncated compression is a base::Error too).
LayerBlob ingest_layer(int fd, cache::BlobStore& blobs, const LayerOptions& opts = {});

}  // namespace builder::image
