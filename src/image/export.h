// image/export.h — what `--output` writes besides the image store: the manifest of an
// image in OCI or Docker media types, OCI layout archives and directories, `docker load`
// archives, the final filesystem as a directory or one tar, with SOURCE_DATE_EPOCH
// applied. Every file output is atomic (a temporary name beside the destination, then
// rename); "-" streams a tar to stdout. Knows nothing of builds or the CLI.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/json.h"
#include "image/compress.h"
#include "image/store.h"

namespace builder::image {

/// Writes `config` (bytes as dumped) and a manifest over `layers` (already in the blob
/// store, media types as given) into the store: an OCI manifest, or with
/// `oci_media_types` false a Docker schema 2 manifest with Docker config media type.
/// Returns the loaded image. Does not tag.
Image write_image_manifest(ImageStore& images, const base::Json& config, const std::vector<Descriptor>& layers,
                           bool oci_media_types);

/// An image as it goes into an archive, with the names it carries there (normalised
/// "repo:tag"; may be empty).
struct NamedImage {
  Image image;
  std::vector<std::string> names;
};

enum class ArchiveFormat {
  Oci,     ///< OCI image layout (+ manifest.json, so `docker load` reads it too)
  Docker,  ///< `docker save` format: manifest.json + repositories (+ the OCI layout)
};

/// Writes `imgs` as an archive at `dest` ("-": stdout, streamed; else atomically, the
/// temporary `<dest>.tmp-<pid>-<hex>` renamed into place). Throws base::Error; nothing
/// is left under `dest` then.
void write_image_archive(ImageStore& images, const std::vector<NamedImage>& imgs, ArchiveFormat format,
                         const std::string& dest);

/// Writes `imgs` as an OCI image layout directory at `dir` (index.json, oci-layout,
/// blobs/sha256/*). Built beside it and moved in: a new directory appears whole; into an
/// existing one (another layout) blobs are added and index.json replaced, each by rename.
void write_oci_layout_dir(ImageStore& images, const std::vector<NamedImage>& imgs, const std::string& dir);

/// The final filesystem of `layers` (bottom first; any compression) flattened as a
/// container runtime does, into the directory `dest`: built beside it, then renamed
/// into place when `dest` does not exist, or merged into it (as BuildKit's local
/// exporter: existing files the image also has are replaced, others kept). With
/// `epoch`, every entry's mtime is set to it (BuildKit's local exporter).
void export_rootfs_dir(ImageStore& images, const std::vector<Descriptor>& layers, const std::string& dest,
                       std::optional<int64_t> epoch, const std::string& scratch_dir);

/// The same tree as one tar at `dest` ("-": stdout): entries in lexical order, numeric
/// owners, pax headers, directory names ending in '/'; with `epoch` every mtime is it.
/// The tree is unpacked under `scratch_dir` (removed afterwards).
void export_rootfs_tar(ImageStore& images, const std::vector<Descriptor>& layers, const std::string& dest,
                       std::optional<int64_t> epoch, const std::string& scratch_dir);

/// Removes `<dest>.tmp-<pid>-*` leftovers of exports to `dest` whose process is gone (a
/// killed builder); called before every export to `dest`. Never touches a live one.
void remove_stale_export_temps(const std::string& dest);

}  // namespace builder::image
