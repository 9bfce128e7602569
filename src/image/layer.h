// image/layer.h — layers as tar streams: an overlayfs upper directory becomes an OCI
// layer (whiteouts for deletions, opaque directories), gzip-compressed into the blob
// store; a layer blob is unpacked into a directory as an overlayfs lower layer. Entries
// that would escape the destination (`..`, absolute links leading out) are refused.
#pragma once

#include <cstdint>
#include <string>

#include "base/digest.h"
#include "cache/blob_store.h"

namespace builder::image {

inline constexpr const char* kMediaTypeLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr const char* kMediaTypeLayerTar = "application/vnd.oci.image.layer.v1.tar";
inline constexpr const char* kDockerMediaTypeLayer = "application/vnd.docker.image.rootfs.diff.tar.gzip";

struct LayerBlob {
  base::Digest diff_id;  ///< sha256 of the uncompressed tar
  base::Digest digest;   ///< sha256 of the gzip blob in the store
  uint64_t size = 0;     ///< compressed size
  bool empty = false;    ///< the directory held no entries
};

/// Writes `upper_dir` (an overlayfs upper dir) as a gzip tar layer into `blobs`.
/// Char devices 0/0 become `.wh.<name>`, dirs with trusted.overlay.opaque=y get
/// `.wh..wh..opq`. Entries are sorted by name; uid/gid, mode, mtime, xattrs and hard
/// links are preserved.
LayerBlob write_layer(const std::string& upper_dir, cache::BlobStore& blobs);

/// Unpacks a layer (gzip or plain tar, detected) read from `fd` into the empty
/// directory `dest` as an overlayfs layer: `.wh.x` becomes a 0/0 char device `x`,
/// `.wh..wh..opq` sets trusted.overlay.opaque=y on its directory. Returns the diff id
/// (sha256 of the uncompressed stream). Throws base::Error on entries escaping `dest`.
base::Digest apply_layer(int fd, const std::string& dest);

/// Unpacks a layer on top of an existing tree `dest` the way a container runtime
/// flattens layers: whiteouts delete what they name, opaque markers empty their
/// directory. Used for `--output type=local`. Returns the diff id.
base::Digest extract_layer(int fd, const std::string& dest);

/// Packs a plain directory tree (a rootfs) as a layer; like write_layer without
/// whiteout translation.
LayerBlob write_dir_layer(const std::string& dir, cache::BlobStore& blobs);

/// Stores a layer tar (plain or gzip, detected) read from `fd` as a gzip layer blob,
/// computing its diff id. The stream must be a readable tar whose entry names stay
/// inside the root (base::Error otherwise).
LayerBlob ingest_layer(int fd, cache::BlobStore& blobs);

}  // namespace builder::image
