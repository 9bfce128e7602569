// image/layer.h — layers as tar streams: the change an overlayfs upper directory makes
// over the layers below it becomes an OCI layer as BuildKit writes it, gzip-compressed
// into the blob store; a layer blob is unpacked into a directory as an overlayfs lower
// layer. Entries that would escape the destination (`..`, absolute links) are refused.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

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
  bool empty = false;    ///< no entry: the 32-byte empty layer (sha256:4f4fb700...)
};

/// Writes what the overlayfs upper dir `upper_dir` changes over `lower_dirs` (the layers
/// below it, top-most first) as a gzip tar layer into `blobs`, the way BuildKit's
/// overlayfs differ does (see layer.cpp): entries in lexical walk order; a 0/0 char
/// device is a `.wh.<name>` whiteout (ustar, mode 0, 0:0, mtime 0) when a layer below
/// has the name; an entry the layers below hold unchanged is left out, every directory
/// above a written entry is written; an opaque directory (trusted.overlay.opaque=y)
/// becomes whiteouts for what was below it and not in it. Headers are Go's archive/tar
/// pax format: numeric uid/gid, mode with setuid/setgid/sticky, whole-second mtime,
/// pax records for long or non-ASCII names, big ids and sizes of 8 GiB or more; the
/// only xattr kept is security.capability; sockets are skipped; hard links within the
/// layer are link entries to the first name. `empty` is set when nothing changed.
/// Throws base::Error for an upper dir with overlayfs redirect or metacopy xattrs.
LayerBlob write_layer(const std::string& upper_dir, const std::vector<std::string>& lower_dirs,
                      cache::BlobStore& blobs);

/// As above with the layers below unknown: every whiteout is written, an opaque
/// directory gets a `.wh..wh..opq` marker, no entry is compared.
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

/// Whether `path` is a regular file holding a tar archive, plain or compressed (gzip,
/// bzip2, xz, zstd): what ADD unpacks instead of copying.
bool is_tar_archive(const std::string& path);

/// Unpacks the archive at `path` into the directory `dest` as Docker's ADD does: existing
/// directories are merged, other existing paths replaced, owners, modes, times and
/// xattrs kept, `.wh.` names are ordinary files. Throws base::Error on entries (or hard
/// links, or paths through symlinks) that would leave `dest`.
void unpack_archive(const std::string& path, const std::string& dest);

/// Packs a plain directory tree (a rootfs) as a layer: every entry, as write_layer
/// writes it, 0/0 char devices kept as devices.
LayerBlob write_dir_layer(const std::string& dir, cache::BlobStore& blobs);

/// Stores a layer tar (plain or gzip, detected) read from `fd` as a gzip layer blob,
/// computing its diff id. The stream must be a readable tar whose entry names stay
/// inside the root (base::Error otherwise).
LayerBlob ingest_layer(int fd, cache::BlobStore& blobs);

}  // namespace builder::image
